/* Heap profiles (see heapprofile.h). */
#include "heapprofile.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "u64map.h"

enum { V_INUSE_N, V_INUSE_B, V_ALLOC_N, V_ALLOC_B, NV };

static const char *const types[NV] = { "inuse_objects", "inuse_space",
				       "alloc_objects", "alloc_space" };
static const char *const units[NV] = { "count", "bytes", "count", "bytes" };

/* One sample in the making: a traceback of one process. */
struct acc {
	const struct hk_traceback *tb;
	const struct hk_heap_proc *proc;
	double v[NV];
};

struct build {
	struct acc *a;
	size_t n, cap;
	struct hk_u64map idx;		/* traceback -> index + 1, per process */
};

static struct acc *acc_of(struct build *b, const struct hk_heap_proc *p,
			  const struct hk_traceback *tb)
{
	uintptr_t i = (uintptr_t)hk_u64map_get(&b->idx, (uint64_t)(uintptr_t)tb);

	if (i)
		return &b->a[i - 1];
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1024;
		struct acc *na = realloc(b->a, cap * sizeof(*na));

		if (!na)
			return NULL;
		b->a = na;
		b->cap = cap;
	}
	if (hk_u64map_put(&b->idx, (uint64_t)(uintptr_t)tb, (void *)(uintptr_t)(b->n + 1)))
		return NULL;
	b->a[b->n] = (struct acc){ .tb = tb, .proc = p };
	return &b->a[b->n++];
}

static int add_proc(struct build *b, const struct hk_heap_proc *p)
{
	/* tracebacks are per process (each has its symbolizer) */
	hk_u64map_free(&b->idx);
	memset(&b->idx, 0, sizeof(b->idx));
	for (size_t i = 0; i < p->ntraces; i++) {
		const struct hk_trace *t = &p->traces[i];
		struct acc *a = acc_of(b, p, t->tb);
		double w = t->weight > 0 ? t->weight : 1;

		if (!a)
			return -1;
		a->v[V_INUSE_N] += w;
		a->v[V_INUSE_B] += (double)t->size * w;
	}
	for (size_t i = 0; p->allocs && i < p->nallocs; i++) {
		struct acc *a = acc_of(b, p, p->allocs[i].tb);

		if (!a)
			return -1;
		a->v[V_ALLOC_N] += (double)p->allocs[i].count;
		a->v[V_ALLOC_B] += (double)p->allocs[i].bytes;
	}
	return 0;
}

int hk_heapprofile_write(FILE *out, const struct hk_heap_profile *hp)
{
	struct build b = { 0 };
	struct hk_pprof_sample *s = NULL;
	struct hk_pprof_frame *frames = NULL;
	int64_t *vals = NULL;
	size_t nframes = 0, nv = 2;
	int rc = -1;

	for (size_t i = 0; i < hp->nprocs; i++) {
		if (hp->procs[i].allocs)
			nv = NV;
		if (add_proc(&b, &hp->procs[i]))
			goto out;
	}
	for (size_t i = 0; i < b.n; i++)
		nframes += b.a[i].tb->nframe;
	s = calloc(b.n + 1, sizeof(*s));
	frames = calloc(nframes + 1, sizeof(*frames));
	vals = calloc((b.n + 1) * nv, sizeof(*vals));
	if (!s || !frames || !vals)
		goto out;
	nframes = 0;
	for (size_t i = 0; i < b.n; i++) {
		const struct hk_traceback *tb = b.a[i].tb;

		s[i].frames = &frames[nframes];
		s[i].nframes = tb->nframe;
		/* frames are most recent first: pprof's leaf first */
		for (uint32_t k = 0; k < tb->nframe; k++)
			frames[nframes++] = (struct hk_pprof_frame){
				.function = tb->frames[k].function ? tb->frames[k].function : "",
				.filename = tb->frames[k].filename,
				.line = tb->frames[k].lineno,
				.start_line = tb->frames[k].firstlineno };
		for (size_t v = 0; v < nv; v++)
			vals[i * nv + v] = llround(b.a[i].v[v]);
		s[i].values = &vals[i * nv];
		s[i].labels = b.a[i].proc->labels;
		s[i].nlabels = b.a[i].proc->nlabels;
	}
	struct hk_pprof p = {
		.types = types, .units = units, .ntypes = nv,
		.default_type = "inuse_space",
		.time_nanos = hp->time_nanos, .duration_nanos = hp->duration_nanos,
		.comments = hp->comment ? &hp->comment : NULL, .ncomments = hp->comment ? 1 : 0,
		.samples = s, .nsamples = b.n,
		.period_type = hp->period ? "space" : NULL,
		.period_unit = hp->period ? "bytes" : NULL,
		.period = hp->period,
	};
	rc = hp->folded ? hk_folded_write(out, &p, V_INUSE_B) : hk_pprof_write(out, &p);
out:
	if (rc && !errno)
		errno = ENOMEM;
	hk_u64map_free(&b.idx);
	free(b.a);
	free(s);
	free(frames);
	free(vals);
	return rc;
}

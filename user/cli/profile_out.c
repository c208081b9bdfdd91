/* pprof and folded output of traced processes (see profile_out.h). */
#include "profile_out.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

void hk_labels_make(struct hk_labels *l, const struct hk_options *o, pid_t pid,
		    const char *comm, const char *python, const char *container)
{
	memset(l, 0, sizeof(*l));
	if (gethostname(l->host, sizeof(l->host) - 1))
		strcpy(l->host, "?");
	if (pid) {
		l->v[l->n++] = (struct hk_pprof_label){ .key = "pid", .num = pid };
		l->v[l->n++] = (struct hk_pprof_label){ .key = "comm", .str = comm };
		l->v[l->n++] = (struct hk_pprof_label){ .key = "python", .str = python };
		if (container && *container)
			l->v[l->n++] = (struct hk_pprof_label){ .key = "container",
								 .str = container };
	}
	l->v[l->n++] = (struct hk_pprof_label){ .key = "host", .str = l->host };
	hk_labels_user(l, o);
}

void hk_labels_user(struct hk_labels *l, const struct hk_options *o)
{
	for (size_t i = 0; i < o->nlabels; i++) {
		const char *eq = strchr(o->labels[i], '=');
		size_t k = (size_t)(eq - o->labels[i]);

		if (k >= sizeof(l->keys[i]))
			k = sizeof(l->keys[i]) - 1;
		memcpy(l->keys[i], o->labels[i], k);
		l->keys[i][k] = 0;
		l->v[l->n++] = (struct hk_pprof_label){ .key = l->keys[i], .str = eq + 1 };
	}
}

int hk_profile_write(FILE *out, const struct hk_options *o,
		     const struct hk_heap_proc *procs, size_t n, double began,
		     double seconds)
{
	struct timespec mono, wall;
	double start;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &wall);
	/* the window's start on the wall clock */
	start = wall.tv_sec + wall.tv_nsec / 1e9 -
		(mono.tv_sec + mono.tv_nsec / 1e9 - began);
	struct hk_heap_profile hp = {
		.procs = procs, .nprocs = n,
		.time_nanos = (int64_t)(start * 1e9),
		.duration_nanos = (int64_t)(seconds * 1e9),
		.folded = o->format == HK_FMT_FOLDED,
		.comment = !o->sample ? NULL : o->rates.period
			? "sampled by bytes: each allocation with p = 1 - exp(-size/period); values are estimates (each sampled block counts 1/p)"
			: "sampled by size classes: values are estimates (each sampled block counts 1/p)",
		/* Go's heap profiles say their MemProfileRate so */
		.period = o->sample ? (int64_t)o->rates.period : 0,
	};

	return hk_heapprofile_write(out, &hp);
}

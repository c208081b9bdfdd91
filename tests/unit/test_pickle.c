/* Snapshot pickles against the real Python (oracle_pickle.py under
 * $HAWK_PYTHON): ours must load with tracemalloc.Snapshot.load() with the
 * expected content, and real Snapshot.dump() files must read back with the
 * content Python prints.  Both sides render the same canonical text. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "oracle.h"
#include "pickle.h"

/* ---- canonical text (see oracle_pickle.py) ----------------------------- */

static int pk_cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static int pk_cmp_frames(const void *a, const void *b)
{
	const struct hk_traceback *x = *(const struct hk_traceback *const *)a;
	const struct hk_traceback *y = *(const struct hk_traceback *const *)b;

	if (x->nframe != y->nframe)
		return x->nframe < y->nframe ? -1 : 1;
	for (uint32_t i = 0; i < x->nframe; i++) {
		int c = strcmp(x->frames[i].filename, y->frames[i].filename);

		if (c)
			return c;
		if (x->frames[i].lineno != y->frames[i].lineno)
			return x->frames[i].lineno < y->frames[i].lineno ? -1 : 1;
	}
	return 0;
}

static int pk_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts v and keeps one of each run of equal items; returns how many. */
static size_t pk_unique(void *v, size_t n, size_t sz,
			int (*cmp)(const void *, const void *))
{
	char *b = v;
	size_t u = 0;

	qsort(v, n, sz, cmp);
	for (size_t i = 0; i < n; i++)
		if (u == 0 || cmp(b + (u - 1) * sz, b + i * sz))
			memmove(b + u++ * sz, b + i * sz, sz);
	return u;
}

/* A traceback struct and the number of its content class. */
struct pk_cls {
	const struct hk_traceback *tb;
	size_t cls;
};

static int pk_cmp_cls_frames(const void *a, const void *b)
{
	return pk_cmp_frames(&((const struct pk_cls *)a)->tb,
			     &((const struct pk_cls *)b)->tb);
}

static int pk_cmp_cls_ptr(const void *a, const void *b)
{
	return pk_cmp_ptr(&((const struct pk_cls *)a)->tb,
			  &((const struct pk_cls *)b)->tb);
}

struct pk_tbinfo {
	struct pk_cls *cls;	/* by tb pointer */
	size_t n;
	size_t tbobjs, fnobjs;	/* see pk_tbinfo() */
};

/* Content classes of the snapshot's tracebacks, and how many distinct
 * traceback tuples and filename strings the pickle holds: by content for
 * what we wrote (we memoize by content), by identity (frames and filename
 * pointers) for what we read (one per pickled object). */
static void pk_tbinfo(const struct hk_snapshot *s, bool by_content,
		      struct pk_tbinfo *ti)
{
	const struct hk_traceback **tbs = malloc((s->ntraces + 1) * sizeof(*tbs));
	const char **fns;
	size_t n = 0, nf = 0;

	for (size_t i = 0; i < s->ntraces; i++)
		tbs[n++] = s->traces[i].tb;
	n = pk_unique(tbs, n, sizeof(*tbs), pk_cmp_ptr);
	ti->n = n;
	ti->cls = malloc((n + 1) * sizeof(*ti->cls));
	for (size_t i = 0; i < n; i++) {
		ti->cls[i].tb = tbs[i];
		nf += tbs[i]->nframe;
	}
	qsort(ti->cls, n, sizeof(*ti->cls), pk_cmp_cls_frames);
	for (size_t i = 0, c = 0; i < n; i++) {
		if (i && pk_cmp_cls_frames(&ti->cls[i - 1], &ti->cls[i]))
			c++;
		ti->cls[i].cls = c;
	}
	qsort(ti->cls, n, sizeof(*ti->cls), pk_cmp_cls_ptr);
	fns = malloc((nf + 1) * sizeof(*fns));
	nf = 0;
	for (size_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < tbs[i]->nframe; k++)
			fns[nf++] = tbs[i]->frames[k].filename;
	if (by_content) {
		ti->tbobjs = pk_unique(tbs, n, sizeof(*tbs), pk_cmp_frames);
		ti->fnobjs = pk_unique(fns, nf, sizeof(*fns), pk_cmp_str);
	} else {
		for (size_t i = 0; i < n; i++)
			tbs[i] = (const void *)tbs[i]->frames;
		ti->tbobjs = pk_unique(tbs, n, sizeof(*tbs), pk_cmp_ptr);
		ti->fnobjs = pk_unique(fns, nf, sizeof(*fns), pk_cmp_ptr);
	}
	free(tbs);
	free(fns);
}

/* "b <nframe> <hex(filename)>:<lineno> ..." */
static void pk_tbline(FILE *o, const struct hk_traceback *tb)
{
	fprintf(o, "b %u", tb->nframe);
	for (uint32_t k = 0; k < tb->nframe; k++) {
		const unsigned char *fn =
			(const unsigned char *)tb->frames[k].filename;

		fputc(' ', o);
		for (; *fn; fn++)
			fprintf(o, "%02x", *fn);
		fprintf(o, ":%u", tb->frames[k].lineno);
	}
	fputc('\n', o);
}

static char *pk_render(const char *name, const struct hk_snapshot *s,
		       size_t stride, bool by_content)
{
	char *out = NULL, *bl = NULL, *tl = NULL, line[128];
	size_t outlen = 0, bllen = 0, tllen = 0, nb = 0, *order;
	FILE *o = open_memstream(&out, &outlen);
	FILE *b = open_memstream(&bl, &bllen), *t = open_memstream(&tl, &tllen);
	uLong crc = crc32(0, NULL, 0);
	struct pk_tbinfo ti;

	pk_tbinfo(s, by_content, &ti);
	order = malloc((ti.n + 1) * sizeof(*order));	/* class -> b index */
	memset(order, 0xff, (ti.n + 1) * sizeof(*order));
	for (size_t i = 0; i < s->ntraces; i++) {
		const struct hk_trace *tr = &s->traces[i];
		struct pk_cls key = { tr->tb, 0 };
		struct pk_cls *c = bsearch(&key, ti.cls, ti.n, sizeof(key),
					   pk_cmp_cls_ptr);

		if (order[c->cls] == (size_t)-1) {
			order[c->cls] = nb++;
			pk_tbline(b, tr->tb);
		}
		int n = snprintf(line, sizeof(line), "t %u %llu %u %zu\n",
				 tr->domain, (unsigned long long)tr->size,
				 tr->tb->total_nframe, order[c->cls]);
		crc = crc32(crc, (const Bytef *)line, (uInt)n);
		if (i % stride == 0)
			fputs(line, t);
	}
	fclose(b);
	fclose(t);
	fprintf(o, "snapshot %s\nlimit %u\nntraces %zu\ntbobjs %zu fnobjs %zu\n"
		"%s%scrc %lu\nend\n", name, s->traceback_limit, s->ntraces,
		ti.tbobjs, ti.fnobjs, bl, tl, crc);
	fclose(o);
	free(bl);
	free(tl);
	free(order);
	free(ti.cls);
	return out;
}

/* ---- running the oracle ---------------------------------------------- */

static char *pk_oracle(const char *args)
{
	const char *py = oracle_python();
	char *cmd = NULL, *out = NULL;
	size_t outlen = 0;
	char buf[65536];
	size_t got;
	FILE *p, *o = open_memstream(&out, &outlen);

	cr_assert(asprintf(&cmd, "'%s' tests/unit/oracle_pickle.py %s", py, args) > 0);
	p = popen(cmd, "r");
	cr_assert_not_null(p, "cannot run %s", cmd);
	while ((got = fread(buf, 1, sizeof(buf), p)))
		fwrite(buf, 1, got, o);
	cr_assert_eq(pclose(p), 0, "oracle failed: %s", cmd);
	fclose(o);
	free(cmd);
	return out;
}

/* The "snapshot <name>" ... "end\n" section of oracle output, or NULL. */
static char *pk_section(const char *out, const char *name)
{
	char *head = NULL, *s, *e, *sec;

	cr_assert(asprintf(&head, "snapshot %s\n", name) > 0);
	for (s = strstr(out, head); s && s != out && s[-1] != '\n';)
		s = strstr(s + 1, head);
	free(head);
	if (!s || !(e = strstr(s, "\nend\n")))
		return NULL;
	sec = strndup(s, (size_t)(e + 5 - s));
	return sec;
}

static void pk_expect_same(const char *want, const char *got, const char *what)
{
	size_t i = 0, line = 1;

	if (got && strcmp(want, got) == 0)
		return;
	if (!got)
		cr_assert_fail("%s: oracle printed no such snapshot", what);
	while (want[i] && want[i] == got[i])
		if (want[i++] == '\n')
			line++;
	/* show from the line start, or a little before the difference */
	size_t back = 0;
	while (back < i && back < 60 && want[i - back - 1] != '\n')
		back++;
	cr_assert_fail("%s differs at line %zu:\n  want: ...%.100s\n  got:  ...%.100s",
		what, line, want + i - back, got + i - back);
}

/* ---- generated snapshots --------------------------------------------- */

struct pk_gen {
	struct hk_snapshot snap;
	struct hk_trace *traces;
	struct hk_traceback *tbs;
	struct hk_frame *frames;
	char **names;
	size_t nnames;
};

static void pk_gen_free(struct pk_gen *g)
{
	for (size_t i = 0; i < g->nnames; i++)
		free(g->names[i]);
	free(g->names);
	free(g->traces);
	free(g->tbs);
	free(g->frames);
	memset(g, 0, sizeof(*g));
}

/* ntraces traces over ntb tracebacks of 1..maxframes frames drawn from
 * nfiles filenames; deterministic. */
static void pk_gen_many(struct pk_gen *g, size_t ntraces, size_t ntb,
			uint32_t maxframes, size_t nfiles, unsigned limit)
{
	unsigned seed = 42;
	size_t nfr = 0;

	memset(g, 0, sizeof(*g));
	g->names = calloc(nfiles, sizeof(char *));
	g->nnames = nfiles;
	for (size_t i = 0; i < nfiles; i++)
		cr_assert(asprintf(&g->names[i], "/usr/lib/python3.11/pkg%zu/module_%zu.py",
				   i % 17, i) > 0);
	g->tbs = calloc(ntb, sizeof(*g->tbs));
	g->frames = calloc(ntb * maxframes, sizeof(*g->frames));
	for (size_t i = 0; i < ntb; i++) {
		struct hk_traceback *tb = &g->tbs[i];
		struct hk_frame *f = g->frames + nfr;

		tb->nframe = 1 + (uint32_t)(i % maxframes);
		tb->total_nframe = tb->nframe + (uint32_t)(i % 3 == 0 ? i % 40 : 0);
		tb->frames = f;
		for (uint32_t k = 0; k < tb->nframe; k++) {
			/* frame 0 makes every traceback distinct */
			f[k].filename = g->names[(k == 0 ? i : (size_t)rand_r(&seed)) % nfiles];
			f[k].function = "";
			f[k].lineno = k == 0 ? (unsigned)(i / nfiles + 1)
					     : (unsigned)(rand_r(&seed) % 5000);
		}
		nfr += tb->nframe;
	}
	g->traces = calloc(ntraces ? ntraces : 1, sizeof(*g->traces));
	for (size_t i = 0; i < ntraces; i++) {
		g->traces[i].domain = i % 101 == 0 ? 1 : 0;
		g->traces[i].size = (uint64_t)rand_r(&seed) % (1u << 20);
		g->traces[i].tb = &g->tbs[(size_t)rand_r(&seed) % ntb];
	}
	g->snap = (struct hk_snapshot){ g->traces, ntraces, limit };
}

/* Edge values: non-ASCII and long filenames, equal content behind
 * different pointers, every integer encoding, 1..4 frames. */
static void pk_gen_edge(struct pk_gen *g)
{
	static const uint64_t sizes[] = {
		0, 1, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000ULL,
		0xffffffffULL, 0x100000000ULL, 0x7fffffffffffffffULL,
		0x8000000000000000ULL, 0xffffffffffffffffULL, 0xffffffffffULL,
	};
	static const unsigned domains[] = { 0, 1, 255, 65536, 0x80000000u,
					    0xffffffffu };
	char *longname = malloc(301);

	memset(g, 0, sizeof(*g));
	memset(longname, 'L', 300);
	memcpy(longname, "/long/", 6);
	longname[300] = 0;
	g->nnames = 6;
	g->names = calloc(g->nnames, sizeof(char *));
	g->names[0] = strdup("a.py");
	g->names[1] = strdup("dïr/ファイル.py");
	g->names[2] = strdup("emoji_🐍\xed\xb2\x80.py");	/* + lone surrogate */
	g->names[3] = longname;
	g->names[4] = strdup("a.py");		/* same text, other pointer */
	g->names[5] = strdup("dïr/ファイル.py");
	g->frames = calloc(16, sizeof(*g->frames));
	struct hk_frame *f = g->frames;
	f[0] = (struct hk_frame){ .filename = g->names[0], .function = "", .lineno = 1 };
	f[1] = (struct hk_frame){ .filename = g->names[1], .function = "", .lineno = 2 };	/* tb1: 2 frames */
	f[2] = (struct hk_frame){ .filename = g->names[0], .function = "", .lineno = 0 };
	f[3] = (struct hk_frame){ .filename = g->names[2], .function = "", .lineno = 65536 };	/* tb2: 3 frames */
	f[4] = (struct hk_frame){ .filename = g->names[3], .function = "", .lineno = 0xffffffffu };
	f[5] = (struct hk_frame){ .filename = g->names[1], .function = "", .lineno = 300 };
	f[6] = (struct hk_frame){ .filename = g->names[3], .function = "", .lineno = 7 };	/* tb3: 4 frames */
	f[7] = (struct hk_frame){ .filename = g->names[0], .function = "", .lineno = 256 };
	f[8] = (struct hk_frame){ .filename = g->names[2], .function = "", .lineno = 255 };
	f[9] = (struct hk_frame){ .filename = g->names[1], .function = "", .lineno = 1 };
	f[10] = (struct hk_frame){ .filename = g->names[5], .function = "", .lineno = 2 };	/* tb4 = tb1 text */
	f[11] = (struct hk_frame){ .filename = g->names[4], .function = "", .lineno = 0 };
	g->tbs = calloc(5, sizeof(*g->tbs));
	g->tbs[0] = (struct hk_traceback){ 1, 1, &f[0] };
	g->tbs[1] = (struct hk_traceback){ 2, 9, &f[1] };
	g->tbs[2] = (struct hk_traceback){ 3, 65535, &f[3] };
	g->tbs[3] = (struct hk_traceback){ 4, 4, &f[6] };
	g->tbs[4] = (struct hk_traceback){ 2, 2, &f[10] };
	size_t n = sizeof(sizes) / sizeof(*sizes) * 3;
	g->traces = calloc(n, sizeof(*g->traces));
	for (size_t i = 0; i < n; i++)
		g->traces[i] = (struct hk_trace){
			domains[i % 6], sizes[i % (n / 3)], &g->tbs[i % 5], 0 };
	g->snap = (struct hk_snapshot){ g->traces, n, 4 };
}

static void pk_gen_deep(struct pk_gen *g)
{
	pk_gen_many(g, 50, 10, 1, 7, 100);
	free(g->frames);
	g->frames = calloc(10 * 100, sizeof(*g->frames));
	for (size_t i = 0; i < 10; i++) {
		g->tbs[i] = (struct hk_traceback){ 100, (uint32_t)(100 + i * 5),
						   g->frames + i * 100 };
		for (size_t k = 0; k < 100; k++)
			g->frames[i * 100 + k] = (struct hk_frame){
				.filename = g->names[(i + k) % 7], .function = "",
				.lineno = (unsigned)(k * 3 + i) };
	}
}

static double pk_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes g to dir/name, checks the C reader gets the same back. */
static double pk_write(const char *dir, const char *name, struct pk_gen *g,
		       size_t stride)
{
	char path[512], err[256];
	struct hk_pickle_snapshot back;
	FILE *f;
	double t0, dt;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	t0 = pk_now();
	cr_assert_eq(hk_pickle_write_snapshot(f, &g->snap), 0, "%s: %s", name,
		     strerror(errno));
	cr_assert_eq(fclose(f), 0);
	dt = pk_now() - t0;
	cr_assert_eq(hk_pickle_load_snapshot(path, &back, err, sizeof(err)), 0,
		     "%s: %s", name, err);
	char *want = pk_render(name, &g->snap, stride, true);
	char *got = pk_render(name, &back.snap, stride, false);
	pk_expect_same(want, got, "C round trip");
	free(want);
	free(got);
	hk_pickle_snapshot_free(&back);
	return dt;
}

/* Each Criterion test runs in its own process: one scratch dir per test,
 * removed by the .fini hook even when an assertion aborts the test. */
static char pk_dir[] = "/tmp/hawk-pickle-XXXXXX";

static char *pk_tmpdir(void)
{
	cr_assert_not_null(mkdtemp(pk_dir));
	return pk_dir;
}

static void pk_cleanup(void)
{
	char cmd[64];

	if (strchr(pk_dir, 'X'))
		return;		/* never created */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pk_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", pk_dir);
}

Test(pickle, written_loads_in_python, .timeout = 300, .fini = pk_cleanup)
{
	static const char *names[] = { "empty.pickle", "single.pickle",
				       "edge.pickle", "deep.pickle",
				       "medium.pickle" };
	struct pk_gen g[5], big;
	char *dir = pk_tmpdir(), *args = NULL, *out;
	char path[512];
	double dt;

	pk_gen_many(&g[0], 0, 1, 1, 1, 1);
	pk_gen_many(&g[1], 1, 1, 3, 2, 3);
	pk_gen_edge(&g[2]);
	pk_gen_deep(&g[3]);
	pk_gen_many(&g[4], 2501, 300, 6, 40, 6);	/* > 256 memo entries */
	for (int i = 0; i < 5; i++)
		pk_write(dir, names[i], &g[i], 1);
	cr_assert(asprintf(&args, "load '%s/%s' '%s/%s' '%s/%s' '%s/%s' '%s/%s'",
			   dir, names[0], dir, names[1], dir, names[2], dir,
			   names[3], dir, names[4]) > 0);
	out = pk_oracle(args);
	for (int i = 0; i < 5; i++) {
		char *want = pk_render(names[i], &g[i].snap, 1, true);
		char *got = pk_section(out, names[i]);

		pk_expect_same(want, got, names[i]);
		free(want);
		free(got);
		pk_gen_free(&g[i]);
	}
	free(out);
	free(args);

	/* 1 M traces sharing 3000 tracebacks: time, size, and content */
	pk_gen_many(&big, 1000000, 3000, 8, 500, 8);
	dt = pk_write(dir, "big.pickle", &big, 997);
	snprintf(path, sizeof(path), "%s/big.pickle", dir);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fclose(f);
	fprintf(stderr, "pickle: wrote 1000000 traces (3000 tracebacks) in "
		"%.3f s, %ld bytes\n", dt, size);
	cr_assert_lt(dt, HK_TIME_BOUND(1.0), "writing 1 M traces took %.3f s", dt);
	cr_assert_lt(size, 20 * 1000000, "1 M traces take %ld bytes", size);
	cr_assert(asprintf(&args, "load --stride 997 '%s'", path) > 0);
	out = pk_oracle(args);
	char *want = pk_render("big.pickle", &big.snap, 997, true);
	char *got = pk_section(out, "big.pickle");
	pk_expect_same(want, got, "big.pickle");
	free(want);
	free(got);
	free(out);
	free(args);
	pk_gen_free(&big);
}

/* Truncations and byte flips of a valid pickle: never crash, and say why
 * when refusing. */
static void pk_mangle(const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len);
	unsigned seed = 7;
	char err[256];
	struct hk_pickle_snapshot ps;

	for (size_t n = 0; n < len; n++) {
		memcpy(copy, buf, n);	/* exact-size copy: ASan sees overreads */
		err[0] = 0;
		cr_assert_eq(hk_pickle_read_snapshot(copy, n, &ps, err, sizeof(err)),
			     -1, "truncated to %zu bytes but accepted", n);
		cr_assert(err[0], "no message for truncation at %zu", n);
	}
	for (int round = 0; round < 3000; round++) {
		memcpy(copy, buf, len);
		for (int k = 0; k < 1 + round % 4; k++)
			copy[(size_t)rand_r(&seed) % len] = (uint8_t)rand_r(&seed);
		err[0] = 0;
		if (hk_pickle_read_snapshot(copy, len, &ps, err, sizeof(err)) == 0)
			hk_pickle_snapshot_free(&ps);
		else
			cr_assert(err[0], "no message");
	}
	free(copy);
}

static uint8_t *pk_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*len + 1);
	cr_assert_eq(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

Test(pickle, reads_real_dumps, .timeout = 300, .fini = pk_cleanup)
{
	static const char *names[] = { "real5", "real1", "filtered", "single",
				       "empty", "bigints", "purepy" };
	char *dir = pk_tmpdir(), *args = NULL, *out;
	char path[512], name[64], err[256];
	struct hk_pickle_snapshot ps;

	cr_assert(asprintf(&args, "dump '%s'", dir) > 0);
	out = pk_oracle(args);
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(name, sizeof(name), "%s.pickle", names[i]);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		cr_assert_eq(hk_pickle_load_snapshot(path, &ps, err, sizeof(err)),
			     0, "%s: %s", name, err);
		char *want = pk_section(out, name);
		char *got = pk_render(name, &ps.snap, 1, false);
		cr_assert_not_null(want, "oracle did not dump %s", name);
		cr_assert_gt(strlen(want), 40);
		pk_expect_same(want, got, name);
		free(want);
		free(got);
		hk_pickle_snapshot_free(&ps);
	}
	/* real5 is large: mangle the small ones */
	for (int i = 3; i < 6; i++) {
		size_t len;
		snprintf(path, sizeof(path), "%s/%s.pickle", dir, names[i]);
		uint8_t *buf = pk_slurp(path, &len);
		pk_mangle(buf, len);
		free(buf);
	}
	free(out);
	free(args);
}

Test(pickle, mangled_written)
{
	struct pk_gen g;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	pk_gen_edge(&g);
	cr_assert_eq(hk_pickle_write_snapshot(f, &g.snap), 0);
	fclose(f);
	pk_mangle((const uint8_t *)buf, len);
	free(buf);
	pk_gen_free(&g);
}

static void pk_refused(const char *bytes, size_t len, const char *needle)
{
	char err[256] = "";
	struct hk_pickle_snapshot ps;

	cr_assert_eq(hk_pickle_read_snapshot(bytes, len, &ps, err, sizeof(err)),
		     -1, "accepted input expecting '%s'", needle);
	cr_assert(strstr(err, needle), "message '%s' lacks '%s'", err, needle);
	cr_assert_null(ps.traces);
}

#define REFUSED(lit, needle) pk_refused(lit, sizeof(lit) - 1, needle)

Test(pickle, refuses_other_pickles)
{
	REFUSED("", "without STOP");
	REFUSED("\x80\x04N.", "unsupported opcode 0x4e");
	REFUSED("\x80\x02}.", "unsupported protocol 2");
	REFUSED("(dp0\n.", "not a protocol 4/5 pickle");
	REFUSED("\x80\x04}.", "not a tracemalloc.Snapshot");
	REFUSED("\x80\x04\x8c\x02os\x8c\x06system\x93.", "unsupported global");
	REFUSED("\x80\x04\x8c\x0btracemalloc\x8c\x05" "Frame\x93.",
		"unsupported global tracemalloc.<Frame>");
	REFUSED("\x80\x04h\x05.", "memo index 5 not defined");
	REFUSED("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00.", "FRAME longer");
	REFUSED("\x80\x04\x8c\x03\xff\xfe\xfd.", "not UTF-8");
	REFUSED("\x80\x04\x8c\x03" "a\x00" "b.", "NUL");
	REFUSED("\x80\x04K\x01K\x02\x86.", "unexpected tuple");
	REFUSED("\x80\x04\x8c\x01" "aJ\xff\xff\xff\xff\x86.", "line number out of range");
	/* (0, 2**72, (('a', 1),), 1), and 2**64, -1 as sizes */
	REFUSED("\x80\x04(K\x00\x8a\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
		"\x8c\x01" "aK\x01\x86\x85K\x01t.",
		"trace size out of range (0 to 18446744073709551615)");
	REFUSED("\x80\x04(K\x00\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01"
		"\x8c\x01" "aK\x01\x86\x85K\x01t.", "trace size out of range");
	REFUSED("\x80\x04(K\x00J\xff\xff\xff\xff"
		"\x8c\x01" "aK\x01\x86\x85K\x01t.", "trace size out of range");
	REFUSED("\x80\x04\x8c\x01" "a\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\xff\x86.",
		"line number out of range");
	REFUSED("\x80\x04]K\x01" "a.", "list item is not a trace");
	REFUSED("\x80\x04\x86.", "stack underflow");
	REFUSED("\x80\x04K\x02(K\x01K\x03u.", "SETITEM(S) on a non-dict");
	REFUSED("\x80\x04t.", "no MARK");
	REFUSED("\x80\x04X\xff\xff\xff\x7f", "truncated");
}

/* MARK with nothing on the stack, then the ops that pop to it: the stack
 * has no array yet (the UBSan build caught NULL + 0 there). */
Test(pickle, mark_on_an_empty_stack)
{
	REFUSED("\x80\x05(t.", "not a tracemalloc.Snapshot");
	REFUSED("\x80\x04(e.", "stack underflow");
	REFUSED("\x80\x04(u.", "stack underflow");
	REFUSED("\x80\x05((t.", "not a tracemalloc.Snapshot");
}

Test(pickle, writer_errors)
{
	struct hk_frame bad = { .filename = "bad\xff.py", .function = "", .lineno = 1 };
	struct hk_traceback tb = { 1, 1, &bad }, empty = { 0, 0, NULL };
	struct hk_trace t = { 0, 1, &tb, 0 };
	struct hk_snapshot s = { &t, 1, 1 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	errno = 0;
	cr_assert_eq(hk_pickle_write_snapshot(f, &s), -1);
	cr_assert_eq(errno, EILSEQ);
	t.tb = &empty;
	errno = 0;
	cr_assert_eq(hk_pickle_write_snapshot(f, &s), -1);
	cr_assert_eq(errno, EINVAL);
	bad.filename = NULL;
	t.tb = &tb;
	errno = 0;
	cr_assert_eq(hk_pickle_write_snapshot(f, &s), -1);
	cr_assert_eq(errno, EINVAL);
	fclose(f);
	free(buf);
}

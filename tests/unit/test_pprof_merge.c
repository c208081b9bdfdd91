/* hk_pprof_merge: profiles made by hk_pprof_write (and by hand, for what
 * hawk-bpf does not write), merged, read back with protobuf-c's generated
 * unpacker and with the real `go tool pprof`; malformed, truncated and
 * garbage inputs refused with one line. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "oracle.h"
#include "pprof.h"
#include "pprof_internal.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;

static const char *types[] = { "inuse_objects", "inuse_space", "alloc_objects", "alloc_space" };
static const char *units[] = { "count", "bytes", "count", "bytes" };

/* ---- scratch files ------------------------------------------------------ */

/* Each Criterion test runs in its own process: its scratch files are
 * removed by the .fini hook even when an assertion aborts it. */
#define NPATHS 24
static char paths[NPATHS][32];
static int npaths;

static void cleanup(void)
{
	for (int i = 0; i < npaths; i++)
		unlink(paths[i]);
}

/* A new scratch file holding len bytes of b (none if b is NULL). */
static const char *scratch(const void *b, size_t len)
{
	char *p;
	int fd;

	cr_assert_lt(npaths, NPATHS);
	p = paths[npaths];
	strcpy(p, "/tmp/hawk-pmerge-XXXXXX");
	cr_assert_geq(fd = mkstemp(p), 0, "mkstemp: %s", strerror(errno));
	npaths++;
	cr_assert_eq(write(fd, b, len), (ssize_t)len);
	close(fd);
	return p;
}

/* ---- images ------------------------------------------------------------- */

struct img {
	char *b;
	size_t n;
};

static struct img img_of(const struct hk_pprof *p)
{
	struct img m = { NULL, 0 };
	FILE *f = open_memstream(&m.b, &m.n);

	cr_assert_not_null(f);
	cr_assert_eq(hk_pprof_write(f, p), 0, "hk_pprof_write: %s", strerror(errno));
	cr_assert_eq(fclose(f), 0);
	return m;		/* a test's process ends soon: never freed */
}

/* b gunzipped (it must be gzip). */
static struct img gunzip(const void *b, size_t n)
{
	struct img r = { NULL, 0 };
	size_t cap = n * 8 + (1 << 16);
	z_stream z = { 0 };
	int k;

	cr_assert(n >= 2 && ((const uint8_t *)b)[0] == 0x1f && ((const uint8_t *)b)[1] == 0x8b,
		  "not gzip");
	cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
	cr_assert_not_null(r.b = malloc(cap));
	z.next_in = (Bytef *)b;
	z.avail_in = (uInt)n;
	do {
		if (r.n == cap)
			cr_assert_not_null(r.b = realloc(r.b, cap *= 2));
		z.next_out = (Bytef *)r.b + r.n;
		z.avail_out = (uInt)(cap - r.n);
		k = inflate(&z, Z_NO_FLUSH);
		r.n = cap - z.avail_out;
		cr_assert(k == Z_OK || k == Z_STREAM_END, "inflate: %d", k);
	} while (k != Z_STREAM_END);
	cr_assert_eq(z.avail_in, 0, "bytes after the gzip stream");
	inflateEnd(&z);
	return r;
}

/* b gzipped. */
static struct img gzip(const void *b, size_t n)
{
	struct img r = { malloc(n + 1024), 0 };
	z_stream z = { 0 };

	cr_assert_not_null(r.b);
	cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)b;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)r.b;
	z.avail_out = (uInt)(n + 1024);
	cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	r.n = n + 1024 - z.avail_out;
	deflateEnd(&z);
	return r;
}

/* A hand-made profile, packed (plain). */
static struct img pack(const Profile *p)
{
	struct img r;

	r.n = perftools__profiles__profile__get_packed_size(p);
	cr_assert_not_null(r.b = malloc(r.n + 1));
	perftools__profiles__profile__pack(p, (uint8_t *)r.b);
	return r;
}

/* ---- merging ------------------------------------------------------------ */

static char err[512];

static int merge_to(FILE *f, const struct img *in, size_t n,
		    const struct hk_pprof_label *extra, size_t nextra)
{
	const void *bufs[32];
	size_t lens[32];

	cr_assert_leq(n, 32);
	for (size_t i = 0; i < n; i++) {
		bufs[i] = in[i].b;
		lens[i] = in[i].n;
	}
	memset(err, 'x', sizeof(err));
	return hk_pprof_merge(f, bufs, lens, n, extra, nextra, err, sizeof(err));
}

/* The merge of n images, which must succeed, as an image (gzip). */
static struct img merged(const struct img *in, size_t n,
			 const struct hk_pprof_label *extra, size_t nextra)
{
	struct img m = { NULL, 0 };
	FILE *f = open_memstream(&m.b, &m.n);

	cr_assert_not_null(f);
	cr_assert_eq(merge_to(f, in, n, extra, nextra), 0, "hk_pprof_merge: %s", err);
	cr_assert_str_empty(err);
	cr_assert_eq(fclose(f), 0);
	return m;
}

/* The merge of n images, which must fail: err. */
static const char *refused(const struct img *in, size_t n)
{
	FILE *f = fopen("/dev/null", "w");

	cr_assert_not_null(f);
	errno = 0;
	cr_assert_eq(merge_to(f, in, n, NULL, 0), -1, "accepted");
	cr_assert_neq(errno, 0);
	cr_assert(err[0] && !strchr(err, '\n'), "err: \"%s\"", err);
	fclose(f);
	return err;
}

/* A merged image unpacked: the exact encoding packing it whole gives. */
static Profile *unpack(const struct img *m)
{
	struct img raw = gunzip(m->b, m->n);
	Profile *pr = perftools__profiles__profile__unpack(NULL, raw.n, (uint8_t *)raw.b);
	uint8_t *again;

	cr_assert_not_null(pr, "unpack failed (%zu bytes)", raw.n);
	cr_assert_eq(perftools__profiles__profile__get_packed_size(pr), raw.n);
	cr_assert_not_null(again = malloc(raw.n + 1));
	perftools__profiles__profile__pack(pr, again);
	cr_assert(!memcmp(raw.b, again, raw.n), "not the canonical encoding");
	free(again);
	free(raw.b);
	return pr;
}

static const char *str(const Profile *pr, int64_t i)
{
	cr_assert(i >= 0 && (size_t)i < pr->n_string_table, "string %" PRId64 " of %zu",
		  i, pr->n_string_table);
	return pr->string_table[i];
}

/* Every string once, "" first; ids 1..n; every reference resolves. */
static void check_tables(const Profile *pr)
{
	cr_assert_gt(pr->n_string_table, 0);
	cr_assert_str_empty(pr->string_table[0]);
	for (size_t i = 0; i < pr->n_string_table; i++)
		for (size_t j = i + 1; j < pr->n_string_table; j++)
			cr_assert_str_neq(pr->string_table[i], pr->string_table[j],
					  "string %zu again at %zu", i, j);
	for (size_t i = 0; i < pr->n_function; i++)
		cr_assert_eq(pr->function[i]->id, i + 1);
	for (size_t i = 0; i < pr->n_mapping; i++)
		cr_assert_eq(pr->mapping[i]->id, i + 1);
	for (size_t i = 0; i < pr->n_location; i++) {
		cr_assert_eq(pr->location[i]->id, i + 1);
		cr_assert_leq(pr->location[i]->mapping_id, pr->n_mapping);
		for (size_t k = 0; k < pr->location[i]->n_line; k++)
			cr_assert(pr->location[i]->line[k]->function_id - 1 < pr->n_function);
	}
	for (size_t i = 0; i < pr->n_sample; i++) {
		cr_assert_eq(pr->sample[i]->n_value, pr->n_sample_type);
		for (size_t k = 0; k < pr->sample[i]->n_location_id; k++)
			cr_assert(pr->sample[i]->location_id[k] - 1 < pr->n_location);
	}
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sample i as text: "leaf:7;caller:42 {key=num unit,key=str} 1,2,3,4",
 * a location's lines joined by '+', labels sorted as text (as sets). */
static char *sample_text(const Profile *pr, size_t i)
{
	const Perftools__Profiles__Sample *s = pr->sample[i];
	char *t = NULL, **lab;
	size_t len = 0;
	FILE *f = open_memstream(&t, &len);

	cr_assert_not_null(f);
	for (size_t k = 0; k < s->n_location_id; k++) {
		const Perftools__Profiles__Location *l = pr->location[s->location_id[k] - 1];

		for (size_t j = 0; j < l->n_line; j++)
			fprintf(f, "%s%s:%" PRId64, j ? "+" : k ? ";" : "",
				str(pr, pr->function[l->line[j]->function_id - 1]->name),
				l->line[j]->line);
	}
	fputs(" {", f);
	cr_assert_not_null(lab = calloc(s->n_label + 1, sizeof(*lab)));
	for (size_t k = 0; k < s->n_label; k++) {
		const Perftools__Profiles__Label *l = s->label[k];

		if (l->str)
			cr_assert(asprintf(&lab[k], "%s=%s", str(pr, l->key), str(pr, l->str)) > 0);
		else
			cr_assert(asprintf(&lab[k], "%s=%" PRId64 "%s%s", str(pr, l->key), l->num,
					   l->num_unit ? " " : "", str(pr, l->num_unit)) > 0);
	}
	qsort(lab, s->n_label, sizeof(*lab), strp_cmp);
	for (size_t k = 0; k < s->n_label; k++) {
		fprintf(f, "%s%s", k ? "," : "", lab[k]);
		free(lab[k]);
	}
	free(lab);
	fputs("}", f);
	for (size_t k = 0; k < s->n_value; k++)
		fprintf(f, "%s%" PRId64, k ? "," : " ", s->value[k]);
	fclose(f);
	return t;
}

/* The samples are want's n lines, in any order. */
static void expect_samples(const Profile *pr, const char *const *want, size_t n)
{
	char **got = calloc(pr->n_sample + 1, sizeof(*got));
	const char **w = calloc(n + 1, sizeof(*w));
	char *all = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&all, &len);

	cr_assert(got && w && f);
	for (size_t i = 0; i < pr->n_sample; i++)
		fprintf(f, "  %s\n", got[i] = sample_text(pr, i));
	fclose(f);
	cr_assert_eq(pr->n_sample, n, "%zu samples, not %zu:\n%s", pr->n_sample, n, all);
	memcpy(w, want, n * sizeof(*w));
	qsort(got, n, sizeof(*got), strp_cmp);
	qsort(w, n, sizeof(*w), strp_cmp);
	for (size_t i = 0; i < n; i++)
		cr_expect_str_eq(got[i], w[i], "samples:\n%s", all);
	for (size_t i = 0; i < n; i++)
		free(got[i]);
	free(got);
	free(w);
	free(all);
}

/* `go tool pprof ARGS path`: its output, which must end in success. */
static char *go_pprof(const char *args, const char *path)
{
	char cmd[512], *out = NULL;
	size_t len = 0;
	FILE *p, *o = open_memstream(&out, &len);
	int c, st;

	snprintf(cmd, sizeof(cmd), "/usr/bin/go tool pprof %s '%s' 2>&1", args, path);
	cr_assert(o && (p = popen(cmd, "r")), "%s", cmd);
	while ((c = getc(p)) != EOF)
		putc(c, o);
	st = pclose(p);
	fclose(o);
	cr_assert_eq(st, 0, "%s: status %d:\n%s", cmd, st, out);
	return out;
}

/* From -top's "Showing nodes accounting for SHOWN, P% of TOTAL total":
 * TOTAL, or SHOWN (what -tagfocus kept). */
static long long go_total(const char *args, const char *path, bool shown)
{
	char *out = go_pprof(args, path), *p = strstr(out, "Showing nodes accounting for "), *end;
	long long v;

	cr_assert_not_null(p, "no total in:\n%s", out);
	p += strlen("Showing nodes accounting for ");
	if (!shown) {
		cr_assert_not_null(p = strstr(p, "% of "), "%s", out);
		p += strlen("% of ");
	}
	v = strtoll(p, &end, 10);
	cr_assert(end > p && (*end == ',' || *end == ' ' || *end == 'B'), "%s", out);
	free(out);
	return v;
}

static void expect_in(const char *out, const char *want)
{
	cr_expect_not_null(strstr(out, want), "no \"%s\" in:\n%s", want, out);
}

/* ---- two hosts' profiles ------------------------------------------------ */

/* Input 1 is host h1's, input 2 host h2's: both run alloc (lines 7 and
 * 8), Worker.run and <module>; only_h1 and only_h2 are theirs alone.
 * h2's samples 0 and 2 are of one stack and labels. */
static const struct hk_pprof_frame fa[] = {
	{ "alloc", "/app/work.py", 7, 5 },
	{ "Worker.run", "/app/work.py", 42, 30 },
	{ "<module>", "/app/main.py", 10, 1 },
};
static const struct hk_pprof_frame fb[] = {
	{ "alloc", "/app/work.py", 8, 5 },
	{ "Worker.run", "/app/work.py", 42, 30 },
	{ "<module>", "/app/main.py", 10, 1 },
};
static const struct hk_pprof_frame f1[] = {
	{ "only_h1", "/app/h1.py", 3, 2 },
	{ "<module>", "/app/main.py", 10, 1 },
};
static const struct hk_pprof_frame f2[] = {
	{ "only_h2", "/app/h2.py", 4, 2 },
	{ "<module>", "/app/main.py", 10, 1 },
};
static const int64_t v1a[] = { 1, 100, 2, 200 }, v1b[] = { 3, 300, 3, 300 },
		     v1c[] = { 0, 0, 5, 500 }, v2a[] = { 10, 1000, 20, 2000 },
		     v2b[] = { 4, 400, 4, 400 }, v2c[] = { 1, 1, 1, 1 },
		     vzero[] = { 0, 0, 0, 0 };
static const struct hk_pprof_label l1a[] = {
	{ "host", "h1", 0, NULL }, { "thread", "MainThread", 0, NULL } };
static const struct hk_pprof_label l1b[] = {
	{ "host", "h1", 0, NULL }, { "thread", "Worker-1", 0, NULL },
	{ "pid", NULL, 1234, NULL } };
static const struct hk_pprof_label l1c[] = { { "host", "h1", 0, NULL } };
/* h2's labels in another order: equal as sets */
static const struct hk_pprof_label l2a[] = {
	{ "thread", "MainThread", 0, NULL }, { "host", "h2", 0, NULL } };
static const struct hk_pprof_label l2c[] = {
	{ "host", "h2", 0, NULL }, { "thread", "MainThread", 0, NULL } };
static const struct hk_pprof_label l2b[] = {
	{ "host", "h2", 0, NULL }, { "block", NULL, 4096, "bytes" } };
static const char *com1[] = { "hawk-bpf test", "host h1" };
static const char *com2[] = { "host h2", "hawk-bpf test" };

static const struct hk_pprof_sample s1[] = {
	{ fa, 3, v1a, l1a, 2 }, { fb, 3, v1b, l1b, 3 }, { f1, 2, v1c, l1c, 1 },
	{ fa, 3, vzero, l1a, 2 },
};
static const struct hk_pprof_sample s2[] = {
	{ fa, 3, v2a, l2a, 2 }, { f2, 2, v2b, l2b, 2 }, { fa, 3, v2c, l2c, 2 },
};

static struct hk_pprof host(int h)
{
	return (struct hk_pprof){
		.types = types, .units = units, .ntypes = 4,
		.default_type = "inuse_space",
		.period_type = "space", .period_unit = "bytes", .period = 524288,
		.time_nanos = h == 1 ? 1000000000000 : 1001000000000,
		.duration_nanos = h == 1 ? 2000000000 : 3000000000,
		.comments = h == 1 ? com1 : com2, .ncomments = 2,
		.samples = h == 1 ? s1 : s2, .nsamples = h == 1 ? 4 : 3,
	};
}

static void two_hosts(struct img in[2])
{
	struct hk_pprof p1 = host(1), p2 = host(2);

	in[0] = img_of(&p1);
	in[1] = img_of(&p2);
}

static const char *const want_two[] = {
	"alloc:7;Worker.run:42;<module>:10 {host=h1,thread=MainThread} 1,100,2,200",
	"alloc:8;Worker.run:42;<module>:10 {host=h1,pid=1234,thread=Worker-1} 3,300,3,300",
	"only_h1:3;<module>:10 {host=h1} 0,0,5,500",
	"alloc:7;Worker.run:42;<module>:10 {host=h2,thread=MainThread} 11,1001,21,2001",
	"only_h2:4;<module>:10 {block=4096 bytes,host=h2} 4,400,4,400",
};

Test(pprof_merge, two_hosts_deduplicated_and_summed, .fini = cleanup)
{
	struct img in[2], m;
	Profile *pr;

	two_hosts(in);
	m = merged(in, 2, NULL, 0);
	pr = unpack(&m);
	check_tables(pr);
	expect_samples(pr, want_two, 5);
	/* alloc, Worker.run, <module>, only_h1, only_h2; alloc:7, alloc:8,
	 * Worker.run:42, <module>:10, only_h1:3, only_h2:4 */
	cr_expect_eq(pr->n_function, 5);
	cr_expect_eq(pr->n_location, 6);
	cr_expect_eq(pr->n_mapping, 1);
	cr_expect(pr->mapping[0]->has_functions && pr->mapping[0]->has_filenames &&
		  pr->mapping[0]->has_line_numbers);
	for (size_t i = 0; i < pr->n_function; i++) {
		const Perftools__Profiles__Function *f = pr->function[i];

		if (!strcmp(str(pr, f->name), "alloc")) {
			cr_expect_str_eq(str(pr, f->filename), "/app/work.py");
			cr_expect_eq(f->start_line, 5);
			cr_expect_eq(f->system_name, 0);
		}
	}
	cr_assert_eq(pr->n_sample_type, 4);
	for (int i = 0; i < 4; i++) {
		cr_expect_str_eq(str(pr, pr->sample_type[i]->type), types[i]);
		cr_expect_str_eq(str(pr, pr->sample_type[i]->unit), units[i]);
	}
	cr_expect_str_eq(str(pr, pr->default_sample_type), "inuse_space");
	cr_assert_not_null(pr->period_type);
	cr_expect_str_eq(str(pr, pr->period_type->type), "space");
	cr_expect_str_eq(str(pr, pr->period_type->unit), "bytes");
	cr_expect_eq(pr->period, 524288);
	/* h1 from 1000 s to 1002 s, h2 from 1001 s to 1004 s */
	cr_expect_eq(pr->time_nanos, 1000000000000);
	cr_expect_eq(pr->duration_nanos, 4000000000);
	cr_assert_eq(pr->n_comment, 3);
	cr_expect_str_eq(str(pr, pr->comment[0]), "hawk-bpf test");
	cr_expect_str_eq(str(pr, pr->comment[1]), "host h1");
	cr_expect_str_eq(str(pr, pr->comment[2]), "host h2");
	perftools__profiles__profile__free_unpacked(pr, NULL);
}

Test(pprof_merge, one_input_twice_sums_every_sample, .fini = cleanup)
{
	static const char *const want[] = {
		"alloc:7;Worker.run:42;<module>:10 {host=h1,thread=MainThread} 2,200,4,400",
		"alloc:8;Worker.run:42;<module>:10 {host=h1,pid=1234,thread=Worker-1} 6,600,6,600",
		"only_h1:3;<module>:10 {host=h1} 0,0,10,1000",
	};
	struct hk_pprof p = host(1);
	struct img in[2], m;
	Profile *pr;

	in[0] = in[1] = img_of(&p);
	m = merged(in, 2, NULL, 0);
	pr = unpack(&m);
	check_tables(pr);
	expect_samples(pr, want, 3);
	cr_expect_eq(pr->n_function, 4);
	cr_expect_eq(pr->n_location, 5);
	cr_expect_eq(pr->n_comment, 2);
	cr_expect_eq(pr->duration_nanos, 2000000000);
	perftools__profiles__profile__free_unpacked(pr, NULL);

	/* one input alone: itself, but for the all-zero sample */
	m = merged(in, 1, NULL, 0);
	pr = unpack(&m);
	cr_expect_eq(pr->n_sample, 3);
	perftools__profiles__profile__free_unpacked(pr, NULL);
}

Test(pprof_merge, extra_labels_do_not_replace_a_samples_own, .fini = cleanup)
{
	static const struct hk_pprof_label extra[] = {
		{ "host", "override", 0, NULL }, { "run", "r7", 0, NULL },
		{ "shard", NULL, 3, NULL }, { "pid", NULL, 99, NULL },
	};
	static const char *const want[] = {
		"alloc:7;Worker.run:42;<module>:10 {host=h1,pid=99,run=r7,shard=3,thread=MainThread} 1,100,2,200",
		"alloc:8;Worker.run:42;<module>:10 {host=h1,pid=1234,run=r7,shard=3,thread=Worker-1} 3,300,3,300",
		"only_h1:3;<module>:10 {host=h1,pid=99,run=r7,shard=3} 0,0,5,500",
		"alloc:7;Worker.run:42;<module>:10 {host=override,pid=99,run=r7,shard=3,thread=MainThread} 9,9,9,9",
	};
	static const int64_t v[] = { 9, 9, 9, 9 };
	static const struct hk_pprof_label lt[] = { { "thread", "MainThread", 0, NULL } };
	struct hk_pprof_sample s[] = { { fa, 3, v, lt, 1 } };
	struct hk_pprof p1 = host(1), p3 = { .types = types, .units = units, .ntypes = 4,
					     .samples = s, .nsamples = 1 };
	struct img in[2], m;
	Profile *pr;

	in[0] = img_of(&p1);
	in[1] = img_of(&p3);
	m = merged(in, 2, extra, 4);
	pr = unpack(&m);
	check_tables(pr);
	/* labels ordered by key, as text */
	for (size_t i = 0; i < pr->n_sample; i++)
		for (size_t k = 1; k < pr->sample[i]->n_label; k++)
			cr_expect_leq(strcmp(str(pr, pr->sample[i]->label[k - 1]->key),
					     str(pr, pr->sample[i]->label[k]->key)), 0);
	expect_samples(pr, want, 4);
	perftools__profiles__profile__free_unpacked(pr, NULL);
}

Test(pprof_merge, go_tool_pprof_totals_focus_and_labels, .fini = cleanup)
{
	static const struct hk_pprof_label extra[] = { { "run", "r7", 0, NULL } };
	static const char *const idx[] = { "inuse_objects", "inuse_space", "alloc_objects",
					   "alloc_space" };
	struct img in[2], m;
	const char *p1, *p2, *pm;
	char args[128], *out;

	two_hosts(in);
	m = merged(in, 2, extra, 1);
	p1 = scratch(in[0].b, in[0].n);
	p2 = scratch(in[1].b, in[1].n);
	pm = scratch(m.b, m.n);
	for (int i = 0; i < 4; i++) {
		long long t1, t2, tm, f1;

		/* bytes in bytes, not kB: totals to compare */
		snprintf(args, sizeof(args), "-top %s -sample_index=%s", i & 1 ? "-unit=B" : "",
			 idx[i]);
		t1 = go_total(args, p1, false);
		t2 = go_total(args, p2, false);
		tm = go_total(args, pm, false);
		cr_expect_eq(tm, t1 + t2, "%s: %lld + %lld != %lld", idx[i], t1, t2, tm);
		snprintf(args, sizeof(args), "-top %s -sample_index=%s -tagfocus host=h1",
			 i & 1 ? "-unit=B" : "", idx[i]);
		f1 = go_total(args, pm, true);
		cr_expect_eq(f1, t1, "%s: host h1's %lld != %lld", idx[i], f1, t1);
	}
	cr_expect_eq(go_total("-top -sample_index=alloc_objects", pm, false), 10 + 25);
	cr_expect_eq(go_total("-top -sample_index=alloc_objects -tagfocus host=h2", pm, true), 25);
	out = go_pprof("-raw", pm);
	expect_in(out, "PeriodType: space bytes");
	expect_in(out, "Period: 524288");
	expect_in(out, "Duration: 4s");
	expect_in(out, "inuse_objects/count inuse_space/bytes[dflt] alloc_objects/count alloc_space/bytes");
	expect_in(out, "host:[h1]");
	expect_in(out, "host:[h2]");
	expect_in(out, "run:[r7]");
	expect_in(out, "thread:[Worker-1]");
	expect_in(out, "pid:[1234]");
	expect_in(out, "block:[4096 bytes]");
	expect_in(out, "         11       1001         21       2001: ");
	expect_in(out, "only_h1 /app/h1.py:3 s=2");
	expect_in(out, "only_h2 /app/h2.py:4 s=2");
	expect_in(out, "alloc /app/work.py:8 s=5");
	free(out);
	out = go_pprof("-comments", pm);
	expect_in(out, "hawk-bpf test\nhost h1\nhost h2");
	free(out);
}

/* ---- what hawk-bpf does not write --------------------------------------- */

/* A profile as other tools write them: sparse ids out of order, mappings
 * with addresses, inlined lines, system names, a location without a
 * mapping and one with no lines. */
static struct img foreign(void)
{
	static char *strs[] = { "", "cpu", "nanoseconds", "main.f", "main.f_sys", "/src/f.go",
				"main.g", "/bin/app", "abc123", "libc.so", "samples",
				"count", "a comment" };
	Perftools__Profiles__ValueType st[2], pt, *stp[2] = { &st[0], &st[1] };
	Perftools__Profiles__Function fn[2], *fnp[2] = { &fn[0], &fn[1] };
	Perftools__Profiles__Mapping mp[2], *mpp[2] = { &mp[0], &mp[1] };
	Perftools__Profiles__Line ln[3], *l0[2] = { &ln[0], &ln[1] }, *l1[1] = { &ln[2] };
	Perftools__Profiles__Location lc[4], *lcp[4] = { &lc[0], &lc[1], &lc[2], &lc[3] };
	Perftools__Profiles__Sample sm[2], *smp[2] = { &sm[0], &sm[1] };
	static uint64_t ids0[] = { 900, 70, 5 }, ids1[] = { 6, 5 };
	static int64_t v0[] = { 1, 1000 }, v1[] = { 2, 2000 }, com[] = { 12 };
	Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;

	for (int i = 0; i < 2; i++) {
		perftools__profiles__value_type__init(&st[i]);
		perftools__profiles__function__init(&fn[i]);
		perftools__profiles__mapping__init(&mp[i]);
		perftools__profiles__sample__init(&sm[i]);
	}
	for (int i = 0; i < 3; i++)
		perftools__profiles__line__init(&ln[i]);
	for (int i = 0; i < 4; i++)
		perftools__profiles__location__init(&lc[i]);
	perftools__profiles__value_type__init(&pt);
	st[0].type = 10, st[0].unit = 11, st[1].type = 1, st[1].unit = 2;
	pt.type = 1, pt.unit = 2;
	fn[0].id = 40, fn[0].name = 3, fn[0].system_name = 4, fn[0].filename = 5,
	fn[0].start_line = 12;
	fn[1].id = 3, fn[1].name = 6, fn[1].system_name = 6, fn[1].filename = 5;
	mp[0].id = 8, mp[0].memory_start = 0x400000, mp[0].memory_limit = 0x500000,
	mp[0].file_offset = 0x1000, mp[0].filename = 7, mp[0].build_id = 8,
	mp[0].has_functions = 1;
	mp[1].id = 2, mp[1].memory_start = 0x7f0000, mp[1].memory_limit = 0x7f8000,
	mp[1].filename = 9;
	ln[0].function_id = 3, ln[0].line = 20;		/* g inlined into f */
	ln[1].function_id = 40, ln[1].line = 14;
	ln[2].function_id = 40, ln[2].line = 15;
	lc[0].id = 900, lc[0].mapping_id = 8, lc[0].address = 0x401234, lc[0].n_line = 2,
	lc[0].line = l0;
	lc[1].id = 70, lc[1].mapping_id = 8, lc[1].address = 0x401300, lc[1].n_line = 1,
	lc[1].line = l1;
	lc[2].id = 5, lc[2].mapping_id = 2, lc[2].address = 0x7f0010;	/* no lines */
	lc[3].id = 6, lc[3].n_line = 1, lc[3].line = l1, lc[3].is_folded = 1;	/* no mapping */
	sm[0].n_location_id = 3, sm[0].location_id = ids0, sm[0].n_value = 2, sm[0].value = v0;
	sm[1].n_location_id = 2, sm[1].location_id = ids1, sm[1].n_value = 2, sm[1].value = v1;
	p.n_sample_type = 2, p.sample_type = stp;
	p.n_sample = 2, p.sample = smp;
	p.n_mapping = 2, p.mapping = mpp;
	p.n_location = 4, p.location = lcp;
	p.n_function = 2, p.function = fnp;
	p.n_string_table = sizeof(strs) / sizeof(strs[0]), p.string_table = strs;
	p.period_type = &pt, p.period = 10000000;
	p.time_nanos = 5, p.duration_nanos = 10;
	p.n_comment = 1, p.comment = com;
	p.drop_frames = 9;	/* "libc.so", as good a regexp as any */
	return pack(&p);
}

Test(pprof_merge, what_other_tools_write_comes_through, .fini = cleanup)
{
	struct img in[2], m;
	Profile *pr;
	char *t;

	in[0] = foreign();		/* plain */
	in[1] = gzip(in[0].b, in[0].n);
	m = merged(in, 2, NULL, 0);
	pr = unpack(&m);
	check_tables(pr);
	cr_assert_eq(pr->n_sample, 2);
	cr_assert_eq(pr->n_location, 4);
	cr_assert_eq(pr->n_mapping, 2);
	cr_assert_eq(pr->n_function, 2);
	for (size_t i = 0; i < pr->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pr->sample[i];
		const Perftools__Profiles__Location *l0 = pr->location[s->location_id[0] - 1];

		if (s->n_location_id == 3) {
			const Perftools__Profiles__Location *l2 = pr->location[s->location_id[2] - 1];
			const Perftools__Profiles__Mapping *mp = pr->mapping[l0->mapping_id - 1];
			const Perftools__Profiles__Function *g =
				pr->function[l0->line[0]->function_id - 1],
				*f = pr->function[l0->line[1]->function_id - 1];

			cr_expect_eq(s->value[0], 2);
			cr_expect_eq(s->value[1], 2000);
			cr_expect_eq(l0->address, 0x401234);
			cr_assert_eq(l0->n_line, 2);
			cr_expect_eq(l0->line[0]->line, 20);
			cr_expect_eq(l0->line[1]->line, 14);
			cr_expect_str_eq(str(pr, g->name), "main.g");
			cr_expect_str_eq(str(pr, g->system_name), "main.g");
			cr_expect_str_eq(str(pr, f->name), "main.f");
			cr_expect_str_eq(str(pr, f->system_name), "main.f_sys");
			cr_expect_str_eq(str(pr, f->filename), "/src/f.go");
			cr_expect_eq(f->start_line, 12);
			cr_expect_eq(mp->memory_start, 0x400000);
			cr_expect_eq(mp->memory_limit, 0x500000);
			cr_expect_eq(mp->file_offset, 0x1000);
			cr_expect_str_eq(str(pr, mp->filename), "/bin/app");
			cr_expect_str_eq(str(pr, mp->build_id), "abc123");
			cr_expect(mp->has_functions && !mp->has_filenames);
			cr_expect_eq(l2->n_line, 0);
			cr_expect_eq(l2->address, 0x7f0010);
			cr_expect_str_eq(str(pr, pr->mapping[l2->mapping_id - 1]->filename), "libc.so");
		} else {
			cr_assert_eq(s->n_location_id, 2);
			cr_expect_eq(s->value[0], 4);
			cr_expect_eq(s->value[1], 4000);
			cr_expect_eq(l0->mapping_id, 0);
			cr_expect(l0->is_folded);
		}
	}
	cr_expect_str_eq(str(pr, pr->sample_type[0]->type), "samples");
	cr_expect_str_eq(str(pr, pr->period_type->type), "cpu");
	cr_expect_eq(pr->period, 10000000);
	cr_expect_str_eq(str(pr, pr->drop_frames), "libc.so");
	cr_expect_eq(pr->keep_frames, 0);
	cr_expect_eq(pr->time_nanos, 5);
	cr_expect_eq(pr->duration_nanos, 10);
	cr_assert_eq(pr->n_comment, 1);
	cr_expect_str_eq(str(pr, pr->comment[0]), "a comment");
	perftools__profiles__profile__free_unpacked(pr, NULL);

	/* and go tool pprof reads it */
	t = go_pprof("-raw -symbolize=none", scratch(m.b, m.n));
	expect_in(t, "0x401234 M=1 main.g /src/f.go:20 s=0\n");
	expect_in(t, "main.f /src/f.go:14 s=12(main.f_sys)\n");
	expect_in(t, "[F] main.f /src/f.go:15 s=12(main.f_sys)\n");
	expect_in(t, "0x7f0010 M=2 \n");
	expect_in(t, "PeriodType: cpu nanoseconds");
	free(t);
}

/* The merge is canonical: merged again alone (with the same extra
 * labels), it comes back byte for byte, however its inputs ordered their
 * strings and labels. */
Test(pprof_merge, merging_a_merge_alone_changes_nothing, .fini = cleanup)
{
	static const struct hk_pprof_label extra[] = {
		{ "zone", "z1", 0, NULL }, { "host", "override", 0, NULL },
		{ "shard", NULL, 3, "n" },
	};
	struct img in[3], m1, m2, r1, r2;

	two_hosts(in);
	in[2] = foreign();
	for (size_t n = 1; n <= 2; n++) {
		m1 = merged(in, n, extra, 3);
		m2 = merged(&m1, 1, extra, 3);
		r1 = gunzip(m1.b, m1.n);
		r2 = gunzip(m2.b, m2.n);
		cr_expect(r1.n == r2.n && !memcmp(r1.b, r2.b, r1.n), "%zu inputs", n);
	}
	m1 = merged(in + 2, 1, extra, 3);
	m2 = merged(&m1, 1, extra, 3);
	r1 = gunzip(m1.b, m1.n);
	r2 = gunzip(m2.b, m2.n);
	cr_expect(r1.n == r2.n && !memcmp(r1.b, r2.b, r1.n), "foreign");
}

/* ---- refusals ----------------------------------------------------------- */

Test(pprof_merge, sample_types_must_agree, .fini = cleanup)
{
	static const char *t2[] = { "inuse_objects", "inuse_space" };
	static const char *u2[] = { "count", "kilobytes" };
	static const int64_t v[] = { 1, 2 };
	struct hk_pprof_sample s[] = { { fa, 3, v, NULL, 0 } };
	struct hk_pprof p1 = host(1), p3 = { .types = t2, .units = units, .ntypes = 2,
					     .samples = s, .nsamples = 1 };
	struct img in[3];

	in[0] = in[1] = img_of(&p1);
	in[2] = img_of(&p3);
	cr_expect_str_eq(refused(in, 3),
		"input 3: sample types inuse_objects/count,inuse_space/bytes differ from input 1's "
		"inuse_objects/count,inuse_space/bytes,alloc_objects/count,alloc_space/bytes");
	cr_expect_eq(errno, EINVAL);
	/* units too */
	p3.units = u2;
	in[1] = img_of(&p3);
	in[0] = in[1];
	p3.units = units;
	in[1] = img_of(&p3);
	cr_expect_str_eq(refused(in, 2),
		"input 2: sample types inuse_objects/count,inuse_space/bytes differ from input 1's "
		"inuse_objects/count,inuse_space/kilobytes");
	/* order too */
	p3.types = types + 1;
	p3.units = units + 1;
	in[0] = img_of(&p3);
	p3.types = t2;
	p3.units = units;
	in[1] = img_of(&p3);
	cr_expect_str_eq(refused(in, 2),
		"input 2: sample types inuse_objects/count,inuse_space/bytes differ from input 1's "
		"inuse_space/bytes,alloc_objects/count");
}

Test(pprof_merge, period_type_must_agree_where_set, .fini = cleanup)
{
	struct hk_pprof p1 = host(1), p2 = host(2), p3 = host(2);
	struct img in[3], m;
	Profile *pr;

	p1.period_type = p1.period_unit = NULL;
	p1.period = 0;
	p2.period = 1000;
	p3.period_type = "cpu";
	p3.period_unit = "nanoseconds";
	in[0] = img_of(&p1);		/* none */
	in[1] = img_of(&p2);		/* space/bytes, 1000 */
	in[2] = img_of(&p3);		/* cpu/nanoseconds */
	cr_expect_str_eq(refused(in, 3),
			 "input 3: period type cpu/nanoseconds differs from input 2's space/bytes");
	m = merged(in, 2, NULL, 0);
	pr = unpack(&m);
	cr_assert_not_null(pr->period_type);
	cr_expect_str_eq(str(pr, pr->period_type->type), "space");
	cr_expect_eq(pr->period, 1000);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	/* the first input's period, not a later one's */
	in[0] = img_of(&p3);
	p3.period = 7;
	in[1] = img_of(&p3);
	m = merged(in, 2, NULL, 0);
	pr = unpack(&m);
	cr_expect_eq(pr->period, 524288);
	perftools__profiles__profile__free_unpacked(pr, NULL);
}

/* A valid small profile by hand, which the cases below break a field of. */
struct hand {
	char *strs[5];
	Perftools__Profiles__ValueType st, *stp[1];
	Perftools__Profiles__Function fn[2], *fnp[2];
	Perftools__Profiles__Mapping mp, *mpp[1];
	Perftools__Profiles__Line ln, *lnp[1];
	Perftools__Profiles__Location lc[2], *lcp[2];
	Perftools__Profiles__Label lb, *lbp[1];
	Perftools__Profiles__Sample sm, *smp[1];
	uint64_t ids[2];
	int64_t v[2];
	Profile p;
};

static void hand_init(struct hand *h)
{
	static const char *s[] = { "", "objects", "count", "f", "/f.py" };

	memset(h, 0, sizeof(*h));
	memcpy(h->strs, s, sizeof(s));
	perftools__profiles__value_type__init(&h->st);
	perftools__profiles__function__init(&h->fn[0]);
	perftools__profiles__function__init(&h->fn[1]);
	perftools__profiles__mapping__init(&h->mp);
	perftools__profiles__line__init(&h->ln);
	perftools__profiles__location__init(&h->lc[0]);
	perftools__profiles__location__init(&h->lc[1]);
	perftools__profiles__label__init(&h->lb);
	perftools__profiles__sample__init(&h->sm);
	perftools__profiles__profile__init(&h->p);
	h->st.type = 1, h->st.unit = 2, h->stp[0] = &h->st;
	h->fn[0].id = 1, h->fn[0].name = 3, h->fn[0].filename = 4;
	h->fn[1].id = 2, h->fn[1].name = 3, h->fn[1].filename = 4, h->fn[1].start_line = 9;
	h->fnp[0] = &h->fn[0], h->fnp[1] = &h->fn[1];
	h->mp.id = 1, h->mpp[0] = &h->mp;
	h->ln.function_id = 1, h->ln.line = 3, h->lnp[0] = &h->ln;
	h->lc[0].id = 1, h->lc[0].mapping_id = 1, h->lc[0].n_line = 1, h->lc[0].line = h->lnp;
	h->lc[1].id = 2, h->lc[1].n_line = 1, h->lc[1].line = h->lnp;
	h->lcp[0] = &h->lc[0], h->lcp[1] = &h->lc[1];
	h->lb.key = 3, h->lb.str = 4, h->lbp[0] = &h->lb;
	h->ids[0] = 1, h->ids[1] = 2;
	h->v[0] = 5;
	h->sm.n_location_id = 2, h->sm.location_id = h->ids, h->sm.n_value = 1,
	h->sm.value = h->v, h->sm.n_label = 1, h->sm.label = h->lbp, h->smp[0] = &h->sm;
	h->p.n_sample_type = 1, h->p.sample_type = h->stp;
	h->p.n_sample = 1, h->p.sample = h->smp;
	h->p.n_mapping = 1, h->p.mapping = h->mpp;
	h->p.n_location = 2, h->p.location = h->lcp;
	h->p.n_function = 2, h->p.function = h->fnp;
	h->p.n_string_table = 5, h->p.string_table = h->strs;
}

/* Found by tests/fuzz/pprof_merge_fuzz.c: locations without lines, none
 * with lines before them, compared as equal: NULL + 0 in loc_eq (UBSan). */
Test(pprof_merge, locations_without_lines, .fini = cleanup)
{
	struct hand h;
	struct img in[1], m;
	Profile *pr;

	hand_init(&h);
	h.lc[0].n_line = h.lc[1].n_line = 0;
	h.lc[0].mapping_id = 0;
	h.lc[0].address = h.lc[1].address = 0x10;
	in[0] = pack(&h.p);
	m = merged(in, 1, NULL, 0);
	pr = unpack(&m);
	check_tables(pr);
	cr_assert_eq(pr->n_location, 1);
	cr_expect_eq(pr->location[0]->address, 0x10);
	cr_expect_eq(pr->location[0]->n_line, 0);
	cr_expect_eq(pr->n_function, 0);
	cr_expect_eq(pr->n_mapping, 0);
	cr_assert_eq(pr->n_sample, 1);
	cr_assert_eq(pr->sample[0]->n_location_id, 2);
	cr_expect(pr->sample[0]->location_id[0] == 1 && pr->sample[0]->location_id[1] == 1);
	perftools__profiles__profile__free_unpacked(pr, NULL);
}

/* The hand-made profile after input 1 (a valid one): refused with want. */
static void expect_malformed(struct hand *h, const char *want)
{
	struct hand ok;
	struct img in[2];

	hand_init(&ok);
	in[0] = pack(&ok.p);
	in[1] = pack(&h->p);
	cr_expect_str_eq(refused(in, 2), want);
	cr_expect_eq(errno, EINVAL);
	/* gzipped, the same */
	in[1] = gzip(in[1].b, in[1].n);
	cr_expect_str_eq(refused(in, 2), want);
}

Test(pprof_merge, malformed_profiles_refused, .fini = cleanup)
{
	struct hand h;
	struct img in[1];
	const char *pre = "input 2: malformed profile: ";
	char want[256];

#define CASE(change, why) do {						\
		hand_init(&h);						\
		change;							\
		snprintf(want, sizeof(want), "%s%s", pre, why);		\
		expect_malformed(&h, want);				\
	} while (0)

	hand_init(&h);
	in[0] = pack(&h.p);
	{
		struct img m = merged(in, 1, NULL, 0);
		Profile *pr = unpack(&m);

		cr_expect_eq(pr->n_sample, 1);
		perftools__profiles__profile__free_unpacked(pr, NULL);
	}
	CASE(h.strs[0] = "x", "its string table does not start with \"\"");
	CASE(h.p.n_string_table = 0, "its string table does not start with \"\"");
	CASE(h.fn[1].name = 5, "function 2: string 5 of a table of 5");
	CASE(h.fn[0].system_name = -1, "function 1: string -1 of a table of 5");
	CASE(h.fn[0].filename = INT64_MAX, "function 1: string 9223372036854775807 of a table of 5");
	CASE(h.st.unit = 77, "sample type 1: string 77 of a table of 5");
	CASE(h.lb.key = 6, "label of sample 1: string 6 of a table of 5");
	CASE(h.lb.str = -3, "label of sample 1: string -3 of a table of 5");
	CASE(h.lb.num_unit = 5, "label of sample 1: string 5 of a table of 5");
	CASE(h.mp.filename = 5, "mapping 1: string 5 of a table of 5");
	CASE(h.mp.build_id = 5, "mapping 1: string 5 of a table of 5");
	CASE(h.p.drop_frames = 5, "drop_frames 1: string 5 of a table of 5");
	CASE(h.p.default_sample_type = 5, "default_sample_type 1: string 5 of a table of 5");
	CASE(h.ids[1] = 7, "sample 1 has location 7, which is not in the profile");
	CASE(h.ids[1] = 0, "sample 1 has location 0, which is not in the profile");
	CASE(h.ln.function_id = 3, "location 1 has function 3, which is not in the profile");
	CASE(h.ln.function_id = 0, "location 1 has function 0, which is not in the profile");
	CASE(h.lc[0].mapping_id = 2, "location 1 has mapping 2, which is not in the profile");
	CASE(h.fn[1].id = 1, "two functions with id 1");
	CASE(h.lc[0].id = 2, "two locations with id 2");
	CASE((h.lc[0].id = 0, h.ids[0] = 0), "a location with id 0");
	CASE(h.mp.id = 0, "a mapping with id 0");
	CASE(h.sm.n_value = 2, "sample 1 has 2 values for 1 sample types");
	CASE(h.sm.n_value = 0, "sample 1 has 0 values for 1 sample types");
#undef CASE
	/* a period type of "" and "" under other indices than 0 is none */
	{
		Perftools__Profiles__ValueType pt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
		struct img m;
		Profile *pr;

		hand_init(&h);
		h.strs[2] = "";
		h.strs[1] = "";
		pt.type = 1, pt.unit = 2;
		h.p.period_type = &pt;
		in[0] = pack(&h.p);
		m = merged(in, 1, NULL, 0);
		pr = unpack(&m);
		cr_expect_null(pr->period_type);
		check_tables(pr);
		perftools__profiles__profile__free_unpacked(pr, NULL);
	}
	/* a period type's strings */
	{
		Perftools__Profiles__ValueType pt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;

		hand_init(&h);
		pt.type = 1, pt.unit = 9;
		h.p.period_type = &pt;
		expect_malformed(&h, "input 2: malformed profile: period_type 1: string 9 of a table of 5");
	}
}

Test(pprof_merge, garbage_and_truncated_inputs_refused, .fini = cleanup)
{
	struct hk_pprof p1 = host(1);
	struct img in[2], raw;
	uint8_t junk[4096];
	unsigned seed = 12345;

	in[0] = img_of(&p1);
	raw = gunzip(in[0].b, in[0].n);

	/* every prefix of the gzip image: the stream never ends */
	for (size_t n = 0; n < in[0].n; n++) {
		in[1] = (struct img){ in[0].b, n };
		refused(in, 2);
		cr_assert(!strncmp(err, "input 2: not a profile (", 24), "%zu: %s", n, err);
		if (n >= 10)
			cr_assert(strstr(err, "gzip: "), "%zu: %s", n, err);
	}
	/* every prefix of the plain one: refused, or a profile of what it has */
	for (size_t n = 0; n < raw.n; n++) {
		FILE *f = fopen("/dev/null", "w");

		in[1] = (struct img){ raw.b, n };
		if (merge_to(f, in, 2, NULL, 0))
			cr_assert(!strncmp(err, "input 2: ", 9) && err[9], "%zu: %s", n, err);
		fclose(f);
	}
	in[1] = (struct img){ raw.b, 0 };
	cr_expect_str_eq(refused(in, 2), "input 2: not a profile (empty)");
	/* every byte of the plain image changed, and of the gzip one */
	for (int z = 0; z < 2; z++) {
		struct img src = z ? in[0] : raw;
		char *b = malloc(src.n);

		cr_assert_not_null(b);
		for (size_t i = 0; i < src.n; i++) {
			FILE *f = fopen("/dev/null", "w");

			memcpy(b, src.b, src.n);
			b[i] ^= (char)(0x5a ^ (i & 0xa5));
			in[1] = (struct img){ b, src.n };
			if (merge_to(f, in, 2, NULL, 0))
				cr_assert(!strncmp(err, "input 2: ", 9) && err[9] && !strchr(err, '\n'),
					  "byte %zu: %s", i, err);
			fclose(f);
		}
		free(b);
	}
	/* random bytes, with and without gzip's magic */
	for (int k = 0; k < 300; k++) {
		size_t n = (size_t)rand_r(&seed) % sizeof(junk);

		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)rand_r(&seed);
		if (k & 1 && n >= 2)
			junk[0] = 0x1f, junk[1] = 0x8b;
		in[1] = (struct img){ (char *)junk, n };
		refused(in, 2);
		cr_assert(!strncmp(err, "input 2: ", 9), "%s", err);
	}
	/* what zlib says */
	junk[0] = 0x1f, junk[1] = 0x8b, junk[2] = 7;
	in[1] = (struct img){ (char *)junk, 20 };
	cr_expect_str_eq(refused(in, 2), "input 2: not a profile (gzip: unknown compression method)");
	memcpy(junk, "\x0a\x02\x08", 3);
	in[1] = (struct img){ (char *)junk, 3 };
	cr_expect_str_eq(refused(in, 2), "input 2: not a profile (protobuf: malformed or "
			 "truncated message, or out of memory)");
}

Test(pprof_merge, gzip_members_end_to_end, .fini = cleanup)
{
	struct hk_pprof p1 = host(1);
	struct img in[2], raw, a, b, m;
	char *cat;
	Profile *pr;

	in[0] = img_of(&p1);
	raw = gunzip(in[0].b, in[0].n);
	a = gzip(raw.b, raw.n / 2);
	b = gzip(raw.b + raw.n / 2, raw.n - raw.n / 2);
	cr_assert_not_null(cat = malloc(a.n + b.n + 3));
	memcpy(cat, a.b, a.n);
	memcpy(cat + a.n, b.b, b.n);
	in[1] = (struct img){ cat, a.n + b.n };
	m = merged(in, 2, NULL, 0);
	pr = unpack(&m);
	cr_expect_eq(pr->n_sample, 3);
	cr_expect_eq(pr->sample[0]->value[0], 2);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	/* but not with garbage after */
	memcpy(cat + a.n + b.n, "abc", 3);
	in[1] = (struct img){ cat, a.n + b.n + 3 };
	cr_expect_str_eq(refused(in, 2),
			 "input 2: not a profile (gzip: 3 bytes after the end of the stream)");
	in[1] = (struct img){ cat, a.n + 1 };
	cr_expect_str_eq(refused(in, 2),
			 "input 2: not a profile (gzip: 1 byte after the end of the stream)");
}

Test(pprof_merge, size_limit, .fini = cleanup)
{
	size_t big = ((size_t)1 << 30) + 1;
	struct hk_pprof p1 = host(1);
	struct img in[2], zeros, raw;
	char *zb, want[64];
	void *map;

	/* a plain input over 1 GiB, refused before a byte past the magic is read */
	map = mmap(NULL, big, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(map, MAP_FAILED);
	in[0] = img_of(&p1);
	in[1] = (struct img){ map, big };
	cr_expect_str_eq(refused(in, 2), "input 2: over 1 GiB uncompressed");
	cr_expect_eq(errno, EFBIG);
	munmap(map, big);

	/* gzip past a lowered limit; right at it is fine */
	hk_pprof_merge_max = 1 << 20;
	cr_assert_not_null(zb = calloc(1, 3 << 20));
	zeros = gzip(zb, (1 << 20) + 1);
	in[1] = zeros;
	cr_expect_str_eq(refused(in, 2), "input 2: over 1 MiB uncompressed");
	zeros = gzip(zb, 3 << 20);
	in[1] = zeros;
	cr_expect_str_eq(refused(in, 2), "input 2: over 1 MiB uncompressed");
	raw = gunzip(in[0].b, in[0].n);
	hk_pprof_merge_max = raw.n;
	merged(in, 1, NULL, 0);
	in[1] = raw;
	merged(in, 2, NULL, 0);
	hk_pprof_merge_max = raw.n - 1;
	snprintf(want, sizeof(want), "input 1: over %zu bytes uncompressed", raw.n - 1);
	cr_expect_str_eq(refused(in, 1), want);
	in[0] = raw;
	cr_expect_str_eq(refused(in, 1), want);
	free(zb);
}

Test(pprof_merge, edges_of_the_call, .fini = cleanup)
{
	struct hk_pprof p1 = host(1);
	struct img in[1] = { { NULL, 0 } };
	FILE *f = fopen("/dev/full", "w");
	char small[8];

	cr_assert_not_null(f);
	cr_expect_str_eq(refused(in, 0), "no profiles to merge");
	in[0] = img_of(&p1);
	cr_expect_eq(merge_to(f, in, 1, NULL, 0), -1);
	cr_expect_eq(errno, ENOSPC, "errno %d", errno);
	cr_expect_str_eq(err, "writing the merged profile: No space left on device");
	fclose(f);
	/* a short err, and none */
	in[0] = (struct img){ "junk", 4 };
	{
		const void *b[] = { in[0].b };
		size_t l[] = { in[0].n };

		cr_expect_eq(hk_pprof_merge(stdout, b, l, 1, NULL, 0, small, sizeof(small)), -1);
		cr_expect_str_eq(small, "input 1");
		cr_expect_eq(hk_pprof_merge(stdout, b, l, 1, NULL, 0, NULL, 0), -1);
	}
}

/* ---- many profiles ------------------------------------------------------ */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define MANY 20
#define MANY_N 10000
#define MANY_STACKS 2000
#define MANY_DEPTH 20

/* 20 hosts' profiles of 10k samples of 20 frames each, over 2000 stacks
 * of 200 functions, shared by every host; a host and a thread label. */
Test(pprof_merge, twenty_profiles_of_10k_samples, .timeout = 300, .fini = cleanup)
{
	static char names[200][32], files[20][32], hosts[MANY][8], threads[8][16];
	struct hk_pprof_frame *fr = calloc((size_t)MANY_STACKS * MANY_DEPTH, sizeof(*fr));
	struct hk_pprof_sample *s = calloc(MANY_N, sizeof(*s));
	struct hk_pprof_label (*lab)[2] = calloc(MANY_N, sizeof(*lab));
	int64_t *v = calloc((size_t)MANY_N * 4, sizeof(*v));
	struct img in[MANY], m;
	long long sum = 0, tot;
	double t0, dt;
	Profile *pr;
	size_t bytes = 0;

	cr_assert(fr && s && lab && v);
	for (int i = 0; i < 200; i++)
		snprintf(names[i], 32, "module.Class.method_%d", i);
	for (int i = 0; i < 20; i++)
		snprintf(files[i], 32, "/usr/lib/python3/app/f%d.py", i);
	for (int i = 0; i < 8; i++)
		snprintf(threads[i], 16, "Thread-%d", i);
	for (size_t st = 0; st < MANY_STACKS; st++)
		for (size_t k = 0; k < MANY_DEPTH; k++) {
			size_t fn = (st * 31 + k * 17) % 200;

			fr[st * MANY_DEPTH + k] = (struct hk_pprof_frame){
				names[fn], files[fn % 20], (int64_t)(fn * 10 + (st + k) % 7),
				(int64_t)fn * 10 };
		}
	for (int h = 0; h < MANY; h++) {
		struct hk_pprof p = { .types = types, .units = units, .ntypes = 4,
				      .default_type = "inuse_space", .samples = s,
				      .nsamples = MANY_N, .time_nanos = 1000000000LL * (h + 1),
				      .duration_nanos = 1000000000 };

		snprintf(hosts[h], 8, "h%d", h + 1);
		for (size_t i = 0; i < MANY_N; i++) {
			size_t st = (i * 7919 + (size_t)h * 13) % MANY_STACKS;

			for (int k = 0; k < 4; k++)
				v[i * 4 + k] = (int64_t)(k & 1 ? (i % 4096) * 16 + 1 : 1);
			lab[i][0] = (struct hk_pprof_label){ "host", hosts[h], 0, NULL };
			lab[i][1] = (struct hk_pprof_label){ "thread",
							     threads[i / MANY_STACKS % 8], 0, NULL };
			s[i] = (struct hk_pprof_sample){ &fr[st * MANY_DEPTH], MANY_DEPTH,
							 &v[i * 4], lab[i], 2 };
			sum += v[i * 4 + 3];
		}
		in[h] = img_of(&p);
		bytes += in[h].n;
	}
	{
		FILE *f = open_memstream(&m.b, &m.n);

		cr_assert_not_null(f);
		t0 = now();
		cr_assert_eq(merge_to(f, in, MANY, NULL, 0), 0, "%s", err);
		dt = now() - t0;
		cr_assert_eq(fclose(f), 0);
	}
	fprintf(stderr, "pprof merge: %d profiles of %d samples of %d frames (%zu bytes) "
		"merged in %.3f s, %zu bytes\n", MANY, MANY_N, MANY_DEPTH, bytes, dt, m.n);
	cr_expect_lt(dt, HK_TIME_BOUND(2.0), "merging took %.3f s", dt);
	pr = unpack(&m);
	cr_expect_eq(pr->n_function, 200);
	cr_expect_leq(pr->n_location, 200 * 7);
	cr_expect_eq(pr->n_mapping, 1);
	cr_expect_eq(pr->time_nanos, 1000000000);
	cr_expect_eq(pr->duration_nanos, 20000000000);
	/* The 2000 stacks are 1400 (functions by stack mod 200, lines by
	 * stack mod 7), so a host's samples are 7000 (stack, thread) pairs. */
	cr_expect_eq(pr->n_sample, (size_t)MANY * 7000, "%zu samples", pr->n_sample);
	tot = 0;
	for (size_t i = 0; i < pr->n_sample; i++)
		tot += pr->sample[i]->value[3];
	cr_expect_eq(tot, sum);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	tot = go_total("-top -unit=B -sample_index=alloc_space", scratch(m.b, m.n), false);
	cr_expect_eq(tot, sum, "go tool pprof: %lld, not %lld", tot, sum);
	free(fr);
	free(s);
	free(lab);
	free(v);
}

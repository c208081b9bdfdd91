/* hk_pprof_write and hk_folded_write: profiles read back with protobuf-c's
 * generated unpacker and with the real `go tool pprof`. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "oracle.h"
#include "pprof.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;

static const char *types[] = { "inuse_objects", "inuse_space", "alloc_objects", "alloc_space" };
static const char *units[] = { "count", "bytes", "count", "bytes" };

/* Each Criterion test runs in its own process: one scratch file per
 * test, removed by the .fini hook even when an assertion aborts it. */
static char pp_path[] = "/tmp/hawk-pprof-XXXXXX";

static void pp_cleanup(void)
{
	if (!strchr(pp_path, 'X'))
		unlink(pp_path);
}

/* The scratch file, empty. */
static FILE *pp_open(void)
{
	int fd = strchr(pp_path, 'X') ? mkstemp(pp_path) : open(pp_path, O_RDWR | O_TRUNC);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");

	cr_assert_not_null(f, "%s: %s", pp_path, strerror(errno));
	return f;
}

static void pp_write(const struct hk_pprof *p)
{
	FILE *f = pp_open();

	cr_assert_eq(hk_pprof_write(f, p), 0, "hk_pprof_write: %s", strerror(errno));
	cr_assert_eq(fclose(f), 0);
}

/* The scratch file gunzipped: its bytes in *len. */
static uint8_t *pp_gunzip(size_t *len)
{
	unsigned char magic[2] = { 0 };
	FILE *f = fopen(pp_path, "rb");
	size_t cap = 1 << 16, n = 0;
	uint8_t *b = malloc(cap);
	gzFile z;
	int k;

	cr_assert(f && fread(magic, 1, 2, f) == 2);
	fclose(f);
	cr_assert(magic[0] == 0x1f && magic[1] == 0x8b, "not gzip");
	cr_assert_not_null(z = gzopen(pp_path, "rb"));
	while ((k = gzread(z, b + n, (unsigned)(cap - n))) > 0)
		if ((n += (size_t)k) == cap)
			cr_assert_not_null(b = realloc(b, cap *= 2));
	cr_assert_eq(k, 0, "gzread");
	cr_assert_eq(gzclose(z), Z_OK, "gzip stream is broken");
	*len = n;
	return b;
}

/* The profile written, unpacked.  It must be exactly what packing it
 * whole gives, as the writer packs it a part at a time. */
static Profile *pp_read(void)
{
	size_t n;
	uint8_t *raw = pp_gunzip(&n), *again;
	Profile *pr = perftools__profiles__profile__unpack(NULL, n, raw);

	cr_assert_not_null(pr, "unpack failed (%zu bytes)", n);
	cr_assert_eq(perftools__profiles__profile__get_packed_size(pr), n);
	again = malloc(n + 1);
	perftools__profiles__profile__pack(pr, again);
	cr_assert(!memcmp(raw, again, n), "not the canonical encoding");
	free(again);
	free(raw);
	return pr;
}

static const char *str(const Profile *pr, int64_t i)
{
	cr_assert(i >= 0 && (size_t)i < pr->n_string_table, "string %ld of %zu",
		  (long)i, pr->n_string_table);
	return pr->string_table[i];
}

/* Every string once, "" first. */
static void check_strings(const Profile *pr)
{
	cr_assert_gt(pr->n_string_table, 0);
	cr_assert_str_empty(pr->string_table[0]);
	for (size_t i = 0; i < pr->n_string_table; i++)
		for (size_t j = i + 1; j < pr->n_string_table; j++)
			cr_assert_str_neq(pr->string_table[i], pr->string_table[j],
					  "string %zu again at %zu", i, j);
}

static const Perftools__Profiles__Location *loc(const Profile *pr, uint64_t id)
{
	for (size_t i = 0; i < pr->n_location; i++)
		if (pr->location[i]->id == id)
			return pr->location[i];
	cr_assert_fail("no location %lu", (unsigned long)id);
	return NULL;
}

static const Perftools__Profiles__Function *func(const Profile *pr, uint64_t id)
{
	for (size_t i = 0; i < pr->n_function; i++)
		if (pr->function[i]->id == id)
			return pr->function[i];
	cr_assert_fail("no function %lu", (unsigned long)id);
	return NULL;
}

/* Frame k of sample s, checked against what was written. */
static void check_frame(const Profile *pr, size_t s, size_t k, const struct hk_pprof_frame *f)
{
	const Perftools__Profiles__Location *l = loc(pr, pr->sample[s]->location_id[k]);
	const Perftools__Profiles__Function *fn;

	cr_assert_eq(l->mapping_id, 1);
	cr_assert_eq(l->address, 0);
	cr_assert_eq(l->n_line, 1);
	cr_assert_eq(l->line[0]->line, f->line);
	fn = func(pr, l->line[0]->function_id);
	cr_assert_str_eq(str(pr, fn->name), f->function, "sample %zu frame %zu", s, k);
	cr_assert_eq(fn->system_name, 0);
	cr_assert_str_eq(str(pr, fn->filename), f->filename);
	cr_assert_eq(fn->start_line, f->start_line);
}

/* `go tool pprof ARGS file` of the scratch file: its output, which must
 * end in success. */
static char *go_pprof(const char *args)
{
	char cmd[512], *out = NULL;
	size_t len = 0;
	FILE *p, *o = open_memstream(&out, &len);
	int c, st;

	snprintf(cmd, sizeof(cmd), "/usr/bin/go tool pprof %s '%s' 2>&1", args, pp_path);
	cr_assert(o && (p = popen(cmd, "r")), "%s", cmd);
	while ((c = getc(p)) != EOF)
		putc(c, o);
	st = pclose(p);
	fclose(o);
	cr_assert_eq(st, 0, "%s: status %d:\n%s", cmd, st, out);
	return out;
}

static void expect_in(const char *out, const char *want)
{
	cr_expect_not_null(strstr(out, want), "no \"%s\" in:\n%s", want, out);
}

/* ---- a small profile ---------------------------------------------------- */

/* Three samples of two stacks that end in one function (lines 7 and 8
 * of alloc); the third sample's strings are copies, not the same
 * pointers. */
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
static const int64_t va[] = { 1, 100, 2, 200 }, vb[] = { 3, 300, 3, 300 },
		     vc[] = { 0, 0, 5, 500 };
static const struct hk_pprof_label la[] = {
	{ "thread", "MainThread", 0, NULL },
	{ "pid", NULL, 1234, NULL },
};
static const struct hk_pprof_label lb[] = {
	{ "thread", "Worker-1", 0, NULL },
	{ "block", NULL, 4096, "bytes" },
	{ "pid", NULL, 1234, NULL },
};
static const char *comments[] = { "hawk-bpf test", "pid 1234" };

struct small {
	struct hk_pprof p;
	struct hk_pprof_sample s[3];
	struct hk_pprof_frame fc[3];
	struct hk_pprof_label lc[1];
};

static char *xdup(const char *s)
{
	char *d = strdup(s);

	cr_assert_not_null(d);
	return d;		/* a test's process ends soon: never freed */
}

static void small_init(struct small *m)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < 3; i++)
		m->fc[i] = (struct hk_pprof_frame){ xdup(fa[i].function), xdup(fa[i].filename),
						    fa[i].line, fa[i].start_line };
	m->lc[0] = (struct hk_pprof_label){ xdup("thread"), xdup("MainThread"), 0, NULL };
	m->s[0] = (struct hk_pprof_sample){ fa, 3, va, la, 2 };
	m->s[1] = (struct hk_pprof_sample){ fb, 3, vb, lb, 3 };
	m->s[2] = (struct hk_pprof_sample){ m->fc, 3, vc, m->lc, 1 };
	m->p = (struct hk_pprof){
		.types = types, .units = units, .ntypes = 4,
		.default_type = "inuse_space",
		.period_type = "space", .period_unit = "bytes", .period = 524288,
		.time_nanos = 1700000000123456789, .duration_nanos = 2500000000,
		.comments = comments, .ncomments = 2,
		.samples = m->s, .nsamples = 3,
	};
}

Test(pprof, header_types_period_comments, .fini = pp_cleanup)
{
	struct small m;
	Profile *pr;

	small_init(&m);
	pp_write(&m.p);
	pr = pp_read();
	check_strings(pr);
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
	cr_expect_eq(pr->time_nanos, 1700000000123456789);
	cr_expect_eq(pr->duration_nanos, 2500000000);
	cr_assert_eq(pr->n_comment, 2);
	cr_expect_str_eq(str(pr, pr->comment[0]), "hawk-bpf test");
	cr_expect_str_eq(str(pr, pr->comment[1]), "pid 1234");
	cr_expect_eq(pr->drop_frames, 0);
	cr_expect_eq(pr->keep_frames, 0);
	perftools__profiles__profile__free_unpacked(pr, NULL);
}

Test(pprof, samples_leaf_first_and_deduplicated, .fini = pp_cleanup)
{
	const int64_t *want[] = { va, vb, vc };
	struct small m;
	Profile *pr;

	small_init(&m);
	pp_write(&m.p);
	pr = pp_read();
	cr_assert_eq(pr->n_sample, 3);
	for (size_t s = 0; s < 3; s++) {
		cr_assert_eq(pr->sample[s]->n_value, 4);
		for (int v = 0; v < 4; v++)
			cr_expect_eq(pr->sample[s]->value[v], want[s][v], "sample %zu value %d", s, v);
		cr_assert_eq(pr->sample[s]->n_location_id, 3);
		for (size_t k = 0; k < 3; k++)
			check_frame(pr, s, k, &m.s[s].frames[k]);
	}
	/* alloc, Worker.run, <module>; alloc:7, alloc:8, run:42, <module>:10 */
	cr_expect_eq(pr->n_function, 3);
	cr_expect_eq(pr->n_location, 4);
	cr_expect_eq(pr->sample[0]->location_id[1], pr->sample[1]->location_id[1]);
	cr_expect_neq(pr->sample[0]->location_id[0], pr->sample[1]->location_id[0]);
	for (int k = 0; k < 3; k++)	/* copies of sample 0's strings */
		cr_expect_eq(pr->sample[2]->location_id[k], pr->sample[0]->location_id[k]);
	cr_assert_eq(pr->n_mapping, 1);
	cr_expect_eq(pr->mapping[0]->id, 1);
	cr_expect(pr->mapping[0]->has_functions && pr->mapping[0]->has_filenames &&
		  pr->mapping[0]->has_line_numbers && !pr->mapping[0]->has_inline_frames);
	perftools__profiles__profile__free_unpacked(pr, NULL);
}

Test(pprof, function_start_line_tells_functions_apart, .fini = pp_cleanup)
{
	/* Two `f` in one file (a redefinition): the same name, two functions. */
	static const struct hk_pprof_frame f1[] = { { "f", "/a.py", 3, 2 } };
	static const struct hk_pprof_frame f2[] = { { "f", "/a.py", 3, 1 } };
	static const int64_t v[] = { 1 };
	struct hk_pprof_sample s[] = { { f1, 1, v, NULL, 0 }, { f2, 1, v, NULL, 0 } };
	struct hk_pprof p = { .types = types, .units = units, .ntypes = 1,
			      .samples = s, .nsamples = 2 };
	Profile *pr;

	pp_write(&p);
	pr = pp_read();
	cr_expect_eq(pr->n_function, 2);
	cr_expect_eq(pr->n_location, 2);
	check_frame(pr, 0, 0, &f1[0]);
	check_frame(pr, 1, 0, &f2[0]);
	perftools__profiles__profile__free_unpacked(pr, NULL);
}

static void check_label(const Profile *pr, const Perftools__Profiles__Label *l,
			const struct hk_pprof_label *w)
{
	cr_expect_str_eq(str(pr, l->key), w->key);
	if (w->str) {
		cr_expect_str_eq(str(pr, l->str), w->str);
		cr_expect_eq(l->num, 0);
		cr_expect_eq(l->num_unit, 0);
	} else {
		cr_expect_eq(l->str, 0);
		cr_expect_eq(l->num, w->num);
		cr_expect_str_eq(str(pr, l->num_unit), w->num_unit ? w->num_unit : "");
	}
}

Test(pprof, labels_string_and_numeric, .fini = pp_cleanup)
{
	struct small m;
	Profile *pr;

	small_init(&m);
	pp_write(&m.p);
	pr = pp_read();
	for (size_t s = 0; s < 3; s++) {
		cr_assert_eq(pr->sample[s]->n_label, m.s[s].nlabels);
		for (size_t k = 0; k < m.s[s].nlabels; k++)
			check_label(pr, pr->sample[s]->label[k], &m.s[s].labels[k]);
	}
	/* "thread" and "MainThread" are one string each, copies or not */
	cr_expect_eq(pr->sample[0]->label[0]->key, pr->sample[1]->label[0]->key);
	cr_expect_eq(pr->sample[0]->label[0]->key, pr->sample[2]->label[0]->key);
	cr_expect_eq(pr->sample[0]->label[0]->str, pr->sample[2]->label[0]->str);
	cr_expect_eq(pr->sample[0]->label[1]->key, pr->sample[1]->label[2]->key);
	perftools__profiles__profile__free_unpacked(pr, NULL);
}

Test(pprof, go_tool_pprof_reads_it, .fini = pp_cleanup)
{
	struct small m;
	char *out;

	small_init(&m);
	pp_write(&m.p);
	out = go_pprof("-raw");
	expect_in(out, "PeriodType: space bytes");
	expect_in(out, "Period: 524288");
	expect_in(out, "Duration: 2.5s");
	expect_in(out, "inuse_objects/count inuse_space/bytes[dflt] alloc_objects/count alloc_space/bytes");
	expect_in(out, "          1        100          2        200: 1 2 3 ");
	expect_in(out, "          3        300          3        300: 4 2 3 ");
	expect_in(out, "          0          0          5        500: 1 2 3 ");
	expect_in(out, "thread:[MainThread]");
	expect_in(out, "thread:[Worker-1]");
	expect_in(out, "pid:[1234]");
	expect_in(out, "block:[4096 bytes] pid:[1234]");
	expect_in(out, "alloc /app/work.py:7 s=5");
	expect_in(out, "alloc /app/work.py:8 s=5");
	expect_in(out, "Worker.run /app/work.py:42 s=30");
	expect_in(out, "<module> /app/main.py:10 s=1");
	free(out);

	/* -top: the default type is inuse_space; alloc is flat, <module> cum */
	out = go_pprof("-top");
	expect_in(out, "Type: inuse_space");
	expect_in(out, "Showing nodes accounting for 400B, 100% of 400B total");
	expect_in(out, "400B   100%   100%       400B   100%  alloc\n");
	expect_in(out, "0     0%   100%       400B   100%  <module>\n");
	free(out);
	out = go_pprof("-top -sample_index=alloc_space");
	expect_in(out, "Showing nodes accounting for 1000B, 100% of 1000B total");
	free(out);
	out = go_pprof("-top -sample_index=alloc_objects -tagfocus=thread=MainThread");
	expect_in(out, "Showing nodes accounting for 7, 70.00% of 10 total");
	free(out);
	out = go_pprof("-comments");
	expect_in(out, "hawk-bpf test\npid 1234");
	free(out);
}

/* ---- edge cases --------------------------------------------------------- */

Test(pprof, zero_samples, .fini = pp_cleanup)
{
	struct hk_pprof p = { .types = types, .units = units, .ntypes = 4 };
	Profile *pr;
	char *out;

	pp_write(&p);
	pr = pp_read();
	cr_expect_eq(pr->n_sample, 0);
	cr_expect_eq(pr->n_location, 0);
	cr_expect_eq(pr->n_function, 0);
	cr_expect_eq(pr->n_sample_type, 4);
	cr_expect_eq(pr->default_sample_type, 0);
	cr_expect_null(pr->period_type);
	check_strings(pr);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	out = go_pprof("-top -sample_index=inuse_space");
	expect_in(out, "Showing nodes accounting for 0, 0% of 0 total");
	free(out);
}

Test(pprof, sample_without_frames, .fini = pp_cleanup)
{
	static const int64_t v1[] = { 1, 64 }, v2[] = { 2, 32 };
	struct hk_pprof_sample s[] = { { NULL, 0, v1, NULL, 0 }, { fa, 3, v2, NULL, 0 } };
	struct hk_pprof p = { .types = types, .units = units, .ntypes = 2,
			      .samples = s, .nsamples = 2 };
	Profile *pr;
	char *out;

	pp_write(&p);
	pr = pp_read();
	cr_assert_eq(pr->n_sample, 2);
	cr_expect_eq(pr->sample[0]->n_location_id, 0);
	cr_expect_eq(pr->sample[0]->value[1], 64);
	cr_expect_eq(pr->sample[1]->n_location_id, 3);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	out = go_pprof("-top -sample_index=inuse_space");
	expect_in(out, "Showing nodes accounting for 32B, 33.33% of 96B total");
	expect_in(out, "32B 33.33% 33.33%        32B 33.33%  alloc\n");
	free(out);
}

/* pprof strips "<...>" from what looks like C++ unless a function's name
 * and system name differ: Python's names must come through as they are. */
Test(pprof, python_names_are_not_taken_for_cxx, .fini = pp_cleanup)
{
	static const struct hk_pprof_frame f[] = {
		{ "<listcomp>", "/p.py", 6, 6 }, { "<lambda>", "/p.py", 5, 5 },
		{ "<genexpr>", "/p.py", 4, 4 }, { "f.<locals>.g", "/p.py", 3, 3 },
		{ "C.__init__", "/p.py", 2, 2 }, { "<module>", "/p.py", 1, 1 },
	};
	static const int64_t v[] = { 1, 8 };
	struct hk_pprof_sample s[] = { { f, 6, v, NULL, 0 } };
	struct hk_pprof p = { .types = types, .units = units, .ntypes = 2,
			      .samples = s, .nsamples = 1 };
	char *out;

	pp_write(&p);
	out = go_pprof("-top -sample_index=inuse_space");
	for (size_t i = 0; i < 6; i++) {
		char want[64];

		snprintf(want, sizeof(want), "100%%  %s\n", f[i].function);
		expect_in(out, want);
	}
	free(out);
}

/* A 1 MiB and a 100 KiB name (bigger than the writer's 64 KiB buffers),
 * UTF-8 ones and an unknown ("") function; strings that merely share a
 * long prefix stay apart. */
Test(pprof, long_and_utf8_names, .fini = pp_cleanup)
{
	size_t big = 1 << 20;
	char *huge = malloc(big + 1), *huge2 = malloc(100001), *out;
	struct hk_pprof_frame f[5] = {
		{ "", "/x.py", 1, 0 },
		{ "ünïcödé.函数", "/srv/données/模块.py", 2, 1 },
		{ "😀", "/x.py", 3, 1 },
		{ huge, "/x.py", 4, 1 },
		{ huge2, huge, 5, 1 },
	};
	static const int64_t v[] = { 1, 10 };
	struct hk_pprof_label l[] = { { "名前", "値", 0, NULL } };
	struct hk_pprof_sample s[] = { { f, 5, v, l, 1 } };
	struct hk_pprof p = { .types = types, .units = units, .ntypes = 2,
			      .samples = s, .nsamples = 1 };
	Profile *pr;

	cr_assert(huge && huge2);
	memset(huge, 'h', big);
	huge[big] = 0;
	memset(huge2, 'h', 100000);
	huge2[100000] = 0;
	pp_write(&p);
	pr = pp_read();
	check_strings(pr);
	for (size_t k = 0; k < 5; k++)
		check_frame(pr, 0, k, &f[k]);
	cr_expect_str_eq(str(pr, pr->sample[0]->label[0]->key), "名前");
	cr_expect_str_eq(str(pr, pr->sample[0]->label[0]->str), "値");
	perftools__profiles__profile__free_unpacked(pr, NULL);
	out = go_pprof("-raw");
	expect_in(out, "ünïcödé.函数 /srv/données/模块.py:2 s=1");
	expect_in(out, "😀 /x.py:3 s=1");
	expect_in(out, "名前:[値]");
	cr_expect_gt(strlen(out), big, "the long name is missing");
	free(out);
	free(huge);
	free(huge2);
}

Test(pprof, write_error_is_reported, .fini = pp_cleanup)
{
	struct small m;
	FILE *f = fopen("/dev/full", "w");

	small_init(&m);
	cr_assert_not_null(f);
	errno = 0;
	cr_expect_eq(hk_pprof_write(f, &m.p), -1);
	cr_expect_eq(errno, ENOSPC, "errno %d", errno);
	fclose(f);
}

/* ---- folded stacks ------------------------------------------------------ */

/* hk_folded_write of p's value v, as a string. */
static char *folded(const struct hk_pprof *p, size_t v)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	cr_assert_not_null(f);
	cr_assert_eq(hk_folded_write(f, p, v), 0, "%s", strerror(errno));
	fclose(f);
	return out;
}

Test(folded, stacks_oldest_first_and_summed)
{
	struct small m;
	char *out;

	small_init(&m);
	out = folded(&m.p, 1);
	cr_expect_str_eq(out,
		"<module> (/app/main.py:10);Worker.run (/app/work.py:42);alloc (/app/work.py:7) 100\n"
		"<module> (/app/main.py:10);Worker.run (/app/work.py:42);alloc (/app/work.py:8) 300\n");
	free(out);
	/* samples 0 and 2, one by pointers and one by copies, are summed */
	out = folded(&m.p, 3);
	cr_expect_str_eq(out,
		"<module> (/app/main.py:10);Worker.run (/app/work.py:42);alloc (/app/work.py:7) 700\n"
		"<module> (/app/main.py:10);Worker.run (/app/work.py:42);alloc (/app/work.py:8) 300\n");
	free(out);
}

Test(folded, edge_cases)
{
	/* Names with the separators; a frame of an unknown function; no
	 * frames; start lines that differ but print the same; a stack whose
	 * values cancel out. */
	static const struct hk_pprof_frame f1[] = {
		{ "a;b", "/x\ny.py", 1, 1 }, { "", "/z.py", 2, 0 } };
	static const struct hk_pprof_frame f2[] = { { "g", "/g.py", 5, 1 } };
	static const struct hk_pprof_frame f3[] = { { "g", "/g.py", 5, 2 } };
	static const int64_t v1[] = { 4 }, v2[] = { -3 }, v3[] = { 3 }, v4[] = { 9 }, v0[] = { 0 };
	struct hk_pprof_sample s[] = {
		{ f1, 2, v1, NULL, 0 }, { f2, 1, v2, NULL, 0 }, { f3, 1, v3, NULL, 0 },
		{ NULL, 0, v4, NULL, 0 }, { f1, 1, v0, NULL, 0 },
	};
	struct hk_pprof p = { .types = types, .units = units, .ntypes = 1,
			      .samples = s, .nsamples = 5 };
	char *out = folded(&p, 0);

	cr_expect_str_eq(out, "<unknown> (/z.py:2);a,b (/x y.py:1) 4\n"
			      "<unknown> (<unknown>:0) 9\n");
	free(out);
	p.nsamples = 0;
	out = folded(&p, 0);
	cr_expect_str_eq(out, "");
	free(out);
	errno = 0;
	cr_expect_eq(hk_folded_write(stdout, &p, 1), -1);
	cr_expect_eq(errno, EINVAL);
}

Test(folded, utf8_and_long_names)
{
	size_t big = 300000;
	char *huge = malloc(big + 1), *want = NULL, *out;
	struct hk_pprof_frame f[] = { { huge, "/ü.py", 1, 1 }, { "函数", "/模块.py", 2, 1 } };
	static const int64_t v[] = { 5 };
	struct hk_pprof_sample s[] = { { f, 2, v, NULL, 0 } };
	struct hk_pprof p = { .types = types, .units = units, .ntypes = 1,
			      .samples = s, .nsamples = 1 };

	cr_assert_not_null(huge);
	memset(huge, 'n', big);
	huge[big] = 0;
	cr_assert(asprintf(&want, "函数 (/模块.py:2);%s (/ü.py:1) 5\n", huge) > 0);
	out = folded(&p, 0);
	cr_expect(!strcmp(out, want), "long line differs");
	free(out);
	free(want);
	free(huge);
}

Test(folded, write_error_is_reported)
{
	struct small m;
	FILE *f = fopen("/dev/full", "w");

	small_init(&m);
	cr_assert_not_null(f);
	errno = 0;
	cr_expect_eq(hk_folded_write(f, &m.p, 1), -1);
	cr_expect_eq(errno, ENOSPC, "errno %d", errno);
	fclose(f);
}

/* ---- a million samples -------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 M samples of 20 frames, of 5000 distinct stacks (frame arrays) over
 * 200 functions in 20 files, strings shared by pointer (the symbolizer
 * interns them), a thread label each. */
struct big {
	struct hk_pprof p;
	struct hk_pprof_sample *s;
	struct hk_pprof_frame *f;
	struct hk_pprof_label l[8];
	int64_t *v;
	char names[200][32], files[20][32], threads[8][16];
};

#define BIG_N 1000000
#define BIG_STACKS 5000
#define BIG_DEPTH 20

static struct big *big_make(void)
{
	struct big *b = calloc(1, sizeof(*b));

	cr_assert_not_null(b);
	b->s = calloc(BIG_N, sizeof(*b->s));
	b->f = calloc((size_t)BIG_STACKS * BIG_DEPTH, sizeof(*b->f));
	b->v = calloc((size_t)BIG_N * 4, sizeof(*b->v));
	cr_assert(b->s && b->f && b->v);
	for (int i = 0; i < 200; i++)
		snprintf(b->names[i], 32, "module.Class.method_%d", i);
	for (int i = 0; i < 20; i++)
		snprintf(b->files[i], 32, "/usr/lib/python3/app/f%d.py", i);
	for (int i = 0; i < 8; i++) {
		snprintf(b->threads[i], 16, "Thread-%d", i);
		b->l[i] = (struct hk_pprof_label){ "thread", b->threads[i], 0, NULL };
	}
	for (size_t st = 0; st < BIG_STACKS; st++)
		for (size_t k = 0; k < BIG_DEPTH; k++) {
			size_t fn = (st * 31 + k * 17) % 200;

			b->f[st * BIG_DEPTH + k] = (struct hk_pprof_frame){
				b->names[fn], b->files[fn % 20],
				(int64_t)(fn * 10 + (st + k) % 7), (int64_t)fn * 10 };
		}
	for (size_t i = 0; i < BIG_N; i++) {
		size_t st = (i * 7919) % BIG_STACKS;

		for (int v = 0; v < 4; v++)
			b->v[i * 4 + v] = (int64_t)(v & 1 ? (i % 4096) * 16 : 1);
		b->s[i] = (struct hk_pprof_sample){ &b->f[st * BIG_DEPTH], BIG_DEPTH,
						    &b->v[i * 4], &b->l[i % 8], 1 };
	}
	b->p = (struct hk_pprof){ .types = types, .units = units, .ntypes = 4,
				  .default_type = "inuse_space", .samples = b->s,
				  .nsamples = BIG_N };
	return b;
}

Test(pprof, million_samples, .timeout = 300, .fini = pp_cleanup)
{
	struct big *b = big_make();
	FILE *f = pp_open();
	double t0 = now(), dt, dtf;
	Profile *pr;
	long size;
	char *out;

	cr_assert_eq(hk_pprof_write(f, &b->p), 0, "%s", strerror(errno));
	dt = now() - t0;
	size = ftell(f);
	fclose(f);
	f = fopen("/dev/null", "w");
	t0 = now();
	cr_assert_eq(hk_folded_write(f, &b->p, 1), 0);
	dtf = now() - t0;
	fclose(f);
	fprintf(stderr, "pprof: wrote %d samples of %d frames in %.3f s, %ld bytes; "
		"folded in %.3f s\n", BIG_N, BIG_DEPTH, dt, size, dtf);
	cr_expect_lt(dt, HK_TIME_BOUND(3.0), "1 M samples took %.3f s", dt);
	cr_expect_lt(dtf, HK_TIME_BOUND(3.0), "folding 1 M samples took %.3f s", dtf);

	pr = pp_read();
	cr_assert_eq(pr->n_sample, BIG_N);
	cr_expect_eq(pr->n_function, 200);
	cr_expect_leq(pr->n_location, 200 * 7);
	for (size_t i = 0; i < BIG_N; i += 99991)
		for (size_t k = 0; k < BIG_DEPTH; k++)
			check_frame(pr, i, k, &b->s[i].frames[k]);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	out = go_pprof("-top -sample_index=alloc_objects");
	expect_in(out, "of 1000000 total");
	free(out);
}

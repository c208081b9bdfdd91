/* hk_report_* against Hawk's reference renderer run over the real
 * tracemalloc and linecache (tests/unit/oracle_report.py): equal as JSON
 * values, and byte for byte equal to json.dumps(indent=2). */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"
#include "report.h"

/* Tampering tests expect mismatches: keep their logs quiet. */
static bool quiet;
#define LOG_ERROR(...) do { if (!quiet) cr_log_error(__VA_ARGS__); } while (0)

/* Snapshot from [[size, frames most recent first, total_nframe]...]; the
 * strings stay owned by the JSON document. */
struct tsnap {
	struct hk_snapshot s;
	struct hk_trace *traces;
	struct hk_traceback *tbs;
};

static void tsnap_load(struct tsnap *t, const json_t *arr)
{
	size_t n = json_array_size(arr), i, k;
	json_t *tr, *fr;

	t->traces = calloc(n + 1, sizeof(*t->traces));
	t->tbs = calloc(n + 1, sizeof(*t->tbs));
	cr_assert(t->traces && t->tbs);
	json_array_foreach(arr, i, tr) {
		json_t *frames = json_array_get(tr, 1);
		struct hk_frame *f = calloc(json_array_size(frames), sizeof(*f));

		cr_assert(f);
		json_array_foreach(frames, k, fr)
			f[k] = (struct hk_frame){
				.filename = json_string_value(json_array_get(fr, 0)), .function = "",
				.lineno = (unsigned int)json_integer_value(json_array_get(fr, 1)) };
		t->tbs[i] = (struct hk_traceback){ (uint32_t)json_array_size(frames),
			(uint32_t)json_integer_value(json_array_get(tr, 2)), f };
		t->traces[i] = (struct hk_trace){ 0, (uint64_t)json_integer_value(json_array_get(tr, 0)),
						  &t->tbs[i], 0 };
	}
	t->s = (struct hk_snapshot){ t->traces, n, 4 };
}

static void tsnap_free(struct tsnap *t)
{
	for (size_t i = 0; i < t->s.ntraces; i++)
		free((void *)t->tbs[i].frames);
	free(t->tbs);
	free(t->traces);
}

static char dir[64];

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void setup(void)
{
	strcpy(dir, "/tmp/hk-report-XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
	nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(report, .init = setup, .fini = teardown);

/* Mismatching cases of one oracle document. */
static size_t check_document(const json_t *doc)
{
	struct tsnap nw, old;
	struct hk_source *src = hk_source_new("", NULL);
	size_t i, bad = 0;
	json_t *c;

	cr_assert(src);
	tsnap_load(&nw, json_object_get(doc, "new"));
	tsnap_load(&old, json_object_get(doc, "old"));
	json_array_foreach(json_object_get(doc, "cases"), i, c) {
		const char *keyname = json_string_value(json_object_get(c, "key"));
		bool cum = json_is_true(json_object_get(c, "cumulative"));
		bool interval = json_is_true(json_object_get(c, "interval"));
		size_t count = (size_t)json_integer_value(json_object_get(c, "count"));
		json_t *got = hk_report_build(&nw.s, interval ? &old.s : NULL,
					      hk_key_type_parse(keyname), cum, count, src);
		char *text = got ? hk_report_dumps(got) : NULL;

		if (!got || !text) {
			bad++;
			LOG_ERROR("case %zu (%s): build failed", i, keyname);
		} else if (!json_equal(got, json_object_get(c, "expected")) ||
			   strcmp(text, json_string_value(json_object_get(c, "dump")))) {
			if (bad++ < 3)
				LOG_ERROR("case %zu: %s cumulative=%d interval=%d count=%zu:\n"
					     "got:\n%s\nwant:\n%s", i, keyname, cum, interval, count,
					     text, json_string_value(json_object_get(c, "dump")));
		}
		free(text);
		json_decref(got);
	}
	tsnap_free(&nw);
	tsnap_free(&old);
	hk_source_free(src);
	return bad;
}

static json_t *run_oracle(int seed)
{
	char args[128];

	snprintf(args, sizeof(args), "oracle_report.py %s %d", dir, seed);
	return oracle(args);
}

Test(report, matches_hawk_renderer)
{
	for (int seed = 1; seed <= 4; seed++) {
		json_t *doc = run_oracle(seed);

		cr_assert_geq(json_array_size(json_object_get(doc, "cases")), 40);
		cr_expect_eq(check_document(doc), 0, "seed %d", seed);
		json_decref(doc);
	}
}

/* The comparison must be able to fail: a changed "code" and a swapped
 * key order (same JSON value, different bytes) are both caught. */
Test(report, checks_catch_wrong_output)
{
	quiet = true;
	json_t *doc = run_oracle(5);
	json_t *cases = json_object_get(doc, "cases");
	json_t *c0 = json_array_get(cases, 0), *c1 = json_array_get(cases, 1);
	json_t *stat = json_array_get(json_object_get(json_object_get(c0, "expected"), "stats"), 0);
	json_t *exp1 = json_object_get(c1, "expected");
	json_t *cur = json_incref(json_object_get(exp1, "heap_current_bytes"));

	json_object_set_new(stat, "code", json_string("not the line"));
	/* move heap_current_bytes last: json_equal still holds, bytes differ */
	json_object_del(exp1, "heap_current_bytes");
	json_object_set_new(exp1, "heap_current_bytes", cur);
	char *moved = hk_report_dumps(exp1);
	json_object_set_new(c1, "dump", json_string(moved));
	free(moved);
	cr_expect_eq(check_document(doc), 2);
	json_decref(doc);
}

/* Extra keys go after Hawk's; hk_report_write adds one newline. */
Test(report, extra_keys_and_write)
{
	json_t *doc = run_oracle(6);
	struct tsnap nw, old;

	tsnap_load(&nw, json_object_get(doc, "new"));
	tsnap_load(&old, json_object_get(doc, "old"));
	json_t *r = hk_report_build(&nw.s, &old.s, HK_KEY_LINENO, false, 2, NULL);
	cr_assert(r);
	json_object_set_new(r, "hawk_bpf", json_pack("{s:i}", "pid", 42));
	const char *key;
	json_t *v;
	const char *order[] = { "stats", "heap_current_bytes", "heap_current",
				"heap_diff_bytes", "heap_diff", "hawk_bpf" };
	size_t i = 0;
	json_object_foreach(r, key, v)
		cr_expect_str_eq(key, order[i++]);
	cr_expect_eq(i, 6);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_eq(hk_report_write(f, r), 0);
	fclose(f);
	char *text = hk_report_dumps(r);
	cr_expect_eq(len, strlen(text) + 1);
	cr_expect_eq(strncmp(buf, text, strlen(text)), 0);
	cr_expect_eq(buf[len - 1], '\n');
	free(text);
	free(buf);
	json_decref(r);

	/* cumulative 'traceback' is tracemalloc's ValueError */
	errno = 0;
	cr_expect_null(hk_report_build(&nw.s, NULL, HK_KEY_TRACEBACK, true, 10, NULL));
	cr_expect_eq(errno, EINVAL);
	tsnap_free(&nw);
	tsnap_free(&old);
	json_decref(doc);
}

/* Sizes past 64 bits come to the writer as digit strings under the size
 * keys and leave it as bare ints; the same text anywhere else stays a
 * string. */
Test(report, sizes_past_64_bits_are_bare_ints)
{
	json_t *r = json_pack("{s:s, s:s, s:[s, s], s:{s:s}, s:i, s:s}",
			      "mem_blocks_size_bytes", "36893488147419103230",
			      "heap_current", "mem_blocks_size_bytes",
			      "list", "heap_diff_bytes", "-18446744073709551616",
			      "nested", "heap_current_bytes", "18446744073709551616",
			      "heap_diff_bytes", -5,
			      "code", "x = {\"heap_diff_bytes\": \"1\"}");
	char *text = hk_report_dumps(r);

	cr_assert(text);
	cr_expect_str_eq(text,
		"{\n"
		"  \"mem_blocks_size_bytes\": 36893488147419103230,\n"
		"  \"heap_current\": \"mem_blocks_size_bytes\",\n"
		"  \"list\": [\n"
		"    \"heap_diff_bytes\",\n"
		"    \"-18446744073709551616\"\n"
		"  ],\n"
		"  \"nested\": {\n"
		"    \"heap_current_bytes\": 18446744073709551616\n"
		"  },\n"
		"  \"heap_diff_bytes\": -5,\n"
		"  \"code\": \"x = {\\\"heap_diff_bytes\\\": \\\"1\\\"}\"\n"
		"}");
	free(text);
	json_decref(r);
}

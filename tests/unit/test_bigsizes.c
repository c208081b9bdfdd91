/* Sizes at the top of size_t (tests/unit/oracle_bigsizes.py): statistics
 * past 2^64 and differences below -2^64 must print as the real tracemalloc
 * prints them (they once wrapped to "size=-2 B"). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "oracle.h"
#include "stats.h"

/* Tampering tests expect mismatches: keep their logs quiet. */
static bool quiet;
#define LOG_ERROR(...) do { if (!quiet) cr_log_error(__VA_ARGS__); } while (0)
#define FAIL(...) do { if (bad++ < 5) LOG_ERROR(__VA_ARGS__); } while (0)

/* Decimal text of v, as Python's str(int). */
static const char *dec(char *buf, __int128 v)
{
	unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
	char tmp[48], *p = tmp + sizeof(tmp);

	*--p = 0;
	do
		*--p = (char)('0' + (int)(u % 10));
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	return strcpy(buf, p);
}

static unsigned __int128 parse_u128(const char *s)
{
	unsigned __int128 v = 0;

	for (; *s; s++)
		v = v * 10 + (unsigned)(*s - '0');
	return v;
}

static __int128 parse_i128(const char *s)
{
	return *s == '-' ? -(__int128)parse_u128(s + 1) : (__int128)parse_u128(s);
}

struct bsnap {
	struct hk_snapshot s;
	struct hk_trace *traces;
	struct hk_traceback *tbs;
};

/* [[size, frames, total_nframe]...]; strings stay owned by the document. */
static void bsnap_load(struct bsnap *b, const json_t *arr)
{
	size_t n = json_array_size(arr), i, k;
	json_t *tr, *fr;

	b->traces = calloc(n + 1, sizeof(*b->traces));
	b->tbs = calloc(n + 1, sizeof(*b->tbs));
	cr_assert(b->traces && b->tbs);
	json_array_foreach(arr, i, tr) {
		json_t *frames = json_array_get(tr, 1);
		struct hk_frame *f = calloc(json_array_size(frames), sizeof(*f));

		cr_assert(f);
		json_array_foreach(frames, k, fr)
			f[k] = (struct hk_frame){
				.filename = json_string_value(json_array_get(fr, 0)), .function = "",
				.lineno = (unsigned int)json_integer_value(json_array_get(fr, 1)) };
		b->tbs[i] = (struct hk_traceback){ (uint32_t)json_array_size(frames),
			(uint32_t)json_integer_value(json_array_get(tr, 2)), f };
		b->traces[i] = (struct hk_trace){ 0,
			(uint64_t)parse_u128(json_string_value(json_array_get(tr, 0))),
			&b->tbs[i], 0 };
	}
	b->s = (struct hk_snapshot){ b->traces, n, 4 };
}

static void bsnap_free(struct bsnap *b)
{
	for (size_t i = 0; i < b->s.ntraces; i++)
		free((void *)b->tbs[i].frames);
	free(b->tbs);
	free(b->traces);
}

/* Mismatches of st against [[str, size, (size_diff,) count, (count_diff,)
 * frames]...]. */
static size_t check(const struct hk_stats *st, const json_t *want, bool diff,
		    const char *what)
{
	size_t bad = 0;
	char buf[48];

	if (st->n != json_array_size(want))
		FAIL("%s: %zu stats, want %zu", what, st->n, json_array_size(want));
	for (size_t i = 0; i < st->n && i < json_array_size(want); i++) {
		const struct hk_stat *s = &st->stats[i];
		const json_t *w = json_array_get(want, i);
		char *text = hk_stat_strdup(s, diff);
		const char *wstr = json_string_value(json_array_get(w, 0));
		int c = diff ? 3 : 2;

		if (strcmp(text, wstr))
			FAIL("%s[%zu]: '%s', want '%s'", what, i, text, wstr);
		if (strcmp(dec(buf, (__int128)s->size), json_string_value(json_array_get(w, 1))))
			FAIL("%s[%zu]: size %s", what, i, buf);
		if (diff && strcmp(dec(buf, (__int128)s->size_diff),
				   json_string_value(json_array_get(w, 2))))
			FAIL("%s[%zu]: size_diff %s", what, i, buf);
		if (s->count != json_integer_value(json_array_get(w, c)) ||
		    (diff && s->count_diff != json_integer_value(json_array_get(w, c + 1))))
			FAIL("%s[%zu]: count %lld (%+lld)", what, i, (long long)s->count,
			     (long long)s->count_diff);
		free(text);
	}
	return bad;
}

static size_t check_document(const json_t *doc)
{
	struct bsnap nw, old;
	size_t i, bad = 0;
	json_t *c;
	char buf[48];

	bsnap_load(&nw, json_object_get(doc, "new"));
	bsnap_load(&old, json_object_get(doc, "old"));
	if (strcmp(dec(buf, (__int128)hk_snapshot_total(&nw.s)),
		   json_string_value(json_object_get(doc, "total_new"))))
		FAIL("total of new: %s", buf);
	json_array_foreach(json_object_get(doc, "cases"), i, c) {
		const char *key = json_string_value(json_object_get(c, "key"));
		bool cum = json_is_true(json_object_get(c, "cumulative"));
		struct hk_stats *st = NULL, *df = NULL;
		char what[64];

		cr_assert_eq(hk_statistics(&nw.s, hk_key_type_parse(key), cum, &st), 0);
		cr_assert_eq(hk_compare_to(&nw.s, &old.s, hk_key_type_parse(key), cum, &df), 0);
		snprintf(what, sizeof(what), "%s cumulative=%d statistics", key, cum);
		bad += check(st, json_object_get(c, "statistics"), false, what);
		snprintf(what, sizeof(what), "%s cumulative=%d compare_to", key, cum);
		bad += check(df, json_object_get(c, "compare"), true, what);
		hk_stats_free(st);
		hk_stats_free(df);
	}
	bsnap_free(&nw);
	bsnap_free(&old);
	return bad;
}

Test(bigsizes, print_as_tracemalloc)
{
	for (int seed = 1; seed <= 3; seed++) {
		char args[64];

		snprintf(args, sizeof(args), "oracle_bigsizes.py %d", seed);
		json_t *doc = oracle(args);
		cr_expect_eq(check_document(doc), 0, "seed %d", seed);
		json_decref(doc);
	}
}

/* The check must be able to fail: one digit of one size changed. */
Test(bigsizes, checks_catch_wrong_output)
{
	quiet = true;
	json_t *doc = oracle("oracle_bigsizes.py 4");
	json_t *row = json_array_get(json_object_get(json_array_get(
		json_object_get(doc, "cases"), 1), "compare"), 0);
	char buf[64];

	snprintf(buf, sizeof(buf), "%s0", json_string_value(json_array_get(row, 1)));
	json_array_set_new(row, 1, json_string(buf));
	cr_expect_eq(check_document(doc), 1);
	json_decref(doc);
}

/* Statistic's average, size / count, rounded once as Python's int / int;
 * dividing the two doubles rounds twice and is caught at least once. */
Test(bigsizes, average_rounds_once)
{
	json_t *doc = oracle("oracle_bigsizes.py 5"), *c;
	size_t i, bad = 0, naive = 0;

	json_array_foreach(json_object_get(doc, "ratios"), i, c) {
		unsigned __int128 a = parse_u128(json_string_value(json_array_get(c, 0)));
		uint64_t b = (uint64_t)json_integer_value(json_array_get(c, 1));
		double want = strtod(json_string_value(json_array_get(c, 2)), NULL);
		double got = hk_size_ratio(a, b);

		if (got != want)
			FAIL("%s / %llu: %a, want %a", json_string_value(json_array_get(c, 0)),
			     (unsigned long long)b, got, want);
		naive += (double)a / (double)b != want;
	}
	cr_expect_eq(bad, 0);
	cr_expect_gt(naive, 0, "no case where rounding twice differs");
	json_decref(doc);
}

/* _format_size and Hawk's format_bytes of ints far past 64 bits, given
 * the int's double as the callers give it. */
Test(bigsizes, format_past_64_bits)
{
	json_t *doc = oracle("oracle_bigsizes.py 6"), *c;
	size_t i, bad = 0;

	json_array_foreach(json_object_get(doc, "formats"), i, c) {
		const char *v = json_string_value(json_array_get(c, 0));
		double d = (double)parse_i128(v);
		char buf[HK_SIZE_BUFLEN];

		for (int k = 0; k < 3; k++) {
			const char *want = json_string_value(json_array_get(c, k + 1));

			if (k < 2)
				hk_format_size(buf, sizeof(buf), d, k == 1);
			else
				hk_format_bytes(buf, sizeof(buf), d);
			if (strcmp(buf, want))
				FAIL("%s (%d): '%s', want '%s'", v, k, buf, want);
		}
	}
	cr_expect_eq(bad, 0);
	cr_expect_gt(json_array_size(json_object_get(doc, "formats")), 1000);
	json_decref(doc);
}

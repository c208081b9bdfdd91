/* hk_statistics / hk_compare_to against the real tracemalloc
 * (tests/unit/oracle_stats.py): same groups, numbers, order and str(). */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oracle.h"
#include "stats.h"

/* Tampering tests expect mismatches: keep their logs quiet. */
static bool quiet;
#define LOG_ERROR(...) do { if (!quiet) cr_log_error(__VA_ARGS__); } while (0)

/* A snapshot built from the oracle's [[size, frames, total_nframe]...]. */
struct tsnap {
	struct hk_snapshot s;
	struct hk_trace *traces;
	struct hk_traceback *tbs;
	char **owned;		/* every string we strdup'ed */
	size_t nowned;
};

/* interned: equal filenames share one pointer and equal tracebacks one
 * hk_traceback (as the producer does); otherwise every frame gets its own
 * copy and every trace its own traceback, to test content-based grouping. */
static void tsnap_load(struct tsnap *t, const json_t *arr, bool interned)
{
	size_t n = json_array_size(arr), i, nf = 0;
	json_t *tr, *seen = json_object();	/* frames as JSON text -> index */

	memset(t, 0, sizeof(*t));
	json_array_foreach(arr, i, tr)
		nf += json_array_size(json_array_get(tr, 1));
	t->traces = calloc(n + 1, sizeof(*t->traces));
	t->tbs = calloc(n + 1, sizeof(*t->tbs));
	t->owned = calloc(nf + 1, sizeof(*t->owned));
	cr_assert(t->traces && t->tbs && t->owned);
	json_array_foreach(arr, i, tr) {
		json_t *frames = json_array_get(tr, 1), *fr;
		struct hk_frame *f = calloc(json_array_size(frames), sizeof(*f));
		size_t k;

		cr_assert(f);
		json_array_foreach(frames, k, fr) {
			const char *name = json_string_value(json_array_get(fr, 0));
			const char *p = NULL;

			for (size_t j = 0; interned && j < t->nowned && !p; j++)
				if (!strcmp(t->owned[j], name))
					p = t->owned[j];
			if (!p)
				p = t->owned[t->nowned++] = strdup(name);
			f[k].filename = p;
			f[k].function = "";
			f[k].lineno = (unsigned int)json_integer_value(json_array_get(fr, 1));
		}
		t->tbs[i] = (struct hk_traceback){
			(uint32_t)json_array_size(frames),
			(uint32_t)json_integer_value(json_array_get(tr, 2)), f };
		struct hk_traceback *tb = &t->tbs[i];
		if (interned) {
			char *text = json_dumps(frames, JSON_COMPACT | JSON_ENCODE_ANY);
			json_t *first = json_object_get(seen, text);

			if (first)
				tb = &t->tbs[json_integer_value(first)];
			else
				json_object_set_new(seen, text, json_integer((json_int_t)i));
			free(text);
		}
		t->traces[i] = (struct hk_trace){ 0, (uint64_t)json_integer_value(json_array_get(tr, 0)),
						  tb, 0 };
	}
	json_decref(seen);
	t->s = (struct hk_snapshot){ t->traces, n, 5 };
}

static void tsnap_free(struct tsnap *t)
{
	for (size_t i = 0; i < t->s.ntraces; i++)
		free((void *)t->tbs[i].frames);
	for (size_t i = 0; i < t->nowned; i++)
		free(t->owned[i]);
	free(t->owned);
	free(t->tbs);
	free(t->traces);
}

#define FAIL(...) do { if (bad++ < 5) LOG_ERROR(__VA_ARGS__); } while (0)

/* Mismatches between st and the oracle's list: [str, size, count, frames]
 * or, for diffs, [str, size, size_diff, count, count_diff, frames]. */
static size_t check_stats(const struct hk_stats *st, const json_t *want, bool diff,
			  const char *what)
{
	size_t bad = 0;

	if (st->n != json_array_size(want) || st->diff != diff)
		FAIL("%s: %zu stats, want %zu", what, st->n, json_array_size(want));
	for (size_t i = 0; i < st->n && i < json_array_size(want); i++) {
		const struct hk_stat *s = &st->stats[i];
		const json_t *w = json_array_get(want, i);
		const json_t *frames = json_array_get(w, diff ? 5 : 3);
		char *text = hk_stat_strdup(s, diff);
		int64_t v[4] = { s->size, s->size_diff, s->count, s->count_diff };
		size_t nv = diff ? 4 : 2;

		if (!diff)
			v[1] = s->count;
		if (strcmp(text, json_string_value(json_array_get(w, 0))))
			FAIL("%s[%zu]: '%s', want '%s'", what, i, text,
			     json_string_value(json_array_get(w, 0)));
		for (size_t k = 0; k < nv; k++)
			if (v[k] != json_integer_value(json_array_get(w, k + 1)))
				FAIL("%s[%zu]: field %zu is %lld, want %lld", what, i, k,
				     (long long)v[k], (long long)json_integer_value(json_array_get(w, k + 1)));
		if (!diff && (s->size_diff != (hk_i128)s->size || s->count_diff != s->count))
			FAIL("%s[%zu]: statistics() diff fields differ", what, i);
		if (s->tb.nframe != json_array_size(frames) || s->tb.total_nframe != s->tb.nframe)
			FAIL("%s[%zu]: %u frames, want %zu", what, i, s->tb.nframe,
			     json_array_size(frames));
		for (uint32_t k = 0; k < s->tb.nframe && k < json_array_size(frames); k++) {
			const json_t *f = json_array_get(frames, k);

			if (strcmp(s->tb.frames[k].filename, json_string_value(json_array_get(f, 0))) ||
			    s->tb.frames[k].lineno != json_integer_value(json_array_get(f, 1)))
				FAIL("%s[%zu]: frame %u is %s:%u", what, i, k,
				     s->tb.frames[k].filename, s->tb.frames[k].lineno);
		}
		free(text);
	}
	return bad;
}

/* Runs every key type and cumulative flag of one oracle document;
 * returns the mismatches. */
static size_t check_document(const json_t *doc, bool interned, const char *label)
{
	struct tsnap nw, old;
	size_t i, bad = 0;
	json_t *c;

	tsnap_load(&nw, json_object_get(doc, "new"), interned);
	tsnap_load(&old, json_object_get(doc, "old"), interned);
	if (hk_snapshot_total(&nw.s) != (uint64_t)json_integer_value(json_object_get(doc, "total_new")) ||
	    hk_snapshot_total(&old.s) != (uint64_t)json_integer_value(json_object_get(doc, "total_old")))
		FAIL("%s: totals differ", label);
	json_array_foreach(json_object_get(doc, "cases"), i, c) {
		enum hk_key_type key = hk_key_type_parse(json_string_value(json_object_get(c, "key")));
		bool cum = json_is_true(json_object_get(c, "cumulative"));
		struct hk_stats *st = NULL, *df = NULL;
		int r1 = hk_statistics(&nw.s, key, cum, &st);
		int r2 = hk_compare_to(&nw.s, &old.s, key, cum, &df);
		char what[128];

		if (json_object_get(c, "error")) {
			if (r1 != -EINVAL || r2 != -EINVAL)
				FAIL("%s: key %d cumulative: %d %d, want -EINVAL", label, key, r1, r2);
			continue;
		}
		if (r1 || r2) {
			FAIL("%s: key %d cumulative %d: error %d %d", label, key, cum, r1, r2);
			continue;
		}
		snprintf(what, sizeof(what), "%s %s cumulative=%d statistics", label,
			 hk_key_type_name(key), cum);
		bad += check_stats(st, json_object_get(c, "statistics"), false, what);
		snprintf(what, sizeof(what), "%s %s cumulative=%d compare_to", label,
			 hk_key_type_name(key), cum);
		bad += check_stats(df, json_object_get(c, "compare"), true, what);
		hk_stats_free(st);
		hk_stats_free(df);
	}
	tsnap_free(&nw);
	tsnap_free(&old);
	return bad;
}

Test(stats, matches_tracemalloc, .timeout = 120)
{
	/* odd seeds: interned names and shared tracebacks; the 70000-trace
	 * run has unshared ones: one traceback sum per trace (stats.c,
	 * group_by) */
	static const struct { int seed, n; const char *mode, *keys; } runs[] = {
		{ 1, 0, "mixed", "" }, { 2, 1, "mixed", "" }, { 3, 30, "mixed", "" },
		{ 4, 300, "mixed", "" }, { 5, 3000, "mixed", "" }, { 6, 200, "same", "" },
		{ 7, 200, "empty_old", "" }, { 8, 200, "empty_new", "" },
		{ 9, 1000, "mixed", "" }, { 10, 60, "mixed", "" }, { 11, 5000, "same", "" },
		{ 12, 70000, "mixed", "lineno traceback" },
	};

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		char args[128];

		snprintf(args, sizeof(args), "oracle_stats.py %d %d %s %s", runs[i].seed, runs[i].n,
			 runs[i].mode, runs[i].keys);
		json_t *doc = oracle(args);
		cr_expect_eq(check_document(doc, runs[i].seed % 2, args), 0, "%s", args);
		json_decref(doc);
	}
}

/* The comparison must be able to fail: swap two stats, alter a str(). */
Test(stats, checks_catch_wrong_output)
{
	quiet = true;
	json_t *doc = oracle("oracle_stats.py 11 100 mixed");
	json_t *cases = json_object_get(doc, "cases");
	json_t *lineno = json_object_get(json_array_get(cases, 2), "statistics");
	json_t *tbdiff = json_object_get(json_array_get(cases, 4), "compare");
	json_t *a = json_incref(json_array_get(lineno, 0));

	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cases, 2), "key")), "lineno");
	json_array_set(lineno, 0, json_array_get(lineno, 1));
	json_array_set_new(lineno, 1, a);
	json_t *row = json_array_get(tbdiff, 3);
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s ", json_string_value(json_array_get(row, 0)));
	json_array_set_new(row, 0, json_string(buf));
	cr_expect_geq(check_document(doc, true, "tampered"), 3);
	json_decref(doc);
}

Test(stats, key_type_names)
{
	for (int k = HK_KEY_FILENAME; k <= HK_KEY_TRACEBACK; k++)
		cr_expect_eq(hk_key_type_parse(hk_key_type_name(k)), k);
	cr_expect_eq(hk_key_type_parse("line"), -1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 M traces, tracebacks shared like the producer shares them. */
Test(stats, one_million_traces_fast, .timeout = 60)
{
	enum { NT = 1000000, NTB = 100000, NFILE = 300 };
	char **names = calloc(NFILE, sizeof(*names));
	struct hk_traceback *tbs = calloc(NTB, sizeof(*tbs));
	struct hk_trace *tr = calloc(NT, sizeof(*tr)), *tr_old = calloc(NT, sizeof(*tr_old));
	unsigned int r = 12345;

	cr_assert(names && tbs && tr && tr_old);
	for (int i = 0; i < NFILE; i++) {
		names[i] = malloc(80);
		snprintf(names[i], 80, "/usr/lib/python3.11/site-packages/pkg%03d/module_%d.py", i % 37, i);
	}
	for (int i = 0; i < NTB; i++) {
		uint32_t nf = 1 + rand_r(&r) % 5;
		struct hk_frame *f = calloc(nf, sizeof(*f));

		for (uint32_t k = 0; k < nf; k++)
			f[k] = (struct hk_frame){ .filename = names[rand_r(&r) % NFILE],
						  .function = "",
						  .lineno = 1 + rand_r(&r) % 2000 };
		tbs[i] = (struct hk_traceback){ nf, nf, f };
	}
	for (int i = 0; i < NT; i++) {
		tr[i] = (struct hk_trace){ 0, (uint64_t)(rand_r(&r) % 100000), &tbs[rand_r(&r) % NTB], 0 };
		tr_old[i] = (struct hk_trace){ 0, (uint64_t)(rand_r(&r) % 100000), &tbs[rand_r(&r) % NTB], 0 };
	}
	struct hk_snapshot s = { tr, NT, 5 }, o = { tr_old, NT, 5 };
	static const struct { enum hk_key_type key; bool cum, cmp; } runs[] = {
		{ HK_KEY_LINENO, false, false }, { HK_KEY_FILENAME, false, false },
		{ HK_KEY_TRACEBACK, false, false }, { HK_KEY_LINENO, true, false },
		{ HK_KEY_LINENO, false, true }, { HK_KEY_TRACEBACK, false, true },
		{ HK_KEY_FILENAME, true, true },
	};
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct hk_stats *st;
		double t0 = now();
		int err = runs[i].cmp ? hk_compare_to(&s, &o, runs[i].key, runs[i].cum, &st)
				      : hk_statistics(&s, runs[i].key, runs[i].cum, &st);
		double dt = now() - t0;

		cr_assert_eq(err, 0);
		cr_log_info("%s %s cumulative=%d: %zu stats in %.3f s", runs[i].cmp ? "compare_to" : "statistics",
			    hk_key_type_name(runs[i].key), runs[i].cum, st->n, dt);
		cr_expect_lt(dt, HK_TIME_BOUND(1.0), "%zu: %.3f s", i, dt);
		hk_stats_free(st);
	}
	for (int i = 0; i < NTB; i++)
		free((void *)tbs[i].frames);
	for (int i = 0; i < NFILE; i++)
		free(names[i]);
	free(names);
	free(tbs);
	free(tr);
	free(tr_old);
}

/* A frame's function name and first line are along for the ride: two
 * frames at one (filename, lineno) group together whatever they say, as
 * tracemalloc's Frame compares only those two. */
Test(stats, function_names_do_not_split_groups)
{
	static const struct hk_frame fa = { .filename = "a.py", .function = "C.f",
					    .lineno = 3, .firstlineno = 2 },
		fb = { .filename = "a.py", .function = "<listcomp>", .lineno = 3,
		       .firstlineno = 3 },
		fc = { .filename = "a.py", .function = "", .lineno = 3 };
	static const struct hk_traceback ta = { 1, 1, &fa }, tb = { 1, 1, &fb },
		tc = { 1, 1, &fc };
	struct hk_trace tr[] = { { 0, 10, &ta, 0 }, { 0, 20, &tb, 0 }, { 0, 30, &tc, 0 } };
	struct hk_snapshot snap = { tr, 3, 1 }, half = { tr, 1, 1 };
	enum hk_key_type keys[] = { HK_KEY_FILENAME, HK_KEY_LINENO, HK_KEY_TRACEBACK };
	struct hk_stats *st;

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		/* cumulative 'traceback' is tracemalloc's ValueError */
		for (int cumulative = 0; cumulative < (keys[k] == HK_KEY_TRACEBACK ? 1 : 2);
		     cumulative++) {
			cr_assert_eq(hk_statistics(&snap, keys[k], cumulative, &st), 0);
			cr_assert_eq(st->n, 1);
			cr_assert_eq(st->stats[0].size, 60);
			cr_assert_eq(st->stats[0].count, 3);
			hk_stats_free(st);
		}
		cr_assert_eq(hk_compare_to(&snap, &half, keys[k], false, &st), 0);
		cr_assert_eq(st->n, 1);
		cr_assert_eq(st->stats[0].size_diff, 50);
		cr_assert_eq(st->stats[0].count_diff, 2);
		hk_stats_free(st);
	}
}

/* The time-series accumulator (user/aggregate/series.c): each series is
 * the statistics (stats.h) of its group at each point, owners come and go,
 * and the ranking is tracemalloc's at the last point. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

static const struct hk_frame fa = { "a.py", "", 1, 0 }, fb = { "b.py", "", 2, 0 },
	fc = { "c.py", "", 3, 0 };
/* most recent first: a.py:1 called from c.py:3, and from b.py:2 */
static const struct hk_frame ac[] = { { "a.py", "", 1, 0 }, { "c.py", "", 3, 0 } };
static const struct hk_frame ab[] = { { "a.py", "", 1, 0 }, { "b.py", "", 2, 0 } };
static const struct hk_traceback ta = { 1, 1, &fa }, tb = { 1, 1, &fb }, tc = { 1, 1, &fc },
	tac = { 2, 2, ac }, tab = { 2, 2, ab };

/* A snapshot of n traces of the given sizes and tracebacks. */
#define SNAP(name, ...)							\
	struct hk_trace name##_t[] = { __VA_ARGS__ };			\
	struct hk_snapshot name = { name##_t, sizeof(name##_t) / sizeof(name##_t[0]), 30 }
#define T(size, tb) { 0, (size), &(tb), 0 }

static void value(struct hk_series_set *s, const struct hk_series *x, size_t point,
		  uint64_t size, int64_t count)
{
	uint64_t sz = 1;
	int64_t n = 1;

	cr_assert(hk_series_at(s, x, point, &sz, &n), "no value at %zu", point);
	cr_assert_eq(sz, size, "size at %zu: %lu, want %lu", point, (unsigned long)sz,
		     (unsigned long)size);
	cr_assert_eq(n, count, "count at %zu: %ld, want %ld", point, (long)n, (long)count);
}

static const struct hk_series *top1(struct hk_series_set *s, size_t want_n,
				    const struct hk_series **out, size_t room)
{
	size_t n = 99;

	cr_assert_eq(hk_series_top(s, room, out, &n), 0);
	cr_assert_eq(n, want_n, "%zu ranked, want %zu", n, want_n);
	return n ? out[0] : NULL;
}

Test(series, one_owner_linear_growth)
{
	struct hk_series_set *s = hk_series_new(HK_KEY_LINENO, false);
	const struct hk_series *top[4];

	cr_assert(s);
	for (int i = 0; i < 5; i++) {
		/* a.py:1 leaks 100 B a point, b.py:2 stays at 50 B */
		struct hk_trace t[8];
		size_t n = 0;

		for (int k = 0; k <= i; k++)
			t[n++] = (struct hk_trace)T(100, ta);
		t[n++] = (struct hk_trace)T(50, tb);
		struct hk_snapshot snap = { t, n, 30 };

		cr_assert_eq(hk_series_point(s, 0.5 * (i + 1)), 0);
		cr_assert_eq(hk_series_add(s, 0, &snap), 0);
	}
	cr_assert_eq(hk_series_npoints(s), 5);
	cr_assert_float_eq(hk_series_time(s, 4), 2.5, 1e-12);
	cr_assert_eq(hk_series_count(s), 2);
	cr_assert_eq(top1(s, 2, top, 4), top[0]);
	cr_assert_str_eq(top[0]->tb.frames[0].filename, "a.py");
	cr_assert_str_eq(top[1]->tb.frames[0].filename, "b.py");
	for (size_t p = 0; p < 5; p++) {
		uint64_t size, count;

		value(s, top[0], p, 100 * (p + 1), (int64_t)p + 1);
		value(s, top[1], p, 50, 1);
		cr_assert(hk_series_total(s, 0, p, &size, &count));
		cr_assert_eq(size, 100 * (p + 1) + 50);
		cr_assert_eq(count, p + 2);
	}
	/* the key is a copy: the snapshots' frames are gone */
	cr_assert_neq(top[0]->tb.frames[0].filename, fa.filename);
	hk_series_free(s);
}

Test(series, absent_groups_are_zero_and_freed_ones_unranked)
{
	struct hk_series_set *s = hk_series_new(HK_KEY_LINENO, false);
	const struct hk_series *top[4];
	SNAP(p0, T(10, ta), T(1000, tc));
	SNAP(p1, T(20, tb));
	SNAP(p2, T(10, ta), T(20, tb));

	cr_assert_eq(hk_series_point(s, 1), 0);
	cr_assert_eq(hk_series_add(s, 0, &p0), 0);
	cr_assert_eq(hk_series_point(s, 2), 0);
	cr_assert_eq(hk_series_add(s, 0, &p1), 0);
	cr_assert_eq(hk_series_point(s, 3), 0);
	cr_assert_eq(hk_series_add(s, 0, &p2), 0);
	/* c.py:3 held the most, but nothing at the end: not ranked */
	top1(s, 2, top, 4);
	cr_assert_str_eq(top[0]->tb.frames[0].filename, "b.py");
	cr_assert_str_eq(top[1]->tb.frames[0].filename, "a.py");
	value(s, top[1], 0, 10, 1);
	value(s, top[1], 1, 0, 0);	/* freed in between */
	value(s, top[1], 2, 10, 1);
	/* room for one: the largest */
	cr_assert_eq(top1(s, 1, top, 1)->tb.frames[0].lineno, 2);
	hk_series_free(s);
}

Test(series, owners_come_and_go)
{
	struct hk_series_set *s = hk_series_new(HK_KEY_LINENO, false);
	const struct hk_series *top[4];
	SNAP(small, T(10, ta));
	SNAP(big, T(500, ta));
	uint64_t size, count;
	int64_t n;

	/* owner 7 at points 0-1 (then exits), owner 3 from point 1 on */
	cr_assert_eq(hk_series_point(s, 1), 0);
	cr_assert_eq(hk_series_add(s, 7, &big), 0);
	cr_assert_eq(hk_series_point(s, 2), 0);
	cr_assert_eq(hk_series_add(s, 7, &big), 0);
	cr_assert_eq(hk_series_add(s, 3, &small), 0);
	cr_assert_eq(hk_series_point(s, 3), 0);
	cr_assert_eq(hk_series_add(s, 3, &small), 0);
	/* the same line of two owners: two series; 7's ranks by its last */
	top1(s, 2, top, 4);
	cr_assert_eq(top[0]->owner, 7);
	cr_assert_eq(top[1]->owner, 3);
	cr_assert(!hk_series_at(s, top[0], 2, &size, &n), "owner 7 had gone");
	cr_assert(!hk_series_at(s, top[1], 0, &size, &n), "owner 3 was not there yet");
	value(s, top[1], 1, 10, 1);
	cr_assert(!hk_series_total(s, 3, 0, &size, &count));
	cr_assert(!hk_series_total(s, 99, 1, &size, &count));
	hk_series_sum(s, 1, &size, &count);
	cr_assert_eq(size, 510);
	cr_assert_eq(count, 2);
	hk_series_sum(s, 2, &size, &count);
	cr_assert_eq(size, 10);
	hk_series_free(s);
}

Test(series, a_missed_point_leaves_a_gap)
{
	struct hk_series_set *s = hk_series_new(HK_KEY_LINENO, false);
	SNAP(one, T(10, ta));
	const struct hk_series *top[1];
	uint64_t size;
	int64_t n;

	cr_assert_eq(hk_series_point(s, 1), 0);
	cr_assert_eq(hk_series_add(s, 0, &one), 0);
	cr_assert_eq(hk_series_point(s, 2), 0);
	cr_assert_eq(hk_series_point(s, 3), 0);
	cr_assert_eq(hk_series_add(s, 0, &one), 0);
	top1(s, 1, top, 1);
	value(s, top[0], 0, 10, 1);
	cr_assert(!hk_series_at(s, top[0], 1, &size, &n));
	value(s, top[0], 2, 10, 1);
	hk_series_free(s);
}

Test(series, refusals)
{
	struct hk_series_set *s = hk_series_new(HK_KEY_LINENO, false);
	struct hk_series_set *c = hk_series_new(HK_KEY_TRACEBACK, true);
	SNAP(one, T(10, ta));

	cr_assert_eq(hk_series_add(s, 0, &one), -EINVAL, "no point yet");
	cr_assert_eq(hk_series_point(s, 2), 0);
	cr_assert_eq(hk_series_point(s, 1), -EINVAL, "time went back");
	cr_assert_eq(hk_series_point(s, 2), 0, "two points at one time");
	cr_assert_eq(hk_series_add(s, 0, &one), 0);
	cr_assert_eq(hk_series_add(s, 0, &one), -EINVAL, "owner added twice");
	cr_assert_eq(hk_series_add(s, 1, &one), 0);
	cr_assert_eq(hk_series_point(c, 1), 0);
	cr_assert_eq(hk_series_add(c, 0, &one), -EINVAL, "cumulative traceback");
	cr_assert_eq(hk_series_key(c), HK_KEY_TRACEBACK);
	hk_series_free(s);
	hk_series_free(c);
	hk_series_free(NULL);
}

Test(series, traceback_and_cumulative_keys)
{
	struct hk_series_set *tb_set = hk_series_new(HK_KEY_TRACEBACK, false);
	struct hk_series_set *ln = hk_series_new(HK_KEY_LINENO, false);
	struct hk_series_set *cum = hk_series_new(HK_KEY_LINENO, true);
	const struct hk_series *top[8];
	SNAP(snap, T(100, tac), T(30, tab), T(30, tab));

	for (int i = 0; i < 3; i++) {
		struct hk_series_set *s = i == 0 ? tb_set : i == 1 ? ln : cum;

		cr_assert_eq(hk_series_point(s, 1), 0);
		cr_assert_eq(hk_series_add(s, 0, &snap), 0);
	}
	/* two tracebacks of one line */
	top1(tb_set, 2, top, 8);
	cr_assert_eq(top[0]->tb.nframe, 2);
	cr_assert_str_eq(top[0]->tb.frames[1].filename, "c.py");
	cr_assert_str_eq(top[1]->tb.frames[1].filename, "b.py");
	value(tb_set, top[1], 0, 60, 2);
	/* one line */
	top1(ln, 1, top, 8);
	value(ln, top[0], 0, 160, 3);
	/* every frame: a.py:1 160, c.py:3 100, b.py:2 60 */
	top1(cum, 3, top, 8);
	value(cum, top[0], 0, 160, 3);
	cr_assert_str_eq(top[1]->tb.frames[0].filename, "c.py");
	value(cum, top[2], 0, 60, 2);
	hk_series_free(tb_set);
	hk_series_free(ln);
	hk_series_free(cum);
}

Test(series, sampled_blocks_weigh_1_over_p)
{
	struct hk_series_set *s = hk_series_new(HK_KEY_LINENO, false);
	struct hk_trace t[] = { { 0, 100, &ta, 10.0 }, { 0, 100, &ta, 10.0 },
				{ 0, 8192, &tb, 1.0 } };
	struct hk_snapshot snap = { t, 3, 30 };
	const struct hk_series *top[2];
	uint64_t size, count;

	cr_assert_eq(hk_series_point(s, 1), 0);
	cr_assert_eq(hk_series_add(s, 0, &snap), 0);
	top1(s, 2, top, 2);
	value(s, top[0], 0, 8192, 1);
	value(s, top[1], 0, 2000, 20);
	cr_assert(hk_series_total(s, 0, 0, &size, &count));
	cr_assert_eq(size, 10192);
	cr_assert_eq(count, 21);
	hk_series_free(s);
}

/* The ranking at the last point is Snapshot.statistics()'s order there,
 * ties included, and every value is that point's statistic: checked
 * against hk_statistics over random snapshots of many lines. */
Test(series, equals_statistics_at_every_point)
{
	enum { LINES = 3000, POINTS = 40, TRACES = 4000 };
	struct hk_frame *frames = calloc(LINES, sizeof(*frames));
	struct hk_traceback *tbs = calloc(LINES, sizeof(*tbs));
	struct hk_trace *t = calloc(TRACES, sizeof(*t));
	struct hk_series_set *s = hk_series_new(HK_KEY_LINENO, false);
	const struct hk_series **top = calloc(LINES, sizeof(*top));
	static const char *const files[] = { "x.py", "y.py", "z/x.py" };
	unsigned seed = 16;
	size_t n;

	cr_assert(frames && tbs && t && s && top);
	for (int i = 0; i < LINES; i++) {
		frames[i] = (struct hk_frame){ files[i % 3], "", (unsigned)(i / 3 + 1), 0 };
		tbs[i] = (struct hk_traceback){ 1, 1, &frames[i] };
	}
	for (int p = 0; p < POINTS; p++) {
		struct hk_snapshot snap = { t, TRACES, 30 };
		struct hk_stats *st;

		for (int i = 0; i < TRACES; i++)	/* few sizes: many ties */
			t[i] = (struct hk_trace){ 0, 8u << (rand_r(&seed) % 3),
						  &tbs[rand_r(&seed) % LINES], 0 };
		cr_assert_eq(hk_series_point(s, p), 0);
		cr_assert_eq(hk_series_add(s, 0, &snap), 0);
		cr_assert_eq(hk_statistics(&snap, HK_KEY_LINENO, false, &st), 0);
		cr_assert_eq(hk_series_top(s, LINES, top, &n), 0);
		/* the ranking is the last point's: this one's */
		cr_assert_eq(n, st->n);
		for (size_t i = 0; i < n; i++) {
			cr_assert_str_eq(top[i]->tb.frames[0].filename,
					 st->stats[i].tb.frames[0].filename, "rank %zu", i);
			cr_assert_eq(top[i]->tb.frames[0].lineno, st->stats[i].tb.frames[0].lineno);
			value(s, top[i], (size_t)p, (uint64_t)st->stats[i].size, st->stats[i].count);
		}
		hk_stats_free(st);
	}
	cr_assert_leq(hk_series_count(s), LINES);
	hk_series_free(s);
	free(top);
	free(t);
	free(tbs);
	free(frames);
}

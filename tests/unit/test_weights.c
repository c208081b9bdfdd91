/* Sampled traces: statistics are estimates, each block counting 1/p. */
#include <criterion/criterion.h>
#include "stats.h"

Test(weights, statistics_sum_weighted_sizes_and_counts)
{
	static const struct hk_frame fa = { .filename = "a.py", .function = "", .lineno = 1 },
		fb = { .filename = "b.py", .function = "", .lineno = 2 };
	static const struct hk_traceback ta = { 1, 1, &fa }, tbb = { 1, 1, &fb };
	/* a.py: two sampled blocks of 100 B at p = 0.1, one exact of 5 B;
	 * b.py: one sampled block of 40 B at p = 1/3. */
	struct hk_trace tr[] = {
		{ 0, 100, &ta, 10.0 }, { 0, 100, &ta, 10.0 }, { 0, 5, &ta, 0 },
		{ 0, 40, &tbb, 3.0 },
	};
	struct hk_snapshot snap = { tr, 4, 1 };
	struct hk_stats *st;

	cr_assert_eq(hk_statistics(&snap, HK_KEY_LINENO, false, &st), 0);
	cr_assert_eq(st->n, 2);
	cr_assert_str_eq(st->stats[0].tb.frames[0].filename, "a.py");
	cr_assert_eq(st->stats[0].size, 2005);
	cr_assert_eq(st->stats[0].count, 21);
	cr_assert_eq(st->stats[1].size, 120);
	cr_assert_eq(st->stats[1].count, 3);
	hk_stats_free(st);
	cr_assert_eq(hk_snapshot_total(&snap), 2125);
}

/* When --interval's snapshots are due (user/cli/interval.c's ticker): a
 * tick every interval from the window's start, the window's end last,
 * and the ticks a slow snapshot overran skipped and counted. */
#include <criterion/criterion.h>

#include "interval.h"

static struct hk_options opts(unsigned long interval_ms, unsigned long duration_ms)
{
	return (struct hk_options){ .interval_ms = interval_ms, .duration_ms = duration_ms };
}

Test(ticker, every_interval_then_the_end)
{
	struct hk_options o = opts(3000, 10000);
	struct hk_ticker tk;
	bool end;

	hk_ticker_init(&tk, &o, 100);
	for (int k = 1; k <= 3; k++) {
		cr_assert_float_eq(hk_ticker_due(&tk, &end), 100 + 3 * k, 1e-9);
		cr_assert(!end);
		hk_ticker_taken(&tk, 100 + 3 * k, 100 + 3 * k + 0.05);
	}
	cr_assert_float_eq(hk_ticker_due(&tk, &end), 110, 1e-9);
	cr_assert(end, "10 s at 3 s: 3, 6, 9, then the end");
	cr_assert_eq(tk.taken, 3);
	cr_assert_eq(tk.late, 0);
	cr_assert_float_eq(tk.took_max, 0.05, 1e-9);
}

Test(ticker, a_tick_at_the_end_is_the_end)
{
	struct hk_options o = opts(400, 4000);
	struct hk_ticker tk;
	bool end;
	int n = 0;

	hk_ticker_init(&tk, &o, 0);
	while (hk_ticker_due(&tk, &end), !end) {
		double t = hk_ticker_due(&tk, &end);

		hk_ticker_taken(&tk, t, t + 0.01);
		n++;
	}
	cr_assert_eq(n, 9, "ticks 0.4 .. 3.6, and the end at 4: %d", n);
	o = opts(1000, 10001);
	hk_ticker_init(&tk, &o, 0);
	tk.next = 10;
	cr_assert_float_eq(hk_ticker_due(&tk, &end), 10, 1e-9);
	cr_assert(!end, "10 s is a tick of a 10.001 s window");
}

Test(ticker, a_slow_snapshot_skips_what_it_overran)
{
	struct hk_options o = opts(1000, 20000);
	struct hk_ticker tk;
	bool end;

	hk_ticker_init(&tk, &o, 0);
	hk_ticker_taken(&tk, 1, 4.5);	/* ticks 2, 3 and 4 went by */
	cr_assert_float_eq(hk_ticker_due(&tk, &end), 5, 1e-9);
	cr_assert_eq(tk.late, 3);
	hk_ticker_taken(&tk, 5, 5.9);	/* in time for 6 */
	cr_assert_float_eq(hk_ticker_due(&tk, &end), 6, 1e-9);
	cr_assert_eq(tk.late, 3);
	hk_ticker_taken(&tk, 6, 30);	/* past the end: only ticks before it count */
	cr_assert(hk_ticker_due(&tk, &end) == 20 && end);
	cr_assert_eq(tk.late, 3 + 13, "and ticks 7 .. 19: %lu", tk.late);
	cr_assert_float_eq(tk.took_max, 24, 1e-9);
}

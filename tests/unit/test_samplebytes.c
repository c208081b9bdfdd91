/* --sample-bytes: the fixed-point p(s) = 1 - exp(-s/N) BPF and the weights
 * share, against libm; the trampoline's first stage never below it; the
 * option's numbers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include "samplebytes.h"
#include "samplerates.h"

static double p_of(uint64_t size, uint64_t period)
{
	return ldexp((double)hk_sb_threshold(size, period,
					     (const volatile __u64 *)hk_sb_table()), -32);
}

Test(samplebytes, threshold_is_one_minus_exp)
{
	static const uint64_t periods[] = { 1, 3, 1000, 4096, 65536, 500000,
					    524288, 1 << 20, HK_SB_MAX_PERIOD };

	for (size_t k = 0; k < sizeof(periods) / sizeof(periods[0]); k++) {
		uint64_t n = periods[k];

		for (uint64_t s = 1; s < 40 * n && s < (1ULL << 34);
		     s = s < 600 ? s + 1 : s + s / 7) {
			double want = -expm1(-(double)s / (double)n);
			double got = p_of(s, n);
			/* the Q32 x truncates: up to 1 in x * 2^32 relative */
			double tol = 4e-9 + want * (1.0 / ((double)s * 4294967296.0 / (double)n));

			cr_assert_leq(fabs(got - want), tol,
				      "N %llu size %llu: %.12g, libm %.12g",
				      (unsigned long long)n, (unsigned long long)s, got, want);
		}
	}
	/* size 0 is served as 1; past 23 N it is 1 */
	cr_assert_eq(hk_sb_threshold(0, 4096, (const volatile __u64 *)hk_sb_table()),
		     hk_sb_threshold(1, 4096, (const volatile __u64 *)hk_sb_table()));
	cr_assert_eq(hk_sb_threshold(23 * 4096, 4096, (const volatile __u64 *)hk_sb_table()),
		     HK_SB_ONE);
	cr_assert_eq(hk_sb_threshold(~0ULL, 4096, (const volatile __u64 *)hk_sb_table()),
		     HK_SB_ONE);
}

/* BPF keeps a trampoline-sampled block with p / p1: p1 >= p everywhere. */
Test(samplebytes, first_stage_never_below)
{
	static const uint64_t periods[] = { 1, 7, 4096, 524288, 999999, HK_SB_MAX_PERIOD };

	for (size_t k = 0; k < sizeof(periods) / sizeof(periods[0]); k++) {
		struct hk_sample_rates r;
		char spec[32];

		snprintf(spec, sizeof(spec), "%llu", (unsigned long long)periods[k]);
		cr_assert_eq(hk_sample_bytes_parse(spec, &r, NULL, 0), 0);
		for (uint64_t s = 0; s < 30 * r.period + 10; s = s < 1000 ? s + 1 : s + s / 5)
			cr_assert_geq(hk_sb_first(s, r.mult),
				      hk_sb_threshold(s, r.period,
						      (const volatile __u64 *)hk_sb_table()),
				      "N %llu size %llu", (unsigned long long)r.period,
				      (unsigned long long)s);
	}
}

Test(samplebytes, weights_invert_the_probability)
{
	struct hk_sample_rates r;

	cr_assert_eq(hk_sample_bytes_parse("64K", &r, NULL, 0), 0);
	cr_assert_eq(r.period, 65536);
	cr_assert_eq(r.mult, 65536);
	for (uint64_t s = 1; s < 1 << 22; s *= 3)
		cr_assert_float_eq(hk_sample_weight(&r, 1, s) * hk_sample_prob(&r, s), 1.0, 1e-12);
	/* class 0: kept always */
	cr_assert_float_eq(hk_sample_weight(&r, 0, 100), 1.0, 1e-12);
	cr_assert_float_eq(hk_sample_prob(&r, 65536), 1 - exp(-1), 1e-8);
}

Test(samplebytes, parse)
{
	static const struct { const char *s; uint64_t n; } ok[] = {
		{ "1", 1 }, { "65536", 65536 }, { "512K", 524288 }, { "512KiB", 524288 },
		{ "64k", 65536 }, { "1M", 1 << 20 }, { "64MiB", 1 << 26 },
	};
	static const char *const bad[] = { "", "0", "-1", "0K", "65M", "67108865",
					   "1.5M", "1G", "12 ", " 12", "0x10", "5KB" };
	struct hk_sample_rates r;
	char err[200];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(hk_sample_bytes_parse(ok[i].s, &r, err, sizeof(err)), 0, "%s", ok[i].s);
		cr_assert_eq(r.period, ok[i].n, "%s", ok[i].s);
		cr_assert_eq(r.n, 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(hk_sample_bytes_parse(bad[i], &r, err, sizeof(err)), -1, "%s", bad[i]);
		cr_assert(strstr(err, "from 1 to") || strstr(err, "expected a number"), "%s", err);
	}
	hk_sample_rates_str(&(struct hk_sample_rates){ .period = 524288 }, err, sizeof(err));
	cr_assert_str_eq(err, "bytes:524288");
}

/* --sample-bytes N: an allocation of s bytes is sampled with probability
 * p(s) = 1 - exp(-s/N) and weighed 1/p(s) (Go's MemProfileRate).
 *
 * Two stages, because the trampoline in the target has no exp(): it
 * samples with p1(s) = min(1, s * mult / 2^32), mult = ceil(2^32 / N) >= p
 * (one multiply), and BPF keeps such a block with probability p / p1. The
 * BPF side and user space's weights use this one fixed-point p, so a
 * block's weight is exactly the inverse of the probability it was kept
 * with, whatever the rounding.
 *
 * p in Q32 (2^32 = 1): x = s/N in Q32, split as i/64 + r (r < 1/64);
 * p = P[i] + (1 - P[i]) * (1 - exp(-r)), P[i] = 1 - exp(-i/64) from a
 * table user space fills with libm (hk_sb_table), 1 - exp(-r) as
 * r - r^2/2 + r^3/6 - r^4/24 (off by < r^5/120 < 2^-37). */
#ifndef HAWK_SAMPLEBYTES_H
#define HAWK_SAMPLEBYTES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HK_SB_ONE (1ULL << 32)
#define HK_SB_STEPS 64		/* table steps per unit of s/N */
#define HK_SB_XMAX 23		/* s >= 23 N: p = 1 (1 - p < 2^-33) */
#define HK_SB_TAB (HK_SB_XMAX * HK_SB_STEPS + 1)
/* Largest N: then s < 23 N < 2^31 and s << 32 fits in 64 bits. */
#define HK_SB_MAX_PERIOD (1ULL << 26)

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* p(size) in Q32, 1..2^32, for 1 <= period <= HK_SB_MAX_PERIOD. */
static __always_inline __u64 hk_sb_threshold(__u64 size, __u64 period,
					     const volatile __u64 *tab)
{
	__u64 x, i, r, r2, r3, r4, g, pa;

	if (!size)
		size = 1;	/* as the allocator serves it */
	if (!period || size >= HK_SB_XMAX * period)
		return HK_SB_ONE;
	x = (size << 32) / period;
	i = x >> 26;
	r = x & ((1ULL << 26) - 1);
	if (i >= HK_SB_TAB)
		return HK_SB_ONE;
	r2 = (r * r) >> 32;
	r3 = (r2 * r) >> 32;
	r4 = (r3 * r) >> 32;
	g = r - r2 / 2 + r3 / 6 - r4 / 24;
	pa = tab[i];
	pa += ((HK_SB_ONE - pa) * g) >> 32;
	return pa ? pa : 1;
}

/* The trampoline's stage: p1(size) in Q32, capped at 2^32. */
static __always_inline __u64 hk_sb_first(__u64 size, __u64 mult)
{
	if (!size)
		size = 1;
	if (size >= HK_SB_ONE || size * mult >= HK_SB_ONE)
		return HK_SB_ONE;
	return size * mult;
}

#endif

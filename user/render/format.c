/* Size formatting.  Both functions mirror Python code line by line; printf's
 * %.Nf is correctly rounded (round-half-even on the exact binary value) just
 * like Python's float formatting, so the digits agree. */
#include <math.h>
#include <stdio.h>

#include "format.h"

void hk_format_size(char *buf, size_t len, double size, bool sign)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	const size_t nunits = sizeof(units) / sizeof(units[0]);

	for (size_t i = 0; i < nunits; i++) {
		if (fabs(size) < 100 && i != 0) {
			/* 3 digits (xx.x UNIT) */
			snprintf(buf, len, sign ? "%+.1f %s" : "%.1f %s", size, units[i]);
			return;
		}
		if (fabs(size) < 10 * 1024 || i == nunits - 1) {
			/* 4 or 5 digits (xxxx UNIT) */
			snprintf(buf, len, sign ? "%+.0f %s" : "%.0f %s", size, units[i]);
			return;
		}
		size /= 1024;
	}
}

void hk_format_bytes(char *buf, size_t len, double value)
{
	static const char *const units[] = { "B", "KB", "MB", "GB", "TB", "PB", "EB" };
	double v = value;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (fabs(v) < 1024.0) {
			snprintf(buf, len, "%3.1f %s", v, units[i]);
			return;
		}
		v /= 1024.0;
	}
	snprintf(buf, len, "%.1f YB", v);
}

static int bits(hk_u128 v)
{
	int n = 0;

	for (; v; v >>= 1)
		n++;
	return n;
}

/* (double)size / (double)count would round twice once size passes 2^53.
 * Instead: scale size by 2^k so the integer quotient q has 56 or more
 * bits, fold the remainder into q's lowest bit (below the rounding bit,
 * so it only breaks ties), and let the one conversion of q round. */
double hk_size_ratio(hk_u128 size, uint64_t count)
{
	int k = 56 + bits(count) - bits(size);
	hk_u128 q, r;

	if (!size)
		return 0;
	if (k < 0)
		k = 0;
	/* size << k < 2^(56 + bits(count)) <= 2^120: no overflow */
	q = (size << k) / count;
	r = (size << k) % count;
	return ldexp((double)(q | (r != 0)), -k);
}

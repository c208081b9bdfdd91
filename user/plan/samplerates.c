#include "samplerates.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "samplebytes.h"

#define ERR(...) (err ? snprintf(err, errlen, __VA_ARGS__) : 0, -1)

int hk_sample_rates_parse(const char *spec, struct hk_sample_rates *r,
			  char *err, size_t errlen)
{
	const char *p = spec;

	memset(r, 0, sizeof(*r));
	if (!*spec)
		return ERR("expected BOUND:PROBABILITY[,...], got ''");
	while (*p) {
		char *end;
		unsigned long long bound;
		double prob;

		if (r->n == HK_SAMPLE_MAX_CLASSES)
			return ERR("at most %d classes, got '%s'",
				   HK_SAMPLE_MAX_CLASSES, spec);
		if (*p < '0' || *p > '9')
			return ERR("expected a byte bound at '%s' in '%s'", p, spec);
		errno = 0;
		bound = strtoull(p, &end, 10);
		if (errno || *end != ':' || bound < 1 || bound > (1ULL << 31))
			return ERR("expected BOUND:PROBABILITY with a bound from 1 to %llu, got '%s'",
				   1ULL << 31, spec);
		if (r->n && bound <= r->bound[r->n - 1])
			return ERR("bounds must increase, got '%s'", spec);
		p = end + 1;
		/* decimals only, as every other number: no hex, no exponent */
		size_t digits = strspn(p, "0123456789."), dots = 0;

		for (size_t k = 0; k < digits; k++)
			dots += p[k] == '.';
		if (!digits || dots > 1 || (digits == 1 && *p == '.') ||
		    (p[digits] && p[digits] != ','))
			return ERR("expected a decimal probability at '%s' in '%s'", p, spec);
		errno = 0;
		prob = strtod(p, &end);
		if (errno || end == p || !(prob > 0 && prob <= 1))
			return ERR("probabilities must be in (0, 1], got '%s'", spec);
		if (*end && *end != ',')
			return ERR("unexpected '%s' in '%s'", end, spec);
		r->bound[r->n] = bound;
		r->prob[r->n] = prob;
		r->n++;
		p = *end ? end + 1 : end;
		if (*end == ',' && !*p)
			return ERR("trailing ',' in '%s'", spec);
	}
	return 0;
}

int hk_sample_bytes_parse(const char *spec, struct hk_sample_rates *r,
			  char *err, size_t errlen)
{
	static const struct { const char *s; unsigned shift; } units[] = {
		{ "", 0 }, { "K", 10 }, { "KiB", 10 }, { "k", 10 },
		{ "M", 20 }, { "MiB", 20 },
	};
	unsigned long long n;
	char *end;

	memset(r, 0, sizeof(*r));
	if (*spec < '0' || *spec > '9')
		return ERR("expected a number of bytes, got '%s'", spec);
	errno = 0;
	n = strtoull(spec, &end, 10);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].s))
			continue;
		if (errno || n < 1 || n > HK_SB_MAX_PERIOD >> units[i].shift)
			break;
		r->period = n << units[i].shift;
		/* ceil: the trampoline's p1 must never be below p */
		r->mult = ((1ULL << 32) + r->period - 1) / r->period;
		return 0;
	}
	return ERR("expected bytes from 1 to %llu (64M), with an optional K or M, got '%s'",
		   HK_SB_MAX_PERIOD, spec);
}

static uint64_t sb_tab[HK_SB_TAB];

static void sb_fill(void)
{
	for (unsigned i = 0; i < HK_SB_TAB; i++)
		sb_tab[i] = (uint64_t)llround(ldexp(-expm1(-(double)i / HK_SB_STEPS), 32));
}

/* Filled once: host-wide, tracer threads weigh blocks at the same time. */
const uint64_t *hk_sb_table(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, sb_fill);
	return sb_tab;
}

double hk_sample_prob(const struct hk_sample_rates *r, uint64_t size)
{
	if (r->period)
		return ldexp((double)hk_sb_threshold(size, r->period,
						 (const volatile __u64 *)hk_sb_table()), -32);
	if (size == 0)
		size = 1;	/* as the allocator serves it (and the trampoline) */
	for (unsigned i = 0; i < r->n; i++)
		if (size < r->bound[i])
			return r->prob[i];
	return 1.0;
}

uint64_t hk_sample_threshold(double p)
{
	return (uint64_t)ldexp(p, 32);
}

double hk_sample_weight(const struct hk_sample_rates *r, unsigned cls,
			uint64_t size)
{
	if (r->period)
		return cls ? 1.0 / hk_sample_prob(r, size) : 1.0;
	return cls >= 1 && cls <= r->n ? 1.0 / r->prob[cls - 1] : 1.0;
}

void hk_sample_rates_str(const struct hk_sample_rates *r, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	if (r->period) {
		snprintf(buf, len, "bytes:%llu", (unsigned long long)r->period);
		return;
	}
	for (unsigned i = 0; i < r->n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%llu:%g", i ? "," : "",
				      (unsigned long long)r->bound[i], r->prob[i]);
}

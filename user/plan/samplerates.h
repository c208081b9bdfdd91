/* Sampling rates by size class, heapprof style: "128:0.0001,8192:0.1"
 * samples sizes below 128 B with probability 1/10,000, sizes from 128 B to
 * 8,191 B with 1/10, and every larger block. */
#ifndef HAWK_SAMPLERATES_H
#define HAWK_SAMPLERATES_H

#include <stddef.h>
#include <stdint.h>

#define HK_SAMPLE_MAX_CLASSES 8
#define HK_SAMPLE_DEFAULT "128:0.0001,8192:0.1"	/* heapprof's defaults */

struct hk_sample_rates {
	unsigned n;
	uint64_t bound[HK_SAMPLE_MAX_CLASSES];	/* exclusive, increasing */
	double prob[HK_SAMPLE_MAX_CLASSES];	/* in (0, 1] */
};

/* 0, or -1 with one line in err (no option name: the caller adds it). */
int hk_sample_rates_parse(const char *spec, struct hk_sample_rates *r,
			  char *err, size_t errlen);
/* The probability a block of this size is sampled with. */
double hk_sample_prob(const struct hk_sample_rates *r, uint64_t size);
/* p as a threshold on a 32-bit random number: sample iff random < it;
 * 2^32 (p = 1) means always. The BPF side and the trampoline both use it. */
uint64_t hk_sample_threshold(double p);
/* The weight (1/p) of a block recorded in class cls (HK_BLOCK_CLASS: 0
 * always sampled, k: class k-1). */
double hk_sample_weight(const struct hk_sample_rates *r, unsigned cls);
/* "128:0.0001,8192:0.1" back, for reports. */
void hk_sample_rates_str(const struct hk_sample_rates *r, char *buf, size_t len);

#endif

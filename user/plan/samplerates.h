/* Sampling rates by size class, heapprof style: "128:0.0001,8192:0.1"
 * samples sizes below 128 B with probability 1/10,000, sizes from 128 B to
 * 8,191 B with 1/10, and every larger block. */
#ifndef HAWK_SAMPLERATES_H
#define HAWK_SAMPLERATES_H

#include <stddef.h>
#include <stdint.h>

#define HK_SAMPLE_MAX_CLASSES 8
#define HK_SAMPLE_DEFAULT "128:0.0001,8192:0.1"	/* heapprof's defaults */

/* --sample-bytes: Go's MemProfileRate; the agent samples so by default. */
#define HK_SAMPLE_BYTES_DEFAULT (512 * 1024)
#define HK_SAMPLE_BYTES_DEFAULT_STR "512K"

struct hk_sample_rates {
	/* period != 0: sampling by bytes (include/samplebytes.h), n = 0 */
	uint64_t period;
	uint64_t mult;				/* ceil(2^32 / period) */
	unsigned n;
	uint64_t bound[HK_SAMPLE_MAX_CLASSES];	/* exclusive, increasing */
	double prob[HK_SAMPLE_MAX_CLASSES];	/* in (0, 1] */
};

/* 0, or -1 with one line in err (no option name: the caller adds it). */
int hk_sample_rates_parse(const char *spec, struct hk_sample_rates *r,
			  char *err, size_t errlen);
/* --sample-bytes N: 1..HK_SB_MAX_PERIOD, with a K/M (or KiB/MiB) suffix
 * allowed. 0, or -1 with one line in err. */
int hk_sample_bytes_parse(const char *spec, struct hk_sample_rates *r,
			  char *err, size_t errlen);
/* The Q32 table of 1 - exp(-i/64) hk_sb_threshold reads (the BPF side
 * gets a copy). */
const uint64_t *hk_sb_table(void);
/* The probability a block of this size is sampled with. */
double hk_sample_prob(const struct hk_sample_rates *r, uint64_t size);
/* p as a threshold on a 32-bit random number: sample iff random < it;
 * 2^32 (p = 1) means always. The BPF side and the trampoline both use it. */
uint64_t hk_sample_threshold(double p);
/* The weight (1/p) of a block of this size recorded in class cls
 * (HK_BLOCK_CLASS: 0 always sampled, k: class k-1; by bytes, 1: by its
 * size). */
double hk_sample_weight(const struct hk_sample_rates *r, unsigned cls,
			uint64_t size);
/* "128:0.0001,8192:0.1" back, for reports ("bytes:524288" by bytes). */
void hk_sample_rates_str(const struct hk_sample_rates *r, char *buf, size_t len);

#endif

/* --stats output: the size distribution of allocations, per domain, in
 * power-of-two buckets (heapprof's stats mode, to help choose rates). */
#ifndef HAWK_SIZESTATS_H
#define HAWK_SIZESTATS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include "hawk.h"

typedef struct hk_hist_cell hk_hist[HK_DK_MAX][HK_HIST_BUCKETS];

/* Smallest and largest size bucket b holds. */
void hk_bucket_range(unsigned b, uint64_t *lo, uint64_t *hi);
const char *hk_domain_kind_name(unsigned dk);

/* {"domains": [{"domain", "allocations", "bytes", "buckets": [{"min",
 * "max", "count", "bytes"}]}], "total": {...}}; empty buckets left out. */
json_t *hk_sizestats_json(const hk_hist *h);
/* The same as an aligned table. 0 or -1. */
int hk_sizestats_text(FILE *f, const hk_hist *h);

#endif

#include "sizestats.h"

#include <inttypes.h>

void hk_bucket_range(unsigned b, uint64_t *lo, uint64_t *hi)
{
	*lo = b ? 1ULL << (b - 1) : 0;
	*hi = b ? (b >= 64 ? UINT64_MAX : (1ULL << b) - 1) : 0;
}

const char *hk_domain_kind_name(unsigned dk)
{
	return dk == HK_DK_RAW ? "raw" : dk == HK_DK_PYMALLOC ? "pymalloc" : "?";
}

/* One row of buckets: a domain, or the total (dk < 0). */
static void sum_bucket(const hk_hist *h, int dk, unsigned b, uint64_t *n,
		       uint64_t *bytes)
{
	*n = *bytes = 0;
	for (int d = 0; d < HK_DK_MAX; d++) {
		if (dk >= 0 && d != dk)
			continue;
		*n += (*h)[d][b].count;
		*bytes += (*h)[d][b].bytes;
	}
}

static json_t *row(const hk_hist *h, int dk)
{
	json_t *buckets = json_array();
	uint64_t tn = 0, tb = 0;

	for (unsigned b = 0; b < HK_HIST_BUCKETS; b++) {
		uint64_t n, bytes, lo, hi;

		sum_bucket(h, dk, b, &n, &bytes);
		if (!n)
			continue;
		hk_bucket_range(b, &lo, &hi);
		tn += n;
		tb += bytes;
		json_array_append_new(buckets, json_pack("{s:I, s:I, s:I, s:I}",
			"min", (json_int_t)lo, "max", (json_int_t)hi,
			"count", (json_int_t)n, "bytes", (json_int_t)bytes));
	}
	return json_pack("{s:s, s:I, s:I, s:o}",
			 "domain", dk < 0 ? "all" : hk_domain_kind_name(dk),
			 "allocations", (json_int_t)tn, "bytes", (json_int_t)tb,
			 "buckets", buckets);
}

json_t *hk_sizestats_json(const hk_hist *h)
{
	json_t *doms = json_array();

	for (int d = 0; d < HK_DK_MAX; d++)
		json_array_append_new(doms, row(h, d));
	return json_pack("{s:o, s:o}", "domains", doms, "total", row(h, -1));
}

int hk_sizestats_text(FILE *f, const hk_hist *h)
{
	fprintf(f, "%-9s %21s %12s %14s %8s\n", "domain", "size (bytes)",
		"count", "bytes", "count%");
	for (int d = -1; d < HK_DK_MAX; d++) {
		uint64_t all = 0, b0, b1;

		for (unsigned b = 0; b < HK_HIST_BUCKETS; b++) {
			sum_bucket(h, d, b, &b0, &b1);
			all += b0;
		}
		for (unsigned b = 0; b < HK_HIST_BUCKETS; b++) {
			uint64_t n, bytes, lo, hi;
			char range[48];

			sum_bucket(h, d, b, &n, &bytes);
			if (!n)
				continue;
			hk_bucket_range(b, &lo, &hi);
			snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, lo, hi);
			fprintf(f, "%-9s %21s %12" PRIu64 " %14" PRIu64 " %7.2f%%\n",
				d < 0 ? "all" : hk_domain_kind_name(d), range, n,
				bytes, 100.0 * n / all);
		}
	}
	return ferror(f) ? -1 : 0;
}

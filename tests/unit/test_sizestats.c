/* --stats rendering: bucket bounds and totals (user/aggregate/sizestats.c). */
#include <criterion/criterion.h>
#include <string.h>
#include "sizestats.h"

Test(sizestats, bucket_ranges_tile_the_sizes)
{
	uint64_t lo, hi, next = 0;

	/* Each bucket starts where the previous ended: no size in two. */
	for (unsigned b = 0; b < HK_HIST_BUCKETS; b++) {
		hk_bucket_range(b, &lo, &hi);
		cr_assert_eq(lo, next, "bucket %u starts at %llu", b,
			     (unsigned long long)lo);
		cr_assert_geq(hi, lo);
		next = hi + 1;
	}
	/* The BPF side puts a size in bucket = its bit length. */
	for (uint64_t size = 0; size < 5000; size++) {
		unsigned b = size ? 64 - __builtin_clzll(size) : 0;

		hk_bucket_range(b, &lo, &hi);
		cr_assert(size >= lo && size <= hi, "size %llu", (unsigned long long)size);
	}
}

Test(sizestats, json_totals_and_empty_buckets)
{
	hk_hist h;
	json_t *j, *tot, *raw;

	memset(&h, 0, sizeof(h));
	h[HK_DK_RAW][3] = (struct hk_hist_cell){ 2, 10 };
	h[HK_DK_PYMALLOC][3] = (struct hk_hist_cell){ 5, 30 };
	h[HK_DK_PYMALLOC][10] = (struct hk_hist_cell){ 1, 600 };
	j = hk_sizestats_json((const hk_hist *)&h);
	tot = json_object_get(j, "total");
	cr_assert_eq(json_integer_value(json_object_get(tot, "allocations")), 8);
	cr_assert_eq(json_integer_value(json_object_get(tot, "bytes")), 640);
	cr_assert_eq(json_array_size(json_object_get(tot, "buckets")), 2);
	raw = json_array_get(json_object_get(j, "domains"), HK_DK_RAW);
	cr_assert_str_eq(json_string_value(json_object_get(raw, "domain")), "raw");
	cr_assert_eq(json_array_size(json_object_get(raw, "buckets")), 1);
	cr_assert_eq(json_integer_value(json_object_get(
		json_array_get(json_object_get(raw, "buckets"), 0), "min")), 4);
	json_decref(j);
}

/* The 64-bit live-block value (include/hawk.h): a slot of the live table
 * is empty only when its value is 0, so no block may encode to 0, and the
 * fields must come back as they went in. */
#include <criterion/criterion.h>
#include <stdint.h>
#include "hawk.h"

Test(block, fields_round_trip)
{
	static const uint64_t sizes[] = { 0, 1, 4096, 1ULL << 32, HK_SIZE_MAX };
	static const unsigned classes[] = { 0, 1, 8, 15 };
	static const uint32_t ids[] = { 0, 1, 12345, HK_ID_MAX };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t j = 0; j < sizeof(classes) / sizeof(classes[0]); j++)
			for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
				uint64_t b = HK_BLOCK(sizes[i], classes[j], ids[k]);

				cr_assert_neq(b, 0);
				cr_assert_eq(HK_BLOCK_SIZE(b), sizes[i]);
				cr_assert_eq(HK_BLOCK_CLASS(b), classes[j]);
				cr_assert_eq(HK_BLOCK_ID(b), ids[k]);
			}
}

Test(block, empty_block_without_stack_is_not_an_empty_slot)
{
	cr_assert_neq(HK_BLOCK(0, 0, 0), 0);
}

Test(block, oversized_blocks_are_clamped_not_wrapped)
{
	uint64_t b = HK_BLOCK(HK_SIZE_MAX + 1, 3, 7);

	cr_assert_eq(HK_BLOCK_SIZE(b), HK_SIZE_MAX);
	cr_assert_eq(HK_BLOCK_CLASS(b), 3);
	cr_assert_eq(HK_BLOCK_ID(b), 7);
}

Test(block, bucket_is_two_cache_lines)
{
	cr_assert_eq(sizeof(struct hk_bucket), 16 * HK_BUCKET_SLOTS);
	cr_assert_eq(sizeof(struct hk_bucket) % 64, 0);
}

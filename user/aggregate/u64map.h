/* Open-addressing hash map from a non-zero 64-bit key to a pointer. */
#ifndef HAWK_U64MAP_H
#define HAWK_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct hk_u64map {
	uint64_t *keys;
	void **vals;
	size_t cap, len;
};

void *hk_u64map_get(const struct hk_u64map *m, uint64_t key);
int hk_u64map_put(struct hk_u64map *m, uint64_t key, void *val);
void hk_u64map_free(struct hk_u64map *m);

#endif

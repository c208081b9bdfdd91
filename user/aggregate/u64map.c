#include "u64map.h"

#include <stdlib.h>

static size_t slot(uint64_t k, size_t cap)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k & (cap - 1);
}

void *hk_u64map_get(const struct hk_u64map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key)
			return m->vals[i];
		if (!m->keys[i])
			return NULL;
	}
}

static int grow(struct hk_u64map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	uint64_t *k = calloc(cap, sizeof(*k));
	void **v = calloc(cap, sizeof(*v));

	if (!k || !v) {
		free(k);
		free(v);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->keys[i])
			continue;
		for (j = slot(m->keys[i], cap); k[j]; j = (j + 1) & (cap - 1))
			;
		k[j] = m->keys[i];
		v[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = k;
	m->vals = v;
	m->cap = cap;
	return 0;
}

int hk_u64map_put(struct hk_u64map *m, uint64_t key, void *val)
{
	size_t i;

	if ((m->len + 1) * 2 > m->cap && grow(m))
		return -1;
	for (i = slot(key, m->cap); m->keys[i] && m->keys[i] != key;
	     i = (i + 1) & (m->cap - 1))
		;
	if (!m->keys[i])
		m->len++;
	m->keys[i] = key;
	m->vals[i] = val;
	return 0;
}

void hk_u64map_free(struct hk_u64map *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
	m->cap = m->len = 0;
}

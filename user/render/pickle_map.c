/* The hash map behind the pickle writer's memo and the reader's traceback
 * sharing (see pickle_internal.h). */
#include "pickle_internal.h"

#include <stdlib.h>

static struct hk_pkmap_slot *map_find(struct hk_pkmap *m, uint64_t key,
				      const void *rep, hk_pkmap_eq eq)
{
	size_t i = hk_pkmap_mix64(key) & m->mask;

	for (;; i = (i + 1) & m->mask) {
		struct hk_pkmap_slot *s = &m->slots[i];

		if (!s->used || (s->key == key && (!eq || eq(s->rep, rep))))
			return s;
	}
}

static int map_grow(struct hk_pkmap *m)
{
	size_t cap = m->slots ? 2 * (m->mask + 1) : 64;
	struct hk_pkmap_slot *old = m->slots;
	size_t oldcap = old ? m->mask + 1 : 0;

	m->slots = calloc(cap, sizeof(*m->slots));
	if (!m->slots) {
		m->slots = old;
		return -1;
	}
	m->mask = cap - 1;
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i].used)
			continue;
		size_t j = hk_pkmap_mix64(old[i].key) & m->mask;

		while (m->slots[j].used)
			j = (j + 1) & m->mask;
		m->slots[j] = old[i];
	}
	free(old);
	return 0;
}

struct hk_pkmap_slot *hk_pkmap_get(struct hk_pkmap *m, uint64_t key,
				   const void *rep, hk_pkmap_eq eq)
{
	if ((m->n + 1) * 2 > (m->slots ? m->mask + 1 : 0) && map_grow(m))
		return NULL;
	return map_find(m, key, rep, eq);
}

void hk_pkmap_put(struct hk_pkmap *m, struct hk_pkmap_slot *s, uint64_t key,
		  const void *rep, uint32_t val)
{
	s->key = key, s->rep = rep, s->val = val, s->used = true;
	m->n++;
}

/* Internals shared by the pprof writers (pprof.c) and the merger
 * (pprof_merge.c); not part of the public API in pprof.h: the
 * deduplication tables, their hashes, and the gzip stream protobuf-c
 * packs a profile into a part at a time. */
#ifndef HAWK_PPROF_INTERNAL_H
#define HAWK_PPROF_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.pb-c.h"

/* ---- deduplication ------------------------------------------------------ */

/* Open addressing over entries kept in the caller's array: a slot is an
 * entry's hash << 32 | its index + 1, 0 when free, so probing and
 * rehashing read the slots alone.  Load stays under 1/2. */
struct dedup {
	uint64_t *slot;
	size_t cap, n;
};

#define DD_MIN 1024

static inline int dd_grow(struct dedup *d)
{
	size_t cap = d->cap ? d->cap * 2 : DD_MIN, mask = cap - 1;
	uint64_t *s = calloc(cap, sizeof(*s));

	if (!s)
		return -1;
	for (size_t i = 0; i < d->cap; i++) {
		size_t j;

		if (!d->slot[i])
			continue;
		for (j = (d->slot[i] >> 32) & mask; s[j]; j = (j + 1) & mask)
			;
		s[j] = d->slot[i];
	}
	free(d->slot);
	d->slot = s;
	d->cap = cap;
	return 0;
}

/* The slot of the entry of hash h that eq(ctx, index) accepts, or the
 * free slot it would go to. */
static inline uint64_t *dd_find(const struct dedup *d, uint32_t h,
				bool (*eq)(const void *ctx, size_t i), const void *ctx)
{
	size_t mask = d->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint64_t e = d->slot[i];

		if (!e || ((e >> 32) == h && eq(ctx, (uint32_t)e - 1)))
			return &d->slot[i];
	}
}

/* Claims the free slot s for the next entry, whose index it returns, or
 * -1 (ENOMEM, or EOVERFLOW past 2^32 - 2 entries).  s is stale after. */
static inline int64_t dd_add(struct dedup *d, uint64_t *s, uint32_t h)
{
	if (d->n >= UINT32_MAX - 1) {
		errno = EOVERFLOW;
		return -1;
	}
	*s = (uint64_t)h << 32 | ++d->n;
	if (d->n * 2 > d->cap && dd_grow(d))
		return -1;
	return (int64_t)d->n - 1;
}

/* a, grown to at least n + 1 entries of sz, or NULL (ENOMEM). */
static inline void *grow(void *a, size_t *cap, size_t n, size_t sz)
{
	size_t c = *cap ? *cap * 2 : 1024;

	if (c < n + 1)
		c = n + 1;
	if (c > SIZE_MAX / sz || !(a = realloc(a, c * sz)))
		return errno = ENOMEM, NULL;
	*cap = c;
	return a;
}

/* Room for entry n in the array a of cap entries: 0, or -1. */
#define ROOM(a, cap, n) ({						\
	void *q_ = (n) < (cap) ? (a) : grow((a), &(cap), (n), sizeof(*(a)));	\
	q_ ? ((a) = q_, 0) : -1;					\
})

static inline uint64_t fmix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static inline uint64_t step(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	return h ^ h >> 29;
}

static inline uint32_t str_hash(const char *s)
{
	size_t n = strlen(s);
	uint64_t h = n, w;

	for (; n >= 8; n -= 8, s += 8) {
		memcpy(&w, s, 8);
		h = step(h, w);
	}
	w = 0;
	memcpy(&w, s, n);
	return (uint32_t)fmix(step(h, w));
}

/* ---- gzip --------------------------------------------------------------- */

/* A gzip stream into a FILE that protobuf-c packs into. */
struct hk_zout;

/* A stream into f, or NULL (ENOMEM). */
struct hk_zout *hk_zout_open(FILE *f);

/* Packs part, some fields of a profile, into z: 0, or -1 with errno of
 * the stream's first failure.  Parts packed in field-number order make
 * the bytes of the whole profile (see pprof.c). */
int hk_zout_put(struct hk_zout *z, const Perftools__Profiles__Profile *part);

/* Ends the stream and frees z: 0, or -1 with the first failure's errno. */
int hk_zout_close(struct hk_zout *z);

/* ---- merging ------------------------------------------------------------ */

/* hk_pprof_merge refuses an input over this many bytes uncompressed:
 * 1 GiB; tests lower it. */
extern size_t hk_pprof_merge_max;

#endif

/* Internals shared by the snapshot pickle writer (pickle_write.c) and
 * reader (pickle_read.c); not part of the public API in pickle.h. */
#ifndef HAWK_PICKLE_INTERNAL_H
#define HAWK_PICKLE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The pickle opcodes a tracemalloc snapshot uses. */
enum {
	OP_MARK = '(', OP_STOP = '.', OP_BININT = 'J', OP_BININT1 = 'K',
	OP_BININT2 = 'M', OP_BINUNICODE = 'X', OP_APPEND = 'a',
	OP_BUILD = 'b', OP_APPENDS = 'e', OP_BINGET = 'h',
	OP_LONG_BINGET = 'j', OP_SETITEM = 's', OP_TUPLE = 't',
	OP_SETITEMS = 'u', OP_EMPTY_DICT = '}', OP_EMPTY_LIST = ']',
	OP_EMPTY_TUPLE = ')', OP_PROTO = 0x80, OP_NEWOBJ = 0x81,
	OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87,
	OP_LONG1 = 0x8a, OP_SHORT_BINUNICODE = 0x8c, OP_STACK_GLOBAL = 0x93,
	OP_MEMOIZE = 0x94, OP_FRAME = 0x95,
};

/* UTF-8 as Python's 'surrogatepass' codec takes it: like strict UTF-8 but
 * U+D800..U+DFFF allowed (that is how undecodable filenames pickle). */
bool hk_pickle_utf8_valid(const uint8_t *s, size_t n);

/* Spreads a key's bits over the slot index (MurmurHash3's fmix64). */
static inline uint64_t hk_pkmap_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* Open-addressing map from a 64-bit key (a pointer, or a content hash
 * whose collisions eq() resolves) to a 32-bit value. */
struct hk_pkmap_slot {
	uint64_t key;
	const void *rep;	/* content maps: what the key hashes */
	uint32_t val;
	bool used;
};

struct hk_pkmap {
	struct hk_pkmap_slot *slots;
	size_t mask, n;
};

typedef bool (*hk_pkmap_eq)(const void *a, const void *b);

/* Returns the slot for key (s->used says whether it was there); makes
 * room first so the caller may fill an unused slot.  NULL: out of memory. */
struct hk_pkmap_slot *hk_pkmap_get(struct hk_pkmap *m, uint64_t key,
				   const void *rep, hk_pkmap_eq eq);

/* Fills the unused slot s that hk_pkmap_get() returned for key. */
void hk_pkmap_put(struct hk_pkmap *m, struct hk_pkmap_slot *s, uint64_t key,
		  const void *rep, uint32_t val);

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The live blocks: address -> HK_BLOCK value, in a table of buckets
 * (struct hk_bucket) that the loader sizes and reads in batches.
 *
 * Why not a BPF hash map: its entry costs 64 bytes plus a 16-byte bucket
 * head, and its delete of an absent key (a free of a block from before the
 * window, the common case) hashes, locks and walks. Here a block may sit in
 * either of two buckets chosen by hash, an insert takes the emptier one,
 * and a lookup compares 16 keys in two cache lines, with no lock. At half
 * load an 8-slot bucket pair almost never fills; the rare block that finds
 * both full spills into a small hash map, looked at only while it holds
 * something.
 *
 * Races: addresses of live blocks are unique, and a block's free cannot
 * begin before its allocation returned, so no two programs ever work on the
 * same key at once. Slots are claimed with compare-and-swap. A delete
 * clears the value before the key, so the slot's next owner never has its
 * value overwritten; readers skip slots whose value is 0.
 */
#ifndef HAWK_LIVE_BPF_H
#define HAWK_LIVE_BPF_H

/* A store the compiler keeps, in order: the value must be cleared before
 * the key frees the slot. */
#define LIVE_STORE(x, v) (*(volatile __u64 *)&(x) = (v))

/* Number of buckets, set by the loader with the map's max_entries. */
const volatile __u32 live_buckets = 1;

/* Blocks in live_spill now; the spill map is searched only when this is
 * not 0. */
__u64 live_spilled = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hk_bucket);
} live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__type(key, __u64);
	__type(value, __u64);
} live_spill SEC(".maps");

/* Two bucket indexes from one 64-bit mix (murmur3's finalizer): blocks are
 * 16-byte aligned and clustered, so their low bits alone spread badly. */
static __always_inline void live_buckets_of(__u64 addr, __u32 *b1, __u32 *b2)
{
	__u64 h = addr;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	*b1 = (__u32)(((h >> 32) * live_buckets) >> 32);
	*b2 = (__u32)(((h & 0xffffffffULL) * live_buckets) >> 32);
}

/* 1 if x is not 0, without a branch: unrolled compare-and-branch chains
 * multiply the verifier's paths past its limit. */
static __always_inline __u64 live_nz(__u64 x)
{
	__u64 y = -x;

	asm volatile("" : "+r"(y));	/* or clang turns it back into x != 0 */
	return (x | y) >> 63;
}

/* Bit s set for each slot s of b whose key is k. */
static __always_inline __u32 live_match(const struct hk_bucket *b, __u64 k)
{
	__u32 m = 0;

#pragma unroll
	for (int s = 0; s < HK_BUCKET_SLOTS; s++)
		m |= (__u32)(1 - live_nz(b->key[s] ^ k)) << s;
	return m;
}

/* The index of the lowest bit set in m (m != 0, 8 bits). */
static __always_inline __u32 live_slot(__u32 m)
{
	m &= -m;
	return live_nz(m & 0xaa) | live_nz(m & 0xcc) << 1 | live_nz(m & 0xf0) << 2;
}

static __always_inline __u32 live_popcount(__u32 m)
{
	m = m - ((m >> 1) & 0x55);
	m = (m & 0x33) + ((m >> 2) & 0x33);
	return (m + (m >> 4)) & 0x0f;
}

/* Claims one of b's free slots (mask free) for addr, or fails (-1) if
 * another CPU took each one first. */
static __always_inline int live_claim(struct hk_bucket *b, __u32 free,
				      __u64 addr, __u64 val)
{
	for (int t = 0; t < HK_BUCKET_SLOTS; t++) {
		__u32 s;

		if (!free)
			return -1;
		s = live_slot(free) & (HK_BUCKET_SLOTS - 1);
		if (__sync_val_compare_and_swap(&b->key[s], 0, addr) == 0) {
			LIVE_STORE(b->val[s], val);
			return 0;
		}
		free &= free - 1;
	}
	return -1;
}

/* Records addr -> val (val != 0). A stale entry for addr, left by a free
 * we did not see, is overwritten as a hash map update would. 0 or -1 (the
 * table and the spill map are full). A global function: verified once, not
 * at each call. */
__noinline int live_put(__u64 addr, __u64 val)
{
	struct hk_bucket *p, *q;
	__u32 i1, i2, m, fp, fq;
	__u64 *v;

	if (live_spilled) {
		v = bpf_map_lookup_elem(&live_spill, &addr);
		if (v) {
			*v = val;
			return 0;
		}
	}
	live_buckets_of(addr, &i1, &i2);
	p = bpf_map_lookup_elem(&live, &i1);
	q = bpf_map_lookup_elem(&live, &i2);
	if (!p || !q)
		return -1;
	m = live_match(p, addr);
	if (m) {
		LIVE_STORE(p->val[live_slot(m) & (HK_BUCKET_SLOTS - 1)], val);
		return 0;
	}
	m = live_match(q, addr);
	if (m) {
		LIVE_STORE(q->val[live_slot(m) & (HK_BUCKET_SLOTS - 1)], val);
		return 0;
	}
	/* the emptier bucket first: that keeps both near the mean load */
	fp = live_match(p, 0);
	fq = live_match(q, 0);
	if (live_popcount(fq) > live_popcount(fp)) {
		if (!live_claim(q, fq, addr, val) || !live_claim(p, fp, addr, val))
			return 0;
	} else if (!live_claim(p, fp, addr, val) || !live_claim(q, fq, addr, val)) {
		return 0;
	}
	if (bpf_map_update_elem(&live_spill, &addr, &val, BPF_NOEXIST))
		return -1;
	__sync_fetch_and_add(&live_spilled, 1);
	count(HK_CNT_SPILLED);
	return 0;
}

/* Removes addr; its value in *val. 1 if it was there, else 0. */
__noinline int live_take(__u64 addr, __u64 *val)
{
	struct hk_bucket *p;
	__u32 i[2], m, s;
	__u64 *v;

	if (!val)
		return 0;
	live_buckets_of(addr, &i[0], &i[1]);
#pragma unroll
	for (int k = 0; k < 2; k++) {
		p = bpf_map_lookup_elem(&live, &i[k]);
		if (!p)
			return 0;
		m = live_match(p, addr);
		if (m) {
			s = live_slot(m) & (HK_BUCKET_SLOTS - 1);
			*val = p->val[s];
			LIVE_STORE(p->val[s], 0);
			LIVE_STORE(p->key[s], 0);
			return 1;
		}
	}
	if (!live_spilled)
		return 0;
	v = bpf_map_lookup_elem(&live_spill, &addr);
	if (!v)
		return 0;
	*val = *v;
	if (bpf_map_delete_elem(&live_spill, &addr))
		return 0;
	__sync_fetch_and_add(&live_spilled, -1);
	return 1;
}

#endif

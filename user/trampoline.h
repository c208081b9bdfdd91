/* Sampling trampoline: x86-64 machine code hawk-bpf writes into the target
 * process and points the pymalloc allocator table slots (PyMemAllocatorEx
 * malloc/calloc) at, so that unsampled allocations never trap into the
 * kernel. Pure code generation: nothing here touches a process.
 *
 * Both entries have the PyMemAllocatorEx signatures
 *	void *malloc(void *ctx, size_t size);
 *	void *calloc(void *ctx, size_t nelem, size_t elsize);
 * and share one decision:
 *  - size (calloc: nelem * elsize) == 0 or > small_max, or a calloc whose
 *    nelem or elsize is 0 or > small_max (so every multiplication overflow):
 *    unsampled, WITHOUT drawing a random number (pymalloc forwards those
 *    to the raw domain, where the BPF side samples them);
 *  - otherwise the PRNG word at `state` is advanced once (xorshift64
 *    13/7/17, plain load and store: racing threads only lose randomness)
 *    and the size's class decides: sampled iff (new state >> 32) < T.
 * Unsampled: tail jump to real_malloc / real_calloc with rdi, rsi, rdx
 * untouched and r11 = 0 (no stale marker reaches the raw domain).
 * Sampled: tail jump through raw_table+8 (malloc) / raw_table+16 (calloc)
 * with rdi = [raw_table+0] (the raw ctx), rsi and rdx untouched,
 * r10 = the new PRNG state (the per-call nonce) and r11 = magic.
 * The code writes no memory but the state word, never touches the stack
 * (no push/pop/call/ret), and clobbers only rax, rcx, r8-r11 and flags
 * (plus rdi on the sampled path). It holds no state but the PRNG word, so
 * it stays correct whatever happens to hawk-bpf. The state word must be
 * seeded non-zero (xorshift64 stays at 0, which would sample every call). */
#ifndef HAWK_TRAMPOLINE_H
#define HAWK_TRAMPOLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_TRAMP_MAX_CLASSES 8
/* Bytes hk_tramp_build needs at most (8 classes, imm32 compares, every
 * jump rel32, 7 bytes of table alignment: 359). */
#define HK_TRAMP_MAX_LEN 360

/* Sizes in [previous bound, bound) (the first class starts at 1). */
struct hk_tramp_class {
	uint64_t bound;		/* exclusive upper byte bound, 1..2^31 */
	uint32_t threshold;	/* sample iff 32-bit random < threshold */
	bool always;		/* threshold 2^32: sample every call */
};

struct hk_tramp_spec {
	uint64_t at;		/* runtime address of the code's first byte */
	uint64_t state;		/* runtime address of the 8-byte PRNG word */
	uint64_t real_malloc;	/* unsampled targets (pymalloc's functions) */
	uint64_t real_calloc;
	uint64_t raw_table;	/* raw-domain PyMemAllocatorEx */
	uint64_t magic;		/* r11 on the sampled path; make it != 0 */
	uint64_t small_max;	/* pymalloc's SMALL_REQUEST_THRESHOLD, 1..2^31-1 */
	unsigned nclasses;	/* 0..HK_TRAMP_MAX_CLASSES, bounds increasing;
				 * sizes >= the last bound are always sampled */
	struct hk_tramp_class classes[HK_TRAMP_MAX_CLASSES];
};

struct hk_tramp_out {
	size_t len;		/* bytes written (needed, on -ENOSPC) */
	size_t malloc_off;	/* entry offsets from `at` */
	size_t calloc_off;
	size_t data_off;	/* [data_off, len): threshold table (8-aligned
				 * in memory, after int3 padding), not code */
};

/* Generates the code for address s->at into buf. Every rip-relative or
 * rel32 operand (state, real_malloc, real_calloc, raw_table) must be within
 * ±2 GiB of the code. Returns 0, -EINVAL (bad spec), -ERANGE (a target out
 * of reach) or -ENOSPC (cap < out->len; buf untouched). */
int hk_tramp_build(const struct hk_tramp_spec *s, uint8_t *buf, size_t cap,
		   struct hk_tramp_out *out);

#endif

/* Sampling trampoline: x86-64 machine code hawk-bpf writes into the target
 * process and points allocator table slots (PyMemAllocatorEx) at, so that
 * unsampled allocations, and frees of unsampled blocks, never trap into
 * the kernel. Pure code generation: nothing here touches a process.
 *
 * Entries (PyMemAllocatorEx signatures, ctx in rdi):
 *  pymalloc (mem and object domains), always:
 *   OBJ_MALLOC(ctx, size), OBJ_CALLOC(ctx, nelem, elsize): a size
 *     (calloc: nelem * elsize, each factor in 1..small_max) in
 *     1..small_max draws; any other goes to pymalloc WITHOUT drawing
 *     (pymalloc forwards it to the raw domain, which decides);
 *  raw domain, with spec->raw (needs spec->tagging):
 *   RAW_MALLOC, RAW_CALLOC: every call draws (size 0 always sampled; a
 *     calloc whose product overflows goes unsampled);
 *   RAW_REALLOC(ctx, ptr, size): draws by size. A tagged ptr is untagged
 *     first; if the result is unsampled, the old block's end is announced
 *     (free(NULL) through the free probe, rdx = ptr, r11 = magic + 3)
 *     before the real realloc, and if that fails the block is tagged again
 *     and announced back (r11 = magic + 4); a sampled result goes through
 *     the realloc probe like any sampled call;
 *   RAW_FREE(ctx, ptr): a tagged ptr goes to the free probe (with
 *     spec->sys_nr: is announced, HK_ANN_FREE, then freed), any other to
 *     free.
 *  Announcements (enum hk_announce): without spec->sys_nr a free(NULL)
 *  through the free probe, rdx = the block, r11 = magic + k; with it the
 *  system call sys_nr, rdi = magic + k, rsi = the block, rdx = the size
 *  (HK_ANN_ALLOC). A system call costs ~0.11 us here, a uprobe hit ~0.65.
 *
 * A draw advances the PRNG word at spec->state once (xorshift64 13/7/17,
 * plain load and store: racing threads only lose randomness); the size's
 * class decides: sampled iff (new state >> 32) < T, T from the threshold
 * table at spec->table (hk_tramp_thresholds); by bytes, T = size * the
 * table's first word.
 * Unsampled: tail jump to the entry's real function, rdi/rsi/rdx untouched,
 * r11 = 0.
 * Sampled: rdi = the raw ctx, r10 = the new PRNG state (a per-call nonce),
 * r11 = magic, and the domain's probed entry (probe_malloc, probe_calloc,
 * probe_realloc) is
 * *  - without spec->tagging: tail-jumped to with rsi, rdx untouched;
 * *  - with spec->tagging: called for `tag_pad` (16) more bytes (malloc size + 16,
 *    calloc as (1, nelem * elsize + 16), realloc size + 16), and a non-NULL
 *    result gets the 16-byte tag at spec->tag written at the end of its
 *    usable space, past what the caller asked for. That is how a free can
 *    tell a sampled block without asking the kernel: glibc's chunk header
 *    (the size word before the block; bit 1 = mmapped) says where the
 *    usable space ends. Only for glibc malloc (the caller checks).
 *
 * Targets are read from a literal pool after the code, so the code may sit
 * anywhere (any image's page tail); state, table and tag must be within
 * ±2 GiB of it. It writes no memory but the state word and (tag mode) the
 * tag in a block just allocated; the stack only for the call. It clobbers
 * only rax, rcx, rdx (after the call), r8-r11 and flags (plus rdi, rsi,
 * rdx on the sampled path). It holds no state but the PRNG word, so it
 * stays correct whatever happens to hawk-bpf. Seed the state non-zero. */
#ifndef HAWK_TRAMPOLINE_H
#define HAWK_TRAMPOLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hawk.h"

#define HK_TRAMP_MAX_CLASSES 8
/* Bytes hk_tramp_build needs at most (8 classes, raw entries, tag mode,
 * every compare imm32, every jump rel32, literal pool). */
#define HK_TRAMP_MAX_LEN 2048
#define HK_TRAMP_TAG_PAD 16
/* Most frames the trampoline captures on the target's stack (16 bytes each). */
#define HK_TRAMP_WALK_MAX HK_WALK_MAX

enum hk_tramp_entry {
	HK_TE_OBJ_CALLOC,
	HK_TE_RAW_CALLOC,
	HK_TE_OBJ_MALLOC,
	HK_TE_RAW_MALLOC,
	HK_TE_RAW_REALLOC,
	HK_TE_RAW_FREE,
	HK_TE_OBJ_REALLOC,	/* raw mode: pymalloc's realloc (mem, object) */
	HK_TE_N,
};

/* Sizes in [previous bound, bound) (the first class starts at 0). */
struct hk_tramp_class {
	uint64_t bound;		/* exclusive upper byte bound, 1..2^31 */
	uint32_t threshold;	/* sample iff 32-bit random < threshold */
	bool always;		/* threshold 2^32: sample every call */
};

struct hk_tramp_spec {
	uint64_t at;		/* runtime address of the code's first byte */
	uint64_t state;		/* runtime address of the 8-byte PRNG word */
	uint64_t table;		/* ... of the threshold table (8-aligned,
				 * nclasses + 1 words) */
	uint64_t tag;		/* ... of the 16-byte tag (tag mode) */
	uint64_t real[HK_TE_N];	/* unsampled targets (real functions) */
	uint64_t probe_malloc;	/* sampled targets: the raw domain's probed */
	uint64_t probe_calloc;	/* entries */
	uint64_t probe_realloc;	/* (raw only) */
	uint64_t probe_free;	/* (raw only) */
	uint64_t raw_ctx;	/* address of the raw domain's ctx word */
	/* Raw mode with real[HK_TE_OBJ_REALLOC]: pymalloc's free, and the rw
	 * address of a word the raw realloc entry counts its calls in (so the
	 * object realloc entry knows that pymalloc handed its call on to the
	 * raw domain, which drew for it). */
	uint64_t obj_free;
	uint64_t seq;
	uint64_t magic;		/* r11 on the sampled path; != 0, != -1 */
	uint64_t small_max;	/* pymalloc's SMALL_REQUEST_THRESHOLD, 1..2^31-1 */
	uint32_t sys_nr;	/* raw only: announce with this system call
				 * (0: free(NULL) through probe_free) */
	/* sys_nr and tstate != 0: a sampled object-domain block (its caller
	 * holds the GIL, so the running thread state is the caller's and its
	 * frames stay put) is announced with its Python frames, read here:
	 * no read of the target from BPF. Offsets within the interpreter's
	 * structs; cframe 0: the frame pointer is in the thread state. */
	struct {
		uint64_t tstate;	/* address of the running thread state word */
		uint64_t walk;		/* rw address of two u32: bytes of frames
					 * to capture (16 each, <= HK_TRAMP_WALK_MAX;
					 * 0: let BPF walk) and frames to count
					 * beyond them */
		int32_t cframe, current_frame, code, previous, instr, owner;
		int32_t thread_id;	/* ring: of the thread state */
	} py;
	/* Ring mode (needs sys_nr and py.tstate): announcements are records
	 * in the ring of include/hawk.h, not system calls. rw address of three
	 * words: the ring's address (0: not mapped yet, 1: being mapped, 3:
	 * could not be), its data bytes (a power of two; the first
	 * announcement maps it with mmap(2)), and a count of records not
	 * written for want of a ring. A sampled block's frames are read here
	 * when its thread holds the GIL (the running thread state's
	 * thread_id is pthread_self()), else BPF walks them at a getppid(2)
	 * (HK_ANN_WALK, rsi = the record's position). 0: no ring. */
	uint64_t ring;
	bool tagging;		/* call and tag (else tail-jump) */
	bool raw;		/* generate the raw entries (needs tag) */
	/* Sampling by bytes (include/samplebytes.h): sampled iff random <
	 * size * table[0] (table[0] = bytes_mult, which a later run may
	 * change), no classes. */
	bool by_bytes;
	uint64_t bytes_mult;	/* 1..2^32 */
	unsigned nclasses;	/* 0..HK_TRAMP_MAX_CLASSES, bounds increasing;
				 * sizes >= the last bound are always sampled */
	struct hk_tramp_class classes[HK_TRAMP_MAX_CLASSES];
};

struct hk_tramp_out {
	size_t len;		/* bytes written (needed, on -ENOSPC) */
	size_t entry[HK_TE_N];	/* entry offsets from `at` (SIZE_MAX: none) */
	size_t real_lit[HK_TE_N]; /* offset of the literal holding real[e] */
	size_t pool_off;	/* [pool_off, len): the literal pool */
};

/* Generates the code for address s->at into buf. Returns 0, -EINVAL (bad
 * spec), -ERANGE (state, table or tag out of reach) or -ENOSPC (cap <
 * out->len; buf untouched). */
int hk_tramp_build(const struct hk_tramp_spec *s, uint8_t *buf, size_t cap,
		   struct hk_tramp_out *out);

/* The threshold table for s into t; returns its number of words. */
unsigned hk_tramp_thresholds(const struct hk_tramp_spec *s,
			     uint64_t t[HK_TRAMP_MAX_CLASSES + 1]);

#endif

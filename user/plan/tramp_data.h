/* The sampling trampoline's data as it sits in the target's data page
 * tail (plan/sampling.c places it, inject/trampoline_install.c writes
 * it): kept there so that a later hawk-bpf recognises the trampoline a
 * killed one left behind, and the functions its entries stand for. */
#ifndef HAWK_TRAMP_DATA_H
#define HAWK_TRAMP_DATA_H

#include <stdbool.h>
#include <stdint.h>
#include "pagetail.h"
#include "pytarget.h"
#include "trampoline.h"

/* Kept with the data, so that a later hawk-bpf recognises the trampoline
 * a killed one left behind (and the functions its entries stand for).
 * Written last: a header means the code and data are complete. */
struct tramp_header {
	char magic[8];		/* "HAWKTRM4" */
	uint16_t len;		/* code bytes */
	uint16_t entry[HK_TE_N];	/* entry offsets, 0xffff: none */
	uint16_t real_lit[HK_TE_N];	/* offset of the literal holding its
					 * function, 0xffff: none */
	uint16_t flags;		/* TH_SYS: announces by system call */
};
/* what follows it must stay 8-aligned */
_Static_assert(sizeof(struct tramp_header) % 8 == 0, "tramp_header size");

#define TH_SYS 1
#define TH_RING 2

static const char header_magic[8] __attribute__((unused)) = { 'H', 'A', 'W', 'K', 'T', 'R', 'M', '4' };

/* The data tail: PRNG word, header, tag, threshold table, walk word, ring
 * words, raw realloc count (trampoline.h). */
#define RW_HEADER 8
#define RW_TAG (RW_HEADER + sizeof(struct tramp_header))
#define RW_TABLE (RW_TAG + 16)
#define RW_WALK (RW_TABLE + 8 * (HK_TRAMP_MAX_CLASSES + 1))
#define RW_RING (RW_WALK + 8)
#define RW_SEQ (RW_RING + 24)
#define RW_END (RW_SEQ + 8)

static inline int entry_kind(int e)
{
	switch (e) {
	case HK_TE_OBJ_MALLOC: case HK_TE_RAW_MALLOC: return HK_MALLOC;
	case HK_TE_OBJ_CALLOC: case HK_TE_RAW_CALLOC: return HK_CALLOC;
	case HK_TE_RAW_REALLOC: case HK_TE_OBJ_REALLOC: return HK_REALLOC;
	default: return HK_FREE;
	}
}

/* Whether tail tl holds a complete trampoline of this version (its
 * header in *hdr). */
bool hk_tramp_has_header(struct hk_pytarget *t, const struct hk_tail *tl,
			 struct tramp_header *hdr);
/* Whether tl holds another version's ("HAWKTRM" and another digit): its
 * code is never overwritten (a thread could be in it). */
bool hk_tramp_other_version(struct hk_pytarget *t, const struct hk_tail *tl);
/* If ptr is an entry of a trampoline an earlier hawk-bpf left in the
 * target, the function (runtime address) it stands for: 0 or -1. */
int hk_sampler_function(struct hk_pytarget *t, uint64_t ptr, int kind,
			uint64_t *func);

#endif

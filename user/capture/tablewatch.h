/* Noticing that someone else changed an allocator table slot during a
 * window: tracemalloc.start() or stop(), or any PyMem_SetAllocator. Its
 * hooks may chain to ours (tracemalloc's do, and its own bookkeeping is
 * then counted too) or not (nothing is seen any more): either way the
 * report is not what tracemalloc would say from then on, and says so. */
#ifndef HAWK_TABLEWATCH_H
#define HAWK_TABLEWATCH_H

#include <stdint.h>
#include "probes.h"

/* How often the slots are read (they are 12 words of the target). */
#define HK_TABLEWATCH_PERIOD_S 0.05

struct hk_tablewatch {
	int memfd;
	int n;
	uint64_t addr[HK_NDOMAINS * 4], want[HK_NDOMAINS * 4];
	int which[HK_NDOMAINS * 4];	/* its index in the hooks' slots */
	double start, next;
	double changed_at;	/* seconds into the window; < 0: not seen */
	int slot;		/* the first slot seen changed (hooks' index) */
};

/* What every slot holds now, once our switches are made (start: the
 * window's start, on the caller's clock). */
void hk_tablewatch_arm(struct hk_tablewatch *w, int memfd,
		       const struct hk_hooks *h, double start);
/* Reads the slots if HK_TABLEWATCH_PERIOD_S has passed (or force). */
void hk_tablewatch_check(struct hk_tablewatch *w, double now, bool force);
/* "the object domain's malloc" for slot i. */
const char *hk_tablewatch_slot_name(int i);

#endif

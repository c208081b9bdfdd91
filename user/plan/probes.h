/* Where the allocator probes go, and making every allocation reach them.
 *
 * Optimized CPython builds inline pymalloc behind a guard that compares the
 * allocator table's function pointer with the default function. Pointing
 * that table slot at the alignment padding just before the function (nops
 * that fall into it) makes every site take the indirect call while
 * behaving exactly the same, and a uprobe on that nop is emulated by the
 * kernel instead of single-stepped (about 15x cheaper). The pointer change
 * is a one-byte store (atomic) where the padding's address differs from
 * the function's only in the low byte, else an 8-byte store made with the
 * target frozen (freeze.h); it is undone at exit, and is harmless if we
 * are killed before undoing it: the padding stays valid code forever.
 */
#ifndef HAWK_PROBES_H
#define HAWK_PROBES_H

#include <stdbool.h>
#include <stdint.h>
#include "hawk.h"
#include "pytarget.h"

struct hk_site {
	uint64_t func;		/* function entry (ELF address) */
	uint64_t probe;		/* where the uprobe goes (ELF address) */
	uint64_t redirect;	/* padding entry the table points to, or 0 */
	int kind;		/* enum hk_kind */
	bool stepped;		/* probe single-stepped (slow), not emulated */
	unsigned domains;	/* bit d: table of domain d points here */
};

struct hk_slot {
	uint64_t addr;		/* runtime address of the table slot */
	uint64_t orig;		/* function entry (runtime), restored at exit */
	uint64_t redirect;	/* padding entry (runtime), or 0 */
	bool probed;		/* its function has a probe site */
	bool redirected;	/* we wrote it and must undo it */
};

struct hk_hooks {
	struct hk_site sites[HK_MAX_PROBES];
	int nsites;
	struct hk_slot slots[HK_NDOMAINS * 4];
	int nslots;
};

/* Whether a table slot's switch between from and to is a one-byte store,
 * which no thread reading the pointer can see half-done (else it is made
 * with the target frozen). */
static inline bool hk_one_byte_switch(uint64_t from, uint64_t to)
{
	return (from ^ to) <= 0xff;
}

/* Where to probe the function at func (ELF address) of this kind: the
 * padding before it (redirect and probe), else an emulated instruction on
 * its entry path (probe), else nowhere (probe 0). Pure: reads the file. */
void hk_site_plan(const struct hk_elf *e, uint64_t func, int kind,
		  struct hk_site *s);
/* Where an entry probe on func may go (func, or past a leading 5-byte
 * nop, which the kernel would rewrite: see probe_ok); 0: nowhere. */
uint64_t hk_probe_entry(const struct hk_elf *e, uint64_t func);
/* Choose probe sites for the functions the three tables point to. */
int hk_hooks_plan(struct hk_hooks *h, struct hk_pytarget *t, char *err,
		  size_t errlen);
/* 0 if site i has a probe; else -1 with one line in err naming the
 * function and why (planning leaves it to the modes that probe it). */
int hk_hooks_site(const struct hk_hooks *h, int i, const struct hk_pytarget *t,
		  char *err, size_t errlen);
#endif

/* Sampling mode, target side: the trampoline (user/trampoline.c) written
 * into the unused tail of the interpreter image's last executable page, and
 * the pymalloc malloc/calloc table slots pointed at it.
 *
 * Unsampled small allocations then never trap: the trampoline draws a
 * random number and tail-jumps to pymalloc. Sampled ones are sent to the
 * raw allocator, whose probes see them (marked in r10/r11), and since
 * pymalloc hands blocks it does not own to the raw domain, their frees and
 * reallocs are seen there too, while pymalloc's own frees cost nothing.
 *
 * Safety: the code and its header stay in the target forever (a thread may
 * be inside them; they behave correctly with or without hawk-bpf). Slot
 * switches are 8-byte writes, so they are made with every thread frozen
 * (user/freeze.c). An existing trampoline is reused, never rewritten. */
#ifndef HAWK_SAMPLER_H
#define HAWK_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>
#include "hooks.h"
#include "pytarget.h"
#include "samplerates.h"

/* The marker the trampoline leaves in r11 on its sampled path. */
#define HK_SAMPLE_MAGIC 0x6877616b5f627066ULL	/* "hawk_bpf" */

struct hk_sampler {
	uint64_t code;		/* runtime address of the trampoline */
	uint64_t state;		/* runtime address of its PRNG word */
	int nslots;
	struct {
		uint64_t addr;	/* table slot */
		uint64_t orig;	/* pymalloc function, restored at exit */
		uint64_t tramp;	/* trampoline entry written there */
		uint64_t padding; /* padding entry before orig, or 0 */
		bool switched;
	} slot[4];
};

/* If ptr is an entry of a trampoline an earlier hawk-bpf left in the
 * target, the pymalloc function (runtime address) it stands for: 0 or -1. */
int hk_sampler_function(struct hk_pytarget *t, uint64_t ptr, int kind,
			uint64_t *func);

/* Points a slot that holds a trampoline entry (expect) back at the
 * function (want), with the target frozen. 0, or -1 with one line in err. */
int hk_sampler_reset_slot(struct hk_pytarget *t, uint64_t slot, uint64_t expect,
			  uint64_t want, char *err, size_t errlen);

/* Writes (or finds) the trampoline and switches the mem and object
 * domains' malloc and calloc slots to it. 0, or -1 with one line in err
 * and nothing switched. */
int hk_sampler_install(struct hk_sampler *s, struct hk_pytarget *t,
		       const struct hk_hooks *h,
		       const struct hk_sample_rates *rates, char *err,
		       size_t errlen);
/* Switches the slots back to pymalloc (the code stays). 0, or -1 with one
 * line in err: the slots then keep the trampoline, which works unprobed. */
int hk_sampler_remove(struct hk_sampler *s, struct hk_pytarget *t, char *err,
		      size_t errlen);

#endif

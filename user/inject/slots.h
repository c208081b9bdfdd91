/* Switching the allocator table slots to the padding entries the probe
 * plan chose (plan/probes.h), and back: a one-byte store where the two
 * differ only in the low byte, else an 8-byte store with the target
 * frozen (freeze.h). */
#ifndef HAWK_SLOTS_H
#define HAWK_SLOTS_H

#include "probes.h"

/* Point the table slots at the padding entries (after probes are live);
 * raw_only: the raw domain's (sampling leaves pymalloc's to the sampler). */
int hk_hooks_redirect(struct hk_hooks *h, struct hk_pytarget *t, bool raw_only,
		      char *err, size_t errlen);
/* Put back what hk_hooks_redirect changed, if it is still ours. */
void hk_hooks_restore(struct hk_hooks *h, struct hk_pytarget *t);
/* Put back what a killed hawk-bpf left (h planned on the target as it is
 * now): every slot on a padding entry or a sampling trampoline goes back
 * to its function. The number of slots put back, or -1 with one line in
 * err. */
int hk_hooks_reset(struct hk_hooks *h, struct hk_pytarget *t, char *err,
		   size_t errlen);

#endif

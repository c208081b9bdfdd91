/* Writing the sampling trampoline (plan/sampling.h chose where and
 * generated it) and its data into the target, and switching allocator
 * slots to it and back: 8-byte writes, made with every thread frozen
 * (freeze.h). The code and data stay forever; see plan/sampling.h. */
#ifndef HAWK_TRAMPOLINE_INSTALL_H
#define HAWK_TRAMPOLINE_INSTALL_H

#include "sampling.h"

/* Points a slot that holds a trampoline entry (expect) back at the
 * function (want), with the target frozen. 0, or -1 with one line in err. */
int hk_sampler_reset_slot(struct hk_pytarget *t, uint64_t slot, uint64_t expect,
			  uint64_t want, char *err, size_t errlen);

/* Writes (or finds) the code and its data. 0, or -1 with one line in err. */
int hk_sampler_prepare(struct hk_sampler *s, struct hk_pytarget *t, char *err,
		       size_t errlen);
/* Switches the slots to the trampoline (probes live). 0, or -1 with one
 * line in err and nothing switched. */
int hk_sampler_switch(struct hk_sampler *s, struct hk_pytarget *t, char *err,
		      size_t errlen);
/* Switches the slots back (the code stays). 0, or -1 with one line in err:
 * the slots then keep the trampoline, which works unprobed. */
int hk_sampler_remove(struct hk_sampler *s, struct hk_pytarget *t, char *err,
		      size_t errlen);


#endif

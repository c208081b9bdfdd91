#include "slots.h"

#include <stdio.h>
#include <string.h>
#include "freeze.h"
#include "proc.h"
#include "tramp_data.h"
#include "trampoline_install.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* Moves slot s from `from` to `to` if it holds `from` (someone else's
 * hook stays). Wider switches only with the target frozen (frozen). */
static int switch_slot(struct hk_pytarget *t, const struct hk_slot *s,
		       uint64_t from, uint64_t to, bool frozen)
{
	uint64_t cur;
	bool narrow = hk_one_byte_switch(from, to);

	if (!narrow && !frozen)
		return -1;
	if (hk_mem_read(t->memfd, s->addr, &cur, sizeof(cur)) || cur != from)
		return -1;
	if (narrow ? hk_mem_write(t->memfd, s->addr, &to, 1) :
		     hk_mem_write(t->memfd, s->addr, &to, 8))
		return -1;
	return hk_mem_read(t->memfd, s->addr, &cur, sizeof(cur)) || cur != to ? -1 : 0;
}

/* One pass over the slots to switch (to_redirect: orig -> redirect, else
 * back) of one width: the one-byte ones (wide false), or, with the target
 * frozen, the wider ones. Whether any of the other width is left in *more.
 * 0, or -1 if a slot to redirect was not ours to switch. */
static int switch_pass(struct hk_hooks *h, struct hk_pytarget *t, bool raw_only,
		       bool to_redirect, bool wide, bool *more)
{
	int rc = 0;

	for (int i = 0; i < h->nslots; i++) {
		struct hk_slot *s = &h->slots[i];

		if (!s->redirect || s->redirected == to_redirect ||
		    (raw_only && i >= 4))
			continue;
		if (hk_one_byte_switch(s->orig, s->redirect) == wide) {
			*more = true;
			continue;
		}
		if (switch_slot(t, s, to_redirect ? s->orig : s->redirect,
				to_redirect ? s->redirect : s->orig, wide) == 0)
			s->redirected = to_redirect;
		else if (to_redirect)
			rc = -1;
	}
	return rc;
}

/* The one-byte switches at once, then all the wider ones in one freeze. */
static int switch_all(struct hk_hooks *h, struct hk_pytarget *t, bool raw_only,
		      bool to_redirect, char *err, size_t errlen)
{
	struct hk_frozen f;
	bool wide = false, unused = false;
	int rc = switch_pass(h, t, raw_only, to_redirect, false, &wide);

	if (!wide)
		return rc;
	if (hk_freeze(t->pid, &f, err, errlen))
		return -1;
	rc |= switch_pass(h, t, raw_only, to_redirect, true, &unused);
	hk_thaw(&f);
	return rc;
}

/* What slot s (the i-th) holds, once a trampoline a killed sampling run
 * left there is put back on its function (an 8-byte switch, made with the
 * target frozen): 1 if it was one, 0 if not, -1 with err set. */
static int read_slot(struct hk_pytarget *t, const struct hk_slot *s, int i,
		     uint64_t *cur, char *err, size_t errlen)
{
	uint64_t fn;

	if (hk_mem_read(t->memfd, s->addr, cur, sizeof(*cur)))
		return ERR("cannot read allocator table slot %#llx",
			   (unsigned long long)s->addr);
	if (*cur == s->orig || *cur == s->redirect ||
	    hk_sampler_function(t, *cur, i % 4 + 1, &fn))
		return 0;
	if (hk_sampler_reset_slot(t, s->addr, *cur, fn, err, errlen))
		return -1;
	*cur = fn;
	return 1;
}

int hk_hooks_redirect(struct hk_hooks *h, struct hk_pytarget *t, bool raw_only,
		      char *err, size_t errlen)
{
	err[0] = 0;
	for (int i = 0; i < h->nslots; i++) {
		struct hk_slot *s = &h->slots[i];
		uint64_t cur;

		if (!s->redirect || (raw_only && i >= 4))
			continue;
		/* a killed sampling run's trampoline: back to the function
		 * first, then the usual switch */
		if (read_slot(t, s, i, &cur, err, errlen) < 0)
			return -1;
		/* a killed exact run left it on the padding: already ours */
		if (cur == s->redirect)
			s->redirected = true;
	}
	if (switch_all(h, t, raw_only, true, err, errlen)) {
		if (!err[0])
			snprintf(err, errlen, "cannot switch an allocator table slot of process %d",
				 (int)t->pid);
		return -1;
	}
	return 0;
}

void hk_hooks_restore(struct hk_hooks *h, struct hk_pytarget *t)
{
	char err[256];

	switch_all(h, t, false, false, err, sizeof(err));
}

int hk_hooks_reset(struct hk_hooks *h, struct hk_pytarget *t, char *err,
		   size_t errlen)
{
	int n = 0;

	err[0] = 0;
	for (int i = 0; i < h->nslots; i++) {
		struct hk_slot *s = &h->slots[i];
		uint64_t cur;
		int r;

		if ((r = read_slot(t, s, i, &cur, err, errlen)) < 0)
			return -1;
		if (r) {
			n++;
		} else if (s->redirect && cur == s->redirect) {
			s->redirected = true;	/* the padding: undone below */
			n++;
		}
	}
	switch_all(h, t, false, false, err, errlen);
	for (int i = 0; i < h->nslots; i++)
		if (h->slots[i].redirected)
			return err[0] ? -1 : ERR("cannot switch allocator table slot %#llx back",
						 (unsigned long long)h->slots[i].addr);
	return n;
}

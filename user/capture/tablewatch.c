#include "tablewatch.h"

#include <string.h>
#include "proc.h"

void hk_tablewatch_arm(struct hk_tablewatch *w, int memfd,
		       const struct hk_hooks *h, double start)
{
	memset(w, 0, sizeof(*w));
	w->memfd = memfd;
	w->start = w->next = start;
	w->changed_at = -1;
	w->slot = -1;
	for (int i = 0; i < h->nslots; i++) {
		/* unreadable now: nothing to compare with later */
		if (hk_mem_read(memfd, h->slots[i].addr, &w->want[w->n], 8))
			continue;
		w->which[w->n] = i;
		w->addr[w->n++] = h->slots[i].addr;
	}
}

void hk_tablewatch_check(struct hk_tablewatch *w, double now, bool force)
{
	uint64_t cur;

	if (w->changed_at >= 0 || (!force && now < w->next))
		return;
	w->next = now + HK_TABLEWATCH_PERIOD_S;
	for (int i = 0; i < w->n; i++) {
		/* a failed read is the target gone, not a change */
		if (hk_mem_read(w->memfd, w->addr[i], &cur, 8) || cur == w->want[i])
			continue;
		w->changed_at = now - w->start;
		w->slot = w->which[i];
		return;
	}
}

const char *hk_tablewatch_slot_name(int i)
{
	static const char *names[HK_NDOMAINS * 4] = {
		"raw domain's malloc", "raw domain's calloc", "raw domain's realloc",
		"raw domain's free", "mem domain's malloc", "mem domain's calloc",
		"mem domain's realloc", "mem domain's free", "object domain's malloc",
		"object domain's calloc", "object domain's realloc", "object domain's free",
	};

	return i >= 0 && i < HK_NDOMAINS * 4 ? names[i] : "?";
}

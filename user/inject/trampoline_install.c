#include "trampoline_install.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include "freeze.h"
#include "proc.h"
#include "ring.h"
#include "tramp_data.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int switch_slots(struct hk_sampler *s, struct hk_pytarget *t, bool on,
			char *err, size_t errlen)
{
	struct hk_frozen f;

	if (hk_freeze(t->pid, &f, err, errlen))
		return -1;
	for (int i = 0; i < s->nslots; i++) {
		uint64_t cur, want = on ? s->slot[i].tramp : s->slot[i].orig;
		uint64_t from = on ? s->slot[i].orig : s->slot[i].tramp;

		if (hk_mem_read(t->memfd, s->slot[i].addr, &cur, 8))
			continue;
		/* Only what we expect (the function, or the padding before it
		 * that a killed exact run left): someone else's hook stays. */
		if (cur != from && cur != want &&
		    !(on && s->slot[i].padding && cur == s->slot[i].padding))
			continue;
		if (cur != want && hk_mem_write(t->memfd, s->slot[i].addr, &want, 8))
			continue;
		s->slot[i].switched = on;
	}
	hk_thaw(&f);
	return 0;
}

int hk_sampler_reset_slot(struct hk_pytarget *t, uint64_t slot, uint64_t expect,
			  uint64_t want, char *err, size_t errlen)
{
	struct hk_frozen f;
	uint64_t cur;
	int rc = -1;

	if (hk_freeze(t->pid, &f, err, errlen))
		return -1;
	if (hk_mem_read(t->memfd, slot, &cur, 8) == 0 && cur == expect &&
	    hk_mem_write(t->memfd, slot, &want, 8) == 0)
		rc = 0;
	hk_thaw(&f);
	if (rc)
		snprintf(err, errlen, "cannot switch allocator table slot %#llx back from a sampling trampoline",
			 (unsigned long long)slot);
	return rc;
}

int hk_sampler_prepare(struct hk_sampler *s, struct hk_pytarget *t, char *err,
		       size_t errlen)
{
	uint8_t old[HK_TRAMP_MAX_LEN], tag[16];
	struct tramp_header hdr, have;
	uint64_t seed = 0;

	memset(&hdr, 0, sizeof(hdr));
	memcpy(hdr.magic, header_magic, 8);
	hdr.len = (uint16_t)s->out.len;
	hdr.flags = (s->sys ? TH_SYS : 0) | (s->ring ? TH_RING : 0);
	for (int e = 0; e < HK_TE_N; e++) {
		hdr.entry[e] = s->out.entry[e] == SIZE_MAX ? 0xffff : (uint16_t)s->out.entry[e];
		hdr.real_lit[e] = s->out.real_lit[e] == SIZE_MAX ? 0xffff : (uint16_t)s->out.real_lit[e];
	}
	/* Never rewrite code a thread may be running: reuse an identical
	 * trampoline, refuse a different one. Its thresholds may change
	 * (any value is safe); its tag stays, so blocks tagged before are
	 * still known. */
	if (hk_mem_read(t->memfd, s->header, &have, sizeof(have)))
		return ERR("cannot read the data page tail of %s", s->host);
	bool reuse = memcmp(have.magic, header_magic, 8) == 0;
	if (reuse && (memcmp(&have, &hdr, sizeof(hdr)) ||
		      hk_mem_read(t->memfd, s->code, old, s->out.len) ||
		      memcmp(old, s->buf, s->out.len)))
		return ERR("process %d keeps the sampling trampoline of an earlier hawk-bpf, made for other --sample-rates BOUNDs (or for sampling by bytes, or by classes) or by another version, for its whole life (its code may be running; see --help): sample it the same way (the same BOUNDs (any P), or --sample-bytes with any N) and version",
			   (int)t->pid);
	while (!seed)
		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			return ERR("cannot seed the sampler: %s", strerror(errno));
	if (!reuse && getrandom(tag, sizeof(tag), 0) != sizeof(tag))
		return ERR("cannot draw the sampler's tag: %s", strerror(errno));
	/* ring words: the ring (kept if an earlier run mapped one), the bytes
	 * of one to map, the count of records written nowhere */
	uint64_t ring_new[3] = { 0, s->ring ? hk_ring_bytes() : 0, 0 };

	if (hk_mem_write(t->memfd, s->table, s->thresholds, 8 * s->nthresholds) ||
	    hk_mem_write(t->memfd, s->walkaddr, s->walk, sizeof(s->walk)) ||
	    hk_mem_write(t->memfd, s->ringaddr + 8, &ring_new[1], 8) ||
	    (!reuse && hk_mem_write(t->memfd, s->ringaddr, ring_new, sizeof(ring_new))) ||
	    hk_mem_write(t->memfd, s->state, &seed, sizeof(seed)) ||
	    (!reuse && (hk_mem_write(t->memfd, s->tag, tag, sizeof(tag)) ||
			hk_mem_write(t->memfd, s->code, s->buf, s->out.len) ||
			hk_mem_write(t->memfd, s->header, &hdr, sizeof(hdr)))))
		return ERR("cannot write the sampling trampoline into %s: %s",
			   s->host, strerror(errno));
	return 0;
}

int hk_sampler_switch(struct hk_sampler *s, struct hk_pytarget *t, char *err,
		      size_t errlen)
{
	if (switch_slots(s, t, true, err, errlen))
		return -1;
	for (int i = 0; i < s->nslots; i++)
		if (!s->slot[i].switched) {
			hk_sampler_remove(s, t, err, errlen);
			return ERR("an allocator of process %d is not CPython's own",
				   (int)t->pid);
		}
	return 0;
}

int hk_sampler_remove(struct hk_sampler *s, struct hk_pytarget *t, char *err,
		      size_t errlen)
{
	bool any = false;

	for (int i = 0; i < s->nslots; i++)
		any |= s->slot[i].switched;
	return any ? switch_slots(s, t, false, err, errlen) : 0;
}

#include "sampler.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include "freeze.h"
#include "trampoline.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)
#define PAGE 4096ULL
#define SMALL_MAX 512	/* pymalloc's SMALL_REQUEST_THRESHOLD in 3.11 */

/* Written before the code, so a later hawk-bpf recognises the trampoline a
 * killed one left behind (and the functions it stands for). */
struct tramp_header {
	char magic[8];		/* "HAWKTRMP" */
	uint64_t real_malloc;
	uint64_t real_calloc;
	uint64_t len;		/* code bytes after the header */
};

static const char header_magic[8] = { 'H', 'A', 'W', 'K', 'T', 'R', 'M', 'P' };

/* The unused tail of the last page of the image's executable segment, and
 * the page tail after its writable segment's end (.bss): both mapped, both
 * used by nothing. */
static int find_tails(struct hk_pytarget *t, uint64_t *code, uint64_t *code_len,
		      uint64_t *state, char *err, size_t errlen)
{
	struct stat st;
	int x = -1, w = -1;

	for (int i = 0; i < t->elf.nseg; i++) {
		if (t->elf.seg[i].flags & PF_X)
			x = i;
		else if (t->elf.seg[i].flags & PF_W)
			w = i;
	}
	if (x < 0 || w < 0 || fstat(t->elf.fd, &st))
		return ERR("cannot find the code and data segments of %s", t->image_name);
	uint64_t end = t->elf.seg[x].vaddr + t->elf.seg[x].filesz;
	uint64_t tail = (PAGE - end % PAGE) % PAGE;
	/* Beyond the end of the file the page would fault: stay within it. */
	uint64_t file_end = t->elf.seg[x].offset + t->elf.seg[x].filesz;
	if (file_end + tail > (uint64_t)st.st_size)
		tail = (uint64_t)st.st_size - file_end;
	*code = end + t->bias;
	*code_len = tail;
	uint64_t dend = t->elf.seg[w].vaddr + t->elf.seg[w].memsz;
	uint64_t s = (dend + 7) & ~7ULL;
	if (s + 8 > ((dend + PAGE - 1) & ~(PAGE - 1)))
		return ERR("no room for the sampler's state after the data of %s",
			   t->image_name);
	*state = s + t->bias;
	return 0;
}

static int build(const struct hk_sampler *s, uint64_t raw_table,
		 uint64_t real_malloc, uint64_t real_calloc,
		 const struct hk_sample_rates *r, uint8_t *buf, size_t cap,
		 struct hk_tramp_out *out)
{
	struct hk_tramp_spec spec = {
		.at = s->code + sizeof(struct tramp_header),
		.state = s->state,
		.real_malloc = real_malloc,
		.real_calloc = real_calloc,
		.raw_table = raw_table,
		.magic = HK_SAMPLE_MAGIC,
		.small_max = SMALL_MAX,
		.nclasses = r->n,
	};

	for (unsigned i = 0; i < r->n; i++) {
		uint64_t th = hk_sample_threshold(r->prob[i]);

		spec.classes[i].bound = r->bound[i];
		spec.classes[i].always = th >= 1ULL << 32;
		spec.classes[i].threshold = spec.classes[i].always ? 0 : (uint32_t)th;
	}
	return hk_tramp_build(&spec, buf, cap, out);
}

/* The pymalloc functions the mem and object slots point to (through the
 * padding or a trampoline left by an earlier run: both resolve to the same
 * function in the hooks plan). */
static int pymalloc_funcs(const struct hk_hooks *h, struct hk_pytarget *t,
			  uint64_t *fm, uint64_t *fc)
{
	*fm = *fc = 0;
	for (int i = 0; i < h->nsites; i++) {
		const struct hk_site *s = &h->sites[i];

		if (s->domains & (1u << HK_DOM_RAW))
			continue;
		if (s->kind == HK_MALLOC)
			*fm = s->func + t->bias;
		else if (s->kind == HK_CALLOC)
			*fc = s->func + t->bias;
	}
	return *fm && *fc ? 0 : -1;
}

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
		    !(on && cur == s->slot[i].padding))
			continue;
		if (cur != want && hk_mem_write(t->memfd, s->slot[i].addr, &want, 8))
			continue;
		s->slot[i].switched = on;
	}
	hk_thaw(&f);
	return 0;
}

int hk_sampler_function(struct hk_pytarget *t, uint64_t ptr, int kind,
			uint64_t *func)
{
	struct tramp_header hdr;
	uint64_t code, room, state;
	char err[8];

	if (find_tails(t, &code, &room, &state, err, sizeof(err)) ||
	    ptr < code + sizeof(hdr) || ptr >= code + room ||
	    hk_mem_read(t->memfd, code, &hdr, sizeof(hdr)) ||
	    memcmp(hdr.magic, header_magic, 8) ||
	    ptr >= code + sizeof(hdr) + hdr.len)
		return -1;
	if (kind == HK_MALLOC)
		*func = hdr.real_malloc;
	else if (kind == HK_CALLOC)
		*func = hdr.real_calloc;
	else
		return -1;
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

int hk_sampler_install(struct hk_sampler *s, struct hk_pytarget *t,
		       const struct hk_hooks *h,
		       const struct hk_sample_rates *rates, char *err,
		       size_t errlen)
{
	uint8_t code[HK_TRAMP_MAX_LEN], old[HK_TRAMP_MAX_LEN];
	struct tramp_header hdr, have;
	struct hk_tramp_out out;
	uint64_t room, fm, fc, seed = 0;

	memset(s, 0, sizeof(*s));
	if (find_tails(t, &s->code, &room, &s->state, err, errlen))
		return -1;
	if (pymalloc_funcs(h, t, &fm, &fc))
		return ERR("--sample needs pymalloc, which process %d does not use (PYTHONMALLOC=malloc?); trace it exactly instead",
			   (int)t->pid);
	if (build(s, t->tables[HK_DOM_RAW], fm, fc, rates, code, sizeof(code), &out))
		return ERR("cannot build the sampling trampoline");
	if (sizeof(hdr) + out.len > room)
		return ERR("no room for the sampling trampoline in %s (%llu bytes, need %zu)",
			   t->image_name, (unsigned long long)room,
			   sizeof(hdr) + out.len);
	memcpy(hdr.magic, header_magic, 8);
	hdr.real_malloc = fm;
	hdr.real_calloc = fc;
	hdr.len = out.len;
	/* Never rewrite code a thread may be running: reuse an identical
	 * trampoline, refuse a different one. */
	if (hk_mem_read(t->memfd, s->code, &have, sizeof(have)))
		return ERR("cannot read the code page tail of %s", t->image_name);
	if (memcmp(have.magic, header_magic, 8) == 0) {
		if (memcmp(&have, &hdr, sizeof(hdr)) ||
		    hk_mem_read(t->memfd, s->code + sizeof(hdr), old, out.len) ||
		    memcmp(old, code, out.len))
			return ERR("process %d has a sampling trampoline from an earlier hawk-bpf with other rates; use the same --sample-rates",
				   (int)t->pid);
	} else if (hk_mem_write(t->memfd, s->code + sizeof(hdr), code, out.len) ||
		   hk_mem_write(t->memfd, s->code, &hdr, sizeof(hdr))) {
		return ERR("cannot write the sampling trampoline: %s", strerror(errno));
	}
	while (!seed)
		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			seed = 0x9e3779b97f4a7c15ULL;
	if (hk_mem_write(t->memfd, s->state, &seed, sizeof(seed)))
		return ERR("cannot seed the sampler: %s", strerror(errno));
	for (int d = HK_DOM_MEM; d <= HK_DOM_OBJ; d++) {
		for (int k = HK_MALLOC; k <= HK_CALLOC; k++) {
			const struct hk_slot *hs = &h->slots[d * 4 + k - 1];

			s->slot[s->nslots].addr = t->tables[d] + 8 * k;
			s->slot[s->nslots].orig = k == HK_MALLOC ? fm : fc;
			s->slot[s->nslots].padding = hs->redirect;
			s->slot[s->nslots++].tramp = s->code + sizeof(hdr) +
				(k == HK_MALLOC ? out.malloc_off : out.calloc_off);
		}
	}
	if (switch_slots(s, t, true, err, errlen))
		return -1;
	for (int i = 0; i < s->nslots; i++)
		if (!s->slot[i].switched)
			return ERR("the pymalloc allocator of process %d is not CPython's own",
				   (int)t->pid);
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

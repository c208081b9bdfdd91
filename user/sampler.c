#include "sampler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include "freeze.h"
#include "pagetail.h"
#include "proc.h"
#include "ring.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

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

static const char header_magic[8] = { 'H', 'A', 'W', 'K', 'T', 'R', 'M', '4' };

/* The data tail: PRNG word, header, tag, threshold table, walk word, ring
 * words, raw realloc count (trampoline.h). */
#define RW_HEADER 8
#define RW_TAG (RW_HEADER + sizeof(struct tramp_header))
#define RW_TABLE (RW_TAG + 16)
#define RW_WALK (RW_TABLE + 8 * (HK_TRAMP_MAX_CLASSES + 1))
#define RW_RING (RW_WALK + 8)
#define RW_SEQ (RW_RING + 24)
#define RW_END (RW_SEQ + 8)

static int entry_kind(int e)
{
	switch (e) {
	case HK_TE_OBJ_MALLOC: case HK_TE_RAW_MALLOC: return HK_MALLOC;
	case HK_TE_OBJ_CALLOC: case HK_TE_RAW_CALLOC: return HK_CALLOC;
	case HK_TE_RAW_REALLOC: case HK_TE_OBJ_REALLOC: return HK_REALLOC;
	default: return HK_FREE;
	}
}

static bool has_header(struct hk_pytarget *t, const struct hk_tail *tl,
		       struct tramp_header *hdr)
{
	return tl->rw_room >= RW_END &&
	       hk_mem_read(t->memfd, tl->rw + RW_HEADER, hdr, sizeof(*hdr)) == 0 &&
	       memcmp(hdr->magic, header_magic, 8) == 0 && hdr->len <= tl->code_room;
}

int hk_sampler_function(struct hk_pytarget *t, uint64_t ptr, int kind,
			uint64_t *func)
{
	struct tramp_header hdr;
	struct hk_tail *v;
	size_t n;
	int rc = -1;

	if (hk_tails(t->pid, &v, &n))
		return -1;
	for (size_t i = 0; i < n && rc; i++) {
		const struct hk_tail *tl = &v[i];

		if (ptr < tl->code || ptr >= tl->code + tl->code_room ||
		    !has_header(t, tl, &hdr))
			continue;
		for (int e = 0; e < HK_TE_N && rc; e++)
			if (hdr.entry[e] != 0xffff && tl->code + hdr.entry[e] == ptr &&
			    entry_kind(e) == kind && hdr.real_lit[e] != 0xffff &&
			    hdr.real_lit[e] + 8u <= hdr.len)
				rc = hk_mem_read(t->memfd, tl->code + hdr.real_lit[e],
						 func, 8);
		break;
	}
	free(v);
	return rc;
}

/* The pymalloc functions the mem and object slots point to (through the
 * padding or a trampoline left by an earlier run: both resolve to the same
 * function in the hooks plan), by kind (f[HK_MALLOC - 1] ...). */
static int pymalloc_funcs(const struct hk_hooks *h, struct hk_pytarget *t,
			  uint64_t f[4])
{
	memset(f, 0, 4 * sizeof(f[0]));
	for (int i = 0; i < h->nsites; i++) {
		const struct hk_site *s = &h->sites[i];

		if (!(s->domains & (1u << HK_DOM_RAW)))
			f[s->kind - 1] = s->func + t->bias;
	}
	return f[HK_MALLOC - 1] && f[HK_CALLOC - 1] ? 0 : -1;
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

/* Whether the data tail holds the header of another version's trampoline
 * ("HAWKTRM" and another digit): its code is never overwritten (a thread
 * could be in it). */
static bool other_version(struct hk_pytarget *t, const struct hk_tail *tl)
{
	char m[8];

	return tl->rw_room >= RW_HEADER + 8 &&
	       hk_mem_read(t->memfd, tl->rw + RW_HEADER, m, 8) == 0 &&
	       memcmp(m, header_magic, 7) == 0 && m[7] != header_magic[7];
}

/* Hosts in the order to try: one holding an earlier trampoline (it must be
 * reused), the interpreter's image, then libc: only images that are never
 * unmapped (a module loaded with dlopen could be). Never the dynamic
 * loader: its startup allocator hands out the rest of its .bss page.
 * -1: not a host. */
static int host_rank(struct hk_pytarget *t, const struct hk_tail *tl)
{
	struct tramp_header hdr;
	const char *base = strrchr(tl->name, '/');

	base = base ? base + 1 : tl->name;
	if (has_header(t, tl, &hdr))
		return 0;
	if (other_version(t, tl))
		return -1;
	if (strcmp(tl->name, t->image_name) == 0)
		return 1;
	if (strcmp(base, "libc.so.6") == 0)
		return 2;
	return 3;
}

static void layout(struct hk_sampler *s, const struct hk_tail *tl,
		   struct hk_tramp_spec *spec)
{
	snprintf(s->host, sizeof(s->host), "%s", tl->name);
	s->code = tl->code;
	s->state = tl->rw;
	s->header = tl->rw + RW_HEADER;
	s->tag = tl->rw + RW_TAG;
	s->table = tl->rw + RW_TABLE;
	s->walkaddr = tl->rw + RW_WALK;
	s->ringaddr = tl->rw + RW_RING;
	if (spec->py.tstate)
		spec->py.walk = s->walkaddr;
	if (spec->ring)
		spec->ring = s->ringaddr;
	spec->at = s->code;
	spec->state = s->state;
	spec->seq = tl->rw + RW_SEQ;
	spec->table = s->table;
	spec->tag = s->tag;
}

/* Whether [addr, addr + len) of the target is all zero: a tail that holds
 * anything is in use by someone, and is never written. */
static bool all_zero(struct hk_pytarget *t, uint64_t addr, size_t len)
{
	uint8_t buf[512];

	for (size_t off = 0; off < len; off += sizeof(buf)) {
		size_t k = len - off < sizeof(buf) ? len - off : sizeof(buf);

		if (hk_mem_read(t->memfd, addr + off, buf, k))
			return false;
		for (size_t i = 0; i < k; i++)
			if (buf[i])
				return false;
	}
	return true;
}

/* Builds spec into the first host with room that is unused (all zero),
 * or that holds the earlier trampoline to reuse: 0, or -1 if none. */
static int place(struct hk_sampler *s, struct hk_pytarget *t,
		 const struct hk_tail *v, size_t n, struct hk_tramp_spec *spec)
{
	for (int rank = 0; rank <= 2; rank++) {
		for (size_t i = 0; i < n; i++) {
			if (host_rank(t, &v[i]) != rank || v[i].rw_room < RW_END)
				continue;
			layout(s, &v[i], spec);
			size_t cap = v[i].code_room < sizeof(s->buf) ? v[i].code_room : sizeof(s->buf);
			if (hk_tramp_build(spec, s->buf, cap, &s->out) == 0 &&
			    (rank == 0 ||
			     (all_zero(t, v[i].code, s->out.len) &&
			      all_zero(t, v[i].rw, RW_END))))
				return 0;
			if (rank == 0)
				return -1;	/* the earlier one must be reused */
		}
	}
	return -1;
}

/* How the trampoline announces (TH_ flags): by system call (getppid)
 * rather than through the free probe, five times cheaper, but a seccomp
 * filter could refuse the call (then announcements would be lost) or kill
 * the process for it, so only for a process without one; and then into a
 * ring in the target's memory (no kernel entry a sampled block when its
 * thread holds the GIL), unless HAWK_BPF_NO_RING is set. A trampoline an
 * earlier run left keeps its way (it is reused as it is). */
static unsigned announce_by(struct hk_pytarget *t, const struct hk_tail *v,
			    size_t n, bool (*sys_ok)(void))
{
	struct tramp_header hdr;

	for (size_t i = 0; i < n; i++)
		if (has_header(t, &v[i], &hdr))
			return hdr.flags & (TH_SYS | TH_RING);
	if (getenv("HAWK_BPF_NO_SYSCALL") || hk_proc_seccomp(t->pid) != 0 ||
	    !sys_ok())	/* last: it may mount tracefs */
		return 0;
	return getenv("HAWK_BPF_NO_RING") ? TH_SYS : TH_SYS | TH_RING;
}

int hk_sampler_plan(struct hk_sampler *s, struct hk_pytarget *t,
		    const struct hk_hooks *h,
		    const struct hk_sample_rates *r, unsigned capture, bool total,
		    bool (*sys_ok)(void), char *err, size_t errlen)
{
	const struct hk_slot *raw = &h->slots[HK_DOM_RAW * 4];
	const struct hk_py_layout *L = &t->layout->bpf;
	struct hk_tramp_spec spec;
	struct hk_tail *v;
	uint64_t pm[4];
	size_t n;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!hk_ring_bytes())
		return ERR("HAWK_BPF_RING_KB must be a power of two from 4 to 1048576 (KiB)");
	if (pymalloc_funcs(h, t, pm))
		return ERR("--sample needs pymalloc, which process %d does not use (PYTHONMALLOC=malloc?); trace it exactly instead",
			   (int)t->pid);
	memset(&spec, 0, sizeof(spec));
	spec.real[HK_TE_OBJ_MALLOC] = pm[HK_MALLOC - 1];
	spec.real[HK_TE_OBJ_CALLOC] = pm[HK_CALLOC - 1];
	/* Sampled calls go where the raw slots point while we trace: the
	 * probed padding, or the function when its probe is inside it. */
	spec.probe_malloc = raw[HK_MALLOC - 1].redirect ?: raw[HK_MALLOC - 1].orig;
	spec.probe_calloc = raw[HK_CALLOC - 1].redirect ?: raw[HK_CALLOC - 1].orig;
	spec.raw_ctx = t->tables[HK_DOM_RAW];
	spec.magic = HK_SAMPLE_MAGIC;
	spec.small_max = t->layout->small_max;
	spec.nclasses = r->n;
	for (unsigned i = 0; i < r->n; i++) {
		uint64_t th = hk_sample_threshold(r->prob[i]);

		spec.classes[i].bound = r->bound[i];
		spec.classes[i].always = th >= 1ULL << 32;
		spec.classes[i].threshold = spec.classes[i].always ? 0 : (uint32_t)th;
	}
	if (hk_tails(t->pid, &v, &n))
		return ERR("cannot read the mappings of process %d: %s", (int)t->pid,
			   strerror(errno));
	/* Tags need glibc's chunk header; the raw domain needs tags and its
	 * four functions probed, best in padding, which unsampled calls pass
	 * by (a probe inside a function sees them all, and BPF drops the
	 * unmarked ones: right, at the cost of a trap each, for the rarely
	 * called function that lacks padding, such as sid's raw calloc). */
	spec.tagging = hk_glibc_malloc(v, n);
	spec.raw = spec.tagging;
	for (int k = HK_MALLOC; k <= HK_FREE; k++)
		spec.raw &= raw[k - 1].probed;
	/* tags serve only the switched raw domain's frees; tagged blocks in a
	 * probed raw domain were misweighed (sid's 3.13 before its raw calloc
	 * could be switched: 1 % of a line's 1 KiB blocks estimated) */
	spec.tagging = spec.raw;
	if (spec.raw) {
		spec.real[HK_TE_RAW_MALLOC] = raw[HK_MALLOC - 1].orig;
		spec.real[HK_TE_RAW_CALLOC] = raw[HK_CALLOC - 1].orig;
		spec.real[HK_TE_RAW_REALLOC] = raw[HK_REALLOC - 1].orig;
		spec.real[HK_TE_RAW_FREE] = raw[HK_FREE - 1].orig;
		/* pymalloc's reallocs draw too (a list's item array is made
		 * and grown by them) */
		if (pm[HK_REALLOC - 1] && pm[HK_FREE - 1]) {
			spec.real[HK_TE_OBJ_REALLOC] = pm[HK_REALLOC - 1];
			spec.obj_free = pm[HK_FREE - 1];
		}
	}
	spec.probe_realloc = raw[HK_REALLOC - 1].redirect ?: raw[HK_REALLOC - 1].orig;
	spec.probe_free = raw[HK_FREE - 1].redirect ?: raw[HK_FREE - 1].orig;
	unsigned how = spec.raw ? announce_by(t, v, n, sys_ok) : 0;

	spec.sys_nr = how & TH_SYS ? SYS_getppid : 0;
	/* frames read in the target: interpreter frames (3.11+) whose
	 * running thread state is a global word (3.11) */
	if (spec.sys_nr && L->rt_tstate_current && L->frame_head_size &&
	    !L->frame_instr_units) {
		spec.py.tstate = t->runtime + L->rt_tstate_current;
		spec.py.cframe = (int32_t)L->tstate_cframe;
		spec.py.current_frame = (int32_t)L->cframe_current_frame;
		spec.py.code = (int32_t)L->frame_code;
		spec.py.previous = (int32_t)L->frame_previous;
		spec.py.instr = (int32_t)L->frame_instr;
		spec.py.owner = (int32_t)L->frame_owner;
		spec.py.thread_id = (int32_t)L->tstate_thread_id;
		spec.ring = (how & TH_RING) && L->tstate_thread_id;	/* placed: layout() */
	}
	/* Frames the trampoline captures (the same whatever --frames: a later
	 * run reuses the code): as many as BPF would, if they fit its stack
	 * buffer; else BPF walks them. */
	if (capture <= HK_TRAMP_WALK_MAX)
		s->walk[0] = 16 * capture;
	s->walk[1] = total ? HK_TOTAL_CAP : 0;

	rc = place(s, t, v, n, &spec);
	free(v);
	if (rc)
		return ERR("no room for the sampling trampoline in the images of process %d (or an earlier hawk-bpf left one with other --sample-rates there)",
			   (int)t->pid);
	s->tagging = spec.tagging;
	s->raw = spec.raw;
	s->sys = spec.sys_nr != 0;
	s->ring = spec.ring != 0;
	s->nthresholds = hk_tramp_thresholds(&spec, s->thresholds);
	for (int e = 0; e < HK_TE_N; e++) {
		const struct hk_slot *hs;

		if (s->out.entry[e] == SIZE_MAX)
			continue;
		if (e == HK_TE_OBJ_MALLOC || e == HK_TE_OBJ_CALLOC ||
		    e == HK_TE_OBJ_REALLOC) {
			for (int d = HK_DOM_MEM; d <= HK_DOM_OBJ; d++) {
				hs = &h->slots[d * 4 + entry_kind(e) - 1];
				s->slot[s->nslots].addr = hs->addr;
				s->slot[s->nslots].orig = spec.real[e];
				s->slot[s->nslots].padding = hs->redirect;
				s->slot[s->nslots++].tramp = s->code + s->out.entry[e];
			}
		} else {
			hs = &raw[entry_kind(e) - 1];
			s->slot[s->nslots].addr = hs->addr;
			s->slot[s->nslots].orig = hs->orig;
			s->slot[s->nslots].padding = hs->redirect;
			s->slot[s->nslots++].tramp = s->code + s->out.entry[e];
		}
	}
	if (getenv("HAWK_BPF_DEBUG"))
		fprintf(stderr, "hawk-bpf: debug: sampling trampoline: %zu bytes at %#llx in %s, %s, %s%s\n",
			s->out.len, (unsigned long long)s->code, s->host,
			s->tagging ? "tagging" : "no tags (not glibc malloc)",
			s->raw ? "raw domain switched" : "raw domain probed",
			s->ring ? ", announces into a ring" :
			s->sys ? ", announces by getppid(2)" : "");
	return 0;
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
		return ERR("process %d has a sampling trampoline from an earlier hawk-bpf with other --sample-rates size bounds or of another version; use the same bounds and version",
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

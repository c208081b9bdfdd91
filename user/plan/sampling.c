#include "sampling.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include "pagetail.h"
#include "proc.h"
#include "ring.h"
#include "tramp_data.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

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
	if (hk_tramp_has_header(t, tl, &hdr))
		return 0;
	if (hk_tramp_other_version(t, tl))
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
		if (hk_tramp_has_header(t, &v[i], &hdr))
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
	spec.by_bytes = r->period != 0;
	spec.bytes_mult = r->mult;
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
		return ERR("no room for the sampling trampoline in the images of process %d (or an earlier hawk-bpf left one made for other --sample-rates BOUNDs, or for --sample-bytes, there)",
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

#include "probes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "disasm.h"
#include "tramp_data.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static const char *const kind_name[] = { "?", "malloc", "calloc", "realloc", "free" };
static const char *const dom_name[] = { "raw", "mem", "object" };

/* A run of nops from a to exactly end, outside every function. */
static bool nops_to(const struct hk_elf *e, uint64_t a, uint64_t end,
		    struct hk_insn *first)
{
	uint8_t code[32];
	struct hk_insn ins[16];
	size_t n, i;
	uint64_t at = a;

	if (end - a > 16 || hk_elf_read(e, a, code, end - a + 15))
		return false;
	for (uint64_t x = a; x < end; x++)
		if (hk_elf_in_fde(e, x))
			return false;
	n = hk_disasm(code, end - a + 15, a, ins, 16);
	for (i = 0; i < n && at < end; i++) {
		if (!ins[i].nop)
			return false;
		at += ins[i].size;
	}
	if (at != end || i == 0)
		return false;
	*first = ins[0];
	return true;
}

/* The function a table pointer enters: itself, or, when a hawk-bpf killed
 * before it could restore left it on padding, the function after it. */
static int resolve_entry(const struct hk_elf *e, uint64_t v, uint64_t *func)
{
	struct hk_insn first;

	if (hk_elf_in_fde(e, v)) {
		*func = v;
		return 0;
	}
	for (uint64_t f = v + 1; f <= v + 16; f++)
		if (hk_elf_in_fde(e, f) && nops_to(e, v, f, &first)) {
			*func = f;
			return 0;
		}
	return -1;
}

/* A 5-byte nop under a uprobe is rewritten by Linux 6.18+ into a call to
 * a per-process [uprobes-trampoline] page that a forked child does not
 * inherit, while it inherits the rewritten code: never probe one (nor,
 * to be safe as the kernel's list of such nops grows, anything else of 5
 * bytes). */
static bool rewritten_by_kernel(const struct hk_insn *in)
{
	return in->size == 5;
}

static bool probe_ok(const struct hk_insn *in)
{
	return in->probeable && in->emulated && !rewritten_by_kernel(in);
}

/* A padding nop run ending at func, to point the table slot at. Best is
 * one whose address differs from func only in the low byte (the switch is
 * then a one-byte store, atomic); else any (an 8-byte switch, made with
 * the target frozen). 0: no padding fit to probe. */
static uint64_t padding_entry(const struct hk_elf *e, uint64_t func)
{
	struct hk_insn first;
	uint64_t any = 0;

	for (uint64_t k = 1; k <= 15 && k <= func; k++) {
		if (!nops_to(e, func - k, func, &first) || !probe_ok(&first))
			continue;
		if (hk_one_byte_switch(func - k, func))
			return func - k;
		if (!any)
			any = func - k;
	}
	return any;
}

/* No usable padding: the first emulated instruction on the straight path
 * from the entry, before anything that branches or changes the arguments
 * (or the stack, which a uretprobe needs untouched), and that no branch of
 * the function jumps back to (nor to the entry: one call, one hit). */
static uint64_t inside_entry(const struct hk_elf *e, uint64_t func, int kind,
			     bool *stepped)
{
	uint8_t code[96];
	struct hk_insn ins[8];
	uint64_t site = 0, start, size;
	size_t n;

	if (hk_elf_read(e, func, code, sizeof(code)))
		return 0;
	n = hk_disasm(code, sizeof(code), func, ins, 8);
	for (size_t i = 0; i < n; i++) {
		if (probe_ok(&ins[i])) {
			site = ins[i].addr;
			break;
		}
		if (ins[i].flow || ins[i].writes_args ||
		    (kind != HK_FREE && ins[i].writes_sp))
			break;
	}
	/* Last resort: the entry itself, single-stepped (~12 us a hit,
	 * against ~0.7): right, and cheap enough for the rarely called
	 * functions that lack padding (sid's raw calloc) */
	if (!site && n && ins[0].probeable && !rewritten_by_kernel(&ins[0])) {
		site = func;
		*stepped = !ins[0].emulated;
	}
	if (!site || hk_elf_func_extent(e, func, &start, &size) ||
	    start != func || size > (1 << 20))
		return 0;
	uint8_t *body = malloc(size);
	uint64_t ok = site;

	if (!body || hk_elf_read(e, func, body, size)) {
		free(body);
		return 0;
	}
	for (uint64_t off = 0; off < size;) {
		struct hk_insn one;

		if (!hk_disasm(body + off, size - off, func + off, &one, 1) ||
		    (one.has_target && one.target >= func && one.target <= site)) {
			ok = 0;
			break;
		}
		off += one.size;
	}
	free(body);
	return ok;
}

uint64_t hk_probe_entry(const struct hk_elf *e, uint64_t func)
{
	uint8_t code[16];
	struct hk_insn in;

	if (hk_elf_read(e, func, code, sizeof(code)) ||
	    hk_disasm(code, sizeof(code), func, &in, 1) != 1 || !in.probeable)
		return 0;
	/* a nop falls through: the next instruction is on every path too */
	if (rewritten_by_kernel(&in))
		return in.nop ? hk_probe_entry(e, func + in.size) : 0;
	return func;
}

void hk_site_plan(const struct hk_elf *e, uint64_t func, int kind,
		  struct hk_site *s)
{
	memset(s, 0, sizeof(*s));
	s->func = func;
	s->kind = kind;
	s->redirect = padding_entry(e, func);
	s->probe = s->redirect ? s->redirect :
		   inside_entry(e, func, kind, &s->stepped);
}

static int site_for(struct hk_hooks *h, struct hk_pytarget *t, uint64_t func,
		    int kind, char *err, size_t errlen)
{
	struct hk_site *s;

	for (int i = 0; i < h->nsites; i++) {
		if (h->sites[i].func != func)
			continue;
		if (h->sites[i].kind != kind)
			return ERR("allocator function %#llx serves as both %s and %s",
				   (unsigned long long)func,
				   kind_name[h->sites[i].kind], kind_name[kind]);
		return i;
	}
	if (h->nsites == HK_MAX_PROBES)
		return ERR("too many distinct allocator functions");
	s = &h->sites[h->nsites];
	/* No site is an error only for a mode that probes it (hk_hooks_site) */
	hk_site_plan(&t->elf, func, kind, s);
	if (getenv("HAWK_BPF_DEBUG"))
		fprintf(stderr, "hawk-bpf: debug: %s at %#llx: probe %#llx (%s)\n",
			kind_name[kind], (unsigned long long)func,
			(unsigned long long)s->probe,
			!s->probe ? "none" :
			s->stepped ? "its entry, single-stepped" :
			!s->redirect ? "inside the function" :
			hk_one_byte_switch(s->redirect, func) ? "padding, one-byte switch" :
			"padding, 8-byte switch with the target frozen");
	return h->nsites++;
}

int hk_hooks_plan(struct hk_hooks *h, struct hk_pytarget *t, char *err,
		  size_t errlen)
{
	memset(h, 0, sizeof(*h));
	for (int d = 0; d < HK_NDOMAINS; d++) {
		uint64_t tab[5];

		if (hk_mem_read(t->memfd, t->tables[d], tab, sizeof(tab)))
			return ERR("cannot read the %s allocator table", dom_name[d]);
		for (int k = HK_MALLOC; k <= HK_FREE; k++) {
			uint64_t v = tab[k] - t->bias, func;
			struct hk_slot *sl = &h->slots[h->nslots++];
			int si;

			if (hk_elf_is_code(&t->elf, v) &&
			    resolve_entry(&t->elf, v, &func) == 0)
				;	/* CPython's own, or its padding */
			else if (hk_sampler_function(t, tab[k], k, &func) == 0)
				func -= t->bias;	/* left by a killed run */
			else
				return ERR("the %s %s allocator (%#llx) is not CPython's own: custom allocators are not supported",
					   dom_name[d], kind_name[k],
					   (unsigned long long)tab[k]);
			si = site_for(h, t, func, k, err, errlen);
			if (si < 0)
				return -1;
			h->sites[si].domains |= 1u << d;
			sl->addr = t->tables[d] + 8 * k;
			sl->orig = func + t->bias;
			sl->probed = h->sites[si].probe != 0;
			if (h->sites[si].redirect)
				sl->redirect = h->sites[si].redirect + t->bias;
		}
	}
	return 0;
}

int hk_hooks_site(const struct hk_hooks *h, int i, const struct hk_pytarget *t,
		  char *err, size_t errlen)
{
	const struct hk_site *s = &h->sites[i];

	if (s->probe)
		return 0;
	return ERR("no safe probe site for the %s function at %#llx of CPython %s: no padding before it a uprobe can sit on, and its entry cannot be probed",
		   kind_name[s->kind], (unsigned long long)s->func, t->version);
}

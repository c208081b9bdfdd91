#include "hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "disasm.h"
#include "sampler.h"

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

/* Padding nop ending at func whose address differs from func only in the
 * low byte, so the table slot can be switched with a one-byte store. */
static uint64_t padding_entry(const struct hk_elf *e, uint64_t func)
{
	struct hk_insn first;

	for (uint64_t k = 1; k <= 15 && k <= (func & 0xff); k++)
		if (nops_to(e, func - k, func, &first) && first.probeable &&
		    first.emulated)
			return func - k;
	return 0;
}

/* No usable padding: the first emulated instruction on the straight path
 * from the entry, before anything that branches or changes the arguments
 * (or the stack, which a uretprobe needs untouched), and that no branch of
 * the function jumps back to. */
static uint64_t inside_entry(struct hk_elf *e, uint64_t func, int kind)
{
	uint8_t code[96];
	struct hk_insn ins[8];
	uint64_t site = 0, start, size;
	size_t n;

	if (hk_elf_read(e, func, code, sizeof(code)))
		return 0;
	n = hk_disasm(code, sizeof(code), func, ins, 8);
	for (size_t i = 0; i < n; i++) {
		if (ins[i].emulated) {
			site = ins[i].addr;
			break;
		}
		if (ins[i].flow || ins[i].writes_args ||
		    (kind != HK_FREE && ins[i].writes_sp))
			return 0;
	}
	if (!site || hk_elf_func_symbol(e, func, &start, &size) ||
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
		    (one.has_target && one.target > func && one.target <= site)) {
			ok = 0;
			break;
		}
		off += one.size;
	}
	free(body);
	return ok;
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
	s->func = func;
	s->kind = kind;
	s->redirect = padding_entry(&t->elf, func);
	s->probe = s->redirect ? s->redirect : inside_entry(&t->elf, func, kind);
	if (!s->probe)
		return ERR("no safe probe site for the %s function at %#llx of CPython %s",
			   kind_name[kind], (unsigned long long)func, t->version);
	if (getenv("HAWK_BPF_DEBUG"))
		fprintf(stderr, "hawk-bpf: debug: %s at %#llx: probe %#llx (%s)\n",
			kind_name[kind], (unsigned long long)func,
			(unsigned long long)s->probe,
			s->redirect ? "padding, table redirected" : "inside the function");
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
			if (h->sites[si].redirect)
				sl->redirect = h->sites[si].redirect + t->bias;
		}
	}
	return 0;
}

/* Only the low byte differs (padding_entry guarantees it): a one-byte
 * store cannot be seen half-done by a thread reading the pointer. */
static int set_low_byte(struct hk_pytarget *t, struct hk_slot *s,
			uint64_t from, uint64_t to)
{
	uint64_t cur;
	uint8_t b = (uint8_t)to;

	if (hk_mem_read(t->memfd, s->addr, &cur, sizeof(cur)) || cur != from ||
	    (from ^ to) > 0xff)
		return -1;
	if (hk_mem_write(t->memfd, s->addr, &b, 1) ||
	    hk_mem_read(t->memfd, s->addr, &cur, sizeof(cur)) || cur != to)
		return -1;
	return 0;
}

int hk_hooks_redirect(struct hk_hooks *h, struct hk_pytarget *t, bool raw_only,
		      char *err, size_t errlen)
{
	for (int i = 0; i < h->nslots; i++) {
		struct hk_slot *s = &h->slots[i];
		uint64_t cur;

		if (!s->redirect || (raw_only && i >= 4))
			continue;
		if (hk_mem_read(t->memfd, s->addr, &cur, sizeof(cur)))
			return ERR("cannot read allocator table slot %#llx",
				   (unsigned long long)s->addr);
		/* A killed sampling run left a trampoline here: back to the
		 * function first (an 8-byte switch, made with the target
		 * frozen), then the usual one-byte switch. */
		uint64_t fn;
		if (cur != s->orig && cur != s->redirect &&
		    hk_sampler_function(t, cur, i % 4 + 1, &fn) == 0) {
			if (hk_sampler_reset_slot(t, s->addr, cur, fn, err, errlen))
				return -1;
			cur = fn;
		}
		if (cur != s->redirect && set_low_byte(t, s, cur, s->redirect))
			return ERR("cannot switch allocator table slot %#llx",
				   (unsigned long long)s->addr);
		s->redirected = true;
	}
	return 0;
}

void hk_hooks_restore(struct hk_hooks *h, struct hk_pytarget *t)
{
	for (int i = 0; i < h->nslots; i++) {
		struct hk_slot *s = &h->slots[i];

		if (s->redirected && set_low_byte(t, s, s->redirect, s->orig) == 0)
			s->redirected = false;
	}
}

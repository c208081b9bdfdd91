/* Sampling trampoline code generator (see trampoline.h). A tiny x86-64
 * emitter with labels; internal jumps are relaxed to rel8 where they fit.
 *
 * Layout (calloc first so that malloc, the hot entry, falls into D):
 *
 * C:	lea rax,[rsi-1]; cmp rax,small_max; jae Uc	nelem in 1..small_max
 *	lea rcx,[rdx-1]; cmp rcx,small_max; jae Uc	elsize in 1..small_max
 *	mov rax,rsi; imul rax,rdx; dec rax		no overflow possible
 *	cmp rax,small_max; jae Uc
 *	mov r9d,16; jmp D				raw_table slot offset
 * M:	lea rax,[rsi-1]; cmp rax,small_max; jae Um	rax = size - 1
 *	mov r9d,8
 * D:	mov r10,[state]; xorshift64 on r10; mov [state],r10
 *	mov r11,r10; shr r11,32				the 32-bit random
 *	xor ecx,ecx; { cmp rax,bound-1; sbb ecx,-1 }*	ecx = class index
 *	lea r8,[table]; cmp r11,[r8+rcx*8]; jae UN
 * S:	lea r8,[raw_table]; mov rdi,[r8]; mov r11,magic; jmp [r8+r9]
 * UN:	cmp r9d,8; jne Uc
 * Um:	xor r11d,r11d; jmp real_malloc
 * Uc:	xor r11d,r11d; jmp real_calloc
 *	int3 padding to 8 bytes
 * table: u64 threshold per class, then 2^32 (sizes >= the last bound)
 */
#include "trampoline.h"

#include <errno.h>
#include <string.h>

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11 };
enum { CC_B = 2, CC_AE = 3, CC_NE = 5 };
enum { L_CALLOC, L_MALLOC, L_D, L_UN, L_UM, L_UC, L_TABLE, L_N };
#define MAX_JUMPS 16

struct em {
	uint8_t *buf;		/* NULL: measure only */
	size_t pos;
	uint64_t at;
	int err;
	size_t label[L_N];	/* this pass */
	size_t prev[L_N];	/* previous pass (SIZE_MAX: unknown) */
	bool wide[MAX_JUMPS];	/* internal jump needs rel32 */
	unsigned njumps;
	bool grew;
};

static void b(struct em *e, uint8_t v)
{
	if (e->buf)
		e->buf[e->pos] = v;
	e->pos++;
}

static void le(struct em *e, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		b(e, (uint8_t)(v >> (8 * i)));
}

static void rex(struct em *e, bool w, int r, int x, int bb, bool always)
{
	uint8_t v = 0x40 | (w ? 8 : 0) | (r & 8 ? 4 : 0) | (x & 8 ? 2 : 0) |
		    (bb & 8 ? 1 : 0);

	if (v != 0x40 || always)
		b(e, v);
}

static void modrm(struct em *e, int mod, int reg, int rm)
{
	b(e, (uint8_t)(mod << 6 | (reg & 7) << 3 | (rm & 7)));
}

/* disp32 to absolute `target`, for an instruction ending `tail` bytes
 * after the displacement field. */
static void rel32(struct em *e, uint64_t target, int tail)
{
	uint64_t end = e->at + e->pos + 4 + tail;
	int64_t d = (int64_t)(target - end);

	if (d < INT32_MIN || d > INT32_MAX)
		e->err = -ERANGE;
	le(e, (uint64_t)d, 4);
}

static void label(struct em *e, int l)
{
	e->label[l] = e->pos;
}

/* op reg, [rip + target] */
static void op_rip(struct em *e, uint8_t op, int reg, uint64_t target)
{
	rex(e, true, reg, 0, 0, false);
	b(e, op);
	modrm(e, 0, reg, 5);
	rel32(e, target, 0);
}

static void mov_load_rip(struct em *e, int reg, uint64_t a) { op_rip(e, 0x8b, reg, a); }
static void mov_store_rip(struct em *e, int reg, uint64_t a) { op_rip(e, 0x89, reg, a); }
static void lea_rip(struct em *e, int reg, uint64_t a) { op_rip(e, 0x8d, reg, a); }

/* op dst, src (64-bit, the "r/m, reg" forms) */
static void op_rr(struct em *e, uint8_t op, int dst, int src)
{
	rex(e, true, src, 0, dst, false);
	b(e, op);
	modrm(e, 3, src, dst);
}

static void mov_rr(struct em *e, int dst, int src) { op_rr(e, 0x89, dst, src); }
static void xor_rr(struct em *e, int dst, int src) { op_rr(e, 0x31, dst, src); }

static void xor32_self(struct em *e, int r)
{
	rex(e, false, r, 0, r, false);
	b(e, 0x31);
	modrm(e, 3, r, r);
}

/* shl (ext 4) / shr (ext 5) r64, imm8 */
static void shift(struct em *e, int ext, int r, uint8_t n)
{
	rex(e, true, 0, 0, r, false);
	b(e, 0xc1);
	modrm(e, 3, ext, r);
	b(e, n);
}

/* cmp r64, imm (0 <= imm <= INT32_MAX) */
static void cmp_ri(struct em *e, int r, uint32_t imm)
{
	rex(e, true, 0, 0, r, false);
	if (imm <= 127) {
		b(e, 0x83);
		modrm(e, 3, 7, r);
		b(e, (uint8_t)imm);
	} else if (r == RAX) {
		b(e, 0x3d);
		le(e, imm, 4);
	} else {
		b(e, 0x81);
		modrm(e, 3, 7, r);
		le(e, imm, 4);
	}
}

static void cmp32_ri8(struct em *e, int r, uint8_t imm)
{
	rex(e, false, 0, 0, r, false);
	b(e, 0x83);
	modrm(e, 3, 7, r);
	b(e, imm);
}

static void sbb32_ri8(struct em *e, int r, int8_t imm)
{
	rex(e, false, 0, 0, r, false);
	b(e, 0x83);
	modrm(e, 3, 3, r);
	b(e, (uint8_t)imm);
}

/* lea dst, [base + disp8] (base not rsp/r12) */
static void lea_rd8(struct em *e, int dst, int base, int8_t disp)
{
	rex(e, true, dst, 0, base, false);
	b(e, 0x8d);
	modrm(e, 1, dst, base);
	b(e, (uint8_t)disp);
}

static void imul_rr(struct em *e, int dst, int src)
{
	rex(e, true, dst, 0, src, false);
	b(e, 0x0f);
	b(e, 0xaf);
	modrm(e, 3, dst, src);
}

static void dec_r(struct em *e, int r)
{
	rex(e, true, 0, 0, r, false);
	b(e, 0xff);
	modrm(e, 3, 1, r);
}

static void mov32_ri(struct em *e, int r, uint32_t imm)
{
	rex(e, false, 0, 0, r, false);
	b(e, (uint8_t)(0xb8 + (r & 7)));
	le(e, imm, 4);
}

static void mov64_ri(struct em *e, int r, uint64_t imm)
{
	rex(e, true, 0, 0, r, false);
	b(e, (uint8_t)(0xb8 + (r & 7)));
	le(e, imm, 8);
}

/* mov dst, [base] (base not rsp/rbp/r12/r13) */
static void mov_load_base(struct em *e, int dst, int base)
{
	rex(e, true, dst, 0, base, false);
	b(e, 0x8b);
	modrm(e, 0, dst, base);
}

/* op reg, [base + index*scale] (base not rbp/r13, index not rsp) */
static void sib(struct em *e, int reg, int base, int index, int scale_log)
{
	modrm(e, 0, reg, 4);
	b(e, (uint8_t)(scale_log << 6 | (index & 7) << 3 | (base & 7)));
}

static void cmp_r_mem(struct em *e, int reg, int base, int index)
{
	rex(e, true, reg, index, base, false);
	b(e, 0x3b);
	sib(e, reg, base, index, 3);
}

static void jmp_mem(struct em *e, int base, int index)
{
	rex(e, false, 0, index, base, false);
	b(e, 0xff);
	sib(e, 4, base, index, 0);
}

static void jmp_abs(struct em *e, uint64_t target)
{
	b(e, 0xe9);
	rel32(e, target, 0);
}

/* Internal jump (cc < 0: jmp) to label l, rel8 unless marked wide. */
static void jump(struct em *e, int cc, int l)
{
	unsigned j = e->njumps++;
	bool wide = e->wide[j];
	size_t len = wide ? (cc < 0 ? 5 : 6) : 2;
	int64_t d = 0;

	if (e->prev[l] != SIZE_MAX)
		d = (int64_t)e->prev[l] - (int64_t)(e->pos + len);
	if (!wide && (d < INT8_MIN || d > INT8_MAX)) {
		e->wide[j] = e->grew = true;	/* next pass */
		d = 0;
	}
	if (!wide) {
		b(e, (uint8_t)(cc < 0 ? 0xeb : 0x70 + cc));
		b(e, (uint8_t)(int8_t)d);
	} else {
		if (cc < 0)
			b(e, 0xe9);
		else {
			b(e, 0x0f);
			b(e, (uint8_t)(0x80 + cc));
		}
		le(e, (uint64_t)d, 4);
	}
}

static void gen(struct em *e, const struct hk_tramp_spec *s)
{
	uint32_t sm = (uint32_t)s->small_max;

	e->pos = 0;
	e->njumps = 0;
	e->err = 0;

	label(e, L_CALLOC);
	lea_rd8(e, RAX, RSI, -1);
	cmp_ri(e, RAX, sm);
	jump(e, CC_AE, L_UC);
	lea_rd8(e, RCX, RDX, -1);
	cmp_ri(e, RCX, sm);
	jump(e, CC_AE, L_UC);
	mov_rr(e, RAX, RSI);
	imul_rr(e, RAX, RDX);
	dec_r(e, RAX);
	cmp_ri(e, RAX, sm);
	jump(e, CC_AE, L_UC);
	mov32_ri(e, R9, 16);
	jump(e, -1, L_D);

	label(e, L_MALLOC);
	lea_rd8(e, RAX, RSI, -1);
	cmp_ri(e, RAX, sm);
	jump(e, CC_AE, L_UM);
	mov32_ri(e, R9, 8);

	label(e, L_D);
	mov_load_rip(e, R10, s->state);
	mov_rr(e, R11, R10);
	shift(e, 4, R11, 13);
	xor_rr(e, R10, R11);
	mov_rr(e, R11, R10);
	shift(e, 5, R11, 7);
	xor_rr(e, R10, R11);
	mov_rr(e, R11, R10);
	shift(e, 4, R11, 17);
	xor_rr(e, R10, R11);
	mov_store_rip(e, R10, s->state);
	mov_rr(e, R11, R10);
	shift(e, 5, R11, 32);
	xor32_self(e, RCX);
	for (unsigned i = 0; i < s->nclasses; i++) {
		cmp_ri(e, RAX, (uint32_t)(s->classes[i].bound - 1));
		sbb32_ri8(e, RCX, -1);
	}
	lea_rip(e, R8, e->at + (e->prev[L_TABLE] == SIZE_MAX ? 0 : e->prev[L_TABLE]));
	cmp_r_mem(e, R11, R8, RCX);
	jump(e, CC_AE, L_UN);

	lea_rip(e, R8, s->raw_table);
	mov_load_base(e, RDI, R8);
	mov64_ri(e, R11, s->magic);
	jmp_mem(e, R8, R9);

	label(e, L_UN);
	cmp32_ri8(e, R9, 8);
	jump(e, CC_NE, L_UC);
	label(e, L_UM);
	xor32_self(e, R11);
	jmp_abs(e, s->real_malloc);
	label(e, L_UC);
	xor32_self(e, R11);
	jmp_abs(e, s->real_calloc);

	while ((e->at + e->pos) & 7)	/* no table load splits a line */
		b(e, 0xcc);
	label(e, L_TABLE);
	for (unsigned i = 0; i < s->nclasses; i++)
		le(e, s->classes[i].always ? 1ull << 32 : s->classes[i].threshold, 8);
	le(e, 1ull << 32, 8);
}

static bool valid(const struct hk_tramp_spec *s)
{
	uint64_t prev = 0;

	if (s->small_max < 1 || s->small_max > INT32_MAX ||
	    s->nclasses > HK_TRAMP_MAX_CLASSES)
		return false;
	/* Bounds increase strictly from 1; bound - 1 is a cmp imm32. */
	for (unsigned i = 0; i < s->nclasses; i++) {
		uint64_t bound = s->classes[i].bound;

		if (bound <= prev || bound - 1 > INT32_MAX)
			return false;
		prev = bound;
	}
	return true;
}

int hk_tramp_build(const struct hk_tramp_spec *s, uint8_t *buf, size_t cap,
		   struct hk_tramp_out *out)
{
	struct em e;

	if (!s || !out || (!buf && cap) || !valid(s))
		return -EINVAL;
	memset(&e, 0, sizeof(e));
	e.at = s->at;
	for (int l = 0; l < L_N; l++)
		e.prev[l] = SIZE_MAX;
	/* Relax: jumps only ever grow, so this ends within MAX_JUMPS + 2
	 * passes; the last pass saw the labels it laid out. */
	for (;;) {
		e.grew = false;
		gen(&e, s);
		if (!e.grew && !memcmp(e.label, e.prev, sizeof(e.label)))
			break;
		memcpy(e.prev, e.label, sizeof(e.prev));
	}
	if (e.err)
		return e.err;
	out->len = e.pos;
	out->malloc_off = e.label[L_MALLOC];
	out->calloc_off = e.label[L_CALLOC];
	out->data_off = e.label[L_TABLE];
	if (e.pos > cap)
		return -ENOSPC;
	e.buf = buf;
	gen(&e, s);
	return e.err;
}

/* Sampling trampoline code generator (see trampoline.h). A tiny x86-64
 * emitter with labels; internal jumps are relaxed to rel8 where they fit.
 *
 * Layout (raw entries only with spec->raw; OM last so that the hot entry
 * falls into D; "i" is the entry's index in the pool's U and S tables):
 *
 * OC:	lea rax,[rsi-1]; cmp rax,small_max; jae Uoc	nelem in 1..small_max
 *	lea rcx,[rdx-1]; cmp rcx,small_max; jae Uoc	elsize in 1..small_max
 *	mov rax,rsi; imul rax,rdx; dec rax		no overflow possible
 *	cmp rax,small_max; jae Uoc; mov r9d,i; jmp D
 * Uoc:	xor r11d,r11d; jmp [U+8i]
 * RC:	mov rax,rsi; imul rax,rdx; jo Urc; dec rax; mov r9d,i; jmp D
 * Urc:	xor r11d,r11d; jmp [U+8i]
 * RR:	(with OR: inc [seq]) test rsi,rsi; jz Rrd; TAGGED? rsi; jne Rrd
 *	CLEAR rsi; lea rax,[rdx-1]; mov r9d,RR_OLD; jmp D	traced old block
 * Rrd:	lea rax,[rdx-1]; mov r9d,i; jmp D
 * RF:	test rsi,rsi; jz Rfr; TAGGED? rsi; jne Rfr; jmp [PROBE_FREE]
 *	(sys_nr: push rdi,rsi; announce HK_ANN_FREE; pop rsi,rdi)
 * Rfr:	jmp [REAL_FREE]
 * RM:	lea rax,[rsi-1]; mov r9d,i; jmp D		size 0 wraps: always
 * OR:	lea rax,[rdx-1]; cmp rax,small_max; jae Uor; mov r9d,i; jmp D
 * Uor:	xor r11d,r11d; jmp [U+8i]			(raw mode only)
 * Uom:	xor r11d,r11d; jmp [U+8i]
 * OM:	lea rax,[rsi-1]; cmp rax,small_max; jae Uom; mov r9d,i
 * D:	mov r10,[state]; xorshift64 on r10; mov [state],r10
 *	mov r11,r10; shr r11,32				the 32-bit random
 *	xor ecx,ecx; { cmp rax,bound-1; sbb ecx,-1 }*	ecx = class index
 *	lea r8,[table]; cmp r11,[r8+rcx*8]; jae UN
 *   by_bytes, instead: lea rcx,[rax+1]; cmp rcx,1; adc rcx,0	size (0: 1)
 *	mov r8,[table]; imul rcx,r8; jo BOK; cmp r11,rcx; jae UN; BOK:
 *	mov r11,[MAGIC]; (with OR: cmp r9d,OR; je ORS)
 * SAMPLED: mov rdi,[RAWCTX]; mov rdi,[rdi]
 *   no tag: lea r8,[S]; jmp [r8+r9*8]
 *   tag:	cmp r9d,1; jbe AdjC; cmp r9d,4; je AdjR; add rsi,16; jmp CALL
 * AdjC:	mov rax,rsi; imul rax,rdx; lea rdx,[rax+16]; mov esi,1; jmp CALL
 * AdjR:	add rdx,16
 * CALL:	sub rsp,8; lea r8,[S]; call [r8+r9*8]; add rsp,8
 *	test rax,rax; jz RET; TAG rax
 *	(raw: announce_call; with sys_nr and py.tstate, an object-domain
 *	block is announced with its caller's frames: announce_frames)
 * RET:	ret
 * ORS:	push rbx,r12,r13; r13 = [seq]; call [U+8i] (pymalloc's realloc);
 *	unless NULL or [seq] moved (the raw domain drew): call SAMPLED as
 *	a malloc of the size, rep movsb into it, call [OBJ_FREE] on
 *	pymalloc's block (obj_realloc_sampled)
 * UN:	xor r11d,r11d; lea r8,[U]; jmp [r8+r9*8]
 * OLDU (U[RR_OLD], traced old block, unsampled result): announce the old
 *	block's end (free probe, r11 = magic+3), call the real realloc; if it
 *	fails, announce the old block back (magic+4) and tag it again.
 * OLDS (sampled result): call the realloc probe, padded; tag the result,
 *	or the old block again if it failed.
 * pool (8-aligned, after int3): U[7] real (U[RR_OLD] = OLDU), S[7] sampled
 *	targets, REAL_FREE, PROBE_FREE, PROBE_REALLOC, RAWCTX (address of the
 *	raw ctx word), MAGIC, TSTATE (address of the running thread state),
 *	OBJ_FREE (pymalloc's free)
 *
 * TAGGED? p:	mov rax,[p-8]; mov ecx,eax; and ecx,2; shl ecx,2
 *		and rax,-8; sub rax,rcx; add rax,p	end of usable + 8
 *		mov rcx,[rax-24]; cmp rcx,[tag]; jne; mov rcx,[rax-16]; cmp rcx,[tag+8]
 * TAG p:	the same end, then the two words stored there
 */
#include "trampoline.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include "hawk.h"

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13 };
enum { CC_O = 0, CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_BE = 6, CC_A = 7 };
enum { L_UOC, L_URC, L_UOM, L_RRD, L_RFR, L_D, L_SAMPLED, L_ADJC, L_ADJR,
       L_CALL, L_RET, L_TAGRAX, L_OLDU, L_OLDS, L_RETAG, L_SIZED, L_POPRET,
       L_UN, L_RAWANN, L_FLOOP, L_FCOUNT, L_FC, L_FDONE, L_RESERVE, L_RHAVE,
       L_RRETRY, L_RFULL, L_RNONE, L_RINGNEW, L_RNFAIL, L_RNDONE, L_ACFAIL,
       L_AC1, L_AC2, L_WALKREC, L_ARDONE, L_OLDUPLAIN, L_OLDUT, L_RCOPY, L_RCDONE, L_RREST, L_UOR, L_ORS, L_ORQ, L_ORRET,
       L_BYTES_OK,
       L_POOL, L_N };
#define MAX_JUMPS 96

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

/* op dst, src (the "r/m, reg" forms; w: 64-bit) */
static void op_rr_w(struct em *e, bool w, uint8_t op, int dst, int src)
{
	rex(e, w, src, 0, dst, false);
	b(e, op);
	modrm(e, 3, src, dst);
}

static void op_rr(struct em *e, uint8_t op, int dst, int src)
{
	op_rr_w(e, true, op, dst, src);
}

/* inc (ext 0) / dec (ext 1) r64 */
static void incdec(struct em *e, int ext, int r)
{
	rex(e, true, 0, 0, r, false);
	b(e, 0xff);
	modrm(e, 3, ext, r);
}

static void mov_rr(struct em *e, int dst, int src) { op_rr(e, 0x89, dst, src); }
static void xor_rr(struct em *e, int dst, int src) { op_rr(e, 0x31, dst, src); }

static void xor32_self(struct em *e, int r)
{
	op_rr_w(e, false, 0x31, r, r);
}

/* op r, imm8 (sign-extended), ext: 0 add, 2 adc, 3 sbb, 4 and, 5 sub,
 * 7 cmp; w: 64-bit */
static void arith_ri8(struct em *e, bool w, int ext, int r, int8_t imm)
{
	rex(e, w, 0, 0, r, false);
	b(e, 0x83);
	modrm(e, 3, ext, r);
	b(e, (uint8_t)imm);
}

/* shl (ext 4) / shr (ext 5) r, imm8; w: 64-bit */
static void shift(struct em *e, bool w, int ext, int r, uint8_t n)
{
	rex(e, w, 0, 0, r, false);
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

static void mov32_ri(struct em *e, int r, uint32_t imm)
{
	rex(e, false, 0, 0, r, false);
	b(e, (uint8_t)(0xb8 + (r & 7)));
	le(e, imm, 4);
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

/* Internal jump (cc < 0: jmp) to label l, rel8 unless marked wide. */
static void jump(struct em *e, int cc, int l)
{
	unsigned j = e->njumps < MAX_JUMPS ? e->njumps++ : (e->err = -E2BIG, 0);
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

static void test_rr(struct em *e, int a, int c) { op_rr(e, 0x85, a, c); }
static void add_rr(struct em *e, int dst, int src) { op_rr(e, 0x01, dst, src); }
static void sub_rr(struct em *e, int dst, int src) { op_rr(e, 0x29, dst, src); }

/* op reg, [base + (index << scale_log) + disp] (index < 0: none), disp8
 * or disp32; op0f: a two-byte opcode 0f op; w: 64-bit */
static void mem_x(struct em *e, bool w, bool op0f, uint8_t op, int reg,
		  int base, int index, int scale_log, int32_t disp)
{
	bool d8 = disp >= INT8_MIN && disp <= INT8_MAX;
	bool sibb = index >= 0 || (base & 7) == RSP;

	rex(e, w, reg, index < 0 ? 0 : index, base, false);
	if (op0f)
		b(e, 0x0f);
	b(e, op);
	modrm(e, d8 ? 1 : 2, reg, sibb ? RSP : base);
	if (sibb)
		b(e, (uint8_t)((index < 0 ? 0 : scale_log) << 6 |
			       ((index < 0 ? RSP : index) & 7) << 3 | (base & 7)));
	le(e, (uint32_t)disp, d8 ? 1 : 4);
}

static void load(struct em *e, int dst, int base, int32_t disp)
{
	mem_x(e, true, false, 0x8b, dst, base, -1, 0, disp);
}

static void store(struct em *e, int base, int32_t disp, int src)
{
	mem_x(e, true, false, 0x89, src, base, -1, 0, disp);
}

/* mov r32, [rip + target] */
static void mov32_load_rip(struct em *e, int reg, uint64_t a)
{
	rex(e, false, reg, 0, 0, false);
	b(e, 0x8b);
	modrm(e, 0, reg, 5);
	rel32(e, a, 0);
}

/* jmp / call [base + index*8] */
static void jmp_tab(struct em *e, int base, int index, bool call)
{
	mem_x(e, false, false, 0xff, call ? 2 : 4, base, index, 3, 0);
}

/* call [rip + target] */
static void jmp_ind_call(struct em *e, uint64_t target)
{
	b(e, 0xff);
	b(e, 0x15);
	rel32(e, target, 0);
}

/* jmp [rip + target] */
static void jmp_ind(struct em *e, uint64_t target)
{
	b(e, 0xff);
	b(e, 0x25);
	rel32(e, target, 0);
}

/* cmp r64, [rip + target] */
static void cmp_rip(struct em *e, int reg, uint64_t target)
{
	op_rip(e, 0x3b, reg, target);
}

static uint64_t label_addr(struct em *e, int l)
{
	return e->at + (e->prev[l] == SIZE_MAX ? 0 : e->prev[l]);
}

/* Literal pool slots. */
/* Index of a realloc of a traced block in the U and S tables. */
#define RR_OLD 5
enum { P_U = 0, P_S = HK_TE_N, P_REAL_FREE = 2 * HK_TE_N, P_PROBE_FREE,
       P_PROBE_REALLOC, P_RAWCTX, P_MAGIC, P_TSTATE, P_OBJ_FREE, P_N };

/* Whether the object realloc entry is generated. */
static bool obj_realloc(const struct hk_tramp_spec *s)
{
	return s->raw && s->real[HK_TE_OBJ_REALLOC];
}

static uint64_t pool(struct em *e, int slot)
{
	return label_addr(e, L_POOL) + 8 * (unsigned)slot;
}

/* An unsampled call: no marker, straight to the real function. */
static void pass(struct em *e, int entry)
{
	xor32_self(e, R11);
	jmp_ind(e, pool(e, P_U + entry));
}

/* rax = size - 1 of a pymalloc request: draw for it if it is 1..small_max,
 * else pass it on (at label `unsampled`, emitted here). */
static void draw_if_small(struct em *e, uint32_t sm, int entry, int unsampled)
{
	cmp_ri(e, RAX, sm);
	jump(e, CC_AE, unsampled);
	mov32_ri(e, R9, (uint32_t)entry);
	jump(e, -1, L_D);
	label(e, unsampled);
	pass(e, entry);
}

/* rax = size - 1 from r, or 0 for size 0 (the first class, as in BPF). */
static void size_less_one(struct em *e, int r)
{
	if (r != RAX)
		mov_rr(e, RAX, r);
	arith_ri8(e, true, 5, RAX, 1);
	arith_ri8(e, true, 2, RAX, 0);		/* adc: undo the wrap */
}

/* rax = p + the usable size of p's glibc chunk + 8 (its tag ends at
 * rax - 8), from the chunk's size word; clobbers `tmp`. */
static void usable_end(struct em *e, int dst, int p, int tmp)
{
	load(e, dst, p, -8);
	op_rr_w(e, false, 0x89, tmp, dst);	/* mov tmp32, dst32 */
	arith_ri8(e, false, 4, tmp, 2);		/* IS_MMAPPED */
	shift(e, false, 4, tmp, 2);		/* 8 if mmapped */
	arith_ri8(e, true, 4, dst, -8);		/* chunksize */
	sub_rr(e, dst, tmp);
	add_rr(e, dst, p);
}

/* ZF = whether the block at p (non-NULL) carries the tag; clobbers rax,
 * rcx. Jumps to `no` on the first mismatch. */
static void tagged(struct em *e, const struct hk_tramp_spec *s, int p, int no)
{
	usable_end(e, RAX, p, RCX);
	load(e, RCX, RAX, -24);
	cmp_rip(e, RCX, s->tag);
	jump(e, CC_NE, no);
	load(e, RCX, RAX, -16);
	cmp_rip(e, RCX, s->tag + 8);
	jump(e, CC_NE, no);
}

/* Zero the tag found by tagged() (rax = its end + 8; clobbers rcx). */
static void clear_tag(struct em *e)
{
	xor32_self(e, RCX);
	store(e, RAX, -24, RCX);
	store(e, RAX, -16, RCX);
}

/* Write the tag before `end` (usable_end's result), through tmp. */
static void store_tag(struct em *e, const struct hk_tramp_spec *s, int end,
		      int tmp)
{
	mov_load_rip(e, tmp, s->tag);
	store(e, end, -24, tmp);
	mov_load_rip(e, tmp, s->tag + 8);
	store(e, end, -16, tmp);
}

/* Tag the block at p (non-NULL): its usable end into `end`, the tag
 * written before it; clobbers tmp. */
static void tag_block(struct em *e, const struct hk_tramp_spec *s, int p,
		      int end, int tmp)
{
	usable_end(e, end, p, tmp);
	store_tag(e, s, end, tmp);
}

/* The registers of a free(NULL) announcement through the free probe but
 * rdx (the block): rdi = the raw ctx, rsi = NULL, r11 = magic + k. */
static void ann_regs(struct em *e, int8_t k)
{
	mov_load_rip(e, RDI, pool(e, P_RAWCTX));
	load(e, RDI, RDI, 0);
	xor32_self(e, RSI);
	mov_load_rip(e, R11, pool(e, P_MAGIC));
	arith_ri8(e, true, 0, R11, k);
}

/* The system call of an announcement, rdi = magic + k (its other
 * arguments already in place). */
static void sys_announce(struct em *e, const struct hk_tramp_spec *s, int8_t k)
{
	mov_load_rip(e, RDI, pool(e, P_MAGIC));
	arith_ri8(e, true, 0, RDI, k);
	mov32_ri(e, RAX, s->sys_nr);
	b(e, 0x0f); b(e, 0x05);			/* syscall */
}

/* An announcement to the BPF side, rdx = the block (and rcx = the size
 * asked for, r10 = the nonce, for HK_ANN_ALLOC). Without spec->sys_nr: a
 * free(NULL) through the free probe, r11 = magic + k (one uprobe hit,
 * ~0.65 us here); with it: that system call, rdi = magic + k, rsi = the
 * block, rdx = the size (~0.11 us, seen by a BPF program on its entry).
 * Clobbers what a call may. */
static void announce(struct em *e, const struct hk_tramp_spec *s, int8_t k)
{
	if (!s->sys_nr) {
		ann_regs(e, k);
		jmp_ind_call(e, pool(e, P_PROBE_FREE));
		return;
	}
	mov_rr(e, RSI, RDX);
	mov_rr(e, RDX, RCX);
	sys_announce(e, s, k);
}

static bool walks(const struct hk_tramp_spec *s)
{
	return s->sys_nr && s->py.tstate;
}

/* Copies the GIL holder's Python frames (code object, instruction offset,
 * owner: struct hk_frame_raw) to r10: r9 = bytes copied (0 on entry, at
 * most rcx), r11 = frames counted beyond them (0 on entry, at most the
 * walk word's second half). Clobbers r8, rax, rcx and tmp; ends at L_FDONE
 * (not emitted). */
static void frame_loop(struct em *e, const struct hk_tramp_spec *s, int tmp)
{
	mov_load_rip(e, R8, pool(e, P_TSTATE));
	load(e, R8, R8, 0);
	test_rr(e, R8, R8);
	jump(e, CC_E, L_FDONE);
	if (s->py.cframe) {
		load(e, R8, R8, s->py.cframe);
		test_rr(e, R8, R8);
		jump(e, CC_E, L_FDONE);
	}
	load(e, R8, R8, s->py.current_frame);
	label(e, L_FLOOP);
	test_rr(e, R8, R8);
	jump(e, CC_E, L_FDONE);
	op_rr_w(e, false, 0x39, R9, RCX);		/* cmp r9d,ecx */
	jump(e, CC_AE, L_FCOUNT);
	load(e, RAX, R8, s->py.code);
	mem_x(e, true, false, 0x89, RAX, R10, R9, 0, 0);
	load(e, tmp, R8, s->py.instr);
	sub_rr(e, tmp, RAX);
	mem_x(e, false, false, 0x89, tmp, R10, R9, 0, 8);	/* instr_off */
	mem_x(e, false, true, 0xb6, RAX, R8, -1, 0, s->py.owner); /* movzx */
	mem_x(e, false, false, 0x89, RAX, R10, R9, 0, 12);	/* owner, pad 0 */
	load(e, R8, R8, s->py.previous);
	arith_ri8(e, false, 0, R9, 16);
	jump(e, -1, L_FLOOP);
	label(e, L_FCOUNT);
	mov32_load_rip(e, RCX, s->py.walk + 4);	/* frames to count beyond */
	label(e, L_FC);
	test_rr(e, R8, R8);
	jump(e, CC_E, L_FDONE);
	op_rr_w(e, false, 0x39, R11, RCX);
	jump(e, CC_AE, L_FDONE);
	incdec(e, 0, R11);
	load(e, R8, R8, s->py.previous);
	jump(e, -1, L_FC);
}

/* After announce_call's call, an object-domain block ([rsp] = its index,
 * even; rax = the block, tagged): announce it with the caller's Python
 * frames, HK_ANN_FRAMES: rsi = the block, rdx = the size, r10 = the frames
 * (struct hk_frame_raw, on this stack), r8 = how many, r9 = how many on
 * the stack in all. The object domain is called with the GIL held, so the
 * running thread state is this thread's and its frames stay put while we
 * read them; BPF then reads nothing of the target. Any other block, or a
 * walk word of 0 or too big, goes on to the plain announcement. */
static void announce_frames(struct em *e, const struct hk_tramp_spec *s)
{
	b(e, 0xf6); b(e, 0x04); b(e, 0x24); b(e, 0x01);	/* test byte [rsp],1 */
	jump(e, CC_NE, L_RAWANN);
	mov32_load_rip(e, RCX, s->py.walk);		/* bytes to capture */
	op_rr_w(e, false, 0x85, RCX, RCX);
	jump(e, CC_E, L_RAWANN);
	cmp_ri(e, RCX, 16 * HK_TRAMP_WALK_MAX);
	jump(e, CC_A, L_RAWANN);
	store(e, RSP, 0, RAX);
	mov_rr(e, RSI, RAX);
	load(e, RDX, RSP, 8);
	mov_rr(e, R10, RSP);
	sub_rr(e, RSP, RCX);
	b(e, 0x41); b(e, 0x52);				/* push r10: old rsp */
	mem_x(e, true, false, 0x8d, R10, RSP, -1, 0, 8);	/* lea r10,[rsp+8] */
	xor32_self(e, R9);				/* bytes captured */
	xor32_self(e, R11);				/* frames beyond */
	frame_loop(e, s, RDI);
	label(e, L_FDONE);
	shift(e, false, 5, R9, 4);
	mov_rr(e, R8, R9);
	add_rr(e, R9, R11);
	sys_announce(e, s, HK_ANN_FRAMES);
	load(e, RSP, RSP, 0);				/* the old rsp */
	load(e, RAX, RSP, 0);
	jump(e, -1, L_POPRET);
	label(e, L_RAWANN);
}

static void push(struct em *e, int r)
{
	if (r & 8)
		b(e, 0x41);
	b(e, (uint8_t)(0x50 + (r & 7)));
}

static void pop(struct em *e, int r)
{
	if (r & 8)
		b(e, 0x41);
	b(e, (uint8_t)(0x58 + (r & 7)));
}

/* A sampled call ([S + 8 r9], the raw function itself) for the padded
 * request, three words waiting on the stack (the call sees it 16-aligned):
 * [rsp] = the index, [rsp + 8] = the size asked for, [rsp + 16] = r10. */
static void call_raw(struct em *e)
{
	mov_rr(e, RAX, RDX);			/* calloc, realloc: rdx */
	arith_ri8(e, false, 7, R9, HK_TE_RAW_CALLOC);
	jump(e, CC_BE, L_SIZED);
	arith_ri8(e, false, 7, R9, HK_TE_RAW_REALLOC);
	jump(e, CC_AE, L_SIZED);
	mov_rr(e, RAX, RSI);			/* malloc: rsi */
	label(e, L_SIZED);
	arith_ri8(e, true, 5, RAX, HK_TRAMP_TAG_PAD);
	push(e, R10);
	push(e, RAX);
	push(e, R9);
	lea_rip(e, R8, pool(e, P_S));
	jmp_tab(e, R8, R9, true);
}

/* Raw mode, sampled: call the raw function itself (S table) for the padded
 * request, tag the block, then announce it with one probe hit: a call of
 * the probed free entry with ptr NULL (free(NULL) does nothing) and
 * rdx = the block, rcx = the size asked for, r10 = the nonce, r11 = magic
 * + 2. One trap instead of an entry probe and a return probe. The nonce,
 * size and index wait on the stack (three words: the calls see it
 * 16-aligned). */
static void announce_call(struct em *e, const struct hk_tramp_spec *s)
{
	call_raw(e);				/* r10: the nonce */
	test_rr(e, RAX, RAX);
	jump(e, CC_E, L_POPRET);
	tag_block(e, s, RAX, RCX, RDX);
	if (walks(s))
		announce_frames(e, s);
	mov_rr(e, RDX, RAX);
	load(e, RCX, RSP, 8);
	load(e, R10, RSP, 16);
	store(e, RSP, 0, RAX);
	announce(e, s, HK_ANN_ALLOC);
	load(e, RAX, RSP, 0);
	label(e, L_POPRET);
	arith_ri8(e, true, 0, RSP, 24);
	b(e, 0xc3);
}

/* ---- ring mode (spec->ring) ---------------------------------------------- */

/* The word at a record's offset 24: type, no frames, length. */
#define RING_WORD(type, len) ((uint32_t)(type) | (uint32_t)((len) / 16) << 16)
#define REC_LEN ((uint32_t)sizeof(struct hk_ring_rec))

/* call to an internal label (rel32) */
static void call_label(struct em *e, int l)
{
	int64_t d = 0;

	b(e, 0xe8);
	if (e->prev[l] != SIZE_MAX)
		d = (int64_t)e->prev[l] - (int64_t)(e->pos + 4);
	le(e, (uint64_t)d, 4);
}

/* mov qword [base + disp], imm32 (sign-extended) */
static void store_imm(struct em *e, int base, int32_t disp, uint32_t imm)
{
	mem_x(e, true, false, 0xc7, 0, base, -1, 0, disp);
	le(e, imm, 4);
}

/* The record at r, whose position waits in its size word: give it word
 * (type and length) and commit it (its position, last). */
static void commit_parked(struct em *e, int r, int tmp)
{
	load(e, tmp, r, 16);
	store(e, r, 0, tmp);
}

/* Subroutines. RESERVE: ecx = record bytes; returns r8 = the record (0 if
 * none: no ring yet, or full; counted) and rax = 1 + its position (what
 * commits it); clobbers
 * r11 and flags only. RINGNEW maps the ring (mmap(2)) if nobody has, and
 * its size word asks for one; clobbers rax and flags only. */
static void ring_subs(struct em *e, const struct hk_tramp_spec *s)
{
	static const int saved[] = { RCX, RDX, RBX, RSI, RDI, R8, R9, R10, R11 };
	const int nsaved = (int)(sizeof(saved) / sizeof(saved[0]));

	label(e, L_RESERVE);
	mov_load_rip(e, R8, s->ring);
	cmp_ri(e, R8, 3);
	jump(e, CC_A, L_RHAVE);
	test_rr(e, R8, R8);
	jump(e, CC_NE, L_RNONE);
	call_label(e, L_RINGNEW);
	mov_load_rip(e, R8, s->ring);
	cmp_ri(e, R8, 3);
	jump(e, CC_BE, L_RNONE);
	label(e, L_RHAVE);
	push(e, RDX);
	load(e, RAX, R8, HK_RING_HEAD);
	label(e, L_RRETRY);
	mem_x(e, true, false, 0x8d, RDX, RAX, RCX, 0, 0);	/* lea rdx,[rax+rcx] */
	mov_rr(e, R11, RDX);
	mem_x(e, true, false, 0x2b, R11, R8, -1, 0, HK_RING_TAIL);	/* sub */
	mem_x(e, true, false, 0x3b, R11, R8, -1, 0, HK_RING_SIZE);	/* cmp */
	jump(e, CC_A, L_RFULL);
	b(e, 0xf0);						/* lock */
	mem_x(e, true, true, 0xb1, RDX, R8, -1, 0, HK_RING_HEAD);	/* cmpxchg */
	jump(e, CC_NE, L_RRETRY);
	load(e, RDX, R8, HK_RING_SIZE);
	incdec(e, 1, RDX);
	op_rr(e, 0x21, RDX, RAX);				/* and rdx,rax */
	mem_x(e, true, false, 0x8d, R8, R8, RDX, 0, HK_RING_HEADER);
	incdec(e, 0, RAX);				/* its commit word */
	pop(e, RDX);
	b(e, 0xc3);
	label(e, L_RFULL);
	b(e, 0xf0);
	mem_x(e, true, false, 0xff, 0, R8, -1, 0, HK_RING_DROPPED);	/* inc */
	pop(e, RDX);
	xor32_self(e, R8);
	b(e, 0xc3);
	label(e, L_RNONE);
	b(e, 0xf0);
	op_rip(e, 0xff, 0, s->ring + 16);			/* inc [lost] */
	xor32_self(e, R8);
	b(e, 0xc3);

	label(e, L_RINGNEW);
	for (int i = 0; i < nsaved; i++)
		push(e, saved[i]);
	mov32_load_rip(e, RBX, s->ring + 8);		/* data bytes */
	op_rr_w(e, false, 0x85, RBX, RBX);
	jump(e, CC_E, L_RNDONE);
	lea_rd8(e, RAX, RBX, -1);			/* a power of two? */
	op_rr_w(e, false, 0x85, RAX, RBX);
	jump(e, CC_NE, L_RNDONE);
	xor32_self(e, RAX);
	mov32_ri(e, RCX, 1);
	b(e, 0xf0);
	rex(e, true, RCX, 0, 0, false);			/* cmpxchg [ring],rcx */
	b(e, 0x0f); b(e, 0xb1);
	modrm(e, 0, RCX, 5);
	rel32(e, s->ring, 0);
	jump(e, CC_NE, L_RNDONE);
	mem_x(e, true, false, 0x8d, RSI, RBX, -1, 0, HK_RING_HEADER + HK_RING_SLACK);
	xor32_self(e, RDI);
	mov32_ri(e, RDX, PROT_READ | PROT_WRITE);
	mov32_ri(e, R10, MAP_PRIVATE | MAP_ANONYMOUS);
	arith_ri8(e, true, 1, R8, -1);			/* or r8,-1: no fd */
	xor32_self(e, R9);
	mov32_ri(e, RAX, SYS_mmap);
	b(e, 0x0f); b(e, 0x05);				/* syscall */
	b(e, 0x48); b(e, 0x3d); le(e, (uint64_t)-4096, 4);	/* cmp rax,-4096 */
	jump(e, CC_A, L_RNFAIL);
	store(e, RAX, HK_RING_SIZE, RBX);
	mov_store_rip(e, RAX, s->ring);			/* published last */
	jump(e, -1, L_RNDONE);
	label(e, L_RNFAIL);
	mov32_ri(e, RCX, 3);
	mov_store_rip(e, RCX, s->ring);
	label(e, L_RNDONE);
	for (int i = nsaved - 1; i >= 0; i--)
		pop(e, saved[i]);
	b(e, 0xc3);
}

/* After announce_call's call ([rsp] = index, [rsp + 8] = the size asked,
 * [rsp + 16] = the block): its record. With the caller's frames if the
 * caller holds the GIL (the running thread state is its own, by
 * pthread_self(): then its frames stay put while we read them), copied
 * to this stack first so that the record is only as long as they are;
 * else one BPF walks at a getppid(2) made before the record is
 * committed.
 * Clobbers what a call may. */
static void ring_alloc(struct em *e, const struct hk_tramp_spec *s)
{
	mov32_load_rip(e, RCX, s->py.walk);		/* bytes to capture */
	op_rr_w(e, false, 0x85, RCX, RCX);
	jump(e, CC_E, L_WALKREC);
	cmp_ri(e, RCX, 16 * HK_TRAMP_WALK_MAX);
	jump(e, CC_A, L_WALKREC);
	mov_load_rip(e, R8, pool(e, P_TSTATE));
	load(e, R8, R8, 0);
	test_rr(e, R8, R8);
	jump(e, CC_E, L_WALKREC);
	/* mov rdx, fs:[0x10]: glibc's pthread_self() */
	b(e, 0x64); b(e, 0x48); b(e, 0x8b); b(e, 0x14); b(e, 0x25); le(e, 0x10, 4);
	mem_x(e, true, false, 0x3b, RDX, R8, -1, 0, s->py.thread_id);
	jump(e, CC_NE, L_WALKREC);
	/* the frames to this stack first (below the old rsp, kept at
	 * [rsp]), then a record of just their length */
	mov_rr(e, R10, RSP);
	sub_rr(e, RSP, RCX);
	push(e, R10);
	mem_x(e, true, false, 0x8d, R10, RSP, -1, 0, 8);	/* lea r10,[rsp+8] */
	xor32_self(e, R9);				/* bytes captured */
	xor32_self(e, R11);				/* frames beyond */
	frame_loop(e, s, RSI);
	label(e, L_FDONE);
	/* rdx = the record's word at 24: total << 32, its length in 16ths
	 * << 16, frames << 8, type */
	mem_x(e, false, false, 0x8d, RDX, R9, -1, 0, (int32_t)REC_LEN);	/* lea edx,[r9+32] */
	shift(e, false, 4, RDX, 12);
	op_rr_w(e, false, 0x89, RAX, R9);
	shift(e, false, 4, RAX, 4);
	op_rr_w(e, false, 0x09, RDX, RAX);
	arith_ri8(e, false, 1, RDX, HK_ANN_FRAMES);	/* or */
	op_rr_w(e, false, 0x89, RAX, R9);
	shift(e, false, 5, RAX, 4);
	op_rr_w(e, false, 0x01, RAX, R11);		/* total */
	shift(e, true, 4, RAX, 32);
	op_rr(e, 0x09, RDX, RAX);
	mem_x(e, false, false, 0x8d, RCX, R9, -1, 0, (int32_t)REC_LEN);	/* lea ecx,[r9+32] */
	call_label(e, L_RESERVE);			/* keeps rdx, r9, r10 */
	test_rr(e, R8, R8);
	jump(e, CC_E, L_RREST);
	load(e, RSI, RSP, 0);				/* the old rsp */
	load(e, RDI, RSI, 16);
	store(e, R8, 8, RDI);				/* the block */
	load(e, RDI, RSI, 8);
	store(e, R8, 16, RDI);				/* the size */
	store(e, R8, 24, RDX);
	xor32_self(e, RCX);
	label(e, L_RCOPY);
	op_rr_w(e, false, 0x39, RCX, R9);		/* cmp ecx,r9d */
	jump(e, CC_AE, L_RCDONE);
	mem_x(e, true, false, 0x8b, RDI, R10, RCX, 0, 0);
	mem_x(e, true, false, 0x89, RDI, R8, RCX, 0, (int32_t)REC_LEN);
	mem_x(e, true, false, 0x8b, RDI, R10, RCX, 0, 8);
	mem_x(e, true, false, 0x89, RDI, R8, RCX, 0, (int32_t)REC_LEN + 8);
	arith_ri8(e, false, 0, RCX, 16);
	jump(e, -1, L_RCOPY);
	label(e, L_RCDONE);
	store(e, R8, 0, RAX);				/* commit */
	label(e, L_RREST);
	load(e, RSP, RSP, 0);				/* the old rsp */
	jump(e, -1, L_ARDONE);

	label(e, L_WALKREC);
	mov32_ri(e, RCX, REC_LEN);
	call_label(e, L_RESERVE);
	test_rr(e, R8, R8);
	jump(e, CC_E, L_ARDONE);
	load(e, RDX, RSP, 16);
	store(e, R8, 8, RDX);
	load(e, RDX, RSP, 8);
	store(e, R8, 16, RDX);
	store_imm(e, R8, 24, RING_WORD(HK_ANN_WALK, REC_LEN));
	mov_rr(e, RSI, RAX);
	sys_announce(e, s, HK_ANN_WALK);		/* keeps rsi, r8 */
	store(e, R8, 0, RSI);				/* commit */
	label(e, L_ARDONE);
}

/* Ring mode, a sampled call ([S + 8 r9]): as announce_call, but a realloc
 * of a traced block (RR_OLD) first reserves the record of the old block's
 * end (committed after the call: a free, or nothing if realloc failed
 * and the block is tagged back), so that it precedes whatever another
 * thread then does with the address; the new block is then recorded. */
static void ring_call(struct em *e, const struct hk_tramp_spec *s)
{
	xor32_self(e, R10);
	arith_ri8(e, false, 7, R9, RR_OLD);
	jump(e, CC_NE, L_AC1);
	mov32_ri(e, RCX, REC_LEN);
	call_label(e, L_RESERVE);
	mov_rr(e, R10, R8);
	test_rr(e, R8, R8);
	jump(e, CC_E, L_AC1);
	store(e, R8, 8, RSI);				/* the old block */
	store(e, R8, 16, RAX);				/* its position, parked */
	label(e, L_AC1);
	call_raw(e);				/* r10: the old block's record */
	test_rr(e, RAX, RAX);
	jump(e, CC_E, L_ACFAIL);
	tag_block(e, s, RAX, RCX, RDX);
	load(e, RCX, RSP, 16);
	test_rr(e, RCX, RCX);
	jump(e, CC_E, L_AC2);
	store_imm(e, RCX, 24, RING_WORD(HK_ANN_FREE, REC_LEN));
	commit_parked(e, RCX, RDX);
	label(e, L_AC2);
	store(e, RSP, 16, RAX);
	ring_alloc(e, s);
	load(e, RAX, RSP, 16);
	label(e, L_POPRET);
	arith_ri8(e, true, 0, RSP, 24);
	b(e, 0xc3);
	label(e, L_ACFAIL);				/* rax = 0 */
	load(e, RCX, RSP, 16);
	test_rr(e, RCX, RCX);
	jump(e, CC_E, L_POPRET);
	store_imm(e, RCX, 24, RING_WORD(HK_ANN_SKIP, REC_LEN));
	commit_parked(e, RCX, RDX);
	load(e, RCX, RCX, 8);				/* still there: tag it back */
	tag_block(e, s, RCX, RDX, R8);
	jump(e, -1, L_POPRET);
}

/* Ring mode, RR_OLD's unsampled target (U[RR_OLD], entered by a jump):
 * reserve the old block's record, call the real realloc, then commit the
 * record as a free, or as nothing if realloc failed (the block is tagged
 * back). Without a record: realloc alone. */
static void ring_oldu(struct em *e, const struct hk_tramp_spec *s)
{
	label(e, L_OLDU);
	mov32_ri(e, RCX, REC_LEN);
	call_label(e, L_RESERVE);
	test_rr(e, R8, R8);
	jump(e, CC_E, L_OLDUPLAIN);
	store(e, R8, 8, RSI);
	store(e, R8, 16, RAX);
	push(e, R8);					/* aligns for the call */
	xor32_self(e, R11);
	jmp_ind_call(e, pool(e, P_U + HK_TE_RAW_REALLOC));
	pop(e, RCX);
	mov32_ri(e, RDX, RING_WORD(HK_ANN_FREE, REC_LEN));
	test_rr(e, RAX, RAX);
	jump(e, CC_NE, L_OLDUT);
	mov32_ri(e, RDX, RING_WORD(HK_ANN_SKIP, REC_LEN));
	label(e, L_OLDUT);
	store(e, RCX, 24, RDX);
	commit_parked(e, RCX, RDX);
	test_rr(e, RAX, RAX);
	jump(e, CC_NE, L_RET);
	load(e, RCX, RCX, 8);
	label(e, L_RETAG);
	tag_block(e, s, RCX, RDX, R8);
	b(e, 0xc3);
	label(e, L_OLDUPLAIN);
	pass(e, HK_TE_RAW_REALLOC);
}

/* The object realloc entry, sampled (r9 = its index, entered by a jump;
 * rdi = ctx, rsi = the old block, rdx = the size, 1..small_max): the
 * real realloc first. If pymalloc handed the call on to the raw domain
 * (the old block is not pymalloc's: a sampled block, or a large one), the
 * raw entry drew for it, and its result is returned as it is. Else the
 * result is pymalloc's, which no free would report: it is moved into a
 * block of the sampled path (raw, tagged, recorded, as a sampled
 * allocation of that size) and freed by pymalloc. If that allocation
 * fails, pymalloc's block is returned unsampled. Three pushes keep the
 * calls' stack aligned. */
static void obj_realloc_sampled(struct em *e, const struct hk_tramp_spec *s)
{
	label(e, L_ORS);
	push(e, RBX);
	push(e, R12);
	push(e, R13);
	mov_rr(e, RBX, RDX);				/* the size */
	mov_rr(e, R12, RDI);				/* ctx */
	mov_load_rip(e, R13, s->seq);
	xor32_self(e, R11);
	jmp_ind_call(e, pool(e, P_U + HK_TE_OBJ_REALLOC));
	test_rr(e, RAX, RAX);
	jump(e, CC_E, L_ORRET);				/* failed */
	cmp_rip(e, R13, s->seq);
	jump(e, CC_NE, L_ORRET);			/* the raw domain's */
	mov_rr(e, R13, RAX);				/* pymalloc's block */
	mov_rr(e, RSI, RBX);
	mov32_ri(e, R9, HK_TE_OBJ_MALLOC);
	mov_load_rip(e, R11, pool(e, P_MAGIC));
	mov_load_rip(e, R10, s->state);			/* a fresh nonce */
	call_label(e, L_SAMPLED);
	test_rr(e, RAX, RAX);
	jump(e, CC_E, L_ORQ);
	mov_rr(e, RDI, RAX);
	mov_rr(e, RSI, R13);
	mov_rr(e, RCX, RBX);
	mov_rr(e, RBX, RAX);
	b(e, 0xf3); b(e, 0xa4);				/* rep movsb */
	mov_rr(e, RDI, R12);
	mov_rr(e, RSI, R13);
	xor32_self(e, R11);
	jmp_ind_call(e, pool(e, P_OBJ_FREE));
	mov_rr(e, R13, RBX);
	label(e, L_ORQ);
	mov_rr(e, RAX, R13);
	label(e, L_ORRET);
	pop(e, R13);
	pop(e, R12);
	pop(e, RBX);
	b(e, 0xc3);
}

static void gen(struct em *e, const struct hk_tramp_spec *s,
		struct hk_tramp_out *o)
{
	uint32_t sm = (uint32_t)s->small_max;
	uint64_t lit[P_N] = { 0 };

	e->pos = 0;
	e->njumps = 0;
	e->err = 0;
	for (int i = 0; i < HK_TE_N; i++)
		o->entry[i] = o->real_lit[i] = SIZE_MAX;

	o->entry[HK_TE_OBJ_CALLOC] = e->pos;
	lea_rd8(e, RAX, RSI, -1);
	cmp_ri(e, RAX, sm);
	jump(e, CC_AE, L_UOC);
	lea_rd8(e, RCX, RDX, -1);
	cmp_ri(e, RCX, sm);
	jump(e, CC_AE, L_UOC);
	mov_rr(e, RAX, RSI);
	imul_rr(e, RAX, RDX);
	incdec(e, 1, RAX);
	draw_if_small(e, sm, HK_TE_OBJ_CALLOC, L_UOC);

	if (s->raw) {
		o->entry[HK_TE_RAW_CALLOC] = e->pos;
		mov_rr(e, RAX, RSI);
		imul_rr(e, RAX, RDX);
		jump(e, CC_O, L_URC);
		size_less_one(e, RAX);
		mov32_ri(e, R9, HK_TE_RAW_CALLOC);
		jump(e, -1, L_D);
		label(e, L_URC);
		pass(e, HK_TE_RAW_CALLOC);

		o->entry[HK_TE_RAW_REALLOC] = e->pos;
		if (obj_realloc(s))
			op_rip(e, 0xff, 0, s->seq);	/* inc qword [seq] */
		test_rr(e, RSI, RSI);
		jump(e, CC_E, L_RRD);
		tagged(e, s, RSI, L_RRD);
		/* A traced block: untag it (realloc may free it) and draw for
		 * the result like any allocation, as RR_OLD. */
		clear_tag(e);
		size_less_one(e, RDX);
		mov32_ri(e, R9, RR_OLD);
		jump(e, -1, L_D);
		label(e, L_RRD);
		size_less_one(e, RDX);
		mov32_ri(e, R9, HK_TE_RAW_REALLOC);
		jump(e, -1, L_D);

		o->entry[HK_TE_RAW_FREE] = e->pos;
		test_rr(e, RSI, RSI);
		jump(e, CC_E, L_RFR);
		tagged(e, s, RSI, L_RFR);
		clear_tag(e);			/* its memory will be reused */
		if (s->ring) {
			/* recorded before the free: then another thread
			 * may be given the address */
			mov32_ri(e, RCX, REC_LEN);
			call_label(e, L_RESERVE);
			test_rr(e, R8, R8);
			jump(e, CC_E, L_RFR);
			store(e, R8, 8, RSI);
			store_imm(e, R8, 24, RING_WORD(HK_ANN_FREE, REC_LEN));
			store(e, R8, 0, RAX);
		} else if (!s->sys_nr) {
			jmp_ind(e, pool(e, P_PROBE_FREE));
		} else {
			/* announced before the free: then another thread
			 * may be given the address */
			b(e, 0x57);			/* push rdi */
			b(e, 0x56);			/* push rsi */
			mov_rr(e, RDX, RSI);
			announce(e, s, HK_ANN_FREE);
			b(e, 0x5e);			/* pop rsi */
			b(e, 0x5f);			/* pop rdi */
		}
		label(e, L_RFR);
		jmp_ind(e, pool(e, P_REAL_FREE));

		o->entry[HK_TE_RAW_MALLOC] = e->pos;
		size_less_one(e, RSI);
		mov32_ri(e, R9, HK_TE_RAW_MALLOC);
		jump(e, -1, L_D);
	}
	if (obj_realloc(s)) {
		o->entry[HK_TE_OBJ_REALLOC] = e->pos;
		lea_rd8(e, RAX, RDX, -1);
		draw_if_small(e, sm, HK_TE_OBJ_REALLOC, L_UOR);
	}

	label(e, L_UOM);
	pass(e, HK_TE_OBJ_MALLOC);
	o->entry[HK_TE_OBJ_MALLOC] = e->pos;
	lea_rd8(e, RAX, RSI, -1);
	cmp_ri(e, RAX, sm);
	jump(e, CC_AE, L_UOM);
	mov32_ri(e, R9, HK_TE_OBJ_MALLOC);

	label(e, L_D);
	mov_load_rip(e, R10, s->state);
	mov_rr(e, R11, R10);
	shift(e, true, 4, R11, 13);
	xor_rr(e, R10, R11);
	mov_rr(e, R11, R10);
	shift(e, true, 5, R11, 7);
	xor_rr(e, R10, R11);
	mov_rr(e, R11, R10);
	shift(e, true, 4, R11, 17);
	xor_rr(e, R10, R11);
	mov_store_rip(e, R10, s->state);
	mov_rr(e, R11, R10);
	shift(e, true, 5, R11, 32);
	if (s->by_bytes) {
		/* sampled iff random < size * table[0] (64-bit; a signed
		 * overflow, from a size past 2^62, samples); size 0 as 1 */
		lea_rd8(e, RCX, RAX, 1);
		cmp_ri(e, RCX, 1);
		arith_ri8(e, true, 2, RCX, 0);
		mov_load_rip(e, R8, s->table);
		imul_rr(e, RCX, R8);
		jump(e, CC_O, L_BYTES_OK);
		op_rr(e, 0x39, R11, RCX);	/* cmp r11, rcx */
		jump(e, CC_AE, L_UN);
		label(e, L_BYTES_OK);
	} else {
		xor32_self(e, RCX);
		for (unsigned i = 0; i < s->nclasses; i++) {
			cmp_ri(e, RAX, (uint32_t)(s->classes[i].bound - 1));
			arith_ri8(e, false, 3, RCX, -1);
		}
		lea_rip(e, R8, s->table);
		cmp_r_mem(e, R11, R8, RCX);
		jump(e, CC_AE, L_UN);
	}
	mov_load_rip(e, R11, pool(e, P_MAGIC));
	if (obj_realloc(s)) {
		arith_ri8(e, false, 7, R9, HK_TE_OBJ_REALLOC);
		jump(e, CC_E, L_ORS);
	}

	label(e, L_SAMPLED);
	mov_load_rip(e, RDI, pool(e, P_RAWCTX));
	load(e, RDI, RDI, 0);
	if (!s->tagging) {
		lea_rip(e, R8, pool(e, P_S));
		jmp_tab(e, R8, R9, false);
	} else {
		arith_ri8(e, false, 7, R9, HK_TE_RAW_CALLOC);
		jump(e, CC_BE, L_ADJC);
		arith_ri8(e, false, 7, R9, HK_TE_RAW_REALLOC);
		jump(e, CC_AE, L_ADJR);
		arith_ri8(e, true, 0, RSI, HK_TRAMP_TAG_PAD);
		jump(e, -1, L_CALL);
		label(e, L_ADJC);
		mov_rr(e, RAX, RSI);
		imul_rr(e, RAX, RDX);
		lea_rd8(e, RDX, RAX, HK_TRAMP_TAG_PAD);
		mov32_ri(e, RSI, 1);
		jump(e, -1, L_CALL);
		label(e, L_ADJR);
		arith_ri8(e, true, 0, RDX, HK_TRAMP_TAG_PAD);
		if (!s->ring) {
			arith_ri8(e, false, 7, R9, RR_OLD);
			jump(e, CC_E, L_OLDS);
		}
		label(e, L_CALL);
		if (s->ring) {
			ring_call(e, s);	/* returns itself */
		} else if (s->raw) {
			announce_call(e, s);	/* returns itself */
		} else {
			arith_ri8(e, true, 5, RSP, 8);	/* callee alignment */
			lea_rip(e, R8, pool(e, P_S));
			jmp_tab(e, R8, R9, true);
			arith_ri8(e, true, 0, RSP, 8);
			test_rr(e, RAX, RAX);
			jump(e, CC_E, L_RET);
		}
		label(e, L_TAGRAX);		/* also for L_OLDS */
		tag_block(e, s, RAX, RCX, RDX);
		label(e, L_RET);
		b(e, 0xc3);
	}
	if (s->ring) {
		ring_oldu(e, s);
		ring_subs(e, s);
	} else if (s->raw) {
		/* Realloc of a traced block, result unsampled (U[RR_OLD]):
		 * announce first that the old block goes (realloc may hand
		 * its address to another thread at once): free(NULL) through
		 * the free probe with rdx = old, r11 = magic + 3; then the
		 * real realloc, untraced. One probe hit, not a realloc entry
		 * and return probe. Entered by a jump, so three pushes align
		 * the stack for the calls. */
		label(e, L_OLDU);
		b(e, 0x57);				/* push rdi */
		b(e, 0x56);				/* push rsi: old */
		b(e, 0x52);				/* push rdx */
		mov_rr(e, RDX, RSI);
		announce(e, s, HK_ANN_GONE);
		b(e, 0x5a);				/* pop rdx */
		b(e, 0x5e);				/* pop rsi */
		b(e, 0x5f);				/* pop rdi */
		b(e, 0x56);				/* push rsi */
		xor32_self(e, R11);			/* unsampled: r11 = 0 */
		jmp_ind_call(e, pool(e, P_U + HK_TE_RAW_REALLOC));
		b(e, 0x59);				/* pop rcx: old */
		test_rr(e, RAX, RAX);
		jump(e, CC_NE, L_RET);
		/* realloc failed: the old block is still there: announce it
		 * back (magic + 4), then tag it again as OLDS does */
		mov_rr(e, RDX, RCX);
		b(e, 0x51);				/* push rcx: old, aligns */
		announce(e, s, HK_ANN_BACK);
		b(e, 0x59);				/* pop rcx */
		xor32_self(e, RAX);
		jump(e, -1, L_RETAG);
		/* ... result sampled: tagged like any sampled block. */
		label(e, L_OLDS);
		b(e, 0x56);
		jmp_ind_call(e, pool(e, P_PROBE_REALLOC));
		b(e, 0x59);
		test_rr(e, RAX, RAX);
		jump(e, CC_NE, L_TAGRAX);
		/* realloc failed: the old block is still there, still traced */
		label(e, L_RETAG);
		tag_block(e, s, RCX, RDX, R8);
		b(e, 0xc3);
	}

	if (obj_realloc(s))
		obj_realloc_sampled(e, s);

	label(e, L_UN);
	xor32_self(e, R11);
	lea_rip(e, R8, pool(e, P_U));
	jmp_tab(e, R8, R9, false);

	while ((e->at + e->pos) & 7)
		b(e, 0xcc);
	label(e, L_POOL);
	o->pool_off = e->pos;
	for (int i = 0; i < 5; i++) {
		lit[P_U + i] = s->real[i];
		o->real_lit[i] = e->pos + 8 * (P_U + (unsigned)i);
	}
	if (obj_realloc(s)) {
		lit[P_U + HK_TE_OBJ_REALLOC] = s->real[HK_TE_OBJ_REALLOC];
		o->real_lit[HK_TE_OBJ_REALLOC] = e->pos + 8 * (P_U + HK_TE_OBJ_REALLOC);
		lit[P_OBJ_FREE] = s->obj_free;
	}
	if (s->raw) {
		/* Sampled blocks come from the raw functions themselves; one
		 * probe hit announces them (announce_call). */
		lit[P_S + HK_TE_OBJ_CALLOC] = lit[P_S + HK_TE_RAW_CALLOC] = s->real[HK_TE_RAW_CALLOC];
		lit[P_S + HK_TE_OBJ_MALLOC] = lit[P_S + HK_TE_RAW_MALLOC] = s->real[HK_TE_RAW_MALLOC];
		lit[P_S + HK_TE_RAW_REALLOC] = s->real[HK_TE_RAW_REALLOC];
		lit[P_U + RR_OLD] = label_addr(e, L_OLDU);
		if (s->ring)
			lit[P_S + RR_OLD] = s->real[HK_TE_RAW_REALLOC];
	} else {
		lit[P_S + HK_TE_OBJ_CALLOC] = s->probe_calloc;
		lit[P_S + HK_TE_OBJ_MALLOC] = s->probe_malloc;
	}
	lit[P_PROBE_REALLOC] = s->probe_realloc;
	lit[P_REAL_FREE] = s->real[HK_TE_RAW_FREE];
	o->real_lit[HK_TE_RAW_FREE] = e->pos + 8 * P_REAL_FREE;
	lit[P_PROBE_FREE] = s->probe_free;
	lit[P_RAWCTX] = s->raw_ctx;
	lit[P_MAGIC] = s->magic;
	lit[P_TSTATE] = s->py.tstate;
	for (int i = 0; i < P_N; i++)
		le(e, lit[i], 8);
	o->len = e->pos;
	if (!s->raw)
		for (int i = 0; i < HK_TE_N; i++)
			if (i != HK_TE_OBJ_CALLOC && i != HK_TE_OBJ_MALLOC)
				o->real_lit[i] = SIZE_MAX;
}

static bool valid(const struct hk_tramp_spec *s)
{
	uint64_t prev = 0;

	if (s->small_max < 1 || s->small_max > INT32_MAX ||
	    s->nclasses > HK_TRAMP_MAX_CLASSES || (s->table & 7) ||
	    (s->by_bytes && (s->nclasses || !s->bytes_mult ||
			     s->bytes_mult > 1ULL << 32)) ||
	    (s->raw && !s->tagging) || (s->sys_nr && !s->raw) ||
	    (s->py.tstate && (!s->sys_nr || (s->py.walk & 3))) ||
	    (s->ring && (!s->py.tstate || (s->ring & 7))) ||
	    s->magic == 0 || s->magic == UINT64_MAX ||
	    (obj_realloc(s) && (!s->obj_free || !s->seq || (s->seq & 7))))
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
		gen(&e, s, out);
		if (!e.grew && !memcmp(e.label, e.prev, sizeof(e.label)))
			break;
		memcpy(e.prev, e.label, sizeof(e.prev));
	}
	if (e.err)
		return e.err;
	if (e.pos > cap)
		return -ENOSPC;
	e.buf = buf;
	gen(&e, s, out);
	return e.err;
}

unsigned hk_tramp_thresholds(const struct hk_tramp_spec *s,
			     uint64_t t[HK_TRAMP_MAX_CLASSES + 1])
{
	unsigned i;

	if (s->by_bytes) {
		t[0] = s->bytes_mult;
		return 1;
	}
	for (i = 0; i < s->nclasses && i < HK_TRAMP_MAX_CLASSES; i++)
		t[i] = s->classes[i].always ? 1ull << 32 : s->classes[i].threshold;
	t[i] = 1ull << 32;
	return i + 1;
}

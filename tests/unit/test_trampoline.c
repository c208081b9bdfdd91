/* Sampling trampoline (user/trampoline.c): the generated code is executed
 * natively here. Its targets are assembly stubs that record the registers
 * they receive; a reference model in C predicts every decision. */
#include <criterion/criterion.h>
#include <capstone/capstone.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "disasm.h"
#include "trampoline.h"

#define HIDDEN __attribute__((visibility("hidden")))
#define MAGIC 0x4841574b42504621ull	/* "!FPBKWAH" */
#define JUNK  MAGIC			/* stale marker in every scratch reg */
#define RAW_CTX 0x5241574354580001ull
#define SEED 0x9e3779b97f4a7c15ull
#define CANARY 0xa5

enum { P_REAL_MALLOC = 1, P_REAL_CALLOC, P_RAW_MALLOC, P_RAW_CALLOC };

/* What the last target received (written by the stubs). */
struct trec {
	uint64_t rdi, rsi, rdx, r10, r11, rsp, path;
};
HIDDEN struct trec tramp_t_rec;
HIDDEN uint64_t tramp_t_count[5];	/* per path, not atomic */
HIDDEN uint64_t tramp_t_junk;
HIDDEN uint64_t tramp_t_call_rsp;

/* Calls entry(a, b, c) with rax, rcx, r8-r11 = tramp_t_junk; returns the
 * path the call ended in. */
HIDDEN uint64_t tramp_t_call(uint64_t a, uint64_t b, uint64_t c, uint64_t entry);
HIDDEN void tramp_t_real_malloc(void);
HIDDEN void tramp_t_real_calloc(void);
HIDDEN void tramp_t_raw_malloc(void);
HIDDEN void tramp_t_raw_calloc(void);

#define STUB(name, path)						\
	".globl " #name "\n.hidden " #name "\n"				\
	".type " #name ",@function\n" #name ":\n"			\
	"	movq %rdi, tramp_t_rec+0(%rip)\n"			\
	"	movq %rsi, tramp_t_rec+8(%rip)\n"			\
	"	movq %rdx, tramp_t_rec+16(%rip)\n"			\
	"	movq %r10, tramp_t_rec+24(%rip)\n"			\
	"	movq %r11, tramp_t_rec+32(%rip)\n"			\
	"	movq %rsp, tramp_t_rec+40(%rip)\n"			\
	"	movq $" #path ", tramp_t_rec+48(%rip)\n"		\
	"	incq tramp_t_count+8*" #path "(%rip)\n"			\
	"	movl $" #path ", %eax\n"				\
	"	ret\n"

__asm__(".text\n"
	STUB(tramp_t_real_malloc, 1)
	STUB(tramp_t_real_calloc, 2)
	STUB(tramp_t_raw_malloc, 3)
	STUB(tramp_t_raw_calloc, 4)
	".globl tramp_t_call\n.hidden tramp_t_call\n"
	".type tramp_t_call,@function\ntramp_t_call:\n"
	"	pushq %rcx\n"
	"	movq tramp_t_junk(%rip), %rax\n"
	"	movq %rax, %rcx\n"
	"	movq %rax, %r8\n"
	"	movq %rax, %r9\n"
	"	movq %rax, %r10\n"
	"	movq %rax, %r11\n"
	"	movq %rsp, tramp_t_call_rsp(%rip)\n"
	"	call *(%rsp)\n"
	"	addq $8, %rsp\n"
	"	ret\n");

/* The raw domain's PyMemAllocatorEx {ctx, malloc, calloc, realloc, free}. */
static uint64_t raw_table[5];

/* ---- reference model ---- */

static uint64_t xorshift(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

enum { M_SKIP, M_UNSAMPLED, M_SAMPLED };	/* M_SKIP: no draw */

static int model(const struct hk_tramp_spec *s, uint64_t *state,
		 bool calloc, uint64_t a, uint64_t b)
{
	uint64_t size = a, u, t = 1ull << 32;

	if (calloc) {
		if (a == 0 || b == 0 || a > s->small_max || b > s->small_max)
			return M_SKIP;
		size = a * b;
	}
	if (size == 0 || size > s->small_max)
		return M_SKIP;
	*state = xorshift(*state);
	u = *state >> 32;
	for (unsigned i = 0; i < s->nclasses; i++)
		if (size < s->classes[i].bound) {
			t = s->classes[i].always ? 1ull << 32 : s->classes[i].threshold;
			break;
		}
	return u < t ? M_SAMPLED : M_UNSAMPLED;
}

/* ---- a process-local target ---- */

struct env {
	struct hk_tramp_spec s;
	struct hk_tramp_out o;
	uint8_t *map;		/* code page, then 3 canary pages */
	uint64_t *state;	/* in the middle of the third page */
	long pg;
};

/* len bytes mapped at a fixed spot 16 MiB..1 GiB from this binary, so that
 * rel32 reaches the stubs and the raw table. */
static uint8_t *map_near(size_t len)
{
	uintptr_t anchor = (uintptr_t)&tramp_t_rec & ~(uintptr_t)0xfffff;

	for (uintptr_t off = 16 << 20; off < (1u << 30); off += 1 << 20) {
		for (int sign = -1; sign <= 1; sign += 2) {
			void *hint = (void *)(anchor + sign * (intptr_t)off);
			void *p = mmap(hint, len, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS |
				       MAP_FIXED_NOREPLACE, -1, 0);

			if (p == hint)
				return p;
			if (p != MAP_FAILED)
				munmap(p, len);
		}
	}
	return NULL;
}

static void spec_base(struct hk_tramp_spec *s, uint64_t at, uint64_t state)
{
	memset(s, 0, sizeof(*s));
	s->at = at;
	s->state = state;
	s->real_malloc = (uint64_t)(uintptr_t)tramp_t_real_malloc;
	s->real_calloc = (uint64_t)(uintptr_t)tramp_t_real_calloc;
	s->raw_table = (uint64_t)(uintptr_t)raw_table;
	s->magic = MAGIC;
	s->small_max = 512;
}

static void add_class(struct hk_tramp_spec *s, uint64_t bound, double p)
{
	struct hk_tramp_class *c = &s->classes[s->nclasses++];

	c->bound = bound;
	c->always = p >= 1.0;
	c->threshold = c->always ? 0 : (uint32_t)llround(p * 4294967296.0);
}

/* Maps the pages; the caller fills e->s's classes, then calls env_load. */
static void env_init(struct env *e)
{
	e->pg = sysconf(_SC_PAGESIZE);
	e->map = map_near(4 * (size_t)e->pg);
	cr_assert_not_null(e->map, "no mapping within reach of the binary");
	memset(e->map, 0xcc, (size_t)e->pg);
	memset(e->map + e->pg, CANARY, 3 * (size_t)e->pg);
	e->state = (uint64_t *)(e->map + 2 * e->pg + e->pg / 2);
	*e->state = SEED;
	spec_base(&e->s, (uint64_t)(uintptr_t)e->map,
		  (uint64_t)(uintptr_t)e->state);
	raw_table[0] = RAW_CTX;
	raw_table[1] = (uint64_t)(uintptr_t)tramp_t_raw_malloc;
	raw_table[2] = (uint64_t)(uintptr_t)tramp_t_raw_calloc;
	raw_table[3] = 0x1111;
	raw_table[4] = 0x2222;
	tramp_t_junk = JUNK;
}

/* Generates the code into the code page and makes it read+exec only. */
static void env_load(struct env *e)
{
	cr_assert_eq(hk_tramp_build(&e->s, e->map, (size_t)e->pg, &e->o), 0);
	cr_assert_eq(mprotect(e->map, (size_t)e->pg, PROT_READ | PROT_EXEC), 0);
}

static uint64_t call_malloc(struct env *e, uint64_t ctx, uint64_t size)
{
	return tramp_t_call(ctx, size, 0xd0d0d0d0d0d0d0d0ull,
			    e->s.at + e->o.malloc_off);
}

static uint64_t call_calloc(struct env *e, uint64_t ctx, uint64_t n, uint64_t sz)
{
	return tramp_t_call(ctx, n, sz, e->s.at + e->o.calloc_off);
}

/* Nothing but the state word changed: canary pages, the unused rest of
 * the code page, the raw table. */
static void env_check_clean(struct env *e)
{
	uint8_t *c = e->map + e->pg, *st = (uint8_t *)e->state;

	for (long i = 0; i < 3 * e->pg; i++)
		if (c + i < st || c + i >= st + 8)
			cr_assert_eq(c[i], CANARY, "canary byte %ld written", i);
	for (long i = (long)e->o.len; i < e->pg; i++)
		cr_assert_eq(e->map[i], 0xcc, "code page byte %ld written", i);
	cr_assert_eq(raw_table[0], RAW_CTX);
	cr_assert_eq(raw_table[1], (uint64_t)(uintptr_t)tramp_t_raw_malloc);
	cr_assert_eq(raw_table[2], (uint64_t)(uintptr_t)tramp_t_raw_calloc);
	cr_assert_eq(raw_table[3], 0x1111);
	cr_assert_eq(raw_table[4], 0x2222);
}

/* The last call went untouched to pymalloc. */
static void assert_unsampled(uint64_t path, uint64_t want,
			     uint64_t rdi, uint64_t rsi, uint64_t rdx)
{
	cr_assert_eq(path, want);
	cr_assert_eq(tramp_t_rec.path, want);
	cr_assert_eq(tramp_t_rec.rdi, rdi);
	cr_assert_eq(tramp_t_rec.rsi, rsi);
	cr_assert_eq(tramp_t_rec.rdx, rdx);
	cr_assert_eq(tramp_t_rec.r11, 0, "stale marker left in r11");
	cr_assert_eq(tramp_t_rec.rsp, tramp_t_call_rsp - 8, "stack moved");
}

static void assert_sampled(struct env *e, uint64_t path, uint64_t want,
			   uint64_t rsi, uint64_t rdx, uint64_t nonce)
{
	cr_assert_eq(path, want);
	cr_assert_eq(tramp_t_rec.rdi, RAW_CTX);
	cr_assert_eq(tramp_t_rec.rsi, rsi);
	cr_assert_eq(tramp_t_rec.rdx, rdx);
	cr_assert_eq(tramp_t_rec.r11, MAGIC);
	cr_assert_eq(tramp_t_rec.r10, nonce);
	cr_assert_eq(*e->state, nonce);
	cr_assert_eq(tramp_t_rec.rsp, tramp_t_call_rsp - 8, "stack moved");
}

/* ---- pure generator ---- */

Test(trampoline, rejects_bad_specs)
{
	struct hk_tramp_spec s, t;
	struct hk_tramp_out o;
	uint8_t buf[HK_TRAMP_MAX_LEN];

	spec_base(&s, 0x555555600000, 0x555555700000);
	s.real_malloc = 0x555555401000;
	s.real_calloc = 0x555555402000;
	s.raw_table = 0x555555710000;
	add_class(&s, 64, 0.1);
	add_class(&s, 256, 0.01);
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), &o), 0);
	cr_assert_eq(hk_tramp_build(NULL, buf, sizeof(buf), &o), -EINVAL);
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), NULL), -EINVAL);
	cr_assert_eq(hk_tramp_build(&s, NULL, sizeof(buf), &o), -EINVAL);

	t = s; t.small_max = 0;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);
	t = s; t.small_max = 1ull << 31;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);
	t = s; t.nclasses = HK_TRAMP_MAX_CLASSES + 1;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);
	t = s; t.classes[0].bound = 0;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);
	t = s; t.classes[1].bound = 64;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);
	t = s; t.classes[1].bound = (1ull << 31) + 1;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);
	t = s; t.classes[1].bound = 1ull << 31;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), 0);

	/* Every rip-relative / rel32 target must be within ±2 GiB. */
	t = s; t.state = s.at + (1ull << 31) + 4096;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -ERANGE);
	t = s; t.state = s.at - (1ull << 31);
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -ERANGE);
	t = s; t.real_malloc = 0x1000;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -ERANGE);
	t = s; t.real_calloc = 0x7fff00000000;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -ERANGE);
	t = s; t.raw_table = 0x7fff00000000;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -ERANGE);

	/* Too small a buffer: the size needed, and the buffer untouched. */
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), &o), 0);
	size_t need = o.len;
	memset(buf, 0x5a, sizeof(buf));
	cr_assert_eq(hk_tramp_build(&s, buf, need - 1, &o), -ENOSPC);
	cr_assert_eq(o.len, need);
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0x5a);
	cr_assert_eq(hk_tramp_build(&s, buf, need, &o), 0);
	cr_assert_eq(buf[need], 0x5a, "wrote past len");
	cr_assert_eq(hk_tramp_build(&s, NULL, 0, &o), -ENOSPC);
	cr_assert_eq(o.len, need);
}

Test(trampoline, fits_the_page_tail)
{
	struct hk_tramp_spec s;
	struct hk_tramp_out o;
	uint8_t buf[HK_TRAMP_MAX_LEN], buf2[HK_TRAMP_MAX_LEN];
	static const uint64_t bounds[8] = { 200, 1000, 5000, 20000, 100000,
					    1000000, 10000000, 1u << 31 };

	/* The largest spec: 8 classes, every compare an imm32. */
	spec_base(&s, 0x555555600001, 0x555555700000);
	s.real_malloc = s.real_calloc = 0x555555401000;
	s.raw_table = 0x555555710000;
	s.small_max = INT32_MAX;
	for (int i = 0; i < 8; i++)
		add_class(&s, bounds[i], 0.5);
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), &o), 0);
	cr_log_info("trampoline: 8 classes: %zu bytes (code %zu)\n", o.len, o.data_off);
	cr_assert_leq(o.len, HK_TRAMP_MAX_LEN);
	cr_assert_leq(HK_TRAMP_MAX_LEN, 439, "Debian 3.11.2 has 439 bytes");
	cr_assert_eq((s.at + o.data_off) % 8, 0, "table not aligned");
	/* Deterministic. */
	cr_assert_eq(hk_tramp_build(&s, buf2, sizeof(buf2), &o), 0);
	cr_assert_arr_eq(buf, buf2, o.len);

	/* hawk-bpf's expected spec: 3 classes, small_max 512. */
	spec_base(&s, 0x555555600000, 0x555555700000);
	s.real_malloc = s.real_calloc = 0x555555401000;
	s.raw_table = 0x555555710000;
	add_class(&s, 64, 0.1);
	add_class(&s, 256, 0.01);
	add_class(&s, 512, 0.0001);
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), &o), 0);
	cr_log_info("trampoline: 3 classes: %zu bytes (code %zu)\n", o.len, o.data_off);
	cr_assert_leq(o.len, 260);
}

/* Static checks on the generated instructions, for one spec. */
static void check_disassembly(const struct hk_tramp_spec *s)
{
	uint8_t buf[HK_TRAMP_MAX_LEN];
	struct hk_tramp_out o;
	struct hk_insn hi[256];
	csh h;
	cs_insn *in;
	size_t n, nh, end = 0, rdi_writes = 0, indirect = 0, state_writes = 0;
	uint64_t tbl = s->at, tbl_end;
	bool after_jmp = false, padding = false;

	cr_assert_eq(hk_tramp_build(s, buf, sizeof(buf), &o), 0);
	tbl += o.data_off;
	tbl_end = s->at + o.len;
	cr_assert_eq(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(h, buf, o.data_off, s->at, 0, &in);
	nh = hk_disasm(buf, o.data_off, s->at, hi, 256);
	cr_assert_eq(nh, n);
	for (size_t i = 0; i < n; i++)
		end += in[i].size;
	cr_assert_eq(end, o.data_off, "undecodable bytes in the code");

	for (size_t i = 0; i < n; i++) {
		const cs_insn *x = &in[i];
		const cs_x86 *d = &x->detail->x86;
		cs_regs rr, rw;
		uint8_t nr, nw;

		if (x->id == X86_INS_INT3 && after_jmp)
			padding = true;	/* unreachable alignment before table */
		if (padding) {
			cr_assert_eq(x->id, X86_INS_INT3, "code after padding");
			continue;
		}
		switch (x->id) {
		case X86_INS_LEA: case X86_INS_CMP: case X86_INS_JAE:
		case X86_INS_JNE: case X86_INS_JMP: case X86_INS_MOV:
		case X86_INS_MOVABS: case X86_INS_IMUL: case X86_INS_DEC:
		case X86_INS_SHL: case X86_INS_SHR: case X86_INS_XOR:
		case X86_INS_SBB:
			break;
		default:
			cr_assert_fail("unexpected %s %s", x->mnemonic, x->op_str);
		}
		cr_assert_not(hi[i].writes_sp, "%s writes rsp", x->mnemonic);
		cr_assert_not(hi[i].writes_args, "%s %s writes rsi/rdx",
			      x->mnemonic, x->op_str);
		cr_assert_eq(d->prefix[1], 0, "segment prefix");
		/* Registers written: scratch only (rdi once, on the sampled path). */
		cr_assert_eq(cs_regs_access(h, x, rr, &nr, rw, &nw), CS_ERR_OK);
		for (int k = 0; k < nw; k++) {
			switch (rw[k]) {
			case X86_REG_RAX: case X86_REG_RCX: case X86_REG_ECX:
			case X86_REG_R8: case X86_REG_R9: case X86_REG_R9D:
			case X86_REG_R10: case X86_REG_R11: case X86_REG_R11D:
			case X86_REG_EFLAGS: case X86_REG_RIP:
				break;
			case X86_REG_RDI:
				rdi_writes++;
				break;
			default:
				cr_assert_fail("%s %s writes %s", x->mnemonic,
					       x->op_str, cs_reg_name(h, rw[k]));
			}
		}
		/* Memory: writes only to the state word; rip-relative reads
		 * only of the state word, the table, the raw table. */
		for (int k = 0; k < d->op_count; k++) {
			const cs_x86_op *op = &d->operands[k];
			uint64_t ea;

			if (op->type != X86_OP_MEM ||
			    (x->id == X86_INS_LEA && op->mem.base != X86_REG_RIP))
				continue;	/* lea rax,[rsi-1] reads nothing */
			if (op->mem.base != X86_REG_RIP) {
				cr_assert(op->mem.base == X86_REG_R8,
					  "%s %s", x->mnemonic, x->op_str);
				cr_assert_not(op->access & CS_AC_WRITE,
					      "%s %s writes", x->mnemonic, x->op_str);
				continue;
			}
			ea = x->address + x->size + (uint64_t)op->mem.disp;
			if (op->access & CS_AC_WRITE) {
				cr_assert_eq(ea, s->state, "write to %#llx",
					     (unsigned long long)ea);
				state_writes++;
			} else if (x->id == X86_INS_LEA) {
				cr_assert(ea == tbl || ea == s->raw_table);
			} else {
				cr_assert_eq(ea, s->state, "read of %#llx",
					     (unsigned long long)ea);
			}
		}
		if (x->id == X86_INS_JMP && d->operands[0].type == X86_OP_MEM)
			indirect++;	/* jmp [r8 + r9]: the raw slot */
		/* Direct branches: to an instruction here or to pymalloc. */
		if (hi[i].flow && hi[i].has_target) {
			uint64_t t = hi[i].target;
			bool ok = t == s->real_malloc || t == s->real_calloc;

			for (size_t j = 0; j < n && !ok; j++)
				ok = in[j].address == t && in[j].id != X86_INS_INT3;
			cr_assert(ok, "branch to %#llx", (unsigned long long)t);
		}
		after_jmp = x->id == X86_INS_JMP;
	}
	cr_assert_eq(rdi_writes, 1);
	cr_assert_eq(indirect, 1);
	cr_assert_eq(state_writes, 1);
	cr_assert_leq(tbl_end - tbl, 8 * (HK_TRAMP_MAX_CLASSES + 1));
	/* Both entries start instructions. */
	for (int k = 0; k < 2; k++) {
		uint64_t ent = s->at + (k ? o.calloc_off : o.malloc_off);
		bool ok = false;

		for (size_t j = 0; j < n; j++)
			ok |= in[j].address == ent;
		cr_assert(ok);
	}
	cs_free(in, n);
	cs_close(&h);
}

Test(trampoline, disassembly_is_clean)
{
	struct hk_tramp_spec s;

	spec_base(&s, 0x555555600000, 0x555555700008);
	s.real_malloc = 0x555555401000;
	s.real_calloc = 0x555555402000;
	s.raw_table = 0x555555710000;
	check_disassembly(&s);			/* no classes */
	add_class(&s, 64, 0.1);
	add_class(&s, 256, 0.01);
	add_class(&s, 512, 0.0001);
	check_disassembly(&s);
	s.small_max = 100;			/* imm8 compares */
	s.at += 3;
	check_disassembly(&s);
	for (int i = 3; i < 8; i++)
		add_class(&s, 1000u << i, 1.0);
	s.small_max = INT32_MAX;
	check_disassembly(&s);
}

/* ---- executed ---- */

Test(trampoline, unsampled_paths_pass_arguments_untouched)
{
	struct env e;
	uint64_t ctx = 0x0b1ec7c7c7c7c7c7ull, p;

	env_init(&e);
	/* Every small size would be sampled: only the size can skip. */
	env_load(&e);
	static const uint64_t big[] = { 0, 513, 4096, 1ull << 40, UINT64_MAX };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		p = call_malloc(&e, ctx, big[i]);
		assert_unsampled(p, P_REAL_MALLOC, ctx, big[i], 0xd0d0d0d0d0d0d0d0ull);
		cr_assert_eq(*e.state, SEED, "drew for size %llu",
			     (unsigned long long)big[i]);
	}
	static const uint64_t cbig[][2] = {
		{ 0, 5 }, { 5, 0 }, { 0, 0 }, { 513, 1 }, { 1, 513 },
		{ 100, 100 }, { 23, 23 },		/* 529 */
		{ (1ull << 63) + 1, 2 },		/* wraps to 2 */
		{ 2, (1ull << 63) + 1 },
		{ 0x5555555555555556ull, 3 },		/* wraps to 2 */
		{ 1ull << 32, 1ull << 32 },		/* wraps to 0 */
		{ UINT64_MAX, UINT64_MAX },		/* wraps to 1 */
	};
	for (size_t i = 0; i < sizeof(cbig) / sizeof(cbig[0]); i++) {
		p = call_calloc(&e, ctx, cbig[i][0], cbig[i][1]);
		assert_unsampled(p, P_REAL_CALLOC, ctx, cbig[i][0], cbig[i][1]);
		cr_assert_eq(*e.state, SEED, "drew for calloc #%zu", i);
	}
	env_check_clean(&e);
}

Test(trampoline, sampled_path_carries_marker)
{
	struct env e;
	uint64_t ctx = 0x0b1ec7c7c7c7c7c7ull, p, st = SEED;

	env_init(&e);
	add_class(&e.s, 64, 0.0);	/* never */
	add_class(&e.s, 256, 1.0);	/* always */
	add_class(&e.s, 300, 0.0);	/* never; >= 300 always */
	env_load(&e);
	static const uint64_t sizes[] = { 64, 100, 255, 300, 301, 511, 512 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		st = xorshift(st);
		p = call_malloc(&e, ctx, sizes[i]);
		assert_sampled(&e, p, P_RAW_MALLOC, sizes[i], 0xd0d0d0d0d0d0d0d0ull, st);
	}
	static const uint64_t never[] = { 1, 63, 256, 299 };
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		st = xorshift(st);
		p = call_malloc(&e, ctx, never[i]);
		assert_unsampled(p, P_REAL_MALLOC, ctx, never[i], 0xd0d0d0d0d0d0d0d0ull);
		cr_assert_eq(*e.state, st, "size %llu did not draw once",
			     (unsigned long long)never[i]);
	}
	static const uint64_t cs[][2] = { { 1, 64 }, { 16, 32 }, { 2, 256 },
					  { 512, 1 }, { 1, 512 }, { 3, 100 } };
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		st = xorshift(st);
		p = call_calloc(&e, ctx, cs[i][0], cs[i][1]);
		assert_sampled(&e, p, P_RAW_CALLOC, cs[i][0], cs[i][1], st);
	}
	st = xorshift(st);
	p = call_calloc(&e, ctx, 3, 21);	/* 63: never */
	assert_unsampled(p, P_REAL_CALLOC, ctx, 3, 21);
	cr_assert_eq(*e.state, st);
	env_check_clean(&e);
}

/* Every decision and nonce, against the model, on random calls. */
Test(trampoline, matches_model)
{
	struct env e;
	uint64_t st = SEED, rng = 0x12345678abcdefull, p;
	unsigned counts[3] = { 0 };

	env_init(&e);
	add_class(&e.s, 16, 0.5);
	add_class(&e.s, 64, 0.25);
	add_class(&e.s, 100, 0.0);
	add_class(&e.s, 128, 1.0);
	add_class(&e.s, 129, 0.75);
	add_class(&e.s, 400, 0.9999);
	env_load(&e);
	for (int i = 0; i < 300000; i++) {
		bool calloc;
		uint64_t a, b2, r;
		int m;

		rng = xorshift(rng);
		r = rng;
		calloc = r & 1;
		switch ((r >> 1) & 7) {	/* sizes around every edge */
		case 0: a = (r >> 8) % 4; break;
		case 1: a = 510 + (r >> 8) % 5; break;
		case 2: a = r >> 4; break;
		default: a = (r >> 8) % 520; break;
		}
		b2 = calloc ? ((r >> 40) & 1 ? (r >> 41) % 40 : r >> 30) : 0;
		m = model(&e.s, &st, calloc, a, b2);
		counts[m]++;
		p = calloc ? call_calloc(&e, 7, a, b2) : call_malloc(&e, 7, a);
		if (m == M_SAMPLED)
			assert_sampled(&e, p, calloc ? P_RAW_CALLOC : P_RAW_MALLOC,
				       a, calloc ? b2 : 0xd0d0d0d0d0d0d0d0ull, st);
		else
			assert_unsampled(p, calloc ? P_REAL_CALLOC : P_REAL_MALLOC,
					 7, a, calloc ? b2 : 0xd0d0d0d0d0d0d0d0ull);
		cr_assert_eq(*e.state, st, "call %d (%s %llu %llu)", i,
			     calloc ? "calloc" : "malloc", (unsigned long long)a,
			     (unsigned long long)b2);
	}
	cr_log_info("model: %u skipped, %u unsampled, %u sampled\n",
		    counts[0], counts[1], counts[2]);
	cr_assert_gt(counts[M_SKIP], 10000);
	cr_assert_gt(counts[M_UNSAMPLED], 10000);
	cr_assert_gt(counts[M_SAMPLED], 10000);
	env_check_clean(&e);
}

/* The sampled fraction of each class is its probability (±5 sigma). */
Test(trampoline, sampling_rates, .timeout = 60)
{
	struct env e;
	static const struct { uint64_t lo, hi; double p; long n; bool calloc; } cls[] = {
		{ 1, 64, 0.1, 1000000, false },
		{ 64, 256, 0.01, 1000000, false },
		{ 256, 512, 0.0001, 10000000, false },
		{ 512, 513, 1.0, 100000, false },
		{ 1, 64, 0.1, 1000000, true },
		{ 256, 512, 0.0001, 10000000, true },
	};

	env_init(&e);
	add_class(&e.s, 64, 0.1);
	add_class(&e.s, 256, 0.01);
	add_class(&e.s, 512, 0.0001);
	env_load(&e);
	for (size_t c = 0; c < sizeof(cls) / sizeof(cls[0]); c++) {
		uint64_t span = cls[c].hi - cls[c].lo, sampled = 0;
		double np, sd;

		for (long i = 0; i < cls[c].n; i++) {
			uint64_t size = cls[c].lo + (uint64_t)i % span, p;

			p = cls[c].calloc ? call_calloc(&e, 0, size, 1)
					  : call_malloc(&e, 0, size);
			sampled += p >= P_RAW_MALLOC;
		}
		np = cls[c].n * cls[c].p;
		sd = sqrt(np * (1 - cls[c].p));
		cr_log_info("sizes [%llu,%llu) %s: %llu of %ld sampled, expected %.1f ± %.1f\n",
			    (unsigned long long)cls[c].lo, (unsigned long long)cls[c].hi,
			    cls[c].calloc ? "calloc" : "malloc",
			    (unsigned long long)sampled, cls[c].n, np, sd);
		if (cls[c].p >= 1.0)
			cr_assert_eq(sampled, (uint64_t)cls[c].n);
		else
			cr_assert_leq(fabs((double)sampled - np), 5 * sd,
				      "class %zu: %llu sampled, expected %.1f", c,
				      (unsigned long long)sampled, np);
	}
	env_check_clean(&e);
}

static void *hammer(void *arg)
{
	struct env *e = arg;

	for (int i = 0; i < 200000; i++) {
		uint64_t p = i & 1 ? call_calloc(e, 1, (uint64_t)i % 40, 3)
				   : call_malloc(e, 1, (uint64_t)i % 700);

		if (p < P_REAL_MALLOC || p > P_RAW_CALLOC)
			return (void *)1;
	}
	return NULL;
}

/* Racing threads share the state word: they may lose randomness, never
 * memory safety. */
Test(trampoline, threads_race_safely)
{
	struct env e;
	pthread_t t[4];

	env_init(&e);
	add_class(&e.s, 64, 0.5);
	env_load(&e);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, hammer, &e), 0);
	for (int i = 0; i < 4; i++) {
		void *r;

		pthread_join(t[i], &r);
		cr_assert_null(r);
	}
	cr_assert_neq(*e.state, SEED);
	env_check_clean(&e);
}

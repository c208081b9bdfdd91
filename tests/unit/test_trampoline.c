/* Sampling trampoline (user/plan/trampoline.c): the generated code is executed
 * natively here. Its targets are assembly stubs that record the registers
 * they receive and return a fake glibc block; a reference model in C
 * predicts every decision. */
#include <criterion/criterion.h>
#include <capstone/capstone.h>
#include <errno.h>
#include <math.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include "disasm.h"
#include "trampoline.h"

#define HIDDEN __attribute__((visibility("hidden")))
#define MAGIC 0x4841574b42504621ull	/* "!FPBKWAH" */
#define JUNK  MAGIC			/* stale marker in every scratch reg */
#define RAW_CTX 0x5241574354580001ull
#define SEED 0x9e3779b97f4a7c15ull
#define TAG0 0x0123456789abcdefull
#define TAG1 0xfedcba9876543210ull
#define CANARY 0xa5
#define ARG3 0xd0d0d0d0d0d0d0d0ull	/* rdx of a two-argument call */

/* Where a call ended: the stub it reached. */
enum {
	P_REAL_MALLOC = 1, P_REAL_CALLOC, P_PROBE_MALLOC, P_PROBE_CALLOC,
	P_RAW_MALLOC, P_RAW_CALLOC, P_RAW_REALLOC, P_RAW_FREE, P_PROBE_REALLOC,
	P_PROBE_FREE, P_OBJ_REALLOC, P_OBJ_FREE, P_N
};

/* What the last stub received (written by the stubs). */
struct trec {
	uint64_t rdi, rsi, rdx, r10, r11, rsp, path, rcx;
};
HIDDEN struct trec tramp_t_rec;
/* Every stub call since the last tramp_t_call, in order. */
static struct trec tramp_t_log[8];
static unsigned tramp_t_nlog;
HIDDEN void tramp_t_logit(void);

void tramp_t_logit(void)
{
	tramp_t_log[tramp_t_nlog++ % 8] = tramp_t_rec;
}
HIDDEN uint64_t tramp_t_junk;
HIDDEN uint64_t tramp_t_call_rsp;
HIDDEN uint64_t tramp_t_ret;		/* what every stub returns */
HIDDEN uint64_t tramp_t_ret_or;		/* ... but the object realloc */
HIDDEN uint64_t tramp_t_bump;		/* the object realloc increments
					 * this word if set (the raw domain
					 * got the call) */

/* Calls entry(a, b, c) with rax, rcx, r8-r11 = tramp_t_junk; returns rax. */
HIDDEN uint64_t tramp_t_call(uint64_t a, uint64_t b, uint64_t c, uint64_t entry);
#define STUB_DECL(n) HIDDEN void tramp_t_##n(void);
STUB_DECL(real_malloc) STUB_DECL(real_calloc) STUB_DECL(probe_malloc)
STUB_DECL(probe_calloc) STUB_DECL(raw_malloc) STUB_DECL(raw_calloc)
STUB_DECL(raw_realloc) STUB_DECL(raw_free) STUB_DECL(probe_realloc)
STUB_DECL(probe_free) STUB_DECL(obj_realloc) STUB_DECL(obj_free)

#define STUB(name, path) STUBR(name, path, tramp_t_ret, "")
#define STUBR(name, path, ret, extra)					\
	".globl tramp_t_" #name "\n.hidden tramp_t_" #name "\n"		\
	".type tramp_t_" #name ",@function\ntramp_t_" #name ":\n"	\
	"	movq %rdi, tramp_t_rec+0(%rip)\n"			\
	"	movq %rsi, tramp_t_rec+8(%rip)\n"			\
	"	movq %rdx, tramp_t_rec+16(%rip)\n"			\
	"	movq %r10, tramp_t_rec+24(%rip)\n"			\
	"	movq %r11, tramp_t_rec+32(%rip)\n"			\
	"	movq %rsp, tramp_t_rec+40(%rip)\n"			\
	"	movq $" #path ", tramp_t_rec+48(%rip)\n"		\
	"	movq %rcx, tramp_t_rec+56(%rip)\n"			\
	"	subq $8, %rsp\n	call tramp_t_logit\n	addq $8, %rsp\n" \
	extra								\
	"	movq " #ret "(%rip), %rax\n"				\
	"	movq %rax, %rcx\n	movq %rax, %rdx\n"		\
	"	movq %rax, %rsi\n	movq %rax, %r8\n"		\
	"	movq %rax, %r9\n	movq %rax, %r10\n	movq %rax, %r11\n" \
	"	ret\n"

__asm__(".text\n"
	STUB(real_malloc, 1) STUB(real_calloc, 2) STUB(probe_malloc, 3)
	STUB(probe_calloc, 4) STUB(raw_malloc, 5) STUB(raw_calloc, 6)
	STUB(raw_realloc, 7) STUB(raw_free, 8) STUB(probe_realloc, 9)
	STUB(probe_free, 10)
	STUBR(obj_realloc, 11, tramp_t_ret_or,
	      "	movq tramp_t_bump(%rip), %rax\n"
	      "	testq %rax, %rax\n	jz 1f\n	incq (%rax)\n1:\n")
	STUB(obj_free, 12)
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

static uint64_t raw_ctx = RAW_CTX;

static uint64_t xorshift(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/* ---- fake glibc blocks ---- */

/* A block of `usable` bytes (a multiple of 16, plus 8) in a chunk with a
 * glibc size word before it; mmapped: the IS_MMAPPED layout. */
struct fake {
	uint8_t mem[8192] __attribute__((aligned(16)));
};

static uint64_t fake_block(struct fake *f, uint64_t usable, bool mmapped)
{
	uint64_t *p = (uint64_t *)(f->mem + 16);

	memset(f->mem, 0x77, sizeof(f->mem));
	/* chunk size: usable + 8 (normal) or + 16 (mmapped); flags in bits 0-2 */
	p[-1] = mmapped ? (usable + 16) | 2 : (usable + 8) | 1;
	return (uint64_t)(uintptr_t)p;
}

static uint64_t usable_of(uint64_t p)
{
	uint64_t h = ((uint64_t *)(uintptr_t)p)[-1];

	return (h & ~7ull) - (h & 2 ? 16 : 8);
}

static bool has_tag(uint64_t p)
{
	uint64_t *t = (uint64_t *)(uintptr_t)(p + usable_of(p) - 16);

	return t[0] == TAG0 && t[1] == TAG1;
}

static void put_tag(uint64_t p)
{
	uint64_t *t = (uint64_t *)(uintptr_t)(p + usable_of(p) - 16);

	t[0] = TAG0;
	t[1] = TAG1;
}

/* ---- reference model ---- */

enum { M_SKIP, M_UNSAMPLED, M_SAMPLED };	/* M_SKIP: no draw */

static int draw(const struct hk_tramp_spec *s, uint64_t *state, uint64_t size)
{
	uint64_t u, t = 1ull << 32;

	*state = xorshift(*state);
	u = *state >> 32;
	if (size == 0)
		size = 1;
	/* by bytes: u < size * mult, as a signed 64-bit product whose
	 * overflow (or a negative size) samples */
	if (s->by_bytes)
		return (size >> 63) || (unsigned __int128)size * s->bytes_mult > u
		       ? M_SAMPLED : M_UNSAMPLED;
	for (unsigned i = 0; i < s->nclasses; i++)
		if (size < s->classes[i].bound) {
			t = s->classes[i].always ? 1ull << 32 : s->classes[i].threshold;
			break;
		}
	return u < t ? M_SAMPLED : M_UNSAMPLED;
}

static int model(const struct hk_tramp_spec *s, uint64_t *state, int entry,
		 uint64_t a, uint64_t b)
{
	uint64_t size = a;

	switch (entry) {
	case HK_TE_OBJ_CALLOC:
		if (a == 0 || b == 0 || a > s->small_max || b > s->small_max)
			return M_SKIP;
		size = a * b;
		/* fall through */
	case HK_TE_OBJ_MALLOC:
		if (size == 0 || size > s->small_max)
			return M_SKIP;
		return draw(s, state, size);
	case HK_TE_RAW_CALLOC:
		if (__builtin_mul_overflow((int64_t)a, (int64_t)b, (int64_t *)&size))
			return M_SKIP;
		return draw(s, state, size);
	case HK_TE_RAW_REALLOC:
		return draw(s, state, b);
	case HK_TE_OBJ_REALLOC:
		if (b == 0 || b > s->small_max)
			return M_SKIP;
		return draw(s, state, b);
	default:
		return draw(s, state, a);
	}
}

/* ---- a process-local target ---- */

struct env {
	struct hk_tramp_spec s;
	struct hk_tramp_out o;
	uint8_t *map;		/* code page, then 3 canary pages */
	uint64_t *state;	/* data in the middle of the third page */
	long pg;
};

/* len bytes mapped at a fixed spot 16 MiB..1 GiB from this binary (the
 * code need not reach the stubs, but data must be within rel32). */
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

#define U(f) ((uint64_t)(uintptr_t)(f))
/* The data: state, tag, thresholds (table), walk word (with_walk), ring
 * words (ring tests), then the raw realloc count. */
#define TABLE_OFF 24
#define SEQ_OFF (TABLE_OFF + 8 * (HK_TRAMP_MAX_CLASSES + 2) + 24)

static void spec_base(struct hk_tramp_spec *s, uint64_t at, uint64_t data)
{
	memset(s, 0, sizeof(*s));
	s->at = at;
	s->state = data;
	s->tag = data + 8;
	s->table = data + TABLE_OFF;
	s->real[HK_TE_OBJ_MALLOC] = U(tramp_t_real_malloc);
	s->real[HK_TE_OBJ_CALLOC] = U(tramp_t_real_calloc);
	s->real[HK_TE_RAW_MALLOC] = U(tramp_t_raw_malloc);
	s->real[HK_TE_RAW_CALLOC] = U(tramp_t_raw_calloc);
	s->real[HK_TE_RAW_REALLOC] = U(tramp_t_raw_realloc);
	s->real[HK_TE_RAW_FREE] = U(tramp_t_raw_free);
	s->real[HK_TE_OBJ_REALLOC] = U(tramp_t_obj_realloc);
	s->obj_free = U(tramp_t_obj_free);
	s->seq = data + SEQ_OFF;
	s->probe_malloc = U(tramp_t_probe_malloc);
	s->probe_calloc = U(tramp_t_probe_calloc);
	s->probe_realloc = U(tramp_t_probe_realloc);
	s->probe_free = U(tramp_t_probe_free);
	s->raw_ctx = U(&raw_ctx);
	s->magic = MAGIC;
	s->small_max = 512;
	s->tagging = s->raw = true;
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
	spec_base(&e->s, U(e->map), U(e->state));
	tramp_t_junk = JUNK;
	tramp_t_ret = tramp_t_ret_or = tramp_t_bump = 0;
}

/* Generates the code into the code page (read+exec only) and its data. */
static void env_load(struct env *e)
{
	uint64_t t[HK_TRAMP_MAX_CLASSES + 1];
	unsigned n;

	cr_assert_eq(hk_tramp_build(&e->s, e->map, (size_t)e->pg, &e->o), 0);
	cr_assert_eq(mprotect(e->map, (size_t)e->pg, PROT_READ | PROT_EXEC), 0);
	e->state[0] = SEED;
	e->state[1] = TAG0;
	e->state[2] = TAG1;
	n = hk_tramp_thresholds(&e->s, t);
	memcpy(e->state + 3, t, 8 * n);
}

static uint64_t call(struct env *e, int entry, uint64_t a, uint64_t b,
		     uint64_t c)
{
	cr_assert_neq(e->o.entry[entry], SIZE_MAX);
	tramp_t_nlog = 0;
	return tramp_t_call(a, b, c, e->s.at + e->o.entry[entry]);
}

/* Nothing but the state and raw realloc count words changed in the data
 * page, nothing past the code in the code page. */
static void env_check_clean(struct env *e)
{
	uint8_t *c = e->map + e->pg, *d = (uint8_t *)e->state;

	for (long i = 0; i < 3 * e->pg; i++)
		if ((c + i < d || c + i >= d + TABLE_OFF + 8 * (HK_TRAMP_MAX_CLASSES + 1)) &&
		    (c + i < d + SEQ_OFF || c + i >= d + SEQ_OFF + 8))
			cr_assert_eq(c[i], CANARY, "canary byte %ld written", i);
	cr_assert_eq(e->state[1], TAG0);
	cr_assert_eq(e->state[2], TAG1);
	for (long i = (long)e->o.len; i < e->pg; i++)
		cr_assert_eq(e->map[i], 0xcc, "code page byte %ld written", i);
	cr_assert_eq(raw_ctx, RAW_CTX);
}

/* The last call was tail-jumped untouched to `path` (a free's r11 is
 * never read: it may keep what the caller left). */
static void assert_passed(uint64_t path, uint64_t rdi, uint64_t rsi, uint64_t rdx)
{
	cr_assert_eq(tramp_t_rec.path, path, "reached %llu, not %llu (rsi %#llx)",
		     (unsigned long long)tramp_t_rec.path, (unsigned long long)path,
		     (unsigned long long)rsi);
	cr_assert_eq(tramp_t_rec.rdi, rdi);
	cr_assert_eq(tramp_t_rec.rsi, rsi);
	cr_assert_eq(tramp_t_rec.rdx, rdx);
	if (path != P_RAW_FREE && path != P_PROBE_FREE)
		cr_assert_eq(tramp_t_rec.r11, 0, "stale marker left in r11");
	cr_assert_eq(tramp_t_rec.rsp, tramp_t_call_rsp - 8, "stack moved");
}

/* Stub call r reached `path` as a call (tag mode) with the raw ctx, the
 * marker and the given arguments, `words` stack words below the entry's
 * return address; its stack aligned. */
static void assert_call(const struct trec *r, uint64_t path, uint64_t r11,
			uint64_t rsi, uint64_t rdx, unsigned words)
{
	cr_assert_eq(r->path, path, "reached %llu, not %llu",
		     (unsigned long long)r->path, (unsigned long long)path);
	cr_assert_eq(r->rdi, RAW_CTX);
	cr_assert_eq(r->rsi, rsi);
	cr_assert_eq(r->rdx, rdx);
	cr_assert_eq(r->r11, r11);
	cr_assert_eq(r->rsp, tramp_t_call_rsp - 8 - 8 * words, "not called");
	cr_assert_eq((r->rsp + 8) % 16, 0, "callee stack misaligned");
}

/* The last call reached the probe `path` as a call (one word: alignment
 * or the old block). */
static void assert_called(uint64_t path, uint64_t r11, uint64_t rsi, uint64_t rdx)
{
	cr_assert_eq(tramp_t_nlog, 1, "%u stub calls", tramp_t_nlog);
	assert_call(&tramp_t_rec, path, r11, rsi, rdx, 2);
}

/* A sampled allocation in raw mode: the raw function `path` called for the
 * padded request (three words of the trampoline's own on the stack),
 * then, for a block, its announcement through the free probe. */
static void assert_announced(uint64_t path, uint64_t rsi, uint64_t rdx,
			     uint64_t block, uint64_t size, uint64_t nonce)
{
	cr_assert_eq(tramp_t_nlog, block ? 2 : 1, "%u stub calls", tramp_t_nlog);
	assert_call(&tramp_t_log[0], path, MAGIC, rsi, rdx, 4);
	cr_assert_eq(tramp_t_log[0].r10, nonce);
	if (!block)
		return;
	assert_call(&tramp_t_log[1], P_PROBE_FREE, MAGIC + 2, 0, block, 4);
	cr_assert_eq(tramp_t_log[1].rcx, size, "announced size");
	cr_assert_eq(tramp_t_log[1].r10, nonce);
}

/* ---- pure generator ---- */

Test(trampoline, rejects_bad_specs)
{
	struct hk_tramp_spec s, t;
	struct hk_tramp_out o;
	uint8_t buf[HK_TRAMP_MAX_LEN];

	spec_base(&s, 0x555555600000, 0x555555700000);
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
	t = s; t.table += 4;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);
	t = s; t.tagging = false;		/* raw needs tags */
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);
	t = s; t.magic = 0;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);
	t = s; t.magic = UINT64_MAX;		/* magic + 1 must differ from 0 */
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -EINVAL);

	/* Data (state, table, tag) must be within ±2 GiB; targets may be
	 * anywhere (they are read from the pool). */
	t = s; t.state = s.at + (1ull << 31) + 4096;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -ERANGE);
	t = s; t.table = s.at - (1ull << 31) - 4096;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -ERANGE);
	t = s; t.tag = 0x1000;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), -ERANGE);
	t = s; t.real[HK_TE_OBJ_MALLOC] = 0x1000; t.probe_free = 0x7fff00000000;
	cr_assert_eq(hk_tramp_build(&t, buf, sizeof(buf), &o), 0);

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

/* Announcements by getppid(2) with frames, the interpreter's offsets
 * from `base` on. */
static void with_walk(struct hk_tramp_spec *s, int32_t base)
{
	s->sys_nr = SYS_getppid;
	s->py.tstate = 0x555555800000;
	s->py.walk = s->table + 8 * (HK_TRAMP_MAX_CLASSES + 1);
	s->py.cframe = base;
	s->py.current_frame = base + 8;
	s->py.code = base + 16;
	s->py.previous = base + 24;
	s->py.instr = base + 32;
	s->py.owner = base + 40;
}

Test(trampoline, sizes_and_pool)
{
	struct hk_tramp_spec s;
	struct hk_tramp_out o;
	uint8_t buf[HK_TRAMP_MAX_LEN], buf2[HK_TRAMP_MAX_LEN];
	static const uint64_t bounds[8] = { 200, 1000, 5000, 20000, 100000,
					    1000000, 10000000, 1u << 31 };

	/* The largest spec: 8 classes, raw entries, every compare imm32,
	 * announcements by system call with frames, every offset a disp32. */
	spec_base(&s, 0x555555600001, 0x555555700000);
	s.small_max = INT32_MAX;
	with_walk(&s, 0x1000);
	for (int i = 0; i < 8; i++)
		add_class(&s, bounds[i], 0.5);
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), &o), 0);
	cr_log_info("trampoline: 8 classes, raw: %zu bytes (code %zu)\n", o.len, o.pool_off);
	cr_assert_leq(o.len, HK_TRAMP_MAX_LEN);
	s.py.thread_id = 0x1000;
	s.ring = s.table + 8 * (HK_TRAMP_MAX_CLASSES + 2);
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), &o), 0);
	cr_log_info("trampoline: 8 classes, raw, ring: %zu bytes\n", o.len);
	cr_assert_leq(o.len, HK_TRAMP_MAX_LEN);
	cr_assert_eq((s.at + o.pool_off) % 8, 0, "pool not aligned");
	/* The pool holds every target; real_lit finds each function. */
	for (int e = 0; e < HK_TE_N; e++) {
		uint64_t v;

		cr_assert_neq(o.entry[e], SIZE_MAX);
		cr_assert_neq(o.real_lit[e], SIZE_MAX);
		memcpy(&v, buf + o.real_lit[e], 8);
		cr_assert_eq(v, s.real[e], "entry %d", e);
	}
	cr_assert_eq(hk_tramp_build(&s, buf2, sizeof(buf2), &o), 0);
	cr_assert_arr_eq(buf, buf2, o.len, "not deterministic");

	/* Without the raw domain: pymalloc's entries only. */
	spec_base(&s, 0x555555600000, 0x555555700000);
	s.raw = false;
	add_class(&s, 128, 0.0001);
	add_class(&s, 8192, 0.1);
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), &o), 0);
	cr_log_info("trampoline: 2 classes, pymalloc only: %zu bytes\n", o.len);
	for (int e = 0; e < HK_TE_N; e++)
		cr_assert_eq(o.entry[e] == SIZE_MAX,
			     e != HK_TE_OBJ_MALLOC && e != HK_TE_OBJ_CALLOC);
	/* hawk-bpf's default spec fits libc's code tail (3844 bytes on
	 * Debian 12) and the interpreter's own on pyenv (2343). */
	s.raw = true;
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), &o), 0);
	cr_log_info("trampoline: 2 classes, raw: %zu bytes\n", o.len);
	cr_assert_leq(o.len, 2343);
	with_walk(&s, 0x100);
	s.py.thread_id = 0x98;
	s.ring = s.table + 8 * (HK_TRAMP_MAX_CLASSES + 2);
	cr_assert_eq(hk_tramp_build(&s, buf, sizeof(buf), &o), 0);
	cr_log_info("trampoline: 2 classes, raw, ring: %zu bytes\n", o.len);
	cr_assert_leq(o.len, 2343);
}

/* Static checks on the generated instructions, for one spec. */
static void check_disassembly(const struct hk_tramp_spec *s)
{
	uint8_t buf[HK_TRAMP_MAX_LEN];
	struct hk_tramp_out o;
	csh h;
	cs_insn *in;
	size_t n, end = 0, state_writes = 0;
	uint64_t pool, pool_end;

	cr_assert_eq(hk_tramp_build(s, buf, sizeof(buf), &o), 0);
	pool = s->at + o.pool_off;
	pool_end = s->at + o.len;
	cr_assert_eq(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(h, buf, o.pool_off, s->at, 0, &in);
	for (size_t i = 0; i < n; i++)
		end += in[i].size;
	cr_assert_eq(end, o.pool_off, "undecodable bytes in the code");

	for (size_t i = 0; i < n; i++) {
		const cs_insn *x = &in[i];
		const cs_x86 *d = &x->detail->x86;

		switch (x->id) {
		case X86_INS_LEA: case X86_INS_CMP: case X86_INS_JAE:
		case X86_INS_JNE: case X86_INS_JE: case X86_INS_JBE:
		case X86_INS_JO: case X86_INS_JMP: case X86_INS_MOV:
		case X86_INS_IMUL: case X86_INS_DEC: case X86_INS_INC:
		case X86_INS_SHL: case X86_INS_SHR: case X86_INS_XOR:
		case X86_INS_SBB: case X86_INS_ADC: case X86_INS_SUB:
		case X86_INS_ADD: case X86_INS_AND: case X86_INS_TEST:
		case X86_INS_CALL: case X86_INS_RET: case X86_INS_PUSH:
		case X86_INS_POP: case X86_INS_INT3:
			break;
		case X86_INS_SYSCALL: case X86_INS_MOVZX: case X86_INS_JA:
			cr_assert(s->sys_nr, "%s without sys_nr", x->mnemonic);
			break;
		case X86_INS_CMPXCHG: case X86_INS_OR:
			cr_assert(s->ring, "%s without a ring", x->mnemonic);
			break;
		case X86_INS_MOVSB:	/* the object realloc moves a block */
			cr_assert(s->raw && s->real[HK_TE_OBJ_REALLOC] &&
				  d->prefix[0] == X86_PREFIX_REP, "%s %s", x->mnemonic,
				  x->op_str);
			break;
		default:
			cr_assert_fail("unexpected %s %s", x->mnemonic, x->op_str);
		}
		/* ring: lock (cmpxchg, inc of a drop count) and fs (the
		 * thread pointer) only */
		if (d->prefix[0] == X86_PREFIX_LOCK)
			cr_assert(s->ring && (x->id == X86_INS_CMPXCHG || x->id == X86_INS_INC),
				  "lock %s", x->mnemonic);
		else if (x->id != X86_INS_MOVSB)
			cr_assert_eq(d->prefix[0], 0, "lock/rep prefix");
		if (d->prefix[1] == X86_PREFIX_FS)
			cr_assert(s->ring && x->id == X86_INS_MOV, "fs %s", x->mnemonic);
		else
			cr_assert_eq(d->prefix[1], 0, "segment prefix");
		/* rip-relative: writes only to the state word; reads only of
		 * the state, table, tag and pool. */
		for (int k = 0; k < d->op_count; k++) {
			const cs_x86_op *op = &d->operands[k];
			uint64_t ea;

			if (op->type != X86_OP_MEM || op->mem.base != X86_REG_RIP)
				continue;
			ea = x->address + x->size + (uint64_t)op->mem.disp;
			if (op->access & CS_AC_WRITE) {
				/* ring: its address word (mapped, or could
				 * not be) and the count of records lost */
				if (s->ring && (ea == s->ring || ea == s->ring + 16))
					continue;
				/* the raw realloc entry counts its calls */
				if (s->seq && ea == s->seq && x->id == X86_INS_INC)
					continue;
				cr_assert_eq(ea, s->state, "write to %#llx",
					     (unsigned long long)ea);
				state_writes++;
			} else {
				cr_assert(ea == s->state || ea == s->table ||
					  ea == s->tag || ea == s->tag + 8 ||
					  (s->py.tstate && (ea == s->py.walk ||
							    ea == s->py.walk + 4)) ||
					  (s->ring && ea >= s->ring && ea < s->ring + 24) ||
					  (s->seq && ea == s->seq) ||
					  (ea >= pool && ea < pool_end),
					  "%s %s reads %#llx", x->mnemonic,
					  x->op_str, (unsigned long long)ea);
			}
		}
		/* Direct branches stay inside the code. */
		if (d->op_count == 1 && d->operands[0].type == X86_OP_IMM &&
		    (cs_insn_group(h, x, CS_GRP_JUMP) || x->id == X86_INS_CALL)) {
			uint64_t t = (uint64_t)d->operands[0].imm;
			bool ok = false;

			for (size_t j = 0; j < n && !ok; j++)
				ok = in[j].address == t;
			cr_assert(ok, "branch to %#llx", (unsigned long long)t);
		}
	}
	cr_assert_eq(state_writes, 1);
	for (int e = 0; e < HK_TE_N; e++) {
		bool ok = o.entry[e] == SIZE_MAX;

		for (size_t j = 0; j < n && !ok; j++)
			ok = in[j].address == s->at + o.entry[e];
		cr_assert(ok, "entry %d does not start an instruction", e);
	}
	cs_free(in, n);
	cs_close(&h);
}

Test(trampoline, disassembly_is_clean)
{
	struct hk_tramp_spec s;

	spec_base(&s, 0x555555600000, 0x555555700008);
	check_disassembly(&s);			/* no classes */
	add_class(&s, 64, 0.1);
	add_class(&s, 256, 0.01);
	add_class(&s, 512, 0.0001);
	check_disassembly(&s);
	s.raw = false;
	check_disassembly(&s);
	s.tagging = false;
	check_disassembly(&s);
	s.tagging = s.raw = true;
	s.small_max = 100;			/* imm8 compares */
	s.at += 3;
	check_disassembly(&s);
	for (int i = 3; i < 8; i++)
		add_class(&s, 1000u << i, 1.0);
	s.small_max = INT32_MAX;
	check_disassembly(&s);
	with_walk(&s, 8);			/* disp8 offsets */
	check_disassembly(&s);
	with_walk(&s, 0x1000);			/* disp32 */
	check_disassembly(&s);
	s.py.cframe = 0;			/* frame pointer in the thread state */
	check_disassembly(&s);
	s.py.thread_id = 0x98;
	s.ring = s.table + 8 * (HK_TRAMP_MAX_CLASSES + 2);	/* ring mode */
	check_disassembly(&s);
	with_walk(&s, 0x1000);
	check_disassembly(&s);
	s.nclasses = 0;				/* by bytes */
	s.by_bytes = true;
	s.bytes_mult = 8192;
	check_disassembly(&s);
}

/* ---- executed ---- */

Test(trampoline, unsampled_paths_pass_arguments_untouched)
{
	struct env e;
	uint64_t ctx = 0x0b1ec7c7c7c7c7c7ull;

	env_init(&e);
	add_class(&e.s, 1u << 31, 0.0);		/* draws, never samples */
	env_load(&e);
	static const uint64_t big[] = { 0, 513, 4096, 1ull << 40, UINT64_MAX };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		call(&e, HK_TE_OBJ_MALLOC, ctx, big[i], ARG3);
		assert_passed(P_REAL_MALLOC, ctx, big[i], ARG3);
		cr_assert_eq(e.state[0], SEED, "drew for size %llu",
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
		call(&e, HK_TE_OBJ_CALLOC, ctx, cbig[i][0], cbig[i][1]);
		assert_passed(P_REAL_CALLOC, ctx, cbig[i][0], cbig[i][1]);
		cr_assert_eq(e.state[0], SEED, "drew for calloc #%zu", i);
	}
	/* A raw calloc whose product overflows goes unsampled, no draw. */
	call(&e, HK_TE_RAW_CALLOC, ctx, 1ull << 62, 4);
	assert_passed(P_RAW_CALLOC, ctx, 1ull << 62, 4);
	cr_assert_eq(e.state[0], SEED);
	/* Every other raw call draws (and here never samples). */
	uint64_t st = SEED;
	for (uint64_t size = 0; size < 3; size++) {
		st = xorshift(st);
		call(&e, HK_TE_RAW_MALLOC, ctx, size << 20, ARG3);
		assert_passed(P_RAW_MALLOC, ctx, size << 20, ARG3);
		st = xorshift(st);
		call(&e, HK_TE_RAW_CALLOC, ctx, size, 7);
		assert_passed(P_RAW_CALLOC, ctx, size, 7);
		st = xorshift(st);
		call(&e, HK_TE_RAW_REALLOC, ctx, 0, size);	/* realloc(NULL) */
		assert_passed(P_RAW_REALLOC, ctx, 0, size);
		cr_assert_eq(e.state[0], st);
	}
	static struct fake f;
	uint64_t p = fake_block(&f, 104, false);
	st = xorshift(st);
	call(&e, HK_TE_RAW_REALLOC, ctx, p, 3000);
	assert_passed(P_RAW_REALLOC, ctx, p, 3000);
	cr_assert_eq(e.state[0], st);
	/* An untagged block (and NULL) is freed directly, without a draw. */
	call(&e, HK_TE_RAW_FREE, ctx, p, ARG3);
	assert_passed(P_RAW_FREE, ctx, p, ARG3);
	call(&e, HK_TE_RAW_FREE, ctx, 0, ARG3);
	assert_passed(P_RAW_FREE, ctx, 0, ARG3);
	cr_assert_eq(e.state[0], st);
	env_check_clean(&e);
}

/* Sampled calls (raw mode) call the raw function for 16 bytes more, tag
 * the block at the end of its usable space and announce it with one probe
 * hit; without the raw domain, they call its probes instead. */
Test(trampoline, sampled_calls_are_padded_tagged_announced)
{
	static struct fake f;
	struct env e;
	uint64_t ctx = 0x0b1ec7c7c7c7c7c7ull, st = SEED, p, r;
	static const struct { int entry; uint64_t a, b; int path, probe; uint64_t rsi, rdx, size; } c[] = {
		{ HK_TE_OBJ_MALLOC, 64, ARG3, P_RAW_MALLOC, P_PROBE_MALLOC, 80, ARG3, 64 },
		{ HK_TE_OBJ_MALLOC, 512, ARG3, P_RAW_MALLOC, P_PROBE_MALLOC, 528, ARG3, 512 },
		{ HK_TE_RAW_MALLOC, 100, ARG3, P_RAW_MALLOC, P_PROBE_MALLOC, 116, ARG3, 100 },
		{ HK_TE_RAW_MALLOC, 1 << 20, ARG3, P_RAW_MALLOC, P_PROBE_MALLOC,
		  (1 << 20) + 16, ARG3, 1 << 20 },
		{ HK_TE_OBJ_CALLOC, 8, 16, P_RAW_CALLOC, P_PROBE_CALLOC, 1, 144, 128 },
		{ HK_TE_RAW_CALLOC, 1000, 3, P_RAW_CALLOC, P_PROBE_CALLOC, 1, 3016, 3000 },
		{ HK_TE_RAW_REALLOC, 0, 300, P_RAW_REALLOC, P_PROBE_REALLOC, 0, 316, 300 },
	};

	for (int raw = 1; raw >= 0; raw--) {
		env_init(&e);
		e.s.raw = raw;
		add_class(&e.s, 64, 0.0);	/* never */
		add_class(&e.s, 256, 1.0);	/* always */
		add_class(&e.s, 300, 0.0);	/* never; >= 300 always */
		env_load(&e);
		st = SEED;
		for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
			if (!raw && c[i].entry != HK_TE_OBJ_MALLOC &&
			    c[i].entry != HK_TE_OBJ_CALLOC)
				continue;
			for (int mm = 0; mm < 2; mm++) {
				tramp_t_ret = p = fake_block(&f, mm ? 4064 : 520, mm);
				st = xorshift(st);
				r = call(&e, c[i].entry, ctx, c[i].a, c[i].b);
				cr_assert_eq(r, p, "case %zu: result not passed back", i);
				if (raw) {
					assert_announced(c[i].path, c[i].rsi, c[i].rdx, p,
							 c[i].size, st);
				} else {
					assert_called(c[i].probe, MAGIC, c[i].rsi, c[i].rdx);
					cr_assert_eq(tramp_t_rec.r10, st, "nonce");
				}
				cr_assert_eq(e.state[0], st);
				cr_assert(has_tag(p), "case %zu: block not tagged", i);
				/* nothing else of the block written */
				for (uint64_t k = 0; k < usable_of(p) - 16; k++)
					cr_assert_eq(((uint8_t *)(uintptr_t)p)[k], 0x77);
			}
		}
		/* A failed allocation: NULL back, nothing announced. */
		tramp_t_ret = 0;
		st = xorshift(st);
		cr_assert_eq(call(&e, HK_TE_OBJ_MALLOC, ctx, 100, ARG3), 0);
		if (raw)
			assert_announced(P_RAW_MALLOC, 116, ARG3, 0, 100, st);
		else
			assert_called(P_PROBE_MALLOC, MAGIC, 116, ARG3);
		/* Unsampled classes go straight to their function. */
		st = xorshift(st);
		call(&e, HK_TE_OBJ_MALLOC, ctx, 63, ARG3);
		assert_passed(P_REAL_MALLOC, ctx, 63, ARG3);
		if (raw) {
			st = xorshift(st);
			call(&e, HK_TE_RAW_MALLOC, ctx, 299, ARG3);
			assert_passed(P_RAW_MALLOC, ctx, 299, ARG3);
		}
		cr_assert_eq(e.state[0], st);
		env_check_clean(&e);
	}
}

/* ---- announcements by system call ----
 * getppid(2) is made to raise SIGSYS (a seccomp filter in this test's own
 * process), whose handler records the registers the call was made with
 * and the frames r10 points to. */

struct sysrec {
	unsigned n;			/* calls seen */
	uint64_t nr, rdi, rsi, rdx, r10, r8, r9;
	uint8_t frames[16 * HK_TRAMP_WALK_MAX];
};
static struct sysrec sysrec;

static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	greg_t *g = uc->uc_mcontext.gregs;
	uint64_t n = (uint64_t)g[REG_R8];

	(void)sig;
	(void)si;
	sysrec.n++;
	sysrec.nr = (uint64_t)g[REG_RAX];
	sysrec.rdi = (uint64_t)g[REG_RDI];
	sysrec.rsi = (uint64_t)g[REG_RSI];
	sysrec.rdx = (uint64_t)g[REG_RDX];
	sysrec.r10 = (uint64_t)g[REG_R10];
	sysrec.r8 = n;
	sysrec.r9 = (uint64_t)g[REG_R9];
	if (sysrec.rdi == MAGIC + HK_ANN_FRAMES && n <= HK_TRAMP_WALK_MAX)
		memcpy(sysrec.frames, (void *)(uintptr_t)sysrec.r10, 16 * n);
	g[REG_RAX] = 1;
}

static void trap_getppid(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };

	cr_assert_eq(sigaction(SIGSYS, &sa, NULL), 0);
	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

/* A fake interpreter: the running-thread-state word, a thread state with
 * its cframe pointer far in (a disp32), a cframe, a chain of frames. */
#define F_CFRAME 0x150
#define F_CURRENT 8
#define F_CODE 32
#define F_PREV 48
#define F_INSTR 56
#define F_OWNER 69
#define NFAKE 5
static uint64_t fake_running;
static uint8_t fake_ts[0x200], fake_cf[16], fake_fr[NFAKE][80];
static uint32_t walk_word[2];

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void fake_interpreter(void)
{
	memset(fake_ts, 0, sizeof(fake_ts));
	memset(fake_fr, 0xee, sizeof(fake_fr));
	fake_running = U(fake_ts);
	put64(fake_ts + F_CFRAME, U(fake_cf));
	put64(fake_cf + F_CURRENT, U(fake_fr[0]));
	for (int i = 0; i < NFAKE; i++) {
		uint64_t code = 0x7000000000ull + 0x1000 * (uint64_t)i;

		put64(fake_fr[i] + F_CODE, code);
		put64(fake_fr[i] + F_PREV, i + 1 < NFAKE ? U(fake_fr[i + 1]) : 0);
		/* the first frame not started (before its code's first unit) */
		put64(fake_fr[i] + F_INSTR, code + (i ? 200 + 2 * (uint64_t)i : 190));
		fake_fr[i][F_OWNER] = (uint8_t)i;
	}
}

/* getppid(2) announcements, reading the fake interpreter's frames. */
static void fake_layout(struct hk_tramp_spec *s)
{
	s->sys_nr = SYS_getppid;
	s->py.tstate = U(&fake_running);
	s->py.walk = U(walk_word);
	s->py.cframe = F_CFRAME;
	s->py.current_frame = F_CURRENT;
	s->py.code = F_CODE;
	s->py.previous = F_PREV;
	s->py.instr = F_INSTR;
	s->py.owner = F_OWNER;
	add_class(s, 128, 0.0);		/* never; >= 128 always */
}

static void sys_env(struct env *e)
{
	env_init(e);
	fake_layout(&e->s);
	env_load(e);
	fake_interpreter();
	trap_getppid();
}

/* One sampled allocation: the block back, tagged, the raw function called
 * once for 16 bytes more, then one getppid(2) with rsi = the block and
 * rdx = the size; returns what rdi carried. */
static uint64_t sys_alloc(struct env *e, int entry, uint64_t size)
{
	static struct fake f;
	uint64_t p = fake_block(&f, 520, false), r;

	tramp_t_ret = p;
	memset(&sysrec, 0, sizeof(sysrec));
	r = call(e, entry, 0x0b1ec7, size, ARG3);
	cr_assert_eq(r, p, "result not passed back");
	cr_assert(has_tag(p), "block not tagged");
	cr_assert_eq(tramp_t_nlog, 1, "%u stub calls", tramp_t_nlog);
	assert_call(&tramp_t_log[0], P_RAW_MALLOC, MAGIC, size + 16, ARG3, 4);
	cr_assert_eq(sysrec.n, 1, "%u system calls", sysrec.n);
	cr_assert_eq(sysrec.nr, SYS_getppid);
	cr_assert_eq(sysrec.rsi, p, "announced block");
	cr_assert_eq(sysrec.rdx, size, "announced size");
	return sysrec.rdi;
}

/* The frames announced are the fake interpreter's, from the top. */
static void assert_frames(unsigned n, unsigned total)
{
	cr_assert_eq(sysrec.r8, n, "%llu frames captured, not %u",
		     (unsigned long long)sysrec.r8, n);
	cr_assert_eq(sysrec.r9, total, "%llu frames in all, not %u",
		     (unsigned long long)sysrec.r9, total);
	for (unsigned i = 0; i < n; i++) {
		uint64_t code;
		int32_t off;

		memcpy(&code, sysrec.frames + 16 * i, 8);
		memcpy(&off, sysrec.frames + 16 * i + 8, 4);
		cr_assert_eq(code, 0x7000000000ull + 0x1000 * i, "frame %u code", i);
		cr_assert_eq(off, i ? 200 + 2 * (int)i : 190, "frame %u instr_off", i);
		cr_assert_eq(sysrec.frames[16 * i + 12], i, "frame %u owner", i);
		for (int k = 13; k < 16; k++)
			cr_assert_eq(sysrec.frames[16 * i + k], 0, "frame %u pad", i);
	}
}

/* With a system call and the interpreter's layout, a sampled object-domain
 * block is announced with the frames its caller is running, read by the
 * trampoline: as many as the walk word says, and the count of the rest
 * if asked; raw-domain blocks (no GIL) and a walk word of 0 or too big
 * are announced without frames (BPF walks then). */
Test(trampoline, sys_announcements_carry_frames)
{
	struct env e;

	sys_env(&e);
	walk_word[0] = 16 * 3;
	walk_word[1] = 65535;
	cr_assert_eq(sys_alloc(&e, HK_TE_OBJ_MALLOC, 200), MAGIC + HK_ANN_FRAMES);
	assert_frames(3, NFAKE);
	walk_word[1] = 0;
	cr_assert_eq(sys_alloc(&e, HK_TE_OBJ_MALLOC, 300), MAGIC + HK_ANN_FRAMES);
	assert_frames(3, 3);
	walk_word[0] = 16 * HK_TRAMP_WALK_MAX;
	cr_assert_eq(sys_alloc(&e, HK_TE_OBJ_MALLOC, 512), MAGIC + HK_ANN_FRAMES);
	assert_frames(NFAKE, NFAKE);
	/* no thread state, no cframe: no frames */
	fake_running = 0;
	cr_assert_eq(sys_alloc(&e, HK_TE_OBJ_MALLOC, 200), MAGIC + HK_ANN_FRAMES);
	assert_frames(0, 0);
	fake_running = U(fake_ts);
	put64(fake_ts + F_CFRAME, 0);
	cr_assert_eq(sys_alloc(&e, HK_TE_OBJ_MALLOC, 200), MAGIC + HK_ANN_FRAMES);
	assert_frames(0, 0);
	put64(fake_ts + F_CFRAME, U(fake_cf));
	/* the raw domain, and walk words that turn it off */
	cr_assert_eq(sys_alloc(&e, HK_TE_RAW_MALLOC, 200), MAGIC + HK_ANN_ALLOC);
	walk_word[0] = 0;
	cr_assert_eq(sys_alloc(&e, HK_TE_OBJ_MALLOC, 200), MAGIC + HK_ANN_ALLOC);
	walk_word[0] = 16 * (HK_TRAMP_WALK_MAX + 1);
	cr_assert_eq(sys_alloc(&e, HK_TE_OBJ_MALLOC, 200), MAGIC + HK_ANN_ALLOC);
	env_check_clean(&e);
}

/* ---- ring mode ---- */

#define F_TID 0x98
static uint64_t ring_words[3];		/* the ring, its bytes, records lost */

static void ring_env(struct env *e, uint64_t bytes)
{
	env_init(e);
	fake_layout(&e->s);
	e->s.py.thread_id = F_TID;
	e->s.ring = U(ring_words);
	env_load(e);
	fake_interpreter();
	put64(fake_ts + F_TID, (uint64_t)pthread_self());	/* we hold the GIL */
	ring_words[0] = ring_words[2] = 0;
	ring_words[1] = bytes;
	walk_word[0] = 16 * 3;
	walk_word[1] = 65535;
	trap_getppid();
}

/* The record at logical position pos, checked complete. */
static const struct hk_ring_rec *rec_at(uint64_t pos)
{
	const uint8_t *ring = (const uint8_t *)(uintptr_t)ring_words[0];
	uint64_t size;
	const struct hk_ring_rec *r;

	memcpy(&size, ring + HK_RING_SIZE, 8);
	r = (const void *)(ring + HK_RING_HEADER + (pos & (size - 1)));
	cr_assert_eq(r->pos, pos + 1, "record at %llu not complete",
		     (unsigned long long)pos);
	return r;
}

static uint64_t ring_word(unsigned off)
{
	uint64_t v;

	memcpy(&v, (const uint8_t *)(uintptr_t)ring_words[0] + off, 8);
	return v;
}

static uint64_t ring_alloc_call(struct env *e, struct fake *f, int entry,
				uint64_t size)
{
	uint64_t p = fake_block(f, 520, false);

	tramp_t_ret = p;
	memset(&sysrec, 0, sizeof(sysrec));
	cr_assert_eq(call(e, entry, 0x0b1ec7, size, ARG3), p);
	cr_assert(has_tag(p), "block not tagged");
	return p;
}

/* Ring mode: the first announcement maps the ring (mmap(2)); a sampled
 * block whose thread holds the GIL is one record with its frames and no
 * system call; without the GIL (another thread's state is running) one
 * record whose stack BPF walks at a getppid(2) made before it is
 * complete; a tagged block's free, and the old block of a realloc (a free
 * if it succeeded, nothing if it failed: tagged back), one record each; a
 * full ring drops (counted) and never waits; no ring: counted. */
Test(trampoline, ring_records)
{
	static struct fake f1, f2, f3;
	const struct hk_ring_rec *r;
	struct env e;
	uint64_t p, pos = 0;

	ring_env(&e, 4096);
	p = ring_alloc_call(&e, &f1, HK_TE_OBJ_MALLOC, 200);
	cr_assert_gt(ring_words[0], 3, "no ring mapped");
	cr_assert_eq(sysrec.n, 0, "a system call");
	r = rec_at(pos);
	cr_assert_eq(r->type, HK_ANN_FRAMES);
	cr_assert_eq(r->addr, p);
	cr_assert_eq(r->size, 200);
	cr_assert_eq(r->nframes, 3);
	cr_assert_eq(r->total, NFAKE);
	cr_assert_eq(r->len16, (sizeof(*r) + 16 * 3) / 16);
	memcpy(sysrec.frames, r + 1, 16 * 3);
	sysrec.r8 = 3;
	sysrec.r9 = NFAKE;
	assert_frames(3, NFAKE);
	pos += 16u * r->len16;
	cr_assert_eq(ring_word(HK_RING_HEAD), pos);

	/* raw domain, GIL held: frames too */
	p = ring_alloc_call(&e, &f2, HK_TE_RAW_MALLOC, 20000);
	r = rec_at(pos);
	cr_assert_eq(r->type, HK_ANN_FRAMES);
	cr_assert_eq(r->addr, p);
	cr_assert_eq(r->size, 20000);
	pos += 16u * r->len16;

	/* another thread's state is running: BPF walks, keyed by the record */
	put64(fake_ts + F_TID, 12345);
	p = ring_alloc_call(&e, &f3, HK_TE_RAW_MALLOC, 300);
	cr_assert_eq(sysrec.n, 1);
	cr_assert_eq(sysrec.rdi, MAGIC + HK_ANN_WALK);
	cr_assert_eq(sysrec.rsi, pos + 1, "walk key is not the commit word");
	r = rec_at(pos);
	cr_assert_eq(r->type, HK_ANN_WALK);
	cr_assert_eq(r->addr, p);
	cr_assert_eq(r->size, 300);
	cr_assert_eq(r->len16, sizeof(*r) / 16);
	pos += sizeof(*r);
	put64(fake_ts + F_TID, (uint64_t)pthread_self());

	/* the tagged block's free: a record, then free itself */
	call(&e, HK_TE_RAW_FREE, 0x0b1ec7, p, ARG3);
	assert_passed(P_RAW_FREE, 0x0b1ec7, p, ARG3);
	cr_assert(!has_tag(p));
	r = rec_at(pos);
	cr_assert_eq(r->type, HK_ANN_FREE);
	cr_assert_eq(r->addr, p);
	pos += sizeof(*r);

	/* realloc of a tagged block to an unsampled size: the old block's
	 * end, a free; when realloc fails, nothing, and the block keeps its
	 * tag */
	p = U(f1.mem + 16);
	cr_assert(has_tag(p));
	tramp_t_ret = 0x12340;
	cr_assert_eq(call(&e, HK_TE_RAW_REALLOC, 0x0b1ec7, p, 64), 0x12340);
	r = rec_at(pos);
	cr_assert_eq(r->type, HK_ANN_FREE);
	cr_assert_eq(r->addr, p);
	pos += sizeof(*r);
	put_tag(p);
	tramp_t_ret = 0;
	cr_assert_eq(call(&e, HK_TE_RAW_REALLOC, 0x0b1ec7, p, 64), 0);
	r = rec_at(pos);
	cr_assert_eq(r->type, HK_ANN_SKIP);
	cr_assert(has_tag(p), "not tagged back");
	pos += sizeof(*r);
	/* ... to a sampled size: the old block's free, then the new block
	 * (32 frames asked for, 5 there: a record of 5) */
	walk_word[0] = 16 * HK_TRAMP_WALK_MAX;
	p = U(f2.mem + 16);
	cr_assert(has_tag(p));
	tramp_t_ret = U(f3.mem + 16);
	cr_assert_eq(call(&e, HK_TE_RAW_REALLOC, 0x0b1ec7, p, 1000), tramp_t_ret);
	r = rec_at(pos);
	cr_assert_eq(r->type, HK_ANN_FREE);
	cr_assert_eq(r->addr, p);
	pos += sizeof(*r);
	r = rec_at(pos);
	cr_assert_eq(r->type, HK_ANN_FRAMES);
	cr_assert_eq(r->addr, tramp_t_ret);
	cr_assert_eq(r->size, 1000);
	cr_assert_eq(r->nframes, NFAKE);
	cr_assert_eq(r->len16, (sizeof(*r) + 16 * NFAKE) / 16);
	walk_word[0] = 16 * 3;
	pos += 16u * r->len16;
	cr_assert_eq(ring_word(HK_RING_HEAD), pos);
	cr_assert_eq(ring_word(HK_RING_DROPPED), 0);

	/* nobody reads it: full at 4096 bytes; records dropped, counted */
	for (int i = 0; i < 100; i++)
		ring_alloc_call(&e, &f1, HK_TE_OBJ_MALLOC, 200);
	cr_assert_leq(ring_word(HK_RING_HEAD), 4096);
	cr_assert_gt(ring_word(HK_RING_DROPPED), 40);
	cr_assert_eq(ring_words[2], 0);
	munmap((void *)(uintptr_t)ring_words[0], HK_RING_HEADER + 4096 + HK_RING_SLACK);

	/* no ring to be had (0 bytes asked): counted, the block still served */
	ring_words[0] = 0;
	ring_words[1] = 0;
	ring_alloc_call(&e, &f1, HK_TE_OBJ_MALLOC, 200);
	cr_assert_eq(ring_words[0], 0);
	cr_assert_eq(ring_words[2], 1);
	env_check_clean(&e);
}

/* Without tags (not glibc): the sampled path is a tail jump, unpadded. */
Test(trampoline, untagged_mode_tail_jumps)
{
	struct env e;
	uint64_t st = SEED;

	env_init(&e);
	e.s.raw = e.s.tagging = false;
	add_class(&e.s, 256, 1.0);
	add_class(&e.s, 1000, 0.0);
	env_load(&e);
	st = xorshift(st);
	cr_assert_eq(call(&e, HK_TE_OBJ_MALLOC, 5, 100, ARG3), 0);
	cr_assert_eq(tramp_t_rec.path, P_PROBE_MALLOC);
	cr_assert_eq(tramp_t_rec.rdi, RAW_CTX);
	cr_assert_eq(tramp_t_rec.rsi, 100);
	cr_assert_eq(tramp_t_rec.r11, MAGIC);
	cr_assert_eq(tramp_t_rec.r10, st);
	cr_assert_eq(tramp_t_rec.rsp, tramp_t_call_rsp - 8, "not a tail jump");
	st = xorshift(st);
	call(&e, HK_TE_OBJ_CALLOC, 5, 10, 10);
	cr_assert_eq(tramp_t_rec.path, P_PROBE_CALLOC);
	cr_assert_eq(tramp_t_rec.rsi, 10);
	cr_assert_eq(tramp_t_rec.rdx, 10);
	st = xorshift(st);
	call(&e, HK_TE_OBJ_MALLOC, 5, 300, ARG3);
	assert_passed(P_REAL_MALLOC, 5, 300, ARG3);
	env_check_clean(&e);
}

/* Frees and reallocs of tagged (traced) blocks reach their probes; the
 * tag is removed first, since the memory will be reused. */
Test(trampoline, tagged_blocks_free_and_realloc)
{
	static struct fake f, g;
	struct env e;
	uint64_t st = SEED, p, q;

	env_init(&e);
	add_class(&e.s, 1000, 0.0);	/* < 1000 never, >= 1000 always */
	env_load(&e);
	for (int mm = 0; mm < 2; mm++) {
		p = fake_block(&f, mm ? 8160 : 40, mm);
		put_tag(p);
		call(&e, HK_TE_RAW_FREE, 9, p, ARG3);
		cr_assert_eq(tramp_t_rec.path, P_PROBE_FREE);
		cr_assert_eq(tramp_t_rec.rsi, p);
		cr_assert_eq(tramp_t_rec.rsp, tramp_t_call_rsp - 8);
		cr_assert_not(has_tag(p), "tag left on a freed block");
		call(&e, HK_TE_RAW_FREE, 9, p, ARG3);	/* now untagged */
		assert_passed(P_RAW_FREE, 9, p, ARG3);
	}
	cr_assert_eq(e.state[0], st, "a free drew");

	/* Realloc of a traced block, result unsampled (< 1000): the old
	 * block's end is announced first (free probe, NULL, rdx = old,
	 * magic + 3), then the real realloc gets the call unpadded and
	 * unmarked; the result is not tagged. */
	p = fake_block(&f, 520, false);
	put_tag(p);
	tramp_t_ret = q = fake_block(&g, 40, false);
	st = xorshift(st);
	cr_assert_eq(call(&e, HK_TE_RAW_REALLOC, RAW_CTX, p, 30), q);
	cr_assert_eq(tramp_t_nlog, 2, "%u stub calls", tramp_t_nlog);
	assert_call(&tramp_t_log[0], P_PROBE_FREE, MAGIC + 3, 0, p, 4);
	assert_call(&tramp_t_log[1], P_RAW_REALLOC, 0, p, 30, 2);
	cr_assert_not(has_tag(p));
	cr_assert_not(has_tag(q));
	cr_assert_eq(e.state[0], st);
	/* ... and if it fails, the old block is tagged again and announced
	 * back (magic + 4). */
	put_tag(p);
	tramp_t_ret = 0;
	st = xorshift(st);
	cr_assert_eq(call(&e, HK_TE_RAW_REALLOC, RAW_CTX, p, 30), 0);
	cr_assert_eq(tramp_t_nlog, 3, "%u stub calls", tramp_t_nlog);
	assert_call(&tramp_t_log[0], P_PROBE_FREE, MAGIC + 3, 0, p, 4);
	assert_call(&tramp_t_log[1], P_RAW_REALLOC, 0, p, 30, 2);
	assert_call(&tramp_t_log[2], P_PROBE_FREE, MAGIC + 4, 0, p, 2);
	cr_assert(has_tag(p), "old block lost its tag on a failed realloc");
	/* Result sampled (>= 1000): padded, nonce, result tagged. */
	tramp_t_ret = q = fake_block(&g, 4072, false);
	st = xorshift(st);
	cr_assert_eq(call(&e, HK_TE_RAW_REALLOC, RAW_CTX, p, 4000), q);
	assert_called(P_PROBE_REALLOC, MAGIC, p, 4016);
	cr_assert_eq(tramp_t_rec.r10, st);
	cr_assert(has_tag(q));
	cr_assert_not(has_tag(p));
	/* ... and if it fails, the old block is tagged again. */
	tramp_t_ret = 0;
	st = xorshift(st);
	cr_assert_eq(call(&e, HK_TE_RAW_REALLOC, RAW_CTX, q, 5000), 0);
	assert_called(P_PROBE_REALLOC, MAGIC, q, 5016);
	cr_assert(has_tag(q));
	cr_assert_eq(e.state[0], st);
	env_check_clean(&e);
}

/* pymalloc's realloc (mem and object domains) draws for the new size.
 * Unsampled: a tail jump. Sampled: the real realloc, then its result is
 * moved into a sampled block (raw, tagged, announced) and freed by
 * pymalloc; unless the call reached the raw domain (its count moved),
 * which drew for it itself. Failures keep what the caller would get. */
Test(trampoline, object_realloc_draws)
{
	static struct fake f;
	static uint8_t q[600] __attribute__((aligned(16)));
	struct env e;
	uint64_t ctx = 0x0b1ec7c7c7c7c7c7ull, old = 0x7777000010, st = SEED, r;
	uint64_t *seq;

	env_init(&e);
	add_class(&e.s, 64, 0.0);	/* never */
	add_class(&e.s, 256, 1.0);	/* always */
	add_class(&e.s, 300, 0.0);	/* never; >= 300 always */
	env_load(&e);
	seq = (uint64_t *)((uint8_t *)e.state + SEQ_OFF);
	for (size_t i = 0; i < sizeof(q); i++)
		q[i] = (uint8_t)(i * 7 + 1);

	/* no draw for 0 or past pymalloc's sizes (those reach the raw
	 * domain, which draws) */
	static const uint64_t skip[] = { 0, 513, 1 << 20, UINT64_MAX };
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
		call(&e, HK_TE_OBJ_REALLOC, ctx, old, skip[i]);
		assert_passed(P_OBJ_REALLOC, ctx, old, skip[i]);
	}
	cr_assert_eq(e.state[0], st, "drew for a size it must not");
	/* unsampled sizes: one draw, a tail jump */
	st = xorshift(st);
	call(&e, HK_TE_OBJ_REALLOC, ctx, old, 63);
	assert_passed(P_OBJ_REALLOC, ctx, old, 63);
	st = xorshift(st);
	call(&e, HK_TE_OBJ_REALLOC, ctx, 0, 299);	/* realloc(NULL) */
	assert_passed(P_OBJ_REALLOC, ctx, 0, 299);
	cr_assert_eq(e.state[0], st);

	/* sampled, pymalloc's block: moved into a tagged raw block */
	tramp_t_ret_or = U(q);
	tramp_t_ret = r = fake_block(&f, 520, false);
	st = xorshift(st);
	cr_assert_eq(call(&e, HK_TE_OBJ_REALLOC, ctx, old, 100), r);
	cr_assert_eq(tramp_t_nlog, 4, "%u stub calls", tramp_t_nlog);
	cr_assert_eq(tramp_t_log[0].path, P_OBJ_REALLOC);
	cr_assert_eq(tramp_t_log[0].rdi, ctx);
	cr_assert_eq(tramp_t_log[0].rsi, old);
	cr_assert_eq(tramp_t_log[0].rdx, 100);
	cr_assert_eq(tramp_t_log[0].r11, 0, "marker left for the real realloc");
	cr_assert_eq((tramp_t_log[0].rsp + 8) % 16, 0, "misaligned call");
	cr_assert_eq(tramp_t_log[1].path, P_RAW_MALLOC);
	cr_assert_eq(tramp_t_log[1].rdi, RAW_CTX);
	cr_assert_eq(tramp_t_log[1].rsi, 116, "not padded for the tag");
	cr_assert_eq(tramp_t_log[1].r11, MAGIC);
	cr_assert_eq((tramp_t_log[1].rsp + 8) % 16, 0, "misaligned call");
	cr_assert_eq(tramp_t_log[2].path, P_PROBE_FREE, "not announced");
	cr_assert_eq(tramp_t_log[2].r11, MAGIC + 2);
	cr_assert_eq(tramp_t_log[2].rdx, r);
	cr_assert_eq(tramp_t_log[2].rcx, 100, "announced size");
	cr_assert_eq(tramp_t_log[2].r10, st, "nonce");
	cr_assert_eq(tramp_t_log[3].path, P_OBJ_FREE);
	cr_assert_eq(tramp_t_log[3].rdi, ctx);
	cr_assert_eq(tramp_t_log[3].rsi, U(q), "pymalloc's block not freed");
	cr_assert_eq(tramp_t_log[3].r11, 0);
	cr_assert_eq((tramp_t_log[3].rsp + 8) % 16, 0, "misaligned call");
	cr_assert(has_tag(r), "block not tagged");
	cr_assert_arr_eq((void *)(uintptr_t)r, q, 100, "contents not moved");
	for (uint64_t k = 100; k < usable_of(r) - 16; k++)
		cr_assert_eq(((uint8_t *)(uintptr_t)r)[k], 0x77, "byte %llu written",
			     (unsigned long long)k);
	cr_assert_eq(e.state[0], st);

	/* sampled, but pymalloc handed the call to the raw domain: its
	 * result as it is */
	tramp_t_bump = U(seq);
	st = xorshift(st);
	cr_assert_eq(call(&e, HK_TE_OBJ_REALLOC, ctx, old, 200), U(q));
	cr_assert_eq(tramp_t_nlog, 1, "%u stub calls", tramp_t_nlog);
	cr_assert_eq(tramp_t_rec.path, P_OBJ_REALLOC);
	tramp_t_bump = 0;
	/* sampled, the real realloc fails: NULL, nothing else */
	tramp_t_ret_or = 0;
	st = xorshift(st);
	cr_assert_eq(call(&e, HK_TE_OBJ_REALLOC, ctx, old, 200), 0);
	cr_assert_eq(tramp_t_nlog, 1, "%u stub calls", tramp_t_nlog);
	/* sampled, no raw block to be had: pymalloc's block, unsampled */
	tramp_t_ret_or = U(q);
	tramp_t_ret = 0;
	st = xorshift(st);
	cr_assert_eq(call(&e, HK_TE_OBJ_REALLOC, ctx, old, 200), U(q));
	cr_assert_eq(tramp_t_nlog, 2, "%u stub calls", tramp_t_nlog);
	cr_assert_eq(tramp_t_log[1].path, P_RAW_MALLOC);
	cr_assert_eq(e.state[0], st);

	/* every raw realloc moves the count */
	uint64_t before = *seq;
	st = xorshift(st);
	call(&e, HK_TE_RAW_REALLOC, ctx, 0, 10);
	assert_passed(P_RAW_REALLOC, ctx, 0, 10);
	cr_assert_eq(*seq, before + 1);
	cr_assert_eq(e.state[0], st);
	env_check_clean(&e);

	/* without the raw domain (no tags to tell a sampled block by): no
	 * such entry */
	env_init(&e);
	e.s.raw = false;
	env_load(&e);
	cr_assert_eq(e.o.entry[HK_TE_OBJ_REALLOC], SIZE_MAX);
}

/* Ring mode: a sampled pymalloc realloc is recorded as its new block's
 * allocation, with the frames. */
Test(trampoline, ring_object_realloc)
{
	static struct fake f;
	static uint8_t q[256] __attribute__((aligned(16)));
	const struct hk_ring_rec *r;
	struct env e;
	uint64_t b = fake_block(&f, 520, false);

	ring_env(&e, 4096);
	memset(q, 0x3c, sizeof(q));
	tramp_t_ret_or = U(q);
	tramp_t_ret = b;
	cr_assert_eq(call(&e, HK_TE_OBJ_REALLOC, 0x0b1ec7, 0x7777000010, 200), b);
	cr_assert_eq(sysrec.n, 0, "a system call");
	r = rec_at(0);
	cr_assert_eq(r->type, HK_ANN_FRAMES);
	cr_assert_eq(r->addr, b);
	cr_assert_eq(r->size, 200);
	cr_assert_eq(r->nframes, 3);
	cr_assert_eq(ring_word(HK_RING_HEAD), 16u * r->len16);
	cr_assert(has_tag(b));
	cr_assert_arr_eq((void *)(uintptr_t)b, q, 200);
	cr_assert_eq(tramp_t_rec.path, P_OBJ_FREE);
	cr_assert_eq(tramp_t_rec.rsi, U(q));
	/* unsampled (under 128): a tail jump, no record */
	call(&e, HK_TE_OBJ_REALLOC, 0x0b1ec7, 0x7777000010, 100);
	assert_passed(P_OBJ_REALLOC, 0x0b1ec7, 0x7777000010, 100);
	cr_assert_eq(ring_word(HK_RING_HEAD), 16u * r->len16);
	munmap((void *)(uintptr_t)ring_words[0], HK_RING_HEADER + 4096 + HK_RING_SLACK);
}

static void check_model(struct env *e_, unsigned min_each);

/* Every decision and nonce, against the model, on random calls. */
Test(trampoline, matches_model)
{
	struct env e;

	env_init(&e);
	add_class(&e.s, 16, 0.5);
	add_class(&e.s, 64, 0.25);
	add_class(&e.s, 100, 0.0);
	add_class(&e.s, 128, 1.0);
	add_class(&e.s, 129, 0.75);
	add_class(&e.s, 400, 0.9999);
	add_class(&e.s, 5000, 0.3);
	env_load(&e);
	check_model(&e, 10000);
}

/* Sampling by bytes: random < size * mult, for periods whose mult is
 * small, large, and 2^32 (N = 1: everything). */
Test(trampoline, matches_model_by_bytes)
{
	static const uint64_t periods[] = { 300, 4096, 1, 524288 };

	for (size_t i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
		struct env e;

		env_init(&e);
		e.s.by_bytes = true;
		e.s.bytes_mult = ((1ULL << 32) + periods[i] - 1) / periods[i];
		env_load(&e);
		check_model(&e, periods[i] == 1 || periods[i] == 524288 ? 0 : 10000);
		munmap(e.map, 4 * (size_t)e.pg);
	}
}

static void check_model(struct env *e_, unsigned min_each)
{
	static struct fake f;
	struct env e = *e_;
	uint64_t st = SEED, rng = 0x12345678abcdefull, p;
	unsigned counts[3] = { 0 };
	static const int entries[] = { HK_TE_OBJ_MALLOC, HK_TE_OBJ_CALLOC,
					HK_TE_RAW_MALLOC, HK_TE_RAW_CALLOC,
					HK_TE_RAW_REALLOC, HK_TE_OBJ_REALLOC };
	static const int real[] = { P_REAL_MALLOC, P_REAL_CALLOC, P_RAW_MALLOC,
				    P_RAW_CALLOC, P_RAW_REALLOC, P_OBJ_REALLOC };
	/* the object realloc: its real function, then the raw one */
	static const int sampled[] = { P_RAW_MALLOC, P_RAW_CALLOC, P_RAW_MALLOC,
				       P_RAW_CALLOC, P_RAW_REALLOC, P_RAW_MALLOC };

	p = fake_block(&f, 1000, false);
	for (int i = 0; i < 300000; i++) {
		uint64_t a, b2, r;
		int m, k;

		rng = xorshift(rng);
		r = rng;
		k = (int)((r >> 60) % 6);
		switch ((r >> 1) & 7) {	/* sizes around every edge */
		case 0: a = (r >> 8) % 4; break;
		case 1: a = 510 + (r >> 8) % 5; break;
		case 2: a = r >> 4; break;
		case 3: a = 4990 + (r >> 8) % 20; break;
		default: a = (r >> 8) % 520; break;
		}
		b2 = (r >> 40) & 1 ? (r >> 41) % 40 : r >> 30;
		if (entries[k] == HK_TE_RAW_REALLOC ||
		    entries[k] == HK_TE_OBJ_REALLOC) {
			b2 = a;
			a = (r >> 50) & 1 ? p : 0;
		} else if (entries[k] != HK_TE_OBJ_CALLOC &&
			   entries[k] != HK_TE_RAW_CALLOC) {
			b2 = ARG3;
		}
		m = model(&e.s, &st, entries[k], a, b2);
		counts[m]++;
		tramp_t_ret = 0;
		tramp_t_ret_or = 0x5555000;	/* never read: no block to move to */
		call(&e, entries[k], RAW_CTX, a, b2);
		if (m == M_SAMPLED) {
			/* raw mode, NULL back: the raw function alone */
			cr_assert_eq(tramp_t_rec.path, sampled[k], "call %d", i);
			cr_assert_eq(tramp_t_rec.r11, MAGIC);
			cr_assert_eq(tramp_t_rec.r10, st);
		} else {
			assert_passed(real[k], RAW_CTX, a, b2);
		}
		cr_assert_eq(e.state[0], st, "call %d (entry %d %llu %llu)", i,
			     entries[k], (unsigned long long)a,
			     (unsigned long long)b2);
	}
	cr_log_info("model: %u skipped, %u unsampled, %u sampled\n",
		    counts[0], counts[1], counts[2]);
	cr_assert_gt(counts[M_SKIP], 10000);
	cr_assert_geq(counts[M_UNSAMPLED], min_each);
	cr_assert_geq(counts[M_SAMPLED], min_each);
	env_check_clean(&e);
}

/* The sampled fraction of each class is its probability (±5 sigma). */
Test(trampoline, sampling_rates, .timeout = 60)
{
	struct env e;
	static const struct { uint64_t lo, hi; double p; long n; int entry; } cls[] = {
		{ 1, 64, 0.1, 1000000, HK_TE_OBJ_MALLOC },
		{ 64, 256, 0.01, 1000000, HK_TE_OBJ_MALLOC },
		{ 256, 512, 0.0001, 10000000, HK_TE_OBJ_MALLOC },
		{ 512, 513, 1.0, 100000, HK_TE_RAW_MALLOC },
		{ 1, 64, 0.1, 1000000, HK_TE_OBJ_CALLOC },
		{ 256, 512, 0.0001, 10000000, HK_TE_OBJ_CALLOC },
		{ 64, 256, 0.01, 1000000, HK_TE_RAW_MALLOC },
		{ 64, 256, 0.01, 1000000, HK_TE_RAW_REALLOC },
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
			uint64_t size = cls[c].lo + (uint64_t)i % span;

			if (cls[c].entry == HK_TE_RAW_REALLOC)
				call(&e, cls[c].entry, 0, 0, size);
			else
				call(&e, cls[c].entry, 0, size, 1);
			sampled += tramp_t_rec.r11 == MAGIC;
		}
		np = cls[c].n * cls[c].p;
		sd = sqrt(np * (1 - cls[c].p));
		cr_log_info("sizes [%llu,%llu) entry %d: %llu of %ld sampled, expected %.1f ± %.1f\n",
			    (unsigned long long)cls[c].lo, (unsigned long long)cls[c].hi,
			    cls[c].entry, (unsigned long long)sampled, cls[c].n, np, sd);
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
		if (i & 1)
			call(e, HK_TE_OBJ_CALLOC, 1, (uint64_t)i % 40, 3);
		else
			call(e, HK_TE_OBJ_MALLOC, 1, (uint64_t)i % 700, ARG3);
		if (tramp_t_rec.path < 1 || tramp_t_rec.path >= P_N)
			return (void *)1;
	}
	return NULL;
}

/* Racing threads share the state word: they may lose randomness, never
 * memory safety. (The stubs' records race too: only their range is
 * checked.) */
Test(trampoline, threads_race_safely)
{
	struct env e;
	pthread_t t[4];

	env_init(&e);
	e.s.raw = e.s.tagging = false;	/* the stubs return NULL: nothing to tag */
	add_class(&e.s, 64, 0.5);
	env_load(&e);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, hammer, &e), 0);
	for (int i = 0; i < 4; i++) {
		void *r;

		pthread_join(t[i], &r);
		cr_assert_null(r);
	}
	cr_assert_neq(e.state[0], SEED);
	env_check_clean(&e);
}

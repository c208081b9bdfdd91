// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * hawk-bpf: trace a CPython process's allocations as tracemalloc would.
 *
 * Probes sit on the allocator functions the interpreter's allocator tables
 * point to (see user/plan/probes.c for where exactly, and why). Each allocation
 * records (size, Python stack) in the in-kernel "live" table under the
 * block's address (live.bpf.h); each free takes it out. Stacks are
 * deduplicated by hash in "stacks" and announced once on a ring buffer so
 * user space can symbolize their code objects while they are still alive.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "hawk.h"
#include "samplebytes.h"

/* Interpreter layout and limits, set by the loader before load. */
const volatile struct hk_py_layout L = {};
const volatile __u32 capture_frames = 32;
const volatile __u32 frames_limit = 30;	/* --frames */
const volatile __u32 count_total = 1;
/* --stats: count sizes per domain, no stacks, no live blocks. */
const volatile __u32 stats_mode = 0;
/* enum hk_domain_kind of each probe site (by cookie slot). */
const volatile __u8 site_domain[HK_MAX_PROBES] = {};
/* --sample: only raw-domain sites are probed; a raw allocation is kept if
 * the trampoline sampled it (r11 = sample_magic, r10 a fresh nonce; it then
 * asked for sample_pad more bytes than its caller, room for its tag) or,
 * for one made directly, with its size class's probability. With
 * sample_raw the trampoline stands in front of the raw domain too: every
 * raw allocation reaching a probe was sent by it; the blocks it samples
 * otherwise are announced through the free probe (see announced()), and
 * so is the unsampled realloc of a traced block (realloc_announced()).
 * Every allocation, realloc included, is its own draw, so a live block is
 * in the sample with the probability of the class it was last drawn in. */
const volatile __u32 sample_mode = 0;
const volatile __u64 sample_magic = 0;
const volatile __u32 sample_pad = 0;
const volatile __u32 sample_raw = 0;
const volatile __u32 sample_nclasses = 0;
const volatile __u64 sample_bound[8] = {};
const volatile __u64 sample_thresh[8] = {};	/* 2^32: always */
/* --sample-bytes: N (0: by classes), the trampoline's multiplier, and
 * the table of include/samplebytes.h. A block the trampoline sampled with
 * p1 is kept with p / p1; one BPF draws for is kept with p. */
/* --sample, raw domain switched, announcing by system call or ring: a
 * sampled call is announced after the raw function returns, but for the
 * realloc of a traced block without a ring (it goes through the realloc
 * probe, padded, and is recorded there). A probe inside that function (no padding to
 * probe) sees the marked call first, and leaves it to the announcement:
 * one record and one draw, where two would count it twice (and, by
 * bytes, keep it with 1 - (1 - q)^2). */
const volatile __u32 sample_sys = 0;
const volatile __u64 sample_period = 0;
const volatile __u64 sample_mult = 0;
const volatile __u64 sample_ptab[HK_SB_TAB] = {};
/* The target's pid namespace (dev, ino of /proc/PID/ns/pid) and its
 * thread group id there: announcements by system call (sys_announce) are
 * the target's when the caller is that tgid in that namespace, and the
 * thread states' native_thread_id are ids in it. pidns_init: it is the
 * initial namespace, whose ids bpf_get_current_pid_tgid() gives. */
const volatile __u32 target_tgid = 0;
const volatile __u64 pidns_dev = 0;
const volatile __u64 pidns_ino = 0;
const volatile __u32 pidns_init = 1;
/* --sample, ring mode: address of the trampoline's ring word in the
 * target (the ring's address once it is mapped; 0..3 before). */
const volatile __u64 ring_word = 0;
/* pprof's alloc_objects/alloc_space: every traced allocation of the
 * window, freed or not, summed by stack id in "allocated". */
const volatile __u32 count_allocs = 0;
/* Benchmarks only: probes fire and return at once (the uprobe floor). */
const volatile __u32 bare = 0;

/* Set when the interpreter starts finalizing: the report then shows what
 * was alive when the target began to exit, not what its teardown left. */
volatile __u32 frozen = 0;
/* Ring mode: the ring's head when the interpreter began finalizing; the
 * drain applies no record from there on. */
volatile __u64 frozen_pos = ~0ULL;
/* Ring mode: the ring's head as the target called exit_group(2) (0: not
 * seen); then records up to it are all there was. */
volatile __u64 exit_pos = 0;
/* Set when the target execs: its old image's blocks are what the report
 * holds, and nothing is recorded with the new one's addresses. */
volatile __u32 execd = 0;

/* Next dense stack id (0 means "no Python frames"). */
__u32 next_stack_id = 0;

struct args {
	__u64 a;
	__u64 b;
	__u64 old;		/* realloc: the block as it was traced */
	__u32 kind;
	__u16 had_old;
	__u16 sampled;		/* --sample: record this allocation */
	__u32 cls;		/* --sample: its class, see HK_BLOCK */
	__u32 pad;
};

/* struct hk_stack cut to capture_frames: value size set at load time, so
 * the map carries no BTF value type. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, sizeof(struct hk_stack));
} stacks SEC(".maps");

/* Arguments of calls in flight, per thread and probe site: the raw
 * allocator runs nested inside the object allocator on the same thread. */
struct inflight {
	struct args site[HK_MAX_PROBES];
	__u32 in_pymalloc;	/* --stats: depth inside a pymalloc call */
	__u64 last_nonce;	/* --sample: the trampoline's last r10 seen */
	__u64 gone_addr;	/* --sample: the traced block a realloc is */
	__u64 gone_blk;		/* taking (0: none), kept until it returns */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hk_stack);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HK_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HK_DK_MAX * HK_HIST_BUCKETS);
	__type(key, __u32);
	__type(value, struct hk_hist_cell);
} hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} new_stacks SEC(".maps");

/* Ring mode: the stack id BPF walked for the record at a ring position
 * (HK_ANN_WALK), until the drain applies the record. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 12);
	__type(key, __u64);
	__type(value, __u32);
} walked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HK_ALLOC_IDS);
	__type(key, __u32);
	__type(value, struct hk_alloc_sum);
} allocated SEC(".maps");

/* The Q32 probability a block of this size in class cls (HK_BLOCK) was
 * kept with: 2^32 unsampled or always sampled. */
static __always_inline __u64 block_thresh(__u32 cls, __u64 size)
{
	if (!cls)
		return HK_SB_ONE;
	if (sample_period)
		return hk_sb_threshold(size, sample_period, sample_ptab);
	if (cls > 8)
		return HK_SB_ONE;
	return sample_thresh[(cls - 1) & 7] ?: 1;
}

/* Sums estimates (hk_alloc_sum): each allocation counts 1/p. */
static __always_inline void note_alloc(__u32 stack, __u64 size, __u32 cls)
{
	struct hk_alloc_sum *a;
	__u64 th, n = HK_ALLOC_ONE, bytes = size;

	if (!count_allocs || stack >= HK_ALLOC_IDS)
		return;
	th = block_thresh(cls, size);
	if (th < HK_SB_ONE) {
		n = (HK_ALLOC_ONE << 32) / th;
		bytes = size < (1ULL << 31) ? (size << 32) / th
					    : size * (HK_SB_ONE / th);
	}
	a = bpf_map_lookup_elem(&allocated, &stack);
	if (a) {
		__sync_fetch_and_add(&a->count, n);
		__sync_fetch_and_add(&a->bytes, bytes);
	}
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

#include "live.bpf.h"

static __always_inline __u64 read_ptr(__u64 addr)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		count(HK_CNT_READ_ERR);
	return v;
}

#define TS_BUF 128

/* Whether ts is thread tid's PyThreadState; if so its cframe pointer (the
 * thread state itself where there is none) in *cf. One read covers both
 * fields when they are close, as they are in 3.11: every read of the target
 * costs ~45 ns here, and this runs on every traced allocation. */
static __always_inline int tstate_is(__u64 ts, __u32 tid, __u64 *cf)
{
	__u64 words[TS_BUF / 8];
	__u8 *buf = (__u8 *)words;
	__u32 c = L.tstate_cframe, t = L.tstate_native_tid;
	__u32 lo = c < t ? c : t, span = (c < t ? t : c) - lo + 8;

	if (!t || !c || span > TS_BUF) {
		/* 3.10 has no native id: thread_id is pthread_self(), glibc's
		 * thread pointer, which is the task's fs base */
		if (t ? (__u32)read_ptr(ts + t) != tid :
			read_ptr(ts + L.tstate_thread_id) !=
			bpf_get_current_task_btf()->thread.fsbase)
			return 0;
		*cf = c ? read_ptr(ts + c) : ts;
		return 1;
	}
	if (bpf_probe_read_user(words, span, (void *)(ts + lo))) {
		count(HK_CNT_READ_ERR);
		return 0;
	}
	if (t - lo > TS_BUF - 8 || c - lo > TS_BUF - 8)
		return 0;
	if (*(__u32 *)(buf + (t - lo)) != tid)
		return 0;
	*cf = *(__u64 *)(buf + (c - lo));
	return 1;
}

/* The calling thread's PyThreadState: the GIL holder when that is us (always
 * so for the mem and object domains), else a walk of the interpreter's
 * thread list, as PyGILState_GetThisThreadState() would find it. Its cframe
 * pointer in *cf. */
static __always_inline __u64 find_tstate(__u32 tid, __u64 *cf)
{
	__u64 ts = L.rt_tstate_current ?
		   read_ptr(L.runtime_addr + L.rt_tstate_current) : 0;

	if (ts && tstate_is(ts, tid, cf))
		return ts;
	ts = read_ptr(L.runtime_addr + L.rt_interp_head);
	if (!ts)
		return 0;
	ts = read_ptr(ts + L.interp_threads_head);
	for (int i = 0; i < 64 && ts; i++) {
		if (tstate_is(ts, tid, cf))
			return ts;
		ts = read_ptr(ts + L.tstate_next);
	}
	return 0;
}

/* Loop state on the BPF stack holds no counters: the verifier checks
 * bpf_loop callbacks until their state converges, which a precisely known
 * counter never does. Counts live in the scratch map value instead. */
struct walk {
	struct hk_stack *st;
	__u64 frame;
	__u64 hash;
};

#define FRAME_BUF HK_FRAME_WINDOW
#define HASH_SEED 0xcbf29ce484222325ULL
#define HASH_PRIME 0x100000001b3ULL

/* A stack's hash: its frames in order (hash_frame), then its size
 * (hash_end; never 0). The same stack hashes the same whoever read it. */
static __always_inline __u64 hash_frame(__u64 h, const struct hk_frame_raw *f)
{
	h = (h ^ f->code) * HASH_PRIME;
	return (h ^ (__u32)f->instr_off ^ ((__u64)f->owner << 32)) * HASH_PRIME;
}

static __always_inline __u64 hash_end(__u64 h, __u16 nframes, __u16 total)
{
	h = (h ^ ((__u64)nframes << 16 | total)) * HASH_PRIME;
	return h ? h : 1;
}

static long walk_frame(__u32 i, struct walk *w)
{
	__u64 words[FRAME_BUF / 8];
	__u8 *buf = (__u8 *)words;
	/* One read from the lowest field needed (hk_pyver_check: all fit). */
	__u32 base = L.frame_base;
	__u32 off_code = L.frame_code - base, off_prev = L.frame_previous - base;
	__u32 off_instr = L.frame_instr - base, off_owner = L.frame_owner - base;
	__u64 code, instr;

	if (!w->frame || i >= capture_frames || i >= HK_MAX_FRAMES)
		return 1;
	if (bpf_probe_read_user(words, sizeof(words), (void *)(w->frame + base))) {
		count(HK_CNT_READ_ERR);
		w->frame = 0;
		return 1;
	}
	if (off_code > FRAME_BUF - 8 || off_prev > FRAME_BUF - 8 ||
	    off_instr > FRAME_BUF - 8 || (L.frame_owner && off_owner > FRAME_BUF - 1))
		return 1;
	code = *(__u64 *)(buf + off_code) & ~(__u64)L.frame_code_tag;
	instr = *(__u64 *)(buf + off_instr);

	/* Keep the mask in the program: the verifier must see the bound. */
	__u64 idx = i;
	asm volatile("%0 &= 255" : "+r"(idx));
	struct hk_frame_raw *f = &w->st->frames[idx];
	f->code = code;
	/* a byte offset: from the code object (the symbolizer takes off
	 * code_adaptive), or 3.10's f_lasti, code units from co_code's start */
	f->instr_off = L.frame_instr_units ? (__s32)(__u32)instr * 2 :
					     (__s32)(instr - code);
	f->owner = L.frame_owner ? buf[off_owner] : 0;
	w->hash = hash_frame(w->hash, f);
	w->st->nframes = i + 1;
	w->frame = *(__u64 *)(buf + off_prev);
	return 0;
}

/* Frames beyond the captured ones, counted into st->beyond, but for the
 * owners that are never frames to tracemalloc (3.13+: the C-stack shim
 * at the bottom of every stack): the owner is read with the link then. */
static long count_frame(__u32 i, struct walk *w)
{
	__u64 words[FRAME_BUF / 8];
	__u8 *buf = (__u8 *)words;
	__u32 base = L.frame_previous, off_owner = L.frame_owner - base;

	if (!w->frame)
		return 1;
	if (!L.owner_incomplete_from) {
		w->st->beyond++;
		w->frame = read_ptr(w->frame + L.frame_previous);
		return 0;
	}
	if (off_owner > FRAME_BUF - 1 ||
	    bpf_probe_read_user(words, sizeof(words), (void *)(w->frame + base))) {
		w->frame = 0;
		return 1;
	}
	if (buf[off_owner] < L.owner_incomplete_from)
		w->st->beyond++;
	w->frame = words[0];
	return 0;
}

/* The dense id of a captured stack, storing and announcing it when new. */
static __always_inline __u32 stack_id(struct hk_stack *st, __u64 hash)
{
	struct hk_stack *known = bpf_map_lookup_elem(&stacks, &hash);
	long err;

	if (known)
		return known->id;
	st->id = __sync_fetch_and_add(&next_stack_id, 1) + 1;
	if (st->id > HK_ID_MAX) {
		count(HK_CNT_IDS_FULL);
		return 0;
	}
	err = bpf_map_update_elem(&stacks, &hash, st, BPF_NOEXIST);
	if (err == -17 /* EEXIST: another CPU stored it first */) {
		known = bpf_map_lookup_elem(&stacks, &hash);
		return known ? known->id : 0;
	}
	if (err) {
		count(HK_CNT_STACK_FULL);
		return 0;
	}
	if (bpf_ringbuf_output(&new_stacks, &hash, sizeof(hash), 0))
		count(HK_CNT_RB_DROP);
	return st->id;
}

/* The calling thread's id as the target sees it (native_thread_id): in
 * a container, the id in its pid namespace. */
static __always_inline __u32 target_tid(void)
{
	struct bpf_pidns_info ns;

	if (pidns_init ||
	    bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)))
		return (__u32)bpf_get_current_pid_tgid();
	return ns.pid;
}

/* Capture the calling thread's Python stack, store it once, return its
 * dense id (0: no Python frames). */
static __always_inline __u32 capture_stack(void)
{
	__u32 tid = target_tid();
	__u32 zero = 0;
	struct hk_stack *st = bpf_map_lookup_elem(&scratch, &zero);
	struct walk w = {};
	__u64 ts, cf;
	__u32 total;

	if (!st)
		return 0;
	ts = find_tstate(tid, &cf);
	if (!ts) {
		count(HK_CNT_NO_TSTATE);
		return 0;
	}
	if (!cf)
		return 0;
	w.frame = read_ptr(cf + L.cframe_current_frame);
	if (!w.frame)
		return 0;
	w.st = st;
	w.hash = HASH_SEED;
	st->nframes = 0;
	st->beyond = 0;
	bpf_loop(HK_MAX_FRAMES, walk_frame, &w, 0);
	if (w.frame) {
		if (capture_frames < frames_limit)
			count(HK_CNT_TRUNCATED);
		if (count_total)
			bpf_loop(HK_TOTAL_CAP, count_frame, &w, 0);
	}
	total = (__u32)st->nframes + st->beyond;
	st->total = total > HK_TOTAL_CAP ? HK_TOTAL_CAP : total;
	st->beyond = 0;
	return stack_id(st, hash_end(w.hash, st->nframes, st->total));
}

/* --sample: the stack the trampoline captured itself: n frames at buf,
 * total on the stack in all; in the target's memory (HK_ANN_FRAMES by
 * system call) or, own, in hawk-bpf's (a ring record being drained; only
 * from the sleepable drain program). One read, where capture_stack makes
 * one per frame and three more. */
static __always_inline __u32 user_stack(__u64 buf, __u32 n, __u32 total,
					int own)
{
	__u32 zero = 0, size = capture_frames * sizeof(struct hk_frame_raw);
	struct hk_stack *st = bpf_map_lookup_elem(&scratch, &zero);
	__u64 hash = HASH_SEED;
	long err;

	if (!st || !n)
		return 0;
	if (n > capture_frames)
		n = capture_frames;
	if (n > HK_WALK_MAX || size > HK_WALK_MAX * sizeof(struct hk_frame_raw))
		return 0;
	if (own)
		err = bpf_copy_from_user(st->frames, n * sizeof(struct hk_frame_raw),
					 (void *)buf);
	else
		err = bpf_probe_read_user(st->frames, size, (void *)buf);
	if (err) {
		count(HK_CNT_READ_ERR);
		return 0;
	}
	for (__u32 i = 0; i < HK_WALK_MAX; i++) {
		struct hk_frame_raw *f = &st->frames[i];

		if (i >= n)
			break;
		hash = hash_frame(hash, f);
	}
	if (total > n && capture_frames < frames_limit)
		count(HK_CNT_TRUNCATED);
	if (total > HK_TOTAL_CAP)
		total = HK_TOTAL_CAP;
	st->nframes = n;
	st->total = total;
	return stack_id(st, hash_end(hash, st->nframes, st->total));
}

static __always_inline __u64 call_size(const struct args *a)
{
	if (a->kind == HK_CALLOC)
		return a->a * a->b;
	if (a->kind == HK_REALLOC)
		return a->b;
	return a->a;
}

/* --stats: one allocation of its requested size, counted once: the raw
 * call pymalloc makes for a large block belongs to the outer call, as in
 * tracemalloc. */
static __always_inline void count_size(__u64 cookie, struct inflight *in,
				       struct args *a)
{
	__u32 dom = site_domain[cookie & (HK_MAX_PROBES - 1)], b = 0, key;
	__u64 size = call_size(a), v = size;
	struct hk_hist_cell *c;

	if (dom == HK_DK_PYMALLOC)
		in->in_pymalloc++;
	else if (in->in_pymalloc)
		return;
	/* b = bit length of size (BPF has no clz): binary search. */
	for (int sh = 32; sh; sh >>= 1) {
		if (v >> sh) {
			v >>= sh;
			b += sh;
		}
	}
	b += v != 0;
	if (b >= HK_HIST_BUCKETS || dom >= HK_DK_MAX)
		return;
	key = dom * HK_HIST_BUCKETS + b;
	c = bpf_map_lookup_elem(&hist, &key);
	if (c) {
		c->count++;
		c->bytes += size;
	}
}

/* --sample: whether this call carries the trampoline's "drawn and
 * sampled" marker (r11 = sample_magic, r10 a fresh nonce). Such a call
 * asked for sample_pad bytes more: the arguments are put back as the
 * caller made them. */
static __always_inline int sample_marker(struct pt_regs *ctx,
					 struct inflight *in, struct args *a)
{
	if (ctx->r11 != sample_magic || ctx->r10 == in->last_nonce)
		return 0;
	in->last_nonce = ctx->r10;
	/* calloc comes as (1, size + pad) */
	if (a->kind == HK_MALLOC)
		a->a -= sample_pad;
	else
		a->b -= sample_pad;
	return 1;
}

/* --sample: whether to keep this allocation: 0 no, else its class for
 * HK_BLOCK (1 + the class index, 0 when always sampled) in *cls. The
 * trampoline decides with the same classes, by the same size. */
static __always_inline int sample_decide(int marker, __u64 size, __u32 *cls)
{
	__u64 th = 1ULL << 32, p1;

	*cls = 0;
	if (!size)
		size = 1;	/* as the allocator serves it */
	if (sample_period) {
		th = hk_sb_threshold(size, sample_period, sample_ptab);
		if (th >= HK_SB_ONE)
			return marker == 1 || !sample_raw;
		*cls = 1;
		if (marker != 1)
			return !sample_raw && bpf_get_prandom_u32() < th;
		/* kept with p / p1: random * p1 < p * 2^32 */
		p1 = hk_sb_first(size, sample_mult);
		return th >= p1 || (__u64)bpf_get_prandom_u32() * p1 < th << 32;
	}
	for (int i = 0; i < 8; i++) {
		if (i < sample_nclasses && size < sample_bound[i]) {
			th = sample_thresh[i];
			*cls = i + 1;
			break;
		}
	}
	if (marker == 1)
		return 1;
	if (sample_raw)
		return 0;
	return th >= (1ULL << 32) || bpf_get_prandom_u32() < th;
}

static __always_inline struct inflight *task_inflight(int create)
{
	return bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

SEC("uprobe")
int BPF_KPROBE(alloc_enter)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct inflight *in;
	struct args *a;
	int marker;

	if (bare || frozen)
		return 0;
	in = task_inflight(1);
	if (!in) {
		count(HK_CNT_ARGS_LOST);
		return 0;
	}
	a = &in->site[cookie & (HK_MAX_PROBES - 1)];
	a->kind = cookie >> 8;
	a->a = PT_REGS_PARM2(ctx);
	a->b = PT_REGS_PARM3(ctx);
	a->had_old = 0;
	if (stats_mode) {
		count_size(cookie, in, a);
		return 0;
	}
	marker = sample_mode ? sample_marker(ctx, in, a) : 0;
	/* Forget the old block now, not at return: once realloc has released
	 * it another thread may be handed the same address. */
	if (a->kind == HK_REALLOC && a->a)
		a->had_old = live_take(a->a, &a->old);
	a->cls = 0;
	if (!sample_mode)
		a->sampled = 1;
	else if (marker && sample_raw && sample_sys &&
		 (a->kind != HK_REALLOC || ring_word || !a->had_old))
		a->sampled = 0;		/* announced: see sample_sys */
	else
		a->sampled = sample_decide(marker, call_size(a), &a->cls);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_return)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 ret = PT_REGS_RC(ctx);
	__u64 size, blk;
	struct inflight *in;
	struct args *a;

	if (bare || frozen)
		return 0;
	in = task_inflight(0);
	if (!in) {
		count(HK_CNT_ARGS_LOST);
		return 0;
	}
	if (stats_mode) {
		if (site_domain[cookie & (HK_MAX_PROBES - 1)] == HK_DK_PYMALLOC &&
		    in->in_pymalloc)
			in->in_pymalloc--;
		return 0;
	}
	a = &in->site[cookie & (HK_MAX_PROBES - 1)];
	if (!a->kind) {
		count(HK_CNT_ARGS_LOST);
		return 0;
	}
	if (!ret) {
		/* failed realloc: the old block is still there */
		if (a->had_old)
			live_put(a->a, a->old);
		a->kind = 0;
		return 0;
	}
	size = call_size(a);
	a->kind = 0;
	if (!a->sampled)
		return 0;
	blk = HK_BLOCK(size, a->cls,
		       capture_stack());
	if (live_put(ret, blk)) {
		count(HK_CNT_LIVE_FULL);
	} else {
		count(HK_CNT_ALLOCS);
		note_alloc(HK_BLOCK_ID(blk), size, a->cls);
	}
	return 0;
}

/* --sample, raw domain switched: the trampoline announces a block it
 * sampled and tagged (addr), of the size asked for, with the nonce of its
 * draw. Through the free probe (free(NULL), see free_enter) a nonce seen
 * before is a stale marker; a system call is never stale (check 0). */
/* --sample: keep a block the trampoline sampled (cls from sampled()),
 * with its stack's id. */
static __always_inline void keep_sampled(__u64 addr, __u64 size, __u32 cls,
					 __u32 stack)
{
	if (live_put(addr, HK_BLOCK(size, cls, stack))) {
		count(HK_CNT_LIVE_FULL);
	} else {
		count(HK_CNT_ALLOCS);
		note_alloc(stack, size, cls);
	}
}

/* Whether to keep a block the trampoline sampled: by bytes, it drew with
 * p1 only and BPF's stage may drop it (before its stack is captured; its
 * tag then stays, and its free finds no block). */
static __always_inline int sampled(__u64 size, __u32 *cls)
{
	return sample_decide(1, size, cls);
}

static __always_inline void announced(__u64 addr, __u64 size, __u64 nonce,
				      int check)
{
	struct inflight *in;
	__u32 cls;

	if (!addr)
		return;
	if (check) {
		in = task_inflight(1);
		if (!in) {
			count(HK_CNT_ARGS_LOST);
			return;
		}
		if (nonce == in->last_nonce)
			return;
		in->last_nonce = nonce;
	}
	if (sampled(size, &cls))
		keep_sampled(addr, size, cls, capture_stack());
}

/* --sample, raw domain switched: a realloc of a traced block whose result
 * is not sampled. The trampoline announces, before calling realloc, that
 * the block goes (HK_ANN_GONE: realloc may give its address to another
 * thread at once), and, if realloc failed, that it is back (HK_ANN_BACK). */
static __always_inline void realloc_announced(__u64 addr, int k)
{
	struct inflight *in = task_inflight(1);
	__u64 blk;

	if (!in) {
		count(HK_CNT_ARGS_LOST);
		return;
	}
	if (k == HK_ANN_GONE) {
		in->gone_addr = addr;
		in->gone_blk = live_take(addr, &blk) ? blk : 0;
	} else if (in->gone_addr == addr && in->gone_blk) {
		if (live_put(addr, in->gone_blk))
			count(HK_CNT_LIVE_FULL);
		in->gone_blk = 0;
	}
}

SEC("uprobe")
int BPF_KPROBE(free_enter)
{
	__u64 ptr = PT_REGS_PARM2(ctx), blk;

	if (bare || frozen)
		return 0;
	if (ptr) {
		if (live_take(ptr, &blk))
			count(HK_CNT_FREES);
		return 0;
	}
	if (!sample_raw)
		return 0;
	/* free(NULL): maybe one of the trampoline's announcements, rdx = the
	 * block, rcx = the size, r10 = the nonce */
	if (ctx->r11 == sample_magic + HK_ANN_ALLOC)
		announced(ctx->dx, ctx->cx, ctx->r10, 1);
	else if (ctx->r11 == sample_magic + HK_ANN_GONE ||
		 ctx->r11 == sample_magic + HK_ANN_BACK)
		realloc_announced(ctx->dx, (int)(ctx->r11 - sample_magic));
	return 0;
}

/* --sample, announcements by system call: the trampoline calls getppid(2)
 * (harmless, allowed wherever Python runs, rarely called) with rdi =
 * sample_magic + k, rsi = the block, rdx = the size (the registers the
 * task entered the kernel with): ~0.11 us against a uprobe hit's ~0.65.
 * HK_ANN_FRAMES (an object-domain block) also carries the frames the
 * trampoline read itself: r10 = where, r8 = how many, r9 = the stack's
 * depth. This sees every getppid on the machine; anything but the
 * target's announcements returns after two compares (the magic is the
 * same for every target, hence the thread group check). */
SEC("tracepoint/syscalls/sys_enter_getppid")
int sys_announce(void *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 k = BPF_CORE_READ(regs, di) - sample_magic, addr, blk;
	struct bpf_pidns_info ns;
	__u32 cls;

	if (k < HK_ANN_ALLOC || k > HK_ANN_WALK || bare)
		return 0;
	if (bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)) ||
	    ns.tgid != target_tgid)
		return 0;
	addr = BPF_CORE_READ(regs, si);
	if (k == HK_ANN_WALK) {
		/* addr: the record's commit word (1 + its ring position);
		 * its drain, which the frozen position governs, uses the
		 * stack */
		__u32 id = capture_stack();

		if (bpf_map_update_elem(&walked, &addr, &id, BPF_ANY))
			count(HK_CNT_STACK_FULL);
		return 0;
	}
	if (frozen)
		return 0;
	if (k == HK_ANN_FRAMES) {
		__u64 size = BPF_CORE_READ(regs, dx);

		if (addr && sampled(size, &cls))
			keep_sampled(addr, size, cls,
				     user_stack(BPF_CORE_READ(regs, r10),
						(__u32)BPF_CORE_READ(regs, r8),
						(__u32)BPF_CORE_READ(regs, r9), 0));
	} else if (k == HK_ANN_ALLOC)
		announced(addr, BPF_CORE_READ(regs, dx), 0, 0);
	else if (k == HK_ANN_FREE) {
		if (live_take(addr, &blk))
			count(HK_CNT_FREES);
	} else {
		realloc_announced(addr, (int)k);
	}
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(finalize_enter)
{
	__u64 ring = 0, head;

	/* Ring mode: records reserved from here on are not applied; those
	 * before still are, whenever the drain reads them. */
	if (ring_word && !bpf_probe_read_user(&ring, sizeof(ring), (void *)ring_word) &&
	    ring > 3 &&
	    !bpf_probe_read_user(&head, sizeof(head), (void *)(ring + HK_RING_HEAD))) {
		frozen_pos = head;
		/* wake hawk-bpf to read them while the process still is
		 * (a stack hash of 0 names no stack) */
		head = 0;
		bpf_ringbuf_output(&new_stacks, &head, sizeof(head), BPF_RB_FORCE_WAKEUP);
	}
	frozen = 1;
	return 0;
}

/* Ring mode: the target calls exit_group(2) (its end, finalized or not:
 * os._exit too; not a fatal signal). Where its ring ended then tells user
 * space whether records it could not read any more were lost. By
 * sched_process_exit the memory is gone already. */
SEC("tracepoint/syscalls/sys_enter_exit_group")
int target_exit(void *ctx)
{
	struct bpf_pidns_info ns;
	__u64 ring = 0, head;

	if (bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)) ||
	    ns.tgid != target_tgid)
		return 0;
	if (!bpf_probe_read_user(&ring, sizeof(ring), (void *)ring_word) && ring > 3 &&
	    !bpf_probe_read_user(&head, sizeof(head), (void *)(ring + HK_RING_HEAD)))
		exit_pos = head + 1;	/* + 1: 0 means unknown */
	return 0;
}

/* The target execs (any thread: the kernel makes it the leader): the
 * record stops here, since every probe and address is the old image's. */
SEC("tracepoint/sched/sched_process_exec")
int target_exec(void *ctx)
{
	struct bpf_pidns_info ns;

	if (bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)) ||
	    ns.tgid != target_tgid)
		return 0;
	execd = 1;
	frozen = 1;
	return 0;
}

struct drain {
	__u64 buf, off, len, applied;
};

/* One ring record at d->buf + d->off (hawk-bpf's memory): apply it as the
 * announcement it is. 1 stops the loop (the end, or a malformed record). */
static long drain_one(__u32 i, struct drain *d)
{
	struct hk_ring_rec r;
	__u64 len, blk, at = d->buf + d->off;
	__u32 *id, stack = 0, cls;

	if (d->off + sizeof(r) > d->len)
		return 1;
	if (bpf_copy_from_user(&r, sizeof(r), (void *)at)) {
		count(HK_CNT_RING_BAD);
		return 1;
	}
	len = (__u64)r.len16 * 16;
	if (len < sizeof(r) || d->off + len > d->len ||
	    (r.type == HK_ANN_FRAMES && sizeof(r) + r.nframes * sizeof(struct hk_frame_raw) > len)) {
		count(HK_CNT_RING_BAD);
		return 1;
	}
	d->off += len;
	if (frozen && r.pos > frozen_pos)	/* pos is 1 + where */
		return 0;
	d->applied++;
	switch (r.type) {
	case HK_ANN_FRAMES:
		if (sampled(r.size, &cls))
			keep_sampled(r.addr, r.size, cls,
				     user_stack(at + sizeof(r), r.nframes, r.total, 1));
		break;
	case HK_ANN_WALK:
		id = bpf_map_lookup_elem(&walked, &r.pos);
		if (id) {
			stack = *id;
			bpf_map_delete_elem(&walked, &r.pos);
		} else {
			count(HK_CNT_ARGS_LOST);
		}
		if (sampled(r.size, &cls))
			keep_sampled(r.addr, r.size, cls, stack);
		break;
	case HK_ANN_FREE:
		if (live_take(r.addr, &blk))
			count(HK_CNT_FREES);
		break;
	case HK_ANN_SKIP:
		break;
	default:
		d->applied--;
		count(HK_CNT_RING_BAD);
	}
	return 0;
}

/* Ring mode: user space reads the target's ring and runs this (BPF
 * PROG_TEST_RUN) on the complete records, in ring order: the one place
 * sampled blocks enter and leave the live table then. */
SEC("syscall")
int drain(struct hk_drain_ctx *ctx)
{
	struct drain d = { .buf = ctx->buf, .len = ctx->len };

	if (d.len > HK_DRAIN_MAX)
		return -1;
	bpf_loop(HK_DRAIN_MAX / sizeof(struct hk_ring_rec), drain_one, &d, 0);
	ctx->applied = d.applied;
	return 0;
}

/* The user-memory read helpers are GPL-only. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

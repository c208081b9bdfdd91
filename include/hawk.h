/* Layouts shared by the BPF programs and the loader. */
#ifndef HAWK_H
#define HAWK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Most frames one stack record can hold. Deeper stacks are truncated and
 * counted (HK_CNT_TRUNCATED); total_nframe is still counted up to 65535. */
#define HK_MAX_FRAMES 256
#define HK_MAX_PROBES 16
#define HK_TOTAL_CAP 65535
/* Most frames the sampling trampoline captures itself (HK_ANN_FRAMES). */
#define HK_WALK_MAX 32

/* What a probe site is: the cookie of each attached program is
 * (kind << 8) | probe slot. */
enum hk_kind {
	HK_MALLOC = 1,
	HK_CALLOC = 2,
	HK_REALLOC = 3,
	HK_FREE = 4,
};

/* --sample: what a trampoline announcement says (the k of magic + k; see
 * user/plan/trampoline.h): a block it sampled and tagged, the start and the
 * failure of an unsampled realloc of a traced block, the free of a traced
 * block (system-call announcements only). */
enum hk_announce {
	HK_ANN_ALLOC = 2,
	HK_ANN_GONE = 3,
	HK_ANN_BACK = 4,
	HK_ANN_FREE = 5,
	HK_ANN_FRAMES = 6,	/* HK_ANN_ALLOC with the frames captured */
	HK_ANN_WALK = 7,	/* ring: a block whose stack BPF walked */
	HK_ANN_SKIP = 8,	/* ring: nothing (a realloc that failed) */
};

/* --sample, ring mode: the trampoline writes its announcements into a
 * ring in the target's memory (mapped by the trampoline itself on first
 * use), which hawk-bpf reads every few milliseconds and hands to the
 * "drain" BPF program: no system call per sampled block. Header page,
 * then size data bytes (a power of two), then HK_RING_SLACK bytes so that
 * a record never wraps: it lies whole at data + (pos & (size - 1)).
 * Producers reserve with compare-and-swap on head while head + len - tail
 * <= size (else they count it in dropped and go on), write the record and
 * store its pos last: a record is complete when its pos is 1 + where it
 * lies (a ring's fresh zeroes are complete nowhere).
 * Records are committed out of order but read in order. */
#define HK_RING_HEADER 4096
#define HK_RING_SLACK 1024
#define HK_RING_HEAD 0		/* u64: bytes ever reserved */
#define HK_RING_TAIL 64		/* u64: bytes consumed (hawk-bpf writes it) */
#define HK_RING_DROPPED 128	/* u64: records dropped, ring full */
#define HK_RING_SIZE 136	/* u64: data bytes */

struct hk_ring_rec {
	__u64 pos;		/* 1 + its logical position; stored last */
	__u64 addr;		/* the block */
	__u64 size;		/* HK_ANN_FRAMES, HK_ANN_WALK: bytes asked */
	__u8 type;		/* enum hk_announce */
	__u8 nframes;		/* HK_ANN_FRAMES: frames that follow */
	__u16 len16;		/* record bytes / 16 */
	__u32 total;		/* HK_ANN_FRAMES: frames on the stack */
	/* struct hk_frame_raw frames[]; */
};

/* What user space hands the drain program: len bytes of complete records
 * at buf (in hawk-bpf's memory), at most HK_DRAIN_MAX. */
#define HK_DRAIN_MAX (1 << 18)
struct hk_drain_ctx {
	__u64 buf;
	__u64 len;
	__u64 applied;		/* out: records applied */
};

/* Counters in the BPF "counters" array. Every loss is counted here. */
enum hk_counter {
	HK_CNT_ALLOCS,		/* allocations traced */
	HK_CNT_FREES,		/* frees of traced blocks */
	HK_CNT_LIVE_FULL,	/* allocation not recorded: live table full */
	HK_CNT_STACK_FULL,	/* stack not recorded: stack map full */
	HK_CNT_ARGS_LOST,	/* return without its entry (args map full) */
	HK_CNT_READ_ERR,	/* a read of interpreter memory failed */
	HK_CNT_TRUNCATED,	/* stack cut short of --frames (HK_MAX_FRAMES) */
	HK_CNT_NO_TSTATE,	/* allocating thread has no Python thread state */
	HK_CNT_RB_DROP,		/* new-stack notification lost (ring full) */
	HK_CNT_IDS_FULL,	/* more distinct stacks than ids */
	HK_CNT_SPILLED,		/* blocks that found both their buckets full */
	HK_CNT_RING_BAD,	/* ring record malformed (not applied) */
	/* filled in user space: */
	HK_CNT_RING_DROPPED,	/* sampled records dropped: ring full */
	HK_CNT_RING_LOST,	/* ... not written (no ring) or never read */
	HK_CNT_MAX,
};

/* --stats: allocations by domain and power-of-two size bucket (bucket b
 * holds sizes in [2^(b-1), 2^b), bucket 0 the size 0). */
#define HK_HIST_BUCKETS 64
enum hk_domain_kind {
	HK_DK_RAW,		/* PyMem_Raw* */
	HK_DK_PYMALLOC,		/* PyMem_* and PyObject_* (one allocator) */
	HK_DK_MAX,
};

struct hk_hist_cell {
	__u64 count;
	__u64 bytes;
};

/* Interpreter layout the BPF side needs; filled from the per-version table
 * in user space (user/pyver/) before load. */
/* Bytes of a frame the BPF walk reads in one go, from its lowest field:
 * every version's frame fields must fit (hk_pyver_check). */
#define HK_FRAME_WINDOW 80

struct hk_py_layout {
	__u64 runtime_addr;		/* address of _PyRuntime in the target */
	__u32 rt_tstate_current;	/* _PyRuntime.gilstate.tstate_current;
					 * 0: none (3.12+, thread-local) */
	__u32 rt_interp_head;		/* _PyRuntime.interpreters.head */
	__u32 interp_threads_head;	/* PyInterpreterState.threads.head */
	__u32 tstate_next;
	__u32 tstate_native_tid;	/* 0: none (3.10): thread_id, which is
					 * pthread_self(), is compared */
	__u32 tstate_thread_id;		/* pthread_self() of its thread */
	__u32 tstate_cframe;		/* 0: frame pointer lives in tstate
					 * (3.13+: current_frame) */
	__u32 cframe_current_frame;
	__u32 frame_code;
	__u32 frame_previous;
	__u32 frame_instr;		/* prev_instr (3.11, 3.12), instr_ptr */
	__u32 frame_owner;		/* 0: frames have no owner (3.10) */
	__u32 frame_head_size;		/* bytes up to localsplus (0: 3.10) */
	__u32 frame_base;		/* the lowest of the frame fields read */
	__u32 frame_instr_units;	/* 1: frame_instr is an int counting
					 * code units (3.10's f_lasti), 0: a
					 * pointer into the bytecode */
	__u32 frame_code_tag;		/* tag bits of the code reference
					 * (3.14+: a _PyStackRef), masked off */
	/* _PyFrame_IsIncomplete: owners from this one on always are, whatever
	 * their code (3.12, 3.13: C-stack shims, in 3.12 by their code's first
	 * traceable instruction, which they never pass; 3.14+: the
	 * interpreter's too), and are neither frames nor counted; 0: none */
	__u32 owner_incomplete_from;
};

/* One captured interpreter frame: the code object and the byte offset of
 * the frame's last instruction pointer from the code object's start. The
 * loader turns instr_off into a line with the code object's line table and
 * drops incomplete frames (owner/firsttraceable) as tracemalloc does. */
struct hk_frame_raw {
	__u64 code;
	__s32 instr_off;
	__u8 owner;
	__u8 pad[3];
};

struct hk_stack {
	__u16 nframes;		/* frames held */
	__u16 total;		/* frames on the stack, capped at 65535 */
	__u32 id;		/* dense id, what live blocks refer to */
	__u32 beyond;		/* scratch: frames counted past the capture */
	__u32 pad;
	struct hk_frame_raw frames[HK_MAX_FRAMES];
};

/* The "live" table (bpf/live.bpf.h): buckets of 8 address keys (0: free)
 * and their values, 16 bytes a slot. */
#define HK_BUCKET_SLOTS 8
struct hk_bucket {
	__u64 key[HK_BUCKET_SLOTS];
	__u64 val[HK_BUCKET_SLOTS];
};

/* A live traced block is one 64-bit value keyed by its address: size in
 * the low 39 bits, a bit that is always set (so that 0 means an empty slot
 * even for a 0-byte block without a Python stack), then the sampling class
 * (0: exact or always sampled, k: sampled in class k-1, so its weight is 1/p
 * of the class it was drawn in, whatever a realloc made of its size), then
 * the stack id. */
#define HK_SIZE_BITS 39
#define HK_CLASS_SHIFT (HK_SIZE_BITS + 1)
#define HK_CLASS_BITS 4
#define HK_SIZE_MAX ((1ULL << HK_SIZE_BITS) - 1)
#define HK_ID_MAX ((1U << (64 - HK_CLASS_SHIFT - HK_CLASS_BITS)) - 1)
#define HK_BLOCK(size, cls, id) ((__u64)(id) << (HK_CLASS_SHIFT + HK_CLASS_BITS) | \
				 (__u64)((cls) & 15) << HK_CLASS_SHIFT | \
				 1ULL << HK_SIZE_BITS | \
				 ((size) > HK_SIZE_MAX ? HK_SIZE_MAX : (size)))
#define HK_BLOCK_SIZE(b) ((b) & HK_SIZE_MAX)

/* What a stack id allocated during the window (pprof's alloc_*): ids
 * from 0 (no Python frame) below HK_ALLOC_IDS, as many as the stacks map
 * holds. */
#define HK_ALLOC_IDS ((1 << 16) + 1)
/* Estimates when sampled (each allocation counts 1/p): count in units of
 * HK_ALLOC_ONE, bytes in bytes. */
#define HK_ALLOC_ONE (1ULL << 16)
struct hk_alloc_sum {
	__u64 count;
	__u64 bytes;
};
#define HK_BLOCK_CLASS(b) ((unsigned)((b) >> HK_CLASS_SHIFT) & 15)
#define HK_BLOCK_ID(b) ((__u32)((b) >> (HK_CLASS_SHIFT + HK_CLASS_BITS)))

#endif

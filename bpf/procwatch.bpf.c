// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * hawk-bpf, host-wide: which processes start while the window is open.
 * Every exec is announced (the process may have become CPython); a fork
 * only when its parent is traced (a pre-fork worker pool), so a shell
 * forking all day costs one map lookup. Threads are not processes: a
 * clone that shares its parent's thread group is not a fork.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "procwatch.h"

/* tgids (initial namespace) of the traced processes, set by user space */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HK_PW_MAX_TRACED);
	__type(key, __u32);
	__type(value, __u8);
} traced SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

/* Events the ring had no room for: the next /proc scan finds them. */
__u64 lost = 0;

static __always_inline void announce(__u32 kind, __u32 pid, __u32 parent)
{
	struct hk_pw_event e = { .kind = kind, .pid = pid, .parent = parent };

	if (bpf_ringbuf_output(&events, &e, sizeof(e), 0))
		__sync_fetch_and_add(&lost, 1);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(pw_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	announce(HK_PW_EXEC, BPF_CORE_READ(p, tgid), 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(pw_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);

	/* a vfork or CLONE_VM child shares the parent's memory until it
	 * execs: never a process of its own to trace */
	if (ptgid != ctgid && BPF_CORE_READ(child, mm) != BPF_CORE_READ(parent, mm) &&
	    bpf_map_lookup_elem(&traced, &ptgid))
		announce(HK_PW_FORK, ctgid, ptgid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

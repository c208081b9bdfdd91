/* What bpf/procwatch.bpf.c tells the host-wide run: a process that exec'd
 * (it may have become a CPython process) or a child forked by a traced
 * one. Shared by the BPF program and user/cli/procset.c. */
#ifndef HAWK_PROCWATCH_H
#define HAWK_PROCWATCH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum hk_pw_kind { HK_PW_EXEC = 1, HK_PW_FORK = 2 };

struct hk_pw_event {
	__u32 kind;		/* enum hk_pw_kind */
	__u32 pid;		/* the process, as the initial namespace sees it */
	__u32 parent;		/* HK_PW_FORK: the traced process it forked from */
	__u32 pad;
};

/* Most processes one run traces at a time (the "traced" map). */
#define HK_PW_MAX_TRACED 4096

#endif

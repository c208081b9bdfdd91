/* The CPython interpreter inside a target process: which ELF image holds
 * it, which version it is, where its runtime state and allocator tables
 * are. */
#ifndef HAWK_PYTARGET_H
#define HAWK_PYTARGET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "elfimg.h"
#include "proc.h"
#include "pyver/pyver.h"

enum { HK_DOM_RAW, HK_DOM_MEM, HK_DOM_OBJ, HK_NDOMAINS };

struct hk_pytarget {
	pid_t pid;
	int pidfd;			/* the process itself, from the start:
					 * tells its exit, whatever reuses
					 * its PID (-1 if the kernel has none) */
	int memfd;			/* /proc/PID/mem, read-write */
	char image_path[128];		/* path a uprobe attaches to */
	char image_name[256];		/* as the target maps it */
	struct hk_elf elf;
	uint64_t bias;			/* runtime address - ELF vaddr */
	unsigned hexversion;
	char version[32];		/* "3.11.2" */
	const struct hk_pyver *layout;
	uint64_t runtime;		/* runtime address of _PyRuntime */
	uint64_t tables[HK_NDOMAINS];	/* runtime addresses of the
					 * PyMemAllocatorEx tables */
};

/* 0 on success; -1 with one line in err. A process that exits meanwhile
 * is said to have "exited during attach" (hk_pytarget_gone_err). */
int hk_pytarget_open(struct hk_pytarget *t, pid_t pid, char *err, size_t errlen);
void hk_pytarget_close(struct hk_pytarget *t);

/* Whether the interpreter has a main interpreter with a thread state:
 * past the start-up that sets its allocators (PYTHONMALLOC) up, so a
 * process that has just exec'd is traced once this holds. */
bool hk_pytarget_ready(const struct hk_pytarget *t);

/* Whether the process has exited since hk_pytarget_open began. */
bool hk_pytarget_gone(const struct hk_pytarget *t);
/* "process PID exited during attach; nothing was traced" into err: what
 * every failure to attach becomes once the process is gone (its reads
 * and writes fail then, and libbpf's with ESRCH). Returns -1. */
int hk_pytarget_gone_err(const struct hk_pytarget *t, char *err, size_t errlen);

#endif

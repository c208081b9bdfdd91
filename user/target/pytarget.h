/* The CPython interpreter inside a target process: which ELF image holds
 * it, which version it is, where its runtime state and allocator tables
 * are. */
#ifndef HAWK_PYTARGET_H
#define HAWK_PYTARGET_H

#include <stdint.h>
#include <sys/types.h>
#include "elfimg.h"
#include "proc.h"
#include "pyver/pyver.h"

enum { HK_DOM_RAW, HK_DOM_MEM, HK_DOM_OBJ, HK_NDOMAINS };

struct hk_pytarget {
	pid_t pid;
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

/* 0 on success; -1 with one line in err. */
int hk_pytarget_open(struct hk_pytarget *t, pid_t pid, char *err, size_t errlen);
void hk_pytarget_close(struct hk_pytarget *t);

#endif

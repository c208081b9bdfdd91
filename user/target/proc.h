/* A target process seen through /proc: its mappings and its memory. */
#ifndef HAWK_PROC_H
#define HAWK_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct hk_map {
	uint64_t start, end, offset;
	unsigned long inode;
	char perms[5];
	char *path;		/* NULL for anonymous mappings */
};

struct hk_maps {
	struct hk_map *v;
	size_t n;
};

int hk_maps_read(pid_t pid, struct hk_maps *m);
/* Only the executable file mappings, as hk_maps_read would give them
 * (none is no error): the host-wide scan's question of every process.
 * 0, or -1 (errno). */
int hk_maps_exec(pid_t pid, struct hk_maps *m);
void hk_maps_free(struct hk_maps *m);

/* /proc/PID/mem opened read-write; -1 with errno on failure. */
int hk_mem_open(pid_t pid);
/* Whole reads and writes only: 0 on success, -1 otherwise. */
int hk_mem_read(int fd, uint64_t addr, void *buf, size_t len);
int hk_mem_write(int fd, uint64_t addr, const void *buf, size_t len);

/* The process's seccomp mode (/proc/PID/status: 0 none, 1 strict, 2
 * filter), or -1 if unknown. */
int hk_proc_seccomp(pid_t pid);

/* The process's PID in its own (innermost) pid namespace (NSpid): 0 or
 * -1. */
int hk_proc_nspid(pid_t pid, pid_t *nspid);

/* The process a thread id belongs to (its thread group): pid itself for a
 * process, or when that is not known. */
pid_t hk_proc_tgid(pid_t pid);

/* What /proc/PID/stat says of a process. */
struct hk_proc_stat {
	char state;			/* R, S, D, T, t, Z, X, ... */
	pid_t ppid;			/* its parent (0: none) */
	unsigned long flags;		/* the kernel's PF_* */
	unsigned long long start;	/* start time, clock ticks after boot:
					 * with the PID, names one process
					 * however PIDs are reused */
};

/* PF_KTHREAD: a kernel thread, which has no user memory. */
#define HK_PF_KTHREAD 0x00200000UL

/* 0, or -1 (errno: ENOENT once the process is gone). */
int hk_proc_stat(pid_t pid, struct hk_proc_stat *st);

/* The process's command name (comm), or "?" */
void hk_proc_comm(pid_t pid, char *buf, size_t len);

#endif

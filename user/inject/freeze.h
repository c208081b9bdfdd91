/* Freezing a target process: every thread held in a ptrace-stop, so that
 * a multi-byte write through /proc/PID/mem (not atomic: the kernel copies
 * with rep movsb) is never seen half-done by the target.
 *
 * PTRACE_SEIZE + PTRACE_INTERRUPT, never SIGSTOP: the target's parent sees
 * no stop or continue, job control is untouched, and blocked system calls
 * restart transparently. Signals that arrive meanwhile stay pending, or are
 * re-injected on thaw if a thread had already dequeued one; a group-stop
 * (SIGSTOP from someone else) is kept. The ptrace work is done by a helper
 * thread that exits at thaw: if it or the whole process dies (even with
 * kill -9), the kernel detaches and resumes every thread, and still
 * delivers the signals caught. Any thread may thaw. The caller's process
 * gets a SIGCHLD per stopped thread (ignored unless it has a handler). */
#ifndef HAWK_FREEZE_H
#define HAWK_FREEZE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Longest hk_freeze waits for every thread to stop before giving up. */
#define HK_FREEZE_TIMEOUT_MS 2000

struct hk_freezer;

struct hk_frozen {
	pid_t pid;
	size_t nthreads;	/* threads held stopped */
	size_t nsignals;	/* signals caught in delivery, re-injected on thaw */
	bool group_stop;	/* the process is, or is entering, a group-stop
				 * (SIGSTOP & co.), which it stays in after thaw */
	struct hk_freezer *priv;
};

/* Stops every thread of pid, including threads spawned meanwhile, within
 * HK_FREEZE_TIMEOUT_MS. 0 on success; -1 with one line in err otherwise, and
 * then nothing stays stopped or attached (a thread exiting meanwhile is not
 * an error). Fails if the process is already traced (a debugger, strace, a
 * second freezer) or ptrace is not permitted (Yama ptrace_scope 3). */
int hk_freeze(pid_t pid, struct hk_frozen *f, char *err, size_t errlen);

/* Resumes every thread, delivering the signals caught in delivery. 0 on
 * success (threads that died meanwhile are fine); -1 with errno if one could
 * not be detached (it is resumed anyway, a moment later). Clears f. */
int hk_thaw(struct hk_frozen *f);

#endif

/* The half of the per-target lock that every namespace sees.
 *
 * /run/hawk-bpf/PID.lock is per mount namespace (a container's /run is its
 * own) and PID numbers are per PID namespace. A pidfd's inode, on pidfs
 * (Linux 6.9+), is one per process whatever namespace opened it, so a
 * flock(2) on a pidfd of the target is taken by one hawk-bpf at a time
 * system-wide, and dies with it (even on kill -9). Older kernels give every
 * pidfd one shared anonymous inode: there the lock is not taken (it would
 * be one lock for every process), and only /run's counts. */
#ifndef HAWK_PIDLOCK_H
#define HAWK_PIDLOCK_H

#include <sys/types.h>

/* The locked pidfd (close it to release); -2 if another process holds the
 * lock; -1 where it cannot be taken (no pidfs, the process gone), which is
 * no refusal. */
int hk_pidlock_take(pid_t pid);

#endif

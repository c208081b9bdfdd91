/* A session whose daemon died (kill -9, OOM killer): what stop and
 * snapshot do when its socket refuses them or closes without an answer.
 *
 * The kernel drops the daemon's BPF links and uprobes with its last fd,
 * but not its files in /run/hawk-bpf, nor the allocator table slots it
 * had switched in its target: padding entries (harmless, but pymalloc's
 * inlined fast path stays off) or the sampling trampoline (which keeps
 * writing sampled blocks to its ring). This waits for the lock (a dying
 * daemon drops it first) and for the daemon to be gone, puts the slots
 * back if the process under the PID is still the one it traced (same
 * start time), checks no probe is left in its code, and removes the
 * socket and the lock. */
#ifndef HAWK_ORPHAN_H
#define HAWK_ORPHAN_H

#include <stdbool.h>
#include <sys/types.h>

/* Exit status of stop and snapshot on a dead session. */
#define HK_EXIT_ORPHAN 3

/* Cleans up after the dead daemon of pid's session, with one line on
 * stderr saying so (snapshot: that there is no snapshot): HK_EXIT_ORPHAN,
 * or 1 if something could not be cleaned (said in the line); -1 without a
 * word when there is no session after all (it ended meanwhile). */
int hk_orphan_clean(pid_t pid, bool snapshot);
/* The same for the host-wide session: every process its host.pids
 * names (and still is the process it traced) gets its tables back. */
int hk_orphan_clean_host(bool snapshot);

#endif

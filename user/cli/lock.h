/* One hawk-bpf per target: /run/hawk-bpf/PID.lock.
 *
 * A second tracer would see the first restore the allocator tables under
 * it. The lock is a flock(2) on the file, which the kernel drops with the
 * last fd of its open file (inherited across fork), even on kill -9: so
 * whether a lock file is stale is the kernel's word, never the owner PID
 * written in it (which may have been reused). The file holds
 *     OWNER ROLE OWNER_START TARGET_START
 * (role "daemon", "profile" or "stop"; the start times are /proc/PID/stat's,
 * which with the PIDs name one process each, however PIDs are reused).
 *
 * A file is removed only by whoever holds its lock, and a lock won on a
 * removed file is retried on the new one: so a stale file can be cleaned
 * at any time. A killed one-shot run leaves its file; the next run (on any
 * process) and status remove it. A killed daemon leaves its file and its
 * socket, which stop and snapshot clean up (orphan.h) with what it left in
 * its target; sweeps leave those alone. With each lock goes one every
 * namespace sees (pidlock.h): a hawk-bpf with another /run, or another
 * PID namespace, is refused too. */
#ifndef HAWK_LOCK_H
#define HAWK_LOCK_H

#include <stdbool.h>
#include <sys/types.h>

#define HK_RUN_DIR "/run/hawk-bpf"
/* The "PID" of the host-wide session: host.lock, host.sock, and
 * host.pids (the processes it traces, for cleaning up after it). */
#define HK_HOST 0

/* What a lock file says. */
struct hk_lock_rec {
	pid_t owner;			/* 0: nothing readable */
	bool daemon;			/* role "daemon" */
	unsigned long long owner_start;	/* 0: not written (older hawk-bpf) */
	unsigned long long target_start;
	bool elsewhere;			/* held in another namespace (pidlock.h) */
};

/* Takes the lock of target pid. With a role, writes this process as its
 * owner; without (NULL), leaves the file as it was. Returns the fd, with
 * *rec what the file said before; -1 (errno set) when the directory or
 * file cannot be made; -2 when another process holds it, with *rec its
 * record. */
int hk_lock_target(pid_t pid, const char *role, struct hk_lock_rec *rec);
/* hk_lock_target(pid, NULL, rec), waiting up to seconds for a holder to
 * let go (a daemon that is stopping, or dying). */
int hk_lock_wait(pid_t pid, struct hk_lock_rec *rec, double seconds);
/* Removes stale lock files, then hk_lock_target; or one stderr line
 * saying who holds the lock (or why it could not be taken) and -1. */
int hk_lock_or_refuse(pid_t pid, const char *role);
/* Writes this process as the owner (after a fork). */
void hk_lock_owner(int fd, pid_t target, const char *role);
/* Removes the lock file, then releases the lock. */
void hk_lock_release(int fd, pid_t pid);
/* Removes every lock file nobody holds and no session socket goes with. */
void hk_lock_sweep(void);
/* Whether the owner a record names still runs (a zombie does not). */
bool hk_lock_owner_alive(const struct hk_lock_rec *rec);

/* "/run/hawk-bpf/PID.sock" into buf. */
void hk_socket_path(char *buf, size_t len, pid_t pid);
/* Whether that socket file exists. */
bool hk_socket_exists(pid_t pid);

#endif

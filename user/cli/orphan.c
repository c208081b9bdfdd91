/* Cleaning up after a killed daemon (see orphan.h). */
#include "orphan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "lock.h"
#include "probes.h"
#include "proc.h"
#include "pytarget.h"
#include "slots.h"
#include "util.h"

/* How long a dying daemon may take: uprobes come off one RCU wait each. */
#define WAIT_S 60

/* Until the daemon is gone (a zombie has closed its files, and its
 * uprobes went with them): false if it still runs after WAIT_S. */
static bool wait_gone(const struct hk_lock_rec *rec)
{
	const struct timespec pause = { .tv_nsec = 20000000 };

	for (int i = 0; hk_lock_owner_alive(rec); i++) {
		if (i >= WAIT_S * 50)
			return false;
		nanosleep(&pause, NULL);
	}
	return true;
}

/* Probe sites whose code in the target differs from the file (an int3). */
static int probes_left(const struct hk_hooks *h, const struct hk_pytarget *t)
{
	int n = 0;

	for (int i = 0; i < h->nsites; i++) {
		uint8_t want, have;

		if (h->sites[i].probe &&
		    hk_elf_read(&t->elf, h->sites[i].probe, &want, 1) == 0 &&
		    hk_mem_read(t->memfd, h->sites[i].probe + t->bias, &have, 1) == 0)
			n += want != have;
	}
	return n;
}

/* Whether the process under pid is the one that started at start (and
 * t, opened on it, holds that one). */
static bool same_process(pid_t pid, unsigned long long start,
			 const struct hk_pytarget *t)
{
	struct hk_proc_stat st;

	return hk_proc_stat(pid, &st) == 0 && st.start == start &&
	       st.state != 'Z' && st.state != 'X' && (!t || !hk_pytarget_gone(t));
}

/* Puts back the slots the daemon left in its target: 0 with what was
 * found and done in what, or -1 with why in what. */
static int restore(pid_t pid, const struct hk_lock_rec *rec, char *what,
		   size_t len)
{
	struct hk_pytarget t;
	struct hk_hooks h;
	char err[512];
	int n, left, rc = -1;

	if (!rec->target_start) {
		snprintf(what, len, "which process it traced is not known: PID %d left alone",
			 (int)pid);
		return 0;
	}
	if (!same_process(pid, rec->target_start, NULL)) {
		struct hk_proc_stat st;

		if (hk_proc_stat(pid, &st) == 0 && st.state != 'Z' && st.state != 'X')
			snprintf(what, len, "PID %d is now another process: left alone",
				 (int)pid);
		else
			snprintf(what, len, "the process has exited");
		return 0;
	}
	if (hk_pytarget_open(&t, pid, err, sizeof(err))) {
		bool gone = hk_pytarget_gone(&t);

		hk_pytarget_close(&t);
		snprintf(what, len, gone ? "the process has exited"
					 : "could not restore its allocator tables: %s", err);
		return gone ? 0 : -1;
	}
	if (!same_process(pid, rec->target_start, &t)) {
		snprintf(what, len, "the process has exited");
		rc = 0;
	} else if (hk_hooks_plan(&h, &t, err, sizeof(err)) ||
		   (n = hk_hooks_reset(&h, &t, err, sizeof(err))) < 0) {
		snprintf(what, len, "could not restore its allocator tables: %s", err);
	} else if ((left = probes_left(&h, &t))) {
		snprintf(what, len, "%d allocator table slots restored, but %d probes are still in its code",
			 n, left);
	} else {
		if (n)
			snprintf(what, len, "%d allocator table slots restored", n);
		else
			snprintf(what, len, "its allocator tables were CPython's already");
		rc = 0;
	}
	hk_pytarget_close(&t);
	return rc;
}

int hk_orphan_clean(pid_t pid, bool snapshot)
{
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)], what[600];
	const char *none = snapshot ? ": no snapshot" : "";
	struct hk_lock_rec rec;
	int lock = hk_lock_wait(pid, &rec, WAIT_S), rc;

	if (lock == -2)
		return hk_fail("the hawk-bpf daemon (PID %d) of the session for PID %d does not answer",
			       (int)rec.owner, (int)pid);
	if (lock < 0)
		return hk_fail("cannot lock the session for PID %d: %s", (int)pid,
			       strerror(errno));
	/* ended meanwhile, as asked (SIGTERM): its socket went before its lock */
	if (!hk_socket_exists(pid)) {
		hk_lock_release(lock, pid);
		return -1;
	}
	if (!rec.owner || !rec.daemon) {
		/* its record is gone: which process it traced is not known */
		hk_socket_path(sock, sizeof(sock), pid);
		unlink(sock);
		hk_lock_release(lock, pid);
		hk_fail("the hawk-bpf daemon of the session for PID %d had died%s; removed its socket (its record is gone: PID %d left alone)",
			(int)pid, none, (int)pid);
		return HK_EXIT_ORPHAN;
	}
	if (!wait_gone(&rec)) {
		close(lock);
		return hk_fail("the hawk-bpf daemon (PID %d) of the session for PID %d does not answer and has not exited",
			       (int)rec.owner, (int)pid);
	}
	rc = restore(pid, &rec, what, sizeof(what)) ? 1 : HK_EXIT_ORPHAN;
	hk_socket_path(sock, sizeof(sock), pid);
	unlink(sock);
	hk_lock_release(lock, pid);
	hk_fail("the hawk-bpf daemon (PID %d) of the session for PID %d had died%s; cleaned up after it: %s",
		(int)rec.owner, (int)pid, none, what);
	return rc;
}

/* One process of a dead host-wide session, under its own lock (another
 * hawk-bpf may trace it by now: then it is left alone). 0 or -1. */
static int restore_one(pid_t pid, unsigned long long start, int *restored)
{
	struct hk_lock_rec rec = { .target_start = start }, held;
	char what[600];
	int lock = hk_lock_target(pid, NULL, &held), rc;

	if (lock == -2)
		return 0;
	if (lock < 0)
		return -1;
	rc = restore(pid, &rec, what, sizeof(what));
	if (rc == 0 && strstr(what, "restored"))
		(*restored)++;
	hk_lock_release(lock, pid);
	return rc;
}

int hk_orphan_clean_host(bool snapshot)
{
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *none = snapshot ? ": no snapshot" : "";
	struct hk_lock_rec rec;
	int lock = hk_lock_wait(HK_HOST, &rec, WAIT_S), restored = 0, failed = 0, n = 0;
	unsigned long long start;
	FILE *f;
	int pid;

	if (lock == -2)
		return hk_fail("the host-wide hawk-bpf daemon (PID %d) does not answer",
			       (int)rec.owner);
	if (lock < 0)
		return hk_fail("cannot lock the host-wide session: %s", strerror(errno));
	if (!hk_socket_exists(HK_HOST)) {
		hk_lock_release(lock, HK_HOST);
		return -1;
	}
	if (rec.owner && !wait_gone(&rec)) {
		close(lock);
		return hk_fail("the host-wide hawk-bpf daemon (PID %d) does not answer and has not exited",
			       (int)rec.owner);
	}
	if ((f = fopen(HK_RUN_DIR "/host.pids", "r"))) {
		while (fscanf(f, "%d %llu", &pid, &start) == 2) {
			n++;
			if (pid > 0 && restore_one(pid, start, &restored))
				failed++;
		}
		fclose(f);
	}
	unlink(HK_RUN_DIR "/host.pids");
	hk_socket_path(sock, sizeof(sock), HK_HOST);
	unlink(sock);
	hk_lock_release(lock, HK_HOST);
	hk_fail("the host-wide hawk-bpf daemon (PID %d) had died%s; cleaned up after it: of its %d processes, %d had their allocator tables restored%s",
		(int)rec.owner, none, n, restored,
		failed ? " (some could not be: see hawk-bpf status)" : "");
	return failed ? 1 : HK_EXIT_ORPHAN;
}

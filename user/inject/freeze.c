#include "freeze.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A thread we seized, or a zombie we could not (it runs no code, but the
 * kernel still counts it). Other failed seizes are not recorded, and reaped
 * threads are dropped, so a reused tid is seized afresh. */
enum { T_RUNNING, T_STOPPED, T_DEAD, T_ZOMBIE };

struct thr {
	pid_t tid;
	int state;
	int sig;		/* dequeued signal to re-inject on detach */
};

enum { S_FREEZING, S_FROZEN, S_FAILED, S_THAW };

struct hk_freezer {
	pid_t pid;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stage;
	pid_t helper_tid;
	bool leftover;		/* tracees left for the helper's exit to detach */
	int thaw_errno;
	struct thr *t;
	size_t n, cap;
	size_t nstopped, nsignals;
	bool group_stop;
	char err[256];
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* An integer field of /proc/PID/task/TID/status, or -1. */
static long status_field(pid_t pid, pid_t tid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* The state letter of /proc/PID/task/TID/stat ('?' if unreadable). */
static char task_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	p = strrchr(buf, ')');	/* comm may hold spaces and parens */
	return p && p[1] == ' ' && p[2] ? p[2] : '?';
}

static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = 0;
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
}

/* Why PTRACE_SEIZE of tid said EPERM, in words a user can act on. */
static void explain_eperm(struct hk_freezer *z, pid_t tid)
{
	long tracer = status_field(z->pid, tid, "TracerPid");
	char path[64], s[64];

	if (tracer > 0) {
		/* TracerPid names the tracing thread: report its process. */
		long tgid = status_field((pid_t)tracer, (pid_t)tracer, "Tgid");

		if (tgid <= 0)
			tgid = tracer;
		snprintf(path, sizeof(path), "/proc/%ld/comm", tgid);
		read_line(path, s, sizeof(s));
		snprintf(z->err, sizeof(z->err),
			 "PID %d is already traced by PID %ld (%s): a process has one tracer at a time",
			 (int)z->pid, tgid, s[0] ? s : "?");
		return;
	}
	read_line("/proc/sys/kernel/yama/ptrace_scope", s, sizeof(s));
	if (!strcmp(s, "3"))
		snprintf(z->err, sizeof(z->err),
			 "cannot freeze PID %d: ptrace is disabled (kernel.yama.ptrace_scope = 3, until reboot)",
			 (int)z->pid);
	else
		snprintf(z->err, sizeof(z->err),
			 "cannot freeze PID %d: ptrace not permitted%s%s%s (needs CAP_SYS_PTRACE)",
			 (int)z->pid, s[0] ? " (kernel.yama.ptrace_scope = " : "", s,
			 s[0] ? ")" : "");
}

static int add(struct hk_freezer *z, pid_t tid, int state)
{
	if (z->n == z->cap) {
		size_t cap = z->cap ? 2 * z->cap : 32;
		struct thr *nt = realloc(z->t, cap * sizeof(*nt));

		if (!nt) {
			snprintf(z->err, sizeof(z->err), "out of memory");
			return -1;
		}
		z->t = nt;
		z->cap = cap;
	}
	z->t[z->n++] = (struct thr){ .tid = tid, .state = state };
	return 0;
}

/* Seizes and interrupts every thread not yet known: how many were new, or
 * -1 with z->err set. */
static int scan(struct hk_freezer *z)
{
	char path[64];
	struct dirent *e;
	int added = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)z->pid);
	if (!(d = opendir(path))) {
		snprintf(z->err, sizeof(z->err), "PID %d: %s", (int)z->pid,
			 errno == ENOENT ? "no such process" : strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		size_t i;
		int err;

		if (tid <= 0)
			continue;
		for (i = 0; i < z->n && z->t[i].tid != tid; i++)
			;
		if (i < z->n)
			continue;
		if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
			char st;

			err = errno;
			/* Exited meanwhile, or a zombie (EPERM): it runs no code. */
			if (err == ESRCH || strchr("ZX?", st = task_state(z->pid, tid))) {
				if (err != ESRCH && st == 'Z' && add(z, tid, T_ZOMBIE) < 0) {
					closedir(d);
					return -1;
				}
				continue;
			}
			if (err == EPERM)
				explain_eperm(z, tid);
			else
				snprintf(z->err, sizeof(z->err), "ptrace(PTRACE_SEIZE) of thread %d of PID %d: %s",
					 (int)tid, (int)z->pid, strerror(err));
			closedir(d);
			return -1;
		}
		if (add(z, tid, T_RUNNING) < 0) {
			/* Not yet stopped: the helper's exit detaches it. */
			z->leftover = true;
			closedir(d);
			return -1;
		}
		/* ESRCH here means it is dying: waitid reports its exit. */
		ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
		added++;
	}
	closedir(d);
	return added;
}

/* Waits until every seized thread is in a ptrace-stop or gone: 0, or -1
 * with z->err set once deadline (ms) has passed. */
static int wait_stopped(struct hk_freezer *z, double deadline)
{
	for (unsigned idle = 0;;) {
		bool pending = false, progress = false;

		for (size_t i = 0; i < z->n;) {
			struct thr *t = &z->t[i];
			siginfo_t si = {0};
			int st, r;

			if (t->state != T_RUNNING) {
				i++;
				continue;
			}
			/* WNOWAIT leaves the stop unconsumed: if this process
			 * dies, the kernel still finds a caught signal there and
			 * delivers it (a reaped stop would be detached with 0). */
			r = waitid(P_PID, (id_t)t->tid, &si,
				   WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL);
			if (r == 0 && si.si_pid == 0) {
				/* A leader that exited before the other threads is
				 * never reported until they go: a zombie, settled. */
				if (idle && idle % 64 == 0 && strchr("ZX", task_state(z->pid, t->tid)))
					t->state = T_DEAD;
				else
					pending = true;
				i++;
				continue;
			}
			progress = true;
			if (r < 0 || si.si_code != CLD_TRAPPED) {
				waitpid(t->tid, &st, __WALL | WNOHANG);	/* reap */
				z->t[i] = z->t[--z->n];
				continue;
			}
			t->state = T_STOPPED;
			z->nstopped++;
			/* si_status: the stop signal | the ptrace event << 8. */
			if (si.si_status >> 8 == PTRACE_EVENT_STOP) {
				/* Our interrupt (SIGTRAP), or a group-stop that
				 * started before it: that one resumes on detach
				 * only as the group-stop allows (SIGCONT). */
				if ((si.si_status & 0xff) != SIGTRAP)
					z->group_stop = true;
			} else if (si.si_status >> 8 == 0) {
				/* Signal-delivery-stop: the signal was dequeued
				 * before our interrupt landed. Hold it here and
				 * hand it back on detach, in its place. */
				t->sig = si.si_status;
				z->nsignals++;
			}
			i++;
		}
		if (!pending)
			return 0;
		if (progress) {
			idle = 0;
			continue;
		}
		if (now_ms() > deadline) {
			for (size_t i = 0; i < z->n; i++) {
				char path[96], wchan[64];

				if (z->t[i].state != T_RUNNING)
					continue;
				snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan",
					 (int)z->pid, (int)z->t[i].tid);
				read_line(path, wchan, sizeof(wchan));
				snprintf(z->err, sizeof(z->err),
					 "thread %d of PID %d did not stop within %d ms (state %c%s%s)",
					 (int)z->t[i].tid, (int)z->pid, HK_FREEZE_TIMEOUT_MS,
					 task_state(z->pid, z->t[i].tid),
					 wchan[0] && strcmp(wchan, "0") ? ", in " : "", wchan);
				break;
			}
			return -1;
		}
		idle++;
		nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
	}
}

/* Stopped threads only can be detached. Others (never stopped, or killed
 * meanwhile) stay attached to the helper thread, whose exit detaches and
 * reaps them as a tracer's death does. */
static void detach_all(struct hk_freezer *z)
{
	for (size_t i = 0; i < z->n; i++) {
		struct thr *t = &z->t[i];

		if (t->state == T_ZOMBIE)
			continue;
		if (t->state == T_STOPPED &&
		    ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->sig) == 0)
			continue;
		z->leftover = true;
		if (t->state == T_STOPPED && errno != ESRCH)
			z->thaw_errno = errno;
	}
	z->n = 0;
}

static int freeze_all(struct hk_freezer *z)
{
	double deadline = now_ms() + HK_FREEZE_TIMEOUT_MS;
	int added;

	/* A thread may clone before it stops, and a listing of /proc/PID/task
	 * skips a thread when another one exits while it is read: scan again
	 * until, with every known thread stopped, a scan finds no new one and
	 * the kernel counts no thread we do not know (its count includes
	 * zombies until they are reaped, as our list does). */
	for (;;) {
		if ((added = scan(z)) < 0 || wait_stopped(z, deadline) < 0)
			return -1;
		if (!added && status_field(z->pid, z->pid, "Threads") <= (long)z->n)
			break;
		if (now_ms() > deadline) {
			snprintf(z->err, sizeof(z->err), "PID %d: threads kept appearing for %d ms",
				 (int)z->pid, HK_FREEZE_TIMEOUT_MS);
			return -1;
		}
	}
	if (!z->nstopped) {
		snprintf(z->err, sizeof(z->err), "PID %d: process exited", (int)z->pid);
		return -1;
	}
	return 0;
}

static void set_stage(struct hk_freezer *z, int stage)
{
	pthread_mutex_lock(&z->mu);
	z->stage = stage;
	pthread_cond_broadcast(&z->cv);
	pthread_mutex_unlock(&z->mu);
}

/* ptrace binds tracees to the tracing thread: one thread per freeze, so
 * its exit releases whatever could not be detached explicitly. */
static void *helper(void *arg)
{
	struct hk_freezer *z = arg;
	bool ok;

	z->helper_tid = gettid();
	prctl(PR_SET_TIMERSLACK, 1UL);	/* its polls are 20 us naps */
	ok = freeze_all(z) == 0;
	if (!ok)
		detach_all(z);
	set_stage(z, ok ? S_FROZEN : S_FAILED);
	if (ok) {
		pthread_mutex_lock(&z->mu);
		while (z->stage != S_THAW)
			pthread_cond_wait(&z->cv, &z->mu);
		pthread_mutex_unlock(&z->mu);
		detach_all(z);
	}
	return NULL;
}

/* pthread_join returns before the kernel runs the helper's ptrace exit:
 * wait until its task is gone, so a thread left attached is free again. */
static void finish(struct hk_freezer *z)
{
	char path[64];
	struct stat sb;
	double end = now_ms() + 1000;

	pthread_join(z->thread, NULL);
	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)z->helper_tid);
	while (z->leftover && stat(path, &sb) == 0 && now_ms() < end)
		nanosleep(&(struct timespec){ .tv_nsec = 50000 }, NULL);
	pthread_cond_destroy(&z->cv);
	pthread_mutex_destroy(&z->mu);
	free(z->t);
}

int hk_freeze(pid_t pid, struct hk_frozen *f, char *err, size_t errlen)
{
	struct hk_freezer *z;
	sigset_t all, old;
	int rc;

	memset(f, 0, sizeof(*f));
	if (pid <= 0 || pid == getpid()) {
		snprintf(err, errlen, "PID %d: cannot freeze %s", (int)pid,
			 pid <= 0 ? "an invalid PID" : "the calling process");
		return -1;
	}
	if (!(z = calloc(1, sizeof(*z)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	z->pid = pid;
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->cv, NULL);
	/* The helper takes no signals: the caller's handlers stay on its own
	 * threads, and the helper's waits are never cut short. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&z->thread, NULL, helper, z);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		snprintf(err, errlen, "cannot start the freeze thread: %s", strerror(rc));
		pthread_cond_destroy(&z->cv);
		pthread_mutex_destroy(&z->mu);
		free(z);
		return -1;
	}
	pthread_mutex_lock(&z->mu);
	while (z->stage == S_FREEZING)
		pthread_cond_wait(&z->cv, &z->mu);
	pthread_mutex_unlock(&z->mu);
	if (z->stage == S_FAILED) {
		finish(z);
		snprintf(err, errlen, "%s", z->err);
		free(z);
		return -1;
	}
	f->pid = pid;
	f->nthreads = z->nstopped;
	f->nsignals = z->nsignals;
	f->group_stop = z->group_stop;
	f->priv = z;
	return 0;
}

int hk_thaw(struct hk_frozen *f)
{
	struct hk_freezer *z = f->priv;
	int e;

	if (!z) {
		errno = EINVAL;
		return -1;
	}
	set_stage(z, S_THAW);
	finish(z);
	e = z->thaw_errno;
	free(z);
	memset(f, 0, sizeof(*f));
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

/* The per-target lock, and cleaning up stale ones (see lock.h). */
#include "lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "pidlock.h"
#include "proc.h"

/* The pidfd lock (pidlock.h) taken with each /run lock fd we hold; a
 * host-wide run takes its locks from several threads. */
static struct held { int fd, pidfd; } *held;
static size_t nheld;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

static void hold_pidfd(int fd, int pidfd)
{
	struct held *h;

	if (pidfd < 0)
		return;
	pthread_mutex_lock(&held_mu);
	h = realloc(held, (nheld + 1) * sizeof(*held));
	if (h) {
		held = h;
		held[nheld++] = (struct held){ fd, pidfd };
	}
	/* else kept until exit: the lock then lasts as long as we do */
	pthread_mutex_unlock(&held_mu);
}

static void drop_pidfd(int fd)
{
	pthread_mutex_lock(&held_mu);
	for (size_t i = 0; i < nheld; i++)
		if (held[i].fd == fd) {
			close(held[i].pidfd);
			held[i--] = held[--nheld];
		}
	pthread_mutex_unlock(&held_mu);
}

/* PID 0 is no process: it names the host-wide session ("host"). */
static void lock_path(char *buf, size_t len, pid_t pid)
{
	if (pid == HK_HOST)
		snprintf(buf, len, HK_RUN_DIR "/host.lock");
	else
		snprintf(buf, len, HK_RUN_DIR "/%d.lock", (int)pid);
}

void hk_socket_path(char *buf, size_t len, pid_t pid)
{
	if (pid == HK_HOST)
		snprintf(buf, len, HK_RUN_DIR "/host.sock");
	else
		snprintf(buf, len, HK_RUN_DIR "/%d.sock", (int)pid);
}

bool hk_socket_exists(pid_t pid)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;

	hk_socket_path(path, sizeof(path), pid);
	return lstat(path, &st) == 0;
}

static unsigned long long start_of(pid_t pid)
{
	struct hk_proc_stat st;

	return hk_proc_stat(pid, &st) ? 0 : st.start;
}

void hk_lock_owner(int fd, pid_t target, const char *role)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "%d %s %llu %llu\n", (int)getpid(), role,
			 start_of(getpid()), start_of(target));

	/* written over the old record, then cut: a reader never sees none */
	if (pwrite(fd, buf, (size_t)n, 0) == n)
		(void)!ftruncate(fd, n);
}

static void read_rec(int fd, struct hk_lock_rec *rec)
{
	char buf[128] = "", role[16] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	int owner = 0;

	memset(rec, 0, sizeof(*rec));
	if (n <= 0)
		return;
	buf[n] = 0;
	if (sscanf(buf, "%d %15s %llu %llu", &owner, role, &rec->owner_start,
		   &rec->target_start) >= 1 && owner > 0) {
		rec->owner = owner;
		rec->daemon = strcmp(role, "daemon") == 0;
	}
}

/* Whether fd is still the file at path (not removed by its last holder). */
static bool same_file(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* flock, retried for 50 ms: a sweep holds a stale lock for microseconds,
 * a tracer for as long as it traces. 0, or -1 (EWOULDBLOCK: held). */
static int take(int fd)
{
	const struct timespec pause = { .tv_nsec = 2000000 };

	for (int i = 0; i < 25; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -1;
		nanosleep(&pause, NULL);
	}
	errno = EWOULDBLOCK;
	return -1;
}

int hk_lock_target(pid_t pid, const char *role, struct hk_lock_rec *rec)
{
	char path[64];

	memset(rec, 0, sizeof(*rec));
	if (mkdir(HK_RUN_DIR, 0700) && errno != EEXIST)
		return -1;
	lock_path(path, sizeof(path), pid);
	/* A holder removes the file while it holds the lock: a lock won on a
	 * removed file is retried on the new one. */
	for (int tries = 0; tries < 100; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0)
			return -1;
		if (take(fd)) {
			int busy = errno == EWOULDBLOCK;

			read_rec(fd, rec);
			close(fd);
			if (busy)
				return -2;
			return -1;
		}
		if (same_file(fd, path)) {
			int pidfd = hk_pidlock_take(pid);

			read_rec(fd, rec);
			if (pidfd == -2) {
				/* ours here, held in another namespace */
				memset(rec, 0, sizeof(*rec));
				rec->elsewhere = true;
				unlink(path);
				close(fd);
				return -2;
			}
			hold_pidfd(fd, pidfd);
			if (role)
				hk_lock_owner(fd, pid, role);
			return fd;
		}
		close(fd);
	}
	errno = EAGAIN;
	return -1;
}

int hk_lock_wait(pid_t pid, struct hk_lock_rec *rec, double seconds)
{
	const struct timespec pause = { .tv_nsec = 50000000 };
	int fd;

	for (int i = 0; (fd = hk_lock_target(pid, NULL, rec)) == -2 && i < seconds * 20; i++)
		nanosleep(&pause, NULL);
	return fd;
}

int hk_lock_or_refuse(pid_t pid, const char *role)
{
	struct hk_lock_rec rec;
	int fd;

	hk_lock_sweep();
	fd = hk_lock_target(pid, role, &rec);
	if (fd == -2 && rec.owner > 0)
		fprintf(stderr, "hawk-bpf: already tracing PID %d (hawk-bpf%s PID %d)%s\n",
			(int)pid, rec.daemon ? " daemon" : "", (int)rec.owner,
			rec.daemon ? ": hawk-bpf stop -p ends it" : "");
	else if (fd == -2 && rec.elsewhere)
		fprintf(stderr, "hawk-bpf: already tracing PID %d (a hawk-bpf in another mount or PID namespace)\n",
			(int)pid);
	else if (fd == -2)
		fprintf(stderr, "hawk-bpf: already tracing PID %d (another hawk-bpf)\n",
			(int)pid);
	else if (fd < 0)
		fprintf(stderr, "hawk-bpf: cannot create " HK_RUN_DIR ": %s\n",
			strerror(errno));
	return fd < 0 ? -1 : fd;
}

void hk_lock_release(int fd, pid_t pid)
{
	char path[64];

	lock_path(path, sizeof(path), pid);
	unlink(path);
	drop_pidfd(fd);
	close(fd);
}

/* "PID.lock": its PID, else 0. */
static pid_t lock_name_pid(const char *name)
{
	char *end;
	long v;

	if (name[0] < '1' || name[0] > '9')
		return 0;
	errno = 0;
	v = strtol(name, &end, 10);
	return !errno && v <= INT_MAX && strcmp(end, ".lock") == 0 ? (pid_t)v : 0;
}

/* Removes PID.lock if nobody holds it. Its socket is looked at with the
 * lock held, when no daemon can be starting for PID: a socket left then is
 * a killed daemon's, whose record stop and snapshot need. */
static void sweep_one(pid_t pid)
{
	char path[64];
	int fd;

	lock_path(path, sizeof(path), pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && same_file(fd, path) &&
	    !hk_socket_exists(pid))
		unlink(path);
	close(fd);
}

void hk_lock_sweep(void)
{
	DIR *d = opendir(HK_RUN_DIR);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		pid_t pid = lock_name_pid(e->d_name);

		if (pid)
			sweep_one(pid);
	}
	closedir(d);
}

bool hk_lock_owner_alive(const struct hk_lock_rec *rec)
{
	struct hk_proc_stat st;

	/* without its start time, a PID alone could be anyone's by now */
	if (rec->owner <= 0 || !rec->owner_start || hk_proc_stat(rec->owner, &st))
		return false;
	return st.start == rec->owner_start && st.state != 'Z' && st.state != 'X';
}

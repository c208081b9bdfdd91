/* "hawk-bpf start": the tracing daemon (see daemon.h, session.h). */
#include "daemon.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "pytarget.h"
#include "session.h"
#include "tracer.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct daemon {
	const struct hk_options *o;
	struct hk_pytarget t;
	struct hk_tracer *tr;		/* NULL once the target has exited */
	struct hk_result last;		/* the record when it exited */
	bool exited;
	int rootfd, cwdfd;
	struct hk_creds creds;	/* the target's, for its source lines */
	char comm[64];
	char since[32];			/* ISO 8601, UTC */
	int stop_conn;			/* the "stop" client, answered last */
};

/* ---- requests ----------------------------------------------------------- */

void hk_daemon_reply_error(int fd, const char *msg)
{
	char line[600];
	int n = snprintf(line, sizeof(line), "error %s\n", msg);

	hk_send_all(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

bool hk_daemon_parse_format(const char *s, enum hk_format *f)
{
	for (enum hk_format i = HK_FMT_LINENO; i <= HK_FMT_FOLDED; i++)
		if (i != HK_FMT_JSON && i != HK_FMT_TEXT &&
		    strcmp(s, hk_format_name(i)) == 0) {
			*f = i;
			return true;
		}
	return false;
}

static void serve_snapshot(struct daemon *d, int fd, const char *args)
{
	struct hk_options o = *d->o;
	struct hk_result now, *r = &d->last;
	char fmt[16], err[512];
	unsigned count;
	int cum;
	char *hdr = NULL, *body = NULL;
	size_t hlen = 0, blen = 0;
	FILE *h, *b;
	int rc;

	if (sscanf(args, "%15s %u %d", fmt, &count, &cum) != 3 ||
	    !hk_daemon_parse_format(fmt, &o.format) || count < 1 || count > HK_COUNT_MAX ||
	    (cum && o.format == HK_FMT_TRACEBACK)) {
		hk_daemon_reply_error(fd, "bad snapshot request");
		return;
	}
	o.count = count;
	o.cumulative = cum != 0;
	if (d->tr) {
		if (hk_trace_snapshot(d->tr, &now, err, sizeof(err))) {
			hk_result_free(&now);
			hk_daemon_reply_error(fd, err);
			return;
		}
		r = &now;
	}
	h = open_memstream(&hdr, &hlen);
	b = open_memstream(&body, &blen);
	if (!h || !b) {
		hk_daemon_reply_error(fd, "out of memory");
		rc = -1;
	} else {
		if (d->exited)
			fprintf(h, "hawk-bpf: process %d exited; reporting %s\n",
				(int)d->t.pid, r->finalizing
				? "the blocks alive when it began to shut down"
				: "what was traced until then");
		hk_warn_losses(h, r);
		rc = hk_write_report(b, &o, &d->t, r, d->rootfd, d->cwdfd, &d->creds, true);
		fprintf(h, rc ? "error cannot write the report\n" : "ok\n");
	}
	if (h)
		fclose(h);
	if (b)
		fclose(b);
	if (hdr && hk_send_all(fd, hdr, hlen) == 0 && rc == 0 && body)
		hk_send_all(fd, body, blen);
	free(hdr);
	free(body);
	if (r == &now)
		hk_result_free(&now);
}

static void serve_status(struct daemon *d, int fd)
{
	uint64_t blocks = 0, counters[HK_CNT_MAX] = {0};
	double bytes = 0;
	json_t *j;

	if (d->tr) {
		if (hk_trace_count(d->tr, &blocks, &bytes, counters)) {
			hk_daemon_reply_error(fd, "cannot read the live blocks");
			return;
		}
	} else {
		blocks = d->last.ntraces;
		bytes = hk_result_bytes(&d->last);
		memcpy(counters, d->last.counters, sizeof(counters));
	}
	j = json_pack("{s:i, s:i, s:s, s:s, s:s, s:b, s:I, s:f, s:I, s:b, s:i, s:o}",
		      "pid", (int)d->t.pid, "daemon_pid", (int)getpid(),
		      "comm", d->comm, "since", d->since, "python", d->t.version,
		      "exited", d->exited, "blocks", (json_int_t)blocks,
		      "bytes", bytes, "drops", (json_int_t)hk_losses(counters),
		      "sampling", d->o->sample, "frames", (int)d->o->frames,
		      "counters", hk_counters_json(counters));
	hk_daemon_reply_json(fd, j);
}

void hk_daemon_reply_json(int fd, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (!s) {
		hk_daemon_reply_error(fd, "out of memory");
	} else {
		hk_send_all(fd, "ok\n", 3);
		hk_send_all(fd, s, strlen(s));
		hk_send_all(fd, "\n", 1);
	}
	free(s);
	json_decref(j);
}

/* One request's line from a root client: its connection, or -1. */
static int accept_request(int lsock, char *line, size_t size)
{
	struct timeval rto = { .tv_sec = 2 }, sto = { .tv_sec = 60 };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	size_t n = 0;
	int fd = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof(rto));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sto, sizeof(sto));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid != 0) {
		hk_daemon_reply_error(fd, "not permitted: root only");
		close(fd);
		return -1;
	}
	while (n < size - 1) {
		ssize_t r = read(fd, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	return fd;
}

int hk_daemon_serve(int lsock, const struct hk_daemon_handlers *h, void *ctx,
		    int *stop_conn)
{
	char line[256];
	int fd = accept_request(lsock, line, sizeof(line));

	if (fd < 0)
		return 0;
	if (strcmp(line, "status") == 0) {
		h->status(ctx, fd);
	} else if (strncmp(line, "snapshot ", 9) == 0) {
		h->snapshot(ctx, fd, line + 9);
	} else if (strcmp(line, "stop") == 0) {
		if (*stop_conn >= 0)
			close(*stop_conn);
		*stop_conn = fd;
		return 1;
	} else {
		hk_daemon_reply_error(fd, "unknown request");
	}
	close(fd);
	return 0;
}

static void status_cb(void *d, int fd)
{
	serve_status(d, fd);
}

static void snapshot_cb(void *d, int fd, const char *args)
{
	serve_snapshot(d, fd, args);
}

static const struct hk_daemon_handlers handlers = { status_cb, snapshot_cb };

/* ---- the daemon --------------------------------------------------------- */

int hk_daemon_listen(pid_t pid, char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	hk_socket_path(a.sun_path, sizeof(a.sun_path), pid);
	unlink(a.sun_path);	/* a killed daemon's: we hold the lock */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    chmod(a.sun_path, 0600) || listen(fd, 16)) {
		snprintf(err, errlen, "cannot serve %s: %s", a.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(a.sun_path);
		return -1;
	}
	return fd;
}

static void read_comm(pid_t pid, char *buf, size_t len)
{
	char p[64];
	FILE *f;

	snprintf(buf, len, "?");
	snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
	if ((f = fopen(p, "r"))) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
}

void hk_daemon_quiet(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* Every fd above stderr but keep: the daemon must not hold its caller's
 * pipes open for as long as it traces. */
static void close_inherited(int keep)
{
	if (keep > 3)
		close_range(3, (unsigned)keep - 1, 0);
	close_range(keep < 3 ? 3U : (unsigned)keep + 1, ~0U, 0);
}

/* Runs in the daemon with stderr on the pipe to the invoking process. */
static int daemon_main(const struct hk_options *o, int lock)
{
	struct daemon d = { .o = o, .rootfd = -1, .cwdfd = -1, .stop_conn = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	struct hk_trace_opts to;
	char err[512], p[64], warn[512] = "";
	time_t t0 = time(NULL);
	struct tm tm;
	int lsock;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	if (chdir("/"))
		return 1;
	hk_lock_owner(lock, o->pid, "daemon");
	if (hk_pytarget_open(&d.t, o->pid, err, sizeof(err))) {
		fprintf(stderr, "hawk-bpf: %s\n", err);
		hk_pytarget_close(&d.t);
		return 1;
	}
	hk_creds_hold(o->pid, &d.rootfd, &d.cwdfd, &d.creds);
	read_comm(o->pid, d.comm, sizeof(d.comm));
	gmtime_r(&t0, &tm);
	strftime(d.since, sizeof(d.since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	lsock = hk_daemon_listen(o->pid, err, sizeof(err));
	if (lsock < 0) {
		fprintf(stderr, "hawk-bpf: %s\n", err);
		hk_pytarget_close(&d.t);
		return 1;
	}
	to = (struct hk_trace_opts){ .frames = o->frames, .duration_ms = 0,
				     .max_blocks = o->max_blocks,
				     .need_total = true,	/* pickles */
				    .alloc_totals = true,	/* pprof snapshots */
				     .sample = o->sample ? &o->rates : NULL,
				     .stop = &stop_flag };
	if (hk_trace_start(&d.tr, &d.t, &to, err, sizeof(err))) {
		fprintf(stderr, "hawk-bpf: %s\n", err);
		p[0] = 0;
		hk_socket_path(p, sizeof(p), o->pid);
		unlink(p);
		hk_pytarget_close(&d.t);
		return 1;
	}
	/* The tracing line is out: the invoking process may go. */
	hk_daemon_quiet();
	while (!stop_flag) {
		struct pollfd pf[2] = {
			{ .fd = lsock, .events = POLLIN },
			{ .fd = d.tr ? hk_trace_fd(d.tr) : -1, .events = POLLIN },
		};

		poll(pf, 2, 200);
		int gone = d.tr ? hk_trace_poll(d.tr, 0) : 0;

		if (gone) {
			/* Keep its last record for snapshots and status. */
			memset(&d.last, 0, sizeof(d.last));
			d.last.target_exited = gone == 1;
			hk_trace_stop(d.tr, &d.last, err, sizeof(err));
			d.tr = NULL;
			d.exited = true;
		}
		if ((pf[0].revents & POLLIN) &&
		    hk_daemon_serve(lsock, &handlers, &d, &d.stop_conn))
			stop_flag = 1;
	}
	/* Tables back, probes off, files gone; then answer "stop". */
	if (d.tr && hk_trace_stop(d.tr, NULL, warn, sizeof(warn)) == 0)
		warn[0] = 0;
	if (d.exited)
		hk_result_free(&d.last);
	hk_socket_path(p, sizeof(p), o->pid);
	unlink(p);
	close(lsock);
	hk_lock_release(lock, o->pid);
	if (d.stop_conn >= 0) {
		char line[700];
		int n = warn[0] && !d.exited
			? snprintf(line, sizeof(line), "hawk-bpf: warning: %s (the sampling trampoline stays; it works without hawk-bpf)\nok\n", warn)
			: snprintf(line, sizeof(line), "ok\n");

		if (n > 0)
			hk_send_all(d.stop_conn, line, strlen(line));
		close(d.stop_conn);
	}
	hk_pytarget_close(&d.t);
	return 0;
}

int hk_daemon_start(const struct hk_options *o)
{
	char buf[4096];
	size_t len = 0;
	pid_t child, who = o->hostwide ? HK_HOST : o->pid;
	int lock, pfd[2];
	ssize_t n;

	lock = o->hostwide ? hk_host_lock() : hk_lock_or_refuse(o->pid, "daemon");
	if (lock < 0)
		return 1;
	if (lock < 3) {
		/* The caller closed stdio: keep the lock above stderr. */
		int fd = fcntl(lock, F_DUPFD_CLOEXEC, 3);

		close(lock);
		lock = fd;
		if (lock < 0) {
			fprintf(stderr, "hawk-bpf: %s\n", strerror(errno));
			return 1;
		}
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		fprintf(stderr, "hawk-bpf: cannot make a pipe: %s\n", strerror(errno));
		return 1;
	}
	fflush(stdout);
	fflush(stderr);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "hawk-bpf: cannot fork: %s\n", strerror(errno));
		return 1;
	}
	if (child == 0) {
		/* Out of the caller's session, and not its child: the
		 * daemon outlives the shell. */
		close(pfd[0]);
		setsid();
		child = fork();
		if (child != 0)
			_exit(child < 0 ? 1 : 0);
		dup2(pfd[1], 2);
		close(pfd[1]);
		close_inherited(lock);
		if (o->hostwide ? hk_hostdaemon_main(o, lock) : daemon_main(o, lock)) {
			hk_lock_release(lock, who);
			_exit(1);
		}
		_exit(0);
	}
	close(pfd[1]);
	close(lock);	/* the daemon holds it now */
	waitpid(child, NULL, 0);
	/* The daemon's stderr until it is tracing (or has failed). */
	while (len < sizeof(buf) - 1 &&
	       ((n = read(pfd[0], buf + len, sizeof(buf) - 1 - len)) > 0 ||
		(n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	close(pfd[0]);
	buf[len] = 0;
	fputs(buf, stderr);
	for (char *l = buf; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
		if (strncmp(l, "hawk-bpf: tracing ", 18) == 0)
			return 0;
	if (!len && o->hostwide)
		fprintf(stderr, "hawk-bpf: the host-wide tracing daemon died before its probes were live\n");
	else if (!len)
		fprintf(stderr, "hawk-bpf: the tracing daemon for PID %d died before its probes were live\n",
			(int)o->pid);
	return 1;
}

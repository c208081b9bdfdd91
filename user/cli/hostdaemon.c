/* The host-wide session: "hawk-bpf start" without -p (or with a PID
 * list or selectors) traces every CPython process it admits, as the
 * host-wide profile does (procset.h), until "hawk-bpf stop". It serves
 * /run/hawk-bpf/host.sock with the protocol of session.h; a snapshot is
 * the host-wide report (hostreport.h) of the blocks live now. What it
 * traces is kept in host.pids ("PID START" lines), so that a stop after
 * it was killed can put their allocator tables back (orphan.h). */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "hostreport.h"
#include "lock.h"
#include "procset.h"
#include "session.h"
#include "util.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int hk_host_lock(void)
{
	struct hk_lock_rec rec;
	int fd;

	hk_lock_sweep();
	fd = hk_lock_target(HK_HOST, "daemon", &rec);
	if (fd == -2)
		fprintf(stderr, "hawk-bpf: a host-wide session runs already (hawk-bpf daemon PID %d): hawk-bpf stop ends it\n",
			(int)rec.owner);
	else if (fd < 0)
		fprintf(stderr, "hawk-bpf: cannot create " HK_RUN_DIR ": %s\n", strerror(errno));
	if (fd >= 0 && fd < 3) {	/* the caller closed stdio */
		int up = fcntl(fd, F_DUPFD_CLOEXEC, 3);

		close(fd);
		fd = up;
	}
	return fd < 0 ? -1 : fd;
}

/* host.pids, rewritten whole whenever the traced set changes. */
static void write_pids(const struct hk_procset *ps, size_t *written)
{
	char tmp[] = HK_RUN_DIR "/host.pids.XXXXXX";
	int fd;
	FILE *f;

	if (*written == ps->ntraced)
		return;
	fd = mkstemp(tmp);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	for (size_t i = 0; i < ps->ntraced; i++)
		if (ps->traced[i]->tr)
			fprintf(f, "%d %llu\n", (int)ps->traced[i]->info.pid,
				ps->traced[i]->info.start);
	if (fclose(f) == 0 && rename(tmp, HK_RUN_DIR "/host.pids") == 0)
		*written = ps->ntraced;
	else
		unlink(tmp);
}

struct host {
	const struct hk_options *o;
	struct hk_procset ps;
	double start;
	char since[32];
	int stop_conn;
};

static void serve_snapshot(struct host *h, int fd, const char *args)
{
	struct hk_options o = *h->o;
	char fmt[16];
	unsigned count;
	int cum, merge = 0;
	char *body = NULL;
	size_t blen = 0;
	FILE *b;
	int rc;

	if (sscanf(args, "%15s %u %d %d", fmt, &count, &cum, &merge) < 3 ||
	    !hk_daemon_parse_format(fmt, &o.format) || count < 1 ||
	    count > HK_COUNT_MAX || (cum && o.format == HK_FMT_TRACEBACK)) {
		hk_daemon_reply_error(fd, "bad snapshot request");
		return;
	}
	o.count = count;
	o.cumulative = cum != 0;
	o.merge = merge != 0;
	if (o.format == HK_FMT_PICKLE && !o.merge) {
		hk_daemon_reply_error(fd, "a pickle of the host-wide session is one snapshot: ask for it with --merge");
		return;
	}
	hk_procset_snapshot(&h->ps);
	b = open_memstream(&body, &blen);
	rc = b ? hk_hostreport_write(b, &o, &h->ps, now() - h->start, true) : -1;
	if (b)
		fclose(b);
	hk_procset_unsnap(&h->ps);
	if (rc || !body) {
		hk_daemon_reply_error(fd, "cannot write the report");
	} else if (hk_send_all(fd, "ok\n", 3) == 0) {
		hk_send_all(fd, body, blen);
	}
	free(body);
}

static void serve_status(struct host *h, int fd)
{
	uint64_t blocks, counters[HK_CNT_MAX];
	double bytes;
	size_t live = 0;

	hk_procset_count(&h->ps, &blocks, &bytes, counters);
	for (size_t i = 0; i < h->ps.ntraced; i++)
		live += h->ps.traced[i]->tr != NULL;
	hk_daemon_reply_json(fd, json_pack("{s:i, s:i, s:s, s:s, s:s, s:b, s:I, s:f, s:I, s:b, s:i, s:I, s:I, s:o}",
		      "pid", 0, "daemon_pid", (int)getpid(), "comm", "(host-wide)",
		      "since", h->since, "python", "", "exited", false,
		      "blocks", (json_int_t)blocks, "bytes", bytes,
		      "drops", (json_int_t)hk_losses(counters), "sampling", h->o->sample,
		      "frames", (int)h->o->frames, "processes", (json_int_t)live,
		      "skipped", (json_int_t)h->ps.nskipped,
		      "counters", hk_counters_json(counters)));
}

static void status_cb(void *h, int fd)
{
	serve_status(h, fd);
}

static void snapshot_cb(void *h, int fd, const char *args)
{
	serve_snapshot(h, fd, args);
}

static const struct hk_daemon_handlers handlers = { status_cb, snapshot_cb };

int hk_hostdaemon_main(const struct hk_options *o, int lock)
{
	struct host h = { .o = o, .stop_conn = -1 };
	struct hk_select sel = { o->pids, o->npids, o->match, o->container, o->cgroup };
	struct hk_trace_opts to = { .frames = o->frames, .max_blocks = o->max_blocks,
				    .need_total = true,	/* pickles */
				    .alloc_totals = true,	/* pprof snapshots */
				    .sample = o->sample ? &o->rates : NULL,
				    .stop = &stop_flag, .quiet = true };
	struct sigaction sa = { .sa_handler = on_signal };
	char err[1024], sock[128];
	time_t t0 = time(NULL);
	struct tm tm;
	size_t written = (size_t)-1;
	int lsock;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	if (chdir("/"))
		return 1;
	hk_lock_owner(lock, HK_HOST, "daemon");
	gmtime_r(&t0, &tm);
	strftime(h.since, sizeof(h.since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	lsock = hk_daemon_listen(HK_HOST, err, sizeof(err));
	if (lsock < 0) {
		fprintf(stderr, "hawk-bpf: %s\n", err);
		return 1;
	}
	hk_socket_path(sock, sizeof(sock), HK_HOST);
	err[0] = 0;
	if (hk_procset_start(&h.ps, &sel, &to, err, sizeof(err)) || !h.ps.ntraced) {
		if (!err[0] && h.ps.nskipped)
			snprintf(err, sizeof(err), "none of the %zu CPython processes found could be traced (PID %d: %s)",
				 h.ps.nskipped, (int)h.ps.skipped[0].info.pid,
				 h.ps.skipped[0].reason);
		else if (!err[0])
			snprintf(err, sizeof(err), "no CPython process matches the selection");
		fprintf(stderr, "hawk-bpf: %s\n", err);
		hk_procset_free(&h.ps);
		unlink(sock);
		close(lsock);
		return 1;
	}
	write_pids(&h.ps, &written);
	h.start = now();
	fprintf(stderr, "hawk-bpf: tracing %zu process%s until stopped; %zu skipped\n",
		h.ps.ntraced, h.ps.ntraced == 1 ? "" : "es", h.ps.nskipped);
	fflush(stderr);
	hk_daemon_quiet();
	while (!stop_flag) {
		struct pollfd pf = { .fd = lsock, .events = POLLIN };

		hk_procset_poll(&h.ps, 50);
		write_pids(&h.ps, &written);
		if (poll(&pf, 1, 0) == 1 &&
		    hk_daemon_serve(lsock, &handlers, &h, &h.stop_conn))
			stop_flag = 1;
	}
	hk_procset_stop(&h.ps);
	hk_procset_free(&h.ps);
	unlink(HK_RUN_DIR "/host.pids");
	unlink(sock);
	close(lsock);
	hk_lock_release(lock, HK_HOST);
	if (h.stop_conn >= 0) {
		hk_send_all(h.stop_conn, "ok\n", 3);
		close(h.stop_conn);
	}
	return 0;
}

/* hawk-bpf: tracemalloc for a running CPython process, from outside. */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "compare.h"
#include "merge.h"
#include "daemon.h"
#include "hostwide.h"
#include "interval.h"
#include "options.h"
#include "outfile.h"
#include "pickle.h"
#include "pytarget.h"
#include "session.h"
#include "serve.h"
#include "tracer.h"
#include "util.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Root, or the capabilities the help text names. */
static int privileged(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (geteuid() == 0)
		return 1;
	if (syscall(SYS_capget, &h, d))
		return 0;
#define HAS(c) (d[(c) / 32].effective & (1u << ((c) % 32)))
	return HAS(CAP_SYS_ADMIN) && HAS(CAP_SYS_PTRACE);
#undef HAS
}

static void handle_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The target's root and cwd, held open from the start so source lines
 * can still be read if the target exits during the window, and its
 * credentials, which they are read with. */
static int rootfd = -1, cwdfd = -1;
static struct hk_creds creds;

/* The report into out, put in place: 0, or 1 with one line naming the
 * file and the reason. */
static int write_out(struct hk_out *out, const struct hk_options *o,
		     const struct hk_pytarget *t, const struct hk_result *r)
{
	struct timespec a, b;
	char err[512];
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &a);
	errno = 0;
	rc = hk_write_report(out->f, o, t, r, rootfd, cwdfd, &creds, false);
	if (rc) {
		hk_out_error(out, errno, err, sizeof(err));
		hk_out_discard(out);
	} else {
		rc = hk_out_commit(out, err, sizeof(err));
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (getenv("HAWK_BPF_DEBUG"))
		fprintf(stderr, "hawk-bpf: debug: report took %.3f s\n",
			b.tv_sec - a.tv_sec + (b.tv_nsec - a.tv_nsec) / 1e9);
	return rc ? hk_fail("%s", err) : 0;
}

static void summary(const struct hk_options *o, const struct hk_result *r)
{
	uint64_t n = 0;

	if (!o->stats) {
		fprintf(stderr, "hawk-bpf: %zu live blocks traced over %.1f s\n",
			r->ntraces, r->seconds);
		return;
	}
	for (int d = 0; d < HK_DK_MAX; d++)
		for (int b = 0; b < HK_HIST_BUCKETS; b++)
			n += r->hist[d][b].count;
	fprintf(stderr, "hawk-bpf: %llu allocations counted over %.1f s\n",
		(unsigned long long)n, r->seconds);
}

int main(int argc, char **argv)
{
	struct hk_options o;
	struct hk_pytarget t;
	struct hk_result r;
	struct hk_trace_opts to;
	char err[512];
	struct hk_out out;
	struct hk_ts_out series;
	int lock, rc;

	if (hk_options_parse(&o, argc, argv, err, sizeof(err))) {
		fprintf(stderr, "hawk-bpf: %s (see hawk-bpf --help)\n", err);
		return 2;
	}
	if (o.help) {
		hk_usage(stdout);
		return 0;
	}
	if (o.version) {
		printf("hawk-bpf %s\n", HK_VERSION);
		return 0;
	}
	if (o.command == HK_CMD_COMPARE)	/* reads files: no root, no target */
		return hk_compare_main(&o);
	if (o.command == HK_CMD_MERGE)		/* likewise */
		return hk_merge_main(&o);
	if (o.command == HK_CMD_SERVE)	/* runs this binary per request */
		return hk_serve_main(&o);
	if (!privileged())
		return hk_fail("must run as root (or with CAP_SYS_ADMIN and CAP_SYS_PTRACE)");
	if (o.hostwide && o.command == HK_CMD_PROFILE) {
		handle_signals();
		return hk_hostwide_main(&o, &stop_flag);
	}
	/* A thread stands for its process: one tracer, one lock, per process */
	pid_t tgid = o.pid ? hk_proc_tgid(o.pid) : 0;

	if (tgid != o.pid) {
		fprintf(stderr, "hawk-bpf: PID %d is a thread of process %d: taking the process\n",
			(int)o.pid, (int)tgid);
		o.pid = tgid;
	}
	switch (o.command) {
	case HK_CMD_START:
		return hk_daemon_start(&o);
	case HK_CMD_SNAPSHOT:
		signal(SIGPIPE, SIG_IGN);
		return hk_session_snapshot(&o);
	case HK_CMD_STOP:
		return hk_session_stop(&o);
	case HK_CMD_STATUS:
		return hk_session_status(&o);
	default:
		break;
	}
	if (hk_pytarget_open(&t, o.pid, err, sizeof(err))) {
		hk_pytarget_close(&t);
		return hk_fail("%s", err);
	}
	/* Checked before attaching; nothing is created until the report is
	 * whole (outfile.h). */
	if (o.interval_ms ? hk_ts_out_open(&series, &o, err, sizeof(err))
			  : hk_out_open(&out, o.output, err, sizeof(err))) {
		hk_pytarget_close(&t);
		return hk_fail("%s", err);
	}
	lock = hk_lock_or_refuse(o.pid, "profile");
	if (lock < 0) {
		if (o.interval_ms)
			hk_ts_out_discard(&series);
		else
			hk_out_discard(&out);
		hk_pytarget_close(&t);
		return 1;
	}
	hk_creds_hold(o.pid, &rootfd, &cwdfd, &creds);
	handle_signals();
	to = (struct hk_trace_opts){ .frames = o.frames,
				     .duration_ms = o.duration_ms,
				     .max_blocks = o.max_blocks,
				     .need_total = o.format == HK_FMT_PICKLE,
				     .alloc_totals = o.format == HK_FMT_PPROF ||
						     o.format == HK_FMT_FOLDED,
				     .stats = o.stats,
				     .sample = o.sample ? &o.rates : NULL,
				     .stop = &stop_flag };
	if (o.interval_ms) {
		rc = hk_interval_profile(&o, &t, &to, &series, rootfd, cwdfd, &creds,
					 &stop_flag);
		hk_pytarget_close(&t);
		hk_lock_release(lock, o.pid);
		return rc;
	}
	if (hk_trace_run(&t, &to, &r, err, sizeof(err))) {
		hk_out_discard(&out);
		hk_result_free(&r);
		hk_pytarget_close(&t);
		hk_lock_release(lock, o.pid);
		return hk_fail("%s", err);
	}
	hk_warn_window_end(stderr, o.pid, &r);
	rc = write_out(&out, &o, &t, &r);
	/* a lost report's error line is the last word, not a summary */
	if (!rc)
		summary(&o, &r);
	hk_result_free(&r);
	hk_pytarget_close(&t);
	/* Nothing of ours stays on disk: the lock file goes with the lock. */
	hk_lock_release(lock, o.pid);
	return rc ? 1 : 0;
}

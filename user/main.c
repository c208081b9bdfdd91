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
#include "options.h"
#include "pickle.h"
#include "pytarget.h"
#include "report.h"
#include "sizestats.h"
#include "source.h"
#include "tracer.h"

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

static int fail(const char *msg)
{
	fprintf(stderr, "hawk-bpf: %s\n", msg);
	return 1;
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

/* One tracer per target: a second would see the first restore the
 * allocator tables under it. The lock dies with us, even on kill -9. */
static int lock_target(pid_t pid)
{
	char path[64];
	int fd;

	mkdir("/run/hawk-bpf", 0700);
	snprintf(path, sizeof(path), "/run/hawk-bpf/%d.lock", (int)pid);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		return -2;
	}
	return fd;
}

static const char *const counter_names[HK_CNT_MAX] = {
	[HK_CNT_ALLOCS] = "allocations_traced",
	[HK_CNT_FREES] = "frees_of_traced_blocks",
	[HK_CNT_LIVE_FULL] = "lost_live_map_full",
	[HK_CNT_STACK_FULL] = "lost_stack_map_full",
	[HK_CNT_ARGS_LOST] = "lost_call_arguments",
	[HK_CNT_READ_ERR] = "interpreter_read_errors",
	[HK_CNT_TRUNCATED] = "stacks_cut_at_capture_limit",
	[HK_CNT_NO_TSTATE] = "allocations_without_thread_state",
	[HK_CNT_RB_DROP] = "lost_stack_notifications",
	[HK_CNT_IDS_FULL] = "lost_stack_ids_exhausted",
};

static json_t *run_info(const struct hk_pytarget *t, const struct hk_result *r,
			const struct hk_options *o)
{
	json_t *c = json_object();

	for (int i = 0; i < HK_CNT_MAX; i++)
		json_object_set_new(c, counter_names[i],
				    json_integer((json_int_t)r->counters[i]));
	json_object_set_new(c, "unresolved_stacks",
			    json_integer((json_int_t)r->unresolved));
	json_object_set_new(c, "unreadable_code_objects",
			    json_integer((json_int_t)hk_sym_failures(r->sym)));
	return json_pack("{s:i, s:s, s:s, s:f, s:i, s:b, s:b, s:b, s:o}",
			 "pid", (int)t->pid, "python", t->version,
			 "image", t->image_name, "window_seconds", r->seconds,
			 "frames", (int)o->frames, "target_exited", r->target_exited,
			 "frozen_at_finalize", r->finalizing,
			 "interrupted", r->interrupted, "counters", c);
}

/* Losses are never silent: one stderr line each. */
static void warn_losses(const struct hk_result *r, unsigned frames)
{
	static const int lossy[] = { HK_CNT_LIVE_FULL, HK_CNT_STACK_FULL,
				     HK_CNT_ARGS_LOST, HK_CNT_READ_ERR,
				     HK_CNT_RB_DROP, HK_CNT_IDS_FULL };

	for (size_t i = 0; i < sizeof(lossy) / sizeof(lossy[0]); i++)
		if (r->counters[lossy[i]])
			fprintf(stderr, "hawk-bpf: warning: %s: %llu\n",
				counter_names[lossy[i]],
				(unsigned long long)r->counters[lossy[i]]);
	if (r->counters[HK_CNT_TRUNCATED])
		fprintf(stderr, "hawk-bpf: warning: %llu allocations had stacks deeper than %d frames, the most hawk-bpf captures; their tracebacks are cut there\n",
			(unsigned long long)r->counters[HK_CNT_TRUNCATED], HK_MAX_FRAMES);
	if (r->unresolved)
		fprintf(stderr, "hawk-bpf: warning: %llu blocks have no stack (reported as <unknown>)\n",
			(unsigned long long)r->unresolved);
	if (hk_sym_failures(r->sym))
		fprintf(stderr, "hawk-bpf: warning: %llu frames had unreadable code objects (reported as <unknown>)\n",
			(unsigned long long)hk_sym_failures(r->sym));
}

/* A sampled block is written as one trace of size * 1/p, so that
 * Snapshot.statistics() sizes are estimates (counts are sampled blocks). */
static int write_pickle(FILE *out, const struct hk_snapshot *snap)
{
	struct hk_trace *tr;
	struct hk_snapshot scaled = *snap;
	int rc;

	if (!snap->ntraces || snap->traces[0].weight <= 0)
		return hk_pickle_write_snapshot(out, snap);
	tr = malloc(snap->ntraces * sizeof(*tr));
	if (!tr)
		return -1;
	for (size_t i = 0; i < snap->ntraces; i++) {
		tr[i] = snap->traces[i];
		tr[i].size = (uint64_t)llround((double)tr[i].size * tr[i].weight);
		tr[i].weight = 0;
	}
	scaled.traces = tr;
	rc = hk_pickle_write_snapshot(out, &scaled);
	free(tr);
	return rc;
}

/* The JSON "sampling" object: that the figures are estimates, and how. */
static json_t *sampling_info(const struct hk_options *o, const struct hk_result *r)
{
	json_t *classes = json_array();
	char spec[256];
	uint64_t lo = 0;

	for (unsigned i = 0; i < o->rates.n; i++) {
		json_array_append_new(classes, json_pack("{s:I, s:I, s:f}",
			"min_size", (json_int_t)lo, "max_size",
			(json_int_t)o->rates.bound[i] - 1, "probability",
			o->rates.prob[i]));
		lo = o->rates.bound[i];
	}
	json_array_append_new(classes, json_pack("{s:I, s:n, s:f}", "min_size",
		(json_int_t)lo, "max_size", "probability", 1.0));
	hk_sample_rates_str(&o->rates, spec, sizeof(spec));
	return json_pack("{s:b, s:s, s:o, s:I, s:s}", "sampled", 1, "rates", spec,
			 "classes", classes, "sampled_blocks", (json_int_t)r->ntraces,
			 "estimates", "sizes and counts weigh each sampled block 1/p");
}

/* The target's root and cwd, held open from the start so source lines
 * can still be read if the target exits during the window. */
static int rootfd = -1, cwdfd = -1;

static void hold_dirs(pid_t pid)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/%d/root", (int)pid);
	rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(p, sizeof(p), "/proc/%d/cwd", (int)pid);
	cwdfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static int write_report(FILE *out, const struct hk_options *o,
			const struct hk_pytarget *t, const struct hk_result *r)
{
	struct hk_snapshot snap = { r->traces, r->ntraces, o->frames };
	struct hk_snapshot empty = { NULL, 0, o->frames };
	char root[64], cwd[64];
	struct hk_source *src;
	json_t *rep;
	int rc;

	if (o->format == HK_FMT_PICKLE)
		return write_pickle(out, &snap);
	if (o->format == HK_FMT_TEXT) {
		fprintf(out, "# hawk-bpf --stats: allocations by size, PID %d (CPython %s), %.1f s\n",
			(int)t->pid, t->version, r->seconds);
		return hk_sizestats_text(out, (const hk_hist *)&r->hist);
	}
	if (o->format == HK_FMT_JSON) {
		json_t *j = json_pack("{s:o, s:o}", "size_stats",
				      hk_sizestats_json((const hk_hist *)&r->hist),
				      "hawk_bpf", run_info(t, r, o));
		rc = hk_report_write(out, j);
		json_decref(j);
		return rc;
	}
	snprintf(root, sizeof(root), "/proc/self/fd/%d", rootfd);
	snprintf(cwd, sizeof(cwd), "/proc/self/fd/%d", cwdfd);
	src = hk_source_new(root, cwd);
	/* Hawk's fixed-duration profile: end.compare_to(start), where the
	 * start snapshot is empty because tracing starts with the window. */
	rep = hk_report_build(&snap, &empty,
			      o->format == HK_FMT_TRACEBACK ? HK_KEY_TRACEBACK
							    : HK_KEY_LINENO,
			      o->cumulative, o->count, src);
	if (!rep) {
		hk_source_free(src);
		return -1;
	}
	if (o->sample)
		json_object_set_new(rep, "sampling", sampling_info(o, r));
	json_object_set_new(rep, "hawk_bpf", run_info(t, r, o));
	rc = hk_report_write(out, rep);
	json_decref(rep);
	hk_source_free(src);
	return rc;
}

int main(int argc, char **argv)
{
	struct hk_options o;
	struct hk_pytarget t;
	struct hk_result r;
	struct hk_trace_opts to;
	char err[512];
	FILE *out = stdout;
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
	if (!privileged())
		return fail("must run as root (or with CAP_SYS_ADMIN and CAP_SYS_PTRACE)");
	if (hk_pytarget_open(&t, o.pid, err, sizeof(err))) {
		hk_pytarget_close(&t);
		return fail(err);
	}
	if (o.output) {
		/* Checked before attaching; truncated only once we have a
		 * report to write. */
		int fd = open(o.output, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

		if (fd < 0 || !(out = fdopen(fd, "w"))) {
			snprintf(err, sizeof(err), "cannot write %s: %s", o.output,
				 strerror(errno));
			hk_pytarget_close(&t);
			return fail(err);
		}
	}
	lock = lock_target(o.pid);
	if (lock < 0) {
		hk_pytarget_close(&t);
		return fail(lock == -2 ? "another hawk-bpf is already tracing this process"
				       : "cannot create /run/hawk-bpf");
	}
	hold_dirs(o.pid);
	handle_signals();
	to = (struct hk_trace_opts){ .frames = o.frames,
				     .duration_ms = o.duration_ms,
				     .max_blocks = o.max_blocks,
				     .need_total = o.format == HK_FMT_PICKLE,
				     .stats = o.stats,
				     .sample = o.sample ? &o.rates : NULL,
				     .stop = &stop_flag };
	if (hk_trace_run(&t, &to, &r, err, sizeof(err))) {
		hk_result_free(&r);
		hk_pytarget_close(&t);
		return fail(err);
	}
	if (r.target_exited)
		fprintf(stderr, "hawk-bpf: process %d exited during the window; reporting %s\n",
			(int)o.pid, r.finalizing ? "the blocks alive when it began to shut down"
						 : "what was traced until then");
	warn_losses(&r, o.frames);
	if (r.warning[0] && !r.target_exited)
		fprintf(stderr, "hawk-bpf: warning: %s (the sampling trampoline stays; it works without hawk-bpf)\n",
			r.warning);
	if (out != stdout && ftruncate(fileno(out), 0))
		rc = -1;
	{
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		rc = write_report(out, &o, &t, &r);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (getenv("HAWK_BPF_DEBUG"))
			fprintf(stderr, "hawk-bpf: debug: report took %.3f s\n",
				b.tv_sec - a.tv_sec + (b.tv_nsec - a.tv_nsec) / 1e9);
	}
	if (fflush(out) || rc)
		rc = fail("cannot write the report");
	if (o.stats) {
		uint64_t n = 0;

		for (int d = 0; d < HK_DK_MAX; d++)
			for (int b = 0; b < HK_HIST_BUCKETS; b++)
				n += r.hist[d][b].count;
		fprintf(stderr, "hawk-bpf: %llu allocations counted over %.1f s\n",
			(unsigned long long)n, r.seconds);
	} else {
		fprintf(stderr, "hawk-bpf: %zu live blocks traced over %.1f s\n",
			r.ntraces, r.seconds);
	}
	if (out != stdout)
		fclose(out);
	hk_result_free(&r);
	hk_pytarget_close(&t);
	close(lock);
	return rc ? 1 : 0;
}

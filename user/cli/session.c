/* Sessions: the report writer and the client commands (see session.h). */
#include "session.h"
#include "tablewatch.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "orphan.h"
#include "outfile.h"
#include "pickle.h"
#include "discover.h"
#include "profile_out.h"
#include "proc.h"
#include "report.h"
#include "sizestats.h"
#include "source.h"

/* ---- the report --------------------------------------------------------- */

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
	[HK_CNT_SPILLED] = "live_blocks_spilled",
	[HK_CNT_RING_BAD] = "lost_ring_records_malformed",
	[HK_CNT_RING_DROPPED] = "lost_ring_records_ring_full",
	[HK_CNT_RING_LOST] = "lost_ring_records_unread",
};

static const int lossy[] = { HK_CNT_LIVE_FULL, HK_CNT_STACK_FULL,
			     HK_CNT_ARGS_LOST, HK_CNT_READ_ERR,
			     HK_CNT_RB_DROP, HK_CNT_IDS_FULL,
			     HK_CNT_RING_BAD, HK_CNT_RING_DROPPED,
			     HK_CNT_RING_LOST };

const char *hk_counter_name(int i)
{
	return i >= 0 && i < HK_CNT_MAX ? counter_names[i] : "?";
}

unsigned long long hk_losses(const uint64_t counters[HK_CNT_MAX])
{
	unsigned long long n = 0;

	for (size_t i = 0; i < sizeof(lossy) / sizeof(lossy[0]); i++)
		n += counters[lossy[i]];
	return n;
}

json_t *hk_run_json(const struct hk_pytarget *t, const struct hk_result *r,
		    const struct hk_options *o)
{
	json_t *c = hk_counters_json(r->counters);

	json_object_set_new(c, "unresolved_stacks",
			    json_integer((json_int_t)r->unresolved));
	json_object_set_new(c, "unreadable_code_objects",
			    json_integer((json_int_t)hk_sym_failures(r->sym)));
	return json_pack("{s:i, s:s, s:s, s:f, s:i, s:b, s:b, s:b, s:b, s:o, s:o}",
			 "pid", (int)t->pid, "python", t->version,
			 "image", t->image_name, "window_seconds", r->seconds,
			 "frames", (int)o->frames, "target_exited", r->target_exited,
			 "target_execd", r->execd,
			 "frozen_at_finalize", r->finalizing,
			 "interrupted", r->interrupted,
			 /* null, or seconds into the window: incomplete since */
			 "tables_changed_at_s", r->tables_changed ?
				json_real(r->tables_changed_at) : json_null(),
			 "counters", c);
}

json_t *hk_counters_json(const uint64_t counters[HK_CNT_MAX])
{
	json_t *c = json_object();

	for (int i = 0; c && i < HK_CNT_MAX; i++)
		json_object_set_new(c, counter_names[i], json_integer((json_int_t)counters[i]));
	return c;
}

double hk_result_bytes(const struct hk_result *r)
{
	double bytes = 0;

	for (size_t i = 0; i < r->ntraces; i++)
		bytes += r->traces[i].weight > 0 ? r->traces[i].size * r->traces[i].weight
						 : (double)r->traces[i].size;
	return bytes;
}

/* Losses are never silent: one stderr line each. */
void hk_warn_losses(FILE *f, const struct hk_result *r)
{
	for (size_t i = 0; i < sizeof(lossy) / sizeof(lossy[0]); i++)
		if (r->counters[lossy[i]])
			fprintf(f, "hawk-bpf: warning: %s: %llu%s\n",
				counter_names[lossy[i]],
				(unsigned long long)r->counters[lossy[i]],
				lossy[i] == HK_CNT_LIVE_FULL ?
				" (allocations not recorded: the live table is full; raise --max-blocks)" : "");
	if (r->counters[HK_CNT_TRUNCATED])
		fprintf(f, "hawk-bpf: warning: %llu allocations had stacks deeper than %d frames, the most hawk-bpf captures; their tracebacks are cut there\n",
			(unsigned long long)r->counters[HK_CNT_TRUNCATED], HK_MAX_FRAMES);
	if (r->unresolved)
		fprintf(f, "hawk-bpf: warning: %llu blocks have no stack (reported as <unknown>)\n",
			(unsigned long long)r->unresolved);
	if (hk_sym_failures(r->sym))
		fprintf(f, "hawk-bpf: warning: %llu frames had unreadable code objects (reported as <unknown>)\n",
			(unsigned long long)hk_sym_failures(r->sym));
	if (r->tables_changed)
		fprintf(f, "hawk-bpf: warning: the report is incomplete from %.2f s into the window: the target changed its allocator table then (the %s; tracemalloc.start() or stop(), or PyMem_SetAllocator), so what its allocators do since is not what hawk-bpf traces\n",
			r->tables_changed_at, hk_tablewatch_slot_name(r->tables_changed_slot));
}

void hk_warn_window_end(FILE *f, pid_t pid, const struct hk_result *r)
{
	if (r->target_exited)
		fprintf(f, "hawk-bpf: process %d exited during the window; reporting %s\n",
			(int)pid, r->finalizing ? "the blocks alive when it began to shut down"
						: "what was traced until then");
	if (r->execd)
		fprintf(f, "hawk-bpf: process %d exec'd during the window; reporting what was traced until then\n",
			(int)pid);
	hk_warn_losses(f, r);
	if (r->warning[0] && !r->target_exited && !r->execd)
		fprintf(f, "hawk-bpf: warning: %s (the sampling trampoline stays; it works without hawk-bpf)\n",
			r->warning);
}

/* A sampled block is written as one trace of size * 1/p, so that
 * Snapshot.statistics() sizes are estimates (counts are sampled blocks). */
int hk_write_pickle(FILE *out, const struct hk_snapshot *snap)
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
json_t *hk_sampling_json(const struct hk_options *o, size_t sampled_blocks)
{
	json_t *classes;
	char spec[256];
	uint64_t lo = 0;

	hk_sample_rates_str(&o->rates, spec, sizeof(spec));
	if (o->rates.period)
		return json_pack("{s:b, s:s, s:I, s:s, s:I, s:s}", "sampled", 1,
				 "rates", spec, "sample_bytes", (json_int_t)o->rates.period,
				 "probability", "1 - exp(-size / sample_bytes)",
				 "sampled_blocks", (json_int_t)sampled_blocks,
				 "estimates", "sizes and counts weigh each sampled block 1/p");
	classes = json_array();

	for (unsigned i = 0; i < o->rates.n; i++) {
		json_array_append_new(classes, json_pack("{s:I, s:I, s:f}",
			"min_size", (json_int_t)lo, "max_size",
			(json_int_t)o->rates.bound[i] - 1, "probability",
			o->rates.prob[i]));
		lo = o->rates.bound[i];
	}
	json_array_append_new(classes, json_pack("{s:I, s:n, s:f}", "min_size",
		(json_int_t)lo, "max_size", "probability", 1.0));
	return json_pack("{s:b, s:s, s:o, s:I, s:s}", "sampled", 1, "rates", spec,
			 "classes", classes, "sampled_blocks", (json_int_t)sampled_blocks,
			 "estimates", "sizes and counts weigh each sampled block 1/p");
}

int hk_write_report(FILE *out, const struct hk_options *o,
		    const struct hk_pytarget *t, const struct hk_result *r,
		    int rootfd, int cwdfd, const struct hk_creds *creds,
		    bool point_in_time)
{
	struct hk_snapshot snap = { r->traces, r->ntraces, o->frames };
	struct hk_source *src;
	json_t *rep;
	int rc;

	if (o->format == HK_FMT_PICKLE)
		return hk_write_pickle(out, &snap);
	if (o->format == HK_FMT_PPROF || o->format == HK_FMT_FOLDED) {
		char comm[64], id[65] = "", *cg = hk_cgroup_of(t->pid);
		struct hk_labels l;

		hk_proc_comm(t->pid, comm, sizeof(comm));
		if (cg && hk_cgroup_container(cg, id))
			id[0] = 0;
		free(cg);
		hk_labels_make(&l, o, t->pid, comm, t->version, id);
		struct hk_heap_proc hp = { r->traces, r->ntraces, r->allocs, r->nallocs,
					   l.v, l.n };
		if (!r->allocs)
			hp.allocs = NULL;
		return hk_profile_write(out, o, &hp, 1, r->began, r->seconds);
	}
	if (o->format == HK_FMT_TEXT) {
		fprintf(out, "# hawk-bpf --stats: allocations by size, PID %d (CPython %s), %.1f s\n",
			(int)t->pid, t->version, r->seconds);
		return hk_sizestats_text(out, (const hk_hist *)&r->hist);
	}
	if (o->format == HK_FMT_JSON) {
		json_t *j = json_pack("{s:o, s:o}", "size_stats",
				      hk_sizestats_json((const hk_hist *)&r->hist),
				      "hawk_bpf", hk_run_json(t, r, o));
		rc = hk_report_write(out, j);
		json_decref(j);
		return rc;
	}
	src = hk_source_at(rootfd, cwdfd, creds);
	rep = hk_report_json(o, t, r, src, point_in_time);
	rc = rep ? hk_report_write(out, rep) : -1;
	json_decref(rep);
	hk_source_free(src);
	return rc;
}

struct hk_source *hk_source_at(int rootfd, int cwdfd, const struct hk_creds *creds)
{
	char root[64], cwd[64];
	struct hk_source *src;

	snprintf(root, sizeof(root), "/proc/self/fd/%d", rootfd);
	snprintf(cwd, sizeof(cwd), "/proc/self/fd/%d", cwdfd);
	if ((src = hk_source_new(root, cwd)))
		hk_source_as(src, creds);
	return src;
}

json_t *hk_report_json(const struct hk_options *o, const struct hk_pytarget *t,
		       const struct hk_result *r, struct hk_source *src,
		       bool point_in_time)
{
	struct hk_snapshot snap = { r->traces, r->ntraces, o->frames };
	struct hk_snapshot empty = { NULL, 0, o->frames };
	json_t *rep;

	/* Hawk's fixed-duration profile: end.compare_to(start), where the
	 * start snapshot is empty because tracing starts with the window; a
	 * session's snapshot: the statistics of the blocks live now. */
	rep = hk_report_build(&snap, point_in_time ? NULL : &empty,
			      o->format == HK_FMT_TRACEBACK ? HK_KEY_TRACEBACK
							    : HK_KEY_LINENO,
			      o->cumulative, o->count, src);
	if (!rep)
		return NULL;
	if (o->sample)
		json_object_set_new(rep, "sampling", hk_sampling_json(o, r->ntraces));
	json_object_set_new(rep, "hawk_bpf", hk_run_json(t, r, o));
	return rep;
}

/* ---- the client --------------------------------------------------------- */

/* Connected to PID's daemon, or -1 (errno ENOENT: no session;
 * ECONNREFUSED: its daemon died). *daemon: the daemon's PID, from the
 * socket's credentials. */
static int session_connect(pid_t pid, pid_t *daemon)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd, e;

	hk_socket_path(a.sun_path, sizeof(a.sun_path), pid);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*daemon = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		*daemon = cred.pid;
	return fd;
}

static int no_session(pid_t pid)
{
	if (pid == HK_HOST && (errno == ENOENT || errno == ECONNREFUSED))
		return hk_fail("no host-wide hawk-bpf session (start one with: hawk-bpf start)");
	if (pid == HK_HOST)
		return hk_fail("cannot reach the host-wide hawk-bpf session: %s",
			       strerror(errno));
	if (errno == ENOENT || errno == ECONNREFUSED)
		return hk_fail("no hawk-bpf session for PID %d (start one with: hawk-bpf start -p %d)",
			    (int)pid, (int)pid);
	return hk_fail("cannot reach the hawk-bpf session for PID %d: %s",
		    (int)pid, strerror(errno));
}

/* The daemon refused us or closed without an answer: it died (orphan.h). */
static int dead_session(pid_t pid, bool snapshot)
{
	int rc = pid == HK_HOST ? hk_orphan_clean_host(snapshot)
				: hk_orphan_clean(pid, snapshot);

	if (rc >= 0)
		return rc;
	errno = ENOENT;
	return no_session(pid);
}

/* request(): the connection closed before "ok" or "error". */
#define NO_ANSWER 2

/* Sends req and reads the answer's header: relays "hawk-bpf: " lines to
 * stderr; 0 on "ok" (the payload follows on fd), NO_ANSWER (nothing
 * printed), else 1 with the error printed. */
static int request(int fd, pid_t pid, const char *req)
{
	char line[1024];
	size_t n = 0;

	if (hk_send_all(fd, req, strlen(req)))
		return pid == HK_HOST ?
		       hk_fail("cannot talk to the host-wide hawk-bpf session: %s", strerror(errno)) :
		       hk_fail("cannot talk to the hawk-bpf session for PID %d: %s",
			       (int)pid, strerror(errno));
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NO_ANSWER;
		if (c != '\n') {
			if (n < sizeof(line) - 1)
				line[n++] = c;
			continue;
		}
		line[n] = 0;
		n = 0;
		if (strncmp(line, "hawk-bpf: ", 10) == 0)
			fprintf(stderr, "%s\n", line);
		else if (strcmp(line, "ok") == 0)
			return 0;
		else if (strncmp(line, "error ", 6) == 0)
			return hk_fail("%s", line + 6);
		else
			return hk_fail("unexpected answer from the hawk-bpf session for PID %d: %s",
				    (int)pid, line);
	}
}

int hk_session_snapshot(const struct hk_options *o)
{
	char req[128], buf[65536], err[512];
	struct hk_out out;
	pid_t daemon;
	int fd, rc = 0, e = 0;
	ssize_t n;

	/* Checked first; nothing is created until the report is whole. */
	if (hk_out_open(&out, o->output, err, sizeof(err)))
		return hk_fail("%s", err);
	fd = session_connect(o->pid, &daemon);
	if (fd < 0) {
		rc = errno == ECONNREFUSED ? dead_session(o->pid, true)
					   : no_session(o->pid);
		goto out;
	}
	snprintf(req, sizeof(req), "snapshot %s %u %d %d\n", hk_format_name(o->format),
		 o->count, o->cumulative ? 1 : 0, o->merge ? 1 : 0);
	rc = request(fd, o->pid, req);
	if (rc == NO_ANSWER)
		rc = dead_session(o->pid, true);
	if (rc)
		goto out;
	while (!e && ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0 && fwrite(buf, 1, (size_t)n, out.f) != (size_t)n)
			e = errno ? errno : EIO;
	if (e) {
		hk_out_error(&out, e, err, sizeof(err));
		rc = hk_fail("%s", err);
	} else if (n < 0) {
		rc = hk_fail("the hawk-bpf session for PID %d broke off: %s",
			  (int)o->pid, strerror(errno));
	} else if (hk_out_commit(&out, err, sizeof(err))) {
		rc = hk_fail("%s", err);
	}
out:
	if (fd >= 0)
		close(fd);
	hk_out_discard(&out);
	return rc;
}

int hk_session_stop(const struct hk_options *o)
{
	pid_t daemon;
	int fd, pidfd = -1, rc;
	struct pollfd p;

	fd = session_connect(o->pid, &daemon);
	if (fd < 0)
		return errno == ECONNREFUSED ? dead_session(o->pid, false)
					     : no_session(o->pid);
	if (daemon > 0)
		pidfd = (int)syscall(SYS_pidfd_open, daemon, 0);
	rc = request(fd, o->pid, "stop\n");
	close(fd);
	if (rc) {
		if (pidfd >= 0)
			close(pidfd);
		return rc == NO_ANSWER ? dead_session(o->pid, false) : rc;
	}
	/* Everything is restored and detached; wait for the daemon to be
	 * gone so its BPF objects are too. */
	if (pidfd >= 0) {
		p = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		while (poll(&p, 1, 60000) < 0 && errno == EINTR)
			;
		if (!(p.revents & POLLIN))
			rc = hk_fail("the hawk-bpf daemon (PID %d) has not exited", (int)daemon);
		close(pidfd);
	}
	return rc;
}

/* The whole payload (one JSON line), or NULL. */
static json_t *read_json(int fd)
{
	char buf[8192];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(buf) - 1 &&
	       ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0 ||
		(n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	buf[len] = 0;
	return json_loads(buf, 0, NULL);
}

static int cmp_pid(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static void status_line(pid_t pid, json_t *j, pid_t daemon)
{
	const char *comm = "?", *since = "?";
	json_int_t blocks = 0, drops = 0;
	double bytes = 0;
	int exited = 0;

	json_unpack(j, "{s?s, s?s, s?I, s?F, s?I, s?b}", "comm", &comm,
		    "since", &since, "blocks", &blocks, "bytes", &bytes,
		    "drops", &drops, "exited", &exited);
	printf("PID %d %s since %s: %s%lld blocks, %.0f bytes traced, %lld dropped, daemon PID %d%s\n",
	       (int)pid, comm, since, exited ? "exited; " : "", (long long)blocks,
	       bytes, (long long)drops, (int)daemon,
	       exited ? " (hawk-bpf stop cleans up)" : "");
}

/* A session socket nobody answers on: its daemon is stopping (it removes
 * the socket, then lets go of the lock), died (the lock is free and the
 * socket left: its record stays for stop), or is stuck. Exit status. */
static int status_dead(pid_t pid)
{
	struct hk_lock_rec rec;
	struct hk_proc_stat st;
	char comm[64] = "(exited)", who[32] = "its daemon";
	int fd = hk_lock_wait(pid, &rec, 10);

	if (rec.owner)
		snprintf(who, sizeof(who), "daemon PID %d", (int)rec.owner);
	if (fd == -2) {
		printf("PID %d: %s does not answer\n", (int)pid, who);
		return 1;
	}
	if (fd < 0)
		return 1;
	if (!hk_socket_exists(pid)) {
		hk_lock_release(fd, pid);	/* it stopped: nothing to list */
		return 0;
	}
	if (rec.target_start && hk_proc_stat(pid, &st) == 0 &&
	    st.start == rec.target_start)
		hk_proc_comm(pid, comm, sizeof(comm));
	printf("PID %d %s: %s died; its session is lost (hawk-bpf stop -p %d cleans up)\n",
	       (int)pid, comm, who, (int)pid);
	if (rec.owner)
		close(fd);
	else
		hk_lock_release(fd, pid);	/* the file was not there: ours */
	return 0;
}

/* The host-wide session's line, first. */
static int host_status(void)
{
	pid_t daemon;
	int fd = session_connect(HK_HOST, &daemon), r;
	json_int_t procs = 0, skipped = 0, blocks = 0, drops = 0;
	const char *since = "?";
	double bytes = 0;
	json_t *j;

	if (fd < 0) {
		printf("host-wide: its daemon died; its session is lost (hawk-bpf stop cleans up)\n");
		return 0;
	}
	r = request(fd, HK_HOST, "status\n");
	if (r == 0 && (j = read_json(fd))) {
		json_unpack(j, "{s?s, s?I, s?I, s?I, s?F, s?I}", "since", &since,
			    "processes", &procs, "skipped", &skipped, "blocks", &blocks,
			    "bytes", &bytes, "drops", &drops);
		printf("host-wide since %s: %lld processes (%lld skipped), %lld blocks, %.0f bytes traced, %lld dropped, daemon PID %d\n",
		       since, (long long)procs, (long long)skipped, (long long)blocks,
		       bytes, (long long)drops, (int)daemon);
		json_decref(j);
	} else if (r == NO_ANSWER) {
		printf("host-wide: its daemon (PID %d) does not answer\n", (int)daemon);
	}
	close(fd);
	return r ? 1 : 0;
}

int hk_session_status(const struct hk_options *o)
{
	DIR *d = opendir(HK_RUN_DIR);
	struct dirent *e;
	int *pids = NULL, rc = 0;
	size_t n = 0, cap = 0;

	(void)o;
	if (!d)
		return errno == ENOENT ? 0 : hk_fail("cannot read " HK_RUN_DIR ": %s",
						  strerror(errno));
	while ((e = readdir(d))) {
		int pid;
		char tail[8];

		if (sscanf(e->d_name, "%d.%7s", &pid, tail) != 2 || pid <= 0 ||
		    strcmp(tail, "sock"))
			continue;
		if (n == cap) {
			int *np = realloc(pids, (cap = cap ? cap * 2 : 16) * sizeof(*np));

			if (!np)
				break;
			pids = np;
		}
		pids[n++] = pid;
	}
	closedir(d);
	qsort(pids, n, sizeof(*pids), cmp_pid);
	if (hk_socket_exists(HK_HOST))
		rc |= host_status();
	for (size_t i = 0; i < n; i++) {
		pid_t daemon;
		int fd = session_connect(pids[i], &daemon), r;
		json_t *j;

		if (fd < 0) {
			if (errno == ECONNREFUSED)
				rc |= status_dead(pids[i]);
			continue;
		}
		r = request(fd, pids[i], "status\n");
		if (r == 0 && (j = read_json(fd))) {
			status_line(pids[i], j, daemon);
			json_decref(j);
		} else {
			rc |= r == NO_ANSWER ? status_dead(pids[i]) : 1;
		}
		close(fd);
	}
	free(pids);
	hk_lock_sweep();	/* what killed one-shot runs left */
	fflush(stdout);
	return rc;
}

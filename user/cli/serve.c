/* hawk-bpf serve: Hawk's HTTP endpoints, one hawk-bpf child per request;
 * see serve.h.  HTTP is libmicrohttpd's, a thread per connection, so a
 * request that traces for a minute never holds up the others; a watchdog
 * cuts connections whose request does not arrive in time. */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "orphan.h"
#include "report.h"

#define TOKEN_MAX	4096
#define STDOUT_MAX	(1UL << 30)	/* a pickle of millions of blocks fits */
#define STDERR_MAX	(64UL << 10)
#define GRACE_MS	10000		/* SIGTERM, then SIGKILL this much later */
#define SLACK_MS	120000		/* beyond --duration: attach and report */
#define OTHER_MS	300000		/* start, snapshot, stop */
#define AFTER_EXIT_MS	2000		/* pipes still open once the child exited */
#define REQUEST_MS	(HK_SERVE_REQUEST_S * 1000)
#define WATCH_MS	200		/* how late the watchdog may cut */

#define GC_WARNING "gc=true was not applied: hawk-bpf cannot run the " \
	"target's garbage collector from outside before CPython 3.14"

extern char **environ;

static struct {
	char token[TOKEN_MAX];
	size_t toklen;			/* 0: no token asked */
	pthread_mutex_t lock;		/* guards what follows */
	pid_t child[HK_SERVE_MAX_CHILDREN];	/* 0: free slot */
	bool stopping;
	int active;			/* requests read, answer not yet sent */
	pthread_cond_t idle;		/* active fell to 0 */
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER };

/* One TCP connection, from accept to close (MHD_OPTION_NOTIFY_CONNECTION). */
struct conn {
	struct conn *prev, *next;	/* W.head's list */
	int fd;
	int64_t deadline;	/* ms: its request must be in by then; 0: it is */
	bool cut;		/* shut down by the watchdog */
	char addr[INET6_ADDRSTRLEN];
	/* The request's target as it came, and whether a NUL was decoded
	 * into its path: only the connection's own thread uses these. */
	const char *target;
	size_t target_len;
	bool nul;
};

static struct {
	pthread_mutex_t lock;		/* guards what follows, and each conn's
					 * deadline and cut */
	struct conn *head;
	bool stop;
} W = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ------------------------------------------------------------ responses */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     char *body, size_t len, const char *ctype,
			     const char *const *headers)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	for (; headers && headers[0]; headers += 2)
		MHD_add_response_header(r, headers[0], headers[1]);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* {"error": msg} as the reports are written (indent 2, ensure_ascii). */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status,
				   const char *msg, const char *const *headers)
{
	json_t *j = json_pack("{s:s}", "error", msg);
	char *s = j ? hk_report_dumps(j) : NULL;
	char *body = s ? malloc(strlen(s) + 2) : NULL;

	json_decref(j);
	if (!body) {
		free(s);
		return MHD_NO;
	}
	sprintf(body, "%s\n", s);
	free(s);
	return reply(c, status, body, strlen(body), "application/json", headers);
}

/* What a request echoes back is made printable ASCII (and short), so the
 * error is always valid JSON and one line. */
static void printable(char *dst, size_t n, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 4 < n; src++)
		dst[i++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
	if (src && *src && i + 3 < n)
		dst[i++] = '.', dst[i++] = '.', dst[i++] = '.';
	dst[i] = '\0';
}

/* --------------------------------------------------------------- params */

enum { Q_PID, Q_DURATION, Q_FORMAT, Q_FRAMES, Q_COUNT, Q_GC, Q_CUMULATIVE,
       Q_MATCH, Q_CONTAINER, Q_CGROUP, Q_MERGE, Q_N };

static const char *const param_names[Q_N] = {
	"pid", "duration", "format", "frames", "count", "gc", "cumulative",
	"match", "container", "cgroup", "merge",
};

struct params {
	const char *v[Q_N];
	char err[256];
};

static enum MHD_Result one_param(void *cls, enum MHD_ValueKind kind,
				 const char *key, const char *value)
{
	struct params *p = cls;
	char k[64];

	(void)kind;
	if (p->err[0])
		return MHD_YES;
	for (int i = 0; i < Q_N; i++) {
		if (strcmp(key, param_names[i]) == 0) {
			if (p->v[i])
				snprintf(p->err, sizeof(p->err),
					 "parameter '%s' is given twice", key);
			p->v[i] = value ? value : "";
			return MHD_YES;
		}
	}
	printable(k, sizeof(k), key);
	snprintf(p->err, sizeof(p->err),
		 "unknown parameter '%s' (pid, duration, format, frames, count, gc, cumulative, match, container, cgroup, merge)",
		 k);
	return MHD_YES;
}

/* Hawk's booleans: "1", "true", "yes" in any case; anything else false. */
static bool hawk_bool(const char *v)
{
	return !strcasecmp(v, "1") || !strcasecmp(v, "true") ||
	       !strcasecmp(v, "yes");
}

enum endpoint { EP_PROFILE, EP_START, EP_SNAPSHOT, EP_STOP };

static const char *const ep_words[] = {
	[EP_PROFILE] = NULL, [EP_START] = "start",
	[EP_SNAPSHOT] = "snapshot", [EP_STOP] = "stop",
};

/* The child's command line; strings live in here. */
struct cmdline {
	char *argv[32];
	int argc;
	char pid[256], frames[16], count[16];
	const char *format;
	bool pickle;
	bool pprof;		/* binary too: a gzipped profile.proto */
	bool gc_warning;	/* gc=true asked where it would apply */
	bool hostwide;		/* several processes (hostwide.h) */
	unsigned long timeout_ms;
};

static void add(struct cmdline *cl, const char *a)
{
	cl->argv[cl->argc++] = (char *)a;
	cl->argv[cl->argc] = NULL;
}

/* Checks every parameter before anything runs; 0, or -1 with err set. */
static int build_cmdline(enum endpoint ep, const struct params *p,
			 struct cmdline *cl, char *err, size_t errlen)
{
	const char *pid = p->v[Q_PID];
	const char *dur = p->v[Q_DURATION] ? p->v[Q_DURATION] : "5";
	const char *fmt = p->v[Q_FORMAT] ? p->v[Q_FORMAT] : "lineno";
	const char *frames = p->v[Q_FRAMES] ? p->v[Q_FRAMES] : "30";
	const char *count = p->v[Q_COUNT] ? p->v[Q_COUNT] : "10";
	bool gc = hawk_bool(p->v[Q_GC] ? p->v[Q_GC] : "1");
	bool cumulative = p->v[Q_CUMULATIVE] && hawk_bool(p->v[Q_CUMULATIVE]);
	unsigned long v, ms;
	char shown[80];

	memset(cl, 0, sizeof(*cl));
#define BAD(name, what, val) do {					\
		printable(shown, sizeof(shown), (val));			\
		snprintf(err, errlen, "%s: expected %s, got '%s'",	\
			 (name), (what), shown);			\
		return -1;						\
	} while (0)
	/* no pid: every CPython process of the host (hostwide.h); a list:
	 * those */
	if (pid) {
		const char *q = pid;
		size_t at = 0;

		do {
			char one[16];
			size_t len = strcspn(q, ",");

			if (len >= sizeof(one) || (memcpy(one, q, len), one[len] = 0,
			    !hk_parse_ulong(one, 1, INT_MAX, &v)) ||
			    at + 12 >= sizeof(cl->pid))
				BAD("pid", "a process ID from 1 to 2147483647, or several with commas", pid);
			at += (size_t)snprintf(cl->pid + at, sizeof(cl->pid) - at, "%s%lu",
					       at ? "," : "", v);
			q += len;
		} while (*q++ == ',');
	}
	cl->hostwide = !pid || strchr(pid, ',') || p->v[Q_MATCH] || p->v[Q_CONTAINER] ||
		       p->v[Q_CGROUP] || (p->v[Q_MERGE] && hawk_bool(p->v[Q_MERGE]));
	if (!hk_parse_seconds(dur, &ms) || ms > HK_SERVE_DURATION_MS_MAX) {
		char what[64];

		snprintf(what, sizeof(what), "seconds from 0.001 to %lu",
			 HK_SERVE_DURATION_MS_MAX / 1000);
		BAD("duration", what, dur);
	}
	if (strcmp(fmt, "lineno") && strcmp(fmt, "traceback") &&
	    strcmp(fmt, "pickle") && strcmp(fmt, "pprof") && strcmp(fmt, "folded"))
		BAD("format", "lineno, traceback, pickle, pprof or folded", fmt);
	cl->format = fmt;
	cl->pickle = strcmp(fmt, "pickle") == 0;
	cl->pprof = strcmp(fmt, "pprof") == 0;
	if (!hk_parse_ulong(frames, 1, HK_FRAMES_MAX, &v))
		BAD("frames", "an integer from 1 to 65535", frames);
	snprintf(cl->frames, sizeof(cl->frames), "%lu", v);
	if (!hk_parse_ulong(count, 1, HK_COUNT_MAX, &v))
		BAD("count", "an integer from 1 to 1000000", count);
	snprintf(cl->count, sizeof(cl->count), "%lu", v);
#undef BAD
	if (cumulative && strcmp(fmt, "traceback") == 0 &&
	    (ep == EP_PROFILE || ep == EP_SNAPSHOT)) {
		snprintf(err, errlen,
			 "cumulative cannot be used with format=traceback");
		return -1;
	}

	if (ep == EP_PROFILE && cl->pickle && cl->hostwide &&
	    !(p->v[Q_MERGE] && hawk_bool(p->v[Q_MERGE]))) {
		snprintf(err, errlen,
			 "format=pickle over several processes needs merge=true (one snapshot of them all)");
		return -1;
	}
	if ((ep == EP_SNAPSHOT || ep == EP_STOP) &&
	    (p->v[Q_MATCH] || p->v[Q_CONTAINER] || p->v[Q_CGROUP] || (pid && strchr(pid, ',')))) {
		snprintf(err, errlen,
			 "snapshot and stop take one pid, or none for the host-wide session (match, container, cgroup are start's)");
		return -1;
	}
	add(cl, "hawk-bpf");
	if (ep_words[ep])
		add(cl, ep_words[ep]);
	if (pid) {
		add(cl, "-p");
		add(cl, cl->pid);
	}
	if (ep == EP_PROFILE || ep == EP_START) {
		if (p->v[Q_MATCH]) {
			add(cl, "--match");
			add(cl, p->v[Q_MATCH]);
		}
		if (p->v[Q_CONTAINER]) {
			add(cl, "--container");
			add(cl, p->v[Q_CONTAINER]);
		}
		if (p->v[Q_CGROUP]) {
			add(cl, "--cgroup");
			add(cl, p->v[Q_CGROUP]);
		}
	}
	if ((ep == EP_PROFILE || (ep == EP_SNAPSHOT && !pid)) &&
	    p->v[Q_MERGE] && hawk_bool(p->v[Q_MERGE]))
		add(cl, "--merge");
	cl->timeout_ms = OTHER_MS;
	switch (ep) {
	case EP_PROFILE:
		add(cl, "--duration");
		add(cl, dur);
		add(cl, "--format");
		add(cl, fmt);
		add(cl, "--frames");
		add(cl, cl->frames);
		add(cl, "--count");
		add(cl, cl->count);
		if (cumulative)
			add(cl, "--cumulative");
		cl->gc_warning = gc;
		cl->timeout_ms = ms + SLACK_MS;
		break;
	case EP_START:
		if (p->v[Q_FRAMES]) {
			add(cl, "--frames");
			add(cl, cl->frames);
		}
		cl->gc_warning = gc;
		cl->pickle = cl->pprof = false;
		break;
	case EP_SNAPSHOT:
		add(cl, "--format");
		add(cl, fmt);
		add(cl, "--count");
		add(cl, cl->count);
		if (cumulative)
			add(cl, "--cumulative");
		break;
	case EP_STOP:
		cl->pickle = cl->pprof = false;
		break;
	}
	return 0;
}

/* ------------------------------------------------------------- children */

struct buf {
	char *p;
	size_t n, cap, max;
	bool over;
};

static int buf_read(struct buf *b, int fd)
{
	char tmp[65536];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n <= 0)
		return n < 0 && errno == EINTR ? 1 : 0;
	if (b->n + (size_t)n > b->max) {
		b->over = true;
		return 1;
	}
	if (b->n + (size_t)n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *np;

		while (cap < b->n + (size_t)n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->over = true;
			return 1;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, tmp, (size_t)n);
	b->n += (size_t)n;
	b->p[b->n] = '\0';
	return 1;
}

struct result {
	struct buf out, err;
	int status;		/* exit status, or -1 */
	int sig;		/* killing signal, or 0 */
	bool timed_out;
};

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void signal_child(int slot, int sig)
{
	pthread_mutex_lock(&S.lock);
	if (S.child[slot] > 0)
		kill(S.child[slot], sig);
	pthread_mutex_unlock(&S.lock);
}

/* Runs /proc/self/exe with argv; 0, or -1 with err set (503 when *busy). */
static int run_child(const struct cmdline *cl, struct result *r, bool *busy,
		     char *err, size_t errlen)
{
	int out[2] = { -1, -1 }, er[2] = { -1, -1 }, pidfd = -1;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, defs;
	int slot = -1, rc, phase = 0;
	pid_t pid = 0;
	int64_t deadline, exited_at = 0;
	bool out_open = true, err_open = true;
	siginfo_t si;
	int st;

	memset(r, 0, sizeof(*r));
	r->out.max = STDOUT_MAX;
	r->err.max = STDERR_MAX;
	r->status = -1;
	*busy = false;
	if (pipe2(out, O_CLOEXEC) || pipe2(er, O_CLOEXEC)) {
		snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, er[1], 2);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&defs);
	sigaddset(&defs, SIGINT);
	sigaddset(&defs, SIGTERM);
	sigaddset(&defs, SIGHUP);
	sigaddset(&defs, SIGPIPE);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &defs);
	/* Its own process group: a Ctrl-C meant for the server reaches the
	 * children only through the server, which then stops them. */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

	/* Spawned under the lock, so that shutdown sees every child. */
	pthread_mutex_lock(&S.lock);
	for (int i = 0; !S.stopping && i < HK_SERVE_MAX_CHILDREN; i++)
		if (!S.child[i]) {
			slot = i;
			break;
		}
	if (slot < 0) {
		*busy = true;
		snprintf(err, errlen, S.stopping
			 ? "hawk-bpf serve is shutting down"
			 : "too many requests: %d hawk-bpf runs already under way",
			 HK_SERVE_MAX_CHILDREN);
		rc = -1;
	} else {
		rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, cl->argv,
				 environ);
		if (rc)
			snprintf(err, errlen, "cannot run hawk-bpf: %s",
				 strerror(rc));
		else
			S.child[slot] = pid;
	}
	pthread_mutex_unlock(&S.lock);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(out[1]);
	close(er[1]);
	out[1] = er[1] = -1;
	if (slot < 0 || rc)
		goto fail;

	/* Readable once the child has exited, even if something it started
	 * keeps our pipes open. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	deadline = now_ms() + (int64_t)cl->timeout_ms;
	while (out_open || err_open) {
		struct pollfd pf[3] = {
			{ out_open ? out[0] : -1, POLLIN, 0 },
			{ err_open ? er[0] : -1, POLLIN, 0 },
			{ exited_at ? -1 : pidfd, POLLIN, 0 },
		};
		int64_t left = (exited_at ? exited_at + AFTER_EXIT_MS : deadline)
			       - now_ms();

		if (left <= 0) {
			if (exited_at)
				break;
			if (phase == 0)
				r->timed_out = true;
			signal_child(slot, phase == 0 ? SIGTERM : SIGKILL);
			phase++;
			deadline = now_ms() + GRACE_MS;
			continue;
		}
		if (poll(pf, 3, (int)(left > 1000 ? 1000 : left)) < 0 &&
		    errno != EINTR)
			break;
		if (pf[0].revents && !buf_read(&r->out, out[0]))
			out_open = false;
		if (pf[1].revents && !buf_read(&r->err, er[0]))
			err_open = false;
		if (pf[2].revents)
			exited_at = now_ms();
		if (r->out.over && phase == 0) {
			signal_child(slot, SIGKILL);
			phase = 2;
		}
	}
	/* Reaped only after its slot is cleared: a signal sent by shutdown
	 * can never reach a recycled PID. */
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 &&
	       errno == EINTR)
		;
	pthread_mutex_lock(&S.lock);
	S.child[slot] = 0;
	pthread_mutex_unlock(&S.lock);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st))
		r->status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		r->sig = WTERMSIG(st);
	if (pidfd >= 0)
		close(pidfd);
	close(out[0]);
	close(er[0]);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (er[i] >= 0)
			close(er[i]);
	}
	return -1;
}

/* The child's error: its last stderr line, without "hawk-bpf: ". */
static void error_line(const struct result *r, char *dst, size_t n)
{
	const char *s = r->err.p ? r->err.p : "", *end = s + r->err.n, *b;

	while (end > s && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	for (b = end; b > s && b[-1] != '\n'; b--)
		;
	if (end - b >= 10 && strncmp(b, "hawk-bpf: ", 10) == 0)
		b += 10;
	if (b == end) {
		if (r->sig)
			snprintf(dst, n, "hawk-bpf was killed by signal %d", r->sig);
		else
			snprintf(dst, n, "hawk-bpf exited with status %d", r->status);
		return;
	}
	snprintf(dst, n, "%.*s", (int)(end - b), b);
}

/* 404: no such process (or it exited during attach), not CPython, no
 * session, or one whose daemon had died (cleaned up now). */
static bool not_found(int status, const char *err)
{
	return status == HK_EXIT_ORPHAN ||
	       (status == 1 && (strstr(err, "no process with PID") ||
				strstr(err, "exited during attach") ||
				strstr(err, "is not a CPython process") ||
				strstr(err, "no CPython process matches") ||
				strstr(err, "no CPython process found") ||
				strstr(err, "no hawk-bpf session") ||
				strstr(err, "no host-wide hawk-bpf session")));
}

/* ---------------------------------------------------------------- output */

/* body + "warnings": [warning], re-serialized as hk_report_dumps writes
 * reports; NULL (body left as it is) unless body is a JSON object that
 * hk_report_dumps reproduces byte for byte, so that nothing else in the
 * report can change. */
static char *with_warning(const char *body, size_t len, const char *warning,
			  size_t *outlen)
{
	json_error_t e;
	json_t *j, *w;
	char *again = NULL, *s = NULL, *res = NULL;

	if (!len || body[len - 1] != '\n')
		return NULL;
	j = json_loadb(body, len, 0, &e);
	if (!j || !json_is_object(j))
		goto out;
	again = hk_report_dumps(j);
	if (!again || strlen(again) != len - 1 || memcmp(again, body, len - 1))
		goto out;
	w = json_object_get(j, "warnings");
	if (w && !json_is_array(w))
		goto out;
	if (!w) {
		w = json_array();
		if (json_object_set_new(j, "warnings", w))
			goto out;
	}
	if (json_array_append_new(w, json_string(warning)))
		goto out;
	s = hk_report_dumps(j);
	if (!s)
		goto out;
	*outlen = strlen(s) + 1;
	res = malloc(*outlen + 1);
	if (res)
		sprintf(res, "%s\n", s);
out:
	free(again);
	free(s);
	json_decref(j);
	return res;
}

static enum MHD_Result answer(struct MHD_Connection *c, const struct cmdline *cl,
			      struct result *r)
{
	const char *hdrs[8] = { NULL };
	int h = 0;
	char disp[128], msg[1024];
	char *body = r->out.p ? r->out.p : strdup("");
	size_t len = r->out.n;
	const char *ctype;

	r->out.p = NULL;
	if (!body)
		return MHD_NO;
	if (cl->pickle || cl->pprof) {
		struct tm tm;
		time_t t = time(NULL);
		char ts[32];

		localtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d_%H-%M-%S", &tm);
		snprintf(disp, sizeof(disp), cl->pprof ?
			 "attachment; filename=\"hwk_mem_heap_profile_%s.pb.gz\"" :
			 "attachment; filename=\"hwk_mem_tracemalloc_snapshot_%s.pkl\"",
			 ts);
		hdrs[h++] = MHD_HTTP_HEADER_CONTENT_DISPOSITION;
		hdrs[h++] = disp;
		ctype = "application/octet-stream";
	} else {
		size_t i = 0;

		while (i < len && (body[i] == ' ' || body[i] == '\n'))
			i++;
		ctype = i < len && (body[i] == '{' || body[i] == '[')
			? "application/json" : "text/plain; charset=utf-8";
	}
	if (cl->gc_warning) {
		size_t nlen;
		char *nb = cl->pickle || cl->pprof ? NULL
			   : with_warning(body, len, GC_WARNING, &nlen);

		if (nb) {
			free(body);
			body = nb;
			len = nlen;
		} else {
			snprintf(msg, sizeof(msg), "%s", GC_WARNING);
			hdrs[h++] = "X-Hawk-Warning";
			hdrs[h++] = msg;
		}
	}
	return reply(c, MHD_HTTP_OK, body, len, ctype, hdrs);
}

/* ---------------------------------------------------------- connections */

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return i ? i->socket_context : NULL;
}

/* 0: the connection's request is in (the watchdog leaves it alone); else
 * the next request must be in within REQUEST_MS from now. */
static void set_deadline(struct MHD_Connection *c, bool armed)
{
	struct conn *k = conn_of(c);

	if (!k)
		return;
	pthread_mutex_lock(&W.lock);
	k->deadline = armed ? now_ms() + REQUEST_MS : 0;
	pthread_mutex_unlock(&W.lock);
}

static void addr_text(struct MHD_Connection *c, char *dst, size_t n)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = i ? i->client_addr : NULL;

	snprintf(dst, n, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  dst, (socklen_t)n);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
			  dst, (socklen_t)n);
}

/* Every connection is listed with its deadline from accept on.  MHD calls
 * CLOSED before it closes the descriptor, so the watchdog never shuts down
 * a descriptor that has been reused. */
static void on_connection(void *cls, struct MHD_Connection *c, void **ctx,
			  enum MHD_ConnectionNotificationCode what)
{
	const union MHD_ConnectionInfo *fd;
	struct conn *k = *ctx;

	(void)cls;
	if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!k)
			return;
		pthread_mutex_lock(&W.lock);
		if (k->prev)
			k->prev->next = k->next;
		else
			W.head = k->next;
		if (k->next)
			k->next->prev = k->prev;
		pthread_mutex_unlock(&W.lock);
		free(k);
		*ctx = NULL;
		return;
	}
	fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!fd)
		return;
	k = calloc(1, sizeof(*k));
	if (!k) {		/* one the watchdog cannot bound: none */
		shutdown(fd->connect_fd, SHUT_RDWR);
		return;
	}
	k->fd = fd->connect_fd;
	addr_text(c, k->addr, sizeof(k->addr));
	pthread_mutex_lock(&W.lock);
	k->deadline = now_ms() + REQUEST_MS;
	k->next = W.head;
	if (W.head)
		W.head->prev = k;
	W.head = k;
	pthread_mutex_unlock(&W.lock);
	*ctx = k;
}

/* MHD's CONNECTION_TIMEOUT restarts with every byte received: a client
 * sending a byte a second would hold its connection, and its thread, for
 * ever.  A connection whose request is not in by its deadline is shut
 * down here; MHD sees the end of its stream and closes it. */
static void *watchdog(void *arg)
{
	const struct timespec tick = { 0, WATCH_MS * 1000000L };
	char first[INET6_ADDRSTRLEN];
	bool stop = false;
	int cut;

	(void)arg;
	while (!stop) {
		int64_t now = now_ms();

		cut = 0;
		pthread_mutex_lock(&W.lock);
		for (struct conn *k = W.head; k; k = k->next) {
			if (k->cut || !k->deadline || now < k->deadline)
				continue;
			shutdown(k->fd, SHUT_RDWR);
			k->cut = true;
			if (!cut++)
				memcpy(first, k->addr, sizeof(first));
		}
		stop = W.stop;
		pthread_mutex_unlock(&W.lock);
		/* Logged unlocked: a stalled stderr must not stall accept(). */
		if (cut)
			fprintf(stderr, "hawk-bpf: serve: closed %d connection%s "
				"without a whole request in %d s (from %s%s)\n",
				cut, cut > 1 ? "s" : "", HK_SERVE_REQUEST_S, first,
				cut > 1 ? ", ..." : "");
		if (!stop)
			nanosleep(&tick, NULL);
	}
	return NULL;
}

/* The request target as it came, before MHD splits and decodes it in
 * place: the last moment a NUL byte in it can be seen. */
static void *saw_target(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct conn *k = conn_of(c);

	(void)cls;
	if (k) {
		k->target = uri;
		k->target_len = strlen(uri);
		k->nul = false;
	}
	return NULL;
}

/* MHD's own decoding, of each parameter and of the path: a NUL in either
 * would cut it short (pid=1%00x read as pid=1). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	size_t n = MHD_http_unescape(s);
	struct conn *k = conn_of(c);

	(void)cls;
	if (k && memchr(s, '\0', n))
		k->nul = true;
	return n;
}

/* A NUL in the path, as %00 or as a byte, would cut it short where it is
 * read: ".../start/%00x" would be ".../start/".  A NUL byte anywhere in
 * the target is no HTTP.  MHD 0.9.75 parses the request line in place,
 * so the target ends just before the version unless a NUL byte ended it
 * sooner; what cannot be checked is refused. */
static bool nul_in_target(struct MHD_Connection *c, const char *version)
{
	const struct conn *k = conn_of(c);

	return !k || !k->target || k->nul ||
	       k->target + k->target_len + 1 != version;
}

/* What uri-host [":" port] (RFC 3986) is made of. */
#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789-._~!$&'()*+,;=%:[]"

struct hosts {
	int n;
	bool bad;
};

static enum MHD_Result one_header(void *cls, enum MHD_ValueKind kind,
				  const char *key, const char *value)
{
	struct hosts *h = cls;
	size_t n;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST))
		return MHD_YES;
	h->n++;
	value = value ? value : "";
	n = strlen(value);
	while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;		/* MHD strips only the leading blanks */
	if (strspn(value, HOST_CHARS) < n)
		h->bad = true;
	return MHD_YES;
}

/* RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, and for any
 * with more than one or with one that no host[:port] can be.  MHD's
 * STRICT_FOR_CLIENT checks only the first, and answers with a page of its
 * own where every error here is JSON. */
static const char *host_error(struct MHD_Connection *c, const char *version)
{
	struct hosts h = { 0, false };

	MHD_get_connection_values(c, MHD_HEADER_KIND, one_header, &h);
	if (h.n > 1)
		return "more than one Host header";
	if (h.bad)
		return "the Host header is not a host[:port]";
	if (!h.n && strcmp(version, MHD_HTTP_VERSION_1_0))
		return "an HTTP/1.1 request needs a Host header";
	return NULL;
}

/* -------------------------------------------------------------- handler */

/* Constant time in the token's content: every byte of the given value is
 * compared whatever matched before. */
static bool token_ok(struct MHD_Connection *c)
{
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	unsigned char d;
	size_t n;

	if (!S.toklen)
		return true;
	if (!a || strncasecmp(a, "Bearer ", 7))
		return false;
	a += 7;
	n = strlen(a);
	d = n != S.toklen;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ S.token[i % S.toklen]);
	return d == 0;
}

static int endpoint_of(const char *url)
{
	static const char *const tails[] = {
		[EP_PROFILE] = "", [EP_START] = "start/",
		[EP_SNAPSHOT] = "snapshot/", [EP_STOP] = "stop/",
	};
	size_t n = strlen(HK_SERVE_PATH);

	if (strncmp(url, HK_SERVE_PATH, n))
		return -1;
	for (int i = 0; i < 4; i++)
		if (strcmp(url + n, tails[i]) == 0)
			return i;
	return -1;
}

static void log_request(const char *method, const char *url, unsigned status,
			int64_t t0)
{
	char m[16], u[128];

	printable(m, sizeof(m), method);
	printable(u, sizeof(u), url);
	fprintf(stderr, "hawk-bpf: serve: %s %s -> %u (%.1f s)\n", m, u, status,
		(double)(now_ms() - t0) / 1000);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	static const char *const allow[] = { MHD_HTTP_HEADER_ALLOW, "GET", NULL };
	static const char *const bearer[] = {
		MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer", NULL };
	static int first_call;
	struct params p;
	struct cmdline cl;
	struct result r;
	const char *bad;
	char err[1024];
	bool busy;
	int ep, status;
	int64_t t0 = now_ms();
	enum MHD_Result ret;

	(void)cls, (void)upload;
	/* Refusals go out at once, before any body is read; a request that
	 * is not what it seems, before anything else. */
	if (!*state && nul_in_target(c, version)) {
		log_request(method, url, 400, t0);
		return reply_error(c, MHD_HTTP_BAD_REQUEST,
				   "the request target holds a NUL character (%00)",
				   NULL);
	}
	if (!*state && (bad = host_error(c, version))) {
		log_request(method, url, 400, t0);
		return reply_error(c, MHD_HTTP_BAD_REQUEST, bad, NULL);
	}
	if (!token_ok(c)) {
		log_request(method, url, 401, t0);
		return reply_error(c, MHD_HTTP_UNAUTHORIZED,
				   "a valid 'Authorization: Bearer TOKEN' header is required",
				   bearer);
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET)) {
		log_request(method, url, 405, t0);
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				   "only GET is allowed", allow);
	}
	ep = endpoint_of(url);
	if (ep < 0) {
		log_request(method, url, 404, t0);
		return reply_error(c, MHD_HTTP_NOT_FOUND,
				   "no such endpoint: " HK_SERVE_PATH
				   "[start/|snapshot/|stop/]", NULL);
	}
	if (!*state) {		/* headers only: come back for the rest */
		*state = &first_call;
		pthread_mutex_lock(&S.lock);
		S.active++;
		pthread_mutex_unlock(&S.lock);
		return MHD_YES;
	}
	if (*upload_size) {	/* a GET with a body: ignored */
		*upload_size = 0;
		return MHD_YES;
	}
	set_deadline(c, false);	/* the request is in; a run may take minutes */

	memset(&p, 0, sizeof(p));
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, one_param, &p);
	if (p.err[0] || build_cmdline((enum endpoint)ep, &p, &cl, err, sizeof(err))) {
		log_request(method, url, 400, t0);
		return reply_error(c, MHD_HTTP_BAD_REQUEST, p.err[0] ? p.err : err,
				   NULL);
	}
	if (run_child(&cl, &r, &busy, err, sizeof(err))) {
		status = busy ? MHD_HTTP_SERVICE_UNAVAILABLE
			      : MHD_HTTP_INTERNAL_SERVER_ERROR;
		log_request(method, url, (unsigned)status, t0);
		return reply_error(c, (unsigned)status, err, NULL);
	}
	pthread_mutex_lock(&S.lock);
	busy = S.stopping;
	pthread_mutex_unlock(&S.lock);
	error_line(&r, err, sizeof(err));
	if (busy) {
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
		snprintf(err, sizeof(err), "hawk-bpf serve is shutting down");
	} else if (r.timed_out) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		snprintf(err, sizeof(err), "hawk-bpf did not finish in %lu s",
			 cl.timeout_ms / 1000);
	} else if (r.out.over) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		snprintf(err, sizeof(err), "the report is larger than %lu bytes",
			 STDOUT_MAX);
	} else if (r.status == 0) {
		status = MHD_HTTP_OK;
	} else if (r.status == 2) {
		status = strstr(err, "not implemented yet")
			 ? MHD_HTTP_NOT_IMPLEMENTED : MHD_HTTP_BAD_REQUEST;
	} else if (not_found(r.status, err)) {
		status = MHD_HTTP_NOT_FOUND;
	} else if (r.status == 1 && (strstr(err, "already tracing") ||
				     strstr(err, "a host-wide session runs already"))) {
		status = MHD_HTTP_CONFLICT;
	} else if (r.status == 1 && strstr(err, "unsupported CPython")) {
		status = MHD_HTTP_UNPROCESSABLE_CONTENT;
	} else {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	if (status == MHD_HTTP_OK)
		ret = answer(c, &cl, &r);
	else
		ret = reply_error(c, (unsigned)status, err, NULL);
	log_request(method, url, (unsigned)status, t0);
	free(r.out.p);
	free(r.err.p);
	return ret;
}

/* The answer is sent (or the client left): shutdown waits for these.  A
 * kept-alive connection's next request has REQUEST_MS from now. */
static void completed(void *cls, struct MHD_Connection *c, void **state,
		      enum MHD_RequestTerminationCode why)
{
	struct conn *k = conn_of(c);

	(void)cls, (void)why;
	set_deadline(c, true);
	if (k)
		k->target = NULL;	/* the next request's is its own */
	if (!*state)
		return;
	*state = NULL;
	pthread_mutex_lock(&S.lock);
	if (--S.active == 0)
		pthread_cond_broadcast(&S.idle);
	pthread_mutex_unlock(&S.lock);
}

/* ----------------------------------------------------------------- main */

static int read_token(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "hawk-bpf: --token-file %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	n = read(fd, S.token, sizeof(S.token));
	close(fd);
	if (n < 0 || n == (ssize_t)sizeof(S.token)) {
		fprintf(stderr, "hawk-bpf: --token-file %s: %s\n", path,
			n < 0 ? strerror(errno) : "longer than 4095 bytes");
		return -1;
	}
	while (n > 0 && (S.token[n - 1] == '\n' || S.token[n - 1] == '\r' ||
			 S.token[n - 1] == ' ' || S.token[n - 1] == '\t'))
		n--;
	S.token[n] = '\0';
	if (!n || strlen(S.token) != (size_t)n || strpbrk(S.token, " \t\r\n")) {
		fprintf(stderr, "hawk-bpf: --token-file %s: expected one line "
			"holding the token, without spaces\n", path);
		return -1;
	}
	S.toklen = (size_t)n;
	return 0;
}

/* After SIGTERM, children get GRACE_MS to report before SIGKILL. */
static void *reaper(void *arg)
{
	(void)arg;
	usleep(GRACE_MS * 1000);
	pthread_mutex_lock(&S.lock);
	for (int i = 0; i < HK_SERVE_MAX_CHILDREN; i++)
		if (S.child[i] > 0)
			kill(S.child[i], SIGKILL);
	pthread_mutex_unlock(&S.lock);
	return NULL;
}

static void stop_watchdog(pthread_t t)
{
	pthread_mutex_lock(&W.lock);
	W.stop = true;
	pthread_mutex_unlock(&W.lock);
	pthread_join(t, NULL);
}

int hk_serve_main(const struct hk_options *o)
{
	struct sockaddr_storage ss;
	unsigned sslen;
	socklen_t len = sizeof(ss);
	char err[256], host[INET6_ADDRSTRLEN];
	struct MHD_Daemon *d;
	sigset_t set;
	pthread_t t, watch;
	struct timespec until;
	int fd, one = 1, sig, port;

	if (hk_listen_parse(o->listen, &ss, &sslen, err, sizeof(err))) {
		fprintf(stderr, "hawk-bpf: %s\n", err);
		return 2;
	}
	if (o->token_file && read_token(o->token_file))
		return 2;
	/* Our own socket, for clear errors and the port of "ADDR:0"; a
	 * full backlog would drop a burst's SYNs, for a retry a second on. */
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, sslen) || listen(fd, SOMAXCONN) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		fprintf(stderr, "hawk-bpf: cannot listen on %s: %s\n", o->listen,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
			  host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			  host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}

	/* Signals are taken by sigwait here; every thread MHD starts
	 * inherits the mask, and children get a clean one. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (pthread_create(&watch, NULL, watchdog, NULL)) {
		fprintf(stderr, "hawk-bpf: cannot start the HTTP server on %s\n",
			o->listen);
		close(fd);
		return 1;
	}
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
			     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			     (uint16_t)port, NULL, NULL, handle, NULL,
			     MHD_OPTION_LISTEN_SOCKET, fd,
			     MHD_OPTION_CONNECTION_LIMIT,
			     (unsigned)HK_SERVE_CONN_MAX,
			     MHD_OPTION_PER_IP_CONNECTION_LIMIT,
			     (unsigned)HK_SERVE_CONN_PER_IP,
			     MHD_OPTION_CONNECTION_TIMEOUT,
			     (unsigned)HK_SERVE_IDLE_S,
			     MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
			     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			     MHD_OPTION_URI_LOG_CALLBACK, saw_target, NULL,
			     MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "hawk-bpf: cannot start the HTTP server on %s\n",
			o->listen);
		close(fd);
		stop_watchdog(watch);
		return 1;
	}
	fprintf(stderr, "hawk-bpf: serving http://%s%s%s:%d" HK_SERVE_PATH
		" (%s)\n", ss.ss_family == AF_INET6 ? "[" : "", host,
		ss.ss_family == AF_INET6 ? "]" : "", port,
		S.toklen ? "bearer token required" : "no token");
	fflush(stderr);

	while (sigwait(&set, &sig))
		;

	/* Stop accepting; running requests end as their children end, and
	 * their answers (503) are sent before the connections close. */
	fd = MHD_quiesce_daemon(d);
	pthread_mutex_lock(&S.lock);
	S.stopping = true;
	for (int i = 0; i < HK_SERVE_MAX_CHILDREN; i++)
		if (S.child[i] > 0)
			kill(S.child[i], SIGTERM);
	pthread_mutex_unlock(&S.lock);
	if (pthread_create(&t, NULL, reaper, NULL) == 0)
		pthread_detach(t);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += GRACE_MS / 1000 + 5;
	pthread_mutex_lock(&S.lock);
	while (S.active > 0 &&
	       pthread_cond_timedwait(&S.idle, &S.lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&S.lock);
	MHD_stop_daemon(d);
	stop_watchdog(watch);
	if (fd >= 0)
		close(fd);
	fprintf(stderr, "hawk-bpf: serve stopped (%s)\n", strsignal(sig));
	return 0;
}

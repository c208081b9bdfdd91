/* The processes of a host-wide run (see procset.h). */
#include "procset.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "lock.h"
#include "session.h"
#include "procwatch.h"
#include "procwatch.skel.h"

/* Attaching is mostly waiting (uprobe registration, ptrace stops, BPF
 * loads): more threads than cores. */
#define WORKERS 8
/* A process that has just exec'd may take this long to map libpython
 * and start its interpreter before it is looked at for the last time. */
#define START_WAIT_S 3.0
#define RETRY_NS 20000000L

struct job {
	pid_t pid;
	pid_t parent;		/* forked from this traced process */
	bool execd;		/* announced by its exec */
	bool has_info;		/* info from a scan */
	bool initial;		/* found by the first scan */
	struct hk_found info;
	double since;
};

struct hk_procset_priv {
	struct hk_trace_opts to;
	struct hk_discover *disc;
	pthread_mutex_t disc_mu;	/* its image cache is not thread-safe */
	pthread_mutex_t mu;		/* everything below */
	pthread_cond_t cv;
	struct job *q;
	size_t nq, capq;
	pid_t busy[WORKERS];		/* pids being attached (0: none) */
	struct hk_traced **ready;	/* live, not yet handed over */
	size_t nready, capready;
	bool closing;
	size_t initial_left;		/* first-scan jobs not done yet */
	pthread_t th[WORKERS];
	int nth;
	struct hk_procset *ps;
	/* main thread only */
	struct procwatch_bpf *pw;
	struct ring_buffer *pwrb;
	int epfd;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *hk_skip_name(enum hk_skip_why why)
{
	static const char *const names[] = {
		[HK_SKIP_UNSUPPORTED] = "unsupported",
		[HK_SKIP_TRACED] = "already_traced",
		[HK_SKIP_EXITED] = "exited",
		[HK_SKIP_EXECD] = "execd",
		[HK_SKIP_LATE] = "window_closed",
		[HK_SKIP_FAILED] = "attach_failed",
	};

	return (unsigned)why < sizeof(names) / sizeof(names[0]) ? names[why] : "?";
}

static void found_copy(struct hk_found *dst, const struct hk_found *src)
{
	*dst = *src;
	dst->cmdline = strdup(src->cmdline ? src->cmdline : "");
	dst->cgroup = src->cgroup ? strdup(src->cgroup) : NULL;
}

/* Under p->mu. */
static void skip_locked(struct hk_procset *ps, const struct hk_found *f,
			enum hk_skip_why why, const char *reason)
{
	struct hk_skipped *s = realloc(ps->skipped, (ps->nskipped + 1) * sizeof(*s));

	if (!s)
		return;
	ps->skipped = s;
	s = &s[ps->nskipped++];
	found_copy(&s->info, f);
	s->why = why;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

static void skip(struct hk_procset *ps, const struct hk_found *f,
		 enum hk_skip_why why, const char *reason)
{
	pthread_mutex_lock(&ps->p->mu);
	skip_locked(ps, f, why, reason);
	pthread_mutex_unlock(&ps->p->mu);
}

static bool closing(struct hk_procset_priv *p)
{
	bool c;

	pthread_mutex_lock(&p->mu);
	c = p->closing;
	pthread_mutex_unlock(&p->mu);
	return c;
}

static void nap(void)
{
	struct timespec ts = { 0, RETRY_NS };

	nanosleep(&ts, NULL);
}

/* A vfork child (or any CLONE_VM one) runs in its parent's memory until
 * it execs: writing "its" tables would write its parent's. */
static bool shares_parent_vm(const struct hk_found *f)
{
	return f->ppid > 0 &&
	       syscall(SYS_kcmp, f->pid, f->ppid, KCMP_VM, 0, 0) == 0;
}

/* Gone, a zombie, or past the release of its memory: its exit is under
 * way, whatever hk_pytarget_open saw of it. */
static bool exiting(pid_t pid)
{
	struct hk_proc_stat st;
	struct hk_maps m;
	bool empty;

	if (hk_proc_stat(pid, &st) || st.state == 'Z' || st.state == 'X')
		return true;
	if (hk_maps_read(pid, &m))
		return true;
	empty = m.n == 0;
	hk_maps_free(&m);
	return empty;
}


static void traced_free(struct hk_traced *tt)
{
	if (!tt)
		return;
	hk_result_free(&tt->res);
	if (tt->has_snap)
		hk_result_free(&tt->snap);
	hk_pytarget_close(&tt->t);
	if (tt->lock >= 0)
		hk_lock_release(tt->lock, tt->info.pid);
	if (tt->rootfd >= 0)
		close(tt->rootfd);
	if (tt->cwdfd >= 0)
		close(tt->cwdfd);
	hk_creds_free(&tt->creds);
	hk_found_free_one(&tt->info);
	free(tt);
}

/* The job's process as a candidate, once it is one and its interpreter
 * has started: 1 with *tt opened, 0 when it is not (or no longer) one to
 * trace, the reason already recorded if it is CPython. */
static int open_candidate(struct hk_procset *ps, struct job *j,
			  struct hk_traced *tt)
{
	struct hk_procset_priv *p = ps->p;
	double deadline = j->since + START_WAIT_S;
	char err[512];

	for (;; nap()) {
		bool late = now() > deadline || !j->execd;

		if (closing(p)) {
			if (j->has_info)
				skip(ps, &j->info, HK_SKIP_LATE,
				     "the window closed while it was being attached");
			return 0;
		}
		if (!j->has_info) {
			int r;

			pthread_mutex_lock(&p->disc_mu);
			r = hk_discover_pid(p->disc, j->pid, j->parent != 0, &j->info);
			pthread_mutex_unlock(&p->disc_mu);
			if (r <= 0)
				return 0;	/* gone, or not CPython */
			j->has_info = true;
		}
		if (shares_parent_vm(&j->info))
			return 0;	/* its exec will be announced */
		if (!j->info.interpreter && !late) {
			/* libpython may not be mapped yet */
			hk_found_free_one(&j->info);
			j->has_info = false;
			continue;
		}
		if (hk_pytarget_open(&tt->t, j->pid, err, sizeof(err))) {
			bool gone = hk_pytarget_gone(&tt->t);

			hk_pytarget_close(&tt->t);
			if (!gone && !late) {
				hk_found_free_one(&j->info);
				j->has_info = false;
				continue;
			}
			skip(ps, &j->info, gone || exiting(j->pid) ? HK_SKIP_EXITED
							       : HK_SKIP_UNSUPPORTED, err);
			return 0;
		}
		if (hk_pytarget_ready(&tt->t))
			return 1;
		hk_pytarget_close(&tt->t);
		if (now() > deadline) {
			skip(ps, &j->info, HK_SKIP_FAILED,
			     "its interpreter had not started within 3 s");
			return 0;
		}
		if (j->has_info && !j->execd) {
			/* found by a scan while starting up: wait as for an exec */
			j->execd = true;
		}
	}
}

static void run_job(struct hk_procset *ps, struct job *j)
{
	struct hk_procset_priv *p = ps->p;
	struct hk_traced *tt = calloc(1, sizeof(*tt));
	struct hk_lock_rec rec;
	char err[512];

	if (!tt)
		return;
	tt->lock = tt->rootfd = tt->cwdfd = -1;
	tt->t.memfd = tt->t.pidfd = tt->t.elf.fd = -1;
	if (!open_candidate(ps, j, tt)) {
		free(tt);
		return;
	}
	found_copy(&tt->info, &j->info);
	tt->forked_from = j->parent;
	tt->at_start = j->initial;
	tt->lock = hk_lock_target(j->pid, "profile", &rec);
	if (tt->lock < 0) {
		if (tt->lock == -2 && rec.owner > 0)
			snprintf(err, sizeof(err), "already traced by hawk-bpf%s PID %d",
				 rec.daemon ? " daemon" : "", (int)rec.owner);
		else if (tt->lock == -2)
			snprintf(err, sizeof(err), "already traced by a hawk-bpf%s",
				 rec.elsewhere ? " in another mount or PID namespace" : "");
		else
			snprintf(err, sizeof(err), "cannot lock it in " HK_RUN_DIR ": %s",
				 strerror(errno));
		skip(ps, &tt->info, tt->lock == -2 ? HK_SKIP_TRACED : HK_SKIP_FAILED, err);
		tt->lock = -1;
		traced_free(tt);
		return;
	}
	hk_creds_hold(tt->info.pid, &tt->rootfd, &tt->cwdfd, &tt->creds);
	if (hk_trace_start(&tt->tr, &tt->t, &p->to, err, sizeof(err))) {
		skip(ps, &tt->info, hk_pytarget_gone(&tt->t) ? HK_SKIP_EXITED
							    : HK_SKIP_FAILED, err);
		tt->tr = NULL;
		traced_free(tt);
		return;
	}
	tt->began = now() - ps->t0;
	tt->ended = -1;
	if (getenv("HAWK_BPF_DEBUG"))
		fprintf(stderr, "hawk-bpf: debug: PID %d live at %.3f s (its job began at %.3f s)\n",
			(int)j->pid, tt->began, j->since - ps->t0);
	pthread_mutex_lock(&p->mu);
	if (p->nready == p->capready) {
		size_t cap = p->capready ? 2 * p->capready : 16;
		struct hk_traced **r = realloc(p->ready, cap * sizeof(*r));

		if (r) {
			p->ready = r;
			p->capready = cap;
		}
	}
	if (p->nready < p->capready) {
		p->ready[p->nready++] = tt;
		tt = NULL;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (tt) {	/* out of memory: let it go as if never traced */
		hk_trace_stop(tt->tr, NULL, err, sizeof(err));
		tt->tr = NULL;
		traced_free(tt);
	}
}

static void *worker(void *arg)
{
	struct hk_procset_priv *p = arg;
	int me = -1;

	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->nth; i++)
		if (pthread_equal(p->th[i], pthread_self()))
			me = i;
	for (;;) {
		struct job j;

		while (!p->closing && !p->nq)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->nq)
			break;
		j = p->q[0];
		memmove(p->q, p->q + 1, --p->nq * sizeof(*p->q));
		if (me >= 0)
			p->busy[me] = j.pid;
		pthread_mutex_unlock(&p->mu);
		run_job(p->ps, &j);
		if (j.has_info)
			hk_found_free_one(&j.info);
		pthread_mutex_lock(&p->mu);
		if (j.initial)
			p->initial_left--;
		if (me >= 0)
			p->busy[me] = 0;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Whether pid is queued, being attached, or traced in this run. Under
 * p->mu (the traced list is the main thread's, which holds it here). */
static bool known_locked(struct hk_procset *ps, pid_t pid)
{
	struct hk_procset_priv *p = ps->p;

	for (size_t i = 0; i < p->nq; i++)
		if (p->q[i].pid == pid)
			return true;
	for (int i = 0; i < WORKERS; i++)
		if (p->busy[i] == pid)
			return true;
	for (size_t i = 0; i < p->nready; i++)
		if (p->ready[i]->info.pid == pid)
			return true;
	for (size_t i = 0; i < ps->ntraced; i++)
		if (ps->traced[i]->info.pid == pid)
			return true;
	return false;
}

/* Whether the job was queued (else it is dropped). */
static bool enqueue(struct hk_procset *ps, struct job *j)
{
	struct hk_procset_priv *p = ps->p;

	pthread_mutex_lock(&p->mu);
	if (p->closing || known_locked(ps, j->pid)) {
		pthread_mutex_unlock(&p->mu);
		if (j->has_info)
			hk_found_free_one(&j->info);
		return false;
	}
	if (p->nq == p->capq) {
		size_t cap = p->capq ? 2 * p->capq : 64;
		struct job *q = realloc(p->q, cap * sizeof(*q));

		if (!q) {
			pthread_mutex_unlock(&p->mu);
			if (j->has_info)
				hk_found_free_one(&j->info);
			return false;
		}
		p->q = q;
		p->capq = cap;
	}
	p->q[p->nq++] = *j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return true;
}

static struct hk_traced *traced_by_pid(struct hk_procset *ps, pid_t pid)
{
	for (size_t i = 0; i < ps->ntraced; i++)
		if (ps->traced[i]->info.pid == pid)
			return ps->traced[i];
	return NULL;
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct hk_procset *ps = ctx;
	const struct hk_pw_event *e = data;
	struct job j = { .since = now() };
	struct hk_traced *tt;

	if (len < sizeof(*e))
		return 0;
	j.pid = (pid_t)e->pid;
	if (e->kind == HK_PW_EXEC && (tt = traced_by_pid(ps, j.pid))) {
		/* its own tracer stops its record (target_exec); the new
		 * image is not traced: every address we hold is the old one's */
		if (!tt->exec_listed) {
			tt->exec_listed = true;
			pthread_mutex_lock(&ps->p->mu);
			skip_locked(ps, &tt->info, HK_SKIP_EXECD,
				    "exec'd during the window; traced up to its exec");
			pthread_mutex_unlock(&ps->p->mu);
		}
		return 0;
	}
	j.execd = e->kind == HK_PW_EXEC;
	j.parent = e->kind == HK_PW_FORK ? (pid_t)e->parent : 0;
	if (j.pid != getpid())
		enqueue(ps, &j);
	return 0;
}

static void end_one(struct hk_procset *ps, struct hk_traced *tt, int why)
{
	struct hk_procset_priv *p = ps->p;
	__u32 key = (__u32)tt->info.pid;

	if (!tt->tr)
		return;
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, hk_trace_fd(tt->tr), NULL);
	if (p->pw)
		bpf_map_delete_elem(bpf_map__fd(p->pw->maps.traced), &key);
	tt->ended = now() - ps->t0;
	if (hk_trace_stop(tt->tr, &tt->res, tt->stop_err, sizeof(tt->stop_err)) == 0)
		tt->stop_err[0] = 0;
	tt->tr = NULL;
	tt->stopped = true;
	if (why == 1)
		tt->res.target_exited = true;
	/* whichever sees the exec first, its tracer or the process watch */
	if (tt->res.execd && !tt->exec_listed) {
		tt->exec_listed = true;
		pthread_mutex_lock(&p->mu);
		skip_locked(ps, &tt->info, HK_SKIP_EXECD,
			    "exec'd during the window; traced up to its exec");
		pthread_mutex_unlock(&p->mu);
	}
}

/* The attached ones, into the traced list (main thread). */
static void adopt(struct hk_procset *ps)
{
	struct hk_procset_priv *p = ps->p;

	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->nready; i++) {
		struct hk_traced *tt = p->ready[i];
		struct hk_traced **v = realloc(ps->traced, (ps->ntraced + 1) * sizeof(*v));
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tt };
		__u32 key = (__u32)tt->info.pid;
		__u8 one = 1;

		if (!v) {
			char err[256];

			hk_trace_stop(tt->tr, NULL, err, sizeof(err));
			tt->tr = NULL;
			traced_free(tt);
			continue;
		}
		ps->traced = v;
		v[ps->ntraced++] = tt;
		if (!tt->at_start) {
			char why[64] = "started during the window";

			if (tt->forked_from)
				snprintf(why, sizeof(why), "forked from PID %d",
					 (int)tt->forked_from);
			fprintf(stderr, "hawk-bpf: tracing PID %d (CPython %s) from %.2f s on: %s\n",
				(int)tt->info.pid, tt->t.version, tt->began, why);
			fflush(stderr);
		}
		epoll_ctl(p->epfd, EPOLL_CTL_ADD, hk_trace_fd(tt->tr), &ev);
		if (p->pw)
			bpf_map_update_elem(bpf_map__fd(p->pw->maps.traced), &key, &one, BPF_ANY);
	}
	p->nready = 0;
	pthread_mutex_unlock(&p->mu);
}

static int watch_start(struct hk_procset_priv *p, struct hk_procset *ps,
		       char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	p->pw = procwatch_bpf__open_and_load();
	if (!p->pw || procwatch_bpf__attach(p->pw)) {
		snprintf(err, errlen, "cannot load the process watch (BPF): %s",
			 strerror(errno));
		return -1;
	}
	p->pwrb = ring_buffer__new(bpf_map__fd(p->pw->maps.events), on_event, ps, NULL);
	if (!p->pwrb) {
		snprintf(err, errlen, "cannot read the process watch: %s", strerror(errno));
		return -1;
	}
	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(p->pwrb), &ev);
}

int hk_procset_start(struct hk_procset *ps, const struct hk_select *sel,
		     const struct hk_trace_opts *to, char *err, size_t errlen)
{
	struct hk_procset_priv *p;
	struct hk_found *found = NULL;
	size_t nfound = 0;
	struct timespec wall;

	memset(ps, 0, sizeof(*ps));
	ps->t0 = now();
	clock_gettime(CLOCK_REALTIME, &wall);
	ps->started_unix = wall.tv_sec + wall.tv_nsec / 1e9;
	p = ps->p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->ps = ps;
	p->to = *to;
	p->to.quiet = true;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->disc_mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->disc = hk_discover_new(sel, err, errlen);
	if (!p->disc)
		return -1;
	if (p->epfd < 0 || watch_start(p, ps, err, errlen))
		return -1;
	hk_lock_sweep();
	/* the watch first: a process starting during the scan is seen by
	 * one or the other (the queue takes each PID once) */
	if (hk_discover_scan(p->disc, &found, &nfound)) {
		snprintf(err, errlen, "cannot scan /proc: %s", strerror(errno));
		return -1;
	}
	if (getenv("HAWK_BPF_DEBUG"))
		fprintf(stderr, "hawk-bpf: debug: scan found %zu candidates by %.3f s\n",
			nfound, now() - ps->t0);
	for (size_t i = 0; i < nfound; i++) {
		struct job j = { .pid = found[i].pid, .has_info = true,
				 .initial = true, .since = now() };

		found_copy(&j.info, &found[i]);
		pthread_mutex_lock(&p->mu);
		p->initial_left++;
		pthread_mutex_unlock(&p->mu);
		if (!enqueue(ps, &j)) {
			pthread_mutex_lock(&p->mu);
			p->initial_left--;
			pthread_mutex_unlock(&p->mu);
		}
	}
	hk_found_free(found, nfound);
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < WORKERS; i++)
		if (pthread_create(&p->th[p->nth], NULL, worker, p) == 0)
			p->nth++;
	pthread_mutex_unlock(&p->mu);
	if (!p->nth) {
		snprintf(err, errlen, "cannot start threads: %s", strerror(errno));
		return -1;
	}
	/* the first ones all live (or skipped) before the window opens */
	pthread_mutex_lock(&p->mu);
	while (p->initial_left)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	adopt(ps);
	return 0;
}

void hk_procset_poll(struct hk_procset *ps, int timeout_ms)
{
	struct hk_procset_priv *p = ps->p;
	struct epoll_event ev[16];

	adopt(ps);
	epoll_wait(p->epfd, ev, 16, timeout_ms);
	if (p->pwrb)
		ring_buffer__consume(p->pwrb);
	for (size_t i = 0; i < ps->ntraced; i++) {
		struct hk_traced *tt = ps->traced[i];
		int rc;

		if (tt->tr && (rc = hk_trace_poll(tt->tr, 0)))
			end_one(ps, tt, rc);
	}
	adopt(ps);
}

/* The windows still open, ended by a few threads at once: collecting a
 * process's record reads its whole live table (~65 ms of CPU for the
 * default --max-blocks), and every table restore may hold that process
 * in a ptrace-stop for a moment. */
struct stopper {
	struct hk_procset *ps;
	pthread_mutex_t mu;
	size_t next;
};

static void *stop_some(void *arg)
{
	struct stopper *st = arg;

	for (;;) {
		struct hk_traced *tt;
		size_t i;
		int rc;

		pthread_mutex_lock(&st->mu);
		i = st->next++;
		pthread_mutex_unlock(&st->mu);
		if (i >= st->ps->ntraced)
			return NULL;
		tt = st->ps->traced[i];
		rc = tt->tr ? hk_trace_poll(tt->tr, 0) : 0;
		end_one(st->ps, tt, rc);
	}
}

static void stop_all(struct hk_procset *ps)
{
	struct stopper st = { .ps = ps, .mu = PTHREAD_MUTEX_INITIALIZER };
	pthread_t th[4];
	int n = 0;

	while (n < 4 && (size_t)n < ps->ntraced &&
	       pthread_create(&th[n], NULL, stop_some, &st) == 0)
		n++;
	stop_some(&st);
	while (n--)
		pthread_join(th[n], NULL);
}

void hk_procset_snapshot(struct hk_procset *ps)
{
	for (size_t i = 0; i < ps->ntraced; i++) {
		struct hk_traced *tt = ps->traced[i];

		if (!tt->tr)
			continue;
		if (hk_trace_snapshot(tt->tr, &tt->snap, tt->stop_err, sizeof(tt->stop_err)) == 0)
			tt->stop_err[0] = 0;
		tt->snap.began = tt->began;
		tt->has_snap = true;
	}
}

void hk_procset_unsnap(struct hk_procset *ps)
{
	for (size_t i = 0; i < ps->ntraced; i++)
		if (ps->traced[i]->has_snap) {
			hk_result_free(&ps->traced[i]->snap);
			ps->traced[i]->has_snap = false;
		}
}

void hk_procset_count(struct hk_procset *ps, uint64_t *blocks, double *bytes,
		      uint64_t counters[HK_CNT_MAX])
{
	*blocks = 0;
	*bytes = 0;
	memset(counters, 0, HK_CNT_MAX * sizeof(counters[0]));
	for (size_t i = 0; i < ps->ntraced; i++) {
		struct hk_traced *tt = ps->traced[i];
		uint64_t b = 0, c[HK_CNT_MAX] = { 0 };
		double y = 0;

		if (tt->tr) {
			hk_trace_count(tt->tr, &b, &y, c);
		} else {
			b = tt->res.ntraces;
			y = hk_result_bytes(&tt->res);
			memcpy(c, tt->res.counters, sizeof(c));
		}
		*blocks += b;
		*bytes += y;
		for (int k = 0; k < HK_CNT_MAX; k++)
			counters[k] += c[k];
	}
}

void hk_procset_stop(struct hk_procset *ps)
{
	struct hk_procset_priv *p = ps->p;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->closing = true;
	pthread_cond_broadcast(&p->cv);
	/* queued, never looked at: scanned ones are CPython candidates */
	for (size_t i = 0; i < p->nq; i++)
		if (p->q[i].has_info) {
			if (p->q[i].initial)
				p->initial_left--;
			skip_locked(ps, &p->q[i].info, HK_SKIP_LATE,
				    "found as the window closed");
			hk_found_free_one(&p->q[i].info);
		}
	p->nq = 0;
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	p->nth = 0;
	adopt(ps);
	if (p->pwrb)
		ring_buffer__consume(p->pwrb);
	stop_all(ps);
	if (p->pw)
		ps->lost_events = p->pw->bss->lost;
	ring_buffer__free(p->pwrb);
	p->pwrb = NULL;
	procwatch_bpf__destroy(p->pw);
	p->pw = NULL;
}

void hk_procset_free(struct hk_procset *ps)
{
	struct hk_procset_priv *p = ps->p;

	if (p) {
		hk_procset_stop(ps);
		hk_discover_free(p->disc);
		if (p->epfd >= 0)
			close(p->epfd);
		free(p->q);
		free(p->ready);
		free(p);
	}
	for (size_t i = 0; i < ps->ntraced; i++)
		traced_free(ps->traced[i]);
	free(ps->traced);
	for (size_t i = 0; i < ps->nskipped; i++)
		hk_found_free_one(&ps->skipped[i].info);
	free(ps->skipped);
	memset(ps, 0, sizeof(*ps));
}

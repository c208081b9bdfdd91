#include "tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "hawk.skel.h"
#include "samplebytes.h"
#include "slots.h"
#include "ring.h"
#include "tablewatch.h"
#include "trampoline_install.h"
#include "umulti.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

struct run {
	const struct hk_sample_rates *rates;	/* --sample */
	struct hawk_bpf *skel;
	struct hk_symbolizer *sym;
	struct hk_stack *buf;
	int stacks_fd;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Resolve a new stack (by its hash) while its code objects are alive. */
static void resolve_hash(struct run *r, uint64_t hash)
{
	if (bpf_map_lookup_elem(r->stacks_fd, &hash, r->buf) == 0 &&
	    !hk_sym_lookup(r->sym, r->buf->id))
		hk_sym_resolve(r->sym, r->buf->id, r->buf);
}

static int on_new_stack(void *ctx, void *data, size_t len)
{
	uint64_t hash;

	if (len >= sizeof(hash)) {
		memcpy(&hash, data, sizeof(hash));
		resolve_hash(ctx, hash);
	}
	return 0;
}

/* Stacks whose announcement was lost: resolve every stack not seen yet. */
static void resolve_all(struct run *r)
{
	uint64_t key, next, *keyp = NULL;

	while (bpf_map_get_next_key(r->stacks_fd, keyp, &next) == 0) {
		key = next;
		keyp = &key;
		resolve_hash(r, key);
	}
}

/* Raw sites are those the raw table points to (with PYTHONMALLOC=malloc,
 * every table). */
static int site_domain(const struct hk_site *s)
{
	return (s->domains & (1u << HK_DOM_RAW)) ? HK_DK_RAW : HK_DK_PYMALLOC;
}

/* Whether sys_announce can see getppid(2): the system call tracepoint,
 * found through tracefs (mounted at its usual place if it is nowhere). */
static bool getppid_traceable(void)
{
	static const char *const ev = "events/syscalls/sys_enter_getppid/id";
	char path[128];

	snprintf(path, sizeof(path), "/sys/kernel/tracing/%s", ev);
	if (access(path, R_OK) == 0)
		return true;
	snprintf(path, sizeof(path), "/sys/kernel/debug/tracing/%s", ev);
	if (access(path, R_OK) == 0)
		return true;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return false;
	snprintf(path, sizeof(path), "/sys/kernel/tracing/%s", ev);
	return access(path, R_OK) == 0;
}

/* The target's pid namespace and its tgid there (see the BPF side): a
 * target in a container has ids of its own. */
static int set_pidns(struct hawk_bpf *skel, pid_t pid)
{
	/* the initial pid namespace's inode number (PROC_PID_INIT_INO) */
	const uint64_t init_ino = 0xEFFFFFFCULL;
	char path[64];
	struct stat st;
	pid_t nspid;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	if (stat(path, &st) || hk_proc_nspid(pid, &nspid))
		return -1;
	skel->rodata->target_tgid = (uint32_t)nspid;
	skel->rodata->pidns_dev = st.st_dev;
	skel->rodata->pidns_ino = st.st_ino;
	skel->rodata->pidns_init = st.st_ino == init_ino;
	return 0;
}

/* Where probes go: a perf-event uprobe (a libbpf link) each, or, where
 * the kernel has them, one uprobe_multi link per program (umulti.h). */
struct probes {
	struct bpf_link **links;
	int *nlinks;
	int *mfds, *nmfds;
	bool multi;
	/* multi: the sites of each program, attached at the end */
	uint64_t off[4][HK_MAX_PROBES + 1], cookie[4][HK_MAX_PROBES + 1];
	unsigned n[4];
};

enum { P_ALLOC_ENTER, P_ALLOC_RETURN, P_FREE_ENTER, P_FINALIZE };

static struct bpf_program *prog_of(struct hawk_bpf *skel, int which)
{
	switch (which) {
	case P_ALLOC_ENTER: return skel->progs.alloc_enter;
	case P_ALLOC_RETURN: return skel->progs.alloc_return;
	case P_FREE_ENTER: return skel->progs.free_enter;
	default: return skel->progs.finalize_enter;
	}
}

static int add_probe(struct hawk_bpf *skel, struct probes *pr, int which,
		     struct hk_pytarget *t, uint64_t off, uint64_t cookie,
		     char *err, size_t errlen)
{
	struct bpf_link *l;
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = cookie,
		    .retprobe = which == P_ALLOC_RETURN);

	if (pr->multi) {
		pr->off[which][pr->n[which]] = off;
		pr->cookie[which][pr->n[which]++] = cookie;
		return 0;
	}
	l = bpf_program__attach_uprobe_opts(prog_of(skel, which), t->pid,
					    t->image_path, off, &uo);
	if (!l)
		return ERR("cannot attach a uprobe to %s+%#llx: %s", t->image_name,
			   (unsigned long long)off, strerror(errno));
	pr->links[(*pr->nlinks)++] = l;
	return 0;
}

static int add_multi(struct hawk_bpf *skel, struct probes *pr,
		     struct hk_pytarget *t, char *err, size_t errlen)
{
	for (int w = 0; pr->multi && w < 4; w++) {
		int fd;

		if (!pr->n[w])
			continue;
		fd = hk_umulti_attach(prog_of(skel, w), t->pid, t->image_path,
				      pr->off[w], pr->cookie[w], pr->n[w],
				      w == P_ALLOC_RETURN);
		if (fd < 0)
			return ERR("cannot attach %u uprobes to %s: %s", pr->n[w],
				   t->image_name, strerror(errno));
		pr->mfds[(*pr->nmfds)++] = fd;
		/* tests only: hold here, some probes live, for a target to
		 * exit under us (tests/e2e/test_errors.py) */
		if (getenv("HAWK_BPF_TEST_STOP_AFTER_LINKS") &&
		    atoi(getenv("HAWK_BPF_TEST_STOP_AFTER_LINKS")) == *pr->nmfds)
			raise(SIGSTOP);
	}
	return 0;
}

static int attach(struct hawk_bpf *skel, struct hk_pytarget *t,
		  struct hk_hooks *h, bool stats, bool sample, bool sys,
		  bool ring, struct probes *pr, char *err, size_t errlen)
{
	struct bpf_link **links = pr->links;
	int *nlinks = pr->nlinks;
	uint64_t fin, off;
	struct bpf_link *l;

	if (sys) {
		l = bpf_program__attach_tracepoint(skel->progs.sys_announce,
						   "syscalls", "sys_enter_getppid");
		if (!l)
			return ERR("cannot attach to the getppid(2) tracepoint: %s",
				   strerror(errno));
		links[(*nlinks)++] = l;
	}
	/* its exec ends the window (see target_exec) */
	l = bpf_program__attach_tracepoint(skel->progs.target_exec, "sched",
					   "sched_process_exec");
	if (!l)
		return ERR("cannot attach to the sched_process_exec tracepoint: %s",
			   strerror(errno));
	links[(*nlinks)++] = l;
	if (ring) {
		l = bpf_program__attach_tracepoint(skel->progs.target_exit, "syscalls",
						   "sys_enter_exit_group");
		if (!l)
			return ERR("cannot attach to the exit_group(2) tracepoint: %s",
				   strerror(errno));
		links[(*nlinks)++] = l;
	}

	/* Py_FinalizeEx freezes the record (see "frozen" in the BPF side). */
	if (hk_elf_symbol(&t->elf, "Py_FinalizeEx", &fin) == 0 &&
	    (fin = hk_probe_entry(&t->elf, fin)) &&
	    hk_elf_file_offset(&t->elf, fin, &off) == 0 &&
	    add_probe(skel, pr, P_FINALIZE, t, off, 0, err, errlen))
		return -1;
	for (int i = 0; i < h->nsites; i++) {
		const struct hk_site *s = &h->sites[i];
		int progs[2] = { P_ALLOC_ENTER, P_ALLOC_RETURN };
		int np = 2;

		/* Sampling sees everything it needs in the raw domain; with
		 * a ring, the trampoline never calls a probed entry. */
		if ((sample && site_domain(s) != HK_DK_RAW) || ring)
			continue;
		if (hk_hooks_site(h, i, t, err, errlen))
			return -1;
		if (hk_elf_file_offset(&t->elf, s->probe, &off))
			return ERR("probe address %#llx is not in the file",
				   (unsigned long long)s->probe);
		if (s->kind == HK_FREE) {
			if (stats)
				continue;
			progs[0] = P_FREE_ENTER;
			np = 1;
		}
		/* --stats needs the return only to know when a pymalloc call
		 * (and the raw call nested in it) is over. */
		if (stats && site_domain(s) == HK_DK_RAW)
			np = 1;
		for (int p = 0; p < np; p++)
			if (add_probe(skel, pr, progs[p], t, off,
				      (uint64_t)s->kind << 8 | i, err, errlen))
				return -1;
	}
	return add_multi(skel, pr, t, err, errlen);
}

static void read_hist(struct hawk_bpf *skel, struct hk_result *r)
{
	int ncpu = libbpf_num_possible_cpus();
	struct hk_hist_cell vals[ncpu > 0 ? ncpu : 1];

	for (uint32_t k = 0; k < HK_DK_MAX * HK_HIST_BUCKETS && ncpu > 0; k++) {
		struct hk_hist_cell *c = &r->hist[k / HK_HIST_BUCKETS][k % HK_HIST_BUCKETS];

		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.hist), &k, vals))
			continue;
		for (int i = 0; i < ncpu; i++) {
			c->count += vals[i].count;
			c->bytes += vals[i].bytes;
		}
	}
}

static void read_counters(struct hawk_bpf *skel, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t vals[ncpu > 0 ? ncpu : 1];

	for (uint32_t i = 0; i < HK_CNT_MAX; i++) {
		out[i] = 0;
		if (ncpu > 0 &&
		    bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &i, vals) == 0)
			for (int c = 0; c < ncpu; c++)
				out[i] += vals[c];
	}
}

static int add_trace(struct run *run, struct hk_result *res, size_t *cap,
		     bool *swept, uint64_t blk)
{
	uint32_t id = HK_BLOCK_ID(blk);
	const struct hk_traceback *tb = hk_sym_lookup(run->sym, id);

	if (res->ntraces == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4096;
		struct hk_trace *nt = realloc(res->traces, ncap * sizeof(*nt));

		if (!nt)
			return -1;
		res->traces = nt;
		*cap = ncap;
	}
	if (!tb && !*swept) {
		resolve_all(run);
		*swept = true;
		tb = hk_sym_lookup(run->sym, id);
	}
	if (!tb) {
		res->unresolved++;
		tb = hk_sym_empty(run->sym);
	}
	res->traces[res->ntraces++] = (struct hk_trace){
		.domain = 0, .size = HK_BLOCK_SIZE(blk), .tb = tb,
		.weight = run->rates ? hk_sample_weight(run->rates, HK_BLOCK_CLASS(blk),
							HK_BLOCK_SIZE(blk)) : 0 };
	return 0;
}

/* Reads a map in batches of n entries, calling each(ctx, values, got) per
 * batch: one syscall per block made a million-block snapshot take seconds.
 * 0, or -1 (errno). */
static int read_batches(int fd, size_t key_size, size_t value_size, __u32 n,
			int (*each)(void *ctx, const void *values, __u32 got),
			void *ctx)
{
	void *keys = malloc(n * key_size), *vals = malloc(n * value_size);
	uint64_t in = 0, out = 0;	/* batch tokens: a key of either map */
	bool first = true;
	int err, rc = -1;

	if (!keys || !vals)
		goto done;
	do {
		__u32 got = n;

		err = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys,
					   vals, &got, NULL);
		if (err && errno != ENOENT)
			goto done;
		if (got && each(ctx, vals, got))
			goto done;
		in = out;
		first = false;
	} while (!err);
	rc = 0;
done:
	free(keys);
	free(vals);
	return rc;
}

struct live_reader {
	int (*fn)(void *ctx, uint64_t blk);
	void *ctx;
};

static int live_buckets_read(void *ctx, const void *values, __u32 got)
{
	const struct hk_bucket *b = values;
	struct live_reader *r = ctx;

	for (__u32 i = 0; i < got; i++)
		for (int s = 0; s < HK_BUCKET_SLOTS; s++)
			/* 0: empty, or a slot claimed an instant ago */
			if (b[i].val[s] && r->fn(r->ctx, b[i].val[s]))
				return -1;
	return 0;
}

static int live_spill_read(void *ctx, const void *values, __u32 got)
{
	const uint64_t *v = values;
	struct live_reader *r = ctx;

	for (__u32 i = 0; i < got; i++)
		if (r->fn(r->ctx, v[i]))
			return -1;
	return 0;
}

/* Calls fn on every live block value: the table's buckets, then the few
 * spilled blocks. Copied in batches rather than mmapped, so the 32 bytes a
 * block the kernel holds are not counted again in hawk-bpf's RSS. */
static int for_each_live(struct hawk_bpf *skel,
			 int (*fn)(void *ctx, uint64_t blk), void *ctx)
{
	struct live_reader r = { fn, ctx };

	return read_batches(bpf_map__fd(skel->maps.live), sizeof(__u32),
			    sizeof(struct hk_bucket), 4096, live_buckets_read, &r) ||
	       read_batches(bpf_map__fd(skel->maps.live_spill), sizeof(__u64),
			    sizeof(__u64), 4096, live_spill_read, &r) ? -1 : 0;
}

struct collecting {
	struct run *run;
	struct hk_result *res;
	size_t cap;
	bool swept;
};

static int collect_one(void *ctx, uint64_t blk)
{
	struct collecting *c = ctx;

	return add_trace(c->run, c->res, &c->cap, &c->swept, blk);
}

/* Every live block, with its traceback. */
/* pprof's alloc_*: what each stack allocated in the window, freed or
 * not (with alloc_totals; estimates when sampled). */
static int collect_allocs(struct run *run, struct hk_result *res)
{
	uint32_t ids = run->skel->bss->next_stack_id + 1;
	int fd = bpf_map__fd(run->skel->maps.allocated);
	bool swept = false;

	if (!run->skel->rodata->count_allocs)
		return 0;
	if (ids > HK_ALLOC_IDS)
		ids = HK_ALLOC_IDS;
	res->allocs = calloc(ids, sizeof(*res->allocs));
	if (!res->allocs)
		return -1;
	for (uint32_t id = 0; id < ids; id++) {
		struct hk_alloc_sum a;
		const struct hk_traceback *tb;

		if (bpf_map_lookup_elem(fd, &id, &a) || !a.count)
			continue;
		tb = id ? hk_sym_lookup(run->sym, id) : hk_sym_empty(run->sym);
		if (!tb && !swept) {
			resolve_all(run);
			swept = true;
			tb = hk_sym_lookup(run->sym, id);
		}
		res->allocs[res->nallocs++] = (struct hk_alloc_total){
			.tb = tb ? tb : hk_sym_empty(run->sym),
			.count = (double)a.count / HK_ALLOC_ONE, .bytes = (double)a.bytes };
	}
	return 0;
}

static int collect(struct run *run, struct hk_result *res)
{
	struct collecting c = { .run = run, .res = res };

	return for_each_live(run->skel, collect_one, &c) || collect_allocs(run, res) ? -1 : 0;
}

static void debug_time(const char *what, double since)
{
	if (getenv("HAWK_BPF_DEBUG"))
		fprintf(stderr, "hawk-bpf: debug: %s took %.3f s\n", what,
			now() - since);
}

/* With kernel.bpf_stats_enabled=1, the time spent in each program. */
static void debug_prog_stats(struct hawk_bpf *skel)
{
	struct bpf_program *p;

	if (!getenv("HAWK_BPF_DEBUG"))
		return;
	bpf_object__for_each_program(p, skel->obj) {
		struct bpf_prog_info info = {0};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) ||
		    !info.run_cnt)
			continue;
		fprintf(stderr, "hawk-bpf: debug: %s: %llu runs, %.0f ns/run\n",
			bpf_program__name(p), (unsigned long long)info.run_cnt,
			(double)info.run_time_ns / info.run_cnt);
	}
}

static void *destroy_link(void *l)
{
	bpf_link__destroy(l);
	return NULL;
}

static void *close_link(void *fd)
{
	close((int)(intptr_t)fd);
	return NULL;
}

/* Each uprobe takes ~0.2 s to unregister (an RCU grace period); in
 * parallel they share one. */
static void detach_all(struct bpf_link **links, int n, const int *mfds, int nm)
{
	pthread_t th[2 * HK_MAX_PROBES + 8];
	bool started[2 * HK_MAX_PROBES + 8] = { false };

	for (int i = 0; i < n; i++)
		started[i] = pthread_create(&th[i], NULL, destroy_link, links[i]) == 0;
	for (int i = 0; i < nm; i++)
		started[n + i] = pthread_create(&th[n + i], NULL, close_link,
						(void *)(intptr_t)mfds[i]) == 0;
	for (int i = 0; i < n + nm; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else if (i < n)
			bpf_link__destroy(links[i]);
		else
			close(mfds[i - n]);
	}
}

struct detach {
	pthread_t thread;
	struct hawk_bpf *skel;
	struct bpf_link *links[2 * HK_MAX_PROBES + 3];
	int nlinks;
	int mfds[4], nmfds;
};

static void *detach_thread(void *arg)
{
	struct detach *d = arg;
	double t0 = now();

	detach_all(d->links, d->nlinks, d->mfds, d->nmfds);
	hawk_bpf__destroy(d->skel);
	debug_time("detach", t0);
	return NULL;
}

static bool exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return pidfd >= 0 && poll(&p, 1, 0) == 1;
}

struct hk_tracer {
	struct run run;
	struct hk_pytarget *t;
	struct hk_trace_opts o;
	struct hk_hooks hooks;
	struct hk_sampler sampler;
	struct bpf_link *links[2 * HK_MAX_PROBES + 3];
	int nlinks;
	int mfds[4], nmfds;		/* uprobe_multi links */
	struct ring_buffer *rb;
	int pidfd;
	double start;
	bool ring;		/* sampling announces into a ring */
	struct hk_ring rr;
	int timerfd;		/* ring: when to read it next */
	bool ring_failed;	/* ring: a read failed (the target went) */
	bool ring_busy;		/* ring: read at RING_BUSY_NS */
	double drain_s;		/* ring: time spent draining (debug) */
	unsigned long drains;
	struct hk_tablewatch watch;
};

/* How often the ring is read: every 5 ms, every 1 ms while a read finds
 * it more than 1/16 full (bursts of sampled blocks). */
#define RING_PERIOD_NS 5000000
#define RING_BUSY_NS 1000000

static void ring_timer(struct hk_tracer *tr, long ns)
{
	struct itimerspec its = { .it_interval.tv_nsec = ns, .it_value.tv_nsec = ns };

	timerfd_settime(tr->timerfd, 0, &its, NULL);
}

/* Ring mode, the target gone: whether records before where its ring
 * ended (at Py_FinalizeEx, else at its exit_group(2)) are past tail,
 * unread (or where it ended is not known). */
static bool ring_unapplied(const struct hawk_bpf *skel, uint64_t tail)
{
	if (skel->bss->frozen && skel->data->frozen_pos != ~0ULL)
		return skel->data->frozen_pos > tail;
	return skel->bss->exit_pos ? skel->bss->exit_pos - 1 > tail : true;
}

/* Ring mode: apply what the trampoline has written so far. */
static void ring_drain(struct hk_tracer *tr)
{
	const struct hawk_bpf *skel = tr->run.skel;
	uint64_t ticks, before = tr->rr.tail;
	double t0 = now();
	bool busy;

	if (!tr->ring || tr->ring_failed)
		return;
	/* the timer's count only wakes the poll: drain whether or not due */
	if (tr->timerfd >= 0 && read(tr->timerfd, &ticks, sizeof(ticks)) < 0)
		ticks = 0;
	if (hk_ring_drain(&tr->rr)) {
		/* the target went (or its ring is not one): unless every
		 * record before its end was applied, some are lost */
		tr->ring_failed = true;
		if (getenv("HAWK_BPF_DEBUG"))
			fprintf(stderr, "hawk-bpf: debug: ring: unreadable; applied up to %llu, ended at %llu (exit_group, 0: not seen), frozen %u at %llu\n",
				(unsigned long long)tr->rr.tail, (unsigned long long)skel->bss->exit_pos,
				skel->bss->frozen, (unsigned long long)skel->data->frozen_pos);
		if (tr->rr.base && ring_unapplied(skel, tr->rr.tail))
			tr->rr.lost++;
	}
	busy = tr->rr.tail - before > (tr->rr.mask + 1) / 16;
	if (busy != tr->ring_busy && tr->timerfd >= 0) {
		ring_timer(tr, busy ? RING_BUSY_NS : RING_PERIOD_NS);
		tr->ring_busy = busy;
	}
	tr->drain_s += now() - t0;
	tr->drains++;
	ring_buffer__consume(tr->rb);
}

static void ring_counters(struct hk_tracer *tr, uint64_t *c)
{
	if (!tr->ring)
		return;
	c[HK_CNT_RING_DROPPED] = tr->rr.dropped;
	c[HK_CNT_RING_LOST] = tr->rr.lost;
}

/* Undo in the order that keeps every call consistent: the table first,
 * then the probes; stacks still announced are resolved after. With res,
 * the record is frozen and collected first (rc 0 so far) and the probes
 * come off in the background (hk_result_free waits). Frees tr. */
static void tables_changed(const struct hk_tracer *tr, struct hk_result *res)
{
	res->tables_changed = tr->watch.changed_at >= 0;
	/* seen at the last check, a moment after the window's end */
	res->tables_changed_at = res->seconds > 0 && tr->watch.changed_at > res->seconds ?
				 res->seconds : tr->watch.changed_at;
	res->tables_changed_slot = tr->watch.slot;
}

static int teardown(struct hk_tracer *tr, struct hk_result *res, int rc,
		    char *err, size_t errlen)
{
	struct run *run = &tr->run;
	const struct hk_trace_opts *o = &tr->o;
	char warning[256];

	/* before our own switches back */
	hk_tablewatch_check(&tr->watch, now(), true);
	if (res)
		tables_changed(tr, res);
	if (!o->sample || hk_sampler_remove(&tr->sampler, tr->t, warning,
					     sizeof(warning)) == 0)
		warning[0] = 0;
	if (res)
		snprintf(res->warning, sizeof(res->warning), "%s", warning);
	hk_hooks_restore(&tr->hooks, tr->t);
	debug_prog_stats(run->skel);
	if (rc == 0 && res) {
		/* Stop the record first: the snapshot is this instant, while
		 * the probes take a while to come off. */
		double t0;

		ring_drain(tr);
		res->execd = run->skel->bss->execd != 0;
		res->finalizing = run->skel->bss->frozen != 0 && !res->execd;
		run->skel->bss->frozen = 1;
		ring_buffer__consume(tr->rb);
		read_counters(run->skel, res->counters);
		ring_counters(tr, res->counters);
		if (tr->ring && getenv("HAWK_BPF_DEBUG"))
			fprintf(stderr, "hawk-bpf: debug: ring: %llu records applied in %lu drains, %.3f s\n",
				(unsigned long long)tr->rr.applied, tr->drains, tr->drain_s);
		read_hist(run->skel, res);
		t0 = now();
		rc = collect(run, res);
		debug_time("collect", t0);
		if (rc)
			snprintf(err, errlen, "cannot read the live blocks: %s",
				 strerror(errno));
		if (!res->target_exited && exited(tr->pidfd))
			res->target_exited = true;
	}
	if (tr->pidfd >= 0)
		close(tr->pidfd);
	if (tr->timerfd >= 0)
		close(tr->timerfd);
	hk_ring_close(&tr->rr);
	ring_buffer__free(tr->rb);
	free(run->buf);
	if (res) {
		res->sym = run->sym;
		res->sym_borrowed = false;
	} else {
		hk_sym_free(run->sym);
	}
	/* Unregistering uprobes is slow (serialized RCU waits): it runs in
	 * the background while the report is written; hk_result_free waits
	 * for it, so nothing of ours outlives the process. */
	if (res) {
		struct detach *d = malloc(sizeof(*d));

		if (d) {
			*d = (struct detach){ .skel = run->skel, .nlinks = tr->nlinks,
					      .nmfds = tr->nmfds };
			memcpy(d->links, tr->links, tr->nlinks * sizeof(tr->links[0]));
			memcpy(d->mfds, tr->mfds, tr->nmfds * sizeof(tr->mfds[0]));
			if (pthread_create(&d->thread, NULL, detach_thread, d) == 0) {
				res->detach = d;
				free(tr);
				return rc;
			}
			free(d);
		}
	}
	detach_all(tr->links, tr->nlinks, tr->mfds, tr->nmfds);
	hawk_bpf__destroy(run->skel);
	free(tr);
	if (!res && rc == 0 && warning[0]) {
		snprintf(err, errlen, "%s", warning);
		rc = 1;
	}
	return rc;
}

/* libbpf's own messages go to stderr only with HAWK_BPF_DEBUG: each
 * failure they tell of is also ours to say, in one line of our own (a
 * target that exits during attach made libbpf spill its warnings). */
static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_DEBUG || !getenv("HAWK_BPF_DEBUG"))
		return 0;
	fputs("hawk-bpf: debug: libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

static int start(struct hk_tracer **out, struct hk_pytarget *t,
		 const struct hk_trace_opts *o, char *err, size_t errlen)
{
	struct hk_tracer *tr;
	struct run *run;
	struct probes pr;
	unsigned capture = o->frames + 2, live_buckets;

	*out = NULL;
	if (capture > HK_MAX_FRAMES)
		capture = HK_MAX_FRAMES;
	tr = calloc(1, sizeof(*tr));
	if (!tr)
		return ERR("out of memory");
	run = &tr->run;
	tr->t = t;
	tr->o = *o;
	tr->pidfd = -1;
	tr->timerfd = -1;
	if (hk_hooks_plan(&tr->hooks, t, err, errlen)) {
		free(tr);
		return -1;
	}
	run->skel = hawk_bpf__open();
	if (!run->skel) {
		free(tr);
		return ERR("cannot open the BPF object: %s", strerror(errno));
	}
	if (set_pidns(run->skel, t->pid)) {
		hawk_bpf__destroy(run->skel);
		free(tr);
		return ERR("cannot read the pid namespace of process %d: %s",
			   (int)t->pid, strerror(errno));
	}
	run->skel->rodata->L = t->layout->bpf;
	run->skel->rodata->L.runtime_addr = t->runtime;
	run->skel->rodata->capture_frames = capture;
	run->skel->rodata->frames_limit = o->frames;
	run->skel->rodata->bare = getenv("HAWK_BPF_BARE") != NULL;
	run->skel->rodata->count_total = o->need_total;
	run->skel->rodata->stats_mode = o->stats;
	run->skel->rodata->count_allocs = o->alloc_totals && !o->stats;
	if (!run->skel->rodata->count_allocs)
		bpf_map__set_max_entries(run->skel->maps.allocated, 1);
	if (o->sample) {
		if (hk_sampler_plan(&tr->sampler, t, &tr->hooks, o->sample,
				    capture, o->need_total,
				    getppid_traceable, err, errlen)) {
			hawk_bpf__destroy(run->skel);
			free(tr);
			return -1;
		}
		run->skel->rodata->sample_pad = tr->sampler.tagging ? HK_TRAMP_TAG_PAD : 0;
		run->skel->rodata->sample_raw = tr->sampler.raw;
		run->skel->rodata->sample_sys = tr->sampler.sys;
		run->skel->rodata->sample_mode = 1;
		run->skel->rodata->sample_magic = HK_SAMPLE_MAGIC;
		tr->ring = tr->sampler.ring;
		if (tr->ring)
			run->skel->rodata->ring_word = tr->sampler.ringaddr;
		run->skel->rodata->sample_period = o->sample->period;
		run->skel->rodata->sample_mult = o->sample->mult;
		if (o->sample->period)
			memcpy((void *)run->skel->rodata->sample_ptab, hk_sb_table(),
			       sizeof(run->skel->rodata->sample_ptab));
		run->skel->rodata->sample_nclasses = o->sample->n;
		for (unsigned i = 0; i < o->sample->n; i++) {
			run->skel->rodata->sample_bound[i] = o->sample->bound[i];
			run->skel->rodata->sample_thresh[i] =
				hk_sample_threshold(o->sample->prob[i]);
		}
	}
	bpf_program__set_autoload(run->skel->progs.sys_announce,
				  o->sample && tr->sampler.sys);
	bpf_program__set_autoload(run->skel->progs.drain, tr->ring);
	bpf_program__set_autoload(run->skel->progs.target_exit, tr->ring);
	for (int i = 0; i < tr->hooks.nsites; i++)
		run->skel->rodata->site_domain[i] = site_domain(&tr->hooks.sites[i]);
	/* Two slots a block: the table is half full with max_blocks live. */
	live_buckets = o->stats ? 1 : (o->max_blocks * 2 + HK_BUCKET_SLOTS - 1) / HK_BUCKET_SLOTS;
	run->skel->rodata->live_buckets = live_buckets;
	bpf_map__set_max_entries(run->skel->maps.live, live_buckets);
	bpf_map__set_max_entries(run->skel->maps.live_spill,
				 live_buckets / 8 > 1024 ? live_buckets / 8 : 1024);
	bpf_map__set_value_size(run->skel->maps.stacks,
				offsetof(struct hk_stack, frames) +
				capture * sizeof(struct hk_frame_raw));
	pr = (struct probes){ .links = tr->links, .nlinks = &tr->nlinks,
			      .mfds = tr->mfds, .nmfds = &tr->nmfds,
			      .multi = hk_umulti_supported() && !getenv("HAWK_BPF_PERF_UPROBES") };
	for (int w = 0; pr.multi && w < 4; w++)
		if (hk_umulti_prepare(prog_of(run->skel, w))) {
			hawk_bpf__destroy(run->skel);
			free(tr);
			return ERR("cannot prepare the uprobe programs: %s", strerror(errno));
		}
	if (hawk_bpf__load(run->skel)) {
		int e = errno;

		hawk_bpf__destroy(run->skel);
		free(tr);
		if (e == EPERM || e == EACCES)
			return ERR("permission denied loading BPF programs: run as root (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE)");
		return ERR("cannot load the BPF programs: %s (HAWK_BPF_DEBUG=1 shows libbpf's messages)",
			   strerror(e));
	}
	run->stacks_fd = bpf_map__fd(run->skel->maps.stacks);
	run->rates = o->sample;
	run->buf = calloc(1, sizeof(*run->buf));
	run->sym = hk_sym_new(t->memfd, t->layout, o->frames);
	tr->rb = ring_buffer__new(bpf_map__fd(run->skel->maps.new_stacks),
				  on_new_stack, run, NULL);
	/* the process hk_pytarget_open found, even if its PID is reused */
	tr->pidfd = t->pidfd >= 0 ? fcntl(t->pidfd, F_DUPFD_CLOEXEC, 0)
				  : (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (!run->buf || !run->sym || !tr->rb) {
		snprintf(err, errlen, "out of memory");
		return teardown(tr, NULL, -1, err, errlen);
	}
	if (o->sample && hk_sampler_prepare(&tr->sampler, t, err, errlen))
		return teardown(tr, NULL, -1, err, errlen);
	if (tr->ring) {
		struct epoll_event ev = { .events = EPOLLIN };

		tr->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (tr->timerfd >= 0)
			ring_timer(tr, RING_PERIOD_NS);
		if (hk_ring_open(&tr->rr, t->memfd, tr->sampler.ringaddr,
				 bpf_program__fd(run->skel->progs.drain)) ||
		    tr->timerfd < 0 ||
		    epoll_ctl(ring_buffer__epoll_fd(tr->rb), EPOLL_CTL_ADD,
			      tr->timerfd, &ev)) {
			snprintf(err, errlen, "cannot set up the sampling ring of process %d: %s",
				 (int)t->pid, strerror(errno));
			return teardown(tr, NULL, -1, err, errlen);
		}
	}
	if (attach(run->skel, t, &tr->hooks, o->stats, o->sample != NULL,
		   o->sample && tr->sampler.sys, tr->ring, &pr, err, errlen) ||
	    /* sampling the raw domain too: its slots go to the trampoline */
	    (!(o->sample && tr->sampler.raw) &&
	     hk_hooks_redirect(&tr->hooks, t, o->sample != NULL, err, errlen)) ||
	    (o->sample && hk_sampler_switch(&tr->sampler, t, err, errlen)))
		return teardown(tr, NULL, -1, err, errlen);
	tr->start = now();
	hk_tablewatch_arm(&tr->watch, t->memfd, &tr->hooks, tr->start);
	char window[32] = "until stopped";

	if (o->duration_ms)
		snprintf(window, sizeof(window), "for %.3g s", o->duration_ms / 1000.0);
	if (!o->quiet)
		fprintf(stderr, "hawk-bpf: tracing PID %d (CPython %s, %s), %u probes, %s%s\n",
		(int)t->pid, t->version, t->image_name,
		pr.multi ? pr.n[0] + pr.n[1] + pr.n[2] + pr.n[3] : (unsigned)tr->nlinks, window,
		o->sample ? ", sampling" : "");
	fflush(stderr);
	*out = tr;
	return 0;
}

int hk_trace_start(struct hk_tracer **out, struct hk_pytarget *t,
		   const struct hk_trace_opts *o, char *err, size_t errlen)
{
	libbpf_set_print(libbpf_print);
	if (start(out, t, o, err, errlen) == 0)
		return 0;
	/* whatever failed, the reason is then that the target went away */
	return hk_pytarget_gone(t) ? hk_pytarget_gone_err(t, err, errlen) : -1;
}

int hk_trace_poll(struct hk_tracer *tr, int timeout_ms)
{
	if (exited(tr->pidfd))
		return 1;
	if (tr->run.skel->bss->execd)
		return 2;
	/* ring: the timer in the epoll set wakes it every RING_PERIOD_NS */
	ring_buffer__poll(tr->rb, timeout_ms);
	ring_drain(tr);
	hk_tablewatch_check(&tr->watch, now(), false);
	return 0;
}

int hk_trace_fd(const struct hk_tracer *tr)
{
	return ring_buffer__epoll_fd(tr->rb);
}

int hk_trace_snapshot(struct hk_tracer *tr, struct hk_result *res, char *err,
		      size_t errlen)
{
	memset(res, 0, sizeof(*res));
	ring_drain(tr);
	ring_buffer__consume(tr->rb);
	res->finalizing = tr->run.skel->bss->frozen != 0;
	read_counters(tr->run.skel, res->counters);
	ring_counters(tr, res->counters);
	read_hist(tr->run.skel, res);
	res->sym = tr->run.sym;
	res->sym_borrowed = true;
	res->seconds = now() - tr->start;
	res->began = tr->start;
	res->target_exited = exited(tr->pidfd);
	hk_tablewatch_check(&tr->watch, now(), true);
	tables_changed(tr, res);
	if (collect(&tr->run, res))
		return ERR("cannot read the live blocks: %s", strerror(errno));
	return 0;
}

struct counting {
	const struct hk_sample_rates *rates;
	uint64_t blocks;
	double bytes;
};

static int count_one(void *ctx, uint64_t blk)
{
	struct counting *c = ctx;
	uint64_t size = HK_BLOCK_SIZE(blk);

	c->blocks++;
	c->bytes += c->rates ? size * hk_sample_weight(c->rates, HK_BLOCK_CLASS(blk), size)
			     : (double)size;
	return 0;
}

int hk_trace_count(struct hk_tracer *tr, uint64_t *blocks, double *bytes,
		   uint64_t counters[HK_CNT_MAX])
{
	struct counting c = { .rates = tr->o.sample };
	int rc;

	ring_drain(tr);
	read_counters(tr->run.skel, counters);
	ring_counters(tr, counters);
	rc = for_each_live(tr->run.skel, count_one, &c);
	*blocks = c.blocks;
	*bytes = c.bytes;
	return rc;
}

int hk_trace_stop(struct hk_tracer *tr, struct hk_result *res, char *err,
		  size_t errlen)
{
	if (res) {
		res->seconds = now() - tr->start;
		res->began = tr->start;
	}
	return teardown(tr, res, 0, err, errlen);
}

double hk_trace_began(const struct hk_tracer *tr)
{
	return tr->start;
}

int hk_trace_run(struct hk_pytarget *t, const struct hk_trace_opts *o,
		 struct hk_result *res, char *err, size_t errlen)
{
	struct hk_tracer *tr;
	double deadline;

	memset(res, 0, sizeof(*res));
	if (hk_trace_start(&tr, t, o, err, errlen))
		return -1;
	deadline = tr->start + o->duration_ms / 1000.0;
	while (!*o->stop) {
		double left = deadline - now();

		if (left <= 0)
			break;
		int gone = hk_trace_poll(tr, left < 0.05 ? (int)(left * 1000) + 1 : 50);

		if (gone) {
			res->target_exited = gone == 1;
			break;
		}
	}
	res->interrupted = *o->stop != 0;
	return hk_trace_stop(tr, res, err, errlen);
}

void hk_result_free(struct hk_result *r)
{
	if (r->detach) {
		pthread_join(r->detach->thread, NULL);
		free(r->detach);
	}
	free(r->traces);
	free(r->allocs);
	if (!r->sym_borrowed)
		hk_sym_free(r->sym);
	memset(r, 0, sizeof(*r));
}

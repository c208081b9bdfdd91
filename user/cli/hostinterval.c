/* --interval host-wide (see hostinterval.h). */
#include "hostinterval.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "hostreport.h"
#include "session.h"
#include "util.h"

struct hk_hostseries {
	struct hk_series_set *s;
	struct hk_ticker tk;
	double window_s;		/* from the window's start to its end */
	double began;			/* the window's start, s after hawk-bpf began */
	struct hk_source **src;		/* per traced process, made when asked */
	size_t nsrc;
	const struct hk_procset *ps;	/* for the writers' callbacks */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static hk_u128 heap_at_end(const struct hk_traced *tt)
{
	struct hk_snapshot snap = { tt->res.traces, tt->res.ntraces, 1 };

	return hk_snapshot_total(&snap);
}

/* The blocks of the chosen records as one snapshot (tracebacks borrowed:
 * statistics compare them by content). */
static int add_union(struct hk_series_set *s, const struct hk_options *o,
		     const struct hk_result *const *recs, size_t n)
{
	size_t total = 0, k = 0;
	struct hk_trace *all;
	int e;

	for (size_t i = 0; i < n; i++)
		total += recs[i]->ntraces;
	all = malloc((total + 1) * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memcpy(all + k, recs[i]->traces, recs[i]->ntraces * sizeof(*all));
		k += recs[i]->ntraces;
	}
	struct hk_snapshot snap = { all, total, o->frames };

	e = hk_series_add(s, 0, &snap);
	free(all);
	return e;
}

/* One point at t: the record rec(i) of each process i that has one, as
 * its own owner (i) or merged (owner 0). */
static int add_point(struct hk_series_set *s, const struct hk_options *o,
		     const struct hk_procset *ps, double t,
		     const struct hk_result *(*rec)(const struct hk_procset *, size_t, const void *),
		     const void *arg)
{
	const struct hk_result **recs = calloc(ps->ntraced + 1, sizeof(*recs));
	size_t n = 0;
	int e = recs ? hk_series_point(s, t) : -ENOMEM;

	for (size_t i = 0; i < ps->ntraced && !e; i++) {
		const struct hk_result *r = rec(ps, i, arg);

		if (!r)
			continue;
		if (o->merge) {
			recs[n++] = r;
		} else {
			struct hk_snapshot snap = { r->traces, r->ntraces, o->frames };

			e = hk_series_add(s, (uint32_t)i, &snap);
		}
	}
	if (!e && o->merge)
		e = add_union(s, o, recs, n);
	free(recs);
	return e;
}

/* A tick's: the snapshot of each process traced then. */
static const struct hk_result *snapped(const struct hk_procset *ps, size_t i,
				       const void *arg)
{
	return ps->traced[i]->has_snap ? &ps->traced[i]->snap : NULL;
}

/* The end's: the record of each process still traced when it came. */
static const struct hk_result *at_end(const struct hk_procset *ps, size_t i,
				      const void *arg)
{
	const bool *ended_before = arg;

	return ended_before[i] ? NULL : &ps->traced[i]->res;
}

struct hk_hostseries *hk_hostinterval_watch(const struct hk_options *o,
					    struct hk_procset *ps, double start,
					    volatile sig_atomic_t *stop,
					    char *err, size_t errlen)
{
	struct hk_hostseries *hs = calloc(1, sizeof(*hs));
	bool *ended_before = NULL;
	size_t n;
	double end;
	int e = 0;

	if (hs)
		hs->s = hk_series_new(o->format == HK_FMT_TRACEBACK ? HK_KEY_TRACEBACK
								   : HK_KEY_LINENO, o->cumulative);
	if (!hs || !hs->s)
		e = -ENOMEM;
	else
		hk_ticker_init(&hs->tk, o, start);
	while (!e && !*stop) {
		bool last;
		double due = hk_ticker_due(&hs->tk, &last), left, t0;

		while (!*stop && (left = due - now()) > 0)
			hk_procset_poll(ps, left < 0.05 ? (int)(left * 1000) + 1 : 50);
		if (*stop || last)
			break;
		t0 = now();
		hk_procset_snapshot(ps);
		e = add_point(hs->s, o, ps, t0 - ps->t0, snapped, NULL);
		hk_procset_unsnap(ps);
		hk_ticker_taken(&hs->tk, t0, now());
	}
	/* who is still traced now ends with the window; the rest ended before
	 * (those that go live as it closes are adopted past n: they count) */
	end = now();
	n = ps->ntraced;
	ended_before = calloc(n + 1, sizeof(*ended_before));
	for (size_t i = 0; ended_before && i < n; i++)
		ended_before[i] = ps->traced[i]->stopped;
	hk_procset_stop(ps);
	if (!e && !ended_before)
		e = -ENOMEM;
	if (!e) {
		bool *all = realloc(ended_before, (ps->ntraced + 1) * sizeof(*all));

		if (!all) {
			e = -ENOMEM;
		} else {
			ended_before = all;
			for (size_t i = n; i < ps->ntraced; i++)
				ended_before[i] = false;
			e = add_point(hs->s, o, ps, end - ps->t0, at_end, ended_before);
		}
	}
	free(ended_before);
	if (e) {
		snprintf(err, errlen, "cannot keep the time series: %s", strerror(-e));
		if (hs)
			hk_series_free(hs->s);
		free(hs);
		return NULL;
	}
	hs->window_s = end - start;
	hs->began = start - ps->t0;
	return hs;
}

/* ---- writing ------------------------------------------------------------ */

static struct hk_source *source_of(void *ctx, uint32_t owner)
{
	struct hk_hostseries *hs = ctx;
	const struct hk_traced *tt;

	if (owner >= hs->nsrc)
		return NULL;
	if (!hs->src[owner]) {
		tt = hs->ps->traced[owner];
		hs->src[owner] = hk_source_at(tt->rootfd, tt->cwdfd, &tt->creds);
	}
	return hs->src[owner];
}

/* Merged, every line is read in the process that holds the most at the
 * end: a pool's workers share their files. */
static struct hk_source *merged_source(void *ctx, uint32_t owner)
{
	struct hk_hostseries *hs = ctx;
	uint64_t best = 0;
	size_t top = 0;

	for (size_t i = 0; i < hs->ps->ntraced; i++) {
		uint64_t b = (uint64_t)heap_at_end(hs->ps->traced[i]);

		if (b > best || i == 0) {
			best = b;
			top = i;
		}
	}
	return source_of(ctx, (uint32_t)top);
}

static void identify(void *ctx, uint32_t owner, json_t *e)
{
	const struct hk_hostseries *hs = ctx;
	const struct hk_traced *tt = hs->ps->traced[owner];

	json_object_set_new(e, "pid", json_integer(tt->info.pid));
	json_object_set_new(e, "comm", json_string(tt->info.comm));
}

static void tag(void *ctx, uint32_t owner, char *buf, size_t len)
{
	const struct hk_hostseries *hs = ctx;

	snprintf(buf, len, "PID %d ", (int)hs->ps->traced[owner]->info.pid);
}

/* Largest traced heap at the end first, as the host-wide report lists
 * them, then by PID. */
static int by_heap(const void *a, const void *b)
{
	const struct hk_traced *x = *(const struct hk_traced *const *)a;
	const struct hk_traced *y = *(const struct hk_traced *const *)b;
	hk_u128 hx = heap_at_end(x), hy = heap_at_end(y);

	if (hx != hy)
		return hx > hy ? -1 : 1;
	return (x->info.pid > y->info.pid) - (x->info.pid < y->info.pid);
}

/* The owner of tt in the series: its place in ps. */
static uint32_t owner_of(const struct hk_procset *ps, const struct hk_traced *tt)
{
	uint32_t i = 0;

	while (ps->traced[i] != tt)
		i++;
	return i;
}

/* Each traced process: who, its window, its total at each point (not
 * merged: merged, only the union's is kept) and its record's counters. */
static json_t *processes_json(const struct hk_options *o, const struct hk_hostseries *hs)
{
	const struct hk_procset *ps = hs->ps;
	const struct hk_traced **order = calloc(ps->ntraced + 1, sizeof(*order));
	json_t *a = order ? json_array() : NULL;

	for (size_t i = 0; order && i < ps->ntraced; i++)
		order[i] = ps->traced[i];
	if (order)
		qsort(order, ps->ntraced, sizeof(*order), by_heap);
	for (size_t i = 0; a && i < ps->ntraced; i++) {
		const struct hk_traced *tt = order[i];
		uint32_t owner = owner_of(ps, tt);
		json_t *e = json_object(), *size = json_array(), *count = json_array();

		hk_hostreport_identity(e, &tt->info);
		hk_hostreport_window(e, tt);
		if (tt->stop_err[0])
			json_object_set_new(e, "error", json_string(tt->stop_err));
		for (size_t k = 0; !o->merge && k < hk_series_npoints(hs->s); k++) {
			uint64_t sz, n;
			bool there = hk_series_total(hs->s, owner, k, &sz, &n);

			json_array_append_new(size, there ? json_integer((json_int_t)sz) : json_null());
			json_array_append_new(count, there ? json_integer((json_int_t)n) : json_null());
		}
		if (!o->merge) {
			json_object_set_new(e, "size", size);
			json_object_set_new(e, "count", count);
		} else {
			json_decref(size);
			json_decref(count);
		}
		json_object_set_new(e, "hawk_bpf", hk_run_json(&tt->t, &tt->res, o));
		json_array_append_new(a, e);
	}
	free(order);
	return a;
}

static json_t *run_json(const struct hk_options *o, const struct hk_hostseries *hs)
{
	json_t *run = hk_hostreport_run(hs->ps, o, hs->window_s);
	uint64_t sum[HK_CNT_MAX] = { 0 };

	for (size_t i = 0; i < hs->ps->ntraced; i++)
		for (int c = 0; c < HK_CNT_MAX; c++)
			sum[c] += hs->ps->traced[i]->res.counters[c];
	json_object_set_new(run, "merged", json_boolean(o->merge));
	/* on the clock of times_s and of every window_began_s */
	json_object_set_new(run, "window_began_s", json_real(hs->began));
	hk_ticker_json(&hs->tk, run);
	json_object_set_new(run, "counters", hk_counters_json(sum));
	return run;
}

int hk_hostinterval_write(const struct hk_options *o, const struct hk_procset *ps,
			  struct hk_hostseries *hs, struct hk_ts_out *w)
{
	struct hk_ts_owners who = { hs, o->merge ? merged_source : source_of,
				    o->merge ? NULL : identify, o->merge ? NULL : tag };
	struct hk_ts_chart c = { .who = &who };
	const struct hk_series **top = NULL;
	size_t ntop = 0, sampled = 0;
	char host[256] = "?";
	json_t *doc = NULL;
	int rc = 1;

	hs->ps = ps;
	hs->nsrc = ps->ntraced;
	hs->src = calloc(hs->nsrc + 1, sizeof(*hs->src));
	hk_ticker_warn(&hs->tk, o);
	if (hs->src && hk_ts_top(hs->s, o, &top, &ntop) == 0)
		doc = hk_timeseries_json(hs->s, top, ntop, hs->tk.interval, &who);
	if (!doc) {
		hk_ts_out_discard(w);
		hk_fail("cannot make the time series: out of memory");
		goto out;
	}
	json_object_set_new(doc, "processes", processes_json(o, hs));
	json_object_set_new(doc, "skipped", hk_hostreport_skipped(ps));
	for (size_t i = 0; i < ps->ntraced; i++)
		sampled += ps->traced[i]->res.ntraces;
	if (o->sample)
		json_object_set_new(doc, "sampling", hk_sampling_json(o, sampled));
	json_object_set_new(doc, "hawk_bpf", run_json(o, hs));
	gethostname(host, sizeof(host) - 1);
	snprintf(c.title, sizeof(c.title), "hawk-bpf: %zu CPython process%s on %s%s",
		 ps->ntraced, ps->ntraced == 1 ? "" : "es", host, o->merge ? ", merged" : "");
	c.s = hs->s;
	c.top = top;
	c.ntop = ntop;
	/* the time axis: on the clock of times_s, to the window's end */
	c.x_end = hs->began + hs->window_s;
	c.window_s = hs->window_s;
	rc = hk_ts_out_write(w, o, doc, &c);
	if (!rc)
		fprintf(stderr, "hawk-bpf: %zu snapshots of %zu process%s over %.1f s\n",
			hk_series_npoints(hs->s), ps->ntraced, ps->ntraced == 1 ? "" : "es",
			hs->window_s);
out:
	json_decref(doc);
	free(top);
	for (size_t i = 0; hs->src && i < hs->nsrc; i++)
		hk_source_free(hs->src[i]);
	free(hs->src);
	hk_series_free(hs->s);
	free(hs);
	return rc ? 1 : 0;
}

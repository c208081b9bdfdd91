/* --interval: the one-shot profile as a time series (see interval.h). */
#include "interval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "proc.h"
#include "report.h"
#include "session.h"
#include "util.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- when ---------------------------------------------------------------- */

/* The ticks before the window's end: k * interval < duration, k >= 1. */
static unsigned long ticks(const struct hk_ticker *tk)
{
	return (unsigned long)ceil((tk->end - tk->began) / tk->interval - 1e-9) - 1;
}

void hk_ticker_init(struct hk_ticker *tk, const struct hk_options *o, double began)
{
	*tk = (struct hk_ticker){ .began = began, .interval = o->interval_ms / 1000.0,
				  .end = began + o->duration_ms / 1000.0, .next = 1 };
}

double hk_ticker_due(const struct hk_ticker *tk, bool *at_end)
{
	*at_end = tk->next > ticks(tk);
	return *at_end ? tk->end : tk->began + tk->next * tk->interval;
}

void hk_ticker_taken(struct hk_ticker *tk, double t0, double t1)
{
	/* the first tick still ahead; those it passed go by */
	unsigned long ahead = (unsigned long)floor((t1 - tk->began) / tk->interval) + 1;
	unsigned long last = ticks(tk) + 1;

	if (ahead > last)
		ahead = last;
	tk->taken++;
	if (t1 - t0 > tk->took_max)
		tk->took_max = t1 - t0;
	if (ahead > tk->next + 1)
		tk->late += ahead - tk->next - 1;
	tk->next = ahead > tk->next + 1 ? ahead : tk->next + 1;
}

void hk_ticker_json(const struct hk_ticker *tk, json_t *o)
{
	json_object_set_new(o, "snapshots", json_integer((json_int_t)tk->taken + 1));
	/* ticks that went by while a snapshot was being taken */
	json_object_set_new(o, "snapshots_skipped", json_integer((json_int_t)tk->late));
	json_object_set_new(o, "snapshot_seconds_max", json_real(tk->took_max));
}

void hk_ticker_warn(const struct hk_ticker *tk, const struct hk_options *o)
{
	if (tk->late)
		fprintf(stderr, "hawk-bpf: warning: %lu snapshots were skipped: one took up to %.2f s, longer than --interval %g s\n",
			tk->late, tk->took_max, o->interval_ms / 1000.0);
}

/* ---- where -------------------------------------------------------------- */

int hk_ts_out_open(struct hk_ts_out *w, const struct hk_options *o, char *err,
		   size_t errlen)
{
	w->has_svg = false;
	if (hk_out_open(&w->json, o->output, err, errlen))
		return -1;
	if (o->svg) {
		if (hk_out_open(&w->svg, o->svg, err, errlen)) {
			hk_out_discard(&w->json);
			return -1;
		}
		w->has_svg = true;
	}
	return 0;
}

void hk_ts_out_discard(struct hk_ts_out *w)
{
	hk_out_discard(&w->json);
	if (w->has_svg)
		hk_out_discard(&w->svg);
	w->has_svg = false;
}

/* "by line, a snapshot every 1 s over 30.0 s: the 10 lines holding the
 * most at the last one" */
static void subtitle(char *buf, size_t len, const struct hk_options *o, size_t ntop,
		     size_t drawn, double seconds)
{
	bool tb = o->format == HK_FMT_TRACEBACK;
	const char *what = tb ? "tracebacks" : "lines";
	int n = snprintf(buf, len, "live blocks allocated in the window, by %s%s%s; a snapshot every %g s over %.1f s; ",
			 tb ? "traceback" : "line", o->cumulative ? " (cumulative)" : "",
			 !o->hostwide ? "" : o->merge ? " over every process" : " of each process",
			 o->interval_ms / 1000.0, seconds);

	if (n < 0 || (size_t)n >= len)
		return;
	if (drawn < ntop)
		n += snprintf(buf + n, len - (size_t)n, "the first %zu of the %zu %s", drawn,
			      ntop, what);
	else
		n += snprintf(buf + n, len - (size_t)n, "the %zu %s", ntop, what);
	if (n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " holding the most at the last one%s",
			 o->sample ? "; sampled: estimates" : "");
}

int hk_ts_out_write(struct hk_ts_out *w, const struct hk_options *o,
		    const json_t *doc, const struct hk_ts_chart *c)
{
	char err[512], sub[512];
	size_t drawn = c->ntop < HK_SVG_LINES_MAX ? c->ntop : HK_SVG_LINES_MAX;

	errno = 0;
	if (hk_report_write(w->json.f, doc)) {
		hk_out_error(&w->json, errno, err, sizeof(err));
		hk_ts_out_discard(w);
		return hk_fail("%s", err);
	}
	if (w->has_svg) {
		subtitle(sub, sizeof(sub), o, c->ntop, drawn, c->window_s);
		errno = 0;
		if (hk_timeseries_svg(w->svg.f, c->s, c->top, drawn, c->title, sub, c->x_end,
				      c->who)) {
			hk_out_error(&w->svg, errno, err, sizeof(err));
			hk_ts_out_discard(w);
			return hk_fail("%s", err);
		}
	}
	if (hk_out_commit(&w->json, err, sizeof(err))) {
		if (w->has_svg)
			hk_out_discard(&w->svg);
		return hk_fail("%s", err);
	}
	if (w->has_svg && hk_out_commit(&w->svg, err, sizeof(err)))
		return hk_fail("%s", err);
	return 0;
}

int hk_ts_top(const struct hk_series_set *s, const struct hk_options *o,
	      const struct hk_series ***top, size_t *n)
{
	size_t room = hk_series_count(s) < o->count ? hk_series_count(s) : o->count;

	*n = 0;
	*top = calloc(room + 1, sizeof(**top));
	if (!*top || hk_series_top(s, room, *top, n)) {
		free(*top);
		*top = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* ---- one process -------------------------------------------------------- */

static struct hk_source *one_source(void *ctx, uint32_t owner)
{
	return ctx;
}

/* r's blocks as the point at r->seconds. */
static int add_point(struct hk_series_set *s, const struct hk_options *o,
		     const struct hk_result *r)
{
	struct hk_snapshot snap = { r->traces, r->ntraces, o->frames };
	int e = hk_series_point(s, r->seconds);

	return e ? e : hk_series_add(s, 0, &snap);
}

/* Traces until the window ends, a snapshot at every tick, the record at
 * the end into *r. 0, or -1 with one line in err (tr is stopped then
 * too). */
static int watch(struct hk_tracer *tr, const struct hk_options *o,
		 struct hk_series_set *s, struct hk_ticker *tk, struct hk_result *r,
		 volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	char ignored[256];	/* the sampler's warning: the error comes first */
	int gone = 0, e = 0;

	while (!*stop && !gone) {
		bool at_end;
		double due = hk_ticker_due(tk, &at_end), left;

		while (!*stop && !gone && (left = due - now()) > 0)
			gone = hk_trace_poll(tr, left < 0.05 ? (int)(left * 1000) + 1 : 50);
		if (*stop || gone || at_end)
			break;
		struct hk_result snap;
		double t0 = now();

		if (hk_trace_snapshot(tr, &snap, err, errlen)) {
			hk_result_free(&snap);
			hk_trace_stop(tr, NULL, ignored, sizeof(ignored));
			return -1;
		}
		e = add_point(s, o, &snap);
		hk_result_free(&snap);
		if (e) {
			hk_trace_stop(tr, NULL, ignored, sizeof(ignored));
			snprintf(err, errlen, "cannot keep the time series: %s", strerror(-e));
			return -1;
		}
		hk_ticker_taken(tk, t0, now());
	}
	memset(r, 0, sizeof(*r));
	r->target_exited = gone == 1;
	r->interrupted = *stop != 0;
	return hk_trace_stop(tr, r, err, errlen);
}

int hk_interval_profile(const struct hk_options *o, struct hk_pytarget *t,
			const struct hk_trace_opts *to, struct hk_ts_out *w,
			int rootfd, int cwdfd, const struct hk_creds *creds,
			volatile sig_atomic_t *stop)
{
	enum hk_key_type key = o->format == HK_FMT_TRACEBACK ? HK_KEY_TRACEBACK : HK_KEY_LINENO;
	struct hk_series_set *s = hk_series_new(key, o->cumulative);
	const struct hk_series **top = NULL;
	struct hk_source *src = NULL;
	struct hk_tracer *tr;
	struct hk_ticker tk;
	struct hk_result r = { 0 };
	struct hk_ts_owners who = { NULL, one_source, NULL, NULL };
	struct hk_ts_chart c = { .who = &who };
	char err[512], comm[64];
	json_t *doc = NULL, *run;
	size_t ntop = 0;
	int rc = 1, e;

	if (!s) {
		hk_ts_out_discard(w);
		return hk_fail("out of memory");
	}
	if (hk_trace_start(&tr, t, to, err, sizeof(err))) {
		hk_ts_out_discard(w);
		hk_series_free(s);
		return hk_fail("%s", err);
	}
	hk_ticker_init(&tk, o, hk_trace_began(tr));
	if (watch(tr, o, s, &tk, &r, stop, err, sizeof(err))) {
		hk_ts_out_discard(w);
		hk_fail("%s", err);
		goto out;
	}
	hk_warn_window_end(stderr, t->pid, &r);
	hk_ticker_warn(&tk, o);
	e = add_point(s, o, &r);
	if (!e)
		e = hk_ts_top(s, o, &top, &ntop);
	who.ctx = src = hk_source_at(rootfd, cwdfd, creds);
	doc = e ? NULL : hk_timeseries_json(s, top, ntop, tk.interval, &who);
	if (!doc) {
		hk_ts_out_discard(w);
		hk_fail("cannot make the time series: out of memory");
		goto out;
	}
	if (o->sample)
		json_object_set_new(doc, "sampling", hk_sampling_json(o, r.ntraces));
	run = hk_run_json(t, &r, o);
	hk_ticker_json(&tk, run);
	json_object_set_new(doc, "hawk_bpf", run);
	hk_proc_comm(t->pid, comm, sizeof(comm));
	c.s = s;
	c.top = top;
	c.ntop = ntop;
	c.x_end = c.window_s = r.seconds;
	snprintf(c.title, sizeof(c.title), "hawk-bpf: PID %d (%s), CPython %s", (int)t->pid,
		 comm, t->version);
	rc = hk_ts_out_write(w, o, doc, &c);
	if (!rc)
		fprintf(stderr, "hawk-bpf: %zu snapshots over %.1f s; %zu live blocks at the end\n",
			hk_series_npoints(s), r.seconds, r.ntraces);
out:
	json_decref(doc);
	hk_source_free(src);
	free(top);
	hk_series_free(s);
	hk_result_free(&r);
	return rc ? 1 : 0;
}

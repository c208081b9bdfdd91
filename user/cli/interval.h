/* --interval: the one-shot profile as a time series (series.h), written
 * as JSON and, with --svg, as a chart (timeseries.h): of one process
 * here, of the host in hostinterval.h.
 *
 * A snapshot is taken every interval from the window's start and the
 * record at its end is the last point (so a window of 10 s at 3 s has
 * points at 3, 6, 9 and 10 s).  A snapshot that outlasts the interval
 * makes the ticks it overran go by (counted, warned of), rather than
 * letting them pile up behind it. */
#ifndef HAWK_INTERVAL_H
#define HAWK_INTERVAL_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include "creds.h"
#include "options.h"
#include "outfile.h"
#include "pytarget.h"
#include "series.h"
#include "timeseries.h"
#include "tracer.h"

/* When the snapshots are due. */
struct hk_ticker {
	double began, interval, end;	/* CLOCK_MONOTONIC s */
	unsigned long next;		/* the next tick: began + next * interval */
	unsigned long taken, late;	/* snapshots taken; ticks that went by */
	double took_max;		/* the longest snapshot, s */
};

void hk_ticker_init(struct hk_ticker *tk, const struct hk_options *o, double began);
/* When the next snapshot is due; *at_end if that is the window's end,
 * whose record is the last point. */
double hk_ticker_due(const struct hk_ticker *tk, bool *at_end);
/* A snapshot began at t0 and was in at t1. */
void hk_ticker_taken(struct hk_ticker *tk, double t0, double t1);
/* "snapshots", "snapshots_late" and "snapshot_seconds_max" into o; and
 * one warning line if snapshots were late. */
void hk_ticker_json(const struct hk_ticker *tk, json_t *o);
void hk_ticker_warn(const struct hk_ticker *tk, const struct hk_options *o);

/* Where the series go: -o's JSON (or standard output) and --svg's chart,
 * opened before anything is traced and put in place at the end. */
struct hk_ts_out {
	struct hk_out json, svg;
	bool has_svg;
};

/* 0, or -1 with one line in err (nothing is left open then). */
int hk_ts_out_open(struct hk_ts_out *w, const struct hk_options *o, char *err,
		   size_t errlen);
void hk_ts_out_discard(struct hk_ts_out *w);

/* What the chart shows. */
struct hk_ts_chart {
	const struct hk_series_set *s;
	const struct hk_series *const *top;
	size_t ntop;			/* all of them: it draws the first few */
	char title[256];
	double x_end;			/* where the time axis must reach */
	double window_s;		/* the window's length */
	const struct hk_ts_owners *who;
};

/* doc to the JSON, the chart to the SVG, both put in place (the JSON
 * first). 0, or 1 with one line printed on stderr. */
int hk_ts_out_write(struct hk_ts_out *w, const struct hk_options *o,
		    const json_t *doc, const struct hk_ts_chart *c);

/* The top --count of s (*top malloc'ed, free it). 0, or -ENOMEM. */
int hk_ts_top(const struct hk_series_set *s, const struct hk_options *o,
	      const struct hk_series ***top, size_t *n);

/* The one-shot profile of t as a time series: traces with to, writes to
 * w (discarded on failure). Exit status: 0, or 1 with one line printed. */
int hk_interval_profile(const struct hk_options *o, struct hk_pytarget *t,
			const struct hk_trace_opts *to, struct hk_ts_out *w,
			int rootfd, int cwdfd, const struct hk_creds *creds,
			volatile sig_atomic_t *stop);

#endif

/* The time series of --interval, rendered: JSON and an SVG chart of the
 * top series of a set (series.h).
 *
 * JSON: {"interval_s", "key_type": "lineno" | "traceback", "times_s": [seconds of each point], "total": {"size": [...],
 * "count": [...]} (every block of every owner added at each point),
 * "series": [...]}, each series the keys its owner's callback puts first
 * (a process's pid and comm), then its group as the one-shot report
 * shows it ("filename", "lineno", "code" for lineno; "traceback", the
 * Traceback.format() lines, and "frames", [{"filename", "lineno"}]
 * oldest first, for traceback), then "size" and "count" with a value at
 * each point: null where its owner was not added.  Sizes are bytes,
 * sampled ones estimates as in the report.  Written with
 * hk_report_write, as Python's json.dumps(indent=2) writes it. */
#ifndef HAWK_TIMESERIES_H
#define HAWK_TIMESERIES_H

#include <jansson.h>
#include <stdio.h>

#include "series.h"
#include "source.h"

/* What the writers know of owners, from the caller; any may be NULL. */
struct hk_ts_owners {
	void *ctx;
	/* The source lines of owner's files (NULL: every "code" is ""). */
	struct hk_source *(*source)(void *ctx, uint32_t owner);
	/* Adds the keys owner's series start with to entry. */
	void (*identify)(void *ctx, uint32_t owner, json_t *entry);
	/* What the legend puts before owner's lines ("PID 4711 "). */
	void (*tag)(void *ctx, uint32_t owner, char *buf, size_t len);
};

/* The document above for top[0 .. ntop) (hk_series_top's). A new
 * reference, NULL when out of memory. */
json_t *hk_timeseries_json(const struct hk_series_set *s,
			   const struct hk_series *const *top, size_t ntop,
			   double interval_s, const struct hk_ts_owners *who);

/* The chart of top[0 .. ntop) to f: each series' size over time, its
 * legend entry the group's place (the last two parts of a file's path
 * and the line; a traceback's two most recent frames), the most recent
 * one's source line and the size at the end, its tooltip the whole key; the time axis runs to x_end at
 * least (the window's length).  0, or -1 with errno. */
int hk_timeseries_svg(FILE *f, const struct hk_series_set *s,
		      const struct hk_series *const *top, size_t ntop,
		      const char *title, const char *subtitle, double x_end,
		      const struct hk_ts_owners *who);

#endif

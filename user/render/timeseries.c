/* The time series of --interval as JSON and SVG (see timeseries.h). */
#include "timeseries.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "report.h"
#include "svg.h"

/* ---- JSON --------------------------------------------------------------- */

/* A size as a JSON integer; a live heap never nears 2^63 bytes. */
static json_t *uint_json(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Adds key: value, stealing value; counts failures in *err. */
static void put(json_t *o, const char *key, json_t *value, int *err)
{
	if (!value || json_object_set_new(o, key, value))
		(*err)++;
}

static void append(json_t *a, json_t *v, int *err)
{
	if (!v || json_array_append_new(a, v))
		(*err)++;
}

static json_t *frames_json(const struct hk_traceback *tb)
{
	json_t *a = json_array();
	int err = !a;

	/* oldest first, as Traceback lists them */
	for (uint32_t i = tb->nframe; i-- > 0 && !err;) {
		json_t *f = json_object();

		if (f) {
			put(f, "filename", hk_report_str(tb->frames[i].filename), &err);
			put(f, "lineno", json_integer(tb->frames[i].lineno), &err);
		}
		append(a, f, &err);
	}
	if (err) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static json_t *series_json(const struct hk_series_set *s, const struct hk_series *x,
			   const struct hk_ts_owners *who)
{
	struct hk_source *src = who && who->source ? who->source(who->ctx, x->owner) : NULL;
	const struct hk_frame *oldest = &x->tb.frames[x->tb.nframe - 1];
	json_t *e = json_object(), *size = json_array(), *count = json_array();
	int err = !e || !size || !count;

	if (!err && who && who->identify)
		who->identify(who->ctx, x->owner, e);
	if (!err && hk_series_key(s) == HK_KEY_TRACEBACK) {
		put(e, "traceback", hk_report_traceback(&x->tb, src), &err);
		put(e, "frames", frames_json(&x->tb), &err);
	} else if (!err) {
		/* tracemalloc's stat.traceback[0], as the lineno report */
		put(e, "filename", hk_report_str(oldest->filename), &err);
		put(e, "lineno", json_integer(oldest->lineno), &err);
		put(e, "code", hk_report_code(src, oldest), &err);
	}
	for (size_t k = 0; k < hk_series_npoints(s) && !err; k++) {
		uint64_t sz;
		int64_t n;
		bool there = hk_series_at(s, x, k, &sz, &n);

		append(size, there ? uint_json(sz) : json_null(), &err);
		append(count, there ? json_integer(n) : json_null(), &err);
	}
	if (!err) {
		put(e, "size", size, &err);
		put(e, "count", count, &err);
	} else {
		json_decref(size);
		json_decref(count);
	}
	if (err) {
		json_decref(e);
		return NULL;
	}
	return e;
}

json_t *hk_timeseries_json(const struct hk_series_set *s,
			   const struct hk_series *const *top, size_t ntop,
			   double interval_s, const struct hk_ts_owners *who)
{
	json_t *doc = json_object(), *times = json_array(), *list = json_array();
	json_t *total = json_object(), *tsize = json_array(), *tcount = json_array();
	int err = !doc || !times || !list || !total || !tsize || !tcount;

	for (size_t k = 0; k < hk_series_npoints(s) && !err; k++) {
		uint64_t sz, n;

		hk_series_sum(s, k, &sz, &n);
		append(times, json_real(hk_series_time(s, k)), &err);
		append(tsize, uint_json(sz), &err);
		append(tcount, uint_json(n), &err);
	}
	for (size_t i = 0; i < ntop && !err; i++)
		append(list, series_json(s, top[i], who), &err);
	if (err) {
		json_decref(doc);
		json_decref(times);
		json_decref(list);
		json_decref(total);
		json_decref(tsize);
		json_decref(tcount);
		errno = ENOMEM;
		return NULL;
	}
	put(total, "size", tsize, &err);
	put(total, "count", tcount, &err);
	put(doc, "interval_s", json_real(interval_s), &err);
	put(doc, "key_type", json_string(hk_key_type_name(hk_series_key(s))), &err);
	put(doc, "times_s", times, &err);
	put(doc, "total", total, &err);
	put(doc, "series", list, &err);
	if (err) {
		json_decref(doc);
		errno = ENOMEM;
		return NULL;
	}
	return doc;
}

/* ---- SVG ---------------------------------------------------------------- */

/* The last two parts of a path: "pkg/__init__.py" tells more than
 * "__init__.py", and the whole path rarely fits a legend. */
static const char *short_path(const char *path)
{
	const char *last = strrchr(path, '/'), *p;

	if (!last || last == path)
		return path;
	for (p = last - 1; p > path && *p != '/'; p--)
		;
	return *p == '/' ? p + 1 : p;
}

/* The legend's place of x: "leak.py:12", or for a traceback its two most
 * recent frames, "leak.py:12 < main.py:30". */
static void place(const struct hk_series_set *s, const struct hk_series *x, char *buf,
		  size_t len)
{
	const struct hk_traceback *tb = &x->tb;
	const struct hk_frame *f = hk_series_key(s) == HK_KEY_TRACEBACK ? &tb->frames[0]
						      : &tb->frames[tb->nframe - 1];
	int n = snprintf(buf, len, "%s:%u", short_path(f->filename), f->lineno);

	if (hk_series_key(s) != HK_KEY_TRACEBACK || tb->nframe < 2 || n < 0 || (size_t)n >= len)
		return;
	n += snprintf(buf + n, len - (size_t)n, " < %s:%u", short_path(tb->frames[1].filename),
		      tb->frames[1].lineno);
	if (tb->nframe > 2 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " < \xe2\x80\xa6");
}

/* The whole key, for the tooltip: "file:line" a frame, most recent first. */
static char *whole_key(const struct hk_series *x)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (!m)
		return NULL;
	for (uint32_t i = 0; i < x->tb.nframe; i++)
		fprintf(m, "%s%s:%u", i ? "\n" : "", x->tb.frames[i].filename,
			x->tb.frames[i].lineno);
	if (fclose(m)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The source line of x's most recent frame, cut to fit a legend (at a
 * character's boundary, with an ellipsis); "" without one. */
static void code_of(const struct hk_series *x, const struct hk_ts_owners *who,
		    char *buf, size_t len)
{
	enum { MAX_CHARS = 60 };
	struct hk_source *src = who && who->source ? who->source(who->ctx, x->owner) : NULL;
	size_t n = 0, chars = 0, at = 0;
	const char *line = src ? hk_source_line(src, x->tb.frames[0].filename,
						x->tb.frames[0].lineno, &n) : "";

	/* a NUL in the line ends it here: it is a label, not the record */
	while (at < n && line[at] && chars < MAX_CHARS && at + 4 < len) {
		at++;
		while (at < n && ((unsigned char)line[at] & 0xc0) == 0x80)
			at++;
		chars++;
	}
	if (at > len - 4)
		at = 0;
	memcpy(buf, line, at);
	strcpy(buf + at, at < n && line[at] ? "\xe2\x80\xa6" : "");
}

/* x's size at its owner's last point, "1.5 MiB" as tracemalloc prints it. */
static void last_size(const struct hk_series_set *s, const struct hk_series *x,
		      char *buf, size_t len)
{
	for (size_t k = hk_series_npoints(s); k-- > 0;) {
		uint64_t sz;
		int64_t n;

		if (hk_series_at(s, x, k, &sz, &n)) {
			hk_format_size(buf, len, (double)sz, false);
			return;
		}
	}
	snprintf(buf, len, "?");
}

int hk_timeseries_svg(FILE *f, const struct hk_series_set *s,
		      const struct hk_series *const *top, size_t ntop,
		      const char *title, const char *subtitle, double x_end,
		      const struct hk_ts_owners *who)
{
	size_t np = hk_series_npoints(s);
	double *x = calloc(np + 1, sizeof(*x)), *y = calloc(ntop * np + 1, sizeof(*y));
	struct hk_plot_line *lines = calloc(ntop + 1, sizeof(*lines));
	char **labels = calloc(ntop + 1, sizeof(*labels));
	char **titles = calloc(ntop + 1, sizeof(*titles));
	int rc = -1;

	if (!x || !y || !lines || !labels || !titles)
		goto out;
	for (size_t k = 0; k < np; k++)
		x[k] = hk_series_time(s, k);
	for (size_t i = 0; i < ntop; i++) {
		char tag[64] = "", where[600], code[256], size[HK_SIZE_BUFLEN];
		double *yi = y + i * np;

		if (who && who->tag)
			who->tag(who->ctx, top[i]->owner, tag, sizeof(tag));
		place(s, top[i], where, sizeof(where));
		code_of(top[i], who, code, sizeof(code));
		last_size(s, top[i], size, sizeof(size));
		if (asprintf(&labels[i], "%s%s%s%s \xe2\x80\x94 %s", tag, where, *code ? "  " : "",
			     code, size) < 0) {
			labels[i] = NULL;
			goto out;
		}
		if (!(titles[i] = whole_key(top[i])))
			goto out;
		for (size_t k = 0; k < np; k++) {
			uint64_t sz;
			int64_t n;

			yi[k] = hk_series_at(s, top[i], k, &sz, &n) ? (double)sz : NAN;
		}
		lines[i] = (struct hk_plot_line){ labels[i], titles[i], yi };
	}
	struct hk_plot p = { title, subtitle, x, np, x_end, lines, ntop,
			     "nothing traced was alive at the last snapshot" };

	rc = hk_svg_plot(f, &p);
out:
	/* errno: calloc's and asprintf's ENOMEM, or the writer's */
	for (size_t i = 0; labels && titles && i < ntop; i++) {
		free(labels[i]);
		free(titles[i]);
	}
	free(labels);
	free(titles);
	free(lines);
	free(y);
	free(x);
	return rc;
}

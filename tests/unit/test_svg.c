/* The SVG chart writer (user/render/svg.c), read back by a real XML
 * parser (tests/unit/oracle_svg.py: xml.etree): ticks at nice steps,
 * monotone axes, every point where its value puts it, text escaped. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oracle.h"
#include "svg.h"

#define KiB 1024.0
#define MiB (1024.0 * 1024)

static void expect_axis(const struct hk_axis *a, const char *unit, double step,
			unsigned nticks)
{
	cr_assert_str_eq(a->unit_name, unit);
	cr_assert_float_eq(a->step, step, 1e-12, "step %g, want %g", a->step, step);
	cr_assert_eq(a->nticks, nticks, "%u ticks, want %u", a->nticks, nticks);
}

Test(svg, axes_in_their_units)
{
	struct hk_axis a;
	char buf[64];

	hk_axis_bytes(10 * MiB, &a);
	expect_axis(&a, "MiB", 2, 6);	/* 10 MiB exactly: no tick past it */
	hk_axis_label(&a, 5, buf, sizeof(buf));
	cr_assert_str_eq(buf, "10 MiB");
	hk_axis_bytes(1500, &a);
	expect_axis(&a, "KiB", 0.5, 4);
	hk_axis_label(&a, 3, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1.5 KiB");
	hk_axis_bytes(900, &a);
	expect_axis(&a, "B", 200, 6);
	hk_axis_bytes(2.2 * MiB, &a);
	expect_axis(&a, "MiB", 0.5, 6);
	hk_axis_bytes(0, &a);		/* nothing: one KiB */
	expect_axis(&a, "KiB", 0.2, 6);
	hk_axis_bytes(NAN, &a);
	expect_axis(&a, "KiB", 0.2, 6);
	hk_axis_bytes(3 * MiB * MiB, &a);
	expect_axis(&a, "TiB", 1, 4);
	hk_axis_bytes(7 * MiB, &a);
	expect_axis(&a, "MiB", 2, 5);
	hk_axis_label(&a, 1, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2 MiB");

	hk_axis_seconds(30, &a);
	expect_axis(&a, "s", 10, 4);
	hk_axis_seconds(12.5, &a);
	expect_axis(&a, "s", 2.5, 6);
	hk_axis_label(&a, 1, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2.5 s");
	hk_axis_seconds(3600, &a);
	expect_axis(&a, "min", 20, 4);
	hk_axis_seconds(86400, &a);
	expect_axis(&a, "h", 5, 6);
	hk_axis_seconds(0.3, &a);
	expect_axis(&a, "s", 0.1, 4);
	/* a 5 s window that ended a few ms late keeps its 5 s axis */
	hk_axis_seconds(5.0004, &a);
	expect_axis(&a, "s", 1, 6);
	hk_axis_seconds(5.05, &a);
	expect_axis(&a, "s", 2, 4);
	hk_axis_label(&a, 0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0");
}

/* Over ranges from a byte to petabytes: the last tick is at or past max
 * and the one before it below (no empty step), the step is 1, 2, 2.5 or 5
 * times a power of ten, and a label says its value. */
Test(svg, ticks_are_nice_and_tight)
{
	unsigned seed = 7;

	for (int i = 0; i < 20000; i++) {
		double max = exp((double)rand_r(&seed) / RAND_MAX * log(1e16)) + 1;
		struct hk_axis a;
		char buf[64];

		hk_axis_bytes(max, &a);
		double top = (a.nticks - 1) * a.step * a.unit;
		double mant = a.step / pow(10, floor(log10(a.step) + 1e-12));

		cr_assert(a.nticks >= 2 && a.nticks <= 6, "%u ticks for %g", a.nticks, max);
		cr_assert_geq(top * (1 + 1e-9), max, "top %g under %g", top, max);
		cr_assert_lt((a.nticks - 2) * a.step * a.unit, max, "an empty step for %g", max);
		cr_assert(fabs(mant - 1) < 1e-9 || fabs(mant - 2) < 1e-9 ||
			  fabs(mant - 2.5) < 1e-9 || fabs(mant - 5) < 1e-9,
			  "step %g for %g", a.step, max);
		cr_assert(max < 1024 || max >= a.unit, "unit %s for %g", a.unit_name, max);
		cr_assert(max < a.unit * 1024 || !strcmp(a.unit_name, "EiB"));
		hk_axis_label(&a, a.nticks - 1, buf, sizeof(buf));
		cr_assert_float_eq(strtod(buf, NULL), top / a.unit, 1e-9 * top / a.unit,
				   "label %s for %g", buf, top);
	}
}

/* Writes p to a file, reads it back with the oracle. */
static json_t *read_back(const struct hk_plot *p)
{
	char path[] = "/tmp/hk-svg-XXXXXX", args[128];
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	json_t *doc;

	cr_assert(f);
	cr_assert_eq(hk_svg_plot(f, p), 0);
	cr_assert_eq(fclose(f), 0);
	snprintf(args, sizeof(args), "oracle_svg.py %s", path);
	doc = oracle(args);
	unlink(path);
	return doc;
}

/* The axis as a line from its ticks: pixel = a + b * value; ticks
 * evenly spaced from 0, pixels strictly monotone (up for y, right for x). */
static void fit(const json_t *ticks, double *a, double *b, bool up, double *top)
{
	size_t n = json_array_size(ticks), i;
	json_t *t;
	double v0, p0, v1, p1;

	cr_assert_geq(n, 2);
	v0 = json_real_value(json_object_get(json_array_get(ticks, 0), "value"));
	p0 = json_real_value(json_object_get(json_array_get(ticks, 0), "px"));
	v1 = json_real_value(json_object_get(json_array_get(ticks, n - 1), "value"));
	p1 = json_real_value(json_object_get(json_array_get(ticks, n - 1), "px"));
	cr_assert_float_eq(v0, 0, 1e-12, "the axis starts at %g", v0);
	*b = (p1 - p0) / (v1 - v0);
	*a = p0;
	*top = v1;
	json_array_foreach(ticks, i, t) {
		double v = json_real_value(json_object_get(t, "value"));
		double p = json_real_value(json_object_get(t, "px"));

		cr_assert_float_eq(v, v1 * (double)i / (double)(n - 1), 1e-9 * v1, "uneven tick %zu", i);
		cr_assert_float_eq(p, *a + *b * v, 0.011, "tick %zu off its line", i);
		if (i)
			cr_assert(up ? *b < 0 : *b > 0, "axis not monotone");
	}
}

Test(svg, every_point_where_its_value_puts_it)
{
	enum { N = 25 };
	double x[N], lin[N], flat[N], gap[N];
	struct hk_plot_line lines[] = {
		{ "leak.py:12", "/srv/app/leak.py:12", lin },
		{ "cache.py:40", NULL, flat },
		{ "PID 7 worker.py:3", NULL, gap },
	};
	struct hk_plot p = { "hawk-bpf: PID 4711", "every 0.5 s", x, N, 13, lines, 3, NULL };
	json_t *doc, *s, *runs;
	double ya, yb, ytop, xa, xb, xtop;
	size_t i, k;

	for (k = 0; k < N; k++) {
		x[k] = 0.5 * (k + 1) + 0.001 * (k % 3);
		lin[k] = 100e3 * (k + 1);
		flat[k] = 1.2 * MiB;
		/* traced from the 5th point, gone after the 12th, back at the 20th */
		gap[k] = (k >= 4 && k < 12) || k >= 19 ? 0.5 * MiB + k : NAN;
	}
	doc = read_back(&p);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "title")), "hawk-bpf: PID 4711");
	cr_assert_str_eq(json_string_value(json_object_get(doc, "subtitle")), "every 0.5 s");
	cr_assert_str_eq(json_string_value(json_object_get(doc, "yunit")), "MiB");
	cr_assert_str_eq(json_string_value(json_object_get(doc, "xunit")), "s");
	cr_assert_str_eq(json_string_value(json_object_get(doc, "xtitle")), "time (s)");
	fit(json_object_get(doc, "yticks"), &ya, &yb, true, &ytop);
	fit(json_object_get(doc, "xticks"), &xa, &xb, false, &xtop);
	cr_assert_geq(ytop, lin[N - 1]);
	cr_assert_geq(xtop, x[N - 1]);
	cr_assert_str_eq(json_string_value(json_object_get(
		json_array_get(json_object_get(doc, "yticks"), 1), "label")), "0.5 MiB");
	/* drawn last first, so that the first is on top */
	s = json_object_get(doc, "series");
	cr_assert_eq(json_array_size(s), 3);
	for (i = 0; i < 3; i++) {
		json_t *e = json_array_get(s, i);
		size_t idx = (size_t)json_integer_value(json_object_get(e, "index"));
		const double *y = lines[idx].y;
		size_t at = 0, r;
		json_t *run;

		cr_assert_eq(idx, 2 - i);
		cr_assert_str_eq(json_string_value(json_object_get(e, "title")),
				 lines[idx].title ? lines[idx].title : lines[idx].label);
		runs = json_object_get(e, "runs");
		cr_assert_eq(json_array_size(runs), idx == 2 ? 2 : 1, "runs of line %zu", idx);
		json_array_foreach(runs, r, run) {
			json_t *pt;

			json_array_foreach(run, k, pt) {
				double pxx = json_real_value(json_array_get(pt, 0));
				double pyy = json_real_value(json_array_get(pt, 1));

				while (!isfinite(y[at]))
					at++;
				cr_assert_float_eq((pxx - xa) / xb, x[at], 0.006 / xb + 1e-9,
						   "x of point %zu of line %zu", at, idx);
				cr_assert_float_eq((pyy - ya) / yb, y[at], 0.006 / -yb,
						   "y of point %zu of line %zu", at, idx);
				at++;
			}
		}
		/* every value, no more */
		size_t want = 0;
		for (k = 0; k < N; k++)
			want += isfinite(y[k]);
		size_t got = 0;
		json_array_foreach(runs, r, run)
			got += json_array_size(run);
		cr_assert_eq(got, want, "line %zu: %zu points, want %zu", idx, got, want);
	}
	/* the legend: in order, each in its line's colour */
	json_t *leg = json_object_get(doc, "legend");
	cr_assert_eq(json_array_size(leg), 3);
	for (i = 0; i < 3; i++) {
		json_t *e = json_array_get(leg, i);

		cr_assert_str_eq(json_string_value(json_object_get(e, "label")), lines[i].label);
		cr_assert_str_eq(json_string_value(json_object_get(e, "stroke")),
				 json_string_value(json_object_get(json_array_get(s, 2 - i), "stroke")));
	}
	cr_assert_str_neq(json_string_value(json_object_get(json_array_get(leg, 0), "stroke")),
			  json_string_value(json_object_get(json_array_get(leg, 1), "stroke")));
	json_decref(doc);
}

Test(svg, text_is_escaped_and_made_xml)
{
	double x[] = { 1, 2 }, y[] = { 10, 20 };
	struct hk_plot_line lines[] = {
		{ "<a> & \"b\" 'c'", NULL, y },
		/* not UTF-8, a lone surrogate (surrogatepass), a control
		 * character, U+FFFF; then real UTF-8 */
		{ "x\xff" "y\xed\xa0\x80" "z\x01" "\xef\xbf\xbf" "\xc3\xa9\xf0\x9f\x98\x80", NULL, y },
		{ "\xc0\xaf" "\xe0\x80", NULL, y },	/* overlong, cut short */
	};
	struct hk_plot p = { "t<&>", NULL, x, 2, 2, lines, 3, NULL };
	json_t *doc = read_back(&p), *leg = json_object_get(doc, "legend");

	cr_assert_str_eq(json_string_value(json_object_get(doc, "title")), "t<&>");
	cr_assert(json_is_null(json_object_get(doc, "subtitle")));
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(leg, 0), "label")),
			 "<a> & \"b\" 'c'");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(leg, 1), "label")),
			 "x\xef\xbf\xbdy\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\xf0\x9f\x98\x80");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(leg, 2), "label")),
			 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(doc);
}

Test(svg, nothing_to_draw)
{
	double x[] = { 1, 2, 3 };
	struct hk_plot p = { "empty", NULL, x, 3, 4, NULL, 0, "nothing held at the last snapshot" };
	json_t *doc = read_back(&p);

	cr_assert_eq(json_array_size(json_object_get(doc, "series")), 0);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "empty")),
			 "nothing held at the last snapshot");
	cr_assert_str_eq(json_string_value(json_object_get(doc, "yunit")), "KiB");
	/* the time axis covers the window, x_end */
	double xa, xb, top;
	fit(json_object_get(doc, "xticks"), &xa, &xb, false, &top);
	cr_assert_geq(top, 4);
	json_decref(doc);
}

Test(svg, past_ten_lines_dashed)
{
	double x[] = { 1, 2 }, y[12][2];
	struct hk_plot_line lines[12];
	char labels[12][16];
	struct hk_plot p = { "many", NULL, x, 2, 2, lines, 12, NULL };

	for (int i = 0; i < 12; i++) {
		y[i][0] = y[i][1] = 100.0 * (i + 1);
		snprintf(labels[i], sizeof(labels[i]), "line %d", i);
		lines[i] = (struct hk_plot_line){ labels[i], NULL, y[i] };
	}
	json_t *doc = read_back(&p), *s = json_object_get(doc, "series"), *e;
	size_t i;

	cr_assert_eq(json_array_size(s), 12);
	json_array_foreach(s, i, e) {
		json_int_t idx = json_integer_value(json_object_get(e, "index"));

		cr_assert_eq(json_is_string(json_object_get(e, "dash")), idx >= 10,
			     "line %d", (int)idx);
	}
	cr_assert_eq(json_array_size(json_object_get(doc, "legend")), 12);
	cr_assert_geq(json_number_value(json_object_get(doc, "height")), 400 + 12 * 18);
	json_decref(doc);
}

/* A line chart of memory over time, as a standalone SVG file (--svg).
 *
 * One polyline per line of the chart (a run of points for each stretch
 * where it has values), axes from 0 with ticks at 1, 2, 2.5 or 5 times a
 * power of ten of a unit chosen for the range (B, KiB, MiB, GiB, TiB up
 * the side; s, min or h along the bottom), light grid lines, a title and
 * a legend of one row per line under the chart.  Every tick carries its
 * value in data-value (bytes, seconds) beside its label, so that scripts
 * can read a chart back.  Text is escaped for XML; bytes that are not
 * UTF-8, and control characters but tab and newline, become U+FFFD. */
#ifndef HAWK_SVG_H
#define HAWK_SVG_H

#include <stddef.h>
#include <stdio.h>

struct hk_plot_line {
	const char *label;	/* the legend's text */
	const char *title;	/* its tooltip (the whole key); NULL: label */
	const double *y;	/* bytes at each point; NaN: no value there */
};

struct hk_plot {
	const char *title;
	const char *subtitle;	/* a second line under it, or NULL */
	const double *x;	/* seconds of each point, ascending */
	size_t npoints;
	double x_end;		/* the time axis goes at least this far */
	const struct hk_plot_line *lines;
	size_t nlines;		/* drawn in order, the first on top */
	const char *empty;	/* said in the chart when there is no line */
};

/* The ticks of an axis from 0 to max (> 0; anything else counts as one
 * unit): 0, step, ..., (nticks - 1) * step, the last at or above max
 * (for time, or less than 0.2 % below it), all in units of unit. */
struct hk_axis {
	double unit;		/* bytes or seconds a unit is */
	const char *unit_name;	/* "B", "KiB", ...; "s", "min", "h" */
	double step;		/* in units */
	unsigned nticks;	/* 2 to 6 */
	int decimals;		/* digits after the point of every label */
};

void hk_axis_bytes(double max, struct hk_axis *a);
void hk_axis_seconds(double max, struct hk_axis *a);

/* "2.5 MiB": tick i of a into buf ("0" for the first). */
void hk_axis_label(const struct hk_axis *a, unsigned i, char *buf, size_t len);

/* The chart to f. 0, or -1 with errno. */
int hk_svg_plot(FILE *f, const struct hk_plot *p);

#endif

/* A line chart of memory over time in SVG (see svg.h). */
#include "svg.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- the page ----------------------------------------------------------- */

/* Pixels: the chart area and what is around it. */
#define WIDTH		960
#define LEFT		84	/* tick labels and the axis title */
#define RIGHT		24
#define TOP		64	/* title and subtitle */
#define PLOT_H		380
#define AXIS_H		52	/* tick labels and the axis title */
#define LEGEND_ROW	18
#define BOTTOM		14
#define PLOT_W		(WIDTH - LEFT - RIGHT)

/* Tableau's 10 colours, which stay apart for most colour vision; past
 * ten, the same again dashed. */
static const char *const colours[] = {
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
	"#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
};
#define NCOLOURS (sizeof(colours) / sizeof(colours[0]))

/* ---- axes --------------------------------------------------------------- */

/* A step near span / 5 that is 1, 2, 2.5 or 5 times a power of ten. */
static double nice_step(double span)
{
	double raw = span / 5, mag = pow(10, floor(log10(raw))), r = raw / mag;

	return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 2.5 ? 2.5 : r <= 5 ? 5 : 10) * mag;
}

/* max in units of unit, with ticks at a nice step up to max or past it;
 * slack: how far past a round top max may go and keep it. */
static void axis(double max, double unit, const char *name, double slack,
		 struct hk_axis *a)
{
	double span = max / unit / (1 + slack), n;

	a->unit = unit;
	a->unit_name = name;
	a->step = nice_step(span);
	/* and a hair's: 10 MiB over a 2 MiB step is 5 steps, not 6 */
	n = ceil(span / a->step - 1e-9);
	a->nticks = (unsigned)(n < 1 ? 1 : n) + 1;
	a->decimals = 0;
	while (a->decimals < 6 &&
	       fabs(a->step * pow(10, a->decimals) - round(a->step * pow(10, a->decimals))) > 1e-6)
		a->decimals++;
}

static double usable(double max, double one)
{
	return isfinite(max) && max > 0 ? max : one;
}

void hk_axis_bytes(double max, struct hk_axis *a)
{
	static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double unit = 1;
	size_t k = 0;

	max = usable(max, 1024);
	while (k + 1 < sizeof(names) / sizeof(names[0]) && max >= unit * 1024) {
		unit *= 1024;
		k++;
	}
	axis(max, unit, names[k], 0, a);
}

void hk_axis_seconds(double max, struct hk_axis *a)
{
	/* a window of 5 s ends a few ms past 5 s: its axis still ends at 5
	 * (the last point is then drawn a fraction of a pixel past it) */
	double slack = 0.002;

	max = usable(max, 1);
	if (max >= 2 * 3600)
		axis(max, 3600, "h", slack, a);
	else if (max >= 20 * 60)
		axis(max, 60, "min", slack, a);
	else
		axis(max, 1, "s", slack, a);
}

void hk_axis_label(const struct hk_axis *a, unsigned i, char *buf, size_t len)
{
	if (i == 0)	/* nothing is nothing in any unit */
		snprintf(buf, len, "0");
	else
		snprintf(buf, len, "%.*f %s", a->decimals, i * a->step, a->unit_name);
}

static double axis_top(const struct hk_axis *a)
{
	return (a->nticks - 1) * a->step * a->unit;
}

/* ---- text --------------------------------------------------------------- */

/* The code point of the UTF-8 sequence at s and its length; 0 if it is
 * not one (truncated, overlong, past U+10FFFF). */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
	static const uint32_t least[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t k = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 :
		   (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	uint32_t c;

	if (k <= 1) {
		*cp = s[0];
		return k;
	}
	c = s[0] & (0x7f >> k);
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < least[k] || c > 0x10ffff)
		return 0;
	*cp = c;
	return k;
}

/* s as XML character data. Only what XML 1.0 allows goes through: a
 * lone surrogate (which a Python str may hold and the symbolizer writes
 * as CPython's surrogatepass does), U+FFFE, U+FFFF, a control character
 * but tab and newline (a tooltip's lines), or a byte that is no UTF-8 is
 * U+FFFD. */
static void put_text(FILE *f, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		uint32_t c = 0;
		size_t k = utf8_next(u, &c);

		if (!k || (c < 0x20 && c != '\t' && c != '\n') ||
		    (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff)
			fputs("\xef\xbf\xbd", f);
		else if (c == '&')
			fputs("&amp;", f);
		else if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else
			fwrite(u, 1, k, f);
		u += k ? k : 1;
	}
}

/* ---- the chart ---------------------------------------------------------- */

struct frame {
	struct hk_axis xa, ya;
	double xmax, ymax;	/* the axes' ends, in seconds and bytes */
};

static double px(const struct frame *fr, double x)
{
	return LEFT + x / fr->xmax * PLOT_W;
}

static double py(const struct frame *fr, double y)
{
	return TOP + PLOT_H - y / fr->ymax * PLOT_H;
}

static void axes(FILE *f, const struct frame *fr)
{
	char label[64];

	fputs("<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n", f);
	for (unsigned i = 1; i < fr->ya.nticks; i++)
		fprintf(f, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>\n", LEFT,
			py(fr, i * fr->ya.step * fr->ya.unit), LEFT + PLOT_W,
			py(fr, i * fr->ya.step * fr->ya.unit));
	for (unsigned i = 1; i < fr->xa.nticks; i++)
		fprintf(f, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>\n",
			px(fr, i * fr->xa.step * fr->xa.unit), TOP,
			px(fr, i * fr->xa.step * fr->xa.unit), TOP + PLOT_H);
	fputs("</g>\n", f);
	fprintf(f, "<g class=\"yaxis\" data-unit=\"%s\">\n", fr->ya.unit_name);
	for (unsigned i = 0; i < fr->ya.nticks; i++) {
		double v = i * fr->ya.step * fr->ya.unit, y = py(fr, v);

		hk_axis_label(&fr->ya, i, label, sizeof(label));
		fprintf(f, "<g class=\"ytick\" data-value=\"%.10g\"><line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#444\"/>"
			"<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\" dominant-baseline=\"middle\">%s</text></g>\n",
			v, LEFT - 5, y, LEFT, y, LEFT - 8, y, label);
	}
	fprintf(f, "<text class=\"axis-title\" transform=\"translate(16 %d) rotate(-90)\" text-anchor=\"middle\">live memory</text>\n",
		TOP + PLOT_H / 2);
	fputs("</g>\n", f);
	fprintf(f, "<g class=\"xaxis\" data-unit=\"%s\">\n", fr->xa.unit_name);
	for (unsigned i = 0; i < fr->xa.nticks; i++) {
		double v = i * fr->xa.step * fr->xa.unit, x = px(fr, v);

		/* the unit is in the axis title: bare numbers here */
		snprintf(label, sizeof(label), "%.*f", fr->xa.decimals, i * fr->xa.step);
		fprintf(f, "<g class=\"xtick\" data-value=\"%.10g\"><line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#444\"/>"
			"<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%s</text></g>\n",
			v, x, TOP + PLOT_H, x, TOP + PLOT_H + 5, x, TOP + PLOT_H + 19, label);
	}
	fprintf(f, "<text class=\"axis-title\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (%s)</text>\n",
		LEFT + PLOT_W / 2, TOP + PLOT_H + 40, fr->xa.unit_name);
	fputs("</g>\n", f);
	fprintf(f, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n",
		LEFT, TOP, PLOT_W, PLOT_H);
}

static void style(FILE *f, size_t i)
{
	fprintf(f, "stroke=\"%s\"%s", colours[i % NCOLOURS],
		i / NCOLOURS % 2 ? " stroke-dasharray=\"7 4\"" : "");
}

static bool has(const struct hk_plot *p, const struct hk_plot_line *l, size_t k)
{
	return k < p->npoints && isfinite(l->y[k]) && isfinite(p->x[k]);
}

/* Line i: a polyline for each run of points with values (a point alone,
 * a dot). */
static void line(FILE *f, const struct hk_plot *p, const struct frame *fr, size_t i)
{
	const struct hk_plot_line *l = &p->lines[i];

	fprintf(f, "<g class=\"series\" data-index=\"%zu\" fill=\"none\" stroke-width=\"1.8\" stroke-linejoin=\"round\" ", i);
	style(f, i);
	fputs("><title>", f);
	put_text(f, l->title ? l->title : l->label);
	fputs("</title>\n", f);
	for (size_t k = 0; k < p->npoints;) {
		size_t end = k;

		if (!has(p, l, k)) {
			k++;
			continue;
		}
		while (has(p, l, end))
			end++;
		if (end - k == 1) {
			fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2\" fill=\"%s\"/>\n",
				px(fr, p->x[k]), py(fr, l->y[k]), colours[i % NCOLOURS]);
		} else {
			fputs("<polyline points=\"", f);
			for (size_t j = k; j < end; j++)
				fprintf(f, "%s%.2f,%.2f", j > k ? " " : "", px(fr, p->x[j]),
					py(fr, l->y[j]));
			fputs("\"/>\n", f);
		}
		k = end;
	}
	fputs("</g>\n", f);
}

static void legend(FILE *f, const struct hk_plot *p)
{
	int y0 = TOP + PLOT_H + AXIS_H;

	fputs("<g class=\"legend\">\n", f);
	for (size_t i = 0; i < p->nlines; i++) {
		int y = y0 + (int)i * LEGEND_ROW + LEGEND_ROW / 2;

		fprintf(f, "<g class=\"entry\" data-index=\"%zu\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke-width=\"2.5\" ",
			i, LEFT, y, LEFT + 24, y);
		style(f, i);
		fprintf(f, "/><text x=\"%d\" y=\"%d\" dominant-baseline=\"middle\">", LEFT + 32, y);
		put_text(f, p->lines[i].label);
		fputs("</text></g>\n", f);
	}
	fputs("</g>\n", f);
}

int hk_svg_plot(FILE *f, const struct hk_plot *p)
{
	struct frame fr;
	double xmax = p->x_end, ymax = 0;
	int height = TOP + PLOT_H + AXIS_H + (int)p->nlines * LEGEND_ROW + BOTTOM;

	for (size_t k = 0; k < p->npoints; k++) {
		if (isfinite(p->x[k]) && p->x[k] > xmax)
			xmax = p->x[k];
		for (size_t i = 0; i < p->nlines; i++)
			if (has(p, &p->lines[i], k) && p->lines[i].y[k] > ymax)
				ymax = p->lines[i].y[k];
	}
	hk_axis_seconds(xmax, &fr.xa);
	hk_axis_bytes(ymax, &fr.ya);
	fr.xmax = axis_top(&fr.xa);
	fr.ymax = axis_top(&fr.ya);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
		"<desc>hawk-bpf: live memory over time</desc>\n"
		"<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n",
		WIDTH, height, WIDTH, height, WIDTH, height);
	fprintf(f, "<text class=\"title\" x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">", LEFT);
	put_text(f, p->title ? p->title : "");
	fputs("</text>\n", f);
	if (p->subtitle) {
		fprintf(f, "<text class=\"subtitle\" x=\"%d\" y=\"44\" fill=\"#555\">", LEFT);
		put_text(f, p->subtitle);
		fputs("</text>\n", f);
	}
	axes(f, &fr);
	for (size_t i = p->nlines; i-- > 0;)
		line(f, p, &fr, i);
	if (!p->nlines && p->empty) {
		fprintf(f, "<text class=\"empty\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">",
			LEFT + PLOT_W / 2, TOP + PLOT_H / 2);
		put_text(f, p->empty);
		fputs("</text>\n", f);
	}
	legend(f, p);
	fputs("</svg>\n", f);
	if (ferror(f)) {
		if (!errno)
			errno = EIO;
		return -1;
	}
	return 0;
}

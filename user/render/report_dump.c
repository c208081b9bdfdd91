/* Hawk's profile JSON as Python's json.dumps(report, indent=2) writes it
 * (see report.h): jansson's output, filtered where the two differ. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* jansson's JSON_ENSURE_ASCII writes "\u00E9" and leaves DEL raw; Python
 * writes "\u00e9" and "\u007f".  Outside strings the text is plain ASCII,
 * so a byte filter that tracks backslash escapes is enough. */
struct pyfilter {
	char *buf;
	size_t n, cap;
	int esc;		/* 0; 1 after '\'; 2..5 in \uXXXX hex digits */
	bool oom;
};

static void emit(struct pyfilter *p, const char *s, size_t n)
{
	if (p->oom)
		return;
	if (p->n + n + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;

		while (p->n + n + 1 > cap)
			cap *= 2;
		char *nb = realloc(p->buf, cap);
		if (!nb) {
			p->oom = true;
			return;
		}
		p->buf = nb;
		p->cap = cap;
	}
	memcpy(p->buf + p->n, s, n);
	p->n += n;
	p->buf[p->n] = 0;
}

static int filter_cb(const char *s, size_t n, void *data)
{
	struct pyfilter *p = data;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (p->esc >= 2) {
			if (c >= 'A' && c <= 'F')
				c += 'a' - 'A';
			p->esc = p->esc == 5 ? 0 : p->esc + 1;
		} else if (p->esc == 1) {
			p->esc = c == 'u' ? 2 : 0;
		} else if (c == '\\') {
			p->esc = 1;
		} else if (c == 0x7f) {
			emit(p, "\\u007f", 6);
			continue;
		}
		emit(p, &c, 1);
	}
	return p->oom ? -1 : 0;
}

char *hk_report_dumps(const json_t *report)
{
	struct pyfilter p = { 0 };

	if (json_dump_callback(report, filter_cb, &p,
			       JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) ||
	    p.oom) {
		free(p.buf);
		errno = ENOMEM;
		return NULL;
	}
	if (!p.buf)
		p.buf = strdup("");
	return p.buf;
}

int hk_report_write(FILE *f, const json_t *report)
{
	char *s = hk_report_dumps(report);

	if (!s)
		return -1;
	int r = fputs(s, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
	free(s);
	return r;
}

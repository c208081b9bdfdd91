/* Hawk's profile JSON as Python's json.dumps(report, indent=2) writes it
 * (see report.h): jansson's output, filtered where the two differ. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* jansson's JSON_ENSURE_ASCII writes "\u00E9" and leaves DEL raw; Python
 * writes "\u00e9" and "\u007f".  And a size past jansson's 64-bit
 * integers comes as a string of its digits (report.c), to be written bare
 * as Python writes any int: a string value of a size key, which holds a
 * string for no other reason.  Outside strings the text is plain ASCII,
 * so a byte filter that tracks strings, escapes and keys is enough. */
struct pyfilter {
	char *buf;
	size_t n, cap;
	int esc;		/* 0; 1 after '\'; 2..5 in \uXXXX hex digits */
	bool oom;
	bool in_str;
	bool bare;		/* this string is a size: no quotes */
	bool ended;		/* a string just ended: a key if ':' follows */
	bool size_next;		/* the key just read names a size */
	char tok[32];		/* the string's first bytes */
	size_t ntok;		/* its length (may exceed tok) */
};

static const char *const size_keys[] = {
	"mem_blocks_size_bytes", "heap_current_bytes", "heap_diff_bytes",
};

static bool is_size_key(const struct pyfilter *p)
{
	if (p->ntok >= sizeof(p->tok))
		return false;
	for (size_t i = 0; i < sizeof(size_keys) / sizeof(size_keys[0]); i++)
		if (strlen(size_keys[i]) == p->ntok &&
		    !memcmp(p->tok, size_keys[i], p->ntok))
			return true;
	return false;
}

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

/* A byte between strings: notes keys that name a size. */
static void outside(struct pyfilter *p, char c)
{
	bool blank = c == ' ' || c == '\n';

	if (c == '"') {
		p->in_str = true;
		p->bare = p->size_next;
		p->ntok = 0;
	} else if (c == ':' && p->ended) {
		p->size_next = is_size_key(p);
	} else if (!blank) {
		p->size_next = false;
	}
	if (!blank)
		p->ended = false;
	if (!(c == '"' && p->bare))
		emit(p, &c, 1);
}

/* A byte of a string, its quotes included. */
static void inside(struct pyfilter *p, char c)
{
	if (p->esc >= 2) {
		if (c >= 'A' && c <= 'F')
			c += 'a' - 'A';
		p->esc = p->esc == 5 ? 0 : p->esc + 1;
	} else if (p->esc == 1) {
		p->esc = c == 'u' ? 2 : 0;
	} else if (c == '\\') {
		p->esc = 1;
	} else if (c == '"') {
		p->in_str = false;
		p->ended = true;
		if (!p->bare)
			emit(p, &c, 1);
		p->bare = false;
		return;
	}
	if (p->ntok < sizeof(p->tok))
		p->tok[p->ntok] = c;
	p->ntok++;
	if (c == 0x7f && !p->esc)
		emit(p, "\\u007f", 6);
	else
		emit(p, &c, 1);
}

static int filter_cb(const char *s, size_t n, void *data)
{
	struct pyfilter *p = data;

	for (size_t i = 0; i < n; i++) {
		if (p->in_str)
			inside(p, s[i]);
		else
			outside(p, s[i]);
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

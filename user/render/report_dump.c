/* Hawk's profile JSON as Python's json.dumps(report, indent=2) writes it
 * (see report.h): jansson's output, filtered where the two differ. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "standin.h"

/* jansson's JSON_ENSURE_ASCII writes "\u00E9" and leaves DEL raw; Python
 * writes "\u00e9" and "\u007f".  And a size past jansson's 64-bit
 * integers comes as a string of its digits (report.c), to be written bare
 * as Python writes any int: a string value of a size key, which holds a
 * string for no other reason.  And the stand-ins of lone surrogates
 * (standin.h), which jansson writes as a pair of escapes, are written as
 * the one "\udcXX" they stand for.  Outside strings the text is plain
 * ASCII, so a byte filter that tracks strings, escapes and keys is
 * enough. */
struct pyfilter {
	char *buf;
	size_t n, cap;
	int esc;		/* 0; 1 after '\'; 2 in \uXXXX's hex digits */
	char hex[4];
	int nhex;
	unsigned hi;		/* a high surrogate escape held for its pair */
	bool literal;		/* the next pair is itself, no stand-in */
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

static void put_u(struct pyfilter *p, unsigned v)
{
	char b[8];

	snprintf(b, sizeof(b), "\\u%04x", v & 0xffff);
	emit(p, b, 6);
}

/* A held high surrogate with no pair after it: as it came. */
static void flush_hi(struct pyfilter *p)
{
	if (p->hi)
		put_u(p, p->hi);
	p->hi = 0;
}

/* The escape \uV of a string: stand-ins' pairs become what they stand
 * for; every escape is written in lower case, as json.dumps writes it. */
static void escape(struct pyfilter *p, unsigned v)
{
	unsigned hi = p->hi;

	p->hi = 0;
	if (hi && v >= 0xdc00 && v <= 0xdfff) {
		unsigned long c = 0x10000 + ((unsigned long)(hi - 0xd800) << 10) + (v - 0xdc00);

		if (p->literal) {
			p->literal = false;
		} else if (c == HK_SI_LITERAL) {
			p->literal = true;
			return;
		} else if (c >= HK_SI_LO && c <= HK_SI_HI) {
			put_u(p, (unsigned)(c - 0x100000));
			return;
		}
		put_u(p, hi);
		put_u(p, v);
		return;
	}
	if (hi)
		put_u(p, hi);
	/* the high halves of the stand-ins' and HK_SI_LITERAL's pairs */
	if (v == 0xdbf6 || v == 0xdbf7 || v == 0xdbff)
		p->hi = v;
	else
		put_u(p, v);
}

/* A byte of a string, its quotes included. */
static void inside(struct pyfilter *p, char c)
{
	bool closing = !p->esc && c == '"';

	if (!closing) {		/* the string's bytes, as jansson wrote them */
		if (p->ntok < sizeof(p->tok))
			p->tok[p->ntok] = c;
		p->ntok++;
	}
	if (p->esc == 2) {
		p->hex[p->nhex++] = c;
		if (p->nhex == 4) {
			p->esc = 0;
			escape(p, (unsigned)strtoul((char[5]){ p->hex[0], p->hex[1], p->hex[2],
							      p->hex[3], 0 }, NULL, 16));
		}
		return;
	}
	if (p->esc == 1) {
		p->esc = 0;
		if (c == 'u') {
			p->esc = 2;
			p->nhex = 0;
			return;
		}
		flush_hi(p);
		emit(p, "\\", 1);
		emit(p, &c, 1);
		return;
	}
	if (c == '\\') {
		p->esc = 1;
		return;
	}
	flush_hi(p);
	if (closing) {
		p->in_str = false;
		p->ended = true;
		if (!p->bare)
			emit(p, &c, 1);
		p->bare = false;
		p->literal = false;
		return;
	}
	if (c == 0x7f)
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

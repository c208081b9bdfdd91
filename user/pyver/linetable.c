/* Mirrors CPython 3.11 Objects/codeobject.c (scan_varint, get_line_delta,
 * advance, _PyCode_CheckLineNumber) with bounds checks added.  Line
 * arithmetic wraps instead of overflowing so garbage input stays defined. */
#include "linetable.h"

enum {
	LOC_ONE_LINE0 = 10,
	LOC_ONE_LINE1 = 11,
	LOC_ONE_LINE2 = 12,
	LOC_NO_COLUMNS = 13,
	LOC_LONG = 14,
	LOC_NONE = 15,
};

/* 6 bits per byte, bit 6 = more; stops at the table's end. */
static uint32_t scan_varint(const uint8_t *p, const uint8_t *limit)
{
	uint32_t val = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (p >= limit)
			break;
		b = *p++;
		if (shift < 32)
			val |= (uint32_t)(b & 63) << shift;
		shift += 6;
	} while (b & 64);
	return val;
}

static int scan_signed_varint(const uint8_t *p, const uint8_t *limit)
{
	uint32_t u = scan_varint(p, limit);

	return (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
}

static int line_delta(const uint8_t *p, const uint8_t *limit)
{
	switch ((*p >> 3) & 15) {
	case LOC_NO_COLUMNS:
	case LOC_LONG:
		return scan_signed_varint(p + 1, limit);
	case LOC_ONE_LINE1:
		return 1;
	case LOC_ONE_LINE2:
		return 2;
	default:	/* LOC_NONE, LOC_ONE_LINE0, short forms */
		return 0;
	}
}

/* CPython's advance(): consume the entry at c->next. */
static void advance(struct hk_lt_cursor *c)
{
	uint8_t first = *c->next;

	c->computed_line = (int)((unsigned)c->computed_line +
				 (unsigned)line_delta(c->next, c->limit));
	c->ar_line = ((first >> 3) == 0x1f) ? -1 : c->computed_line;
	c->ar_start = c->ar_end;
	c->ar_end += ((first & 7) + 1) * 2;
	do
		c->next++;
	while (c->next < c->limit && (*c->next & 128) == 0);
}

void hk_lt_init(struct hk_lt_cursor *c, const uint8_t *linetable, size_t len,
		int firstlineno)
{
	c->table = linetable;
	c->limit = linetable + len;
	c->firstlineno = firstlineno;
	c->next = c->table;
	c->computed_line = firstlineno;
	c->ar_start = -1;
	c->ar_end = 0;
	c->ar_line = -1;
}

int hk_lt_addr2line(struct hk_lt_cursor *c, int addrq)
{
	if (addrq < 0)
		return c->firstlineno;
	/* PyCode_Addr2Line always starts from a fresh range and only moves
	 * forward; CPython's retreat() is not its exact inverse, so restart
	 * rather than walk back. */
	if (addrq < c->ar_start)
		hk_lt_init(c, c->table, (size_t)(c->limit - c->table),
			   c->firstlineno);
	while (c->ar_end <= addrq) {
		if (c->next >= c->limit)
			return -1;
		advance(c);
	}
	return c->ar_line;
}

int hk_addr2line_311(const uint8_t *linetable, size_t len, int firstlineno,
		     int addrq)
{
	struct hk_lt_cursor c;

	hk_lt_init(&c, linetable, len, firstlineno);
	return hk_lt_addr2line(&c, addrq);
}

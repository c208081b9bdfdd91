/* CPython 3.11 location tables (co_linetable, PEP 626/657): byte offset ->
 * line number, exactly as PyCode_Addr2Line() computes it.
 *
 * Each entry starts with a byte with bit 7 set: bits 3-6 are a code, bits
 * 0-2 the number of code units covered minus one.  Code 15: no location;
 * 14: long form (signed varint line delta, then end line, column, end column
 * varints); 13: no columns (signed varint line delta); 10-12: one line, line
 * delta code-10 plus two column bytes; 0-9: short form, same line.
 *
 * Malformed tables (e.g. garbage read from another process) never make these
 * functions read outside [linetable, linetable + len); they then return
 * whatever line the bytes decode to, or -1.
 */
#ifndef HAWK_LINETABLE_H
#define HAWK_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

/* What PyCode_Addr2Line(code, addrq) returns for a 3.11 code object with
 * this co_linetable and co_firstlineno: addrq is a byte offset into co_code
 * (2 bytes per code unit); negative -> firstlineno; -1 for offsets the table
 * marks as having no line or does not cover. */
int hk_addr2line_311(const uint8_t *linetable, size_t len, int firstlineno,
		     int addrq);

/* The same for a 3.10 code object (its co_linetable format: PEP 626
 * (start delta, line delta) byte pairs; addrq a byte offset into co_code). */
int hk_addr2line_310(const uint8_t *linetable, size_t len, int firstlineno,
		     int addrq);

/* A decoder positioned on one address range of one table, so resolving many
 * offsets of the same code object costs one pass when they come in
 * ascending order (a lower offset restarts from the table's start).
 * The table must outlive the cursor. */
struct hk_lt_cursor {
	const uint8_t *table, *next, *limit;
	int firstlineno;
	int computed_line;	/* line of the last entry consumed */
	int64_t ar_start;	/* current range [ar_start, ar_end), bytes */
	int64_t ar_end;
	int ar_line;		/* its line, -1 for none */
};

void hk_lt_init(struct hk_lt_cursor *c, const uint8_t *linetable, size_t len,
		int firstlineno);

/* Same result as hk_addr2line_311() on the cursor's table. */
int hk_lt_addr2line(struct hk_lt_cursor *c, int addrq);

#endif

/* CPython 3.10 line tables (co_linetable, PEP 626): pairs of an unsigned
 * byte-offset delta and a signed line delta, -128 meaning "no line". Mirrors
 * 3.10's Objects/codeobject.c (advance, _PyCode_CheckLineNumber) for a
 * fresh range moved forward only, with bounds checks added: garbage read
 * from another process never reads outside the table. */
#include "linetable.h"

int hk_addr2line_310(const uint8_t *linetable, size_t len, int firstlineno,
		     int addrq)
{
	const uint8_t *p = linetable, *limit = linetable + len;
	int64_t start = -1, end = 0;
	int line = -1;
	uint32_t computed = (uint32_t)firstlineno;	/* wraps, never UB */

	if (addrq < 0)
		return firstlineno;
	/* NextAddressRange until the range ends past addrq; ranges of no
	 * bytes are skipped as CPython's loop skips them */
	while (end <= addrq) {
		do {
			int8_t ldelta;

			if (p + 2 > limit)
				return -1;
			start = end;
			end += p[0];
			ldelta = (int8_t)p[1];
			p += 2;
			if (ldelta == -128) {
				line = -1;
			} else {
				computed += (uint32_t)(int32_t)ldelta;
				line = (int)computed;
			}
		} while (start == end);
	}
	return start <= addrq ? line : -1;
}

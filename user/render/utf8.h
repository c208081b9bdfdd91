/* One code point as UTF-8, surrogates included (their 3-byte form, as
 * CPython's "surrogatepass" writes them): shared by the symbolizer, which
 * turns str objects into bytes, and the report, which writes stand-ins. */
#ifndef HAWK_UTF8_H
#define HAWK_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Writes c (up to U+10FFFF) at o: how many bytes, 1 to 4. */
static inline size_t hk_put_utf8(char *o, uint32_t c)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | c >> 12);
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | c >> 18);
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

#endif

/* Human-readable sizes, exactly as CPython and Hawk print them. */
#ifndef HAWK_FORMAT_H
#define HAWK_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Longest output of either function, NUL included ("-8.0 EB" or a
 * 297-digit "%.0f TiB" of DBL_MAX fit easily). */
#define HK_SIZE_BUFLEN 400

/* CPython 3.11 tracemalloc._format_size(size, sign): "123 B", "10.0 KiB",
 * "+4 MiB"...  Callers pass Python ints converted to double (rounded to
 * nearest): the result is the same, as int / 1024 in Python rounds like
 * double / 1024 in C. */
void hk_format_size(char *buf, size_t len, double size, bool sign);

/* Hawk's format_bytes(value): "0.0 B", "1.5 KB", "-3.0 MB"...; value is
 * the int converted to double, as its float(value) does. */
void hk_format_bytes(char *buf, size_t len, double value);

/* size / count as Python's int / int computes it (Statistic's average):
 * the exact quotient rounded once to the nearest double, ties to even.
 * count > 0. */
double hk_size_ratio(hk_u128 size, uint64_t count);

#endif

/* The Python oracles (tests/unit/oracle_*.py) the unit tests compare with,
 * run under $HAWK_PYTHON (default /usr/bin/python3.11). */
#ifndef HAWK_TEST_ORACLE_H
#define HAWK_TEST_ORACLE_H

#include <jansson.h>

/* A time bound of s seconds, 5 times looser in the ASan+UBSan build
 * (make unit's second run), which is that much slower. */
#ifdef HK_SANITIZED
#define HK_TIME_BOUND(s) (5 * (s))
#else
#define HK_TIME_BOUND(s) (s)
#endif

/* $HAWK_PYTHON, or /usr/bin/python3.11 when that is unset or empty. */
const char *oracle_python(void);

/* Runs tests/unit/SCRIPT ARGS with oracle_python(); its stdout is JSON.
 * Fails the current test unless the script exits 0 with a JSON document. */
json_t *oracle(const char *script_args);

#endif

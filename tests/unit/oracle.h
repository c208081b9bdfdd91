/* The Python oracles (tests/unit/oracle_*.py) the unit tests compare with,
 * run under $HAWK_PYTHON (default /usr/bin/python3.11). */
#ifndef HAWK_TEST_ORACLE_H
#define HAWK_TEST_ORACLE_H

#include <jansson.h>

/* $HAWK_PYTHON, or /usr/bin/python3.11 when that is unset or empty. */
const char *oracle_python(void);

/* Runs tests/unit/SCRIPT ARGS with oracle_python(); its stdout is JSON.
 * Fails the current test unless the script exits 0 with a JSON document. */
json_t *oracle(const char *script_args);

#endif

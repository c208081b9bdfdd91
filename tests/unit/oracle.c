/* Running the Python oracles (see oracle.h). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"

const char *oracle_python(void)
{
	const char *py = getenv("HAWK_PYTHON");

	return py && *py ? py : "/usr/bin/python3.11";
}

/* The scripts sit next to this file: __FILE__ is tests/unit/oracle.c. */
json_t *oracle(const char *script_args)
{
	const char *slash = strrchr(__FILE__, '/');
	char cmd[4096];
	json_error_t e = { 0 };

	snprintf(cmd, sizeof(cmd), "%s %.*s%s", oracle_python(),
		 slash ? (int)(slash - __FILE__ + 1) : 0, __FILE__, script_args);
	FILE *p = popen(cmd, "r");
	cr_assert(p, "popen %s", cmd);
	json_t *j = json_loadf(p, JSON_ALLOW_NUL, &e);
	int status = pclose(p);
	cr_assert(j && status == 0, "oracle failed (status %d): %s: %s", status, cmd, e.text);
	return j;
}

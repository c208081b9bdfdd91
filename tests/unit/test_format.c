/* hk_format_size / hk_format_bytes against the real tracemalloc._format_size
 * and Hawk's format_bytes (tests/unit/oracle_format.py). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "oracle.h"

/* Tampering tests expect mismatches: keep their logs quiet. */
static bool quiet;
#define LOG_ERROR(...) do { if (!quiet) cr_log_error(__VA_ARGS__); } while (0)

static double num(const json_t *v)
{
	return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/* Mismatches of hk_format_size over [[value, sign, expected]...]. */
static size_t check_size(const json_t *cases)
{
	size_t i, bad = 0;
	json_t *c;

	json_array_foreach(cases, i, c) {
		char buf[HK_SIZE_BUFLEN];
		const char *want = json_string_value(json_array_get(c, 2));

		hk_format_size(buf, sizeof(buf), num(json_array_get(c, 0)),
			       json_is_true(json_array_get(c, 1)));
		if (strcmp(buf, want) && bad++ < 10)
			LOG_ERROR("_format_size(%.17g, %d): got '%s', want '%s'",
				     num(json_array_get(c, 0)), json_is_true(json_array_get(c, 1)),
				     buf, want);
	}
	return bad;
}

static size_t check_bytes(const json_t *cases)
{
	size_t i, bad = 0;
	json_t *c;

	json_array_foreach(cases, i, c) {
		char buf[HK_SIZE_BUFLEN];
		json_int_t v = json_integer_value(json_array_get(c, 0));
		const char *want = json_string_value(json_array_get(c, 1));

		hk_format_bytes(buf, sizeof(buf), v);
		if (strcmp(buf, want) && bad++ < 10)
			LOG_ERROR("format_bytes(%lld): got '%s', want '%s'", (long long)v, buf, want);
	}
	return bad;
}

Test(format, format_size_matches_tracemalloc)
{
	for (int seed = 1; seed <= 3; seed++) {
		char args[64];

		snprintf(args, sizeof(args), "oracle_format.py %d", seed);
		json_t *o = oracle(args);
		json_t *cases = json_object_get(o, "format_size");

		cr_assert(json_array_size(cases) > 10000, "oracle gave %zu cases", json_array_size(cases));
		cr_expect_eq(check_size(cases), 0, "seed %d", seed);
		json_decref(o);
	}
}

Test(format, format_bytes_matches_hawk)
{
	json_t *o = oracle("oracle_format.py 4");
	json_t *cases = json_object_get(o, "format_bytes");

	cr_assert(json_array_size(cases) > 5000);
	cr_expect_eq(check_bytes(cases), 0);
	json_decref(o);
}

/* The checks must be able to fail: tamper with expected strings. */
Test(format, checks_catch_wrong_output)
{
	quiet = true;
	json_t *o = oracle("oracle_format.py 5");
	json_t *sz = json_object_get(o, "format_size"), *by = json_object_get(o, "format_bytes");

	json_t *c1 = json_array_get(sz, 7), *c2 = json_array_get(by, 3);
	char buf[256];

	snprintf(buf, sizeof(buf), "%s ", json_string_value(json_array_get(c1, 2)));
	json_array_set_new(c1, 2, json_string(buf));
	snprintf(buf, sizeof(buf), "%s0", json_string_value(json_array_get(c2, 1)));
	json_array_set_new(c2, 1, json_string(buf));
	cr_expect_eq(check_size(sz), 1);
	cr_expect_eq(check_bytes(by), 1);
	json_decref(o);
}

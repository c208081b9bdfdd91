/* hk_addr2line_311 against the real PyCode_Addr2Line, via oracle_linetable.py
 * run under $HAWK_PYTHON (default /usr/bin/python3.11). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"
#include "oracle.h"

/* CPython 3.10, whose own PyCode_Addr2Line judges hk_addr2line_310. */
#define PYTHON_310 "/root/.pyenv/versions/3.10.13/bin/python3.10"

static FILE *lt_run_oracle_with(const char *py)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "'%s' tests/unit/oracle_linetable.py", py);
	return popen(cmd, "r");
}

static FILE *lt_run_oracle(void)
{
	const char *py = oracle_python();
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "'%s' tests/unit/oracle_linetable.py", py);
	return popen(cmd, "r");
}

static int lt_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes "<hex>" into tab; returns its length or -1. */
static long lt_unhex(const char *hex, size_t n, uint8_t *tab)
{
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = lt_hexval(hex[i]), lo = lt_hexval(hex[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		tab[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

struct lt_code {
	uint8_t *tab;
	long len;
	int firstlineno;
	int *want;	/* want[i] is the line for byte offset 2*i - 2 */
	size_t nwant;
};

/* Parses one oracle line (modifies it). */
static bool lt_parse(char *line, struct lt_code *c)
{
	char *save = NULL, *tok = strtok_r(line, " \n", &save);

	if (!tok)
		return false;
	c->tab = malloc(strlen(tok) / 2 + 1);
	c->len = lt_unhex(tok, strlen(tok), c->tab);
	tok = strtok_r(NULL, " \n", &save);
	if (c->len < 0 || !tok)
		return false;
	c->firstlineno = atoi(tok);
	c->nwant = 0;
	c->want = malloc(sizeof(int) * (strlen(save ? save : "") / 2 + 2));
	while ((tok = strtok_r(NULL, " \n", &save)))
		c->want[c->nwant++] = atoi(tok);
	return c->nwant >= 2;
}

Test(linetable, matches_cpython_311, .timeout = 120)
{
	FILE *f = lt_run_oracle();
	char *line = NULL;
	size_t cap = 0, ncodes = 0, ncmp = 0, nbad = 0;
	size_t kinds[16] = { 0 };

	cr_assert_not_null(f, "cannot run the oracle");
	while (getline(&line, &cap, f) > 0) {
		struct lt_code c;
		struct hk_lt_cursor cur;

		cr_assert(lt_parse(line, &c), "bad oracle line %zu", ncodes);
		ncodes++;
		for (long i = 0; i < c.len; i++)
			if (c.tab[i] & 128)
				kinds[(c.tab[i] >> 3) & 15]++;
		/* One-shot, then the cursor ascending, descending, strided. */
		hk_lt_init(&cur, c.tab, (size_t)c.len, c.firstlineno);
		for (size_t i = 0; i < c.nwant; i++) {
			int addr = (int)(2 * i) - 2;
			int one = hk_addr2line_311(c.tab, (size_t)c.len,
						   c.firstlineno, addr);
			int asc = hk_lt_addr2line(&cur, addr);

			ncmp += 2;
			if (one != c.want[i] || asc != c.want[i]) {
				if (nbad++ < 10)
					fprintf(stderr, "code %zu (%s firstlineno %d) "
						"addr %d: want %d got %d/%d\n",
						ncodes, line, c.firstlineno,
						addr, c.want[i], one, asc);
			}
		}
		/* Backwards moves restart the cursor (quadratic), so only
		 * the last 256 offsets descending, then 256 strided ones. */
		size_t ndesc = c.nwant < 256 ? c.nwant : 256;
		for (size_t k = 0; k < ndesc + 256; k++) {
			size_t i = k < ndesc ? c.nwant - 1 - k
					     : (k * 7919) % c.nwant;
			int got = hk_lt_addr2line(&cur, (int)(2 * i) - 2);

			ncmp++;
			if (got != c.want[i] && nbad++ < 10)
				fprintf(stderr, "code %zu cursor addr %d: want %d got %d\n",
					ncodes, (int)(2 * i) - 2, c.want[i], got);
		}
		free(c.tab);
		free(c.want);
	}
	free(line);
	cr_assert_eq(pclose(f), 0, "oracle failed");
	fprintf(stderr, "linetable: %zu code objects, %zu comparisons, %zu mismatches\n",
		ncodes, ncmp, nbad);
	cr_assert_eq(nbad, 0, "%zu mismatches with PyCode_Addr2Line", nbad);
	cr_assert_gt(ncodes, 1000);
	cr_assert_gt(ncmp, 100000);
	for (int k = 0; k < 16; k++)
		cr_assert_gt(kinds[k], 0, "oracle never produced entry kind %d", k);
}

Test(linetable, matches_cpython_310, .timeout = 120)
{
	FILE *f = lt_run_oracle_with(PYTHON_310);
	char *line = NULL;
	size_t cap = 0, ncodes = 0, ncmp = 0, nbad = 0, nolines = 0;

	cr_assert_not_null(f, "cannot run the oracle");
	while (getline(&line, &cap, f) > 0) {
		struct lt_code c;

		cr_assert(lt_parse(line, &c), "bad oracle line %zu", ncodes);
		ncodes++;
		for (size_t i = 0; i < c.nwant; i++) {
			int addr = (int)(2 * i) - 2;
			int got = hk_addr2line_310(c.tab, (size_t)c.len,
						   c.firstlineno, addr);

			ncmp++;
			nolines += c.want[i] == -1;
			if (got != c.want[i] && nbad++ < 10)
				fprintf(stderr, "3.10 code %zu addr %d: want %d got %d\n",
					ncodes, addr, c.want[i], got);
		}
		free(c.tab);
		free(c.want);
	}
	free(line);
	cr_assert_eq(pclose(f), 0, "oracle failed (is %s there?)", PYTHON_310);
	fprintf(stderr, "linetable 3.10: %zu code objects, %zu comparisons, %zu mismatches\n",
		ncodes, ncmp, nbad);
	cr_assert_eq(nbad, 0, "%zu mismatches with 3.10's PyCode_Addr2Line", nbad);
	cr_assert_gt(ncodes, 1000);
	cr_assert_gt(nolines, 0, "the oracle never produced a line-less offset");
}

/* Garbage never reads outside the table: odd lengths, huge deltas. */
Test(linetable, garbage_310)
{
	static const uint8_t t[] = { 0, 5, 0, 0, 255, 127, 3 };

	cr_assert_eq(hk_addr2line_310(t, 0, 7, 0), -1);
	cr_assert_eq(hk_addr2line_310(t, 1, 7, 0), -1);
	cr_assert_eq(hk_addr2line_310(t, sizeof(t), 7, -2), 7);
	cr_assert_eq(hk_addr2line_310(t, sizeof(t), 7, 4), 7 + 5 + 127);
	cr_assert_eq(hk_addr2line_310(t, sizeof(t), 7, 300), -1);
}

/* Hand-built tables with known answers (the oracle only sees valid ones). */
Test(linetable, handmade)
{
	/* firstlineno 10: [0,4) short form same line (10); [4,6) no-columns
	 * +70 (80); [6,8) no location; [8,12) long form -5 (75). */
	static const uint8_t t[] = {
		0x80 | 1,			/* short form 0, 2 units */
		0x80 | 13 << 3 | 0, 0x40 | (140 & 63), 140 >> 6, /* +70 */
		0x80 | 15 << 3 | 0,		/* none */
		0x80 | 14 << 3 | 1, 11, 0, 1, 2, /* long form -5 */
	};

	cr_assert_eq(hk_addr2line_311(t, sizeof(t), 10, -2), 10);
	cr_assert_eq(hk_addr2line_311(t, sizeof(t), 10, 0), 10);
	cr_assert_eq(hk_addr2line_311(t, sizeof(t), 10, 2), 10);
	cr_assert_eq(hk_addr2line_311(t, sizeof(t), 10, 4), 80);
	cr_assert_eq(hk_addr2line_311(t, sizeof(t), 10, 6), -1);
	cr_assert_eq(hk_addr2line_311(t, sizeof(t), 10, 8), 75);
	cr_assert_eq(hk_addr2line_311(t, sizeof(t), 10, 10), 75);
	cr_assert_eq(hk_addr2line_311(t, sizeof(t), 10, 12), -1);
	cr_assert_eq(hk_addr2line_311(t, 0, 10, 0), -1);
	cr_assert_eq(hk_addr2line_311(NULL, 0, 10, -1), 10);
}

/* Garbage must not read out of bounds (run under ASan/valgrind to see). */
Test(linetable, malformed_stays_in_bounds)
{
	uint8_t *t = malloc(64);
	unsigned seed = 1;

	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(rand_r(&seed) % 64);

		for (size_t i = 0; i < len; i++)
			t[i] = (uint8_t)rand_r(&seed);
		/* a varint running off the end */
		if (len)
			t[len - 1] |= 0x40;
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, t, len);
		for (int a = -2; a < 300; a += 2)
			hk_addr2line_311(copy, len, 1, a);
		free(copy);
	}
	free(t);
}

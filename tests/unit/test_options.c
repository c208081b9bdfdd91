/* Unit tests of the command-line parser and help text (user/cli/options.c,
 * user/cli/usage.c). */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

static char err[256];

static int parse_argv(struct hk_options *o, char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	memset(err, 'X', sizeof err);	/* catch a missing terminator */
	return hk_options_parse(o, argc, argv, err, sizeof err);
}

/* PARSE(&o, "-p", "1", NULL): arguments after the program name. */
#define PARSE(o, ...) parse_argv((o), (char *[]){ "hawk-bpf", __VA_ARGS__ })

/* The parse fails with one line, without program name, naming needle. */
#define EXPECT_ERR(needle, ...) do {					\
	struct hk_options o_;						\
	cr_assert_eq(PARSE(&o_, __VA_ARGS__), -1, "expected an error");	\
	cr_assert(strstr(err, (needle)), "'%s' lacks '%s'", err, (needle)); \
	cr_assert(!strchr(err, '\n'), "newline in '%s'", err);		\
	cr_assert(strncmp(err, "hawk-bpf", 8) != 0, "prefix in '%s'", err); \
} while (0)

#define EXPECT_OK(o, ...)						\
	cr_assert_eq(PARSE((o), __VA_ARGS__), 0, "unexpected error: %s", err)

Test(options, defaults)
{
	struct hk_options o;

	EXPECT_OK(&o, "-p", "42", NULL);
	cr_assert_eq(o.command, HK_CMD_PROFILE);
	cr_assert_eq(o.pid, 42);
	cr_assert_eq(o.duration_ms, 5000);
	cr_assert_eq(o.count, 10);
	cr_assert_eq(o.format, HK_FMT_LINENO);
	cr_assert_eq(o.frames, 30);
	cr_assert(!o.cumulative);
	cr_assert_null(o.output);
	cr_assert(!o.help);
	cr_assert(!o.version);
	cr_assert_str_empty(err);
}

Test(options, every_option_separate_values)
{
	struct hk_options o;

	EXPECT_OK(&o, "-p", "7", "--duration", "0.5", "--count", "3",
		  "--format", "pickle", "--frames", "100", "--cumulative",
		  "-o", "out.txt", NULL);
	cr_assert_eq(o.pid, 7);
	cr_assert_eq(o.duration_ms, 500);
	cr_assert_eq(o.count, 3);
	cr_assert_eq(o.format, HK_FMT_PICKLE);
	cr_assert_eq(o.frames, 100);
	cr_assert(o.cumulative);
	cr_assert_str_eq(o.output, "out.txt");
}

Test(options, every_option_equals_form)
{
	struct hk_options o;

	EXPECT_OK(&o, "--pid=9", "--duration=30", "--count=1",
		  "--format=traceback", "--frames=1", "--output=r.txt", NULL);
	cr_assert_eq(o.pid, 9);
	cr_assert_eq(o.duration_ms, 30000);
	cr_assert_eq(o.count, 1);
	cr_assert_eq(o.format, HK_FMT_TRACEBACK);
	cr_assert_eq(o.frames, 1);
	cr_assert_str_eq(o.output, "r.txt");
}

Test(options, short_options_attached_and_long_pid)
{
	struct hk_options o;

	EXPECT_OK(&o, "-p42", "-oFILE", NULL);
	cr_assert_eq(o.pid, 42);
	cr_assert_str_eq(o.output, "FILE");
	EXPECT_OK(&o, "--pid", "5", "--output", "x", NULL);
	cr_assert_eq(o.pid, 5);
	cr_assert_str_eq(o.output, "x");
	/* A value may look like an option. */
	EXPECT_OK(&o, "-p", "1", "-o", "-h", NULL);
	cr_assert_str_eq(o.output, "-h");
	cr_assert(!o.help);
}

Test(options, formats)
{
	static const struct { const char *word; enum hk_format f; } t[] = {
		{ "lineno", HK_FMT_LINENO },
		{ "traceback", HK_FMT_TRACEBACK },
		{ "pickle", HK_FMT_PICKLE },
	};
	struct hk_options o;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		EXPECT_OK(&o, "-p", "1", "--format", (char *)t[i].word, NULL);
		cr_assert_eq(o.format, t[i].f);
		cr_assert_str_eq(hk_format_name(t[i].f), t[i].word);
	}
	cr_assert_str_eq(hk_format_name((enum hk_format)99), "?");
	EXPECT_ERR("--format", "-p", "1", "--format", "LINENO", NULL);
	EXPECT_ERR("--format json needs --stats", "-p", "1", "--format=json",
		   NULL);
	EXPECT_ERR("lineno, traceback, pickle, pprof or folded", "-p", "1", "--format", "",
		   NULL);
}

Test(options, last_wins)
{
	struct hk_options o;

	EXPECT_OK(&o, "-p", "2", "--count", "5", "--count=7",
		  "--format", "pickle", "--format", "lineno", "-o", "a",
		  "-o", "b", NULL);
	cr_assert_eq(o.pid, 2);
	cr_assert_eq(o.count, 7);
	cr_assert_eq(o.format, HK_FMT_LINENO);
	cr_assert_str_eq(o.output, "b");
	/* The conflict is judged on the final format, in either order. */
	EXPECT_OK(&o, "-p", "1", "--format", "traceback", "--cumulative",
		  "--format", "lineno", NULL);
	cr_assert(o.cumulative);
}

Test(options, cumulative_refused_with_traceback)
{
	struct hk_options o;

	EXPECT_ERR("--cumulative", "-p", "1", "--cumulative", "--format",
		   "traceback", NULL);
	EXPECT_ERR("traceback", "-p", "1", "--format=traceback",
		   "--cumulative", NULL);
	EXPECT_OK(&o, "-p", "1", "--cumulative", "--format", "pickle", NULL);
	EXPECT_OK(&o, "-p", "1", "--cumulative", NULL);
	cr_assert(o.cumulative);
}

/* One value for an option: accepted (with the stored value) or not. */
struct bound {
	const char *arg;
	bool ok;
	unsigned long want;
};

static void check_bounds(const char *opt, const struct bound *t, size_t n)
{
	struct hk_options o;

	for (size_t i = 0; i < n; i++) {
		char *val = (char *)t[i].arg;
		/* -p goes last so that a bad --pid is the only error. */
		int rc = strcmp(opt, "--pid") == 0
			? PARSE(&o, (char *)opt, val, NULL)
			: PARSE(&o, (char *)opt, val, "-p", "1", NULL);

		if (!t[i].ok) {
			cr_assert_eq(rc, -1, "%s '%s' accepted", opt, val);
			cr_assert(strstr(err, opt), "'%s' lacks %s", err, opt);
			cr_assert(strstr(err, "from 1") ||
				  strstr(err, "from 0.001"),
				  "'%s' gives no range", err);
			continue;
		}
		cr_assert_eq(rc, 0, "%s '%s': %s", opt, val, err);
		unsigned long got = strcmp(opt, "--pid") == 0 ? (unsigned long)o.pid
			: strcmp(opt, "--count") == 0 ? o.count
			: strcmp(opt, "--frames") == 0 ? o.frames
			: strcmp(opt, "--max-blocks") == 0 ? o.max_blocks
			: o.duration_ms;
		cr_assert_eq(got, t[i].want, "%s '%s' gave %lu", opt, val, got);
	}
}

/* Bad in every integer option: signs, spaces, garbage, overflow. */
#define BAD_INTEGERS							\
	{ "", false, 0 }, { "-1", false, 0 }, { "+5", false, 0 },	\
	{ " 5", false, 0 }, { "5 ", false, 0 }, { "12x", false, 0 },	\
	{ "0x10", false, 0 }, { "1.0", false, 0 }, { "1e3", false, 0 },	\
	{ "18446744073709551616", false, 0 },				\
	{ "99999999999999999999999999", false, 0 }

Test(options, count_bounds)
{
	static const struct bound t[] = {
		{ "0", false, 0 }, { "1", true, 1 }, { "10", true, 10 },
		{ "1000000", true, 1000000 }, { "1000001", false, 0 },
		{ "007", true, 7 }, BAD_INTEGERS,
	};

	check_bounds("--count", t, sizeof t / sizeof t[0]);
	EXPECT_ERR("--count: expected an integer from 1 to 1000000, got '12x'",
		   "-p", "1", "--count", "12x", NULL);
}

Test(options, max_blocks_bounds)
{
	static const struct bound t[] = {
		{ "1023", false, 0 }, { "1024", true, 1024 },
		{ "67108864", true, 67108864 }, { "67108865", false, 0 },
		BAD_INTEGERS,
	};
	struct hk_options o;

	EXPECT_OK(&o, "-p", "1", NULL);
	cr_assert_eq(o.max_blocks, 1048576);
	check_bounds("--max-blocks", t, sizeof t / sizeof t[0]);
	EXPECT_ERR("--max-blocks: expected an integer from 1024 to 67108864, got '0'",
		   "-p", "1", "--max-blocks", "0", NULL);
}

Test(options, frames_bounds)
{
	static const struct bound t[] = {
		{ "0", false, 0 }, { "1", true, 1 }, { "65535", true, 65535 },
		{ "65536", false, 0 }, BAD_INTEGERS,
	};

	check_bounds("--frames", t, sizeof t / sizeof t[0]);
	EXPECT_ERR("from 1 to 65535, got '65536'", "-p", "1", "--frames=65536",
		   NULL);
}

Test(options, pid_bounds)
{
	static const struct bound t[] = {
		{ "0", false, 0 }, { "1", true, 1 },
		{ "2147483647", true, INT_MAX }, { "2147483648", false, 0 },
		{ "4294967297", false, 0 }, BAD_INTEGERS,
	};
	struct hk_options o;

	check_bounds("--pid", t, sizeof t / sizeof t[0]);
	EXPECT_ERR("-p", "-p", "0", NULL);
	EXPECT_ERR("got '-1'", "-p", "-1", NULL);
	EXPECT_OK(&o, "-p", "2147483647", NULL);
	cr_assert_eq(o.pid, INT_MAX);
}

Test(options, duration_bounds)
{
	static const struct bound t[] = {
		{ "0", false, 0 }, { "0.0", false, 0 }, { "0.0009", false, 0 },
		{ "0.001", true, 1 }, { "0.0019", true, 1 },
		{ "0.5", true, 500 }, { ".5", true, 500 }, { "5.", true, 5000 },
		{ "30", true, 30000 }, { "1.2345", true, 1234 },
		{ "86400", true, 86400000 }, { "86400.000000", true, 86400000 },
		{ "86400.001", false, 0 }, { "86400.0000001", false, 0 },
		{ "86401", false, 0 }, { "0086400", true, 86400000 },
		{ "99999999999999999999999", false, 0 },
		{ "", false, 0 }, { ".", false, 0 }, { "-1", false, 0 },
		{ "+1", false, 0 }, { " 1", false, 0 }, { "1 ", false, 0 },
		{ "1e3", false, 0 }, { "0x10", false, 0 }, { "inf", false, 0 },
		{ "nan", false, 0 }, { "1.2.3", false, 0 }, { "1,5", false, 0 },
		{ "5s", false, 0 },
	};

	check_bounds("--duration", t, sizeof t / sizeof t[0]);
	EXPECT_ERR("--duration: expected seconds from 0.001 to 86400, got 'x'",
		   "-p", "1", "--duration", "x", NULL);
}

Test(options, output_errors)
{
	EXPECT_ERR("-o", "-p", "1", "-o", "", NULL);
	EXPECT_ERR("--output", "-p", "1", "--output=", NULL);
}

/* Without -p the profile is host-wide: every CPython process. */
Test(options, no_pid_is_hostwide)
{
	struct hk_options o;

	EXPECT_OK(&o, NULL);
	cr_assert(o.hostwide);
	cr_assert_eq(o.npids, 0);
	EXPECT_OK(&o, "--count", "3", NULL);
	cr_assert(o.hostwide);
	cr_assert_eq(o.count, 3);
	EXPECT_OK(&o, "-p", "7", NULL);
	cr_assert(!o.hostwide);
	cr_assert_eq(hk_options_parse(&o, 0, (char *[]){ NULL }, err,
				      sizeof err), -1);
	cr_assert_str_eq(err, "missing -p PID");
}

Test(options, pid_lists)
{
	struct hk_options o;

	EXPECT_OK(&o, "-p", "7,8", "--pid", "9,7", NULL);
	cr_assert(o.hostwide);
	cr_assert_eq(o.npids, 3);
	cr_assert_eq(o.pids[0], 7);
	cr_assert_eq(o.pids[1], 8);
	cr_assert_eq(o.pids[2], 9);
	cr_assert_eq(o.pid, 7);
	/* the same PID twice is one process */
	EXPECT_OK(&o, "-p", "7,7", NULL);
	cr_assert(!o.hostwide);
	cr_assert_eq(o.npids, 1);
	EXPECT_ERR("-p/--pid: expected a process ID from 1 to", "-p", "7,", NULL);
	EXPECT_ERR("got ',7'", "-p", ",7", NULL);
	EXPECT_ERR("got '7,x'", "-p", "7,x", NULL);
	EXPECT_ERR("got '7,0'", "-p", "7,0", NULL);
	EXPECT_OK(&o, "start", "-p", "7,8", NULL);
	cr_assert(o.hostwide);
	EXPECT_ERR("stop takes one -p PID, or none", "stop", "-p", "7,8", NULL);
	EXPECT_ERR("snapshot takes one -p PID, or none", "snapshot", "-p", "7,8", NULL);
}

Test(options, selectors)
{
	struct hk_options o;

	EXPECT_OK(&o, "--match", "gunicorn.*worker", NULL);
	cr_assert(o.hostwide);
	cr_assert_str_eq(o.match, "gunicorn.*worker");
	cr_assert_eq(o.max_blocks, HK_MAX_BLOCKS_HOSTWIDE);
	EXPECT_OK(&o, "--max-blocks", "5000", NULL);
	cr_assert_eq(o.max_blocks, 5000);
	EXPECT_OK(&o, "--container", "3f2a", "--cgroup", "/system.slice", NULL);
	cr_assert_str_eq(o.container, "3f2a");
	cr_assert_str_eq(o.cgroup, "/system.slice");
	/* one PID with a selector: host-wide, narrowed to it */
	EXPECT_OK(&o, "-p", "7", "--merge", NULL);
	cr_assert(o.hostwide);
	cr_assert(o.merge);
	EXPECT_ERR("--cgroup: expected a cgroup path from the root", "--cgroup", "x", NULL);
	EXPECT_ERR("--container: expected a container ID", "--container", "", NULL);
	EXPECT_ERR("--stats takes one -p PID", "--stats", NULL);
	EXPECT_OK(&o, "start", "--match", "x", NULL);
	cr_assert(o.hostwide);
	EXPECT_OK(&o, "snapshot", "--merge", NULL);
	cr_assert(o.merge && !o.pid);
	EXPECT_OK(&o, "stop", NULL);
	cr_assert(!o.pid);
	EXPECT_ERR("--match can only be used with the one-shot profile and start",
		   "snapshot", "--match", "x", NULL);
	EXPECT_ERR("--merge can only be used with the one-shot profile and snapshot",
		   "start", "--merge", NULL);
	EXPECT_ERR("--merge is for the host-wide session", "snapshot", "-p", "1",
		   "--merge", NULL);
}

Test(options, missing_argument)
{
	EXPECT_ERR("-p", "-p", NULL);
	EXPECT_ERR("--pid", "--pid", NULL);
	EXPECT_ERR("--duration", "-p", "1", "--duration", NULL);
	EXPECT_ERR("--count", "-p", "1", "--count", NULL);
	EXPECT_ERR("--format", "-p", "1", "--format", NULL);
	EXPECT_ERR("--frames", "-p", "1", "--frames", NULL);
	EXPECT_ERR("-o", "-p", "1", "-o", NULL);
	EXPECT_ERR("missing argument", "-p", "1", "--output", NULL);
}

Test(options, unknown_and_ambiguous_options)
{
	EXPECT_ERR("unknown option '--bogus'", "-p", "1", "--bogus", NULL);
	EXPECT_ERR("unknown option '--bogus'", "-p", "1", "--bogus=3", NULL);
	EXPECT_ERR("unknown option '-x'", "-p", "1", "-x", NULL);
	EXPECT_ERR("unknown option '-c'", "-c", "-p", "1", NULL);
	EXPECT_ERR("--listen can only be used with serve", "-p", "1",
		   "--listen=x", NULL);
	EXPECT_ERR("ambiguous option '--c'", "-p", "1", "--c", "3", NULL);
	EXPECT_ERR("ambiguous option '--f'", "-p", "1", "--f=3", NULL);
	EXPECT_ERR("unknown option '--=x'", "-p", "1", "--=x", NULL);
}

Test(options, unique_abbreviation_accepted)
{
	struct hk_options o;

	/* getopt_long's usual behaviour; no future option starts so. */
	EXPECT_OK(&o, "-p", "1", "--dur=2", "--cum", NULL);
	cr_assert_eq(o.duration_ms, 2000);
	cr_assert(o.cumulative);
}

Test(options, flags_take_no_argument)
{
	EXPECT_ERR("--cumulative", "-p", "1", "--cumulative=yes", NULL);
	EXPECT_ERR("--help", "--help=1", NULL);
	EXPECT_ERR("--version", "--version=x", NULL);
}

Test(options, extra_positional_arguments)
{
	char *argv[] = { "hawk-bpf", "extra", "-p", "1", NULL };
	struct hk_options o;

	EXPECT_ERR("unexpected argument 'extra'", "-p", "1", "extra", NULL);
	EXPECT_ERR("'2'", "-p", "1", "2", NULL);
	EXPECT_ERR("'x'", "-p", "1", "--", "x", NULL);
	cr_assert_eq(parse_argv(&o, argv), -1);
	cr_assert(strstr(err, "'extra'"), "%s", err);
	/* argv is left in order (no GNU permutation). */
	cr_assert_str_eq(argv[1], "extra");
	cr_assert_str_eq(argv[2], "-p");
	EXPECT_OK(&o, "-p", "1", "--", NULL);
}

Test(options, future_subcommands)
{
	/* Subcommand words count only as the first word; elsewhere it is just an extra argument. */
	EXPECT_ERR("unexpected argument 'start'", "-p", "1", "start", NULL);
	EXPECT_ERR("unexpected argument 'compare'", "-p", "1", "compare",
		   NULL);
	/* ... and in compare, it is a file name. */
	EXPECT_ERR("unexpected argument 'start'", "compare", "a", "b", "start",
		   NULL);
}

/* ---- compare OLD NEW ---------------------------------------------------- */

Test(compare, defaults)
{
	struct hk_options o;

	EXPECT_OK(&o, "compare", "old.pickle", "new.pickle", NULL);
	cr_assert_eq(o.command, HK_CMD_COMPARE);
	cr_assert_str_eq(o.old_file, "old.pickle");
	cr_assert_str_eq(o.new_file, "new.pickle");
	cr_assert_eq(o.format, HK_FMT_LINENO);
	cr_assert_eq(o.count, 10);
	cr_assert(!o.cumulative);
	cr_assert_null(o.output);
	cr_assert_eq(o.pid, 0);
	cr_assert(!o.help && !o.version && !o.stats);
	cr_assert_str_empty(err);
}

Test(compare, profile_has_no_files)
{
	struct hk_options o;

	EXPECT_OK(&o, "-p", "1", NULL);
	cr_assert_eq(o.command, HK_CMD_PROFILE);
	cr_assert_null(o.old_file);
	cr_assert_null(o.new_file);
}

Test(compare, every_option)
{
	struct hk_options o;

	EXPECT_OK(&o, "compare", "a", "b", "--format", "traceback", "--count",
		  "3", "-o", "out.json", NULL);
	cr_assert_eq(o.format, HK_FMT_TRACEBACK);
	cr_assert_eq(o.count, 3);
	cr_assert_str_eq(o.output, "out.json");
	cr_assert(!o.cumulative);
	EXPECT_OK(&o, "compare", "--format=lineno", "--cumulative",
		  "--count=1000000", "--output=r", "a", "b", NULL);
	cr_assert_eq(o.format, HK_FMT_LINENO);
	cr_assert(o.cumulative);
	cr_assert_eq(o.count, 1000000);
	cr_assert_str_eq(o.output, "r");
	cr_assert_str_eq(o.old_file, "a");
	cr_assert_str_eq(o.new_file, "b");
	EXPECT_OK(&o, "compare", "-oX", "a", "b", "--cum", NULL);
	cr_assert_str_eq(o.output, "X");
	cr_assert(o.cumulative);
}

Test(compare, files_among_options)
{
	struct hk_options o;
	char *argv[] = { "hawk-bpf", "compare", "--count", "2", "a", "-o",
			 "r", "b", "--cumulative", NULL };

	/* OLD first, NEW second, wherever they are; argv keeps its order. */
	cr_assert_eq(parse_argv(&o, argv), 0, "%s", err);
	cr_assert_str_eq(o.old_file, "a");
	cr_assert_str_eq(o.new_file, "b");
	cr_assert_eq(o.count, 2);
	cr_assert_str_eq(o.output, "r");
	cr_assert(o.cumulative);
	cr_assert_str_eq(argv[4], "a");
	cr_assert_str_eq(argv[5], "-o");
	cr_assert_str_eq(argv[7], "b");
	EXPECT_OK(&o, "compare", "a", "--count", "4", "b", NULL);
	cr_assert_str_eq(o.old_file, "a");
	cr_assert_str_eq(o.new_file, "b");
	cr_assert_eq(o.count, 4);
	/* An option's value is not a file, even when it looks like one. */
	EXPECT_OK(&o, "compare", "-o", "a", "b", "c", NULL);
	cr_assert_str_eq(o.output, "a");
	cr_assert_str_eq(o.old_file, "b");
	cr_assert_str_eq(o.new_file, "c");
	EXPECT_OK(&o, "compare", "-o", "--", "b", "c", NULL);
	cr_assert_str_eq(o.output, "--");
	cr_assert_str_eq(o.old_file, "b");
	/* "-" is a file name, as for other tools. */
	EXPECT_OK(&o, "compare", "-", "b", NULL);
	cr_assert_str_eq(o.old_file, "-");
}

Test(compare, double_dash)
{
	struct hk_options o;

	EXPECT_OK(&o, "compare", "--", "-a", "--count", NULL);
	cr_assert_str_eq(o.old_file, "-a");
	cr_assert_str_eq(o.new_file, "--count");
	cr_assert_eq(o.count, 10);
	EXPECT_OK(&o, "compare", "--count", "5", "a", "--", "-b", NULL);
	cr_assert_str_eq(o.old_file, "a");
	cr_assert_str_eq(o.new_file, "-b");
	cr_assert_eq(o.count, 5);
	EXPECT_OK(&o, "compare", "a", "b", "--", NULL);
	EXPECT_OK(&o, "compare", "a", "--", "--", NULL);
	cr_assert_str_eq(o.new_file, "--");
	EXPECT_ERR("unexpected argument '-c'", "compare", "--", "a", "b", "-c",
		   NULL);
	EXPECT_ERR("compare: missing NEW", "compare", "a", "--", NULL);
}

Test(compare, file_count)
{
	cr_assert_eq(PARSE(&(struct hk_options){ 0 }, "compare", NULL), -1);
	cr_assert_str_eq(err, "compare: missing OLD and NEW pickle files");
	EXPECT_ERR("compare: missing OLD and NEW", "compare", "--count", "3",
		   NULL);
	EXPECT_ERR("compare: missing NEW pickle file", "compare", "a", NULL);
	EXPECT_ERR("compare: missing NEW", "compare", "--cumulative", "a",
		   NULL);
	EXPECT_ERR("unexpected argument 'c'", "compare", "a", "b", "c", NULL);
	EXPECT_ERR("unexpected argument 'c'", "compare", "a", "b", "c", "d",
		   NULL);
	EXPECT_ERR("compare: expected a file name for OLD, got ''", "compare",
		   "", "b", NULL);
	EXPECT_ERR("compare: expected a file name for NEW, got ''", "compare",
		   "a", "", NULL);
}

Test(compare, tracing_options_refused)
{
	static const char *const opts[][3] = {
		{ "-p", "1", "-p/--pid" },
		{ "--pid", "1", "-p/--pid" },
		{ "--pid=1", NULL, "-p/--pid" },
		{ "-p1", NULL, "-p/--pid" },
		{ "--duration", "5", "--duration" },
		{ "--dur=5", NULL, "--duration" },
		{ "--frames", "3", "--frames" },
		{ "--max-blocks", "2048", "--max-blocks" },
		{ "--stats", NULL, "--stats" },
		/* refused before their value is looked at */
		{ "-p", "0", "-p/--pid" },
		{ "--frames", "x", "--frames" },
		{ "--stats=1", NULL, "--stats" },
	};
	char msg[128];

	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		snprintf(msg, sizeof msg, "%s cannot be used with compare",
			 opts[i][2]);
		EXPECT_ERR(msg, "compare", "a", "b", (char *)opts[i][0],
			   (char *)opts[i][1], NULL);
		EXPECT_ERR(msg, "compare", (char *)opts[i][0],
			   (char *)opts[i][1], "a", "b", NULL);
	}
	/* Also when its value is missing. */
	EXPECT_ERR("-p/--pid cannot be used with compare", "compare", "a",
		   "b", "-p", NULL);
	EXPECT_ERR("--duration cannot be used with compare", "compare", "a",
		   "b", "--duration", NULL);
}

Test(compare, formats)
{
	struct hk_options o;

	EXPECT_OK(&o, "compare", "a", "b", "--format", "traceback", NULL);
	cr_assert_eq(o.format, HK_FMT_TRACEBACK);
	EXPECT_OK(&o, "compare", "a", "b", "--format", "pickle", "--format",
		  "lineno", NULL);
	cr_assert_eq(o.format, HK_FMT_LINENO);
	EXPECT_ERR("--format pickle cannot be used with compare", "compare",
		   "a", "b", "--format", "pickle", NULL);
	EXPECT_ERR("--format json cannot be used with compare", "compare",
		   "a", "b", "--format=json", NULL);
	EXPECT_ERR("--format text cannot be used with compare", "compare",
		   "--format=text", "a", "b", NULL);
	EXPECT_ERR("--format: expected lineno or traceback, got 'LINENO'",
		   "compare", "a", "b", "--format", "LINENO", NULL);
	EXPECT_ERR("got ''", "compare", "a", "b", "--format=", NULL);
	EXPECT_ERR("--format: missing argument", "compare", "a", "b",
		   "--format", NULL);
}

Test(compare, cumulative_refused_with_traceback)
{
	struct hk_options o;

	EXPECT_ERR("--cumulative cannot be used with --format traceback",
		   "compare", "a", "b", "--cumulative", "--format",
		   "traceback", NULL);
	EXPECT_ERR("--cumulative cannot be used with --format traceback",
		   "compare", "--format=traceback", "a", "--cumulative", "b",
		   NULL);
	EXPECT_OK(&o, "compare", "a", "b", "--format=traceback",
		  "--cumulative", "--format=lineno", NULL);
	cr_assert(o.cumulative);
}

Test(compare, count_and_output_values)
{
	EXPECT_ERR("--count: expected an integer from 1 to 1000000, got '0'",
		   "compare", "a", "b", "--count", "0", NULL);
	EXPECT_ERR("got '1000001'", "compare", "a", "b", "--count=1000001",
		   NULL);
	EXPECT_ERR("got '-1'", "compare", "a", "b", "--count", "-1", NULL);
	EXPECT_ERR("got '3x'", "compare", "--count", "3x", "a", "b", NULL);
	EXPECT_ERR("--count: missing argument", "compare", "a", "b",
		   "--count", NULL);
	EXPECT_ERR("-o/--output: expected a file name", "compare", "a", "b",
		   "-o", "", NULL);
	EXPECT_ERR("-o/--output: missing argument", "compare", "a", "b", "-o",
		   NULL);
}

Test(compare, unknown_options)
{
	EXPECT_ERR("unknown option '--bogus'", "compare", "a", "--bogus", "b",
		   NULL);
	EXPECT_ERR("unknown option '-x'", "compare", "a", "b", "-x", NULL);
	EXPECT_ERR("--cumulative: takes no argument", "compare", "a", "b",
		   "--cumulative=1", NULL);
	EXPECT_ERR("ambiguous option '--c'", "compare", "a", "b", "--c", NULL);
}

Test(compare, help_and_version)
{
	struct hk_options o;

	EXPECT_OK(&o, "compare", "--help", NULL);
	cr_assert(o.help);
	EXPECT_OK(&o, "compare", "a", "-h", "-p", "1", NULL);
	cr_assert(o.help);
	EXPECT_OK(&o, "compare", "-V", NULL);
	cr_assert(o.version);
	/* Earlier mistakes are still reported. */
	EXPECT_ERR("-p/--pid", "compare", "-p", "1", "--help", NULL);
}

Test(compare, repeated_calls_reset)
{
	struct hk_options o;

	EXPECT_OK(&o, "compare", "a", "b", "--count", "3", NULL);
	EXPECT_OK(&o, "-p", "2", NULL);
	cr_assert_eq(o.command, HK_CMD_PROFILE);
	cr_assert_null(o.old_file);
	cr_assert_null(o.new_file);
	cr_assert_eq(o.count, 10);
	/* A compare that stopped after OLD leaves nothing for the next. */
	EXPECT_ERR("missing NEW", "compare", "a", NULL);
	EXPECT_OK(&o, "compare", "c", "d", NULL);
	cr_assert_str_eq(o.old_file, "c");
	cr_assert_str_eq(o.new_file, "d");
	/* Stop in the middle of "-hV", then compare. */
	EXPECT_OK(&o, "compare", "-hV", NULL);
	EXPECT_OK(&o, "compare", "e", "f", NULL);
	cr_assert(!o.help && !o.version);
	cr_assert_str_eq(o.old_file, "e");
}

Test(options, help_and_version)
{
	struct hk_options o;

	EXPECT_OK(&o, "-h", NULL);
	cr_assert(o.help);
	cr_assert(!o.version);
	EXPECT_OK(&o, "--help", NULL);
	cr_assert(o.help);
	EXPECT_OK(&o, "-V", NULL);
	cr_assert(o.version);
	cr_assert(!o.help);
	EXPECT_OK(&o, "--version", NULL);
	cr_assert(o.version);
	/* Help stops the parse: later mistakes do not matter... */
	EXPECT_OK(&o, "-p", "1", "--help", "--count", "0", "junk", NULL);
	cr_assert(o.help);
	/* ...but earlier ones are still reported, as GNU tools do. */
	EXPECT_ERR("--count", "--count", "0", "--help", NULL);
}

Test(options, repeated_calls_reset_getopt)
{
	struct hk_options o;

	/* Stop half-way through the cluster "-hV": with optind = 1 glibc
	 * would go on with the stale "V" in the next call. */
	EXPECT_OK(&o, "-hV", NULL);
	cr_assert(o.help && !o.version);
	EXPECT_OK(&o, "-p", "2", NULL);
	cr_assert(!o.version && !o.help && o.pid == 2);
	EXPECT_ERR("--frames", "-p", "1", "--frames", "0", NULL);
	EXPECT_OK(&o, "-p", "3", NULL);
	cr_assert_eq(o.pid, 3);
	cr_assert_eq(o.frames, 30);	/* defaults restored */
	cr_assert(!o.help);
}

Test(options, error_buffer_handling)
{
	struct hk_options o;
	char small[8];

	cr_assert_eq(hk_options_parse(&o, 3, (char *[]){ "hawk-bpf", "--count", "x", NULL },
				      NULL, 0), -1);
	cr_assert_eq(hk_options_parse(&o, 3, (char *[]){ "hawk-bpf", "--count", "x", NULL },
				      small, sizeof small), -1);
	cr_assert_str_eq(small, "--count");
	cr_assert_eq(hk_options_parse(&o, 3,
				      (char *[]){ "hawk-bpf", "-p", "1", NULL },
				      small, sizeof small), 0);
	cr_assert_str_empty(small);
}

Test(usage, mentions_everything)
{
	static const char *const needles[] = {
		"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "OUTPUT",
		"EXIT STATUS", "EXAMPLES",
		"-p, --pid", "--duration", "--count", "--format", "--frames",
		"--cumulative", "--max-blocks", "-o, --output", "-h, --help",
		"-V, --version", "--interval SEC", "--svg FILE", "\"times_s\"",
		"at most 10000 snapshots", "first 20 series",
		"COMMANDS", "compare OLD NEW", "hawk-bpf compare OLD NEW",
		"hawk-bpf start -p PID", "hawk-bpf snapshot -p PID",
		"hawk-bpf stop -p PID", "hawk-bpf status",
		"/run/hawk-bpf/PID.sock",
		"hawk-bpf serve [--listen ADDR:PORT] [--token-file FILE]",
		"serve [--listen ADDR:PORT] [--token-file FILE]",
		"/debug/prof/mem/tracemalloc/", "Authorization: Bearer TOKEN",
		"X-Hawk-Warning", "Default 127.0.0.1:8000.", "then 503",
		"at most 300 s",
		"NEW.compare_to(OLD", "Snapshot.dump()", "heap_diff_bytes",
		"needs no root", "lineno", "traceback", "pickle", "--option=VALUE",
		"root", "CAP_BPF", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE",
		"Ctrl-C", "SIGTERM",
		"hawk-bpf: tracing PID N (CPython X.Y.Z)", "standard error",
		"Default 5.", "Default 10.", "Default 30.",
		"1 to 1000000", "1 to 65535", "0.001 to\n        86400",
	};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	hk_usage(f);
	cr_assert_eq(fclose(f), 0);
	for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
		cr_assert(strstr(text, needles[i]), "help lacks '%s'",
			  needles[i]);
	/* Fits a terminal: no line longer than 79 columns, no tabs. */
	for (char *line = text, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		cr_assert_not_null(nl, "help does not end with a newline");
		cr_assert_leq(nl - line, 79, "long line: %.*s",
			      (int)(nl - line), line);
	}
	cr_assert_null(strchr(text, '\t'));
	free(text);
}

Test(options, sample_rates)
{
	struct hk_options o;

	EXPECT_OK(&o, "-p", "1", NULL);
	cr_assert(!o.sample);
	cr_assert_eq(o.rates.n, 2);	/* heapprof's defaults, ready for --sample */
	EXPECT_OK(&o, "-p", "1", "--sample", NULL);
	cr_assert(o.sample);
	cr_assert_eq(o.rates.bound[0], 128);
	cr_assert_float_eq(o.rates.prob[0], 0.0001, 1e-12);
	cr_assert_eq(o.rates.bound[1], 8192);
	cr_assert_float_eq(o.rates.prob[1], 0.1, 1e-12);
	EXPECT_OK(&o, "-p", "1", "--sample-rates", "64:0.5,512:1,4096:0.25", NULL);
	cr_assert(o.sample);
	cr_assert_eq(o.rates.n, 3);
	cr_assert_eq(o.rates.bound[2], 4096);
	cr_assert_float_eq(hk_sample_prob(&o.rates, 63), 0.5, 1e-12);
	cr_assert_float_eq(hk_sample_prob(&o.rates, 64), 1.0, 1e-12);
	cr_assert_float_eq(hk_sample_prob(&o.rates, 4095), 0.25, 1e-12);
	cr_assert_float_eq(hk_sample_prob(&o.rates, 4096), 1.0, 1e-12);
	EXPECT_OK(&o, "-p", "1", "--sample-rates=1:.5", NULL);
	cr_assert_float_eq(o.rates.prob[0], 0.5, 1e-12);
}

Test(options, sample_rates_refused)
{
	static char *const bad[] = {
		"", "128", "128:", ":0.1", "128:0", "128:1.5", "128:-0.1",
		"128:0.1,", "128:0.1,64:0.2", "128:0.1,128:0.2", "x:0.1",
		"128:0.1x", "128:0.1;256:0.2", "0:0.5", "4294967296:0.5",
		" 128:0.1", "128:nan", "128:inf",
		"128:0x1p-3", "128:1e-3", "128:0.1.2", "128:.", "128:0X.8",
		"1:1,2:1,3:1,4:1,5:1,6:1,7:1,8:1,9:1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_ERR("--sample-rates", "-p", "1", "--sample-rates", bad[i], NULL);
	EXPECT_ERR("--sample cannot be used with --stats", "-p", "1", "--sample",
		   "--stats", NULL);
}

Test(options, sample_bytes)
{
	struct hk_options o;

	EXPECT_OK(&o, "-p", "1", "--sample-bytes", NULL);
	cr_assert(o.sample);
	cr_assert_eq(o.rates.period, HK_SAMPLE_BYTES_DEFAULT);
	cr_assert_eq(o.rates.n, 0);
	EXPECT_OK(&o, "-p", "1", "--sample-bytes", "65536", "--duration", "2", NULL);
	cr_assert_eq(o.rates.period, 65536);
	cr_assert_eq(o.duration_ms, 2000);
	EXPECT_OK(&o, "-p", "1", "--sample-bytes=64K", NULL);
	cr_assert_eq(o.rates.period, 65536);
	EXPECT_OK(&o, "--sample-bytes", "--duration", "3", NULL);
	cr_assert_eq(o.rates.period, HK_SAMPLE_BYTES_DEFAULT);
	cr_assert(o.hostwide);
	EXPECT_OK(&o, "start", "-p", "7", "--sample-bytes", "1M", NULL);
	cr_assert_eq(o.rates.period, 1 << 20);
	EXPECT_ERR("--sample-bytes: expected bytes from 1 to 67108864", "-p", "1",
		   "--sample-bytes", "0", NULL);
	EXPECT_ERR("--sample-bytes: expected bytes from 1 to 67108864", "-p", "1",
		   "--sample-bytes=65M", NULL);
	EXPECT_ERR("--sample-bytes: expected a number", "-p", "1",
		   "--sample-bytes=x", NULL);
	EXPECT_ERR("--sample-bytes cannot be used with --sample or --sample-rates",
		   "-p", "1", "--sample", "--sample-bytes", NULL);
	EXPECT_ERR("--sample-bytes cannot be used with --sample or --sample-rates",
		   "-p", "1", "--sample-bytes", "4096", "--sample-rates", "64:0.5", NULL);
	EXPECT_ERR("--sample cannot be used with --stats", "-p", "1", "--sample-bytes",
		   "--stats", NULL);
	EXPECT_ERR("--sample-bytes cannot be used with compare", "compare", "a", "b",
		   "--sample-bytes", NULL);
}

/* ---- sessions: start, snapshot, stop, status ----------------------------- */

Test(session, start)
{
	struct hk_options o;

	EXPECT_OK(&o, "start", "-p", "42", NULL);
	cr_assert_eq(o.command, HK_CMD_START);
	cr_assert_eq(o.pid, 42);
	cr_assert_eq(o.frames, HK_FRAMES_DEFAULT);
	cr_assert_eq(o.max_blocks, HK_MAX_BLOCKS_DEFAULT);
	cr_assert(!o.sample);
	EXPECT_OK(&o, "start", "--frames", "5", "-p", "7", "--max-blocks",
		  "4096", "--sample", NULL);
	cr_assert_eq(o.command, HK_CMD_START);
	cr_assert_eq(o.pid, 7);
	cr_assert_eq(o.frames, 5);
	cr_assert_eq(o.max_blocks, 4096);
	cr_assert(o.sample);
	EXPECT_OK(&o, "start", "-p", "7", "--sample-rates=64:0.5", NULL);
	cr_assert(o.sample);
	cr_assert_eq(o.rates.bound[0], 64);
	/* without -p: the host-wide session */
	EXPECT_OK(&o, "start", "--frames", "3", NULL);
	cr_assert(o.hostwide);
	cr_assert_eq(o.pid, 0);
	EXPECT_ERR("--frames: expected an integer", "start", "-p", "1",
		   "--frames", "0", NULL);
	EXPECT_ERR("--max-blocks: expected", "start", "-p", "1",
		   "--max-blocks", "10", NULL);
	EXPECT_ERR("unexpected argument 'x'", "start", "-p", "1", "x", NULL);
}

Test(session, start_refuses_report_options)
{
	static const char *const opts[][3] = {
		{ "--duration", "5", "--duration" },
		{ "--format", "pickle", "--format" },
		{ "--count", "3", "--count" },
		{ "--cumulative", NULL, "--cumulative" },
		{ "--stats", NULL, "--stats" },
		{ "-o", "f", "-o/--output" },
		{ "--output=f", NULL, "-o/--output" },
		/* refused before their value is looked at */
		{ "--duration", "x", "--duration" },
		{ "--format", "nope", "--format" },
	};
	char msg[128];

	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		snprintf(msg, sizeof msg, "%s cannot be used with start",
			 opts[i][2]);
		EXPECT_ERR(msg, "start", "-p", "1", (char *)opts[i][0],
			   (char *)opts[i][1], NULL);
	}
	EXPECT_ERR("--duration cannot be used with start", "start", "-p", "1",
		   "--duration", NULL);
}

Test(session, snapshot)
{
	struct hk_options o;

	EXPECT_OK(&o, "snapshot", "-p", "42", NULL);
	cr_assert_eq(o.command, HK_CMD_SNAPSHOT);
	cr_assert_eq(o.pid, 42);
	cr_assert_eq(o.format, HK_FMT_LINENO);
	cr_assert_eq(o.count, HK_COUNT_DEFAULT);
	cr_assert(!o.cumulative);
	cr_assert_null(o.output);
	EXPECT_OK(&o, "snapshot", "--format", "pickle", "-p", "3", "-o",
		  "s.pickle", NULL);
	cr_assert_eq(o.format, HK_FMT_PICKLE);
	cr_assert_str_eq(o.output, "s.pickle");
	EXPECT_OK(&o, "snapshot", "-p", "3", "--format=traceback", "--count",
		  "20", NULL);
	cr_assert_eq(o.format, HK_FMT_TRACEBACK);
	cr_assert_eq(o.count, 20);
	EXPECT_OK(&o, "snapshot", "-p", "3", "--cumulative", NULL);
	cr_assert(o.cumulative);
	EXPECT_OK(&o, "snapshot", "--count", "2", NULL);
	cr_assert_eq(o.pid, 0);
	EXPECT_ERR("--cumulative cannot be used with --format traceback",
		   "snapshot", "-p", "1", "--format", "traceback",
		   "--cumulative", NULL);
	EXPECT_ERR("--format json cannot be used with snapshot", "snapshot",
		   "-p", "1", "--format", "json", NULL);
	EXPECT_ERR("--format text cannot be used with snapshot", "snapshot",
		   "-p", "1", "--format", "text", NULL);
	EXPECT_ERR("--format: expected", "snapshot", "-p", "1", "--format",
		   "x", NULL);
	EXPECT_ERR("unexpected argument 'x'", "snapshot", "-p", "1", "x",
		   NULL);
}

Test(session, snapshot_refuses_tracing_options)
{
	static const char *const opts[][3] = {
		{ "--duration", "5", "--duration" },
		{ "--frames", "3", "--frames" },
		{ "--max-blocks", "2048", "--max-blocks" },
		{ "--stats", NULL, "--stats" },
		{ "--sample", NULL, "--sample" },
		{ "--sample-rates", "64:0.5", "--sample-rates" },
	};
	char msg[128];

	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		snprintf(msg, sizeof msg, "%s cannot be used with snapshot",
			 opts[i][2]);
		EXPECT_ERR(msg, "snapshot", "-p", "1", (char *)opts[i][0],
			   (char *)opts[i][1], NULL);
	}
}

Test(session, stop)
{
	static const char *const opts[][3] = {
		{ "--duration", "5", "--duration" },
		{ "--format", "pickle", "--format" },
		{ "--count", "3", "--count" },
		{ "--frames", "3", "--frames" },
		{ "--cumulative", NULL, "--cumulative" },
		{ "--sample", NULL, "--sample" },
		{ "-o", "f", "-o/--output" },
	};
	struct hk_options o;
	char msg[128];

	EXPECT_OK(&o, "stop", "-p", "9", NULL);
	cr_assert_eq(o.command, HK_CMD_STOP);
	cr_assert_eq(o.pid, 9);
	EXPECT_OK(&o, "stop", NULL);
	cr_assert_eq(o.pid, 0);
	EXPECT_ERR("-p/--pid: expected a process ID", "stop", "-p", "0", NULL);
	EXPECT_ERR("unexpected argument '9'", "stop", "9", NULL);
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		snprintf(msg, sizeof msg, "%s cannot be used with stop",
			 opts[i][2]);
		EXPECT_ERR(msg, "stop", "-p", "1", (char *)opts[i][0],
			   (char *)opts[i][1], NULL);
	}
}

Test(session, status)
{
	struct hk_options o;

	EXPECT_OK(&o, "status", NULL);
	cr_assert_eq(o.command, HK_CMD_STATUS);
	cr_assert_eq(o.pid, 0);
	EXPECT_ERR("-p/--pid cannot be used with status", "status", "-p", "1",
		   NULL);
	EXPECT_ERR("--format cannot be used with status", "status",
		   "--format", "pickle", NULL);
	EXPECT_ERR("unexpected argument 'x'", "status", "x", NULL);
}

Test(session, help_version_and_reset)
{
	struct hk_options o;

	EXPECT_OK(&o, "start", "--help", NULL);
	cr_assert(o.help);
	EXPECT_OK(&o, "status", "-V", NULL);
	cr_assert(o.version);
	EXPECT_OK(&o, "stop", "-p", "3", NULL);
	EXPECT_OK(&o, "-p", "3", NULL);
	cr_assert_eq(o.command, HK_CMD_PROFILE);
	/* Only as the first word. */
	EXPECT_ERR("unexpected argument 'stop'", "-p", "1", "stop", NULL);
	EXPECT_ERR("unexpected argument 'status'", "compare", "a", "b",
		   "status", NULL);
}

/* ---- serve -------------------------------------------------------------- */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

Test(serve, defaults_and_options)
{
	struct hk_options o;

	EXPECT_OK(&o, "serve", NULL);
	cr_assert_eq(o.command, HK_CMD_SERVE);
	cr_assert_str_eq(o.listen, "127.0.0.1:8000");
	cr_assert_null(o.token_file);
	cr_assert_eq(o.pid, 0);
	EXPECT_OK(&o, "serve", "--listen", "127.0.0.2:0", "--token-file",
		  "/etc/tok", NULL);
	cr_assert_str_eq(o.listen, "127.0.0.2:0");
	cr_assert_str_eq(o.token_file, "/etc/tok");
	EXPECT_OK(&o, "serve", "--listen=[::1]:9000", NULL);
	EXPECT_OK(&o, "serve", "--listen=localhost:1", NULL);
	/* Not loopback: only with a token. */
	EXPECT_OK(&o, "serve", "--listen=0.0.0.0:8000", "--token-file=t", NULL);
	EXPECT_OK(&o, "serve", "--listen=[::]:8000", "--token-file=t", NULL);
	EXPECT_OK(&o, "serve", "--help", NULL);
	cr_assert(o.help);
	EXPECT_OK(&o, "serve", "-V", NULL);
	cr_assert(o.version);
}

Test(serve, errors)
{
	EXPECT_ERR("not a loopback address: it needs --token-file", "serve",
		   "--listen", "0.0.0.0:8000", NULL);
	EXPECT_ERR("not a loopback address", "serve", "--listen",
		   "[::]:8000", NULL);
	EXPECT_ERR("not a loopback address", "serve", "--listen",
		   "10.1.2.3:80", NULL);
	EXPECT_ERR("--listen: expected ADDRESS:PORT", "serve", "--listen",
		   "127.0.0.1", NULL);
	EXPECT_ERR("--listen: expected ADDRESS:PORT", "serve", "--listen",
		   "127.0.0.1:65536", NULL);
	EXPECT_ERR("--listen: expected ADDRESS:PORT", "serve", "--listen",
		   "127.0.0.1:-1", NULL);
	EXPECT_ERR("--listen: expected an IPv4 address", "serve", "--listen",
		   "example.com:80", NULL);
	EXPECT_ERR("--listen: expected an IPv4 address", "serve", "--listen",
		   "::1:80", NULL);
	EXPECT_ERR("--listen: missing argument", "serve", "--listen", NULL);
	EXPECT_ERR("--token-file: expected a file name", "serve",
		   "--token-file", "", NULL);
	EXPECT_ERR("-p/--pid cannot be used with serve", "serve", "-p", "1",
		   NULL);
	EXPECT_ERR("--duration cannot be used with serve", "serve",
		   "--duration", "1", NULL);
	EXPECT_ERR("-o/--output cannot be used with serve", "serve", "-o",
		   "x", NULL);
	EXPECT_ERR("--format cannot be used with serve", "serve",
		   "--format=pickle", NULL);
	EXPECT_ERR("unexpected argument 'x'", "serve", "x", NULL);
	EXPECT_ERR("--token-file can only be used with serve", "-p", "1",
		   "--token-file", "t", NULL);
	EXPECT_ERR("--listen can only be used with serve", "compare", "a",
		   "b", "--listen", "127.0.0.1:1", NULL);
	/* Only as the first word. */
	EXPECT_ERR("unexpected argument 'serve'", "-p", "1", "serve", NULL);
}

Test(serve, listen_parse)
{
	struct sockaddr_storage ss;
	unsigned len = 0;
	char e[200];

	cr_assert_eq(hk_listen_parse("127.0.0.1:8000", &ss, &len, e, sizeof e), 0);
	cr_assert_eq(ss.ss_family, AF_INET);
	cr_assert_eq(len, sizeof(struct sockaddr_in));
	cr_assert_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8000);
	cr_assert(hk_listen_is_loopback(&ss));
	cr_assert_eq(hk_listen_parse("[::1]:0", &ss, &len, e, sizeof e), 0);
	cr_assert_eq(ss.ss_family, AF_INET6);
	cr_assert_eq(len, sizeof(struct sockaddr_in6));
	cr_assert(hk_listen_is_loopback(&ss));
	cr_assert_eq(hk_listen_parse("[::ffff:127.0.0.1]:1", &ss, NULL, e,
				     sizeof e), 0);
	cr_assert(hk_listen_is_loopback(&ss));
	cr_assert_eq(hk_listen_parse("192.168.0.1:1", &ss, NULL, e, sizeof e), 0);
	cr_assert(!hk_listen_is_loopback(&ss));
	cr_assert_eq(hk_listen_parse("127.0.0.1: 1", &ss, NULL, e, sizeof e), -1);
	cr_assert_eq(hk_listen_parse(":80", &ss, NULL, e, sizeof e), -1);
}

Test(serve, number_rules)
{
	unsigned long v;

	cr_assert(hk_parse_ulong("42", 1, 100, &v));
	cr_assert_eq(v, 42);
	cr_assert(!hk_parse_ulong("0", 1, 100, &v));
	cr_assert(!hk_parse_ulong("101", 1, 100, &v));
	cr_assert(!hk_parse_ulong(" 4", 1, 100, &v));
	cr_assert(!hk_parse_ulong("-4", 0, 100, &v));
	cr_assert(!hk_parse_ulong("", 0, 100, &v));
	cr_assert(hk_parse_seconds("0.5", &v));
	cr_assert_eq(v, 500);
	cr_assert(hk_parse_seconds("300", &v));
	cr_assert_eq(v, 300000);
	cr_assert(!hk_parse_seconds("0", &v));
	cr_assert(!hk_parse_seconds("1e3", &v));
	cr_assert(!hk_parse_seconds("nan", &v));
}

Test(options, merge_files_and_labels)
{
	struct hk_options o;

	EXPECT_OK(&o, "merge", "a.pb.gz", "-o", "m.pb.gz", "b.pb.gz", "--label", "build=7", NULL);
	cr_assert_eq(o.command, HK_CMD_MERGE);
	cr_assert_eq(o.nfiles, 2);
	cr_assert_str_eq(o.files[0], "a.pb.gz");
	cr_assert_str_eq(o.files[1], "b.pb.gz");
	cr_assert_str_eq(o.output, "m.pb.gz");
	cr_assert_eq(o.nlabels, 1);
	cr_assert_str_eq(o.labels[0], "build=7");
	EXPECT_ERR("merge: no files", "merge", NULL);
	EXPECT_ERR("-p/--pid cannot be used with merge", "merge", "a", "-p", "1", NULL);
	EXPECT_ERR("--label: expected KEY=VALUE", "merge", "a", "--label", "=x", NULL);
	EXPECT_ERR("--label: expected KEY=VALUE", "merge", "a", "--label", "k", NULL);
	EXPECT_OK(&o, "-p", "1", "--format", "pprof", "--label", "a=b", NULL);
	cr_assert_eq(o.format, HK_FMT_PPROF);
	EXPECT_ERR("--label needs --format pprof or folded", "-p", "1", "--label", "a=b", NULL);
	EXPECT_ERR("--format cannot be used with start", "start", "-p", "1",
		   "--format", "pprof", NULL);
}

Test(options, interval)
{
	struct hk_options o;

	EXPECT_OK(&o, "-p", "1", NULL);
	cr_assert_eq(o.interval_ms, 0);
	cr_assert_null(o.svg);
	EXPECT_OK(&o, "-p", "1", "--interval", "0.5", "--duration", "10", NULL);
	cr_assert_eq(o.interval_ms, 500);
	cr_assert_eq(o.duration_ms, 10000);
	/* --duration may come after; the check waits for it */
	EXPECT_OK(&o, "-p", "1", "--interval=1", "--svg=plot.svg", "--duration=3",
		  "--format", "traceback", "-o", "s.json", NULL);
	cr_assert_eq(o.interval_ms, 1000);
	cr_assert_str_eq(o.svg, "plot.svg");
	cr_assert_eq(o.format, HK_FMT_TRACEBACK);
	EXPECT_OK(&o, "-p", "1", "--interval", "2", "--cumulative", "--sample", NULL);
	cr_assert(o.cumulative && o.sample);
	/* host-wide, merged or not */
	EXPECT_OK(&o, "--match", "x", "--interval", "1", "--duration", "3", NULL);
	cr_assert(o.hostwide);
	EXPECT_OK(&o, "--merge", "--interval", "1", "--duration", "3", NULL);
	cr_assert(o.hostwide && o.merge);
	/* exactly HK_INTERVAL_POINTS_MAX snapshots */
	EXPECT_OK(&o, "-p", "1", "--interval", "0.001", "--duration", "10", NULL);
}

Test(options, interval_refused)
{
	EXPECT_ERR("--interval: expected seconds from 0.001 to 86400, got 'x'",
		   "-p", "1", "--interval", "x", NULL);
	EXPECT_ERR("--interval: expected seconds", "-p", "1", "--interval", "0", NULL);
	EXPECT_ERR("--interval: expected seconds", "-p", "1", "--interval", "-1", NULL);
	EXPECT_ERR("--interval: expected seconds", "-p", "1", "--interval", "1e3", NULL);
	EXPECT_ERR("--interval: missing argument SEC", "-p", "1", "--interval", NULL);
	EXPECT_ERR("--interval 5 s must be shorter than the window (--duration 5 s)",
		   "-p", "1", "--interval", "5", NULL);
	EXPECT_ERR("--interval 2.5 s must be shorter than the window (--duration 0.5 s)",
		   "-p", "1", "--interval", "2.5", "--duration", "0.5", NULL);
	EXPECT_ERR("--interval 0.001 s over --duration 10.001 s makes 10001 snapshots; at most 10000",
		   "-p", "1", "--interval", "0.001", "--duration", "10.001", NULL);
	EXPECT_ERR("--svg needs --interval", "-p", "1", "--svg", "p.svg", NULL);
	EXPECT_ERR("--svg: expected a file name, got ''", "-p", "1", "--svg", "", NULL);
	EXPECT_ERR("--interval takes --format lineno or traceback (what each series is of), not pickle",
		   "-p", "1", "--interval", "1", "--format", "pickle", NULL);
	EXPECT_ERR("not pprof", "-p", "1", "--interval", "1", "--format", "pprof", NULL);
	EXPECT_ERR("--interval cannot be used with --stats", "-p", "1", "--interval", "1",
		   "--stats", NULL);
	EXPECT_ERR("--svg and -o name the same file, x", "-p", "1", "--interval", "1",
		   "--svg", "x", "-o", "x", NULL);
	EXPECT_ERR("--interval can only be used with the one-shot profile", "start", "-p",
		   "1", "--interval", "1", NULL);
	EXPECT_ERR("--interval can only be used with the one-shot profile", "snapshot",
		   "-p", "1", "--interval", "1", NULL);
	EXPECT_ERR("--svg can only be used with the one-shot profile", "compare", "a",
		   "b", "--svg", "p.svg", NULL);
	EXPECT_ERR("--interval can only be used with the one-shot profile", "serve",
		   "--interval", "1", NULL);
}

/* Command-line options of hawk-bpf.
 *
 * The parser is pure: it never exits and never prints; errors come back as
 * one line of text.  It uses getopt_long, so it is not thread-safe, but it
 * resets getopt's state on every call and may be called any number of times.
 */
#ifndef HAWK_OPTIONS_H
#define HAWK_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include "samplerates.h"

#ifndef HK_VERSION
#define HK_VERSION "0.1.0"
#endif

/* Defaults and limits; the help text is printed from these. */
#define HK_DURATION_MS_DEFAULT	5000UL
#define HK_DURATION_MS_MAX	86400000UL	/* one day */
#define HK_COUNT_DEFAULT	10U
#define HK_COUNT_MAX		1000000U
#define HK_FRAMES_DEFAULT	30U
#define HK_FRAMES_MAX		65535U		/* tracemalloc's limit */
/* Live blocks the kernel map holds; preallocated at 64 bytes each. */
#define HK_MAX_BLOCKS_DEFAULT	1048576U
#define HK_MAX_BLOCKS_MIN	1024U
#define HK_MAX_BLOCKS_MAX	67108864U

/* What to do: the one-shot profile of a process (no subcommand word), or
 * "compare OLD NEW".  Subcommands start, snapshot, stop, status and serve
 * will add values here. */
enum hk_command { HK_CMD_PROFILE, HK_CMD_COMPARE };

enum hk_format {
	HK_FMT_LINENO, HK_FMT_TRACEBACK, HK_FMT_PICKLE,
	HK_FMT_JSON, HK_FMT_TEXT,	/* --stats only */
};

struct hk_options {
	enum hk_command command;
	pid_t pid;			/* -p: >= 1 */
	unsigned long duration_ms;	/* --duration: 1 .. HK_DURATION_MS_MAX */
	unsigned count;			/* --count: 1 .. HK_COUNT_MAX */
	enum hk_format format;		/* --format */
	unsigned frames;		/* --frames: 1 .. HK_FRAMES_MAX */
	bool cumulative;		/* --cumulative; never with traceback */
	unsigned max_blocks;		/* --max-blocks */
	bool stats;			/* --stats: size distribution */
	bool sample;			/* --sample or --sample-rates */
	struct hk_sample_rates rates;	/* --sample-rates (default heapprof's) */
	const char *output;		/* -o: points into argv; NULL = stdout */
	const char *old_file;		/* compare: OLD pickle (argv); else NULL */
	const char *new_file;		/* compare: NEW pickle (argv); else NULL */
	bool help;			/* -h: later arguments unread */
	bool version;			/* -V: later arguments unread */
};

/* Fills *o from argv (argv[0] is the program name; argv is not reordered).
 * Returns 0 when parsed: if o->help or o->version is set, the caller
 * prints help or version and ignores the rest.  Options are read in order
 * and -h/-V stop the parse, so "-h" alone needs no -p.
 * "compare" as argv[1] selects HK_CMD_COMPARE: two positional file names,
 * OLD and NEW, anywhere among the options (or after "--"); only --format
 * lineno|traceback, --count, --cumulative, -o, -h and -V are allowed, and
 * -p is not needed.  Other subcommand words are refused.  Returns -1 on error
 * with one line in err (no program name, no newline; err may be NULL);
 * *o then holds defaults and whatever was parsed before the error. */
int hk_options_parse(struct hk_options *o, int argc, char **argv,
		     char *err, size_t errlen);

/* The --help text, man-page style. */
void hk_usage(FILE *f);

/* "lineno", "traceback" or "pickle" (the --format words); "?" otherwise. */
const char *hk_format_name(enum hk_format f);

#endif

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
/* Host-wide, per process unless --max-blocks says otherwise: each
 * process's table is preallocated (32 B a block in the kernel), and most
 * processes of a host hold few new blocks in a window. */
#define HK_MAX_BLOCKS_HOSTWIDE	262144U
/* serve: where it listens unless --listen says otherwise. */
#define HK_LISTEN_DEFAULT	"127.0.0.1:8000"
/* merge: the most inputs one run takes. */
#define HK_MERGE_MAX		4096
/* --label KEY=VALUE: the most one run takes. */
#define HK_LABELS_MAX		16
/* -p PID,...: the most processes one list names. */
#define HK_PIDS_MAX		1024
/* --interval: the most snapshots one window takes (the time series is
 * held in memory until the window ends: every line's size at each). */
#define HK_INTERVAL_POINTS_MAX	10000UL
/* --svg: the most series one plot draws (past that no legend is read). */
#define HK_SVG_LINES_MAX	20

/* What to do: the one-shot profile of a process (no subcommand word),
 * "compare OLD NEW", or a session command: "start" (trace PID until
 * "stop"), "snapshot" (the live blocks of a session now), "stop", "status"
 * (every session); or "serve" (Hawk's HTTP endpoints, user/cli/serve.h). */
enum hk_command {
	HK_CMD_PROFILE, HK_CMD_COMPARE,
	HK_CMD_START, HK_CMD_SNAPSHOT, HK_CMD_STOP, HK_CMD_STATUS,
	HK_CMD_SERVE,
	HK_CMD_MERGE,		/* merge FILE...: profiles or pickles into one */
};

enum hk_format {
	HK_FMT_LINENO, HK_FMT_TRACEBACK, HK_FMT_PICKLE,
	HK_FMT_JSON, HK_FMT_TEXT,	/* --stats only */
	HK_FMT_PPROF, HK_FMT_FOLDED,	/* heapprofile.h */
};

struct hk_options {
	enum hk_command command;
	pid_t pid;			/* -p: >= 1 (the first of a list) */
	pid_t pids[HK_PIDS_MAX];	/* -p PID,PID...: each once */
	size_t npids;
	const char *match;		/* --match REGEX (argv); else NULL */
	const char *container;		/* --container ID (argv); else NULL */
	const char *cgroup;		/* --cgroup PATH (argv); else NULL */
	bool merge;			/* --merge: one report over them all */
	const char *labels[HK_LABELS_MAX];	/* --label KEY=VALUE (argv) */
	size_t nlabels;
	bool hostwide;			/* several processes: no -p, a list,
					 * a selector or --merge */
	unsigned long duration_ms;	/* --duration: 1 .. HK_DURATION_MS_MAX */
	unsigned long interval_ms;	/* --interval: a time series; 0: none */
	const char *svg;		/* --svg FILE (argv): its plot; else NULL */
	unsigned count;			/* --count: 1 .. HK_COUNT_MAX */
	enum hk_format format;		/* --format */
	unsigned frames;		/* --frames: 1 .. HK_FRAMES_MAX */
	bool cumulative;		/* --cumulative; never with traceback */
	unsigned max_blocks;		/* --max-blocks */
	bool max_blocks_given;		/* else host-wide: HK_MAX_BLOCKS_HOSTWIDE */
	bool stats;			/* --stats: size distribution */
	bool sample;			/* --sample or --sample-rates */
	struct hk_sample_rates rates;	/* --sample-rates (default heapprof's) */
	const char *output;		/* -o: points into argv; NULL = stdout */
	const char *old_file;		/* compare: OLD pickle (argv); else NULL */
	const char *new_file;		/* compare: NEW pickle (argv); else NULL */
	const char *files[HK_MERGE_MAX];	/* merge: the inputs (argv) */
	size_t nfiles;
	const char *listen;		/* serve --listen (argv or HK_LISTEN_DEFAULT) */
	const char *token_file;		/* serve --token-file (argv); else NULL */
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
 * -p is not needed.
 * "start", "snapshot", "stop" and "status" as argv[1] select their
 * command; each takes only its own options and no other word:
 *   start -p PID [--frames N] [--sample | --sample-rates SPEC]
 *         [--max-blocks N]
 *   snapshot -p PID [--format lineno|traceback|pickle] [--count N]
 *         [--cumulative] [-o FILE]
 *   stop -p PID
 *   status
 * (all also -h and -V).
 * "serve" as argv[1] selects HK_CMD_SERVE: only --listen ADDR:PORT,
 * --token-file FILE, -h and -V; an address that is not loopback needs
 * --token-file.  --listen and --token-file are refused elsewhere.
 * Returns -1 on error
 * with one line in err (no program name, no newline; err may be NULL);
 * *o then holds defaults and whatever was parsed before the error. */
int hk_options_parse(struct hk_options *o, int argc, char **argv,
		     char *err, size_t errlen);

/* A --listen value: "IPV4:PORT", "[IPV6]:PORT" or "localhost:PORT", PORT
 * from 0 (any free port) to 65535.  Fills *ss and *len when not NULL.
 * Returns 0, or -1 with one line in err. */
struct sockaddr_storage;
int hk_listen_parse(const char *s, struct sockaddr_storage *ss,
		    unsigned *len, char *err, size_t errlen);

/* Whether a parsed --listen address is loopback (127.0.0.0/8, ::1). */
bool hk_listen_is_loopback(const struct sockaddr_storage *ss);

/* The parser's own number rules, for serve's query parameters: a strict
 * decimal integer in [min, max]; seconds as --duration takes them, in
 * milliseconds (0.001 .. HK_DURATION_MS_MAX / 1000 s). */
bool hk_parse_ulong(const char *s, unsigned long min, unsigned long max,
		    unsigned long *out);
bool hk_parse_seconds(const char *s, unsigned long *ms);

/* The --help text, man-page style. */
void hk_usage(FILE *f);

/* "lineno", "traceback" or "pickle" (the --format words); "?" otherwise. */
const char *hk_format_name(enum hk_format f);

#endif

/* Parsing of hawk-bpf's command line; see options.h. */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

_Static_assert(sizeof(pid_t) == sizeof(int), "pid_t is int on Linux");

/* Long-only options get values outside the char range. */
enum {
	OPT_DURATION = 256,
	OPT_COUNT,
	OPT_FORMAT,
	OPT_FRAMES,
	OPT_CUMULATIVE,
	OPT_MAX_BLOCKS,
	OPT_STATS,
	OPT_SAMPLE,
	OPT_SAMPLE_RATES,
	OPT_SAMPLE_BYTES,
	OPT_LISTEN,
	OPT_TOKEN_FILE,
	OPT_MATCH,
	OPT_CONTAINER,
	OPT_CGROUP,
	OPT_MERGE,
	OPT_LABEL,
	OPT_INTERVAL,
	OPT_SVG,
};

static const struct option longopts[] = {
	{ "pid",	required_argument,	NULL, 'p' },
	{ "duration",	required_argument,	NULL, OPT_DURATION },
	{ "count",	required_argument,	NULL, OPT_COUNT },
	{ "format",	required_argument,	NULL, OPT_FORMAT },
	{ "frames",	required_argument,	NULL, OPT_FRAMES },
	{ "cumulative",	no_argument,		NULL, OPT_CUMULATIVE },
	{ "max-blocks",	required_argument,	NULL, OPT_MAX_BLOCKS },
	{ "stats",	no_argument,		NULL, OPT_STATS },
	{ "sample",	no_argument,		NULL, OPT_SAMPLE },
	{ "sample-rates", required_argument,	NULL, OPT_SAMPLE_RATES },
	{ "sample-bytes", optional_argument,	NULL, OPT_SAMPLE_BYTES },
	{ "output",	required_argument,	NULL, 'o' },
	{ "listen",	required_argument,	NULL, OPT_LISTEN },
	{ "token-file",	required_argument,	NULL, OPT_TOKEN_FILE },
	{ "match",	required_argument,	NULL, OPT_MATCH },
	{ "container",	required_argument,	NULL, OPT_CONTAINER },
	{ "cgroup",	required_argument,	NULL, OPT_CGROUP },
	{ "merge",	no_argument,		NULL, OPT_MERGE },
	{ "label",	required_argument,	NULL, OPT_LABEL },
	{ "interval",	required_argument,	NULL, OPT_INTERVAL },
	{ "svg",	required_argument,	NULL, OPT_SVG },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* '+': stop at the first non-option instead of permuting argv (and ignore
 * POSIXLY_CORRECT either way); ':': a missing argument returns ':'. */
static const char shortopts[] = "+:p:o:hV";

/* How errors name each option, and its argument. */
static const struct {
	int val;
	const char *name;
	const char *arg;
} optnames[] = {
	{ 'p',			"-p/--pid",	"PID[,PID...]" },
	{ OPT_DURATION,		"--duration",	"SEC" },
	{ OPT_COUNT,		"--count",	"N" },
	{ OPT_FORMAT,		"--format",	"lineno|traceback|pickle" },
	{ OPT_FRAMES,		"--frames",	"N" },
	{ OPT_CUMULATIVE,	"--cumulative",	NULL },
	{ OPT_MAX_BLOCKS,	"--max-blocks",	"N" },
	{ OPT_STATS,		"--stats",	NULL },
	{ OPT_SAMPLE,		"--sample",	NULL },
	{ OPT_SAMPLE_RATES,	"--sample-rates", "SPEC" },
	{ OPT_SAMPLE_BYTES,	"--sample-bytes", "N" },
	{ 'o',			"-o/--output",	"FILE" },
	{ OPT_LISTEN,		"--listen",	"ADDR:PORT" },
	{ OPT_TOKEN_FILE,	"--token-file",	"FILE" },
	{ OPT_MATCH,		"--match",	"REGEX" },
	{ OPT_CONTAINER,	"--container",	"ID" },
	{ OPT_CGROUP,		"--cgroup",	"PATH" },
	{ OPT_MERGE,		"--merge",	NULL },
	{ OPT_LABEL,		"--label",	"KEY=VALUE" },
	{ OPT_INTERVAL,		"--interval",	"SEC" },
	{ OPT_SVG,		"--svg",	"FILE" },
	{ 'h',			"-h/--help",	NULL },
	{ 'V',			"-V/--version",	NULL },
};

/* Which options each subcommand refuses, and why. 0 ends a list. */
static const struct {
	enum hk_command cmd;
	const char *word;
	const char *why;
	int refused[20];
} commands[] = {
	/* compare reads two pickles: the options about tracing do not apply. */
	{ HK_CMD_COMPARE, "compare",
	  "which reads two pickle files and traces no process",
	  { 'p', OPT_DURATION, OPT_FRAMES, OPT_MAX_BLOCKS, OPT_STATS,
	    OPT_SAMPLE, OPT_SAMPLE_RATES, OPT_SAMPLE_BYTES, OPT_LABEL } },
	{ HK_CMD_START, "start",
	  "which traces until hawk-bpf stop (report options go to snapshot)",
	  { OPT_DURATION, OPT_COUNT, OPT_FORMAT, OPT_CUMULATIVE, OPT_STATS,
	    'o', OPT_LABEL } },
	{ HK_CMD_SNAPSHOT, "snapshot",
	  "which reports the session as hawk-bpf start set it up",
	  { OPT_DURATION, OPT_FRAMES, OPT_MAX_BLOCKS, OPT_STATS, OPT_SAMPLE,
	    OPT_SAMPLE_RATES, OPT_SAMPLE_BYTES } },
	{ HK_CMD_STOP, "stop", "which takes only -p PID",
	  { OPT_DURATION, OPT_COUNT, OPT_FORMAT, OPT_FRAMES, OPT_CUMULATIVE,
	    OPT_MAX_BLOCKS, OPT_STATS, OPT_SAMPLE, OPT_SAMPLE_RATES, OPT_SAMPLE_BYTES, 'o', OPT_LABEL } },
	{ HK_CMD_STATUS, "status", "which lists every session and takes no option",
	  { 'p', OPT_DURATION, OPT_COUNT, OPT_FORMAT, OPT_FRAMES,
	    OPT_CUMULATIVE, OPT_MAX_BLOCKS, OPT_STATS, OPT_SAMPLE,
	    OPT_SAMPLE_RATES, OPT_SAMPLE_BYTES, 'o', OPT_LABEL } },
	/* merge reads profiles or pickles: nothing is traced. */
	{ HK_CMD_MERGE, "merge",
	  "which merges files and traces no process",
	  { 'p', OPT_DURATION, OPT_COUNT, OPT_FORMAT, OPT_FRAMES, OPT_CUMULATIVE,
	    OPT_MAX_BLOCKS, OPT_STATS, OPT_SAMPLE, OPT_SAMPLE_RATES, OPT_SAMPLE_BYTES, OPT_MATCH,
	    OPT_CONTAINER, OPT_CGROUP, OPT_MERGE } },
	/* serve runs hawk-bpf once per request, with the request's options. */
	{ HK_CMD_SERVE, "serve",
	  "which takes the PID and report options from each HTTP request",
	  { 'p', OPT_DURATION, OPT_COUNT, OPT_FORMAT, OPT_FRAMES,
	    OPT_CUMULATIVE, OPT_MAX_BLOCKS, OPT_STATS, OPT_SAMPLE,
	    OPT_SAMPLE_RATES, OPT_SAMPLE_BYTES, 'o', OPT_LABEL } },
};

static const char *const format_names[] = {
	[HK_FMT_LINENO] = "lineno",
	[HK_FMT_TRACEBACK] = "traceback",
	[HK_FMT_PICKLE] = "pickle",
	[HK_FMT_JSON] = "json",
	[HK_FMT_TEXT] = "text",
	[HK_FMT_PPROF] = "pprof",
	[HK_FMT_FOLDED] = "folded",
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

const char *hk_format_name(enum hk_format f)
{
	if ((unsigned)f < ARRAY_LEN(format_names))
		return format_names[f];
	return "?";
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int find_opt(int val)
{
	for (size_t i = 0; i < ARRAY_LEN(optnames); i++)
		if (optnames[i].val == val)
			return (int)i;
	return -1;
}

static const char *opt_name(int val)
{
	int i = find_opt(val);

	return i < 0 ? "?" : optnames[i].name;
}

/* An option the subcommand does not take. */
static int refuse_for_command(const struct hk_options *o, int val,
			      char *err, size_t errlen)
{
	if ((val == OPT_LISTEN || val == OPT_TOKEN_FILE) &&
	    o->command != HK_CMD_SERVE)
		return fail(err, errlen, "%s can only be used with serve",
			    opt_name(val));
	/* selectors choose what a window traces; --merge how it reads */
	if ((val == OPT_MATCH || val == OPT_CONTAINER || val == OPT_CGROUP) &&
	    o->command != HK_CMD_PROFILE && o->command != HK_CMD_START)
		return fail(err, errlen,
			    "%s can only be used with the one-shot profile and start",
			    opt_name(val));
	/* a time series is the one-shot window's, snapshot by snapshot */
	if ((val == OPT_INTERVAL || val == OPT_SVG) && o->command != HK_CMD_PROFILE)
		return fail(err, errlen, "%s can only be used with the one-shot profile",
			    opt_name(val));
	if (val == OPT_MERGE && o->command != HK_CMD_PROFILE &&
	    o->command != HK_CMD_SNAPSHOT)
		return fail(err, errlen,
			    "%s can only be used with the one-shot profile and snapshot",
			    opt_name(val));
	for (size_t c = 0; c < ARRAY_LEN(commands); c++) {
		if (commands[c].cmd != o->command)
			continue;
		for (size_t i = 0; i < ARRAY_LEN(commands[c].refused) &&
				   commands[c].refused[i]; i++)
			if (commands[c].refused[i] == val)
				return fail(err, errlen,
					    "%s cannot be used with %s, %s",
					    opt_name(val), commands[c].word,
					    commands[c].why);
	}
	return 0;
}

/* An option naming a file: any name but "". */
static int file_arg(int c, const char **dst, char *err, size_t errlen)
{
	if (!*optarg)
		return fail(err, errlen, "%s: expected a file name, got ''", opt_name(c));
	*dst = optarg;
	return 0;
}

/* Strict decimal: strtoul alone would take spaces, signs and "-1". */
static bool parse_ulong(const char *s, unsigned long min, unsigned long max,
			unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Seconds as "D", "D.", "D.F" or ".F" in milliseconds, truncating below the
 * millisecond but comparing bounds exactly (86400.0001 is too long, 0.0009
 * too short).  Hand-made because strtod takes hex, exponents, inf, nan
 * and the locale's decimal point. */
static bool parse_duration(const char *s, unsigned long *ms)
{
	unsigned long whole = 0, frac = 0;
	bool digits = false, beyond = false;	/* beyond: nonzero past 1 ms */
	int nfrac = 0;

	for (; *s >= '0' && *s <= '9'; s++, digits = true)
		if (whole <= HK_DURATION_MS_MAX / 1000)	/* else stays too big */
			whole = whole * 10 + (unsigned long)(*s - '0');
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, digits = true, nfrac++) {
			if (nfrac < 3)
				frac = frac * 10 + (unsigned long)(*s - '0');
			else if (*s != '0')
				beyond = true;
		}
	}
	if (*s || !digits || whole > HK_DURATION_MS_MAX / 1000)
		return false;
	for (; nfrac < 3; nfrac++)
		frac *= 10;
	*ms = whole * 1000 + frac;
	if (*ms == 0 || *ms > HK_DURATION_MS_MAX ||
	    (*ms == HK_DURATION_MS_MAX && beyond))
		return false;
	return true;
}

static bool parse_format(const char *s, enum hk_format *f)
{
	for (size_t i = 0; i < ARRAY_LEN(format_names); i++) {
		if (strcmp(s, format_names[i]) == 0) {
			*f = (enum hk_format)i;
			return true;
		}
	}
	return false;
}

/* getopt returned '?': an unknown or ambiguous option, or an argument
 * given to an option that takes none. */
static int bad_option(const struct hk_options *o, char **argv,
		      char *err, size_t errlen)
{
	const char *arg = argv[optind - 1], *name;
	size_t len;
	int n = 0;

	if (optopt && refuse_for_command(o, optopt, err, errlen))
		return -1;
	if (optopt && find_opt(optopt) >= 0)
		return fail(err, errlen, "%s: takes no argument, got '%s'",
			    opt_name(optopt), arg);
	if (optopt)
		return fail(err, errlen, "unknown option '-%c'", optopt);
	/* An unknown long option; glibc has stepped past it. */
	name = arg + 2;
	len = strcspn(name, "=");
	for (const struct option *lo = longopts; lo->name; lo++)
		n += strncmp(lo->name, name, len) == 0;
	if (n > 1 && len)
		return fail(err, errlen,
			    "ambiguous option '--%.*s': spell it out in full",
			    (int)len, name);
	if (!len)	/* "--=x": show it whole */
		return fail(err, errlen, "unknown option '%s'", arg);
	return fail(err, errlen, "unknown option '--%.*s'", (int)len, name);
}

/* A word that is not an option: compare's OLD, then NEW. */
static int positional(struct hk_options *o, const char *arg,
		      char *err, size_t errlen)
{
	if (o->command == HK_CMD_MERGE) {
		if (!*arg)
			return fail(err, errlen, "merge: expected a file name, got ''");
		if (o->nfiles == HK_MERGE_MAX)
			return fail(err, errlen, "merge: more than %d files", HK_MERGE_MAX);
		o->files[o->nfiles++] = arg;
		return 0;
	}
	const char **slot = !o->old_file ? &o->old_file
			  : !o->new_file ? &o->new_file : NULL;

	if (!slot)
		return fail(err, errlen, "unexpected argument '%s'", arg);
	if (!*arg)
		return fail(err, errlen,
			    "compare: expected a file name for %s, got ''",
			    slot == &o->old_file ? "OLD" : "NEW");
	*slot = arg;
	return 0;
}

int hk_listen_parse(const char *s, struct sockaddr_storage *ss,
		    unsigned *len, char *err, size_t errlen)
{
	struct sockaddr_storage tmp;
	const char *colon = strrchr(s, ':');
	char host[INET6_ADDRSTRLEN + 2];
	unsigned long port;
	size_t hlen;

	if (!ss)
		ss = &tmp;
	memset(ss, 0, sizeof(*ss));
	if (!colon || !parse_ulong(colon + 1, 0, 65535, &port))
		return fail(err, errlen,
			    "--listen: expected ADDRESS:PORT such as %s, got '%s'",
			    HK_LISTEN_DEFAULT, s);
	hlen = (size_t)(colon - s);
	if (hlen >= sizeof(host))
		goto bad_host;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			goto bad_host;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (len)
			*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			goto bad_host;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (len)
			*len = sizeof(*a);
	}
	return 0;
bad_host:
	return fail(err, errlen,
		    "--listen: expected an IPv4 address, [IPv6 address] or localhost before :PORT, got '%s'",
		    s);
}

bool hk_listen_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) &&
			a->sin6_addr.s6_addr[12] == 127);
	}
	return false;
}

bool hk_parse_ulong(const char *s, unsigned long min, unsigned long max,
		    unsigned long *out)
{
	return parse_ulong(s, min, max, out);
}

bool hk_parse_seconds(const char *s, unsigned long *ms)
{
	return parse_duration(s, ms);
}

/* -p PID[,PID...], repeatable: the list, each PID once. */
static int parse_pids(struct hk_options *o, const char *arg, char *err,
		      size_t errlen)
{
	const char *p = arg;

	do {
		size_t len = strcspn(p, ",");
		char num[16];
		unsigned long v;
		bool dup = false;

		if (len >= sizeof(num) ||
		    (memcpy(num, p, len), num[len] = 0, !parse_ulong(num, 1, INT_MAX, &v)))
			return fail(err, errlen,
				    "-p/--pid: expected a process ID from 1 to %d (or several, with commas), got '%s'",
				    INT_MAX, arg);
		for (size_t i = 0; i < o->npids; i++)
			dup |= o->pids[i] == (pid_t)v;
		if (!dup && o->npids == HK_PIDS_MAX)
			return fail(err, errlen, "-p/--pid: more than %d processes",
				    HK_PIDS_MAX);
		if (!dup)
			o->pids[o->npids++] = (pid_t)v;
		p += len;
	} while (*p++ == ',');
	o->pid = o->pids[0];
	return 0;
}

/* The final checks of "serve", once every option is read: a server
 * reachable from other hosts must ask for a token. */
static int serve_checks(const struct hk_options *o, char *err, size_t errlen)
{
	struct sockaddr_storage ss;

	if (hk_listen_parse(o->listen, &ss, NULL, err, errlen))
		return -1;
	if (!hk_listen_is_loopback(&ss) && !o->token_file)
		return fail(err, errlen,
			    "serve: --listen %s is not a loopback address: it needs --token-file",
			    o->listen);
	return 0;
}

/* --interval and --svg, once --duration and --format are read: at least
 * two snapshots, and not more than the series may hold. */
static const char *seconds(char buf[32], unsigned long ms)
{
	int n = snprintf(buf, 32, "%lu.%03lu", ms / 1000, ms % 1000);

	while (buf[n - 1] == '0')
		buf[--n] = 0;
	if (buf[n - 1] == '.')
		buf[--n] = 0;
	return buf;
}

static int interval_checks(const struct hk_options *o, char *err, size_t errlen)
{
	char a[32], b[32];
	unsigned long points;

	if (o->svg && !o->interval_ms)
		return fail(err, errlen, "--svg needs --interval (it plots the time series)");
	if (!o->interval_ms)
		return 0;
	if (o->stats)
		return fail(err, errlen, "--interval cannot be used with --stats");
	if (o->format != HK_FMT_LINENO && o->format != HK_FMT_TRACEBACK)
		return fail(err, errlen,
			    "--interval takes --format lineno or traceback (what each series is of), not %s",
			    hk_format_name(o->format));
	if (o->interval_ms >= o->duration_ms)
		return fail(err, errlen,
			    "--interval %s s must be shorter than the window (--duration %s s)",
			    seconds(a, o->interval_ms), seconds(b, o->duration_ms));
	points = (o->duration_ms + o->interval_ms - 1) / o->interval_ms;
	if (points > HK_INTERVAL_POINTS_MAX)
		return fail(err, errlen,
			    "--interval %s s over --duration %s s makes %lu snapshots; at most %lu",
			    seconds(a, o->interval_ms), seconds(b, o->duration_ms), points,
			    HK_INTERVAL_POINTS_MAX);
	if (o->svg && o->output && strcmp(o->svg, o->output) == 0)
		return fail(err, errlen, "--svg and -o name the same file, %s", o->svg);
	return 0;
}

/* The final checks of "compare OLD NEW", once every option is read. */
static int compare_checks(const struct hk_options *o, char *err, size_t errlen)
{
	if (!o->old_file)
		return fail(err, errlen, "compare: missing OLD and NEW pickle files");
	if (!o->new_file)
		return fail(err, errlen, "compare: missing NEW pickle file");
	if (o->format != HK_FMT_LINENO && o->format != HK_FMT_TRACEBACK)
		return fail(err, errlen,
			    "--format %s cannot be used with compare (lineno or traceback)",
			    hk_format_name(o->format));
	if (o->cumulative && o->format == HK_FMT_TRACEBACK)
		return fail(err, errlen,
			    "--cumulative cannot be used with --format traceback");
	return 0;
}

int hk_options_parse(struct hk_options *o, int argc, char **argv,
		     char *err, size_t errlen)
{
	unsigned long v;
	int c;
	bool format_given = false;
	unsigned sampling_by = 0;	/* 1: classes, 2: bytes */

	*o = (struct hk_options){
		.command = HK_CMD_PROFILE,
		.duration_ms = HK_DURATION_MS_DEFAULT,
		.count = HK_COUNT_DEFAULT,
		.format = HK_FMT_LINENO,
		.frames = HK_FRAMES_DEFAULT,
		.max_blocks = HK_MAX_BLOCKS_DEFAULT,
		.listen = HK_LISTEN_DEFAULT,
	};
	hk_sample_rates_parse(HK_SAMPLE_DEFAULT, &o->rates, NULL, 0);
	if (err && errlen)
		err[0] = '\0';
	if (argc < 1 || !argv)
		return fail(err, errlen, "missing -p PID");

	for (size_t i = 0; argc > 1 && i < ARRAY_LEN(commands); i++) {
		if (strcmp(argv[1], commands[i].word) == 0) {
			/* getopt then sees the word as the program name. */
			o->command = commands[i].cmd;
			argc--;
			argv++;
			break;
		}
	}

	opterr = 0;	/* we report errors ourselves */
	optind = 0;	/* 0, not 1: glibc then also forgets a half-read "-hV" */
	for (;;) {
		int before = optind ? optind : 1;

		c = getopt_long(argc, argv, shortopts, longopts, NULL);
		if (c == -1) {
			/* At the end, at "--" (optind then steps past it),
			 * or, with '+', at the first non-option. */
			if (optind >= argc || (o->command != HK_CMD_COMPARE &&
					       o->command != HK_CMD_MERGE))
				break;
			if (optind > before) {
				while (optind < argc)
					if (positional(o, argv[optind++], err, errlen))
						return -1;
				break;
			}
			/* compare's OLD and NEW may come among the options:
			 * step over the word and go on. */
			if (positional(o, argv[optind++], err, errlen))
				return -1;
			continue;
		}
		if (c != ':' && c != '?' && refuse_for_command(o, c, err, errlen))
			return -1;
		switch (c) {
		case 'p':
			if (parse_pids(o, optarg, err, errlen))
				return -1;
			break;
		case OPT_MATCH:
			o->match = optarg;
			break;
		case OPT_CONTAINER:
			if (!*optarg)
				return fail(err, errlen, "%s: expected a container ID, got ''",
					    opt_name(c));
			o->container = optarg;
			break;
		case OPT_CGROUP:
			if (optarg[0] != '/')
				return fail(err, errlen,
					    "%s: expected a cgroup path from the root of the hierarchy (/...), got '%s'",
					    opt_name(c), optarg);
			o->cgroup = optarg;
			break;
		case OPT_MERGE:
			o->merge = true;
			break;
		case OPT_LABEL: {
			const char *eq = strchr(optarg, '=');

			if (!eq || eq == optarg || strchr(eq + 1, '=') == eq + 1 ||
			    strcspn(optarg, "\n\t\r") != strlen(optarg))
				return fail(err, errlen,
					    "%s: expected KEY=VALUE (a key, then '='), got '%s'",
					    opt_name(c), optarg);
			if (o->nlabels == HK_LABELS_MAX)
				return fail(err, errlen, "%s: more than %d labels",
					    opt_name(c), HK_LABELS_MAX);
			o->labels[o->nlabels++] = optarg;
			break;
		}
		case OPT_DURATION:
			if (!parse_duration(optarg, &o->duration_ms))
				return fail(err, errlen,
					    "%s: expected seconds from 0.001 to %lu, got '%s'",
					    opt_name(c), HK_DURATION_MS_MAX / 1000, optarg);
			break;
		case OPT_INTERVAL:
			if (!parse_duration(optarg, &o->interval_ms))
				return fail(err, errlen,
					    "%s: expected seconds from 0.001 to %lu, got '%s'",
					    opt_name(c), HK_DURATION_MS_MAX / 1000, optarg);
			break;
		case OPT_SVG:
			if (file_arg(c, &o->svg, err, errlen))
				return -1;
			break;
		case OPT_COUNT:
			if (!parse_ulong(optarg, 1, HK_COUNT_MAX, &v))
				return fail(err, errlen,
					    "%s: expected an integer from 1 to %u, got '%s'",
					    opt_name(c), HK_COUNT_MAX, optarg);
			o->count = (unsigned)v;
			break;
		case OPT_FORMAT:
			if (!parse_format(optarg, &o->format))
				return fail(err, errlen,
					    o->command == HK_CMD_COMPARE
					    ? "%s: expected lineno or traceback, got '%s'"
					    : "%s: expected lineno, traceback, pickle, pprof or folded (json or text with --stats), got '%s'",
					    opt_name(c), optarg);
			format_given = true;
			break;
		case OPT_FRAMES:
			if (!parse_ulong(optarg, 1, HK_FRAMES_MAX, &v))
				return fail(err, errlen,
					    "%s: expected an integer from 1 to %u, got '%s'",
					    opt_name(c), HK_FRAMES_MAX, optarg);
			o->frames = (unsigned)v;
			break;
		case OPT_CUMULATIVE:
			o->cumulative = true;
			break;
		case OPT_STATS:
			o->stats = true;
			break;
		case OPT_SAMPLE:
			o->sample = true;
			sampling_by |= 1;
			break;
		case OPT_SAMPLE_RATES: {
			char why[200];

			if (hk_sample_rates_parse(optarg, &o->rates, why, sizeof(why)))
				return fail(err, errlen, "%s: %s", opt_name(c), why);
			o->sample = true;
			sampling_by |= 1;
			break;
		}
		case OPT_SAMPLE_BYTES: {
			/* "--sample-bytes" alone is Go's 512 KiB; its N may be
			 * the next word ("--sample-bytes 65536") */
			const char *n = optarg;
			char why[200];

			if (!n && optind < argc && argv[optind][0] >= '0' &&
			    argv[optind][0] <= '9')
				n = argv[optind++];
			if (hk_sample_bytes_parse(n ? n : HK_SAMPLE_BYTES_DEFAULT_STR,
						  &o->rates, why, sizeof(why))) {
				return fail(err, errlen, "%s: %s", opt_name(c), why);
			}
			o->sample = true;
			sampling_by |= 2;
			break;
		}
		case OPT_MAX_BLOCKS:
			if (!parse_ulong(optarg, HK_MAX_BLOCKS_MIN, HK_MAX_BLOCKS_MAX, &v))
				return fail(err, errlen,
					    "%s: expected an integer from %u to %u, got '%s'",
					    opt_name(c), HK_MAX_BLOCKS_MIN,
					    HK_MAX_BLOCKS_MAX, optarg);
			o->max_blocks = (unsigned)v;
			o->max_blocks_given = true;
			break;
		case 'o':
			if (file_arg(c, &o->output, err, errlen))
				return -1;
			break;
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_TOKEN_FILE:
			if (file_arg(c, &o->token_file, err, errlen))
				return -1;
			break;
		case 'h':
			o->help = true;
			return 0;
		case 'V':
			o->version = true;
			return 0;
		case ':':
			if (refuse_for_command(o, optopt, err, errlen))
				return -1;
			return fail(err, errlen, "%s: missing argument %s",
				    opt_name(optopt),
				    optnames[find_opt(optopt)].arg);
		default:
			return bad_option(o, argv, err, errlen);
		}
	}
	if (o->command == HK_CMD_COMPARE)
		return compare_checks(o, err, errlen);
	if (o->command == HK_CMD_MERGE)
		return o->nfiles ? 0 : fail(err, errlen,
					    "merge: no files (pprof profiles or snapshot pickles)");
	if (optind < argc)
		return fail(err, errlen, "unexpected argument '%s'",
			    argv[optind]);
	if (o->command == HK_CMD_STATUS)
		return 0;
	if (o->command == HK_CMD_SERVE)
		return serve_checks(o, err, errlen);
	/* several processes: the profile or session of the host (without
	 * -p, snapshot and stop address the host-wide session) */
	o->hostwide = o->npids != 1 || o->match || o->container || o->cgroup ||
		      (o->merge && o->command == HK_CMD_PROFILE);
	if (o->npids > 1 && (o->command == HK_CMD_SNAPSHOT || o->command == HK_CMD_STOP))
		return fail(err, errlen,
			    "%s takes one -p PID, or none for the host-wide session",
			    o->command == HK_CMD_SNAPSHOT ? "snapshot" : "stop");
	if (o->merge && o->command == HK_CMD_SNAPSHOT && o->pid)
		return fail(err, errlen, "--merge is for the host-wide session (snapshot without -p)");
	if (o->hostwide && o->stats)
		return fail(err, errlen, "--stats takes one -p PID");
	if (o->hostwide && !o->max_blocks_given)
		o->max_blocks = HK_MAX_BLOCKS_HOSTWIDE;
	if (o->command == HK_CMD_SNAPSHOT && o->format != HK_FMT_LINENO &&
	    o->format != HK_FMT_TRACEBACK && o->format != HK_FMT_PICKLE &&
	    o->format != HK_FMT_PPROF && o->format != HK_FMT_FOLDED)
		return fail(err, errlen,
			    "--format %s cannot be used with snapshot (lineno, traceback, pickle, pprof or folded)",
			    hk_format_name(o->format));
	if ((o->format == HK_FMT_PPROF || o->format == HK_FMT_FOLDED) &&
	    o->command != HK_CMD_PROFILE && o->command != HK_CMD_SNAPSHOT)
		return fail(err, errlen, "--format %s is for the profile and snapshot",
			    hk_format_name(o->format));
	if (o->nlabels && o->format != HK_FMT_PPROF && o->format != HK_FMT_FOLDED)
		return fail(err, errlen, "--label needs --format pprof or folded");
	/* --stats has its own formats: json (default) and text. */
	if (o->stats && !format_given)
		o->format = HK_FMT_JSON;
	if (o->stats != (o->format == HK_FMT_JSON || o->format == HK_FMT_TEXT))
		return fail(err, errlen, o->stats
			    ? "--format %s cannot be used with --stats (json or text)"
			    : "--format %s needs --stats",
			    hk_format_name(o->format));
	if (o->stats && o->sample)
		return fail(err, errlen, "--sample cannot be used with --stats");
	if (sampling_by == 3)
		return fail(err, errlen, "--sample-bytes cannot be used with --sample or --sample-rates (by bytes, or by size classes)");
	if (o->stats && o->cumulative)
		return fail(err, errlen, "--cumulative cannot be used with --stats");
	/* Snapshot.statistics('traceback', cumulative=True) raises too. */
	if (o->cumulative && o->format == HK_FMT_TRACEBACK)
		return fail(err, errlen,
			    "--cumulative cannot be used with --format traceback");
	return interval_checks(o, err, errlen);
}

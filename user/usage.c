/* hawk-bpf --help: a short man page.  Defaults and limits come from
 * options.h so the text cannot drift from the parser. */
#include "options.h"

void hk_usage(FILE *f)
{
	fputs(
"NAME\n"
"    hawk-bpf - trace a running CPython process's memory allocations\n"
"    from outside and report them as tracemalloc would\n"
"\n"
"SYNOPSIS\n"
"    sudo hawk-bpf -p PID [--duration SEC] [--count N]\n"
"                  [--format lineno|traceback|pickle] [--frames N]\n"
"                  [--cumulative] [--max-blocks N] [-o FILE]\n"
"    hawk-bpf -h|--help\n"
"    hawk-bpf -V|--version\n"
"\n"
"DESCRIPTION\n"
"    hawk-bpf attaches eBPF probes to the CPython process PID, which needs\n"
"    no change, no restart and no tracemalloc of its own.  For a window of\n"
"    time it records the memory blocks that Python allocates and frees,\n"
"    each with the Python traceback of its allocation, as\n"
"    tracemalloc.start(FRAMES) would have from the start of the window.\n"
"    When the window ends it reports the blocks still allocated, grouped\n"
"    as tracemalloc's Snapshot.statistics() groups them, or writes the\n"
"    snapshot itself as a pickle.\n"
"\n"
"    It must run as root, or with the capabilities CAP_BPF, CAP_SYS_ADMIN\n"
"    and CAP_SYS_PTRACE.  Ctrl-C (SIGINT) or SIGTERM ends the window early;\n"
"    the report then covers the time traced so far.\n"
"\n"
"OPTIONS\n"
"    -p, --pid PID\n"
"        The CPython process to trace.  Required.\n"
"\n", f);
	fprintf(f,
"    --duration SEC\n"
"        Length of the window in seconds, a decimal number from 0.001 to\n"
"        %lu, such as 0.5 or 30.  Default %lu.\n"
"\n", HK_DURATION_MS_MAX / 1000, HK_DURATION_MS_DEFAULT / 1000);
	fprintf(f,
"    --count N\n"
"        Print the N biggest statistics, from 1 to %u.  Default %u.\n"
"\n", HK_COUNT_MAX, HK_COUNT_DEFAULT);
	fputs(
"    --format lineno|traceback|pickle\n"
"        lineno: statistics by source line, as\n"
"        Snapshot.statistics('lineno').  The default.\n"
"        traceback: statistics by whole traceback, as\n"
"        Snapshot.statistics('traceback').\n"
"        pickle: the snapshot itself, as Snapshot.dump() writes it, to be\n"
"        read back by tracemalloc.Snapshot.load().  Binary: use -o.\n"
"\n", f);
	fprintf(f,
"    --frames N\n"
"        Keep at most N frames per traceback, from 1 to %u, as\n"
"        tracemalloc.start(N).  Default %u.\n"
"\n", HK_FRAMES_MAX, HK_FRAMES_DEFAULT);
	fprintf(f,
"    --max-blocks N\n"
"        Room for N live blocks in the kernel (64 bytes each, reserved\n"
"        up front), from %u to %u.  Default %u.\n"
"        Blocks beyond it are not traced and the report says how many.\n"
"\n", HK_MAX_BLOCKS_MIN, HK_MAX_BLOCKS_MAX, HK_MAX_BLOCKS_DEFAULT);
	fputs(
"    --cumulative\n"
"        Count each block in every frame of its traceback, not only the\n"
"        most recent one, as Snapshot.statistics(..., cumulative=True).\n"
"        Not allowed with --format traceback, as in tracemalloc.\n"
"\n"
"    -o, --output FILE\n"
"        Write the report to FILE instead of standard output.\n"
"\n"
"    -h, --help\n"
"        Print this help and exit.\n"
"\n"
"    -V, --version\n"
"        Print the version and exit.\n"
"\n"
"    Long options also take their value as --option=VALUE.\n"
"\n"
"OUTPUT\n"
"    The report goes to standard output, or to FILE with -o.  Once the\n"
"    probes are live, one line goes to standard error:\n"
"        hawk-bpf: tracing PID N (CPython X.Y.Z)\n"
"    Errors also go to standard error, one line each.\n"
"\n"
"EXIT STATUS\n"
"    0   the report was written, also when the window was cut short\n"
"    1   tracing failed: no such process, not CPython, not permitted, ...\n"
"    2   the command line is wrong\n"
"\n"
"EXAMPLES\n"
"    sudo hawk-bpf -p 1234\n"
"        The 10 source lines holding the most memory allocated in 5 s.\n"
"\n"
"    sudo hawk-bpf -p 1234 --duration 60 --format traceback --frames 10\n"
"        A minute, grouped by tracebacks of up to 10 frames.\n"
"\n"
"    sudo hawk-bpf -p 1234 --cumulative --count 20\n"
"        The 20 lines holding the most memory, counting their callees.\n"
"\n"
"    sudo hawk-bpf -p 1234 --format pickle -o snap.pickle\n"
"        A snapshot for python3: tracemalloc.Snapshot.load('snap.pickle').\n",
	      f);
}

/* hawk-bpf serve: Hawk's /debug/prof/mem/tracemalloc/ HTTP endpoints.
 *
 * Each request runs this very binary (/proc/self/exe) as a child with the
 * equivalent command line and answers with what it printed, so a response
 * is byte for byte the CLI's output, and tracing never runs inside the
 * server:
 *   GET /debug/prof/mem/tracemalloc/           hawk-bpf -p PID --duration D
 *                                              --format F --frames N
 *                                              --count C [--cumulative]
 *   GET /debug/prof/mem/tracemalloc/start/     hawk-bpf start -p PID
 *                                              [--frames N]
 *   GET /debug/prof/mem/tracemalloc/snapshot/  hawk-bpf snapshot -p PID
 *                                              --format F --count C
 *                                              [--cumulative]
 *   GET /debug/prof/mem/tracemalloc/stop/      hawk-bpf stop -p PID
 * Parameters: pid, and Hawk's duration, format, frames, count, gc,
 * cumulative (every endpoint accepts them all, as Hawk does, and uses
 * those that apply); any other parameter is refused. Without pid, or
 * with several (pid=1,2), match, container, cgroup or merge=true, the
 * profile and start are host-wide (hostwide.h: no -p, --match ...), and
 * snapshot and stop without pid are the host-wide session's
 * (snapshot: merge=true for one report; a pickle needs it).
 *
 * Exit status to HTTP: 0 -> 200 with the output; 2 -> 400 (501 for a
 * subcommand "not implemented yet"); 1 -> 404 (no such process, one that
 * exited during attach, not CPython), 422 (unsupported CPython) or 500;
 * 3 (the session's daemon had died: cleaned up) -> 404.  Errors are {"error": "..."}.
 * gc=true (Hawk's default) cannot be honoured from outside the target
 * before CPython 3.14: JSON responses then carry a "warnings" array, other
 * responses an X-Hawk-Warning header.
 */
#ifndef HAWK_SERVE_H
#define HAWK_SERVE_H

#include "options.h"

#define HK_SERVE_MAX_CHILDREN	4		/* running at once; then 503 */
/* Connections at once, and from one client address: one client can hold
 * a sixteenth of the server at most; beyond, MHD closes them unanswered. */
#define HK_SERVE_CONN_MAX	256
#define HK_SERVE_CONN_PER_IP	16
/* A request (head and any body) must arrive whole within this of its
 * connection or of the previous answer: a request head is a few hundred
 * bytes, one packet on any network. */
#define HK_SERVE_REQUEST_S	10
/* A connection on which nothing moves this long is closed. */
#define HK_SERVE_IDLE_S		30
#define HK_SERVE_DURATION_MS_MAX 300000UL	/* duration beyond: 400 */
#define HK_SERVE_PATH		"/debug/prof/mem/tracemalloc/"

/* Serves until SIGINT or SIGTERM, then stops accepting, terminates the
 * running children, and returns 0.  1 when it cannot start (one stderr
 * line), 2 for an unusable --token-file. */
int hk_serve_main(const struct hk_options *o);

#endif

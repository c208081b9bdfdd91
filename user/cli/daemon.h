/* "hawk-bpf start": the tracing daemon of one target process.
 *
 * The invoking process takes the target's lock, forks (twice, with
 * setsid) and waits on a pipe: the daemon's stderr until its probes are
 * live. It relays that to its own stderr and exits 0 once the daemon says
 * "hawk-bpf: tracing PID ...", else 1 with the daemon's error line. The
 * daemon then runs with stdio on /dev/null, holds the lock, traces with no
 * deadline and serves /run/hawk-bpf/PID.sock (see session.h) from one
 * loop that also polls the ring buffer, until "stop" or SIGTERM/SIGINT. */
#ifndef HAWK_DAEMON_H
#define HAWK_DAEMON_H

#include "options.h"

/* Exit status for main. */
int hk_daemon_start(const struct hk_options *o);

#endif

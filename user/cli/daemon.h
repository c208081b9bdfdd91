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

/* Exit status for main. With o->hostwide, the daemon is the host-wide
 * session's (hostdaemon.h), under host.lock and host.sock. */
int hk_daemon_start(const struct hk_options *o);

/* Shared with the host-wide daemon: the listening socket of pid's
 * session (-1 with one line in err); one request from a root client
 * answered by the handlers (1: it was "stop", whose connection goes to
 * *stop_conn, to be answered last; 0 otherwise); "error MSG", or "ok"
 * and one JSON line (j stolen), to a client; the snapshot format words;
 * stdio on /dev/null once the tracing line is out. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
struct hk_daemon_handlers {
	void (*status)(void *ctx, int fd);
	void (*snapshot)(void *ctx, int fd, const char *args);
};
int hk_daemon_listen(pid_t pid, char *err, size_t errlen);
int hk_daemon_serve(int lsock, const struct hk_daemon_handlers *h, void *ctx,
		    int *stop_conn);
void hk_daemon_reply_error(int fd, const char *msg);
void hk_daemon_reply_json(int fd, json_t *j);
bool hk_daemon_parse_format(const char *s, enum hk_format *f);
void hk_daemon_quiet(void);

/* The host-wide daemon's body (hostdaemon.c), and its lock: host.lock,
 * or one line on stderr and -1 when a host-wide session runs already. */
int hk_hostdaemon_main(const struct hk_options *o, int lock);
int hk_host_lock(void);

#endif

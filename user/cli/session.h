/* Interval profiling from the shell: a daemon (user/cli/daemon.c) traces one
 * process between "hawk-bpf start" and "hawk-bpf stop"; the client
 * commands here talk to it over /run/hawk-bpf/PID.sock.
 *
 * Protocol (one request per connection, root only): the client sends one
 * line, the daemon answers with zero or more "hawk-bpf: ..." lines (to be
 * relayed to stderr), then "ok\n" or "error MESSAGE\n", then, after "ok",
 * the payload until EOF.
 *   snapshot FORMAT COUNT CUMULATIVE   payload: the report bytes
 *   status                             payload: one JSON line
 *   stop                               payload: none; the daemon has
 *                                      restored and detached everything
 *                                      and exits right after
 *
 * A daemon killed with -9 leaves its socket and lock behind (and, in its
 * target, the table slots it had switched): snapshot and stop then clean
 * up after it (orphan.h) and exit 3.
 *
 * Also here, shared by the one-shot profile and the daemon: the report
 * writer. The per-PID lock is lock.h's. */
#ifndef HAWK_SESSION_H
#define HAWK_SESSION_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include "creds.h"
#include "model.h"
#include "source.h"
#include "lock.h"
#include "options.h"
#include "pytarget.h"
#include "tracer.h"

/* The report of r in o->format (lineno/traceback JSON, pickle, or --stats
 * json/text). Source lines are read under rootfd/cwdfd (the target's, held
 * open) with creds (the target's, taken at attach). point_in_time:
 * statistics of the live blocks (a session's snapshot); else Hawk's fixed-duration profile, compare_to an empty
 * start. 0, or -1 (errno set). */
int hk_write_report(FILE *out, const struct hk_options *o,
		    const struct hk_pytarget *t, const struct hk_result *r,
		    int rootfd, int cwdfd, const struct hk_creds *creds,
		    bool point_in_time);
/* The pieces of that report, for the host-wide one (hostreport.h): the
 * lineno/traceback JSON of one process with its "sampling" and
 * "hawk_bpf" objects; those two alone; the pickle of a snapshot (sampled
 * blocks scaled by 1/p); and the source reader of a target's root and
 * cwd (NULL when out of memory: lines are then ""). */
#include <jansson.h>
json_t *hk_report_json(const struct hk_options *o, const struct hk_pytarget *t,
		       const struct hk_result *r, struct hk_source *src,
		       bool point_in_time);
json_t *hk_run_json(const struct hk_pytarget *t, const struct hk_result *r,
		    const struct hk_options *o);
json_t *hk_sampling_json(const struct hk_options *o, size_t sampled_blocks);
int hk_write_pickle(FILE *out, const struct hk_snapshot *snap);
struct hk_source *hk_source_at(int rootfd, int cwdfd, const struct hk_creds *creds);

/* One "hawk-bpf: warning: ..." line to f for each loss in r. */
void hk_warn_losses(FILE *f, const struct hk_result *r);
/* What the one-shot profile says of pid's window once it has ended: its
 * exit or exec during it, every loss, a sampler left in place. */
void hk_warn_window_end(FILE *f, pid_t pid, const struct hk_result *r);
/* The sum of the loss counters. */
unsigned long long hk_losses(const uint64_t counters[HK_CNT_MAX]);
/* Every counter by name, as in the report's "hawk_bpf.counters". */
const char *hk_counter_name(int i);
/* That object: {name: value} of every counter (NULL out of memory). */
json_t *hk_counters_json(const uint64_t counters[HK_CNT_MAX]);
/* The bytes r's blocks stand for (sampled ones weighed by 1/p). */
double hk_result_bytes(const struct hk_result *r);

/* The client commands: exit status, errors as one line on stderr. */
int hk_session_snapshot(const struct hk_options *o);
int hk_session_stop(const struct hk_options *o);
int hk_session_status(const struct hk_options *o);

#endif

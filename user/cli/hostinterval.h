/* --interval host-wide (interval.h): at every tick a snapshot of every
 * process traced then (procset.h), the records at the window's end the
 * last point.
 *
 * Without --merge, a series is one line (or traceback) of one process,
 * with its pid: points where that process was not traced (it started
 * later, or had exited or exec'd) have no value, and the top --count are
 * ranked over every process together, each by its last point.  With
 * --merge, a series is one line over the union of the blocks of the
 * processes traced at each point.  Times are seconds after hawk-bpf
 * began, the clock of each process's window_began_s and window_ended_s. */
#ifndef HAWK_HOSTINTERVAL_H
#define HAWK_HOSTINTERVAL_H

#include <signal.h>
#include "interval.h"
#include "options.h"
#include "procset.h"

struct hk_hostseries;

/* Traces ps, live since start (CLOCK_MONOTONIC), until the window ends,
 * a snapshot at each tick, and ends it (hk_procset_stop): its series, or
 * NULL with one line in err (the window is ended all the same). */
struct hk_hostseries *hk_hostinterval_watch(const struct hk_options *o,
					    struct hk_procset *ps, double start,
					    volatile sig_atomic_t *stop,
					    char *err, size_t errlen);

/* hs to w (discarded on failure) and frees it. Exit status: 0, or 1
 * with one line printed. */
int hk_hostinterval_write(const struct hk_options *o, const struct hk_procset *ps,
			  struct hk_hostseries *hs, struct hk_ts_out *w);

#endif

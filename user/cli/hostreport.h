/* The report of a host-wide run (procset.h), in o->format:
 *
 * lineno, traceback: {"processes": [each process's own report, as one
 * process's run writes it, with who it is and when its window was,
 * largest traced heap first], "skipped": [the CPython processes not
 * traced, and why], "hawk_bpf": {the run}}.
 *
 * --merge: one report in the single-process format over the union of
 * every traced process's blocks (its "hawk_bpf" lists the processes).
 *
 * pickle: with --merge one snapshot of the union; else one PID.pickle a
 * process in the directory -o names, and index.json there. */
#ifndef HAWK_HOSTREPORT_H
#define HAWK_HOSTREPORT_H

#include <stdio.h>
#include "options.h"
#include "procset.h"

/* JSON, or the merged pickle, to out. point_in_time: a session's
 * snapshot (statistics of the blocks live now, no heap_diff), else the
 * fixed-duration profile. 0, or -1 (errno set). */
int hk_hostreport_write(FILE *out, const struct hk_options *o,
			const struct hk_procset *ps, double window_s,
			bool point_in_time);

/* The pickles into directory dir (made if missing). 0, or -1 with one
 * line in err. */
int hk_hostreport_pickles(const char *dir, const struct hk_options *o,
			  const struct hk_procset *ps, double window_s,
			  char *err, size_t errlen);

/* The pieces every host-wide document shares, for the time series
 * (interval.h): who a process is, the keys every listing of it starts
 * with (pid, nspid, comm, cmdline, container, cgroup); its python and
 * window (window_began_s, window_ended_s: null while traced,
 * found_at_start, forked_from) into o; the "skipped" list; and the run's
 * "hawk_bpf" object (a new reference each). */
#include <jansson.h>
void hk_hostreport_identity(json_t *o, const struct hk_found *f);
void hk_hostreport_window(json_t *o, const struct hk_traced *tt);
json_t *hk_hostreport_skipped(const struct hk_procset *ps);
json_t *hk_hostreport_run(const struct hk_procset *ps, const struct hk_options *o,
			  double window_s);

#endif

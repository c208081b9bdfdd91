/* The processes one host-wide run traces.
 *
 * hk_procset_start finds every CPython process the selectors admit
 * (discover.h) and attaches to them in parallel, one tracer each
 * (tracer.h), each under its own lock (lock.h); it returns once every one
 * is live or skipped. From then on hk_procset_poll keeps the tracers
 * going and takes in the processes that start: every exec on the host is
 * looked at (procwatch.bpf.c), and so is every child a traced process
 * forks, whatever the selectors say of it. A process that exits or execs
 * is stopped at once and keeps its record. hk_procset_stop ends every
 * window. Only the thread that calls these touches a live tracer; the
 * attaching threads hand theirs over once live. */
#ifndef HAWK_PROCSET_H
#define HAWK_PROCSET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include "creds.h"
#include "discover.h"
#include "pytarget.h"
#include "tracer.h"

struct hk_traced {
	struct hk_found info;
	struct hk_pytarget t;
	struct hk_tracer *tr;		/* NULL once stopped */
	int lock;
	int rootfd, cwdfd;		/* held from attach: source lines */
	struct hk_creds creds;		/* which they are read with */
	double began, ended;		/* s after the run began (ended < 0: live) */
	bool at_start;			/* found by the first scan */
	pid_t forked_from;		/* a traced parent it was forked from */
	struct hk_result res;		/* its record, once stopped */
	struct hk_result snap;		/* a session's snapshot, while live */
	bool has_snap;
	bool stopped;
	bool exec_listed;		/* its new image is in "skipped" */
	char stop_err[256];		/* the record could not be read */
};

/* Why a CPython process is not traced (the report's "skipped"). */
enum hk_skip_why {
	HK_SKIP_UNSUPPORTED,	/* not a build hawk-bpf can trace */
	HK_SKIP_TRACED,		/* another hawk-bpf traces it */
	HK_SKIP_EXITED,		/* gone before its probes were live */
	HK_SKIP_EXECD,		/* traced, then exec'd: its new image is not */
	HK_SKIP_LATE,		/* found as the window closed */
	HK_SKIP_FAILED,		/* attaching failed */
};

struct hk_skipped {
	struct hk_found info;
	enum hk_skip_why why;
	char reason[512];
};

struct hk_procset {
	struct hk_traced **traced;
	size_t ntraced;
	struct hk_skipped *skipped;
	size_t nskipped;
	double t0;			/* CLOCK_MONOTONIC at the start */
	double started_unix;		/* the same moment, wall clock */
	unsigned long long lost_events;	/* procwatch events the ring dropped */
	struct hk_procset_priv *p;
};

/* 0, or -1 with one line in err (a bad selector, BPF not loadable).
 * Processes that cannot be traced are skipped, not errors. */
int hk_procset_start(struct hk_procset *ps, const struct hk_select *sel,
		     const struct hk_trace_opts *to, char *err, size_t errlen);
/* Up to timeout_ms of tracing: announced stacks, exits, newcomers. */
void hk_procset_poll(struct hk_procset *ps, int timeout_ms);
/* A session's snapshot of every live process into its snap (the
 * stopped ones keep their record); hk_procset_unsnap frees them. */
void hk_procset_snapshot(struct hk_procset *ps);
void hk_procset_unsnap(struct hk_procset *ps);
/* The live blocks and bytes of every process now, and their counters
 * summed, without resolving stacks (status). */
void hk_procset_count(struct hk_procset *ps, uint64_t *blocks, double *bytes,
		      uint64_t counters[HK_CNT_MAX]);
/* Ends every window: records collected, tables restored. */
void hk_procset_stop(struct hk_procset *ps);
void hk_procset_free(struct hk_procset *ps);

/* "skipped"'s short names: "unsupported", "already_traced", ... */
const char *hk_skip_name(enum hk_skip_why why);

#endif

/* One tracing window over one CPython process: load and attach the BPF
 * programs, redirect the allocator tables, wait, collect the live blocks. */
#ifndef HAWK_TRACER_H
#define HAWK_TRACER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "hawk.h"
#include "model.h"
#include "pytarget.h"
#include "symbolize.h"
#include "samplerates.h"

struct hk_trace_opts {
	unsigned frames;		/* tracemalloc's traceback limit */
	unsigned long duration_ms;	/* 0: no deadline (hk_trace_start) */
	unsigned max_blocks;		/* capacity of the live-block map */
	bool need_total;		/* count total_nframe (pickle only) */
	bool stats;			/* --stats: size histogram only */
	const struct hk_sample_rates *sample;	/* --sample, else NULL */
	volatile sig_atomic_t *stop;	/* set by a signal handler */
	bool quiet;			/* no "tracing" line (host-wide) */
	bool alloc_totals;		/* what each stack allocated (pprof) */
};

struct hk_result {
	struct hk_trace *traces;
	size_t ntraces;
	struct hk_alloc_total *allocs;	/* with alloc_totals, exact runs */
	size_t nallocs;
	uint64_t counters[HK_CNT_MAX];
	uint64_t unresolved;		/* blocks whose stack was lost */
	bool target_exited;
	bool finalizing;		/* record frozen at Py_FinalizeEx */
	bool execd;			/* record frozen at its exec */
	char warning[256];		/* set if the sampler could not be undone */
	bool interrupted;
	double seconds;			/* length of the window */
	double began;			/* CLOCK_MONOTONIC s when probes were live */
	bool tables_changed;		/* someone else changed a table slot */
	double tables_changed_at;	/* seen then, s into the window */
	int tables_changed_slot;	/* which (hk_tablewatch_slot_name) */
	struct hk_hist_cell hist[HK_DK_MAX][HK_HIST_BUCKETS];	/* --stats */
	struct hk_symbolizer *sym;	/* owns the tracebacks */
	struct detach *detach;		/* probes still coming off */
	bool sym_borrowed;		/* sym belongs to a running tracer */
};

/* A tracer in steps, for the daemon (one thread uses it):
 *
 * hk_trace_start loads and attaches the programs, redirects the allocator
 * tables (and installs the sampler) and prints "hawk-bpf: tracing …" to
 * stderr once the probes are live. 0, or -1 with one line in err (nothing
 * is left attached or redirected then).
 *
 * hk_trace_poll resolves newly announced stacks, waiting up to timeout_ms
 * for them; 1 once the target has exited, 2 once it has exec'd (the
 * record stopped there), else 0. hk_trace_fd is a file
 * descriptor that polls readable when hk_trace_poll has work.
 *
 * hk_trace_snapshot collects the live blocks now into *r while the probes
 * keep running (r->sym is borrowed: valid until hk_trace_stop).
 *
 * hk_trace_count: the live blocks and their bytes (weighted by 1/p when
 * sampling) and the counters, without resolving stacks.
 *
 * hk_trace_stop freezes the record, collects it into *r (if r is not
 * NULL), restores the tables and detaches; r then owns the symbolizer and
 * hk_result_free waits for the probes to come off. It frees tr, also when
 * it fails (-1 with one line in err: the blocks could not be read). With
 * r NULL, the probes are off when it returns, and 1 with a line in err
 * means the sampler could not be undone (a warning). */
struct hk_tracer;

int hk_trace_start(struct hk_tracer **tr, struct hk_pytarget *t,
		   const struct hk_trace_opts *o, char *err, size_t errlen);
int hk_trace_poll(struct hk_tracer *tr, int timeout_ms);
int hk_trace_fd(const struct hk_tracer *tr);
int hk_trace_snapshot(struct hk_tracer *tr, struct hk_result *r, char *err,
		      size_t errlen);
int hk_trace_count(struct hk_tracer *tr, uint64_t *blocks, double *bytes,
		   uint64_t counters[HK_CNT_MAX]);
int hk_trace_stop(struct hk_tracer *tr, struct hk_result *r, char *err,
		  size_t errlen);
/* CLOCK_MONOTONIC seconds when its probes went live: the window's start
 * (hk_result's began), to time snapshots from. */
double hk_trace_began(const struct hk_tracer *tr);

/* Runs the window; prints "hawk-bpf: tracing …" to stderr once probes are
 * live. 0, or -1 with one line in err. The target's tables are restored
 * and the record frozen before it returns, error or not; the probes come
 * off in the background, and hk_result_free waits until they are off. */
int hk_trace_run(struct hk_pytarget *t, const struct hk_trace_opts *o,
		 struct hk_result *r, char *err, size_t errlen);
void hk_result_free(struct hk_result *r);

#endif

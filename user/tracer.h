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
	unsigned long duration_ms;
	unsigned max_blocks;		/* capacity of the live-block map */
	bool need_total;		/* count total_nframe (pickle only) */
	bool stats;			/* --stats: size histogram only */
	const struct hk_sample_rates *sample;	/* --sample, else NULL */
	volatile sig_atomic_t *stop;	/* set by a signal handler */
};

struct hk_result {
	struct hk_trace *traces;
	size_t ntraces;
	uint64_t counters[HK_CNT_MAX];
	uint64_t unresolved;		/* blocks whose stack was lost */
	bool target_exited;
	bool finalizing;		/* record frozen at Py_FinalizeEx */
	char warning[256];		/* set if the sampler could not be undone */
	bool interrupted;
	double seconds;			/* length of the window */
	struct hk_hist_cell hist[HK_DK_MAX][HK_HIST_BUCKETS];	/* --stats */
	struct hk_symbolizer *sym;	/* owns the tracebacks */
	struct detach *detach;		/* probes still coming off */
};

/* Runs the window; prints "hawk-bpf: tracing …" to stderr once probes are
 * live. 0, or -1 with one line in err. The target's tables are restored
 * and the record frozen before it returns, error or not; the probes come
 * off in the background, and hk_result_free waits until they are off. */
int hk_trace_run(struct hk_pytarget *t, const struct hk_trace_opts *o,
		 struct hk_result *r, char *err, size_t errlen);
void hk_result_free(struct hk_result *r);

#endif

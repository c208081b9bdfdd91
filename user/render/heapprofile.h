/* Heap profiles of traced processes in the formats profilers read:
 * pprof (pprof.h: inuse_objects/inuse_space of the blocks alive at the
 * end, alloc_objects/alloc_space of everything allocated in the window
 * where it was counted) and folded stacks (inuse_space). One sample a
 * traceback and process, labelled with the process's labels. */
#ifndef HAWK_HEAPPROFILE_H
#define HAWK_HEAPPROFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "model.h"
#include "pprof.h"

struct hk_heap_proc {
	const struct hk_trace *traces;		/* alive at the end */
	size_t ntraces;
	const struct hk_alloc_total *allocs;	/* NULL: not counted */
	size_t nallocs;
	const struct hk_pprof_label *labels;
	size_t nlabels;
};

struct hk_heap_profile {
	const struct hk_heap_proc *procs;
	size_t nprocs;
	int64_t time_nanos, duration_nanos;	/* the window */
	bool folded;				/* else pprof */
	const char *comment;			/* NULL: none */
	int64_t period;		/* sampled by bytes: period_type space/bytes */
};

/* 0, or -1 with errno. Sampled blocks (weight > 0) count as
 * weight blocks of size * weight, rounded per sample. */
int hk_heapprofile_write(FILE *out, const struct hk_heap_profile *hp);

#endif

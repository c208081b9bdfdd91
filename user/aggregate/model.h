/* The user-space data model: traces exactly as tracemalloc keeps them.
 *
 * A trace is (domain, size, traceback, total_nframe) like
 * tracemalloc._get_traces(); a traceback's frames are most recent first, as
 * in the raw traces (Lib/tracemalloc.py reverses them for its API).
 * Filenames are interned by the producer: equal strings share one pointer,
 * but consumers must compare with strcmp (pickles read back are not
 * interned), and ordering is strcmp order, which equals Python's str order
 * for UTF-8.
 */
#ifndef HAWK_MODEL_H
#define HAWK_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hk_frame {
	const char *filename;	/* UTF-8, NUL-terminated */
	/* The code object's qualified name (co_qualname; co_name on 3.10)
	 * and first line, interned like filename: "" and 0 when unknown
	 * (pickles carry neither). Not part of a frame's identity: grouping,
	 * comparison and tracemalloc's output use (filename, lineno) only. */
	const char *function;
	unsigned int lineno;
	unsigned int firstlineno;
};

struct hk_traceback {
	uint32_t nframe;		/* frames held, >= 1 */
	uint32_t total_nframe;		/* frames the stack had, capped at 65535 */
	const struct hk_frame *frames;	/* most recent first */
};

struct hk_trace {
	unsigned int domain;		/* 0: Python's own allocators */
	uint64_t size;
	const struct hk_traceback *tb;
	/* Sampling: the block stands for 1/p blocks (0: exact, weight 1).
	 * Statistics then sum size * weight and weight, rounded per group. */
	double weight;
};

/* What one stack allocated during a window, freed or not (pprof's
 * alloc_objects and alloc_space). */
struct hk_alloc_total {
	const struct hk_traceback *tb;
	double count, bytes;	/* estimates when sampled */
};

/* Sums of sizes.  A trace's size is a size_t, as tracemalloc records it;
 * a statistic adds up to 2^32 of them (once per frame when cumulative)
 * and compare_to subtracts two such sums: 128 bits hold all of them
 * exactly, as Python's ints do, where 64 would wrap (a sum passes 2^127
 * only past 2^63 trace-frames, a pickle of a hundred GiB). */
__extension__ typedef unsigned __int128 hk_u128;
__extension__ typedef __int128 hk_i128;

struct hk_snapshot {
	const struct hk_trace *traces;
	size_t ntraces;
	unsigned int traceback_limit;	/* tracemalloc.start(N) / --frames */
};

#endif

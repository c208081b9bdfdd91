/* tracemalloc snapshot files: the pickle Python's Snapshot.dump() writes.
 *
 * Written pickles load with tracemalloc.Snapshot.load() as a Snapshot equal
 * to the one Python would have dumped: state {'traces': _Traces with
 * {'_traces': [raw traces]}, 'traceback_limit': N}, raw trace =
 * (domain, size, traceback, total_nframe), traceback = ((filename, lineno),
 * ...) most recent first.  Protocol 4 with 64 KiB frames; filenames and
 * traceback tuples are memoized (by pointer, then by content) so repeated
 * ones cost a 2-5 byte memo reference.
 *
 * The reader accepts exactly the opcodes this writer and CPython's
 * Snapshot.dump() (protocol 4 or 5) emit for a snapshot, and refuses
 * anything else with a message; it bounds-checks all input.  Numbers
 * must fit their C fields: a trace size is a size_t, 0 to 2^64 - 1 (any
 * other int is refused, naming the field).
 */
#ifndef HAWK_PICKLE_H
#define HAWK_PICKLE_H

#include <stddef.h>
#include <stdio.h>

#include "model.h"

/* Writes snap to f (use open_memstream() for a memory buffer).  Returns 0,
 * or -1 with errno set: EILSEQ for a filename that is not UTF-8 (lone
 * surrogates encoded as in Python's 'surrogatepass' are accepted), EINVAL
 * for a trace without frames or a NULL filename, ENOMEM, or the stdio
 * error (f then holds a partial pickle).  Does not fflush or close f. */
int hk_pickle_write_snapshot(FILE *f, const struct hk_snapshot *snap);

/* A snapshot read back; snap points into memory owned by this struct. */
struct hk_pickle_snapshot {
	struct hk_snapshot snap;
	struct hk_trace *traces;
	struct hk_traceback *tbs;
	size_t ntbs;		/* distinct (traceback tuple, total_nframe) */
	struct hk_frame *frames;
	char *strings;		/* the filenames' bytes */
};

/* Parses a pickle in buf[0..len).  Returns 0 and fills *out, or -1 with a
 * NUL-terminated message in err[0..errsz) (and *out zeroed). */
int hk_pickle_read_snapshot(const void *buf, size_t len,
			    struct hk_pickle_snapshot *out,
			    char *err, size_t errsz);

/* Same, reading the file at path. */
int hk_pickle_load_snapshot(const char *path, struct hk_pickle_snapshot *out,
			    char *err, size_t errsz);

/* Frees what a successful read allocated; safe on a zeroed struct. */
void hk_pickle_snapshot_free(struct hk_pickle_snapshot *ps);

#endif

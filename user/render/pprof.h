/* Profiles for pprof (issue 16): gzipped profile.proto, as `go tool pprof`
 * and other pprof readers take them, and Brendan Gregg's folded stacks
 * for flamegraph.pl and its kin; and merging profile.proto images of
 * several hosts or runs into one (hk_pprof_merge, at the end).
 *
 * The writers read the caller's strings in place and keep only what
 * deduplication needs (one entry per distinct string, function and
 * location), never a copy of the samples: samples stream out one by one.
 * Every string must be UTF-8 and NUL-terminated, and stay unchanged
 * during the call; but for a label's str, a NULL string is taken for "".
 * The writers return 0, or -1 with errno: ENOMEM, EOVERFLOW (2^32 distinct
 * strings, functions or locations, or a folded sum past int64), EINVAL
 * (a folded value past ntypes), or the stream's write error.
 */
#ifndef HAWK_PPROF_H
#define HAWK_PPROF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct hk_pprof_frame {		/* one Python frame */
	const char *function;	/* the code object's qualified name ("" if unknown) */
	const char *filename;
	int64_t line;
	int64_t start_line;	/* the function's first line (co_firstlineno), 0 unknown */
};

/* pprof itself ignores a string label whose str is "" and a numeric one
 * of num 0 without a unit: the format cannot tell them from absent. */
struct hk_pprof_label {
	const char *key;
	const char *str;	/* string label, or NULL for a numeric one: */
	int64_t num;
	const char *num_unit;	/* may be NULL */
};

struct hk_pprof_sample {
	const struct hk_pprof_frame *frames;	/* leaf (most recent call) first */
	size_t nframes;
	const int64_t *values;			/* one per sample type */
	const struct hk_pprof_label *labels;
	size_t nlabels;
};

struct hk_pprof {
	/* Sample types, e.g. {"inuse_objects", "inuse_space", "alloc_objects",
	 * "alloc_space"} in {"count", "bytes", "count", "bytes"}. */
	const char *const *types, *const *units;
	size_t ntypes;
	const char *default_type;		/* NULL: none */
	const char *period_type, *period_unit;	/* NULL: none */
	int64_t period;
	int64_t time_nanos, duration_nanos;
	const char *const *comments;
	size_t ncomments;
	const struct hk_pprof_sample *samples;
	size_t nsamples;
};

/* A gzipped profile.proto of p to out: 0, or -1 with errno. Functions
 * (by name, filename, start_line), locations (by function and line: one
 * Line each, no address, one mapping for all with has_functions,
 * has_filenames, has_line_numbers set) and strings are deduplicated;
 * string 0 is "".  Functions have a name but no system_name, which would
 * let pprof take "<module>" for a C++ template and strip it. */
int hk_pprof_write(FILE *out, const struct hk_pprof *p);

/* Brendan Gregg's folded stacks: one line a sample with a non-zero
 * values[value] ("root;...;leaf VALUE", frames oldest first, each frame
 * "function (filename:line)"; ';' and newlines in names replaced so a
 * line stays one stack), samples of equal stacks summed. 0 or -1.
 * Details: ';' becomes ',' and CR or LF a space; function "" prints as
 * "<unknown>" and a sample without frames as tracemalloc's frame of an
 * empty traceback, "<unknown> (<unknown>:0)"; start_line plays no part
 * (stacks that print alike are one); lines in the order their stacks
 * first came, none for a stack whose values sum to 0. */
int hk_folded_write(FILE *out, const struct hk_pprof *p, size_t value);

/* Merges n gzipped (or plain) profile.proto images into one written to
 * out, gzipped: every input's samples, with their labels, values and
 * stacks, in one profile whose strings, functions, locations and
 * mappings are deduplicated across inputs (equal function = equal name,
 * system_name, filename, start_line; equal location = equal mapping,
 * address, is_folded and lines; equal mapping = all fields equal).
 * Samples with the same stack and labels (as sets: a sample's labels are
 * written ordered by key, as text, values of one key in their order) are
 * summed, and samples whose values are all 0 dropped, as go tool pprof
 * -proto does (one whose sum is all 0 is kept).  Every input must have
 * the same sample types (type and unit, in order); period_type must
 * agree where set (period: the first nonzero, the first input's if it
 * has one; a warning is not this function's job).  default_sample_type, drop_frames and keep_frames: the first
 * input's that has one; comments: every input's, each distinct one once.
 * extra: labels added to every sample (--label KEY=VALUE), n_extra of
 * them; a sample that already has a label with that key keeps its own.
 * time_nanos: the earliest input's; duration_nanos: from the earliest
 * start to the latest end (an input without time_nanos counts by its
 * duration alone).  The result is canonical: merged again alone, with
 * the same extra labels, it comes back byte for byte (gunzipped).
 *
 * An input is gzip when it starts with 1f 8b (members end to end are
 * one stream), otherwise plain protobuf; one over 1 GiB uncompressed is
 * refused, and so is one that pprof would not take for a profile: a
 * string index outside the string table, a location, function or
 * mapping id that is 0, repeated or referred to but absent, a sample
 * whose values do not match the sample types.
 *
 * 0, or -1 with errno (EINVAL, EFBIG, ENOMEM, EOVERFLOW or the stream's
 * write error) and one line in err (errlen bytes, may be 0), naming the
 * input by its 1-based index and why: "input 2: not a profile (gzip:
 * ...)", "input 3: sample types inuse_objects/count,inuse_space/bytes
 * differ from input 1's alloc_objects/count,...", "input 2: out of
 * memory", "writing the merged profile: No space left on device".  On
 * failure, out may have part of a profile. */
int hk_pprof_merge(FILE *out, const void *const *bufs, const size_t *lens,
		   size_t n, const struct hk_pprof_label *extra, size_t n_extra,
		   char *err, size_t errlen);

#endif

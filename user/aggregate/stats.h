/* tracemalloc's Snapshot.statistics() and Snapshot.compare_to() in C.
 *
 * Same grouping, same numbers, same order and same str() as CPython 3.11's
 * Lib/tracemalloc.py, for snapshots held as struct hk_snapshot.
 */
#ifndef HAWK_STATS_H
#define HAWK_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

enum hk_key_type {
	HK_KEY_FILENAME,	/* 'filename': one frame (filename, 0) */
	HK_KEY_LINENO,		/* 'lineno': the most recent frame */
	HK_KEY_TRACEBACK,	/* 'traceback': every frame held */
};

/* One Statistic or StatisticDiff.  tb is the grouping Traceback, frames most
 * recent first like model.h (so Python's stat.traceback[0], the oldest
 * frame, is tb.frames[tb.nframe - 1]); tb.total_nframe == tb.nframe.
 * For statistics(), size_diff == size and count_diff == count. */
struct hk_stat {
	struct hk_traceback tb;
	hk_u128 size;
	int64_t count;
	hk_i128 size_diff;
	int64_t count_diff;
};

/* A sorted list of statistics.  It owns its frames and filename strings:
 * it stays valid after the snapshots are freed. */
struct hk_stats {
	struct hk_stat *stats;	/* sorted like tracemalloc (biggest first) */
	size_t n;
	bool diff;		/* from hk_compare_to: StatisticDiff */
	void *priv;		/* storage, freed by hk_stats_free */
};

/* Parse "filename" / "lineno" / "traceback"; -1 when unknown. */
int hk_key_type_parse(const char *name);
const char *hk_key_type_name(enum hk_key_type key);

/* snap.statistics(key, cumulative).  Returns 0, -EINVAL (unknown key, or
 * cumulative with 'traceback', where tracemalloc raises ValueError) or
 * -ENOMEM.  Cumulative mode counts a trace once for every frame of its
 * traceback, repeated frames (recursion) included, as tracemalloc does.
 * A traceback with nframe 0 counts as tracemalloc's ("<unknown>", 0). */
int hk_statistics(const struct hk_snapshot *snap, enum hk_key_type key,
		  bool cumulative, struct hk_stats **out);

/* snap.compare_to(old, key, cumulative); same return values. */
int hk_compare_to(const struct hk_snapshot *snap, const struct hk_snapshot *old,
		  enum hk_key_type key, bool cumulative, struct hk_stats **out);

void hk_stats_free(struct hk_stats *stats);

/* str(stat) into buf, snprintf-style: returns the length the full string
 * needs (excluding the NUL); diff selects StatisticDiff.__str__. */
int hk_stat_str(char *buf, size_t len, const struct hk_stat *stat, bool diff);

/* str(stat) in a malloc'ed string (NULL when out of memory). */
char *hk_stat_strdup(const struct hk_stat *stat, bool diff);

/* Sum of the trace sizes (Hawk's heap_current_bytes). */
hk_u128 hk_snapshot_total(const struct hk_snapshot *snap);

#endif

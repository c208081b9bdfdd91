/* Hawk's memory-profile JSON, rendered from tracemalloc-style statistics.
 *
 * Mirrors Hawk's Python renderer: _format_lineno() / traceback style, plus
 * the heap_* usage keys.  Objects keep insertion order, so a caller may
 * json_object_set_new() extra top-level keys (e.g. "hawk_bpf") afterwards.
 */
#ifndef HAWK_REPORT_H
#define HAWK_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "source.h"
#include "stats.h"

#define HK_REPORT_DEFAULT_COUNT 10	/* Hawk's top_stats[:count] default */

enum hk_report_style {
	/* {"stat", "mem_blocks_count", "mem_blocks_size_bytes",
	 *  "mem_blocks_size", "filename", "lineno", "code"} per stat */
	HK_REPORT_LINENO,
	/* {"mem_blocks_count", "mem_blocks_size_bytes", "mem_blocks_size",
	 *  "traceback": Traceback.format() lines} per stat */
	HK_REPORT_TRACEBACK,
};

struct hk_heap {
	hk_u128 current;	/* heap_current_bytes */
	hk_i128 diff;		/* heap_diff_bytes, when has_diff */
	bool has_diff;		/* interval profile */
};

/* {"stats": [first `count` of stats], "heap_current_bytes", "heap_current"
 * [, "heap_diff_bytes", "heap_diff"]}.  "stat" is str(Statistic) or
 * str(StatisticDiff) per stats->diff.  src gives the "code" lines and may
 * be NULL (all ""). Returns a new reference, NULL when out of memory. */
json_t *hk_report_render(const struct hk_stats *stats, size_t count,
			 enum hk_report_style style, struct hk_source *src,
			 const struct hk_heap *heap);

/* The whole profile: point-in-time when old is NULL (snap.statistics()),
 * interval otherwise (snap.compare_to(old), heap_diff = total(snap) -
 * total(old)).  Style is TRACEBACK for HK_KEY_TRACEBACK, else LINENO.
 * Returns NULL with errno EINVAL (cumulative 'traceback') or ENOMEM. */
json_t *hk_report_build(const struct hk_snapshot *snap, const struct hk_snapshot *old,
			enum hk_key_type key, bool cumulative, size_t count,
			struct hk_source *src);

/* The pieces of an entry, for other reports of the same groups (the
 * time series, timeseries.h); each a new reference, NULL when out of
 * memory.  A JSON string of s as Python holds it (lone surrogates
 * included, as hk_report_dumps writes them); the "code" of frame f, its
 * source line stripped ("" without src); Traceback.format() of tb, the
 * "traceback" lines, oldest frame first. */
json_t *hk_report_str(const char *s);
json_t *hk_report_code(struct hk_source *src, const struct hk_frame *f);
json_t *hk_report_traceback(const struct hk_traceback *tb, struct hk_source *src);

/* Exactly the bytes of Python's json.dumps(report, indent=2) (default
 * ensure_ascii: lower-case \u escapes, DEL escaped too); malloc'ed, NULL
 * when out of memory. */
char *hk_report_dumps(const json_t *report);

/* hk_report_dumps() plus "\n" to f; 0 or -1 (errno set). */
int hk_report_write(FILE *f, const json_t *report);

#endif

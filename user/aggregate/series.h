/* Time series of tracemalloc statistics (--interval).
 *
 * A window's snapshots, one point each: at every point, each owner (a
 * traced process, or 0 for the one process or a merged set) adds its
 * snapshot, which is grouped as Snapshot.statistics(key, cumulative)
 * groups it (stats.h); the set keeps, for every group of every owner,
 * its size and count at each point, and each owner's total.
 *
 * An owner that was not added at a point has no value there (it was not
 * traced then: not yet started, or gone); a group its owner added no
 * block of at a point holds 0 there.  Values are kept only where they are
 * not 0, so memory grows with the groups alive at each point, not with
 * every group ever seen times the points.
 *
 * The ranking the writers use (user/render/timeseries.h): the series
 * holding the most at the last point where their owner was added, as
 * tracemalloc orders statistics (size, then count; ties by owner, then
 * in the order of that snapshot's statistics). */
#ifndef HAWK_SERIES_H
#define HAWK_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "stats.h"

/* One group of one owner over time.  tb is the group's key, a copy the
 * set owns (most recent frame first; one frame for 'lineno'). */
struct hk_series {
	uint32_t owner;
	struct hk_traceback tb;
	struct hk_series_priv *p;
};

struct hk_series_set;

/* NULL when out of memory. */
struct hk_series_set *hk_series_new(enum hk_key_type key, bool cumulative);
void hk_series_free(struct hk_series_set *s);

/* Begins the next point, t seconds into the window (t never less than
 * the previous point's).  0, or -ENOMEM, or -EINVAL (t went back). */
int hk_series_point(struct hk_series_set *s, double t);

/* What owner holds at the current point: snap's statistics and total
 * (sampled blocks weighed by 1/p, as stats.h weighs them).  Once per
 * owner and point.  0, or -ENOMEM, or -EINVAL (no point yet, the owner
 * was already added at this one, or cumulative with 'traceback'). */
int hk_series_add(struct hk_series_set *s, uint32_t owner,
		  const struct hk_snapshot *snap);

size_t hk_series_npoints(const struct hk_series_set *s);
double hk_series_time(const struct hk_series_set *s, size_t point);
enum hk_key_type hk_series_key(const struct hk_series_set *s);

/* owner's total at point (every block it held): false when it was not
 * added then. */
bool hk_series_total(const struct hk_series_set *s, uint32_t owner,
		     size_t point, uint64_t *size, uint64_t *count);
/* The sum of the totals of every owner added at point. */
void hk_series_sum(const struct hk_series_set *s, size_t point,
		   uint64_t *size, uint64_t *count);

/* x's size and count at point: false when its owner was not added then. */
bool hk_series_at(const struct hk_series_set *s, const struct hk_series *x,
		  size_t point, uint64_t *size, int64_t *count);

/* The first n series of the ranking above into out (room for n), how
 * many in *nout: only series holding something (a block, or bytes) at
 * their owner's last point.  0, or -ENOMEM. */
int hk_series_top(const struct hk_series_set *s, size_t n,
		  const struct hk_series **out, size_t *nout);

/* How many series the set holds, ranked or not. */
size_t hk_series_count(const struct hk_series_set *s);

#endif

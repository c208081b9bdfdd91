/* Time series of tracemalloc statistics (see series.h). */
#include "series.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "u64map.h"

/* A series' value at one point; points where it held nothing have none. */
struct val {
	uint32_t point;
	uint64_t size;
	int64_t count;
};

struct hk_series_priv {
	struct val *v;		/* by point, ascending */
	size_t n, cap;
	uint32_t rank;		/* its place in the statistics it was last in */
	struct hk_series *next;	/* the next series of the same hash */
};

/* A series, its private part and its key's frames and strings, in one
 * allocation. */
struct node {
	struct hk_series pub;
	struct hk_series_priv priv;
	struct hk_frame frames[];
};

/* Who added snapshots: its totals from its first point on. */
struct owner {
	uint32_t id;
	size_t first, last;	/* the first and last points it was added at */
	size_t n, cap;		/* entries from first on */
	uint64_t *size, *count;
	bool *present;
};

struct hk_series_set {
	enum hk_key_type key;
	bool cumulative;
	double *times;
	size_t npoints, captimes;
	struct owner **owners;
	size_t nowners, capowners;
	struct hk_u64map owner_of;	/* id + 1 -> owner */
	struct hk_u64map by_hash;	/* key hash -> first series of it */
	struct node **all;
	size_t nall, capall;
};

/* Grows *v (of *cap elements of size sz) to hold at least need. */
static int grow(void **v, size_t *cap, size_t need, size_t sz)
{
	size_t c = *cap ? *cap : 8;
	void *nv;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	nv = realloc(*v, c * sz);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = c;
	return 0;
}

struct hk_series_set *hk_series_new(enum hk_key_type key, bool cumulative)
{
	struct hk_series_set *s = calloc(1, sizeof(*s));

	if (s) {
		s->key = key;
		s->cumulative = cumulative;
	}
	return s;
}

void hk_series_free(struct hk_series_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nall; i++) {
		free(s->all[i]->priv.v);
		free(s->all[i]);
	}
	for (size_t i = 0; i < s->nowners; i++) {
		free(s->owners[i]->size);
		free(s->owners[i]->count);
		free(s->owners[i]->present);
		free(s->owners[i]);
	}
	free(s->all);
	free(s->owners);
	free(s->times);
	hk_u64map_free(&s->owner_of);
	hk_u64map_free(&s->by_hash);
	free(s);
}

int hk_series_point(struct hk_series_set *s, double t)
{
	if (s->npoints && t < s->times[s->npoints - 1])
		return -EINVAL;
	if (s->npoints >= UINT32_MAX ||
	    grow((void **)&s->times, &s->captimes, s->npoints + 1, sizeof(*s->times)))
		return -ENOMEM;
	s->times[s->npoints++] = t;
	return 0;
}

size_t hk_series_npoints(const struct hk_series_set *s)
{
	return s->npoints;
}

double hk_series_time(const struct hk_series_set *s, size_t point)
{
	return point < s->npoints ? s->times[point] : NAN;
}

enum hk_key_type hk_series_key(const struct hk_series_set *s)
{
	return s->key;
}

size_t hk_series_count(const struct hk_series_set *s)
{
	return s->nall;
}

/* ---- owners ------------------------------------------------------------- */

static struct owner *owner_get(const struct hk_series_set *s, uint32_t id)
{
	return hk_u64map_get(&s->owner_of, (uint64_t)id + 1);
}

static struct owner *owner_make(struct hk_series_set *s, uint32_t id)
{
	struct owner *w = owner_get(s, id);

	if (w)
		return w;
	if (grow((void **)&s->owners, &s->capowners, s->nowners + 1, sizeof(*s->owners)) ||
	    !(w = calloc(1, sizeof(*w))))
		return NULL;
	w->id = id;
	w->first = s->npoints - 1;
	if (hk_u64map_put(&s->owner_of, (uint64_t)id + 1, w)) {
		free(w);
		return NULL;
	}
	s->owners[s->nowners++] = w;
	return w;
}

static bool owner_present(const struct owner *w, size_t point)
{
	return w && point >= w->first && point - w->first < w->n &&
	       w->present[point - w->first];
}

/* Marks w added at point with its total; the points skipped since its
 * last one stay absent. */
static int owner_mark(struct owner *w, size_t point, uint64_t size, uint64_t count)
{
	size_t i = point - w->first;

	if (i >= w->cap) {
		size_t c = w->cap ? 2 * w->cap : 8;
		uint64_t *ns, *nc;
		bool *np;

		while (c <= i)
			c *= 2;
		/* each kept as soon as it is moved: freed with w either way */
		if (!(ns = realloc(w->size, c * sizeof(*ns))))
			return -ENOMEM;
		w->size = ns;
		if (!(nc = realloc(w->count, c * sizeof(*nc))))
			return -ENOMEM;
		w->count = nc;
		if (!(np = realloc(w->present, c * sizeof(*np))))
			return -ENOMEM;
		w->present = np;
		w->cap = c;
	}
	for (; w->n <= i; w->n++)
		w->present[w->n] = false;
	w->size[i] = size;
	w->count[i] = count;
	w->present[i] = true;
	w->last = point;
	return 0;
}

bool hk_series_total(const struct hk_series_set *s, uint32_t owner,
		     size_t point, uint64_t *size, uint64_t *count)
{
	const struct owner *w = owner_get(s, owner);

	if (!owner_present(w, point))
		return false;
	*size = w->size[point - w->first];
	*count = w->count[point - w->first];
	return true;
}

void hk_series_sum(const struct hk_series_set *s, size_t point,
		   uint64_t *size, uint64_t *count)
{
	*size = *count = 0;
	for (size_t i = 0; i < s->nowners; i++) {
		const struct owner *w = s->owners[i];

		if (owner_present(w, point)) {
			*size += w->size[point - w->first];
			*count += w->count[point - w->first];
		}
	}
}

/* ---- series ------------------------------------------------------------- */

/* FNV-1a over the owner and the frames' (filename, lineno): a group's
 * identity in tracemalloc. Never 0 (u64map's empty key). */
static uint64_t key_hash(uint32_t owner, const struct hk_traceback *tb)
{
	uint64_t h = 0xcbf29ce484222325ULL;

#define MIX(b) (h = (h ^ (uint8_t)(b)) * 0x100000001b3ULL)
	for (int i = 0; i < 4; i++)
		MIX(owner >> (8 * i));
	for (uint32_t f = 0; f < tb->nframe; f++) {
		for (const char *c = tb->frames[f].filename; *c; c++)
			MIX(*c);
		MIX(0);
		for (int i = 0; i < 4; i++)
			MIX(tb->frames[f].lineno >> (8 * i));
	}
#undef MIX
	return h ? h : 1;
}

static bool same_key(const struct hk_series *x, uint32_t owner,
		     const struct hk_traceback *tb)
{
	if (x->owner != owner || x->tb.nframe != tb->nframe)
		return false;
	for (uint32_t f = 0; f < tb->nframe; f++)
		if (x->tb.frames[f].lineno != tb->frames[f].lineno ||
		    strcmp(x->tb.frames[f].filename, tb->frames[f].filename))
			return false;
	return true;
}

/* A copy of the key (frames and filenames) in the node itself. */
static struct node *node_new(uint32_t owner, const struct hk_traceback *tb)
{
	size_t strings = 0, at;
	struct node *n;
	char *c;

	for (uint32_t f = 0; f < tb->nframe; f++)
		strings += strlen(tb->frames[f].filename) + 1;
	at = sizeof(*n) + tb->nframe * sizeof(n->frames[0]);
	n = calloc(1, at + strings);
	if (!n)
		return NULL;
	c = (char *)n + at;
	for (uint32_t f = 0; f < tb->nframe; f++) {
		size_t len = strlen(tb->frames[f].filename) + 1;

		memcpy(c, tb->frames[f].filename, len);
		n->frames[f] = (struct hk_frame){ .filename = c, .function = "",
						  .lineno = tb->frames[f].lineno };
		c += len;
	}
	n->pub = (struct hk_series){ .owner = owner, .p = &n->priv,
		.tb = { .nframe = tb->nframe, .total_nframe = tb->nframe,
			.frames = n->frames } };
	return n;
}

static struct hk_series *series_get(struct hk_series_set *s, uint32_t owner,
				    const struct hk_traceback *tb)
{
	uint64_t h = key_hash(owner, tb);
	struct hk_series *head = hk_u64map_get(&s->by_hash, h), *x;
	struct node *n;

	for (x = head; x; x = x->p->next)
		if (same_key(x, owner, tb))
			return x;
	if (grow((void **)&s->all, &s->capall, s->nall + 1, sizeof(*s->all)) ||
	    !(n = node_new(owner, tb)))
		return NULL;
	n->priv.next = head;
	if (hk_u64map_put(&s->by_hash, h, &n->pub)) {
		free(n);
		return NULL;
	}
	s->all[s->nall++] = n;
	return &n->pub;
}

static uint64_t clamp64(hk_u128 v)
{
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

int hk_series_add(struct hk_series_set *s, uint32_t owner,
		  const struct hk_snapshot *snap)
{
	size_t point = s->npoints - 1;
	struct hk_stats *st;
	struct owner *w;
	double count = 0;
	int err;

	if (!s->npoints || owner_present(owner_get(s, owner), point))
		return -EINVAL;
	err = hk_statistics(snap, s->key, s->cumulative, &st);
	if (err)
		return err;
	for (size_t i = 0; i < snap->ntraces; i++)
		count += snap->traces[i].weight > 0 ? snap->traces[i].weight : 1;
	w = owner_make(s, owner);
	err = !w || owner_mark(w, point, clamp64(hk_snapshot_total(snap)),
			       (uint64_t)llround(count)) ? -ENOMEM : 0;
	for (size_t i = 0; i < st->n && !err; i++) {
		const struct hk_stat *a = &st->stats[i];
		struct hk_series *x = series_get(s, owner, &a->tb);
		struct hk_series_priv *p = x ? x->p : NULL;

		if (!p || grow((void **)&p->v, &p->cap, p->n + 1, sizeof(*p->v))) {
			err = -ENOMEM;
			break;
		}
		p->v[p->n++] = (struct val){ (uint32_t)point, clamp64(a->size), a->count };
		p->rank = (uint32_t)i;
	}
	hk_stats_free(st);
	return err;
}

bool hk_series_at(const struct hk_series_set *s, const struct hk_series *x,
		  size_t point, uint64_t *size, int64_t *count)
{
	const struct hk_series_priv *p = x->p;
	size_t lo = 0, hi = p->n;

	if (!owner_present(owner_get(s, x->owner), point))
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->v[mid].point < point)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->n && p->v[lo].point == point) {
		*size = p->v[lo].size;
		*count = p->v[lo].count;
	} else {
		*size = 0;
		*count = 0;
	}
	return true;
}

/* ---- ranking ------------------------------------------------------------ */

struct ranked {
	const struct hk_series *x;
	uint64_t size;
	int64_t count;
};

static int by_last(const void *a, const void *b)
{
	const struct ranked *p = a, *q = b;

	if (p->size != q->size)
		return p->size > q->size ? -1 : 1;
	if (p->count != q->count)
		return p->count > q->count ? -1 : 1;
	if (p->x->owner != q->x->owner)
		return p->x->owner < q->x->owner ? -1 : 1;
	return (p->x->p->rank > q->x->p->rank) - (p->x->p->rank < q->x->p->rank);
}

int hk_series_top(const struct hk_series_set *s, size_t n,
		  const struct hk_series **out, size_t *nout)
{
	struct ranked *r = malloc((s->nall + 1) * sizeof(*r));
	size_t k = 0;

	*nout = 0;
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < s->nall; i++) {
		const struct hk_series *x = &s->all[i]->pub;
		const struct owner *w = owner_get(s, x->owner);
		struct ranked e = { .x = x };

		if (w && hk_series_at(s, x, w->last, &e.size, &e.count) &&
		    (e.size || e.count))
			r[k++] = e;
	}
	qsort(r, k, sizeof(*r), by_last);
	if (k > n)
		k = n;
	for (size_t i = 0; i < k; i++)
		out[i] = r[i].x;
	free(r);
	*nout = k;
	return 0;
}

/* Snapshot.statistics() / compare_to(), mirroring Lib/tracemalloc.py.
 *
 * Filenames are interned to small ids (first by pointer, since producers
 * intern them, then by content), so grouping keys are short arrays of
 * (filename id, lineno) pairs kept in open-addressing hash tables: linear
 * in the number of frames.  Sorting compares filenames through a rank
 * table built once with strcmp, which orders UTF-8 like Python orders str.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "format.h"
#include "stats.h"

/* ---- filename interning ------------------------------------------------ */

struct pslot {
	const char *p;
	uint32_t id;
};

struct strtab {
	struct pslot *pslots;	/* pointer -> id cache */
	size_t pcap, pn;
	uint32_t *cslots;	/* id + 1 by content hash; 0 = empty */
	size_t ccap;
	char **names;		/* id -> owned copy */
	uint64_t *hashes;
	size_t n, cap;
};

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return mix64(h);
}

static int strtab_grow_content(struct strtab *st)
{
	size_t ncap = st->ccap ? st->ccap * 2 : 64;
	uint32_t *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t id = 0; id < st->n; id++) {
		size_t i = st->hashes[id] & (ncap - 1);

		while (ns[i])
			i = (i + 1) & (ncap - 1);
		ns[i] = id + 1;
	}
	free(st->cslots);
	st->cslots = ns;
	st->ccap = ncap;
	return 0;
}

static int strtab_by_content(struct strtab *st, const char *s, uint32_t *id)
{
	uint64_t h = str_hash(s);

	if ((st->n + 1) * 2 > st->ccap && strtab_grow_content(st))
		return -ENOMEM;
	size_t i = h & (st->ccap - 1);
	for (; st->cslots[i]; i = (i + 1) & (st->ccap - 1)) {
		uint32_t k = st->cslots[i] - 1;

		if (st->hashes[k] == h && strcmp(st->names[k], s) == 0) {
			*id = k;
			return 0;
		}
	}
	if (st->n == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 32;
		char **nn = realloc(st->names, ncap * sizeof(*nn));

		if (!nn)
			return -ENOMEM;
		st->names = nn;
		uint64_t *nh = realloc(st->hashes, ncap * sizeof(*nh));
		if (!nh)
			return -ENOMEM;
		st->hashes = nh;
		st->cap = ncap;
	}
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	st->names[st->n] = copy;
	st->hashes[st->n] = h;
	st->cslots[i] = st->n + 1;
	*id = st->n++;
	return 0;
}

static size_t ptr_slot(const char *p, size_t cap)
{
	return mix64((uint64_t)(uintptr_t)p) & (cap - 1);
}

static int strtab_grow_ptr(struct strtab *st)
{
	size_t ncap = st->pcap ? st->pcap * 2 : 256;
	struct pslot *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t j = 0; j < st->pcap; j++) {
		if (!st->pslots[j].p)
			continue;
		size_t i = ptr_slot(st->pslots[j].p, ncap);
		while (ns[i].p)
			i = (i + 1) & (ncap - 1);
		ns[i] = st->pslots[j];
	}
	free(st->pslots);
	st->pslots = ns;
	st->pcap = ncap;
	return 0;
}

static int strtab_id(struct strtab *st, const char *s, uint32_t *id)
{
	if ((st->pn + 1) * 2 > st->pcap && strtab_grow_ptr(st))
		return -ENOMEM;
	size_t i = ptr_slot(s, st->pcap);
	for (; st->pslots[i].p; i = (i + 1) & (st->pcap - 1)) {
		if (st->pslots[i].p == s) {
			*id = st->pslots[i].id;
			return 0;
		}
	}
	int err = strtab_by_content(st, s, id);
	if (err)
		return err;
	st->pslots[i].p = s;
	st->pslots[i].id = *id;
	st->pn++;
	return 0;
}

static void strtab_free(struct strtab *st, bool names_too)
{
	if (names_too) {
		for (size_t i = 0; i < st->n; i++)
			free(st->names[i]);
		free(st->names);
	}
	free(st->pslots);
	free(st->cslots);
	free(st->hashes);
}

/* ---- groups: key -> (size, count) --------------------------------------- */

/* A key is nframe pairs (filename id, lineno), most recent frame first. */
struct group {
	uint64_t hash;
	size_t off;		/* into gtab.keys, in uint32 units */
	uint32_t len;		/* frames */
	bool matched;		/* compare_to: found in the new snapshot */
	hk_u128 size;
	int64_t count;
	double wsize, wcount;	/* sampled traces, rounded in at the end */
};

struct gtab {
	struct group *g;
	size_t n, cap;
	uint64_t *slots;	/* hash >> 32 << 32 | group index + 1; 0 = empty */
	size_t scap;
	uint32_t *keys;
	size_t nkeys, keycap;
};

static uint64_t key_hash(const uint32_t *key, uint32_t len)
{
	uint64_t h = len;

	for (uint32_t i = 0; i < 2 * len; i++)
		h = (h ^ key[i]) * 0x9E3779B97F4A7C15ULL + (h >> 29);
	return mix64(h);
}

/* The high hash bits in the slot spare most probes a trip to gt->g. */
static uint64_t slot_val(uint64_t h, size_t idx)
{
	return (h & 0xFFFFFFFF00000000ULL) | (idx + 1);
}

static int gtab_grow_slots(struct gtab *gt)
{
	size_t ncap = gt->scap ? gt->scap * 2 : 64;
	uint64_t *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t k = 0; k < gt->n; k++) {
		size_t i = gt->g[k].hash & (ncap - 1);

		while (ns[i])
			i = (i + 1) & (ncap - 1);
		ns[i] = slot_val(gt->g[k].hash, k);
	}
	free(gt->slots);
	gt->slots = ns;
	gt->scap = ncap;
	return 0;
}

/* Index of the group with this key, or -1. *slot: where to insert it. */
static ssize_t gtab_find(const struct gtab *gt, const uint32_t *key, uint32_t len,
			 uint64_t h, size_t *slot)
{
	size_t i = h & (gt->scap - 1);
	uint64_t tag = h & 0xFFFFFFFF00000000ULL;

	for (; gt->slots[i]; i = (i + 1) & (gt->scap - 1)) {
		if ((gt->slots[i] & 0xFFFFFFFF00000000ULL) != tag)
			continue;
		size_t k = (gt->slots[i] & 0xFFFFFFFFu) - 1;
		const struct group *g = &gt->g[k];

		if (g->hash == h && g->len == len &&
		    memcmp(gt->keys + g->off, key, 2 * len * sizeof(*key)) == 0)
			return (ssize_t)k;
	}
	if (slot)
		*slot = i;
	return -1;
}

/* The group of this key, created empty if new; *idx gets its index. */
static int gtab_intern(struct gtab *gt, const uint32_t *key, uint32_t len, uint32_t *idx)
{
	if ((gt->n + 1) * 2 > gt->scap && gtab_grow_slots(gt))
		return -ENOMEM;

	uint64_t h = key_hash(key, len);
	size_t slot;
	ssize_t k = gtab_find(gt, key, len, h, &slot);
	if (k >= 0) {
		*idx = (uint32_t)k;
		return 0;
	}
	if (gt->n == gt->cap) {
		size_t ncap = gt->cap ? gt->cap * 2 : 64;
		struct group *ng = realloc(gt->g, ncap * sizeof(*ng));

		if (!ng)
			return -ENOMEM;
		gt->g = ng;
		gt->cap = ncap;
	}
	if (gt->nkeys + 2 * len > gt->keycap) {
		size_t ncap = gt->keycap ? gt->keycap * 2 : 256;

		while (ncap < gt->nkeys + 2 * len)
			ncap *= 2;
		uint32_t *nk = realloc(gt->keys, ncap * sizeof(*nk));
		if (!nk)
			return -ENOMEM;
		gt->keys = nk;
		gt->keycap = ncap;
	}
	memcpy(gt->keys + gt->nkeys, key, 2 * len * sizeof(*key));
	gt->g[gt->n] = (struct group){ .hash = h, .off = gt->nkeys, .len = len };
	gt->nkeys += 2 * len;
	*idx = (uint32_t)gt->n;
	gt->slots[slot] = slot_val(h, gt->n++);
	return 0;
}

static void gtab_free(struct gtab *gt)
{
	free(gt->g);
	free(gt->slots);
	free(gt->keys);
}

/* The traces of each distinct traceback (by pointer: producers share
 * them), summed: every trace of one traceback adds to the same groups, so
 * a traceback's groups are found and added to once, not once per trace
 * (10^5 traces of one 10^5-frame traceback, cumulative, were 10^10 adds). */
struct tbsum {
	const struct hk_traceback *tb;
	hk_u128 size;
	int64_t count;
	double wsize, wcount;	/* sampled traces */
};

struct tbsums {
	size_t *slots;		/* index + 1 into v; 0 = empty */
	size_t cap;
	struct tbsum *v;
	size_t n, vcap;
};

static size_t tb_slot(const struct hk_traceback *tb, size_t cap)
{
	return mix64((uint64_t)(uintptr_t)tb) & (cap - 1);
}

static int tbsums_grow(struct tbsums *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 1024;
	size_t *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t k = 0; k < m->n; k++) {
		size_t i = tb_slot(m->v[k].tb, ncap);

		while (ns[i])
			i = (i + 1) & (ncap - 1);
		ns[i] = k + 1;
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

/* The sum of tb's traces, created empty if new; NULL when out of memory. */
static struct tbsum *tbsums_get(struct tbsums *m, const struct hk_traceback *tb)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap && tbsums_grow(m))
		return NULL;
	for (i = tb_slot(tb, m->cap); m->slots[i]; i = (i + 1) & (m->cap - 1))
		if (m->v[m->slots[i] - 1].tb == tb)
			return &m->v[m->slots[i] - 1];
	if (m->n == m->vcap) {
		size_t ncap = m->vcap ? m->vcap * 2 : 1024;
		struct tbsum *nv = realloc(m->v, ncap * sizeof(*nv));

		if (!nv)
			return NULL;
		m->v = nv;
		m->vcap = ncap;
	}
	m->v[m->n] = (struct tbsum){ .tb = tb };
	m->slots[i] = ++m->n;
	return &m->v[m->n - 1];
}

/* Groups of one traceback, computed: one key per trace, or per frame when
 * cumulative.  idx gets the group indices. */
static int tb_groups(const struct hk_frame *frames, uint32_t nf, enum hk_key_type key,
		     bool cumulative, struct strtab *st, struct gtab *gt,
		     uint32_t *kbuf, uint32_t *idx)
{
	uint32_t n = cumulative ? 1 : key == HK_KEY_TRACEBACK ? nf : 1;
	uint32_t rounds = cumulative ? nf : 1;

	for (uint32_t r = 0; r < rounds; r++) {
		for (uint32_t i = 0; i < n; i++) {
			const struct hk_frame *f = &frames[r + i];

			if (strtab_id(st, f->filename, &kbuf[2 * i]))
				return -ENOMEM;
			kbuf[2 * i + 1] = key == HK_KEY_FILENAME ? 0 : f->lineno;
		}
		if (gtab_intern(gt, kbuf, n, &idx[r]))
			return -ENOMEM;
	}
	return 0;
}

/* Snapshot._group_by(key_type, cumulative): each trace adds its size and
 * 1 to its group, or when cumulative to the group of every frame, a frame
 * that repeats (recursion) once per occurrence.  Summed per traceback
 * first; integers add up the same in any order. */
static int group_by(const struct hk_snapshot *snap, enum hk_key_type key,
		    bool cumulative, struct strtab *st, struct gtab *gt)
{
	/* what _tracemalloc records for a frameless allocation */
	static const struct hk_frame unknown = { .filename = "<unknown>", .function = "" };
	static const struct hk_traceback unknown_tb = { 1, 1, &unknown };
	struct tbsums m = { 0 };
	uint32_t *kbuf = NULL, *idx = NULL;
	size_t kcap = 0;
	int err = -ENOMEM;

	if (gtab_grow_slots(gt))
		goto out;
	for (size_t t = 0; t < snap->ntraces; t++) {
		const struct hk_trace *tr = &snap->traces[t];
		struct tbsum *s = tbsums_get(&m, tr->tb && tr->tb->nframe ? tr->tb
									  : &unknown_tb);

		if (!s)
			goto out;
		if (tr->weight > 0) {
			s->wsize += (double)tr->size * tr->weight;
			s->wcount += tr->weight;
		} else {
			s->size += tr->size;
			s->count++;
		}
	}
	for (size_t k = 0; k < m.n; k++) {
		const struct tbsum *s = &m.v[k];
		const struct hk_traceback *tb = s->tb;
		uint32_t nidx = cumulative ? tb->nframe : 1;

		if (2 * (size_t)tb->nframe > kcap) {
			kcap = 2 * (size_t)tb->nframe;
			uint32_t *nk = realloc(kbuf, kcap * sizeof(*nk));
			if (!nk)
				goto out;
			kbuf = nk;
			nk = realloc(idx, kcap * sizeof(*nk));
			if (!nk)
				goto out;
			idx = nk;
		}
		if (tb_groups(tb->frames, tb->nframe, key, cumulative, st, gt, kbuf, idx))
			goto out;
		for (uint32_t i = 0; i < nidx; i++) {
			struct group *g = &gt->g[idx[i]];

			g->size += s->size;
			g->count += s->count;
			g->wsize += s->wsize;
			g->wcount += s->wcount;
		}
	}
	for (size_t i = 0; i < gt->n; i++) {
		gt->g[i].size += (hk_u128)llround(gt->g[i].wsize);
		gt->g[i].count += llround(gt->g[i].wcount);
	}
	err = 0;
out:
	free(kbuf);
	free(idx);
	free(m.slots);
	free(m.v);
	return err;
}

/* ---- sorting ------------------------------------------------------------ */

struct sref {
	const uint32_t *key;
	uint32_t len;
	hk_u128 size;
	int64_t count;
	hk_i128 size_diff;
	int64_t count_diff;
};

#define CMP(a, b) (((a) > (b)) - ((a) < (b)))

static int64_t abs64(int64_t v)
{
	return v < 0 ? -v : v;
}

static hk_i128 abs128(hk_i128 v)
{
	return v < 0 ? -v : v;
}

/* Traceback ordering: tuples of (filename, lineno), oldest frame first. */
static int tb_cmp(const struct sref *a, const struct sref *b, const uint32_t *rank)
{
	uint32_t n = a->len < b->len ? a->len : b->len;

	for (uint32_t i = 0; i < n; i++) {
		const uint32_t *fa = a->key + 2 * (a->len - 1 - i);
		const uint32_t *fb = b->key + 2 * (b->len - 1 - i);
		int c = CMP(rank[fa[0]], rank[fb[0]]);

		if (!c)
			c = CMP(fa[1], fb[1]);
		if (c)
			return c;
	}
	return CMP(a->len, b->len);
}

/* Statistic._sort_key, reverse=True */
static int stat_cmp(const void *pa, const void *pb, void *rank)
{
	const struct sref *a = pa, *b = pb;
	int c = CMP(b->size, a->size);

	if (!c)
		c = CMP(b->count, a->count);
	return c ? c : tb_cmp(b, a, rank);
}

/* StatisticDiff._sort_key, reverse=True */
static int diff_cmp(const void *pa, const void *pb, void *rank)
{
	const struct sref *a = pa, *b = pb;
	int c = CMP(abs128(b->size_diff), abs128(a->size_diff));

	if (!c)
		c = CMP(b->size, a->size);
	if (!c)
		c = CMP(abs64(b->count_diff), abs64(a->count_diff));
	if (!c)
		c = CMP(b->count, a->count);
	return c ? c : tb_cmp(b, a, rank);
}

static int cmp_name(const void *a, const void *b, void *names)
{
	char **nm = names;

	return strcmp(nm[*(const uint32_t *)a], nm[*(const uint32_t *)b]);
}

/* ---- result ------------------------------------------------------------- */

struct priv {
	char **names;
	size_t nnames;
	struct hk_frame *frames;
};

/* Sort refs and copy them into a self-contained hk_stats; takes the names. */
static int build(struct sref *refs, size_t n, bool diff, struct strtab *st,
		 struct hk_stats **out)
{
	uint32_t *order = malloc((st->n + 1) * sizeof(*order));
	uint32_t *rank = malloc((st->n + 1) * sizeof(*rank));
	struct hk_stats *res = calloc(1, sizeof(*res));
	struct priv *pv = calloc(1, sizeof(*pv));
	size_t nframes = 0;
	int err = -ENOMEM;

	if (!order || !rank || !res || !pv)
		goto fail;
	for (uint32_t i = 0; i < st->n; i++)
		order[i] = i;
	qsort_r(order, st->n, sizeof(*order), cmp_name, st->names);
	for (uint32_t i = 0; i < st->n; i++)
		rank[order[i]] = i;
	qsort_r(refs, n, sizeof(*refs), diff ? diff_cmp : stat_cmp, rank);

	for (size_t i = 0; i < n; i++)
		nframes += refs[i].len;
	res->stats = calloc(n + 1, sizeof(*res->stats));
	pv->frames = calloc(nframes + 1, sizeof(*pv->frames));
	if (!res->stats || !pv->frames)
		goto fail;

	struct hk_frame *f = pv->frames;
	for (size_t i = 0; i < n; i++) {
		struct hk_stat *s = &res->stats[i];

		s->tb = (struct hk_traceback){ refs[i].len, refs[i].len, f };
		for (uint32_t j = 0; j < refs[i].len; j++, f++) {
			f->filename = st->names[refs[i].key[2 * j]];
			f->function = "";	/* not part of a group's key */
			f->lineno = refs[i].key[2 * j + 1];
		}
		s->size = refs[i].size;
		s->count = refs[i].count;
		s->size_diff = refs[i].size_diff;
		s->count_diff = refs[i].count_diff;
	}
	res->n = n;
	res->diff = diff;
	pv->names = st->names;
	pv->nnames = st->n;
	st->names = NULL;
	st->n = 0;
	res->priv = pv;
	*out = res;
	err = 0;
	pv = NULL;
	res = NULL;
fail:
	free(order);
	free(rank);
	if (pv)
		free(pv->frames);
	free(pv);
	if (res)
		free(res->stats);
	free(res);
	return err;
}

static int check_key(enum hk_key_type key, bool cumulative)
{
	if (key != HK_KEY_FILENAME && key != HK_KEY_LINENO && key != HK_KEY_TRACEBACK)
		return -EINVAL;
	if (cumulative && key == HK_KEY_TRACEBACK)
		return -EINVAL;	/* tracemalloc: ValueError */
	return 0;
}

int hk_statistics(const struct hk_snapshot *snap, enum hk_key_type key,
		  bool cumulative, struct hk_stats **out)
{
	struct strtab st = { 0 };
	struct gtab gt = { 0 };
	struct sref *refs = NULL;
	int err = check_key(key, cumulative);

	if (!err)
		err = group_by(snap, key, cumulative, &st, &gt);
	if (!err && !(refs = calloc(gt.n + 1, sizeof(*refs))))
		err = -ENOMEM;
	if (!err) {
		for (size_t i = 0; i < gt.n; i++) {
			const struct group *g = &gt.g[i];

			refs[i] = (struct sref){ gt.keys + g->off, g->len, g->size,
						 g->count, g->size, g->count };
		}
		err = build(refs, gt.n, false, &st, out);
	}
	free(refs);
	gtab_free(&gt);
	strtab_free(&st, true);
	return err;
}

int hk_compare_to(const struct hk_snapshot *snap, const struct hk_snapshot *old,
		  enum hk_key_type key, bool cumulative, struct hk_stats **out)
{
	struct strtab st = { 0 };	/* shared: equal keys, equal ids */
	struct gtab ng = { 0 }, og = { 0 };
	struct sref *refs = NULL;
	size_t n = 0;
	int err = check_key(key, cumulative);

	if (!err)
		err = group_by(snap, key, cumulative, &st, &ng);
	if (!err)
		err = group_by(old, key, cumulative, &st, &og);
	if (!err && !(refs = calloc(ng.n + og.n + 1, sizeof(*refs))))
		err = -ENOMEM;
	if (err)
		goto out;
	/* _compare_grouped_stats */
	for (size_t i = 0; i < ng.n; i++) {
		const struct group *g = &ng.g[i];
		const uint32_t *gkey = ng.keys + g->off;
		ssize_t k = gtab_find(&og, gkey, g->len, g->hash, NULL);
		hk_u128 osize = 0;
		int64_t ocount = 0;

		if (k >= 0) {
			og.g[k].matched = true;
			osize = og.g[k].size;
			ocount = og.g[k].count;
		}
		refs[n++] = (struct sref){ gkey, g->len, g->size, g->count,
					   (hk_i128)g->size - (hk_i128)osize,
					   g->count - ocount };
	}
	for (size_t i = 0; i < og.n; i++) {
		const struct group *g = &og.g[i];

		if (!g->matched)
			refs[n++] = (struct sref){ og.keys + g->off, g->len, 0, 0,
						   -(hk_i128)g->size, -g->count };
	}
	err = build(refs, n, true, &st, out);
out:
	free(refs);
	gtab_free(&ng);
	gtab_free(&og);
	strtab_free(&st, true);
	return err;
}

void hk_stats_free(struct hk_stats *stats)
{
	if (!stats)
		return;
	struct priv *pv = stats->priv;
	if (pv) {
		for (size_t i = 0; i < pv->nnames; i++)
			free(pv->names[i]);
		free(pv->names);
		free(pv->frames);
		free(pv);
	}
	free(stats->stats);
	free(stats);
}

/* ---- str() -------------------------------------------------------------- */

int hk_stat_str(char *buf, size_t len, const struct hk_stat *s, bool diff)
{
	char size[HK_SIZE_BUFLEN], sdiff[HK_SIZE_BUFLEN], avg[HK_SIZE_BUFLEN + 16] = "";
	/* str(Traceback) is str(self[0]): the oldest frame */
	const struct hk_frame *f = &s->tb.frames[s->tb.nframe ? s->tb.nframe - 1 : 0];

	/* (double) of a 128-bit int rounds to nearest, as Python's float(int) */
	hk_format_size(size, sizeof(size), (double)s->size, false);
	if (s->count) {
		char a[HK_SIZE_BUFLEN];

		/* size / count: one correctly rounded division, as in Python */
		hk_format_size(a, sizeof(a), hk_size_ratio(s->size, (uint64_t)s->count),
			       false);
		snprintf(avg, sizeof(avg), ", average=%s", a);
	}
	if (!diff)
		return snprintf(buf, len, "%s:%u: size=%s, count=%" PRId64 "%s",
				f->filename, f->lineno, size, s->count, avg);
	hk_format_size(sdiff, sizeof(sdiff), (double)s->size_diff, true);
	return snprintf(buf, len, "%s:%u: size=%s (%s), count=%" PRId64 " (%+" PRId64 ")%s",
			f->filename, f->lineno, size, sdiff, s->count, s->count_diff, avg);
}

char *hk_stat_strdup(const struct hk_stat *stat, bool diff)
{
	int n = hk_stat_str(NULL, 0, stat, diff);
	char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;

	if (buf)
		hk_stat_str(buf, (size_t)n + 1, stat, diff);
	return buf;
}

hk_u128 hk_snapshot_total(const struct hk_snapshot *snap)
{
	hk_u128 total = 0;
	double wtotal = 0;

	for (size_t i = 0; i < snap->ntraces; i++) {
		if (snap->traces[i].weight > 0)
			wtotal += (double)snap->traces[i].size * snap->traces[i].weight;
		else
			total += snap->traces[i].size;
	}
	return total + (hk_u128)llround(wtotal);
}

int hk_key_type_parse(const char *name)
{
	if (!strcmp(name, "filename"))
		return HK_KEY_FILENAME;
	if (!strcmp(name, "lineno"))
		return HK_KEY_LINENO;
	if (!strcmp(name, "traceback"))
		return HK_KEY_TRACEBACK;
	return -1;
}

const char *hk_key_type_name(enum hk_key_type key)
{
	switch (key) {
	case HK_KEY_FILENAME: return "filename";
	case HK_KEY_LINENO: return "lineno";
	case HK_KEY_TRACEBACK: return "traceback";
	}
	return "?";
}

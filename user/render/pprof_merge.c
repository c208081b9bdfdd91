/* Merging pprof profiles (pprof.h, hk_pprof_merge).
 *
 * Inputs are read one at a time: gunzipped, unpacked by protobuf-c's
 * generated code, checked whole (every index and id), then mapped into
 * the merged tables and freed.  What stays is what deduplication keeps:
 * one copy of each distinct string, function, mapping and location, and
 * one entry per distinct (stack, labels) sample with its summed values.
 * The merged profile is then packed a part at a time, as pprof.c does.
 *
 * Entries are told apart by their contents in merged string indices, so
 * two inputs' "alloc" in "/app/work.py" are one function however each
 * input numbered its strings and ids.
 */
#include "pprof.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <zlib.h>

#include "pprof_internal.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Label Label;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;

size_t hk_pprof_merge_max = (size_t)1 << 30;

#define NONE UINT32_MAX		/* an input entry not mapped yet */

/* ---- the merged profile ------------------------------------------------- */

struct mfn {
	uint32_t name, sys, file;	/* merged string indices */
	int64_t start;
};

struct mmapping {
	uint64_t start, limit, offset;
	uint32_t file, build;
	uint8_t flags;			/* has_functions ... has_inline_frames */
};

struct mline {
	uint32_t fn;			/* merged function index */
	int64_t line;
};

struct mloc {
	uint32_t map;			/* merged mapping index + 1, 0: none */
	bool folded;
	uint64_t addr;
	size_t line, nline;		/* in merge.line */
};

struct mlabel {
	uint32_t key, str, unit;
	int64_t num;
};

struct msample {
	size_t loc, lab;		/* in merge.locs and merge.labs */
	uint32_t nloc, nlab;
};

/* An input's ids: entry i has id i + 1 (as most writers number them), or
 * a sorted table. */
struct ids {
	bool dense;
	size_t n;
	struct idpair {
		uint64_t id;
		size_t i;
	} *v;
};

struct merge {
	struct dedup sd, fd, md, ld, kd, cd;
	char **str;			/* the string table, copies */
	struct mfn *fn;
	struct mmapping *map;
	struct mloc *loc;
	struct mline *line;		/* locations' lines */
	struct msample *smp;
	uint32_t *locs;			/* samples' locations, leaf first */
	struct mlabel *labs;		/* samples' labels, by key */
	int64_t *val;			/* samples' values, ntypes each */
	uint32_t *com;			/* comments */
	size_t strcap, fncap, mapcap, loccap, linecap, smpcap, locscap, labscap,
	       valcap, comcap, nline, nlocs, nlabs;
	size_t ntypes;
	uint32_t *types;		/* type, unit, ...: input 1's */
	size_t period_from;		/* the input whose period_type it is, 0 */
	uint32_t period_type, period_unit, dflt, drop, keep;
	int64_t period, t0, t1, longest;
	bool timed;
	struct mlabel *extra;
	size_t nextra;

	/* The input being merged, 1-based, and its entries' merged indices. */
	size_t input;
	const Profile *in;
	uint32_t *smap, *fmap, *mmap, *lmap;
	struct ids fid, mid, lid;
	char *err;
	size_t errlen;
};

/* One line in err, prefixed with the input's number; -1 with errno e.
 * The input's strings it may quote (sample types) could hold anything:
 * control characters become '?', so that it stays one line. */
static int __attribute__((format(printf, 3, 4)))
fail(struct merge *m, int e, const char *fmt, ...)
{
	va_list ap;
	int k = 0;

	if (m->input)
		k = snprintf(m->err, m->errlen, "input %zu: ", m->input);
	if (k >= 0 && (size_t)k < m->errlen) {
		va_start(ap, fmt);
		vsnprintf(m->err + k, m->errlen - (size_t)k, fmt, ap);
		va_end(ap);
	}
	for (char *c = m->err; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	errno = e;
	return -1;
}

/* The failure of a table: out of memory, or 2^32 entries. */
static int fail_errno(struct merge *m)
{
	if (errno == EOVERFLOW)
		return fail(m, EOVERFLOW, "more than 2^32 - 2 distinct strings, functions, "
			    "mappings, locations or samples");
	return fail(m, ENOMEM, "out of memory");
}

struct str_key {
	const struct merge *m;
	const char *s;
};

static bool str_eq(const void *ctx, size_t i)
{
	const struct str_key *k = ctx;

	return !strcmp(k->m->str[i], k->s);
}

/* The merged index of s, copied in if new, or -1. */
static int64_t add_str(struct merge *m, const char *s)
{
	struct str_key k = { m, s };
	uint32_t h = str_hash(s);
	uint64_t *slot = dd_find(&m->sd, h, str_eq, &k);
	char *c;

	if (*slot)
		return (uint32_t)*slot - 1;
	if (ROOM(m->str, m->strcap, m->sd.n) || !(c = strdup(s)))
		return errno = ENOMEM, -1;
	m->str[m->sd.n] = c;
	return dd_add(&m->sd, slot, h);
}

/* The merged index of the input's string i (checked already), or -1. */
static int64_t map_str(struct merge *m, int64_t i)
{
	int64_t r;

	if (m->smap[i] != NONE)
		return m->smap[i];
	if ((r = add_str(m, m->in->string_table[i])) >= 0)
		m->smap[i] = (uint32_t)r;
	return r;
}

/* ---- an input's ids ----------------------------------------------------- */

static int idpair_cmp(const void *a, const void *b)
{
	const struct idpair *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* The ids of the n entries v, id() of each: 0, or -1 with err (an id 0,
 * or "two functions with id 5"). */
static int ids_make(struct merge *m, struct ids *d, void *const *v, size_t n,
		    uint64_t (*id)(const void *), const char *what)
{
	d->n = n;
	d->dense = true;
	for (size_t i = 0; i < n && d->dense; i++)
		d->dense = id(v[i]) == i + 1;
	if (d->dense)
		return 0;
	if (!(d->v = malloc((n + 1) * sizeof(*d->v))))
		return fail(m, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		d->v[i] = (struct idpair){ id(v[i]), i };
	qsort(d->v, n, sizeof(*d->v), idpair_cmp);
	if (n && !d->v[0].id)
		return fail(m, EINVAL, "malformed profile: a %s with id 0", what);
	for (size_t i = 1; i < n; i++)
		if (d->v[i].id == d->v[i - 1].id)
			return fail(m, EINVAL, "malformed profile: two %ss with id %" PRIu64,
				    what, d->v[i].id);
	return 0;
}

/* The index of the entry of id, or SIZE_MAX. */
static size_t ids_find(const struct ids *d, uint64_t id)
{
	size_t lo = 0, hi = d->n;

	if (d->dense)
		return id && id <= d->n ? (size_t)id - 1 : SIZE_MAX;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->v[mid].id == id)
			return d->v[mid].i;
		if (d->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

static uint64_t fn_id(const void *p) { return ((const Function *)p)->id; }
static uint64_t map_id(const void *p) { return ((const Mapping *)p)->id; }
static uint64_t loc_id(const void *p) { return ((const Location *)p)->id; }

/* ---- checking an input -------------------------------------------------- */

/* String index i of what, in range? */
static int check_str(struct merge *m, int64_t i, const char *what, size_t k)
{
	if (i >= 0 && (uint64_t)i < m->in->n_string_table)
		return 0;
	return fail(m, EINVAL, "malformed profile: %s %zu: string %" PRId64 " of a table of %zu",
		    what, k, i, m->in->n_string_table);
}

/* Every index and id of the input refers to something: 0, or -1 with
 * err.  Merging relies on it. */
static int check(struct merge *m)
{
	const Profile *p = m->in;

	if (!p->n_string_table || p->string_table[0][0])
		return fail(m, EINVAL, "malformed profile: its string table does not start with \"\"");
	if (ids_make(m, &m->fid, (void *const *)p->function, p->n_function, fn_id, "function") ||
	    ids_make(m, &m->mid, (void *const *)p->mapping, p->n_mapping, map_id, "mapping") ||
	    ids_make(m, &m->lid, (void *const *)p->location, p->n_location, loc_id, "location"))
		return -1;
	for (size_t i = 0; i < p->n_sample_type; i++)
		if (check_str(m, p->sample_type[i]->type, "sample type", i + 1) ||
		    check_str(m, p->sample_type[i]->unit, "sample type", i + 1))
			return -1;
	for (size_t i = 0; i < p->n_sample; i++) {
		const Sample *s = p->sample[i];

		if (s->n_value != p->n_sample_type)
			return fail(m, EINVAL, "malformed profile: sample %zu has %zu values for %zu sample types",
				    i + 1, s->n_value, p->n_sample_type);
		for (size_t k = 0; k < s->n_location_id; k++)
			if (ids_find(&m->lid, s->location_id[k]) == SIZE_MAX)
				return fail(m, EINVAL, "malformed profile: sample %zu has location %" PRIu64
					    ", which is not in the profile", i + 1, s->location_id[k]);
		for (size_t k = 0; k < s->n_label; k++)
			if (check_str(m, s->label[k]->key, "label of sample", i + 1) ||
			    check_str(m, s->label[k]->str, "label of sample", i + 1) ||
			    check_str(m, s->label[k]->num_unit, "label of sample", i + 1))
				return -1;
	}
	for (size_t i = 0; i < p->n_mapping; i++)
		if (check_str(m, p->mapping[i]->filename, "mapping", i + 1) ||
		    check_str(m, p->mapping[i]->build_id, "mapping", i + 1))
			return -1;
	for (size_t i = 0; i < p->n_location; i++) {
		const Location *l = p->location[i];

		if (l->mapping_id && ids_find(&m->mid, l->mapping_id) == SIZE_MAX)
			return fail(m, EINVAL, "malformed profile: location %" PRIu64 " has mapping %"
				    PRIu64 ", which is not in the profile", l->id, l->mapping_id);
		for (size_t k = 0; k < l->n_line; k++)
			if (ids_find(&m->fid, l->line[k]->function_id) == SIZE_MAX)
				return fail(m, EINVAL, "malformed profile: location %" PRIu64
					    " has function %" PRIu64 ", which is not in the profile",
					    l->id, l->line[k]->function_id);
	}
	for (size_t i = 0; i < p->n_function; i++)
		if (check_str(m, p->function[i]->name, "function", i + 1) ||
		    check_str(m, p->function[i]->system_name, "function", i + 1) ||
		    check_str(m, p->function[i]->filename, "function", i + 1))
			return -1;
	for (size_t i = 0; i < p->n_comment; i++)
		if (check_str(m, p->comment[i], "comment", i + 1))
			return -1;
	if (check_str(m, p->drop_frames, "drop_frames", 1) ||
	    check_str(m, p->keep_frames, "keep_frames", 1) ||
	    check_str(m, p->default_sample_type, "default_sample_type", 1) ||
	    (p->period_type && (check_str(m, p->period_type->type, "period_type", 1) ||
				check_str(m, p->period_type->unit, "period_type", 1))))
		return -1;
	return 0;
}

/* ---- functions, mappings, locations ------------------------------------- */

struct fn_key {
	const struct merge *m;
	struct mfn f;
};

static bool fn_eq(const void *ctx, size_t i)
{
	const struct fn_key *k = ctx;
	const struct mfn *f = &k->m->fn[i];

	return f->name == k->f.name && f->sys == k->f.sys && f->file == k->f.file &&
	       f->start == k->f.start;
}

/* The merged index of the input's function i, or -1. */
static int64_t map_fn(struct merge *m, size_t i)
{
	const Function *f = m->in->function[i];
	struct fn_key k = { m, { 0 } };
	int64_t name, sys, file, r;
	uint64_t *slot;
	uint32_t h;

	if (m->fmap[i] != NONE)
		return m->fmap[i];
	if ((name = map_str(m, f->name)) < 0 || (sys = map_str(m, f->system_name)) < 0 ||
	    (file = map_str(m, f->filename)) < 0)
		return -1;
	k.f = (struct mfn){ (uint32_t)name, (uint32_t)sys, (uint32_t)file, f->start_line };
	h = (uint32_t)fmix(step(step(step(k.f.name, k.f.sys), k.f.file), (uint64_t)k.f.start));
	slot = dd_find(&m->fd, h, fn_eq, &k);
	if (*slot) {
		r = (uint32_t)*slot - 1;
	} else {
		if (ROOM(m->fn, m->fncap, m->fd.n))
			return -1;
		m->fn[m->fd.n] = k.f;
		if ((r = dd_add(&m->fd, slot, h)) < 0)
			return -1;
	}
	m->fmap[i] = (uint32_t)r;
	return r;
}

struct map_key {
	const struct merge *m;
	struct mmapping p;
};

static bool map_eq(const void *ctx, size_t i)
{
	const struct map_key *k = ctx;
	const struct mmapping *p = &k->m->map[i];

	return p->start == k->p.start && p->limit == k->p.limit && p->offset == k->p.offset &&
	       p->file == k->p.file && p->build == k->p.build && p->flags == k->p.flags;
}

/* The merged index of the input's mapping i, or -1.  Mappings are equal
 * when all their fields are (hawk-bpf's own have none but the flags). */
static int64_t map_map(struct merge *m, size_t i)
{
	const Mapping *p = m->in->mapping[i];
	struct map_key k = { m, { 0 } };
	int64_t file, build, r;
	uint64_t *slot;
	uint32_t h;

	if (m->mmap[i] != NONE)
		return m->mmap[i];
	if ((file = map_str(m, p->filename)) < 0 || (build = map_str(m, p->build_id)) < 0)
		return -1;
	k.p = (struct mmapping){ p->memory_start, p->memory_limit, p->file_offset,
				 (uint32_t)file, (uint32_t)build,
				 (uint8_t)((p->has_functions ? 1 : 0) | (p->has_filenames ? 2 : 0) |
					   (p->has_line_numbers ? 4 : 0) |
					   (p->has_inline_frames ? 8 : 0)) };
	h = (uint32_t)fmix(step(step(step(step(step(k.p.start, k.p.limit), k.p.offset),
					      k.p.file), k.p.build), k.p.flags));
	slot = dd_find(&m->md, h, map_eq, &k);
	if (*slot) {
		r = (uint32_t)*slot - 1;
	} else {
		if (ROOM(m->map, m->mapcap, m->md.n))
			return -1;
		m->map[m->md.n] = k.p;
		if ((r = dd_add(&m->md, slot, h)) < 0)
			return -1;
	}
	m->mmap[i] = (uint32_t)r;
	return r;
}

struct loc_key {
	const struct merge *m;
	struct mloc l;		/* its lines at the end of m->line */
};

static bool loc_eq(const void *ctx, size_t i)
{
	const struct loc_key *k = ctx;
	const struct mloc *l = &k->m->loc[i];
	const struct mline *line = k->m->line;	/* NULL while no location has lines */

	if (l->map != k->l.map || l->addr != k->l.addr || l->folded != k->l.folded ||
	    l->nline != k->l.nline)
		return false;
	for (size_t j = 0; j < l->nline; j++)
		if (line[l->line + j].fn != line[k->l.line + j].fn ||
		    line[l->line + j].line != line[k->l.line + j].line)
			return false;
	return true;
}

/* The merged index of the input's location i, or -1.  Locations are
 * equal when their mapping, address, lines and is_folded are. */
static int64_t map_loc(struct merge *m, size_t i)
{
	const Location *l = m->in->location[i];
	struct loc_key k = { m, { 0 } };
	uint64_t *slot, h;
	int64_t r;

	if (m->lmap[i] != NONE)
		return m->lmap[i];
	if (l->mapping_id) {
		if ((r = map_map(m, ids_find(&m->mid, l->mapping_id))) < 0)
			return -1;
		k.l.map = (uint32_t)r + 1;
	}
	k.l.addr = l->address;
	k.l.folded = l->is_folded;
	k.l.line = m->nline;
	k.l.nline = l->n_line;
	/* The lines go at the end of m->line, kept there if they are new. */
	if (l->n_line && ROOM(m->line, m->linecap, m->nline + l->n_line - 1))
		return -1;
	h = step(step(step(k.l.map, k.l.addr), k.l.folded), l->n_line);
	for (size_t j = 0; j < l->n_line; j++) {
		if ((r = map_fn(m, ids_find(&m->fid, l->line[j]->function_id))) < 0)
			return -1;
		m->line[m->nline + j] = (struct mline){ (uint32_t)r, l->line[j]->line };
		h = step(step(h, (uint64_t)r), (uint64_t)l->line[j]->line);
	}
	slot = dd_find(&m->ld, (uint32_t)fmix(h), loc_eq, &k);
	if (*slot) {
		r = (uint32_t)*slot - 1;
	} else {
		if (ROOM(m->loc, m->loccap, m->ld.n))
			return -1;
		m->loc[m->ld.n] = k.l;
		if ((r = dd_add(&m->ld, slot, (uint32_t)fmix(h))) < 0)
			return -1;
		m->nline += l->n_line;
	}
	m->lmap[i] = (uint32_t)r;
	return r;
}

/* ---- samples ------------------------------------------------------------ */

struct smp_key {
	const struct merge *m;
	struct msample s;	/* its locations and labels at the arenas' ends */
};

static bool lab_eq(const struct mlabel *a, const struct mlabel *b)
{
	return a->key == b->key && a->str == b->str && a->unit == b->unit && a->num == b->num;
}

static bool smp_eq(const void *ctx, size_t i)
{
	const struct smp_key *k = ctx;
	const struct merge *m = k->m;
	const struct msample *s = &m->smp[i];

	if (s->nloc != k->s.nloc || s->nlab != k->s.nlab ||
	    (s->nloc && memcmp(m->locs + s->loc, m->locs + k->s.loc,
			       s->nloc * sizeof(*m->locs))))
		return false;
	for (size_t j = 0; j < s->nlab; j++)
		if (!lab_eq(&m->labs[s->lab + j], &m->labs[k->s.lab + j]))
			return false;
	return true;
}

/* The sample's labels, mapped, with the extra ones it has no key of,
 * ordered by key, as text (values of one key in their order), at the end
 * of m->labs: their number, or -1.  The order is the strings', not their
 * indices', so that it does not change when renumber() renumbers them. */
static int64_t sample_labels(struct merge *m, const Sample *s)
{
	struct mlabel *l;
	size_t n = 0, own;

	if (ROOM(m->labs, m->labscap, m->nlabs + s->n_label + m->nextra))
		return -1;
	l = m->labs + m->nlabs;
	for (size_t j = 0; j < s->n_label; j++) {
		const Label *x = s->label[j];
		int64_t key = map_str(m, x->key), str = map_str(m, x->str),
			unit = map_str(m, x->num_unit);

		if (key < 0 || str < 0 || unit < 0)
			return -1;
		l[n++] = (struct mlabel){ (uint32_t)key, (uint32_t)str, (uint32_t)unit, x->num };
	}
	own = n;
	for (size_t e = 0; e < m->nextra; e++) {
		size_t j = 0;

		while (j < own && l[j].key != m->extra[e].key)
			j++;
		if (j == own)
			l[n++] = m->extra[e];
	}
	for (size_t j = 1; j < n; j++) {	/* insertion sort: stable, and n is small */
		struct mlabel t = l[j];
		size_t k = j;

		for (; k > 0 && l[k - 1].key != t.key &&
		       strcmp(m->str[l[k - 1].key], m->str[t.key]) > 0; k--)
			l[k] = l[k - 1];
		l[k] = t;
	}
	return (int64_t)n;
}

/* Adds the input's sample s to its (stack, labels) entry: 0 or -1. */
static int merge_sample(struct merge *m, const Sample *s)
{
	struct smp_key k = { m, { m->nlocs, m->nlabs, 0, 0 } };
	uint64_t *slot, h;
	int64_t r, *v;
	size_t j;

	for (j = 0; j < s->n_value && !s->value[j]; j++)
		;
	if (j == s->n_value)		/* all zero: go tool pprof drops it too */
		return 0;
	if (s->n_location_id > UINT32_MAX || s->n_label + m->nextra > UINT32_MAX)
		return errno = EOVERFLOW, -1;
	if (s->n_location_id && ROOM(m->locs, m->locscap, m->nlocs + s->n_location_id - 1))
		return -1;
	h = s->n_location_id;
	for (j = 0; j < s->n_location_id; j++) {
		if ((r = map_loc(m, ids_find(&m->lid, s->location_id[j]))) < 0)
			return -1;
		m->locs[m->nlocs + j] = (uint32_t)r;
		h = step(h, (uint64_t)r);
	}
	if ((r = sample_labels(m, s)) < 0)
		return -1;
	k.s.nloc = (uint32_t)s->n_location_id;
	k.s.nlab = (uint32_t)r;
	for (j = 0; j < k.s.nlab; j++) {
		const struct mlabel *l = &m->labs[m->nlabs + j];

		h = step(step(step(step(h, l->key), l->str), l->unit), (uint64_t)l->num);
	}
	slot = dd_find(&m->kd, (uint32_t)fmix(h), smp_eq, &k);
	if (*slot) {
		v = m->val + ((uint32_t)*slot - 1) * m->ntypes;
		for (j = 0; j < m->ntypes; j++)
			if (__builtin_add_overflow(v[j], s->value[j], &v[j]))
				return fail(m, EOVERFLOW, "sample values overflow int64 when summed");
		return 0;
	}
	if (ROOM(m->smp, m->smpcap, m->kd.n) ||
	    (m->ntypes && ROOM(m->val, m->valcap, (m->kd.n + 1) * m->ntypes - 1)))
		return -1;
	m->smp[m->kd.n] = k.s;
	if (m->ntypes)
		memcpy(m->val + m->kd.n * m->ntypes, s->value, m->ntypes * sizeof(*m->val));
	if (dd_add(&m->kd, slot, (uint32_t)fmix(h)) < 0)
		return -1;
	m->nlocs += k.s.nloc;
	m->nlabs += k.s.nlab;
	return 0;
}

/* ---- the header --------------------------------------------------------- */

/* "type/unit,type/unit" of n types (type, unit string pairs) into b. */
static void types_text(char *b, size_t len, char *const *str, const int64_t *idx, size_t n)
{
	size_t k = 0;

	b[0] = 0;
	for (size_t i = 0; i < n && k < len; i++) {
		int w = snprintf(b + k, len - k, "%s%s/%s", i ? "," : "", str[idx[2 * i]],
				 str[idx[2 * i + 1]]);

		if (w < 0)
			break;
		k += (size_t)w;
	}
	if (!n)
		snprintf(b, len, "(none)");
}

static int types_differ(struct merge *m)
{
	const Profile *p = m->in;
	size_t n = p->n_sample_type, len = 512;
	int64_t *a = calloc(2 * n + 1, sizeof(*a)), *b = calloc(2 * m->ntypes + 1, sizeof(*b));
	char *ta = malloc(len), *tb = malloc(len);
	int r;

	if (!a || !b || !ta || !tb) {
		r = fail(m, ENOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < n; i++) {
			a[2 * i] = p->sample_type[i]->type;
			a[2 * i + 1] = p->sample_type[i]->unit;
		}
		for (size_t i = 0; i < 2 * m->ntypes; i++)
			b[i] = m->types[i];
		types_text(ta, len, p->string_table, a, n);
		types_text(tb, len, m->str, b, m->ntypes);
		r = fail(m, EINVAL, "sample types %s differ from input 1's %s", ta, tb);
	}
	free(a);
	free(b);
	free(ta);
	free(tb);
	return r;
}

/* The first nonzero of *dst and the input's string i: 0 or -1. */
static int first_str(struct merge *m, uint32_t *dst, int64_t i)
{
	int64_t r;

	if (*dst || !i)
		return 0;
	if ((r = map_str(m, i)) < 0)
		return -1;
	*dst = (uint32_t)r;
	return 0;
}

static bool com_eq(const void *ctx, size_t i)
{
	const struct merge *m = *(const struct merge *const *)ctx;

	return m->com[i] == m->com[m->cd.n];
}

static int add_comment(struct merge *m, int64_t i)
{
	int64_t s = map_str(m, i);
	uint32_t h;
	uint64_t *slot;

	if (s < 0 || ROOM(m->com, m->comcap, m->cd.n))
		return -1;
	m->com[m->cd.n] = (uint32_t)s;	/* the key, kept if new */
	h = (uint32_t)fmix((uint64_t)s);
	slot = dd_find(&m->cd, h, com_eq, &m);
	return *slot || dd_add(&m->cd, slot, h) >= 0 ? 0 : -1;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;

	return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

/* The input's sample types, period, times and strings of the header. */
static int merge_header(struct merge *m)
{
	const Profile *p = m->in;
	const ValueType *pt = p->period_type;

	if (m->input == 1) {
		m->ntypes = p->n_sample_type;
		if (!(m->types = calloc(2 * m->ntypes + 1, sizeof(*m->types))))
			return fail(m, ENOMEM, "out of memory");
		for (size_t i = 0; i < m->ntypes; i++) {
			int64_t t = map_str(m, p->sample_type[i]->type),
				u = map_str(m, p->sample_type[i]->unit);

			if (t < 0 || u < 0)
				return fail_errno(m);
			m->types[2 * i] = (uint32_t)t;
			m->types[2 * i + 1] = (uint32_t)u;
		}
	} else {
		bool same = p->n_sample_type == m->ntypes;

		for (size_t i = 0; i < p->n_sample_type && same; i++)
			same = !strcmp(p->string_table[p->sample_type[i]->type],
				       m->str[m->types[2 * i]]) &&
			       !strcmp(p->string_table[p->sample_type[i]->unit],
				       m->str[m->types[2 * i + 1]]);
		if (!same)
			return types_differ(m);
	}
	/* A period_type of "" and "" is none (whatever indices say it: a
	 * string table may have "" more than once). */
	if (pt && (p->string_table[pt->type][0] || p->string_table[pt->unit][0])) {
		const char *t = p->string_table[pt->type], *u = p->string_table[pt->unit];
		int64_t ti, ui;

		if (m->period_from && (strcmp(t, m->str[m->period_type]) ||
				       strcmp(u, m->str[m->period_unit])))
			return fail(m, EINVAL, "period type %s/%s differs from input %zu's %s/%s",
				    t, u, m->period_from, m->str[m->period_type],
				    m->str[m->period_unit]);
		if (!m->period_from) {
			if ((ti = map_str(m, pt->type)) < 0 || (ui = map_str(m, pt->unit)) < 0)
				return fail_errno(m);
			m->period_type = (uint32_t)ti;
			m->period_unit = (uint32_t)ui;
			m->period_from = m->input;
		}
	}
	if (!m->period)
		m->period = p->period;
	if (first_str(m, &m->dflt, p->default_sample_type) ||
	    first_str(m, &m->drop, p->drop_frames) || first_str(m, &m->keep, p->keep_frames))
		return fail_errno(m);
	for (size_t i = 0; i < p->n_comment; i++)
		if (add_comment(m, p->comment[i]))
			return fail_errno(m);
	if (p->time_nanos) {
		int64_t end = sat_add(p->time_nanos, p->duration_nanos > 0 ? p->duration_nanos : 0);

		if (!m->timed || p->time_nanos < m->t0)
			m->t0 = p->time_nanos;
		if (!m->timed || end > m->t1)
			m->t1 = end;
		m->timed = true;
	} else if (p->duration_nanos > m->longest) {
		m->longest = p->duration_nanos;
	}
	return 0;
}

/* ---- reading an input --------------------------------------------------- */

static const char *size_text(char *b, size_t len, size_t n)
{
	if (n && !(n % ((size_t)1 << 30)))
		snprintf(b, len, "%zu GiB", n >> 30);
	else if (n && !(n % ((size_t)1 << 20)))
		snprintf(b, len, "%zu MiB", n >> 20);
	else
		snprintf(b, len, "%zu bytes", n);
	return b;
}

static int too_big(struct merge *m)
{
	char b[32];

	return fail(m, EFBIG, "over %s uncompressed",
		    size_text(b, sizeof(b), hk_pprof_merge_max));
}

/* The gunzipped bytes of b (one gzip member or several, end to end) in
 * *raw and *n: 0, or -1 with err. */
static int gunzip(struct merge *m, const uint8_t *b, size_t len, uint8_t **raw, size_t *n)
{
	size_t max = hk_pprof_merge_max, cap = len < max / 4 ? len * 4 : max, fed = 0;
	z_stream z = { 0 };
	int r = 0;

	*n = 0;
	if (cap < (1 << 16))
		cap = max < (1 << 16) ? max : 1 << 16;
	cap++;			/* a byte past the limit tells it was passed */
	if (inflateInit2(&z, 15 + 32) != Z_OK)
		return fail(m, ENOMEM, "out of memory");
	if (!(*raw = malloc(cap))) {
		inflateEnd(&z);
		return fail(m, ENOMEM, "out of memory");
	}
	for (;;) {
		size_t room;

		if (!z.avail_in && fed < len) {
			size_t k = len - fed < UINT_MAX ? len - fed : UINT_MAX;

			z.next_in = (Bytef *)(b + fed);
			z.avail_in = (uInt)k;
			fed += k;
		}
		if (*n == cap) {
			uint8_t *g;
			size_t c = cap - 1 < max / 2 ? 2 * (cap - 1) + 1 : max + 1;

			if (cap > max) {
				r = too_big(m);
				break;
			}
			if (!(g = realloc(*raw, c))) {
				r = fail(m, ENOMEM, "out of memory");
				break;
			}
			*raw = g;
			cap = c;
		}
		room = cap - *n < UINT_MAX ? cap - *n : UINT_MAX;
		z.next_out = *raw + *n;
		z.avail_out = (uInt)room;
		r = inflate(&z, Z_NO_FLUSH);
		*n += room - z.avail_out;
		if (*n > max) {
			r = too_big(m);
			break;
		}
		if (r == Z_STREAM_END) {
			size_t rest = z.avail_in + (len - fed), at = len - rest;

			r = 0;
			if (!rest)
				break;
			if (rest < 2 || b[at] != 0x1f || b[at + 1] != 0x8b) {
				r = fail(m, EINVAL, "not a profile (gzip: %zu byte%s after the end "
					 "of the stream)", rest, rest == 1 ? "" : "s");
				break;
			}
			inflateReset(&z);	/* another member */
		} else if (r == Z_BUF_ERROR && z.avail_out) {
			r = fail(m, EINVAL, "not a profile (gzip: unexpected end of the stream)");
			break;
		} else if (r == Z_MEM_ERROR) {
			r = fail(m, ENOMEM, "out of memory");
			break;
		} else if (r != Z_OK && r != Z_BUF_ERROR) {
			r = fail(m, EINVAL, "not a profile (gzip: %s)", z.msg ? z.msg : zError(r));
			break;
		}
	}
	inflateEnd(&z);
	if (r) {
		free(*raw);
		*raw = NULL;
	}
	return r;
}

/* Input b of len bytes, unpacked into *out: 0, or -1 with err. */
static int load(struct merge *m, const uint8_t *b, size_t len, Profile **out)
{
	uint8_t *raw = NULL;
	size_t n = len;

	*out = NULL;
	if (!len)
		return fail(m, EINVAL, "not a profile (empty)");
	if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
		if (gunzip(m, b, len, &raw, &n))
			return -1;
		b = raw;
	} else if (len > hk_pprof_merge_max) {
		return too_big(m);
	}
	*out = perftools__profiles__profile__unpack(NULL, n, b);
	free(raw);
	if (!*out)
		return fail(m, EINVAL, "not a profile (protobuf: malformed or truncated message, "
			    "or out of memory)");
	return 0;
}

/* Frees what was kept of the input being merged. */
static void input_end(struct merge *m, Profile *p)
{
	free(m->smap);
	free(m->fmap);
	free(m->mmap);
	free(m->lmap);
	free(m->fid.v);
	free(m->mid.v);
	free(m->lid.v);
	m->smap = m->fmap = m->mmap = m->lmap = NULL;
	memset(&m->fid, 0, sizeof(m->fid));
	memset(&m->mid, 0, sizeof(m->mid));
	memset(&m->lid, 0, sizeof(m->lid));
	m->in = NULL;
	if (p)
		perftools__profiles__profile__free_unpacked(p, NULL);
}

static uint32_t *nones(size_t n)
{
	uint32_t *a = malloc((n + 1) * sizeof(*a));

	if (a)
		memset(a, 0xff, (n + 1) * sizeof(*a));
	return a;
}

static int merge_input(struct merge *m, const void *b, size_t len)
{
	Profile *p;
	int r = -1;

	if (load(m, b, len, &p))
		return -1;
	m->in = p;
	if (!(m->smap = nones(p->n_string_table)) || !(m->fmap = nones(p->n_function)) ||
	    !(m->mmap = nones(p->n_mapping)) || !(m->lmap = nones(p->n_location))) {
		fail(m, ENOMEM, "out of memory");
	} else if (!check(m) && !merge_header(m)) {
		size_t i;

		for (i = 0; i < p->n_sample; i++)
			if (merge_sample(m, p->sample[i]))
				break;
		if (i == p->n_sample)
			r = 0;
		else if (!m->err[0])	/* a table's failure, not a message yet */
			fail_errno(m);
	}
	input_end(m, p);
	return r;
}

/* ---- writing ------------------------------------------------------------ */

/* Renumbers the string table in the order a merge of the merged profile
 * would intern its strings: "", the extra labels', the header's, then
 * each sample's locations' (a mapping's, then the functions', where
 * first met) and labels'.  Strings came in the inputs' order, and a
 * label's in its input's order of labels; now merging the merged profile
 * alone gives it back byte for byte.  0, or -1 (ENOMEM). */
static int renumber(struct merge *m)
{
	size_t n = m->sd.n, next = 0;
	uint32_t *nx = nones(n);
	char **order = malloc((n + 1) * sizeof(*order));
	bool *lseen = calloc(m->ld.n + 1, 1), *mseen = calloc(m->md.n + 1, 1),
	     *fseen = calloc(m->fd.n + 1, 1);
	int r = -1;

#define S(i) do {							\
		uint32_t i_ = (i);					\
		if (nx[i_] == NONE) {					\
			nx[i_] = (uint32_t)next;			\
			order[next++] = m->str[i_];			\
		}							\
	} while (0)
#define RE(i) ((i) = nx[(i)])
	if (!nx || !order || !lseen || !mseen || !fseen) {
		errno = ENOMEM;
		goto out;
	}
	S(0);
	for (size_t i = 0; i < m->nextra; i++) {
		S(m->extra[i].key);
		S(m->extra[i].str);
		S(m->extra[i].unit);
	}
	for (size_t i = 0; i < 2 * m->ntypes; i++)
		S(m->types[i]);
	if (m->period_from) {
		S(m->period_type);
		S(m->period_unit);
	}
	S(m->dflt);
	S(m->drop);
	S(m->keep);
	for (size_t i = 0; i < m->cd.n; i++)
		S(m->com[i]);
	for (size_t i = 0; i < m->kd.n; i++) {
		const struct msample *sm = &m->smp[i];

		for (size_t j = 0; j < sm->nloc; j++) {
			uint32_t li = m->locs[sm->loc + j];
			const struct mloc *l = &m->loc[li];

			if (lseen[li])
				continue;
			lseen[li] = true;
			if (l->map && !mseen[l->map - 1]) {
				mseen[l->map - 1] = true;
				S(m->map[l->map - 1].file);
				S(m->map[l->map - 1].build);
			}
			for (size_t k = 0; k < l->nline; k++) {
				const struct mfn *f = &m->fn[m->line[l->line + k].fn];

				if (fseen[m->line[l->line + k].fn])
					continue;
				fseen[m->line[l->line + k].fn] = true;
				S(f->name);
				S(f->sys);
				S(f->file);
			}
		}
		for (size_t j = 0; j < sm->nlab; j++) {
			S(m->labs[sm->lab + j].key);
			S(m->labs[sm->lab + j].str);
			S(m->labs[sm->lab + j].unit);
		}
	}
	for (size_t i = 0; i < n; i++)		/* none, by what merging keeps */
		S(i);
	for (size_t i = 0; i < 2 * m->ntypes; i++)
		RE(m->types[i]);
	RE(m->period_type);
	RE(m->period_unit);
	RE(m->dflt);
	RE(m->drop);
	RE(m->keep);
	for (size_t i = 0; i < m->cd.n; i++)
		RE(m->com[i]);
	for (size_t i = 0; i < m->nlabs; i++) {
		RE(m->labs[i].key);
		RE(m->labs[i].str);
		RE(m->labs[i].unit);
	}
	for (size_t i = 0; i < m->md.n; i++) {
		RE(m->map[i].file);
		RE(m->map[i].build);
	}
	for (size_t i = 0; i < m->fd.n; i++) {
		RE(m->fn[i].name);
		RE(m->fn[i].sys);
		RE(m->fn[i].file);
	}
#undef S
#undef RE
	/* The same strings, now in order; the string hash table is stale. */
	free(m->str);
	m->str = order;
	m->strcap = n + 1;
	order = NULL;
	r = 0;
out:
	free(nx);
	free(order);
	free(lseen);
	free(mseen);
	free(fseen);
	return r;
}

static int put_samples(struct merge *m, struct hk_zout *z)
{
	uint64_t *ids = NULL;
	Label *lab = NULL, **labp = NULL;
	size_t idcap = 0, labcap = 0, labpcap = 0;
	int r = 0;

	for (size_t i = 0; i < m->kd.n && !r; i++) {
		const struct msample *s = &m->smp[i];
		Sample sm = PERFTOOLS__PROFILES__SAMPLE__INIT, *sp = &sm;
		Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;

		if ((s->nloc && ROOM(ids, idcap, s->nloc - 1)) ||
		    (s->nlab && (ROOM(lab, labcap, s->nlab - 1) ||
				 ROOM(labp, labpcap, s->nlab - 1)))) {
			r = -1;
			break;
		}
		for (size_t j = 0; j < s->nloc; j++)
			ids[j] = (uint64_t)m->locs[s->loc + j] + 1;
		for (size_t j = 0; j < s->nlab; j++) {
			const struct mlabel *l = &m->labs[s->lab + j];

			perftools__profiles__label__init(&lab[j]);
			lab[j].key = l->key;
			lab[j].str = l->str;
			lab[j].num = l->num;
			lab[j].num_unit = l->unit;
			labp[j] = &lab[j];
		}
		sm.n_location_id = s->nloc;
		sm.location_id = ids;
		sm.n_value = m->ntypes;
		sm.value = m->val + i * m->ntypes;
		sm.n_label = s->nlab;
		sm.label = labp;
		pr.n_sample = 1;
		pr.sample = &sp;
		r = hk_zout_put(z, &pr);
	}
	free(ids);
	free(lab);
	free(labp);
	return r;
}

static int put_locations(struct merge *m, struct hk_zout *z)
{
	Line *ln = NULL, **lnp = NULL;
	size_t lncap = 0, lnpcap = 0;
	int r = 0;

	for (size_t i = 0; i < m->ld.n && !r; i++) {
		const struct mloc *l = &m->loc[i];
		Location lc = PERFTOOLS__PROFILES__LOCATION__INIT, *lp = &lc;
		Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;

		if (l->nline && (ROOM(ln, lncap, l->nline - 1) || ROOM(lnp, lnpcap, l->nline - 1))) {
			r = -1;
			break;
		}
		for (size_t j = 0; j < l->nline; j++) {
			perftools__profiles__line__init(&ln[j]);
			ln[j].function_id = (uint64_t)m->line[l->line + j].fn + 1;
			ln[j].line = m->line[l->line + j].line;
			lnp[j] = &ln[j];
		}
		lc.id = i + 1;
		lc.mapping_id = l->map;
		lc.address = l->addr;
		lc.n_line = l->nline;
		lc.line = lnp;
		lc.is_folded = l->folded;
		pr.n_location = 1;
		pr.location = &lp;
		r = hk_zout_put(z, &pr);
	}
	free(ln);
	free(lnp);
	return r;
}

/* The merged profile, a part at a time in field-number order. */
static int put_all(struct merge *m, struct hk_zout *z)
{
	ValueType period = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;
	int64_t *com;
	int r;

	for (size_t i = 0; i < m->ntypes; i++) {
		ValueType vt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT, *vp = &vt;
		Profile part = PERFTOOLS__PROFILES__PROFILE__INIT;

		vt.type = m->types[2 * i];
		vt.unit = m->types[2 * i + 1];
		part.n_sample_type = 1;
		part.sample_type = &vp;
		if (hk_zout_put(z, &part))
			return -1;
	}
	if (put_samples(m, z))
		return -1;
	for (size_t i = 0; i < m->md.n; i++) {
		const struct mmapping *p = &m->map[i];
		Mapping mp = PERFTOOLS__PROFILES__MAPPING__INIT, *mpp = &mp;
		Profile part = PERFTOOLS__PROFILES__PROFILE__INIT;

		mp.id = i + 1;
		mp.memory_start = p->start;
		mp.memory_limit = p->limit;
		mp.file_offset = p->offset;
		mp.filename = p->file;
		mp.build_id = p->build;
		mp.has_functions = p->flags & 1;
		mp.has_filenames = !!(p->flags & 2);
		mp.has_line_numbers = !!(p->flags & 4);
		mp.has_inline_frames = !!(p->flags & 8);
		part.n_mapping = 1;
		part.mapping = &mpp;
		if (hk_zout_put(z, &part))
			return -1;
	}
	if (put_locations(m, z))
		return -1;
	for (size_t i = 0; i < m->fd.n; i++) {
		Function f = PERFTOOLS__PROFILES__FUNCTION__INIT, *fp = &f;
		Profile part = PERFTOOLS__PROFILES__PROFILE__INIT;

		f.id = i + 1;
		f.name = m->fn[i].name;
		f.system_name = m->fn[i].sys;
		f.filename = m->fn[i].file;
		f.start_line = m->fn[i].start;
		part.n_function = 1;
		part.function = &fp;
		if (hk_zout_put(z, &part))
			return -1;
	}
	if (!(com = calloc(m->cd.n + 1, sizeof(*com))))
		return -1;
	for (size_t i = 0; i < m->cd.n; i++)
		com[i] = m->com[i];
	pr.n_string_table = m->sd.n;
	pr.string_table = m->str;
	pr.drop_frames = m->drop;
	pr.keep_frames = m->keep;
	if (m->timed) {
		int64_t d;

		pr.time_nanos = m->t0;
		if (__builtin_sub_overflow(m->t1, m->t0, &d))
			d = INT64_MAX;
		pr.duration_nanos = d > m->longest ? d : m->longest;
	} else {
		pr.duration_nanos = m->longest;
	}
	if (m->period_from) {
		period.type = m->period_type;
		period.unit = m->period_unit;
		pr.period_type = &period;
	}
	pr.period = m->period;
	pr.n_comment = m->cd.n;
	pr.comment = com;
	pr.default_sample_type = m->dflt;
	r = hk_zout_put(z, &pr);
	free(com);
	return r;
}

static int write_out(struct merge *m, FILE *out)
{
	struct hk_zout *z = hk_zout_open(out);
	int r, e;

	if (!z)
		return fail(m, ENOMEM, "out of memory");
	r = renumber(m) ? -1 : put_all(m, z);
	e = errno;
	if (hk_zout_close(z) && !r)
		r = -1, e = errno;
	if (!r && fflush(out))
		r = -1, e = errno;
	if (r && e == ENOMEM)
		return fail(m, e, "out of memory");
	if (r)
		return fail(m, e, "writing the merged profile: %s", strerror(e));
	return 0;
}

/* ---- hk_pprof_merge ----------------------------------------------------- */

static int add_extra(struct merge *m, const struct hk_pprof_label *extra, size_t n)
{
	if (!(m->extra = calloc(n + 1, sizeof(*m->extra))))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct hk_pprof_label *l = &extra[i];
		int64_t key = add_str(m, l->key ? l->key : ""), str = 0, unit = 0;

		if (key < 0 || (l->str && (str = add_str(m, l->str)) < 0) ||
		    (!l->str && l->num_unit && (unit = add_str(m, l->num_unit)) < 0))
			return -1;
		m->extra[i] = (struct mlabel){ (uint32_t)key, (uint32_t)str, (uint32_t)unit,
					       l->str ? 0 : l->num };
	}
	m->nextra = n;
	return 0;
}

static void merge_free(struct merge *m)
{
	for (size_t i = 0; i < m->sd.n; i++)
		free(m->str[i]);
	free(m->sd.slot);
	free(m->fd.slot);
	free(m->md.slot);
	free(m->ld.slot);
	free(m->kd.slot);
	free(m->cd.slot);
	free(m->str);
	free(m->fn);
	free(m->map);
	free(m->loc);
	free(m->line);
	free(m->smp);
	free(m->locs);
	free(m->labs);
	free(m->val);
	free(m->com);
	free(m->types);
	free(m->extra);
	free(m);
}

int hk_pprof_merge(FILE *out, const void *const *bufs, const size_t *lens, size_t n,
		   const struct hk_pprof_label *extra, size_t n_extra, char *err, size_t errlen)
{
	static char none[1];
	struct merge *m = calloc(1, sizeof(*m));
	int r = -1, e;

	if (!err || !errlen)
		err = none, errlen = 1;
	err[0] = 0;
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return errno = ENOMEM, -1;
	}
	m->err = err;
	m->errlen = errlen;
	if (!n) {
		fail(m, EINVAL, "no profiles to merge");
	} else if (dd_grow(&m->sd) || dd_grow(&m->fd) || dd_grow(&m->md) || dd_grow(&m->ld) ||
		   dd_grow(&m->kd) || dd_grow(&m->cd) || add_str(m, "") != 0 ||
		   add_extra(m, extra, n_extra)) {
		fail_errno(m);
	} else {
		size_t i;

		for (i = 0; i < n; i++) {
			m->input = i + 1;
			if (merge_input(m, bufs[i], lens[i]))
				break;
		}
		m->input = 0;
		if (i == n)
			r = write_out(m, out);
	}
	e = errno;
	merge_free(m);
	errno = e;
	return r;
}

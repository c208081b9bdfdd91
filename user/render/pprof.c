/* pprof profiles and folded stacks (pprof.h).
 *
 * protobuf-c's generated code packs the profile, but never all of it at
 * once.  A message's encoding is the concatenation of its fields', and
 * protobuf-c packs fields in field-number order: packing {sample_type},
 * then {sample} once a sample, {mapping}, {location} and {function} once
 * an entry, then {string_table and the scalars} gives the bytes packing
 * one whole Profile would, without a million Sample messages in memory.
 * What is kept are the deduplication tables: strings (pointers to the
 * caller's), functions and locations.
 */
#include "pprof.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- the writers' state ------------------------------------------------- */

struct fn {			/* a pprof Function */
	uint32_t name, file;	/* string indices */
	int64_t start;
};

struct loc {			/* a pprof Location: a line of a function */
	uint32_t name, file, fn;
	int64_t start, line;
};

struct stack {			/* a folded stack: locations and their sum */
	size_t off;		/* in pp.arena, leaf first */
	uint32_t len;
	int64_t sum;
};

/* Most strings repeat by pointer (interned by the symbolizer): a small
 * direct-mapped cache of pointer -> index spares hashing them again. */
#define PCACHE 4096

struct pp {
	bool folded;		/* frames by their text alone: start_line 0 */
	struct dedup sd, fd, ld;
	const char **str;	/* the string table, the caller's strings */
	struct fn *fn;
	struct loc *loc;
	size_t strcap, fncap, loccap;
	struct {
		const char *p;
		uint32_t i;
	} pc[PCACHE];
	uint64_t *ids;		/* a sample's location ids */
	size_t idcap;
	Label *lab, **labp;	/* a sample's labels */
	size_t labcap, labpcap;
	struct hk_zout *z;
	/* Folded stacks: each distinct one's locations in arena. */
	struct dedup kd;
	struct stack *st;
	uint32_t *arena;
	size_t stcap, narena, arenacap;
};

struct str_key {
	const struct pp *pp;
	const char *s;
};

static bool str_eq(const void *ctx, size_t i)
{
	const struct str_key *k = ctx;
	const char *t = k->pp->str[i];

	return t == k->s || !strcmp(t, k->s);
}

/* The string table index of s, or -1. */
static int64_t intern_str(struct pp *pp, const char *s)
{
	size_t c = (size_t)(fmix((uintptr_t)s) & (PCACHE - 1));
	struct str_key k = { pp, s ? s : "" };
	uint32_t h;
	uint64_t *slot;
	int64_t i;

	if (s && pp->pc[c].p == s)
		return pp->pc[c].i;
	h = str_hash(k.s);
	slot = dd_find(&pp->sd, h, str_eq, &k);
	if (*slot) {
		i = (uint32_t)*slot - 1;
	} else {
		if (ROOM(pp->str, pp->strcap, pp->sd.n))
			return -1;
		pp->str[pp->sd.n] = k.s;
		if ((i = dd_add(&pp->sd, slot, h)) < 0)
			return -1;
	}
	pp->pc[c].p = s;
	pp->pc[c].i = (uint32_t)i;
	return i;
}

struct fn_key {
	const struct pp *pp;
	struct fn f;
};

static bool fn_eq(const void *ctx, size_t i)
{
	const struct fn_key *k = ctx;
	const struct fn *f = &k->pp->fn[i];

	return f->name == k->f.name && f->file == k->f.file && f->start == k->f.start;
}

/* The index of function f, or -1. */
static int64_t intern_fn(struct pp *pp, const struct fn *f)
{
	struct fn_key k = { pp, *f };
	uint32_t h = (uint32_t)fmix(step(step(f->name, f->file), (uint64_t)f->start));
	uint64_t *slot = dd_find(&pp->fd, h, fn_eq, &k);

	if (*slot)
		return (uint32_t)*slot - 1;
	if (ROOM(pp->fn, pp->fncap, pp->fd.n))
		return -1;
	pp->fn[pp->fd.n] = *f;
	return dd_add(&pp->fd, slot, h);
}

struct loc_key {
	const struct pp *pp;
	struct loc l;
};

static bool loc_eq(const void *ctx, size_t i)
{
	const struct loc_key *k = ctx;
	const struct loc *l = &k->pp->loc[i];

	return l->line == k->l.line && l->name == k->l.name &&
	       l->file == k->l.file && l->start == k->l.start;
}

/* The index of frame f's location, or -1.  Locations are keyed by the
 * function's strings, not its index, so that a known frame costs one
 * lookup. */
static int64_t intern_frame(struct pp *pp, const struct hk_pprof_frame *f)
{
	int64_t name = intern_str(pp, f->function), file, fn;
	struct loc_key k = { pp, { 0 } };
	uint64_t *slot;
	uint32_t h;

	if (name < 0 || (file = intern_str(pp, f->filename)) < 0)
		return -1;
	k.l = (struct loc){ .name = (uint32_t)name, .file = (uint32_t)file,
			    .start = pp->folded ? 0 : f->start_line, .line = f->line };
	h = (uint32_t)fmix(step(step(step(k.l.name, k.l.file), (uint64_t)k.l.start),
				(uint64_t)k.l.line));
	slot = dd_find(&pp->ld, h, loc_eq, &k);
	if (*slot)
		return (uint32_t)*slot - 1;
	fn = intern_fn(pp, &(struct fn){ k.l.name, k.l.file, k.l.start });
	if (fn < 0 || ROOM(pp->loc, pp->loccap, pp->ld.n))
		return -1;
	k.l.fn = (uint32_t)fn;
	pp->loc[pp->ld.n] = k.l;
	return dd_add(&pp->ld, slot, h);
}

/* A sample's location indices (leaf first) in pp->ids: 0 or -1. */
static int sample_locs(struct pp *pp, const struct hk_pprof_sample *s)
{
	if (s->nframes && ROOM(pp->ids, pp->idcap, s->nframes - 1))
		return -1;
	for (size_t i = 0; i < s->nframes; i++) {
		int64_t l = intern_frame(pp, &s->frames[i]);

		if (l < 0)
			return -1;
		pp->ids[i] = (uint64_t)l;
	}
	return 0;
}

static void pp_free(struct pp *pp)
{
	free(pp->sd.slot);
	free(pp->fd.slot);
	free(pp->ld.slot);
	free(pp->kd.slot);
	free(pp->str);
	free(pp->fn);
	free(pp->loc);
	free(pp->ids);
	free(pp->lab);
	free(pp->labp);
	free(pp->st);
	free(pp->arena);
	free(pp);
}

static struct pp *pp_new(bool folded)
{
	struct pp *pp = calloc(1, sizeof(*pp));

	if (!pp)
		return NULL;
	pp->folded = folded;
	if (dd_grow(&pp->sd) || dd_grow(&pp->fd) || dd_grow(&pp->ld) ||
	    (folded && dd_grow(&pp->kd)) || intern_str(pp, "") != 0) {
		pp_free(pp);
		return NULL;
	}
	return pp;
}

/* ---- gzip --------------------------------------------------------------- */

/* A protobuf-c output buffer that gzips into a FILE.  protobuf-c appends
 * a few bytes at a time: they gather in `in` before deflate sees them. */
struct hk_zout {
	ProtobufCBuffer base;	/* first: protobuf-c hands us &base */
	z_stream z;
	FILE *f;
	int err;		/* errno of the first failure, 0 */
	size_t inlen;
	unsigned char in[1 << 16], out[1 << 16];
};

/* Speed over size: for a million samples, level 1 deflates in a sixth
 * of the default level's time, into a profile some 25% larger. */
#define ZLEVEL Z_BEST_SPEED

static void zflush(struct hk_zout *z, int flush)
{
	z->z.next_in = z->in;
	z->z.avail_in = (uInt)z->inlen;
	do {
		size_t have;

		z->z.next_out = z->out;
		z->z.avail_out = sizeof(z->out);
		if (deflate(&z->z, flush) == Z_STREAM_ERROR) {
			z->err = EIO;
			return;
		}
		have = sizeof(z->out) - z->z.avail_out;
		errno = 0;
		if (have && fwrite(z->out, 1, have, z->f) != have) {
			z->err = errno ? errno : EIO;
			return;
		}
	} while (!z->z.avail_out);
	z->inlen = 0;
}

static void zappend(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	struct hk_zout *z = (struct hk_zout *)b;

	while (len && !z->err) {
		size_t n = sizeof(z->in) - z->inlen;

		if (n > len)
			n = len;
		memcpy(z->in + z->inlen, data, n);
		z->inlen += n;
		data += n;
		len -= n;
		if (z->inlen == sizeof(z->in))
			zflush(z, Z_NO_FLUSH);
	}
}

struct hk_zout *hk_zout_open(FILE *f)
{
	struct hk_zout *z = calloc(1, sizeof(*z));

	if (!z)
		return NULL;
	z->base.append = zappend;
	z->f = f;
	/* windowBits 15 + 16: a gzip header and trailer, not zlib's. */
	if (deflateInit2(&z->z, ZLEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(z);
		errno = ENOMEM;
		return NULL;
	}
	return z;
}

/* Ends the stream: 0, or -1 with the first failure's errno. */
int hk_zout_close(struct hk_zout *z)
{
	int err;

	if (!z->err)
		zflush(z, Z_FINISH);
	deflateEnd(&z->z);
	err = z->err;
	free(z);
	return err ? (errno = err, -1) : 0;
}

int hk_zout_put(struct hk_zout *z, const Profile *part)
{
	if (!z->err)
		perftools__profiles__profile__pack_to_buffer(part, &z->base);
	return z->err ? (errno = z->err, -1) : 0;
}

/* Packs pr, a part of the profile, into the stream: 0 or -1. */
static int put(struct pp *pp, const Profile *pr)
{
	return hk_zout_put(pp->z, pr);
}

/* ---- pprof -------------------------------------------------------------- */

static int put_types(struct pp *pp, const struct hk_pprof *p)
{
	for (size_t i = 0; i < p->ntypes; i++) {
		int64_t t = intern_str(pp, p->types[i]), u = intern_str(pp, p->units[i]);
		ValueType vt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT, *vp = &vt;
		Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;

		if (t < 0 || u < 0)
			return -1;
		vt.type = t;
		vt.unit = u;
		pr.n_sample_type = 1;
		pr.sample_type = &vp;
		if (put(pp, &pr))
			return -1;
	}
	return 0;
}

/* Sample s's labels as Label messages in pp->labp: 0 or -1. */
static int sample_labels(struct pp *pp, const struct hk_pprof_sample *s)
{
	if (s->nlabels && (ROOM(pp->lab, pp->labcap, s->nlabels - 1) ||
			   ROOM(pp->labp, pp->labpcap, s->nlabels - 1)))
		return -1;
	for (size_t i = 0; i < s->nlabels; i++) {
		const struct hk_pprof_label *l = &s->labels[i];
		Label *m = &pp->lab[i];
		int64_t k = intern_str(pp, l->key), v = 0;

		perftools__profiles__label__init(m);
		if (l->str)
			v = intern_str(pp, l->str);
		else if (l->num_unit)
			v = intern_str(pp, l->num_unit);
		if (k < 0 || v < 0)
			return -1;
		m->key = k;
		if (l->str) {
			m->str = v;
		} else {
			m->num = l->num;
			m->num_unit = v;
		}
		pp->labp[i] = m;
	}
	return 0;
}

static int put_sample(struct pp *pp, const struct hk_pprof *p, const struct hk_pprof_sample *s)
{
	Sample sm = PERFTOOLS__PROFILES__SAMPLE__INIT, *sp = &sm;
	Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;

	if (sample_locs(pp, s) || sample_labels(pp, s))
		return -1;
	for (size_t i = 0; i < s->nframes; i++)
		pp->ids[i]++;		/* ids are indices + 1 */
	sm.n_location_id = s->nframes;
	sm.location_id = pp->ids;
	sm.n_value = p->ntypes;
	sm.value = (int64_t *)s->values;	/* only read */
	sm.n_label = s->nlabels;
	sm.label = pp->labp;
	pr.n_sample = 1;
	pr.sample = &sp;
	return put(pp, &pr);
}

/* The one mapping: Python code, symbolized already. */
static int put_mapping(struct pp *pp)
{
	Mapping m = PERFTOOLS__PROFILES__MAPPING__INIT, *mp = &m;
	Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;

	m.id = 1;
	m.has_functions = m.has_filenames = m.has_line_numbers = 1;
	pr.n_mapping = 1;
	pr.mapping = &mp;
	return put(pp, &pr);
}

static int put_locations(struct pp *pp)
{
	for (size_t i = 0; i < pp->ld.n; i++) {
		Location l = PERFTOOLS__PROFILES__LOCATION__INIT, *lp = &l;
		Line ln = PERFTOOLS__PROFILES__LINE__INIT, *np = &ln;
		Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;

		ln.function_id = pp->loc[i].fn + 1;
		ln.line = pp->loc[i].line;
		l.id = i + 1;
		l.mapping_id = 1;
		l.n_line = 1;
		l.line = &np;
		pr.n_location = 1;
		pr.location = &lp;
		if (put(pp, &pr))
			return -1;
	}
	return 0;
}

static int put_functions(struct pp *pp)
{
	for (size_t i = 0; i < pp->fd.n; i++) {
		Function f = PERFTOOLS__PROFILES__FUNCTION__INIT, *fp = &f;
		Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;

		/* No system_name: pprof takes a function whose two names agree
		 * for C++ and strips its "<...>", making "<module>" "". */
		f.id = i + 1;
		f.name = pp->fn[i].name;
		f.filename = pp->fn[i].file;
		f.start_line = pp->fn[i].start;
		pr.n_function = 1;
		pr.function = &fp;
		if (put(pp, &pr))
			return -1;
	}
	return 0;
}

/* The string table and the scalars, whose strings were interned first. */
static int put_tail(struct pp *pp, const struct hk_pprof *p, const int64_t *comments,
		    int64_t dflt, const ValueType *period)
{
	Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;

	pr.n_string_table = pp->sd.n;
	pr.string_table = (char **)pp->str;	/* only read */
	pr.time_nanos = p->time_nanos;
	pr.duration_nanos = p->duration_nanos;
	pr.period_type = (ValueType *)period;
	pr.period = p->period;
	pr.n_comment = p->ncomments;
	pr.comment = (int64_t *)comments;
	pr.default_sample_type = dflt;
	return put(pp, &pr);
}

/* Interns the profile's own strings, so that the samples cannot change
 * their indices, and writes it all: 0 or -1. */
static int put_profile(struct pp *pp, const struct hk_pprof *p, int64_t *comments)
{
	ValueType period = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	int64_t dflt = 0;

	if (put_types(pp, p))
		return -1;
	for (size_t i = 0; i < p->ncomments; i++)
		if ((comments[i] = intern_str(pp, p->comments[i])) < 0)
			return -1;
	if (p->default_type && (dflt = intern_str(pp, p->default_type)) < 0)
		return -1;
	if (p->period_type && ((period.type = intern_str(pp, p->period_type)) < 0 ||
			       (period.unit = intern_str(pp, p->period_unit)) < 0))
		return -1;
	for (size_t i = 0; i < p->nsamples; i++)
		if (put_sample(pp, p, &p->samples[i]))
			return -1;
	if (put_mapping(pp) || put_locations(pp) || put_functions(pp))
		return -1;
	return put_tail(pp, p, comments, dflt, p->period_type ? &period : NULL);
}

int hk_pprof_write(FILE *out, const struct hk_pprof *p)
{
	struct pp *pp = pp_new(false);
	int64_t *comments = calloc(p->ncomments + 1, sizeof(*comments));
	int r = -1, e = errno;

	if (pp && comments && (pp->z = hk_zout_open(out))) {
		r = put_profile(pp, p, comments);
		e = errno;
		if (hk_zout_close(pp->z) && !r)
			r = -1, e = errno;
		if (!r && fflush(out))
			r = -1, e = errno;
	} else {
		e = errno;
	}
	if (pp)
		pp_free(pp);
	free(comments);
	errno = e;
	return r;
}

/* ---- folded stacks ------------------------------------------------------ */

struct stack_key {
	const struct pp *pp;
	const uint32_t *ids;
	uint32_t len;
};

static bool stack_eq(const void *ctx, size_t i)
{
	const struct stack_key *k = ctx;
	const struct stack *s = &k->pp->st[i];

	return s->len == k->len &&
	       !memcmp(k->pp->arena + s->off, k->ids, k->len * sizeof(*k->ids));
}

/* Adds v to the sum of the stack of s: 0 or -1. */
static int fold(struct pp *pp, const struct hk_pprof_sample *s, int64_t v)
{
	struct stack_key k = { pp, NULL, 0 };
	uint64_t *slot, h = s->nframes;
	struct stack *st;

	if (s->nframes > UINT32_MAX)
		return errno = EOVERFLOW, -1;
	if (sample_locs(pp, s) ||
	    ROOM(pp->arena, pp->arenacap, pp->narena + s->nframes))
		return -1;
	/* The locations go at the arena's end, kept there if they are new. */
	for (size_t i = 0; i < s->nframes; i++) {
		pp->arena[pp->narena + i] = (uint32_t)pp->ids[i];
		h = step(h, pp->ids[i]);
	}
	k.ids = pp->arena + pp->narena;
	k.len = (uint32_t)s->nframes;
	slot = dd_find(&pp->kd, (uint32_t)fmix(h), stack_eq, &k);
	if (*slot) {
		st = &pp->st[(uint32_t)*slot - 1];
		if (__builtin_add_overflow(st->sum, v, &st->sum))
			return errno = EOVERFLOW, -1;
		return 0;
	}
	if (ROOM(pp->st, pp->stcap, pp->kd.n))
		return -1;
	pp->st[pp->kd.n] = (struct stack){ pp->narena, k.len, v };
	pp->narena += s->nframes;
	return dd_add(&pp->kd, slot, (uint32_t)fmix(h)) < 0 ? -1 : 0;
}

struct line {
	char *b;
	size_t len, cap;
};

static int line_put(struct line *l, const char *s, size_t n)
{
	if (ROOM(l->b, l->cap, l->len + n))
		return -1;
	memcpy(l->b + l->len, s, n);
	l->len += n;
	return 0;
}

/* s with the characters that would split its stack or line replaced:
 * ';' by ',' and line breaks by spaces. */
static int line_name(struct line *l, const char *s)
{
	for (;;) {
		size_t n = strcspn(s, ";\n\r");

		if (line_put(l, s, n))
			return -1;
		if (!s[n])
			return 0;
		if (line_put(l, s[n] == ';' ? "," : " ", 1))
			return -1;
		s += n + 1;
	}
}

/* "function (filename:line)"; an unknown function is "<unknown>". */
static int line_frame(struct line *l, const char *fn, const char *file, int64_t line)
{
	char num[32];
	int n = snprintf(num, sizeof(num), ":%" PRId64 ")", line);

	return line_name(l, *fn ? fn : "<unknown>") || line_put(l, " (", 2) ||
	       line_name(l, file) || line_put(l, num, (size_t)n);
}

/* One stack's line, oldest frame first.  A sample without frames gets
 * tracemalloc's frame for an empty traceback, "<unknown>" line 0. */
static int put_stack(struct pp *pp, const struct stack *s, struct line *l, FILE *out)
{
	char num[32];
	int n = snprintf(num, sizeof(num), " %" PRId64 "\n", s->sum);

	l->len = 0;
	if (!s->len && line_frame(l, "", "<unknown>", 0))
		return -1;
	for (size_t i = s->len; i-- > 0;) {
		const struct loc *c = &pp->loc[pp->arena[s->off + i]];

		if (line_frame(l, pp->str[c->name], pp->str[c->file], c->line) ||
		    (i && line_put(l, ";", 1)))
			return -1;
	}
	if (line_put(l, num, (size_t)n))
		return -1;
	errno = 0;
	if (fwrite(l->b, 1, l->len, out) != l->len)
		return errno = errno ? errno : EIO, -1;
	return 0;
}

static int put_folded(struct pp *pp, FILE *out, const struct hk_pprof *p, size_t value)
{
	struct line l = { 0 };
	int r = 0;

	for (size_t i = 0; i < p->nsamples; i++) {
		int64_t v = p->samples[i].values[value];

		if (v && fold(pp, &p->samples[i], v))
			return -1;
	}
	/* In the order stacks first came; those summing to 0 are left out. */
	for (size_t i = 0; i < pp->kd.n && !r; i++)
		if (pp->st[i].sum)
			r = put_stack(pp, &pp->st[i], &l, out);
	free(l.b);
	return r;
}

int hk_folded_write(FILE *out, const struct hk_pprof *p, size_t value)
{
	struct pp *pp;
	int r, e;

	if (value >= p->ntypes)
		return errno = EINVAL, -1;
	if (!(pp = pp_new(true)))
		return -1;
	r = put_folded(pp, out, p, value);
	if (!r && fflush(out))
		r = -1;
	e = errno;
	pp_free(pp);
	errno = e;
	return r;
}

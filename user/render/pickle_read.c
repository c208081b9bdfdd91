/* tracemalloc snapshot pickles: the reader (see pickle.h). */
#include "pickle.h"
#include "pickle_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Values are typed by shape as they are built: (str, int) is a frame, a
 * tuple of frames a traceback ("seq"), (int, int, seq, int) a trace. */
enum { V_INT, V_STR, V_FRAME, V_SEQ, V_EMPTY_TUPLE, V_TRACE, V_LIST,
       V_DICT, V_CLASS, V_OBJ };
enum { CLS_SNAPSHOT, CLS_TRACES };

struct rv {
	uint8_t kind;
	bool neg;	/* V_INT: u holds an int64 < 0 */
	bool big;	/* V_INT: beyond 64 bits (sign in neg); u unused */
	uint32_t a;	/* STR: length; FRAME: lineno; TRACE: domain;
			 * SEQ/LIST/DICT/OBJ: pool index; CLASS: CLS_* */
	uint32_t c;	/* TRACE: seq index */
	uint32_t d;	/* TRACE: total_nframe */
	uint64_t u;	/* INT: value; STR/FRAME: string offset; TRACE: size */
};

struct rframe { uint64_t str; uint32_t lineno; };
struct rseq { size_t first; uint32_t n; };
struct rtrace { uint64_t size; uint32_t domain, seq, total; };
struct rlist { struct rtrace *v; size_t n, cap; };
#define DICT_MAX 8
struct rdict { uint32_t n; struct rv key[DICT_MAX], val[DICT_MAX]; };
struct robj { uint32_t cls; int64_t state; };	/* dict index or -1 */

#define POOL_MAX 64	/* lists, dicts, objects: a snapshot has 1-2 each */

struct pr {
	const uint8_t *p, *end, *start;
	char *err;
	size_t errsz;
	bool failed;
	struct { struct rv *v; size_t n, cap; } stack, memo;
	struct { size_t *v; size_t n, cap; } marks;
	struct { char *v; size_t n, cap; } str;
	struct { struct rframe *v; size_t n, cap; } frames;
	struct { struct rseq *v; size_t n, cap; } seqs;
	struct rlist lists[POOL_MAX];
	struct rdict dicts[POOL_MAX];
	struct robj objs[POOL_MAX];
	size_t nlists, ndicts, nobjs;
};

__attribute__((format(printf, 2, 3)))
static int pr_fail(struct pr *r, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (r->failed)
		return -1;
	r->failed = true;
	if (r->errsz) {
		n = snprintf(r->err, r->errsz, "pickle offset %zu: ",
			     (size_t)(r->p - r->start));
		va_start(ap, fmt);
		if (n >= 0 && (size_t)n < r->errsz)
			vsnprintf(r->err + n, r->errsz - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Grows a {v, n, cap} array to hold one more; returns 0 or -1. */
#define PR_GROW(r, arr) (((arr).n < (arr).cap) ? 0 :			\
	pr_grow((r), (void **)&(arr).v, &(arr).cap, sizeof(*(arr).v)))

static int pr_grow(struct pr *r, void **v, size_t *cap, size_t elem)
{
	size_t ncap = *cap ? *cap * 2 : 64;
	void *nv = ncap < SIZE_MAX / elem ? realloc(*v, ncap * elem) : NULL;

	if (!nv)
		return pr_fail(r, "out of memory");
	*v = nv, *cap = ncap;
	return 0;
}

static int pr_push(struct pr *r, struct rv v)
{
	if (PR_GROW(r, r->stack))
		return -1;
	r->stack.v[r->stack.n++] = v;
	return 0;
}

/* Pops into *v unless that would reach below the topmost mark. */
static int pr_pop(struct pr *r, struct rv *v)
{
	size_t floor = r->marks.n ? r->marks.v[r->marks.n - 1] : 0;

	if (r->stack.n <= floor)
		return pr_fail(r, "stack underflow");
	*v = r->stack.v[--r->stack.n];
	return 0;
}

/* Items pushed since the last mark: *items, *n; drops the mark. */
static int pr_pop_mark(struct pr *r, struct rv **items, size_t *n)
{
	size_t at;

	if (!r->marks.n)
		return pr_fail(r, "no MARK to pop");
	at = r->marks.v[--r->marks.n];
	/* MARK on an empty stack: no array yet, and NULL + 0 is undefined */
	*items = r->stack.v ? r->stack.v + at : NULL;
	*n = r->stack.n - at;
	r->stack.n = at;	/* items stay readable until the next push */
	return 0;
}

static const uint8_t *pr_take(struct pr *r, size_t n)
{
	const uint8_t *q = r->p;

	if ((size_t)(r->end - r->p) < n) {
		pr_fail(r, "truncated (needs %zu more bytes)", n);
		return NULL;
	}
	r->p += n;
	return q;
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int pr_str(struct pr *r, size_t n)
{
	const uint8_t *s = pr_take(r, n);
	struct rv v = { .kind = V_STR, .a = (uint32_t)n };

	if (!s)
		return -1;
	if (memchr(s, 0, n))
		return pr_fail(r, "string contains NUL");
	if (!hk_pickle_utf8_valid(s, n))
		return pr_fail(r, "string is not UTF-8");
	while (r->str.cap - r->str.n < n + 1)
		if (pr_grow(r, (void **)&r->str.v, &r->str.cap, 1))
			return -1;
	v.u = r->str.n;
	memcpy(r->str.v + r->str.n, s, n);
	r->str.v[r->str.n + n] = 0;
	r->str.n += n + 1;
	return pr_push(r, v);
}

static bool str_is(struct pr *r, const struct rv *v, const char *s)
{
	return v->kind == V_STR && v->a == strlen(s) &&
	       memcmp(r->str.v + v->u, s, v->a) == 0;
}

static int pr_long1(struct pr *r)
{
	const uint8_t *n = pr_take(r, 1), *b = n ? pr_take(r, *n) : NULL;
	struct rv v = { .kind = V_INT };

	if (!b)
		return -1;
	if (*n) {
		bool neg = b[*n - 1] & 0x80;
		uint8_t ext = neg ? 0xff : 0;

		/* fits when bytes past 8 only extend the sign; a negative one
		 * must also fit int64.  Python ints have no bound: one that
		 * does not fit is refused where it is used, naming the field */
		for (int i = 8; i < *n; i++)
			if (b[i] != ext)
				v.big = true;
		if (neg && *n > 8 && !(b[7] & 0x80))
			v.big = true;
		v.u = get_le(b, *n < 8 ? *n : 8);
		if (neg && *n < 8)
			v.u |= ~0ULL << (8 * *n);
		v.neg = neg;
	}
	return pr_push(r, v);
}

/* Unsigned value of an int that must lie in [0, max]. */
static int pr_uint(struct pr *r, const struct rv *v, uint64_t max,
		   const char *what, uint64_t *out)
{
	if (v->kind != V_INT)
		return pr_fail(r, "%s is not an int", what);
	if (v->big || v->neg || v->u > max)
		return pr_fail(r, "%s out of range (0 to %llu)", what,
			       (unsigned long long)max);
	*out = v->u;
	return 0;
}

static int pr_tuple(struct pr *r, const struct rv *it, size_t n)
{
	struct rv v = { 0 };
	uint64_t x = 0;

	if (n == 0) {
		v.kind = V_EMPTY_TUPLE;
	} else if (n == 2 && it[0].kind == V_STR) {
		if (pr_uint(r, &it[1], UINT32_MAX, "line number", &x))
			return -1;
		v.kind = V_FRAME, v.u = it[0].u, v.a = (uint32_t)x;
	} else if (n == 4 && it[0].kind == V_INT) {
		if (it[2].kind != V_SEQ)
			return pr_fail(r, "trace without a traceback tuple");
		v.kind = V_TRACE, v.c = it[2].a;
		if (pr_uint(r, &it[0], UINT32_MAX, "domain", &x))
			return -1;
		v.a = (uint32_t)x;
		/* tracemalloc records a size_t: 2^64 and up is no size */
		if (pr_uint(r, &it[1], UINT64_MAX, "trace size", &v.u) ||
		    pr_uint(r, &it[3], UINT32_MAX, "total_nframe", &x))
			return -1;
		v.d = (uint32_t)x;
	} else {
		/* a traceback: frames, copied out so they are contiguous */
		if (n > UINT32_MAX || r->seqs.n >= UINT32_MAX)
			return pr_fail(r, "tuple too long");
		if (PR_GROW(r, r->seqs))
			return -1;
		r->seqs.v[r->seqs.n] = (struct rseq){ r->frames.n, (uint32_t)n };
		for (size_t i = 0; i < n; i++) {
			if (it[i].kind != V_FRAME)
				return pr_fail(r, "unexpected tuple (%zu items)", n);
			if (PR_GROW(r, r->frames))
				return -1;
			r->frames.v[r->frames.n++] =
				(struct rframe){ it[i].u, it[i].a };
		}
		v.kind = V_SEQ, v.a = (uint32_t)r->seqs.n++;
	}
	return pr_push(r, v);
}

static int pr_tuple_n(struct pr *r, size_t n)
{
	struct rv it[3];

	for (size_t i = n; i > 0; i--)
		if (pr_pop(r, &it[i - 1]))
			return -1;
	return pr_tuple(r, it, n);
}

static int pr_new(struct pr *r, uint8_t kind, size_t *count)
{
	struct rv v = { .kind = kind, .a = (uint32_t)*count };

	if (*count >= POOL_MAX)
		return pr_fail(r, "too many containers");
	if (kind == V_LIST)
		r->lists[*count] = (struct rlist){ 0 };
	else if (kind == V_DICT)
		r->dicts[*count].n = 0;
	(*count)++;
	return pr_push(r, v);
}

static int pr_append(struct pr *r, const struct rv *list, const struct rv *it,
		     size_t n)
{
	struct rlist *l;

	if (list->kind != V_LIST)
		return pr_fail(r, "APPEND(S) to a non-list");
	l = &r->lists[list->a];
	for (size_t i = 0; i < n; i++) {
		if (it[i].kind != V_TRACE)
			return pr_fail(r, "list item is not a trace");
		if (PR_GROW(r, *l))
			return -1;
		l->v[l->n++] = (struct rtrace){ it[i].u, it[i].a, it[i].c,
						it[i].d };
	}
	return 0;
}

static int pr_setitems(struct pr *r, const struct rv *dict,
		       const struct rv *it, size_t n)
{
	struct rdict *d;

	if (dict->kind != V_DICT)
		return pr_fail(r, "SETITEM(S) on a non-dict");
	if (n % 2)
		return pr_fail(r, "SETITEMS with odd item count");
	d = &r->dicts[dict->a];
	for (size_t i = 0; i < n; i += 2) {
		uint32_t k = 0;

		if (it[i].kind != V_STR)
			return pr_fail(r, "dict key is not a str");
		while (k < d->n && !(d->key[k].a == it[i].a &&
			!memcmp(r->str.v + d->key[k].u, r->str.v + it[i].u,
				it[i].a)))
			k++;
		if (k == DICT_MAX)
			return pr_fail(r, "dict too large");
		d->key[k] = it[i], d->val[k] = it[i + 1];
		if (k == d->n)
			d->n++;
	}
	return 0;
}

static int pr_global(struct pr *r)
{
	struct rv name, mod, v = { .kind = V_CLASS };

	if (pr_pop(r, &name) || pr_pop(r, &mod))
		return -1;
	if (!str_is(r, &mod, "tracemalloc"))
		return pr_fail(r, "unsupported global (module is not tracemalloc)");
	if (str_is(r, &name, "Snapshot"))
		v.a = CLS_SNAPSHOT;
	else if (str_is(r, &name, "_Traces"))
		v.a = CLS_TRACES;
	else
		return pr_fail(r, "unsupported global tracemalloc.<%.*s>",
			       name.kind == V_STR ? (int)(name.a > 40 ? 40 : name.a) : 0,
			       name.kind == V_STR ? r->str.v + name.u : "");
	return pr_push(r, v);
}

static int pr_newobj(struct pr *r)
{
	struct rv args, cls, v = { .kind = V_OBJ, .a = (uint32_t)r->nobjs };

	if (pr_pop(r, &args) || pr_pop(r, &cls))
		return -1;
	if (cls.kind != V_CLASS || args.kind != V_EMPTY_TUPLE)
		return pr_fail(r, "unsupported NEWOBJ");
	if (r->nobjs >= POOL_MAX)
		return pr_fail(r, "too many objects");
	r->objs[r->nobjs++] = (struct robj){ cls.a, -1 };
	return pr_push(r, v);
}

static int pr_build(struct pr *r)
{
	struct rv state, obj;

	if (pr_pop(r, &state) || pr_pop(r, &obj))
		return -1;
	if (obj.kind != V_OBJ || state.kind != V_DICT)
		return pr_fail(r, "unsupported BUILD");
	if (r->objs[obj.a].state >= 0)
		return pr_fail(r, "object built twice");
	r->objs[obj.a].state = state.a;
	return pr_push(r, obj);
}

static int pr_memo_get(struct pr *r, uint64_t idx)
{
	if (idx >= r->memo.n)
		return pr_fail(r, "memo index %llu not defined",
			       (unsigned long long)idx);
	return pr_push(r, r->memo.v[idx]);
}

static int pr_op(struct pr *r, uint8_t op)
{
	const uint8_t *b;
	struct rv v, w, *it = NULL;
	size_t n = 0;

	switch (op) {
	case OP_PROTO:
		if (!(b = pr_take(r, 1)))
			return -1;
		if (*b != 4 && *b != 5)
			return pr_fail(r, "unsupported protocol %u", *b);
		return 0;
	case OP_FRAME:	/* a read-ahead hint: only check it is in bounds */
		if (!(b = pr_take(r, 8)))
			return -1;
		if (get_le(b, 8) > (uint64_t)(r->end - r->p))
			return pr_fail(r, "FRAME longer than the data");
		return 0;
	case OP_SHORT_BINUNICODE:
		return (b = pr_take(r, 1)) ? pr_str(r, *b) : -1;
	case OP_BINUNICODE:
		return (b = pr_take(r, 4)) ? pr_str(r, get_le(b, 4)) : -1;
	case OP_MEMOIZE:
		if (!r->stack.n)
			return pr_fail(r, "MEMOIZE on an empty stack");
		if (PR_GROW(r, r->memo))
			return -1;
		r->memo.v[r->memo.n++] = r->stack.v[r->stack.n - 1];
		return 0;
	case OP_BINGET:
		return (b = pr_take(r, 1)) ? pr_memo_get(r, *b) : -1;
	case OP_LONG_BINGET:
		return (b = pr_take(r, 4)) ? pr_memo_get(r, get_le(b, 4)) : -1;
	case OP_MARK:
		if (PR_GROW(r, r->marks))
			return -1;
		r->marks.v[r->marks.n++] = r->stack.n;
		return 0;
	case OP_BININT1:
	case OP_BININT2:
	case OP_BININT:
		n = op == OP_BININT1 ? 1 : op == OP_BININT2 ? 2 : 4;
		if (!(b = pr_take(r, n)))
			return -1;
		v = (struct rv){ .kind = V_INT, .u = get_le(b, (int)n) };
		if (op == OP_BININT && (v.u & 0x80000000)) {
			v.u |= ~0ULL << 32;	/* signed 4-byte */
			v.neg = true;
		}
		return pr_push(r, v);
	case OP_LONG1:
		return pr_long1(r);
	case OP_EMPTY_TUPLE:
		return pr_push(r, (struct rv){ .kind = V_EMPTY_TUPLE });
	case OP_TUPLE1:
	case OP_TUPLE2:
	case OP_TUPLE3:
		return pr_tuple_n(r, (size_t)(op - OP_TUPLE1 + 1));
	case OP_TUPLE:
		return pr_pop_mark(r, &it, &n) ? -1 : pr_tuple(r, it, n);
	case OP_EMPTY_LIST:
		return pr_new(r, V_LIST, &r->nlists);
	case OP_EMPTY_DICT:
		return pr_new(r, V_DICT, &r->ndicts);
	case OP_APPEND:
		if (pr_pop(r, &w) || pr_pop(r, &v))
			return -1;
		return pr_append(r, &v, &w, 1) ? -1 : pr_push(r, v);
	case OP_APPENDS:
		if (pr_pop_mark(r, &it, &n) || pr_pop(r, &v))
			return -1;
		return pr_append(r, &v, it, n) ? -1 : pr_push(r, v);
	case OP_SETITEM: {
		struct rv kv[2];

		if (pr_pop(r, &kv[1]) || pr_pop(r, &kv[0]) || pr_pop(r, &v))
			return -1;
		return pr_setitems(r, &v, kv, 2) ? -1 : pr_push(r, v);
	}
	case OP_SETITEMS:
		if (pr_pop_mark(r, &it, &n) || pr_pop(r, &v))
			return -1;
		return pr_setitems(r, &v, it, n) ? -1 : pr_push(r, v);
	case OP_STACK_GLOBAL:
		return pr_global(r);
	case OP_NEWOBJ:
		return pr_newobj(r);
	case OP_BUILD:
		return pr_build(r);
	default:
		r->p--;
		return pr_fail(r, "unsupported opcode 0x%02x", op);
	}
}

/* The built object's state entry named key, or NULL. */
static const struct rv *pr_attr(struct pr *r, const struct rv *obj,
				uint32_t cls, const char *key)
{
	const struct robj *o;
	const struct rdict *d;

	if (obj->kind != V_OBJ || r->objs[obj->a].cls != cls ||
	    r->objs[obj->a].state < 0)
		return NULL;
	o = &r->objs[obj->a];
	d = &r->dicts[o->state];
	for (uint32_t i = 0; i < d->n; i++)
		if (str_is(r, &d->key[i], key))
			return &d->val[i];
	return NULL;
}

static size_t pr_nattrs(struct pr *r, const struct rv *obj)
{
	return r->dicts[r->objs[obj->a].state].n;
}

/* Converts the parsed list into out; tracebacks are shared per distinct
 * (traceback tuple, total_nframe). */
static int pr_finish(struct pr *r, const struct rlist *l, uint64_t limit,
		     struct hk_pickle_snapshot *out)
{
	struct hk_pkmap seen = { 0 };
	uint32_t *tbi = NULL;
	struct rseq *tbseq = NULL;
	uint32_t *tbtotal = NULL;
	size_t ntb = 0;
	int ret = -1;

	if (l->n > UINT32_MAX)
		return pr_fail(r, "too many traces");
	out->strings = r->str.v, r->str.v = NULL;
	out->frames = malloc((r->frames.n ? r->frames.n : 1) * sizeof(*out->frames));
	out->traces = malloc((l->n ? l->n : 1) * sizeof(*out->traces));
	tbi = malloc((l->n ? l->n : 1) * sizeof(*tbi));
	tbseq = malloc((l->n ? l->n : 1) * sizeof(*tbseq));
	tbtotal = malloc((l->n ? l->n : 1) * sizeof(*tbtotal));
	if (!out->frames || !out->traces || !tbi || !tbseq || !tbtotal)
		goto nomem;
	for (size_t i = 0; i < r->frames.n; i++)
		out->frames[i] = (struct hk_frame){	/* pickles have no names */
			.filename = out->strings + r->frames.v[i].str, .function = "",
			.lineno = r->frames.v[i].lineno };
	for (size_t i = 0; i < l->n; i++) {
		const struct rtrace *t = &l->v[i];
		uint64_t key = (uint64_t)t->seq << 32 | t->total;
		struct hk_pkmap_slot *s = hk_pkmap_get(&seen, key, NULL, NULL);

		if (!s)
			goto nomem;
		if (!s->used) {
			tbseq[ntb] = r->seqs.v[t->seq];
			tbtotal[ntb] = t->total;
			hk_pkmap_put(&seen, s, key, NULL, (uint32_t)ntb++);
		}
		tbi[i] = s->val;
	}
	out->tbs = malloc((ntb ? ntb : 1) * sizeof(*out->tbs));
	if (!out->tbs)
		goto nomem;
	for (size_t i = 0; i < ntb; i++)
		out->tbs[i] = (struct hk_traceback){
			tbseq[i].n, tbtotal[i], out->frames + tbseq[i].first };
	for (size_t i = 0; i < l->n; i++)
		out->traces[i] = (struct hk_trace){
			l->v[i].domain, l->v[i].size, &out->tbs[tbi[i]], 0 };
	out->ntbs = ntb;
	out->snap = (struct hk_snapshot){ out->traces, l->n,
					  (unsigned int)limit };
	ret = 0;
	goto done;
nomem:
	pr_fail(r, "out of memory");
done:
	free(seen.slots);
	free(tbi);
	free(tbseq);
	free(tbtotal);
	return ret;
}

/* STOP: the result must be a Snapshot holding exactly the two attributes,
 * its traces a _Traces holding exactly the list. */
static int pr_stop(struct pr *r, struct hk_pickle_snapshot *out)
{
	struct rv top;
	const struct rv *traces, *limitv, *list;
	uint64_t limit = 0;

	if (pr_pop(r, &top))
		return -1;
	traces = pr_attr(r, &top, CLS_SNAPSHOT, "traces");
	limitv = pr_attr(r, &top, CLS_SNAPSHOT, "traceback_limit");
	if (!traces || !limitv || pr_nattrs(r, &top) != 2)
		return pr_fail(r, "result is not a tracemalloc.Snapshot");
	if (pr_uint(r, limitv, UINT32_MAX, "traceback_limit", &limit))
		return -1;
	list = pr_attr(r, traces, CLS_TRACES, "_traces");
	if (!list || list->kind != V_LIST || pr_nattrs(r, traces) != 1)
		return pr_fail(r, "Snapshot.traces is not a _Traces of a list");
	return pr_finish(r, &r->lists[list->a], limit, out);
}

void hk_pickle_snapshot_free(struct hk_pickle_snapshot *ps)
{
	free(ps->traces);
	free(ps->tbs);
	free(ps->frames);
	free(ps->strings);
	memset(ps, 0, sizeof(*ps));
}

int hk_pickle_read_snapshot(const void *buf, size_t len,
			    struct hk_pickle_snapshot *out,
			    char *err, size_t errsz)
{
	struct pr *r = calloc(1, sizeof(*r));
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!r) {
		if (errsz)
			snprintf(err, errsz, "out of memory");
		return -1;
	}
	r->start = r->p = buf;
	r->end = r->p + len;
	r->err = err, r->errsz = errsz;
	while (!r->failed) {
		const uint8_t *op;

		if (r->p == r->end) {
			pr_fail(r, "ends without STOP");
			break;
		}
		op = pr_take(r, 1);
		if (*op == OP_STOP) {
			ret = pr_stop(r, out);
			break;
		}
		if (op == r->start && *op != OP_PROTO) {
			r->p--;
			pr_fail(r, "not a protocol 4/5 pickle");
			break;
		}
		pr_op(r, *op);
	}
	if (ret)
		hk_pickle_snapshot_free(out);
	for (size_t i = 0; i < r->nlists; i++)
		free(r->lists[i].v);
	free(r->stack.v);
	free(r->memo.v);
	free(r->marks.v);
	free(r->str.v);
	free(r->frames.v);
	free(r->seqs.v);
	free(r);
	return ret;
}

int hk_pickle_load_snapshot(const char *path, struct hk_pickle_snapshot *out,
			    char *err, size_t errsz)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, got;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!f) {
		if (errsz)
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	do {
		if (cap - len < 65536) {
			uint8_t *nb = realloc(buf, cap = cap * 2 + 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				if (errsz)
					snprintf(err, errsz, "%s: out of memory", path);
				return -1;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got);
	if (ferror(f)) {
		if (errsz)
			snprintf(err, errsz, "%s: read error", path);
		ret = -1;
	} else {
		ret = hk_pickle_read_snapshot(buf, len, out, err, errsz);
	}
	free(buf);
	fclose(f);
	return ret;
}


/* tracemalloc snapshot pickles: the writer (see pickle.h).
 *
 * Opcode layout, mirroring CPython's C pickler on a Snapshot:
 *   PROTO 4, then FRAMEs holding:
 *   'tracemalloc' MEMOIZE 'Snapshot' STACK_GLOBAL EMPTY_TUPLE NEWOBJ
 *   EMPTY_DICT MARK
 *     'traces'  GET(0) '_Traces' STACK_GLOBAL EMPTY_TUPLE NEWOBJ
 *               EMPTY_DICT '_traces' EMPTY_LIST
 *               {MARK trace*1000 APPENDS}* | trace APPEND
 *               SETITEM BUILD
 *     'traceback_limit' INT
 *   SETITEMS BUILD STOP
 * trace = MARK INT INT traceback INT TUPLE; traceback = GET(n) when seen
 * before, else the frame tuples, TUPLE1/2/3 or MARK..TUPLE, MEMOIZE.
 */
#include "pickle.h"
#include "pickle_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_TARGET	65536	/* CPython's _FRAME_SIZE_TARGET */
#define FRAME_HDR	9	/* FRAME opcode + 8-byte length */
#define BATCH		1000	/* CPython's BATCHSIZE for APPENDS */

static uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

struct pw {
	FILE *f;
	uint8_t *buf;		/* FRAME_HDR reserved bytes, then the frame */
	size_t len, cap;
	int err;		/* sticky errno */
	uint64_t memo;		/* next memo index */
	struct hk_pkmap fn_ptr, fn_str;	/* filename -> memo index */
	struct hk_pkmap tb_ptr, tb_str;	/* traceback frames -> memo index */
};

static uint8_t *pw_room(struct pw *w, size_t n)
{
	if (w->len + n > w->cap) {
		size_t cap = w->cap * 2 > w->len + n ? w->cap * 2 : w->len + n;
		uint8_t *b = realloc(w->buf, cap);

		if (!b) {
			w->err = ENOMEM;
			return NULL;
		}
		w->buf = b, w->cap = cap;
	}
	w->len += n;
	return w->buf + w->len - n;
}

static void pw_op(struct pw *w, uint8_t op)
{
	uint8_t *p = pw_room(w, 1);

	if (p)
		*p = op;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static void pw_int(struct pw *w, uint64_t v)
{
	uint8_t *p;

	if (v <= 0xff) {
		if ((p = pw_room(w, 2)))
			p[0] = OP_BININT1, p[1] = (uint8_t)v;
	} else if (v <= 0xffff) {
		if ((p = pw_room(w, 3)))
			p[0] = OP_BININT2, put_le(p + 1, v, 2);
	} else if (v <= 0x7fffffff) {
		if ((p = pw_room(w, 5)))
			p[0] = OP_BININT, put_le(p + 1, v, 4);
	} else {
		/* minimal two's complement: a spare byte keeps the sign bit 0 */
		int n = 0;

		while (n < 8 && (v >> (8 * n)) != 0)
			n++;
		if ((v >> (8 * n - 1)) & 1)
			n++;
		if (!(p = pw_room(w, 2 + (size_t)n)))
			return;
		p[0] = OP_LONG1, p[1] = (uint8_t)n;
		put_le(p + 2, v, n > 8 ? 8 : n);
		if (n > 8)
			p[10] = 0;
	}
}

static void pw_str(struct pw *w, const char *s, size_t n)
{
	uint8_t *p;

	if (n <= 0xff) {
		if (!(p = pw_room(w, 2 + n)))
			return;
		p[0] = OP_SHORT_BINUNICODE, p[1] = (uint8_t)n, p += 2;
	} else if (n <= 0xffffffff) {
		if (!(p = pw_room(w, 5 + n)))
			return;
		p[0] = OP_BINUNICODE, put_le(p + 1, n, 4), p += 5;
	} else {
		w->err = EOVERFLOW;
		return;
	}
	memcpy(p, s, n);
}

static void pw_get(struct pw *w, uint32_t idx)
{
	uint8_t *p;

	if (idx <= 0xff) {
		if ((p = pw_room(w, 2)))
			p[0] = OP_BINGET, p[1] = (uint8_t)idx;
	} else {
		if ((p = pw_room(w, 5)))
			p[0] = OP_LONG_BINGET, put_le(p + 1, idx, 4);
	}
}

static uint32_t pw_memoize(struct pw *w)
{
	if (w->memo > 0xffffffff)
		w->err = EOVERFLOW;
	pw_op(w, OP_MEMOIZE);
	return (uint32_t)w->memo++;
}

/* Ends the current frame (if any) and writes it out. */
static void pw_flush(struct pw *w)
{
	size_t n = w->len - FRAME_HDR;

	if (!n || w->err)
		return;
	w->buf[0] = OP_FRAME;
	put_le(w->buf + 1, n, 8);
	if (fwrite(w->buf, 1, w->len, w->f) != w->len)
		w->err = errno ? errno : EIO;
	w->len = FRAME_HDR;
}

static bool eq_str(const void *a, const void *b)
{
	return strcmp(a, b) == 0;
}

/* Memo index of an already written filename, or -1. */
static int64_t pw_known_filename(struct pw *w, const char *fn)
{
	struct hk_pkmap_slot *s = hk_pkmap_get(&w->fn_ptr, (uintptr_t)fn,
					       NULL, NULL);

	if (!s)
		return w->err = ENOMEM, -1;
	if (s->used)
		return s->val;
	struct hk_pkmap_slot *c = hk_pkmap_get(&w->fn_str,
					       hash_bytes(fn, strlen(fn)),
					       fn, eq_str);
	if (!c)
		return w->err = ENOMEM, -1;
	if (!c->used)
		return -1;
	hk_pkmap_put(&w->fn_ptr, s, (uintptr_t)fn, NULL, c->val);
	return c->val;
}

static void pw_filename(struct pw *w, const char *fn)
{
	int64_t idx = pw_known_filename(w, fn);
	size_t n = 0;

	if (idx >= 0) {
		pw_get(w, (uint32_t)idx);
		return;
	}
	n = strlen(fn);
	if (!hk_pickle_utf8_valid((const uint8_t *)fn, n)) {
		w->err = EILSEQ;
		return;
	}
	pw_str(w, fn, n);
	uint32_t m = pw_memoize(w);
	uint64_t h = hash_bytes(fn, n);
	struct hk_pkmap_slot *s = hk_pkmap_get(&w->fn_str, h, fn, eq_str);

	if (s && !s->used)
		hk_pkmap_put(&w->fn_str, s, h, fn, m);
	s = hk_pkmap_get(&w->fn_ptr, (uintptr_t)fn, NULL, NULL);
	if (s && !s->used)
		hk_pkmap_put(&w->fn_ptr, s, (uintptr_t)fn, NULL, m);
	if (!s)
		w->err = ENOMEM;
}

static bool eq_frames(const void *a, const void *b)
{
	const struct hk_traceback *x = a, *y = b;

	if (x->nframe != y->nframe)
		return false;
	for (uint32_t i = 0; i < x->nframe; i++)
		if (x->frames[i].lineno != y->frames[i].lineno ||
		    strcmp(x->frames[i].filename, y->frames[i].filename))
			return false;
	return true;
}

/* Content hash over (filename memo index, lineno); -1 if some filename was
 * never written, so the traceback cannot have been either. */
static int pw_tb_hash(struct pw *w, const struct hk_traceback *tb,
		      uint64_t *h)
{
	*h = tb->nframe;
	for (uint32_t i = 0; i < tb->nframe; i++) {
		int64_t fn = pw_known_filename(w, tb->frames[i].filename);

		if (fn < 0)
			return -1;
		*h = hk_pkmap_mix64(*h ^ ((uint64_t)fn << 32 |
					  tb->frames[i].lineno));
	}
	return 0;
}

static void pw_traceback(struct pw *w, const struct hk_traceback *tb)
{
	struct hk_pkmap_slot *s = hk_pkmap_get(&w->tb_ptr, (uintptr_t)tb,
					       NULL, NULL);
	struct hk_pkmap_slot *c;
	uint64_t h;

	if (!s) {
		w->err = ENOMEM;
		return;
	}
	if (s->used) {
		pw_get(w, s->val);
		return;
	}
	for (uint32_t i = 0; i < tb->nframe; i++)
		if (!tb->frames[i].filename) {
			w->err = EINVAL;
			return;
		}
	if (pw_tb_hash(w, tb, &h) == 0) {
		c = hk_pkmap_get(&w->tb_str, h, tb, eq_frames);
		if (c && c->used) {
			hk_pkmap_put(&w->tb_ptr, s, (uintptr_t)tb, NULL,
				     c->val);
			pw_get(w, c->val);
			return;
		}
	}
	if (tb->nframe > 3)
		pw_op(w, OP_MARK);
	for (uint32_t i = 0; i < tb->nframe; i++) {
		pw_filename(w, tb->frames[i].filename);
		pw_int(w, tb->frames[i].lineno);
		pw_op(w, OP_TUPLE2);
	}
	pw_op(w, tb->nframe == 1 ? OP_TUPLE1 : tb->nframe == 2 ? OP_TUPLE2 :
		 tb->nframe == 3 ? OP_TUPLE3 : OP_TUPLE);
	uint32_t m = pw_memoize(w);

	/* look both up again: the slots found above may be stale */
	s = hk_pkmap_get(&w->tb_ptr, (uintptr_t)tb, NULL, NULL);
	if (s && !s->used)
		hk_pkmap_put(&w->tb_ptr, s, (uintptr_t)tb, NULL, m);
	if (w->err || pw_tb_hash(w, tb, &h))
		return;
	c = hk_pkmap_get(&w->tb_str, h, tb, eq_frames);
	if (c && !c->used)
		hk_pkmap_put(&w->tb_str, c, h, tb, m);
	if (!s || !c)
		w->err = ENOMEM;
}

static void pw_trace(struct pw *w, const struct hk_trace *t)
{
	if (!t->tb || !t->tb->nframe || !t->tb->frames) {
		w->err = EINVAL;	/* tracemalloc never has empty ones */
		return;
	}
	pw_op(w, OP_MARK);
	pw_int(w, t->domain);
	pw_int(w, t->size);
	pw_traceback(w, t->tb);
	pw_int(w, t->tb->total_nframe);
	pw_op(w, OP_TUPLE);
}

/* 'tracemalloc' is memo 0, as in CPython's output. */
static void pw_global(struct pw *w, const char *name)
{
	if (w->memo == 0) {
		pw_str(w, "tracemalloc", 11);
		pw_memoize(w);
	} else {
		pw_get(w, 0);
	}
	pw_str(w, name, strlen(name));
	pw_op(w, OP_STACK_GLOBAL);
	pw_op(w, OP_EMPTY_TUPLE);
	pw_op(w, OP_NEWOBJ);
}

static void pw_traces(struct pw *w, const struct hk_snapshot *snap)
{
	size_t i = 0;

	if (snap->ntraces == 1) {
		pw_trace(w, &snap->traces[0]);
		pw_op(w, OP_APPEND);
		return;
	}
	while (i < snap->ntraces && !w->err) {
		size_t end = i + BATCH < snap->ntraces ? i + BATCH : snap->ntraces;

		pw_op(w, OP_MARK);
		for (; i < end; i++) {
			pw_trace(w, &snap->traces[i]);
			if (w->len >= FRAME_HDR + FRAME_TARGET)
				pw_flush(w);
		}
		pw_op(w, OP_APPENDS);
	}
}

int hk_pickle_write_snapshot(FILE *f, const struct hk_snapshot *snap)
{
	static const uint8_t proto[2] = { OP_PROTO, 4 };
	struct pw w = { .f = f };

	w.cap = FRAME_HDR + FRAME_TARGET + 4096;
	w.buf = malloc(w.cap);
	if (!w.buf) {
		errno = ENOMEM;
		return -1;
	}
	w.len = FRAME_HDR;
	if (fwrite(proto, 1, 2, f) != 2)
		w.err = errno ? errno : EIO;
	pw_global(&w, "Snapshot");
	pw_op(&w, OP_EMPTY_DICT);
	pw_op(&w, OP_MARK);
	pw_str(&w, "traces", 6);
	pw_global(&w, "_Traces");
	pw_op(&w, OP_EMPTY_DICT);
	pw_str(&w, "_traces", 7);
	pw_op(&w, OP_EMPTY_LIST);
	pw_traces(&w, snap);
	pw_op(&w, OP_SETITEM);
	pw_op(&w, OP_BUILD);
	pw_str(&w, "traceback_limit", 15);
	pw_int(&w, snap->traceback_limit);
	pw_op(&w, OP_SETITEMS);
	pw_op(&w, OP_BUILD);
	pw_op(&w, OP_STOP);
	pw_flush(&w);
	free(w.buf);
	free(w.fn_ptr.slots);
	free(w.fn_str.slots);
	free(w.tb_ptr.slots);
	free(w.tb_str.slots);
	if (w.err) {
		errno = w.err;
		return -1;
	}
	return 0;
}

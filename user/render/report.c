/* Hawk's profile JSON.  Hawk's reference renderer (Python):
 *
 *   for stat in top_stats[:count]:
 *       frame = stat.traceback[0]
 *       code_line = linecache.getline(frame.filename, frame.lineno).strip()
 *       yield {"stat": str(stat), "mem_blocks_count": stat.count,
 *              "mem_blocks_size_bytes": stat.size,
 *              "mem_blocks_size": format_bytes(stat.size),
 *              "filename": frame.filename, "lineno": frame.lineno,
 *              "code": code_line}
 *
 * stat.traceback[0] is the OLDEST frame of the grouping traceback (Python's
 * Traceback is oldest first), i.e. tb.frames[nframe - 1] here.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "report.h"
#include "standin.h"
#include "utf8.h"

/* ---- building ----------------------------------------------------------- */

/* The code point of the valid UTF-8 sequence s[0..k). */
static uint32_t code_point(const unsigned char *s, size_t k)
{
	uint32_t c = s[0] & (0x7f >> k);

	for (size_t i = 1; i < k; i++)
		c = c << 6 | (s[i] & 0x3f);
	return c;
}

/* A JSON string of s as Python holds it: lone surrogates as stand-ins
 * (standin.h), other bytes that are not UTF-8 as U+FFFD. */
static json_t *str_n(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	json_t *j;

	if (!memchr(s, 0xed, n) && !memchr(s, 0xf4, n) && (j = json_stringn(s, n)))
		return j;
	char *t = malloc(8 * n + 1), *o = t;
	if (!t)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t k = 1;

		if (u[i] < 0x80) {
			*o++ = s[i++];
			continue;
		}
		if (u[i] == 0xed && i + 2 < n &&
		    (u[i + 1] & 0xe0) == 0xa0 && (u[i + 2] & 0xc0) == 0x80) {
			o += hk_put_utf8(o, 0x100000 + code_point(u + i, 3));
			i += 3;
			continue;
		}
		/* the longest valid sequence here, else U+FFFD */
		k = 0;
		for (size_t l = 4; l >= 2 && !k; l--)
			if (i + l <= n && (j = json_stringn(s + i, l)))
				json_decref(j), k = l;
		if (!k) {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
			continue;
		}
		uint32_t c = code_point(u + i, k);

		if ((c >= HK_SI_LO && c <= HK_SI_HI) || c == HK_SI_LITERAL)
			o += hk_put_utf8(o, HK_SI_LITERAL);
		memcpy(o, s + i, k);
		o += k;
		i += k;
	}
	j = json_stringn(t, (size_t)(o - t));
	free(t);
	return j;
}

static json_t *str(const char *s)
{
	return str_n(s, strlen(s));
}

json_t *hk_report_str(const char *s)
{
	return str(s);
}

static json_t *bytes_str(hk_i128 v)
{
	char buf[HK_SIZE_BUFLEN];

	hk_format_bytes(buf, sizeof(buf), (double)v);
	return json_string(buf);
}

/* A size as Python's int: a JSON integer, or past jansson's 64 bits its
 * decimal digits in a string, which hk_report_dumps writes bare. */
static json_t *size_int(hk_i128 v)
{
	hk_u128 u = v < 0 ? -(hk_u128)v : (hk_u128)v;
	char buf[48], *p = buf + sizeof(buf);

	if (v >= INT64_MIN && v <= INT64_MAX)
		return json_integer((json_int_t)v);
	*--p = 0;
	do
		*--p = (char)('0' + (int)(u % 10));
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	return json_string(p);
}

/* Adds key: value, stealing value; counts failures in *err. */
static void put(json_t *o, const char *key, json_t *value, int *err)
{
	if (!value || json_object_set_new(o, key, value))
		(*err)++;
}

json_t *hk_report_code(struct hk_source *src, const struct hk_frame *f)
{
	size_t n = 0;
	const char *line = src ? hk_source_line(src, f->filename, f->lineno, &n) : "";

	return str_n(line, n);
}

static json_t *lineno_entry(const struct hk_stat *s, bool diff, struct hk_source *src)
{
	const struct hk_frame *f = &s->tb.frames[s->tb.nframe - 1];
	json_t *o = json_object();
	char *text = hk_stat_strdup(s, diff);
	int err = !o || !text;

	if (o) {
		put(o, "stat", text ? str(text) : NULL, &err);
		put(o, "mem_blocks_count", json_integer(s->count), &err);
		put(o, "mem_blocks_size_bytes", size_int((hk_i128)s->size), &err);
		put(o, "mem_blocks_size", bytes_str((hk_i128)s->size), &err);
		put(o, "filename", str(f->filename), &err);
		put(o, "lineno", json_integer(f->lineno), &err);
		put(o, "code", hk_report_code(src, f), &err);
	}
	free(text);
	if (err) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *hk_report_traceback(const struct hk_traceback *tb, struct hk_source *src)
{
	json_t *lines = json_array();
	int err = !lines;

	for (uint32_t i = tb->nframe; i-- > 0 && !err;) {
		const struct hk_frame *f = &tb->frames[i];
		size_t n = 0;
		const char *line = src ? hk_source_line(src, f->filename, f->lineno, &n) : "";
		size_t fl = strlen(f->filename);
		char *buf = malloc(fl + n + 64);

		if (!buf) {
			err = 1;
			break;
		}
		int m = sprintf(buf, "  File \"%s\", line %u", f->filename, f->lineno);
		if (json_array_append_new(lines, str_n(buf, (size_t)m)))
			err = 1;
		if (n && !err) {
			memcpy(buf, "    ", 4);
			memcpy(buf + 4, line, n);
			if (json_array_append_new(lines, str_n(buf, n + 4)))
				err = 1;
		}
		free(buf);
	}
	if (err) {
		json_decref(lines);
		return NULL;
	}
	return lines;
}

static json_t *traceback_entry(const struct hk_stat *s, struct hk_source *src)
{
	json_t *o = json_object();
	int err = !o;

	if (o) {
		put(o, "mem_blocks_count", json_integer(s->count), &err);
		put(o, "mem_blocks_size_bytes", size_int((hk_i128)s->size), &err);
		put(o, "mem_blocks_size", bytes_str((hk_i128)s->size), &err);
		put(o, "traceback", hk_report_traceback(&s->tb, src), &err);
	}
	if (err) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *hk_report_render(const struct hk_stats *stats, size_t count,
			 enum hk_report_style style, struct hk_source *src,
			 const struct hk_heap *heap)
{
	json_t *root = json_object(), *list = json_array();
	int err = !root || !list;

	for (size_t i = 0; i < stats->n && i < count && !err; i++) {
		const struct hk_stat *s = &stats->stats[i];
		json_t *e = style == HK_REPORT_TRACEBACK ? traceback_entry(s, src)
							 : lineno_entry(s, stats->diff, src);

		if (json_array_append_new(list, e))
			err = 1;
	}
	if (root) {
		put(root, "stats", list, &err);
		put(root, "heap_current_bytes", size_int((hk_i128)heap->current), &err);
		put(root, "heap_current", bytes_str((hk_i128)heap->current), &err);
		if (heap->has_diff) {
			put(root, "heap_diff_bytes", size_int(heap->diff), &err);
			put(root, "heap_diff", bytes_str(heap->diff), &err);
		}
	} else {
		json_decref(list);
	}
	if (err) {
		json_decref(root);
		errno = ENOMEM;
		return NULL;
	}
	return root;
}

json_t *hk_report_build(const struct hk_snapshot *snap, const struct hk_snapshot *old,
			enum hk_key_type key, bool cumulative, size_t count,
			struct hk_source *src)
{
	struct hk_stats *stats;
	struct hk_heap heap = { .current = hk_snapshot_total(snap) };
	int err = old ? hk_compare_to(snap, old, key, cumulative, &stats)
		      : hk_statistics(snap, key, cumulative, &stats);

	if (err) {
		errno = -err;
		return NULL;
	}
	if (old) {
		heap.diff = (hk_i128)heap.current - (hk_i128)hk_snapshot_total(old);
		heap.has_diff = true;
	}
	json_t *r = hk_report_render(stats, count,
				     key == HK_KEY_TRACEBACK ? HK_REPORT_TRACEBACK : HK_REPORT_LINENO,
				     src, &heap);
	hk_stats_free(stats);
	return r;
}

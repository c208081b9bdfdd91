#include "symbolize.h"

#include <stdlib.h>
#include <string.h>
#include "linetable.h"
#include "proc.h"
#include "u64map.h"
#include "utf8.h"

struct code_info {
	uint64_t filename_ptr, linetable_ptr, name_ptr;
	int firstlineno, firsttraceable;
	const char *filename;
	const char *function;		/* "" when unreadable */
	uint8_t *linetable;
	size_t ltlen;
};

struct strnode {
	struct strnode *next;
	char s[];
};

struct hk_symbolizer {
	int memfd;
	const struct hk_pyver *v;
	unsigned limit;
	struct hk_u64map codes;		/* code address -> code_info */
	struct hk_u64map stacks;	/* stack id -> hk_traceback */
	struct hk_u64map strings;	/* string hash -> strnode chain */
	struct hk_traceback empty;
	struct hk_frame empty_frame;
	uint64_t failures;
};

static const char unknown[] = "<unknown>";

static uint64_t strhash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ULL;
	return h ? h : 1;
}

/* Equal filenames share one pointer (model.h). */
static const char *intern(struct hk_symbolizer *s, const char *str)
{
	uint64_t h = strhash(str);
	struct strnode *head = hk_u64map_get(&s->strings, h), *n;

	for (n = head; n; n = n->next)
		if (strcmp(n->s, str) == 0)
			return n->s;
	n = malloc(sizeof(*n) + strlen(str) + 1);
	if (!n)
		return unknown;
	strcpy(n->s, str);
	n->next = head;
	if (hk_u64map_put(&s->strings, h, n)) {
		free(n);
		return unknown;
	}
	return n->s;
}

/* A str object as UTF-8 (compact strings: all code object filenames and
 * names); unknown when unreadable. */
static const char *read_str(struct hk_symbolizer *s, uint64_t addr)
{
	const struct hk_pyver *v = s->v;
	uint64_t len;
	uint32_t state;
	unsigned kind, compact, ascii;
	const char *res = unknown;

	if (!addr || hk_mem_read(s->memfd, addr + v->str_length, &len, 8) ||
	    hk_mem_read(s->memfd, addr + v->str_state, &state, 4) ||
	    len > 65536)
		return unknown;
	kind = (state >> 2) & 7;
	compact = (state >> 5) & 1;
	ascii = (state >> 6) & 1;
	if (!compact || (kind != 1 && kind != 2 && kind != 4))
		return unknown;
	uint64_t data = addr + (ascii ? v->str_ascii_data : v->str_compact_data);
	uint8_t *raw = malloc(len * kind + 1);
	char *out = malloc(len * 4 + 1);
	if (raw && out && hk_mem_read(s->memfd, data, raw, len * kind) == 0) {
		size_t o = 0;

		for (uint64_t i = 0; i < len; i++) {
			uint32_t c = kind == 1 ? raw[i] :
				     kind == 2 ? ((uint16_t *)raw)[i] :
						 ((uint32_t *)raw)[i];
			o += hk_put_utf8(out + o, c);
		}
		out[o] = 0;
		res = intern(s, out);
	}
	free(raw);
	free(out);
	return res;
}

static struct code_info *code_info(struct hk_symbolizer *s, uint64_t code)
{
	const struct hk_pyver *v = s->v;
	uint8_t hdr[512];
	struct code_info *ci = hk_u64map_get(&s->codes, code), *n;
	uint64_t fn, lt, nm, ltlen;
	int32_t first, traceable;

	if (v->code_header > sizeof(hdr) ||
	    hk_mem_read(s->memfd, code, hdr, v->code_header))
		return NULL;
	memcpy(&fn, hdr + v->code_filename, 8);
	memcpy(&lt, hdr + v->code_linetable, 8);
	memcpy(&nm, hdr + v->code_name, 8);
	memcpy(&first, hdr + v->code_firstlineno, 4);
	traceable = 0;
	if (v->code_firsttraceable)
		memcpy(&traceable, hdr + v->code_firsttraceable, 4);
	/* The same address may hold a new code object: check it is the one
	 * we cached. */
	if (ci && ci->filename_ptr == fn && ci->linetable_ptr == lt &&
	    ci->name_ptr == nm && ci->firstlineno == first &&
	    ci->firsttraceable == traceable)
		return ci;
	if (!lt || hk_mem_read(s->memfd, lt + v->bytes_size, &ltlen, 8) ||
	    ltlen > (1 << 24))
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->linetable = malloc(ltlen ? ltlen : 1);
	if (!n->linetable ||
	    hk_mem_read(s->memfd, lt + v->bytes_data, n->linetable, ltlen)) {
		free(n->linetable);
		free(n);
		return NULL;
	}
	n->ltlen = ltlen;
	n->filename_ptr = fn;
	n->linetable_ptr = lt;
	n->name_ptr = nm;
	n->firstlineno = first;
	n->firsttraceable = traceable;
	n->filename = read_str(s, fn);
	n->function = read_str(s, nm);
	if (n->function == unknown)
		n->function = "";
	/* Tracebacks hold only interned strings, never the entry itself. */
	if (ci) {
		free(ci->linetable);
		free(ci);
	}
	hk_u64map_put(&s->codes, code, n);
	return n;
}

struct hk_symbolizer *hk_sym_new(int memfd, const struct hk_pyver *v,
				 unsigned limit)
{
	struct hk_symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->memfd = memfd;
	s->v = v;
	s->limit = limit;
	s->empty_frame.filename = unknown;
	s->empty_frame.function = "";
	s->empty_frame.lineno = 0;
	s->empty_frame.firstlineno = 0;
	s->empty.nframe = 1;
	s->empty.total_nframe = 1;
	s->empty.frames = &s->empty_frame;
	return s;
}

const struct hk_traceback *hk_sym_empty(struct hk_symbolizer *s)
{
	return &s->empty;
}

const struct hk_traceback *hk_sym_lookup(struct hk_symbolizer *s, uint64_t id)
{
	return id ? hk_u64map_get(&s->stacks, id) : &s->empty;
}

uint64_t hk_sym_failures(const struct hk_symbolizer *s)
{
	return s->failures;
}

const struct hk_traceback *hk_sym_resolve(struct hk_symbolizer *s, uint64_t id,
					  const struct hk_stack *raw)
{
	const struct hk_traceback *old = hk_sym_lookup(s, id);
	struct hk_traceback *tb;
	struct hk_frame *fr;
	unsigned n = 0, skipped = 0;

	if (old)
		return old;
	tb = calloc(1, sizeof(*tb));
	fr = calloc(s->limit < raw->nframes ? s->limit : raw->nframes + 1u,
		    sizeof(*fr));
	if (!tb || !fr) {
		free(tb);
		free(fr);
		return &s->empty;
	}
	for (unsigned i = 0; i < raw->nframes && i < HK_MAX_FRAMES; i++) {
		const struct hk_frame_raw *f = &raw->frames[i];
		struct code_info *ci;
		int addr, line;

		/* Owners that are always incomplete (3.13+): their
		 * executable need not be a code object at all. */
		if (s->v->bpf.owner_incomplete_from &&
		    f->owner >= s->v->bpf.owner_incomplete_from) {
			skipped++;
			continue;
		}
		ci = code_info(s, f->code);
		if (!ci) {
			s->failures++;
			if (n < s->limit)
				fr[n++] = (struct hk_frame){ .filename = unknown,
							     .function = "" };
			continue;
		}
		/* tracemalloc skips frames that have not started running
		 * (_PyFrame_IsIncomplete). */
		if (s->v->code_firsttraceable &&
		    f->owner != s->v->owned_by_generator &&
		    f->instr_off < (int64_t)s->v->code_adaptive + 2 * ci->firsttraceable) {
			skipped++;
			continue;
		}
		if (n >= s->limit)
			continue;
		addr = f->instr_off - (int)s->v->code_adaptive;
		line = s->v->linetable_format == 310 ?
		       hk_addr2line_310(ci->linetable, ci->ltlen, ci->firstlineno, addr) :
		       hk_addr2line_311(ci->linetable, ci->ltlen, ci->firstlineno, addr);
		fr[n++] = (struct hk_frame){
			.filename = ci->filename, .function = ci->function,
			.lineno = line < 0 ? 0 : (unsigned)line,
			.firstlineno = ci->firstlineno < 0 ? 0 : (unsigned)ci->firstlineno };
	}
	if (!n) {
		free(tb);
		free(fr);
		hk_u64map_put(&s->stacks, id, &s->empty);
		return &s->empty;
	}
	tb->nframe = n;
	tb->total_nframe = raw->total - skipped;
	tb->frames = fr;
	hk_u64map_put(&s->stacks, id, tb);
	return tb;
}

void hk_sym_free(struct hk_symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->codes.cap; i++) {
		struct code_info *ci = s->codes.vals[i];

		if (s->codes.keys[i] && ci) {
			free(ci->linetable);
			free(ci);
		}
	}
	for (size_t i = 0; i < s->stacks.cap; i++) {
		struct hk_traceback *tb = s->stacks.vals[i];

		if (s->stacks.keys[i] && tb && tb != &s->empty) {
			free((void *)tb->frames);
			free(tb);
		}
	}
	for (size_t i = 0; i < s->strings.cap; i++) {
		struct strnode *n = s->strings.vals[i], *nx;

		for (; s->strings.keys[i] && n; n = nx) {
			nx = n->next;
			free(n);
		}
	}
	hk_u64map_free(&s->codes);
	hk_u64map_free(&s->stacks);
	hk_u64map_free(&s->strings);
	free(s);
}

/* A line cache with linecache.getline() + str.strip() semantics.
 *
 * Each file is read whole, decoded to UTF-8 the way tokenize.open() decodes
 * (BOM, coding cookie, strict decoding, universal newlines), split into
 * lines and stripped in place, so a lookup is a hash probe and an index.
 */
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "creds.h"
#include "source.h"

#define MAX_FILE (256u << 20)

struct file {
	struct file *next;	/* hash chain */
	char *name;
	char *text;		/* decoded, lines NUL-terminated in place */
	size_t *start;		/* stripped line i: text + start[i] */
	size_t *len;
	size_t nlines;
};

struct hk_source {
	char *root;		/* "" for "/" */
	char *cwd;		/* NULL: ours */
	int rootfd;		/* -1 until opened, -2 when unusable */
	const struct hk_creds *creds;	/* NULL: ours */
	struct file **buckets;
	size_t nbuckets, nfiles;
};

/* ---- reading ------------------------------------------------------------ */

static int open_in_root(struct hk_source *src, const char *filename)
{
	if (src->rootfd == -1) {
		src->rootfd = open(src->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (src->rootfd < 0)
			src->rootfd = -2;
	}
	if (src->rootfd >= 0) {
		struct open_how how = {
			.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
			.resolve = RESOLVE_IN_ROOT,
		};
		const char *rel = filename;

		while (*rel == '/')
			rel++;
		int fd = syscall(SYS_openat2, src->rootfd, *rel ? rel : ".", &how, sizeof(how));
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM && errno != E2BIG))
			return fd;
	}
	/* no openat2 (kernel < 5.6, seccomp): plain prefixing */
	size_t n = strlen(src->root) + strlen(filename) + 1;
	char *path = malloc(n);
	if (!path)
		return -1;
	strcpy(path, src->root);
	strcat(path, filename);
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	free(path);
	return fd;
}

static int open_source(struct hk_source *src, const char *filename)
{
	const int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;

	if (filename[0] == '/')
		return *src->root ? open_in_root(src, filename) : open(filename, flags);
	if (!src->cwd)
		return open(filename, flags);
	char *path = malloc(strlen(src->cwd) + strlen(filename) + 2);
	if (!path)
		return -1;
	strcpy(path, src->cwd);
	strcat(path, "/");
	strcat(path, filename);
	int fd = open(path, flags);
	free(path);
	return fd;
}

/* Whole regular file, or NULL; one spare byte for a NUL. */
static char *read_file(int fd, size_t *size)
{
	struct stat st;
	size_t cap, n = 0;
	char *buf;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE)
		return NULL;
	cap = (size_t)st.st_size + 4096;	/* st_size may be stale or 0 */
	if (!(buf = malloc(cap)))
		return NULL;
	for (;;) {
		if (n + 1 >= cap) {
			char *nb = cap > MAX_FILE ? NULL : realloc(buf, cap * 2);

			if (!nb)
				goto fail;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*size = n;
	return buf;
fail:
	free(buf);
	return NULL;
}

/* ---- decoding ----------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (strict, like Python's codec:
 * no overlongs, surrogates or code points above U+10FFFF), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2, c = s[0] & 0x1F, min = 0x80;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3, c = s[0] & 0x0F, min = 0x800;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

static bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	for (size_t i = 0, k; i < n; i += k)
		if (!(k = utf8_seq(p + i, n - i, &cp)))
			return false;
	return true;
}

static bool is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

/* cookie_re = r'^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)' on one line (no
 * '\n' inside but the last byte).  Copies the group into enc. */
static bool match_cookie(const char *l, size_t n, char *enc, size_t enclen)
{
	size_t i = 0;

	while (i < n && (l[i] == ' ' || l[i] == '\t' || l[i] == '\f'))
		i++;
	if (i >= n || l[i] != '#')
		return false;
	for (i++; i + 7 <= n && l[i] != '\n'; i++) {
		if (memcmp(l + i, "coding", 6) || (l[i + 6] != ':' && l[i + 6] != '='))
			continue;
		size_t j = i + 7, k;

		while (j < n && (l[j] == ' ' || l[j] == '\t'))
			j++;
		for (k = j; k < n && (is_word(l[k]) || l[k] == '-' || l[k] == '.'); k++)
			;
		if (k > j) {
			size_t m = k - j < enclen - 1 ? k - j : enclen - 1;

			memcpy(enc, l + j, m);
			enc[m] = 0;
			return true;
		}
	}
	return false;
}

/* tokenize._get_normal_name */
static void normal_name(char *enc)
{
	char e[13];
	size_t i;

	for (i = 0; i < 12 && enc[i]; i++)
		e[i] = enc[i] == '_' ? '-' : (enc[i] >= 'A' && enc[i] <= 'Z') ? enc[i] + 32 : enc[i];
	e[i] = 0;
	if (!strcmp(e, "utf-8") || !strncmp(e, "utf-8-", 6)) {
		strcpy(enc, "utf-8");
		return;
	}
	static const char *const latin[] = { "latin-1", "iso-8859-1", "iso-latin-1" };
	for (size_t k = 0; k < 3; k++) {
		size_t l = strlen(latin[k]);

		if (!strcmp(e, latin[k]) || (!strncmp(e, latin[k], l) && e[l] == '-')) {
			strcpy(enc, "iso-8859-1");
			return;
		}
	}
}

/* Is this a name Python's codec registry maps to utf_8? */
static bool is_utf8_codec(const char *enc)
{
	static const char *const aliases[] = { "utf_8", "u8", "utf", "utf8", "utf8_ucs2",
						"utf8_ucs4", "cp65001" };
	char e[32];
	size_t n = 0;
	bool sep = false;

	/* encodings.normalize_encoding, lower-cased */
	for (const char *p = enc; *p && n < sizeof(e) - 1; p++) {
		char c = *p;

		if (is_word(c) && c != '_') {
			if (sep && n)
				e[n++] = '_';
			e[n++] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
			sep = false;
		} else if (c == '.') {
			if (sep && n)
				e[n++] = '_';
			e[n++] = c;
			sep = false;
		} else {
			sep = true;
		}
	}
	e[n] = 0;
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (!strcmp(e, aliases[i]))
			return true;
	return false;
}

static iconv_t open_codec(const char *enc)
{
	char alt[64];
	iconv_t cd = iconv_open("UTF-8", enc);

	if (cd != (iconv_t)-1)
		return cd;
	size_t i;
	for (i = 0; enc[i] && i < sizeof(alt) - 1; i++)
		alt[i] = enc[i] == '_' ? '-' : enc[i];
	alt[i] = 0;
	return iconv_open("UTF-8", alt);
}

/* find_cookie(): 1 with enc set, 0 without cookie, -1 on SyntaxError. */
static int find_cookie(const char *l, size_t n, bool bom, char *enc, size_t enclen)
{
	if (!utf8_valid(l, n))
		return -1;
	if (!match_cookie(l, n, enc, enclen))
		return 0;
	normal_name(enc);
	if (!is_utf8_codec(enc)) {
		iconv_t cd = open_codec(enc);

		if (cd == (iconv_t)-1)
			return -1;	/* unknown encoding */
		iconv_close(cd);
	}
	if (bom && strcmp(enc, "utf-8"))
		return -1;
	return 1;
}

/* blank_re = br'^[ \t\f]*(?:[#\r\n]|$)' */
static bool is_blank(const char *l, size_t n)
{
	size_t i = 0;

	while (i < n && (l[i] == ' ' || l[i] == '\t' || l[i] == '\f'))
		i++;
	return i == n || l[i] == '#' || l[i] == '\r' || l[i] == '\n';
}

static size_t line_len(const char *s, size_t n)
{
	const char *nl = memchr(s, '\n', n);

	return nl ? (size_t)(nl - s) + 1 : n;
}

/* tokenize.detect_encoding(); false on SyntaxError. *skip: BOM bytes. */
static bool detect_encoding(const char *buf, size_t n, char *enc, size_t enclen, size_t *skip)
{
	bool bom = n >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3);

	*skip = bom ? 3 : 0;
	strcpy(enc, "utf-8");
	buf += *skip;
	n -= *skip;
	if (!n)
		return true;
	size_t l1 = line_len(buf, n);
	int r = find_cookie(buf, l1, bom, enc, enclen);
	if (r)
		return r > 0;
	if (!is_blank(buf, l1) || l1 == n)
		return true;
	r = find_cookie(buf + l1, line_len(buf + l1, n - l1), bom, enc, enclen);
	if (!r)
		strcpy(enc, "utf-8");
	return r >= 0;
}

/* Non-UTF-8 codecs through iconv; NULL on a decoding error. */
static char *iconv_decode(const char *enc, const char *in, size_t n, size_t *outn)
{
	iconv_t cd = open_codec(enc);
	size_t cap = n * 4 + 16, left = n, room = cap;
	char *out = malloc(cap + 1), *ip = (char *)in, *op = out;

	if (cd == (iconv_t)-1 || !out)
		goto fail;
	if (iconv(cd, &ip, &left, &op, &room) == (size_t)-1 ||
	    iconv(cd, NULL, NULL, &op, &room) == (size_t)-1)
		goto fail;	/* EILSEQ/EINVAL: a UnicodeDecodeError */
	iconv_close(cd);
	*outn = (size_t)(op - out);
	return out;
fail:
	if (cd != (iconv_t)-1)
		iconv_close(cd);
	free(out);
	return NULL;
}

/* ---- lines -------------------------------------------------------------- */

static bool space_cp(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
	       c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
	       c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* str.strip() on valid UTF-8 text[*b, *e). */
static void strip(const char *text, size_t *b, size_t *e)
{
	const unsigned char *t = (const unsigned char *)text;
	uint32_t cp;
	size_t k;

	while (*b < *e && (k = utf8_seq(t + *b, *e - *b, &cp)) && space_cp(cp))
		*b += k;
	while (*e > *b) {
		size_t s = *e - 1;

		while (s > *b && (t[s] & 0xC0) == 0x80)
			s--;
		if (!utf8_seq(t + s, *e - s, &cp) || !space_cp(cp))
			break;
		*e = s;
	}
}

/* Universal newlines, then strip each line; NUL-terminates them in place. */
static int split_lines(struct file *f, size_t n)
{
	size_t cap = 0;

	for (size_t i = 0; i < n;) {
		size_t b = i, e;

		while (i < n && f->text[i] != '\n' && f->text[i] != '\r')
			i++;
		e = i;
		if (i < n)
			i += (f->text[i] == '\r' && i + 1 < n && f->text[i + 1] == '\n') ? 2 : 1;
		if (f->nlines == cap) {
			cap = cap ? cap * 2 : 64;
			size_t *ns = realloc(f->start, cap * sizeof(*ns));
			if (!ns)
				return -ENOMEM;
			f->start = ns;
			size_t *nl = realloc(f->len, cap * sizeof(*nl));
			if (!nl)
				return -ENOMEM;
			f->len = nl;
		}
		strip(f->text, &b, &e);
		f->text[e] = 0;
		f->start[f->nlines] = b;
		f->len[f->nlines++] = e - b;
	}
	return 0;
}

/* Read and decode; leaves f without lines when Python would give []. */
static int load(struct hk_source *src, struct file *f)
{
	struct hk_creds_saved saved;
	char enc[64], *raw = NULL;
	size_t n, skip, tn;
	int fd;

	if (src->creds && hk_creds_enter(src->creds, &saved))
		return 0;
	if ((fd = open_source(src, f->name)) >= 0) {
		raw = read_file(fd, &n);
		close(fd);
	}
	if (src->creds)
		hk_creds_leave(&saved);
	if (!raw || !detect_encoding(raw, n, enc, sizeof(enc), &skip)) {
		free(raw);
		return 0;
	}
	if (is_utf8_codec(enc)) {
		if (!utf8_valid(raw + skip, n - skip)) {
			free(raw);
			return 0;
		}
		memmove(raw, raw + skip, n - skip);
		f->text = raw;
		tn = n - skip;
	} else {
		f->text = iconv_decode(enc, raw, n, &tn);
		free(raw);
		if (!f->text)
			return 0;
	}
	f->text[tn] = 0;
	if (split_lines(f, tn)) {
		f->nlines = 0;
		return -ENOMEM;
	}
	return 0;
}

/* ---- cache -------------------------------------------------------------- */

static size_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (size_t)(h ^ h >> 32);
}

static int grow(struct hk_source *src)
{
	size_t nb = src->nbuckets * 2;
	struct file **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < src->nbuckets; i++) {
		for (struct file *f = src->buckets[i], *next; f; f = next) {
			next = f->next;
			f->next = b[name_hash(f->name) & (nb - 1)];
			b[name_hash(f->name) & (nb - 1)] = f;
		}
	}
	free(src->buckets);
	src->buckets = b;
	src->nbuckets = nb;
	return 0;
}

struct hk_source *hk_source_new(const char *root, const char *cwd)
{
	struct hk_source *src = calloc(1, sizeof(*src));

	if (!src)
		return NULL;
	if (!root || !strcmp(root, "/"))
		root = "";
	src->root = strdup(root);
	src->cwd = cwd ? strdup(cwd) : NULL;
	src->rootfd = -1;
	src->nbuckets = 64;
	src->buckets = calloc(src->nbuckets, sizeof(*src->buckets));
	if (!src->root || (cwd && !src->cwd) || !src->buckets) {
		hk_source_free(src);
		return NULL;
	}
	return src;
}

void hk_source_as(struct hk_source *src, const struct hk_creds *c)
{
	src->creds = c;
}

void hk_source_free(struct hk_source *src)
{
	if (!src)
		return;
	for (size_t i = 0; i < src->nbuckets && src->buckets; i++) {
		for (struct file *f = src->buckets[i], *next; f; f = next) {
			next = f->next;
			free(f->name);
			free(f->text);
			free(f->start);
			free(f->len);
			free(f);
		}
	}
	if (src->rootfd >= 0)
		close(src->rootfd);
	free(src->buckets);
	free(src->root);
	free(src->cwd);
	free(src);
}

static struct file *lookup(struct hk_source *src, const char *filename)
{
	size_t h = name_hash(filename);

	for (struct file *f = src->buckets[h & (src->nbuckets - 1)]; f; f = f->next)
		if (!strcmp(f->name, filename))
			return f;
	if (src->nfiles >= src->nbuckets && grow(src))
		return NULL;

	struct file *f = calloc(1, sizeof(*f));
	if (!f || !(f->name = strdup(filename))) {
		free(f);
		return NULL;
	}
	size_t n = strlen(filename);
	/* linecache: no file behind "" and "<string>"-like names */
	if (n && !(filename[0] == '<' && filename[n - 1] == '>'))
		load(src, f);
	f->next = src->buckets[h & (src->nbuckets - 1)];
	src->buckets[h & (src->nbuckets - 1)] = f;
	src->nfiles++;
	return f;
}

const char *hk_source_line(struct hk_source *src, const char *filename,
			   unsigned int lineno, size_t *len)
{
	struct file *f = src && filename ? lookup(src, filename) : NULL;

	if (!f || lineno < 1 || lineno > f->nlines) {
		if (len)
			*len = 0;
		return "";
	}
	if (len)
		*len = f->len[lineno - 1];
	return f->text + f->start[lineno - 1];
}

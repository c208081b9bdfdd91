/* Source lines as linecache.getline(filename, lineno).strip() would give
 * them, read from the traced process's view of the filesystem. */
#ifndef HAWK_SOURCE_H
#define HAWK_SOURCE_H

#include <stddef.h>

struct hk_source;

/* root: prefix under which absolute filenames are read, e.g.
 * "/proc/PID/root"; NULL, "" or "/" mean this process's "/".  With a real
 * prefix, symlinks are resolved inside it (openat2 RESOLVE_IN_ROOT, plain
 * prefixing on kernels without openat2).
 * cwd: directory for relative filenames, e.g. "/proc/PID/cwd"; NULL means
 * this process's working directory.  linecache would also search the
 * target's sys.path, which we cannot know: relative names not found in cwd
 * give "".
 * Returns NULL when out of memory. */
struct hk_source *hk_source_new(const char *root, const char *cwd);
void hk_source_free(struct hk_source *src);

struct hk_creds;
/* Files are opened, and their directories searched, with c (which must
 * outlive src): the traced process's credentials, so that what it could not
 * read gives "". Without: ours. */
void hk_source_as(struct hk_source *src, const struct hk_creds *c);

/* linecache.getline(filename, lineno).strip(), as UTF-8.  Never NULL: ""
 * when the file cannot be read or decoded, or lineno is out of range.
 * Each file is read and decoded once (failures too) and kept until
 * hk_source_free.  len (if not NULL) gets the length, since a line may hold
 * NUL characters.
 *
 * Decoding follows tokenize.open(): UTF-8 BOM, PEP 263 coding cookie on
 * line 1 or 2 (UTF-8 strictly validated by us, other codecs via iconv),
 * universal newlines (\r\n, \r, \n).  strip() removes exactly the code
 * points Python's str.isspace() accepts (ASCII \t\n\v\f\r, \x1c-\x1f and
 * space, plus U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000).  Only regular files are read (Python would also
 * try FIFOs and devices), and files above 256 MiB are skipped. */
const char *hk_source_line(struct hk_source *src, const char *filename,
			   unsigned int lineno, size_t *len);

#endif

/* hawk-bpf compare OLD NEW; see compare.h.
 *
 * Hawk's interval profile, from files instead of a live process:
 *
 *   top_stats = new.compare_to(old, key_type, cumulative)
 *   heap_current_bytes = total(new), heap_diff_bytes = total(new) - total(old)
 *
 * rendered by hk_report_build().  Nothing here touches a process.
 */
#include "compare.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"
#include "pickle.h"
#include "report.h"
#include "source.h"
#include "stats.h"

/* The whole file at path in a malloc'ed buffer.  Returns 0, or -1 with
 * errno set.  Reads with read(2), so pipes (/dev/stdin, <(...)) work. */
int hk_slurp(const char *path, uint8_t **out, size_t *outlen)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st))
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	cap = 65536;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < SIZE_MAX / 4)
		cap += (size_t)st.st_size;	/* EOF is then seen in one go */
	if (!(buf = malloc(cap)))
		goto fail;
	for (;;) {
		ssize_t got;

		if (len == cap) {
			uint8_t *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;

			if (!nb) {
				errno = ENOMEM;
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		got = read(fd, buf + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			goto fail;
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	*out = buf;
	*outlen = len;
	return 0;
fail:
	e = errno;
	free(buf);
	close(fd);
	errno = e;
	return -1;
}

/* Loads one snapshot; on failure prints why, naming the file. */
int hk_snapshot_load(const char *path, struct hk_pickle_snapshot *ps)
{
	char err[256];
	uint8_t *buf;
	size_t len;
	int rc;

	memset(ps, 0, sizeof(*ps));
	if (hk_slurp(path, &buf, &len))
		return hk_fail("cannot read %s: %s", path, strerror(errno));
	if (len == 0) {
		free(buf);
		return hk_fail("%s: not a tracemalloc snapshot pickle: the file is empty",
			    path);
	}
	rc = hk_pickle_read_snapshot(buf, len, ps, err, sizeof(err));
	free(buf);
	if (rc)
		return hk_fail("%s: not a tracemalloc snapshot pickle: %s", path, err);
	return 0;
}

/* The report text, Python's json.dumps(report, indent=2); NULL when out
 * of memory (already reported).  compare_to cannot refuse the key: the
 * parser refused --cumulative with traceback. */
static char *render(const struct hk_options *o, const struct hk_snapshot *new,
		    const struct hk_snapshot *old)
{
	struct hk_source *src = hk_source_new(NULL, NULL);
	json_t *rep = NULL;
	char *text = NULL;

	if (src)
		rep = hk_report_build(new, old,
				      o->format == HK_FMT_TRACEBACK ? HK_KEY_TRACEBACK
								    : HK_KEY_LINENO,
				      o->cumulative, o->count, src);
	if (rep)
		text = hk_report_dumps(rep);
	if (!text)
		hk_fail("cannot build the report: out of memory");
	json_decref(rep);
	hk_source_free(src);
	return text;
}

/* -o as the tracing commands treat it (outfile.h): an existing file is
 * replaced whole, or not at all. */
static int write_out(const char *path, const char *text)
{
	struct hk_out out;
	char err[512];

	if (hk_out_open(&out, path, err, sizeof(err)))
		return hk_fail("%s", err);
	errno = 0;
	if (fputs(text, out.f) < 0 || fputc('\n', out.f) == EOF) {
		hk_out_error(&out, errno, err, sizeof(err));
		hk_out_discard(&out);
		return hk_fail("%s", err);
	}
	if (hk_out_commit(&out, err, sizeof(err)))
		return hk_fail("%s", err);
	return 0;
}

int hk_compare_main(const struct hk_options *o)
{
	struct hk_pickle_snapshot old, new;
	char *text;
	int rc = 1;

	if (hk_snapshot_load(o->old_file, &old))
		return 1;
	if (hk_snapshot_load(o->new_file, &new)) {
		hk_pickle_snapshot_free(&old);
		return 1;
	}
	/* Both are read before -o is created or truncated. */
	text = render(o, &new.snap, &old.snap);
	if (text)
		rc = write_out(o->output, text);
	free(text);
	hk_pickle_snapshot_free(&new);
	hk_pickle_snapshot_free(&old);
	return rc;
}

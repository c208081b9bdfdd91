/* Where a report goes: -o FILE or standard output.
 *
 * hk_out_open runs before anything touches the target, so that an -o
 * that cannot be written is refused first; hk_out_commit puts the report
 * in place once it is whole.  A regular file (or a name not there yet) is
 * written to an unnamed file in the same directory and renamed over the
 * name at commit: a run that is refused, fails or is killed leaves an
 * existing report as it was and creates nothing, and a reader never sees
 * half a report.  The new file takes the mode and owner of the one it
 * replaces.  Anything else (a device such as /dev/full, a FIFO, and every
 * /dev/ or /proc/ name, such as /dev/stdout, which stands for a file
 * someone already holds open) is opened for writing at once and written
 * where it is. */
#ifndef HAWK_OUTFILE_H
#define HAWK_OUTFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

struct hk_out {
	FILE *f;		/* write the report here */
	const char *name;	/* for messages: the path, or "standard output" */
	int dirfd;		/* replace: the directory of the name, else -1 */
	char base[NAME_MAX + 1];	/* replace: the name in dirfd */
	char tmp[NAME_MAX + 1];	/* replace: the temporary's name, if it has one */
	bool in_place;		/* no temporary: f is the file itself */
	bool trunc;		/* in place, a regular file: cut it at commit */
};

/* Opens path for the report (NULL: standard output). 0, or -1 with "cannot
 * write the report to PATH: REASON" in err. */
int hk_out_open(struct hk_out *o, const char *path, char *err, size_t errlen);
/* Flushes the report to disk and puts it in place; closes. 0, or -1 with
 * "cannot write the report to PATH: REASON" in err (an existing regular
 * file is then as it was). */
int hk_out_commit(struct hk_out *o, char *err, size_t errlen);
/* The report will not be written: closes, and leaves nothing behind (a
 * file opened in place stays as it was). */
void hk_out_discard(struct hk_out *o);
/* The whole round: opens path (NULL: standard output), fill writes the
 * report into the stream (0, or -1 with errno), and it is put in place.
 * 0, or -1 with "cannot write the report to PATH: REASON" in err. */
int hk_out_write(const char *path, int (*fill)(FILE *f, const void *arg),
		 const void *arg, char *err, size_t errlen);
/* "cannot write the report to NAME: strerror(e)" into err; returns -1. */
int hk_out_error(const struct hk_out *o, int e, char *err, size_t errlen);

#endif

/* -o FILE: checked before attaching, put in place whole at the end (see
 * outfile.h). */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int hk_out_error(const struct hk_out *o, int e, char *err, size_t errlen)
{
	snprintf(err, errlen, "cannot write the report to %s: %s", o->name,
		 strerror(e ? e : EIO));
	return -1;
}

/* /dev/stdout, /proc/self/fd/N and their kind stand for a file someone
 * already holds open (a shell's redirection, maybe appending to it):
 * written where it is, never replaced. */
static bool names_open_file(const char *path)
{
	return strncmp(path, "/dev/", 5) == 0 || strncmp(path, "/proc/", 6) == 0;
}

/* trunc: a regular file, cut to the report's length at commit. */
static int open_in_place(struct hk_out *o, const char *path, bool trunc)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -1;
	o->f = fdopen(fd, "w");
	if (!o->f) {
		close(fd);
		return -1;
	}
	o->in_place = true;
	o->trunc = trunc;
	return 0;
}

/* The directory and name to replace: those of the file path resolves to
 * (a symlink's target is replaced, not the link), else path's own. */
static int split_target(struct hk_out *o, const char *path, char *dir, size_t dlen)
{
	char *real = realpath(path, NULL);
	const char *p = real ? real : path, *slash = strrchr(p, '/');
	const char *base = slash ? slash + 1 : p;
	int rc = 0;

	if (!slash)
		snprintf(dir, dlen, ".");
	else
		snprintf(dir, dlen, "%.*s", slash == p ? 1 : (int)(slash - p), p);
	if (!*base || strlen(base) >= sizeof(o->base)) {
		errno = *base ? ENAMETOOLONG : EISDIR;
		rc = -1;
	} else {
		snprintf(o->base, sizeof(o->base), "%s", base);
	}
	free(real);
	return rc;
}

static void tmp_name(struct hk_out *o, int i)
{
	snprintf(o->tmp, sizeof(o->tmp), ".%.200s.hawk-bpf-%d-%d", o->base,
		 (int)getpid(), i);
}

/* An unnamed file in the directory: nothing to remove if we are killed.
 * Where the file system has no O_TMPFILE, a hidden name. */
static int make_temp(struct hk_out *o, mode_t mode)
{
	int fd = openat(o->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	for (int i = 0; i < 100; i++) {
		tmp_name(o, i);
		fd = openat(o->dirfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0)
		o->tmp[0] = 0;
	return fd;
}

/* The temporary next to path, with the mode and owner of the file it
 * will replace (old), if any. fd, or -1 (errno). */
static int open_aside(struct hk_out *o, const char *path, const struct stat *old)
{
	char dir[PATH_MAX];
	int fd, e;

	if (split_target(o, path, dir, sizeof(dir)))
		return -1;
	o->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (o->dirfd < 0)
		return -1;
	fd = make_temp(o, old ? old->st_mode & 07777 : 0644);
	if (fd < 0) {
		e = errno;
		close(o->dirfd);
		o->dirfd = -1;
		errno = e;
		return -1;
	}
	if (old) {
		/* chown first: it clears set-id bits that fchmod then puts
		 * back; without root (compare) the new file stays ours */
		(void)!fchown(fd, old->st_uid, old->st_gid);
		fchmod(fd, old->st_mode & 07777);
	}
	return fd;
}

int hk_out_open(struct hk_out *o, const char *path, char *err, size_t errlen)
{
	struct stat st;
	bool exists;
	int fd;

	*o = (struct hk_out){ .f = stdout, .name = "standard output", .dirfd = -1,
			      .in_place = true };
	if (!path)
		return 0;
	o->name = path;
	o->f = NULL;
	o->in_place = false;
	exists = stat(path, &st) == 0;
	if (!exists && errno != ENOENT)
		return hk_out_error(o, errno, err, errlen);
	if (exists && S_ISDIR(st.st_mode))
		return hk_out_error(o, EISDIR, err, errlen);
	if ((exists && !S_ISREG(st.st_mode)) || names_open_file(path))
		return open_in_place(o, path, false) ? hk_out_error(o, errno, err, errlen) : 0;
	fd = open_aside(o, path, exists ? &st : NULL);
	/* a file we may write in a directory we may not: written in place,
	 * as the one thing left (a failed write then leaves it cut short) */
	if (fd < 0 && exists && (errno == EACCES || errno == EPERM))
		return open_in_place(o, path, true) ? hk_out_error(o, errno, err, errlen) : 0;
	if (fd < 0)
		return hk_out_error(o, errno, err, errlen);
	o->f = fdopen(fd, "w");
	if (!o->f) {
		int e = errno;

		close(fd);
		hk_out_discard(o);
		return hk_out_error(o, e, err, errlen);
	}
	return 0;
}

/* Gives the unnamed temporary a name of its own, then renames it over the
 * report's name: the one step that replaces the report whole. */
static int place(struct hk_out *o, int fd)
{
	char proc[64];
	int e;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	for (int i = 0; !o->tmp[0]; i++) {
		tmp_name(o, i);
		if (linkat(AT_FDCWD, proc, o->dirfd, o->tmp, AT_SYMLINK_FOLLOW) == 0)
			break;
		o->tmp[0] = 0;
		if (errno != EEXIST || i == 99)
			return -1;
	}
	if (renameat(o->dirfd, o->tmp, o->dirfd, o->base) == 0) {
		o->tmp[0] = 0;
		return 0;
	}
	e = errno;
	unlinkat(o->dirfd, o->tmp, 0);
	o->tmp[0] = 0;
	errno = e;
	return -1;
}

int hk_out_commit(struct hk_out *o, char *err, size_t errlen)
{
	int fd = fileno(o->f), e = 0;

	errno = 0;
	if (fflush(o->f) || ferror(o->f))
		e = errno ? errno : EIO;
	else if (o->trunc && ftruncate(fd, ftello(o->f)))
		e = errno;
	/* fsync: where the disk fills or fails only then (NFS), we say so
	 * before the old report is gone */
	else if (!o->in_place && (fsync(fd) || place(o, fd)))
		e = errno;
	if (o->f != stdout) {
		if (fclose(o->f) && !e)
			e = errno;
		o->f = NULL;
	}
	hk_out_discard(o);
	return e ? hk_out_error(o, e, err, errlen) : 0;
}

void hk_out_discard(struct hk_out *o)
{
	if (o->f) {
		__fpurge(o->f);		/* no half report from the buffer */
		if (o->f != stdout)
			fclose(o->f);
	}
	o->f = NULL;
	if (o->tmp[0])
		unlinkat(o->dirfd, o->tmp, 0);
	o->tmp[0] = 0;
	if (o->dirfd >= 0)
		close(o->dirfd);
	o->dirfd = -1;
}

int hk_out_write(const char *path, int (*fill)(FILE *f, const void *arg),
		 const void *arg, char *err, size_t errlen)
{
	struct hk_out out;

	if (hk_out_open(&out, path, err, errlen))
		return -1;
	errno = 0;
	if (fill(out.f, arg)) {
		hk_out_error(&out, errno ? errno : EIO, err, errlen);
		hk_out_discard(&out);
		return -1;
	}
	return hk_out_commit(&out, err, errlen);
}

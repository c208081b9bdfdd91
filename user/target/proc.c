#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A number in base 16 or 10 at p, then one space: past them, or NULL.
 * By hand rather than sscanf: a host-wide scan reads the maps of every
 * process, and sscanf's generality was a sixth of its time. */
static const char *num_field(const char *p, int base, char sep,
			     unsigned long long *v)
{
	const char *s = p;
	unsigned long long x = 0;

	for (;; p++) {
		int c = *p, d = c >= '0' && c <= '9' ? c - '0' :
			base == 16 && (c | 32) >= 'a' && (c | 32) <= 'f' ?
			(c | 32) - 'a' + 10 : -1;

		if (d < 0)
			break;
		x = x * (unsigned)base + (unsigned)d;
	}
	if (p == s || *p != sep)
		return NULL;
	*v = x;
	return p + 1;
}

/* One line of maps ("start-end perms offset dev inode [path]") into e,
 * its path (NULL if none) pointing into line: 0 or -1. */
static int parse_map(char *line, struct hk_map *e, char **path)
{
	unsigned long long s, en, off, ino;
	const char *p = line;

	if (!(p = num_field(p, 16, '-', &s)) || !(p = num_field(p, 16, ' ', &en)) ||
	    strnlen(p, 5) < 5 || p[4] != ' ')
		return -1;
	memcpy(e->perms, p, 4);
	e->perms[4] = 0;
	if (!(p = num_field(p + 5, 16, ' ', &off)))
		return -1;
	p += strcspn(p, " ");	/* the device */
	if (*p++ != ' ')
		return -1;
	ino = 0;
	while (*p >= '0' && *p <= '9')
		ino = ino * 10 + (unsigned)(*p++ - '0');
	p += strspn(p, " ");
	e->start = s;
	e->end = en;
	e->offset = off;
	e->inode = (unsigned long)ino;
	*path = *p == '/' ? (char *)p : NULL;
	return 0;
}

int hk_maps_read(pid_t pid, struct hk_maps *m)
{
	char path[64], *line = NULL;
	size_t cap = 0, lcap = 0;
	FILE *f;

	m->v = NULL;
	m->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (getline(&line, &lcap, f) > 0) {
		struct hk_map e = {0};
		char *path;

		if (parse_map(line, &e, &path))
			continue;
		if (path) {
			path[strcspn(path, "\n")] = 0;
			e.path = strdup(path);
		}
		if (m->n == cap) {
			cap = cap ? cap * 2 : 64;
			struct hk_map *nv = realloc(m->v, cap * sizeof(*nv));
			if (!nv) {
				free(e.path);
				break;
			}
			m->v = nv;
		}
		m->v[m->n++] = e;
	}
	free(line);
	fclose(f);
	if (!m->n)
		errno = 0;	/* readable, and empty: no user memory */
	return m->n ? 0 : -1;
}

void hk_maps_free(struct hk_maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

int hk_mem_open(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	return open(path, O_RDWR | O_CLOEXEC);
}

int hk_mem_read(int fd, uint64_t addr, void *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len, (off_t)addr);

	return n == (ssize_t)len ? 0 : -1;
}

int hk_mem_write(int fd, uint64_t addr, const void *buf, size_t len)
{
	ssize_t n = pwrite(fd, buf, len, (off_t)addr);

	return n == (ssize_t)len ? 0 : -1;
}

void hk_proc_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(buf, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

/* The value of field key ("Seccomp:") of /proc/PID/status in buf: 0 or
 * -1. */
static int status_field(pid_t pid, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	size_t k = strlen(key);
	int rc = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (rc && fgets(line, sizeof(line), f))
		if (strncmp(line, key, k) == 0) {
			snprintf(buf, len, "%s", line + k);
			rc = 0;
		}
	fclose(f);
	return rc;
}

int hk_proc_seccomp(pid_t pid)
{
	char v[64];
	int mode;

	return status_field(pid, "Seccomp:", v, sizeof(v)) == 0 &&
	       sscanf(v, "%d", &mode) == 1 ? mode : -1;
}

int hk_proc_nspid(pid_t pid, pid_t *nspid)
{
	char v[256], *p, *last = NULL, *save = NULL;

	if (status_field(pid, "NSpid:", v, sizeof(v)))
		return -1;
	/* the innermost (last) is the process's own namespace's */
	for (p = strtok_r(v, " \t\n", &save); p; p = strtok_r(NULL, " \t\n", &save))
		last = p;
	if (!last)
		return -1;
	*nspid = (pid_t)atoi(last);
	return 0;
}

pid_t hk_proc_tgid(pid_t pid)
{
	char v[64];
	int tgid;

	return status_field(pid, "Tgid:", v, sizeof(v)) == 0 &&
	       sscanf(v, "%d", &tgid) == 1 && tgid > 0 ? (pid_t)tgid : pid;
}

int hk_proc_stat(pid_t pid, struct hk_proc_stat *st)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* comm may hold spaces and parentheses: the fields follow the last ')' */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %d %*d %*d %*d %*d %lu %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &st->state, &ppid, &st->flags, &st->start) != 4) {
		errno = EINVAL;
		return -1;
	}
	st->ppid = (pid_t)ppid;
	return 0;
}

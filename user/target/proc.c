#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* PROCMAP_QUERY (Linux 6.11), declared here for older headers: one
 * mapping per ioctl, filtered by the kernel. */
struct hk_procmap_query {
	uint64_t size, query_flags, query_addr;
	uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset;
	uint64_t inode;
	uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};
#define HK_PROCMAP_QUERY _IOWR('f', 17, struct hk_procmap_query)
#define HK_PMQ_R 0x01
#define HK_PMQ_W 0x02
#define HK_PMQ_X 0x04
#define HK_PMQ_SHARED 0x08
#define HK_PMQ_NEXT 0x10	/* the covering mapping, or the next */
#define HK_PMQ_FILE 0x20

static int push_map(struct hk_maps *m, size_t *cap, const struct hk_map *e)
{
	if (m->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct hk_map *nv = realloc(m->v, nc * sizeof(*nv));

		if (!nv)
			return -1;
		m->v = nv;
		*cap = nc;
	}
	m->v[m->n++] = *e;
	return 0;
}

/* The executable file mappings through PROCMAP_QUERY on maps file fd: 0
 * or -1 (errno; ENOTTY: a kernel without it). */
static int query_exec(int fd, struct hk_maps *m)
{
	char name[PATH_MAX];
	uint64_t addr = 0;
	size_t cap = 0;

	for (;;) {
		struct hk_procmap_query q = {
			.size = sizeof(q),
			.query_flags = HK_PMQ_NEXT | HK_PMQ_X | HK_PMQ_FILE,
			.query_addr = addr,
			.vma_name_size = sizeof(name),
			.vma_name_addr = (uintptr_t)name,
		};
		struct hk_map e = { .perms = "---p" };

		if (ioctl(fd, HK_PROCMAP_QUERY, &q))
			return errno == ENOENT ? 0 : -1;	/* ENOENT: no more */
		e.start = q.vma_start;
		e.end = q.vma_end;
		e.offset = q.vma_offset;
		e.inode = (unsigned long)q.inode;
		e.perms[0] = q.vma_flags & HK_PMQ_R ? 'r' : '-';
		e.perms[1] = q.vma_flags & HK_PMQ_W ? 'w' : '-';
		e.perms[2] = q.vma_flags & HK_PMQ_X ? 'x' : '-';
		e.perms[3] = q.vma_flags & HK_PMQ_SHARED ? 's' : 'p';
		if (q.vma_name_size && name[0] == '/' && !(e.path = strdup(name)))
			return -1;
		if (push_map(m, &cap, &e)) {
			free(e.path);
			return -1;
		}
		addr = q.vma_end;
	}
}

int hk_maps_exec(pid_t pid, struct hk_maps *m)
{
	char path[64];
	size_t k = 0;
	int fd, rc, e;

	m->v = NULL;
	m->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* The kernel's answer for just these is a fraction of the cost of
	 * writing out, and parsing, the text of every mapping. */
	rc = query_exec(fd, m);
	e = errno;
	close(fd);
	if (rc == 0)
		return 0;
	hk_maps_free(m);
	errno = e;
	if (e != ENOTTY && e != EINVAL)
		return -1;
	/* before Linux 6.11: the text, filtered */
	if (hk_maps_read(pid, m))
		return errno ? -1 : 0;
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].path && m->v[i].perms[2] == 'x')
			m->v[k++] = m->v[i];
		else
			free(m->v[i].path);
	}
	m->n = k;
	return 0;
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

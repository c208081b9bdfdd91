#include "discover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include "elfimg.h"
#include "proc.h"

/* What one image file was found to be. Keyed by the file's identity as
 * stat() of map_files gives it (the path in maps may be another mount
 * namespace's); size and mtime are checked too, so a file replaced by an
 * upgrade under a reused inode number is looked at afresh. */
struct img {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool used;
	bool runtime;		/* defines _PyRuntime */
};

struct hk_discover {
	pid_t self;
	pid_t *pids;		/* sorted, for bsearch */
	size_t npids;
	bool has_match;
	regex_t match;
	char container[65];	/* "" when not selecting by container */
	char *cgroup;
	/* open addressing, linear probing; cap a power of two, at most half
	 * full: survives across scans, so each image is read once */
	struct img *imgs;
	size_t nimg, capimg;
};

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'f');
}

static bool all_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_hex(s[i]))
			return false;
	return true;
}

/* ---- cgroup paths ---- */

/* Whether component c (len bytes) of a cgroup path is a container's, with
 * its ID copied to id. conmon, the monitor podman and CRI-O run beside a
 * container, has a scope of its own (libpod-conmon-ID.scope,
 * crio-conmon-ID.scope) that names the container without being it: its
 * "conmon-ID" left after the prefix is not 64 digits. */
static bool component_id(const char *c, size_t len, char id[65])
{
	static const char *const prefix[] = {
		"docker-", "cri-containerd-", "crio-", "libpod-",
	};

	if (len > 6 && memcmp(c + len - 6, ".scope", 6) == 0)
		len -= 6;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(*prefix); i++) {
		size_t k = strlen(prefix[i]);

		if (len > k && memcmp(c, prefix[i], k) == 0) {
			c += k;
			len -= k;
			break;
		}
	}
	if (len != 64 || !all_hex(c, len))
		return false;
	memcpy(id, c, 64);
	id[64] = 0;
	return true;
}

int hk_cgroup_container(const char *path, char id[65])
{
	int rc = -1;

	id[0] = 0;
	while (path && *path) {
		size_t len = strcspn(path, "/");

		if (component_id(path, len, id))
			rc = 0;		/* a later (inner) one overrides */
		path += len;
		if (*path)
			path++;
	}
	return rc;
}

bool hk_cgroup_under(const char *path, const char *prefix)
{
	size_t k = strlen(prefix);

	while (k && prefix[k - 1] == '/')
		k--;
	/* k 0: "/", above everything */
	return strncmp(path, prefix, k) == 0 && (!path[k] || path[k] == '/');
}

/* Whether comma-separated list holds item. */
static bool has_item(const char *list, const char *item)
{
	size_t k = strlen(item);

	for (const char *p = list;; p++) {
		if (strncmp(p, item, k) == 0 && (!p[k] || p[k] == ','))
			return true;
		if (!(p = strchr(p, ',')))
			return false;
	}
}

/* The cgroup v2 path of /proc/PID/cgroup's "0::" line; on a host with
 * only v1 hierarchies, name=systemd's, else the first line's. NULL when
 * unreadable (errno). */
static char *read_cgroup(pid_t pid)
{
	char file[64], *line = NULL, *v2 = NULL, *sysd = NULL, *first = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)pid);
	f = fopen(file, "re");
	if (!f)
		return NULL;
	while (!v2 && getline(&line, &cap, f) > 0) {
		/* ID:controllers:path, and the path may hold ':' */
		char *ctl = strchr(line, ':'), *p = ctl ? strchr(ctl + 1, ':') : NULL;
		char **to = NULL;

		if (!p)
			continue;
		*ctl++ = 0;
		*p++ = 0;
		p[strcspn(p, "\n")] = 0;
		if (strcmp(line, "0") == 0 && !*ctl)
			to = &v2;
		else if (!sysd && has_item(ctl, "name=systemd"))
			to = &sysd;
		else if (!first)
			to = &first;
		if (to)
			*to = strdup(p);
	}
	free(line);
	fclose(f);
	if (v2 || sysd) {
		free(first);
		first = NULL;
	}
	if (v2)
		free(sysd);
	return v2 ? v2 : sysd ? sysd : first;
}

/* ---- the image cache ---- */

static size_t img_hash(dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)dev * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)ino;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return (size_t)(h ^ (h >> 32));
}

static struct img *img_slot(struct img *v, size_t cap, dev_t dev, ino_t ino)
{
	size_t i = img_hash(dev, ino) & (cap - 1);

	while (v[i].used && (v[i].dev != dev || v[i].ino != ino))
		i = (i + 1) & (cap - 1);
	return &v[i];
}

/* Room for one more; -1 when memory is short (the answer then goes
 * uncached, no more). */
static int img_reserve(struct hk_discover *d)
{
	size_t cap = d->capimg ? d->capimg * 2 : 256;
	struct img *v;

	if ((d->nimg + 1) * 2 <= d->capimg)
		return 0;
	v = calloc(cap, sizeof(*v));
	if (!v)
		return -1;
	for (size_t i = 0; i < d->capimg; i++)
		if (d->imgs[i].used)
			*img_slot(v, cap, d->imgs[i].dev, d->imgs[i].ino) = d->imgs[i];
	free(d->imgs);
	d->imgs = v;
	d->capimg = cap;
	return 0;
}

static bool img_same(const struct img *e, const struct stat *st)
{
	return e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
	       e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* 1 an ELF file defining _PyRuntime, 0 not, -1 unreadable. */
static int elf_defines_runtime(const char *path)
{
	struct hk_elf e;
	uint64_t a;
	int r;

	if (hk_elf_open(&e, path))
		return -1;
	r = hk_elf_symbol(&e, "_PyRuntime", &a) == 0;
	hk_elf_close(&e);
	return r;
}

/* Whether the image mapping m of process pid maps defines _PyRuntime; an
 * image gone meanwhile (unmapped, or the process exited) does not. */
static bool image_runtime(struct hk_discover *d, pid_t pid,
			  const struct hk_map *m)
{
	char path[96];
	struct stat st;
	struct img *e;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
	if (stat(path, &st))
		return false;
	if (d->capimg) {
		e = img_slot(d->imgs, d->capimg, st.st_dev, st.st_ino);
		if (e->used && img_same(e, &st))
			return e->runtime;
	}
	r = elf_defines_runtime(path);
	/* not an ELF file, or not one we may read: an answer, unless the
	 * mapping went away under us */
	if (r < 0 && access(path, F_OK))
		return false;
	if (img_reserve(d) == 0) {
		e = img_slot(d->imgs, d->capimg, st.st_dev, st.st_ino);
		if (!e->used)
			d->nimg++;
		*e = (struct img){ .dev = st.st_dev, .ino = st.st_ino,
				   .size = st.st_size, .mtime = st.st_mtim,
				   .used = true, .runtime = r == 1 };
	}
	return r == 1;
}

/* ---- one process ---- */

/* python3.11, python2.7, libpython3.6m.so.1.0: named like CPython. */
static bool python_named(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	if (strncmp(b, "lib", 3) == 0)
		b += 3;
	return strncmp(b, "python", 6) == 0 && b[6] >= '0' && b[6] <= '9';
}

/* Whether an executable mapping is the first of its image. */
static bool first_of_image(const struct hk_maps *maps, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (maps->v[j].path && maps->v[j].perms[2] == 'x' &&
		    strcmp(maps->v[j].path, maps->v[i].path) == 0)
			return false;
	return true;
}

/* 1 a candidate (*interp: it maps an image defining _PyRuntime), 0 not,
 * -1 when its maps cannot be read. */
static int candidate(struct hk_discover *d, pid_t pid, bool *interp)
{
	struct hk_maps maps;
	bool named = false;

	*interp = false;
	if (hk_maps_exec(pid, &maps))
		return -1;
	for (size_t i = 0; i < maps.n && !*interp; i++) {
		const struct hk_map *m = &maps.v[i];

		if (!m->path || m->perms[2] != 'x' || !first_of_image(&maps, i))
			continue;
		*interp = image_runtime(d, pid, m);
		named = named || python_named(m->path);
	}
	hk_maps_free(&maps);
	return *interp || named;
}

/* /proc/PID/cmdline, its arguments joined by spaces; NULL (errno) when
 * it cannot be read. */
static char *read_cmdline(pid_t pid)
{
	char file[64], *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd, e;

	snprintf(file, sizeof(file), "/proc/%d/cmdline", (int)pid);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	do {
		if (cap - len < 512) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 1024);

			if (!nb) {
				r = -1;
				break;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r > 0)
			len += (size_t)r;
	} while (r > 0);
	e = errno;
	close(fd);
	if (r < 0) {
		free(buf);
		errno = e;
		return NULL;
	}
	if (len && !buf[len - 1])
		len--;
	for (size_t i = 0; i < len; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[len] = 0;
	return buf;
}

static void found_clear(struct hk_found *f)
{
	free(f->cmdline);
	free(f->cgroup);
	f->cmdline = f->cgroup = NULL;
}

/* Whether the cgroup selectors admit f, its cgroup path read. */
static bool cgroup_admits(const struct hk_discover *d, struct hk_found *f)
{
	if (!d->container[0] && !d->cgroup)
		return true;
	f->cgroup = read_cgroup(f->pid);
	if (!f->cgroup)
		return false;
	if (d->container[0] &&
	    (hk_cgroup_container(f->cgroup, f->container) ||
	     strncasecmp(f->container, d->container, strlen(d->container))))
		return false;
	return !d->cgroup || hk_cgroup_under(f->cgroup, d->cgroup);
}

/* Process pid, filled in f when it is a candidate the selectors admit: 1,
 * 0 when not (or gone), -1 when memory is short. The cheaper tests go
 * first, so most processes cost a read of stat, at most. */
static int examine(struct hk_discover *d, pid_t pid, struct hk_found *f)
{
	struct hk_proc_stat st, again;
	bool oom = false;

	memset(f, 0, sizeof(*f));
	f->pid = pid;
	if (d->npids && !bsearch(&pid, d->pids, d->npids, sizeof(pid_t), cmp_pid))
		return 0;
	if (hk_proc_stat(pid, &st) || (st.flags & HK_PF_KTHREAD) ||
	    st.state == 'Z' || st.state == 'X')
		return 0;
	if (!cgroup_admits(d, f))
		goto out;
	if (d->has_match) {
		f->cmdline = read_cmdline(pid);
		oom = !f->cmdline && errno == ENOMEM;
		if (!f->cmdline || regexec(&d->match, f->cmdline, 0, NULL, 0))
			goto out;
	}
	if (candidate(d, pid, &f->interpreter) <= 0)
		goto out;
	if (!f->cgroup && !d->container[0] && !d->cgroup)
		f->cgroup = read_cgroup(pid);
	if (f->cgroup && !d->container[0])
		hk_cgroup_container(f->cgroup, f->container);
	if (!f->cmdline && !(f->cmdline = read_cmdline(pid))) {
		oom = errno == ENOMEM;
		goto out;
	}
	hk_proc_comm(pid, f->comm, sizeof(f->comm));
	/* gone, or its PID another's by now: left out */
	if (hk_proc_nspid(pid, &f->nspid) || hk_proc_stat(pid, &again) ||
	    again.start != st.start)
		goto out;
	f->ppid = st.ppid;
	f->start = st.start;
	return 1;
out:
	found_clear(f);
	return oom ? -1 : 0;
}

/* ---- the interface ---- */

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), hk_discover_free(d), \
		  (struct hk_discover *)NULL)

struct hk_discover *hk_discover_new(const struct hk_select *sel, char *err,
				    size_t errlen)
{
	static const struct hk_select none;
	struct hk_discover *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return ERR("out of memory");
	sel = sel ? sel : &none;
	d->self = getpid();
	if (sel->npids) {
		d->pids = malloc(sel->npids * sizeof(pid_t));
		if (!d->pids)
			return ERR("out of memory");
		memcpy(d->pids, sel->pids, sel->npids * sizeof(pid_t));
		qsort(d->pids, sel->npids, sizeof(pid_t), cmp_pid);
		d->npids = sel->npids;
	}
	if (sel->match) {
		rc = regcomp(&d->match, sel->match, REG_EXTENDED | REG_NOSUB);
		if (rc) {
			char msg[256];

			regerror(rc, &d->match, msg, sizeof(msg));
			return ERR("--match: %s", msg);
		}
		d->has_match = true;
	}
	if (sel->container) {
		size_t k = strlen(sel->container);

		if (!k || k > 64 || !all_hex(sel->container, k))
			return ERR("--container: \"%s\" is not a container ID (hexadecimal digits)",
				   sel->container);
		memcpy(d->container, sel->container, k + 1);
	}
	if (sel->cgroup && !(d->cgroup = strdup(sel->cgroup)))
		return ERR("out of memory");
	return d;
}

void hk_discover_free(struct hk_discover *d)
{
	if (!d)
		return;
	if (d->has_match)
		regfree(&d->match);
	free(d->pids);
	free(d->cgroup);
	free(d->imgs);
	free(d);
}

void hk_found_free(struct hk_found *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		found_clear(&f[i]);
	free(f);
}

static int cmp_found(const void *a, const void *b)
{
	return cmp_pid(&((const struct hk_found *)a)->pid,
		       &((const struct hk_found *)b)->pid);
}

static int push(struct hk_found **v, size_t *n, size_t *cap,
		const struct hk_found *f)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct hk_found *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -1;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = *f;
	return 0;
}

int hk_discover_scan(struct hk_discover *d, struct hk_found **out, size_t *n)
{
	struct hk_found *v = NULL, f;
	size_t nv = 0, cap = 0;
	struct dirent *de;
	DIR *dir;
	int rc = 0;

	*out = NULL;
	*n = 0;
	dir = opendir("/proc");
	if (!dir)
		return -1;
	while (rc == 0 && (errno = 0, de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == d->self)
			continue;
		rc = examine(d, (pid_t)pid, &f);
		if (rc == 1 && push(&v, &nv, &cap, &f)) {
			found_clear(&f);
			rc = -1;
		} else if (rc == 1) {
			rc = 0;
		}
	}
	if (rc == 0 && errno)
		rc = -1;	/* readdir's own error */
	else if (rc)
		errno = ENOMEM;
	closedir(dir);
	if (rc) {
		int e = errno;

		hk_found_free(v, nv);
		errno = e;
		return -1;
	}
	qsort(v, nv, sizeof(*v), cmp_found);
	*out = v;
	*n = nv;
	return 0;
}

void hk_found_free_one(struct hk_found *f)
{
	found_clear(f);
}

int hk_discover_pid(struct hk_discover *d, pid_t pid, bool any_pid,
		    struct hk_found *f)
{
	size_t npids = d->npids;
	int rc;

	if (any_pid)
		d->npids = 0;
	rc = examine(d, pid, f);
	d->npids = npids;
	if (rc <= 0 && kill(pid, 0) && errno == ESRCH)
		return -1;
	return rc < 0 ? 0 : rc;
}

char *hk_cgroup_of(pid_t pid)
{
	return read_cgroup(pid);
}

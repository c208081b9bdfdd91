/* The host-wide scan (user/target/discover.c): the cgroup path functions
 * on examples of each container runtime's layout, and hk_discover_scan
 * against children of known kinds: a CPython, and processes that only
 * look like one by name. Every child is in a process group of its own,
 * killed and reaped by the .fini hook even when an assertion aborts the
 * test. (Unit tests run as root.) */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "discover.h"
#include "proc.h"

#define PY "/usr/bin/python3.11"
#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static pid_t kids[8];
static size_t nkids;
static char dir[64], script[96];

static void reap_all(void)
{
	for (size_t i = 0; i < nkids; i++) {
		kill(-kids[i], SIGKILL);	/* a script's own child too */
		waitpid(kids[i], NULL, 0);
	}
	nkids = 0;
	if (script[0])
		unlink(script);
	if (dir[0])
		rmdir(dir);
	script[0] = dir[0] = 0;
}

TestSuite(discover, .fini = reap_all);

/* ---- cgroup paths ---- */

static void expect_id(const char *path, const char *want)
{
	char id[65];
	int rc = hk_cgroup_container(path, id);

	if (!want) {
		cr_assert_eq(rc, -1, "%s: found %s", path, id);
		cr_assert_str_empty(id);
		return;
	}
	cr_assert_eq(rc, 0, "%s: no container", path);
	cr_assert_str_eq(id, want, "%s", path);
}

Test(discover, container_ids)
{
	const char *other = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
	char p[512];

	expect_id("/system.slice/docker-" HEX64 ".scope", HEX64);
	expect_id("/docker/" HEX64, HEX64);
	expect_id("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-" HEX64 ".scope",
		  HEX64);
	expect_id("/kubepods/besteffort/pod0b2c4a1e-6f0d-4c8e-9a35-2f1d7c6b5e4a/" HEX64,
		  HEX64);
	expect_id("/machine.slice/libpod-" HEX64 ".scope/container", HEX64);
	expect_id("/system.slice/crio-" HEX64 ".scope", HEX64);
	/* conmon, the monitor beside a podman or CRI-O container */
	expect_id("/machine.slice/libpod-conmon-" HEX64 ".scope", NULL);
	expect_id("/system.slice/crio-conmon-" HEX64 ".scope", NULL);
	expect_id("/user.slice/user-0.slice/session-1.scope", NULL);
	expect_id("/", NULL);
	expect_id("", NULL);
	/* 63 and 65 digits, a non-hex digit, an unknown prefix */
	snprintf(p, sizeof(p), "/docker/%.63s", HEX64);
	expect_id(p, NULL);
	snprintf(p, sizeof(p), "/system.slice/docker-%.63s.scope", HEX64);
	expect_id(p, NULL);
	expect_id("/docker/" HEX64 "0", NULL);
	snprintf(p, sizeof(p), "/docker/%.63sg", HEX64);
	expect_id(p, NULL);
	expect_id("/system.slice/rkt-" HEX64 ".scope", NULL);
	/* nested (docker in docker): the innermost */
	snprintf(p, sizeof(p), "/docker/%s/docker/%s", other, HEX64);
	expect_id(p, HEX64);
	snprintf(p, sizeof(p), "/system.slice/docker-%s.scope/docker/%s",
		 HEX64, other);
	expect_id(p, other);
}

Test(discover, cgroup_under)
{
	cr_assert(hk_cgroup_under("/a/b", "/a"));
	cr_assert(hk_cgroup_under("/a/b", "/a/"));
	cr_assert(hk_cgroup_under("/a/b", "/a//"));
	cr_assert(hk_cgroup_under("/a", "/a"));
	cr_assert(hk_cgroup_under("/a/b/c", "/a/b"));
	cr_assert(!hk_cgroup_under("/a/bc", "/a/b"));
	cr_assert(!hk_cgroup_under("/a", "/a/b"));
	cr_assert(!hk_cgroup_under("/b", "/a"));
	/* "/" is above everything */
	cr_assert(hk_cgroup_under("/", "/"));
	cr_assert(hk_cgroup_under("/a/b", "/"));
	cr_assert(hk_cgroup_under("/system.slice/docker-" HEX64 ".scope",
				  "/system.slice"));
}

/* ---- hk_discover_new's refusals ---- */

static void expect_refused(const struct hk_select *sel, const char *want)
{
	char err[256];
	struct hk_discover *d;

	memset(err, 'X', sizeof(err));	/* catch a missing terminator */
	d = hk_discover_new(sel, err, sizeof(err));
	hk_discover_free(d);
	cr_assert_null(d, "accepted");
	cr_assert(memchr(err, 0, sizeof(err)));
	cr_assert(!strchr(err, '\n'), "'%s' is more than a line", err);
	cr_assert(strncmp(err, want, strlen(want)) == 0, "'%s', not '%s'", err,
		  want);
}

Test(discover, bad_selectors_refused)
{
	char long_id[66];

	expect_refused(&(struct hk_select){ .match = "(" }, "--match: ");
	expect_refused(&(struct hk_select){ .match = "a[" }, "--match: ");
	expect_refused(&(struct hk_select){ .container = "xyz" },
		       "--container: \"xyz\" is not a container ID (hexadecimal digits)");
	expect_refused(&(struct hk_select){ .container = "" }, "--container: ");
	expect_refused(&(struct hk_select){ .container = "12 34" }, "--container: ");
	snprintf(long_id, sizeof(long_id), "%s0", HEX64);
	expect_refused(&(struct hk_select){ .container = long_id }, "--container: ");
}

Test(discover, good_selectors_accepted)
{
	char err[256] = "";
	const struct hk_select sels[] = {
		{ 0 },
		{ .match = "python[0-9.]+ .*-c" },
		{ .container = "ABCdef0123" },
		{ .container = HEX64 },
		{ .cgroup = "/system.slice/" },
	};

	for (size_t i = 0; i < sizeof(sels) / sizeof(*sels); i++) {
		struct hk_discover *d = hk_discover_new(&sels[i], err, sizeof(err));

		cr_assert_not_null(d, "selector %zu: %s", i, err);
		hk_discover_free(d);
	}
	hk_discover_free(hk_discover_new(NULL, err, sizeof(err)));
}

/* ---- scans of real children ---- */

/* Waits until pid runs the executable exe (whose path is resolved):
 * before that it is still our fork, or the shell that will exec it. */
static void wait_exe(pid_t pid, const char *exe)
{
	char want[PATH_MAX], link[64], got[PATH_MAX];

	cr_assert_not_null(realpath(exe, want), "%s", exe);
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	for (int i = 0; i < 1000; i++) {
		ssize_t n = readlink(link, got, sizeof(got) - 1);

		if (n > 0) {
			got[n] = 0;
			if (strcmp(got, want) == 0)
				return;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
	}
	cr_assert_fail("process %d never ran %s", (int)pid, want);
}

/* A child in a process group of its own running argv, once it runs exe
 * (NULL: a fork that renames itself python3.11 and waits). */
static pid_t spawn(char *const argv[], const char *exe)
{
	pid_t pid;

	cr_assert_lt(nkids, sizeof(kids) / sizeof(*kids));
	pid = fork();
	cr_assert_neq(pid, -1);
	if (!pid) {
		int fd = open("/dev/null", O_RDWR);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (!argv) {
			prctl(PR_SET_NAME, "python3.11");
			pause();
			_exit(0);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);	/* either side may get there first */
	kids[nkids++] = pid;
	if (argv)
		wait_exe(pid, exe);
	return pid;
}

static pid_t spawn_python(const char *tag)
{
	char *argv[] = { PY, "-c", "import time; time.sleep(30)", (char *)tag,
			 NULL };

	return spawn(argv, PY);
}

static struct hk_found *scan(const struct hk_select *sel, size_t *n)
{
	char err[256] = "";
	struct hk_discover *d = hk_discover_new(sel, err, sizeof(err));
	struct hk_found *f;

	cr_assert_not_null(d, "%s", err);
	cr_assert_eq(hk_discover_scan(d, &f, n), 0, "scan: %m");
	hk_discover_free(d);
	return f;
}

static const struct hk_found *find(const struct hk_found *f, size_t n,
				   pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].pid == pid)
			return &f[i];
	return NULL;
}

/* The 0:: line of /proc/PID/cgroup, or "" */
static void cgroup_v2(pid_t pid, char *buf, size_t len)
{
	char path[64], line[1024];
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, len, "%s", line + 3);
		}
	fclose(f);
}

Test(discover, finds_python_and_only_python, .timeout = 60)
{
	char tag[64], want[256], cg[1024];
	char *sleep_argv[] = { "/bin/sleep", "30", NULL };
	char *exec_a[] = { "/bin/bash", "-c", "exec -a python3.11 sleep 30", NULL };
	char *script_argv[] = { script, NULL };
	pid_t py, others[4];
	struct hk_proc_stat st;
	const struct hk_found *p;
	struct hk_found *f;
	size_t n;
	FILE *s;

	snprintf(tag, sizeof(tag), "hk-discover-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "/tmp/hk-discover-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/python3", dir);
	s = fopen(script, "w");
	cr_assert_not_null(s);
	fputs("#!/bin/sh\nsleep 30\n", s);
	cr_assert_eq(fclose(s), 0);
	cr_assert_eq(chmod(script, 0755), 0);

	py = spawn_python(tag);
	others[0] = spawn(sleep_argv, "/bin/sleep");
	others[1] = spawn(script_argv, "/bin/sh");
	others[2] = spawn(exec_a, "/bin/sleep");
	others[3] = spawn(NULL, NULL);

	f = scan(NULL, &n);
	for (size_t i = 1; i < n; i++)
		cr_assert_lt(f[i - 1].pid, f[i].pid, "not by increasing PID");
	for (size_t i = 0; i < n; i++) {
		cr_assert_neq(f[i].pid, getpid(), "found itself");
		for (size_t k = 0; k < 4; k++)
			cr_assert(f[i].pid != others[k] && f[i].ppid != others[k],
				  "%d (%s, %s) found", (int)f[i].pid, f[i].comm,
				  f[i].cmdline);
	}
	p = find(f, n, py);
	cr_assert_not_null(p, "python %d not found", (int)py);
	cr_assert(p->interpreter);
	cr_assert_eq(p->ppid, getpid());
	cr_assert_eq(p->nspid, py);	/* it is in our PID namespace */
	cr_assert_eq(hk_proc_stat(py, &st), 0);
	cr_assert_eq(p->start, st.start);
	cr_assert_str_eq(p->comm, "python3.11");
	snprintf(want, sizeof(want), "%s -c import time; time.sleep(30) %s", PY,
		 tag);
	cr_assert_str_eq(p->cmdline, want);
	cgroup_v2(py, cg, sizeof(cg));
	if (cg[0]) {
		cr_assert_not_null(p->cgroup);
		cr_assert_str_eq(p->cgroup, cg);
	}
	if (p->cgroup) {
		char id[65];

		if (hk_cgroup_container(p->cgroup, id))
			id[0] = 0;
		cr_assert_str_eq(p->container, id);
	}
	hk_found_free(f, n);
}

Test(discover, match_selects_by_argument, .timeout = 60)
{
	char a[64], b[64], re[80];
	pid_t pa, pb;
	struct hk_found *f;
	size_t n;

	snprintf(a, sizeof(a), "hk-discover-%d-a", (int)getpid());
	snprintf(b, sizeof(b), "hk-discover-%d-b", (int)getpid());
	pa = spawn_python(a);
	pb = spawn_python(b);

	snprintf(re, sizeof(re), "sleep\\(30\\) %s$", a);
	f = scan(&(struct hk_select){ .match = re }, &n);
	cr_assert_eq(n, 1, "%zu found", n);
	cr_assert_eq(f[0].pid, pa);
	cr_assert(f[0].interpreter);
	hk_found_free(f, n);

	/* matched on the arguments joined by single spaces */
	snprintf(re, sizeof(re), "^/usr/bin/python3\\.11 -c import .* hk-discover-%d-[ab]$",
		 (int)getpid());
	f = scan(&(struct hk_select){ .match = re }, &n);
	cr_assert_eq(n, 2, "%zu found", n);
	cr_assert(find(f, n, pa) && find(f, n, pb));
	hk_found_free(f, n);
}

Test(discover, pids_restrict, .timeout = 60)
{
	char tag[64];
	char *sleep_argv[] = { "/bin/sleep", "30", NULL };
	pid_t pa, pb, sl, only[2];
	struct hk_found *f;
	size_t n;

	snprintf(tag, sizeof(tag), "hk-discover-%d", (int)getpid());
	pa = spawn_python(tag);
	pb = spawn_python(tag);
	sl = spawn(sleep_argv, "/bin/sleep");

	only[0] = pb;
	f = scan(&(struct hk_select){ .pids = only, .npids = 1 }, &n);
	cr_assert_eq(n, 1, "%zu found", n);
	cr_assert_eq(f[0].pid, pb);
	hk_found_free(f, n);

	/* a listed process that is no candidate is not found either */
	only[0] = sl;
	only[1] = pa;
	f = scan(&(struct hk_select){ .pids = only, .npids = 2 }, &n);
	cr_assert_eq(n, 1, "%zu found", n);
	cr_assert_eq(f[0].pid, pa);
	hk_found_free(f, n);
}

/* The selectors on what the scan itself says of the child's cgroup: the
 * test may run in a container or not. */
Test(discover, cgroup_and_container_select, .timeout = 60)
{
	char tag[64], cg[1100], id[65];
	pid_t py;
	struct hk_found *f;
	const struct hk_found *p;
	size_t n;

	snprintf(tag, sizeof(tag), "hk-discover-%d", (int)getpid());
	py = spawn_python(tag);
	f = scan(&(struct hk_select){ .pids = &py, .npids = 1 }, &n);
	cr_assert_eq(n, 1);
	cr_assert_not_null(f[0].cgroup, "no cgroup path");
	snprintf(cg, sizeof(cg), "%s", f[0].cgroup);
	snprintf(id, sizeof(id), "%s", f[0].container);
	hk_found_free(f, n);

#define FOUND(...) (f = scan(&(struct hk_select){ .pids = &py, .npids = 1, \
			    __VA_ARGS__ }, &n), p = find(f, n, py), \
		    hk_found_free(f, n), p != NULL)
	cr_assert(FOUND(.cgroup = cg));
	cr_assert(FOUND(.cgroup = "/"));
	cr_assert(!FOUND(.cgroup = "/hk-discover-no-such.slice"));
	strcat(cg, "x");
	cr_assert(!FOUND(.cgroup = cg), "under %s", cg);
	if (id[0]) {
		char upper[13];

		cr_assert(FOUND(.container = id));
		for (int i = 0; i < 12; i++)
			upper[i] = (char)(id[i] >= 'a' ? id[i] - 32 : id[i]);
		upper[12] = 0;
		cr_assert(FOUND(.container = upper));
		id[0] = id[0] == '0' ? '1' : '0';
		cr_assert(!FOUND(.container = id));
	} else {
		cr_assert(!FOUND(.container = "0"));
		cr_assert(!FOUND(.container = HEX64));
	}
#undef FOUND
}

/* The executable file mappings alone, through PROCMAP_QUERY where the
 * kernel has it, are those of the text of maps. */
static void expect_maps_exec(pid_t pid)
{
	struct hk_maps all, x;
	size_t k = 0;

	cr_assert_eq(hk_maps_read(pid, &all), 0);
	cr_assert_eq(hk_maps_exec(pid, &x), 0, "%m");
	for (size_t i = 0; i < all.n; i++) {
		const struct hk_map *a = &all.v[i], *b = &x.v[k];

		if (!a->path || a->perms[2] != 'x')
			continue;
		cr_assert_lt(k, x.n, "%s missing", a->path);
		cr_assert_eq(a->start, b->start);
		cr_assert_eq(a->end, b->end);
		cr_assert_eq(a->offset, b->offset);
		cr_assert_eq(a->inode, b->inode);
		cr_assert_str_eq(a->perms, b->perms);
		cr_assert_not_null(b->path);
		cr_assert_str_eq(a->path, b->path);
		k++;
	}
	cr_assert_eq(k, x.n, "%zu more", x.n - k);
	cr_assert_gt(k, 0);
	hk_maps_free(&all);
	hk_maps_free(&x);
}

Test(discover, maps_exec_is_maps_filtered, .timeout = 60)
{
	char tag[64];

	snprintf(tag, sizeof(tag), "hk-discover-%d", (int)getpid());
	expect_maps_exec(getpid());
	expect_maps_exec(spawn_python(tag));
}

/* One scan object scans again and again, alike (its image cache warm). */
Test(discover, rescans_alike, .timeout = 60)
{
	char tag[64], err[256];
	pid_t py;
	struct hk_discover *d;

	snprintf(tag, sizeof(tag), "hk-discover-%d", (int)getpid());
	py = spawn_python(tag);
	d = hk_discover_new(&(struct hk_select){ .match = tag }, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	for (int i = 0; i < 3; i++) {
		struct hk_found *f;
		size_t n;

		cr_assert_eq(hk_discover_scan(d, &f, &n), 0);
		cr_assert_eq(n, 1, "scan %d: %zu found", i, n);
		cr_assert_eq(f[0].pid, py);
		cr_assert(f[0].interpreter);
		hk_found_free(f, n);
	}
	hk_discover_free(d);
}

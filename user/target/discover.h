/* Which processes on the host run CPython: a scan of /proc, in every mount
 * and PID namespace, narrowed by the command line's selectors.
 *
 * A process is a candidate when one of its executable file mappings is an
 * ELF image that defines _PyRuntime (an interpreter, static or
 * libpython), or is named like one (python3.X, libpython3.X.so: an older
 * or unknown CPython, reported as skipped). Names alone never make a
 * candidate of a process (a shell script called python maps bash; a
 * program renamed python maps its own image). Whether a candidate's
 * interpreter is supported is hk_pytarget_open's to say, not this. */
#ifndef HAWK_DISCOVER_H
#define HAWK_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct hk_select {
	const pid_t *pids;	/* -p PID,…: only these (npids 0: any) */
	size_t npids;
	const char *match;	/* --match: POSIX ERE on the command line */
	const char *container;	/* --container: an ID or a prefix of one */
	const char *cgroup;	/* --cgroup: a cgroup v2 path and below */
};

struct hk_found {
	pid_t pid;			/* as the host sees it */
	pid_t ppid;
	pid_t nspid;			/* in its own (innermost) namespace */
	unsigned long long start;	/* /proc/PID/stat starttime */
	char comm[64];
	char *cmdline;			/* arguments joined by spaces ("" if none) */
	char *cgroup;			/* its cgroup v2 path, NULL if none */
	char container[65];		/* the container ID in it, "" if none */
	bool interpreter;		/* maps an image defining _PyRuntime */
};

struct hk_discover;

/* NULL with one line in err (a --match that is not a regular
 * expression, a --container that is not hexadecimal, out of memory). */
struct hk_discover *hk_discover_new(const struct hk_select *sel, char *err,
				    size_t errlen);
void hk_discover_free(struct hk_discover *d);

/* Every candidate process the selectors admit, now, by increasing PID;
 * never hawk-bpf itself, nor kernel threads. Processes that go away
 * during the scan are left out. 0, or -1 (errno). */
int hk_discover_scan(struct hk_discover *d, struct hk_found **out, size_t *n);
void hk_found_free(struct hk_found *f, size_t n);
/* What one hk_found holds (not the struct itself). */
void hk_found_free_one(struct hk_found *f);

/* The one process pid as hk_discover_scan would find it: 1 with *f
 * filled, 0 when it is not a candidate or the selectors refuse it, -1
 * when it is gone. any_pid: the -p list does not apply (a child forked
 * by a traced process is traced whatever it names). */
int hk_discover_pid(struct hk_discover *d, pid_t pid, bool any_pid,
		    struct hk_found *f);

/* The container ID a cgroup path names (Docker, containerd, CRI-O,
 * podman, Kubernetes: a 64-digit hexadecimal component, bare or as
 * docker-ID.scope, cri-containerd-ID.scope, crio-ID.scope,
 * libpod-ID.scope, with or without a conmon/ prefix); the innermost one
 * when there are several. 0 with id filled, -1 when there is none.
 * (libpod-conmon-ID.scope and crio-conmon-ID.scope name none: they hold
 * conmon, the runtime's monitor beside the container, not in it.) */
int hk_cgroup_container(const char *path, char id[65]);

/* The cgroup path of process pid (as hk_found.cgroup), malloc'ed, or
 * NULL. */
char *hk_cgroup_of(pid_t pid);

/* Whether cgroup path is prefix itself or below it ("/a/b" is under
 * "/a" and "/a/", not under "/a/bc"). */
bool hk_cgroup_under(const char *path, const char *prefix);

#endif

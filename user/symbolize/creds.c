#include "creds.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The numbers after "Key:" in /proc/PID/status, up to max; how many, or -1
 * when the line is missing. */
static long status_ids(FILE *f, const char *key, unsigned long *ids, size_t max)
{
	size_t klen = strlen(key), n = 0;
	char *line = NULL, *p, *end;
	size_t cap = 0;
	long r = -1;

	rewind(f);
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		for (p = line + klen + 1;; p = end) {
			unsigned long v = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (n < max)
				ids[n] = v;
			n++;
		}
		r = (long)n;
		break;
	}
	free(line);
	return r;
}

int hk_creds_of(pid_t pid, struct hk_creds *c)
{
	unsigned long uid[4], gid[4], *groups = NULL;
	char path[64];
	long n;
	FILE *f;

	memset(c, 0, sizeof(*c));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	/* Real, effective, saved, filesystem: the kernel checks file access
	 * against the last. */
	if (status_ids(f, "Uid", uid, 4) != 4 || status_ids(f, "Gid", gid, 4) != 4 ||
	    (n = status_ids(f, "Groups", NULL, 0)) < 0)
		goto fail;
	if (n && (!(groups = calloc((size_t)n, sizeof(*groups))) ||
		  !(c->groups = calloc((size_t)n, sizeof(*c->groups))) ||
		  status_ids(f, "Groups", groups, (size_t)n) != n))
		goto fail;
	for (long i = 0; i < n; i++)
		c->groups[i] = (gid_t)groups[i];
	c->ngroups = (size_t)n;
	c->fsuid = (uid_t)uid[3];
	c->fsgid = (gid_t)gid[3];
	c->known = true;
	free(groups);
	fclose(f);
	return 0;
fail:
	free(groups);
	hk_creds_free(c);
	fclose(f);
	return -1;
}

void hk_creds_free(struct hk_creds *c)
{
	free(c->groups);
	memset(c, 0, sizeof(*c));
}

/* setfsuid/setfsgid return the previous id and never fail visibly: an
 * invalid id (-1) changes nothing, so it reads the current one. */
static uid_t cur_fsuid(void)
{
	return (uid_t)syscall(SYS_setfsuid, -1);
}

static gid_t cur_fsgid(void)
{
	return (gid_t)syscall(SYS_setfsgid, -1);
}

int hk_creds_enter(const struct hk_creds *c, struct hk_creds_saved *s)
{
	int n;

	memset(s, 0, sizeof(*s));
	if (!c->known)
		return -1;
	s->fsuid = cur_fsuid();
	s->fsgid = cur_fsgid();
	if ((n = (int)syscall(SYS_getgroups, 0, NULL)) < 0 ||
	    (n && !(s->groups = calloc((size_t)n, sizeof(gid_t)))) ||
	    (s->ngroups = (int)syscall(SYS_getgroups, n, s->groups)) != n) {
		free(s->groups);
		s->groups = NULL;
		return -1;
	}
	if (syscall(SYS_setgroups, c->ngroups, c->groups))
		goto undo_groups;
	syscall(SYS_setfsgid, c->fsgid);
	if (cur_fsgid() != c->fsgid)
		goto undo_gid;
	syscall(SYS_setfsuid, c->fsuid);
	if (cur_fsuid() != c->fsuid)
		goto undo_gid;
	return 0;
undo_gid:
	syscall(SYS_setfsuid, s->fsuid);
	syscall(SYS_setfsgid, s->fsgid);
undo_groups:
	syscall(SYS_setgroups, s->ngroups, s->groups);
	free(s->groups);
	s->groups = NULL;
	return -1;
}

void hk_creds_leave(struct hk_creds_saved *s)
{
	/* fsuid first: back to 0, we may set groups again. */
	syscall(SYS_setfsuid, s->fsuid);
	syscall(SYS_setfsgid, s->fsgid);
	syscall(SYS_setgroups, s->ngroups, s->groups);
	free(s->groups);
	s->groups = NULL;
}

void hk_creds_hold(pid_t pid, int *rootfd, int *cwdfd, struct hk_creds *c)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/%d/root", (int)pid);
	*rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(p, sizeof(p), "/proc/%d/cwd", (int)pid);
	*cwdfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	hk_creds_of(pid, c);
}

/* The credentials a process opens files with, and taking them on for the
 * calling thread: source lines are read as the target would read them, so
 * that root's report never shows a line the target itself could not read. */
#ifndef HAWK_CREDS_H
#define HAWK_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct hk_creds {
	bool known;		/* false: read nothing as this process */
	uid_t fsuid;
	gid_t fsgid;
	size_t ngroups;
	gid_t *groups;
};

/* pid's filesystem uid and gid and supplementary groups, from
 * /proc/PID/status (so mapped into our user namespace: an unmapped id is
 * the overflow id, nobody). 0, or -1 with c->known false. */
int hk_creds_of(pid_t pid, struct hk_creds *c);
void hk_creds_free(struct hk_creds *c);

/* What source lines of process pid are read with, taken at attach so
 * they can still be read after it exits: its root and cwd held open
 * (O_PATH; -1 where they cannot be) and its credentials. */
void hk_creds_hold(pid_t pid, int *rootfd, int *cwdfd, struct hk_creds *c);

struct hk_creds_saved {
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t *groups;
};

/* Takes c on for the calling thread's file access, with raw system calls
 * (glibc's wrappers change every thread of the process): its groups, then
 * fsgid, then fsuid, which also drops our file capabilities when it is not
 * 0. 0, or -1 with nothing changed. */
int hk_creds_enter(const struct hk_creds *c, struct hk_creds_saved *s);
/* Back to what enter saved. */
void hk_creds_leave(struct hk_creds_saved *s);

#endif

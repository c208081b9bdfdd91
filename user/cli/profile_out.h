/* --format pprof and folded (heapprofile.h) from the CLI's side: the
 * labels each process's samples carry, and the profile of one or more
 * traced processes' records. */
#ifndef HAWK_PROFILE_OUT_H
#define HAWK_PROFILE_OUT_H

#include <stdio.h>
#include <sys/types.h>
#include "heapprofile.h"
#include "options.h"

struct hk_labels {
	struct hk_pprof_label v[8 + HK_LABELS_MAX];
	size_t n;
	char host[256];
	char keys[HK_LABELS_MAX][256];
};

/* pid (a number), comm, python, container (when there is one; NULL or
 * "": none), host, then every --label KEY=VALUE. With pid 0, only host
 * and the --label pairs (a merged profile). comm, python and container
 * must outlive l. */
void hk_labels_make(struct hk_labels *l, const struct hk_options *o, pid_t pid,
		    const char *comm, const char *python, const char *container);

/* Only the --label KEY=VALUE pairs, appended to l (merge's). */
void hk_labels_user(struct hk_labels *l, const struct hk_options *o);

/* The profile of procs to out, for a window of seconds that began at
 * CLOCK_MONOTONIC began. 0, or -1 with errno. */
int hk_profile_write(FILE *out, const struct hk_options *o,
		     const struct hk_heap_proc *procs, size_t n, double began,
		     double seconds);

#endif

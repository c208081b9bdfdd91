/* hawk-bpf merge FILE... [-o OUT] [--label KEY=VALUE]: profiles from
 * several hosts or runs into one. All inputs must be of one kind:
 * pprof profiles (gzipped or plain profile.proto) give one profile with
 * every sample and its labels (pprof.h: hk_pprof_merge), --label added
 * to each; tracemalloc snapshot pickles (hawk-bpf's or
 * Snapshot.dump()'s) give one snapshot of every trace, its
 * traceback_limit the largest. Nothing is traced. */
#ifndef HAWK_MERGE_H
#define HAWK_MERGE_H

#include "options.h"

/* The exit status; errors as one line on stderr. */
int hk_merge_main(const struct hk_options *o);

#endif

/* hawk-bpf compare OLD NEW: Hawk's interval report between two snapshot
 * pickles, hawk-bpf's own (--format pickle) or tracemalloc.Snapshot.dump()'s.
 */
#ifndef HAWK_COMPARE_H
#define HAWK_COMPARE_H

#include "options.h"

/* Runs the command o describes (o->command == HK_CMD_COMPARE, as parsed):
 * loads o->old_file and o->new_file, and writes the lineno or traceback
 * report of NEW.compare_to(OLD, key, o->cumulative), its first o->count
 * stats, to o->output or stdout.  Source lines are read from this
 * process's filesystem.  Errors go to stderr, one "hawk-bpf: ..." line.
 * Returns the exit status: 0, or 1 when a file cannot be read, is not a
 * snapshot pickle, or the report cannot be written. */
int hk_compare_main(const struct hk_options *o);

/* Shared with merge: the whole file at path, malloc'ed (pipes work):
 * 0, or -1 with errno; and one snapshot pickle loaded, or one
 * "hawk-bpf: FILE: ..." line on stderr and 1. */
#include <stdint.h>
#include "pickle.h"
int hk_slurp(const char *path, uint8_t **out, size_t *outlen);
int hk_snapshot_load(const char *path, struct hk_pickle_snapshot *ps);

#endif

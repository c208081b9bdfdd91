/* Turns raw BPF stacks (code object, instruction offset) into tracemalloc
 * tracebacks (filename, lineno), reading code objects from the target. */
#ifndef HAWK_SYMBOLIZE_H
#define HAWK_SYMBOLIZE_H

#include <stdint.h>
#include "hawk.h"
#include "model.h"
#include "pyver/pyver.h"

struct hk_symbolizer;

/* limit: tracemalloc's traceback limit (--frames). */
struct hk_symbolizer *hk_sym_new(int memfd, const struct hk_pyver *v,
				 unsigned limit);
void hk_sym_free(struct hk_symbolizer *s);

/* Resolve a stack read from the BPF map under id (0: no Python frames).
 * Tracebacks are owned by the symbolizer and stay valid until it is freed;
 * resolving an id again returns the first result. */
const struct hk_traceback *hk_sym_resolve(struct hk_symbolizer *s, uint64_t id,
					  const struct hk_stack *raw);
/* The traceback already resolved for id, or NULL. */
const struct hk_traceback *hk_sym_lookup(struct hk_symbolizer *s, uint64_t id);
/* The traceback of an allocation with no Python frame: ("<unknown>", 0). */
const struct hk_traceback *hk_sym_empty(struct hk_symbolizer *s);
/* Code objects that could not be read (frames reported as <unknown>). */
uint64_t hk_sym_failures(const struct hk_symbolizer *s);

#endif

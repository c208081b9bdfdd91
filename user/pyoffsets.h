/* Per-version CPython layouts, as data (py-spy style bindings).
 * Adding a version means adding a row to the table in pyoffsets.c. */
#ifndef HAWK_PYOFFSETS_H
#define HAWK_PYOFFSETS_H

#include <linux/types.h>
#include <stdint.h>
#include "hawk.h"

struct hk_pyver {
	int major, minor;
	struct hk_py_layout bpf;	/* what the BPF side walks */
	/* What the loader reads to symbolize: */
	uint32_t code_filename, code_linetable, code_firstlineno;
	uint32_t code_firsttraceable, code_adaptive;
	uint32_t bytes_size, bytes_data;
	uint32_t str_length, str_state, str_ascii_data, str_compact_data;
	int owned_by_generator;
	uint32_t code_header;		/* bytes of the code object to read */
};

/* NULL when the version has no row: unsupported. */
const struct hk_pyver *hk_pyver_find(int major, int minor);

#endif

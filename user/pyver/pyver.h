/* The version layer: what hawk-bpf knows of each CPython version, as data
 * (py-spy's per-version bindings, the OpenTelemetry profiler's offsets
 * and shape flags). One file per version, user/pyver/vX_Y.c, generated
 * and checked by scripts/gen-offsets from that version's own headers;
 * no other code asks which version it runs on. A field a version does not
 * have is 0, and that 0 is its shape: e.g. rt_tstate_current 0 means no
 * global current-thread-state word (3.12+), tstate_cframe 0 means the
 * frame pointer is in the thread state itself (3.13+). */
#ifndef HAWK_PYVER_H
#define HAWK_PYVER_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hawk.h"

struct hk_pyver {
	int major, minor;
	struct hk_py_layout bpf;	/* what the BPF side walks */
	/* _PyRuntime.allocators.standard.{raw,mem,obj} (3.12+); 0: the
	 * tables are file-static, found through the exported wrappers */
	uint32_t rt_alloc[3];
	/* What the loader reads to symbolize: */
	uint32_t code_filename, code_linetable, code_firstlineno;
	uint32_t code_name;		/* co_qualname (3.11+); co_name on 3.10,
					 * which has no qualified name */
	uint32_t code_firsttraceable, code_adaptive;
	uint32_t bytes_size, bytes_data;
	uint32_t str_length, str_state, str_ascii_data, str_compact_data;
	int owned_by_generator;		/* with code_firsttraceable 0 (3.10):
					 * no frame is ever incomplete */
	uint32_t code_header;		/* bytes of the code object to read:
					 * past every code_ field above */
	int linetable_format;		/* co_linetable: 310 (PEP 626 pairs)
					 * or 311 (PEP 657 locations) */
	uint32_t small_max;		/* pymalloc's SMALL_REQUEST_THRESHOLD */
	/* 3.13+: where the target's own _Py_DebugOffsets (at _PyRuntime + 0)
	 * holds each offset above, to check them against (0: before 3.13) */
	struct {
		uint32_t interp_head, threads_head, tstate_next, current_frame;
		uint32_t thread_id, native_tid, frame_previous, frame_code;
		uint32_t frame_instr, frame_owner, code_filename, code_linetable;
		uint32_t code_firstlineno, code_adaptive, str_state, str_length;
		uint32_t str_ascii_data, code_name;	/* code_object.qualname */
	} dbg;
};

/* NULL when the version has no file: unsupported. */
const struct hk_pyver *hk_pyver_find(int major, int minor);
/* "3.11, 3.12, 3.13": for messages. */
const char *hk_pyver_supported(void);
/* Whether v's frame fields fit the window the BPF walk reads
 * (HK_FRAME_WINDOW bytes from the lowest of them): 0, or -1 with one line
 * in err. Checked when a plan is made. */
int hk_pyver_check(const struct hk_pyver *v, char *err, size_t errlen);

#endif

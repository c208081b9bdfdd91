#include "pyoffsets.h"

#include <stddef.h>

/*
 * Offsets measured with offsetof() against each version's own headers
 * (Include/internal, Py_BUILD_CORE) on x86_64; identical for Debian's 3.11.2
 * and 3.11.7 (scripts/gen-offsets regenerates and checks them).
 */
static const struct hk_pyver table[] = {
	{
		.major = 3, .minor = 11,
		.bpf = {
			.rt_tstate_current = 576,
			.rt_interp_head = 40,
			.interp_threads_head = 16,
			.tstate_next = 8,
			.tstate_native_tid = 160,
			.tstate_thread_id = 152,
			.tstate_cframe = 56,
			.cframe_current_frame = 8,
			.frame_code = 32,
			.frame_previous = 48,
			.frame_instr = 56,
			.frame_owner = 69,
			.frame_head_size = 72,
		},
		.code_filename = 112,
		.code_linetable = 136,
		.code_firstlineno = 72,
		.code_firsttraceable = 168,
		.code_adaptive = 184,
		.bytes_size = 16,
		.bytes_data = 32,
		.str_length = 16,
		.str_state = 32,
		.str_ascii_data = 48,
		.str_compact_data = 72,
		.owned_by_generator = 1,
		.code_header = 192,
	},
};

const struct hk_pyver *hk_pyver_find(int major, int minor)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].major == major && table[i].minor == minor)
			return &table[i];
	return NULL;
}

/* The supported versions (one file each: vX_Y.c) and the checks a
 * version's data must pass before any reader uses it. */
#include "pyver/pyver.h"

#include <stdio.h>

extern const struct hk_pyver hk_pyver_3_10, hk_pyver_3_11, hk_pyver_3_12, hk_pyver_3_13,
	hk_pyver_3_14, hk_pyver_3_15;

static const struct hk_pyver *const versions[] = {
	&hk_pyver_3_10, &hk_pyver_3_11, &hk_pyver_3_12, &hk_pyver_3_13, &hk_pyver_3_14,
	&hk_pyver_3_15,
};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

const struct hk_pyver *hk_pyver_find(int major, int minor)
{
	for (size_t i = 0; i < NVERSIONS; i++)
		if (versions[i]->major == major && versions[i]->minor == minor)
			return versions[i];
	return NULL;
}

const char *hk_pyver_supported(void)
{
	static char buf[64];
	size_t o = 0;

	for (size_t i = 0; i < NVERSIONS && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%d.%d", i ? ", " : "",
				      versions[i]->major, versions[i]->minor);
	return buf;
}

int hk_pyver_check(const struct hk_pyver *v, char *err, size_t errlen)
{
	const struct hk_py_layout *L = &v->bpf;
	uint32_t lo = L->frame_base;
	uint32_t at[] = { L->frame_code, L->frame_previous, L->frame_instr };

	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		if (at[i] < lo || at[i] + 8 - lo > HK_FRAME_WINDOW)
			goto bad;
	if (L->frame_owner && (L->frame_owner < lo || L->frame_owner + 1 - lo > HK_FRAME_WINDOW))
		goto bad;
	/* frames beyond the capture are counted from one read at previous */
	if (L->owner_incomplete_from &&
	    (L->frame_owner < L->frame_previous ||
	     L->frame_owner + 1 - L->frame_previous > HK_FRAME_WINDOW))
		goto bad;
	/* the symbolizer reads each code_ field from one header read */
	if (v->code_header < v->code_adaptive || v->code_header > 512 ||
	    v->code_filename + 8 > v->code_header || v->code_linetable + 8 > v->code_header ||
	    v->code_name + 8 > v->code_header || v->code_firstlineno + 4 > v->code_header ||
	    v->code_firsttraceable + 4 > v->code_header ||
	    (v->linetable_format != 310 && v->linetable_format != 311))
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "the layout of CPython %d.%d does not fit what hawk-bpf reads (a frame's fields past %d bytes, a code object header past 512 or short of its fields, or an unknown line table format)",
		 v->major, v->minor, HK_FRAME_WINDOW);
	return -1;
}

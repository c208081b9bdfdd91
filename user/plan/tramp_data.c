/* Recognising the trampoline data an earlier run left (tramp_data.h). */
#include "tramp_data.h"

#include <stdlib.h>
#include <string.h>
#include "proc.h"

bool hk_tramp_has_header(struct hk_pytarget *t, const struct hk_tail *tl,
			 struct tramp_header *hdr)
{
	return tl->rw_room >= RW_END &&
	       hk_mem_read(t->memfd, tl->rw + RW_HEADER, hdr, sizeof(*hdr)) == 0 &&
	       memcmp(hdr->magic, header_magic, 8) == 0 && hdr->len <= tl->code_room;
}

bool hk_tramp_other_version(struct hk_pytarget *t, const struct hk_tail *tl)
{
	char m[8];

	return tl->rw_room >= RW_HEADER + 8 &&
	       hk_mem_read(t->memfd, tl->rw + RW_HEADER, m, 8) == 0 &&
	       memcmp(m, header_magic, 7) == 0 && m[7] != header_magic[7];
}

int hk_sampler_function(struct hk_pytarget *t, uint64_t ptr, int kind,
			uint64_t *func)
{
	struct tramp_header hdr;
	struct hk_tail *v;
	size_t n;
	int rc = -1;

	if (hk_tails(t->pid, &v, &n))
		return -1;
	for (size_t i = 0; i < n && rc; i++) {
		const struct hk_tail *tl = &v[i];

		if (ptr < tl->code || ptr >= tl->code + tl->code_room ||
		    !hk_tramp_has_header(t, tl, &hdr))
			continue;
		for (int e = 0; e < HK_TE_N && rc; e++)
			if (hdr.entry[e] != 0xffff && tl->code + hdr.entry[e] == ptr &&
			    entry_kind(e) == kind && hdr.real_lit[e] != 0xffff &&
			    hdr.real_lit[e] + 8u <= hdr.len)
				rc = hk_mem_read(t->memfd, tl->code + hdr.real_lit[e],
						 func, 8);
		break;
	}
	free(v);
	return rc;
}

/* The unused tails of mapped ELF images: the bytes between the end of an
 * image's last executable segment and the end of its page (code nobody
 * runs), and between the end of its last writable segment (.bss) and the
 * end of that page (memory nobody uses). The sampling trampoline lives
 * there, in whichever image of the target has room. */
#ifndef HAWK_PAGETAIL_H
#define HAWK_PAGETAIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct hk_tail {
	char name[256];		/* the image, as the target maps it */
	uint64_t code;		/* runtime address of the code tail */
	uint64_t code_room;	/* its bytes */
	uint64_t rw;		/* runtime address of the data tail, 8-aligned */
	uint64_t rw_room;	/* its bytes */
	bool defines_malloc;	/* its symbols define malloc */
};

/* Every file-backed ELF image of pid, in map order, with its tails (rooms
 * 0 where it has none the target maps right). 0, or -1 with errno. Free
 * *v. */
int hk_tails(pid_t pid, struct hk_tail **v, size_t *n);

/* Whether every malloc the target can reach is glibc's: libc.so.6 is the
 * one image of v (hk_tails) that defines it (no LD_PRELOAD'ed or static
 * allocator, no malloc debugging library). */
bool hk_glibc_malloc(const struct hk_tail *v, size_t n);

#endif

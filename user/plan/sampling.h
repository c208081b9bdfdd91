/* Sampling mode, target side: the trampoline (user/plan/trampoline.c) written
 * into the unused tail of an image's last executable page (the
 * interpreter's, or the first other image with room), its data (PRNG
 * word, header, tag, thresholds) into the unused tail of that image's last
 * writable page (user/target/pagetail.h), and allocator table slots pointed at it.
 *
 * Unsampled small allocations then never trap: the trampoline draws a
 * random number and tail-jumps to pymalloc. Sampled ones are sent to the
 * raw allocator's probe (marked in r10/r11), and since pymalloc hands
 * blocks it does not own to the raw domain, their frees and reallocs are
 * seen there too, while pymalloc's own frees cost nothing. With glibc's
 * malloc, sampled blocks are also tagged (16 bytes past what the caller
 * asked for) and the raw domain's four slots are switched too: raw
 * allocations draw the same way, and a raw free or realloc reaches its
 * probe only for a tagged block.
 *
 * Safety: the code and data stay in the target forever (a thread may be
 * inside the code; it behaves correctly with or without hawk-bpf; a tagged
 * block is an ordinary glibc block). Slot switches are 8-byte writes, so
 * they are made with every thread frozen (user/inject/freeze.c). An existing
 * trampoline is reused, never rewritten. */
#ifndef HAWK_SAMPLING_H
#define HAWK_SAMPLING_H

#include <stdbool.h>
#include <stdint.h>
#include "probes.h"
#include "pytarget.h"
#include "samplerates.h"
#include "trampoline.h"

/* The marker the trampoline leaves in r11 on its sampled path. */
#define HK_SAMPLE_MAGIC 0x6877616b5f627066ULL	/* "hawk_bpf" */

struct hk_sampler {
	char host[256];		/* image whose page tails hold it */
	uint64_t code;		/* runtime address of the trampoline */
	uint64_t state;		/* ... of its PRNG word */
	uint64_t header;	/* ... of its header */
	uint64_t tag;		/* ... of its 16-byte tag */
	uint64_t table;		/* ... of its threshold table */
	uint64_t walkaddr;	/* ... of its walk word (trampoline.h) */
	uint32_t walk[2];	/* what is written there */
	uint64_t ringaddr;	/* ... of its ring words (trampoline.h) */
	bool tagging;		/* sampled blocks get the tag */
	bool raw;		/* the raw domain's slots are switched too */
	bool sys;		/* raw: announcements by getppid(2), not
				 * through the free probe */
	bool ring;		/* sys: ... and into a ring (include/hawk.h) */
	uint8_t buf[HK_TRAMP_MAX_LEN];
	struct hk_tramp_out out;
	uint64_t thresholds[HK_TRAMP_MAX_CLASSES + 1];
	unsigned nthresholds;
	int nslots;
	struct {
		uint64_t addr;	/* table slot */
		uint64_t orig;	/* the function, restored at exit */
		uint64_t tramp;	/* trampoline entry written there */
		uint64_t padding; /* padding entry before orig, or 0 */
		bool switched;
	} slot[10];
};

/* Chooses where the trampoline goes and generates it (nothing written
 * yet); s->tagging, s->raw and s->sys are then what the BPF side must know
 * (sys_ok: whether the BPF side can see getppid(2) announcements, asked
 * only when they would be used). capture: frames a stack capture reads;
 * total: whether it counts the frames beyond them.
 * 0, or -1 with one line in err. */
int hk_sampler_plan(struct hk_sampler *s, struct hk_pytarget *t,
		    const struct hk_hooks *h,
		    const struct hk_sample_rates *rates, unsigned capture,
		    bool total, bool (*sys_ok)(void), char *err, size_t errlen);

#endif

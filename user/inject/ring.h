/* --sample, ring mode, hawk-bpf's side: reads the records the sampling
 * trampoline wrote into the target's ring (include/hawk.h) and has the
 * "drain" BPF program apply them, in ring order, every few milliseconds.
 *
 * A record is complete when its first word holds its own position; one
 * read finds how far the records are complete, a second read of those
 * bytes (after the first, so after their completion) is what is applied:
 * a single copy could see a record's position before its body. Then the
 * tail is written back, which frees the space for the target. */
#ifndef HAWK_RING_H
#define HAWK_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hk_ring {
	int memfd;		/* the target's /proc/PID/mem */
	int prog_fd;		/* the drain program */
	uint64_t word;		/* target address of the ring words */
	uint64_t base;		/* the ring, once mapped (0 before) */
	uint64_t mask;		/* its data bytes - 1 */
	uint64_t tail;		/* consumed */
	uint64_t lost0, dropped0;	/* the target's counts when we began */
	uint64_t lost, dropped;	/* records written nowhere / dropped since */
	uint64_t applied;	/* records the drain program applied */
	uint8_t *mirror;	/* the data bytes as read */
	uint8_t *out;		/* complete records, in order */
	bool existed;		/* mapped by an earlier run */
};

/* Bytes of ring a trampoline maps: HAWK_BPF_RING_KB (a power of two from
 * 4 to 1048576), else 8 MiB; 0 if HAWK_BPF_RING_KB is not one. */
uint64_t hk_ring_bytes(void);

/* Starts reading the ring whose words are at `word` in the target: the
 * records an earlier run left are skipped. 0, or -1 with errno. */
int hk_ring_open(struct hk_ring *r, int memfd, uint64_t word, int prog_fd);

/* Applies every complete record. 0, or -1 if the target's memory could
 * not be read (it exited) or the program failed. */
int hk_ring_drain(struct hk_ring *r);

void hk_ring_close(struct hk_ring *r);

#endif

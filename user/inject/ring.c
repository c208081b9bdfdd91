#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "hawk.h"
#include "proc.h"

#define REC ((uint64_t)sizeof(struct hk_ring_rec))
#define REC_MAX (REC + HK_WALK_MAX * sizeof(struct hk_frame_raw))

uint64_t hk_ring_bytes(void)
{
	const char *kb = getenv("HAWK_BPF_RING_KB");
	char *end;
	unsigned long long n;

	if (!kb)
		return 8 << 20;
	errno = 0;
	n = strtoull(kb, &end, 10);
	if (errno || end == kb || *end || n < 4 || n > (1u << 20) || (n & (n - 1)))
		return 0;
	return n * 1024;
}

struct header {
	uint64_t head, dropped, size;
};

/* The ring's header words, in one read. */
static int read_header(struct hk_ring *r, struct header *h)
{
	uint64_t w[HK_RING_SIZE / 8 + 1];

	if (hk_mem_read(r->memfd, r->base, w, sizeof(w)))
		return -1;
	h->head = w[HK_RING_HEAD / 8];
	h->dropped = w[HK_RING_DROPPED / 8];
	h->size = w[HK_RING_SIZE / 8];
	return 0;
}

/* Picks up the ring once the trampoline has mapped it: 1 if there is one. */
static int attach(struct hk_ring *r)
{
	struct header h;
	uint64_t w[3], size;

	if (r->base)
		return 1;
	if (hk_mem_read(r->memfd, r->word, w, sizeof(w)))
		return -1;
	r->lost = w[2] - r->lost0;
	if (w[0] <= 3)
		return 0;
	r->base = w[0];
	if (read_header(r, &h))
		return -1;
	size = h.size;
	r->dropped0 = h.dropped;
	if (size < 4096 || size > (1ull << 30) || (size & (size - 1))) {
		errno = EPROTO;
		return -1;
	}
	r->mask = size - 1;
	r->mirror = malloc(size + HK_RING_SLACK);
	if (!r->mirror)
		return -1;
	/* an earlier run's ring: what is in it is not ours */
	r->tail = r->existed ? h.head : 0;
	if (r->existed && hk_mem_write(r->memfd, r->base + HK_RING_TAIL, &r->tail, 8))
		return -1;
	return 1;
}

int hk_ring_open(struct hk_ring *r, int memfd, uint64_t word, int prog_fd)
{
	uint64_t w[3];

	memset(r, 0, sizeof(*r));
	r->memfd = memfd;
	r->word = word;
	r->prog_fd = prog_fd;
	r->out = malloc(HK_DRAIN_MAX);
	if (!r->out || hk_mem_read(memfd, word, w, sizeof(w)))
		return -1;
	r->lost0 = w[2];
	r->existed = w[0] > 3;
	return attach(r) < 0 ? -1 : 0;
}

/* The physical bytes [from, from + n) of the data area, read from the
 * target into the mirror. */
static int fetch(struct hk_ring *r, uint64_t from, uint64_t n)
{
	return hk_mem_read(r->memfd, r->base + HK_RING_HEADER + from,
			   r->mirror + from, n);
}

struct span {
	uint64_t from, to;	/* physical */
};

/* Walks the records from tail while they are complete, up to head and to
 * what one batch holds; with spans, notes the physical bytes they lie in
 * (at most 2: a record never wraps, the sequence wraps once at most);
 * with copy, copies them to r->out. Reads what it lacks into the mirror
 * as it goes unless `have`. Returns the position it stopped at, or 0 on
 * a read error (errno set). */
static uint64_t walk(struct hk_ring *r, uint64_t head, bool have, bool copy,
		     struct span sp[2], int *nsp, uint64_t *outlen)
{
	uint64_t q = r->tail, w0 = 0, w1 = 0, size = r->mask + 1;

	*nsp = 0;
	*outlen = 0;
	while (q < head && *outlen + REC_MAX <= HK_DRAIN_MAX) {
		uint64_t p = q & r->mask, len;
		struct hk_ring_rec h;

		if (!have && (p < w0 || p + REC_MAX > w1)) {
			uint64_t n = head - q + REC_MAX;

			if (n > size + HK_RING_SLACK - p)
				n = size + HK_RING_SLACK - p;
			if (n > HK_DRAIN_MAX + REC_MAX)
				n = HK_DRAIN_MAX + REC_MAX;
			if (fetch(r, p, n))
				return 0;
			w0 = p;
			w1 = p + n;
		}
		memcpy(&h, r->mirror + p, sizeof(h));
		len = (uint64_t)h.len16 * 16;
		if (h.pos != q + 1)
			break;		/* not complete yet */
		if (len < REC || len > REC_MAX || q + len > head) {
			/* cannot be: the target's memory is not what we
			 * think it is. Stop reading it. */
			errno = EPROTO;
			return 0;
		}
		if (*nsp && sp[*nsp - 1].to == p)
			sp[*nsp - 1].to = p + len;
		else if (*nsp < 2)
			sp[(*nsp)++] = (struct span){ p, p + len };
		else
			break;
		if (copy)
			memcpy(r->out + *outlen, r->mirror + p, len);
		*outlen += len;
		q += len;
	}
	return q;
}

/* One batch: the complete records from tail up to head, as many as
 * r->out holds, applied. 1 if it applied some, 0 if none was complete,
 * -1 on error. */
static int drain_batch(struct hk_ring *r, uint64_t head)
{
	struct span sp[2];
	uint64_t q, q2, len;
	int nsp;

	q = walk(r, head, false, false, sp, &nsp, &len);
	if (!q)
		return -1;
	if (q == r->tail)
		return 0;	/* the next record is not complete */
	for (int i = 0; i < nsp; i++)
		if (fetch(r, sp[i].from, sp[i].to - sp[i].from))
			return -1;
	q2 = walk(r, q, true, true, sp, &nsp, &len);
	if (q2 != q) {
		errno = EPROTO;
		return -1;
	}
	struct hk_drain_ctx ctx = { .buf = (uintptr_t)r->out, .len = len };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx));

	if (bpf_prog_test_run_opts(r->prog_fd, &opts) || opts.retval)
		return -1;
	r->applied += ctx.applied;
	r->tail = q;
	if (hk_mem_write(r->memfd, r->base + HK_RING_TAIL, &r->tail, 8))
		return -1;
	return 1;
}

int hk_ring_drain(struct hk_ring *r)
{
	struct header h;
	int a = attach(r);

	if (a <= 0)
		return a;
	/* up to where the ring was now: a target writing as fast as we
	 * read must not keep us from the rest of the loop */
	if (read_header(r, &h))
		return -1;
	r->dropped = h.dropped - r->dropped0;
	while (r->tail < h.head) {
		a = drain_batch(r, h.head);
		if (a <= 0)
			return a;
	}
	return 0;
}

void hk_ring_close(struct hk_ring *r)
{
	free(r->mirror);
	free(r->out);
	memset(r, 0, sizeof(*r));
}

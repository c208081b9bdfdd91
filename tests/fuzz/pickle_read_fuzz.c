/* libFuzzer harness: the snapshot pickle reader, and what `hawk-bpf compare`
 * does with a snapshot it read (statistics, compare_to, str(), the JSON).
 *
 * Built with ASan and UBSan, every report fatal (tests/fuzz/README.md).
 * Besides sanitizer reports, a finding is any broken promise of pickle.h:
 * a refusal without a message, or an accepted snapshot that the writer
 * cannot write or that does not read back the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle.h"
#include "report.h"
#include "stats.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "pickle_read_fuzz: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	abort(); } } while (0)

static void same_snapshot(const struct hk_snapshot *a, const struct hk_snapshot *b)
{
	CHECK(a->ntraces == b->ntraces);
	CHECK(a->traceback_limit == b->traceback_limit);
	for (size_t i = 0; i < a->ntraces; i++) {
		const struct hk_trace *x = &a->traces[i], *y = &b->traces[i];

		CHECK(x->domain == y->domain && x->size == y->size);
		CHECK(x->tb->nframe == y->tb->nframe);
		CHECK(x->tb->total_nframe == y->tb->total_nframe);
		for (uint32_t k = 0; k < x->tb->nframe; k++) {
			CHECK(x->tb->frames[k].lineno == y->tb->frames[k].lineno);
			CHECK(!strcmp(x->tb->frames[k].filename,
				      y->tb->frames[k].filename));
		}
	}
}

/* Whatever the reader accepts, the writer writes and the reader reads
 * back unchanged: that is how hawk-bpf's own pickles are made. */
static void round_trip(const struct hk_snapshot *snap)
{
	struct hk_pickle_snapshot back;
	char *buf = NULL, err[256] = "";
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f);
	CHECK(hk_pickle_write_snapshot(f, snap) == 0);
	CHECK(fclose(f) == 0);
	CHECK(hk_pickle_read_snapshot(buf, len, &back, err, sizeof(err)) == 0);
	same_snapshot(snap, &back.snap);
	hk_pickle_snapshot_free(&back);
	free(buf);
}

/* compare's work on it, and a live report's: every key, against itself,
 * against an empty snapshot, and point-in-time. */
static void reports(const struct hk_snapshot *snap)
{
	static const struct hk_snapshot empty = { NULL, 0, 1 };
	static const struct { enum hk_key_type key; bool cum; } runs[] = {
		{ HK_KEY_LINENO, false }, { HK_KEY_LINENO, true },
		{ HK_KEY_FILENAME, false }, { HK_KEY_FILENAME, true },
		{ HK_KEY_TRACEBACK, false },
	};

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		const struct hk_snapshot *old = i % 3 == 0 ? snap
					      : i % 3 == 1 ? &empty : NULL;
		json_t *rep = hk_report_build(snap, old, runs[i].key, runs[i].cum,
					      1000, NULL);
		char *text = rep ? hk_report_dumps(rep) : NULL;

		CHECK(text);
		free(text);
		json_decref(rep);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hk_pickle_snapshot ps;
	char err[256] = "";

	if (hk_pickle_read_snapshot(data, size, &ps, err, sizeof(err))) {
		CHECK(err[0]);		/* every refusal says why */
		CHECK(!ps.traces);
		return 0;
	}
	round_trip(&ps.snap);
	reports(&ps.snap);
	hk_pickle_snapshot_free(&ps);
	return 0;
}

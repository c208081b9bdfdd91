/* libFuzzer harness: hk_pprof_merge on profiles anyone may hand it.
 *
 * Each input is merged alone and after a valid profile of hawk-bpf's
 * own (so that a sample-type mismatch, and deduplication against known
 * tables, are reached too), with an extra label.  Built with ASan and
 * UBSan, every report fatal (tests/fuzz/README.md).  Besides sanitizer
 * reports, a finding is any broken promise of pprof.h: a refusal without
 * one line naming the fuzzed input, or an accepted input whose merge
 * protobuf-c cannot read back or that merging again changes (but for
 * dropping samples that summed to all 0).
 *
 * HK_FUZZ_SEEDS=DIR [HK_FUZZ_REGRESS=LIST] pprof_merge_fuzz writes the
 * seed corpus into DIR, with the regression inputs of LIST, and exits.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pprof.h"
#include "pprof_internal.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "pprof_merge_fuzz: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	abort(); } } while (0)

struct img {
	char *b;
	size_t n;
};

static const char *types[] = { "inuse_objects", "inuse_space", "alloc_objects", "alloc_space" };
static const char *units[] = { "count", "bytes", "count", "bytes" };
static const struct hk_pprof_frame fa[] = {
	{ "alloc", "/app/work.py", 7, 5 },
	{ "Worker.run", "/app/work.py", 42, 30 },
	{ "<module>", "/app/main.py", 10, 1 },
};
static const struct hk_pprof_frame fb[] = {
	{ "alloc", "/app/work.py", 8, 5 },
	{ "<module>", "/app/main.py", 10, 1 },
};
static const int64_t va[] = { 1, 100, 2, 200 }, vb[] = { 0, 0, 5, 500 };
static const struct hk_pprof_label la[] = {
	{ "host", "h1", 0, NULL }, { "pid", NULL, 1234, NULL }, { "block", NULL, 64, "bytes" } };
static const struct hk_pprof_label lb[] = { { "thread", "MainThread", 0, NULL } };
static const struct hk_pprof_sample samples[] = {
	{ fa, 3, va, la, 3 }, { fb, 2, vb, lb, 1 }, { NULL, 0, va, NULL, 0 },
};
static const char *comments[] = { "hawk-bpf fuzz" };
static const struct hk_pprof_label extra[] = { { "run", "fuzz", 0, NULL } };

static struct img base;		/* hawk-bpf's own: input 1 of the second merge */

static struct img write_profile(size_t ntypes, size_t nsamples)
{
	struct hk_pprof p = {
		.types = types, .units = units, .ntypes = ntypes,
		.default_type = "inuse_space",
		.period_type = "space", .period_unit = "bytes", .period = 524288,
		.time_nanos = 1700000000000000000, .duration_nanos = 1000000000,
		.comments = comments, .ncomments = 1,
		.samples = samples, .nsamples = nsamples,
	};
	struct img m = { NULL, 0 };
	FILE *f = open_memstream(&m.b, &m.n);

	CHECK(f && !hk_pprof_write(f, &p) && !fclose(f));
	return m;
}

/* The gunzipped bytes of a gzip image. */
static struct img gunzip(const struct img *g)
{
	struct img r = { NULL, 0 };
	size_t cap = g->n * 8 + 4096;
	z_stream z = { 0 };
	int k;

	CHECK(inflateInit2(&z, 15 + 16) == Z_OK && (r.b = malloc(cap)));
	z.next_in = (Bytef *)g->b;
	z.avail_in = (uInt)g->n;
	do {
		if (r.n == cap)
			CHECK(r.b = realloc(r.b, cap *= 2));
		z.next_out = (Bytef *)r.b + r.n;
		z.avail_out = (uInt)(cap - r.n);
		k = inflate(&z, Z_NO_FLUSH);
		r.n = cap - z.avail_out;
		CHECK(k == Z_OK || k == Z_STREAM_END);
	} while (k != Z_STREAM_END);
	inflateEnd(&z);
	return r;
}

static void put_seed(const char *dir, const char *name, const struct img *m)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK((f = fopen(path, "wb")) && fwrite(m->b, 1, m->n, f) == m->n && !fclose(f));
}

/* The inputs of the regression list (pprof_regressions.txt: "NAME HEX"
 * lines, '#' comments), as regress-NAME. */
static void regressions(const char *dir, const char *list)
{
	FILE *f = fopen(list, "r");
	char line[65536], name[256];

	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		struct img m = { NULL, 0 };
		char *hex, file[300];
		unsigned byte;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		CHECK(sscanf(line, "%255s", name) == 1);
		hex = line + strlen(name);
		while (*hex == ' ')
			hex++;
		CHECK(m.b = malloc(strlen(hex) / 2 + 1));
		for (; sscanf(hex, "%2x", &byte) == 1; hex += 2)
			m.b[m.n++] = (char)byte;
		snprintf(file, sizeof(file), "regress-%s", name);
		put_seed(dir, file, &m);
		free(m.b);
	}
	CHECK(!ferror(f));
	fclose(f);
}

/* hawk-bpf's profiles, gzipped and plain, of 4 and 2 sample types, and
 * one merged; the regression inputs of $HK_FUZZ_REGRESS. */
static void seeds(const char *dir)
{
	struct img a = write_profile(4, 3), b = write_profile(2, 2), ra = gunzip(&a),
		   rb = gunzip(&b), mg = { NULL, 0 };
	const void *bufs[] = { a.b, a.b };
	size_t lens[] = { a.n, a.n };
	char err[256];
	FILE *f = open_memstream(&mg.b, &mg.n);

	CHECK(f && !hk_pprof_merge(f, bufs, lens, 2, extra, 1, err, sizeof(err)) && !fclose(f));
	put_seed(dir, "hawk4.pb.gz", &a);
	put_seed(dir, "hawk4.pb", &ra);
	put_seed(dir, "hawk2.pb.gz", &b);
	put_seed(dir, "hawk2.pb", &rb);
	put_seed(dir, "merged.pb.gz", &mg);
	if (getenv("HK_FUZZ_REGRESS"))
		regressions(dir, getenv("HK_FUZZ_REGRESS"));
	free(a.b), free(b.b), free(ra.b), free(rb.b), free(mg.b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("HK_FUZZ_SEEDS");

	if (dir && *dir) {
		seeds(dir);
		exit(0);
	}
	/* Out of reach of a 16 KiB input but for a gzip bomb: kept small so
	 * the fuzzer's memory limit measures the merger, not the limit. */
	hk_pprof_merge_max = 1 << 20;
	base = write_profile(4, 3);
	return 0;
}

/* Merges n images: the merge (gzip), or b NULL with err set. */
static struct img merge(const void *const *bufs, const size_t *lens, size_t n, char *err,
			size_t errlen)
{
	struct img m = { NULL, 0 };
	FILE *f = open_memstream(&m.b, &m.n);
	int r;

	CHECK(f);
	err[0] = 'x';
	r = hk_pprof_merge(f, bufs, lens, n, extra, 1, err, errlen);
	CHECK(!fclose(f));
	if (r) {
		CHECK(err[0] && !strchr(err, '\n'));	/* every refusal says why, in a line */
		CHECK(errno);
		free(m.b);
		m.b = NULL;
	} else {
		CHECK(!err[0]);
	}
	return m;
}

static bool zero_sample(const Perftools__Profiles__Profile *p)
{
	for (size_t i = 0; i < p->n_sample; i++) {
		size_t k = 0;

		while (k < p->sample[i]->n_value && !p->sample[i]->value[k])
			k++;
		if (k == p->sample[i]->n_value)
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const void *bufs[2] = { base.b, data };
	size_t lens[2] = { base.n, size };
	char err[512];
	struct img one, two;

	/* alone: a refusal names input 1; an acceptance reads back, and
	 * merging it again gives the same bytes */
	one = merge(bufs + 1, lens + 1, 1, err, sizeof(err));
	if (!one.b) {
		CHECK(!strncmp(err, "input 1: ", 9));
	} else {
		struct img raw = gunzip(&one), again;
		Perftools__Profiles__Profile *p =
			perftools__profiles__profile__unpack(NULL, raw.n, (uint8_t *)raw.b);

		CHECK(p);
		bufs[1] = one.b;
		lens[1] = one.n;
		again = merge(bufs + 1, lens + 1, 1, err, sizeof(err));
		CHECK(again.b);
		/* Samples that summed to all 0 are kept, as go tool pprof keeps
		 * them, and dropped by the next merge: only without them is it
		 * a fixed point. */
		if (!zero_sample(p)) {
			struct img r2 = gunzip(&again);

			CHECK(r2.n == raw.n && !memcmp(r2.b, raw.b, raw.n));
			free(r2.b);
		}
		perftools__profiles__profile__free_unpacked(p, NULL);
		free(again.b);
		free(raw.b);
		bufs[1] = data;
		lens[1] = size;
	}
	/* after hawk-bpf's own: a refusal names input 2 (input 1 is fine) */
	two = merge(bufs, lens, 2, err, sizeof(err));
	if (!two.b)
		CHECK(!strncmp(err, "input 2: ", 9));
	free(two.b);
	free(one.b);
	return 0;
}

/* hawk-bpf merge (see merge.h). */
#include "merge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "compare.h"
#include "outfile.h"
#include "pickle.h"
#include "pprof.h"
#include "profile_out.h"
#include "util.h"

/* A pickle starts with PROTO (0x80); a profile is gzip (1f 8b) or
 * protobuf, whose first field of a Profile is a length-delimited one. */
static bool is_pickle(const uint8_t *b, size_t n)
{
	return n >= 2 && b[0] == 0x80;
}

static int write_out(const struct hk_options *o, int (*fill)(FILE *, const void *),
		     const void *arg)
{
	char err[512];

	return hk_out_write(o->output, fill, arg, err, sizeof(err)) ? hk_fail("%s", err) : 0;
}

static int fill_pickle(FILE *f, const void *arg)
{
	return hk_pickle_write_snapshot(f, arg);
}

static int merge_pickles(const struct hk_options *o)
{
	struct hk_pickle_snapshot *ps = calloc(o->nfiles, sizeof(*ps));
	struct hk_snapshot all = { 0 };
	struct hk_trace *t = NULL;
	size_t n = 0;
	int rc = 1;

	if (!ps)
		return hk_fail("out of memory");
	for (size_t i = 0; i < o->nfiles; i++) {
		if (hk_snapshot_load(o->files[i], &ps[i]))
			goto out;
		n += ps[i].snap.ntraces;
		if (ps[i].snap.traceback_limit > all.traceback_limit)
			all.traceback_limit = ps[i].snap.traceback_limit;
	}
	t = malloc((n + 1) * sizeof(*t));
	if (!t) {
		hk_fail("out of memory");
		goto out;
	}
	for (size_t i = 0; i < o->nfiles; i++) {
		memcpy(t + all.ntraces, ps[i].snap.traces, ps[i].snap.ntraces * sizeof(*t));
		all.ntraces += ps[i].snap.ntraces;
	}
	all.traces = t;
	rc = write_out(o, fill_pickle, &all);
out:
	free(t);
	for (size_t i = 0; i < o->nfiles; i++)
		hk_pickle_snapshot_free(&ps[i]);
	free(ps);
	return rc;
}

struct profiles {
	const void **bufs;
	size_t *lens, n;
	struct hk_pprof_label *extra;
	size_t nextra;
	char err[512];
};

static int fill_profile(FILE *f, const void *arg)
{
	struct profiles *p = (struct profiles *)arg;

	if (hk_pprof_merge(f, p->bufs, p->lens, p->n, p->extra, p->nextra,
			   p->err, sizeof(p->err)) == 0)
		return 0;
	if (p->err[0])
		errno = EINVAL;
	return -1;
}

static int merge_profiles(const struct hk_options *o, uint8_t **bufs, size_t *lens)
{
	struct hk_labels l;
	struct profiles p = { (const void **)bufs, lens, o->nfiles, l.v, 0, "" };
	char err[512];

	memset(&l, 0, sizeof(l));
	hk_labels_user(&l, o);
	p.nextra = l.n;
	if (hk_out_write(o->output, fill_profile, &p, err, sizeof(err)) == 0)
		return 0;
	/* the inputs' fault, named by their index: say which file */
	if (p.err[0]) {
		unsigned long k = 0;

		if (sscanf(p.err, "input %lu", &k) == 1 && k >= 1 && k <= o->nfiles)
			return hk_fail("%s: %s", o->files[k - 1], p.err);
		return hk_fail("%s", p.err);
	}
	return hk_fail("%s", err);
}

int hk_merge_main(const struct hk_options *o)
{
	uint8_t **bufs = calloc(o->nfiles, sizeof(*bufs));
	size_t *lens = calloc(o->nfiles, sizeof(*lens)), pickles = 0;
	int rc = 1;

	if (!bufs || !lens) {
		free(bufs);
		free(lens);
		return hk_fail("out of memory");
	}
	for (size_t i = 0; i < o->nfiles; i++) {
		if (hk_slurp(o->files[i], &bufs[i], &lens[i])) {
			hk_fail("cannot read %s: %s", o->files[i], strerror(errno));
			goto out;
		}
		if (!lens[i]) {
			hk_fail("%s: the file is empty", o->files[i]);
			goto out;
		}
		pickles += is_pickle(bufs[i], lens[i]);
	}
	if (pickles && pickles != o->nfiles) {
		hk_fail("merge: the files are not all of one kind (%zu snapshot pickles, %zu others: pprof profiles?)",
			pickles, o->nfiles - pickles);
	} else if (pickles && o->nlabels) {
		hk_fail("--label is for pprof profiles: a snapshot pickle has no labels");
	} else if (pickles) {
		rc = merge_pickles(o);
	} else {
		rc = merge_profiles(o, bufs, lens);
	}
out:
	for (size_t i = 0; i < o->nfiles; i++)
		free(bufs[i]);
	free(bufs);
	free(lens);
	return rc;
}

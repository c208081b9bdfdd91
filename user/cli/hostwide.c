/* The host-wide one-shot profile (see hostwide.h). */
#include "hostwide.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hostinterval.h"
#include "hostreport.h"
#include "outfile.h"
#include "procset.h"
#include "session.h"
#include "util.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "CPython 3.11.2 ×20, 3.14.10 ×3": the versions, most common first. */
static void versions(const struct hk_procset *ps, char *buf, size_t len)
{
	const char *v[64];
	size_t n[64], nv = 0, at = 0;

	for (size_t i = 0; i < ps->ntraced; i++) {
		size_t k = 0;

		while (k < nv && strcmp(v[k], ps->traced[i]->t.version))
			k++;
		if (k == nv && nv < 64) {
			v[nv] = ps->traced[i]->t.version;
			n[nv++] = 0;
		}
		if (k < nv)
			n[k]++;
	}
	for (size_t a = 0; a < nv; a++)	/* most first; few versions */
		for (size_t b = a + 1; b < nv; b++)
			if (n[b] > n[a]) {
				size_t t = n[a];
				const char *s = v[a];

				n[a] = n[b], v[a] = v[b], n[b] = t, v[b] = s;
			}
	buf[0] = 0;
	for (size_t k = 0; k < nv && at < len; k++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s \u00d7%zu",
				       k ? ", " : "CPython ", v[k], n[k]);
}

/* Each process's own warnings, with its PID in front. */
static void warn_each(const struct hk_procset *ps)
{
	for (size_t i = 0; i < ps->ntraced; i++) {
		const struct hk_traced *tt = ps->traced[i];
		char *buf = NULL, *line, *save;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);

		if (!m)
			continue;
		if (tt->res.target_exited)
			fprintf(m, "hawk-bpf: exited during the window at %.1f s; reporting %s\n",
				tt->ended, tt->res.finalizing ?
				"the blocks alive when it began to shut down" :
				"what was traced until then");
		if (tt->res.execd)
			fprintf(m, "hawk-bpf: exec'd during the window at %.1f s; reporting what was traced until then\n",
				tt->ended);
		if (tt->stop_err[0])
			fprintf(m, "hawk-bpf: %s\n", tt->stop_err);
		hk_warn_losses(m, &tt->res);
		fclose(m);
		for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			fprintf(stderr, "hawk-bpf: PID %d (%s): %s\n", (int)tt->info.pid,
				tt->info.comm, line + strlen("hawk-bpf: "));
		free(buf);
	}
}

/* Nothing to trace: one line, exit 1. */
static int none(const struct hk_options *o, const struct hk_procset *ps)
{
	bool selected = o->npids || o->match || o->container || o->cgroup;

	if (!ps->nskipped)
		return hk_fail(selected ? "no CPython process matches the selection"
					: "no CPython process found");
	return hk_fail("none of the %zu CPython processes found could be traced (PID %d: %s)",
		       ps->nskipped, (int)ps->skipped[0].info.pid, ps->skipped[0].reason);
}

struct whole {
	const struct hk_options *o;
	const struct hk_procset *ps;
	double window_s;
};

static int fill_report(FILE *f, const void *arg)
{
	const struct whole *w = arg;

	return hk_hostreport_write(f, w->o, w->ps, w->window_s, false);
}

static int report(const struct hk_options *o, const struct hk_procset *ps,
		  double window_s)
{
	struct whole w = { o, ps, window_s };
	char err[512];

	if (o->format == HK_FMT_PICKLE && !o->merge)
		return hk_hostreport_pickles(o->output, o, ps, window_s, err, sizeof(err))
		       ? hk_fail("%s", err) : 0;
	return hk_out_write(o->output, fill_report, &w, err, sizeof(err)) ? hk_fail("%s", err) : 0;
}

int hk_hostwide_main(const struct hk_options *o, volatile sig_atomic_t *stop)
{
	struct hk_select sel = { o->pids, o->npids, o->match, o->container, o->cgroup };
	struct hk_trace_opts to = { .frames = o->frames,
				    .max_blocks = o->max_blocks,
				    .need_total = o->format == HK_FMT_PICKLE,
				    .alloc_totals = o->format == HK_FMT_PPROF ||
						    o->format == HK_FMT_FOLDED,
				    .sample = o->sample ? &o->rates : NULL,
				    .stop = stop, .quiet = true };
	struct hk_procset ps;
	struct hk_ts_out series;
	struct hk_hostseries *hs = NULL;
	char err[512], vers[256];
	double start, deadline;
	size_t blocks = 0;
	int rc;

	if (o->format == HK_FMT_PICKLE && !o->merge && !o->output)
		return hk_fail("--format pickle over several processes writes one PID.pickle each into the directory -o DIR names (or one pickle with --merge)");
	/* an -o that cannot be written is refused before anything is touched;
	 * a time series keeps its files open until it is written */
	if (o->interval_ms) {
		if (hk_ts_out_open(&series, o, err, sizeof(err)))
			return hk_fail("%s", err);
	} else if (!(o->format == HK_FMT_PICKLE && !o->merge)) {
		struct hk_out probe;

		if (hk_out_open(&probe, o->output, err, sizeof(err)))
			return hk_fail("%s", err);
		hk_out_discard(&probe);
	}
	if (hk_procset_start(&ps, &sel, &to, err, sizeof(err))) {
		if (o->interval_ms)
			hk_ts_out_discard(&series);
		hk_procset_free(&ps);
		return hk_fail("%s", err);
	}
	if (!ps.ntraced) {
		if (o->interval_ms)
			hk_ts_out_discard(&series);
		rc = none(o, &ps);
		hk_procset_free(&ps);
		return rc;
	}
	versions(&ps, vers, sizeof(vers));
	fprintf(stderr, "hawk-bpf: tracing %zu process%s (%s) for %.3g s; %zu skipped\n",
		ps.ntraced, ps.ntraced == 1 ? "" : "es", vers, o->duration_ms / 1000.0,
		ps.nskipped);
	fflush(stderr);
	start = now();
	deadline = start + o->duration_ms / 1000.0;
	if (o->interval_ms)
		hs = hk_hostinterval_watch(o, &ps, start, stop, err, sizeof(err));
	while (!o->interval_ms && !*stop) {
		double left = deadline - now();

		if (left <= 0)
			break;
		hk_procset_poll(&ps, left < 0.05 ? (int)(left * 1000) + 1 : 50);
	}
	hk_procset_stop(&ps);
	warn_each(&ps);
	if (ps.lost_events)
		fprintf(stderr, "hawk-bpf: warning: %llu process start events were lost; processes started then may be missing\n",
			ps.lost_events);
	if (o->interval_ms) {
		if (hs) {
			rc = hk_hostinterval_write(o, &ps, hs, &series);
		} else {
			hk_ts_out_discard(&series);
			rc = hk_fail("%s", err);
		}
		hk_procset_free(&ps);
		return rc;
	}
	rc = report(o, &ps, now() - start);
	for (size_t i = 0; i < ps.ntraced; i++)
		blocks += ps.traced[i]->res.ntraces;
	if (!rc)
		fprintf(stderr, "hawk-bpf: %zu live blocks traced in %zu processes over %.1f s\n",
			blocks, ps.ntraced, now() - start);
	hk_procset_free(&ps);
	return rc ? 1 : 0;
}

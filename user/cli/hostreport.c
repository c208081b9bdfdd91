/* The host-wide report (see hostreport.h). */
#include "hostreport.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "outfile.h"
#include "profile_out.h"
#include "report.h"
#include "session.h"
#include "stats.h"

/* The record a report shows: a session's snapshot while the process is
 * traced, else its window's record. */
static const struct hk_result *rec_of(const struct hk_traced *tt)
{
	return tt->has_snap ? &tt->snap : &tt->res;
}

static hk_u128 heap_of(const struct hk_traced *tt, unsigned frames)
{
	struct hk_snapshot s = { rec_of(tt)->traces, rec_of(tt)->ntraces, frames };

	return hk_snapshot_total(&s);
}

/* The traced processes, largest traced heap first (then by PID). */
struct ranked {
	const struct hk_traced *tt;
	hk_u128 heap;
};

static int by_heap(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->heap != y->heap)
		return x->heap > y->heap ? -1 : 1;
	return (x->tt->info.pid > y->tt->info.pid) - (x->tt->info.pid < y->tt->info.pid);
}

static struct ranked *rank(const struct hk_procset *ps, unsigned frames)
{
	struct ranked *r = calloc(ps->ntraced + 1, sizeof(*r));

	if (!r)
		return NULL;
	for (size_t i = 0; i < ps->ntraced; i++)
		r[i] = (struct ranked){ ps->traced[i], heap_of(ps->traced[i], frames) };
	qsort(r, ps->ntraced, sizeof(*r), by_heap);
	return r;
}

static json_t *size_json(hk_u128 v)
{
	return v <= (hk_u128)INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
}

void hk_hostreport_identity(json_t *o, const struct hk_found *f)
{
	json_object_set_new(o, "pid", json_integer(f->pid));
	json_object_set_new(o, "nspid", json_integer(f->nspid));
	json_object_set_new(o, "comm", json_string(f->comm));
	json_object_set_new(o, "cmdline", json_string(f->cmdline ? f->cmdline : ""));
	if (f->container[0])
		json_object_set_new(o, "container", json_string(f->container));
	if (f->cgroup)
		json_object_set_new(o, "cgroup", json_string(f->cgroup));
}

void hk_hostreport_window(json_t *o, const struct hk_traced *tt)
{
	json_object_set_new(o, "python", json_string(tt->t.version));
	json_object_set_new(o, "window_began_s", json_real(tt->began));
	/* null: still traced (a session's snapshot) */
	json_object_set_new(o, "window_ended_s", tt->ended < 0 ? json_null() :
			    json_real(tt->ended));
	json_object_set_new(o, "found_at_start", json_boolean(tt->at_start));
	json_object_set_new(o, "forked_from", tt->forked_from ?
			    json_integer(tt->forked_from) : json_null());
}

json_t *hk_hostreport_skipped(const struct hk_procset *ps)
{
	json_t *a = json_array();

	for (size_t i = 0; i < ps->nskipped; i++) {
		const struct hk_skipped *s = &ps->skipped[i];
		json_t *o = json_object();

		hk_hostreport_identity(o, &s->info);
		json_object_set_new(o, "reason", json_string(hk_skip_name(s->why)));
		json_object_set_new(o, "detail", json_string(s->reason));
		json_array_append_new(a, o);
	}
	return a;
}

json_t *hk_hostreport_run(const struct hk_procset *ps, const struct hk_options *o,
			  double window_s)
{
	return json_pack("{s:f, s:f, s:i, s:I, s:I, s:I}",
			 "window_seconds", window_s, "started_unix", ps->started_unix,
			 "frames", (int)o->frames,
			 "processes_traced", (json_int_t)ps->ntraced,
			 "processes_skipped", (json_int_t)ps->nskipped,
			 "lost_process_events", (json_int_t)ps->lost_events);
}

/* One process's own report, behind who it is and when it was traced. */
static json_t *process_json(const struct hk_options *o, const struct hk_traced *tt,
			    bool point_in_time)
{
	struct hk_source *src = hk_source_at(tt->rootfd, tt->cwdfd, &tt->creds);
	json_t *rep = hk_report_json(o, &tt->t, rec_of(tt), src, point_in_time);
	json_t *e = json_object();
	const char *k;
	json_t *v;

	hk_source_free(src);
	if (!rep || !e) {
		json_decref(rep);
		json_decref(e);
		return NULL;
	}
	hk_hostreport_identity(e, &tt->info);
	hk_hostreport_window(e, tt);
	if (tt->stop_err[0])
		json_object_set_new(e, "error", json_string(tt->stop_err));
	json_object_foreach(rep, k, v)
		json_object_set(e, k, v);
	json_decref(rep);
	return e;
}

/* Every traced block, one snapshot (borrowing the processes' tracebacks,
 * which statistics compare by content). */
static struct hk_trace *union_traces(const struct hk_procset *ps, size_t *n)
{
	size_t total = 0, k = 0;
	struct hk_trace *all;

	for (size_t i = 0; i < ps->ntraced; i++)
		total += rec_of(ps->traced[i])->ntraces;
	all = malloc((total + 1) * sizeof(*all));
	if (!all)
		return NULL;
	for (size_t i = 0; i < ps->ntraced; i++) {
		const struct hk_result *r = rec_of(ps->traced[i]);

		memcpy(all + k, r->traces, r->ntraces * sizeof(*all));
		k += r->ntraces;
	}
	*n = total;
	return all;
}

static json_t *merged_json(const struct hk_options *o, const struct hk_procset *ps,
			   double window_s, bool point_in_time)
{
	struct ranked *r = rank(ps, o->frames);
	size_t n = 0;
	struct hk_trace *all = union_traces(ps, &n);
	struct hk_snapshot snap = { all, n, o->frames }, empty = { NULL, 0, o->frames };
	/* source lines from the largest process: a pool's workers share them */
	const struct hk_traced *top = ps->ntraced && r ? r[0].tt : NULL;
	struct hk_source *src = top ? hk_source_at(top->rootfd, top->cwdfd, &top->creds) : NULL;
	json_t *rep = NULL, *procs, *run, *counters;
	uint64_t sum[HK_CNT_MAX] = { 0 };

	if (!r || !all)
		goto out;
	rep = hk_report_build(&snap, point_in_time ? NULL : &empty, o->format == HK_FMT_TRACEBACK ?
			      HK_KEY_TRACEBACK : HK_KEY_LINENO, o->cumulative,
			      o->count, src);
	if (!rep)
		goto out;
	if (o->sample)
		json_object_set_new(rep, "sampling", hk_sampling_json(o, n));
	procs = json_array();
	for (size_t i = 0; i < ps->ntraced; i++) {
		const struct hk_traced *tt = r[i].tt;
		json_t *e = json_object();

		hk_hostreport_identity(e, &tt->info);
		hk_hostreport_window(e, tt);
		json_object_set_new(e, "traced_blocks", json_integer((json_int_t)rec_of(tt)->ntraces));
		json_object_set_new(e, "traced_bytes", size_json(r[i].heap));
		json_object_set_new(e, "target_exited", json_boolean(rec_of(tt)->target_exited));
		json_object_set_new(e, "target_execd", json_boolean(rec_of(tt)->execd));
		json_array_append_new(procs, e);
		for (int c = 0; c < HK_CNT_MAX; c++)
			sum[c] += rec_of(tt)->counters[c];
	}
	counters = hk_counters_json(sum);
	run = hk_hostreport_run(ps, o, window_s);
	json_object_set_new(run, "merged", json_true());
	json_object_set_new(run, "counters", counters);
	json_object_set_new(run, "processes", procs);
	json_object_set_new(run, "skipped", hk_hostreport_skipped(ps));
	json_object_set_new(rep, "hawk_bpf", run);
out:
	hk_source_free(src);
	free(all);
	free(r);
	return rep;
}

static json_t *per_process_json(const struct hk_options *o, const struct hk_procset *ps,
				double window_s, bool point_in_time)
{
	struct ranked *r = rank(ps, o->frames);
	json_t *procs = json_array(), *rep;

	if (!r || !procs) {
		free(r);
		json_decref(procs);
		return NULL;
	}
	for (size_t i = 0; i < ps->ntraced; i++) {
		json_t *e = process_json(o, r[i].tt, point_in_time);

		if (!e || json_array_append_new(procs, e)) {
			free(r);
			json_decref(procs);
			return NULL;
		}
	}
	free(r);
	rep = json_object();
	json_object_set_new(rep, "processes", procs);
	json_object_set_new(rep, "skipped", hk_hostreport_skipped(ps));
	json_object_set_new(rep, "hawk_bpf", hk_hostreport_run(ps, o, window_s));
	return rep;
}

/* One profile: every process's samples with its labels (with --merge,
 * only the host's and --label's, so equal stacks fold together). */
static int profile(FILE *out, const struct hk_options *o, const struct hk_procset *ps,
		   double window_s)
{
	struct hk_heap_proc *hp = calloc(ps->ntraced + 1, sizeof(*hp));
	struct hk_labels *l = calloc(ps->ntraced + 1, sizeof(*l));
	double began = ps->t0;
	int rc = -1;

	if (hp && l) {
		for (size_t i = 0; i < ps->ntraced; i++) {
			const struct hk_traced *tt = ps->traced[i];
			const struct hk_result *r = rec_of(tt);

			hk_labels_make(&l[i], o, o->merge ? 0 : tt->info.pid, tt->info.comm,
				       tt->t.version, tt->info.container);
			hp[i] = (struct hk_heap_proc){ r->traces, r->ntraces, r->allocs,
						       r->nallocs, l[i].v, l[i].n };
		}
		rc = hk_profile_write(out, o, hp, ps->ntraced, began, window_s);
	} else {
		errno = ENOMEM;
	}
	free(hp);
	free(l);
	return rc;
}

int hk_hostreport_write(FILE *out, const struct hk_options *o,
			const struct hk_procset *ps, double window_s,
			bool point_in_time)
{
	json_t *rep;
	int rc;

	if (o->format == HK_FMT_PPROF || o->format == HK_FMT_FOLDED)
		return profile(out, o, ps, window_s);
	if (o->format == HK_FMT_PICKLE) {
		size_t n = 0;
		struct hk_trace *all = union_traces(ps, &n);
		struct hk_snapshot snap = { all, n, o->frames };

		if (!all) {
			errno = ENOMEM;
			return -1;
		}
		rc = hk_write_pickle(out, &snap);
		free(all);
		return rc;
	}
	rep = o->merge ? merged_json(o, ps, window_s, point_in_time)
		       : per_process_json(o, ps, window_s, point_in_time);
	if (!rep) {
		errno = ENOMEM;
		return -1;
	}
	rc = hk_report_write(out, rep);
	json_decref(rep);
	return rc;
}

/* One file of the directory, put in place whole (outfile.h). */
static int write_file(const char *dir, const char *name, int (*fill)(FILE *, const void *),
		      const void *arg, char *err, size_t errlen)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return hk_out_write(path, fill, arg, err, errlen);
}

static int fill_pickle(FILE *f, const void *arg)
{
	const struct hk_snapshot *s = arg;

	return hk_write_pickle(f, s);
}

static int fill_json(FILE *f, const void *arg)
{
	return hk_report_write(f, arg);
}

int hk_hostreport_pickles(const char *dir, const struct hk_options *o,
			  const struct hk_procset *ps, double window_s,
			  char *err, size_t errlen)
{
	struct ranked *r = rank(ps, o->frames);
	json_t *index = json_object(), *files = json_array();
	struct stat st;
	int rc = -1;

	if (!r || !index || !files) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (mkdir(dir, 0755) && errno != EEXIST) {
		snprintf(err, errlen, "cannot make the directory %s: %s", dir, strerror(errno));
		goto out;
	}
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "-o %s: not a directory (one PID.pickle a process goes there; --merge writes one file)",
			 dir);
		goto out;
	}
	for (size_t i = 0; i < ps->ntraced; i++) {
		const struct hk_traced *tt = r[i].tt;
		struct hk_snapshot s = { rec_of(tt)->traces, rec_of(tt)->ntraces, o->frames };
		char name[32];
		json_t *e = json_object();

		snprintf(name, sizeof(name), "%d.pickle", (int)tt->info.pid);
		if (write_file(dir, name, fill_pickle, &s, err, errlen)) {
			json_decref(e);
			goto out;
		}
		json_object_set_new(e, "file", json_string(name));
		hk_hostreport_identity(e, &tt->info);
		hk_hostreport_window(e, tt);
		json_object_set_new(e, "traced_blocks", json_integer((json_int_t)rec_of(tt)->ntraces));
		json_object_set_new(e, "traced_bytes", size_json(r[i].heap));
		json_object_set_new(e, "hawk_bpf", hk_run_json(&tt->t, rec_of(tt), o));
		json_array_append_new(files, e);
	}
	json_object_set_new(index, "processes", files);
	files = NULL;
	json_object_set_new(index, "skipped", hk_hostreport_skipped(ps));
	json_object_set_new(index, "hawk_bpf", hk_hostreport_run(ps, o, window_s));
	rc = write_file(dir, "index.json", fill_json, index, err, errlen);
out:
	json_decref(files);
	json_decref(index);
	free(r);
	return rc;
}

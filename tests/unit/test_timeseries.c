/* The time series writers (user/render/timeseries.c): the JSON document
 * of a series set, and its chart read back by a real XML parser
 * (oracle_svg.py). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oracle.h"
#include "report.h"
#include "timeseries.h"

static char dir[64];
static char leak_py[128];

/* leak.py: line 2 is the leak's */
static void make_source(void)
{
	char app[96];
	FILE *f;

	strcpy(dir, "/tmp/hk-ts-XXXXXX");
	cr_assert(mkdtemp(dir));
	snprintf(app, sizeof(app), "%s/app", dir);
	cr_assert_eq(mkdir(app, 0755), 0);
	snprintf(leak_py, sizeof(leak_py), "%s/leak.py", app);
	f = fopen(leak_py, "w");
	cr_assert(f);
	fputs("kept = []\n    kept.append(bytes(1000))  \n", f);
	fclose(f);
}

static void drop_source(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

struct who {
	struct hk_source *src;
};

static struct hk_source *source_of(void *ctx, uint32_t owner)
{
	return ((struct who *)ctx)->src;
}

static void identify(void *ctx, uint32_t owner, json_t *e)
{
	json_object_set_new(e, "pid", json_integer(1000 + owner));
}

static void tag(void *ctx, uint32_t owner, char *buf, size_t len)
{
	snprintf(buf, len, "PID %u ", 1000 + owner);
}

static const json_t *get(const json_t *o, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	return json_object_get(o, path);
}

static json_int_t at(const json_t *arr, size_t i)
{
	const json_t *v = json_array_get(arr, i);

	cr_assert(json_is_integer(v), "element %zu is no integer", i);
	return json_integer_value(v);
}

/* Owner 1 leaks 1000 B a point at leak.py:2 for 6 points; owner 2 holds
 * 300 B at other.py:9 from point 2 to 4 only. */
static struct hk_series_set *two_owners(enum hk_key_type key)
{
	static struct hk_frame leak[2], other = { NULL, "", 9, 0 };
	static struct hk_traceback tleak, tother;
	struct hk_series_set *s = hk_series_new(key, false);
	struct hk_trace t[8];

	leak[0] = (struct hk_frame){ leak_py, "", 2, 0 };
	leak[1] = (struct hk_frame){ "main.py", "", 30, 0 };
	other.filename = "other.py";
	tleak = (struct hk_traceback){ 2, 2, leak };
	tother = (struct hk_traceback){ 1, 1, &other };
	cr_assert(s);
	for (int p = 0; p < 6; p++) {
		struct hk_snapshot a = { t, 0, 30 }, b = { t + 7, 1, 30 };

		for (int i = 0; i <= p; i++)
			t[a.ntraces++] = (struct hk_trace){ 0, 1000, &tleak, 0 };
		t[7] = (struct hk_trace){ 0, 300, &tother, 0 };
		cr_assert_eq(hk_series_point(s, 0.25 * (p + 1)), 0);
		cr_assert_eq(hk_series_add(s, 1, &a), 0);
		if (p >= 2 && p <= 4)
			cr_assert_eq(hk_series_add(s, 2, &b), 0);
	}
	return s;
}

Test(timeseries, json_lineno, .init = make_source, .fini = drop_source)
{
	struct hk_series_set *s = two_owners(HK_KEY_LINENO);
	struct who w = { hk_source_new(NULL, NULL) };
	struct hk_ts_owners who = { &w, source_of, identify, tag };
	const struct hk_series *top[4];
	size_t n;
	json_t *doc, *back;
	char *text;

	cr_assert_eq(hk_series_top(s, 4, top, &n), 0);
	cr_assert_eq(n, 2);
	doc = hk_timeseries_json(s, top, n, 0.25, &who);
	cr_assert(doc);
	/* written as every report is, and read back */
	text = hk_report_dumps(doc);
	cr_assert(text);
	back = json_loads(text, 0, NULL);
	cr_assert(back, "not JSON: %s", text);
	cr_assert(json_equal(doc, back));
	cr_assert_float_eq(json_real_value(get(back, "interval_s")), 0.25, 1e-12);
	cr_assert_str_eq(json_string_value(get(back, "key_type")), "lineno");
	const json_t *times = get(back, "times_s"), *series = get(back, "series");

	cr_assert_eq(json_array_size(times), 6);
	for (size_t k = 0; k < 6; k++) {
		cr_assert_float_eq(json_real_value(json_array_get(times, k)), 0.25 * (k + 1), 1e-12);
		/* every block of every owner traced then */
		cr_assert_eq(at(get(back, "total.size"), k),
			     1000 * (json_int_t)(k + 1) + (k >= 2 && k <= 4 ? 300 : 0));
		cr_assert_eq(at(get(back, "total.count"), k),
			     (json_int_t)(k + 1) + (k >= 2 && k <= 4));
	}
	cr_assert_eq(json_array_size(series), 2);
	const json_t *a = json_array_get(series, 0), *b = json_array_get(series, 1);
	const char *keys[] = { "pid", "filename", "lineno", "code", "size", "count" };
	const char *k;
	json_t *v;
	size_t i = 0;

	json_object_foreach((json_t *)a, k, v)
		cr_assert_str_eq(k, keys[i++], "key %zu", i);
	cr_assert_eq(i, 6);
	cr_assert_eq(json_integer_value(get(a, "pid")), 1001);
	cr_assert_str_eq(json_string_value(get(a, "filename")), leak_py);
	cr_assert_eq(json_integer_value(get(a, "lineno")), 2);
	cr_assert_str_eq(json_string_value(get(a, "code")), "kept.append(bytes(1000))");
	for (size_t p = 0; p < 6; p++) {
		cr_assert_eq(at(get(a, "size"), p), 1000 * (json_int_t)(p + 1));
		cr_assert_eq(at(get(a, "count"), p), (json_int_t)(p + 1));
	}
	/* owner 2: null before and after it was traced */
	cr_assert_eq(json_integer_value(get(b, "pid")), 1002);
	cr_assert_str_eq(json_string_value(get(b, "code")), "");
	for (size_t p = 0; p < 6; p++) {
		bool there = p >= 2 && p <= 4;

		cr_assert_eq(json_is_null(json_array_get(get(b, "size"), p)), !there, "point %zu", p);
		cr_assert_eq(json_is_null(json_array_get(get(b, "count"), p)), !there);
		if (there)
			cr_assert_eq(at(get(b, "size"), p), 300);
	}
	free(text);
	json_decref(back);
	json_decref(doc);
	hk_source_free(w.src);
	hk_series_free(s);
}

Test(timeseries, json_traceback, .init = make_source, .fini = drop_source)
{
	struct hk_series_set *s = two_owners(HK_KEY_TRACEBACK);
	const struct hk_series *top[4];
	size_t n;
	json_t *doc;
	char line[300];

	cr_assert_eq(hk_series_top(s, 1, top, &n), 0);
	cr_assert_eq(n, 1);
	doc = hk_timeseries_json(s, top, n, 1, NULL);
	cr_assert(doc);
	const json_t *e = json_array_get(get(doc, "series"), 0);

	cr_assert_str_eq(json_string_value(get(doc, "key_type")), "traceback");
	cr_assert_null(get(e, "pid"));
	cr_assert_null(get(e, "filename"));
	/* Traceback.format(), oldest first; no source: no code lines */
	cr_assert_eq(json_array_size(get(e, "traceback")), 2);
	cr_assert_str_eq(json_string_value(json_array_get(get(e, "traceback"), 0)),
			 "  File \"main.py\", line 30");
	snprintf(line, sizeof(line), "  File \"%s\", line 2", leak_py);
	cr_assert_str_eq(json_string_value(json_array_get(get(e, "traceback"), 1)), line);
	cr_assert_str_eq(json_string_value(get(json_array_get(get(e, "frames"), 0), "filename")),
			 "main.py");
	cr_assert_eq(json_integer_value(get(json_array_get(get(e, "frames"), 1), "lineno")), 2);
	cr_assert_eq(at(get(e, "size"), 5), 6000);
	json_decref(doc);
	hk_series_free(s);
}

/* The chart: one polyline for a series traced all along, with a point
 * per snapshot; the legend says where and how much at the end. */
Test(timeseries, svg, .init = make_source, .fini = drop_source)
{
	struct hk_series_set *s = two_owners(HK_KEY_TRACEBACK);
	struct who w = { hk_source_new(NULL, NULL) };
	struct hk_ts_owners who = { &w, source_of, NULL, tag };
	const struct hk_series *top[4];
	char path[] = "/tmp/hk-ts-svg-XXXXXX", args[128];
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	size_t n;

	cr_assert(f);
	cr_assert_eq(hk_series_top(s, 4, top, &n), 0);
	cr_assert_eq(hk_timeseries_svg(f, s, top, n, "PID 1001", "every 0.25 s", 1.5, &who), 0);
	cr_assert_eq(fclose(f), 0);
	snprintf(args, sizeof(args), "oracle_svg.py %s", path);
	json_t *doc = oracle(args), *leg = json_object_get(doc, "legend");
	unlink(path);

	cr_assert_str_eq(json_string_value(json_object_get(doc, "title")), "PID 1001");
	cr_assert_eq(json_array_size(leg), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(leg, 0), "label")),
			 "PID 1001 app/leak.py:2 < main.py:30  kept.append(bytes(1000)) \xe2\x80\x94 6000 B");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(leg, 1), "label")),
			 "PID 1002 other.py:9 \xe2\x80\x94 300 B");
	json_t *series = json_object_get(doc, "series");

	/* drawn last first */
	json_t *first = json_array_get(series, 1), *second = json_array_get(series, 0);
	char want[300];

	snprintf(want, sizeof(want), "%s:2\nmain.py:30", leak_py);
	cr_assert_str_eq(json_string_value(json_object_get(first, "title")), want);
	cr_assert_eq(json_array_size(json_object_get(first, "runs")), 1);
	cr_assert_eq(json_array_size(json_array_get(json_object_get(first, "runs"), 0)), 6);
	cr_assert_eq(json_array_size(json_array_get(json_object_get(second, "runs"), 0)), 3);
	json_decref(doc);
	hk_source_free(w.src);
	hk_series_free(s);
}

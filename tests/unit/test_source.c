/* hk_source_line against the real linecache.getline().strip()
 * (tests/unit/oracle_source.py writes the files and the expected lines). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/openat2.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "oracle.h"
#include "source.h"

/* Tampering tests expect mismatches: keep their logs quiet. */
static bool quiet;
#define LOG_ERROR(...) do { if (!quiet) cr_log_error(__VA_ARGS__); } while (0)

static char dir[64];
static json_t *doc;

static void setup(void)
{
	char args[128];

	strcpy(dir, "/tmp/hk-source-XXXXXX");
	cr_assert(mkdtemp(dir));
	snprintf(args, sizeof(args), "oracle_source.py %s", dir);
	doc = oracle(args);
}

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	json_decref(doc);
	nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Mismatches over [[filename, lineno, line]...]. */
static size_t check(struct hk_source *src, const json_t *cases, const char *what)
{
	size_t i, bad = 0;
	json_t *c;

	json_array_foreach(cases, i, c) {
		const char *name = json_string_value(json_array_get(c, 0));
		unsigned int lineno = (unsigned int)json_integer_value(json_array_get(c, 1));
		const json_t *want = json_array_get(c, 2);
		size_t n;
		const char *got = hk_source_line(src, name, lineno, &n);

		if ((n != json_string_length(want) || memcmp(got, json_string_value(want), n)) &&
		    bad++ < 10)
			LOG_ERROR("%s: %s:%u: got '%.*s', want '%s'", what, name, lineno,
				     (int)n, got, json_string_value(want));
	}
	return bad;
}

TestSuite(source, .init = setup, .fini = teardown);

/* hk_source falls back to plain prefixing without openat2. */
static bool have_openat2(void)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC };
	int fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

Test(source, absolute_names_match_linecache)
{
	json_t *cases = json_object_get(doc, "abs");
	struct hk_source *src = hk_source_new("", NULL);

	cr_assert(src && json_array_size(cases) > 300);
	cr_expect_eq(check(src, cases, "abs"), 0);
	/* served from the cache: a second pass, and after the files are gone */
	cr_expect_eq(check(src, cases, "abs, cached"), 0);
	char path[128];
	snprintf(path, sizeof(path), "%s/plain.py", dir);
	const char *l1 = hk_source_line(src, path, 2, NULL);
	cr_assert_eq(unlink(path), 0);
	cr_expect_eq(hk_source_line(src, path, 2, NULL), l1);
	cr_expect_eq(check(src, cases, "abs, file removed"), 0);
	hk_source_free(src);
}

Test(source, relative_names_use_cwd)
{
	struct hk_source *src = hk_source_new(NULL, dir);

	cr_assert(src);
	cr_expect_eq(check(src, json_object_get(doc, "rel"), "rel"), 0);
	hk_source_free(src);
}

Test(source, root_prefix)
{
	char root[128], link[160], path[160];
	json_t *cases = json_object_get(doc, "root");

	snprintf(root, sizeof(root), "%s/root", dir);
	struct hk_source *src = hk_source_new(root, "/nonexistent");
	cr_assert(src && json_array_size(cases) > 5);
	cr_expect_eq(check(src, cases, "root"), 0);

	cr_expect_str_neq(hk_source_line(src, "/app/x.py", 1, NULL), "");
	if (have_openat2()) {
		/* an absolute symlink inside the root resolves inside it, as
		 * the target process would see it */
		snprintf(link, sizeof(link), "%s/app/abs.py", root);
		cr_assert_eq(symlink("/app/x.py", link), 0);
		cr_expect_str_eq(hk_source_line(src, "/app/abs.py", 1, NULL),
				 hk_source_line(src, "/app/x.py", 1, NULL));
		/* ".." cannot leave the root */
		snprintf(path, sizeof(path), "/../../..%s/plain.py", dir);
		cr_expect_str_eq(hk_source_line(src, path, 1, NULL), "");
	} else {
		cr_log_warn("no openat2 here (old kernel, valgrind): root prefix only");
	}
	hk_source_free(src);

	/* "/" and "" are the plain filesystem */
	src = hk_source_new("/", NULL);
	snprintf(path, sizeof(path), "%s/app/x.py", root);
	cr_expect_str_neq(hk_source_line(src, path, 1, NULL), "");
	hk_source_free(src);
}

/* The comparison must be able to fail. */
Test(source, checks_catch_wrong_output)
{
	quiet = true;
	json_t *cases = json_object_get(doc, "abs");
	struct hk_source *src = hk_source_new("", NULL);
	size_t i, changed = 0;
	json_t *c;

	json_array_foreach(cases, i, c) {
		if (json_string_length(json_array_get(c, 2)) && changed++ < 3) {
			char buf[256];

			snprintf(buf, sizeof(buf), " %s", json_string_value(json_array_get(c, 2)));
			json_array_set_new(c, 2, json_string(buf));
		}
	}
	json_array_set_new(json_array_get(cases, 0), 2, json_string("x"));
	cr_expect_eq(check(src, cases, "tampered"), 4);
	hk_source_free(src);
}

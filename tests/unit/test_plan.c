/* Probe planning (hk_site_plan) on synthetic layouts (plan_layouts.S,
 * assembled here into a stripped shared object) and on the real
 * interpreter images of this machine (hk_hooks_plan on a running child). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disasm.h"
#include "probes.h"
#include "pyver/pyver.h"

static char so[64];
static struct hk_elf elf;

static void build(void)
{
	const char *slash = strrchr(__FILE__, '/');
	char cmd[512];

	strcpy(so, "/tmp/hk-plan-XXXXXX.so");
	int fd = mkstemps(so, 3);
	cr_assert(fd >= 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "${CC:-cc} -nostdlib -shared -s -o %s %.*splan_layouts.S",
		 so, slash ? (int)(slash - __FILE__ + 1) : 0, __FILE__);
	cr_assert(system(cmd) == 0, "cannot assemble: %s", cmd);
	cr_assert(hk_elf_open(&elf, so) == 0);
}

static void unbuild(void)
{
	hk_elf_close(&elf);
	unlink(so);
}

static uint64_t func(const char *name)
{
	uint64_t a = 0, start, size;

	cr_assert(hk_elf_symbol(&elf, name, &a) == 0, "%s not exported", name);
	/* the fixture must reach the planner the stripped way */
	cr_assert(hk_elf_func_extent(&elf, a, &start, &size) == 0 && start == a,
		  "%s: no FDE starting at it", name);
	return a;
}

static struct hk_site plan(const char *name, int kind)
{
	struct hk_site s;

	hk_site_plan(&elf, func(name), kind, &s);
	return s;
}

TestSuite(plan, .init = build, .fini = unbuild);

Test(plan, stripped_image_has_no_symtab)
{
	uint64_t start, size;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "readelf -S %s | grep -q '\\.symtab'", so);
	cr_assert(system(cmd) != 0, "the fixture should be stripped");
	/* int3 filler between functions is covered by no FDE */
	cr_assert(hk_elf_func_extent(&elf, func("hk_boundary") - 1, &start, &size) != 0);
}

Test(plan, padding_across_a_256_byte_boundary)
{
	struct hk_site s = plan("hk_boundary", HK_CALLOC);

	cr_assert((s.func & 0xff) == 0);
	cr_assert(s.redirect && s.redirect < s.func && s.func - s.redirect <= 2,
		  "redirect %#lx for %#lx", (long)s.redirect, (long)s.func);
	cr_assert((s.redirect ^ s.func) > 0xff, "needs the wide (frozen) switch");
	cr_assert_eq(s.probe, s.redirect);
}

Test(plan, padding_in_the_low_byte)
{
	struct hk_site s = plan("hk_lowbyte", HK_MALLOC);

	cr_assert_eq(s.redirect, s.func - 4);
	cr_assert((s.redirect ^ s.func) <= 0xff);
	cr_assert_eq(s.probe, s.redirect);
}

Test(plan, no_padding_probes_the_first_emulated_instruction)
{
	struct hk_site s = plan("hk_nopad", HK_REALLOC);

	cr_assert_eq(s.redirect, 0);
	cr_assert_eq(s.probe, s.func, "probe %#lx", (long)s.probe);
	cr_assert(!s.stepped);
}

Test(plan, endbr64_first)
{
	struct hk_site s = plan("hk_endbr", HK_FREE);

	cr_assert_eq(s.redirect, 0);
	cr_assert_eq(s.probe, s.func + 4, "probe %#lx, func %#lx", (long)s.probe, (long)s.func);
}

Test(plan, arguments_change_before_anything_emulated)
{
	struct hk_site s = plan("hk_nosite", HK_MALLOC);

	/* the entry itself, single-stepped: slow but right */
	cr_assert_eq(s.redirect, 0);
	cr_assert_eq(s.probe, s.func, "probe %#lx", (long)s.probe);
	cr_assert(s.stepped);
}

Test(plan, never_a_5_byte_nop)
{
	struct hk_site s = plan("hk_nop5", HK_MALLOC);

	cr_assert_eq(s.redirect, 0, "redirect %#lx", (long)s.redirect);
	cr_assert_eq(s.probe, s.func);
}

Test(plan, never_where_a_branch_reenters)
{
	struct hk_site s = plan("hk_loop", HK_FREE);

	cr_assert_eq(s.probe, 0, "probe %#lx", (long)s.probe);
}

Test(plan, never_a_prefixed_nop)
{
	struct hk_site s = plan("hk_prefix", HK_MALLOC);

	cr_assert_eq(s.redirect, s.func - 8, "redirect %#lx, func %#lx",
		     (long)s.redirect, (long)s.func);
}

Test(plan, an_entry_probe_skips_a_leading_5_byte_nop)
{
	uint64_t f = func("hk_entry_nop5");

	cr_assert_eq(hk_probe_entry(&elf, f), f + 5);
	cr_assert_eq(hk_probe_entry(&elf, func("hk_nopad")), func("hk_nopad"));
}

Test(plan, missing_site_is_an_error_naming_the_function)
{
	struct hk_hooks h = { .nsites = 1 };
	struct hk_pytarget t = { .version = "3.11.2" };
	char err[256] = "";

	hk_site_plan(&elf, func("hk_loop"), HK_CALLOC, &h.sites[0]);
	cr_assert(hk_hooks_site(&h, 0, &t, err, sizeof(err)) != 0);
	cr_assert(strstr(err, "calloc") && strstr(err, "3.11.2"), "%s", err);
}

/* ------------------------------------------------- the real interpreters */

/* Every CPython of the supported versions that this machine kind has
 * (facts: each machine has them; a missing one fails, never skips). */
static const char *const real[] = {
	"/root/.pyenv/versions/3.10.13/bin/python3.10",
	"/usr/bin/python3.11",
	"/root/.pyenv/versions/3.11.7/bin/python3.11",
	"/root/.pyenv/versions/3.12.1/bin/python3.12",
	"/root/.pyenv/versions/3.13.0/bin/python3.13",
};

static void check_real(const char *py)
{
	struct hk_pytarget t;
	struct hk_hooks h;
	char err[256];
	int p[2];
	pid_t pid;

	cr_assert(pipe(p) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		execl(py, py, "-c", "import sys,time; print(1, flush=True); time.sleep(60)",
		      (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char c;
	cr_assert(read(p[0], &c, 1) == 1, "%s did not start", py);
	close(p[0]);
	int rc = hk_pytarget_open(&t, pid, err, sizeof(err));
	if (rc == 0) {
		rc = hk_hooks_plan(&h, &t, err, sizeof(err));
		for (int i = 0; rc == 0 && i < h.nsites; i++) {
			const struct hk_site *s = &h.sites[i];
			uint8_t code[16];
			struct hk_insn in;

			cr_expect(hk_hooks_site(&h, i, &t, err, sizeof(err)) == 0,
				  "%s: %s", py, err);
			cr_assert(hk_elf_read(&t.elf, s->probe, code, sizeof(code)) == 0);
			cr_assert(hk_disasm(code, sizeof(code), s->probe, &in, 1) == 1);
			cr_expect(in.probeable && (in.emulated || s->stepped) &&
				  in.size != 5,
				  "%s: probe %#lx: %u bytes, emulated %d", py,
				  (long)s->probe, in.size, in.emulated);
			cr_expect(!s->redirect || s->redirect == s->probe);
		}
		hk_pytarget_close(&t);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert(rc == 0, "%s: %s", py, err);
}

Test(plan, every_real_interpreter_has_a_site_for_every_function)
{
	for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++) {
		cr_assert(access(real[i], X_OK) == 0, "%s is missing", real[i]);
		check_real(real[i]);
	}
}

/* Debian sid's builds (scripts/sid-chroot), from their files alone: they
 * are non-PIE, so the default allocator tables inside _PyRuntime hold the
 * functions' addresses as linked. Every function gets a site, none a
 * 5-byte instruction; the slots whose padding is not in the low byte are
 * the ones switched with the target frozen. */
static void check_image(const char *path, int minor)
{
	const struct hk_pyver *v = hk_pyver_find(3, minor);
	struct hk_elf e;
	uint64_t rt;

	cr_assert(v, "no version file for 3.%d", minor);
	cr_assert(hk_elf_open(&e, path) == 0, "%s is missing (run scripts/sid-chroot)", path);
	cr_assert(hk_elf_symbol(&e, "_PyRuntime", &rt) == 0, "%s: no _PyRuntime", path);
	for (int d = 0; d < 3; d++) {
		uint64_t tab[5];

		cr_assert(hk_elf_read(&e, rt + v->rt_alloc[d], tab, sizeof(tab)) == 0);
		for (int k = HK_MALLOC; k <= HK_FREE; k++) {
			struct hk_site s;
			uint8_t code[16];
			struct hk_insn in;

			cr_assert(hk_elf_is_code(&e, tab[k]), "%s: slot %d/%d is %#lx",
				  path, d, k, (long)tab[k]);
			hk_site_plan(&e, tab[k], k, &s);
			cr_expect(s.probe, "%s: no site for %d/%d at %#lx", path, d, k,
				  (long)tab[k]);
			if (!s.probe)
				continue;
			cr_assert(hk_elf_read(&e, s.probe, code, sizeof(code)) == 0);
			cr_assert(hk_disasm(code, sizeof(code), s.probe, &in, 1) == 1);
			cr_expect(in.probeable && in.size != 5 && (in.emulated || s.stepped),
				  "%s: probe %#lx", path, (long)s.probe);
		}
	}
	hk_elf_close(&e);
}

Test(plan, sid_images_have_a_site_for_every_function)
{
	const char *root = getenv("HAWK_SID_ROOT");
	char path[256];

	for (int minor = 13; minor <= 15; minor++) {
		snprintf(path, sizeof(path), "%s/usr/bin/python3.%d",
			 root && *root ? root : "/var/cache/hawk-bpf/sid", minor);
		check_image(path, minor);
	}
}

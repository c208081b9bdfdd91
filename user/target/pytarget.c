#include "pytarget.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "disasm.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* "3.10" from ".../python3.10" or "libpython3.10.so…": for a clear
 * "unsupported" message on Pythons without Py_Version. */
static int version_from_name(const char *path, int *maj, int *min)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	if (strncmp(b, "lib", 3) == 0)
		b += 3;
	return sscanf(b, "python%d.%d", maj, min) == 2 ? 0 : -1;
}

/* 3.10 has no Py_Version: its version is the PY_VERSION string that
 * Py_GetVersion() formats ("%.80s (%.80s) %.80s"), found among the string
 * literals its code loads. 0 with *hex (release level final), or -1. */
static int version_from_code(struct hk_pytarget *t, uint32_t *hex)
{
	uint8_t code[160];
	struct hk_insn ins[48];
	uint64_t a;
	size_t n;

	if (hk_elf_symbol(&t->elf, "Py_GetVersion", &a) ||
	    hk_elf_read(&t->elf, a, code, sizeof(code)))
		return -1;
	n = hk_disasm(code, sizeof(code), a, ins, 48);
	for (size_t i = 0; i < n; i++) {
		char str[24] = "";
		unsigned maj, min, mic;
		int used = 0;

		if (!ins[i].has_rip_mem ||
		    hk_elf_read(&t->elf, ins[i].rip_mem, str, sizeof(str) - 1))
			continue;
		if (sscanf(str, "%u.%u.%u%n", &maj, &min, &mic, &used) == 3 &&
		    maj == 3 && min < 100 && mic < 100 &&
		    strspn(str + used, "abcr+0123456789") == strlen(str + used) &&
		    strlen(str) < 16) {
			*hex = maj << 24 | min << 16 | mic << 8 | 0xf0;
			return 0;
		}
	}
	return -1;
}

/* The runtime address of an allocator table, from the rip-relative loads
 * of the four exported wrappers of its domain: each reads ctx (table+0) and
 * its own slot (table+8*(i+1)). Works on stripped LTO builds. */
static int find_table(struct hk_pytarget *t, const char *const names[4],
		      uint64_t *table)
{
	uint64_t refs[4][32];
	size_t nref[4] = {0};

	for (int w = 0; w < 4; w++) {
		uint64_t a;
		uint8_t code[256];
		struct hk_insn ins[48];
		size_t n;

		if (hk_elf_symbol(&t->elf, names[w], &a) ||
		    hk_elf_read(&t->elf, a, code, sizeof(code)))
			return -1;
		n = hk_disasm(code, sizeof(code), a, ins, 48);
		for (size_t i = 0; i < n && nref[w] < 32; i++)
			if (ins[i].has_rip_mem)
				refs[w][nref[w]++] = ins[i].rip_mem;
	}
	for (size_t c = 0; c < nref[0]; c++) {
		uint64_t base = refs[0][c] - 8;
		int ok = 1;

		for (int w = 1; w < 4 && ok; w++) {
			ok = 0;
			for (size_t i = 0; i < nref[w]; i++)
				if (refs[w][i] == base + 8 * (w + 1))
					ok = 1;
		}
		if (ok) {
			*table = base + t->bias;
			return 0;
		}
	}
	return -1;
}

static const char *const wrappers[HK_NDOMAINS][4] = {
	{ "PyMem_RawMalloc", "PyMem_RawCalloc", "PyMem_RawRealloc", "PyMem_RawFree" },
	{ "PyMem_Malloc", "PyMem_Calloc", "PyMem_Realloc", "PyMem_Free" },
	{ "PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc", "PyObject_Free" },
};

static int open_image(struct hk_pytarget *t, const struct hk_map *m)
{
	uint64_t rt;

	snprintf(t->image_path, sizeof(t->image_path),
		 "/proc/%d/map_files/%llx-%llx", (int)t->pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
	if (hk_elf_open(&t->elf, t->image_path))
		return -1;
	if (hk_elf_symbol(&t->elf, "_PyRuntime", &rt) ||
	    hk_elf_bias(&t->elf, m->start, m->offset, &t->bias)) {
		hk_elf_close(&t->elf);
		return -1;
	}
	t->runtime = rt + t->bias;
	snprintf(t->image_name, sizeof(t->image_name), "%s", m->path);
	return 0;
}

/* 3.13+: _PyRuntime begins with _Py_DebugOffsets: the cookie, the
 * version (which must be Py_Version's), whether the build is free-threaded
 * (refused: mimalloc serves every domain there and its GC walks mimalloc's
 * heaps, so replacing an allocator would break it; and every layout
 * differs), then the interpreter's own offsets of what hawk-bpf reads,
 * each of which must equal the version file's: a build that differs is
 * refused rather than misread. */
static int check_debug_offsets(struct hk_pytarget *t, char *err, size_t errlen)
{
	const struct hk_pyver *v = t->layout;
	const struct hk_py_layout *L = &v->bpf;
	struct { char cookie[8]; uint64_t version, free_threaded; } d;
	const struct { const char *name; uint32_t at, want; } f[] = {
		{ "interpreters_head", v->dbg.interp_head, L->rt_interp_head },
		{ "threads_head", v->dbg.threads_head, L->interp_threads_head },
		{ "thread_state.next", v->dbg.tstate_next, L->tstate_next },
		{ "current_frame", v->dbg.current_frame, L->cframe_current_frame },
		{ "thread_id", v->dbg.thread_id, L->tstate_thread_id },
		{ "native_thread_id", v->dbg.native_tid, L->tstate_native_tid },
		{ "frame.previous", v->dbg.frame_previous, L->frame_previous },
		{ "frame.executable", v->dbg.frame_code, L->frame_code },
		{ "frame.instr_ptr", v->dbg.frame_instr, L->frame_instr },
		{ "frame.owner", v->dbg.frame_owner, L->frame_owner },
		{ "code.filename", v->dbg.code_filename, v->code_filename },
		{ "code.linetable", v->dbg.code_linetable, v->code_linetable },
		{ "code.firstlineno", v->dbg.code_firstlineno, v->code_firstlineno },
		{ "code.qualname", v->dbg.code_name, v->code_name },
		{ "code.co_code_adaptive", v->dbg.code_adaptive, v->code_adaptive },
		{ "unicode.state", v->dbg.str_state, v->str_state },
		{ "unicode.length", v->dbg.str_length, v->str_length },
		{ "unicode.asciiobject_size", v->dbg.str_ascii_data, v->str_ascii_data },
	};

	if (!v->dbg.interp_head)
		return 0;
	if (hk_mem_read(t->memfd, t->runtime, &d, sizeof(d)) ||
	    memcmp(d.cookie, "xdebugpy", 8) || d.version != t->hexversion)
		return ERR("CPython %s in process %d has no valid _Py_DebugOffsets (cookie or version differ): refusing an unknown build",
			   t->version, (int)t->pid);
	if (d.free_threaded)
		return ERR("CPython %s in process %d is a free-threaded build, which is not supported",
			   t->version, (int)t->pid);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		uint64_t have;

		if (hk_mem_read(t->memfd, t->runtime + f[i].at, &have, 8))
			return ERR("cannot read the _Py_DebugOffsets of process %d", (int)t->pid);
		if (have != f[i].want)
			return ERR("CPython %s in process %d puts %s at %llu, not %u as its version's headers do: refusing an unknown build",
				   t->version, (int)t->pid, f[i].name,
				   (unsigned long long)have, f[i].want);
	}
	return 0;
}

/* A kernel thread or a zombie has no user memory to look at: said so,
 * as for any other process that is not CPython. */
static int not_a_program(struct hk_pytarget *t, char *err, size_t errlen)
{
	struct hk_proc_stat st;
	char comm[64];

	if (hk_proc_stat(t->pid, &st))
		return 0;	/* reading its maps will say why */
	hk_proc_comm(t->pid, comm, sizeof(comm));
	if (st.flags & HK_PF_KTHREAD)
		return ERR("process %d (%s) is not a CPython process: it is a kernel thread",
			   (int)t->pid, comm);
	if (st.state == 'Z' || st.state == 'X')
		return ERR("process %d (%s) is not a CPython process: it has exited (a zombie its parent has not reaped)",
			   (int)t->pid, comm);
	return 0;
}

/* /proc/PID/maps, or one line: a process root may not read (held by a
 * security module, or with capabilities beyond ours) cannot be seen to
 * be a CPython process. */
static int read_maps(struct hk_pytarget *t, struct hk_maps *maps, char *err,
		     size_t errlen)
{
	char comm[64];
	int e;

	if (hk_maps_read(t->pid, maps) == 0)
		return 0;
	e = errno;
	hk_proc_comm(t->pid, comm, sizeof(comm));
	if (e == EACCES || e == EPERM)
		return ERR("process %d (%s) is not a CPython process that hawk-bpf may read (/proc/%d/maps: %s)",
			   (int)t->pid, comm, (int)t->pid, strerror(e));
	if (!e)
		return ERR("process %d (%s) is not a CPython process: it has no memory mappings",
			   (int)t->pid, comm);
	return ERR("cannot read /proc/%d/maps: %s", (int)t->pid, strerror(e));
}

static int open_interpreter(struct hk_pytarget *t, char *err, size_t errlen)
{
	struct hk_maps maps;
	uint64_t vaddr;
	uint32_t hex;
	pid_t pid = t->pid;
	int maj = 0, min = 0, found = 0, named = 0;

	if (read_maps(t, &maps, err, errlen))
		return -1;
	/* The image that defines _PyRuntime: the executable for a static
	 * libpython, libpython3.X.so otherwise. */
	for (size_t i = 0; i < maps.n && !found; i++) {
		const struct hk_map *m = &maps.v[i];
		int seen = 0;

		if (!m->path || m->perms[2] != 'x')
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = maps.v[j].path && strcmp(maps.v[j].path, m->path) == 0 &&
			       maps.v[j].perms[2] == 'x';
		if (seen)
			continue;
		if (!named && version_from_name(m->path, &maj, &min) == 0)
			named = 1;
		found = open_image(t, m) == 0;
	}
	hk_maps_free(&maps);
	if (!found) {
		char comm[64];

		hk_proc_comm(pid, comm, sizeof(comm));
		if (named)
			return ERR("unsupported CPython %d.%d in process %d (%s; supported: %s)",
				   maj, min, (int)pid, comm, hk_pyver_supported());
		return ERR("process %d (%s) is not a CPython process", (int)pid,
			   comm);
	}
	t->memfd = hk_mem_open(pid);
	if (t->memfd < 0)
		return ERR("cannot open /proc/%d/mem: %s", (int)pid, strerror(errno));
	/* Py_Version exists from 3.11 on; 3.10 is read from its code, and
	 * older Pythons are named by file. */
	if ((hk_elf_symbol(&t->elf, "Py_Version", &vaddr) ||
	     hk_mem_read(t->memfd, vaddr + t->bias, &hex, sizeof(hex))) &&
	    (version_from_code(t, &hex) ||
	     (version_from_name(t->image_name, &maj, &min) == 0 &&
	      (maj != (int)(hex >> 24) || min != (int)((hex >> 16) & 0xff))))) {
		if (version_from_name(t->image_name, &maj, &min) == 0)
			return ERR("unsupported CPython %d.%d in process %d (supported: %s)",
				   maj, min, (int)pid, hk_pyver_supported());
		return ERR("cannot tell the CPython version of process %d",
			   (int)pid);
	}
	t->hexversion = hex;
	maj = hex >> 24;
	min = (hex >> 16) & 0xff;
	snprintf(t->version, sizeof(t->version), "%d.%d.%d", maj, min,
		 (hex >> 8) & 0xff);
	t->layout = hk_pyver_find(maj, min);
	if (!t->layout)
		return ERR("unsupported CPython %s in process %d (supported: %s)",
			   t->version, (int)pid, hk_pyver_supported());
	if (hk_pyver_check(t->layout, err, errlen) ||
	    check_debug_offsets(t, err, errlen))
		return -1;
	for (int d = 0; d < HK_NDOMAINS; d++) {
		uint64_t found;
		int rc = find_table(t, wrappers[d], &found);

		/* 3.12+: inside _PyRuntime, at the version's offset, which
		 * the wrappers must confirm where they address it directly
		 * (shared builds reach it through the GOT: nothing to see;
		 * the plan then checks every slot holds CPython's own code) */
		if (t->layout->rt_alloc[d]) {
			t->tables[d] = t->runtime + t->layout->rt_alloc[d];
			if (rc == 0 && found != t->tables[d])
				return ERR("the %s allocator table of CPython %s is at %#llx, not where its version puts it (%#llx): refusing an unknown layout",
					   wrappers[d][0], t->version,
					   (unsigned long long)found,
					   (unsigned long long)t->tables[d]);
		} else if (rc == 0) {
			t->tables[d] = found;
		} else {
			return ERR("cannot locate the %s allocator table of CPython %s",
				   wrappers[d][0], t->version);
		}
	}
	return 0;
}

int hk_pytarget_open(struct hk_pytarget *t, pid_t pid, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->memfd = -1;
	t->elf.fd = -1;
	/* first: every later read is then known to be of this process */
	t->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if ((t->pidfd < 0 && errno == ESRCH) || (kill(pid, 0) && errno == ESRCH))
		return ERR("no process with PID %d", (int)pid);
	if (not_a_program(t, err, errlen))
		return -1;
	if (open_interpreter(t, err, errlen) == 0)
		return 0;
	return hk_pytarget_gone(t) ? hk_pytarget_gone_err(t, err, errlen) : -1;
}

bool hk_pytarget_gone(const struct hk_pytarget *t)
{
	struct pollfd p = { .fd = t->pidfd, .events = POLLIN };

	if (t->pidfd < 0)
		return kill(t->pid, 0) && errno == ESRCH;
	return poll(&p, 1, 0) == 1;
}

int hk_pytarget_gone_err(const struct hk_pytarget *t, char *err, size_t errlen)
{
	return ERR("process %d exited during attach; nothing was traced", (int)t->pid);
}

bool hk_pytarget_ready(const struct hk_pytarget *t)
{
	const struct hk_py_layout *L = &t->layout->bpf;
	uint64_t interp = 0, tstate = 0;

	return hk_mem_read(t->memfd, t->runtime + L->rt_interp_head, &interp, 8) == 0 &&
	       interp &&
	       hk_mem_read(t->memfd, interp + L->interp_threads_head, &tstate, 8) == 0 &&
	       tstate;
}

void hk_pytarget_close(struct hk_pytarget *t)
{
	if (t->memfd >= 0)
		close(t->memfd);
	t->memfd = -1;
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->pidfd = -1;
	hk_elf_close(&t->elf);
}

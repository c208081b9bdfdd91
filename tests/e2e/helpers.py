"""Plumbing for the hawk-bpf end-to-end tests: starting workloads and
hawk-bpf, the tracemalloc oracle, comparing snapshots, and checking that
nothing of hawk-bpf stays behind in the kernel or in the target.

Fixtures live in conftest.py; the tests import what they need from here.
"""
import json
import os
import queue
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKLOADS = HERE / "workloads"
HAWK = Path(os.environ.get("HAWK_BPF", REPO / "build" / "hawk-bpf"))

# Every supported interpreter of this machine kind must pass; the test ids
# are the keys.
PYTHONS = {
    "pyenv-3.10.13": ("/root/.pyenv/versions/3.10.13/bin/python3.10", "3.10.13"),
    "debian-3.11.2": ("/usr/bin/python3.11", "3.11.2"),
    "pyenv-3.11.7": ("/root/.pyenv/versions/3.11.7/bin/python3.11", "3.11.7"),
    "pyenv-3.12.1": ("/root/.pyenv/versions/3.12.1/bin/python3.12", "3.12.1"),
    "pyenv-3.13.0": ("/root/.pyenv/versions/3.13.0/bin/python3.13", "3.13.0"),
}
# Debian sid's builds (non-PIE, LTO, stripped, endbr64 everywhere), run from
# the chroot scripts/sid-chroot makes, each in its own mount and PID
# namespace (tests/e2e/sid-python): build/sid/pythonX.Y stands for one.
SID_BIN = REPO / "build" / "sid"


def sid_python(name):
    SID_BIN.mkdir(parents=True, exist_ok=True)
    link = SID_BIN / name
    if not link.is_symlink():
        link.symlink_to(HERE / "sid-python")
    return str(link)


SID = {
    "sid-3.13.18": (sid_python("python3.13"), "3.13.18"),
    "sid-3.14.10": (sid_python("python3.14"), "3.14.10"),
    "sid-3.15.2": (sid_python("python3.15"), "3.15.2"),
}
# The accuracy suite and the other per-interpreter acceptance tests run on
# all of them (the fixture target_python); the rest on the host's.
ALL_PYTHONS = {**PYTHONS, **SID}
# For the "unsupported" error: path, version hawk-bpf must name.
UNSUPPORTED = {
    "3.9": ("/root/.pyenv/versions/3.9.18/bin/python3.9", "3.9.18"),
}


def host_pid(ancestor, nspid):
    """The host PID of the process that is nspid in its own namespace and
    descends from ancestor (a sid target under its unshare wrapper)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        parent, inner = {}, {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                status = Path(f"/proc/{d}/status").read_text()
            except OSError:
                continue
            fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
            parent[int(d)] = int(fields["PPid"])
            inner[int(d)] = fields.get("NSpid", "").split()
        for pid, ns in inner.items():
            if len(ns) > 1 and int(ns[-1]) == nspid:
                p = pid
                while p > 1 and p != ancestor:
                    p = parent.get(p, 0)
                if p == ancestor:
                    return pid
        time.sleep(0.01)
    raise AssertionError(f"no descendant of {ancestor} is PID {nspid} of its namespace")


def version_of(python):
    """The exact version of an interpreter of ALL_PYTHONS."""
    return next(v for p, v in ALL_PYTHONS.values() if p == python)

TRACING = re.compile(r"^hawk-bpf: tracing PID (\d+) \(CPython ([0-9.]+), ([^,)]+)")
SUMMARY = re.compile(r"^hawk-bpf: (\d+) (?:live blocks traced|allocations counted) over ([0-9.]+) s$")
PROG_NAMES = {"alloc_enter", "alloc_return", "free_enter"}
TOL = 0.02          # sizes and counts within 2 %
MIN_SIZE = 10 * 1024  # lines the oracle reports at >= 10 KiB must be found

# Workloads and oracles run with a fixed hash seed and without inherited
# settings that would change how the interpreter allocates.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
ENV.update(PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")

TIMEOUT = 60  # seconds for any single wait; a hang fails, it never blocks CI


# ---------------------------------------------------------------- processes

class Lines:
    """Lines of a child's stream, read by a thread so waits can time out."""

    def __init__(self, stream, name):
        self.q = queue.Queue()
        self.seen = []
        self.name = name
        self.t = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.t.start()

    def _pump(self, stream):
        for line in stream:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait_for(self, pred, timeout=TIMEOUT, what="a line"):
        """The first unread line matching pred; fails on EOF or timeout."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: timed out waiting for {what}; "
                                     f"got {self.seen!r}")
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.q.put(None)
                raise AssertionError(f"{self.name}: ended before {what}; got {self.seen!r}")
            self.seen.append(line)
            if pred(line):
                return line

    def rest(self, timeout=TIMEOUT):
        """Every remaining line, once the stream has ended."""
        self.t.join(timeout)
        assert not self.t.is_alive(), f"{self.name}: stream still open"
        while True:
            line = self.q.get()
            if line is None:
                self.q.put(None)
                return list(self.seen)
            self.seen.append(line)


class Procs:
    """Every child a test starts; all are killed at teardown, pass or fail."""

    def __init__(self):
        self.children = []

    def popen(self, argv, **kw):
        p = subprocess.Popen([str(a) for a in argv], **kw)
        self.children.append(p)
        return p

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        for p in self.children:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        leftover = [p.args for p in self.children if p.poll() is None]
        assert not leftover, f"children would not die: {leftover}"


class Workload:
    """A workload started in target mode (--wait-for), see workloads/_harness.py."""

    def __init__(self, procs, python, script, tmp_path, *extra, prefix=(), workloads=WORKLOADS):
        """prefix: argv run before python (setpriv, say); workloads: where
        script and _harness.py are."""
        self.script = str(workloads / script)
        self.gofile = tmp_path / f"go-{script}-{time.monotonic_ns()}"
        self.proc = procs.popen(
            [*prefix, python, self.script, "--wait-for", self.gofile, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=ENV, text=True, cwd=tmp_path)
        self.out = Lines(self.proc.stdout, f"workload {script}")
        self.err = Lines(self.proc.stderr, f"workload {script} stderr")
        self.nspid = int(self.out.wait_for(lambda l: l.startswith("ready "),
                                           what="'ready PID'").split()[1])
        if python in (p for p, _ in SID.values()):
            assert self.nspid == 1, "a sid target is PID 1 of its namespace"
            self.pid = host_pid(self.proc.pid, self.nspid)
        elif prefix and self.nspid != self.proc.pid:
            self.pid = host_pid(self.proc.pid, self.nspid)   # a PID namespace of its own
        else:
            self.pid = self.nspid
            assert self.pid == self.proc.pid
        self.tables_at_start = self._read_tables()

    def _read_tables(self):
        line = self.out.wait_for(lambda l: l.startswith("tables "), what="'tables'")
        return json.loads(line.split(" ", 1)[1])

    def go(self, name=None):
        """Let the workload allocate (or pass its gate NAME)."""
        Path(name or self.gofile).touch()

    def wait(self, prefix, timeout=TIMEOUT):
        return self.out.wait_for(lambda l: l.startswith(prefix), timeout,
                                 what=repr(prefix))

    def tables(self):
        """The allocator tables now, as the target itself sees them."""
        self.proc.stdin.write("tables\n")
        self.proc.stdin.flush()
        return self._read_tables()

    def command(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def release(self, timeout=TIMEOUT):
        """Close stdin: the workload exits; returns its exit status."""
        self.proc.stdin.close()
        return self.proc.wait(timeout)

    def alive(self):
        return self.proc.poll() is None


class Hawk:
    """One hawk-bpf process (stdout: a file for its standard output, which
    is then not read)."""

    def __init__(self, procs, pid, *args, user=None, stdout=None):
        argv = [HAWK, "-p", pid, *args]
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}",
                    "--clear-groups", *argv]
        self.proc = procs.popen(argv, stdout=stdout or subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.err = Lines(_text(self.proc.stderr), "hawk-bpf stderr")
        self._stdout = []
        self._t = threading.Thread(
            target=lambda: self._stdout.append(self.proc.stdout.read()
                                               if self.proc.stdout else b""),
            daemon=True)
        self._t.start()
        self.ids = None
        self.image = None

    def wait_tracing(self, timeout=TIMEOUT):
        """Wait until the probes are live; remember the BPF objects we hold."""
        line = self.err.wait_for(lambda l: TRACING.match(l) is not None, timeout,
                                 what="the 'tracing PID' line")
        self.image = TRACING.match(line).group(3)
        self.ids = bpf_ids_of(self.proc.pid)
        assert self.ids["prog"] and self.ids["link"], \
            f"hawk-bpf says it is tracing but holds no BPF programs/links: {self.ids}"
        return line

    def stop(self, sig=signal.SIGINT, timeout=TIMEOUT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout=TIMEOUT):
        """Wait for the end: (exit status, stdout bytes, stderr lines)."""
        rc = self.proc.wait(timeout)
        self._t.join(timeout)
        return rc, (self._stdout[0] if self._stdout else b""), self.err.rest()


def _text(stream):
    import io
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace")


def run_hawk(*args, timeout=TIMEOUT, user=None):
    """Run hawk-bpf to completion: (exit status, stdout, stderr lines)."""
    argv = [HAWK, *map(str, args)]
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    r = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace").splitlines()


# ------------------------------------------------------------------- oracle

def exit_during_window(wl, hawk, how):
    """Let the traced workload allocate, then make it exit ("exit":
    normally, "_exit": os._exit) and wait for hawk-bpf to end by itself:
    (exit status, stdout bytes, stderr lines)."""
    wl.go()
    wl.wait("allocated")
    wl.command(how)
    assert wl.proc.wait(30) == 0
    return hawk.finish(timeout=30)


def untraced_checksum(python, script, rounds):
    """The "checksum X" a checksummed churn workload prints run on its own:
    what a traced run of it must print too."""
    r = subprocess.run([python, str(WORKLOADS / script), "--rounds", str(rounds)],
                       env=ENV, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return next(l.split()[1] for l in r.stdout.splitlines() if l.startswith("checksum "))


def run_oracle(python, script, frames, out, *extra):
    """The workload with in-process tracemalloc.start(frames): its snapshot."""
    r = subprocess.run([python, WORKLOADS / script, "--tracemalloc", out,
                        "--frames", str(frames), *extra],
                       env=ENV, capture_output=True, text=True, timeout=TIMEOUT * 3,
                       cwd=out.parent, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"oracle run failed: {r.stderr}"
    return tracemalloc.Snapshot.load(str(out))


def traced_run(procs, tmp_path, python, script, *hawk_args, extra=()):
    """The workload under hawk-bpf: attach, let it allocate, SIGINT.

    Returns (hawk, rc, stdout, stderr, workload); hawk-bpf is checked to
    have left nothing behind, and the workload is still running.
    """
    wl = Workload(procs, python, script, tmp_path, *extra)
    hawk = Hawk(procs, wl.pid, "--duration", "600", *hawk_args)
    m = TRACING.match(hawk.wait_tracing())
    assert (int(m.group(1)), m.group(2)) == (wl.pid, version_of(python)), m.group(0)
    wl.go()
    wl.wait("allocated")
    rc, out, err = hawk.stop()
    assert rc == 0, f"hawk-bpf failed ({rc}): {err}"
    assert SUMMARY.match(err[-1]), f"no summary line at the end: {err}"
    assert wl.alive(), "the target died while traced"
    assert_detached(hawk, wl)
    return hawk, rc, out, err, wl


# ------------------------------------------------------------ comparisons

def close(a, b, tol=TOL):
    return abs(a - b) <= tol * max(abs(b), 1)


def by_line(snapshot):
    return {(s.traceback[0].filename, s.traceback[0].lineno): s
            for s in snapshot.statistics("lineno")}


def by_traceback(snapshot):
    """{frames oldest first: Statistic} (a Traceback iterates oldest first)."""
    return {tuple((f.filename, f.lineno) for f in s.traceback): s
            for s in snapshot.statistics("traceback")}


def assert_lines_match(oracle, got, filename, min_size=MIN_SIZE):
    """Every line of filename the oracle has at >= min_size is in got within
    2 % (size and count), and got has no such line the oracle lacks.
    got: a Snapshot, or {(filename, lineno): (size, count)}."""
    want = {k: (s.size, s.count) for k, s in by_line(oracle).items()}
    have = got if isinstance(got, dict) else \
        {k: (s.size, s.count) for k, s in by_line(got).items()}
    big = {k: v for k, v in want.items() if k[0] == filename and v[0] >= min_size}
    assert big, f"the oracle reports nothing >= {min_size} B in {filename}: bad workload"
    problems = []
    for key, (size, count) in sorted(big.items()):
        h = have.get(key)
        if h is None:
            problems.append(f"{key[1]}: missing (oracle size={size} count={count})")
        elif not (close(h[0], size) and close(h[1], count)):
            problems.append(f"{key[1]}: size={h[0]} count={h[1]}, "
                            f"oracle size={size} count={count}")
    for key, h in sorted(have.items()):
        if key[0] == filename and h[0] >= min_size * (1 + TOL) and key not in big:
            w = want.get(key)
            problems.append(f"{key[1]}: size={h[0]} count={h[1]} reported, oracle "
                            + (f"size={w[0]}" if w else "has nothing there"))
    assert not problems, f"{filename} lineno mismatches:\n  " + "\n  ".join(problems)


def assert_top_tracebacks_match(oracle, got, filename, n=5, check_total_nframe=False):
    """The oracle's top-n statistics('traceback') of blocks allocated by
    filename's code (the most recent frame is in it: the harness's own
    blocks are left out) are in got, frame for frame, with size and count
    within 2 % (and the same total_nframe values)."""
    want, have = by_traceback(oracle), by_traceback(got)
    top = sorted(((k, s) for k, s in want.items() if k[-1][0] == filename),
                 key=lambda kv: kv[1].size, reverse=True)[:n]
    assert top, f"the oracle has no traceback ending in {filename}: bad workload"
    problems = []
    for key, s in top:
        h = have.get(key)
        if h is None:
            near = [k for k in have if k[-1:] == key[-1:]]
            problems.append(f"missing traceback {fmt_tb(key)}\n    hawk-bpf has for that "
                            f"line: {[fmt_tb(k) for k in near[:3]]}")
        elif not (close(h.size, s.size) and close(h.count, s.count)):
            problems.append(f"{fmt_tb(key)}: size={h.size} count={h.count}, oracle "
                            f"size={s.size} count={s.count}")
        elif check_total_nframe:
            a, b = total_nframes(oracle, key), total_nframes(got, key)
            if a != b:
                problems.append(f"{fmt_tb(key)}: total_nframe {sorted(b)}, oracle {sorted(a)}")
    assert not problems, "traceback mismatches:\n  " + "\n  ".join(problems)


def total_nframes(snapshot, key):
    """The total_nframe values of the traces whose traceback is key (oldest
    first; raw traces hold their frames most recent first)."""
    raw = tuple(reversed(key))
    found = {t[3] for t in snapshot.traces._traces if tuple(t[2]) == raw}
    assert found, f"no trace has the traceback {fmt_tb(key)}"
    return found


def fmt_tb(key):
    """Frames oldest first, shortened: the 6 most recent."""
    return (f"({len(key)} frames) ... " if len(key) > 6 else "") + \
        " -> ".join(f"{os.path.basename(f)}:{l}" for f, l in key[-6:])


# Hawk's format_bytes, one copy for the unit and e2e oracles.
sys.path.insert(0, str(REPO / "tests" / "unit"))
from oracle_common import format_bytes  # noqa: E402


# ------------------------------------------- what hawk-bpf may leave behind

def bpf_ids_of(pid):
    """BPF programs, links and maps a process holds, from its fdinfo."""
    ids = {"prog": set(), "link": set(), "map": set()}
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    for f in fdinfo.iterdir():
        try:
            text = f.read_text()
        except OSError:
            continue
        for kind in ids:
            m = re.search(rf"^{kind}_id:\s*(\d+)", text, re.M)
            if m:
                ids[kind].add(int(m.group(1)))
    return ids


def bpftool(*args):
    r = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"bpftool {args}: {r.stderr}"
    return json.loads(r.stdout or "[]")


def loaded_bpf():
    """IDs of every BPF program, link and map loaded now, and our programs."""
    progs = bpftool("prog", "show")
    return {
        "prog": {p["id"] for p in progs},
        "link": {l["id"] for l in bpftool("link", "show")},
        "map": {m["id"] for m in bpftool("map", "show")},
        "ours": {p["id"] for p in progs if p.get("name") in PROG_NAMES},
    }


def assert_bpf_gone(ids, timeout=5):
    """None of the given BPF objects is loaded any more (the kernel frees
    them shortly after their last fd is closed)."""
    end = time.monotonic() + timeout
    while True:
        now = loaded_bpf()
        left = {k: ids[k] & now[k] for k in ("prog", "link", "map") if ids[k] & now[k]}
        if not left or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert not left, f"BPF objects of a finished hawk-bpf are still loaded: {left}"


def held_prog_ids():
    """Programs that some live process holds an fd to (directly or by link)."""
    held = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            for f in (d / "fdinfo").iterdir():
                try:
                    m = re.search(r"^prog_id:\s*(\d+)", f.read_text(), re.M)
                except OSError:
                    continue
                if m:
                    held.add(int(m.group(1)))
        except OSError:
            continue
    return held


def assert_no_orphan_programs(timeout=5):
    """No alloc_enter/alloc_return/free_enter program is loaded without a
    live process holding it (hawk-bpf runs of other people are fine)."""
    end = time.monotonic() + timeout
    while True:
        orphans = loaded_bpf()["ours"] - held_prog_ids()
        if not orphans or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert not orphans, f"hawk-bpf programs loaded with no owner: {sorted(orphans)}"


def text_mappings(pid, image):
    """Executable file mappings of image in pid: (start, end, offset, path)."""
    real = os.path.realpath(image)
    out = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[1].startswith("r-x") and \
                os.path.realpath(parts[5]) == real:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            out.append((lo, hi, int(parts[2], 16), parts[5]))
    return out


def code_end_offset(path):
    """File offset where the last executable PT_LOAD segment's bytes end:
    what follows in its page is the unused tail the sampling trampoline may
    occupy (for good: it is not a breakpoint)."""
    with open(path, "rb") as f:
        ehdr = f.read(64)
        phoff, = struct.unpack_from("<Q", ehdr, 32)
        phentsize, phnum = struct.unpack_from("<HH", ehdr, 54)
        end = 0
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, p_flags, p_offset, _, _, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type == 1 and p_flags & 1:     # PT_LOAD, PF_X
                end = max(end, p_offset + p_filesz)
    return end


def patched_bytes(pid, image):
    """Addresses where the target's code differs from the file: uprobe
    breakpoints (int3) still in place, or any other write to code (but for
    the page tail after the code)."""
    maps = text_mappings(pid, image)
    assert maps, f"{image} is not mapped executable in {pid}"
    diffs = []
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for lo, hi, off, path in maps:
            tail = code_end_offset(path)
            with open(path, "rb") as f:
                f.seek(off)
                want = f.read(hi - lo)
            mem.seek(lo)
            have = mem.read(len(want))
            if have != want:
                diffs += [lo + i for i in range(len(want))
                          if have[i] != want[i] and off + i < tail]
    return diffs


def assert_detached(hawk, wl, tables=True):
    """After hawk-bpf ended: its BPF objects are gone, no breakpoint is left
    in the target's code and (unless tables=False) the allocator tables are
    as they were before it attached."""
    assert_bpf_gone(hawk.ids)
    assert not patched_bytes(wl.pid, hawk.image), \
        "breakpoints left in the target's code"
    left = [p for p in (Path(f"/run/hawk-bpf/{wl.pid}.lock"),
                        Path(f"/run/hawk-bpf/{wl.pid}.sock")) if p.exists()]
    assert not left, f"hawk-bpf left files behind: {left}"
    if tables:
        assert wl.tables() == wl.tables_at_start, "allocator tables not restored"

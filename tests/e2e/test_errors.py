"""Acceptance 3: every way hawk-bpf can be refused fails with a non-zero exit
status and exactly one line on stderr that says what is wrong, and leaves
the target as it found it (no breakpoint in its code, allocator tables never
touched, checked by a thread in the target polling them every 0.5 ms, no
hawk-bpf program left loaded).  A target exiting during the window is not an
error: what was traced is reported."""
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (HAWK, PYTHONS, TIMEOUT, TRACING, UNSUPPORTED, WORKLOADS, Hawk,
                     Procs, Workload, assert_bpf_gone, assert_detached,
                     assert_lines_match, assert_no_orphan_programs, bpf_ids_of,
                     exit_during_window, patched_bytes, run_hawk)

DEBIAN = PYTHONS["debian-3.11.2"][0]
NOBODY = 65534


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """One idle Python target, watching its allocator tables, for the tests
    that must leave it alone."""
    procs = Procs()
    tmp = tmp_path_factory.mktemp("target")
    try:
        wl = Workload(procs, DEBIAN, "retain.py", tmp, "--watch-tables")
        wl.go()
        wl.wait("allocated")
        yield wl
    finally:
        procs.cleanup()


def changes(wl):
    wl.command("changes")
    return int(wl.wait("changes ").split()[1])


def assert_untouched(wl):
    assert wl.alive(), "the target died"
    assert changes(wl) == 0, "hawk-bpf changed the target's allocator tables"
    assert wl.tables() == wl.tables_at_start
    assert not patched_bytes(wl.pid, DEBIAN), "breakpoints left in the target"


def assert_one_error_line(err, *words):
    assert len(err) == 1, f"expected one line on stderr, got {err}"
    assert err[0].startswith("hawk-bpf: "), err
    for w in words:
        assert w.lower() in err[0].lower(), f"{w!r} not in {err[0]!r}"


def test_help_and_version():
    rc, out, err = run_hawk("--help")
    assert rc == 0 and not err
    assert b"--frames" in out and b"--cumulative" in out
    rc, out, err = run_hawk("-V")
    assert rc == 0 and not err
    assert out.decode().startswith("hawk-bpf ")


BAD_ARGS = [
    (["--count", "0"], "--count"),
    (["--count", "1000001"], "--count"),
    (["--count", "-3"], "--count"),
    (["--count", "ten"], "--count"),
    (["--count", "2.5"], "--count"),
    (["--count"], "--count"),
    (["--frames", "0"], "--frames"),
    (["--frames", "65536"], "--frames"),
    (["--frames", "30x"], "--frames"),
    (["--frames="], "--frames"),
    (["--duration", "0"], "--duration"),
    (["--duration", "-1"], "--duration"),
    (["--duration", "86401"], "--duration"),
    (["--duration", "soon"], "--duration"),
    (["--duration", "nan"], "--duration"),
    (["--format", "xml"], "xml"),
    (["--format", "Lineno"], "--format"),
    (["--format", "traceback", "--cumulative"], "--cumulative"),
    (["--no-such-option"], "--no-such-option"),
]


@pytest.mark.parametrize("args,word", BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_command_line(target, args, word):
    rc, out, err = run_hawk("-p", target.pid, *args)
    assert rc == 2, err
    assert out == b""
    assert_one_error_line(err, word)
    assert_untouched(target)


# (no -p at all is the host-wide profile: test_hostwide.py)
@pytest.mark.parametrize("args,word", [(["-p"], "-p"), (["-p", "abc"], "abc"), (["-p", "0"], "0"),
                                       (["-p", "-5"], "-5"), (["-p", "1,x"], "1,x")])
def test_bad_pid_argument(args, word):
    rc, out, err = run_hawk(*args)
    assert rc == 2, err
    assert_one_error_line(err, word)


def test_no_such_process():
    p = subprocess.Popen(["true"])
    p.wait()
    pid = p.pid
    assert not (__import__("os").path.exists(f"/proc/{pid}"))
    rc, out, err = run_hawk("-p", pid, "--duration", "1")
    assert rc == 1
    assert_one_error_line(err, str(pid))
    assert out == b""


def test_not_python(procs):
    sleeper = procs.popen(["sleep", "60"])
    time.sleep(0.1)
    rc, out, err = run_hawk("-p", sleeper.pid, "--duration", "1")
    assert rc == 1
    assert_one_error_line(err, str(sleeper.pid), "python")
    assert sleeper.poll() is None
    assert_no_orphan_programs()


@pytest.mark.parametrize("version", list(UNSUPPORTED))
def test_unsupported_python(procs, tmp_path, version):
    path, name = UNSUPPORTED[version]
    py = procs.popen([path, "-c", "import sys, time; print('up', flush=True); time.sleep(60)"],
                     stdout=subprocess.PIPE, text=True)
    assert py.stdout.readline().strip() == "up"
    rc, out, err = run_hawk("-p", py.pid, "--duration", "1")
    assert rc == 1
    assert_one_error_line(err, f"unsupported CPython {name}")
    assert py.poll() is None
    for image in {l.split()[-1] for l in open(f"/proc/{py.pid}/maps")
                  if "python" in l.split()[-1] and " r-x" in l}:
        assert not patched_bytes(py.pid, image), f"breakpoints left in {image}"
    assert_no_orphan_programs()


def test_not_root(target):
    rc, out, err = run_hawk("-p", target.pid, "--duration", "1", user=NOBODY)
    assert rc == 1
    assert_one_error_line(err)
    assert any(w in err[0].lower() for w in ("root", "permi", "capabilit")), err
    assert_untouched(target)
    assert_no_orphan_programs()


@pytest.mark.parametrize("where", ["/nonexistent-dir/out.json", "DIR"])
def test_unwritable_output_refused_before_attaching(target, tmp_path, where):
    """-o that cannot be written fails before anything touches the target:
    the watcher thread in the target never sees its tables change."""
    path = tmp_path if where == "DIR" else where
    rc, out, err = run_hawk("-p", target.pid, "--duration", "2", "-o", path)
    assert rc == 1
    assert_one_error_line(err, str(path))
    assert_untouched(target)
    assert_no_orphan_programs()


def test_watcher_sees_a_tracer(procs, tmp_path):
    """The untouched-target check can fail: a real window changes the tables
    (the watcher counts it) and puts breakpoints in the code."""
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path, "--watch-tables")
    hawk = Hawk(procs, wl.pid, "--duration", "600")
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    assert patched_bytes(wl.pid, hawk.image), "no breakpoint seen while tracing"
    rc, out, err = hawk.stop()
    assert rc == 0, err
    assert changes(wl) > 0
    assert wl.tables() == wl.tables_at_start


@pytest.mark.parametrize("how", ["exit", "_exit"])
def test_target_exits_during_window(procs, tmp_path, oracle, how):
    """The target exits (normally, or with os._exit) while traced: hawk-bpf
    ends by itself, exit 0, says so on stderr and in the JSON, and reports
    the blocks live when it went (here: everything retain.py keeps)."""
    python = PYTHONS["pyenv-3.11.7"][0]
    wl = Workload(procs, python, "retain.py", tmp_path)
    hawk = Hawk(procs, wl.pid, "--duration", "600", "--count", "1000")
    hawk.wait_tracing()
    rc, out, err = exit_during_window(wl, hawk, how)
    assert rc == 0, err
    exited = [l for l in err if "exited" in l]
    assert len(exited) == 1 and str(wl.pid) in exited[0], err
    doc = json.loads(out)
    assert doc["hawk_bpf"]["target_exited"] is True
    assert doc["hawk_bpf"]["interrupted"] is False
    retain = str(WORKLOADS / "retain.py")
    stats = {(s["filename"], s["lineno"]): (s["mem_blocks_size_bytes"], s["mem_blocks_count"])
             for s in doc["stats"]}
    assert_lines_match(oracle(python, "retain.py", 30), stats, retain)
    # Source lines are still shown although the process is gone.
    codes = {s["code"] for s in doc["stats"] if s["filename"] == retain}
    assert "keep.append(bytearray(4_000_000))" in codes, codes
    assert_bpf_gone(hawk.ids)


@pytest.mark.parametrize("field", ["cookie", "dbg_thread_id", "dbg_frame_instr",
                                   "dbg_code_name"])
def test_build_whose_debug_offsets_differ_is_refused(procs, field):
    """A 3.13+ whose own _Py_DebugOffsets disagree with its version's
    headers (here: the target edits its own table, which only debuggers
    read) is refused in one line, and left as it was."""
    from test_offsets import version_file
    pos = 0 if field == "cookie" else version_file(13)[field]
    path = PYTHONS["pyenv-3.13.0"][0]
    script = ("import ctypes, time\n"
              "rt = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, '_PyRuntime'))\n"
              f"ctypes.c_uint64.from_address(rt + {pos}).value += 8\n"
              "print('up', flush=True)\n"
              "time.sleep(60)\n")
    py = procs.popen([path, "-c", script], stdout=subprocess.PIPE, text=True)
    assert py.stdout.readline().strip() == "up"
    rc, out, err = run_hawk("-p", py.pid, "--duration", "1")
    assert rc == 1
    assert_one_error_line(err, "refusing an unknown build")
    assert py.poll() is None
    assert_no_orphan_programs()


# ------------------------------------------------------------ -o FILE

def error_lines(err):
    """stderr but for the tracing line."""
    return [l for l in err if not TRACING.match(l)]


def traced_then_stopped(procs, tmp_path, *args, stdout=None):
    """retain.py traced with args until it has allocated, then SIGINT:
    (rc, stderr lines); hawk-bpf is checked to have left nothing behind."""
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
    hawk = Hawk(procs, wl.pid, "--duration", "600", *args, stdout=stdout)
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    rc, _, err = hawk.stop()
    assert wl.alive(), "the target died"
    assert_detached(hawk, wl)
    return rc, err


@pytest.mark.parametrize("where", ["-o /dev/full", "stdout on /dev/full"])
def test_output_device_full(procs, tmp_path, where):
    """A device that takes no data can only fail at the end: one line that
    names it and the reason, exit 1, the target as it was."""
    if where == "stdout on /dev/full":
        with open("/dev/full", "wb") as full:
            rc, err = traced_then_stopped(procs, tmp_path, stdout=full)
        name = "standard output"
    else:
        rc, err = traced_then_stopped(procs, tmp_path, "-o", "/dev/full")
        name = "/dev/full"
    assert rc == 1, err
    assert error_lines(err) == \
        [f"hawk-bpf: cannot write the report to {name}: No space left on device"], err


@pytest.fixture
def full_fs(tmp_path):
    """A 64 KiB tmpfs holding report.pickle ("previous report") and a
    filler that takes every other byte."""
    fs = tmp_path / "fs"
    fs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", fs], check=True)
    try:
        (fs / "report.pickle").write_text("previous report")
        fd = os.open(fs / "fill", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        finally:
            os.close(fd)
        yield fs
    finally:
        subprocess.run(["umount", "-l", fs], check=True)


def test_full_disk_keeps_the_previous_report(procs, tmp_path, full_fs):
    """The disk fills while the report is written: one line naming the file
    and the reason, and the report that was there is still there, whole
    (it is replaced only by a whole new one), with nothing else left."""
    report = full_fs / "report.pickle"
    rc, err = traced_then_stopped(procs, tmp_path, "--format", "pickle", "-o", report)
    assert rc == 1, err
    assert report.read_bytes() == b"previous report", "the previous report was lost"
    assert sorted(os.listdir(full_fs)) == ["fill", "report.pickle"]
    assert error_lines(err) == \
        [f"hawk-bpf: cannot write the report to {report}: No space left on device"], err


def test_report_replaces_a_file_whole(procs, tmp_path):
    """An existing report is replaced by the new one, keeping its mode;
    through a symlink, the file it points to is replaced."""
    report = tmp_path / "report.json"
    report.write_text("previous report")
    report.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(report)
    rc, err = traced_then_stopped(procs, tmp_path, "-o", link)
    assert rc == 0, err
    assert link.is_symlink()
    assert json.loads(report.read_text())["hawk_bpf"]["pid"] > 0
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".json")) == \
        ["link.json", "report.json"]


def test_refused_runs_create_no_output(procs, tmp_path):
    """A run refused after its -o was checked (here: the process is already
    traced) creates no file, and leaves the first tracer alone."""
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
    first = Hawk(procs, wl.pid, "--duration", "600")
    first.wait_tracing()
    never = tmp_path / "never.json"
    rc, out, err = run_hawk("-p", wl.pid, "--duration", "1", "-o", never)
    assert rc == 1
    assert_one_error_line(err, "already tracing")
    assert not never.exists(), "a refused run created its -o file"
    wl.go()
    wl.wait("allocated")   # the workload answers "tables" from then on
    rc, _, err = first.stop()
    assert rc == 0, err
    assert_detached(first, wl)


# --------------------------------------------- a target that goes away

def perf_events(pid):
    n = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            n += os.readlink(fd) == "anon_inode:[perf_event]"
        except OSError:
            pass
    return n


def hawk_of(pid, ready, timeout=TIMEOUT, what="the hawk-bpf process of the target"):
    """The hawk-bpf process (the profile, or start's daemon) whose command
    line names pid, once ready(its /proc dir) holds: its PID. ready may
    raise OSError (the process went meanwhile)."""
    exe = os.path.realpath(HAWK)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for d in Path("/proc").iterdir():
            try:
                if not d.name.isdigit() or os.path.realpath(d / "exe") != exe or \
                        str(pid).encode() not in (d / "cmdline").read_bytes().split(b"\0"):
                    continue
                if ready(d):
                    return int(d.name)
            except OSError:
                continue
        time.sleep(0.02)
    raise AssertionError(f"{what} never came")


def held_at_third_uprobe(pid):
    """The hawk-bpf process tracing pid once strace holds it stopped after
    its fourth perf_event_open (the exec tracepoint's, then two uprobes
    live and a third made). Its PID."""
    def ready(d):
        n = perf_events(d.name)
        assert n <= 4, f"hawk-bpf {d.name} was not held at its third uprobe ({n})"
        if n < 4:
            return False
        time.sleep(0.3)
        assert perf_events(d.name) == 4, "hawk-bpf was not held at its third uprobe"
        return True

    return hawk_of(pid, ready, what="hawk-bpf at its third uprobe")


def stopped_hawk(pid):
    """The hawk-bpf process tracing pid once it has stopped itself after
    its second uprobe_multi link (HAWK_BPF_TEST_STOP_AFTER_LINKS=2). Its
    PID."""
    return hawk_of(pid, lambda d: (d / "stat").read_text().rsplit(")", 1)[1].split()[0] == "T",
                   what="hawk-bpf stopped after its second probe link")


@pytest.mark.parametrize("probes", ["multi", "perf"])
@pytest.mark.parametrize("command", ["profile", "start"])
def test_target_exits_during_attach(procs, tmp_path, command, probes):
    """The target exits while hawk-bpf attaches (held between two probe
    attachments: with perf-event uprobes by strace, between two uprobes;
    with uprobe_multi links by itself, after its second link; then let go
    once the target is gone): one line saying so, exit 1, no -o file, no
    lock or socket, and none of the BPF objects it held then is left
    loaded."""
    assert shutil.which("strace"), "strace is not installed (scripts/install-deps)"
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
    never = tmp_path / "never.json"
    args = (["-p", wl.pid, "--duration", "600", "-o", never] if command == "profile"
            else ["start", "-p", wl.pid])
    if probes == "perf":
        env = {**os.environ, "HAWK_BPF_PERF_UPROBES": "1"}
        tracer = procs.popen(["strace", "-f", "-qq", "-o", "/dev/null", "-e",
                              "trace=perf_event_open", "-e",
                              "inject=perf_event_open:signal=SIGSTOP:when=4", HAWK, *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env)
        held = held_at_third_uprobe(wl.pid)
    else:
        env = {**os.environ, "HAWK_BPF_TEST_STOP_AFTER_LINKS": "2"}
        tracer = procs.popen([HAWK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env)
        held = stopped_hawk(wl.pid)
    ids = bpf_ids_of(held)
    assert ids["link"] and ids["prog"], ids
    wl.proc.kill()
    wl.proc.wait(10)
    os.kill(held, signal.SIGCONT)
    rc = tracer.wait(TIMEOUT)
    out, err = tracer.stdout.read(), tracer.stderr.read().decode().splitlines()
    assert (rc, out) == (1, b""), (rc, err)
    assert err == [f"hawk-bpf: process {wl.pid} exited during attach; nothing was traced"], err
    assert not never.exists(), "-o created by a run that traced nothing"
    left = [p for p in (Path(f"/run/hawk-bpf/{wl.pid}.lock"),
                        Path(f"/run/hawk-bpf/{wl.pid}.sock")) if p.exists()]
    assert not left, f"hawk-bpf left files behind: {left}"
    assert_bpf_gone(ids)
    assert_no_orphan_programs()


# ------------------------------------- processes with no Python to find

def zombie(procs):
    p = procs.popen(["true"])
    end = time.monotonic() + TIMEOUT
    while Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < end, "true never became a zombie"
        time.sleep(0.01)
    return p.pid, "true"


def init():
    comm = Path("/proc/1/comm").read_text().strip()
    cmdline = Path("/proc/1/cmdline").read_bytes()
    assert b"python" not in cmdline.lower() and "python" not in comm.lower(), \
        "PID 1 is a Python here: this test needs one that is not"
    return 1, comm


@pytest.mark.parametrize("what", ["kernel thread", "zombie", "PID 1"])
def test_process_without_python_is_not_a_cpython_process(procs, what):
    """A kernel thread (kthreadd), a zombie, and PID 1 (some init, which
    root may not even be allowed to read) are refused as any process that
    is not CPython is: one line naming the process, exit 1."""
    if what == "kernel thread":
        pid, comm = 2, Path("/proc/2/comm").read_text().strip()
        assert comm == "kthreadd"
    elif what == "zombie":
        pid, comm = zombie(procs)
    else:
        pid, comm = init()
    rc, out, err = run_hawk("-p", pid, "--duration", "1")
    assert (rc, out) == (1, b""), err
    assert_one_error_line(err, f"process {pid} ({comm}) is not a CPython process")
    assert_no_orphan_programs()

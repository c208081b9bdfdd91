"""Interval profiling from the shell: `hawk-bpf start` leaves a daemon
tracing the target, `snapshot` reports its live blocks as often as asked
without disturbing it, `status` lists the sessions, `stop` ends one and
leaves nothing behind."""
import fcntl
import json
import os
import re
import signal
import stat
import time
import tracemalloc
from pathlib import Path

import pytest

from helpers import (PYTHONS, TIMEOUT, TRACING, WORKLOADS, Hawk, Workload,
                     assert_bpf_gone, assert_lines_match, bpf_ids_of, patched_bytes,
                     run_hawk)

RUN = Path("/run/hawk-bpf")
DEBIAN = PYTHONS["debian-3.11.2"][0]
RETAIN = str(WORKLOADS / "retain.py")


@pytest.fixture
def sessions():
    """Targets of the sessions a test starts: stopped at teardown, pass or
    fail, so no daemon outlives its test."""
    pids = []
    yield pids
    for pid in pids:
        if (RUN / f"{pid}.sock").exists():
            run_hawk("stop", "-p", pid)


def start(sessions, wl, *args):
    """`hawk-bpf start`: returns once tracing, with the tracing line."""
    sessions.append(wl.pid)
    rc, out, err = run_hawk("start", "-p", wl.pid, *args)
    assert rc == 0, f"start failed ({rc}): {err}"
    assert out == b"", out
    assert len(err) == 1 and TRACING.match(err[0]), err
    assert int(TRACING.match(err[0]).group(1)) == wl.pid
    return err[0]


def daemon_of(pid):
    """The daemon's PID, as it wrote it in the lock file (with its start
    time and the target's)."""
    owner, role, *_ = (RUN / f"{pid}.lock").read_text().split()
    assert role == "daemon"
    return int(owner)


def status_lines():
    rc, out, err = run_hawk("status")
    assert rc == 0 and err == [], err
    return out.decode().splitlines()


def status_of(pid):
    return [l for l in status_lines() if l.startswith(f"PID {pid} ")]


def snapshot(pid, *args):
    rc, out, err = run_hawk("snapshot", "-p", pid, *args)
    assert rc == 0, f"snapshot failed ({rc}): {err}"
    assert not [l for l in err if "warning" in l], err
    return out


def pickle_snapshot(tmp_path, pid, name):
    path = tmp_path / name
    assert snapshot(pid, "--format", "pickle", "-o", path) == b""
    return tracemalloc.Snapshot.load(str(path))


def stop(pid, daemon):
    rc, out, err = run_hawk("stop", "-p", pid)
    assert (rc, out, err) == (0, b"", []), (rc, out, err)
    # stop returns once the daemon is gone.
    assert not Path(f"/proc/{daemon}").exists() or \
        Path(f"/proc/{daemon}/stat").read_text().split()[2] == "Z", \
        "the daemon is still running after stop"
    assert not (RUN / f"{pid}.sock").exists(), "socket left behind"
    assert not (RUN / f"{pid}.lock").exists(), "lock file left behind"


def assert_refused(args, needle, rc=1):
    got_rc, out, err = run_hawk(*args)
    assert got_rc == rc, (got_rc, err)
    assert out == b""
    assert len(err) == 1 and err[0].startswith("hawk-bpf: ") and needle in err[0], err
    return err[0]


def test_session(procs, tmp_path, target_python, oracle, sessions):
    """start, let it allocate, two pickle snapshots that both match
    tracemalloc, a lineno snapshot, status, stop: nothing left behind."""
    python = target_python
    wl = Workload(procs, python, "retain.py", tmp_path)
    image = TRACING.match(start(sessions, wl, "--frames", "30")).group(3)
    daemon = daemon_of(wl.pid)
    ids = bpf_ids_of(daemon)
    assert ids["prog"] and ids["link"], ids
    # A daemon: a session of its own (whose leader, the middle of the
    # double fork, is gone), not our child; a root-only socket.
    assert os.getsid(daemon) not in (os.getsid(0), daemon)
    assert not Path(f"/proc/{os.getsid(daemon)}").exists()
    assert int(Path(f"/proc/{daemon}/stat").read_text().rsplit(")", 1)[1].split()[1]) \
        != os.getpid()
    sock = (RUN / f"{wl.pid}.sock").stat()
    assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600
    assert sock.st_uid == 0
    assert patched_bytes(wl.pid, image), "no breakpoints while tracing?"

    wl.go()
    wl.wait("allocated")
    want = oracle(python, "retain.py", 30)
    first = pickle_snapshot(tmp_path, wl.pid, "first.pickle")
    assert first.traceback_limit == 30
    assert_lines_match(want, first, RETAIN)
    # Snapshots do not disturb tracing: the same again, and the daemon
    # holds the same probes.
    second = pickle_snapshot(tmp_path, wl.pid, "second.pickle")
    assert_lines_match(want, second, RETAIN)
    assert bpf_ids_of(daemon) == ids

    rep = json.loads(snapshot(wl.pid, "--count", "5"))
    assert len(rep["stats"]) == 5
    assert "heap_diff_bytes" not in rep and "heap_diff" not in rep
    assert not any("(+" in s["stat"] for s in rep["stats"]), rep["stats"][0]
    assert rep["hawk_bpf"]["pid"] == wl.pid
    assert rep["hawk_bpf"]["target_exited"] is False
    assert rep["heap_current_bytes"] >= sum(
        s.size for s in second.statistics("lineno") if s.traceback[0].filename == RETAIN)
    tb = json.loads(snapshot(wl.pid, "--format", "traceback", "--count", "2"))
    assert len(tb["stats"]) == 2 and tb["stats"][0]["traceback"]

    lines = status_of(wl.pid)
    assert len(lines) == 1, status_lines()
    m = re.match(rf"PID {wl.pid} (\S+) since (\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ): "
                 rf"(\d+) blocks, (\d+) bytes traced, (\d+) dropped, daemon PID {daemon}$",
                 lines[0])
    assert m, lines[0]
    assert m.group(1) == Path(f"/proc/{wl.pid}/comm").read_text().strip()
    assert int(m.group(3)) >= len(second.traces) * 0.9
    assert int(m.group(4)) >= 4_000_000   # the bytearray alone
    assert m.group(5) == "0"

    stop(wl.pid, daemon)
    assert_bpf_gone(ids)
    assert not patched_bytes(wl.pid, image), "breakpoints left in the target's code"
    assert wl.tables() == wl.tables_at_start, "allocator tables not restored"
    assert wl.alive()
    assert status_of(wl.pid) == []
    assert_refused(["snapshot", "-p", wl.pid], f"no hawk-bpf session for PID {wl.pid}")


def test_sampled_session(procs, tmp_path, sessions):
    """--sample: snapshots say they are sampled; stop puts the tables back."""
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
    line = start(sessions, wl, "--sample")
    assert line.endswith(", sampling"), line
    daemon = daemon_of(wl.pid)
    ids = bpf_ids_of(daemon)
    wl.go()
    wl.wait("allocated")
    rep = json.loads(snapshot(wl.pid))
    assert rep["sampling"]["sampled"] is True
    assert any(s["lineno"] == 46 and s["filename"] == RETAIN for s in rep["stats"])
    stop(wl.pid, daemon)
    assert_bpf_gone(ids)
    assert wl.tables() == wl.tables_at_start, "allocator tables not restored"


def test_start_twice_refused(procs, tmp_path, sessions):
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
    start(sessions, wl)
    daemon = daemon_of(wl.pid)
    ids = bpf_ids_of(daemon)
    assert_refused(["start", "-p", wl.pid],
                   f"already tracing PID {wl.pid} (hawk-bpf daemon PID {daemon})")
    # The one-shot profile is refused too, and says by whom.
    assert_refused(["-p", wl.pid, "--duration", "1"], f"daemon PID {daemon}")
    assert bpf_ids_of(daemon) == ids and daemon_of(wl.pid) == daemon
    assert len(status_of(wl.pid)) == 1
    stop(wl.pid, daemon)
    assert_bpf_gone(ids)
    # Once stopped, a new session may start.
    start(sessions, wl)
    daemon = daemon_of(wl.pid)
    wl.go()
    wl.wait("allocated")   # the workload answers "tables" from then on
    ids = bpf_ids_of(daemon)
    stop(wl.pid, daemon)
    assert_bpf_gone(ids)
    assert wl.tables() == wl.tables_at_start


def test_no_session(procs, tmp_path):
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
    for cmd in ("snapshot", "stop"):
        assert_refused([cmd, "-p", wl.pid], f"no hawk-bpf session for PID {wl.pid}")
    precious = tmp_path / "keep"
    precious.write_text("keep me")
    assert_refused(["snapshot", "-p", wl.pid, "-o", precious], "no hawk-bpf session")
    assert precious.read_text() == "keep me", "a refused snapshot clobbered its -o file"
    never = tmp_path / "never.pickle"
    assert_refused(["snapshot", "-p", wl.pid, "-o", never], "no hawk-bpf session")
    assert not never.exists(), "a refused snapshot created its -o file"
    assert status_of(wl.pid) == []
    # start on what is not a CPython process: the daemon's error, rc 1,
    # and no session.
    sleeper = procs.popen(["sleep", "60"])
    assert_refused(["start", "-p", sleeper.pid], "is not a CPython process")
    assert not (RUN / f"{sleeper.pid}.sock").exists()
    assert not (RUN / f"{sleeper.pid}.lock").exists()
    assert_refused(["stop", "-p", sleeper.pid], "no hawk-bpf session")


@pytest.mark.parametrize("args, needle", [
    (["start", "-p", "1", "--duration", "5"], "--duration cannot be used with start"),
    (["start", "-p", "1", "--format", "pickle"], "--format cannot be used with start"),
    (["start", "-p", "1", "-o", "x"], "-o/--output cannot be used with start"),
    (["snapshot", "-p", "1", "--frames", "3"], "--frames cannot be used with snapshot"),
    (["snapshot", "-p", "1", "--format", "json"], "--format json cannot be used with snapshot"),
    (["snapshot", "-p", "1", "--format", "traceback", "--cumulative"], "--cumulative"),
    (["stop", "-p", "1,2"], "stop takes one -p PID, or none for the host-wide session"),
    (["stop", "-p", "1", "--count", "3"], "--count cannot be used with stop"),
    (["status", "-p", "1"], "-p/--pid cannot be used with status"),
])
def test_bad_options(args, needle):
    assert_refused(args, needle, rc=2)


def test_target_exited(procs, tmp_path, sessions):
    """A session whose target exits shows as exited, still gives its last
    record, and stop cleans it up."""
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
    start(sessions, wl)
    daemon = daemon_of(wl.pid)
    ids = bpf_ids_of(daemon)
    wl.go()
    wl.wait("allocated")
    wl.command("exit")
    assert wl.proc.wait(60) == 0
    end = time.monotonic() + 10
    while time.monotonic() < end:
        lines = status_of(wl.pid)
        if lines and "exited" in lines[0]:
            break
        time.sleep(0.1)
    assert len(lines) == 1 and f"PID {wl.pid} " in lines[0] and "exited" in lines[0], lines
    rc, out, err = run_hawk("snapshot", "-p", wl.pid)
    assert rc == 0, err
    assert any("exited" in l for l in err), err
    rep = json.loads(out)
    assert rep["hawk_bpf"]["target_exited"] is True
    assert any(s["lineno"] == 46 and s["filename"] == RETAIN for s in rep["stats"]), rep
    stop(wl.pid, daemon)
    assert_bpf_gone(ids)
    assert status_of(wl.pid) == []


# ----------------------------------------------- what kill -9 leaves behind

def wait_gone(pid, timeout=TIMEOUT):
    """Until pid has exited (gone, or a zombie: its files are closed)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX":
                return
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not exit")


def killed_session(procs, tmp_path, sessions, *args):
    """A session on retain.py that has allocated, then its daemon killed
    with -9: (workload, daemon PID, its BPF ids, the image)."""
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
    image = TRACING.match(start(sessions, wl, *args)).group(3)
    daemon = daemon_of(wl.pid)
    ids = bpf_ids_of(daemon)
    wl.go()
    wl.wait("allocated")
    assert wl.tables() != wl.tables_at_start, "the session switched no slot"
    os.kill(daemon, signal.SIGKILL)
    return wl, daemon, ids, image


def assert_cleaned_after(wl, ids, image):
    assert not (RUN / f"{wl.pid}.sock").exists(), "socket left behind"
    assert not (RUN / f"{wl.pid}.lock").exists(), "lock file left behind"
    assert_bpf_gone(ids)
    assert not patched_bytes(wl.pid, image), "breakpoints left in the target's code"
    assert wl.alive()
    assert wl.tables() == wl.tables_at_start, "allocator tables not restored"
    assert_refused(["stop", "-p", wl.pid], f"no hawk-bpf session for PID {wl.pid}")


def assert_died_line(err, daemon, *words):
    assert len(err) == 1 and err[0].startswith("hawk-bpf: "), err
    for w in (f"daemon (PID {daemon})", "had died", *words):
        assert w in err[0], (w, err)


@pytest.mark.parametrize("when", ["at once", "once it is gone"])
@pytest.mark.parametrize("mode", ["exact", "sample"])
def test_stop_after_the_daemon_was_killed(procs, tmp_path, sessions, mode, when):
    """kill -9 of the daemon: stop (while it is still dying, or once it is
    gone) puts back the table slots it had switched (the padding, or the
    sampling trampoline), removes its socket and lock, says so in one
    line and exits 3; nothing of hawk-bpf stays loaded or in the code."""
    wl, daemon, ids, image = killed_session(procs, tmp_path, sessions,
                                            *(["--sample"] if mode == "sample" else []))
    if when == "once it is gone":
        wait_gone(daemon)
    rc, out, err = run_hawk("stop", "-p", wl.pid)
    assert (rc, out) == (3, b""), (rc, err)
    assert_died_line(err, daemon, "allocator table slots restored")
    assert_cleaned_after(wl, ids, image)


def test_snapshot_after_the_daemon_was_killed(procs, tmp_path, sessions):
    """snapshot finds the daemon dead: no snapshot and no -o file, the same
    clean-up as stop, one line, exit 3."""
    wl, daemon, ids, image = killed_session(procs, tmp_path, sessions)
    never = tmp_path / "never.pickle"
    rc, out, err = run_hawk("snapshot", "-p", wl.pid, "--format", "pickle", "-o", never)
    assert (rc, out) == (3, b""), (rc, err)
    assert_died_line(err, daemon, "no snapshot")
    assert not never.exists(), "a snapshot that got nothing created its -o file"
    assert_cleaned_after(wl, ids, image)


def test_status_shows_a_killed_daemon(procs, tmp_path, sessions):
    """status lists a session whose daemon died and leaves it to stop."""
    wl, daemon, ids, image = killed_session(procs, tmp_path, sessions)
    wait_gone(daemon)
    lines = status_of(wl.pid)
    assert len(lines) == 1, status_lines()
    assert f"daemon PID {daemon} died" in lines[0] and \
        f"hawk-bpf stop -p {wl.pid}" in lines[0], lines[0]
    assert (RUN / f"{wl.pid}.sock").exists() and (RUN / f"{wl.pid}.lock").exists()
    rc, out, err = run_hawk("stop", "-p", wl.pid)
    assert rc == 3, err
    assert_cleaned_after(wl, ids, image)


def test_stop_after_the_daemon_and_its_target_died(procs, tmp_path, sessions):
    wl, daemon, ids, image = killed_session(procs, tmp_path, sessions)
    wl.proc.kill()
    wl.proc.wait(10)
    rc, out, err = run_hawk("stop", "-p", wl.pid)
    assert (rc, out) == (3, b""), (rc, err)
    assert_died_line(err, daemon, "the process has exited")
    assert not (RUN / f"{wl.pid}.sock").exists() and not (RUN / f"{wl.pid}.lock").exists()
    assert_bpf_gone(ids)


def test_stop_never_writes_into_a_reused_pid(procs, tmp_path, sessions):
    """The lock file names the traced process by PID and start time: when
    the process under that PID started at another time (as it would if the
    PID had been reused), stop cleans the files and leaves it alone."""
    wl, daemon, ids, image = killed_session(procs, tmp_path, sessions)
    wait_gone(daemon)
    lock = RUN / f"{wl.pid}.lock"
    fields = lock.read_text().split()
    assert len(fields) == 4, fields     # owner, role, owner's start, target's start
    fields[3] = str(int(fields[3]) + 1)
    lock.write_text(" ".join(fields) + "\n")
    left = wl.tables()
    rc, out, err = run_hawk("stop", "-p", wl.pid)
    assert rc == 3, err
    assert_died_line(err, daemon, "another process", "left alone")
    assert wl.tables() == left, "stop wrote into a process it did not trace"
    assert not (RUN / f"{wl.pid}.sock").exists() and not lock.exists()
    # what the killed daemon left is harmless; a run puts it back
    rc, _, err = run_hawk("-p", wl.pid, "--duration", "0.2")
    assert rc == 0, err
    assert wl.tables() == wl.tables_at_start


def test_killed_profile_lock_is_cleaned(procs, tmp_path):
    """kill -9 of a one-shot run leaves its lock file; once its target is
    gone, status removes it, and so does the next run (on any process)."""
    locks = []
    for _ in range(2):
        wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
        hawk = Hawk(procs, wl.pid, "--duration", "600")
        hawk.wait_tracing()
        hawk.proc.kill()
        hawk.proc.wait(10)
        wl.proc.kill()
        wl.proc.wait(10)
        locks.append(RUN / f"{wl.pid}.lock")
        assert locks[-1].exists(), "the killed run left no lock: nothing to test"
    status_lines()
    assert not locks[0].exists(), "status left a stale lock"
    rc, _, err = run_hawk("-p", Workload(procs, DEBIAN, "retain.py", tmp_path).pid,
                          "--duration", "0.2")
    assert rc == 0, err
    assert not locks[1].exists(), "the next run left a stale lock"


def test_live_locks_are_never_cleaned(procs):
    """Whether a lock is stale is the kernel's word (its flock), never the
    PID written in it, which may have been reused: a held lock naming a
    dead owner stays; a free one naming a live process goes."""
    held_for, free_for = procs.popen(["sleep", "60"]), procs.popen(["sleep", "60"])
    RUN.mkdir(mode=0o700, exist_ok=True)
    held, free = RUN / f"{held_for.pid}.lock", RUN / f"{free_for.pid}.lock"
    held.write_text("999999999 profile\n")
    free.write_text(f"{os.getpid()} profile\n")
    fd = os.open(held, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        status_lines()
        assert held.exists(), "a held lock was removed"
        assert not free.exists(), "a stale lock stayed"
        rc, _, err = run_hawk("start", "-p", held_for.pid)
        assert rc == 1 and "already tracing" in err[-1], err
        assert held.exists(), "a held lock was removed"
    finally:
        os.close(fd)
        held.unlink(missing_ok=True)
        free.unlink(missing_ok=True)

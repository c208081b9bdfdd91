"""Acceptance 4: hawk-bpf never hurts its target and never leaves anything
behind: not when it ends normally, not when it is killed with SIGKILL in the
middle of a heavy churn; a second tracer on the same process is refused
while the first runs, and works once the first is gone."""
import json
import os
import signal
import subprocess
import time
import tracemalloc

from helpers import HAWK, TRACING, host_pid, run_hawk
from helpers import (PYTHONS, WORKLOADS, Hawk, Workload, assert_bpf_gone,
                     assert_detached, assert_lines_match, assert_no_orphan_programs,
                     patched_bytes, untraced_checksum)

CHURN = str(WORKLOADS / "churn_checksum.py")
ROUNDS = 12


def test_kill9_mid_window_then_trace_again(procs, tmp_path, target_python, oracle):
    python = target_python
    expected = untraced_checksum(python, "churn_checksum.py", ROUNDS)
    wl = Workload(procs, python, "churn_checksum.py", tmp_path, "--rounds", str(ROUNDS))
    first = Hawk(procs, wl.pid, "--duration", "600", "--frames", "30")
    first.wait_tracing()
    wl.go()
    wl.wait("round 2")  # the churn is under way, traced
    first.proc.kill()
    assert first.proc.wait(10) == -signal.SIGKILL
    assert not any(l.startswith("checksum") for l in wl.out.seen), \
        "the churn ended before the kill: make it longer"
    # The kernel drops everything the killed tracer held.
    assert_bpf_gone(first.ids)
    assert not patched_bytes(wl.pid, first.image), "breakpoints outlived hawk-bpf"
    # A second tracer works on the same process, while it still churns.
    out = tmp_path / "second.pickle"
    second = Hawk(procs, wl.pid, "--duration", "600", "--format", "pickle", "-o", out)
    second.wait_tracing()
    got = wl.wait("checksum ").split()[1]
    assert got == expected, "the traced churn computed something else"
    wl.go(str(wl.gofile) + ".2")
    wl.wait("allocated")
    rc, _, err = second.stop()
    assert rc == 0, err
    assert wl.alive()
    assert_detached(second, wl, tables=False)
    # The killed tracer could not restore the tables; what is there now must
    # be the original entries or the padding right before them.
    for dom, slots in wl.tables().items():
        for now, orig in zip(slots, wl.tables_at_start[dom]):
            assert now == orig or 0 < orig - now <= 16, (dom, hex(now), hex(orig))
    assert_lines_match(oracle(python, "churn_checksum.py", 30),
                       tracemalloc.Snapshot.load(str(out)), CHURN)
    assert wl.release() == 0


def first_is_unharmed(first, wl, oracle, python, tmp_path):
    """The first tracer of retain.py, writing first.pickle, reports what
    tracemalloc does and leaves nothing behind."""
    wl.go()
    wl.wait("allocated")
    rc, _, err = first.stop()
    assert rc == 0, err
    assert_detached(first, wl)
    assert_lines_match(oracle(python, "retain.py", 30),
                       tracemalloc.Snapshot.load(str(tmp_path / "first.pickle")),
                       str(WORKLOADS / "retain.py"))


def test_second_tracer_refused(procs, tmp_path, oracle):
    python = PYTHONS["debian-3.11.2"][0]
    wl = Workload(procs, python, "retain.py", tmp_path)
    first = Hawk(procs, wl.pid, "--duration", "600", "--format", "pickle",
                 "-o", tmp_path / "first.pickle")
    first.wait_tracing()
    precious = tmp_path / "precious.json"
    precious.write_text("keep me")
    second = Hawk(procs, wl.pid, "--duration", "600", "-o", precious)
    rc, out, err = second.finish(timeout=30)
    assert rc == 1
    assert out == b""
    assert len(err) == 1 and "already" in err[0] and err[0].startswith("hawk-bpf: "), err
    assert precious.read_text() == "keep me", "a refused run clobbered its -o file"
    # The first one is unharmed.
    first_is_unharmed(first, wl, oracle, python, tmp_path)


def test_normal_exit_leaves_nothing(procs, tmp_path, python):
    """While tracing, the probes are visible (so the checks below can fail);
    afterwards no program, link or map of that hawk-bpf is loaded, the code
    has no breakpoint, the tables are the original ones, and another process
    running the same interpreter was never touched."""
    bystander = Workload(procs, python, "retain.py", tmp_path)
    bystander.go()
    bystander.wait("allocated")
    wl = Workload(procs, python, "retain.py", tmp_path)
    hawk = Hawk(procs, wl.pid, "--duration", "600")
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    assert patched_bytes(wl.pid, hawk.image), "no breakpoint seen in the target"
    assert wl.tables() != wl.tables_at_start, "tables not redirected while tracing"
    assert not patched_bytes(bystander.pid, hawk.image), "another process got breakpoints"
    assert bystander.tables() == bystander.tables_at_start
    rc, out, err = hawk.stop()
    assert rc == 0, err
    assert_detached(hawk, wl)
    assert_no_orphan_programs()
    assert wl.release() == 0 and bystander.release() == 0


def test_kill9_while_sampling_then_sample_and_trace_again(procs, tmp_path, target_python):
    """Killed while sampling, hawk-bpf leaves the slots on its trampoline:
    the target must go on unharmed (tagged blocks freed, reallocated),
    a second sampling run reuses the trampoline, an exact run then puts
    every slot back on CPython's functions."""
    python = target_python
    expected = untraced_checksum(python, "tagged_churn.py", 30)
    # it runs on untraced after the kill, then waits at round 8 for the
    # second tracer, so that rounds 9 on are that one's, however fast
    wl = Workload(procs, python, "tagged_churn.py", tmp_path, "--rounds", "30",
                  "--pause-at", "8")
    first = Hawk(procs, wl.pid, "--duration", "600", "--sample-rates", "64:0.5,100000000:1")
    first.wait_tracing()
    wl.go()
    wl.wait("round 2")
    first.proc.kill()
    assert first.proc.wait(10) == -signal.SIGKILL
    assert_bpf_gone(first.ids)
    wl.wait("round 8")
    second = Hawk(procs, wl.pid, "--duration", "600", "--sample-rates", "64:0.5,100000000:1")
    second.wait_tracing()
    wl.go(str(wl.gofile) + ".pause")
    wl.wait("round 12")
    rc, out, err = second.stop()
    assert rc == 0, err
    # it read the ring the first one left (from where that one stopped)
    counters = json.loads(out)["hawk_bpf"]["counters"]
    assert counters["allocations_traced"] > 1000, counters
    assert counters["lost_ring_records_malformed"] == 0, counters
    assert not any(l.startswith("checksum") for l in wl.out.seen), \
        "the churn ended too early: make it longer"
    third = Hawk(procs, wl.pid, "--duration", "600", "--frames", "1")
    third.wait_tracing()
    assert wl.wait("checksum ").split()[1] == expected, \
        "the churn computed something else"
    wl.go(str(wl.gofile) + ".2")
    wl.wait("allocated")
    rc, _, err = third.stop()
    assert rc == 0, err
    assert_detached(third, wl)
    assert wl.release() == 0


def test_a_thread_id_stands_for_its_process(procs, tmp_path, oracle):
    """-p TID (a thread of a traced process) is taken as the process: its
    tracing line names the process, and while it traces, a second
    hawk-bpf given another of its threads is refused by the same lock."""
    python = PYTHONS["debian-3.11.2"][0]
    wl = Workload(procs, python, "retain.py", tmp_path, "--watch-tables")
    # the harness's table watcher is a thread of its own
    deadline = time.monotonic() + 10
    while not (tids := [int(t) for t in os.listdir(f"/proc/{wl.pid}/task")
                        if int(t) != wl.pid]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tids, "the workload has no second thread"
    first = Hawk(procs, tids[0], "--duration", "600", "--format", "pickle",
                 "-o", tmp_path / "first.pickle")
    m = TRACING.match(first.wait_tracing())
    assert int(m.group(1)) == wl.pid, m.group(0)
    assert any(f"PID {tids[0]} is a thread of process {wl.pid}" in l
               for l in first.err.seen), first.err.seen
    rc, out, err = run_hawk("-p", tids[-1], "--duration", "1")
    assert rc == 1 and "already tracing" in err[-1], err
    first_is_unharmed(first, wl, oracle, python, tmp_path)


def test_second_tracer_from_another_mount_namespace_refused(procs, tmp_path, oracle):
    """A second hawk-bpf with a /run of its own (another mount namespace,
    as in a container) sees no lock file there, and is refused all the
    same: the lock every namespace sees is taken with it (issue #14 §3)."""
    python = PYTHONS["debian-3.11.2"][0]
    wl = Workload(procs, python, "retain.py", tmp_path)
    first = Hawk(procs, wl.pid, "--duration", "600", "--format", "pickle",
                 "-o", tmp_path / "first.pickle")
    first.wait_tracing()
    script = f"mount -t tmpfs none /run && ! ls /run/hawk-bpf 2>/dev/null && exec {HAWK} -p {wl.pid} --duration 1"
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "", (r.returncode, r.stderr)
    assert r.stderr.splitlines() == [
        f"hawk-bpf: already tracing PID {wl.pid} (a hawk-bpf in another mount or PID namespace)"], r.stderr
    first_is_unharmed(first, wl, oracle, python, tmp_path)


def test_second_tracer_from_another_pid_namespace_refused(procs, tmp_path, oracle):
    """The target is PID 1 of a PID namespace of its own; the second
    hawk-bpf runs inside that namespace (and its mount namespace, with its
    own /proc and /run) and is refused, the first tracing it from outside."""
    python = PYTHONS["debian-3.11.2"][0]
    wl = Workload(procs, python, "retain.py", tmp_path,
                  prefix=("unshare", "--pid", "--fork", "--mount", "--mount-proc",
                          "--propagation", "private"))
    assert wl.nspid == 1
    pid = wl.pid
    first = Hawk(procs, pid, "--duration", "600", "--format", "pickle",
                 "-o", tmp_path / "first.pickle")
    first.wait_tracing()
    script = f"mount -t tmpfs none /run && exec {HAWK} -p 1 --duration 1"
    r = subprocess.run(["nsenter", "-t", str(pid), "--pid", "--mount", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "", (r.returncode, r.stderr)
    assert r.stderr.splitlines() == [
        "hawk-bpf: already tracing PID 1 (a hawk-bpf in another mount or PID namespace)"], r.stderr
    first_is_unharmed(first, wl, oracle, python, tmp_path)

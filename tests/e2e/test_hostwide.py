"""Host-wide runs (issue 15): every CPython process at once, each against
its own tracemalloc; a process started and a worker forked during the
window; processes that are not CPython left alone; --merge against
tracemalloc over the union; one pickle a process.

The runs select their processes with --match on a token every workload of
the test has on its command line (the path of its go-file), so that other
Python processes of the machine (pytest's own) do not slow them down; one
test runs with no selector at all."""
import json
import os
import re
import signal
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

import helpers
from helpers import ALL_PYTHONS, ENV, HAWK, PYTHONS, SID, TIMEOUT, Lines, Workload

RETAIN = str(helpers.WORKLOADS / "retain.py")
PREFORK = str(helpers.WORKLOADS / "prefork.py")
HOSTWIDE = re.compile(r"^hawk-bpf: tracing (\d+) process(?:es)? \((CPython [^)]*)\)")
NEWCOMER = re.compile(r"^hawk-bpf: tracing PID (\d+) \(CPython ([0-9.]+)\) from [0-9.]+ s on: (.*)$")
SUMMARY = re.compile(r"^hawk-bpf: (\d+) live blocks traced in (\d+) processes over [0-9.]+ s$")


class HostHawk:
    """hawk-bpf without -p: its stderr read as it comes."""

    def __init__(self, procs, *args):
        self.proc = procs.popen([HAWK, *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.err = Lines(helpers._text(self.proc.stderr), "hawk-bpf stderr")
        self._out = []
        self._t = threading.Thread(target=lambda: self._out.append(self.proc.stdout.read()),
                                   daemon=True)
        self._t.start()

    def wait_tracing(self):
        return HOSTWIDE.match(self.err.wait_for(lambda l: HOSTWIDE.match(l) is not None,
                                                what="the host-wide 'tracing' line"))

    def wait_newcomer(self, pid):
        line = self.err.wait_for(lambda l: (m := NEWCOMER.match(l)) is not None
                                 and int(m.group(1)) == pid,
                                 what=f"'tracing PID {pid} ... on' for a newcomer")
        return NEWCOMER.match(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(TIMEOUT)
        self._t.join(TIMEOUT)
        return rc, self._out[0], self.err.rest()


def lines_of(entry):
    """{(filename, lineno): (size, count)} of a lineno report's stats."""
    return {(s["filename"], s["lineno"]): (s["mem_blocks_size_bytes"], s["mem_blocks_count"])
            for s in entry["stats"]}


def union(*snapshots):
    """tracemalloc's own statistics over the union of snapshots."""
    traces = [t for s in snapshots for t in s.traces._traces]
    return tracemalloc.Snapshot(traces, snapshots[0].traceback_limit)


def not_python(procs, tmp_path, token):
    """Processes that must be left alone: a program, a shell script named
    python3, and a program that calls itself python3.11."""
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexec sleep 600\n")
    fake.chmod(0o755)
    return [procs.popen(["sh", "-c", "sleep 600", token], stdin=subprocess.DEVNULL),
            procs.popen([str(fake), token], stdin=subprocess.DEVNULL),
            procs.popen(["bash", "-c", f"exec -a 'python3.11 {token}' sleep 600"],
                        stdin=subprocess.DEVNULL)]


def untouched(p):
    """Nothing of ours in a process: no uprobe breakpoints in its code,
    and it runs."""
    assert p.poll() is None, f"{p.args} died"
    exe = os.readlink(f"/proc/{p.pid}/exe")
    assert not helpers.patched_bytes(p.pid, exe), f"{p.args}: its code was changed"


def test_every_process_against_its_own_tracemalloc(procs, tmp_path, oracle):
    """Six CPython processes of five builds (one a sid build in its own
    namespaces), a process started during the window, a worker forked by a
    traced master during the window: each within 2 % per line of its own
    tracemalloc; what is not CPython is not touched."""
    token = str(tmp_path)
    pythons = ["pyenv-3.10.13", "debian-3.11.2", "pyenv-3.12.1", "sid-3.14.10"]
    wls = {name: Workload(procs, ALL_PYTHONS[name][0], "retain.py", tmp_path)
           for name in pythons}
    master = Workload(procs, ALL_PYTHONS["pyenv-3.13.0"][0], "prefork.py", tmp_path)
    others = not_python(procs, tmp_path, token)
    time.sleep(0.3)     # the fakes have exec'd
    hawk = HostHawk(procs, "--match", re.escape(token), "--duration", "600",
                    "--count", "1000")
    m = hawk.wait_tracing()
    assert int(m.group(1)) == 5, m.group(0)
    for w in [*wls.values(), master]:
        w.go()
    for w in [*wls.values(), master]:
        w.wait("allocated")
    # started during the window
    late = Workload(procs, ALL_PYTHONS["pyenv-3.11.7"][0], "retain.py", tmp_path)
    assert hawk.wait_newcomer(late.pid).group(3) == "started during the window"
    late.go()
    late.wait("allocated")
    # forked during the window by a traced master
    master.command("fork")
    wpid = int(master.wait("worker ").split()[1])
    assert hawk.wait_newcomer(wpid).group(3) == f"forked from PID {master.pid}"
    Path(str(master.gofile) + ".worker").touch()
    master.wait("worker allocated")
    rc, out, err = hawk.stop()
    assert rc == 0, err
    assert SUMMARY.match(err[-1]), err
    doc = json.loads(out)
    got = {p["pid"]: p for p in doc["processes"]}
    want = {w.pid: (name, w) for name, w in wls.items()}
    want[master.pid] = ("pyenv-3.13.0", master)
    want[late.pid] = ("pyenv-3.11.7", late)
    want[wpid] = ("pyenv-3.13.0", None)
    assert set(got) == set(want), (sorted(got), sorted(want), doc["skipped"])
    heaps = [p["heap_current_bytes"] for p in doc["processes"]]
    assert heaps == sorted(heaps, reverse=True), "not sorted by traced heap"
    for pid, (name, w) in want.items():
        p = got[pid]
        path, version = ALL_PYTHONS[name]
        assert p["python"] == version
        assert p["hawk_bpf"]["pid"] == pid
        script = PREFORK if name == "pyenv-3.13.0" else RETAIN
        helpers.assert_lines_match(oracle(path, os.path.basename(script), 30),
                                   lines_of(p), script)
        assert token in p["cmdline"]
        losses = {k: v for k, v in p["hawk_bpf"]["counters"].items() if k.startswith("lost") and v}
        assert not losses, (name, losses)
    sid = got[wls["sid-3.14.10"].pid]
    assert sid["nspid"] == 1 and sid["pid"] != 1
    # the source lines, read inside its root, are the file's
    src = Path(RETAIN).read_text().splitlines()
    for s in sid["stats"]:
        if s["filename"] == RETAIN:
            assert s["code"] == src[s["lineno"] - 1].strip()
    assert got[wpid]["forked_from"] == master.pid
    assert got[late.pid]["found_at_start"] is False
    assert got[late.pid]["window_began_s"] > got[master.pid]["window_began_s"]
    for p in others:
        untouched(p)
    skipped = {s["pid"] for s in doc["skipped"]}
    assert not skipped & {p.pid for p in others}
    for w in [*wls.values(), master, late]:
        assert w.alive()
    Path(str(master.gofile) + ".end").touch()


def test_merge_is_tracemalloc_over_the_union(procs, tmp_path, oracle):
    """--merge: one report whose statistics are tracemalloc's over the
    union of every process's snapshot."""
    token = str(tmp_path)
    names = ["debian-3.11.2", "pyenv-3.12.1", "sid-3.14.10"]
    wls = [Workload(procs, ALL_PYTHONS[n][0], "retain.py", tmp_path) for n in names]
    hawk = HostHawk(procs, "--match", re.escape(token), "--duration", "600",
                    "--count", "1000", "--merge")
    assert int(hawk.wait_tracing().group(1)) == 3
    for w in wls:
        w.go()
    for w in wls:
        w.wait("allocated")
    rc, out, err = hawk.stop()
    assert rc == 0, err
    doc = json.loads(out)
    assert set(doc) >= {"stats", "heap_current_bytes", "heap_current", "hawk_bpf"}
    assert doc["hawk_bpf"]["merged"] is True
    assert {p["pid"] for p in doc["hawk_bpf"]["processes"]} == {w.pid for w in wls}
    want = union(*(oracle(ALL_PYTHONS[n][0], "retain.py", 30) for n in names))
    helpers.assert_lines_match(want, lines_of(doc), RETAIN)


def test_pickles_against_tracemalloc(procs, tmp_path, oracle):
    """Each PID.pickle and the merged pickle, read by tracemalloc, match
    the processes' own tracemalloc and the union of them."""
    token = str(tmp_path)
    names = ["debian-3.11.2", "pyenv-3.13.0"]
    wls = {n: Workload(procs, ALL_PYTHONS[n][0], "retain.py", tmp_path) for n in names}
    out_dir = tmp_path / "snaps"
    merged = tmp_path / "merged.pickle"
    a = HostHawk(procs, "--match", re.escape(token), "--duration", "600",
                 "--format", "pickle", "-o", out_dir)
    assert int(a.wait_tracing().group(1)) == 2
    for w in wls.values():
        w.go()
        w.wait("allocated")
    rc, _, err = a.stop()
    assert rc == 0, err
    index = json.loads((out_dir / "index.json").read_text())
    assert {p["pid"] for p in index["processes"]} == {w.pid for w in wls.values()}
    assert sorted(os.listdir(out_dir)) == sorted(
        ["index.json", *(f"{w.pid}.pickle" for w in wls.values())])
    for n, w in wls.items():
        snap = tracemalloc.Snapshot.load(str(out_dir / f"{w.pid}.pickle"))
        helpers.assert_lines_match(oracle(ALL_PYTHONS[n][0], "retain.py", 30), snap, RETAIN)
    # merged: a second window over two fresh processes
    wls2 = {n: Workload(procs, ALL_PYTHONS[n][0], "retain.py", tmp_path) for n in names}
    b = HostHawk(procs, "-p", ",".join(str(w.pid) for w in wls2.values()),
                 "--duration", "600", "--format", "pickle", "--merge", "-o", merged)
    assert int(b.wait_tracing().group(1)) == 2
    for w in wls2.values():
        w.go()
        w.wait("allocated")
    rc, _, err = b.stop()
    assert rc == 0, err
    want = union(*(oracle(ALL_PYTHONS[n][0], "retain.py", 30) for n in names))
    helpers.assert_lines_match(want, tracemalloc.Snapshot.load(str(merged)), RETAIN)
    # several pickles need a directory
    rc, _, err = helpers.run_hawk("--match", re.escape(token), "--duration", "1",
                                  "--format", "pickle")
    assert rc == 1 and len(err) == 1 and "-o DIR" in err[0], err


def test_no_selector_traces_every_cpython_process(procs, tmp_path):
    """No -p, no selector: our workloads are among the processes (with
    whatever else runs Python here), the rest of the host untouched."""
    wl = Workload(procs, PYTHONS["debian-3.11.2"][0], "retain.py", tmp_path)
    others = not_python(procs, tmp_path, str(tmp_path))
    time.sleep(0.3)
    rc, out, err = helpers.run_hawk("--duration", "1", "--count", "3",
                                    "--format", "traceback")
    assert rc == 0, err
    assert HOSTWIDE.match(next(l for l in err if l.startswith("hawk-bpf: tracing"))), err
    doc = json.loads(out)
    pids = {p["pid"] for p in doc["processes"]}
    assert wl.pid in pids
    assert os.getpid() in pids or os.getpid() in {s["pid"] for s in doc["skipped"]}, \
        "pytest itself is a CPython process"
    for p in others:
        assert p.pid not in pids
        untouched(p)
    assert all(len(p["stats"]) <= 3 for p in doc["processes"]), "--count is per process"
    assert all("traceback" in s for p in doc["processes"] for s in p["stats"])
    assert wl.alive()


def test_selectors_that_match_nothing(procs, tmp_path):
    rc, out, err = helpers.run_hawk("--match", "no-such-process-" + str(time.time_ns()),
                                    "--duration", "1")
    assert rc == 1 and out == b""
    assert err == ["hawk-bpf: no CPython process matches the selection"], err
    rc, _, err = helpers.run_hawk("--match", "(", "--duration", "1")
    assert rc == 2 or rc == 1
    assert len(err) == 1 and err[0].startswith("hawk-bpf: --match"), err
    rc, _, err = helpers.run_hawk("--container", "xyz", "--duration", "1")
    assert len(err) == 1 and "--container" in err[0] and rc != 0, err
    # a PID list naming one process that is not CPython and one that is gone
    sleeper = procs.popen(["sleep", "600"])
    rc, _, err = helpers.run_hawk("-p", f"{sleeper.pid},{2**22 + 7}", "--duration", "1")
    assert rc == 1 and len(err) == 1, err
    assert err[0] == "hawk-bpf: no CPython process matches the selection", err


def test_exit_and_exec_mid_window_end_only_their_own(procs, tmp_path, oracle):
    """A process that exits and one that execs during the window are
    reported up to then, say so, and never cut the others' windows; the
    exec'd image is not traced (skipped, reason execd)."""
    token = str(tmp_path)
    py = PYTHONS["debian-3.11.2"][0]
    stay, leave, change = (Workload(procs, py, "retain.py", tmp_path) for _ in range(3))
    hawk = HostHawk(procs, "--match", re.escape(token), "--duration", "600",
                    "--count", "1000")
    assert int(hawk.wait_tracing().group(1)) == 3
    for w in (stay, leave, change):
        w.go()
        w.wait("allocated")
    leave.command("_exit")
    assert leave.proc.wait(TIMEOUT) == 0
    change.command("exec")
    time.sleep(1.0)
    assert hawk.proc.poll() is None, "hawk-bpf ended with a process"
    rc, out, err = hawk.stop()
    assert rc == 0, err
    doc = json.loads(out)
    got = {p["pid"]: p for p in doc["processes"]}
    assert set(got) == {stay.pid, leave.pid, change.pid}
    want = oracle(py, "retain.py", 30)
    helpers.assert_lines_match(want, lines_of(got[stay.pid]), RETAIN)
    helpers.assert_lines_match(want, lines_of(got[change.pid]), RETAIN)
    assert got[leave.pid]["hawk_bpf"]["target_exited"] is True
    assert got[change.pid]["hawk_bpf"]["target_execd"] is True
    assert got[stay.pid]["window_ended_s"] > got[change.pid]["window_ended_s"]
    assert {(s["pid"], s["reason"]) for s in doc["skipped"]} == {(change.pid, "execd")}
    assert any(f"PID {change.pid} " in l and "exec'd during the window" in l for l in err), err
    assert any(f"PID {leave.pid} " in l and "exited during the window" in l for l in err), err
    assert stay.alive() and change.alive()


def test_host_session(procs, tmp_path, oracle):
    """start without -p (selected by --match), snapshot per process and
    merged, status, stop; a second host-wide start is refused; nothing
    stays in /run/hawk-bpf."""
    token = str(tmp_path)
    names = ["debian-3.11.2", "pyenv-3.12.1"]
    wls = {n: Workload(procs, ALL_PYTHONS[n][0], "retain.py", tmp_path) for n in names}
    rc, _, err = helpers.run_hawk("start", "--match", re.escape(token))
    assert rc == 0, err
    assert err[-1].startswith("hawk-bpf: tracing 2 processes until stopped"), err
    try:
        rc, _, err2 = helpers.run_hawk("start", "--match", re.escape(token))
        assert rc == 1 and "a host-wide session runs already" in err2[-1], err2
        for w in wls.values():
            w.go()
            w.wait("allocated")
        rc, out, err = helpers.run_hawk("snapshot", "--count", "1000")
        assert rc == 0, err
        doc = json.loads(out)
        got = {p["pid"]: p for p in doc["processes"]}
        assert set(got) == {w.pid for w in wls.values()}
        for n, w in wls.items():
            assert got[w.pid]["window_ended_s"] is None
            assert "heap_diff_bytes" not in got[w.pid], "a snapshot is point-in-time"
            helpers.assert_lines_match(oracle(ALL_PYTHONS[n][0], "retain.py", 30),
                                       lines_of(got[w.pid]), RETAIN)
        rc, out, err = helpers.run_hawk("snapshot", "--merge", "--count", "1000")
        assert rc == 0, err
        want = union(*(oracle(ALL_PYTHONS[n][0], "retain.py", 30) for n in names))
        helpers.assert_lines_match(want, lines_of(json.loads(out)), RETAIN)
        merged = tmp_path / "m.pickle"
        rc, _, err = helpers.run_hawk("snapshot", "--merge", "--format", "pickle", "-o", merged)
        assert rc == 0, err
        helpers.assert_lines_match(want, tracemalloc.Snapshot.load(str(merged)), RETAIN)
        rc, out, err = helpers.run_hawk("status")
        assert rc == 0, err
        assert out.decode().startswith("host-wide since "), out
        assert " 2 processes " in out.decode()
    finally:
        rc, _, err = helpers.run_hawk("stop")
    assert rc == 0, err
    assert not [f for f in os.listdir("/run/hawk-bpf") if f.startswith("host")]
    for w in wls.values():
        assert w.tables() == w.tables_at_start
        assert w.alive()
    rc, _, err = helpers.run_hawk("stop")
    assert rc == 1 and err == ["hawk-bpf: no host-wide hawk-bpf session (start one with: hawk-bpf start)"], err


def test_host_session_killed(procs, tmp_path):
    """The host-wide daemon killed with -9: the next stop puts every
    traced process's allocator tables back and removes its files."""
    token = str(tmp_path)
    wls = [Workload(procs, PYTHONS["debian-3.11.2"][0], "retain.py", tmp_path)
           for _ in range(2)]
    rc, _, err = helpers.run_hawk("start", "--match", re.escape(token))
    assert rc == 0, err
    daemon = int(Path("/run/hawk-bpf/host.lock").read_text().split()[0])
    try:
        for w in wls:
            w.go()
            w.wait("allocated")
            assert w.tables() != w.tables_at_start, "the session switched no table"
    finally:
        os.kill(daemon, signal.SIGKILL)
    rc, _, err = helpers.run_hawk("stop")
    assert rc == 3, err
    assert "had died; cleaned up after it: of its 2 processes, 2 had their allocator tables restored" in err[-1], err
    for w in wls:
        assert w.tables() == w.tables_at_start
        assert w.alive()
    assert not [f for f in os.listdir("/run/hawk-bpf") if f.startswith("host")]


def test_serve_hostwide(procs, tmp_path, oracle):
    """Over HTTP: a profile without pid (narrowed with match) is the
    host-wide report; merge=true the merged one; a pickle of several
    needs merge; the session endpoints without pid are the host's."""
    from test_serve import Server

    token = str(tmp_path)
    py = PYTHONS["debian-3.11.2"][0]
    wls = [Workload(procs, py, "retain.py", tmp_path) for _ in range(2)]
    for w in wls:
        w.go()
        w.wait("allocated")
    srv = Server(procs)

    def get(path, **q):
        status, _, body = srv.get(path, **q)
        return status, body

    status, body = get("", match=re.escape(token), duration="0.5")
    assert status == 200, body
    assert {p["pid"] for p in json.loads(body)["processes"]} == {w.pid for w in wls}
    status, body = get("", match=re.escape(token), duration="0.5", merge="true")
    assert status == 200 and json.loads(body)["hawk_bpf"]["merged"] is True, body
    status, body = get("", match=re.escape(token), duration="0.5", format="pickle")
    assert status == 400 and b"merge=true" in body, body
    status, body = get("", match="no-such-" + token, duration="0.5")
    assert status == 404, body
    status, body = get("start/", match=re.escape(token))
    assert status == 200, body
    try:
        status, body = get("snapshot/", merge="true", count="1000")
        assert status == 200, body
        assert {p["pid"] for p in json.loads(body)["hawk_bpf"]["processes"]} == {w.pid for w in wls}
    finally:
        status, body = get("stop/")
    assert status == 200, body


def cgroup2_root():
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, mnt, fstype = line.split()[:3]
        if fstype == "cgroup2":
            return Path(mnt)
    raise AssertionError("no cgroup2 hierarchy is mounted: the container selectors cannot be tested")


def test_container_and_cgroup_selectors(procs, tmp_path):
    """--container takes the processes of the container a cgroup path
    names (by a prefix of its ID), --cgroup those at or below a path; the
    process outside is left alone."""
    root = cgroup2_root()
    cid = os.urandom(32).hex()
    top = root / f"hawk-test-{os.getpid()}"
    scope = top / f"docker-{cid}.scope"
    py = PYTHONS["debian-3.11.2"][0]
    inside = Workload(procs, py, "retain.py", tmp_path)
    outside = Workload(procs, py, "retain.py", tmp_path)
    scope.mkdir(parents=True)
    try:
        (scope / "cgroup.procs").write_text(str(inside.pid))
        for sel in (["--container", cid[:12]], ["--cgroup", "/" + top.name]):
            rc, out, err = helpers.run_hawk(*sel, "--duration", "0.5", "--count", "1")
            assert rc == 0, (sel, err)
            doc = json.loads(out)
            assert [p["pid"] for p in doc["processes"]] == [inside.pid], (sel, doc["processes"])
            p = doc["processes"][0]
            assert p["container"] == cid
            assert p["cgroup"] == f"/{top.name}/docker-{cid}.scope"
        rc, _, err = helpers.run_hawk("--container", "f" * 64, "--duration", "0.5")
        assert rc == 1 and err == ["hawk-bpf: no CPython process matches the selection"], err
    finally:
        (root / "cgroup.procs").write_text(str(inside.pid))
        scope.rmdir()
        top.rmdir()
    assert inside.alive() and outside.alive()


def test_skipped_processes_say_why(procs, tmp_path):
    """CPython processes that are not traced are listed with their reason:
    an unsupported build (3.9, 2.7) and one another hawk-bpf traces; the
    others are traced."""
    token = str(tmp_path)
    ok = Workload(procs, PYTHONS["debian-3.11.2"][0], "retain.py", tmp_path)
    taken = Workload(procs, PYTHONS["pyenv-3.12.1"][0], "retain.py", tmp_path)
    old = [procs.popen([path, "-c", "import sys; sys.stdin.read()", token],
                       stdin=subprocess.PIPE)
           for path in ("/root/.pyenv/versions/3.9.18/bin/python3.9",
                        "/root/.pyenv/versions/2.7.18/bin/python2.7")]
    other = helpers.Hawk(procs, taken.pid, "--duration", "600")
    other.wait_tracing()
    time.sleep(0.3)
    rc, out, err = helpers.run_hawk("--match", re.escape(token), "--duration", "0.5")
    other.stop()
    assert rc == 0, err
    doc = json.loads(out)
    assert [p["pid"] for p in doc["processes"]] == [ok.pid]
    why = {s["pid"]: s for s in doc["skipped"]}
    assert why[taken.pid]["reason"] == "already_traced", why
    assert f"hawk-bpf PID {other.proc.pid}" in why[taken.pid]["detail"]
    for p in old:
        assert why[p.pid]["reason"] == "unsupported", why
        assert "unsupported CPython" in why[p.pid]["detail"], why
    assert set(why) == {taken.pid, *(p.pid for p in old)}

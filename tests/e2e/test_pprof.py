"""--format pprof and folded (issue 16), read by the real go tool pprof:
totals and lines equal hawk-bpf's own lineno report of the same session,
and tracemalloc's; alloc_* count what was freed too; host-wide profiles
carry each process's labels."""
import gzip
import json
import os
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

import helpers
from helpers import ALL_PYTHONS, PYTHONS, TIMEOUT, Workload

GO = shutil.which("go")
SAMPLE = re.compile(r"^\s*((?:-?\d+\s+)*-?\d+): ([\d ]+)\s*$")
LOCATION = re.compile(r"^\s*(\d+): 0x[0-9a-f]+ M=\d+ (.+) (\S+):(\d+) s=(\d+)")


def go_pprof(*args):
    assert GO, "go is not installed (golang-go: scripts/install-deps)"
    r = subprocess.run([GO, "tool", "pprof", *map(str, args)], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, f"go tool pprof {args}: {r.stderr}"
    return r.stdout


def raw(path):
    """(sample types, [(values, [location ids], {label: value})], {id: (function,
    file, line, start)}) from go tool pprof -raw."""
    types, samples, locs, section = [], [], {}, None
    for line in go_pprof("-raw", path).splitlines():
        if line.startswith("Samples:"):
            section = "samples"
            continue
        if line.startswith("Locations"):
            section = "locations"
            continue
        if line.startswith("Mappings"):
            section = None
        if section == "samples" and not types and "/" in line:
            types = [t.split("/")[0] for t in line.split()]
            continue
        if section == "samples":
            m = SAMPLE.match(line)
            if m:
                samples.append(([int(v) for v in m.group(1).split()],
                                [int(i) for i in m.group(2).split()], {}))
            elif samples and ":[" in line:
                for k, v in re.findall(r"(\w+):\[([^\]]*)\]", line):
                    samples[-1][2][k] = v
        elif section == "locations":
            m = LOCATION.match(line)
            if m:
                locs[int(m.group(1))] = (m.group(2), m.group(3), int(m.group(4)),
                                         int(m.group(5)))
    return types, samples, locs


def by_leaf_line(path, value):
    """{(file, line): sum of value} over samples, by their leaf frame."""
    types, samples, locs = raw(path)
    i = types.index(value)
    out = defaultdict(int)
    for vals, ids, _ in samples:
        f = locs[ids[0]]
        out[(f[1], f[2])] += vals[i]
    return out


def lineno_of(doc):
    return {(s["filename"], s["lineno"]): (s["mem_blocks_size_bytes"], s["mem_blocks_count"])
            for s in doc["stats"]}


def inuse_total(path, *extra):
    """go tool pprof -top's inuse_space total, every node counted."""
    top = go_pprof("-top", "-sample_index=inuse_space", "-unit=B", "-nodecount=1000000",
                   "-nodefraction=0", *extra, path)
    return int(re.search(r"accounting for (\d+)B", top).group(1))


def session_snapshots(wl, tmp_path, *start):
    """One session over wl (hawk-bpf start *start), two snapshots of the
    same blocks once it has allocated: the lineno JSON and a pprof."""
    rc, _, err = helpers.run_hawk("start", "-p", wl.pid, *start)
    assert rc == 0, err
    try:
        wl.go()
        wl.wait("allocated")
        rc, out, err = helpers.run_hawk("snapshot", "-p", wl.pid, "--count", "1000000")
        assert rc == 0, err
        doc = json.loads(out)
        prof = tmp_path / "heap.pb.gz"
        rc, _, err = helpers.run_hawk("snapshot", "-p", wl.pid, "--format", "pprof", "-o", prof)
        assert rc == 0, err
    finally:
        rc, _, err = helpers.run_hawk("stop", "-p", wl.pid)
    assert rc == 0, err
    return doc, prof


@pytest.mark.parametrize("name", ["debian-3.11.2", "pyenv-3.10.13", "sid-3.14.10"])
def test_pprof_equals_lineno_of_the_same_session(procs, tmp_path, oracle, name):
    """One session, two snapshots of the same blocks: pprof's inuse_space and
    inuse_objects by leaf line equal the lineno report exactly, its total
    equals heap_current_bytes (go tool pprof -top says so too), and both
    are tracemalloc's within 2 %."""
    py = ALL_PYTHONS[name][0]
    wl = Workload(procs, py, "retain.py", tmp_path)
    doc, prof = session_snapshots(wl, tmp_path)
    assert gzip.open(prof).read(2), "not gzip"
    space = by_leaf_line(prof, "inuse_space")
    objects = by_leaf_line(prof, "inuse_objects")
    want = lineno_of(doc)
    got = {k: (space[k], objects[k]) for k in space if space[k] or objects[k]}
    assert got == want
    assert sum(space.values()) == doc["heap_current_bytes"]
    top = go_pprof("-top", "-sample_index=inuse_space", "-unit=B", prof)
    m = re.search(r"of (\d+)B total", top)
    assert m and int(m.group(1)) == doc["heap_current_bytes"], top
    helpers.assert_lines_match(oracle(py, "retain.py", 30), got, str(helpers.WORKLOADS / "retain.py"))
    # the code object's qualified name and first line
    _, _, locs = raw(prof)
    funcs = {(f, fn) for f, fn, _, _ in locs.values()}
    assert ("make_blobs", str(helpers.WORKLOADS / "retain.py")) in funcs, funcs
    assert ("Node.__init__" if name != "pyenv-3.10.13" else "__init__",
            str(helpers.WORKLOADS / "retain.py")) in funcs, funcs


def test_alloc_counts_what_was_freed(procs, tmp_path):
    """alloc_objects/alloc_space hold every allocation of the window, freed
    or not; inuse_* only what is left."""
    py = PYTHONS["debian-3.11.2"][0]
    wl = Workload(procs, py, "alloc_and_free.py", tmp_path)
    prof = tmp_path / "heap.pb.gz"
    hawk = helpers.Hawk(procs, wl.pid, "--duration", "600", "--format", "pprof", "-o", prof)
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    rc, _, err = hawk.stop()
    assert rc == 0, err
    line = next(i for i, l in enumerate(
        (helpers.WORKLOADS / "alloc_and_free.py").read_text().splitlines(), 1)
        if "bytes(200)" in l)
    key = (str(helpers.WORKLOADS / "alloc_and_free.py"), line)
    alloc_n, inuse_n = by_leaf_line(prof, "alloc_objects")[key], by_leaf_line(prof, "inuse_objects")[key]
    alloc_b, inuse_b = by_leaf_line(prof, "alloc_space")[key], by_leaf_line(prof, "inuse_space")[key]
    assert 1000 <= inuse_n <= 1010, inuse_n
    assert alloc_n >= 100 * 1000 and alloc_b >= 100 * 1000 * 200, (alloc_n, alloc_b)
    assert alloc_b >= inuse_b * 99
    top = go_pprof("-top", "-sample_index=alloc_space", prof)
    assert "rounds.<locals>.<listcomp>" in top, top


def test_hostwide_pprof_labels_split_processes(procs, tmp_path):
    """One profile over several processes: each sample has its process's
    labels (pid, comm, python, host) and --label's, and -tagfocus on pid
    gives each process's own total."""
    token = str(tmp_path)
    wls = [Workload(procs, PYTHONS[n][0], "retain.py", tmp_path)
           for n in ("debian-3.11.2", "pyenv-3.12.1")]
    prof = tmp_path / "host.pb.gz"
    p = procs.popen([helpers.HAWK, "--match", re.escape(token), "--duration", "600",
                     "--format", "pprof", "--label", "service=checkout", "-o", prof],
                    stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                    text=True)
    err = helpers.Lines(p.stderr, "hawk-bpf stderr")
    err.wait_for(lambda l: l.startswith("hawk-bpf: tracing 2 processes"), what="tracing")
    for w in wls:
        w.go()
        w.wait("allocated")
    p.send_signal(2)
    assert p.wait(TIMEOUT) == 0, err.rest()
    _, samples, _ = raw(prof)
    assert samples
    host = os.uname().nodename
    for _, _, labels in samples:
        assert labels.get("service") == "checkout" and labels.get("host") == host, labels
        assert int(labels["pid"]) in {w.pid for w in wls}, labels
    totals = {}
    for w, version in zip(wls, ("3.11.2", "3.12.1")):
        top = go_pprof("-top", "-sample_index=inuse_space", "-unit=B", "-nodecount=1000000", "-nodefraction=0",
                       f"-tagfocus=pid={w.pid}", prof)
        # -tagfocus keeps the total; the focused part is what "accounts for"
        totals[w.pid] = int(re.search(r"accounting for (\d+)B", top).group(1))
        assert {l["python"] for _, _, l in samples if int(l["pid"]) == w.pid} == {version}
    assert all(totals.values()), totals
    types, samples, _ = raw(prof)
    for pid, total in totals.items():
        assert total == sum(v[types.index("inuse_space")] for v, _, l in samples
                            if int(l["pid"]) == pid)
    whole = go_pprof("-top", "-sample_index=inuse_space", "-unit=B", prof)
    assert int(re.search(r"of (\d+)B total", whole).group(1)) == sum(totals.values())


def test_folded_sums_to_the_heap(procs, tmp_path):
    """Folded stacks: one stack a line, frames oldest first, the sizes
    summing to the lineno snapshot's heap of the same session."""
    py = PYTHONS["debian-3.11.2"][0]
    wl = Workload(procs, py, "retain.py", tmp_path)
    rc, _, err = helpers.run_hawk("start", "-p", wl.pid)
    assert rc == 0, err
    try:
        wl.go()
        wl.wait("allocated")
        rc, out, err = helpers.run_hawk("snapshot", "-p", wl.pid, "--count", "1")
        assert rc == 0, err
        heap = json.loads(out)["heap_current_bytes"]
        rc, folded, err = helpers.run_hawk("snapshot", "-p", wl.pid, "--format", "folded")
        assert rc == 0, err
    finally:
        helpers.run_hawk("stop", "-p", wl.pid)
    total = 0
    lines = folded.decode().splitlines()
    assert lines
    for l in lines:
        stack, value = l.rsplit(" ", 1)
        total += int(value)
        frames = stack.split(";")
        assert all(re.match(r".+ \(.+:\d+\)$", f) for f in frames), l
    assert total == heap
    assert any("make_blobs (" in l for l in lines)


def profile_of(procs, tmp_path, py, name, *args):
    """A pprof of one retain.py run (all of its blocks), written to name."""
    wl = Workload(procs, py, "retain.py", tmp_path)
    out = tmp_path / name
    hawk = helpers.Hawk(procs, wl.pid, "--duration", "600", *args, "-o", out)
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    rc, _, err = hawk.stop()
    assert rc == 0, err
    return wl, out


def test_merge_profiles_keeps_labels(procs, tmp_path):
    """merge of two runs' profiles: one profile whose total is theirs,
    whose samples keep their pid labels (so -tagfocus splits them again)
    and carry merge's --label too."""
    a, pa = profile_of(procs, tmp_path, PYTHONS["debian-3.11.2"][0], "a.pb.gz",
                       "--format", "pprof", "--label", "run=a")
    b, pb = profile_of(procs, tmp_path, PYTHONS["pyenv-3.12.1"][0], "b.pb.gz",
                       "--format", "pprof", "--label", "run=b")
    merged = tmp_path / "m.pb.gz"
    rc, _, err = helpers.run_hawk("merge", pa, pb, "--label", "build=7", "-o", merged)
    assert rc == 0, err

    assert inuse_total(merged) == inuse_total(pa) + inuse_total(pb)
    assert inuse_total(merged, f"-tagfocus=pid={a.pid}") == inuse_total(pa)
    assert inuse_total(merged, "-tagfocus=run=b") == inuse_total(pb)
    _, samples, _ = raw(merged)
    assert samples and all(l.get("build") == "7" for _, _, l in samples)
    assert {l["run"] for _, _, l in samples} == {"a", "b"}


def test_merge_pickles_is_the_union(procs, tmp_path, oracle):
    """merge of two pickles: tracemalloc's statistics of the result are
    those of the union of the two processes' own snapshots."""
    import tracemalloc
    names = ["debian-3.11.2", "pyenv-3.12.1"]
    files = [profile_of(procs, tmp_path, PYTHONS[n][0], f"{n}.pickle", "--format", "pickle")[1]
             for n in names]
    merged = tmp_path / "union.pickle"
    rc, _, err = helpers.run_hawk("merge", *files, "-o", merged)
    assert rc == 0, err
    snaps = [oracle(PYTHONS[n][0], "retain.py", 30) for n in names]
    want = tracemalloc.Snapshot([t for s in snaps for t in s.traces._traces], 30)
    helpers.assert_lines_match(want, tracemalloc.Snapshot.load(str(merged)),
                               str(helpers.WORKLOADS / "retain.py"))


def test_merge_refuses_bad_input(procs, tmp_path):
    junk = tmp_path / "junk.pb.gz"
    junk.write_bytes(b"\x1f\x8b not really gzip")
    pick = tmp_path / "x.pickle"
    pick.write_bytes(b"\x80\x04.")
    prof = tmp_path / "p.pb.gz"
    with gzip.open(prof, "wb") as f:
        f.write(b"")
    cases = [(["merge", junk], str(junk)), (["merge", pick, prof], "not all of one kind"),
             (["merge"], "merge: no files"), (["merge", tmp_path / "none"], "cannot read"),
             (["merge", pick, "--label", "a=b"], "--label is for pprof profiles")]
    for args, needle in cases:
        rc, out, err = helpers.run_hawk(*args)
        assert rc in (1, 2) and out == b"" and len(err) == 1 and needle in err[0], (args, err)


def test_serve_pprof(procs, tmp_path):
    """Over HTTP: format=pprof is a gzipped profile go tool pprof reads,
    as an attachment; format=folded is text."""
    from test_serve import Server

    wl = Workload(procs, PYTHONS["debian-3.11.2"][0], "retain.py", tmp_path)
    wl.go()
    wl.wait("allocated")
    srv = Server(procs)
    status, headers, body = srv.get("", pid=wl.pid, duration="0.5", format="pprof", gc="0")
    assert status == 200, body
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"].endswith('.pb.gz"')
    prof = tmp_path / "h.pb.gz"
    prof.write_bytes(body)
    assert "Type: inuse_space" in go_pprof("-top", prof)
    status, headers, body = srv.get("", pid=wl.pid, duration="0.5", format="folded", gc="0")
    assert status == 200 and headers["content-type"].startswith("text/plain"), headers

"""--sample and --sample-rates against the real tracemalloc: blocks in an
always-sampled class are exact, estimates are within bounds that are sound
for the number of samples, and the target is left as it was (but for the
trampoline, which stays and is harmless)."""
import collections
import json
import math
import pickle
import re
import tracemalloc
from pathlib import Path

import pytest

from helpers import version_of as helpers_version_of
from helpers import (PYTHONS, WORKLOADS, Hawk, TRACING, Workload, assert_bpf_gone,
                     assert_detached, assert_lines_match,
                     assert_top_tracebacks_match, exit_during_window, run_hawk,
                     untraced_checksum)

SCRIPT = "sampled.py"
BLOBS, BIG, SMALL = 7, 8, 9          # the lines of sampled.py
BLOCKS_LINE, MOVED_LINE = 25, 26     # ... of traced_realloc.py


def lines(snapshot, filename, min_size=0, max_size=None):
    """(size, count) per line of filename, over traces in a size range."""
    out = {}
    for _, size, tb, _ in snapshot.traces._traces:
        if tb[0][0] != filename or size < min_size or \
                (max_size is not None and size > max_size):
            continue
        s, c = out.get(tb[0][1], (0, 0))
        out[tb[0][1]] = (s + size, c + 1)
    return out


def sizes_at(snapshot, filename, line, min_size):
    return collections.Counter(size for _, size, tb, _ in snapshot.traces._traces
                               if tb[0] == (filename, line) and size >= min_size)


def assert_big_blocks_exact(want, got, fn, err=""):
    """>= 8192 B is always sampled (weight 1, size unscaled): every such
    block tracemalloc has at BIG is there, with its exact size. (A
    sampled pickle also holds small blocks at size/p, which may exceed
    8192 B: they are extra, never missing.)"""
    exact_want = sizes_at(want, fn, BIG, 8192)
    exact_got = sizes_at(got, fn, BIG, 8192)
    assert exact_want and all(exact_got[k] >= n for k, n in exact_want.items()), \
        (exact_got, exact_want, "what was sampled, per line:",
         sorted(collections.Counter(tb[0] for _, _, tb, _ in got.traces._traces).items())[:20],
         "hawk-bpf's stderr:", err)


def sampled_run(procs, tmp_path, python, *args, script=SCRIPT):
    wl = Workload(procs, python, script, tmp_path)
    hawk = Hawk(procs, wl.pid, "--duration", "600", *args)
    line = hawk.wait_tracing()
    assert line.rstrip().endswith(", sampling"), line
    wl.go()
    wl.wait("allocated")
    rc, out, err = hawk.stop()
    assert rc == 0, err
    assert wl.alive()
    assert_bpf_gone(hawk.ids)
    # The pymalloc slots are back on pymalloc: the tables are as before.
    assert wl.tables() == wl.tables_at_start
    return wl, out, err


def test_large_blocks_exact_and_estimates(procs, tmp_path, target_python, oracle):
    python = target_python
    want = oracle(python, SCRIPT, 1)
    fn = next(tb[0][0] for _, _, tb, _ in want.traces._traces if tb[0][0].endswith(SCRIPT))
    wl, out, err = sampled_run(procs, tmp_path, python, "--sample", "--format", "pickle",
                               "--frames", "1")
    got = pickle.loads(out)
    assert isinstance(got, tracemalloc.Snapshot)
    assert_big_blocks_exact(want, got, fn, err)
    # 2000 blocks of 1033 B at p = 0.1: 200 samples expected, standard
    # deviation 6.7 %; the pickle holds each sampled block at size/p.
    true = lines(want, fn)[BLOBS][0]
    est = lines(got, fn).get(BLOBS, (0, 0))[0]
    assert abs(est - true) <= 0.25 * true, (est, true)


def test_json_says_it_is_sampled(procs, tmp_path, python, oracle, monkeypatch):
    # p = 0.5 for every block under 2 KiB: ~1 M sampled blocks a second in
    # this burst, more than the ring is read at; one system call each
    # instead (the ring's overflow is test_ring_full_is_counted's)
    monkeypatch.setenv("HAWK_BPF_NO_RING", "1")
    want = oracle(python, SCRIPT, 1)
    fn = next(tb[0][0] for _, _, tb, _ in want.traces._traces if tb[0][0].endswith(SCRIPT))
    _, out, _ = sampled_run(procs, tmp_path, python, "--sample-rates", "2048:0.5",
                            "--count", "50")
    rep = json.loads(out)
    s = rep["sampling"]
    assert s["sampled"] is True and s["rates"] == "2048:0.5"
    assert s["classes"][0]["probability"] == 0.5
    assert s["classes"][-1]["probability"] == 1.0
    stats = {(x["filename"], x["lineno"]): x for x in rep["stats"]}
    # p = 0.5 for everything under 2048 B: the 2000 blobs (and 100000
    # small strings) are estimated from ~1000 (~50000) samples, sd ~2.2 %.
    for line in (BLOBS, SMALL):
        true_size = sum(s for s, _ in [lines(want, fn)[line]])
        est = stats[(fn, line)]["mem_blocks_size_bytes"]
        assert abs(est - true_size) <= 0.15 * true_size, (line, est, true_size)
    assert stats[(fn, BIG)]["mem_blocks_size_bytes"] >= lines(want, fn, 8192)[BIG][0]


@pytest.mark.parametrize("spec", ["", "128", "128:0", "128:2", "128:0.1,64:0.2",
                                  "128:0.1,", "x:0.1", "128:0.1;256:0.5"])
def test_malformed_rates_refused(spec):
    rc, out, err = run_hawk("-p", "1", "--sample-rates", spec)
    assert rc == 2 and not out
    assert len(err) == 1 and "--sample-rates" in err[0], err


def test_sample_and_stats_refused():
    rc, _, err = run_hawk("-p", "1", "--sample", "--stats")
    assert rc == 2 and len(err) == 1 and "--stats" in err[0], err


# ---- the trampoline in front of the raw domain: tags, frees, safety ----

CHURN = "tagged_churn.py"
ROUNDS = 30
# Every block of 64 B or more sampled (so tagged), half of the smaller ones.
ALL_RATES = "64:0.5,100000000:1"


@pytest.fixture
def bpf_stats():
    """kernel.bpf_stats_enabled on (per-program run counts), then restored."""
    path = Path("/proc/sys/kernel/bpf_stats_enabled")
    old = path.read_text()
    path.write_text("1\n")
    yield
    path.write_text(old)


def prog_runs(err_lines, prog):
    """Runs of one BPF program, from hawk-bpf's HAWK_BPF_DEBUG lines (a
    program that never ran has none: 0)."""
    assert any(l.startswith("hawk-bpf: debug: ") and " runs, " in l
               for l in err_lines), f"no run counts in {err_lines}"
    for l in err_lines:
        m = re.match(rf"hawk-bpf: debug: {prog}: (\d+) runs", l)
        if m:
            return int(m.group(1))
    return 0


def minor_of(python):
    return tuple(int(x) for x in helpers_version_of(python).split(".")[:2])


def mark_ring_gap(request, python):
    """The ring is there on 3.11 only: a strict xfail elsewhere."""
    if minor_of(python) != (3, 11):
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "known gap: from 3.12 the running thread state is thread-local, "
            "and 3.10's frames are another shape, so the trampoline does not "
            "read the caller's frames and announces by getppid(2) instead of "
            "into the ring (README: Limits)")))


ANNOUNCE_DEBUG = {"ring": "announces into a ring",
                  "syscall": "announces by getppid(2)"}


@pytest.fixture(params=["ring", "syscall", "uprobe"])
def announce(request, monkeypatch):
    """Every way the trampoline announces to BPF: into a ring in the
    target that hawk-bpf drains (the default where the target has no
    seccomp filter), by one getppid(2) each (HAWK_BPF_NO_RING) and through
    the free probe (HAWK_BPF_NO_SYSCALL, as for a target with a seccomp
    filter). The test checks hawk-bpf's debug line says which it used."""
    if request.param == "ring":
        mark_ring_gap(request, request.getfixturevalue(
            "target_python" if "target_python" in request.fixturenames else "python"))
    monkeypatch.setenv("HAWK_BPF_DEBUG", "1")
    if request.param == "syscall":
        monkeypatch.setenv("HAWK_BPF_NO_RING", "1")
    if request.param == "uprobe":
        monkeypatch.setenv("HAWK_BPF_NO_SYSCALL", "1")
    return request.param


def check_announce(err_lines, mode):
    line = next((l for l in err_lines if "sampling trampoline" in l), None)
    assert line and "raw domain switched" in line, err_lines
    for m, text in ANNOUNCE_DEBUG.items():
        assert (text in line) == (mode == m), line


def test_sampled_churn_unchanged_and_tags_outlive_the_tracer(procs, tmp_path, python,
                                                           announce):
    expected = untraced_checksum(python, CHURN, ROUNDS)
    wl = Workload(procs, python, CHURN, tmp_path, "--rounds", str(ROUNDS))
    hawk = Hawk(procs, wl.pid, "--duration", "600", "--sample-rates", ALL_RATES)
    hawk.wait_tracing()
    check_announce(hawk.err.seen, announce)
    wl.go()
    wl.wait("round 3")
    # Stopped half-way: blocks tagged by the trampoline are still alive and
    # are freed and reallocated after it left.
    rc, out, err = hawk.stop()
    assert rc == 0, err
    assert not any(l.startswith("checksum") for l in wl.out.seen), \
        "the churn ended before the stop: make it longer"
    counters = json.loads(out)["hawk_bpf"]["counters"]
    assert counters["allocations_traced"] > 10000, counters
    assert wl.wait("checksum ").split()[1] == expected, \
        "the sampled churn computed something else"
    wl.go(str(wl.gofile) + ".2")
    wl.wait("allocated")
    assert wl.alive()
    assert_detached(hawk, wl)
    assert wl.release() == 0


def test_unsampled_raw_frees_do_not_trap(procs, tmp_path, python, bpf_stats,
                                         announce):
    """Only traced events trap: a free only for a block the trampoline
    tagged, an allocation only when sampled (announced by one hit), not
    the ~100 k raw-domain allocations and frees of the churn."""
    raw_frees_case(procs, tmp_path, python, announce, seccomp=False)


def test_seccomp_target_is_announced_to_by_the_probe(procs, tmp_path, python,
                                                      bpf_stats, monkeypatch):
    """A target under a seccomp filter (which might refuse getppid, or kill
    for it) is announced to through the free probe: hawk-bpf sees the
    filter and chooses so by itself."""
    monkeypatch.setenv("HAWK_BPF_DEBUG", "1")
    monkeypatch.delenv("HAWK_BPF_NO_SYSCALL", raising=False)
    raw_frees_case(procs, tmp_path, python, "uprobe", seccomp=True)


def raw_frees_case(procs, tmp_path, python, announce, seccomp):
    wl = Workload(procs, python, CHURN, tmp_path, "--rounds", "10",
                  *(["--seccomp"] if seccomp else []))
    if seccomp:
        assert "Seccomp:\t2" in Path(f"/proc/{wl.pid}/status").read_text()
    hawk = Hawk(procs, wl.pid, "--duration", "600", "--sample")
    hawk.wait_tracing()
    check_announce(hawk.err.seen, announce)
    wl.go()
    wl.wait("checksum ")
    rc, out, err = hawk.stop()
    assert rc == 0, err
    counters = json.loads(out)["hawk_bpf"]["counters"]
    events = counters["allocations_traced"] + counters["frees_of_traced_blocks"]
    assert counters["frees_of_traced_blocks"] > 1000, counters  # 1/10 of ~50 k
    # Entry probe hits (a sampled block is announced by one free-probe hit;
    # a traced block's free or realloc is one hit, the latter not always an
    # event) against traced events; trapping every raw call would be
    # several times more.
    hits = prog_runs(err, "free_enter") + prog_runs(err, "alloc_enter")
    sys_hits = prog_runs(err, "sys_announce")
    if announce == "syscall":
        # one getppid a sampled allocation, free or unsampled realloc, and
        # no free probe hit; uprobe hits only for a sampled block realloc'd
        # to a sampled size (an entry and a return probe)
        assert sys_hits >= counters["frees_of_traced_blocks"], (sys_hits, counters)
        assert prog_runs(err, "free_enter") == 0, err
        hits += sys_hits
    else:
        assert sys_hits == 0, sys_hits
    assert hits <= 1.25 * events + 200, (hits, events, counters)
    wl.go(str(wl.gofile) + ".2")
    wl.wait("allocated")
    assert_detached(hawk, wl)
    assert wl.release() == 0


def test_realloc_of_traced_block_to_unsampled_size(procs, tmp_path, python, oracle,
                                                   announce):
    """A traced raw block realloc'd to a size that is not sampled leaves
    the sample (one probe hit announces it); one whose realloc fails stays,
    as tracemalloc keeps it. Here 1000-byte blocks are always sampled and
    the reallocs' results almost never (p = 1e-6)."""
    script = "traced_realloc.py"
    want = oracle(python, script, 1)
    fn = str(WORKLOADS / script)
    # the 1000-byte blocks whose realloc failed (the line also has ints)
    assert lines(want, fn, 1000, 1000)[BLOCKS_LINE] == (100 * 1000, 100)
    _, out, err = sampled_run(procs, tmp_path, python, "--sample-rates",
                              "128:0.000001,8192:1,2147483648:0.000001",
                              "--format", "pickle", "--frames", "1", script=script)
    check_announce(err, announce)
    got = pickle.loads(out)
    assert lines(got, fn, 1000, 1000).get(BLOCKS_LINE) == (100 * 1000, 100), \
        lines(got, fn)
    # the moved blocks' old selves are gone; their new selves are sampled
    # with p = 1e-6 (shown at 20000 / p bytes)
    assert len(sizes_at(got, fn, MOVED_LINE, 20000)) <= 1, lines(got, fn)
    assert not [l for l in err if "warning" in l], err



@pytest.mark.parametrize("frames", [1, 30])
def test_always_sampled_stacks_match_tracemalloc(procs, tmp_path, target_python, oracle,
                                                 announce, frames, monkeypatch):
    """Every block of 1 byte or more sampled (weight 1): the snapshot is
    tracemalloc's, frame for frame and total_nframe too, whether the
    trampoline read an object-domain block's frames itself (getppid
    announcements) or BPF walked them (free-probe announcements, and
    raw-domain blocks always)."""
    python = target_python
    script = "sampled_stacks.py"
    # every allocation a record of up to 544 B: ~20 MB in ~50 ms, more
    # than the default ring holds between two reads (dropped records are
    # counted and warned of: see test_ring_full_is_counted)
    monkeypatch.setenv("HAWK_BPF_RING_KB", "65536")
    want = oracle(python, script, frames)
    out = tmp_path / "hawk.pickle"
    _, _, err = sampled_run(procs, tmp_path, python, "--sample-rates", "1:0.5",
                            "--format", "pickle", "--frames", str(frames), "-o", out,
                            script=script)
    check_announce(err, announce)
    got = tracemalloc.Snapshot.load(str(out))
    path = str(WORKLOADS / script)
    assert_lines_match(want, got, path)
    assert_top_tracebacks_match(want, got, path, check_total_nframe=True)
    assert not [l for l in err if "warning" in l], err


def test_always_sampled_object_realloc(procs, tmp_path, python, oracle):
    """generators.py line 18 appends to a list: its item array grows by
    PyMem_Realloc and tracemalloc counts 100 such arrays there."""
    script = "generators.py"
    want = oracle(python, script, 1)
    out = tmp_path / "hawk.pickle"
    sampled_run(procs, tmp_path, python, "--sample-rates", "1:0.5",
                "--format", "pickle", "--frames", "1", "-o", out, script=script)
    got = tracemalloc.Snapshot.load(str(out))
    assert_lines_match(want, got, str(WORKLOADS / script))


def test_ring_full_is_counted(procs, tmp_path, python, monkeypatch, request):
    """A ring too small for what is sampled: the records that do not fit
    are dropped by the trampoline (never waited for), counted, and warned
    of; the target computes the same."""
    mark_ring_gap(request, python)
    monkeypatch.setenv("HAWK_BPF_RING_KB", "16")
    monkeypatch.setenv("HAWK_BPF_DEBUG", "1")
    expected = untraced_checksum(python, CHURN, 10)
    wl = Workload(procs, python, CHURN, tmp_path, "--rounds", "10")
    hawk = Hawk(procs, wl.pid, "--duration", "600", "--sample-rates", ALL_RATES)
    hawk.wait_tracing()
    check_announce(hawk.err.seen, "ring")
    wl.go()
    assert wl.wait("checksum ").split()[1] == expected
    rc, out, err = hawk.stop()
    assert rc == 0, err
    counters = json.loads(out)["hawk_bpf"]["counters"]
    assert counters["lost_ring_records_ring_full"] > 0, counters
    assert counters["allocations_traced"] > 0, counters
    assert any("warning: lost_ring_records_ring_full: " in l for l in err), err
    wl.go(str(wl.gofile) + ".2")
    wl.wait("allocated")
    assert wl.release() == 0


@pytest.mark.parametrize("how", ["exit", "_exit"])
def test_target_exits_during_ring_window(procs, tmp_path, python, oracle, how,
                                        monkeypatch, request):
    """The target exits while its sampled blocks go through the ring: the
    records it wrote before it began to exit are applied (the always
    sampled blocks are exactly tracemalloc's) and, at a normal exit, none
    is reported lost; after os._exit (no finalization) the report holds
    what was alive as its last thread went."""
    mark_ring_gap(request, python)
    want = oracle(python, SCRIPT, 1)
    fn = next(tb[0][0] for _, _, tb, _ in want.traces._traces if tb[0][0].endswith(SCRIPT))
    wl = Workload(procs, python, SCRIPT, tmp_path)
    monkeypatch.setenv("HAWK_BPF_DEBUG", "1")
    hawk = Hawk(procs, wl.pid, "--duration", "600", "--sample", "--format", "pickle",
                "--frames", "1")
    hawk.wait_tracing()
    check_announce(hawk.err.seen, "ring")
    rc, out, err = exit_during_window(wl, hawk, how)
    assert rc == 0, err
    assert_big_blocks_exact(want, pickle.loads(out), fn, err)
    lost = [l for l in err if "lost_ring_records" in l]
    if how == "exit":
        assert not lost, err


@pytest.mark.parametrize("kb", ["1000", "2", "x", "2097152", ""])
def test_bad_ring_size_refused(procs, tmp_path, monkeypatch, kb):
    """HAWK_BPF_RING_KB that is not a power of two from 4 to 1048576: one
    line, exit 1, the target untouched."""
    python = PYTHONS["debian-3.11.2"][0]
    monkeypatch.setenv("HAWK_BPF_RING_KB", kb)
    wl = Workload(procs, python, SCRIPT, tmp_path)
    rc, out, err = run_hawk("-p", str(wl.pid), "--duration", "1", "--sample")
    assert rc == 1 and not out
    assert len(err) == 1 and "HAWK_BPF_RING_KB" in err[0], err
    wl.go()
    wl.wait("allocated")
    assert wl.tables() == wl.tables_at_start


def test_a_trampoline_keeps_its_bounds(procs, tmp_path):
    """The first sampled run leaves its trampoline for the process's life
    (its code holds the class BOUNDs): a later run may change every P, and
    one with other BOUNDs is refused in one line that says why (--help)."""
    wl = Workload(procs, PYTHONS["debian-3.11.2"][0], SCRIPT, tmp_path)
    rc, _, err = run_hawk("-p", wl.pid, "--sample", "--duration", "0.3")
    assert rc == 0, err
    rc, out, err = run_hawk("-p", wl.pid, "--sample-rates", "256:0.5,4096:0.01",
                            "--duration", "0.3")
    assert (rc, out) == (1, b"") and len(err) == 1, (rc, err)
    assert "keeps the sampling trampoline of an earlier hawk-bpf" in err[0] and \
        "same BOUNDs (any P)" in err[0], err
    rc, _, err = run_hawk("-p", wl.pid, "--sample-rates", "128:0.5,8192:0.5",
                          "--duration", "0.3")
    assert rc == 0, err
    rc, out, _ = run_hawk("--help")
    assert b"other BOUNDs are refused" in out

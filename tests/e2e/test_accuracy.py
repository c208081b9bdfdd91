"""Acceptance 1: hawk-bpf's snapshot of a window equals what tracemalloc,
started in the workload at the same point, reports: every line of the
workload's own file at >= 10 KiB within 2 % (size and count), and the top-5
statistics('traceback') frame for frame within 2 %."""
import pickle

import pytest
import tracemalloc

from helpers import version_of
from helpers import (WORKLOADS, assert_lines_match, assert_top_tracebacks_match,
                     traced_run)

# recursion.py has its own test below, with more checks.
WORKLOAD_NAMES = ["retain.py", "threads.py", "generators.py", "churn_leak.py",
                  "realloc.py"]


def hawk_snapshot(procs, tmp_path, python, script, frames, extra=()):
    out = tmp_path / "hawk.pickle"
    hawk, rc, stdout, err, wl = traced_run(procs, tmp_path, python, script,
                                           "--format", "pickle", "--frames", str(frames),
                                           "-o", out, extra=extra)
    snap = tracemalloc.Snapshot.load(str(out))
    assert snap.traceback_limit == frames
    return snap, err


@pytest.mark.parametrize("frames", [1, 30])
@pytest.mark.parametrize("script", WORKLOAD_NAMES)
def test_matches_tracemalloc(procs, tmp_path, target_python, oracle, script, frames,
                             request):
    python = target_python
    if script == "threads.py" and version_of(python).startswith("3.10."):
        # not strict: whether it shows depends on which thread calls first
        request.applymarker(pytest.mark.xfail(reason=(
            "known gap (free lists): 3.10's frame objects are recycled "
            "through a free list and cached per code object, so a thread's "
            "frame may be one another thread first allocated; tracemalloc "
            "re-charges it where it is reused (README: Limits)")))
    want = oracle(python, script, frames)
    got, err = hawk_snapshot(procs, tmp_path, python, script, frames)
    path = str(WORKLOADS / script)
    assert_lines_match(want, got, path)
    assert_top_tracebacks_match(want, got, path, check_total_nframe=True)
    assert not [l for l in err if "warning" in l], err


@pytest.mark.parametrize("frames", [1, 30, 200])
def test_deep_recursion(procs, tmp_path, target_python, oracle, frames):
    """150 calls deep: at --frames 1 and 30 tracebacks are cut like
    tracemalloc's, at --frames 200 they are whole; total_nframe counts every
    frame either way."""
    python = target_python
    want = oracle(python, "recursion.py", frames)
    got, err = hawk_snapshot(procs, tmp_path, python, "recursion.py", frames)
    depth = max(t[3] for t in want.traces._traces)
    assert depth > 150, "the workload is not as deep as it should be"
    assert max(len(t[2]) for t in got.traces._traces) == min(frames, depth)
    assert_lines_match(want, got, str(WORKLOADS / "recursion.py"))
    assert_top_tracebacks_match(want, got, str(WORKLOADS / "recursion.py"),
                                check_total_nframe=True)
    assert max(t[3] for t in got.traces._traces) == depth


@pytest.mark.xfail(strict=True, reason=(
    "known gap: a block CPython hands out again from a free list is charged "
    "where it was first allocated in the window; tracemalloc re-charges it in "
    "_Py_NewReference, a hook inlined at ~290 sites with no probeable entry "
    "(README: Limits)"))
def test_free_list_reuse(procs, tmp_path, python, oracle):
    """A block a free list hands out again is charged where it is reused, as
    tracemalloc's _Py_NewReference hook does (lists, tuples, dicts, floats
    ... are recycled this way in every CPython program)."""
    want = oracle(python, "free_list_reuse.py", 1)
    got, err = hawk_snapshot(procs, tmp_path, python, "free_list_reuse.py", 1)
    assert_lines_match(want, got, str(WORKLOADS / "free_list_reuse.py"))


@pytest.mark.xfail(strict=True, reason=(
    "known gap: a stack is known by the addresses of its code objects, so "
    "a code object made where a freed one was (exec of generated code) is "
    "charged to the stack first seen there (README: Limits)"))
def test_code_object_at_a_freed_ones_address(procs, tmp_path, python, oracle):
    """Code compiled, run and dropped in turn: each file name keeps its own
    blocks, as in tracemalloc, which names the file when a block is made."""
    want = oracle(python, "code_reuse.py", 1)
    got, _ = hawk_snapshot(procs, tmp_path, python, "code_reuse.py", 1)

    def per_file(snap):
        return {s.traceback[0].filename: (s.size, s.count) for s in snap.statistics("filename")
                if s.traceback[0].filename.startswith("<generated ")}
    assert len(per_file(want)) == 20
    assert per_file(got) == per_file(want)

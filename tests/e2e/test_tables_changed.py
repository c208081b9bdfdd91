"""A target that changes its allocator tables during the window — here
tracemalloc.start(), whose hooks chain to ours and whose own bookkeeping
blocks are then counted too — gets a report that says it is incomplete and
from when (issue #14 §3), and keeps its tracemalloc working after we leave
(its hooks stay in the slots; ours are not written over them)."""
import json

from helpers import (PYTHONS, SUMMARY, Hawk, Workload, assert_bpf_gone)

WARNING = "hawk-bpf: warning: the report is incomplete from "


def test_tracemalloc_started_mid_window(procs, tmp_path, python):
    check_midway(procs, tmp_path, python, "exact")


def test_tracemalloc_started_mid_sampled_window(procs, tmp_path):
    """Sampling: the slots hold the trampoline; the same check (on one
    interpreter)."""
    check_midway(procs, tmp_path, PYTHONS["debian-3.11.2"][0], "sampled")


def check_midway(procs, tmp_path, python, mode):
    wl = Workload(procs, python, "tracemalloc_midway.py", tmp_path)
    hawk = Hawk(procs, wl.pid, "--duration", "600", *(["--sample"] if mode == "sampled" else []))
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    rc, out, err = hawk.stop()
    assert rc == 0, err
    assert SUMMARY.match(err[-1]), err
    warned = [l for l in err if l.startswith(WARNING)]
    assert len(warned) == 1, err
    at = json.loads(out)["hawk_bpf"]["tables_changed_at_s"]
    assert isinstance(at, float) and 0 < at <= json.loads(out)["hawk_bpf"]["window_seconds"], at
    assert warned[0].startswith(f"{WARNING}{at:.2f} s into the window"), warned
    assert_bpf_gone(hawk.ids)
    # tracemalloc's hooks are where it put them, and it still traces.
    tables = wl.tables()
    assert tables != wl.tables_at_start
    assert wl.alive()


def test_tables_left_alone_say_nothing(procs, tmp_path, python):
    """The same window without tracemalloc: no warning, null in the JSON."""
    wl = Workload(procs, python, "retain.py", tmp_path)
    hawk = Hawk(procs, wl.pid, "--duration", "600")
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    rc, out, err = hawk.stop()
    assert rc == 0, err
    assert not [l for l in err if l.startswith(WARNING)], err
    assert json.loads(out)["hawk_bpf"]["tables_changed_at_s"] is None

"""Acceptance 2: the three output formats are Hawk's tracemalloc endpoint
formats: field for field, string for string, as tracemalloc and Hawk's
renderer would write them for the same snapshot.

One run gives one format, so each JSON document is checked two ways: exactly
against itself (every string is what tracemalloc / Hawk's format_bytes /
linecache make of the numbers and the location in the same entry, and the
totals add up), and within 2 % against the in-process tracemalloc oracle."""
import json
import linecache
import re
import signal
import tracemalloc

from helpers import version_of
from helpers import (PYTHONS, SUMMARY, WORKLOADS, assert_lines_match, by_line,
                     by_traceback, close, format_bytes, traced_run)

RETAIN = str(WORKLOADS / "retain.py")
TOP_KEYS = ["stats", "heap_current_bytes", "heap_current", "heap_diff_bytes",
            "heap_diff", "hawk_bpf"]
LINENO_KEYS = ["stat", "mem_blocks_count", "mem_blocks_size_bytes", "mem_blocks_size",
               "filename", "lineno", "code"]
TRACEBACK_KEYS = ["mem_blocks_count", "mem_blocks_size_bytes", "mem_blocks_size",
                  "traceback"]
# hawk-bpf's own counters may grow; those that count lost or unreadable
# data must be zero on these small workloads.
LOSS = re.compile(r"lost|error|unresolved|unreadable")


def run_json(procs, tmp_path, python, *args):
    """retain.py traced with the given options; (document, stderr, workload)."""
    hawk, rc, out, err, wl = traced_run(procs, tmp_path, python, "retain.py", *args)
    pairs = []
    doc = json.loads(out, object_pairs_hook=lambda kv: (pairs.append([k for k, _ in kv]),
                                                        dict(kv))[1])
    doc["_key_orders"] = pairs
    return doc, err, wl


def summary_blocks(err):
    m = [SUMMARY.match(l) for l in err if SUMMARY.match(l)]
    assert len(m) == 1, f"expected one summary line: {err}"
    return int(m[0].group(1))


def stat_string(frames, size, count):
    """str() of the StatisticDiff tracemalloc's compare_to(empty) gives."""
    tb = tracemalloc.Traceback(tuple(frames))
    return str(tracemalloc.StatisticDiff(tb, size, size, count, count))


def check_heap_fields(doc):
    assert list(doc)[:6] == TOP_KEYS
    assert doc["heap_current"] == format_bytes(doc["heap_current_bytes"])
    # The window's start snapshot is empty: the diff is all of it.
    assert doc["heap_diff_bytes"] == doc["heap_current_bytes"]
    assert doc["heap_diff"] == format_bytes(doc["heap_diff_bytes"])


def check_run_info(info, wl, python, frames):
    assert info["pid"] == wl.pid
    assert info["python"] == version_of(python)
    assert info["frames"] == frames
    assert info["target_exited"] is False
    assert info["interrupted"] is True
    assert info["tables_changed_at_s"] is None
    assert 0 < info["window_seconds"] < 120
    counters = info["counters"]
    assert all(type(v) is int and v >= 0 for v in counters.values()), counters
    assert counters["allocations_traced"] > 0
    lost = {k: v for k, v in counters.items() if LOSS.search(k) and v}
    assert not lost, f"losses on a small workload: {lost}"


def check_sorted(stats):
    keys = [(s["mem_blocks_size_bytes"], s["mem_blocks_count"]) for s in stats]
    assert keys == sorted(keys, reverse=True), "stats are not biggest first"


def test_lineno_json(procs, tmp_path, target_python, oracle):
    python = target_python
    doc, err, wl = run_json(procs, tmp_path, python, "--count", "1000000")
    check_heap_fields(doc)
    check_run_info(doc["hawk_bpf"], wl, python, 30)
    stats = doc["stats"]
    assert len(stats) > 10
    for s in stats:
        assert list(s) == LINENO_KEYS, s
        frame = (s["filename"], s["lineno"])
        assert s["stat"] == stat_string([frame], s["mem_blocks_size_bytes"],
                                         s["mem_blocks_count"]), s
        assert s["mem_blocks_size"] == format_bytes(s["mem_blocks_size_bytes"]), s
        assert s["code"] == linecache.getline(*frame).strip(), s
    check_sorted(stats)
    assert len({(s["filename"], s["lineno"]) for s in stats}) == len(stats), "a line twice"
    # With every line listed, the stats add up to the heap and the blocks.
    assert sum(s["mem_blocks_size_bytes"] for s in stats) == doc["heap_current_bytes"]
    assert sum(s["mem_blocks_count"] for s in stats) == summary_blocks(err)
    # Against the oracle.
    want = oracle(python, "retain.py", 30)
    assert_lines_match(want, {(s["filename"], s["lineno"]): (s["mem_blocks_size_bytes"],
                                                             s["mem_blocks_count"])
                              for s in stats}, RETAIN)
    mine = [(s["filename"], s["lineno"]) for s in stats if s["filename"] == RETAIN]
    theirs = [k for k, v in sorted(by_line(want).items(), key=lambda kv: -kv[1].size)
              if k[0] == RETAIN]
    assert mine[:4] == theirs[:4], "the biggest lines are not in tracemalloc's order"
    assert "keep.append(bytearray(4_000_000))" in [s["code"] for s in stats]


def test_default_count_is_10(procs, tmp_path, oracle):
    python = PYTHONS["debian-3.11.2"][0]
    doc, err, wl = run_json(procs, tmp_path, python)
    assert len(doc["stats"]) == 10
    assert summary_blocks(err) > sum(s["mem_blocks_count"] for s in doc["stats"])
    check_sorted(doc["stats"])


def test_count_and_cumulative(procs, tmp_path, oracle):
    """--count 3 --cumulative: the 3 lines holding the most, callees
    included, as statistics('lineno', cumulative=True) ranks them."""
    python = PYTHONS["pyenv-3.11.7"][0]
    doc, err, wl = run_json(procs, tmp_path, python, "--count", "3", "--cumulative")
    check_heap_fields(doc)
    stats = doc["stats"]
    assert len(stats) == 3
    check_sorted(stats)
    want = oracle(python, "retain.py", 30).statistics("lineno", cumulative=True)
    for s, w in zip(stats, want[:3]):
        frame = w.traceback[0]
        assert (s["filename"], s["lineno"]) == (frame.filename, frame.lineno), (s, w)
        assert close(s["mem_blocks_size_bytes"], w.size), (s, w)
        assert close(s["mem_blocks_count"], w.count), (s, w)
        assert s["stat"] == stat_string([(s["filename"], s["lineno"])],
                                         s["mem_blocks_size_bytes"], s["mem_blocks_count"])
    # Cumulative: the call line in the workload's <module> holds everything
    # allocated below it, which is more than the biggest single line.
    assert stats[0]["mem_blocks_size_bytes"] > 9_000_000
    assert any(s["filename"] == RETAIN and s["code"] == "sys.exit(_harness.main(allocate))"
               for s in stats)


def parse_traceback_lines(lines):
    """[(filename, lineno)] oldest first, from Traceback.format() lines."""
    frames = []
    for line in lines:
        m = re.fullmatch(r'  File "(.*)", line (\d+)', line)
        if m:
            frames.append((m.group(1), int(m.group(2))))
        else:
            assert line.startswith("    ") and line.strip() == line[4:], line
            assert frames, f"source line before any frame: {lines}"
    return frames


def test_traceback_json(procs, tmp_path, python, oracle):
    doc, err, wl = run_json(procs, tmp_path, python, "--format", "traceback",
                            "--count", "1000000", "--frames", "30")
    check_heap_fields(doc)
    check_run_info(doc["hawk_bpf"], wl, python, 30)
    stats = doc["stats"]
    check_sorted(stats)
    got = {}
    for s in stats:
        assert list(s) == TRACEBACK_KEYS, s
        assert s["mem_blocks_size"] == format_bytes(s["mem_blocks_size_bytes"]), s
        frames = parse_traceback_lines(s["traceback"])
        assert frames, s
        # Exactly what tracemalloc's Traceback.format() prints for them.
        tb = tracemalloc.Traceback(tuple(reversed(frames)))
        assert s["traceback"] == tb.format(), s
        got[tuple(frames)] = s
    assert sum(s["mem_blocks_size_bytes"] for s in stats) == doc["heap_current_bytes"]
    assert sum(s["mem_blocks_count"] for s in stats) == summary_blocks(err)
    want = by_traceback(oracle(python, "retain.py", 30))
    top = sorted(((k, w) for k, w in want.items() if k[-1][0] == RETAIN),
                 key=lambda kv: -kv[1].size)[:5]
    for key, w in top:
        s = got.get(key)
        assert s is not None, f"traceback missing: {key}"
        assert close(s["mem_blocks_size_bytes"], w.size), (s, w)
        assert close(s["mem_blocks_count"], w.count), (s, w)
    # A traced line shows its source under it.
    assert any(l == "    keep.append(bytearray(4_000_000))" for s in stats
               for l in s["traceback"])


def test_pickle(procs, tmp_path, python):
    out = tmp_path / "snap.pickle"
    hawk, rc, stdout, err, wl = traced_run(procs, tmp_path, python, "retain.py",
                                           "--format", "pickle", "--frames", "7", "-o", out)
    assert stdout == b""
    snap = tracemalloc.Snapshot.load(str(out))
    assert type(snap) is tracemalloc.Snapshot
    assert snap.traceback_limit == 7
    traces = snap.traces._traces
    assert len(traces) == summary_blocks(err)
    for domain, size, tb, total in traces:
        assert domain == 0
        assert size > 0
        # tracemalloc keeps min(depth, limit) frames and counts them all.
        assert 1 <= len(tb) == min(total, 7), (len(tb), total)
    # Most recent frame first: a blob's traceback starts at the line that
    # made it and goes out to the workload's <module>.
    blob_line = next(i for i, l in enumerate(open(RETAIN), 1) if "bytes(1000 + i % 7)" in l)
    blobs = [t for t in traces if t[2][0] == (RETAIN, blob_line)]
    assert len(blobs) >= 3000
    outer = [f for f in blobs[0][2] if f[0] == RETAIN]
    assert outer[0][1] == blob_line and outer[-1][1] > blob_line, blobs[0]


def test_duration_and_sigterm(procs, tmp_path):
    """The window ends by itself after --duration, and SIGTERM ends it early
    like SIGINT: a complete report and exit 0 both ways."""
    from helpers import Hawk, Workload
    python = PYTHONS["debian-3.11.2"][0]
    wl = Workload(procs, python, "retain.py", tmp_path)
    hawk = Hawk(procs, wl.pid, "--duration", "1.5")
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    rc, out, err = hawk.finish(timeout=30)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["hawk_bpf"]["interrupted"] is False
    assert 1.4 <= doc["hawk_bpf"]["window_seconds"] <= 3, doc["hawk_bpf"]
    assert doc["stats"] and doc["stats"][0]["filename"] == RETAIN

    hawk = Hawk(procs, wl.pid, "--duration", "600", "--format", "traceback")
    hawk.wait_tracing()
    rc, out, err = hawk.stop(signal.SIGTERM, timeout=30)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["hawk_bpf"]["interrupted"] is True
    assert doc["hawk_bpf"]["window_seconds"] < 30
    assert summary_blocks(err) >= 0 and len(err) == 2, err

"""--stats against the real tracemalloc: the size distribution of the
allocations of a window, per power-of-two bucket."""
import collections
import json
import linecache

from helpers import traced_run

SCRIPT = "sizes.py"
# Buckets the workload fills (and the interpreter's background allocations
# do not): every allocation there is kept, so tracemalloc's snapshot of the
# same run holds them all. A list's growth adds a transient block or two
# per bucket, hence the slack.
BUCKETS = [(256, 511), (2048, 4095), (16384, 32767)]
SLACK = 10


def oracle_only(frame):
    """Whether a block was made by what only the oracle run does (its own
    tracemalloc calls: 3.10 keeps a frame object per code object called)."""
    filename, lineno = frame
    return (filename.endswith("/_harness.py") and
            "tracemalloc." in linecache.getline(filename, lineno))


def oracle_buckets(snapshot):
    """Per bucket: blocks, bytes, and the blocks sizes.py itself made (the
    rest, a frame object or two on 3.10, may come from a free list in one
    run and not in the other)."""
    c = collections.Counter()
    b = collections.Counter()
    own = collections.Counter()
    for _, size, tb, _ in snapshot.traces._traces:
        if oracle_only(tb[0]):
            continue
        for lo, hi in BUCKETS:
            if lo <= size <= hi:
                c[lo] += 1
                b[lo] += size
                own[lo] += tb[0][0].endswith("/" + SCRIPT)
    return c, b, own


def test_stats_matches_tracemalloc(procs, tmp_path, target_python, oracle):
    python = target_python
    want_c, want_b, own = oracle_buckets(oracle(python, SCRIPT, 1))
    _, _, out, err, _ = traced_run(procs, tmp_path, python, SCRIPT, "--stats",
                                   "--format", "json")
    rep = json.loads(out)
    total = {b["min"]: b for b in rep["size_stats"]["total"]["buckets"]}
    doms = {d["domain"]: d for d in rep["size_stats"]["domains"]}
    assert set(doms) == {"raw", "pymalloc"}
    assert rep["size_stats"]["total"]["allocations"] == \
        doms["raw"]["allocations"] + doms["pymalloc"]["allocations"]
    for lo, hi in BUCKETS:
        got = total[lo]
        assert got["max"] == hi
        assert own[lo] >= 200, own
        assert own[lo] <= got["count"] <= want_c[lo] + SLACK, (lo, got, own[lo], want_c[lo])
        assert abs(got["bytes"] - want_b[lo]) <= 0.02 * want_b[lo] + SLACK * hi, \
            (lo, got, want_b[lo])


def test_stats_text(procs, tmp_path, python):
    _, _, out, err, _ = traced_run(procs, tmp_path, python, SCRIPT, "--stats",
                                   "--format", "text")
    text = out.decode()
    assert text.startswith("# hawk-bpf --stats: allocations by size, PID ")
    rows = [l.split() for l in text.splitlines()[2:]]
    assert any(r[0] == "all" and r[1] == "2048-4095" and int(r[2]) >= 1000 for r in rows), text

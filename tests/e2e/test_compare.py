"""`hawk-bpf compare OLD NEW`: Hawk's interval report between two snapshot
pickles, judged by the real tracemalloc.

Two snapshots are dumped by /usr/bin/python3.11 with tracemalloc.start(5)
(OLD, then more allocations and frees, then NEW); every report must hold
exactly NEW.compare_to(OLD, key_type, cumulative) as computed here by the
real tracemalloc: same `stat` strings, sizes, counts, frames and order, and
heap_current_bytes / heap_diff_bytes from the two totals.  hawk-bpf's own
pickles (--format pickle) must work the same way.  Bad files exit 1 and bad
command lines exit 2, each with one `hawk-bpf: ...` line on stderr.
"""
import json
import linecache
import os
import pickle
import shutil
import subprocess
import tempfile
import time
import tracemalloc

import pytest

from helpers import ENV, PYTHONS, format_bytes, run_hawk, run_oracle, traced_run

DEBIAN = PYTHONS["debian-3.11.2"][0]
NOBODY = 65534

LINENO_KEYS = ["stat", "mem_blocks_count", "mem_blocks_size_bytes",
               "mem_blocks_size", "filename", "lineno", "code"]
TRACEBACK_KEYS = ["mem_blocks_count", "mem_blocks_size_bytes", "mem_blocks_size",
                  "traceback"]
TOP_KEYS = ["stats", "heap_current_bytes", "heap_current", "heap_diff_bytes",
            "heap_diff"]

# OLD and NEW differ in every way compare_to can see: lines that grow, that
# appear, that shrink, that vanish (size 0 in NEW), that stay the same, and
# nested calls, so that cumulative and traceback statistics differ from
# lineno ones.
SCRIPT = '''\
import sys
import tracemalloc


def leaf(n, size):
    return [bytearray(size) for _ in range(n)]


def mid(n, size):
    return leaf(n, size)


def top(n, size):
    return mid(n, size)


def strings(n):
    return ["s%06d" % i * 4 for i in range(n)]


def table(n):
    return {i: str(i) * 3 for i in range(n)}


tracemalloc.start(5)
keep = [top(200, 100)]
keep.append(leaf(300, 64))
gone = strings(500)
stay = table(200)
small = [bytes(i) for i in range(1, 40)]
shrink = [bytearray(512) for _ in range(100)]
tracemalloc.take_snapshot().dump(sys.argv[1])

keep.append(top(400, 100))
del keep[1]
del gone
more = strings(800)
t2 = table(300)
churn = [bytearray(2000) for _ in range(50)]
del churn
for i in range(20):
    keep.append(mid(5, 1000 + i))
del shrink[30:]
tracemalloc.take_snapshot().dump(sys.argv[2])
'''


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    """(OLD path, NEW path, OLD Snapshot, NEW Snapshot) from tracemalloc."""
    d = tmp_path_factory.mktemp("compare")
    script = d / "allocs.py"
    script.write_text(SCRIPT)
    old, new = d / "old.pickle", d / "new.pickle"
    r = subprocess.run([DEBIAN, script, old, new], env=ENV, cwd=d,
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return old, new, tracemalloc.Snapshot.load(str(old)), tracemalloc.Snapshot.load(str(new))


def compare(*args):
    """hawk-bpf compare ARGS: (report, stdout bytes); must succeed quietly."""
    rc, out, err = run_hawk("compare", *args)
    assert rc == 0, err
    assert err == [], err
    rep = json.loads(out)
    # Python's json.dumps(report, indent=2), byte for byte.
    assert out == (json.dumps(rep, indent=2) + "\n").encode()
    return rep, out


def total(snap):
    return sum(t.size for t in snap.traces)


def check_report(rep, old, new, key, cumulative=False, count=10, want=None):
    """rep is Hawk's interval report of new.compare_to(old, key, cumulative),
    or of the StatisticDiffs `want` when given."""
    if want is None:
        want = new.compare_to(old, key, cumulative)
    want = want[:count]
    assert list(rep) == TOP_KEYS
    assert len(rep["stats"]) == len(want)
    for i, (got, d) in enumerate(zip(rep["stats"], want)):
        where = f"stats[{i}] should be {d}"
        assert got["mem_blocks_count"] == d.count, where
        assert got["mem_blocks_size_bytes"] == d.size, where
        assert got["mem_blocks_size"] == format_bytes(d.size), where
        if key == "traceback":
            assert list(got) == TRACEBACK_KEYS, where
            assert got["traceback"] == d.traceback.format(), where
        else:
            frame = d.traceback[0]
            assert list(got) == LINENO_KEYS, where
            assert got["stat"] == str(d), where
            assert got["filename"] == frame.filename, where
            assert got["lineno"] == frame.lineno, where
            assert got["code"] == linecache.getline(frame.filename, frame.lineno).strip(), where
    assert rep["heap_current_bytes"] == total(new)
    assert rep["heap_current"] == format_bytes(total(new))
    assert rep["heap_diff_bytes"] == total(new) - total(old)
    assert rep["heap_diff"] == format_bytes(total(new) - total(old))
    return want


def test_fixture_covers_every_kind_of_change(dumps):
    old, new, so, sn = dumps
    diffs = sn.compare_to(so, "lineno")
    assert len(diffs) > 10
    assert any(d.size_diff > 0 and d.count_diff > 0 for d in diffs)
    assert any(d.size_diff < 0 and d.size > 0 for d in diffs)
    assert any(d.size == 0 and d.size_diff < 0 for d in diffs)
    assert any(d.size_diff == 0 and d.size > 0 for d in diffs)
    assert len(sn.compare_to(so, "lineno", True)) > len(diffs)


def test_lineno_default(dumps):
    old, new, so, sn = dumps
    rep, _ = compare(old, new)
    want = check_report(rep, so, sn, "lineno")
    assert len(want) == 10
    # The top lines are the script's own, with their source.
    assert rep["stats"][0]["filename"].endswith("allocs.py")
    assert rep["stats"][0]["code"]


def test_lineno_explicit_format_and_options_anywhere(dumps):
    old, new, so, sn = dumps
    _, a = compare(old, new)
    _, b = compare("--format", "lineno", old, "--count=10", new)
    assert a == b


def test_lineno_cumulative(dumps):
    old, new, so, sn = dumps
    rep, _ = compare(old, new, "--cumulative")
    check_report(rep, so, sn, "lineno", cumulative=True)
    assert rep != compare(old, new)[0]


def test_lineno_cumulative_all(dumps):
    old, new, so, sn = dumps
    rep, _ = compare(old, new, "--cumulative", "--count", "1000000")
    want = check_report(rep, so, sn, "lineno", cumulative=True, count=1000000)
    assert len(want) == len(sn.compare_to(so, "lineno", True))


def test_traceback(dumps):
    old, new, so, sn = dumps
    rep, _ = compare(old, new, "--format", "traceback")
    check_report(rep, so, sn, "traceback")
    assert any(len(s["traceback"]) > 2 for s in rep["stats"])


def test_traceback_all(dumps):
    old, new, so, sn = dumps
    rep, _ = compare("--format=traceback", "--count", "1000000", old, new)
    want = check_report(rep, so, sn, "traceback", count=1000000)
    assert len(want) == len(sn.compare_to(so, "traceback"))


@pytest.mark.parametrize("count", [1, 3, 10, 11, 1000000])
def test_count(dumps, count):
    old, new, so, sn = dumps
    rep, _ = compare(old, new, "--count", str(count))
    want = check_report(rep, so, sn, "lineno", count=count)
    assert len(want) == min(count, len(sn.compare_to(so, "lineno")))


def test_reversed_and_same(dumps):
    """NEW against OLD (memory that went away), and a file against itself."""
    old, new, so, sn = dumps
    rep, _ = compare(new, old, "--count", "50")
    check_report(rep, sn, so, "lineno", count=50)
    assert rep["heap_diff_bytes"] < 0
    rep, _ = compare(new, new, "--count", "50")
    check_report(rep, sn, sn, "lineno", count=50)
    assert rep["heap_diff_bytes"] == 0
    assert all("(+0 B)" in s["stat"] for s in rep["stats"])


def test_output_file(dumps, tmp_path):
    old, new, so, sn = dumps
    _, want = compare(old, new, "--format", "traceback")
    out = tmp_path / "report.json"
    out.write_text("stale content that is longer than nothing\n" * 1000)
    rc, stdout, err = run_hawk("compare", old, new, "--format", "traceback", "-o", out)
    assert (rc, stdout, err) == (0, b"", [])
    assert out.read_bytes() == want


def test_needs_no_root(dumps):
    old, new, so, sn = dumps
    d = tempfile.mkdtemp(prefix="hawk-compare-")
    try:
        os.chmod(d, 0o755)
        paths = []
        for src in (old, new):
            dst = os.path.join(d, os.path.basename(src))
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o644)
            paths.append(dst)
        rc, out, err = run_hawk("compare", *paths, "--count", "1000", user=NOBODY)
        assert rc == 0, err
        assert err == []
        got = [s["stat"] for s in json.loads(out)["stats"]]
        assert got == [str(s) for s in sn.compare_to(so, "lineno")[:1000]]
    finally:
        shutil.rmtree(d)


def test_hawk_bpf_pickles(procs, tmp_path):
    """hawk-bpf's own pickle against tracemalloc's of the same workload,
    both ways, and against itself."""
    hawk_pickle = tmp_path / "hawk.pickle"
    traced_run(procs, tmp_path, DEBIAN, "retain.py", "--format", "pickle",
               "-o", hawk_pickle)
    oracle_pickle = tmp_path / "oracle.pickle"
    so = run_oracle(DEBIAN, "retain.py", 30, oracle_pickle)
    sh = tracemalloc.Snapshot.load(str(hawk_pickle))
    assert sh.traces and so.traces
    for a, b, sa, sb in ((oracle_pickle, hawk_pickle, so, sh),
                         (hawk_pickle, oracle_pickle, sh, so),
                         (hawk_pickle, hawk_pickle, sh, sh)):
        rep, _ = compare(a, b, "--count", "1000000")
        check_report(rep, sa, sb, "lineno", count=1000000)
        rep, _ = compare(a, b, "--count", "1000000", "--cumulative")
        check_report(rep, sa, sb, "lineno", cumulative=True, count=1000000)
        rep, _ = compare(a, b, "--format", "traceback", "--count", "200")
        check_report(rep, sa, sb, "traceback", count=200)


# ------------------------------------------------------- sizes near 2**64

# A trace's size is a size_t, so a pickle may hold any size up to 2**64 - 1
# (tracemalloc.Snapshot takes any int); statistics add sizes past 2**64,
# once per frame when cumulative, and differences go below -2**64.  Every
# figure must print as Python prints it: it once wrapped to "size=-2 B".
TOP = 2**64 - 1
A = (("/srv/big/a.py", 1),)
B = (("/srv/big/b.py", 2), ("/srv/big/a.py", 9))
REC = (("/srv/big/r.py", 5), ("/srv/big/r.py", 5), ("/srv/big/a.py", 1))


@pytest.fixture(scope="module")
def big_dumps(tmp_path_factory):
    d = tmp_path_factory.mktemp("bigsizes")
    old = tracemalloc.Snapshot([(0, TOP, A, 1), (0, TOP - 1, B, 2),
                                (0, 2**63, REC, 3), (0, 5, B, 2)], 3)
    new = tracemalloc.Snapshot([(0, TOP - 1, A, 1), (0, 2**63 + 1, (("/srv/big/c.py", 4),), 1)]
                               + [(0, TOP, REC, 3)] * 3 + [(0, 7, B, 2)], 3)
    paths = d / "old.pickle", d / "new.pickle"
    old.dump(str(paths[0]))
    new.dump(str(paths[1]))
    return paths[0], paths[1], old, new


@pytest.mark.parametrize("args, key, cumulative", [
    ([], "lineno", False), (["--cumulative"], "lineno", True),
    (["--format", "traceback"], "traceback", False)])
def test_sizes_near_2_64(big_dumps, args, key, cumulative):
    old, new, so, sn = big_dumps
    for a, b, sa, sb in ((old, new, so, sn), (new, old, sn, so), (new, new, sn, sn)):
        rep, _ = compare(a, b, "--count", "100", *args)
        check_report(rep, sa, sb, key, cumulative, count=100)
    # the figures do pass 2**64, both ways
    rep, _ = compare(old, new, *args)
    assert rep["stats"][0]["mem_blocks_size_bytes"] > 2**64
    assert rep["heap_current_bytes"] > 2**64
    rep, _ = compare(new, old, *args)
    assert rep["heap_diff_bytes"] < -2**64


# ------------------------------------------- cumulative, deep tracebacks

# --cumulative counts a trace once for every frame of its traceback, a
# frame that repeats once per occurrence (tracemalloc's _group_by).  The
# traces of each traceback are summed first: 10^5 traces sharing one
# 10^5-frame traceback took 31.6 s when every trace walked every frame.
DEEP = 10**5


def deep_traceback(n, files=7, lines=5000):
    """n frames over `files` files and `lines` lines: frames repeat."""
    return tuple((f"/srv/deep/m{i % files}.py", i % lines) for i in range(n))


def dump_all(tmp_path, **snaps):
    paths = {}
    for name, snap in snaps.items():
        paths[name] = tmp_path / f"{name}.pickle"
        snap.dump(str(paths[name]))
    return paths


def test_cumulative_deep_matches_tracemalloc(tmp_path):
    """Small enough for tracemalloc's own compare_to: shared tracebacks
    with repeated frames, unshared ones, in both snapshots."""
    tb, tb2 = deep_traceback(600, lines=40), deep_traceback(300, files=3)[::-1]
    sn = tracemalloc.Snapshot([(0, 64, tb, 600)] * 200
                              + [(0, 100 + i, tb2, 300) for i in range(50)]
                              + [(0, 7, tb[:i + 1], i + 1) for i in range(0, 600, 37)], 30)
    so = tracemalloc.Snapshot([(0, 64, tb, 600)] * 120 + [(0, 9, tb2, 300)] * 10, 30)
    p = dump_all(tmp_path, old=so, new=sn)
    for a, b, sa, sb in ((p["old"], p["new"], so, sn), (p["new"], p["old"], sn, so)):
        rep, _ = compare(a, b, "--cumulative", "--count", "1000000")
        want = check_report(rep, sa, sb, "lineno", cumulative=True, count=1000000)
        assert len(want) > 40


def test_cumulative_deep_is_linear(tmp_path):
    """10^5 traces of one 10^5-frame traceback.  tracemalloc's compare_to
    would take 10^10 steps on it too; N equal traces add N times what one
    adds, so the expected diffs are those of one trace, scaled."""
    tb = deep_traceback(DEEP)
    one = tracemalloc.Snapshot([(0, 64, tb, DEEP)], 30)
    empty = tracemalloc.Snapshot([], 30)
    many = tracemalloc.Snapshot([(0, 64, tb, DEEP)] * DEEP, 30)
    p = dump_all(tmp_path, empty=empty, many=many)
    want = [tracemalloc.StatisticDiff(d.traceback, d.size * DEEP, d.size_diff * DEEP,
                                      d.count * DEEP, d.count_diff * DEEP)
            for d in one.compare_to(empty, "lineno", True)]
    t0 = time.monotonic()
    rep, _ = compare(p["empty"], p["many"], "--cumulative", "--count", "1000000")
    took = time.monotonic() - t0
    check_report(rep, empty, many, "lineno", cumulative=True, count=1000000, want=want)
    assert len(rep["stats"]) == 7 * 5000
    # 0.4-0.9 s here on a loaded 2-core machine, 42-52 s when every trace
    # walked every frame: a bound ~10x the first, far below the second
    assert took < 8, f"compare --cumulative took {took:.1f} s"


# ------------------------------------------------------------------ errors

def assert_one_error(rc, out, err, status, *needles):
    assert rc == status, (rc, err)
    assert out == b""
    assert len(err) == 1, err
    assert err[0].startswith("hawk-bpf: "), err
    for n in needles:
        assert str(n) in err[0], (n, err)


@pytest.fixture
def bad_files(dumps, tmp_path):
    """name -> (path, words the error line must hold)."""
    old, new, so, sn = dumps
    data = new.read_bytes()
    files = {}

    def put(name, content, *words):
        p = tmp_path / name
        p.write_bytes(content)
        files[name] = (p, words)

    put("garbage.pickle", b"this is not a pickle\n", "not a tracemalloc snapshot pickle")
    put("empty.pickle", b"", "empty")
    put("half.pickle", data[:len(data) // 2], "not a tracemalloc snapshot pickle")
    put("nostop.pickle", data[:-1], "not a tracemalloc snapshot pickle")
    put("head.pickle", data[:3], "not a tracemalloc snapshot pickle")
    put("dict.pickle", pickle.dumps({"traces": []}, protocol=4),
        "not a tracemalloc snapshot pickle")
    # Snapshot.dump() takes any int, but a trace's size is a size_t
    for name, size in (("toobig.pickle", 2**64), ("negsize.pickle", -1)):
        snap = tracemalloc.Snapshot([(0, 1, A, 1), (0, size, A, 1)], 1)
        put(name, pickle.dumps(snap, protocol=5), "trace size out of range (0 to 18446744073709551615)")
    files["missing.pickle"] = (tmp_path / "missing.pickle", ("No such file",))
    files["directory"] = (tmp_path, ("Is a directory",))
    return files


@pytest.mark.parametrize("name", ["garbage.pickle", "empty.pickle", "half.pickle",
                                  "nostop.pickle", "head.pickle", "dict.pickle",
                                  "toobig.pickle", "negsize.pickle",
                                  "missing.pickle", "directory"])
@pytest.mark.parametrize("which", ["OLD", "NEW"])
def test_bad_file(dumps, bad_files, tmp_path, name, which):
    old, new, so, sn = dumps
    bad, words = bad_files[name]
    args = [bad, new] if which == "OLD" else [old, bad]
    out_file = tmp_path / "never.json"
    rc, out, err = run_hawk("compare", *args, "-o", out_file)
    assert_one_error(rc, out, err, 1, bad, *words)
    assert not out_file.exists(), "-o was created although a pickle was bad"


def test_unwritable_output(dumps, tmp_path):
    old, new, so, sn = dumps
    rc, out, err = run_hawk("compare", old, new, "-o", tmp_path / "no-such-dir" / "r.json")
    assert_one_error(rc, out, err, 1, "no-such-dir", "No such file")


@pytest.mark.parametrize("args, needle", [
    ([], "missing OLD and NEW"),
    (["OLD"], "missing NEW"),
    (["OLD", "NEW", "NEW"], "unexpected argument"),
    (["OLD", "NEW", "-p", "1"], "-p/--pid"),
    (["-p", "1", "OLD", "NEW"], "-p/--pid"),
    (["OLD", "NEW", "--duration", "1"], "--duration"),
    (["OLD", "NEW", "--frames", "3"], "--frames"),
    (["OLD", "NEW", "--max-blocks", "4096"], "--max-blocks"),
    (["OLD", "NEW", "--stats"], "--stats"),
    (["OLD", "NEW", "--format", "pickle"], "--format pickle"),
    (["OLD", "NEW", "--format", "json"], "--format json"),
    (["OLD", "NEW", "--format", "text"], "--format text"),
    (["OLD", "NEW", "--format", "bogus"], "'bogus'"),
    (["OLD", "NEW", "--format"], "missing argument"),
    (["OLD", "NEW", "--cumulative", "--format", "traceback"], "--cumulative"),
    (["--format=traceback", "OLD", "NEW", "--cumulative"], "--cumulative"),
    (["OLD", "NEW", "--count", "0"], "--count"),
    (["OLD", "NEW", "--count", "x"], "--count"),
    (["OLD", "NEW", "--count", "1000001"], "--count"),
    (["OLD", "NEW", "-o", ""], "-o/--output"),
    (["OLD", "", ], "file name for NEW"),
    (["OLD", "NEW", "--bogus"], "unknown option '--bogus'"),
])
def test_bad_command_line(dumps, args, needle):
    old, new, so, sn = dumps
    argv = [{"OLD": old, "NEW": new}.get(a, a) for a in args]
    rc, out, err = run_hawk("compare", *argv)
    assert_one_error(rc, out, err, 2, needle)


def test_help_mentions_compare():
    rc, out, err = run_hawk("compare", "--help")
    assert rc == 0 and err == []
    assert b"hawk-bpf compare OLD NEW" in out


def test_unknown_subcommand_is_a_pid_less_error():
    """A word that is no subcommand is refused in one line, not guessed."""
    rc, out, err = run_hawk("bogus")
    assert_one_error(rc, out, err, 2, "unexpected argument 'bogus'")


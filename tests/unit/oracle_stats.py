"""Oracle for test_stats.c: random traces fed to the REAL tracemalloc.

usage: oracle_stats.py SEED NTRACES OLD_MODE [KEY]
OLD_MODE: mixed (old shares part of new), same, empty_old, empty_new.
KEY: only this key type (default: all three).
Prints one JSON document: the traces (frames most recent first, as
_tracemalloc gives them) and, for every key type and cumulative flag,
str() and fields of Snapshot.statistics() and Snapshot.compare_to().
"""
import os
import random
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_common import print_json, raw_traces  # noqa: E402

FILENAMES = [
    "/srv/app/main.py", "/srv/app/models.py", "/srv/app/caf\u00e9.py",
    "/srv/\u65e5\u672c/\u6a21\u5757.py", "/x/\U0001F40D.py", "/x/\uff01.py",
    "/x/e\u0301a.py", "/x/\u00e9a.py", "rel/mod.py", "<string>",
    "<frozen importlib._bootstrap>", "/a/b.py", "/a/b.pyc", "/a/B.py", "/a/b",
    "/usr/lib/python3.11/json/encoder.py", "ZZ.py", "",
]


def make_traces(rnd, n, pool):
    traces = []
    for _ in range(n):
        if pool and rnd.random() < 0.3:
            # extend an existing traceback: shares prefixes and suffixes
            base = list(rnd.choice(pool))
            frame = (rnd.choice(FILENAMES), rnd.randint(0, 30))
            if len(base) < 5:
                base.insert(rnd.randrange(len(base) + 1), frame)
            tb = tuple(base)
        elif pool and rnd.random() < 0.5:
            tb = rnd.choice(pool)
        else:
            nframe = rnd.randint(1, 5)
            tb = []
            for _ in range(nframe):
                if tb and rnd.random() < 0.2:
                    tb.append(rnd.choice(tb))       # recursion: repeated frame
                else:
                    tb.append((rnd.choice(FILENAMES), rnd.randint(0, 30)))
            tb = tuple(tb)
        pool.append(tb)
        if rnd.random() < 0.4:
            size = rnd.choice((0, 8, 16, 24, 32, 64))   # ties on size
        else:
            size = rnd.randint(0, 10**7)
        traces.append((0, size, tb, len(tb) + rnd.choice((0, 0, 3))))
    return traces


def frames_raw(traceback):
    # back to most-recent-first, like model.h
    return [[f.filename, f.lineno] for f in reversed(traceback)]


def main():
    seed, n, old_mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rnd = random.Random(seed)
    pool = []
    new = make_traces(rnd, n, pool)
    if old_mode == "same":
        old = list(new)
    elif old_mode == "empty_old":
        old = []
    elif old_mode == "empty_new":
        old, new = new, []
    else:
        old = [t for t in new if rnd.random() < 0.5]
        old += make_traces(rnd, n // 2, pool)
        rnd.shuffle(old)
    new_snap = tracemalloc.Snapshot(new, 5)
    old_snap = tracemalloc.Snapshot(old, 5)
    cases = []
    keys = sys.argv[4:] or ("filename", "lineno", "traceback")
    for key in keys:
        for cumulative in (False, True):
            case = {"key": key, "cumulative": cumulative}
            try:
                stats = new_snap.statistics(key, cumulative)
                diffs = new_snap.compare_to(old_snap, key, cumulative)
            except ValueError as e:
                case["error"] = str(e)
            else:
                case["statistics"] = [[str(s), s.size, s.count, frames_raw(s.traceback)]
                                      for s in stats]
                case["compare"] = [[str(s), s.size, s.size_diff, s.count, s.count_diff,
                                    frames_raw(s.traceback)] for s in diffs]
            cases.append(case)

    print_json({
        "new": raw_traces(new), "old": raw_traces(old),
        "total_new": sum(t[1] for t in new), "total_old": sum(t[1] for t in old),
        "cases": cases})


if __name__ == "__main__":
    main()

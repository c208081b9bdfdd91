"""Oracle for test_bigsizes.c: the REAL tracemalloc on traces whose sizes
reach the top of size_t, so that statistics pass 2^64 and differences
fall below -2^64 (Python's ints do not wrap).

usage: oracle_bigsizes.py SEED
Prints one JSON document; every size is a decimal string (JSON readers
such as jansson stop at 2^63):
  {"new": traces, "old": traces, "total_new", "total_old",
   "cases": [{"key", "cumulative",
              "statistics": [[str, size, count, frames]...],
              "compare": [[str, size, size_diff, count, count_diff, frames]...]}],
   "ratios": [[a, b, (a / b).hex()]...],
   "formats": [[v, _format_size(v, False), _format_size(v, True),
                format_bytes(v)]...]}
traces: [[size, frames most recent first, total_nframe]...].
"""
import os
import random
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_common import format_bytes, print_json  # noqa: E402

TOP = 2**64 - 1
BIG = [TOP, TOP - 1, 2**63, 2**63 - 1, 2**63 + 1, 2**53 + 1, 2**62 * 3,
       10**19, 18446744073709550591]
FRAMES = [("/srv/big.py", 1), ("/srv/big.py", 2), ("/srv/huge.py", 7),
          ("/srv/other.py", 3), ("<string>", 0)]


def traceback(rnd):
    tb = [rnd.choice(FRAMES)]
    for _ in range(rnd.randint(0, 3)):
        # repeated frames: cumulative counts a trace once per occurrence
        tb.append(rnd.choice(tb + FRAMES))
    return tuple(tb)


def traces(rnd, n):
    out = []
    for _ in range(n):
        size = rnd.choice(BIG) if rnd.random() < 0.7 else rnd.randint(0, 2**64 - 1)
        if rnd.random() < 0.1:
            size = rnd.randint(0, 5000)
        tb = traceback(rnd)
        out.append((0, size, tb, len(tb)))
    return out


def frames_raw(tb):
    return [[f.filename, f.lineno] for f in reversed(tb)]


def raw(traces):
    return [[str(size), [list(f) for f in tb], total] for _, size, tb, total in traces]


def ratios(rnd):
    # size / count, Python's correctly rounded int / int, where the double
    # of a size alone already rounds; near-ties too
    out = []
    for _ in range(3000):
        a = rnd.randint(0, 2**rnd.randint(1, 100))
        b = rnd.randint(1, 2**rnd.randint(1, 40))
        if rnd.random() < 0.3:
            a = a // b * b + b // 2     # a / b lands on .5 below the last digit
        out.append([str(a), b, (a / b).hex()])
    return out


def formats(rnd):
    vals = {2**k + d for k in range(50, 100) for d in (-1, 0, 1)}
    vals |= {rnd.randint(0, 2**rnd.randint(53, 100)) for _ in range(2000)}
    vals |= {-v for v in list(vals)}
    return [[str(v), tracemalloc._format_size(v, False), tracemalloc._format_size(v, True),
             format_bytes(v)] for v in sorted(vals)]


def main():
    rnd = random.Random(int(sys.argv[1]))
    new = traces(rnd, 60)
    old = [t for t in new if rnd.random() < 0.4] + traces(rnd, 30)
    snew, sold = tracemalloc.Snapshot(new, 4), tracemalloc.Snapshot(old, 4)
    cases = []
    for key in ("filename", "lineno", "traceback"):
        for cumulative in (False, True) if key != "traceback" else (False,):
            cases.append({
                "key": key, "cumulative": cumulative,
                "statistics": [[str(s), str(s.size), s.count, frames_raw(s.traceback)]
                               for s in snew.statistics(key, cumulative)],
                "compare": [[str(s), str(s.size), str(s.size_diff), s.count,
                             s.count_diff, frames_raw(s.traceback)]
                            for s in snew.compare_to(sold, key, cumulative)]})
    print_json({"new": raw(new), "old": raw(old),
                "total_new": str(sum(t[1] for t in new)),
                "total_old": str(sum(t[1] for t in old)),
                "cases": cases, "ratios": ratios(rnd), "formats": formats(rnd)})


main()

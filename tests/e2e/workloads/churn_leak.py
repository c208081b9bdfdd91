"""(e) A leak inside churn: about a million small objects are built and
dropped while a known few are kept: one dict in 100 (with its contents) from
the same line as the dropped ones, one string in 64, one bytes per rebuild.
The dropped ones must not be reported.

Objects that CPython recycles through a free list (lists, tuples, dicts, and
from 3.14 ints) are made at one line each, and gc.collect() empties the free
lists between the phases, so that this workload does not depend on how a
tracer charges recycled objects (free_list_reuse.py is about that): the only
new ints are the loop's own."""
import gc
import sys

import _harness


def churn(n):
    kept, kept_junk = [], []
    for i in range(n):
        junk = {"n": i, "s": "x%d" % i, "l": [i, i, i]}
        pair = (junk, str(i), (junk,) * 3)
        if i % 64 == 0:
            kept.append("kept-%08d" % i * 4)
        if i % 100 == 0:
            kept_junk.append(junk)
        del junk, pair
    return kept, kept_junk


def rebuild(rounds):
    kept = []
    for r in range(rounds):
        table = {j: [j] * 4 for j in range(5000)}
        kept.append(bytes(3000 + r))
        del table
    return kept


def allocate(args):
    kept = churn(args.n)
    gc.collect()
    return kept, rebuild(20)


if __name__ == "__main__":
    ap = _harness.parser()
    ap.add_argument("--n", type=int, default=80_000)
    sys.exit(_harness.main(allocate, ap))

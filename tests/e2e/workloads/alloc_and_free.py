"""Allocations the window sees freed and kept: 100 rounds of 1000
200-byte objects made and dropped at one line, the last round kept; for
pprof's alloc_* (everything allocated) against inuse_* (what is left)."""
import sys

import _harness


def rounds(n):
    kept = None
    for _ in range(n):
        kept = [bytes(200) for _ in range(1000)]
    return kept


def allocate(args):
    return [rounds(100)]


if __name__ == "__main__":
    sys.exit(_harness.main(allocate))

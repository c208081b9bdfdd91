"""Allocate and keep 1 M small blocks (the memory benchmark).

The timed part builds a list of 1 M distinct ints (one 32-byte block
each, plus the list's array); with --hold they stay alive until stdin
closes, so a tracer holds 1 M live traced blocks.
"""
import sys

from _handshake import run


def timed(_, args):
    n = max(1, round(1_000_000 * args.scale))
    base = 10 ** 9
    return list(range(base, base + n))


if __name__ == "__main__":
    sys.exit(run(timed, doc=__doc__))

"""--stats: blocks of known sizes in buckets the interpreter's own
background allocations (the wait loop, printing) do not reach."""
import sys

import _harness


def allocate(args):
    # Lists made at their full size first: a growing list's transient item
    # arrays would land in the buckets too (how many depends on the
    # version's growth pattern); no calls per block (3.10's frame objects
    # are 256-511 B).
    a = [None] * 3000
    for i in range(3000):
        a[i] = bytes(300 + i % 150)                      # 256-511 B
    b = [None] * 1000
    for i in range(1000):
        b[i] = bytes(2500 + i)                           # 2048-4095 B
    c = [None] * 200
    for i in range(200):
        c[i] = bytearray(20000)                          # 16384-32767 B
    return [a, b, c]


if __name__ == "__main__":
    sys.exit(_harness.main(allocate))

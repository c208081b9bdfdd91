"""Objects recycled through CPython's free lists: tracemalloc charges a
block taken from a free list to the traceback where it is reused (through
_Py_NewReference), not where it was first allocated.  3000 tuples are made
and dropped at one line (2000 of them stay in the tuple free list), then
2000 are made at another line, all from the free list."""
import sys

import _harness


def make_junk(n):
    return [(i, i, i) for i in range(n)]


def reuse(n):
    return [(i, -i, 0) for i in range(n)]


def allocate(args):
    junk = make_junk(3000)
    del junk
    return reuse(2000)


if __name__ == "__main__":
    sys.exit(_harness.main(allocate))

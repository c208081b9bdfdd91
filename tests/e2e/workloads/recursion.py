"""(d) Deep recursion: blocks allocated 150 calls deep (and at a few depths
on the way down), so tracebacks are longer than --frames 30 and shorter
than --frames 200."""
import sys

import _harness


def recurse(depth, keep):
    if depth == 0:
        keep.append([bytes(500) for _ in range(1000)])
        return keep
    if depth % 50 == 0:
        keep.append(bytearray(100_000 + depth))
    return recurse(depth - 1, keep)


def allocate(args):
    return recurse(args.depth, [])


if __name__ == "__main__":
    ap = _harness.parser()
    ap.add_argument("--depth", type=int, default=150)
    sys.exit(_harness.main(allocate, ap))

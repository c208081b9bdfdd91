"""(a) Retained objects of several kinds at distinct lines: bytes blobs,
objects with attributes, a dict of strings, one big bytearray."""
import sys

import _harness


class Node:
    def __init__(self, i):
        self.i = i * 1000
        self.name = "node-%06d" % i
        self.tags = [i, i + 1, i + 2]


def make_blobs(n):
    return [bytes(1000 + i % 7) for i in range(n)]


def make_nodes(n):
    return [Node(i) for i in range(n)]


def make_table(n):
    return {"key-%d" % i: "value-%d" % i * 3 for i in range(n)}


def odds_and_ends():
    return [
        [None] * 100,
        "a" * 200,
        b"b" * 300,
        tuple(range(300, 340)),
        {"x": 1, "y": 2},
        set(range(1000, 1020)),
        frozenset("hawk"),
        bytearray(400),
        memoryview(b"c" * 500),
    ]


def allocate(args):
    keep = [odds_and_ends()]
    keep.append(make_blobs(3000))
    keep.append(make_nodes(6000))
    keep.append(make_table(10000))
    keep.append(bytearray(4_000_000))
    return keep


if __name__ == "__main__":
    sys.exit(_harness.main(allocate))

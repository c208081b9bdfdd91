"""(f) Blocks grown (and shrunk) by realloc: bytearrays, lists and strings
grown with += / append, interleaved so the allocator has to move them.
tracemalloc charges a reallocated block to the line of the last realloc."""
import sys

import _harness


def grow_bytearrays(n):
    a, b = bytearray(), bytearray()
    for _ in range(n):
        a += b"a" * 37
        b += b"b" * 53
    return a, b


def grow_list(n):
    items = []
    for _ in range(n):
        items.append(None)
    return items


def grow_str(n):
    s = "start"
    for i in range(n):
        s += "xyz"
    return s


def shrink_list(n):
    items = [None] * n
    del items[n // 4:]
    return items


def allocate(args):
    return grow_bytearrays(20000), grow_list(100_000), grow_str(50_000), \
        shrink_list(200_000)


if __name__ == "__main__":
    sys.exit(_harness.main(allocate))

"""Calls tracemalloc.start() halfway through allocate(): 20,000 blocks
before, 20,000 after (the allocator tables change under a tracer)."""
import tracemalloc

import _harness


def allocate(args):
    keep = [bytes(100 + i % 50) for i in range(20000)]
    tracemalloc.start()
    keep += [bytes(100 + i % 50) for i in range(20000)]
    return keep


if __name__ == "__main__":
    raise SystemExit(_harness.main(allocate))

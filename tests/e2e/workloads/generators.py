"""(c) Generators and coroutines: blocks allocated inside generator bodies
(also through yield from), by their consumer, and inside asyncio tasks that
interleave at their awaits."""
import asyncio
import sys

import _harness


def produce(n):
    for i in range(n):
        yield "gen-item-%06d" % i


def chunks(n):
    buf = []
    for i in range(n):
        buf.append(bytes(200))
        if len(buf) == 50:
            yield buf
            buf = []


def delegate(n):
    yield from produce(n)
    yield from chunks(n)


async def fetch(i):
    await asyncio.sleep(0)
    data = bytearray(3000 + i % 5)
    await asyncio.sleep(0)
    return data


async def worker(k, n):
    got = []
    for i in range(n):
        got.append(await fetch(i))
        got.append("task-%d-%d" % (k, i) * 5)
    return got


async def run_tasks():
    return await asyncio.gather(*(worker(k, 100) for k in range(4)))


def allocate(args):
    keep = []
    keep.append([s.upper() for s in produce(8000)])
    keep.append(list(chunks(3000)))
    keep.append(list(delegate(2000)))
    keep.append(asyncio.run(run_tasks()))
    return keep


if __name__ == "__main__":
    sys.exit(_harness.main(allocate))

"""Allocation churn: build dicts of small objects and drop them.

Each round fills a dict with ~20 k entries, each a small object graph
(string key, instance with attributes, tuple, short list), walks it, and
drops it.  About 3 M allocations and as many frees at --scale 1.
"""
import sys

from _handshake import run


class Item:
    def __init__(self, i, tag):
        self.i = i
        self.tag = tag
        self.pair = (i, tag)


def build(n, base):
    d = {}
    for i in range(base, base + n):
        d["key-" + str(i)] = Item(i, [i & 7, i & 3])
    return d


def timed(_, args):
    rounds = max(1, round(14 * args.scale))
    total = 0
    for r in range(rounds):
        d = build(20000, 1000 + r * 20000)
        for k, v in d.items():
            total += v.pair[0] + len(k)
        del d
    return total


if __name__ == "__main__":
    sys.exit(run(timed, doc=__doc__))

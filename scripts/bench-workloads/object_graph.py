"""Build and drop object graphs with reference cycles.

Each round builds a graph of Node objects (attributes, child lists,
parent back-references, a dict index and cross links), so dropping it
leaves cycles that only the cyclic GC frees; gc.collect() ends each round.
"""
import gc
import sys

from _handshake import run


class Node:
    def __init__(self, name, parent):
        self.name = name
        self.parent = parent          # back-reference: a cycle
        self.children = []
        self.attrs = {"depth": parent.attrs["depth"] + 1 if parent else 0}
        self.links = None


def build(n):
    root = Node("root", None)
    index = {"root": root}
    nodes = [root]
    for i in range(1, n):
        parent = nodes[(i - 1) // 4]
        node = Node("n%d" % i, parent)
        parent.children.append(node)
        index[node.name] = node
        nodes.append(node)
    for i, node in enumerate(nodes):
        node.links = [nodes[(i * 7) % n], index["n%d" % ((i * 13) % n or 1)]]
    root.index = index
    return root


def timed(_, args):
    rounds = max(1, round(12 * args.scale))
    seen = 0
    for _ in range(rounds):
        root = build(10000)
        seen += len(root.index)
        del root
        gc.collect()
    return seen


if __name__ == "__main__":
    sys.exit(run(timed, doc=__doc__))

"""(b) Threads: workers run at the same time (the GIL is switched very
often) and allocate at their own lines, and through one shared helper whose
blocks must be told apart by the caller frame of the right thread."""
import sys
import threading

import _harness


def fill(n, size):
    return [bytes(size) for _ in range(n)]


def worker_a(out, barrier):
    barrier.wait()
    got = []
    for _ in range(40):
        got.append(fill(50, 300))
        got.append(["a-%d" % i for i in range(100)])
    out["a"] = got


def worker_b(out, barrier):
    barrier.wait()
    got = []
    for _ in range(40):
        got.append(fill(50, 700))
        got.append([(i, -i) for i in range(100)])
    out["b"] = got


def worker_c(out, barrier):
    barrier.wait()
    got = []
    for _ in range(40):
        got.append(fill(50, 1100))
        got.append(bytearray(4000))
    out["c"] = got


def allocate(args):
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    out = {}
    barrier = threading.Barrier(3)
    threads = [threading.Thread(target=w, args=(out, barrier))
               for w in (worker_a, worker_b, worker_c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.setswitchinterval(old)
    return out


if __name__ == "__main__":
    sys.exit(_harness.main(allocate))

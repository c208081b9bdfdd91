"""Children forked while the parent is traced, every way servers fork:
fork + os._exit after allocating, subprocess with preexec_fn (a real fork,
not vfork), a fork-based multiprocessing pool, and one child forked now
that allocates only after the window ended (released when stdin closes).
Prints "forks failed=N of M" after the forks; exits with the number of
late children that failed."""
import multiprocessing
import os
import subprocess
import sys

import _harness

LATE = []


def child_work():
    junk = [bytes(100 + i % 50) for i in range(20000)]
    return sum(len(b) for b in junk)


def square(x):
    return len([str(i) for i in range(x)])


def late_child():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)               # blocks until the parent's stdin closes
        os._exit(0 if child_work() > 0 else 3)
    os.close(r)
    LATE.append((pid, w))


def allocate(args):
    failed = total = 0
    for _ in range(40):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if child_work() > 0 else 3)
        _, status = os.waitpid(pid, 0)
        total += 1
        failed += status != 0
    for _ in range(40):
        total += 1
        failed += subprocess.run(["/bin/true"], preexec_fn=lambda: None).returncode != 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2, maxtasksperchild=3) as pool:
        got = pool.map(square, range(100, 130), chunksize=1)
    total += 1
    failed += got != [square(x) for x in range(100, 130)]
    late_child()
    print(f"forks failed={failed} of {total}", flush=True)
    return [bytes(1000) for _ in range(100)]


_harness.main(allocate)
bad = 0
for pid, w in LATE:
    os.write(w, b"x")
    _, status = os.waitpid(pid, 0)
    bad += status != 0
sys.exit(bad)

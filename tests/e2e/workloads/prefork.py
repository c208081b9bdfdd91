"""A pre-fork master, as gunicorn's: it allocates like any workload, then
on "fork" (a stdin command) forks a worker. The worker prints "worker
PID", waits for FILE.worker, allocates the same way, prints "worker
allocated" and holds its blocks until FILE.end appears or the master
goes. Oracle mode (--tracemalloc) is the harness's: allocate() once."""
import gc
import os
import sys
import time

import _harness


def make_records(n):
    return [{"id": i, "name": "rec-%05d" % i} for i in range(n)]


def make_buffers(n):
    return [bytearray(2048 + i % 5) for i in range(n)]


def allocate(args):
    return [make_records(4000), make_buffers(1500), bytes(3_000_000)]


def worker(args, master):
    _harness.say("worker", os.getpid())
    _harness.wait_for(args.wait_for + ".worker")
    gc.collect()
    keep = allocate(args)
    gc.collect()
    _harness.say("worker allocated")
    while not os.path.exists(args.wait_for + ".end") and os.getppid() == master:
        time.sleep(0.05)
    del keep
    os._exit(0)


def target(args):
    _harness.say("ready", os.getpid())
    _harness.say("tables", "{}")
    _harness.wait_for(args.wait_for)
    gc.collect()
    keep = allocate(args)
    gc.collect()
    _harness.say("allocated")
    master = os.getpid()
    for line in sys.stdin:
        if line.strip() == "fork" and os.fork() == 0:
            worker(args, master)
    return 0 if keep else 1


if __name__ == "__main__":
    a, _ = _harness.parser().parse_known_args()
    sys.exit(target(a) if a.wait_for else _harness.main(allocate))

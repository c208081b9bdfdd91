"""Handshake shared by the scripts/bench workloads.

A workload calls run(timed, prepare=None).  prepare(args) runs first and
its result is handed to timed(state, args); neither the interpreter start
nor prepare() is timed.  With --wait-for FILE the workload prints
"ready PID" and waits until FILE exists before the timed part, so a tracer
can attach first.  The timed part's wall time and the CPU time of all the
process's threads (user and system: the time of the probes the process
hits is in it) in seconds are printed on the last line.  With --hold the result of the timed part is kept alive after
that line until standard input closes (the memory benchmark measures the
tracer while the blocks are live).  With --floor-hook LIB, the bench's
pass-through allocator hook (scripts/bench-hook/floor_hook.c, built) is
installed before the timed part: the cost any allocator hook pays.
"""
import argparse
import os
import sys
import time


def run(timed, prepare=None, doc=None):
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--wait-for", metavar="FILE",
                    help='print "ready PID", wait for FILE, then run')
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the amount of work (default 1)")
    ap.add_argument("--hold", action="store_true",
                    help="keep the result alive until stdin closes")
    ap.add_argument("--floor-hook", metavar="LIB",
                    help="install this pass-through allocator hook first")
    args = ap.parse_args()
    state = prepare(args) if prepare else None
    if args.floor_hook:
        import ctypes
        if ctypes.PyDLL(args.floor_hook).hawk_floor_hook_install() != 0:
            raise SystemExit("floor hook: not installed")
    if args.wait_for:
        print("ready", os.getpid(), flush=True)
        while not os.path.exists(args.wait_for):
            time.sleep(0.005)
    t, c = time.perf_counter(), time.process_time()
    kept = timed(state, args)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"{dt:.6f} {cpu:.6f}", flush=True)
    if args.hold:
        sys.stdin.read()
    del kept
    return 0

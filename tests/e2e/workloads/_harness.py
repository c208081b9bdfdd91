"""Handshake shared by the e2e workloads (a model: shared/workloads/retain.py).

A workload module defines allocate(args) -> objects to keep alive, and calls
main(allocate).  Modes:

  --tracemalloc OUT --frames N   the oracle: tracemalloc.start(N) right before
                                 allocate(), Snapshot.dump(OUT) right after
                                 it has printed "allocated".
  --wait-for FILE                the target: prints "ready PID" and
                                 "tables JSON" (the allocator tables as
                                 PyMem_GetAllocator sees them), waits for FILE,
                                 allocates, prints "allocated", then holds the
                                 objects and answers commands read from stdin:
                                   tables   print the tables again
                                   changes  print "changes N": how often the
                                            --watch-tables thread saw the
                                            tables differ from the start
                                   exit     exit normally, the objects still
                                            referenced from a global
                                   _exit    os._exit(0) at once
                                   exec     exec an idle interpreter (same
                                            arguments, so selectors match)
                                   EOF      return (the objects are dropped)
  --watch-tables                 poll the tables every 0.5 ms in a thread;
                                 print "redirected" once the object
                                 domain's realloc slot has changed.

A workload may pass prelude(args): run after FILE appears and before
allocate(), then the workload waits for FILE.2 (skipped in oracle mode).

Everything a test compares is allocated inside allocate(), below the same
call line here, so the oracle and the traced run see identical stacks, and
from the same state: gc.collect() empties the free lists just before and
just after.
"""
import argparse
import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc


class _Allocator(ctypes.Structure):
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p),
                ("calloc", ctypes.c_void_p), ("realloc", ctypes.c_void_p),
                ("free", ctypes.c_void_p)]


_get_allocator = ctypes.pythonapi.PyMem_GetAllocator
_get_allocator.argtypes = [ctypes.c_int, ctypes.POINTER(_Allocator)]
_get_allocator.restype = None


def allocator_tables():
    """The raw, mem and object allocator tables of this interpreter."""
    out = {}
    for domain, name in enumerate(("raw", "mem", "obj")):
        a = _Allocator()
        _get_allocator(domain, ctypes.byref(a))
        out[name] = [a.ctx or 0, a.malloc or 0, a.calloc or 0, a.realloc or 0,
                     a.free or 0]
    return out


def parser():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wait-for", metavar="FILE")
    ap.add_argument("--tracemalloc", metavar="OUT")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--watch-tables", action="store_true")
    ap.add_argument("--seccomp", action="store_true",
                    help="run under a seccomp filter (one that allows all)")
    return ap


def say(*words):
    print(*words, flush=True)


def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.01)


_changes = 0
_kept = None


def watch(start):
    global _changes
    told = False
    while True:
        now = allocator_tables()
        if now != start:
            _changes += 1
        # A tracer's redirect ends with the object domain's realloc and
        # free slots: say when the first of the two has moved.
        if not told and now["obj"][3] != start["obj"][3]:
            say("redirected")
            told = True
        time.sleep(0.0005)


def hold(keep):
    global _kept
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "tables":
            say("tables", json.dumps(allocator_tables()))
        elif cmd == "changes":
            say("changes", _changes)
        elif cmd == "exit":
            _kept = keep
            return
        elif cmd == "_exit":
            os._exit(0)
        elif cmd == "exec":
            # a new image in the same process: an idle interpreter
            os.execv(sys.executable, [sys.executable, "-c",
                                      "import sys; sys.stdin.read()", *sys.argv[1:]])


def seccomp_allow_all():
    """Install a seccomp filter that allows every system call: the process
    then runs in seccomp mode 2, as it would in a container."""
    import ctypes

    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                    ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]

    libc = ctypes.CDLL(None, use_errno=True)
    insns = (Insn * 1)(Insn(0x06, 0, 0, 0x7fff0000))   # BPF_RET|BPF_K, ALLOW
    prog = Prog(1, insns)
    # PR_SET_NO_NEW_PRIVS (38), then PR_SET_SECCOMP (22), SECCOMP_MODE_FILTER
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(prog), 0, 0):
        raise OSError(ctypes.get_errno(), "cannot install a seccomp filter")


def main(allocate, ap=None, prelude=None):
    args = (ap or parser()).parse_args()
    if args.seccomp:
        seccomp_allow_all()
    if args.wait_for:
        say("ready", os.getpid())
        start = allocator_tables()
        say("tables", json.dumps(start))
        if args.watch_tables:
            threading.Thread(target=watch, args=(start,), daemon=True).start()
        wait_for(args.wait_for)
    if prelude and not args.tracemalloc:
        prelude(args)
        if args.wait_for:
            wait_for(args.wait_for + ".2")
    if args.tracemalloc:
        tracemalloc.start(args.frames)
    # Empty the interpreter's free lists (a full collection does) before and
    # after: tracemalloc charges an object taken from a free list to where it
    # is taken (_Py_NewReference), so what sits in them depends on history.
    # Emptied, the blocks of allocate() are charged the same way in both
    # modes, whatever runs after it (free_list_reuse.py tests reuse itself).
    gc.collect()
    keep = allocate(args)
    gc.collect()
    # The oracle's snapshot is taken where a tracer's window ends: after
    # "allocated" is printed.
    say("allocated")
    if args.tracemalloc:
        tracemalloc.take_snapshot().dump(args.tracemalloc)
        tracemalloc.stop()
    if args.wait_for:
        hold(keep)
    return 0 if keep is not None else 1

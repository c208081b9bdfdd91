"""The soak's target (tests/e2e/soak.py): three threads allocate and check
each round's checksum against one computed before any tracer came, and a
fourth forks children every way servers do (fork + os._exit, subprocess
with preexec_fn, a fork-based process pool), each child checking a
checksum too. Prints "ready PID"; answers "status" on stdin (read and written with
os.read/os.write: Python's buffered streams hold locks a forked child would
inherit held) with
"status rounds=R mismatches=M children=C failed=F first=WHAT"; at EOF
stops, prints a last status line and exits 0."""
import faulthandler
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
import zlib

PATTERNS = 8
lock = threading.Lock()
st = {"rounds": 0, "mismatches": 0, "children": 0, "failed": 0, "first": "-"}
stop = threading.Event()


def work(r):
    """Allocation-heavy and deterministic: bytes, str, lists, dicts, tuples."""
    items = []
    for i in range(600):
        k = (r * 31 + i) % 97
        items.append((bytes([k]) * (k % 50), str(k * i), [k] * (k % 7), {k: i}))
    return zlib.crc32(repr(items).encode())


EXPECTED = [work(r) for r in range(PATTERNS)]


def note(key, what=None):
    with lock:
        st[key] += 1
        if what and st["first"] == "-":
            st["first"] = what.replace(" ", "_")


def churn():
    r = 0
    while not stop.is_set():
        if work(r % PATTERNS) != EXPECTED[r % PATTERNS]:
            note("mismatches", f"round {r}")
        note("rounds")
        r += 1
        time.sleep(0.005)   # a service's pace, leaving the GIL to the forker


def child_ok():
    return work(3) == EXPECTED[3]


def forker():
    ctx = multiprocessing.get_context("fork")
    n = 0
    while not stop.is_set():
        pid = os.fork()
        if pid == 0:
            os._exit(0 if child_ok() else 3)
        _, status = os.waitpid(pid, 0)
        note("children")
        if status:
            note("failed", f"fork child status {status:#x}")
        r = subprocess.run(["/bin/true"], preexec_fn=lambda: None)
        note("children")
        if r.returncode:
            note("failed", f"preexec_fn child returned {r.returncode}")
        if n % 5 == 0:
            # Made here, in this thread, each time: a pool that forks its
            # replacement workers from its own thread could fork while
            # subprocess.run above holds its exec-error pipe open, and the
            # worker, which never execs, would keep that pipe from ever
            # ending (a hang of Python's, traced or not).
            try:
                with ctx.Pool(2) as pool:
                    got = pool.map(work, range(4), chunksize=1)
                ok = got == EXPECTED[:4]
            except Exception as e:      # BrokenProcessPool and the like
                ok, got = False, repr(e)
            note("children")
            if not ok:
                note("failed", f"pool gave {got}")
        n += 1
        time.sleep(0.01)


def say_status():
    """With os.write: a child forked while a thread held sys.stdout's lock
    would hang in its first flush (a hazard of forking with threads that
    servers avoid the same way)."""
    with lock:
        line = "status " + " ".join(f"{k}={v}" for k, v in st.items())
    os.write(1, (line + "\n").encode())


def main():
    # 3.12+ warns when a threaded process forks: that is what is tested here.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # The soak asks for every thread's stack (the children's too) if the
    # forker stalls.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    threads = [threading.Thread(target=churn) for _ in range(3)]
    threads.append(threading.Thread(target=forker))
    print(f"ready {os.getpid()}", flush=True)   # before any thread forks
    for t in threads:
        t.start()
    # os.read, not sys.stdin: a pool worker forked while this thread waits
    # in sys.stdin's read (holding its lock) would hang closing its stdin.
    buf = b""
    while chunk := os.read(0, 4096):
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip() == b"status":
                say_status()
    stop.set()
    for t in threads:
        t.join()
    say_status()
    return 0


if __name__ == "__main__":
    sys.exit(main())

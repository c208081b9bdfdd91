"""Target of test_freeze.py, for CPython 3.11. Worker threads:

  sleeper   time.sleep(2), timed;
  reader    one os.read of stdin, which the test writes to later;
  busy x2   a checksum over WORK steps, then spinning until the end; each
            publishes its step count in COUNTERS (a file, shared with mmap);
  spammer   (--signals) sends itself SIGRTMIN as fast as it can, while the
            test sends SIGRTMIN+1; every delivery is counted exactly through
            signal.set_wakeup_fd, which writes one byte per delivery.

Usage: target.py COUNTERS WORK [--signals]. Prints "ready" once every thread
runs; after stdin reaches EOF, prints one JSON line and exits 7.
`target.py --expect WORK` prints the checksums the busy threads must get.
"""
import fcntl
import json
import mmap
import os
import signal
import sys
import threading
import time

EXIT = 7
SEEDS = (1, 2)


def checksum(seed, work, counters=None, slot=0):
    s = seed
    for i in range(work):
        s = (s * 1103515245 + 12345 + i) & 0xFFFFFFFF
        if counters is not None and not i & 255:
            counters[slot] = i
    return s


def main():
    if sys.argv[1] == "--expect":
        print(json.dumps([checksum(seed, int(sys.argv[2])) for seed in SEEDS]))
        return 0
    path, work, with_signals = sys.argv[1], int(sys.argv[2]), "--signals" in sys.argv
    with open(path, "r+b") as f:
        counters = memoryview(mmap.mmap(f.fileno(), 64)).cast("Q")
    stop = threading.Event()
    res = {"checksums": [None, None], "errors": []}

    def guarded(fn):
        def run(*args):
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - reported to the test
                res["errors"].append(f"{fn.__name__}: {e!r}")
        return run

    @guarded
    def sleeper():
        t0 = time.monotonic()
        time.sleep(2)
        res["sleep"] = time.monotonic() - t0

    @guarded
    def reader():
        res["read"] = os.read(0, 256).decode()

    @guarded
    def busy(slot):
        res["checksums"][slot] = checksum(SEEDS[slot], work, counters, slot)
        n = work
        while not stop.is_set():
            n += 1
            counters[slot] = n

    got = {}
    if with_signals:
        r, w = os.pipe()
        for fd in (r, w):
            fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)
        signal.set_wakeup_fd(w, warn_on_full_buffer=True)
        for sig in (signal.SIGRTMIN, signal.SIGRTMIN + 1):
            signal.signal(sig, lambda *_: None)

        def drain():
            try:
                data = os.read(r, 65536)
            except BlockingIOError:
                return
            for sig in set(data):
                got[sig] = got.get(sig, 0) + data.count(sig)

        @guarded
        def spammer():
            me, sent = threading.get_ident(), 0
            while not stop.is_set():
                signal.pthread_kill(me, signal.SIGRTMIN)
                sent += 1
                drain()
            res["self_sent"] = sent

    threads = [threading.Thread(target=sleeper), threading.Thread(target=reader),
               threading.Thread(target=busy, args=(0,)), threading.Thread(target=busy, args=(1,))]
    if with_signals:
        threads.append(threading.Thread(target=spammer))
    for t in threads:
        t.start()
    print("ready", flush=True)
    threads[1].join()
    while os.read(0, 4096):
        pass
    stop.set()
    for t in threads:
        t.join()
    if with_signals:
        drain()
        res["self_got"] = got.get(signal.SIGRTMIN, 0)
        res["ext_got"] = got.get(signal.SIGRTMIN + 1, 0)
    print(json.dumps(res), flush=True)
    return EXIT


if __name__ == "__main__":
    sys.exit(main())

"""A small stand-in for a Python service, for `make demo`.

A request loop builds JSON responses and throws them away, except that a
cache keeps every tenth one forever (the leak), and a worker thread builds
reports it keeps. hawk-bpf attached for a few seconds should name the leaking
lines: the cache insert and the report builder.
"""
import json
import sys
import threading
import time

CACHE = {}
REPORTS = []


def handle(i):
    body = {"id": i, "items": [{"n": k, "name": "item-%d" % k} for k in range(20)]}
    text = json.dumps(body)
    if i % 10 == 0:
        CACHE[i] = text.encode()          # the leak: never evicted
    return len(text)


def reporter(stop):
    while not stop.is_set():
        REPORTS.append(bytearray(4096))   # kept: grows by 4 KiB every 10 ms
        time.sleep(0.01)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    stop = threading.Event()
    t = threading.Thread(target=reporter, args=(stop,), daemon=True)
    t.start()
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        handle(i)
        i += 1
        if i % 100 == 0:
            time.sleep(0.001)
    stop.set()


if __name__ == "__main__":
    main()

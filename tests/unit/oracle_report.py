"""Oracle for test_report.c: Hawk's reference renderer over the REAL
tracemalloc, with source lines from files written to DIR.

usage: oracle_report.py DIR SEED
Prints {"new": traces, "old": traces, "cases": [{"key", "cumulative",
"interval", "count", "expected": report, "dump": json.dumps(report,
indent=2)}...]}; traces as [size, frames most recent first, total_nframe].
"""
import json
import linecache
import os
import random
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_common import format_bytes, print_json, raw_traces  # noqa: E402

SOURCES = {
    "app.py": "import json\n\ndef handler(req):\n    data = [0] * 1000\n"
              "    return json.dumps(data)\n\nclass Caf\u00e9:\n"
              "    name = 'caf\u00e9 \u65e5\u672c \U0001F40D'\n",
    "quotes.py": "s = \"double \\\"quoted\\\" \\\\ backslash\"\n"
                 "t = '\x7f del and \x1f unit sep inside'\n\tindented = True   \n",
    "\u6a21\u5757.py": "\u3000x = '\u5168\u89d2'\u3000\n\n",
    "crlf.py": "a = 1\r\nb = [None] * 10\r\n",
}
MISSING = ["/srv/missing.py", "/srv/we\"ird\\name.py", "/srv/del\x7f.py",
           "<frozen importlib._bootstrap>", "<string>"]


# Hawk's renderer, as given in the hawk-bpf brief
def format_lineno(top_stats, count=10):
    for stat in top_stats[:count]:
        frame = stat.traceback[0]
        code_line = linecache.getline(frame.filename, frame.lineno).strip()
        yield {"stat": str(stat), "mem_blocks_count": stat.count,
               "mem_blocks_size_bytes": stat.size,
               "mem_blocks_size": format_bytes(stat.size),
               "filename": frame.filename, "lineno": frame.lineno, "code": code_line}


def format_traceback(top_stats, count=10):
    for stat in top_stats[:count]:
        yield {"mem_blocks_count": stat.count, "mem_blocks_size_bytes": stat.size,
               "mem_blocks_size": format_bytes(stat.size),
               "traceback": stat.traceback.format()}


def report(new, old, key, cumulative, count):
    heap = sum(t[1] for t in new.traces._traces)
    if old is None:
        top = new.statistics(key, cumulative=cumulative)
    else:
        top = new.compare_to(old, key, cumulative=cumulative)
    fmt = format_traceback if key == "traceback" else format_lineno
    doc = {"stats": list(fmt(top, count)),
           "heap_current_bytes": heap, "heap_current": format_bytes(heap)}
    if old is not None:
        old_heap = sum(t[1] for t in old.traces._traces)
        doc["heap_diff_bytes"] = heap - old_heap
        doc["heap_diff"] = format_bytes(heap - old_heap)
    return doc


def make_traces(rnd, n, frames):
    traces = []
    for _ in range(n):
        tb = tuple(rnd.choice(frames) for _ in range(rnd.randint(1, 4)))
        size = rnd.choice((8, 16, 64, rnd.randint(0, 10 ** 7)))
        traces.append((0, size, tb, len(tb)))
    return traces


def main():
    top, rnd = os.path.realpath(sys.argv[1]), random.Random(int(sys.argv[2]))
    names = []
    for name, text in SOURCES.items():
        path = os.path.join(top, name)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        names.append(path)
    frames = []
    for _ in range(40):
        name = rnd.choice(names + names + MISSING)
        last = SOURCES.get(os.path.basename(name), "\n" * 8).count("\n") + 1
        frames.append((name, rnd.randint(0, last)))
    new = make_traces(rnd, 400, frames)
    old = [t for t in new if rnd.random() < 0.6] + make_traces(rnd, 100, frames)
    snew, sold = tracemalloc.Snapshot(new, 4), tracemalloc.Snapshot(old, 4)
    cases = []
    for key in ("lineno", "filename", "traceback"):
        for cumulative in (False, True) if key != "traceback" else (False,):
            for interval in (False, True):
                for count in (10, 3, 0, 100000):
                    doc = report(snew, sold if interval else None, key, cumulative, count)
                    cases.append({"key": key, "cumulative": cumulative, "interval": interval,
                                  "count": count, "expected": doc,
                                  "dump": json.dumps(doc, indent=2)})

    print_json({"new": raw_traces(new), "old": raw_traces(old), "cases": cases})


main()

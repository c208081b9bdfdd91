"""File names that are not UTF-8 are reported as Python holds them: with
surrogate escapes (os.fsdecode), in JSON as "\\udcXX" like json.dumps, in
pickles as tracemalloc's own (issue #14 §5)."""
import json
import os
import pickle

from helpers import Hawk, Workload

NAMES = [b"/tmp/caf\xe9.py", b"/tmp/\xff\xfe-bytes", b"/tmp/mixed-\xc3\xa9-\xe9",
         "/tmp/\U0010d800-private".encode(), "/tmp/\U0010fffe-nonchar".encode()]


def run(procs, tmp_path, python, *args):
    wl = Workload(procs, python, "odd_names.py", tmp_path, "--names", *(n.hex() for n in NAMES))
    hawk = Hawk(procs, wl.pid, "--duration", "600", "--count", "100", *args)
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    rc, out, err = hawk.stop()
    assert rc == 0, err
    return out


def test_json_names_as_python_writes_them(procs, tmp_path, python):
    out = run(procs, tmp_path, python)
    want = {os.fsdecode(n) for n in NAMES}
    got = {s["filename"] for s in json.loads(out)["stats"] if s["lineno"] == 1}
    assert want <= got, (want - got, got)
    # Byte for byte what json.dumps writes for them (ensure_ascii).
    for n in want:
        assert json.dumps(n).encode() in out, n


def test_pickle_names_as_tracemalloc_holds_them(procs, tmp_path, python):
    out = run(procs, tmp_path, python, "--format", "pickle")
    snap = pickle.loads(out)
    got = {t[2][0][0] for t in snap.traces._traces}
    assert {os.fsdecode(n) for n in NAMES} <= got

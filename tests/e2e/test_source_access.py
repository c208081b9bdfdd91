"""Source lines are read with the traced process's own credentials (issue
#14 §2): root's report never shows a line the target could not read. The
oracle is the target's own linecache, run as the same user with the same
groups; a FIFO gives "" (only regular files are read, where linecache
would block on it)."""
import json
import linecache
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import PYTHONS, WORKLOADS, Hawk, Workload

PYTHON = PYTHONS["debian-3.11.2"][0]   # pyenv's live under /root, closed to nobody
NOBODY, GROUP = 65534, 4242
AS_NOBODY = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={GROUP}")


@pytest.fixture
def files():
    """A world-searchable directory holding the workload and line-1 files:
    {name: path}."""
    d = Path(tempfile.mkdtemp(prefix="hawk-source-", dir="/tmp"))
    os.chmod(d, 0o755)
    for f in ("_harness.py", "foreign_source.py"):
        shutil.copy(WORKLOADS / f, d / f)
        os.chmod(d / f, 0o644)

    def put(name, text, mode, gid=0):
        p = d / name
        p.parent.mkdir(exist_ok=True)
        p.write_text(text + "\n")
        os.chown(p, 0, gid)
        os.chmod(p, mode)
        return str(p)

    out = {
        "secret": put("secret", "SECRET only root may read this", 0o600),
        "public": put("public", "public = 'anyone may read this'", 0o644),
        "group": put("group", "group = 'readable through a supplementary group'", 0o640, GROUP),
        "behind": put("closed/behind", "behind = 'a directory nobody may search'", 0o644),
    }
    os.chmod(d / "closed", 0o700)
    os.symlink(out["secret"], d / "link")
    out["link"] = str(d / "link")
    os.mkfifo(d / "fifo", 0o666)
    out["fifo"] = str(d / "fifo")
    yield d, out
    shutil.rmtree(d)


def linecache_as(prefix, path):
    """Line 1 of path as linecache gives it to a process run with prefix."""
    code = "import linecache, sys; print(linecache.getline(sys.argv[1], 1).strip())"
    r = subprocess.run([*prefix, PYTHON, "-c", code, path], capture_output=True,
                       text=True, timeout=30, check=True)
    return r.stdout.rstrip("\n")


def codes_seen(procs, d, names, prefix):
    """{filename: code} of hawk-bpf's report (as root) on a workload run
    with prefix whose code claims to come from names."""
    wl = Workload(procs, PYTHON, "foreign_source.py", d, "--names", *names,
                  prefix=prefix, workloads=d)
    hawk = Hawk(procs, wl.pid, "--duration", "600", "--count", "1000")
    hawk.wait_tracing()
    wl.go()
    wl.wait("allocated")
    rc, out, err = hawk.stop()
    assert rc == 0, err
    stats = json.loads(out)["stats"]
    return {s["filename"]: s["code"] for s in stats if s["lineno"] == 1 and s["filename"] in names}


def test_lines_are_read_as_the_target_would(procs, files):
    d, f = files
    names = [f[k] for k in ("secret", "public", "group", "behind", "link")]
    got = codes_seen(procs, d, names, AS_NOBODY)
    assert set(got) == set(names), got
    for name in names:
        assert got[name] == linecache_as(AS_NOBODY, name), (name, got[name])
    # What the oracle says nobody sees, and that it is not nothing.
    assert got[f["secret"]] == got[f["link"]] == got[f["behind"]] == ""
    assert got[f["public"]].startswith("public =") and got[f["group"]].startswith("group =")


def test_a_root_target_reads_what_root_reads(procs, files):
    """The same files traced in a root process: its credentials let it read
    all of them, so the report shows them (the test above is not vacuous)."""
    d, f = files
    names = [f[k] for k in ("secret", "behind", "link")]
    got = codes_seen(procs, d, names, ())
    assert got == {n: linecache_as((), n) for n in names}
    assert got[f["secret"]] == got[f["link"]] == "SECRET only root may read this"


def test_a_fifo_is_not_read(procs, files):
    """linecache would block opening it; hawk-bpf reads regular files only
    and reports at once, with an empty line."""
    d, f = files
    got = codes_seen(procs, d, [f["fifo"]], AS_NOBODY)
    assert got == {f["fifo"]: ""}
    assert stat.S_ISFIFO(os.stat(f["fifo"]).st_mode)

"""Fixtures for the hawk-bpf end-to-end tests (see README.md)."""
import os
import shutil
import subprocess

import pytest

import helpers
from helpers import ALL_PYTHONS, HAWK, PYTHONS, Procs


@pytest.fixture(scope="session", autouse=True)
def prerequisites():
    """CI runs as root with both Pythons: anything missing is a failure,
    never a skip."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the e2e tests must run as root (BPF, /proc/PID/mem)")
    if not (HAWK.is_file() and os.access(HAWK, os.X_OK)):
        problems.append(f"{HAWK} is missing: build it first (make -C {helpers.REPO})")
    for tool in ("bpftool", "setpriv", "sleep"):
        if not shutil.which(tool):
            problems.append(f"{tool} is not installed")
    for name, (path, version) in ALL_PYTHONS.items():
        try:
            got = subprocess.run([path, "-c", "import platform; print(platform.python_version())"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError as e:
            got = str(e)
        if got != version:
            problems.append(f"{name}: {path} should be CPython {version}, got {got!r}")
    if problems:
        pytest.fail("e2e prerequisites missing:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def procs():
    """Start children through this; all are killed at teardown."""
    p = Procs()
    yield p
    p.cleanup()


@pytest.fixture(params=list(PYTHONS))
def python(request):
    """The interpreter path, once per supported CPython."""
    return PYTHONS[request.param][0]


@pytest.fixture(params=list(ALL_PYTHONS))
def target_python(request):
    """The interpreter path, once per CPython of the whole matrix, the sid
    builds in their own namespaces included."""
    return ALL_PYTHONS[request.param][0]


@pytest.fixture(scope="session")
def oracle(tmp_path_factory):
    """oracle(python, script, frames, *extra) -> tracemalloc.Snapshot of the
    workload run in-process with tracemalloc.start(frames); cached."""
    cache = {}
    top = tmp_path_factory.mktemp("oracle")

    def get(python, script, frames, *extra):
        key = (python, script, frames, extra)
        if key not in cache:
            out = top / f"{len(cache)}.pickle"
            cache[key] = helpers.run_oracle(python, script, frames, out, *extra)
        return cache[key]

    return get

"""Each version's file in user/pyver/ must equal offsetof() in the headers
of every build of that version here (scripts/gen-offsets)."""
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADERS = [
    "/root/.pyenv/versions/3.10.13/include/python3.10",
    "/usr/include/python3.11",                               # Debian 3.11.2
    "/root/.pyenv/versions/3.11.7/include/python3.11",
    "/root/.pyenv/versions/3.12.1/include/python3.12",
    "/root/.pyenv/versions/3.13.0/include/python3.13",
] + [  # Debian sid's (scripts/sid-chroot installs them)
    os.environ.get("HAWK_SID_ROOT", "/var/cache/hawk-bpf/sid") + f"/usr/include/python3.{m}"
    for m in (13, 14, 15)
]


def version_file(minor):
    path = ROOT / f"user/pyver/v3_{minor}.c"
    assert path.exists(), f"no {path.name} for 3.{minor}"
    src = path.read_text()
    dbg = re.search(r"\.dbg = \{(.*?)\}", src, re.S)
    if dbg:
        src = src.replace(dbg.group(0), "")
    fields = {k: int(v) for k, v in re.findall(r"\.(\w+) = (\d+)", src)}
    if dbg:
        fields.update(("dbg_" + k, int(v))
                      for k, v in re.findall(r"\.(\w+) = (\d+)", dbg.group(1)))
    alloc = re.search(r"\.rt_alloc = \{ (\d+), (\d+), (\d+) \}", src)
    if alloc:
        fields.update(zip(("rt_alloc_raw", "rt_alloc_mem", "rt_alloc_obj"),
                          map(int, alloc.groups())))
    return fields


@pytest.mark.parametrize("inc", HEADERS)
def test_version_file_matches_headers(inc):
    assert pathlib.Path(inc, "internal/pycore_code.h").exists(), inc
    out = subprocess.run([ROOT / "scripts/gen-offsets", inc], check=True,
                         capture_output=True, text=True).stdout
    measured = dict((k, int(v)) for k, v in re.findall(r"(\w+) = (\d+)", out))
    row = version_file(measured["minor"])
    assert len(measured) >= 28
    for field, value in measured.items():
        assert row.get(field) == value, (field, row.get(field), value)
    # The symbolizer reads a code object's fields from its first
    # code_header bytes, the qualified name included.
    assert "code_name" in measured
    if measured["minor"] >= 13:
        assert "dbg_code_name" in measured
    for field, size in (("code_filename", 8), ("code_linetable", 8),
                        ("code_name", 8), ("code_firstlineno", 4)):
        assert measured[field] + size <= measured["code_header"], field

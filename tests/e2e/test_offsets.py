"""The per-version layout table must equal offsetof() in each Python's own
headers (scripts/gen-offsets), for every 3.11 whose headers are here."""
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADERS = [
    "/usr/include/python3.11",                               # Debian 3.11.2
    "/root/.pyenv/versions/3.11.7/include/python3.11",      # pyenv 3.11.7
]


def table_row(minor):
    src = (ROOT / "user/pyoffsets.c").read_text()
    row = re.search(r"\.major = 3, \.minor = %d,(.*?)\n\t},\n" % minor, src, re.S)
    assert row, "no 3.%d row in user/pyoffsets.c" % minor
    return {k: int(v) for k, v in re.findall(r"\.(\w+) = (\d+)", row.group(1))}


@pytest.mark.parametrize("inc", HEADERS)
def test_table_matches_headers(inc):
    assert pathlib.Path(inc, "internal/pycore_frame.h").exists(), inc
    out = subprocess.run([ROOT / "scripts/gen-offsets", inc], check=True,
                         capture_output=True, text=True).stdout
    measured = dict((k, int(v)) for k, v in re.findall(r"(\w+) = (\d+)", out))
    row = table_row(11)
    assert len(measured) >= 20
    for field, value in measured.items():
        assert row.get(field) == value, (field, row.get(field), value)

"""Oracle for test_format.c: the REAL tracemalloc._format_size and Hawk's
format_bytes on boundary and random values.

usage: oracle_format.py SEED
Prints {"format_size": [[value, sign, expected]...],
        "format_bytes": [[value, expected]...]} (values: JSON ints or floats).
"""
import os
import random
import sys
from tracemalloc import _format_size

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_common import format_bytes, print_json  # noqa: E402


def main():
    rnd = random.Random(int(sys.argv[1]))
    ints = {0, 1, 2, 99, 100, 101, 1023, 1024, 1025, 10239, 10240, 10241,
            102399, 102400, 102401, 10 * 1024 * 1024 - 1, 10 * 1024 * 1024,
            100 * 1024 * 1024, 1024 ** 3, 10 * 1024 ** 3, 1024 ** 4, 10 * 1024 ** 4,
            100 * 1024 ** 4, 1024 ** 5, 1024 ** 6, 2 ** 53 + 1, 2 ** 62, 2 ** 63 - 1,
            1048064, 1048063, 1048575, 1048576, 1047552, 102348, 102349,
            1073217536, 10 ** 7, 123456789, 1000, 999}
    for k in range(1, 64):
        ints |= {2 ** k - 1, 2 ** k, 2 ** k + 1}
    # .5 rounding boundaries in KiB: x.x5 KiB and xxxx.5 B
    for k in range(1, 2000, 7):
        ints |= {k * 1024 // 20 + d for d in (-1, 0, 1)}
    for _ in range(3000):
        ints.add(rnd.randint(0, 10 ** rnd.randint(1, 18)))
    ints |= {-v for v in list(ints) if v < 2 ** 63}
    ints.add(-2 ** 63)
    ints = sorted(v for v in ints if -2 ** 63 <= v < 2 ** 63)
    floats = [0.0, 0.5, 1.5, 2.5, 99.5, 100.5, 99.95, 10239.5, 10240.5, 0.05, 0.15,
              1023.95 * 1024, 99.95 * 1024, 99.949999 * 1024, 102394.88, 1e300, 1e-300,
              5e-324, 12345.678, 1.0 / 3]
    for _ in range(3000):
        a, b = rnd.randint(0, 10 ** 9), rnd.randint(1, 5000)
        floats.append(a / b)                   # averages, as Statistic computes
        floats.append(rnd.uniform(0, 2 ** rnd.randint(0, 60)))
    out = {"format_size": [], "format_bytes": []}
    for v in ints + floats:
        for sign in (False, True):
            out["format_size"].append([v, sign, _format_size(v, sign)])
    for v in ints:
        out["format_bytes"].append([v, format_bytes(v)])
    print_json(out)


main()

"""Safety workload: a heavy churn (prelude) whose result is checked, then
known retained blocks (allocate) to check a tracer attached afterwards.

Prints "round K" after each churn round and "checksum X" at the end of the
churn; X depends only on the work done, so a traced run must print the same
as an untraced one."""
import sys
import zlib

import _harness


def churn_round(r):
    d = {}
    for i in range(20000):
        d[str(i)] = [i, (i, i + r), {"k": i * r}]
    total = 0
    for key, v in d.items():
        total += len(key) + v[0] + v[1][1] + v[2]["k"]
    return total, zlib.crc32(",".join(d).encode())


def prelude(args):
    crc = 0
    for r in range(args.rounds):
        total, c = churn_round(r)
        crc = zlib.crc32(b"%d:%d" % (total, c), crc)
        _harness.say("round", r + 1)
    _harness.say("checksum", "%08x" % crc)


def allocate(args):
    blobs = [bytes(2000) for _ in range(1500)]
    words = ["word-%d" % i * 5 for i in range(8000)]
    big = bytearray(2_500_000)
    return blobs, words, big


if __name__ == "__main__":
    ap = _harness.parser()
    ap.add_argument("--rounds", type=int, default=12)
    sys.exit(_harness.main(allocate, ap, prelude))

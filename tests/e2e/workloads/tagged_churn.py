"""Sampling safety workload: a churn over every allocator path the
sampling trampoline takes (raw-domain sizes, calloc'd zeroes, reallocs that
grow and shrink, frees), whose result is checked, then blocks of known sizes
kept for the report.

Prints "round K" after each round (and with --pause-at K waits there for
the go-file's ".pause" twin) and "checksum X" at the end of the churn;
X depends only on the work done, so a run sampled (its blocks tagged past
their end), a run whose tracer was stopped or killed half-way, and an
untraced run must all print the same."""
import sys
import zlib

import _harness

SIZES = (0, 1, 63, 64, 200, 511, 512, 513, 1000, 4000, 8191, 8192, 20000,
         200000)


def churn_round(r):
    crc = 0
    blocks = []
    for i in range(3000):
        n = SIZES[(i + r) % len(SIZES)]
        z = bytes(n)                            # calloc
        if z.count(0) != n:
            raise SystemExit("calloc'd block not zeroed")
        b = bytearray(b"%d:%d;" % (r, i)) * (n // 8 + 1)   # malloc
        b += b"x" * (n // 3)                    # realloc, growing
        del b[n // 2:]                          # realloc, shrinking
        crc = zlib.crc32(b, crc)
        if i % 3 == 0:
            blocks.append(b)                    # freed later, in bulk
    for b in blocks:
        crc = zlib.crc32(b, crc)
    return crc


def prelude(args):
    crc = 0
    for r in range(args.rounds):
        crc = zlib.crc32(b"%d" % churn_round(r), crc)
        _harness.say("round", r + 1)
        if r + 1 == args.pause_at:      # until the test says go on
            _harness.wait_for(args.wait_for + ".pause")
    _harness.say("checksum", "%08x" % crc)


def allocate(args):
    return [bytes(1000) for _ in range(2000)], [bytearray(20000) for _ in range(100)]


if __name__ == "__main__":
    ap = _harness.parser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--pause-at", type=int, default=0,
                    help="after this round, wait for the --wait-for FILE.pause")
    sys.exit(_harness.main(allocate, ap, prelude))

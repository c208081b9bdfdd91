"""--stats: blocks of known sizes in buckets the interpreter's own
background allocations (the wait loop, printing) do not reach."""
import sys

import _harness


def allocate(args):
    return [
        [bytes(300 + i % 150) for i in range(3000)],     # 256-511 B
        [bytes(2500 + i) for i in range(1000)],          # 2048-4095 B
        [bytearray(20000) for _ in range(200)],          # 16384-32767 B
    ]


if __name__ == "__main__":
    sys.exit(_harness.main(allocate))

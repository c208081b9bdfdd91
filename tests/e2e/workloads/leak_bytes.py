"""--sample-bytes: a 20 MiB leak in sizes from 16 B to 40 KiB at one line
(pymalloc's and the raw domain's), and 20,000 blocks of bytes(1000)
allocated and freed at another (what pprof's alloc_* estimate)."""
import _harness

SIZES = (16, 100, 300, 480, 1000, 3000, 9000, 40000)
LEAK = 20 << 20


def allocate(args):
    sizes, total, i = [], 0, 0
    while total < LEAK:
        sizes.append(SIZES[i % len(SIZES)])
        total += sizes[-1]
        i += 1
    leak = [bytes(n) for n in sizes]
    for _ in range(20000): bytes(1000)
    return leak


if __name__ == "__main__":
    raise SystemExit(_harness.main(allocate))

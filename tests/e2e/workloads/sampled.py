"""--sample: blocks in each heapprof size class at their own lines."""
import _harness


def allocate(args):
    keep = []
    keep.append([bytes(1000) for _ in range(2000)])     # 128-8191 B: p = 0.1
    keep.append([bytearray(16384) for _ in range(150)])  # >= 8192 B: always
    keep.append([str(i) for i in range(100000)])        # < 128 B: p = 1e-4
    return keep


if __name__ == "__main__":
    raise SystemExit(_harness.main(allocate))

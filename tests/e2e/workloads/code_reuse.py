"""20 code objects compiled, run once and dropped, one after the other:
each is freed before the next is made, so the next may take its address.
Each allocates 50 blocks at line 1 of its own file name."""
import _harness


def allocate(args):
    keep = []
    for i in range(20):
        exec(compile(f"keep.append([bytearray({1000 + i}) for _ in range(50)])",
                     f"<generated {i}>", "exec"), {"keep": keep})
    return keep


if __name__ == "__main__":
    raise SystemExit(_harness.main(allocate))

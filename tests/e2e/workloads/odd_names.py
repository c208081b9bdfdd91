"""Code whose file names are not UTF-8 (--names, as bytes in the
filesystem encoding: os.fsdecode gives surrogate escapes): 50 blocks of
1000+i bytes at line 1 of the i-th name. The code objects are kept."""
import os

import _harness


def allocate(args):
    keep = []
    for i, name in enumerate(args.names):
        code = compile(f"keep.append([bytearray({1000 + i}) for _ in range(50)])",
                       os.fsdecode(bytes.fromhex(name)), "exec")
        keep.append(code)
        exec(code, {"keep": keep})
    return keep


if __name__ == "__main__":
    ap = _harness.parser()
    ap.add_argument("--names", nargs="*", default=[], help="hex of each name's bytes")
    raise SystemExit(_harness.main(allocate, ap))

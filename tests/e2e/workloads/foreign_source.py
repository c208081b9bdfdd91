"""Code whose co_filename names other files (--names): 50 blocks of 1000+i
bytes at line 1 of the i-th name, so a report's code column shows line 1 of
that file as hawk-bpf could read it. The code objects are kept: hawk-bpf
tells code objects apart by address (see test_accuracy's code-reuse test)."""
import _harness


def allocate(args):
    keep = []
    for i, name in enumerate(args.names):
        code = compile(f"keep.append([bytearray({1000 + i}) for _ in range(50)])", name, "exec")
        keep.append(code)
        exec(code, {"keep": keep})
    return keep


if __name__ == "__main__":
    ap = _harness.parser()
    ap.add_argument("--names", nargs="*", default=[])
    raise SystemExit(_harness.main(allocate, ap))

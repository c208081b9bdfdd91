"""--blocks N small blocks kept at one line while as many are made and
dropped at another: fills hawk-bpf's live table, frees included."""
import _harness


def allocate(args):
    keep = []
    for i in range(args.blocks):
        keep.append(bytes(100 + i % 50))
        gone = bytes(200 + i % 50)  # freed on the next pass
    del gone
    return keep


if __name__ == "__main__":
    ap = _harness.parser()
    ap.add_argument("--blocks", type=int, required=True)
    raise SystemExit(_harness.main(allocate, ap))

"""(g) A leak at a known rate: --chunk bytes objects kept every --period
seconds, --steps times, paced by this process's own clock (each step at
its deadline from the start, so the rate does not drift), all at one
line; and one line that holds a fixed amount all along, freed and
rebuilt every step (a flat series).  Prints "leaking" when the first
step is taken, for the test to know when the leak began."""
import sys
import time

import _harness


def allocate(args):
    kept = []
    flat = None
    start = time.monotonic()
    for i in range(args.steps):
        kept.append(bytes(args.chunk))                          # the leak
        flat = [bytearray(args.chunk // 4) for _ in range(8)]   # flat
        if i == 0:
            _harness.say("leaking", repr(start))
        delay = start + (i + 1) * args.period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return kept, flat


if __name__ == "__main__":
    ap = _harness.parser()
    ap.add_argument("--chunk", type=int, default=20_000)
    ap.add_argument("--period", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=100)
    sys.exit(_harness.main(allocate, ap))

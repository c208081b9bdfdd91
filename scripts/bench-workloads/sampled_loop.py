"""Cost per sampled block: allocate and drop bytes(200) (233 B: heapprof's
default samples 1 in 10 of these) 1 000 000 times, three calls deep. The
bench compares its time plain, under the trampoline alone and sampled."""
from _handshake import run

N = 1_000_000


def leaf(n):
    for _ in range(n):
        bytes(200)


def middle(n):
    leaf(n)


def timed(state, args):
    middle(int(N * args.scale))


if __name__ == "__main__":
    raise SystemExit(run(timed, doc=__doc__))

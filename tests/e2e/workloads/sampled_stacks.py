"""--sample stacks: small (object-domain) and large (raw-domain) blocks a few
calls deep, in functions and in a generator, kept in lists made at their
full size (a list grown by append reallocs its array: see
test_sampling.py for that gap)."""
import _harness


def leaf(keep, i):
    keep[i] = bytes(100 + i % 300)          # 133..432 B: object domain


def middle(keep):
    for i in range(len(keep)):
        leaf(keep, i)


def buffers(n):
    for i in range(n):
        yield bytearray(20000 + i)         # raw domain


def small_in_generator(n):
    for i in range(n):
        yield "item-%06d" % i * 4          # 89 B


def allocate(args):
    keep = [None] * 3000
    middle(keep)
    strs = [None] * 2000
    for i, s in enumerate(small_in_generator(len(strs))):
        strs[i] = s
    bufs = [None] * 20
    for i, b in enumerate(buffers(len(bufs))):
        bufs[i] = b
    return keep, strs, bufs


if __name__ == "__main__":
    raise SystemExit(_harness.main(allocate))

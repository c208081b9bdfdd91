"""Reallocs of traced raw blocks whose results are not sampled, one kind
succeeding and one failing (an address-space limit makes it fail), through
PyMem_Raw* itself. For hawk-bpf --sample-rates 128:0.000001,8192:1,
2147483648:0.000001: the 1000-byte blocks are always sampled, the
reallocs' results almost never."""
import ctypes
import resource

import _harness

api = ctypes.pythonapi
api.PyMem_RawMalloc.restype = ctypes.c_void_p
api.PyMem_RawMalloc.argtypes = [ctypes.c_size_t]
api.PyMem_RawRealloc.restype = ctypes.c_void_p
api.PyMem_RawRealloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
HUGE = 1536 << 20


def vm_size():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))


def allocate(args):
    blocks = [api.PyMem_RawMalloc(1000) for _ in range(200)]
    moved = [api.PyMem_RawRealloc(p, 20000) for p in blocks[:100]]
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (256 << 20), hard))
    try:
        failed = [api.PyMem_RawRealloc(p, HUGE) for p in blocks[100:]]
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert all(moved) and not any(failed), "a realloc did not do as planned"
    return blocks[100:], moved


if __name__ == "__main__":
    raise SystemExit(_harness.main(allocate))

"""The soak in make test (issue #14): 200 cycles of every way a run begins
and ends — exact and sampled windows, SIGINT mid-window, kill -9 of
hawk-bpf and of the session daemon at random moments, sessions — against
one threaded target that forks children all along (see soak.py). The
target and every child must be unharmed and nothing of ours attached.
scripts/soak N runs the same for longer."""
import os

from soak import soak

CYCLES = int(os.environ.get("HAWK_SOAK_CYCLES", "200"))


def test_soak():
    failures, modes, st = soak(CYCLES, seed=int(os.environ.get("HAWK_SOAK_SEED", "0")) or None)
    assert sum(modes.values()) == CYCLES and all(modes.values()), modes
    assert not failures, "\n".join(failures)
    # The target did fork (and check) children all along, and allocate.
    assert int(st["children"]) > 10 * CYCLES and int(st["rounds"]) > 10 * CYCLES, st

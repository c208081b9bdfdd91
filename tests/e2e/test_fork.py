"""Children a traced process forks are never harmed (issue: Linux 6.18
rewrites a probed 5-byte nop into a call to a page that fork() does not
copy, so such children died of SIGSEGV): forked during the window, they
run, and one that allocates only after the window ended does too."""
import pytest

from helpers import PYTHONS, Hawk, Workload, assert_detached


def run_forks(procs, tmp_path, python, *hawk_args):
    wl = Workload(procs, python, "forks.py", tmp_path)
    hawk = Hawk(procs, wl.pid, "--duration", "600", *hawk_args)
    hawk.wait_tracing()
    wl.go()
    line = wl.wait("forks ", timeout=120)
    wl.wait("allocated")
    rc, out, err = hawk.stop()
    assert rc == 0, err
    assert line.startswith("forks failed=0 of "), line
    assert_detached(hawk, wl)
    assert wl.release(timeout=120) == 0, "a child forked in the window failed after it"


def test_children_forked_in_an_exact_window(procs, tmp_path, target_python):
    python = target_python
    run_forks(procs, tmp_path, python)


@pytest.mark.parametrize("name", ["debian-3.11.2", "pyenv-3.13.0"])
def test_children_forked_in_a_sampled_window(procs, tmp_path, name):
    run_forks(procs, tmp_path, PYTHONS[name][0], "--sample")

"""--sample-bytes N (issue 16): each allocation sampled with probability
1 - exp(-size/N) and weighed by its inverse. Against the real tracemalloc
of every interpreter: a 20 MiB leak's estimate (inuse_space) and the
alloc_space of 20 MB allocated and freed are within 4.5 standard
deviations of the truth (the deviation computed from tracemalloc's own
block sizes), and within 15 % at N = 65536 as the issue asks on two
interpreters (about 2.7 deviations: a 0.7 % chance each of a false
alarm); go tool pprof reads the period; a session's pprof and lineno
snapshots agree."""
import math
import re
import subprocess

import pytest

import helpers
from helpers import ALL_PYTHONS, PYTHONS, WORKLOADS, Workload
from test_pprof import by_leaf_line, go_pprof, inuse_total, lineno_of, session_snapshots
from test_sampling import sampled_run

SCRIPT = "leak_bytes.py"
PERIOD = 65536
STRICT = {"debian-3.11.2", "sid-3.14.10"}    # also within 15 %


def line_of(text):
    return next(i for i, l in enumerate((WORKLOADS / SCRIPT).read_text().splitlines(), 1)
                if text in l)


def p_of(size, period=PERIOD):
    return -math.expm1(-max(size, 1) / period)


def sd_of(sizes, period=PERIOD):
    """The standard deviation of sum(size / p) over Bernoulli(p) draws."""
    return math.sqrt(sum(s * s * (1 - p_of(s, period)) / p_of(s, period) for s in sizes))


def size_of_bytes(python, n):
    """What bytes(n) allocates in this interpreter (its getsizeof)."""
    r = subprocess.run([python, "-c", f"import sys; print(sys.getsizeof(bytes({n})))"],
                       capture_output=True, text=True, timeout=helpers.TIMEOUT)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


@pytest.mark.parametrize("name", list(ALL_PYTHONS))
def test_leak_and_churn_estimates(procs, tmp_path, oracle, name):
    py = ALL_PYTHONS[name][0]
    want = oracle(py, SCRIPT, 1)
    fn = next(tb[0][0] for _, _, tb, _ in want.traces._traces if tb[0][0].endswith(SCRIPT))
    leak = [size for _, size, tb, _ in want.traces._traces
            if tb[0] == (fn, line_of("leak = ["))]
    true_leak = sum(leak)
    assert true_leak >= 20 << 20, true_leak

    prof = tmp_path / "heap.pb.gz"
    sampled_run(procs, tmp_path, py, "--sample-bytes", str(PERIOD), "--format", "pprof",
                "-o", prof, script=SCRIPT)

    raw = go_pprof("-raw", prof)
    assert re.search(r"^PeriodType: space bytes$", raw, re.M), raw[:400]
    assert re.search(rf"^Period: {PERIOD}$", raw, re.M), raw[:400]
    inuse = by_leaf_line(prof, "inuse_space")
    est = inuse[(fn, line_of("leak = ["))]
    bound = 4.5 * sd_of(leak)
    print(f"\n{name}: leak {est} of {true_leak} ({(est - true_leak) / true_leak:+.1%}, sd {sd_of(leak) / true_leak:.1%})")
    assert abs(est - true_leak) <= bound, (est, true_leak, bound)
    if name in STRICT:
        assert abs(est - true_leak) <= 0.15 * true_leak, (est, true_leak)
    # 20,000 blocks of bytes(1000), every one freed: alloc_space only
    churn = (fn, line_of("for _ in range(20000)"))
    size = size_of_bytes(py, 1000)
    true_churn = 20000 * size
    got = by_leaf_line(prof, "alloc_space")[churn]
    bound = 4.5 * sd_of([size] * 20000)
    print(f"{name}: churn {got} of {true_churn} ({(got - true_churn) / true_churn:+.1%})")
    assert abs(got - true_churn) <= bound, (got, true_churn, bound)
    if name in STRICT:
        assert abs(got - true_churn) <= 0.15 * true_churn, (got, true_churn)
    assert inuse[churn] <= 3 * size


def test_session_pprof_equals_lineno(procs, tmp_path):
    """One sampled session, two snapshots of the same sampled blocks: the
    pprof's inuse_* by leaf line are the lineno report's estimates, which
    says how it sampled."""
    py = PYTHONS["debian-3.11.2"][0]
    wl = Workload(procs, py, SCRIPT, tmp_path)
    doc, prof = session_snapshots(wl, tmp_path, "--sample-bytes", "64K")
    s = doc["sampling"]
    assert s["sampled"] is True and s["sample_bytes"] == PERIOD and \
        s["rates"] == f"bytes:{PERIOD}", s
    assert s["sampled_blocks"] > 100, s
    space, objects = by_leaf_line(prof, "inuse_space"), by_leaf_line(prof, "inuse_objects")
    want = lineno_of(doc)
    got = {k: (space[k], objects[k]) for k in space if space[k] or objects[k]}
    assert got.keys() == want.keys()
    for k in want:
        # both round sums of the same weighted blocks, in their own ways
        assert abs(got[k][0] - want[k][0]) <= 1 + 1e-9 * want[k][0], (k, got[k], want[k])
        assert abs(got[k][1] - want[k][1]) <= 1, (k, got[k], want[k])


def test_fleet_merge_splits_by_host(procs, tmp_path):
    """The README's fleet run on one machine: two "hosts" (UTS namespaces
    with their own host names) each profile their process sampled by
    bytes; merge gives one profile whose total is theirs and which
    -tagfocus host= splits again, period and all."""
    runs = []
    for host in ("web-1", "web-2"):
        (tmp_path / host).mkdir()
        wl = Workload(procs, PYTHONS["debian-3.11.2"][0], SCRIPT, tmp_path / host)
        out = tmp_path / f"heap-{host}.pb.gz"
        p = procs.popen(["unshare", "--uts", "sh", "-c",
                         f'hostname {host} && exec "$0" "$@"', helpers.HAWK,
                         "-p", wl.pid, "--duration", "600", "--sample-bytes",
                         "--format", "pprof", "--label", "service=checkout", "-o", out],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = helpers.Lines(helpers._text(p.stderr), "hawk-bpf stderr")
        err.wait_for(lambda l: helpers.TRACING.match(l) is not None, what="tracing")
        runs.append((wl, p, out))
    for wl, p, out in runs:
        wl.go()
        wl.wait("allocated")
        p.send_signal(2)
        assert p.wait(timeout=helpers.TIMEOUT) == 0
    merged = tmp_path / "fleet.pb.gz"
    rc, _, err = helpers.run_hawk("merge", *(o for _, _, o in runs), "--label", "build=1234",
                                  "-o", merged)
    assert rc == 0, err

    one, two = (inuse_total(o) for _, _, o in runs)
    assert one > 15 << 20 and two > 15 << 20, (one, two)
    assert inuse_total(merged) == one + two
    assert inuse_total(merged, "-tagfocus=host=web-1") == one
    assert inuse_total(merged, "-tagfocus=host=web-2") == two
    raw = go_pprof("-raw", merged)
    assert re.search(r"^Period: 524288$", raw, re.M), raw[:400]

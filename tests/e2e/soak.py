"""The soak: N cycles of hawk-bpf against one threaded, forking target
(workloads/soak_target.py) — exact and sampled windows, SIGINT mid-window,
kill -9 of hawk-bpf at a random moment, sessions, kill -9 of the session
daemon — then: the target and every child it forked are unharmed (no
checksum mismatch, no child failed) and nothing of ours is attached
(no BPF program of ours loaded, no breakpoint in the target's code).

Run by test_soak.py (200 cycles in make test) and by scripts/soak N.
Prints one line per 50 cycles and a summary; returns the failures."""
import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from helpers import (ENV, HAWK, PYTHONS, WORKLOADS, Lines,  # noqa: E402
                     assert_no_orphan_programs, patched_bytes)

RUN = Path("/run/hawk-bpf")
MODES = ["exact", "sampled", "sigint", "kill9", "session", "kill9_daemon"]


def hawk(*args, timeout=60):
    r = subprocess.run([str(HAWK), *map(str, args)], capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


def until(pred, secs):
    end = time.monotonic() + secs
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


class Target:
    def __init__(self, python):
        self.p = subprocess.Popen([python, str(WORKLOADS / "soak_target.py")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=ENV)
        self.out = Lines(self.p.stdout, "soak target")
        self.err = Lines(self.p.stderr, "soak target stderr")
        self.pid = int(self.out.wait_for(lambda l: l.startswith("ready ")).split()[1])

    def status(self, line=None):
        if line is None:
            self.p.stdin.write("status\n")
            self.p.stdin.flush()
            line = self.out.wait_for(lambda l: l.startswith("status "), 30)
        return dict(kv.split("=", 1) for kv in line.split()[1:])

    def stacks(self):
        """Every thread's stack, of the target and its children."""
        kids = [k for task in Path(f"/proc/{self.pid}/task").iterdir()
                for k in (task / "children").read_text().split()]
        for pid in [self.pid, *map(int, kids)]:
            os.kill(pid, signal.SIGUSR1)
        time.sleep(1)
        lines = [describe(int(k)) + ": wchan " + read(f"/proc/{k}/wchan") + "\n" +
                 read(f"/proc/{k}/stack") + gdb_bt(int(k)) for k in kids]
        while not self.err.q.empty():
            lines.append(self.err.q.get() or "")
        return "\n".join(lines)

    def finish(self):
        self.p.stdin.close()
        st = self.status(self.out.wait_for(lambda l: l.startswith("status "), 120))
        return st, self.p.wait(60)


def hawk_pids():
    """PIDs of every hawk-bpf process running."""
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and os.path.realpath(d / "exe") == os.path.realpath(HAWK):
                out.append(int(d.name))
        except OSError:
            pass
    return out


def read(path):
    try:
        return Path(path).read_text()
    except OSError as e:
        return str(e)


def gdb_bt(pid):
    """Its native stack, if gdb is there."""
    try:
        r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "bt 20"],
                           capture_output=True, text=True, timeout=30)
        return "\n".join(l for l in r.stdout.splitlines() if l.startswith("#"))
    except (OSError, subprocess.TimeoutExpired):
        return "(no gdb)"


def describe(pid):
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
        return f"{pid} ({b' '.join(argv).decode(errors='replace')}, state {stat.split(')')[1].split()[0]})"
    except OSError:
        return f"{pid} (gone)"


def one_cycle(t, mode, rng, image):
    """One cycle; a list of what went wrong (empty: fine)."""
    bad = []
    before = set(hawk_pids())
    sample = ["--sample"] if rng.random() < 0.5 else []
    if mode in ("exact", "sampled"):
        extra = ["--sample"] if mode == "sampled" else []
        rc, out, err = hawk("-p", t.pid, "--duration", f"{rng.uniform(0.1, 0.5):.2f}", *extra)
        if rc != 0 or not out.startswith(b"{"):
            bad.append(f"{mode} window: rc {rc}: {err.strip()[-300:]}")
    elif mode in ("sigint", "kill9"):
        p = subprocess.Popen([str(HAWK), "-p", str(t.pid), "--duration", "600", *sample],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        # kill -9 anywhere from before the attach ends to well into the window
        time.sleep(rng.uniform(0.2, 0.6) if mode == "sigint" else rng.uniform(0, 0.8))
        p.send_signal(signal.SIGINT if mode == "sigint" else signal.SIGKILL)
        rc = p.wait(60)
        err = p.stderr.read().decode("utf-8", "replace")
        if mode == "sigint" and rc != 0:
            bad.append(f"SIGINT mid-window: rc {rc}: {err.strip()[-300:]}")
    else:
        rc, _, err = hawk("start", "-p", t.pid, *sample)
        if rc != 0:
            bad.append(f"start: rc {rc}: {err.strip()[-300:]}")
            return bad
        time.sleep(rng.uniform(0.1, 0.4))
        if mode == "session":
            rc, out, err = hawk("snapshot", "-p", t.pid)
            if rc != 0 or not out.startswith(b"{"):
                bad.append(f"snapshot: rc {rc}: {err.strip()[-300:]}")
            rc, _, err = hawk("stop", "-p", t.pid)
            if rc != 0:
                bad.append(f"stop: rc {rc}: {err.strip()[-300:]}")
        else:
            owner = int((RUN / f"{t.pid}.lock").read_text().split()[0])
            os.kill(owner, signal.SIGKILL)
            until(lambda: not Path(f"/proc/{owner}").exists(), 10)
            # stop cleans what the dead daemon left and says so (exit 3)
            rc, _, err = hawk("stop", "-p", t.pid)
            if rc != 3 or "cleaned up after it" not in err:
                bad.append(f"stop after the daemon's kill -9: rc {rc}: {err.strip()[-300:]}")
            left = [p.name for p in (RUN / f"{t.pid}.lock", RUN / f"{t.pid}.sock") if p.exists()]
            if left:
                bad.append(f"files left in {RUN} after stop: {left}")
    if t.p.poll() is not None:
        bad.append(f"the target died: {t.p.returncode}")
        return bad
    try:
        assert_no_orphan_programs(timeout=10)
    except AssertionError as e:
        bad.append(str(e))
    until(lambda: not [p for p in hawk_pids() if p not in before], 5)
    alive = [p for p in hawk_pids() if p not in before]
    if alive:
        bad.append("hawk-bpf processes still running: " + "; ".join(describe(p) for p in alive))
    left = patched_bytes(t.pid, image)
    if left:
        bad.append(f"breakpoints left in the target's code at {left[:4]}")
    return bad


def soak(n, python=None, seed=None, log=print):
    """n cycles; (failures, counts per mode, the target's last status)."""
    python = python or PYTHONS["debian-3.11.2"][0]
    seed = int(time.time()) if seed is None else seed
    rng = random.Random(seed)
    t = Target(python)
    try:
        return _soak(t, n, python, seed, rng, log)
    finally:
        if t.p.poll() is None:      # an error of the soak's own: no target left behind
            t.p.kill()
            t.p.wait(30)


def _soak(t, n, python, seed, rng, log):
    image = os.path.realpath(python)
    failures, modes, took = [], collections.Counter(), collections.Counter()
    t0 = time.monotonic()
    log(f"soak: {n} cycles against PID {t.pid} ({python}), seed {seed}")
    children = -1
    for i in range(n):
        mode = rng.choice(MODES)
        modes[mode] += 1
        c0 = time.monotonic()
        bad = one_cycle(t, mode, rng, image)
        took[mode] += time.monotonic() - c0
        for b in bad:
            failures.append(f"cycle {i} ({mode}): {b}")
        if t.p.poll() is not None:
            break
        st = t.status()
        if st["mismatches"] != "0" or st["failed"] != "0":
            failures.append(f"cycle {i} ({mode}): target says {st}")
            break
        # The forker makes ~50 children a second: it must go on.
        if not until(lambda: int(t.status()["children"]) > children, 10):
            failures.append(f"cycle {i} ({mode}): the target stopped forking; its stacks:\n"
                            f"{t.stacks()}")
            t.p.kill()
            t.p.wait(30)
            break
        children = int(t.status()["children"])
        if (i + 1) % 50 == 0:
            log(f"soak: {i + 1} cycles, {time.monotonic() - t0:.0f} s, {len(failures)} failures, "
                f"target {st}")
    if t.p.poll() is None:
        st, rc = t.finish()
        if rc != 0 or st["mismatches"] != "0" or st["failed"] != "0":
            failures.append(f"at the end: exit {rc}, {st}")
    else:
        st = {"died": t.p.returncode}
        failures.append(f"the target died: {t.p.returncode}")
    log(f"soak: {n} cycles in {time.monotonic() - t0:.0f} s; target: {st}; "
        f"{len(failures)} failures")
    log("soak: cycles (mean s): " + ", ".join(f"{m} {modes[m]} ({took[m] / modes[m]:.2f})"
                                            for m in MODES if modes[m]))
    for f in failures:
        log(f"soak: FAILED {f}")
    return failures, modes, st


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cycles", type=int)
    ap.add_argument("--python")
    ap.add_argument("--seed", type=int)
    a = ap.parse_args()
    sys.exit(1 if soak(a.cycles, a.python, a.seed)[0] else 0)

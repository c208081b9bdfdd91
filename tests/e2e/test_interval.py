"""--interval (issue 16, 'Over time'): a snapshot every interval of the
window, written as a time series (JSON) and a chart (--svg).  A workload
that leaks a fixed number of bytes every fixed time (leak_rate.py, paced
by its own clock) must show a linear series at its leaking line, with the
slope of the known rate; the chart, read by a real XML parser, has a
point for every snapshot.  Host-wide, a series per line of each process
(null where the process was not traced), or merged."""
import json
import re
import signal
import subprocess
import threading
import xml.etree.ElementTree as ET

import pytest

import helpers
from helpers import ALL_PYTHONS, HAWK, TIMEOUT, Lines, Workload

LEAK_PY = helpers.WORKLOADS / "leak_rate.py"
SUMMARY = re.compile(r"^hawk-bpf: (\d+) snapshots over ([0-9.]+) s; (\d+) live blocks at the end$")
HOST_SUMMARY = re.compile(r"^hawk-bpf: (\d+) snapshots of (\d+) process(?:es)? over ([0-9.]+) s$")
HOSTWIDE = re.compile(r"^hawk-bpf: tracing (\d+) process(?:es)? ")
SVG = "{http://www.w3.org/2000/svg}"
BYTES_HEADER = 33      # a bytes object of n bytes is an n + 33 byte block (64-bit)
CHUNK, PERIOD = 20_000, 0.05


def line_of(marker):
    return next(i for i, l in enumerate(LEAK_PY.read_text().splitlines(), 1) if marker in l)


LEAK_LINE, FLAT_LINE = line_of("# the leak"), line_of("# flat")


def fit(xs, ys):
    """Least squares y = a + b x: (b, a, r^2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    b = sxy / sxx
    r2 = sxy * sxy / (sxx * syy) if syy else 1.0
    return b, my - b * mx, r2


def assert_linear(times, sizes, rate, what):
    """sizes over times is a line (r^2 > 0.98) of slope rate within 15 %."""
    pts = [(t, s) for t, s in zip(times, sizes) if s is not None]
    assert len(pts) >= 5, f"{what}: too few points: {pts}"
    slope, _, r2 = fit(*zip(*pts))
    assert r2 > 0.98, f"{what}: not linear (r^2 {r2:.4f}): {pts}"
    assert abs(slope / rate - 1) < 0.15, \
        f"{what}: slope {slope:.0f} B/s, the leak's rate is {rate:.0f} B/s: {pts}"
    return slope, r2


def series_at(doc, line, pid=None):
    """The lineno series of leak_rate.py:line (of process pid)."""
    found = [s for s in doc["series"] if s.get("filename") == str(LEAK_PY)
             and s.get("lineno") == line and (pid is None or s.get("pid") == pid)]
    assert len(found) == 1, f"no single series for line {line} (pid {pid}): " \
        f"{[(s.get('pid'), s.get('filename'), s.get('lineno')) for s in doc['series']]}"
    return found[0]


def read_svg(path):
    """(y ticks [(bytes, pixel)], series [{index, title, runs of points}],
    legend labels) of a chart, by xml.etree."""
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    yticks, series, legend = [], [], []
    for g in root.iter(SVG + "g"):
        cls = g.get("class")
        if cls == "ytick":
            yticks.append((float(g.get("data-value")), float(g.find(SVG + "line").get("y1"))))
        elif cls == "series":
            runs = [[tuple(map(float, p.split(","))) for p in pl.get("points").split()]
                    for pl in g.findall(SVG + "polyline")]
            runs += [[(float(c.get("cx")), float(c.get("cy")))] for c in g.findall(SVG + "circle")]
            series.append({"index": int(g.get("data-index")), "title": g.find(SVG + "title").text,
                           "runs": runs})
        elif cls == "entry":
            legend.append(g.find(SVG + "text").text)
    series.sort(key=lambda s: s["index"])
    return yticks, series, legend


def check_svg(path, doc, top):
    """The chart of doc: one line per series (the first 20), in order, each
    a polyline with a point per snapshot where it has a value, at the
    height its size puts it on the y axis; y ticks monotone from 0."""
    yticks, series, legend = read_svg(path)
    assert [v for v, _ in yticks] == sorted(v for v, _ in yticks) and yticks[0][0] == 0, yticks
    assert all(a[1] > b[1] for a, b in zip(yticks, yticks[1:])), f"y axis not monotone: {yticks}"
    (v0, p0), (v1, p1) = yticks[0], yticks[-1]
    px_per_byte = (p1 - p0) / (v1 - v0)
    want = doc["series"][:20]
    assert len(series) == len(want) == len(legend), (len(series), len(want), legend)
    for s, d in zip(series, want):
        defined = [v for v in d["size"] if v is not None]
        assert sum(len(r) for r in s["runs"]) == len(defined), \
            f"{s['title']}: {sum(len(r) for r in s['runs'])} points for {len(defined)} snapshots"
        last_y = s["runs"][0][-1][1] if len(s["runs"]) == 1 else None
        if last_y is not None:
            assert abs((last_y - p0) / px_per_byte - defined[-1]) <= max(0.01 * defined[-1],
                                                                         0.02 / -px_per_byte)
    top_series = series[0]
    assert len(top_series["runs"]) == 1 and len(top_series["runs"][0]) == len(doc["times_s"])
    assert legend[0].startswith(f"workloads/leak_rate.py:{top}"), legend[0]
    assert top_series["title"] == f"{LEAK_PY}:{top}", top_series["title"]


@pytest.mark.parametrize("name", ["debian-3.11.2", "pyenv-3.10.13", "pyenv-3.12.1",
                                  "sid-3.13.18", "sid-3.14.10", "sid-3.15.2"])
def test_a_linear_leak_is_a_linear_series(procs, tmp_path, name):
    """The acceptance test: leak_rate.py keeps 20,000 bytes every 50 ms;
    over a 4 s window at --interval 0.4, its line's series is a line of
    that slope (least squares, r^2 > 0.98, within 15 %), its count one
    of 20 a second; the flat line stays flat; the chart has a point per
    snapshot."""
    py = ALL_PYTHONS[name][0]
    out, svg = tmp_path / "series.json", tmp_path / "series.svg"
    wl = Workload(procs, py, "leak_rate.py", tmp_path, "--chunk", CHUNK, "--period", PERIOD,
                  "--steps", 400)
    hawk = helpers.Hawk(procs, wl.pid, "--duration", "4", "--interval", "0.4", "-o", out,
                        "--svg", svg)
    hawk.wait_tracing()
    wl.go()
    wl.wait("leaking")
    rc, stdout, err = hawk.finish()
    assert rc == 0, err
    assert stdout == b"", "the series goes to -o"
    m = SUMMARY.match(err[-1])
    assert m, err
    doc = json.loads(out.read_text())
    times = doc["times_s"]
    # ticks at 0.4 .. 3.6 s and the window's end
    assert int(m.group(1)) == len(times) == doc["hawk_bpf"]["snapshots"] == 10, times
    assert doc["interval_s"] == 0.4 and doc["key_type"] == "lineno"
    assert all(abs(t - 0.4 * (k + 1)) < 0.15 for k, t in enumerate(times[:-1])), times
    assert abs(times[-1] - 4) < 0.15 and times == sorted(times), times
    assert doc["hawk_bpf"]["pid"] == wl.pid and doc["hawk_bpf"]["python"] == helpers.version_of(py)
    assert doc["hawk_bpf"]["snapshots_skipped"] == 0
    assert not doc["hawk_bpf"]["interrupted"] and "sampling" not in doc
    leak = series_at(doc, LEAK_LINE)
    assert doc["series"][0]["lineno"] == LEAK_LINE, "the leak holds the most"
    assert leak["code"] == "kept.append(bytes(args.chunk))                          # the leak"
    rate = (CHUNK + BYTES_HEADER) / PERIOD
    assert_linear(times, leak["size"], rate, "the leak")
    slope, _, r2 = fit(times, leak["count"])
    assert r2 > 0.98 and abs(slope * PERIOD - 1) < 0.15, (slope, r2, leak["count"])
    # the flat line holds 8 chunks of a quarter, give or take a rebuild
    flat = series_at(doc, FLAT_LINE)
    assert all(v is not None and v <= 5 * CHUNK for v in flat["size"]), flat["size"]
    assert abs(fit(times, flat["size"])[0]) < 0.05 * rate, flat["size"]
    assert all(t >= a + b for t, a, b in zip(doc["total"]["size"], leak["size"], flat["size"]))
    check_svg(svg, doc, LEAK_LINE)
    helpers.assert_detached(hawk, wl)


def test_traceback_series_to_the_interrupt(procs, tmp_path):
    """--format traceback: each series a traceback (its frames oldest
    first, Traceback.format() lines); SIGINT ends the window early and
    its record is the last point."""
    py = ALL_PYTHONS["debian-3.11.2"][0]
    out = tmp_path / "series.json"
    wl = Workload(procs, py, "leak_rate.py", tmp_path, "--chunk", CHUNK, "--period", PERIOD,
                  "--steps", 400)
    hawk = helpers.Hawk(procs, wl.pid, "--duration", "600", "--interval", "0.25",
                        "--format", "traceback", "--count", "3", "-o", out)
    hawk.wait_tracing()
    wl.go()
    wl.wait("leaking")
    threading.Event().wait(2.4)
    rc, _, err = hawk.stop()
    assert rc == 0, err
    doc = json.loads(out.read_text())
    times = doc["times_s"]
    assert doc["key_type"] == "traceback" and doc["hawk_bpf"]["interrupted"]
    assert 8 <= len(times) <= 12 and times[-1] < 5, times
    assert len(doc["series"]) == 3
    leak = doc["series"][0]
    assert leak["frames"][-1] == {"filename": str(LEAK_PY), "lineno": LEAK_LINE}, leak["frames"]
    assert leak["traceback"][-2:] == [f'  File "{LEAK_PY}", line {LEAK_LINE}',
                                      "    kept.append(bytes(args.chunk))                          # the leak"]
    assert len(leak["traceback"]) >= 2 * len(leak["frames"]) - 2
    assert_linear(times, leak["size"], (CHUNK + BYTES_HEADER) / PERIOD, "the leak's traceback")
    helpers.assert_detached(hawk, wl)


class HostHawk:
    """hawk-bpf without -p, selecting with --match."""

    def __init__(self, procs, *args):
        self.proc = procs.popen([HAWK, *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.err = Lines(helpers._text(self.proc.stderr), "hawk-bpf stderr")

    def wait_tracing(self):
        self.err.wait_for(lambda l: HOSTWIDE.match(l) is not None, what="the 'tracing' line")

    def finish(self):
        rc = self.proc.wait(TIMEOUT)
        out = self.proc.stdout.read()
        return rc, out, self.err.rest()


def test_hostwide_series_per_process_and_merged(procs, tmp_path):
    """Two leaking processes (Debian's 3.11 and sid's 3.14 in its own
    namespace), one of which exits mid-window: a series per line of each,
    each linear at its own rate, the one that exited null from then on;
    with --merge, one series of the two leaks together."""
    token = str(tmp_path)
    big = Workload(procs, ALL_PYTHONS["debian-3.11.2"][0], "leak_rate.py", tmp_path,
                   "--chunk", CHUNK, "--period", PERIOD, "--steps", 400)
    small = Workload(procs, ALL_PYTHONS["sid-3.14.10"][0], "leak_rate.py", tmp_path,
                     "--chunk", CHUNK // 4, "--period", PERIOD, "--steps", 30)
    out, svg = tmp_path / "host.json", tmp_path / "host.svg"
    hawk = HostHawk(procs, "--match", re.escape(token), "--duration", "4", "--interval", "0.4",
                    "-o", out, "--svg", svg)
    hawk.wait_tracing()
    big.go()
    small.go()
    big.wait("leaking")
    small.wait("allocated")      # 30 steps: 1.5 s of leaking
    small.command("_exit")
    assert small.proc.wait(TIMEOUT) == 0
    rc, _, err = hawk.finish()
    assert rc == 0, err
    assert HOST_SUMMARY.match(err[-1]), err
    doc = json.loads(out.read_text())
    times = doc["times_s"]
    assert len(times) == doc["hawk_bpf"]["snapshots"] == 10, times
    # times are on the clock of the processes' windows
    began = doc["hawk_bpf"]["window_began_s"]
    assert all(abs(t - began - 0.4 * (k + 1)) < 0.15 for k, t in enumerate(times[:-1])), times
    assert not doc["hawk_bpf"]["merged"]
    procs_by_pid = {p["pid"]: p for p in doc["processes"]}
    assert set(procs_by_pid) == {big.pid, small.pid}
    assert doc["processes"][0]["pid"] == big.pid, "largest first"
    rate = (CHUNK + BYTES_HEADER) / PERIOD
    b = series_at(doc, LEAK_LINE, big.pid)
    assert b["comm"] == procs_by_pid[big.pid]["comm"]
    assert_linear(times, b["size"], rate, "the big leak")
    # the small one: traced from the start, gone after its exit
    s = series_at(doc, LEAK_LINE, small.pid)
    ended = procs_by_pid[small.pid]["window_ended_s"]
    assert ended is not None and ended < times[-1]
    for t, v in zip(times, s["size"]):
        assert (v is None) == (t > ended), (t, v, ended, s["size"])
    assert s["size"][0] is not None and s["size"][-1] is None
    assert procs_by_pid[small.pid]["size"][-1] is None
    assert procs_by_pid[small.pid]["hawk_bpf"]["target_exited"]
    pts = [(t, v) for t, v in zip(times, s["size"]) if v is not None]
    small_rate = (CHUNK // 4 + BYTES_HEADER) / PERIOD
    # it leaked for 1.5 s from the go: its points up to then rise at its rate
    rising = [(t, v) for t, v in pts if v < 30 * (CHUNK // 4 + BYTES_HEADER) * 0.97]
    if len(rising) >= 3:
        slope = fit(*zip(*rising))[0]
        assert abs(slope / small_rate - 1) < 0.25, (slope, small_rate, pts)
    # its record at the exit is no point: the last is the tick before it
    assert pts[-1][1] <= 30 * (CHUNK // 4 + BYTES_HEADER) * 1.05, pts
    _, series, legend = read_svg(svg)
    top = series[0]
    assert legend[0].startswith(f"PID {big.pid} workloads/leak_rate.py:{LEAK_LINE}"), legend
    assert sum(len(r) for r in top["runs"]) == len(times)
    i = next(k for k, d in enumerate(doc["series"][:20]) if d is s)
    assert sum(len(r) for r in series[i]["runs"]) == len(pts)

    # merged: the two processes' lines as one (the small one is gone: a
    # new one stands in for it)
    small2 = Workload(procs, ALL_PYTHONS["sid-3.14.10"][0], "leak_rate.py", tmp_path,
                      "--chunk", CHUNK // 4, "--period", PERIOD, "--steps", 400)
    out2 = tmp_path / "merged.json"
    hawk = HostHawk(procs, "--match", re.escape(token), "--merge", "--duration", "3",
                    "--interval", "0.3", "-o", out2)
    hawk.wait_tracing()
    small2.go()
    small2.wait("leaking")
    rc, _, err = hawk.finish()
    assert rc == 0, err
    doc = json.loads(out2.read_text())
    assert doc["hawk_bpf"]["merged"] and "pid" not in doc["series"][0]
    m = series_at(doc, LEAK_LINE)
    assert_linear(doc["times_s"], m["size"], rate + small_rate, "the merged leaks")
    assert {p["pid"] for p in doc["processes"]} == {big.pid, small2.pid}


@pytest.mark.parametrize("args, message", [
    (["--interval", "x"], "hawk-bpf: --interval: expected seconds from 0.001 to 86400, got 'x'"),
    (["--interval", "5"], "hawk-bpf: --interval 5 s must be shorter than the window (--duration 5 s)"),
    (["--interval", "0.001", "--duration", "60"],
     "hawk-bpf: --interval 0.001 s over --duration 60 s makes 60000 snapshots; at most 10000"),
    (["--interval", "1", "--format", "pickle"],
     "hawk-bpf: --interval takes --format lineno or traceback (what each series is of), not pickle"),
    (["--svg", "x.svg"], "hawk-bpf: --svg needs --interval (it plots the time series)"),
])
def test_bad_intervals_are_one_line_and_exit_2(args, message):
    rc, out, err = helpers.run_hawk("-p", "1", *args)
    assert rc == 2 and out == b"", (rc, out)
    assert err == [message + " (see hawk-bpf --help)"], err


def test_unwritable_svg_is_refused_before_attaching(procs, tmp_path):
    wl = Workload(procs, ALL_PYTHONS["debian-3.11.2"][0], "leak_rate.py", tmp_path,
                  "--steps", 1)
    rc, _, err = helpers.run_hawk("-p", wl.pid, "--interval", "1", "--duration", "2",
                                  "-o", tmp_path / "s.json", "--svg", tmp_path / "no" / "s.svg")
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith(f"hawk-bpf: cannot write the report to {tmp_path}/no/s.svg"), err
    assert not (tmp_path / "s.json").exists()
    wl.go()
    wl.wait("allocated")
    assert wl.tables() == wl.tables_at_start, "touched"

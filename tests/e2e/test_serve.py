"""hawk-bpf serve: Hawk's /debug/prof/mem/tracemalloc/ endpoints over HTTP.

The server runs hawk-bpf itself once per request, so a response must be
what the CLI prints for the same options, byte for byte; these tests check
that, the HTTP mapping of every failure, the security rules (token,
loopback, methods, paths, the cap on concurrent runs, the limits on
connections) and that the server stops its children when it is stopped."""
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import tracemalloc
import urllib.parse

import pytest

from helpers import (HAWK, PYTHONS, UNSUPPORTED, WORKLOADS, Lines, Workload,
                     assert_bpf_gone, assert_lines_match, bpf_ids_of, format_bytes,
                     run_hawk)

BASE = "/debug/prof/mem/tracemalloc/"
RETAIN = str(WORKLOADS / "retain.py")
DEBIAN = PYTHONS["debian-3.11.2"][0]
GC_WARNING = ("gc=true was not applied: hawk-bpf cannot run the target's garbage "
              "collector from outside before CPython 3.14")
WARNINGS_TAIL = ',\n  "warnings": [\n    "' + GC_WARNING + '"\n  ]\n}\n'
PICKLE_NAME = re.compile(
    r'^attachment; filename="hwk_mem_tracemalloc_snapshot_'
    r'\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.pkl"$')
WINDOW = re.compile(rb'"window_seconds": [0-9.e+-]+')


class Server:
    """hawk-bpf serve on a free loopback port."""

    def __init__(self, procs, *args):
        self.proc = procs.popen([HAWK, "serve", "--listen", "127.0.0.1:0", *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        self.err = Lines(io.TextIOWrapper(self.proc.stderr, encoding="utf-8",
                                          errors="replace"), "hawk-bpf serve stderr")
        line = self.err.wait_for(lambda l: "serving http://" in l,
                                 what="the 'serving' line")
        m = re.search(r"http://127\.0\.0\.1:(\d+)" + re.escape(BASE), line)
        assert m, line
        self.port = int(m.group(1))

    def request(self, path=BASE, params=None, method="GET", headers=None, timeout=60):
        """(status, {lower-case header: value}, body bytes)."""
        if params is not None:
            path += "?" + (params if isinstance(params, str)
                           else urllib.parse.urlencode(params))
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def get(self, endpoint="", **params):
        return self.request(BASE + endpoint, {k: str(v) for k, v in params.items()})

    def children(self):
        kids = []
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                with open(f"/proc/{self.proc.pid}/task/{task}/children") as f:
                    kids += [int(p) for p in f.read().split()]
            except OSError:
                pass
        return kids

    def wait_tracing(self, n=1, timeout=60):
        """The n hawk-bpf children that hold live probes (BPF links)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            live = {}
            for pid in self.children():
                try:
                    ids = bpf_ids_of(pid)
                except OSError:
                    continue
                if ids["link"]:
                    live[pid] = ids
            if len(live) >= n:
                return live
            time.sleep(0.05)
        raise AssertionError(f"no {n} tracing hawk-bpf children; have {self.children()}")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


class Background:
    """A request in a thread; .result() waits for it."""

    def __init__(self, fn, *args, **kw):
        self.out, self.exc = None, None
        self.t = threading.Thread(target=self._run, args=(fn, args, kw), daemon=True)
        self.t.start()

    def _run(self, fn, args, kw):
        try:
            self.out = fn(*args, **kw)
        except BaseException as e:  # reported by result()
            self.exc = e

    def result(self, timeout=90):
        self.t.join(timeout)
        assert not self.t.is_alive(), "the request did not finish"
        if self.exc:
            raise self.exc
        return self.out


def idle_python(procs, path=DEBIAN):
    """A CPython that allocates nothing: it sleeps in C."""
    p = procs.popen([path, "-c", "import time; print('up', flush=True); time.sleep(120)"],
                    stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert p.stdout.readline().strip() == "up"
    return p


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def assert_json_error(status, headers, body, want_status, word):
    assert status == want_status, (status, body)
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert list(doc) == ["error"], doc
    assert word in doc["error"], doc
    assert not doc["error"].startswith("hawk-bpf:"), doc
    return doc["error"]


def without_warning(body):
    """The report as the CLI wrote it: the "warnings" key that gc=true adds
    is the last one, and nothing else changed."""
    text = body.decode()
    assert text.endswith(WARNINGS_TAIL), text[-300:]
    doc = json.loads(text)
    assert list(doc)[-1] == "warnings" and doc["warnings"] == [GC_WARNING]
    return (text[:-len(WARNINGS_TAIL)] + "\n}\n").encode()


@pytest.fixture
def server(procs):
    return Server(procs)


# ------------------------------------------------------------------ results

def test_fixed_duration_matches_the_oracle(procs, tmp_path, server, python, oracle):
    """retain.py traced through HTTP, the window ended when it has allocated
    (SIGINT to the hawk-bpf child, as the CLI tests do): Hawk's lineno JSON,
    within 2 % of in-process tracemalloc, with gc=true's warning."""
    wl = Workload(procs, python, "retain.py", tmp_path, "--watch-tables")
    req = Background(server.get, pid=wl.pid, duration=300, count=1000000)
    (child, ids), = server.wait_tracing().items()
    # BPF links appear probe by probe; the child traces once the tables
    # point at the probes, the last thing it does (but one byte).
    wl.wait("redirected")
    wl.go()
    wl.wait("allocated")
    os.kill(child, signal.SIGINT)
    status, headers, body = req.result()
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert "content-disposition" not in headers
    assert "x-hawk-warning" not in headers
    doc = json.loads(without_warning(body))
    assert list(doc) == ["stats", "heap_current_bytes", "heap_current",
                         "heap_diff_bytes", "heap_diff", "hawk_bpf"]
    assert doc["heap_current"] == format_bytes(doc["heap_current_bytes"])
    info = doc["hawk_bpf"]
    assert (info["pid"], info["frames"], info["interrupted"]) == (wl.pid, 30, True)
    for s in doc["stats"]:
        tb = tracemalloc.Traceback(((s["filename"], s["lineno"]),))
        size, count = s["mem_blocks_size_bytes"], s["mem_blocks_count"]
        assert s["stat"] == str(tracemalloc.StatisticDiff(tb, size, size, count, count))
    assert_lines_match(oracle(python, "retain.py", 30),
                       {(s["filename"], s["lineno"]): (s["mem_blocks_size_bytes"],
                                                       s["mem_blocks_count"])
                        for s in doc["stats"]}, RETAIN)
    assert "keep.append(bytearray(4_000_000))" in [s["code"] for s in doc["stats"]]
    assert_bpf_gone(ids)


@pytest.mark.parametrize("params,cli", [
    ({"format": "lineno", "count": 5}, ["--format", "lineno", "--frames", "30", "--count", "5"]),
    ({"format": "traceback", "frames": 7},
     ["--format", "traceback", "--frames", "7", "--count", "10"]),
    ({"cumulative": "Yes", "count": 3},
     ["--format", "lineno", "--frames", "30", "--count", "3", "--cumulative"]),
])
def test_same_bytes_as_the_cli(procs, server, params, cli):
    """With gc=0 the body is the CLI's stdout for the same options, byte for
    byte, but for the window's measured length."""
    py = idle_python(procs)
    status, headers, body = server.get(pid=py.pid, duration=0.3, gc=0, **params)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    rc, out, err = run_hawk("-p", py.pid, "--duration", "0.3", *cli)
    assert rc == 0, err
    assert WINDOW.search(body) and WINDOW.search(out)
    assert WINDOW.sub(b"W", body) == WINDOW.sub(b"W", out)
    # gc=true (the default) adds only the "warnings" key.
    status, headers, body = server.get(pid=py.pid, duration=0.3, **params)
    assert status == 200, body
    assert WINDOW.sub(b"W", without_warning(body)) == WINDOW.sub(b"W", out)


def test_pickle_download(procs, tmp_path, server):
    py = idle_python(procs)
    status, headers, body = server.get(pid=py.pid, duration=0.3, format="pickle",
                                       frames=7)
    assert status == 200, body
    assert headers["content-type"] == "application/octet-stream"
    assert PICKLE_NAME.match(headers["content-disposition"]), headers
    assert headers["x-hawk-warning"] == GC_WARNING
    (tmp_path / "s.pkl").write_bytes(body)
    snap = tracemalloc.Snapshot.load(str(tmp_path / "s.pkl"))
    assert snap.traceback_limit == 7
    rc, out, err = run_hawk("-p", py.pid, "--duration", "0.3", "--format", "pickle",
                            "--frames", "7")
    assert rc == 0 and out == body, err
    status, headers, body = server.get(pid=py.pid, duration=0.3, format="pickle",
                                       gc="false")
    assert status == 200 and "x-hawk-warning" not in headers


# ------------------------------------------------------------------- errors

@pytest.mark.parametrize("query,word", [
    ("pid=", "pid: expected a process ID"),
    ("pid=1,", "pid: expected a process ID from 1 to 2147483647, or several"),
    ("format=pickle&duration=1", "format=pickle over several processes needs merge=true"),
    ("pid=abc", "got 'abc'"),
    ("pid=0", "pid: expected"),
    ("pid=-3", "pid: expected"),
    ("pid=2147483648", "pid: expected"),
    ("pid=1&duration=0", "duration: expected seconds from 0.001 to 300"),
    ("pid=1&duration=301", "duration: expected seconds from 0.001 to 300"),
    ("pid=1&duration=1e3", "duration"),
    ("pid=1&format=json", "format: expected lineno, traceback, pickle, pprof or folded"),
    ("pid=1&format=LINENO", "format"),
    ("pid=1&frames=0", "frames: expected an integer from 1 to 65535"),
    ("pid=1&frames=65536", "frames"),
    ("pid=1&count=0", "count: expected an integer from 1 to 1000000"),
    ("pid=1&count=x", "count"),
    ("pid=1&output=/tmp/x", "unknown parameter 'output'"),
    ("pid=1&o=/tmp/x", "unknown parameter 'o'"),
    ("pid=1&pid=2", "given twice"),
    ("pid=1&format=traceback&cumulative=1", "cumulative"),
    ("pid=1&x=%ff", "unknown parameter 'x'"),
])
def test_bad_parameters(server, query, word):
    t0 = time.monotonic()
    status, headers, body = server.request(BASE, query)
    assert_json_error(status, headers, body, 400, word)
    assert time.monotonic() - t0 < 5
    assert not server.children()


def test_bad_parameters_on_every_endpoint(server):
    for ep in ("", "start/", "snapshot/", "stop/"):
        assert_json_error(*server.request(BASE + ep, "pid=x"), 400, "pid")
        assert_json_error(*server.request(BASE + ep, "pid=1&bogus=1"), 400, "bogus")


def test_unknown_pid(server):
    pid = dead_pid()
    err = assert_json_error(*server.get(pid=pid, duration=1), 404, "no process with PID")
    assert str(pid) in err


def test_not_python(procs, server):
    sleeper = procs.popen(["sleep", "60"])
    time.sleep(0.1)
    assert_json_error(*server.get(pid=sleeper.pid, duration=1), 404,
                      "is not a CPython process")
    assert sleeper.poll() is None


def test_unsupported_python(procs, server):
    path, name = UNSUPPORTED["3.9"]
    py = idle_python(procs, path)
    assert_json_error(*server.get(pid=py.pid, duration=1), 422,
                      f"unsupported CPython {name}")


def raw_request(port, target, headers=b"Host: 127.0.0.1\r\n", version=b"HTTP/1.1"):
    """GET target (bytes, sent as they are: http.client refuses control
    bytes) with the given header lines: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"GET " + target + b" " + version + b"\r\n" + headers +
                  b"Connection: close\r\n\r\n")
        r = http.client.HTTPResponse(s)
        r.begin()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


@pytest.mark.parametrize("target", [
    "start/%00x?pid={pid}", "start/%00?pid={pid}", "start/\0x?pid={pid}",
    "%00?pid={pid}&duration=0.1", "\0?pid={pid}&duration=0.1",
    "?duration=0.1&pid={pid}\0x", "?pid={pid}%00x&duration=0.1",
    "start/?pid={pid}&frames=1%002", "?pid={pid}&duration=0.1&x%00=1",
])
def test_a_nul_in_the_request_target_is_refused(procs, server, target):
    """A NUL, as %00 in the path or a parameter or as a byte anywhere in the
    target, would cut it short where the server reads it (pid=1%00x would
    be pid=1, .../start/%00x would be
    .../start/, and start a session): 400, and nothing runs."""
    py = idle_python(procs)
    try:
        status, headers, body = raw_request(
            server.port, (BASE + target.format(pid=py.pid)).encode())
        assert_json_error(status, headers, body, 400, "NUL")
        assert body.count(b"\n") == 3, body       # {, the one line, }
        assert not server.children()
        assert_json_error(*server.get("stop/", pid=py.pid), 404, "no hawk-bpf session")
    finally:
        run_hawk("stop", "-p", py.pid)


@pytest.mark.parametrize("version,headers", [
    (b"HTTP/1.1", b""),
    (b"HTTP/1.1", b"Host: 127.0.0.1\r\nHost: 127.0.0.1\r\n"),
    (b"HTTP/1.1", b"Host: 127.0.0.1\r\nhost: elsewhere\r\n"),
    (b"HTTP/1.0", b"Host: 127.0.0.1\r\nHost: elsewhere\r\n"),
    (b"HTTP/1.1", b"Host: two words\r\n"),
    (b"HTTP/1.1", b"Host: 127.0.0.1/x\r\n"),
    (b"HTTP/1.1", b"Host: user@127.0.0.1\r\n"),
], ids=["none", "two", "two-cased", "two-in-1.0", "space", "path", "userinfo"])
def test_a_bad_host_header_is_refused(server, version, headers):
    """RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, and for any
    request with two, or with one that is no host[:port]; the request is
    otherwise one that is answered (below)."""
    target = f"{BASE}?pid={dead_pid()}".encode()
    status, h, body = raw_request(server.port, target, headers, version)
    assert_json_error(status, h, body, 400, "Host")
    assert body.count(b"\n") == 3, body


@pytest.mark.parametrize("version,headers", [
    (b"HTTP/1.0", b""),
    (b"HTTP/1.1", b"Host: 127.0.0.1\r\n"),
    (b"HTTP/1.1", b"host: localhost:8000 \r\n"),
    (b"HTTP/1.1", b"Host: [::1]:8000\r\n"),
], ids=["none-in-1.0", "address", "name-port-blank", "ipv6"])
def test_a_good_host_header_is_taken(server, version, headers):
    target = f"{BASE}?pid={dead_pid()}".encode()
    assert_json_error(*raw_request(server.port, target, headers, version), 404,
                      "no process with PID")


def test_methods_and_paths(server):
    for method in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS"):
        status, headers, body = server.request(BASE, "pid=1", method=method)
        assert status == 405, (method, status)
        assert headers["allow"] == "GET"
        if method != "HEAD":
            assert_json_error(status, headers, body, 405, "only GET")
    for path in ("/", "/debug/prof/mem/tracemalloc", BASE + "start", BASE + "bogus/",
                 BASE + "start/x", "/debug/prof/mem/tracemalloc//"):
        assert_json_error(*server.request(path, "pid=1"), 404, "no such endpoint")


# ----------------------------------------------------------------- security

def test_token(procs, tmp_path):
    tok = tmp_path / "token"
    tok.write_text("s3cr3t-token\n")
    srv = Server(procs, "--token-file", tok)
    pid = dead_pid()
    for headers in ({}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "Bearer s3cr3t-token2"},
                    {"Authorization": "Bearer s3cr3t-toke"},
                    {"Authorization": "Basic czNjcjN0LXRva2Vu"},
                    {"Authorization": "s3cr3t-token"}):
        status, h, body = srv.request(BASE, f"pid={pid}", headers=headers)
        assert_json_error(status, h, body, 401, "Authorization")
        assert h["www-authenticate"] == "Bearer"
    # Before anything else: a wrong method or path says nothing more.
    assert srv.request("/nowhere", method="POST")[0] == 401
    for scheme in ("Bearer", "bearer"):
        status, h, body = srv.request(BASE, f"pid={pid}",
                                      headers={"Authorization": f"{scheme} s3cr3t-token"})
        assert_json_error(status, h, body, 404, "no process with PID")


def test_non_loopback_needs_a_token(tmp_path):
    for addr in ("0.0.0.0:0", "[::]:0"):
        rc, out, err = run_hawk("serve", "--listen", addr, timeout=10)
        assert rc == 2 and out == b""
        assert len(err) == 1 and "not a loopback address" in err[0], err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    rc, out, err = run_hawk("serve", "--listen", "127.0.0.1:0", "--token-file", empty,
                            timeout=10)
    assert rc == 2 and len(err) == 1 and "token" in err[0], err
    rc, out, err = run_hawk("serve", "--token-file", tmp_path / "missing", timeout=10)
    assert rc == 2 and len(err) == 1 and "missing" in err[0], err


# -------------------------------------------------------------- concurrency

def test_requests_run_concurrently(procs, server):
    """A fixed-duration request holds up nothing else."""
    a, b = idle_python(procs), idle_python(procs)
    sleeper = procs.popen(["sleep", "60"])
    t0 = time.monotonic()
    long = Background(server.get, pid=a.pid, duration=6, gc=0)
    server.wait_tracing()
    for query, want in ((f"pid={sleeper.pid}", 404), ("pid=x", 400),
                        (f"pid={dead_pid()}", 404)):
        t = time.monotonic()
        assert server.request(BASE, query)[0] == want
        assert time.monotonic() - t < 3
    short = server.get(pid=b.pid, duration=0.5, gc=0)
    assert short[0] == 200, short
    assert json.loads(short[2])["hawk_bpf"]["pid"] == b.pid
    assert long.out is None, "the long request ended too early"
    status, headers, body = long.result()
    assert status == 200, body
    assert json.loads(body)["hawk_bpf"]["window_seconds"] >= 5.9
    assert time.monotonic() - t0 >= 6


def test_concurrent_runs_are_capped(procs, server):
    pys = [idle_python(procs) for _ in range(5)]
    reqs = [Background(server.get, pid=p.pid, duration=60, gc=0) for p in pys[:4]]
    live = server.wait_tracing(4)
    assert_json_error(*server.get(pid=pys[4].pid, duration=1), 503, "too many requests")
    for child in live:
        os.kill(child, signal.SIGINT)   # the windows end early and report
    for r in reqs:
        assert r.result()[0] == 200
    assert server.get(pid=pys[4].pid, duration=0.2)[0] == 200


def test_sigterm_stops_the_children(procs, server):
    py = idle_python(procs)
    req = Background(server.get, pid=py.pid, duration=300)
    (child, ids), = server.wait_tracing().items()
    t0 = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 20
    assert_json_error(*req.result(), 503, "shutting down")
    assert not os.path.exists(f"/proc/{child}")
    assert_bpf_gone(ids)
    assert any("serve stopped" in l for l in server.err.rest())
    assert py.poll() is None


def test_sigint_with_nothing_running(server):
    assert server.stop(signal.SIGINT) == 0


# ------------------------------------------------------ start/snapshot/stop

def session_commands_work():
    rc, out, err = run_hawk("start", "--help")
    return not (rc == 2 and any("not implemented yet" in l for l in err))


def test_session_endpoints(procs, tmp_path, server, oracle):
    """start/, snapshot/ and stop/ run hawk-bpf start, snapshot and stop;
    while those are not implemented, they answer 501."""
    wl = Workload(procs, DEBIAN, "retain.py", tmp_path)
    if not session_commands_work():
        for ep in ("start/", "snapshot/", "stop/"):
            assert_json_error(*server.get(ep, pid=wl.pid), 501, "not implemented yet")
        return
    try:
        status, headers, body = server.get("start/", pid=wl.pid, frames=30)
        assert status == 200, body
        if headers["content-type"] == "application/json":
            assert json.loads(body)["warnings"] == [GC_WARNING]
        else:
            assert headers["x-hawk-warning"] == GC_WARNING
        assert_json_error(*server.get("start/", pid=wl.pid), 409, "already")
        wl.go()
        wl.wait("allocated")
        status, headers, body = server.get("snapshot/", pid=wl.pid, count=1000000)
        assert status == 200, body
        assert headers["content-type"] == "application/json"
        assert "x-hawk-warning" not in headers
        doc = json.loads(body)
        assert "warnings" not in doc
        rc, out, err = run_hawk("snapshot", "-p", wl.pid, "--count", "1000000")
        assert rc == 0, err
        assert json.loads(out)["stats"] == doc["stats"]
        assert_lines_match(oracle(DEBIAN, "retain.py", 30),
                           {(s["filename"], s["lineno"]): (s["mem_blocks_size_bytes"],
                                                           s["mem_blocks_count"])
                            for s in doc["stats"]}, RETAIN)
        status, headers, body = server.get("snapshot/", pid=wl.pid, format="pickle")
        assert status == 200, body
        assert PICKLE_NAME.match(headers["content-disposition"])
        (tmp_path / "s.pkl").write_bytes(body)
        tracemalloc.Snapshot.load(str(tmp_path / "s.pkl"))
        status, headers, body = server.get("stop/", pid=wl.pid)
        assert status == 200, body
    finally:
        run_hawk("stop", "-p", wl.pid)
    assert_json_error(*server.get("snapshot/", pid=wl.pid), 404, "no hawk-bpf session")
    assert_json_error(*server.get("stop/", pid=wl.pid), 404, "no hawk-bpf session")
    assert wl.alive()


# -------------------------------------------------- slow and greedy clients
#
# All of 127.0.0.0/8 is loopback: a test's other clients connect from
# addresses of their own (bound as the source), and the client that must
# be served connects from 127.0.0.1 as usual.

def serve_limits():
    """The connection limits serve's --help gives, so that the tests follow
    them: {"total", "per_ip", "request" (s), "idle" (s)}."""
    rc, out, err = run_hawk("--help")
    assert rc == 0, err
    text = " ".join(out.decode().split())
    m = re.search(r"Connections: at most (\d+) at once and (\d+) from one client "
                  r"address .*?; a request must arrive whole within (\d+) s .*?"
                  r"nothing moves for (\d+) s is closed", text)
    assert m, "serve's --help no longer gives its connection limits"
    return dict(zip(("total", "per_ip", "request", "idle"), map(int, m.groups())))


def held_sockets(server):
    """How many sockets the server process holds: connections it accepted
    (and its listening socket), not those still waiting to be accepted."""
    n = 0
    fds = f"/proc/{server.proc.pid}/fd"
    for fd in os.listdir(fds):
        try:
            n += os.readlink(f"{fds}/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def wait_held(server, want, timeout=10):
    """Waits until the server holds want sockets; how many it holds."""
    end = time.monotonic() + timeout
    while (n := held_sockets(server)) != want and time.monotonic() < end:
        time.sleep(0.05)
    return n


# A request head that never ends: what a slow-loris client sends.
SLOW_HEAD = (f"GET {BASE}?pid=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").encode()


class Clients:
    """TCP connections to the server, one from each source address given.
    slow=True: a thread sends each connection one byte of SLOW_HEAD (then
    of its endless last header) a second.  closed_at[i] is when the server
    was seen closing connection i (EOF or reset), to within 0.1 s."""

    def __init__(self, port, sources, slow=False, socks=()):
        """socks: connections made already, taken over as they are."""
        self.socks, self.sent, self.closed_at = [], [], []
        self.t0 = time.monotonic()
        for src in sources:
            s = socket.socket()
            s.settimeout(5)
            s.bind((src, 0))
            s.connect(("127.0.0.1", port))
            self.socks.append(s)
        self.socks += socks
        for s in self.socks:
            s.setblocking(False)        # the watcher must never wait on one
            self.sent.append(0)
            self.closed_at.append(None)
        self.got = [b""] * len(self.socks)
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self._watch, args=(slow,), daemon=True)
        self.t.start()

    def _watch(self, slow):
        tick = 0
        while not self.stopping.wait(0.1):
            tick += 1
            for i, s in enumerate(self.socks):
                if self.closed_at[i] is not None:
                    continue
                try:
                    if slow and tick % 10 == 0:
                        k = self.sent[i]
                        s.send(SLOW_HEAD[k:k + 1] if k < len(SLOW_HEAD) else b"a")
                        self.sent[i] += 1
                    data = s.recv(4096)
                    self.got[i] += data
                    if not data:
                        self.closed_at[i] = time.monotonic()
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed_at[i] = time.monotonic()

    def open(self):
        return sum(c is None for c in self.closed_at)

    def wait_closed(self, i, timeout):
        end = time.monotonic() + timeout
        while self.closed_at[i] is None and time.monotonic() < end:
            time.sleep(0.05)
        return self.closed_at[i] is not None

    def close(self):
        self.stopping.set()
        self.t.join(5)
        for s in self.socks:
            s.close()


@pytest.fixture
def clients():
    """clients(port, sources, slow=False) -> Clients; all closed at teardown."""
    made = []

    def make(*args, **kw):
        made.append(Clients(*args, **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()


def timed_request(server, *args, **kw):
    """(seconds until the answer, the answer or the error that came instead)."""
    t0 = time.monotonic()
    try:
        r = server.request(*args, timeout=10, **kw)
    except OSError as e:
        r = e
    return time.monotonic() - t0, r


def test_idle_connections_of_one_client_block_no_other(server, clients):
    """64 connections from one client that send nothing leave another
    client's request answered within a second."""
    base = held_sockets(server)
    idle = clients(server.port, ["127.0.0.2"] * 64)
    # The server took in what it takes (the rest it closed): it is not
    # just slow to accept.
    end = time.monotonic() + 10
    while held_sockets(server) - base + 64 - idle.open() != 64 and time.monotonic() < end:
        time.sleep(0.05)
    assert held_sockets(server) > base, "the server took in none of the idle connections"
    t, r = timed_request(server, BASE, f"pid={dead_pid()}")
    assert t < 1 and not isinstance(r, OSError), (t, r)
    assert_json_error(*r, 404, "no process with PID")


def test_a_client_over_its_limit_is_refused(server, clients):
    """A client's connections beyond its share are closed unanswered while
    it keeps those it has, and the others are served; the share is of
    connections open now."""
    per_ip = serve_limits()["per_ip"]
    base = held_sockets(server)
    mine = clients(server.port, ["127.0.0.3"] * per_ip)
    assert wait_held(server, base + per_ip) == base + per_ip
    over = clients(server.port, ["127.0.0.3"])
    assert over.wait_closed(0, timeout=5), "the connection over the limit stayed open"
    assert over.got == [b""], over.got
    assert mine.open() == per_ip
    t, r = timed_request(server, BASE, f"pid={dead_pid()}")
    assert t < 1 and not isinstance(r, OSError), (t, r)
    assert_json_error(*r, 404, "no process with PID")
    mine.socks[0].shutdown(socket.SHUT_RDWR)
    assert wait_held(server, base + per_ip - 1) == base + per_ip - 1
    again = clients(server.port, ["127.0.0.3"])
    assert wait_held(server, base + per_ip) == base + per_ip
    time.sleep(0.5)
    assert again.open() == 1, "a connection within the limit was refused"


@pytest.mark.parametrize("token", [False, True], ids=["no-token", "token"])
def test_answered_within_a_second_beside_100_slow_connections(procs, tmp_path, clients,
                                                              token):
    """100 connections that send their request one byte a second, from as
    many client addresses as it takes for the server to let each in, hold
    up no other client: its request is answered within a second."""
    args, headers = (), {}
    if token:
        (tmp_path / "token").write_text("s3cr3t-token\n")
        args, headers = ("--token-file", tmp_path / "token"), {
            "Authorization": "Bearer s3cr3t-token"}
    srv = Server(procs, *args)
    limits, n = serve_limits(), 100
    assert limits["total"] > n, limits
    k = -(-n // limits["per_ip"])
    base = held_sockets(srv)
    slow = clients(srv.port, [f"127.0.2.{1 + i % k}" for i in range(n)], slow=True)
    held = wait_held(srv, base + n) - base
    time.sleep(2.5)                     # they are under way: two bytes each
    t, r = timed_request(srv, BASE, f"pid={dead_pid()}", headers=headers)
    assert t < 1 and not isinstance(r, OSError), (t, r)
    assert_json_error(*r, 404, "no process with PID")
    # Not vacuous: all of them were in, sending, and none was closed.
    assert held == n, held
    assert slow.open() == n and min(slow.sent) >= 2, (slow.open(), min(slow.sent))


def test_a_slow_request_is_cut_at_its_deadline(server, clients):
    """A client that sends its request a byte a second loses the connection
    when the request deadline passes, counted from the connection, or on a
    kept-alive connection from the previous answer; nothing is answered."""
    deadline = serve_limits()["request"]
    loris = clients(server.port, ["127.0.0.4"], slow=True)
    kept = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                      source_address=("127.0.0.5", 0))
    kept.request("GET", BASE + "?pid=x")
    r = kept.getresponse()
    assert_json_error(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(),
                      400, "pid")
    assert not r.will_close
    answered = time.monotonic()
    second = clients(server.port, [], slow=True, socks=[kept.sock])
    kept.sock = None                    # the trickle owns it now
    for c, t0 in ((loris, loris.t0), (second, answered)):
        assert c.wait_closed(0, timeout=t0 + deadline + 5 - time.monotonic()), \
            f"a request sent a byte a second was not cut {deadline} s on"
        took = c.closed_at[0] - t0
        assert deadline - 0.1 <= took <= deadline + 5, took
        assert c.sent[0] >= deadline - 2 and c.got == [b""], (c.sent, c.got)


def test_a_run_longer_than_the_time_limits_is_answered(procs, server):
    """The request deadline and the idle timeout bound what a client sends
    and its silence, not a run: a profile longer than both is answered."""
    limits = serve_limits()
    duration = max(limits["request"], limits["idle"]) + 1
    py = idle_python(procs)
    status, headers, body = server.request(BASE, f"pid={py.pid}&duration={duration}&gc=0",
                                           timeout=duration + 60)
    assert status == 200, body
    assert json.loads(body)["hawk_bpf"]["window_seconds"] >= duration - 0.1

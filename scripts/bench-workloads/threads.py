"""Four threads doing request-like work at once.

Each thread parses small JSON requests, builds response dicts and strings,
and serializes them; the timed part starts the threads and joins them.
"""
import json
import sys
import threading

from _handshake import run

NTHREADS = 4


def prepare(args):
    return [json.dumps({"id": i, "op": "get", "keys": ["k%d" % k for k in range(8)],
                        "meta": {"client": "c%d" % (i % 5), "retry": i % 3}})
            for i in range(100)]


def worker(reqs, n, out, slot):
    total = 0
    for i in range(n):
        req = json.loads(reqs[i % len(reqs)])
        values = {k: "value-of-%s-%d" % (k, req["id"]) for k in req["keys"]}
        resp = {"id": req["id"], "client": req["meta"]["client"].upper(),
                "values": values, "count": len(values),
                "status": f"ok after {req['meta']['retry']} retries"}
        total += len(json.dumps(resp))
    out[slot] = total


def timed(reqs, args):
    n = max(1, round(6000 * args.scale))
    out = [0] * NTHREADS
    threads = [threading.Thread(target=worker, args=(reqs, n, out, s))
               for s in range(NTHREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(out)


if __name__ == "__main__":
    sys.exit(run(timed, prepare, doc=__doc__))

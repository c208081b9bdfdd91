"""A JSON request loop: parse a request, build a response, serialize it.

Request bodies are made before the timed part.  Each iteration parses one
with json.loads, builds a response dict with formatted strings, serializes
it with json.dumps and drops everything.
"""
import json
import sys

from _handshake import run


def prepare(args):
    reqs = []
    for i in range(200):
        reqs.append(json.dumps({
            "id": i,
            "user": {"name": "user%d" % i, "email": "user%d@example.com" % i,
                     "tags": ["t%d" % (i % 7), "t%d" % (i % 11)]},
            "items": [{"sku": "SKU-%05d" % (i * 10 + k), "qty": k + 1,
                       "price": 1.25 * (k + 1)} for k in range(6)],
            "note": "please deliver before %d:00" % (8 + i % 10),
        }))
    return reqs


def handle(text):
    req = json.loads(text)
    user = req["user"]
    lines = []
    total = 0.0
    for it in req["items"]:
        cost = it["qty"] * it["price"]
        total += cost
        lines.append({"sku": it["sku"].lower(), "qty": it["qty"],
                      "cost": f"{cost:.2f}",
                      "label": "%s x%d" % (it["sku"], it["qty"])})
    resp = {
        "request": req["id"],
        "greeting": f"Hello {user['name'].title()} <{user['email']}>",
        "tags": ",".join(sorted(user["tags"])),
        "lines": lines,
        "total": "{:.2f} EUR".format(total),
        "note": req["note"].upper(),
    }
    return len(json.dumps(resp))


def timed(reqs, args):
    n = max(1, round(12000 * args.scale))
    size = 0
    for i in range(n):
        size += handle(reqs[i % len(reqs)])
    return size


if __name__ == "__main__":
    sys.exit(run(timed, prepare, doc=__doc__))

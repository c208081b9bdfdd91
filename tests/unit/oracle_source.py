"""Oracle for test_source.c: source files written to DIR, and what the REAL
linecache.getline(filename, lineno).strip() returns for every line.

usage: oracle_source.py DIR
Prints {"abs": [[filename, lineno, line]...],        absolute names
        "rel": [[filename, lineno, line]...],        relative to DIR
        "root": [[filename, lineno, line]...]}       names inside DIR/root
"""
import linecache
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_common import print_json  # noqa: E402

BOM = b"\xef\xbb\xbf"
PLAIN = ("# caf\u00e9\n"
         "def f(x):\n"
         "    \treturn x  \t\n"
         "\n"
         "   \n"
         "\ts = '\u65e5\u672c\u8a9e \U0001F40D'   \n"
         "    # the end\n").encode()

FILES = {
    "plain.py": PLAIN,
    "crlf.py": PLAIN.replace(b"\n", b"\r\n"),
    "cr.py": PLAIN.replace(b"\n", b"\r"),
    "mixed_nl.py": b"a = 1\rb = 2\r\nc = 3\n\rd = 4\r\r\n  e\n",
    "no_final_nl.py": b"x = 1\n  y = 2  ",
    "empty.py": b"",
    "only_nl.py": b"\n\n\n",
    "ws_last.py": b"x\n \t ",
    "bom.py": BOM + PLAIN,
    "bom_cookie_utf8.py": BOM + b"# -*- coding: utf-8 -*-\n" + PLAIN,
    "bom_cookie_utf8_alias.py": BOM + b"# coding: utf8\n" + PLAIN,
    "bom_cookie_latin1.py": BOM + b"# -*- coding: latin-1 -*-\nx = '\xe9'\n",
    "cookie_utf8_alias.py": b"# coding: UTF_8\n" + PLAIN,
    "latin1.py": b"# -*- coding: latin-1 -*-\ns = '\xe9t\xe9'\n\xa0 x = 1 \xa0\n\x85y\x85\n",
    "latin1_suffix.py": b"#coding:latin-1-unix\nz = '\xfc'\n",
    "cookie_line2.py": b"#!/usr/bin/env python\n# vim: set fileencoding=iso-8859-15 :\ne = '\xa4'\n",
    "cookie_blank_line1.py": b"   \n# coding=cp1252\nq = '\x80 \x93x\x94'\n",
    "cookie_not_first.py": b"x = 1\n# coding: latin-1\ny = '\xe9'\n",
    "cookie_twice_on_line.py": b"# coding: ; coding=latin-1\nw = '\xe9'\n",
    "cookie_unknown.py": b"# coding: no-such-codec\nx = 1\n",
    "cookie_ascii_bad.py": b"# coding: ascii\nx = '\xe9'\n",
    "invalid_utf8.py": b"x = 1\ny = 2\nz = '\xff'\n",
    "invalid_utf8_line1.py": b"# \xe9\n# coding: latin-1\n",
    "surrogate.py": b"x = 1\ns = '\xed\xa0\x80'\n",
    "overlong.py": b"x = 1\ns = '\xc0\xaf'\n",
    "too_big_cp.py": b"x = 1\ns = '\xf4\x90\x80\x80'\n",
    "truncated_seq.py": b"x = 1\ns = '\xe6\x97'",
    "unicode_ws.py": ("\u3000x = 1\u3000\n"
                      "\u00a0\u2028y\u2029\u202f\n"
                      "\x0c\x0bz\x1c\x1d\x1e\x1f\n"
                      "\x85w\u1680\u2000\u200a\u205f\n"
                      "\u200bzero-width\u200b\n"
                      "\ufeffbom\ufeff\n"
                      "\u180emongolian\u180e\n").encode(),
    "nul.py": b"a = 1\n  a\x00b  \n\x00\n",
    "\u00fcn\u00ef.py": "# \u00fcn\u00ef\nv = 'ok'\n".encode(),
    "<odd>": b"odd = 1\n",
    "long.py": b"".join(b"line_%d = %d\n" % (i, i) for i in range(5000)),
}


def write_files(top):
    for name, data in FILES.items():
        with open(os.path.join(top, name), "wb") as f:
            f.write(data)
    os.mkdir(os.path.join(top, "adir.py"))
    os.mkdir(os.path.join(top, "sub"))
    with open(os.path.join(top, "sub", "rel.py"), "wb") as f:
        f.write(b"  rel = True\n")
    os.symlink("plain.py", os.path.join(top, "link.py"))
    os.makedirs(os.path.join(top, "root", "app"))
    with open(os.path.join(top, "root", "app", "x.py"), "wb") as f:
        f.write(b"def inside_root():\n    pass\n")


def nlines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data.count(b"\n") + data.count(b"\r") + 2
    except OSError:
        return 3


def cases(names, where):
    out = []
    for name in names:
        n = min(nlines(where(name)), 40) if name != "long.py" else 5003
        for lineno in range(0, n + 3):
            out.append([name, lineno, linecache.getline(where(name), lineno).strip()])
    return out


def main():
    top = os.path.realpath(sys.argv[1])
    write_files(top)
    absnames = [os.path.join(top, n) for n in list(FILES) + ["adir.py", "link.py", "missing.py"]]
    absnames += ["", "<string>", "<frozen importlib._bootstrap>"]
    doc = {"abs": cases(absnames, lambda n: n)}
    # relative names: found in the cwd only (we cannot know the target's
    # sys.path), so hide ours from linecache
    os.chdir(top)
    sys.path[:] = []
    doc["rel"] = cases(["plain.py", "sub/rel.py", "missing.py", "<odd>", "os.py"], lambda n: n)
    doc["root"] = [[n[len(top) + len("/root"):], i, line]
                   for n, i, line in cases([os.path.join(top, "root/app/x.py"),
                                            os.path.join(top, "root/app/none.py")], lambda n: n)]
    print_json(doc)


main()

"""Oracle for test_linetable.c: what CPython 3.11's (or 3.10's) own
PyCode_Addr2Line says.

Prints one line per code object:
    <co_linetable hex> <co_firstlineno> <v(-2)> <v(0)> <v(2)> ... <v(len(co_code)+2)>
where v(a) = PyCode_Addr2Line(code, a), called through ctypes so the real C
function answers, for every even byte offset a from -2 to len(co_code)+2.
The code objects: every code object (recursively through co_consts) of a few
dozen stdlib modules compiled from source, plus synthetic source built to hit
every location-table entry kind.
"""
import ctypes
import importlib.util
import sys

if sys.version_info[:2] not in ((3, 10), (3, 11)):
    sys.exit(f"oracle_linetable.py needs CPython 3.10 or 3.11, not {sys.version}")

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.restype = ctypes.c_int
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]

MODULES = """
os re typing argparse json.decoder json.encoder collections inspect
dataclasses tracemalloc pickle pickletools enum functools ast difflib
_pydecimal unittest.case http.client logging subprocess textwrap threading
shutil tarfile zipfile configparser string datetime statistics fractions
doctest pydoc email._header_value_parser asyncio.base_events ipaddress
""".split()


def synthetic():
    """Source exercising long/negative line jumps, wide columns, multi-line
    expressions and compiler-generated no-location instructions."""
    parts = []
    parts.append('''
import functools
def deco(f):
    return f

@deco
@functools.lru_cache(
    maxsize=None,
)
def decorated(a,
              b=[x
                 for x in range(3)],
              *args, **kw):
    total = (a +
             b[0] +
             sum(args))
    try:
        total += 1 / a
    except ZeroDivisionError as e:
        total = -1
    except (TypeError,
            ValueError):
        raise
    else:
        total += 2
    finally:
        total += 3
    with open(__file__) as f, open(__file__) as g:
        total += len(f.read(1) + g.read(1))
    return total

class K(
    object,
):
    attr = [y * 2 for y in range(10) if y % 3
            if y > 1]
    lam = lambda self, q=(1,
                          2): (q,
                               self)

    def gen(self):
        for i in range(10):
            yield i
            yield from (j
                        for j in range(i))
        while True:
            if self:
                break
            continue

    async def agen(self):
        async with self as s:
            async for t in s:
                await t
''')
    # Line jumps larger than 64 (multi-byte signed varints), both ways.
    src = ['def jumps(a):']
    for i in range(40):
        src.append(f'    x{i} = (a +')
        src.extend([''] * (70 + i * 7))
        src.append(f'          {i})')
        src.append(f'    if x{i}:')
        src.append(f'        a = """')
        src.extend(['text'] * (100 + i))
        src.append(f'""" + str(x{i})')
    src.append('    for k in range(3):')
    src.extend([''] * 200)
    src.append('        a += k')
    src.append('    return a')
    parts.append('\n'.join(src))
    # Wide columns: long form entries and every short-form column group.
    wide = ['def wide(a, b):']
    for col in range(0, 200, 7):
        wide.append('    r = ' + ' ' * col + 'a + b + a * b')
        wide.append('    r = (' + 'a' + ' ' * col + ') + (b' + ' ' * col + ')')
    wide.append('    return (r,\n' + ' ' * 150 + 'a,\n' + ' ' * 90 + 'b)')
    parts.append('\n'.join(wide))
    # A very long function: thousands of entries.
    longf = ['def longf(a):']
    for i in range(3000):
        longf.append(f'    a = a + {i} if a else a - {i}')
    longf.append('    return a')
    parts.append('\n'.join(longf))
    return '\n\n'.join(parts) + '\n'


def code_objects(code):
    yield code
    for c in code.co_consts:
        if hasattr(c, 'co_code'):
            yield from code_objects(c)


def report(code):
    n = len(code.co_code)
    vals = [addr2line(code, a) for a in range(-2, n + 3, 2)]
    print(code.co_linetable.hex(), code.co_firstlineno,
          ' '.join(map(str, vals)))


def main():
    sources = [('<synthetic>', synthetic())]
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith('.py'):
            continue
        with open(spec.origin, encoding='utf-8') as f:
            sources.append((spec.origin, f.read()))
    # A module starting far from line 1 and a one-liner with no newline.
    sources.append(('<offset>', '\n' * 500 + 'x = [i for i in range(3)]\n'))
    sources.append(('<tiny>', 'pass'))
    for filename, src in sources:
        for code in code_objects(compile(src, filename, 'exec')):
            report(code)
    # Explicit firstlineno far from the table's own lines.
    report(compile('a=1\nb=2', '<x>', 'exec').replace(co_firstlineno=100000))


main()

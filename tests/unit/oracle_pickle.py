"""Oracle for test_pickle.c: tracemalloc snapshots as the real Python sees them.

    oracle_pickle.py load [--stride K] PATH...
        Snapshot.load() each file, print its canonical form.
    oracle_pickle.py dump DIR
        Take real snapshots (tracemalloc.start(5) plus allocations, and a few
        Snapshot objects built from real traces), Snapshot.dump() each into
        DIR/<name>.pickle, print the canonical form of the in-memory object.

Canonical form (test_pickle.c renders the same text from C):
    snapshot <name>
    limit <traceback_limit>
    ntraces <n>
    tbobjs <distinct traceback tuple objects>  fnobjs <distinct filename objects>
    b <nframe> <hex(filename utf-8)>:<lineno> ...
        (each distinct traceback content, in order of first use)
    t <domain> <size> <total_nframe> <index of its b line>
        (only traces whose index is a multiple of K)
    crc <zlib.crc32 of every trace line, each with its newline>
    end
Anything not shaped exactly like tracemalloc's raw traces prints "error ...".
"""
import os
import pickle
import sys
import tracemalloc
import zlib


def shape_error(snap):
    if type(snap) is not tracemalloc.Snapshot:
        return f'not a Snapshot: {type(snap)}'
    if sorted(vars(snap)) != ['traceback_limit', 'traces']:
        return f'Snapshot attributes {sorted(vars(snap))}'
    if type(snap.traceback_limit) is not int:
        return 'traceback_limit is not an int'
    if type(snap.traces) is not tracemalloc._Traces or \
            sorted(vars(snap.traces)) != ['_traces']:
        return 'traces is not a bare _Traces'
    if type(snap.traces._traces) is not list:
        return '_traces is not a list'
    for t in snap.traces._traces:
        if type(t) is not tuple or len(t) != 4 or type(t[2]) is not tuple \
                or any(type(t[i]) is not int for i in (0, 1, 3)):
            return f'bad trace {t!r}'
        for fr in t[2]:
            if type(fr) is not tuple or len(fr) != 2 or \
                    type(fr[0]) is not str or type(fr[1]) is not int:
                return f'bad frame {fr!r}'
    return None


def canonical(name, snap, stride=1):
    out = [f'snapshot {name}']
    err = shape_error(snap)
    if err:
        return out + [f'error {err}', 'end']
    traces = snap.traces._traces
    out.append(f'limit {snap.traceback_limit}')
    out.append(f'ntraces {len(traces)}')
    tbs = {id(t[2]): t[2] for t in traces}
    fns = {id(fr[0]) for tb in tbs.values() for fr in tb}
    out.append(f'tbobjs {len(tbs)} fnobjs {len(fns)}')
    order = {}      # traceback content -> index, in order of first use
    byid = {}
    tlines = []
    crc = 0
    for i, (domain, size, tb, total) in enumerate(traces):
        k = byid.get(id(tb))
        if k is None:
            k = byid[id(tb)] = order.setdefault(tb, len(order))
        line = f't {domain} {size} {total} {k}'
        crc = zlib.crc32(line.encode() + b'\n', crc)
        if i % stride == 0:
            tlines.append(line)
    for tb in order:
        out.append(f'b {len(tb)} ' + ' '.join(
            f"{fn.encode('utf-8', 'surrogatepass').hex()}:{line}"
            for fn, line in tb))
    out.extend(tlines)
    out.append(f'crc {crc}')
    if len(traces) <= 100000:
        # The public API must work on it too (hashes every traceback).
        for key in ('traceback', 'lineno', 'filename'):
            snap.statistics(key)
    out.append('end')
    return out


def load(args):
    stride = 1
    if args[:1] == ['--stride']:
        stride = int(args[1])
        args = args[2:]
    for path in args:
        name = os.path.basename(path)
        try:
            snap = tracemalloc.Snapshot.load(path)
        except Exception as e:  # report, do not stop: the test compares
            print(f'snapshot {name}\nerror load: {e!r}\nend')
            continue
        print('\n'.join(canonical(name, snap, stride)))


# Source for allocations: many distinct lines (more than 256 memo entries),
# recursion deeper than the traceback limit.
ALLOC_SRC = '''
def deep(n, f):
    if n == 0:
        return f()
    return deep(n - 1, f)

def many(keep):
''' + ''.join(f'    keep.append(bytearray({i % 50 + 1}))\n' for i in range(600))


def compiled(filename):
    ns = {}
    exec(compile(ALLOC_SRC, filename, 'exec'), ns)
    return ns


def take(limit, keep):
    tracemalloc.start(limit)
    for fn in ('dïr/ファイル_🐍.py', '/' + 'long_dir/' * 40 + 'x.py',
               '<plain>'):
        ns = compiled(fn)
        ns['many'](keep)
        ns['deep'](30, lambda: keep.append([0] * 100))
        keep.append([bytes(i) for i in range(1500)])
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return snap


def dump(outdir):
    keep = []
    real5 = take(5, keep)
    real1 = take(1, keep)
    raw = real5.traces._traces
    tb = raw[0][2]
    snaps = {
        'real5': real5,
        'real1': real1,
        'filtered': real5.filter_traces(
            [tracemalloc.Filter(True, '*ファイル*')]),
        'single': tracemalloc.Snapshot(raw[:1], 5),
        'empty': tracemalloc.Snapshot([], 3),
        'bigints': tracemalloc.Snapshot(
            [(2**32 - 1, 2**64 - 1, tb, 65535), (2**31, 2**63, tb, 1),
             (0, 2**31 - 1, tb, 0), (7, 2**31, tb, 2**16),
             (1, 255, tb, 256), (1, 65536, tb, 5)], 2**31),
    }
    for name, snap in snaps.items():
        path = os.path.join(outdir, name + '.pickle')
        snap.dump(path)
        print('\n'.join(canonical(name + '.pickle', snap)))
    # The pure-Python pickler frames large strings differently.
    path = os.path.join(outdir, 'purepy.pickle')
    with open(path, 'wb') as f:
        pickle._Pickler(f, pickle.HIGHEST_PROTOCOL).dump(real5)
    print('\n'.join(canonical('purepy.pickle', real5)))


if __name__ == '__main__':
    if sys.argv[1] == 'load':
        load(sys.argv[2:])
    elif sys.argv[1] == 'dump':
        dump(sys.argv[2])
    else:
        sys.exit(__doc__)

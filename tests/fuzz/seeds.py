"""Seed corpus for pickle_read_fuzz: small snapshots from the real
tracemalloc, pickled the ways hawk-bpf reads them, plus the regression
inputs of regressions.txt.

usage: /usr/bin/python3.11 tests/fuzz/seeds.py SEEDDIR REGRESSDIR

Every seed is a Snapshot.dump() (protocol 5) or a protocol 4 pickle of
snapshots taken by tracemalloc itself and of a few built from its raw
traces with edge values: sizes up to 2**64 - 1, 32-bit domains and line numbers,
non-ASCII and undecodable filenames, recursion, > 256 memo entries.
Each is kept under 16 KiB, the harness's -max_len.
"""
import os
import pickle
import sys
import tracemalloc

MAX_LEN = 16384

SRC = '''
def deep(n, keep):
    if n == 0:
        keep.append(bytearray(64))
        return
    deep(n - 1, keep)

def lines(keep):
''' + ''.join(f'    keep.append(bytearray({i + 1}))\n' for i in range(40))


def own_traces(limit, filename):
    """Real traces of code compiled as filename, at tracemalloc.start(limit)."""
    ns = {}
    exec(compile(SRC, filename, 'exec'), ns)
    keep = []
    tracemalloc.start(limit)
    ns['lines'](keep)
    ns['deep'](8, keep)
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return snap.filter_traces([tracemalloc.Filter(True, filename)])


def edge_snapshots(real):
    tb = real.traces._traces[0][2]
    frame = tb[0]
    many = tuple((f'/m/{i}.py', i) for i in range(300))   # LONG_BINGET
    return {
        'bigints': tracemalloc.Snapshot(
            [(2**32 - 1, 2**64 - 1, tb, 65535), (2**31, 2**63, tb, 1),
             (0, 2**63 - 1, tb, 0), (7, 2**31, tb, 2**16),
             (1, 255, tb, 256), (1, 65536, tb, 5)], 2**31),
        'names': tracemalloc.Snapshot(
            [(0, 10, (('dïr/ファイル_🐍.py', 2**32 - 1),), 1),
             (0, 20, (('\udcff-undecodable.py', 0),), 1),
             (0, 30, (('/' + 'long/' * 60 + 'x.py', 7), frame), 2)], 1),
        'recursion': tracemalloc.Snapshot(
            [(0, 100, (frame,) * 5, 9), (0, 7, (frame, tb[-1], frame), 3)], 5),
        'memo': tracemalloc.Snapshot([(0, 1, many, 300), (0, 2, many, 300)], 300),
        'empty': tracemalloc.Snapshot([], 3),
    }


def pickles(snap, path):
    """snap as Snapshot.dump() writes it (protocol 5) and at protocol 4.
    (The pure-Python pickler differs from the C one only in how it frames
    more than 64 KiB, beyond what a seed may hold.)"""
    snap.dump(path)
    with open(path, 'rb') as f:
        out = {'dump': f.read()}
    os.unlink(path)
    out['p4'] = pickle.dumps(snap, protocol=4)
    return out


def main():
    seeds, regress = sys.argv[1], sys.argv[2]
    os.makedirs(seeds, exist_ok=True)
    os.makedirs(regress, exist_ok=True)
    snaps = {'real1': own_traces(1, 'seed_a.py'), 'real5': own_traces(5, 'seed_b.py')}
    snaps.update(edge_snapshots(snaps['real5']))
    for name, snap in snaps.items():
        for how, data in pickles(snap, os.path.join(seeds, 'tmp')).items():
            if len(data) > MAX_LEN:
                sys.exit(f'{name}: {len(data)} bytes, over {MAX_LEN}')
            with open(os.path.join(seeds, f'{name}-{how}.pickle'), 'wb') as f:
                f.write(data)
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, 'regressions.txt')) as f:
        for line in f:
            if line.strip() and not line.startswith('#'):
                name, hexdata = line.split()
                with open(os.path.join(regress, name), 'wb') as out:
                    out.write(bytes.fromhex(hexdata))


main()

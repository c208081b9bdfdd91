"""The live-block table (bpf/live.bpf.h): two candidate buckets per block,
a spill map for blocks that find both full, and every block beyond that
counted as lost and reported, never silently dropped."""
import json

from helpers import WORKLOADS, assert_lines_match, traced_run

SCRIPT = "many_blocks.py"
KEEP_LINE = 9   # keep.append(bytes(100 + i % 50))


def run(procs, tmp_path, python, blocks, max_blocks):
    hawk, rc, out, err, wl = traced_run(
        procs, tmp_path, python, SCRIPT, "--count", "1000000",
        "--max-blocks", str(max_blocks), extra=("--blocks", str(blocks)))
    doc = json.loads(out)
    lines = {(s["filename"], s["lineno"]): (s["mem_blocks_size_bytes"],
                                            s["mem_blocks_count"])
             for s in doc["stats"]}
    return lines, doc["hawk_bpf"]["counters"], err


def test_nearly_full_table_spills_and_stays_exact(procs, tmp_path, python, oracle):
    """About 95 % of the table's slots in use: some blocks find both their
    buckets full and go to the spill map; none is lost, and every line is
    still what tracemalloc says."""
    want = oracle(python, SCRIPT, 30, "--blocks", "6000")
    live = len(want.traces)
    max_blocks = max(1024, int(live / (2 * 0.95)))
    lines, counters, err = run(procs, tmp_path, python, 6000, max_blocks)
    assert counters["live_blocks_spilled"] > 0, (live, max_blocks, counters)
    assert counters["lost_live_map_full"] == 0, counters
    assert_lines_match(want, lines, str(WORKLOADS / SCRIPT))
    assert not [l for l in err if "warning" in l], err


def test_overfull_table_counts_and_reports_losses(procs, tmp_path, python, oracle):
    """6000 blocks kept where the table and spill map hold about 3000: the
    rest are counted, the report says so, and kept + lost adds up."""
    lines, counters, err = run(procs, tmp_path, python, 6000, 1024)
    lost = counters["lost_live_map_full"]
    kept = lines.get((str(WORKLOADS / SCRIPT), KEEP_LINE), (0, 0))[1]
    assert lost > 0 and kept < 6000, (kept, counters)
    assert kept + lost >= 6000, (kept, counters)
    warned = [l for l in err
              if l.startswith(f"hawk-bpf: warning: lost_live_map_full: {lost} ")]
    assert warned and "--max-blocks" in warned[0], err

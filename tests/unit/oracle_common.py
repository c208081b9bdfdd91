"""Helpers shared by the oracle_*.py scripts, which run as
`$HAWK_PYTHON tests/unit/oracle_x.py ARGS` and import this module from
their own directory."""
import json
import sys


def format_bytes(value: int) -> str:
    # Hawk's helper, verbatim
    formatted_value = float(value)
    for unit in ('B', 'KB', 'MB', 'GB', 'TB', 'PB', 'EB'):
        if abs(formatted_value) < 1024.0:
            return f"{formatted_value:3.1f} {unit}"
        formatted_value /= 1024.0
    return f"{formatted_value:.1f} YB"


def raw_traces(traces):
    """Raw tracemalloc traces (domain, size, frames, total_nframe) as the C
    tests load them: [size, [[filename, lineno]...], total_nframe]."""
    return [[size, [list(f) for f in tb], total] for _, size, tb, total in traces]


def print_json(doc):
    """Writes the one JSON document the C side's oracle() reads."""
    sys.stdout.write(json.dumps(doc))

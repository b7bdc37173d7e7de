"""The trace's files: each rank writes trace_rank<R>.json (Chrome's
trace-event format, pid = rank); rank 0 merges them into trace.json, one
time line (each rank's clock moved to the wall clock by the offset it
recorded), a process per rank and a track per thread. Opens in Perfetto
(ui.perfetto.dev) and chrome://tracing.

    python3 -m zshard.trace_file DIR    merges DIR's rank files again
"""
import glob
import json
import os
import re
import sys
import time

MERGED = "trace.json"
_RANK_FILE = re.compile(r"trace_rank(\d+)\.json$")


def rank_path(directory, rank):
    return os.path.join(directory, f"trace_rank{rank}.json")


def write_json(path, value):
    """`value` as JSON at `path`, atomically (a .tmp renamed)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def rank_files(directory):
    """{rank: path} of the rank traces in `directory`."""
    out = {}
    for path in glob.glob(os.path.join(directory, "trace_rank*.json")):
        m = _RANK_FILE.search(path)
        if m:
            out[int(m.group(1))] = path
    return out


def merge(directory):
    """Merges the rank files into directory/trace.json; returns its path,
    the ranks merged and how many slices they dropped past their limit.
    Timestamps become microseconds since the first slice of any rank."""
    traces = {}
    for rank, path in sorted(rank_files(directory).items()):
        with open(path, encoding="utf-8") as f:
            traces[rank] = json.load(f)
    if not traces:
        raise FileNotFoundError(f"{directory}: no trace_rank<R>.json files to merge")
    shifted = []
    for rank, trace in traces.items():
        offset = trace.get("otherData", {}).get("clock_offset_us", 0)
        for event in trace["traceEvents"]:
            if "ts" in event:
                event["ts"] += offset
            shifted.append(event)
    start = min((e["ts"] for e in shifted if "ts" in e), default=0)
    for event in shifted:
        if "ts" in event:
            event["ts"] -= start
    path = os.path.join(directory, MERGED)
    write_json(path, {"displayTimeUnit": "ms", "otherData": {"ranks": sorted(traces)}, "traceEvents": shifted})
    dropped = sum(t.get("otherData", {}).get("dropped_slices", 0) for t in traces.values())
    return path, sorted(traces), dropped


def merge_when_complete(directory, world_size, wait_seconds=10.0):
    """Rank 0 at exit: waits (up to wait_seconds) for every rank's file,
    then merges what is there, saying which ranks are missing (another
    node's files live on its own disk unless the directory is shared)."""
    deadline = time.monotonic() + wait_seconds
    while len(rank_files(directory)) < world_size and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        path, ranks, dropped = merge(directory)
    except (OSError, ValueError) as e:
        print(f"[zshard] trace: could not merge {directory}: {e}", file=sys.stderr, flush=True)
        return None
    missing = sorted(set(range(world_size)) - set(ranks))
    note = f" (ranks {missing} missing: run `python3 -m zshard.trace_file {directory}` once they are there)" \
        if missing else ""
    if dropped:
        note += (f"; {dropped} slice(s) past the per-rank limit were dropped: give zshard.trace.steps a "
                 "narrower [first, last]")
    print(f"[zshard] trace: {path}, {len(ranks)} rank(s){note}; open it in ui.perfetto.dev or chrome://tracing",
          file=sys.stderr, flush=True)
    return path


def main(argv):
    if len(argv) != 1:
        print("usage: python3 -m zshard.trace_file DIR", file=sys.stderr)
        return 2
    try:
        path, ranks, _ = merge(argv[0])
    except (OSError, ValueError) as e:
        print(f"zshard.trace_file: {e}", file=sys.stderr)
        return 1
    print(f"{path}: ranks {ranks}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

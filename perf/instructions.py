#!/usr/bin/env python
"""Instructions per operation of the hot loops, counted by callgrind: ``python perf/instructions.py``.

Time on this project's machines (shared, nested VMs) swings by 2x between runs; instruction counts
do not. For each loop the same script runs twice under ``valgrind --tool=callgrind`` with a fixed
hash seed, once with 1 operation and once with N, and the difference over N - 1 is the count per
operation (start-up cancels out). ``--tree DIR`` measures another checkout (built) with the same
script, to compare two trees; results go to perf/results/instructions/instructions.json (or
``--out``; a folder of its own: these are counts, not the benchmark table's medians).

Loops: ``book_apply`` near-touch deltas and ``book_apply_random`` deltas at random depths (the
book_apply benchmark's), ``gate_spot_parse_apply`` and ``mexc_parse_apply`` frames through the
parser into BookSync (those benchmarks' frames).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r'''
import sys
sys.path[:0] = [sys.argv[3], sys.argv[3] + "/perf"]
which, n = sys.argv[1], int(sys.argv[2])
if which == "log_call":
    from cexnode._core import logring as lr
    from cexnode.log import get_logger
    lr.activate_ring(lr.LogRing(1 << 16))
    lr.set_levels("info", {})
    info = get_logger("bench.exec", ["bench", "execution"]).info
    for _ in range(n):
        info("order sent", sym="BTC/USDT", px=1.5)
elif which.startswith("book_apply"):
    import bench_core as bc
    book, mid = bc._book_400()
    deltas = bc._near_touch_deltas(mid) if which == "book_apply" else bc._random_depth_deltas(mid)
    book.bench_apply(deltas, n)
else:
    from cexnode._core import symbols as S
    from cexnode._core.book import Book, BookSync, SYNC_SNAPSHOT_DIFF
    if which == "gate_spot_parse_apply":
        import bench_parsers_gate as bp
        from cexnode._core.parsers.gateio_spot import GateSpotParser as P
        from cexnode._core.parsers.recording import BookSyncSink
        m, sym = bp._registry(), bp.SYMBOL
    else:
        import bench_parsers_mexc as bp
        from cexnode._core.parsers.mexc_spot import BookSyncSink, MexcSpotParser as P
        reg = S.SymbolRegistry()
        reg.add_instrument({"venue": "mexc_spot", "symbol": "BTC/USDT", "venue_symbol": "BTCUSDT",
                            "tick": "0.01", "qty_step": "0.000001"})
        reg.freeze()
        m, sym = reg.map("mexc_spot"), "BTCUSDT"
    snapshot, frames = bp._frames(int(sys.argv[4]))
    book = Book(m.id_of(sym), m.venue)
    sync = BookSync(book, SYNC_SNAPSHOT_DIFF)
    sync.py_snapshot(snapshot[0], snapshot[1], snapshot[2])
    p = P(m, BookSyncSink({book.symbol_id: sync}))
    p.bench_feed(frames[:n], 1)
    assert sync.resyncs == 0
'''

# loop -> (operations in the long run, operations per unit: deltas per repetition for the books)
LOOPS = {"book_apply": (2001, 4), "book_apply_random": (201, 72), "gate_spot_parse_apply": (20001, 1),
         "mexc_parse_apply": (20001, 1), "log_call": (2001, 1)}


def _count(script: str, tree: pathlib.Path, loop: str, n: int, frames: int) -> int:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, sys.executable, script,
                            loop, str(n), str(tree), str(frames)], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONHASHSEED="0"), cwd=str(tree))
        m = re.search(r"Collected : (\d+)", r.stderr)
        if r.returncode != 0 or m is None:
            raise RuntimeError("callgrind run failed: %s" % r.stderr[-2000:])
        return int(m.group(1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated loop names")
    ap.add_argument("--tree", default=str(ROOT), help="the checkout to measure (its built extensions and perf/)")
    ap.add_argument("--out", default=None, help="JSON file (default: perf/results/instructions/instructions.json)")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    only = {w for w in args.only.split(",") if w}
    res = {"name": "instructions", "tree": str(pathlib.Path(args.tree).resolve()), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loops": {}}
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "child.py")
        pathlib.Path(script).write_text(CHILD)
        for loop, (n, unit) in LOOPS.items():
            if only and loop not in only:
                continue
            frames = n if "parse" in loop else 1
            tree = pathlib.Path(args.tree).resolve()
            short, long = _count(script, tree, loop, 1, frames), _count(script, tree, loop, n, frames)
            per = (long - short) / ((n - 1) * unit)
            res["loops"][loop] = {"instructions_per_op": round(per, 1), "ops": (n - 1) * unit}
            print("%-24s %8.1f instructions per %s" % (loop, per, "frame" if "parse" in loop else "call" if loop == "log_call" else "delta"))
    out = pathlib.Path(args.out or HERE / "results" / "instructions" / "instructions.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

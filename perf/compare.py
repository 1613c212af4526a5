#!/usr/bin/env python
"""Two checkouts side by side in one run: ``python perf/compare.py --base DIR [--rounds N] [--only ...]``.

Runs ``perf/run.py --json --no-write`` of this checkout (head) and of ``--base`` (another checkout
with its own built ``.venv``, e.g. ``git worktree add /tmp/base <commit> && make -C /tmp/base build``)
module by module, alternating base, head, base, head ... (``--rounds`` times each), so that both
see the same machine load. Per benchmark: the median of each side's medians and head/base. A
benchmark slower by more than ``--tolerance`` (default 10 %) is flagged. Writes
``perf/results/compare.json`` (unless ``--no-write``) and prints a table. Exit status 0: benchmarks
report, tests assert.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
HEAD = HERE.parent


def _modules(tree: pathlib.Path) -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in (tree / "perf").glob("bench_*.py"))


def _run(tree: pathlib.Path, only: str, quick: bool, timeout_s: float) -> dict[str, dict]:
    cmd = [str(tree / ".venv" / "bin" / "python"), str(tree / "perf" / "run.py"), "--json", "--no-write", "--only", only]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=timeout_s)
    out = {}
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            out[r["name"]] = r
    if proc.returncode != 0 and not out:
        print("%s: perf/run.py --only %s failed:\n%s" % (tree, only, proc.stderr[-2000:]), file=sys.stderr)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the other checkout (built)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each side per module (alternating)")
    ap.add_argument("--only", default="", help="comma-separated modules or benchmarks (default: every module both have)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--timeout-s", type=float, default=1800.0, help="per perf/run.py invocation")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--out", default="compare", help="results file perf/results/<OUT>.json (a re-check of a few: another name)")
    args = ap.parse_args(argv)
    base = pathlib.Path(args.base).resolve()

    units = [w for w in args.only.split(",") if w] or [m for m in _modules(HEAD) if m in set(_modules(base))]
    samples: dict[str, dict[str, list[float]]] = {}
    for unit in units:
        for _ in range(args.rounds):
            for side, tree in (("base", base), ("head", HEAD)):
                for name, r in _run(tree, unit, args.quick, args.timeout_s).items():
                    if r.get("median_ns") is not None:
                        samples.setdefault(name, {"base": [], "head": []})[side].append(float(r["median_ns"]))
        print("measured %s" % unit, file=sys.stderr, flush=True)

    rows = []
    for name in sorted(samples):
        b, h = samples[name]["base"], samples[name]["head"]
        if not b or not h:
            continue
        mb, mh = statistics.median(b), statistics.median(h)
        ratio = mh / mb if mb else None
        rows.append({"name": name, "base_median_ns": mb, "head_median_ns": mh, "ratio": ratio,
                     "within_tolerance": ratio is not None and ratio <= 1 + args.tolerance,
                     "base_samples": b, "head_samples": h})
    for r in rows:
        print("%-28s base %12.1f ns  head %12.1f ns  head/base %5.2f  %s" % (
            r["name"], r["base_median_ns"], r["head_median_ns"], r["ratio"] or 0,
            "" if r["within_tolerance"] else "SLOWER"))
    if not args.no_write:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=base, capture_output=True, text=True).stdout.strip()
        doc = {"kind": "compare", "base": rev, "only": args.only or "all", "rounds": args.rounds, "tolerance": args.tolerance, "quick": args.quick,
               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": rows}
        (HERE / "results" / ("%s.json" % args.out)).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

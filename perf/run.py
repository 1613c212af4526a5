#!/usr/bin/env python
"""Benchmark runner: ``python perf/run.py [--only NAME[,NAME]] [--json] [--quick]``.

Each ``perf/bench_*.py`` module defines ``BENCHMARKS``: a list of callables ``fn(quick: bool) -> dict``
(or an iterable of dicts). A result dict has at least ``name``, ``median_ns``, ``p99_ns`` and
``target_ns`` (None when the benchmark has no target); extra keys carry peers measured side by side
in the same run and their ratios. Results are written to ``perf/results/<name>.json`` and printed as
a table, or as one JSON line each with ``--json``. Exit status is 0 even when a target is missed:
benchmarks report, tests assert.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import platform
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def _modules():
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield path.stem[len("bench_"):], mod


def _fmt_ns(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return "%.2f ms" % (v / 1e6)
    if v >= 1e3:
        return "%.2f us" % (v / 1e3)
    return "%.1f ns" % v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated benchmark or module names")
    ap.add_argument("--json", action="store_true", help="one JSON line per benchmark")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    ap.add_argument("--no-write", action="store_true", help="do not write perf/results/")
    args = ap.parse_args(argv)
    only = {w for w in args.only.split(",") if w}

    RESULTS.mkdir(exist_ok=True)
    found = 0
    for mod_name, mod in _modules():
        for bench in getattr(mod, "BENCHMARKS", []):
            bname = getattr(bench, "bench_name", bench.__name__)
            if only and mod_name not in only and bname not in only:
                continue
            out = bench(args.quick)
            results = [out] if isinstance(out, dict) else list(out)
            for r in results:
                found += 1
                r.setdefault("target_ns", None)
                r["met"] = None if r["target_ns"] is None else bool(r["median_ns"] <= r["target_ns"])
                r["machine"] = {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()}
                r["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                if not args.no_write:
                    (RESULTS / ("%s.json" % r["name"])).write_text(json.dumps(r, indent=2, sort_keys=True) + "\n")
                if args.json:
                    print(json.dumps(r, sort_keys=True), flush=True)
                else:
                    extra = {k: v for k, v in r.items() if k not in ("name", "median_ns", "p99_ns", "target_ns", "met", "machine", "when")}
                    print("%-24s median %-10s p99 %-10s target %-10s %s  %s" % (
                        r["name"], _fmt_ns(r["median_ns"]), _fmt_ns(r.get("p99_ns")), _fmt_ns(r["target_ns"]),
                        {True: "MET", False: "MISSED", None: ""}[r["met"]],
                        json.dumps(extra, sort_keys=True) if extra else ""), flush=True)
    if only and not found:
        print("no benchmark matches --only %s" % args.only, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

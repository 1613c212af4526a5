"""Markdown table of the committed benchmark results: ``python perf/summary.py``.

One row per ``perf/results/<name>.json``: median, p99, target, met, and the side-by-side ratios
measured in the same run (every key starting with ``ratio_vs_`` or ``speedup_vs_``).
"""
from __future__ import annotations

import json
import pathlib
import sys

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def _ns(v) -> str:
    if v is None:
        return ""
    v = float(v)
    if v >= 1e6:
        return "%.2f ms" % (v / 1e6)
    if v >= 1e3:
        return "%.2f μs" % (v / 1e3)
    return "%.1f ns" % v


def rows() -> list[str]:
    out = ["| benchmark | median | p99 | target | met | measured side by side |", "|---|---|---|---|---|---|"]
    for path in sorted(RESULTS.glob("*.json")):
        d = json.loads(path.read_text())
        ratios = ", ".join("%s %.1f×" % (k.replace("ratio_vs_", "vs ").replace("speedup_vs_", "vs "), v)
                           for k, v in sorted(d.items())
                           if (k.startswith("ratio_vs_") or k.startswith("speedup_vs_")) and isinstance(v, (int, float)))
        out.append("| `%s` | %s | %s | %s | %s | %s |" % (d.get("name", path.stem), _ns(d.get("median_ns")), _ns(d.get("p99_ns")),
                                                         _ns(d.get("target_ns")), "yes" if d.get("met") else "**no**", ratios))
    return out


if __name__ == "__main__":
    sys.stdout.write("\n".join(rows()) + "\n")

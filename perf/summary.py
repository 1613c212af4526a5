"""Markdown table of the committed benchmark results: ``python perf/summary.py [--write]``.

One row per ``perf/results/<name>.json``: median, p99, target, met, the rate for throughput
benchmarks, and the side-by-side ratios measured in the same run (every key starting with
``ratio_vs_`` or ``speedup_vs_``). ``--write`` writes the table into docs/benchmarks.md between
the ``benchmarks:begin`` / ``benchmarks:end`` markers (tests/unit/test_docs.py checks it is current).
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
        rate = next((d[k] for k in ("frames_per_s", "records_per_s_median") if isinstance(d.get(k), (int, float))), None)
        median = _ns(d.get("median_ns")) + (" (%s/s)" % _rate(rate) if rate else "")
        out.append("| `%s` | %s | %s | %s | %s | %s |" % (d.get("name", path.stem), median, _ns(d.get("p99_ns")),
                                                         _ns(d.get("target_ns")), "yes" if d.get("met") else "**no**", ratios))
    return out


def _rate(v: float) -> str:
    return "%.2f M" % (v / 1e6) if v >= 1e6 else "%.0f k" % (v / 1e3)


DOC = RESULTS.parent.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"


def table() -> str:
    """The generated block, as it stands between the markers."""
    return "\n" + "\n".join(rows()) + "\n"


def write_doc(path: pathlib.Path = DOC) -> None:
    text = path.read_text()
    i, j = text.index(BEGIN) + len(BEGIN), text.index(END)
    path.write_text(text[:i] + table() + text[j:])


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write_doc()
    else:
        sys.stdout.write("\n".join(rows()) + "\n")

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
        if d.get("kind") in ("soak", "compare"):
            continue
        ratios = ", ".join("%s %.1f×" % (k.replace("ratio_vs_", "vs ").replace("speedup_vs_", "vs "), v)
                           for k, v in sorted(d.items())
                           if (k.startswith("ratio_vs_") or k.startswith("speedup_vs_")) and isinstance(v, (int, float)))
        rate = next((d[k] for k in ("frames_per_s", "records_per_s_median") if isinstance(d.get(k), (int, float))), None)
        median = _ns(d.get("median_ns")) + (" (%s/s)" % _rate(rate) if rate else "")
        target, met = _ns(d.get("target_ns")), d.get("met")
        if isinstance(d.get("target_bytes_per_book"), (int, float)):      # a memory benchmark
            median = "%.1f KB a book" % (d["rss_bytes_per_book"] / 1024)
            target, met = "%.0f KB" % (d["target_bytes_per_book"] / 1024), d.get("meets_target")
        shown = "-" if met is None and not target else "yes" if met else "**no**"
        out.append("| `%s` | %s | %s | %s | %s | %s |" % (d.get("name", path.stem), median, _ns(d.get("p99_ns")),
                                                         target, shown, ratios))
    return out


def compare_rows() -> list[str]:
    """The side-by-side comparisons of two checkouts (perf/compare.py): the whole set, then any re-check."""
    out = []
    for path in sorted(RESULTS.glob("compare*.json")):
        d = json.loads(path.read_text())
        out += ["", "Side by side with %s (`python perf/compare.py --base DIR%s%s`, %s, %d alternating runs a side, "
                "benchmarks: %s): head/base of the medians; flagged when slower by more than %g %%."
                % (d.get("base", "?"), " --quick" if d.get("quick") else "",
                   "" if d.get("only", "all") == "all" else " --only " + d["only"], d.get("when", ""),
                   d.get("rounds", 0), d.get("only", "all"), 100 * d.get("tolerance", 0.1)), "",
                "| benchmark | base median | head median | head/base | within |", "|---|---|---|---|---|"]
        for r in d.get("results", []):
            out.append("| `%s` | %s | %s | %.2f | %s |" % (r["name"], _ns(r["base_median_ns"]), _ns(r["head_median_ns"]),
                                                      r["ratio"] or 0, "yes" if r["within_tolerance"] else "**no**"))
    return out


def soak_rows() -> list[str]:
    """The memory soak (perf/soak.py): RSS at the warm-up minute and at the end, slope after warm-up."""
    path = RESULTS / "soak.json"
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    out = ["", "Memory soak (`make soak`, %g min per rate, %s): RSS of the node and of the simulator (own process) "
           "at minute %g and at the end, slope from minute %g on; flat = within %g %%."
           % (d.get("minutes", 0), d.get("date", ""), d["runs"][0].get("warmup_min", 2) if d.get("runs") else 2,
              d["runs"][0].get("warmup_min", 2) if d.get("runs") else 2, d.get("flat_pct", 2)), "",
           "| rate | frames/s | trades | tick-to-decision p50 / p99 | node RSS | node slope | sim RSS | sim slope | flat |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in d.get("runs", []):
        t = r.get("tick_to_decision_us") or {}
        cells = []
        for n in ("node", "sim"):
            x = r.get(n, {})
            cells.append("%s → %s MB" % (x.get("rss_warmup_mb"), x.get("rss_end_mb")))
            cells.append("%+.1f MB/h" % x["slope_mb_per_hour"] if x.get("slope_mb_per_hour") is not None else "")
        flat = all(r.get(n, {}).get("flat") for n in ("node", "sim"))
        out.append("| `%s` (%s ms) | %s | %s | %s / %s μs | %s | %s | %s | %s | %s |" % (
            r["rate"], r.get("update_interval_ms"), r.get("frames_per_s"), r.get("trades"), t.get("p50"), t.get("p99"),
            cells[0], cells[1], cells[2], cells[3], "yes" if flat else "**no**"))
    return out


def insitu_rows() -> list[str]:
    """The in-situ runs (perf/bench_insitu.py): the node and its peers in their own processes against the
    simulator in its own, CPU per frame from /proc over the frames each counted."""
    out = []
    for path in sorted(RESULTS.glob("insitu_*.json")):
        d = json.loads(path.read_text())
        if not out:
            out = ["", "In situ (`python perf/bench_insitu.py`, `make bench-peers`): the node, and peers on the same streams, "
                   "each in its own process against the simulator in its own; CPU = utime+stime over the window / frames "
                   "the process received. Load is the 1-minute load average at the window's start and end (2 cores).",
                   "Idle: the node's CPU with the simulator's clock paused; marginal: CPU per frame without it. Variants are "
                   "more nodes on the same streams with one config key changed.",
                   "", "| run | books | frames/s offered → reached | node CPU / frame (marginal; idle CPU, wake-ups/frame) | "
                   "tick-to-decision p50 / p99 | in sync at end, resyncs, audits | variants, peers: CPU / frame "
                   "(peers: ratio to node) | load |", "|---|---|---|---|---|---|---|---|"]
        t = d.get("tick_to_decision_us") or {}
        peers = ", ".join("%s %.1f μs (%.1f×)%s" % (k, v["cpu_us_per_frame"], d.get("ratio_vs_" + k) or 0,
                                                 " fell behind at %.0f/s" % v["frames_per_s"] if v.get("fell_behind") else "")
                          for k, v in sorted((d.get("peers") or {}).items()) if v.get("cpu_us_per_frame"))
        audits = d.get("book_audits") or {}
        variants = ", ".join("%s %s μs (marginal %s)" % (k, v.get("cpu_us_per_frame"), v.get("marginal_cpu_us_per_frame"))
                             for k, v in sorted((d.get("variants") or {}).items()))
        peers = "; ".join(x for x in (variants, peers) if x)
        cpu = "%s μs (%s; %s %%, %s)" % (d.get("node_cpu_us_per_frame"), d.get("marginal_cpu_us_per_frame"),
                                         d.get("idle_cpu_pct"), d.get("wakeups_per_frame"))
        out.append("| `%s` | %s | %s → %s | %s | %s / %s μs | %s, %s, %s | %s | %s |" % (
            d["name"], d.get("books_total"), d.get("offered_fps") or "-", d.get("reached_fps"), cpu,
            t.get("p50"), t.get("p99"), "yes" if d.get("all_books_in_sync_at_end") else "**no**",
            d.get("resyncs_in_window"), " ".join("%s %d" % kv for kv in sorted(audits.items())) or "-", peers or "-",
            " → ".join(str(x) for x in d.get("loadavg_1m") or [])))
    return out


def _rate(v: float) -> str:
    return "%.2f M" % (v / 1e6) if v >= 1e6 else "%.0f k" % (v / 1e3)


DOC = RESULTS.parent.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"


def table() -> str:
    """The generated block, as it stands between the markers."""
    return "\n" + "\n".join(rows() + soak_rows() + insitu_rows() + compare_rows()) + "\n"


def write_doc(path: pathlib.Path = DOC) -> None:
    text = path.read_text()
    i, j = text.index(BEGIN) + len(BEGIN), text.index(END)
    path.write_text(text[:i] + table() + text[j:])


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write_doc()
    else:
        sys.stdout.write("\n".join(rows() + soak_rows() + insitu_rows() + compare_rows()) + "\n")

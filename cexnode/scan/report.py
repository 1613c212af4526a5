"""The scan's closing report: one row per route it saw, as ``table``, ``csv`` or ``json``.

Columns (docs/scanner.md): ``route, symbol, status`` (``live``, or ``removed`` when the route left
the engine's table before the end), ``direction`` (buy venue -> sell venue of the best sample),
``best_net_bps``, ``median_net_bps`` (over the refreshes that priced the route at ``size``),
``samples``, ``priced``, ``opportunities`` (the engine's, for this route), ``opportunities_per_min``,
``depth_max`` (the largest quote depth at >= 0 bps net seen), ``book_age_ms`` (median age per leg's
book over the refreshes). ``json`` writes one object per line (decimals as exact strings), the route
rows (``"type": "route"``) and then a ``"type": "summary"`` line; ``csv`` a header and the rows;
``table`` aligned text as ``cexnode trades`` writes it (a file, a pipe and a terminal alike).
"""
from __future__ import annotations

import csv
import json
from decimal import Decimal
from typing import Optional, TextIO

from cexnode.scan.stats import RouteStats, ScanStats
from cexnode.storage.report import format_table

__all__ = ["report_rows", "write_report", "FIELDS", "FORMATS"]

FORMATS = ("table", "csv", "json")
FIELDS = ("route", "symbol", "status", "direction", "best_net_bps", "median_net_bps", "samples", "priced",
          "opportunities", "opportunities_per_min", "depth_max", "book_age_ms")
_NUMERIC = {"best_net_bps", "median_net_bps", "samples", "priced", "opportunities", "opportunities_per_min",
            "depth_max"}


def _dec(v: Optional[Decimal]) -> Optional[str]:
    return None if v is None else str(v)


def _row(st: RouteStats, stats: ScanStats, now: float) -> dict:
    rate = stats.per_minute(st.route, now)
    return {
        "route": st.route, "symbol": st.symbol, "status": "live" if st.until is None else "removed",
        "direction": st.best_direction or None, "best_net_bps": _dec(st.best_bps),
        "median_net_bps": _dec(st.median_bps), "samples": st.samples, "priced": st.priced,
        "opportunities": stats.opportunities_of(st.route),
        "opportunities_per_min": None if rate is None else round(rate, 2),
        "depth_max": str(st.depth_max), "book_age_ms": st.median_ages_ms(),
    }


def report_rows(stats: ScanStats, now: float) -> list[dict]:
    """One dict per route (:data:`FIELDS`), best net bps first (routes never priced last)."""
    rows = [_row(st, stats, now) for st in stats.all_routes()]
    rows.sort(key=lambda r: (r["best_net_bps"] is None, -Decimal(r["best_net_bps"] or 0), r["route"]))
    return rows


def _ages(d: dict) -> str:
    return " ".join("%s=%s" % (v, "-" if a is None else a) for v, a in d.items())


def _cell(v) -> str:
    return "-" if v is None else str(v)


def write_report(stats: ScanStats, now: float, fmt: str, out: TextIO, summary: dict) -> None:
    """The report in ``fmt`` (one of :data:`FORMATS`) to ``out``; ``summary``: the run's totals
    (the ``summary`` line of json, the last line of table)."""
    rows = report_rows(stats, now)
    if fmt == "json":
        for r in rows:
            out.write(json.dumps(dict(type="route", **r)) + "\n")
        out.write(json.dumps(dict(type="summary", **summary)) + "\n")
        return
    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(FIELDS)
        for r in rows:
            w.writerow(["" if r[k] is None else (_ages(r[k]) if k == "book_age_ms" else r[k]) for k in FIELDS])
        return
    if fmt != "table":
        raise ValueError("unknown report format %r (one of %s)" % (fmt, ", ".join(FORMATS)))
    right = {i for i, k in enumerate(FIELDS) if k in _NUMERIC}
    cells = [[_ages(r[k]) if k == "book_age_ms" else _cell(r[k]) for k in FIELDS] for r in rows]
    out.write("routes at %s quote\n" % stats.size)
    for line in format_table(list(FIELDS), cells, right):
        out.write(line + "\n")
    out.write(" | ".join("%s %s" % (k.replace("_", " "), v) for k, v in summary.items()) + "\n")

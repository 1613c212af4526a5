"""``cexnode trades``, ``cexnode pnl`` and ``cexnode db rebuild``: the trade database on the command line.

``trades`` and ``pnl`` first bring the database up to date with the audit file (the same
idempotent catch-up the node's thread runs; safe while the node runs), then read it. Output:
``table`` (plain aligned text for a terminal, money rounded for reading), ``csv`` and ``json``
(one object per line) with the exact decimal strings.
"""
from __future__ import annotations

import csv
import decimal
import json
import os
import sys
from decimal import Decimal
from typing import Any, Optional, TextIO

from cexnode.storage.tradedb import TradeDB, TradeDBError, db_path, utc_time

__all__ = ["trades_main", "pnl_main", "rebuild_main", "format_table"]

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT = 0, 1, 2


class _Failed(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def format_table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    """Columns padded to their widest cell; the indices in ``right`` aligned right (numbers)."""
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in rows)
    return out


def _money(d: Decimal, places: int = 2) -> str:
    q = Decimal(1).scaleb(-places)
    v = d.quantize(q, rounding=decimal.ROUND_HALF_EVEN, context=decimal.Context(prec=400))
    return "{:f}".format(v + 0 if v else Decimal(0).quantize(q))


def _num(s: Optional[str]) -> str:
    if s is None or s == "":
        return ""
    d = Decimal(s)
    return "{:f}".format(d.normalize()) if d else "0"


def _open(cfg: Any) -> TradeDB:
    """The database, caught up with the audit file. A database that cannot be written (read-only
    file system, another user's file) is read as it is, with a warning."""
    path, audit = db_path(cfg), cfg.log.audit.path
    if not os.path.exists(path) and not os.path.exists(audit):
        raise _Failed("no trade history: neither the trade database %s (storage.path) nor the audit log %s "
                      "(log.audit.path) exists; the node writes them when it runs with this config"
                      % (os.path.abspath(path), os.path.abspath(audit)), EXIT_BAD_INPUT)
    try:
        db = TradeDB(path)
    except TradeDBError as e:
        try:
            db = TradeDB(path, readonly=True)
        except TradeDBError:
            raise _Failed(str(e), EXIT_BAD_INPUT) from None
        sys.stderr.write("cexnode: warning: %s; showing the database as it is\n" % e)
        return db
    try:
        db.catch_up(audit)
    except Exception as e:   # OSError, sqlite3.Error: the rows already there are still right
        sys.stderr.write("cexnode: warning: could not bring %s up to date with %s (%s: %s); showing it as it is\n"
                         % (db.path, os.path.abspath(audit), type(e).__name__, e))
    return db


def _run(fn, *args) -> int:
    try:
        return fn(*args)
    except _Failed as e:
        sys.stderr.write("cexnode: %s\n" % e)
        return e.code


def trades_main(cfg: Any, *, since_ns: Optional[int], route: Optional[str], fmt: str, out: TextIO) -> int:
    return _run(_trades, cfg, since_ns, route, fmt, out)


def _trades(cfg, since_ns, route, fmt, out) -> int:
    with _open(cfg) as db:
        rows = db.trades(since_ns=since_ns, route=route)
        rejected = len(db.trades(since_ns=since_ns, route=route, rejected=True)) - len(rows)
    if fmt == "json":
        for r in rows:
            out.write(json.dumps(_trade_record(r)) + "\n")
        return EXIT_OK
    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        keys = list(_trade_record(rows[0]).keys()) if rows else list(_trade_record(_EMPTY_TRADE).keys())
        keys.remove("orders")
        w.writerow(keys)
        for r in rows:
            rec = _trade_record(r)
            w.writerow([rec[k] if rec[k] is not None else "" for k in keys])
        return EXIT_OK
    headers = ["started (UTC)", "trade", "route", "buy", "sell", "qty", "status", "expected", "realised", "fees"]
    table = [[utc_time(r["started_ns"]), str(r["trade_id"]), r["route"] or "", r["buy_venue"] or "",
              r["sell_venue"] or "", _num(r["qty"]), r["status"], _money(Decimal(r["expected_pnl"] or "0")),
              _money(r["realised"]), _money(r["fees"], 4)] for r in rows]
    lines = format_table(headers, table, {1, 5, 7, 8, 9})
    total = sum((r["realised"] for r in rows), Decimal(0))
    lines.append("%d trade%s, realised P&L %s%s" % (len(rows), "" if len(rows) == 1 else "s", _money(total),
                 "; %d rejected opportunit%s not listed" % (rejected, "y" if rejected == 1 else "ies") if rejected else ""))
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


_EMPTY_TRADE = {k: None for k in ("run", "trade_id", "route", "symbol", "buy_venue", "sell_venue", "qty", "buy_price",
                                  "sell_price", "expected_pnl", "started_ns", "status", "reason", "buy_filled",
                                  "sell_filled", "residual", "ended_ns", "duration_us")}
_EMPTY_TRADE.update(fills=0, realised=Decimal(0), fees=Decimal(0), orders=[])


def _trade_record(r: dict) -> dict:
    return {"started": utc_time(r["started_ns"]), "run": r["run"], "trade_id": r["trade_id"], "route": r["route"],
            "symbol": r["symbol"], "buy_venue": r["buy_venue"], "sell_venue": r["sell_venue"], "qty": r["qty"],
            "buy_price": r["buy_price"], "sell_price": r["sell_price"], "status": r["status"], "reason": r["reason"],
            "buy_filled": r["buy_filled"], "sell_filled": r["sell_filled"], "residual": r["residual"],
            "expected_pnl": r["expected_pnl"], "realised_pnl": str(r["realised"]), "fees": str(r["fees"]),
            "fills": r["fills"], "ended": utc_time(r["ended_ns"]), "duration_us": r["duration_us"],
            "orders": r["orders"]}


def pnl_main(cfg: Any, *, by: str, fmt: str, out: TextIO) -> int:
    return _run(_pnl, cfg, by, fmt, out)


def _pnl(cfg, by, fmt, out) -> int:
    with _open(cfg) as db:
        rows = db.pnl(by)
    recs = [{by: r[by], "trades": r["trades"], "fills": r["fills"], "fees": str(r["fees"]),
             "realised_pnl": str(r["realised"])} for r in rows]
    if fmt == "json":
        for rec in recs:
            out.write(json.dumps(rec) + "\n")
        return EXIT_OK
    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow([by, "trades", "fills", "fees", "realised_pnl"])
        for rec in recs:
            w.writerow(list(rec.values()))
        return EXIT_OK
    table = [[r[by] or "-", str(r["trades"]), str(r["fills"]), _money(r["fees"], 4), _money(r["realised"])] for r in rows]
    lines = format_table([by, "trades", "fills", "fees", "realised"], table, {1, 2, 3, 4})
    total = sum((r["realised"] for r in rows), Decimal(0))
    lines.append("total: %d trades, %d fills, fees %s, realised P&L %s"
                 % (sum(r["trades"] for r in rows), sum(r["fills"] for r in rows),
                    _money(sum((r["fees"] for r in rows), Decimal(0)), 4), _money(total)))
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def rebuild_main(cfg: Any, *, out: TextIO) -> int:
    return _run(_rebuild, cfg, out)


def _rebuild(cfg, out) -> int:
    audit = cfg.log.audit.path
    if not os.path.isfile(audit):
        raise _Failed("cannot rebuild: the audit log %s (log.audit.path) does not exist or is not a file"
                      % os.path.abspath(audit), EXIT_BAD_INPUT)
    try:
        db = TradeDB(db_path(cfg))
    except TradeDBError as e:
        raise _Failed(str(e), EXIT_BAD_INPUT) from None
    with db:
        try:
            st = db.rebuild([audit])
        except OSError as e:
            raise _Failed("cannot read the audit log %s: %s" % (os.path.abspath(audit), e), EXIT_BAD_INPUT) from None
        except Exception as e:    # sqlite3.Error: disk full, locked beyond the timeout
            raise _Failed("rebuilding %s failed: %s: %s" % (db.path, type(e).__name__, e), EXIT_RUNTIME) from None
        n = db.counts()
    out.write("rebuilt %s from %s: %d audit events (%d unreadable lines skipped); %d runs, %d trades, %d orders, "
              "%d fills\n" % (db.path, os.path.abspath(audit), st.events, st.skipped, n["runs"], n["trades"],
                              n["orders"], n["fills"]))
    return EXIT_OK

"""The trade history database: SQLite (stdlib ``sqlite3``, WAL), built from audit records.

The audit file (``log.audit.path``) is the source of truth; this database is a queryable copy of
what it says about trades, orders, fills, fees and realised P&L, and can always be rebuilt from
it (:meth:`TradeDB.rebuild`). Nothing here runs on the trade path: the node's feeder thread
(:mod:`cexnode.storage.feeder`) and the CLI call :meth:`TradeDB.catch_up`, which reads the audit
file from where the database left off.

Idempotent by construction: a run is keyed by the ``(pid, ts)`` of its ``executor_start``, a
trade by ``(run, trade_id)``, an order by its client id (unique across runs: it carries a time
prefix), a fill by the ``(pid, ts, seq)`` of its ``fill_booked`` record. Feeding the same audit
record twice changes nothing; order states only move forward in time. The offset reached in the
audit file is committed in the same transaction as the rows it produced, so concurrent writers
(the node's thread and a CLI command) each continue exactly where the other stopped.

Money and sizes are stored as the audit's exact decimal strings and summed with ``Decimal``.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import os
import sqlite3
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Optional

import orjson

__all__ = ["TradeDB", "TradeDBError", "IngestStats", "SCHEMA_VERSION", "base_quote", "utc_day", "db_path"]

SCHEMA_VERSION = 1

# Exact sums: every stored value has at most 80 significant digits (positions.DEC_CTX).
_SUM_CTX = decimal.Context(prec=400, rounding=decimal.ROUND_HALF_EVEN,
                           traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero])
_ZERO = Decimal(0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, pid INTEGER NOT NULL, started_ns INTEGER NOT NULL, mode TEXT, venues TEXT);
CREATE INDEX IF NOT EXISTS runs_pid ON runs(pid, started_ns);
CREATE TABLE IF NOT EXISTS trades (
    run TEXT NOT NULL, trade_id INTEGER NOT NULL, route TEXT, symbol TEXT, buy_venue TEXT, sell_venue TEXT,
    qty TEXT, buy_price TEXT, sell_price TEXT, expected_pnl TEXT, opp_ns INTEGER, started_ns INTEGER NOT NULL,
    status TEXT NOT NULL, reason TEXT, detail TEXT, buy_filled TEXT, sell_filled TEXT, residual TEXT,
    realised_pnl TEXT, ended_ns INTEGER, duration_us INTEGER,
    PRIMARY KEY (run, trade_id));
CREATE INDEX IF NOT EXISTS trades_started ON trades(started_ns);
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, run TEXT, trade_id INTEGER, route TEXT, venue TEXT, symbol TEXT, side TEXT,
    qty TEXT, price TEXT, purpose TEXT, requested_ns INTEGER, order_id TEXT, status TEXT, result TEXT,
    filled_qty TEXT, avg_price TEXT, fee TEXT, fee_asset TEXT, ambiguous INTEGER, final_ns INTEGER,
    updated_ns INTEGER);
CREATE INDEX IF NOT EXISTS orders_trade ON orders(run, trade_id);
CREATE TABLE IF NOT EXISTS fills (
    pid INTEGER NOT NULL, ts_ns INTEGER NOT NULL, seq INTEGER NOT NULL, client_id TEXT NOT NULL, run TEXT,
    trade_id INTEGER, route TEXT, venue TEXT, symbol TEXT, side TEXT, qty TEXT, price TEXT, fee TEXT,
    fee_asset TEXT, realised TEXT, late INTEGER NOT NULL,
    PRIMARY KEY (pid, ts_ns, seq));
CREATE INDEX IF NOT EXISTS fills_trade ON fills(run, trade_id);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY, inode INTEGER, offset INTEGER NOT NULL, events INTEGER NOT NULL, updated_ns INTEGER);
"""
_TABLES = ("runs", "trades", "orders", "fills", "sources")

# Order states that end an order; a later non-final record never overwrites them.
_FINAL_EVENTS = ("order_final", "reconciled_late", "late_fill")
_STATE_EVENTS = ("order_ack", "order_update", "reconcile_result", "cancel_ack")


class TradeDBError(Exception):
    """The database cannot be opened or is not a cexnode trade database."""


@dataclass
class IngestStats:
    lines: int = 0          # complete lines read
    events: int = 0         # audit events (records with an "event")
    skipped: int = 0        # lines that are not JSON objects (a torn line sealed after a crash)
    bytes: int = 0


def db_path(cfg: Any) -> str:
    """``storage.path``, or ``trades.sqlite`` in the audit log's directory when it is empty."""
    return cfg.storage.path or os.path.join(os.path.dirname(cfg.log.audit.path), "trades.sqlite")


def base_quote(symbol: str) -> tuple[str, str]:
    """``BTC/USDT`` and ``BTC/USDT:USDT`` -> ``("BTC", "USDT")``."""
    s = (symbol or "").split(":")[0]
    b, _, q = s.partition("/")
    return b, q


def utc_day(ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ns // 1_000_000_000))


def utc_time(ns: Optional[int]) -> str:
    if not ns:
        return ""
    secs, rem = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%03dZ" % (rem // 1_000_000)


def fee_in_quote(symbol: str, fee: str, fee_asset: str, price: str) -> Decimal:
    """The fee valued in the quote currency as PositionBook books it: a quote fee as is, a base fee
    at the fill price, any other asset (GT, MX points) not at all."""
    f = Decimal(fee or "0")
    if not f:
        return _ZERO
    base, quote = base_quote(symbol)
    if not fee_asset or fee_asset == quote:
        return f
    if fee_asset == base:
        return _SUM_CTX.multiply(f, Decimal(price or "0"))
    return _ZERO


def _dec(v: Any) -> Optional[str]:
    return None if v is None else str(v)


class TradeDB:
    """One connection to the trade database at ``path`` (created, with its directory, if missing).

    ``readonly``: open an existing database for queries only (no schema change, no catch-up)."""

    def __init__(self, path: str, *, readonly: bool = False, timeout_s: float = 10.0):
        self.path = os.path.abspath(path)
        try:
            if readonly:
                if not os.path.isfile(self.path):
                    raise TradeDBError("no trade database at %s" % self.path)
                self.conn = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=timeout_s,
                                            isolation_level=None, check_same_thread=False)
            else:
                d = os.path.dirname(self.path)
                if d:
                    os.makedirs(d, exist_ok=True)
                self.conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None,
                                            check_same_thread=False)
                # WAL: readers (the CLI) never block the writer and vice versa; NORMAL: a commit is
                # not fsynced (the audit file is the durable record; a lost tail is re-read from it).
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self._ensure_schema()
            self.conn.execute("PRAGMA busy_timeout=%d" % int(timeout_s * 1000))
            if readonly:
                v = self.conn.execute("PRAGMA user_version").fetchone()[0]
                if v != SCHEMA_VERSION:
                    raise TradeDBError("%s is not a cexnode trade database of schema %d (found %d)"
                                       % (self.path, SCHEMA_VERSION, v))
        except sqlite3.DatabaseError as e:
            raise TradeDBError("cannot open trade database %s: %s" % (self.path, e)) from None
        self._runs: dict[int, str] = {}      # pid -> current run (the stream being ingested)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "TradeDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema ------------------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            v = c.execute("PRAGMA user_version").fetchone()[0]
            if v not in (0, SCHEMA_VERSION):
                # Another layout: the database is a copy of the audit file, so it is dropped and
                # read again from offset 0 (the offsets go with it).
                for t in _TABLES:
                    c.execute("DROP TABLE IF EXISTS %s" % t)
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            c.execute("PRAGMA user_version=%d" % SCHEMA_VERSION)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # -- feeding -----------------------------------------------------------------------------------
    def catch_up(self, audit_path: str, *, max_bytes: int = 4 << 20, deadline: Optional[float] = None) -> IngestStats:
        """Ingest what the audit file holds beyond the offset this database reached, in
        transactions of at most ``max_bytes`` of complete lines (each commits its rows and the new
        offset together). Stops at the end of the file or at ``deadline`` (``time.monotonic()``).
        A file that was replaced (other inode) or truncated is read again from the start: the
        rows are keyed, so nothing is counted twice."""
        total = IngestStats()
        path = os.path.abspath(audit_path)
        while True:
            n = self._catch_up_once(path, max_bytes, total)
            if n == 0 or (deadline is not None and time.monotonic() >= deadline):
                return total

    def _catch_up_once(self, path: str, max_bytes: int, total: IngestStats) -> int:
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return 0
        with f:
            st = os.fstat(f.fileno())
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            try:
                row = c.execute("SELECT inode, offset, events FROM sources WHERE path=?", (path,)).fetchone()
                offset, events = 0, 0
                if row is not None and row[0] == st.st_ino and row[1] <= st.st_size:
                    offset, events = row[1], row[2]
                data = _read_lines(f, offset, st.st_size, max_bytes)
                if not data:
                    c.execute("COMMIT")
                    return 0
                stats = self.ingest(data.splitlines())
                c.execute("INSERT INTO sources(path, inode, offset, events, updated_ns) VALUES (?,?,?,?,?) "
                          "ON CONFLICT(path) DO UPDATE SET inode=excluded.inode, offset=excluded.offset, "
                          "events=excluded.events, updated_ns=excluded.updated_ns",
                          (path, st.st_ino, offset + len(data), events + stats.events, time.time_ns()))
                c.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        total.lines += stats.lines
        total.events += stats.events
        total.skipped += stats.skipped
        total.bytes += len(data)
        return len(data)

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self._runs.clear()

    def rebuild(self, audit_paths: Iterable[str]) -> IngestStats:
        """Empty the database and ingest the audit files from their start, in one transaction (a
        concurrent reader sees the old rows until it commits)."""
        total = IngestStats()
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for t in _TABLES:
                c.execute("DELETE FROM %s" % t)
            self._runs.clear()
            for p in audit_paths:
                path = os.path.abspath(p)
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    data = _read_lines(f, 0, st.st_size, st.st_size + 1)
                stats = self.ingest(data.splitlines())
                c.execute("INSERT OR REPLACE INTO sources(path, inode, offset, events, updated_ns) VALUES (?,?,?,?,?)",
                          (path, st.st_ino, len(data), stats.events, time.time_ns()))
                total.lines += stats.lines
                total.events += stats.events
                total.skipped += stats.skipped
                total.bytes += len(data)
            c.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return total

    def ingest(self, lines: Iterable[bytes]) -> IngestStats:
        """Apply audit lines (JSON objects) to the database; the caller owns the transaction.
        Lines that are not audit events (``trading``-tagged log records) are read and ignored."""
        stats = IngestStats()
        for line in lines:
            if not line.strip():
                continue
            stats.lines += 1
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                stats.skipped += 1
                continue
            if not isinstance(rec, dict):
                stats.skipped += 1
                continue
            if "event" not in rec or "seq" not in rec:
                continue
            stats.events += 1
            self.apply(rec)
        return stats

    # -- one audit record ----------------------------------------------------------------------------
    def _run_of(self, pid: int, ts: int) -> str:
        run = self._runs.get(pid)
        if run is not None:
            return run
        row = self.conn.execute("SELECT run FROM runs WHERE pid=? AND started_ns<=? ORDER BY started_ns DESC LIMIT 1",
                                (pid, ts)).fetchone()
        run = row[0] if row is not None else "%d@0" % pid      # records of a run whose start is not on file
        self._runs[pid] = run
        return run

    def apply(self, rec: dict) -> None:
        """Apply one audit record (``ts``, ``seq``, ``pid``, ``event``, ``data``)."""
        ev = rec.get("event")
        data = rec.get("data") or {}
        if not isinstance(data, dict):
            return
        ts, pid, seq = int(rec.get("ts") or 0), int(rec.get("pid") or 0), int(rec.get("seq") or 0)
        c = self.conn
        if ev == "executor_start":
            run = "%d@%d" % (pid, ts)
            self._runs[pid] = run
            c.execute("INSERT OR IGNORE INTO runs(run, pid, started_ns, mode, venues) VALUES (?,?,?,?,?)",
                      (run, pid, ts, data.get("mode"), orjson.dumps(data.get("venues") or []).decode()))
            return
        if ev in ("trade_start", "trade_rejected"):
            run = self._run_of(pid, ts)
            status, reason, detail = ("open", None, None) if ev == "trade_start" else \
                ("rejected", data.get("reason"), data.get("detail"))
            c.execute(
                "INSERT INTO trades(run, trade_id, route, symbol, buy_venue, sell_venue, qty, buy_price, sell_price, "
                "expected_pnl, opp_ns, started_ns, status, reason, detail, ended_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(run, trade_id) DO UPDATE SET route=excluded.route, symbol=excluded.symbol, "
                "buy_venue=excluded.buy_venue, sell_venue=excluded.sell_venue, qty=excluded.qty, "
                "buy_price=excluded.buy_price, sell_price=excluded.sell_price, expected_pnl=excluded.expected_pnl, "
                "opp_ns=excluded.opp_ns, started_ns=excluded.started_ns",
                (run, int(data.get("trade_id", 0)), data.get("route"), data.get("symbol"), data.get("buy_venue"),
                 data.get("sell_venue"), _dec(data.get("qty")), _dec(data.get("buy_price")),
                 _dec(data.get("sell_price")), _dec(data.get("net_profit")), data.get("t"), ts, status, reason, detail,
                 ts if ev == "trade_rejected" else None))
            for o in data.get("orders") or ():
                self._order_request(run, int(data.get("trade_id", 0)), dict(o, route=data.get("route"), purpose="entry"),
                                    ts)
            return
        if ev == "order_request":
            self._order_request(self._run_of(pid, ts), int(data.get("trade_id", 0)), data, ts)
            return
        if ev == "trade_done":
            run = self._run_of(pid, ts)
            c.execute(
                "INSERT INTO trades(run, trade_id, route, started_ns, status, buy_filled, sell_filled, residual, "
                "realised_pnl, expected_pnl, ended_ns, duration_us) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(run, trade_id) DO UPDATE SET status=excluded.status, buy_filled=excluded.buy_filled, "
                "sell_filled=excluded.sell_filled, residual=excluded.residual, realised_pnl=excluded.realised_pnl, "
                "ended_ns=excluded.ended_ns, duration_us=excluded.duration_us",
                (run, int(data.get("trade_id", 0)), data.get("route"), ts, data.get("status") or "done",
                 _dec(data.get("buy_filled")), _dec(data.get("sell_filled")), _dec(data.get("residual")),
                 _dec(data.get("realised_pnl")), _dec(data.get("expected_pnl")), ts, data.get("duration_us")))
            return
        if ev in ("trade_error", "trade_cancelled"):
            run = self._run_of(pid, ts)
            status = "error" if ev == "trade_error" else "cancelled"
            c.execute(
                "INSERT INTO trades(run, trade_id, route, started_ns, status, reason, ended_ns) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(run, trade_id) DO UPDATE SET status=excluded.status, reason=excluded.reason, "
                "ended_ns=excluded.ended_ns WHERE trades.status='open'",
                (run, int(data.get("trade_id", 0)), data.get("route"), ts, status, data.get("error"), ts))
            return
        if ev == "fill_booked":
            cid = data.get("client_id")
            o = c.execute("SELECT run, trade_id, symbol FROM orders WHERE client_id=?", (cid,)).fetchone()
            run, trade_id, symbol = o if o is not None else (None, None, None)
            c.execute(
                "INSERT OR IGNORE INTO fills(pid, ts_ns, seq, client_id, run, trade_id, route, venue, symbol, side, qty, "
                "price, fee, fee_asset, realised, late) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (pid, ts, seq, cid, run, trade_id, data.get("route"), data.get("venue"), symbol, data.get("side"),
                 _dec(data.get("qty")), _dec(data.get("price")), _dec(data.get("fee")), data.get("fee_asset") or "",
                 _dec(data.get("realised")), 1 if data.get("late") else 0))
            return
        if ev in _FINAL_EVENTS:
            self._order_state(data, ts, final=True, result=data.get("result"), ambiguous=data.get("ambiguous"))
            return
        if ev in _STATE_EVENTS:
            st = data.get("state") if ev in ("order_ack", "cancel_ack") else data
            if ev == "order_ack" and data.get("order_id"):
                c.execute("UPDATE orders SET order_id=? WHERE client_id=? AND (order_id IS NULL OR order_id='')",
                          (data["order_id"], data.get("client_id")))
            if isinstance(st, dict) and st.get("status"):
                self._order_state(st, ts, final=False)
            return
        if ev == "order_fill":
            c.execute("UPDATE orders SET filled_qty=?, avg_price=?, updated_ns=? WHERE client_id=? AND final_ns IS NULL "
                      "AND (updated_ns IS NULL OR updated_ns<=?)",
                      (_dec(data.get("filled_qty")), _dec(data.get("avg_price")), ts, data.get("client_id"), ts))

    def _order_request(self, run: str, trade_id: int, o: dict, ts: int) -> None:
        self.conn.execute(
            "INSERT INTO orders(client_id, run, trade_id, route, venue, symbol, side, qty, price, purpose, requested_ns, "
            "status, filled_qty) VALUES (?,?,?,?,?,?,?,?,?,?,?,'requested','0') ON CONFLICT(client_id) DO UPDATE SET "
            "run=excluded.run, trade_id=excluded.trade_id, route=excluded.route, venue=excluded.venue, "
            "symbol=excluded.symbol, side=excluded.side, qty=excluded.qty, price=excluded.price, "
            "purpose=excluded.purpose, requested_ns=excluded.requested_ns",
            (o.get("client_id"), run, trade_id, o.get("route"), o.get("venue"), o.get("symbol"), o.get("side"),
             _dec(o.get("qty")), _dec(o.get("price")), o.get("purpose"), ts))

    def _order_state(self, st: dict, ts: int, *, final: bool, result: Any = None, ambiguous: Any = None) -> None:
        # Only forward in time; a final state is replaced only by a later final one (a late fill).
        guard = "(updated_ns IS NULL OR updated_ns<=?)" + ("" if final else " AND final_ns IS NULL")
        self.conn.execute(
            "UPDATE orders SET status=?, filled_qty=?, avg_price=?, fee=?, fee_asset=?, "
            "order_id=COALESCE(NULLIF(?, ''), order_id), updated_ns=?"
            + (", final_ns=?, result=COALESCE(?, result), ambiguous=COALESCE(?, ambiguous)" if final else "")
            + " WHERE client_id=? AND " + guard,
            (st.get("status"), _dec(st.get("filled_qty")), _dec(st.get("avg_price")), _dec(st.get("fee")),
             st.get("fee_asset") or "", st.get("order_id") or "", ts)
            + ((ts, result, None if ambiguous is None else int(bool(ambiguous))) if final else ())
            + (st.get("client_id"), ts))

    # -- queries -----------------------------------------------------------------------------------
    def counts(self) -> dict:
        c = self.conn
        return {t: c.execute("SELECT COUNT(*) FROM %s" % t).fetchone()[0] for t in ("runs", "trades", "orders", "fills")}

    def trades(self, *, since_ns: Optional[int] = None, route: Optional[str] = None,
               rejected: bool = False) -> list[dict]:
        """Trades in start order, each with ``realised`` (sum of its booked fills, late ones
        included) and ``fees`` (in quote) from the fills table. Rejected opportunities (no order
        sent) only with ``rejected``."""
        where, args = [], []
        if since_ns is not None:
            where.append("t.started_ns>=?")
            args.append(min(max(since_ns, 0), (1 << 63) - 1))    # ns fit int64 until 2262
        if route is not None:
            where.append("t.route=?")
            args.append(route)
        if not rejected:
            where.append("t.status<>'rejected'")
        sql = ("SELECT t.run, t.trade_id, t.route, t.symbol, t.buy_venue, t.sell_venue, t.qty, t.buy_price, "
               "t.sell_price, t.expected_pnl, t.started_ns, t.status, t.reason, t.buy_filled, t.sell_filled, "
               "t.residual, t.ended_ns, t.duration_us FROM trades t"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY t.started_ns, t.run, t.trade_id")
        cols = ("run", "trade_id", "route", "symbol", "buy_venue", "sell_venue", "qty", "buy_price", "sell_price",
                "expected_pnl", "started_ns", "status", "reason", "buy_filled", "sell_filled", "residual", "ended_ns",
                "duration_us")
        rows = [dict(zip(cols, r)) for r in self.conn.execute(sql, args)]
        fills: dict[tuple, list] = {}
        for run, tid, symbol, fee, fee_asset, price, realised in self.conn.execute(
                "SELECT run, trade_id, symbol, fee, fee_asset, price, realised FROM fills"):
            fills.setdefault((run, tid), []).append((symbol, fee, fee_asset, price, realised))
        for r in rows:
            realised = fees = _ZERO
            n = 0
            for symbol, fee, fee_asset, price, rl in fills.get((r["run"], r["trade_id"]), ()):
                realised = _SUM_CTX.add(realised, Decimal(rl or "0"))
                fees = _SUM_CTX.add(fees, fee_in_quote(symbol or r["symbol"], fee, fee_asset, price))
                n += 1
            r["fills"] = n
            r["realised"] = realised
            r["fees"] = fees
            r["orders"] = [o[0] for o in self.conn.execute(
                "SELECT client_id FROM orders WHERE run=? AND trade_id=? ORDER BY requested_ns, client_id",
                (r["run"], r["trade_id"]))]
        return rows

    def pnl(self, by: str = "route") -> list[dict]:
        """Realised P&L, fees (quote), fills and trades (sent, not rejected) per ``by``: ``route``,
        ``day`` (UTC; fills by their booking time, trades by their start) or ``asset`` (base)."""
        if by not in ("route", "day", "asset"):
            raise ValueError("by must be route|day|asset, got %r" % (by,))
        groups: dict[str, dict] = {}

        def g(key: str) -> dict:
            d = groups.get(key)
            if d is None:
                d = groups[key] = {by: key, "trades": 0, "fills": 0, "fees": _ZERO, "realised": _ZERO}
            return d

        for route, symbol, started_ns in self.conn.execute(
                "SELECT route, symbol, started_ns FROM trades WHERE status<>'rejected'"):
            key = (route or "") if by == "route" else (utc_day(started_ns) if by == "day" else base_quote(symbol)[0])
            g(key)["trades"] += 1
        for route, symbol, ts, fee, fee_asset, price, realised in self.conn.execute(
                "SELECT route, symbol, ts_ns, fee, fee_asset, price, realised FROM fills"):
            key = (route or "") if by == "route" else (utc_day(ts) if by == "day" else base_quote(symbol)[0])
            d = g(key)
            d["fills"] += 1
            d["fees"] = _SUM_CTX.add(d["fees"], fee_in_quote(symbol, fee, fee_asset, price))
            d["realised"] = _SUM_CTX.add(d["realised"], Decimal(realised or "0"))
        return [groups[k] for k in sorted(groups)]

    def total_realised(self) -> Decimal:
        total = _ZERO
        for (r,) in self.conn.execute("SELECT realised FROM fills"):
            total = _SUM_CTX.add(total, Decimal(r or "0"))
        return total

    def dump(self) -> dict:
        """Every row of every data table, in key order (tests compare two databases with it)."""
        keys = {"runs": "run", "trades": "run, trade_id", "orders": "client_id", "fills": "pid, ts_ns, seq"}
        return {t: [tuple(r) for r in self.conn.execute("SELECT * FROM %s ORDER BY %s" % (t, k))]
                for t, k in keys.items()}


def _read_lines(f: Any, offset: int, size: int, max_bytes: int) -> bytes:
    """The complete lines of ``f`` from ``offset``: at most ``max_bytes`` unless one line is
    longer; an incomplete last line (a write in progress) is left for the next read."""
    if size <= offset:
        return b""
    f.seek(offset)
    want = min(size - offset, max_bytes)
    data = f.read(want)
    cut = data.rfind(b"\n") + 1
    while cut == 0 and offset + len(data) < size:       # one line longer than max_bytes
        more = f.read(min(size - offset - len(data), max_bytes))
        if not more:
            break
        data += more
        cut = data.rfind(b"\n") + 1
    return data[:cut]


def parse_since(text: str) -> int:
    """``YYYY-MM-DD`` or an ISO 8601 time (UTC unless it says otherwise) -> ns since the epoch."""
    t = text.strip()
    try:
        if len(t) == 10:
            d = _dt.datetime.strptime(t, "%Y-%m-%d").replace(tzinfo=_dt.timezone.utc)
        else:
            d = _dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
            if d.tzinfo is None:
                d = d.replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise ValueError("expected a date YYYY-MM-DD or an ISO 8601 time such as 2024-05-01T12:00:00Z, "
                         "found %r" % text) from None
    return int(d.timestamp()) * 1_000_000_000 + d.microsecond * 1000

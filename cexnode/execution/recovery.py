"""State rebuilt from the audit trail: the node's write-ahead record (docs/design.md §5).

At start the node folds its audit file into what it must not forget across a restart:

* positions and residuals per route and asset, and realised P&L per UTC day (so the daily loss
  limit holds across restarts): every ``fill_booked`` record is booked again into a fresh
  :class:`~cexnode.execution.positions.PositionBook`, in file order, by the same code that booked
  it the first time (FIFO lots, fees), so the result is the same to the last digit;
* the error-rate window: one outcome per ``order_final`` (failed = rejected or ambiguous);
* every order without a final record (``trade_start`` / ``order_request`` with no ``order_final``):
  the executor reconciles them with their venues by client id before the first trade;
* orders whose final record has fills but whose ``fill_booked`` never came (a crash between the
  two records): booked at recovery and audited then.

A long history stays fast to start from: a checkpoint (:func:`write_checkpoint`) holds the folded
state and the audit file offset it covers; start-up loads it and folds only the tail. A checkpoint
that does not match the file (another file, a shorter file, an unreadable or older format) is
ignored and the whole file is folded. The checkpointer folds on its own thread, never on the
trade path (:class:`Checkpointer`).
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Callable, Optional

import orjson

from cexnode.execution.gateway import Side
from cexnode.execution.positions import PositionBook

__all__ = ["OpenOrder", "AuditFold", "recover", "write_checkpoint", "load_checkpoint", "Checkpointer",
           "checkpoint_path", "split_symbol"]

CHECKPOINT_VERSION = 1
_HEAD_BYTES = 4096          # the file's first bytes identify it (a replaced file is not the same history)
_ZERO = Decimal(0)
_FOLDED = frozenset((b"trade_start", b"order_request", b"order_final", b"fill_booked"))


def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTC/USDT`` or ``BTC/USDT:USDT`` -> ``("BTC", "USDT")`` (docs/design.md §3 unified symbols)."""
    base, _, rest = symbol.partition("/")
    return base, rest.partition(":")[0]


def checkpoint_path(audit_path: str) -> str:
    return audit_path + ".checkpoint"


@dataclass
class OpenOrder:
    """An order the node asked for with no final record (yet): what reconciling it needs."""

    client_id: str
    venue: str
    symbol: str
    side: str               # "buy" | "sell"
    qty: str                # decimal strings, as audited
    price: str
    route: str
    purpose: str
    trade_id: int
    ts_ns: int


class AuditFold:
    """Folds audit records, in file order, into the state a restarted node restores."""

    def __init__(self, window_s: float = 3600.0) -> None:
        self.window_ns = int(window_s * 1e9)      # outcomes older than this before the newest are dropped
        self.positions = PositionBook()
        self.open: dict[str, OpenOrder] = {}
        self.unbooked: dict[str, dict] = {}       # client id -> order_final data with fills, no fill_booked yet
        self.outcomes: collections.deque = collections.deque()   # (ts_ns, failed) of final orders
        self.records = 0
        self.bad_lines = 0
        self.fills_booked = 0
        self.last_ts_ns = 0
        self._known: dict[str, tuple[str, str]] = {}   # client id -> (symbol, route), while open or unbooked

    # -- folding -----------------------------------------------------------------------------------
    def feed_line(self, line: bytes) -> None:
        # Most records (acks, updates, fills seen, trade ends, rejections) change nothing here: the
        # event name is read off the bytes and only the records that matter are parsed.
        i = line.find(b'"event":"')
        if i >= 0:
            j = line.find(b'"', i + 9)
            if line[i + 9:j] not in _FOLDED:
                self.records += 1
                return
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.bad_lines += 1          # a torn line sealed at a restart: its write never returned
            return
        if isinstance(rec, dict):
            self.feed(rec)

    def feed(self, rec: dict) -> None:
        ev = rec.get("event")
        if ev is None:
            return                        # a `trading` logger line, not an order event
        self.records += 1
        ts = int(rec.get("ts") or 0)
        self.last_ts_ns = max(self.last_ts_ns, ts)
        d = rec.get("data") or {}
        if ev == "trade_start":
            for o in d.get("orders") or ():
                self._open(o, d.get("route", ""), "entry", d.get("trade_id", 0), ts)
        elif ev == "order_request":
            self._open(d, d.get("route", ""), d.get("purpose", ""), d.get("trade_id", 0), ts)
        elif ev == "order_final":
            cid = d.get("client_id", "")
            failed = d.get("result") == "rejected" or bool(d.get("ambiguous"))
            self.outcomes.append((ts, int(failed)))
            self.trim(ts - self.window_ns)
            o = self.open.pop(cid, None)
            if o is not None and Decimal(d.get("filled_qty") or "0") > 0:
                self.unbooked[cid] = dict(d, route=o.route, symbol=o.symbol)
            else:
                self._known.pop(cid, None)
        elif ev == "fill_booked":
            cid = d.get("client_id", "")
            if not d.get("late"):
                self.unbooked.pop(cid, None)
            symbol = self._known.get(cid, (None, None))[0]
            if symbol is None:
                symbol = (d.get("route") or "").split(" ")[0]
            if not d.get("late"):
                self._known.pop(cid, None)
            self._book(d, symbol, ts)

    def _open(self, o: dict, route: str, purpose: str, trade_id: Any, ts: int) -> None:
        cid = o.get("client_id", "")
        if not cid:
            return
        self.open[cid] = OpenOrder(client_id=cid, venue=o.get("venue", ""), symbol=o.get("symbol", ""),
                                   side=o.get("side", ""), qty=str(o.get("qty", "0")), price=str(o.get("price", "0")),
                                   route=route, purpose=purpose or "entry", trade_id=int(trade_id or 0), ts_ns=ts)
        self._known[cid] = (o.get("symbol", ""), route)

    def _book(self, d: dict, symbol: str, ts: int) -> None:
        base, quote = split_symbol(symbol)
        self.positions.apply_fill(route=d.get("route", ""), venue=d.get("venue", ""), base=base, quote=quote,
                                  side=Side(d.get("side", "buy")), qty=Decimal(d["qty"]), price=Decimal(d["price"]),
                                  fee=Decimal(d.get("fee") or "0"), fee_asset=d.get("fee_asset") or "", ts_ns=ts)
        self.fills_booked += 1

    def outcomes_since(self, horizon_ns: int) -> list[tuple[int, int]]:
        return [o for o in self.outcomes if o[0] >= horizon_ns]

    def trim(self, horizon_ns: int) -> None:
        """Forget outcomes older than the error window (the fold's memory stays bounded)."""
        q = self.outcomes
        while q and q[0][0] < horizon_ns:
            q.popleft()

    # -- checkpoint form ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"window_ns": self.window_ns, "positions": self.positions.dump(), "open": [asdict(o) for o in self.open.values()],
                "unbooked": self.unbooked, "outcomes": list(self.outcomes), "records": self.records,
                "bad_lines": self.bad_lines, "fills_booked": self.fills_booked, "last_ts_ns": self.last_ts_ns,
                "known": {k: list(v) for k, v in self._known.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "AuditFold":
        f = cls(int(d["window_ns"]) / 1e9)
        f.positions = PositionBook.load(d["positions"])
        f.open = {o["client_id"]: OpenOrder(**o) for o in d["open"]}
        f.unbooked = dict(d["unbooked"])
        f.outcomes = collections.deque(tuple(o) for o in d["outcomes"])
        f.records, f.bad_lines = int(d["records"]), int(d["bad_lines"])
        f.fills_booked, f.last_ts_ns = int(d["fills_booked"]), int(d["last_ts_ns"])
        f._known = {k: (v[0], v[1]) for k, v in d["known"].items()}
        return f


def _head_hash(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(_HEAD_BYTES)).hexdigest()


def fold_file(path: str, fold: AuditFold, offset: int = 0, chunk: int = 1 << 22) -> int:
    """Fold the complete lines of ``path`` from ``offset``; returns the offset after the last one."""
    with open(path, "rb") as f:
        f.seek(offset)
        tail = b""
        read = 0
        while True:
            data = f.read(chunk)
            if not data:
                break
            read += len(data)
            data = tail + data
            cut = data.rfind(b"\n")
            if cut < 0:
                tail = data
                continue
            for line in data[:cut].split(b"\n"):
                if line:
                    fold.feed_line(line)
            tail = data[cut + 1:]
    return offset + read - len(tail)     # an incomplete last line is left for the next fold


def write_checkpoint(audit_path: str, fold: AuditFold, offset: int, path: Optional[str] = None) -> str:
    """Write the fold and the audit offset it covers, atomically (temp file, fsync, rename)."""
    path = path or checkpoint_path(audit_path)
    body = {"version": CHECKPOINT_VERSION, "audit_path": os.path.abspath(audit_path), "offset": offset,
            "head": _head_hash(audit_path), "written_ns": time.time_ns(), "state": fold.to_dict()}
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(orjson.dumps(body))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(audit_path: str, path: Optional[str] = None) -> Optional[tuple[AuditFold, int]]:
    """The checkpoint's fold and offset when it belongs to this audit file, else None."""
    path = path or checkpoint_path(audit_path)
    try:
        with open(path, "rb") as f:
            body = orjson.loads(f.read())
        if body.get("version") != CHECKPOINT_VERSION:
            return None
        offset = int(body["offset"])
        if os.path.getsize(audit_path) < offset or _head_hash(audit_path) != body["head"]:
            return None
        return AuditFold.from_dict(body["state"]), offset
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError, orjson.JSONDecodeError):
        return None


@dataclass
class Recovered:
    fold: AuditFold
    offset: int
    from_checkpoint: bool
    seconds: float


def recover(audit_path: str, *, window_s: float = 3600.0, use_checkpoint: bool = True) -> Recovered:
    """Fold ``audit_path`` (from its checkpoint when one matches) into an :class:`AuditFold`;
    ``window_s``: the error-rate window, the outcomes it keeps."""
    t0 = time.monotonic()
    if not os.path.exists(audit_path):
        return Recovered(AuditFold(window_s), 0, False, 0.0)
    got = load_checkpoint(audit_path) if use_checkpoint else None
    fold, offset = got if got is not None else (AuditFold(window_s), 0)
    fold.window_ns = int(window_s * 1e9)
    offset = fold_file(audit_path, fold, offset)
    return Recovered(fold, offset, got is not None, time.monotonic() - t0)


class Checkpointer:
    """Keeps a checkpoint of the audit file current, on its own thread, off the trade path: every
    ``interval_s`` it folds what was appended into its own copy of the fold and writes the
    checkpoint. A failure is logged once per kind of failure and retried at the next interval; the
    audit file stays the record (a missing checkpoint only makes the next start slower)."""

    def __init__(self, audit_path: str, fold: AuditFold, offset: int, *, interval_s: float, logger: Any,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.audit_path = audit_path
        self.fold = fold
        self.offset = offset
        self.interval_s = interval_s
        self.log = logger
        self._clock = clock_ns
        self.written = 0
        self.errors = 0
        self._failing = ""
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def step(self) -> bool:
        try:
            self.offset = fold_file(self.audit_path, self.fold, self.offset)
            self.fold.trim(self._clock() - self.fold.window_ns)
            write_checkpoint(self.audit_path, self.fold, self.offset)
        except Exception as e:
            self.errors += 1
            kind = type(e).__name__
            if kind != self._failing:
                self.log.error("audit checkpoint not written; the next start folds the audit file from the "
                               "last good checkpoint", path=checkpoint_path(self.audit_path),
                               error="%s: %s" % (kind, str(e)[:200]))
            self._failing = kind
            return False
        self._failing = ""
        self.written += 1
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cexnode-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.step()

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the thread and write a last checkpoint covering everything written before the stop."""
        t, self._thread = self._thread, None
        if t is not None:
            self._stop.set()
            t.join(timeout_s)
        self.step()


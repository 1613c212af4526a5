"""Positions and realised P&L per route and asset, exact (Decimal, FIFO lots).

Accounting
----------
* A fill of ``qty`` base at ``price`` moves the route's base position by ±qty. Opposite fills are
  matched FIFO against open lots; each matched quantity realises ``(sell − buy price) × qty``.
  Everything is sums of exact products: no division, no rounding.
* Fees: in the quote asset they are subtracted from realised P&L at once; in the base asset they
  are base leaving the account, booked as a disposal of ``fee`` base at price 0 (so the realised
  loss is the fee valued at its cost basis); in any other asset (GT, MX points) they are summed in
  ``other_fees`` and not in P&L.
* Per-venue net changes (``venue_deltas``) track what trading did to each venue's balances.
* Realised P&L is also summed per UTC day (``daily_realised``) for the daily loss limit.
"""
from __future__ import annotations

import collections
import decimal
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Mapping, Optional

from cexnode.execution.gateway import Side

__all__ = ["PositionBook", "Fill", "DEC_CTX"]

# 80 significant digits: every sum and product here (prices and sizes of <= 18 decimals, < 1e20)
# is exact. The only quotients are venue average prices (cumulative quote / filled qty), which
# are carried at 80 digits (relative error < 1e-79).
DEC_CTX = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN,
                          traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero])
_ZERO = Decimal(0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Fill:
    route: str
    venue: str
    base: str
    quote: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    ts_ns: int
    realised: Decimal       # P&L this fill realised (fees included)


class _RouteAsset:
    __slots__ = ("lots", "position", "realised", "fees_quote", "fills", "bought", "sold", "buy_cost", "sell_proceeds")

    def __init__(self):
        self.lots: collections.deque = collections.deque()   # [signed qty, price], all one sign
        self.position = _ZERO
        self.realised = _ZERO
        self.fees_quote = _ZERO
        self.fills = 0
        self.bought = _ZERO
        self.sold = _ZERO
        self.buy_cost = _ZERO
        self.sell_proceeds = _ZERO


class PositionBook:
    """Positions and realised P&L; see the module docstring for the accounting rules."""

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns, keep_fills: int = 256):
        self._clock = clock_ns
        self._ra: dict[tuple[str, str], _RouteAsset] = {}       # (route, base asset)
        self._quote_of: dict[tuple[str, str], str] = {}
        self.venue_deltas: dict[tuple[str, str], Decimal] = {}  # (venue, asset) -> net change
        self.other_fees: dict[str, Decimal] = {}
        self.daily: dict[str, Decimal] = {}                    # "YYYY-MM-DD" (UTC) -> realised
        self.marks: dict[str, Decimal] = {}                     # base asset -> last fill price
        # the newest keep_fills fills (the audit log and the trade database keep the history)
        self.fills: collections.deque = collections.deque(maxlen=keep_fills)
        self.fill_count = 0

    # -- updates ---------------------------------------------------------------------------------
    def apply_fill(self, *, route: str, venue: str, base: str, quote: str, side: Side, qty: Decimal,
                   price: Decimal, fee: Decimal = _ZERO, fee_asset: str = "", ts_ns: Optional[int] = None) -> Decimal:
        """Book one fill (``qty`` > 0 base at ``price``); returns the P&L it realised."""
        if qty <= 0:
            raise ValueError("fill qty must be > 0, got %s" % qty)
        ts = self._clock() if ts_ns is None else ts_ns
        with decimal.localcontext(DEC_CTX):
            ra = self._ra.get((route, base))
            if ra is None:
                ra = self._ra[(route, base)] = _RouteAsset()
                self._quote_of[(route, base)] = quote
            signed = qty if side is Side.BUY else -qty
            realised = self._trade(ra, signed, price)
            notional = qty * price
            if side is Side.BUY:
                ra.bought += qty
                ra.buy_cost += notional
            else:
                ra.sold += qty
                ra.sell_proceeds += notional
            self._vd(venue, base, signed)
            self._vd(venue, quote, -notional if side is Side.BUY else notional)
            if fee:
                if fee_asset == quote or not fee_asset:
                    realised -= fee
                    ra.fees_quote += fee
                    self._vd(venue, quote, -fee)
                elif fee_asset == base:
                    realised += self._trade(ra, -fee, _ZERO)      # base leaving for nothing
                    ra.fees_quote += fee * price
                    self._vd(venue, base, -fee)
                else:
                    self.other_fees[fee_asset] = self.other_fees.get(fee_asset, _ZERO) + fee
                    self._vd(venue, fee_asset, -fee)
            ra.realised += realised
            ra.fills += 1
            day = time.strftime("%Y-%m-%d", time.gmtime(ts // 1_000_000_000))
            self.daily[day] = self.daily.get(day, _ZERO) + realised
        self.marks[base] = price
        self.fill_count += 1
        self.fills.append(Fill(route=route, venue=venue, base=base, quote=quote, side=side, qty=qty, price=price,
                               fee=fee, fee_asset=fee_asset, ts_ns=ts, realised=realised))
        return realised

    def _vd(self, venue: str, asset: str, delta: Decimal) -> None:
        self.venue_deltas[(venue, asset)] = self.venue_deltas.get((venue, asset), _ZERO) + delta

    @staticmethod
    def _trade(ra: _RouteAsset, signed: Decimal, price: Decimal) -> Decimal:
        """Apply a signed base quantity at ``price`` FIFO; return the realised P&L (no fees)."""
        realised = _ZERO
        lots = ra.lots
        remaining = signed
        while remaining and lots and (lots[0][0] > 0) != (remaining > 0):
            lot = lots[0]
            take = min(abs(remaining), abs(lot[0]))
            if lot[0] > 0:        # long lot closed by a sell
                realised += take * (price - lot[1])
                lot[0] -= take
                remaining += take
            else:                 # short lot closed by a buy
                realised += take * (lot[1] - price)
                lot[0] += take
                remaining -= take
            if not lot[0]:
                lots.popleft()
        if remaining:
            lots.append([remaining, price])
        ra.position += signed
        return realised

    # -- persistence (checkpoints of the audit fold: cexnode.execution.recovery) ------------------
    _RA_DECIMALS = ("position", "realised", "fees_quote", "bought", "sold", "buy_cost", "sell_proceeds")

    def dump(self) -> dict:
        """Everything the book's future answers depend on, as JSON-ready values (exact decimals)."""
        return {
            "ra": [{"route": r, "asset": a, "quote": self._quote_of[(r, a)], "fills": ra.fills,
                    "lots": [[str(q), str(p)] for q, p in ra.lots],
                    **{k: str(getattr(ra, k)) for k in self._RA_DECIMALS}} for (r, a), ra in self._ra.items()],
            "venue_deltas": [[v, a, str(x)] for (v, a), x in self.venue_deltas.items()],
            "other_fees": {k: str(v) for k, v in self.other_fees.items()},
            "daily": {k: str(v) for k, v in self.daily.items()},
            "marks": {k: str(v) for k, v in self.marks.items()},
            "fill_count": self.fill_count,
        }

    @classmethod
    def load(cls, d: dict, clock_ns: Callable[[], int] = time.time_ns) -> "PositionBook":
        """The book :meth:`dump` describes (recent ``fills`` are not kept: they are a display cache)."""
        pb = cls(clock_ns)
        for e in d["ra"]:
            ra = _RouteAsset()
            ra.lots = collections.deque([Decimal(q), Decimal(p)] for q, p in e["lots"])
            for k in cls._RA_DECIMALS:
                setattr(ra, k, Decimal(e[k]))
            ra.fills = int(e["fills"])
            pb._ra[(e["route"], e["asset"])] = ra
            pb._quote_of[(e["route"], e["asset"])] = e["quote"]
        pb.venue_deltas = {(v, a): Decimal(x) for v, a, x in d["venue_deltas"]}
        pb.other_fees = {k: Decimal(v) for k, v in d["other_fees"].items()}
        pb.daily = {k: Decimal(v) for k, v in d["daily"].items()}
        pb.marks = {k: Decimal(v) for k, v in d["marks"].items()}
        pb.fill_count = int(d["fill_count"])
        return pb

    def adopt(self, other: "PositionBook") -> None:
        """Take ``other``'s state (a book rebuilt from the audit trail) in place, so that every
        component holding this book sees it."""
        self._ra, self._quote_of = other._ra, other._quote_of
        self.venue_deltas, self.other_fees = other.venue_deltas, other.other_fees
        self.daily, self.marks, self.fill_count = other.daily, other.marks, other.fill_count

    # -- queries ---------------------------------------------------------------------------------
    def position(self, asset: str, route: Optional[str] = None) -> Decimal:
        """Net base position of ``asset`` (one route, or summed over routes)."""
        if route is not None:
            ra = self._ra.get((route, asset))
            return ra.position if ra is not None else _ZERO
        return sum((ra.position for (r, a), ra in self._ra.items() if a == asset), _ZERO)

    def positions(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for (_r, a), ra in self._ra.items():
            out[a] = out.get(a, _ZERO) + ra.position
        return out

    def realised(self, route: Optional[str] = None) -> Decimal:
        return sum((ra.realised for (r, _a), ra in self._ra.items() if route is None or r == route), _ZERO)

    def daily_realised(self, ts_ns: Optional[int] = None) -> Decimal:
        ts = self._clock() if ts_ns is None else ts_ns
        return self.daily.get(time.strftime("%Y-%m-%d", time.gmtime(ts // 1_000_000_000)), _ZERO)

    def open_exposure(self, marks: Optional[Mapping[str, Decimal]] = None) -> Decimal:
        """Σ |net position| × mark over assets (quote currency); mark = last fill price by default."""
        total = _ZERO
        with decimal.localcontext(DEC_CTX):
            for asset, pos in self.positions().items():
                if pos:
                    m = (marks or {}).get(asset, self.marks.get(asset, _ZERO))
                    total += abs(pos) * m
        return total

    def summary_rows(self) -> list[dict]:
        """One row per (route, asset): position, realised P&L, fees, volumes (decimal strings)."""
        rows = []
        for (route, asset), ra in sorted(self._ra.items()):
            rows.append({"route": route, "asset": asset, "quote": self._quote_of[(route, asset)],
                         "position": str(ra.position), "realised_pnl": str(ra.realised),
                         "fees": str(ra.fees_quote), "fills": ra.fills, "bought": str(ra.bought),
                         "sold": str(ra.sold), "buy_cost": str(ra.buy_cost),
                         "sell_proceeds": str(ra.sell_proceeds)})
        return rows

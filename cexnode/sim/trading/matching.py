"""Accounts and the price-time matching engine of one simulated venue.

Model
-----
* Liquidity an order can take: the venue's true book (``venue.books[sym]``, what the generator
  quotes and the public streams publish) and resting orders of simulator accounts. Levels are walked
  best price first; at one price, resting account orders come before book liquidity (they were
  there first: time priority), and among themselves in arrival order.
* Taking book liquidity changes the true book: the new level sizes and the public trades are
  published with ``venue.publish_change`` as an ordinary diff, so REST snapshots and the public
  streams stay consistent.
* Resting (GTC) account orders are kept beside the true book, not inside it (the generator owns the
  book's level sizes). They fill when a later order crosses them, or when the generated market walks
  through them: after every public diff, a resting buy whose price is >= the best ask (sell: <= best
  bid) is filled as maker at its own price against the crossing book levels, which are consumed and
  published like any fill.
* Fees: taker ``venue.taker_fee``, maker ``venue.maker_fee`` (config ``venues.<v>.taker_fee`` /
  ``maker_fee``). Spot: charged in the asset received (buy → base, sell → quote), as the simulated
  spot venues report it (a fee in BTC on a BTC/USDT buy). Futures: in the settle currency, taken
  from the account's total.
* Balances are exact :class:`~decimal.Decimal`. Spot: a buy locks ``qty × limit price`` of quote, a
  sell locks ``qty`` of base; fills move locked → the other asset; the unused lock returns on
  finish. Futures (USDT-settled perpetuals): sizes in signed contracts, one net position per contract, margin =
  ``|contracts| × quanto_multiplier × price / leverage`` (default leverage 10), fills realise PnL in
  USDT; ``available = total − position margin − order margin``.

All errors are :class:`Reject` with a generic ``kind``; the venues' trading modules map kinds to
their own codes and error shapes.
"""
from __future__ import annotations

import itertools
import logging
import time
from bisect import insort
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Optional

from ..books import Trade

__all__ = ["Account", "Balance", "Position", "SimOrder", "Fill", "Reject", "MatchingEngine", "DEFAULT_LEVERAGE"]

log = logging.getLogger("cexnode.sim.trading")

DEFAULT_LEVERAGE = Decimal(10)
ZERO = Decimal(0)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Reject(Exception):
    """An order (or request) the venue refuses. ``kind``: symbol, tick, step, min_qty, min_notional,
    balance, param, duplicate, not_found, position, fault; ``message``: human text; ``code``: a venue
    code forced by a fault (``reject_orders(n, code)``)."""

    def __init__(self, kind: str, message: str, code: Any = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.code = code


@dataclass
class Balance:
    available: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


@dataclass
class Position:
    """Net futures position of one contract: signed contracts (steps at the instrument's scale)."""

    size: int = 0
    entry_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO


class Account:
    """One API key of one venue: its secret, balances, futures positions and user id.

    ``balances[asset]`` is a :class:`Balance`; on futures the settle asset's ``available`` is the
    wallet total and order/position margins are derived (see :meth:`futures_view`).
    """

    def __init__(self, venue: str, api_key: str, secret: str, uid: int, balances: Optional[dict] = None,
                 leverage: Decimal = DEFAULT_LEVERAGE):
        self.venue = venue
        self.api_key = api_key
        self._secret = secret
        self.uid = uid
        self.leverage = Decimal(leverage)
        self.balances: dict[str, Balance] = {}
        self.positions: dict[str, Position] = {}
        for asset, amount in (balances or {}).items():
            self.balances[asset] = Balance(Decimal(str(amount)))

    @property
    def secret(self) -> str:
        return self._secret

    def __repr__(self) -> str:       # never the secret
        return "Account(%s, uid=%s, key=%s…)" % (self.venue, self.uid, self.api_key[:4])

    def balance(self, asset: str) -> Balance:
        b = self.balances.get(asset)
        if b is None:
            b = self.balances[asset] = Balance()
        return b

    def position(self, contract: str) -> Position:
        p = self.positions.get(contract)
        if p is None:
            p = self.positions[contract] = Position()
        return p


@dataclass
class Fill:
    id: int
    order: "SimOrder"
    price: int                 # ticks
    qty: int                   # steps (venue units, positive)
    quote: Decimal             # qty (base units) × price
    fee: Decimal
    fee_asset: str
    role: str                  # "taker" | "maker"
    ts_ms: int
    closed: int = 0            # futures: steps of this fill that reduced the position (a close size)


@dataclass(eq=False)
class SimOrder:
    """One order. ``qty``/``filled``: positive steps; ``side`` "buy"/"sell"; ``price`` ticks (None:
    market). ``status``: "open" | "closed" | "cancelled"; ``finish_as`` (how it ended): open, filled,
    cancelled, ioc, poc, fok. ``reserved``: what is still locked for it (quote or base on spot,
    margin on futures)."""

    id: int
    account: Account
    symbol: str                # venue symbol
    side: str
    qty: int
    price: Optional[int]
    tif: str                   # gtc | ioc | poc | fok
    client_id: str = ""
    type: str = "limit"
    reduce_only: bool = False
    filled: int = 0
    filled_quote: Decimal = ZERO
    fee: Decimal = ZERO
    fee_asset: str = ""
    status: str = "open"
    finish_as: str = "open"
    reserved: Decimal = ZERO
    create_ms: int = 0
    update_ms: int = 0
    fills: list = field(default_factory=list)
    seq: int = 0               # arrival order (time priority)
    updates: int = 0           # order events pushed so far (a futures order's update id)
    extra: dict = field(default_factory=dict)   # venue-specific fields (an order type name...)

    @property
    def left(self) -> int:
        return self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"


Listener = Callable[[str, Any], None]


class MatchingEngine:
    """Orders, resting books and accounts of one venue (see module docstring).

    ``orders`` / ``by_client`` hold the open orders and the final ones of the last ``keep_final_s``
    seconds (default 60; older final orders are forgotten when the next order is placed).

    Listeners ``fn(event, data)`` get: ``("order", (order, order_event))`` with order_event put /
    update / finish, ``("fill", fill)``, ``("balance", (account, [assets], change_type))``,
    ``("position", (account, contract))``. They run synchronously, in venue order.
    """

    def __init__(self, venue, *, id_start: int = 1_700_000_000, keep_final_s: float = 60.0):
        self.venue = venue
        self.futures = venue.is_perpetual
        self.orders: dict[int, SimOrder] = {}
        self.by_client: dict[tuple[str, str], SimOrder] = {}
        self.resting: dict[str, dict[str, list]] = {}      # vsym -> side -> [(sort key, seq, order)]
        self.listeners: list[Listener] = []
        self._ids = itertools.count(id_start)
        self._seq = itertools.count(1)
        self._fill_ids = itertools.count(1)
        self._in_publish = False
        # A final order is forgotten keep_final_s after it ended (queries then answer "not found",
        # as a venue does for old finished orders); without it the maps hold every order ever placed.
        self.keep_final_s = float(keep_final_s)
        self._finished: deque = deque()        # (monotonic end time, order), oldest first

    # ------------------------------------------------------------------ events
    def emit(self, event: str, data: Any) -> None:
        for fn in list(self.listeners):
            try:
                fn(event, data)
            except Exception:   # a stream bug must not break matching
                log.exception("%s: trading listener failed", self.venue.name)

    # ------------------------------------------------------------------ lookup
    def get(self, account: Account, order_id: Any = None, client_id: Optional[str] = None) -> Optional[SimOrder]:
        if client_id:
            o = self.by_client.get((account.api_key, client_id))
            return o
        try:
            o = self.orders.get(int(order_id))
        except (TypeError, ValueError):
            return None
        return o if o is not None and o.account is account else None

    def open_orders(self, account: Account, symbol: Optional[str] = None) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.account is account and o.is_open
                and (symbol is None or o.symbol == symbol)]

    def fills_of(self, account: Account, symbol: Optional[str] = None, order: Optional[SimOrder] = None) -> list:
        """The account's fills (oldest first), optionally of one symbol or one order."""
        orders = [order] if order is not None else [o for o in self.orders.values() if o.account is account
                                                    and (symbol is None or o.symbol == symbol)]
        return sorted((f for o in orders for f in o.fills), key=lambda f: f.id)

    # ------------------------------------------------------------------ placing
    def validate(self, inst, side: str, qty: int, price: Optional[int]) -> None:
        if qty <= 0:
            raise Reject("param", "size must be positive")
        if price is not None and price <= 0:
            raise Reject("param", "price must be positive")
        if inst.min_qty and inst.size(qty) < inst.min_qty:
            raise Reject("min_qty", "order size %s below the minimum %s" % (inst.size_str(qty), inst.min_qty))
        if not self.futures and inst.min_notional and price is not None \
                and inst.size(qty) * inst.price(price) < inst.min_notional:
            raise Reject("min_notional", "order value %s below the minimum %s"
                         % (inst.size(qty) * inst.price(price), inst.min_notional))

    def place(self, account: Account, symbol: str, side: str, qty: int, price: Optional[int], *, tif: str = "gtc",
              client_id: str = "", type: str = "limit", reduce_only: bool = False, extra: Optional[dict] = None,
              ts_ms: Optional[int] = None) -> SimOrder:
        """Validate, reserve, match and (GTC) rest one order; returns it (final or open).

        ``qty`` in steps of the instrument (contracts on futures), ``price`` in ticks (None: market,
        IOC only). Raises :class:`Reject`.
        """
        inst = self.venue.instruments.get(symbol)
        if inst is None:
            raise Reject("symbol", "unknown symbol %s" % symbol)
        if symbol in self.venue.halted:
            raise Reject("symbol", "trading of %s is halted (delisted)" % symbol)
        if side not in ("buy", "sell"):
            raise Reject("param", "side must be buy or sell")
        if tif not in ("gtc", "ioc", "poc", "fok"):
            raise Reject("param", "invalid time_in_force %s" % tif)
        if price is None and tif not in ("ioc", "fok"):
            raise Reject("param", "a market order must be ioc or fok")
        self._forget_finished()
        if client_id and (account.api_key, client_id) in self.by_client \
                and self.by_client[(account.api_key, client_id)].is_open:
            raise Reject("duplicate", "duplicate client order id %s" % client_id)
        self.validate(inst, side, qty, price)
        ts = ts_ms or now_ms()
        order = SimOrder(id=next(self._ids), account=account, symbol=symbol, side=side, qty=qty, price=price,
                         tif=tif, client_id=client_id, type=type, reduce_only=reduce_only, create_ms=ts,
                         update_ms=ts, seq=next(self._seq), extra=dict(extra or {}))
        order.fee_asset = (inst.quote if self.futures else (inst.base if side == "buy" else inst.quote))
        self._reserve(inst, order)
        self.orders[order.id] = order
        if client_id:
            self.by_client[(account.api_key, client_id)] = order
        self.emit("order", (order, "put"))
        self._emit_balance(account, inst, "order-create")
        self._execute(inst, order)
        return order

    def _reserve(self, inst, order: SimOrder) -> None:
        acct = order.account
        if self.futures:
            if order.reduce_only:
                pos = acct.position(order.symbol).size
                if (order.is_buy and pos >= 0) or (not order.is_buy and pos <= 0) or order.qty > abs(pos):
                    raise Reject("position", "reduce-only order would increase the position")
                return
            px = inst.price(order.price) if order.price is not None else self._market_ref(inst, order)
            # only the part that opens (beyond the opposite position) needs margin
            pos = acct.position(order.symbol).size
            opposite = abs(pos) if (pos < 0) == order.is_buy and pos != 0 else 0
            need = inst.base_qty(max(0, order.qty - opposite)) * px / acct.leverage
            if need and self.futures_available(acct, inst.quote) < need:
                raise Reject("balance", "insufficient available margin")
            order.reserved = need
            return
        if order.is_buy:
            px = inst.price(order.price) if order.price is not None else self._market_ref(inst, order)
            need, asset = inst.size(order.qty) * px, inst.quote
        else:
            need, asset = inst.size(order.qty), inst.base
        b = acct.balance(asset)
        if b.available < need:
            raise Reject("balance", "insufficient %s balance: need %s, available %s" % (asset, need, b.available))
        b.available -= need
        b.locked += need
        order.reserved = need

    def _market_ref(self, inst, order: SimOrder) -> Decimal:
        book = self.venue.books[order.symbol]
        lv = book.best_ask() if order.is_buy else book.best_bid()
        if lv is None:
            raise Reject("param", "no liquidity for a market order")
        # worst price a market order may reach: the whole side of the book
        levels = book.top()[1 if order.is_buy else 0]
        return inst.price(levels[-1][0])

    # ------------------------------------------------------------------ futures accounting
    def futures_margins(self, acct: Account, settle: str) -> tuple[Decimal, Decimal]:
        """(position margin, order margin) of a futures account."""
        pm = ZERO
        for c, p in acct.positions.items():
            if p.size:
                pm += self.venue.instruments[c].base_qty(abs(p.size)) * p.entry_price / acct.leverage
        om = sum((o.reserved for o in self.orders.values() if o.account is acct and o.is_open), ZERO)
        return pm, om

    def futures_available(self, acct: Account, settle: str) -> Decimal:
        pm, om = self.futures_margins(acct, settle)
        return acct.balance(settle).available - pm - om

    def unrealised_pnl(self, acct: Account, contract: str) -> Decimal:
        p = acct.positions.get(contract)
        if p is None or not p.size:
            return ZERO
        inst = self.venue.instruments[contract]
        book = self.venue.books[contract]
        bb, ba = book.best_bid(), book.best_ask()
        if not bb or not ba:
            return ZERO
        mark = inst.price(bb[0] + ba[0]) / 2
        return inst.base_qty(abs(p.size)) * (mark - p.entry_price) * (1 if p.size > 0 else -1)

    # ------------------------------------------------------------------ matching
    def _crosses(self, order: SimOrder, px: int) -> bool:
        if order.price is None:
            return True
        return px <= order.price if order.is_buy else px >= order.price

    def _liquidity(self, order: SimOrder, limit_steps: int) -> list:
        """Crossing liquidity best first: [(price, avail, resting order or None)] up to ``limit_steps``."""
        book = self.venue.books[order.symbol]
        opp = "sell" if order.is_buy else "buy"
        rest = [e[2] for e in self.resting.get(order.symbol, {}).get(opp, [])]
        levels = book.top()[1 if order.is_buy else 0]
        out, i, j, total = [], 0, 0, 0
        while total < limit_steps:
            lv = levels[i] if i < len(levels) else None
            ro = rest[j] if j < len(rest) else None
            if lv is None and ro is None:
                break
            take_rest = ro is not None and (lv is None or (ro.price <= lv[0] if order.is_buy else ro.price >= lv[0]))
            if take_rest:
                j += 1
                if ro.account is order.account:
                    continue        # no self-trade: skip own resting orders
                if not self._crosses(order, ro.price):
                    break
                out.append((ro.price, ro.left, ro))
                total += ro.left
            else:
                i += 1
                if not self._crosses(order, lv[0]):
                    break
                out.append((lv[0], lv[1], None))
                total += lv[1]
        return out

    def _execute(self, inst, order: SimOrder) -> None:
        limit = order.left
        faults = self.venue.faults
        if getattr(faults, "partial_fraction", None) is not None:
            frac, faults.partial_fraction = faults.partial_fraction, None
            limit = max(0, min(limit, int(Decimal(order.qty) * frac)))
        liq = self._liquidity(order, order.left)
        available = sum(a for _, a, _ in liq)
        if order.tif == "poc" and liq:
            self._finish(inst, order, "poc")
            return
        if order.tif == "fok" and available < order.left:
            self._finish(inst, order, "fok")
            return
        book_changes: dict[int, int] = {}
        trades: list[Trade] = []
        book = self.venue.books[order.symbol]
        side_levels = book.asks if order.is_buy else book.bids
        ts = now_ms()
        for px, avail, resting in liq:
            if limit <= 0:
                break
            q = min(limit, avail)
            if q <= 0:
                continue
            limit -= q
            if resting is not None:
                self._fill(inst, resting, px, q, "maker", ts)
            else:
                book_changes[px] = book_changes.get(px, side_levels[px]) - q
            self._fill(inst, order, px, q, "taker", ts)
            trades.append(Trade(self.venue.next_trade_id(order.symbol), px, q, order.is_buy, ts))
        self._publish(order.symbol, order.is_buy, book_changes, trades)
        if order.left == 0:
            self._finish(inst, order, "filled")
        elif order.tif == "gtc":
            self._rest(order)
            if order.filled:
                self.emit("order", (order, "update"))
        else:
            self._finish(inst, order, "ioc" if order.tif == "ioc" else order.tif)

    def _publish(self, symbol: str, asks_side: bool, changes: dict, trades: list) -> None:
        """Publish consumed book levels (``asks_side``: they are asks) and the public trades."""
        if not changes and not trades:
            return
        levels = sorted(changes.items())
        self._in_publish = True
        try:
            if asks_side:
                self.venue.publish_change(symbol, asks=levels, trades=trades)
            else:
                self.venue.publish_change(symbol, bids=levels[::-1], trades=trades)
        finally:
            self._in_publish = False

    def _rest(self, order: SimOrder) -> None:
        side = self.resting.setdefault(order.symbol, {"buy": [], "sell": []})[order.side]
        key = -order.price if order.is_buy else order.price
        insort(side, (key, order.seq, order))

    def _unrest(self, order: SimOrder) -> None:
        side = self.resting.get(order.symbol, {}).get(order.side)
        if side:
            side[:] = [e for e in side if e[2] is not order]

    def _fill(self, inst, order: SimOrder, px: int, q: int, role: str, ts: int) -> None:
        acct = order.account
        price = inst.price(px)
        base = inst.base_qty(q)
        quote = base * price
        rate = self.venue.taker_fee if role == "taker" else self.venue.maker_fee
        closed = 0
        if self.futures:
            fee = quote * rate
            closed = self._futures_fill(inst, order, q, price, fee)
        else:
            if order.is_buy:
                fee = base * rate
                lock = inst.size(q) * inst.price(order.price) if order.price is not None else quote
                lock = min(lock, order.reserved)
                qb = acct.balance(inst.quote)
                qb.locked -= lock
                qb.available += lock - quote
                order.reserved -= lock
                acct.balance(inst.base).available += base - fee
            else:
                fee = quote * rate
                bb = acct.balance(inst.base)
                bb.locked -= base
                order.reserved -= base
                acct.balance(inst.quote).available += quote - fee
        order.filled += q
        order.filled_quote += quote
        order.fee += fee
        order.update_ms = ts
        f = Fill(next(self._fill_ids), order, px, q, quote, fee, order.fee_asset, role, ts, closed)
        order.fills.append(f)
        self.emit("fill", f)
        if role == "maker":
            if order.left == 0:
                self._unrest(order)
                self._finish(inst, order, "filled")
            else:
                self.emit("order", (order, "update"))
        self._emit_balance(acct, inst, "order-match")

    def _futures_fill(self, inst, order: SimOrder, q: int, price: Decimal, fee: Decimal) -> int:
        """Apply a futures fill to the position; returns the steps that reduced it."""
        acct = order.account
        pos = acct.position(order.symbol)
        signed = q if order.is_buy else -q
        # the order's margin for this part is released (the position margin replaces it)
        if order.reserved:
            part = min(order.reserved, order.reserved * q / order.left) if order.left else order.reserved
            order.reserved -= part
        pnl = ZERO
        closing = 0
        if pos.size == 0 or (pos.size > 0) == (signed > 0):
            tot = abs(pos.size) + q
            pos.entry_price = (pos.entry_price * abs(pos.size) + price * q) / tot
            pos.size += signed
        else:
            closing = min(q, abs(pos.size))
            direction = 1 if pos.size > 0 else -1
            pnl = inst.base_qty(closing) * (price - pos.entry_price) * direction
            pos.size += signed
            if pos.size == 0:
                pos.entry_price = ZERO
            elif (pos.size > 0) != (direction > 0):
                pos.entry_price = price       # flipped: the rest opened at this price
        pos.realised_pnl += pnl - fee
        acct.balance(inst.quote).available += pnl - fee
        self.emit("position", (acct, order.symbol))
        return closing

    def _finish(self, inst, order: SimOrder, finish_as: str) -> None:
        acct = order.account
        if order.reserved:
            if not self.futures:
                asset = inst.quote if order.is_buy else inst.base
                b = acct.balance(asset)
                b.locked -= order.reserved
                b.available += order.reserved
            order.reserved = ZERO
        order.status = "closed" if finish_as == "filled" else "cancelled"
        order.finish_as = finish_as
        order.update_ms = now_ms()
        self._finished.append((time.monotonic(), order))
        self.emit("order", (order, "finish"))
        self._emit_balance(acct, inst, "order-cancel" if finish_as != "filled" else "order-match")

    def _forget_finished(self) -> None:
        cut = time.monotonic() - self.keep_final_s
        q = self._finished
        while q and q[0][0] <= cut:
            o = q.popleft()[1]
            self.orders.pop(o.id, None)
            # each Fill refers to its order: without this the pair is a reference cycle that only
            # the cyclic GC frees, and between its rare full collections RSS climbs for minutes
            o.fills.clear()
            key = (o.account.api_key, o.client_id)
            if o.client_id and self.by_client.get(key) is o:
                del self.by_client[key]

    def cancel(self, order: SimOrder) -> SimOrder:
        """Cancel an open order (a final one is returned unchanged)."""
        if order.is_open:
            self._unrest(order)
            self._finish(self.venue.instruments[order.symbol], order, "cancelled")
        return order

    def _emit_balance(self, acct: Account, inst, change_type: str) -> None:
        assets = [inst.quote] if self.futures else [inst.base, inst.quote]
        self.emit("balance", (acct, assets, change_type))

    # ------------------------------------------------------------------ the market walks through resting orders
    def on_public_diff(self, symbol: str) -> None:
        """After a public diff of ``symbol``: fill resting orders the true book now crosses."""
        if self._in_publish:
            return
        sides = self.resting.get(symbol)
        if not sides:
            return
        inst = self.venue.instruments[symbol]
        book = self.venue.books[symbol]
        for side_name in ("buy", "sell"):
            entries = sides[side_name]
            while entries:
                order = entries[0][2]
                is_buy = order.is_buy
                levels = book.top()[1 if is_buy else 0]
                changes: dict[int, int] = {}
                trades: list[Trade] = []
                ts = now_ms()
                for px, q_avail in levels:
                    if order.left == 0 or not (px <= order.price if is_buy else px >= order.price):
                        break
                    q = min(order.left, q_avail)
                    changes[px] = q_avail - q
                    # the resting order is the maker at its own price; the book liquidity it meets
                    # is consumed (the generated market "walked through" it)
                    trades.append(Trade(self.venue.next_trade_id(symbol), order.price, q, not is_buy, ts))
                    self._fill(inst, order, order.price, q, "maker", ts)
                if not changes:
                    break
                self._publish(symbol, is_buy, changes, trades)
                if order.is_open:
                    break

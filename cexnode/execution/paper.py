"""PaperGateway: simulated order entry against the node's own books (paper mode, the default).

An order is matched when ``place`` is called — against the book as it is at decision time —
walking the levels up to the limit price (IOC: the rest is cancelled; GTC: the rest is cancelled
too, paper keeps no resting orders). The answer arrives after ``latency_ms``. Liquidity taken by
earlier paper orders is remembered until the book changes (``Book.version``), so two orders cannot
take the same level twice. Fees are charged in the quote asset at ``fee_rate``. Balances are
virtual (``trading.paper.balances``): a buy needs quote ≥ cost × (1 + fee), a spot sell needs the
base; a futures venue holds a signed base position (shorts allowed), needs quote margin ≥
|position after the order| × limit × ``margin_fraction`` + fee, and moves only the fee in quote
(the position's P&L is accounted in PositionBook, not in the paper balance).
An order on a book that is out of sync, crossed or empty on the taking side is rejected
(``book_unavailable``): paper cannot know what the venue would do.
"""
from __future__ import annotations

import asyncio
import decimal
import itertools
import time
from decimal import Decimal
from typing import Callable, Mapping, Optional

from cexnode.adapters.registry import UnknownVenueError, descriptor
from cexnode.execution.gateway import (Balance, OrderAck, OrderNotFound, OrderRequest, OrderState,
                                       OrderStatus, Outcome, Side, mantissa_to_decimal)
from cexnode.execution.positions import DEC_CTX

__all__ = ["PaperGateway", "build_paper_gateways", "reconfigure_paper_gateways"]
_ZERO = Decimal(0)


class PaperGateway:
    """Paper order entry for one venue.

    Parameters
    ----------
    venue
        Venue name (a registered venue, :mod:`cexnode.adapters.registry`).
    books
        ``{unified symbol: Book}`` of this venue (the node's live books; base quantities).
    fee_rate
        Taker fee rate (Decimal), charged in the quote asset.
    latency_ms
        Simulated time between the request and the venue's answer (also for cancel/query/balances).
    balances
        ``{asset: amount}`` starting virtual balances.
    futures
        True for a perpetual venue (margin in quote, shorts allowed); None: from the venue's descriptor.
    asset_notional, mid_price
        A spot venue's starting inventory of every base asset ``balances`` does not name: worth
        ``asset_notional`` in quote at ``mid_price(symbol)`` (None while that book has no price),
        given the first time the asset's book has one (``trading.paper.asset_notional``: a universe of
        hundreds of assets). 0: none.
    """

    def __init__(self, venue: str, books: Mapping[str, object], *, fee_rate: Decimal = Decimal("0.001"),
                 latency_ms: float = 5.0, balances: Optional[Mapping[str, Decimal]] = None,
                 futures: Optional[bool] = None, margin_fraction: Decimal = Decimal(1),
                 clock_ns: Callable[[], int] = time.time_ns, asset_notional: Decimal = _ZERO,
                 mid_price: Optional[Callable[[str], Optional[Decimal]]] = None):
        self.venue = venue
        self.books = dict(books)
        self.fee_rate = Decimal(fee_rate)
        self.latency_ms = float(latency_ms)
        self.futures = _is_perpetual(venue) if futures is None else futures
        self.margin_fraction = Decimal(margin_fraction)
        self._clock = clock_ns
        self._free: dict[str, Decimal] = {a: Decimal(v) for a, v in (balances or {}).items()}
        self.asset_notional = Decimal(asset_notional)
        self._mid_price = mid_price
        self._orders: dict[str, OrderState] = {}
        self._taken: dict[str, tuple[int, dict[tuple[bool, int], int]]] = {}   # symbol -> (version, {(is_bid, px): qty})
        self._order_cbs: list = []
        self._balance_cbs: list = []
        self._ids = itertools.count(1)
        self.placed = 0
        self.rejected = 0
        self.filled_orders = 0

    # -- helpers -----------------------------------------------------------------------------------
    async def _delay(self) -> None:
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000.0)

    def _emit(self, st: OrderState) -> None:
        for cb in list(self._order_cbs):
            cb(st)

    def _reject(self, order: OrderRequest, reason: str) -> OrderState:
        self.rejected += 1
        return OrderState(client_id=order.client_id, venue=self.venue, symbol=order.symbol, side=order.side,
                          status=OrderStatus.REJECTED, qty=order.qty, order_id="", reason=reason, ts_ns=self._clock())

    @staticmethod
    def _split(symbol: str) -> tuple[str, str]:
        base, _, rest = symbol.partition("/")
        return base, rest.partition(":")[0]

    def _seed_inventory(self) -> None:
        """Give every base asset without a balance its ``asset_notional`` worth, once its book
        has a price (spot venues: a perpetual holds no base)."""
        if self.asset_notional <= 0 or self.futures or self._mid_price is None:
            return
        for symbol in self.books:
            base = self._split(symbol)[0]
            if base in self._free:
                continue
            mid = self._mid_price(symbol)
            if mid is not None and mid > 0:
                with decimal.localcontext(DEC_CTX):
                    self._free[base] = self.asset_notional / mid

    def _match(self, order: OrderRequest) -> OrderState:
        """Fill ``order`` against the book now; update balances; return the final state."""
        self._seed_inventory()
        book = self.books.get(order.symbol)
        if order.client_id in self._orders:
            return self._reject(order, "duplicate_client_id")
        if book is None:
            return self._reject(order, "unknown_symbol")
        if not book.in_sync or book.crossed:
            return self._reject(order, "book_unavailable")
        if order.qty_m <= 0 or order.price_m <= 0:
            return self._reject(order, "invalid_qty_or_price")
        bids, asks = book.top(book.depth)      # what the arbitrage walk read (the book holds more)
        buy = order.side is Side.BUY
        levels = asks if buy else bids
        if not levels:
            return self._reject(order, "book_unavailable")
        ver, taken = self._taken.get(order.symbol, (-1, None))
        if ver != book.version or taken is None:
            taken = {}
            self._taken[order.symbol] = (book.version, taken)
        remaining = order.qty_m
        fills: list[tuple[int, int]] = []
        for px, q in levels:
            if remaining <= 0 or (px > order.price_m if buy else px < order.price_m):
                break
            avail = q - taken.get((not buy, px), 0)
            if avail <= 0:
                continue
            t = min(avail, remaining)
            fills.append((px, t))
            remaining -= t
        filled_m = order.qty_m - remaining
        cost_m = sum(px * q for px, q in fills)          # at price_scale + qty_scale, exact
        base, quote = self._split(order.symbol)
        with decimal.localcontext(DEC_CTX):
            filled = mantissa_to_decimal(filled_m, order.qty_scale)
            cost = mantissa_to_decimal(cost_m, order.qty_scale + order.price_scale)
            fee = cost * self.fee_rate
            # Balances: checked against the whole order at its limit price (a venue locks that),
            # then moved by what filled.
            worst = order.notional
            sign = 1 if buy else -1
            if self.futures:
                # margin for the position after the order (a reducing order needs less) + the fee
                pos_after = abs(self._free.get(base, _ZERO) + sign * order.qty)
                need = pos_after * order.price * self.margin_fraction + worst * self.fee_rate
                asset = quote
            elif buy:
                need, asset = worst * (1 + self.fee_rate), quote
            else:
                need, asset = order.qty, base
            if self._free.get(asset, _ZERO) < need:
                return self._reject(order, "insufficient_balance")
            for px, q in fills:
                taken[(not buy, px)] = taken.get((not buy, px), 0) + q
            if filled_m:
                self._free[base] = self._free.get(base, _ZERO) + sign * filled
                if self.futures:      # a perp moves no quote on a fill: only the fee (P&L is in PositionBook)
                    self._free[quote] = self._free.get(quote, _ZERO) - fee
                else:
                    self._free[quote] = self._free.get(quote, _ZERO) - sign * cost - fee
            avg = cost / filled if filled_m else None
        if filled_m == order.qty_m:
            status = OrderStatus.FILLED
            self.filled_orders += 1
        else:
            status = OrderStatus.CANCELLED     # IOC remainder cancelled (filled_qty may be > 0)
        return OrderState(client_id=order.client_id, venue=self.venue, symbol=order.symbol, side=order.side,
                          status=status, qty=order.qty, filled_qty=filled, avg_price=avg, fee=fee if filled_m else _ZERO,
                          fee_asset=quote, order_id="P%d" % next(self._ids), ts_ns=self._clock())

    # -- OrderGateway ------------------------------------------------------------------------------
    async def place(self, order: OrderRequest) -> OrderAck:
        t0 = time.monotonic_ns()
        self.placed += 1
        st = self._match(order)                         # decision time: the book as it is now
        if st.status is not OrderStatus.REJECTED:
            self._orders[order.client_id] = st
        await self._delay()
        ack = OrderAck(client_id=order.client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=st,
                       order_id=st.order_id, reason=st.reason, error_code=st.reason,
                       latency_ns=time.monotonic_ns() - t0)
        if st.status is not OrderStatus.REJECTED:
            self._emit(st)
            if self._balance_cbs:
                bal = self._snapshot()
                for cb in list(self._balance_cbs):
                    cb(self.venue, bal)
        return ack

    async def cancel(self, symbol: str, client_id: str) -> OrderAck:
        await self._delay()
        st = self._orders.get(client_id)
        if st is None:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=None,
                            reason="not_found", error_code="not_found")
        return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=st,
                        order_id=st.order_id)

    async def query(self, symbol: str, client_id: str) -> OrderState:
        await self._delay()
        st = self._orders.get(client_id)
        if st is None:
            raise OrderNotFound()
        return st

    def _snapshot(self) -> dict[str, Balance]:
        now = self._clock()
        return {a: Balance(asset=a, free=v, locked=_ZERO, ts_ns=now) for a, v in self._free.items()}

    async def balances(self) -> dict[str, Balance]:
        await self._delay()
        self._seed_inventory()
        return self._snapshot()

    def subscribe_orders(self, callback) -> Callable[[], None]:
        self._order_cbs.append(callback)
        return lambda: self._order_cbs.remove(callback) if callback in self._order_cbs else None

    def subscribe_balances(self, callback) -> Callable[[], None]:
        self._balance_cbs.append(callback)
        return lambda: self._balance_cbs.remove(callback) if callback in self._balance_cbs else None

    # -- books (routes wired and unwired while the node runs) --------------------------------------
    def add_book(self, symbol: str, book: object) -> None:
        """Match orders on ``symbol`` against ``book`` from now on (a route wired at run time)."""
        self.books[symbol] = book
        self._taken.pop(symbol, None)

    def remove_book(self, symbol: str) -> None:
        """No more orders on ``symbol`` (its route is gone and nothing of it is in flight): an
        order on it is refused as ``unknown_symbol``; the orders already answered stay queryable."""
        self.books.pop(symbol, None)
        self._taken.pop(symbol, None)

    # -- paper only --------------------------------------------------------------------------------
    def free(self, asset: str) -> Decimal:
        return self._free.get(asset, _ZERO)


def _is_perpetual(venue: str) -> bool:
    """The venue's market from its descriptor (a name no venue registers: spot)."""
    try:
        return descriptor(venue).is_perpetual
    except UnknownVenueError:
        return False


def build_paper_gateways(config, books: Mapping[str, Mapping[str, object]],
                         clock_ns: Callable[[], int] = time.time_ns,
                         mid_price: Optional[Callable[[str, str], Optional[Decimal]]] = None) -> dict[str, PaperGateway]:
    """One PaperGateway per enabled venue of a ``cexnode.config.Config``: fees from
    ``trading.paper.fees`` or else ``venues.<v>.taker_fee``, latency and balances from ``trading.paper``, books from ``books``
    (``{venue: {unified symbol: Book}}``, the node's live books); ``mid_price(venue, symbol)``
    prices ``trading.paper.asset_notional``."""
    out = {}
    paper = config.trading.paper
    for name, vcfg in config.venues.enabled():
        fee = paper.fees.get(name, vcfg.taker_fee)
        out[name] = PaperGateway(name, books.get(name, {}), fee_rate=fee, latency_ms=paper.latency_ms,
                                 balances=paper.balances.get(name, {}),
                                 margin_fraction=config.trading.futures_margin_fraction, clock_ns=clock_ns,
                                 asset_notional=paper.asset_notional,
                                 mid_price=(lambda s, v=name: mid_price(v, s)) if mid_price is not None else None)
    return out


def reconfigure_paper_gateways(config, gateways: Mapping[str, object]) -> None:
    """Apply a reloaded config to the paper venues of ``gateways`` (others are left alone): the fee
    (``trading.paper.fees`` or ``venues.<v>.taker_fee``), ``trading.paper.latency_ms`` and
    ``trading.futures_margin_fraction``, as :func:`build_paper_gateways` takes them."""
    paper = config.trading.paper
    for name, gw in gateways.items():
        if not isinstance(gw, PaperGateway):
            continue
        vcfg = getattr(config.venues, name, None)
        if vcfg is not None:
            gw.fee_rate = Decimal(paper.fees.get(name, vcfg.taker_fee))
        gw.latency_ms = float(paper.latency_ms)
        gw.margin_fraction = Decimal(config.trading.futures_margin_fraction)

"""Pure-Python (``Decimal``) reference of the arbitrage semantics of DESIGN §4 — the oracle for
``cexnode._core.arb``.

Written from the spec, independently of the Cython code: books are plain lists of ``(price, qty)``
Decimals (best first), fees/thresholds are Decimals, and every operation runs in a Decimal context
that *traps* Inexact/Rounded, so the reference can never round by accident. The only roundings are
the ones the spec defines, written out explicitly:

* quantity caps: the largest multiple of the quantity unit ``10**-qty_scale`` that fits the cap
  (``//`` is exact integer division), then the largest multiple of ``lcm(step_A, step_B)``;
* leg limit prices: ``worst × (1 ± slippage_bps/10⁴)`` rounded up to A's tick (buy) / down to B's
  tick (sell); a sell limit that rounds to ≤ 0 means no opportunity;
* output only: ``buy_vwap``/``sell_vwap`` truncated (floored) to ``price_scale + 4`` decimals,
  ``net_bps`` floored to 4 decimals; ``net_profit`` is exact (it is a finite decimal).

Every rule below must match ``cexnode/_core/arb.pxd`` word for word; the differential tests in
``tests/unit/test_arb.py`` assert exact equality of emission and of every rendered field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact, Rounded, localcontext
from typing import Optional

VWAP_EXTRA_DIGITS = 4
BPS_DIGITS = 4
_EXACT = Context(prec=400, traps=[Inexact, Rounded])
_ONE = Decimal(1)
_BPS = Decimal(10000)


def fmt(d: Decimal) -> str:
    """Canonical decimal string: no exponent, no trailing zeros, no trailing '.', '0' for zero."""
    if d == 0:
        return "0"
    with localcontext(_EXACT):
        s = format(d.normalize(), "f")
    return s


@dataclass
class RefBook:
    venue: str
    bids: list  # [(px, qty)] Decimals, best (highest) first
    asks: list  # [(px, qty)] Decimals, best (lowest) first
    in_sync: bool = True
    exch_ts_ms: int = 0  # 0 = the venue sent no exchange time: only the receive time is checked
    recv_ns: int = 0
    version: int = 1

    def crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0][0] >= self.asks[0][0])


@dataclass
class RefLeg:
    venue: str
    book: RefBook
    fee: Decimal  # taker fee rate, e.g. Decimal("0.001")
    tick: Decimal
    step: Decimal  # base units (futures: contract step × multiplier)
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    margin: Optional[Decimal] = None  # perp leg: quote margin per unit of notional; None: spot


@dataclass
class RefParams:
    min_profit: Decimal = Decimal("0.50")
    min_bps: Decimal = Decimal(0)
    max_notional: Decimal = Decimal(1000)
    max_book_age_ms: int = 5000
    slippage_bps: Decimal = Decimal(0)


def fresh(book: RefBook, now_ns: int, max_age_ms: int) -> bool:
    """Receive time within max_age (ns), exchange time (if any) within max_age (ms, now floored to ms)."""
    if now_ns - book.recv_ns > max_age_ms * 1_000_000:
        return False
    if book.exch_ts_ms != 0 and now_ns // 1_000_000 - book.exch_ts_ms > max_age_ms:
        return False
    return True


def tradable(book: RefBook, now_ns: int, max_age_ms: int) -> bool:
    return book.in_sync and not book.crossed() and fresh(book, now_ns, max_age_ms)


def _take(levels, qty):
    """Cost (Σ px×q) and worst price of the first ``qty`` of a ladder."""
    rem = qty
    total = Decimal(0)
    worst = None
    for px, q in levels:
        if rem == 0:
            break
        x = min(rem, q)
        total += px * x
        rem -= x
        worst = px
    assert rem == 0
    return total, worst


def buy_limit(worst: Decimal, tick: Decimal, slippage_bps: Decimal) -> Decimal:
    """Rule 5: ``worst × (1 + slippage)`` rounded up to the tick."""
    raw = worst * (_ONE + slippage_bps / _BPS)
    n = raw // tick  # Decimal // truncates toward zero = floor here (all positive)
    if n * tick < raw:
        n += 1
    return n * tick


def sell_limit(worst: Decimal, tick: Decimal, slippage_bps: Decimal) -> Decimal:
    """Rule 5: ``worst × (1 − slippage)`` rounded down to the tick."""
    return ((worst * (_ONE - slippage_bps / _BPS)) // tick) * tick


def evaluate_pair(buy: RefLeg, sell: RefLeg, params: RefParams, price_scale: int, qty_scale: int,
                  quote_cap: Optional[Decimal], base_cap: Optional[Decimal], now_ns: int,
                  sell_quote_cap: Optional[Decimal] = None) -> Optional[dict]:
    """One ordered pair (buy on ``buy``, sell on ``sell``) → opportunity fields (Decimals) or None.

    Balances (None = unknown = no cap), as the executor's balance check takes them:
    ``quote_cap``: free quote on the buy venue — qty × buy limit × ((margin or 1) + fee) must fit;
    ``base_cap``: free base on a spot sell venue (qty must fit; not read for a perp sell leg);
    ``sell_quote_cap``: free quote on a perp sell venue — qty × sell limit × (margin + fee) must fit.
    The limits are those of the worst levels walked so far (rule 5).
    """
    with localcontext(_EXACT):
        A, B = buy.book, sell.book
        if not (tradable(A, now_ns, params.max_book_age_ms) and tradable(B, now_ns, params.max_book_age_ms)):
            return None
        asks, bids = A.asks, B.bids
        if not asks or not bids:
            return None
        u = Decimal(1).scaleb(-qty_scale)
        ka = _ONE + buy.fee
        kb = _ONE - sell.fee
        if quote_cap is not None:
            quote_cap = max(quote_cap, Decimal(0))
        if base_cap is not None:
            base_cap = max(base_cap, Decimal(0))
        if sell.margin is not None:
            base_cap = None
            if sell_quote_cap is not None:
                sell_quote_cap = max(sell_quote_cap, Decimal(0))
        else:
            sell_quote_cap = None
        k_buy = (buy.margin if buy.margin is not None else _ONE) + buy.fee
        k_sell = (sell.margin or _ONE) + sell.fee
        # 2. + 3. walk A's asks up and B's bids down while the fee-adjusted edge is positive,
        # stopping where a cap binds.
        i = j = 0
        ra, rb = asks[0][1], bids[0][1]
        q = Decimal(0)
        cost = Decimal(0)
        while i < len(asks) and j < len(bids):
            ap, bp = asks[i][0], bids[j][0]
            if not (bp * kb > ap * ka):
                break
            full = min(ra, rb)
            x = full
            if base_cap is not None:
                x = min(x, base_cap - q)
            if quote_cap is not None:
                lim = buy_limit(ap, buy.tick, params.slippage_bps)
                x = min(x, max((quote_cap // (lim * k_buy * u)) * u - q, Decimal(0)))
            if sell_quote_cap is not None:
                lim = sell_limit(bp, sell.tick, params.slippage_bps)
                if lim > 0:
                    x = min(x, max((sell_quote_cap // (lim * k_sell * u)) * u - q, Decimal(0)))
            x = min(x, ((params.max_notional - cost) // (ap * u)) * u)
            q += x
            cost += ap * x
            if x < full:
                break
            ra -= x
            rb -= x
            if ra == 0:
                i += 1
                if i < len(asks):
                    ra = asks[i][1]
            if rb == 0:
                j += 1
                if j < len(bids):
                    rb = bids[j][1]
        # round down to a step valid on both venues
        la, lb = buy.step / u, sell.step / u
        assert la == la.to_integral_value() and lb == lb.to_integral_value() and la > 0 and lb > 0
        lstep = math.lcm(int(la), int(lb)) * u
        qty = (q // lstep) * lstep
        if qty <= 0:
            return None
        if qty < buy.min_qty or qty < sell.min_qty:
            return None
        # 4. profit of the final quantity
        buy_cost, buy_worst = _take(asks, qty)
        sell_proceeds, sell_worst = _take(bids, qty)
        net = sell_proceeds * kb - buy_cost * ka
        if net < params.min_profit:
            return None
        if net * _BPS < params.min_bps * buy_cost:  # net/cost×10⁴ ≥ min_bps, exactly
            return None
        # 5. limit prices: worst level walked, widened by slippage, rounded away from the touch
        buy_price = buy_limit(buy_worst, buy.tick, params.slippage_bps)
        sell_price = sell_limit(sell_worst, sell.tick, params.slippage_bps)
        if sell_price <= 0:
            return None
        if qty * buy_price < buy.min_notional or qty * sell_price < sell.min_notional:
            return None
        e = Decimal(1).scaleb(-(price_scale + VWAP_EXTRA_DIGITS))
        b = Decimal(1).scaleb(-BPS_DIGITS)
        return {
            "qty": qty,
            "buy_price": buy_price,
            "sell_price": sell_price,
            "buy_vwap": (buy_cost // (qty * e)) * e,
            "sell_vwap": (sell_proceeds // (qty * e)) * e,
            "net_profit": net,
            "net_bps": ((net * _BPS) // (buy_cost * b)) * b,
            "buy_cost": buy_cost,
            "sell_proceeds": sell_proceeds,
        }


@dataclass
class RefRoute:
    name: str
    symbol: str
    price_scale: int
    qty_scale: int
    legs: list  # [RefLeg]
    base: str = ""
    quote: str = ""

    def __post_init__(self):
        if not self.base:
            self.base, self.quote = self.symbol.split(":")[0].split("/")


@dataclass
class RefEngine:
    """Mirror of ``ArbEngine``: routes, balances, dedup by (route, buy leg, sell leg) book versions."""

    params: RefParams = field(default_factory=RefParams)
    routes: list = field(default_factory=list)
    balances: dict = field(default_factory=dict)  # (venue, asset) -> Decimal; absent = no cap
    _emitted: dict = field(default_factory=dict)  # (route idx, a, b) -> (buy version, sell version)

    def add_route(self, route: RefRoute) -> int:
        self.routes.append(route)
        return len(self.routes) - 1

    def remove_route(self, name: str) -> bool:
        """Drop the route ``name``: later routes move up one index, their dedup memory kept."""
        for ri, route in enumerate(self.routes):
            if route.name == name:
                del self.routes[ri]
                self._emitted = {(r - (r > ri), a, b): v for (r, a, b), v in self._emitted.items() if r != ri}
                return True
        return False

    def set_balance(self, venue: str, asset: str, amount) -> None:
        if amount is None:
            self.balances.pop((venue, asset), None)
        else:
            self.balances[(venue, asset)] = Decimal(amount)

    def set_leg_params(self, venue: str, taker_fee=None, margin=None) -> None:
        for route in self.routes:
            for leg in route.legs:
                if leg.venue == venue:
                    if taker_fee is not None:
                        leg.fee = Decimal(taker_fee)
                    if margin is not None and leg.margin is not None:
                        leg.margin = Decimal(margin)

    def on_book_update(self, book: RefBook, now_ns: int) -> Optional[list]:
        out = None
        for ri, route in enumerate(self.routes):
            legs = route.legs
            touched = [k for k, leg in enumerate(legs) if leg.book is book]
            if not touched:
                continue
            u = touched[0]
            for a in range(len(legs)):
                for b in range(len(legs)):
                    if a == b or (a != u and b != u):
                        continue
                    key = (ri, a, b)
                    versions = (legs[a].book.version, legs[b].book.version)
                    if self._emitted.get(key) == versions:
                        continue
                    res = evaluate_pair(legs[a], legs[b], self.params, route.price_scale, route.qty_scale,
                                        self.balances.get((legs[a].venue, route.quote)),
                                        self.balances.get((legs[b].venue, route.base)), now_ns,
                                        self.balances.get((legs[b].venue, route.quote)))
                    if res is None:
                        continue
                    self._emitted[key] = versions
                    line = {"route": route.name, "symbol": route.symbol, "buy_venue": legs[a].venue,
                            "sell_venue": legs[b].venue}
                    for k in ("qty", "buy_price", "sell_price", "buy_vwap", "sell_vwap", "net_profit", "net_bps"):
                        line[k] = fmt(res[k])
                    line["t"] = now_ns
                    if out is None:
                        out = []
                    out.append(line)
        return out

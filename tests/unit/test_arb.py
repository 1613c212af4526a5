"""cexnode._core.arb: hand-written DESIGN §4 cases + differential tests against tests/reference/arb_ref.py.

Every result is compared field by field with the Decimal oracle (exact equality of the rendered
decimal strings, and of emission vs no emission).
"""
from __future__ import annotations

import os
import random
import weakref
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from reference import arb_ref as ref

from cexnode._core.arb import ArbEngine, Opportunity, format_mantissa
from cexnode._core.book import Book


def load_book(book, bids, asks, in_sync, exch_ts_ms, recv_ns):
    """Replace the whole content of a Book (mantissa ladders, best first); bumps book.version."""
    before = book.version
    book.py_apply(bids, asks, full=True, exch_ts_ms=exch_ts_ms, recv_ns=recv_ns)
    book.mark_in_sync(in_sync)
    assert book.version > before
    assert book.top() == (list(bids), list(asks))

MEXC, GATE, GFUT = 0, 1, 2
VNAMES = ("mexc_spot", "gateio_spot", "gateio_futures")
NOW = 1_700_000_000_000_000_000
LONG = bool(os.environ.get("CEXNODE_LONG"))


# ------------------------------------------------------------------------------------------------
# a small harness running the Cython engine and the reference side by side

class Pair:
    """Cython ArbEngine + RefEngine over the same books, routes, params and balances."""

    def __init__(self, price_scale, qty_scale, **params):
        self.P, self.Q = price_scale, qty_scale
        self.params = params
        self.cy = ArbEngine(**params)
        self.cy_routes = {}  # name -> (symbol, Cython leg dicts): what an engine built anew is given
        rp = ref.RefParams()
        for k, v in params.items():
            setattr(rp, k, Decimal(v) if k != "max_book_age_ms" else v)
        self.ref = ref.RefEngine(params=rp)
        self.books = {}  # (venue, symbol_id) -> (Book, RefBook)

    def book(self, venue, symbol_id):
        key = (venue, symbol_id)
        if key not in self.books:
            self.books[key] = (Book(symbol_id, venue), ref.RefBook(VNAMES[venue], [], []))
        return self.books[key]

    def add_route(self, name, symbol, legs):
        """legs: [(venue, symbol_id, fee str, tick, step, min_qty, min_notional[, margin str])] mantissas;
        a margin fraction makes the leg a perp leg (balance caps in quote margin)."""
        cy_legs, ref_legs = [], []
        u = Decimal(1).scaleb(-self.Q)
        p = Decimal(1).scaleb(-self.P)
        for venue, sid, fee, tick, step, min_qty, min_notional, *margin in legs:
            margin = Decimal(margin[0]) if margin and margin[0] is not None else None
            cb, rb = self.book(venue, sid)
            cy_legs.append(dict(venue=VNAMES[venue], book=cb, taker_fee=Decimal(fee), tick=tick, step=step,
                                min_qty=min_qty, min_notional=min_notional, margin_fraction=margin))
            ref_legs.append(ref.RefLeg(VNAMES[venue], rb, Decimal(fee), tick * p, step * u, min_qty * u,
                                       min_notional * p, margin))
        self.cy.add_route(name, symbol, self.P, self.Q, cy_legs)
        self.ref.add_route(ref.RefRoute(name, symbol, self.P, self.Q, ref_legs))
        self.cy_routes[name] = (symbol, cy_legs)

    def remove_route(self, name):
        """Remove a route from both engines (they agree whether it existed); returns that."""
        got = self.cy.remove_route(name)
        assert got == self.ref.remove_route(name)
        self.cy_routes.pop(name, None)
        return got

    def built_anew(self):
        """A Cython engine built from scratch with the routes (in order) and balances of now."""
        eng = ArbEngine(**self.params)
        for name in self.cy.route_names():
            symbol, legs = self.cy_routes[name]
            eng.add_route(name, symbol, self.P, self.Q, legs)
        eng.set_balances(self.cy.balances())
        return eng

    def set_balance(self, venue, asset, amount):
        self.cy.set_balance(VNAMES[venue], asset, amount)
        self.ref.set_balance(VNAMES[venue], asset, None if amount is None else Decimal(amount))

    def set_leg_params(self, venue, taker_fee=None, margin=None):
        kw = {k: v for k, v in (("taker_fee", taker_fee), ("margin_fraction", margin)) if v is not None}
        self.cy.set_leg_params(VNAMES[venue], **kw)
        self.ref.set_leg_params(VNAMES[venue], taker_fee, margin)

    def forget(self):
        self.cy.reset_dedup()
        self.ref._emitted.clear()

    def load(self, venue, sid, bids, asks, in_sync=True, exch_ts_ms=None, recv_ns=None):
        """Replace a book's content (mantissa ladders); bumps its version."""
        cb, rb = self.book(venue, sid)
        exch_ts_ms = NOW // 1_000_000 if exch_ts_ms is None else exch_ts_ms
        recv_ns = NOW if recv_ns is None else recv_ns
        load_book(cb, bids, asks, in_sync, exch_ts_ms, recv_ns)
        p, u = Decimal(1).scaleb(-self.P), Decimal(1).scaleb(-self.Q)
        rb.bids = [(px * p, q * u) for px, q in bids]
        rb.asks = [(px * p, q * u) for px, q in asks]
        rb.in_sync, rb.exch_ts_ms, rb.recv_ns, rb.version = in_sync, exch_ts_ms, recv_ns, cb.version

    def update(self, venue, sid, now_ns=NOW):
        """Evaluate after an update of (venue, sid) in both engines; assert equal; return Cython result."""
        cb, rb = self.book(venue, sid)
        rb.version = cb.version
        got = self.cy.evaluate(cb, now_ns)
        want = self.ref.on_book_update(rb, now_ns)
        got_lines = None if got is None else [o.json_fields() for o in got]
        assert got_lines == want
        if got is not None:
            for o in got:
                _check_consistent(o)
        return got


def _check_consistent(o: Opportunity):
    """The integer fields, Decimal properties and rendered strings all say the same thing."""
    f = o.json_fields()
    assert Decimal(f["qty"]) == o.qty == Decimal(o.qty_m).scaleb(-o.qty_scale)
    assert Decimal(f["net_profit"]) == o.net_profit
    assert isinstance(o.net_profit_m, int) and o.net_profit_m > 0
    assert o.buy_vwap_m == o.buy_cost_m * 10**4 // o.qty_m
    assert o.sell_vwap_m == o.sell_proceeds_m * 10**4 // o.qty_m
    assert o.net_bps_m == o.net_profit_m // o.buy_cost_m
    assert o.buy_price_m >= o.buy_worst_m and o.sell_price_m <= o.sell_worst_m
    for k in ("qty", "buy_price", "sell_price", "buy_vwap", "sell_vwap", "net_profit", "net_bps"):
        s = f[k]
        assert isinstance(s, str) and "e" not in s.lower() and not (("." in s) and s.endswith("0"))


# ------------------------------------------------------------------------------------------------
# hand-written cases (BTC/USDT at price_scale 2, qty_scale 6)

def _spot_spot(fee_a="0.001", fee_b="0.001", step_a=1, step_b=1, min_notional=0, min_qty=0, **params):
    h = Pair(2, 6, **params)
    h.add_route("btc-ss", "BTC/USDT", [(MEXC, 0, fee_a, 1, step_a, min_qty, min_notional),
                                        (GATE, 0, fee_b, 1, step_b, min_qty, min_notional)])
    return h


def test_format_mantissa():
    assert format_mantissa(0, 8) == "0"
    assert format_mantissa(150, 2) == "1.5"
    assert format_mantissa(-5, 3) == "-0.005"
    assert format_mantissa(12, 0) == "12"
    assert format_mantissa(10**40 + 1, 30) == "10000000000.000000000000000000000000000001"


def test_simple_edge_emits_exact_fields():
    h = _spot_spot(min_profit="0.50", max_notional="100000")
    # mexc asks 65000.00 x 0.1 BTC ; gate bids 65300.00 x 0.05 BTC
    h.load(MEXC, 0, bids=[(6499000, 100000)], asks=[(6500000, 100000)])
    h.load(GATE, 0, bids=[(6530000, 50000)], asks=[(6531000, 50000)])
    got = h.update(GATE, 0)
    assert got is not None and len(got) == 1
    o = got[0]
    f = o.json_fields()
    assert (f["buy_venue"], f["sell_venue"], f["qty"]) == ("mexc_spot", "gateio_spot", "0.05")
    # 0.05 × 65300 × 0.999 − 0.05 × 65000 × 1.001 = 3261.735 − 3253.25 = 8.485
    assert f["net_profit"] == "8.485"
    assert f["buy_price"] == "65000" and f["sell_price"] == "65300"
    assert f["buy_vwap"] == "65000" and f["sell_vwap"] == "65300"
    assert f["net_bps"] == "26.1076"  # 8.485 / 3250 × 1e4 = 26.10769..., floored to 4 places
    assert f["t"] == NOW


def test_fee_kills_the_edge():
    # +0.15 % gross edge, 0.1 % fee per side -> no trade
    h = _spot_spot()
    h.load(MEXC, 0, bids=[(6499000, 10**6)], asks=[(6500000, 10**6)])
    h.load(GATE, 0, bids=[(6509750, 10**6)], asks=[(6510000, 10**6)])
    assert h.update(GATE, 0) is None
    # without fees the same books trade
    h2 = _spot_spot(fee_a="0", fee_b="0")
    h2.load(MEXC, 0, bids=[(6499000, 10**6)], asks=[(6500000, 10**6)])
    h2.load(GATE, 0, bids=[(6509750, 10**6)], asks=[(6510000, 10**6)])
    assert h2.update(GATE, 0) is not None


def test_walk_stops_where_fee_adjusted_edge_ends():
    h = _spot_spot(min_profit="0", max_notional="10000000")
    h.load(MEXC, 0, bids=[(6400000, 10**6)], asks=[(6500000, 10000), (6510000, 20000), (6600000, 10**6)])
    h.load(GATE, 0, bids=[(6540000, 15000), (6530000, 10**6)], asks=[(6600000, 10**6)])
    (o,) = h.update(GATE, 0)
    # level 3 (66000) is not profitable against 65300 -> 0.03 BTC
    assert o.qty == Decimal("0.03") and o.buy_price == Decimal("65100") and o.sell_price == Decimal("65300")


def test_max_notional_cap():
    h = _spot_spot(max_notional="1000", min_profit="0")
    h.load(MEXC, 0, bids=[(6400000, 10**7)], asks=[(6500000, 10**7)])
    h.load(GATE, 0, bids=[(6600000, 10**7)], asks=[(6700000, 10**7)])
    (o,) = h.update(GATE, 0)
    # 1000 / 65000 = 0.015384 BTC (floored to the qty unit)
    assert o.qty == Decimal("0.015384")
    assert o.buy_cost_m <= 1000 * 10**8


def test_balance_caps():
    h = _spot_spot(max_notional="100000", min_profit="0")
    h.load(MEXC, 0, bids=[(6400000, 10**7)], asks=[(6500000, 10**7)])
    h.load(GATE, 0, bids=[(6600000, 10**7)], asks=[(6700000, 10**7)])
    h.set_balance(MEXC, "USDT", "650")      # buy incl. 0.1 % fee: 650 / (65000 × 1.001)
    (o,) = h.update(GATE, 0)
    assert o.qty == Decimal("0.009990")
    h.cy.reset_dedup()
    h.ref._emitted.clear()
    h.set_balance(GATE, "BTC", "0.004")     # base on the sell venue binds now
    (o,) = h.update(GATE, 0)
    assert o.qty == Decimal("0.004")
    h.cy.reset_dedup()
    h.ref._emitted.clear()
    h.set_balance(GATE, "BTC", "0")
    assert h.update(GATE, 0) is None
    h.set_balance(GATE, "BTC", None)        # unknown = no cap
    assert h.update(GATE, 0)[0].qty == Decimal("0.009990")


def _fits(o, free_buy, free_sell, fee_a, fee_b, buy_perp=None, sell_perp=None):
    """The executor's balance check (execution.risk.balance_needs) passes for this opportunity."""
    from cexnode.execution.risk import balance_needs
    (_, need_b), (_, need_s) = balance_needs(
        base="BTC", quote="USDT", qty=o.qty, buy_price=o.buy_price, sell_price=o.sell_price,
        buy_fee=Decimal(fee_a), sell_fee=Decimal(fee_b), buy_is_futures=buy_perp is not None,
        sell_is_futures=sell_perp is not None,
        margin_fraction=Decimal(buy_perp or sell_perp or 1))
    return need_b <= Decimal(free_buy) and need_s <= Decimal(free_sell)


def test_quote_cap_at_the_buy_limit_price_over_several_levels():
    # Three ask levels: the cap is q × (worst ask walked, widened by slippage) × (1 + fee), as the
    # executor checks it, not the VWAP cost: 1300 USDT at 65000/65010/65020, slippage 2 bps.
    h = _spot_spot(max_notional="100000", min_profit="0", slippage_bps="2")
    h.load(MEXC, 0, bids=[(6400000, 10**7)], asks=[(6500000, 5000), (6501000, 5000), (6502000, 10**6)])
    h.load(GATE, 0, bids=[(6600000, 10**7)], asks=[(6700000, 10**7)])
    h.set_balance(MEXC, "USDT", "1300")
    (o,) = h.update(GATE, 0)
    # the worst level is 65020 (limit 65033.01 → 6503301 at tick 0.01): 1300 / (65033.01 × 1.001)
    assert o.buy_price == Decimal("65033.01")
    assert o.qty == Decimal("0.019969")
    assert _fits(o, "1300", "10", "0.001", "0.001")
    # one quantity unit more would not have fitted: the cap is the largest quantity that does
    assert (o.qty + Decimal("0.000001")) * o.buy_price * Decimal("1.001") > 1300
    h.forget()
    # the VWAP cost alone (the former rule) would have allowed more than the check accepts
    assert o.buy_cost_m * Decimal("1.001") < Decimal(1300) * 10**8


def test_quote_cap_stops_before_a_dearer_level_that_no_longer_fits():
    # 0.01 BTC at 65000 fits 660 USDT; 0.01 more at 66000 would lift the limit price of the whole
    # order to 66000: 0.01 × 66000 × 1.001 > 660, so nothing is taken there.
    h = _spot_spot(max_notional="100000", min_profit="0")
    h.load(MEXC, 0, bids=[(6400000, 10**7)], asks=[(6500000, 10000), (6600000, 10**6)])
    h.load(GATE, 0, bids=[(6700000, 10**7)], asks=[(6800000, 10**7)])
    h.set_balance(MEXC, "USDT", "660")
    (o,) = h.update(GATE, 0)
    assert o.qty == Decimal("0.01") and o.buy_price == Decimal("65000")
    assert _fits(o, "660", "10", "0.001", "0.001")


def test_capped_below_min_qty_or_min_notional_is_not_emitted():
    # min_qty 0.001 BTC: a balance for 0.0009 BTC gives no opportunity at all (never a smaller one)
    h = _spot_spot(max_notional="100000", min_profit="0", min_qty=1000)
    h.load(MEXC, 0, bids=[(6400000, 10**7)], asks=[(6500000, 10**7)])
    h.load(GATE, 0, bids=[(6600000, 10**7)], asks=[(6700000, 10**7)])
    h.set_balance(GATE, "BTC", "0.0009")
    assert h.update(GATE, 0) is None
    h.set_balance(GATE, "BTC", "0.001")       # exactly min_qty: emitted at min_qty
    (o,) = h.update(GATE, 0)
    assert o.qty == Decimal("0.001")
    # min_notional 100 USDT: 99 USDT of quote (incl. fee) cannot buy 100 USDT's worth
    h = _spot_spot(max_notional="100000", min_profit="0", min_notional=10000)
    h.load(MEXC, 0, bids=[(6400000, 10**7)], asks=[(6500000, 10**7)])
    h.load(GATE, 0, bids=[(6600000, 10**7)], asks=[(6700000, 10**7)])
    h.set_balance(MEXC, "USDT", "99")
    assert h.update(GATE, 0) is None
    h.set_balance(MEXC, "USDT", "101")
    (o,) = h.update(GATE, 0)
    assert o.qty * o.buy_price >= 100 and _fits(o, "101", "10", "0.001", "0.001")
    # and min_profit: a capped quantity too small to earn it is not emitted
    h = _spot_spot(max_notional="100000", min_profit="5")
    h.load(MEXC, 0, bids=[(6400000, 10**7)], asks=[(6500000, 10**7)])
    h.load(GATE, 0, bids=[(6600000, 10**7)], asks=[(6700000, 10**7)])
    h.set_balance(GATE, "BTC", "0.001")       # earns ~0.87 USDT
    assert h.update(GATE, 0) is None


def test_perp_legs_cap_in_quote_margin_on_both_sides():
    # spot buy on gate, perp sell on futures with margin fraction 0.2: the sell leg takes
    # q × sell limit × (0.2 + 0.0005) of the futures venue's USDT; its BTC "balance" (a position,
    # possibly negative) is not read.
    h = Pair(2, 6, min_profit="0", max_notional="100000")
    h.add_route("btc-sp", "BTC/USDT", [(GATE, 0, "0.001", 1, 1, 0, 0), (GFUT, 1, "0.0005", 1, 100, 0, 0, "0.2")])
    h.load(GATE, 0, bids=[(6490000, 10**7)], asks=[(6500000, 10**7)])
    h.load(GFUT, 1, bids=[(6600000, 10**6), (6590000, 10**7)], asks=[(6610000, 10**7)])
    h.set_balance(GFUT, "BTC", "-3")          # a short position: ignored by a perp leg
    h.set_balance(GFUT, "USDT", "200")        # 200 / (66000 × 0.2005) = 0.01511 → step 0.0001
    (o,) = h.update(GFUT, 1)
    assert (o.buy_venue, o.sell_venue) == ("gateio_spot", "gateio_futures")
    assert o.qty == Decimal("0.0151")
    assert _fits(o, "1000000", "200", "0.001", "0.0005", sell_perp="0.2")
    # a reloaded margin fraction changes the cap (set_leg_params; spot legs have none)
    h.set_leg_params(GFUT, margin="1")
    h.forget()
    (o,) = h.update(GFUT, 1)
    assert o.qty == Decimal("0.003")           # 200 / (66000 × 1.0005) = 0.00302 → 0.0030
    assert _fits(o, "1000000", "200", "0.001", "0.0005", sell_perp="1")
    # buying the perp: the futures venue's USDT caps the buy leg in margin terms too
    h.load(GFUT, 1, bids=[(6380000, 10**7)], asks=[(6400000, 10**7)])
    h.set_balance(GATE, "BTC", "10")
    h.set_leg_params(GFUT, margin="0.5")
    h.forget()
    (o,) = h.update(GFUT, 1)
    assert (o.buy_venue, o.sell_venue) == ("gateio_futures", "gateio_spot")
    assert o.qty == Decimal("0.0062")          # 200 / (64000 × 0.5005) = 0.006243 → 0.0062
    assert _fits(o, "200", "10", "0.0005", "0.001", buy_perp="0.5")


def test_set_leg_params_validates_and_changes_the_fee():
    h = _spot_spot(max_notional="100000", min_profit="0")
    h.load(MEXC, 0, bids=[(6400000, 10**7)], asks=[(6500000, 10**7)])
    h.load(GATE, 0, bids=[(6600000, 10**7)], asks=[(6700000, 10**7)])
    (o,) = h.update(GATE, 0)
    before = o.net_profit
    h.set_leg_params(GATE, taker_fee="0.002")
    h.forget()
    (o,) = h.update(GATE, 0)
    assert o.net_profit < before
    with pytest.raises(ValueError):
        h.cy.set_leg_params("gateio_spot", taker_fee="1")
    with pytest.raises(ValueError):
        h.cy.set_leg_params("gateio_futures", margin_fraction="0")
    with pytest.raises(ValueError):
        h.cy.set_leg_params("nowhere", taker_fee="0.001")
    assert ("gateio_spot", "0.002", None) in h.cy.leg_params()


def test_step_rounding_spot_perp_with_multiplier():
    # gate spot step 0.000001 BTC; futures: 1 contract × 0.0001 BTC multiplier = 100 at Q=6
    h = Pair(2, 6, min_profit="0", max_notional="100000")
    h.add_route("btc-sp", "BTC/USDT", [(GATE, 0, "0.001", 1, 1, 0, 0), (GFUT, 1, "0.0005", 10, 100, 100, 0)])
    h.load(GATE, 0, bids=[(6490000, 10**6)], asks=[(6500000, 12345)])
    h.load(GFUT, 1, bids=[(6560000, 10**6)], asks=[(6570000, 10**6)])
    (o,) = h.update(GFUT, 1)
    assert (o.buy_venue, o.sell_venue) == ("gateio_spot", "gateio_futures")
    assert o.qty == Decimal("0.0123")         # 0.012345 rounded down to 0.0001
    assert o.qty_m % 100 == 0


def test_lcm_step():
    h = _spot_spot(step_a=4, step_b=6, min_profit="0", max_notional="100000")
    h.load(MEXC, 0, bids=[(6400000, 10**6)], asks=[(6500000, 23)])
    h.load(GATE, 0, bids=[(6600000, 10**6)], asks=[(6700000, 10**6)])
    (o,) = h.update(GATE, 0)
    assert o.qty_m == 12                      # lcm(4, 6) = 12; 23 -> 12


def test_min_notional_and_min_qty():
    base = dict(min_profit="0", max_notional="100000")
    books = dict(bids=[(6400000, 10**6)], asks=[(6500000, 1000)])  # 0.001 BTC = 65 USDT
    h = _spot_spot(min_notional=6600, **base)      # 66 USDT minimum
    h.load(MEXC, 0, **books)
    h.load(GATE, 0, bids=[(6600000, 10**6)], asks=[(6700000, 10**6)])
    assert h.update(GATE, 0) is None
    h = _spot_spot(min_notional=6500, **base)      # 65 USDT: the buy leg (0.001 × 65000) passes
    h.load(MEXC, 0, **books)
    h.load(GATE, 0, bids=[(6600000, 10**6)], asks=[(6700000, 10**6)])
    assert h.update(GATE, 0) is not None
    h = _spot_spot(min_qty=1001, **base)
    h.load(MEXC, 0, **books)
    h.load(GATE, 0, bids=[(6600000, 10**6)], asks=[(6700000, 10**6)])
    assert h.update(GATE, 0) is None


def _edge_books(h, **gate_kw):
    h.load(MEXC, 0, bids=[(6400000, 10**6)], asks=[(6500000, 10**5)])
    h.load(GATE, 0, bids=[(6600000, 10**6)], asks=[(6700000, 10**6)], **gate_kw)


def test_stale_book():
    h = _spot_spot(max_book_age_ms=5000)
    _edge_books(h, recv_ns=NOW - 5_000_000_001)             # receive time too old
    assert h.update(GATE, 0) is None
    h = _spot_spot(max_book_age_ms=5000)
    _edge_books(h, recv_ns=NOW - 5_000_000_000)             # exactly at the bound: fresh
    assert h.update(GATE, 0) is not None
    h = _spot_spot(max_book_age_ms=5000)
    _edge_books(h, exch_ts_ms=NOW // 10**6 - 5001)          # exchange time too old
    assert h.update(GATE, 0) is None
    h = _spot_spot(max_book_age_ms=5000)
    _edge_books(h, exch_ts_ms=0)                            # venue sent no exchange time
    assert h.update(GATE, 0) is not None
    h = _spot_spot(max_book_age_ms=5000)
    _edge_books(h)
    assert h.update(GATE, 0, now_ns=NOW + 6 * 10**9) is None  # both age with time


def test_out_of_sync_and_crossed_books():
    h = _spot_spot()
    _edge_books(h, in_sync=False)
    assert h.update(GATE, 0) is None
    h = _spot_spot()
    h.load(MEXC, 0, bids=[(6400000, 10**6)], asks=[(6500000, 10**5)])
    h.load(GATE, 0, bids=[(6600000, 10**6)], asks=[(6600000, 10**6)])  # bid >= ask: crossed
    assert h.update(GATE, 0) is None


def test_dedup_until_a_book_changes():
    h = _spot_spot()
    _edge_books(h)
    assert len(h.update(GATE, 0)) == 1
    assert h.update(GATE, 0) is None          # unchanged books: not again
    assert h.update(MEXC, 0) is None
    evals = h.cy.evaluations
    h.update(GATE, 0)
    assert h.cy.evaluations == evals + 1      # mexc->gate skipped; only gate->mexc (no edge) evaluated
    _edge_books(h)                            # same content, new versions
    got = h.update(GATE, 0)
    assert got is not None and got[0].buy_book_version == h.book(MEXC, 0)[0].version


def test_slippage_and_tick_rounding():
    h = Pair(2, 6, min_profit="0", slippage_bps="10", max_notional="100000")
    h.add_route("r", "BTC/USDT", [(MEXC, 0, "0", 40, 1, 0, 0), (GATE, 0, "0", 70, 1, 0, 0)])
    h.load(MEXC, 0, bids=[(6400000, 10**6)], asks=[(6500000, 1000)])
    h.load(GATE, 0, bids=[(6600001, 10**6)], asks=[(6700000, 10**6)])
    (o,) = h.update(GATE, 0)
    # buy: 65000 × 1.001 = 65065.00 -> up to tick 0.40: 65065.20; sell: 66000.01 × 0.999 = 65934.00999
    # -> down to tick 0.70: 65933.70
    assert o.buy_price == Decimal("65065.2") and o.sell_price == Decimal("65933.7")


def test_spot_perp_route_both_directions_and_index():
    h = Pair(2, 6, min_profit="0", max_notional="100000")
    h.add_route("ss", "BTC/USDT", [(MEXC, 0, "0.001", 1, 1, 0, 0), (GATE, 0, "0.001", 1, 1, 0, 0)])
    h.add_route("sp", "BTC/USDT", [(GATE, 0, "0.001", 1, 1, 0, 0), (GFUT, 1, "0.0005", 1, 100, 0, 0)])
    h.load(MEXC, 0, bids=[(6400000, 10**6)], asks=[(6500000, 10**5)])
    h.load(GATE, 0, bids=[(6600000, 10**6)], asks=[(6610000, 10**6)])
    h.load(GFUT, 1, bids=[(6700000, 10**6)], asks=[(6710000, 10**6)])
    got = h.update(GATE, 0)                  # touches both routes
    assert [(o.route, o.buy_venue, o.sell_venue) for o in got] == [
        ("ss", "mexc_spot", "gateio_spot"), ("sp", "gateio_spot", "gateio_futures")]
    assert h.update(MEXC, 0) is None         # only route ss, already emitted
    h.load(GFUT, 1, bids=[(6500000, 10**6)], asks=[(6510000, 10**6)])
    (o,) = h.update(GFUT, 1)                 # perp now cheap: buy perp, sell spot
    assert (o.route, o.buy_venue, o.sell_venue) == ("sp", "gateio_futures", "gateio_spot")
    assert o.qty_m % 100 == 0


def test_remove_route_stops_only_that_route():
    h = Pair(2, 6, min_profit="0", max_notional="100000")
    h.add_route("ss", "BTC/USDT", [(MEXC, 0, "0.001", 1, 1, 0, 0), (GATE, 0, "0.001", 1, 1, 0, 0)])
    h.add_route("sp", "BTC/USDT", [(GATE, 0, "0.001", 1, 1, 0, 0), (GFUT, 1, "0.0005", 1, 100, 0, 0)])
    h.add_route("mp", "BTC/USDT", [(MEXC, 0, "0.001", 1, 1, 0, 0), (GFUT, 1, "0.0005", 1, 100, 0, 0)])
    assert h.cy.n_routes == 3 and h.cy.route_names() == ["ss", "sp", "mp"]
    assert h.cy.routes_on_book(GATE, 0) == ["ss", "sp"]
    with pytest.raises(ValueError, match="already added"):
        h.cy.add_route("ss", "BTC/USDT", 2, 6, [dict(venue="mexc_spot", book=h.book(MEXC, 0)[0], taker_fee="0",
                                                     tick=1, step=1)] * 2)
    h.load(MEXC, 0, bids=[(6400000, 10**6)], asks=[(6500000, 10**5)])
    h.load(GATE, 0, bids=[(6600000, 10**6)], asks=[(6610000, 10**6)])
    h.load(GFUT, 1, bids=[(6700000, 10**6)], asks=[(6710000, 10**6)])
    assert h.remove_route("ss") is True
    assert h.remove_route("ss") is False and h.remove_route("nope") is False
    assert h.cy.n_routes == 2 and h.cy.route_names() == ["sp", "mp"]
    assert [r[0] for r in h.cy.routes()] == ["sp", "mp"]
    assert h.cy.routes_on_book(GATE, 0) == ["sp"] and h.cy.routes_on_book(MEXC, 0) == ["mp"]
    got = h.update(GATE, 0)                  # the book ss shared with sp: only sp answers
    assert [(o.route, o.buy_venue, o.sell_venue) for o in got] == [("sp", "gateio_spot", "gateio_futures")]
    got = h.update(MEXC, 0)                  # mexc/gate edge exists, but ss is gone
    assert [(o.route, o.buy_venue, o.sell_venue) for o in got] == [("mp", "mexc_spot", "gateio_futures")]
    # the same name again: a new route at the end, no dedup memory
    h.add_route("ss", "BTC/USDT", [(MEXC, 0, "0.001", 1, 1, 0, 0), (GATE, 0, "0.001", 1, 1, 0, 0)])
    assert h.cy.route_names() == ["sp", "mp", "ss"]
    got = h.update(GATE, 0)
    assert [(o.route, o.buy_venue, o.sell_venue) for o in got] == [("ss", "mexc_spot", "gateio_spot")]
    for name in ("sp", "mp", "ss"):
        assert h.remove_route(name)
    assert h.cy.n_routes == 0 and h.cy.routes_on_book(GATE, 0) == []
    h.load(GATE, 0, bids=[(6600000, 10**6)], asks=[(6610000, 10**6)])
    assert h.update(GATE, 0) is None


def test_remove_route_releases_its_books():
    h = Pair(2, 6)
    h.add_route("ss", "BTC/USDT", [(MEXC, 0, "0.001", 1, 1, 0, 0), (GATE, 0, "0.001", 1, 1, 0, 0)])
    probe = Book(7, GFUT)
    h.cy.add_route("x", "BTC/USDT", 2, 6, [dict(venue="gateio_spot", book=h.book(GATE, 0)[0], taker_fee="0", tick=1,
                                                step=1),
                                           dict(venue="gateio_futures", book=probe, taker_fee="0", tick=1, step=1)])
    ref_ = weakref.ref(probe)
    del probe
    assert ref_() is not None
    assert h.cy.remove_route("x")
    assert ref_() is None


@settings(max_examples=20_000 if LONG else 400, deadline=None, derandomize=not LONG)
@given(st.integers(0, 2**64 - 1), st.integers(10, 40))
def test_route_add_remove_differential(seed, n_ops):
    """Random add/remove/update sequences: the engine agrees with the oracle at every update, and
    (dedup forgotten) with an engine built from scratch with the surviving routes."""
    rng = random.Random(seed)
    P, Q = rng.randint(0, 6), rng.randint(0, 8)
    mid = rng.randint(10, 10**rng.randint(2, 8))
    qunit = 10**Q
    qmax = max(1, qunit * rng.choice([1, 10, 1000]) // rng.choice([1, 10, 100]))
    h = Pair(P, Q, min_profit=rng.choice(["0", "0.5"]), max_notional=rng.choice(["1000", "1000000000000"]),
             slippage_bps=rng.choice(["0", "3"]))
    books = [(MEXC, 0), (MEXC, 1), (GATE, 0), (GATE, 1), (GFUT, 1), (GFUT, 2)]
    names = ["r%d" % i for i in range(6)]

    def leg(venue, sid):
        margin = "0.1" if venue == GFUT and rng.random() < 0.5 else None
        return (venue, sid, rng.choice(["0", "0.001", "0.0005"]), rng.choice([1, 1, 5]),
                rng.choice([1, 1, 10, 100]), 0, 0, margin)

    def add(name):
        venues = rng.sample([MEXC, GATE, GFUT], rng.choice([2, 2, 3]))
        legs = [leg(v, rng.choice([s for vv, s in books if vv == v])) for v in venues]
        h.add_route(name, "BTC/USDT", legs)

    def compare_with_a_new_engine(now):
        fresh = h.built_anew()
        assert fresh.route_names() == h.cy.route_names() and fresh.n_routes == h.cy.n_routes
        h.forget()
        for v, sid in books:
            got = h.update(v, sid, now)
            want = fresh.evaluate(h.book(v, sid)[0], now)
            assert (None if got is None else [o.json_fields() for o in got]) == (
                None if want is None else [o.json_fields() for o in want])

    now = NOW
    for v, sid in books:
        _reload(h, rng, v, sid, mid, qmax, now)
    for name in rng.sample(names, 3):
        add(name)
    for step in range(n_ops):
        r = rng.random()
        if r < 0.2:
            free = [n for n in names if n not in h.cy_routes]
            if free:
                add(rng.choice(free))
        elif r < 0.4:
            name = rng.choice(names)
            present = name in h.cy_routes
            assert h.remove_route(name) is present
            assert name not in h.cy.route_names()
        elif r < 0.45:
            h.set_balance(rng.choice([MEXC, GATE, GFUT]), rng.choice(["BTC", "USDT"]),
                          rng.choice([None, str(_dec(rng, 10**6, 6))]))
        else:
            v, sid = rng.choice(books)
            if rng.random() < 0.8:
                _reload(h, rng, v, sid, mid, qmax, now)
            h.update(v, sid, now)
        assert h.cy.n_routes == len(h.cy_routes) == len(h.ref.routes)
        if step % 10 == 9:
            compare_with_a_new_engine(now)
    compare_with_a_new_engine(now)


def test_min_bps_and_min_profit_thresholds():
    h = _spot_spot(min_profit="8.485", max_notional="100000")
    h.load(MEXC, 0, bids=[(6499000, 100000)], asks=[(6500000, 100000)])
    h.load(GATE, 0, bids=[(6530000, 50000)], asks=[(6531000, 50000)])
    assert h.update(GATE, 0) is not None      # net == min_profit exactly: emits
    h = _spot_spot(min_profit="8.48500000000000000000000001", max_notional="100000")
    h.load(MEXC, 0, bids=[(6499000, 100000)], asks=[(6500000, 100000)])
    h.load(GATE, 0, bids=[(6530000, 50000)], asks=[(6531000, 50000)])
    assert h.update(GATE, 0) is None
    # net_bps = 8.485 / 3250 × 1e4 = 26.107692307...
    for mb, ok in (("26.10769230", True), ("26.10769231", False)):
        h = _spot_spot(min_bps=mb, max_notional="100000")
        h.load(MEXC, 0, bids=[(6499000, 100000)], asks=[(6500000, 100000)])
        h.load(GATE, 0, bids=[(6530000, 50000)], asks=[(6531000, 50000)])
        assert (h.update(GATE, 0) is not None) == ok


def test_bad_params_rejected():
    with pytest.raises(TypeError):
        ArbEngine(min_profit=0.5)
    with pytest.raises(ValueError):
        ArbEngine(min_bps="0.000000001")
    with pytest.raises(ValueError):
        ArbEngine(slippage_bps="0.00001")
    with pytest.raises(ValueError):
        ArbEngine(max_notional="0")
    e = ArbEngine()
    b = Book(0, MEXC)
    with pytest.raises(ValueError):
        e.add_route("r", "BTC/USDT", 2, 6, [dict(venue="mexc_spot", book=b, taker_fee="0.001", tick=1, step=1)])
    with pytest.raises(ValueError):
        e.add_route("r", "BTC/USDT", 2, 6, [dict(venue="gateio_spot", book=b, taker_fee="0.001", tick=1, step=1),
                                            dict(venue="mexc_spot", book=b, taker_fee="0.001", tick=1, step=1)])


def test_instrument_scale_mismatch_rejected():
    e = ArbEngine()
    legs = [dict(venue="mexc_spot", book=Book(0, MEXC), taker_fee="0.001", tick=1, step=1, price_scale=2, qty_scale=6),
            dict(venue="gateio_spot", book=Book(0, GATE), taker_fee="0.001", tick=1, step=1, price_scale=2, qty_scale=5)]
    with pytest.raises(ValueError, match="qty_scale"):
        e.add_route("r", "BTC/USDT", 2, 6, legs)
    legs[1]["qty_scale"] = 6
    assert e.add_route("r", "BTC/USDT", 2, 6, legs) == 0
    assert e.routes() == [("r", "BTC/USDT", ["mexc_spot", "gateio_spot"])]


def test_no_python_allocation_without_opportunity():
    import tracemalloc

    h = _spot_spot(min_profit="1000000")          # edge walked, but never enough profit
    _edge_books(h)
    cb = h.book(GATE, 0)[0]
    assert h.cy.evaluate(cb, NOW) is None
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        h.cy.bench_ns(cb, NOW, 20000, False)
        peak = tracemalloc.get_traced_memory()[1] - base
        assert peak < 64, peak                    # nothing allocated per evaluation
        h.cy.set_params(min_profit="0.5")
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        h.cy.bench_ns(cb, NOW, 100, True)
        assert tracemalloc.get_traced_memory()[1] - base > 0   # emitting does allocate (sanity)
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------------------------
# differential: random ladders, fees, caps, steps, balances, scales — exact equality with the oracle

def _dec(rng, max_int, max_places):
    places = rng.randint(0, max_places)
    return Decimal(rng.randint(0, max_int * 10**places)).scaleb(-places)


def _ladder(rng, best, side, n, qmax, gap):
    out, px = [], best
    for _ in range(n):
        if px <= 0:
            break
        out.append((px, rng.randint(1, qmax)))
        px += side * rng.randint(1, gap)
    return out


STATS = {"pairs": 0, "emitted": 0, "books": 0, "streams": 0}


def _scenario(rng):
    P, Q = rng.randint(0, 8), rng.randint(0, 10)
    mid = rng.randint(10, 10**rng.randint(2, 9))
    qunit = 10**Q
    qmax = max(1, qunit * rng.choice([1, 10, 1000]) // rng.choice([1, 10, 100, 1000]))
    params = dict(
        min_profit=str(rng.choice([Decimal(0), Decimal(0), Decimal("0.5"), _dec(rng, 3, 12)])),
        min_bps=str(rng.choice([Decimal(0), Decimal(0), Decimal(-5), _dec(rng, 30, 8)])),
        max_notional=str(rng.choice([Decimal(1000), Decimal(10) ** 15, _dec(rng, 10**6, 10) + Decimal("0.001")])),
        max_book_age_ms=rng.choice([5000, 5000, 100]),
        slippage_bps=str(rng.choice([Decimal(0), Decimal(0), _dec(rng, 50, 4)])),
    )
    h = Pair(P, Q, **params)

    def fee():
        return str(rng.choice([Decimal(0), Decimal("0.001"), Decimal("0.0005"),
                               Decimal(rng.randint(0, 500000)).scaleb(-8)]))

    def leg(venue, sid):
        step = rng.choice([1, 1, 2, 3, 7, 10, 100, 1000]) if rng.random() < 0.8 else rng.randint(1, max(1, qmax))
        margin = None
        if venue == GFUT and rng.random() < 0.7:     # a perp leg: balance caps in quote margin
            margin = str(rng.choice([Decimal(1), Decimal("0.1"), Decimal(rng.randint(1, 10**8)).scaleb(-8)]))
        return (venue, sid, fee(), rng.choice([1, 1, 2, 5, 10, 25, 1000]), step,
                rng.choice([0, 0, 0, rng.randint(0, qmax)]),
                rng.choice([0, 0, 0, rng.randint(0, mid * qmax // qunit // 10**P + 1)]), margin)

    kind = rng.randint(0, 2)
    if kind == 0:
        h.add_route("ss", "BTC/USDT", [leg(MEXC, 0), leg(GATE, 0)])
        h.add_route("sp", "BTC/USDT", [leg(GATE, 0), leg(GFUT, 1)])
    elif kind == 1:
        h.add_route("tri", "BTC/USDT", [leg(MEXC, 0), leg(GATE, 0), leg(GFUT, 1)])
    else:
        h.add_route("sp", "BTC/USDT", [leg(GFUT, 1), leg(MEXC, 0)])
    for venue in (MEXC, GATE, GFUT):
        for asset in ("BTC", "USDT"):
            if rng.random() < 0.3:
                h.set_balance(venue, asset, str(_dec(rng, rng.choice([1, 100, 10**6]), 10)))
    return h, mid, qmax


def _reload(h, rng, venue, sid, mid, qmax, now):
    # venue offsets of up to ±2 % (some pairs beat the fees, some do not), mostly tight spreads,
    # sometimes crossed; mostly fresh and in sync, sometimes stale / out of sync
    off = rng.choice([-1, 1]) * rng.randint(0, max(1, mid // rng.choice([30, 100, 300, 1000, 10**6])))
    spread = rng.randint(1 if rng.random() < 0.97 else -mid // 100, max(1, mid // rng.choice([1000, 10**5])))
    bid = max(1, mid + off)
    ask = bid + spread
    gap = max(1, mid // rng.choice([1000, 10**4, 10**6]))
    bids = _ladder(rng, bid, -1, rng.randint(0, 25), qmax, gap)
    asks = _ladder(rng, max(1, ask), 1, rng.randint(0, 25), qmax, gap)
    in_sync = rng.random() < 0.97
    age_ns = rng.choice([0] * 6 + [rng.randint(0, 200_000_000), rng.randint(0, 6 * 10**9)])
    exch = rng.choice([now // 10**6] * 5 + [0, (now - rng.randint(0, 6 * 10**9)) // 10**6])
    h.load(venue, sid, bids, asks, in_sync, exch, now - age_ns)


@settings(max_examples=100_000 if LONG else 2000, deadline=None, derandomize=not LONG)
@given(st.integers(0, 2**64 - 1), st.integers(8, 24))
def test_differential_against_reference(seed, n_updates):
    # Hypothesis picks the seed (reproducible, reported on failure); the scenario is drawn from a
    # plain Random so that the distribution stays uniform (st.randoms() biases towards zeros, which
    # here means "no price offset" and almost no opportunities).
    rng = random.Random(seed)
    h, mid, qmax = _scenario(rng)
    keys = [(MEXC, 0), (GATE, 0), (GFUT, 1)]
    now = NOW
    for venue, sid in keys:
        _reload(h, rng, venue, sid, mid, qmax, now)
    STATS["books"] += 3
    STATS["streams"] += 1
    for _ in range(n_updates):
        venue, sid = rng.choice(keys)
        r = rng.random()
        if r < 0.8:
            _reload(h, rng, venue, sid, mid, qmax, now)
            STATS["books"] += 1
        elif r < 0.9 and rng.random() < 0.5:
            for v2, a2 in ((rng.choice(keys)[0], rng.choice(["BTC", "USDT"])),):
                h.set_balance(v2, a2, rng.choice([None, str(_dec(rng, 1000, 6)), str(_dec(rng, 10**6, 8))]))
        elif r < 0.9:
            h.set_leg_params(rng.choice(keys)[0], taker_fee=rng.choice([None, "0.001", "0.00025"]),
                             margin=rng.choice([None, "1", "0.05"]))
        # else: evaluate again without a change (dedup / time passing)
        now += rng.choice([0, 1, 10**6, 10**9])
        before = h.cy.evaluations
        got = h.update(venue, sid, now)
        STATS["pairs"] += h.cy.evaluations - before
        STATS["emitted"] += 0 if got is None else len(got)


def test_differential_volume():
    """Runs after the property test (file order): enough pairs evaluated, enough of them emitting."""
    if STATS["pairs"] == 0:
        pytest.skip("differential test not run in this session")
    print("arb differential:", STATS)
    assert STATS["pairs"] >= 10_000, STATS
    assert STATS["books"] >= 10_000, STATS        # issue 3: >= 10,000 generated books vs the oracle
    assert STATS["emitted"] >= STATS["pairs"] // 25, STATS

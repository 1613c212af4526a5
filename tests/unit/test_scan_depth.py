"""The scanner's pricing of a route direction: net bps at a quote size and the break-even depth,
against books computed by hand (prices at 2 decimals, quantities at 3: the mantissas below).

Book X: asks 100.00 x 2.000, 101.00 x 3.000; bids 99.00 x 10.000.
Book Y: bids 103.00 x 1.500, 102.00 x 5.000; asks 104.00 x 4.000.
Fees: X 0.001, Y 0.002.

Buy 300 on X, sell on Y: 2 at 100 (200) + 100/101 at 101 (100): q = 302/101; sold 1.5 at 103
(154.5) + (302/101 - 1.5) = 301/202 at 102 (15351/101); net = S x 0.998 - 300 x 1.001;
net / 300 x 1e4 = 187763/1010 = 185.9039... bps -> 185.90.
Buy 300 on Y, sell on X: q = 300/104 = 75/26; S = 75/26 x 99 = 7425/26; net = S x 0.999 -
300 x 1.002; -510.2884... bps -> -510.29 (floored).
"""
from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cexnode._core.book import Book
from cexnode.routes import LegView, RouteView
from cexnode.scan.depth import depth_at_breakeven, net_bps_at_size
from cexnode.scan.stats import ScanStats, sample_route
from reference import scan_depth_ref as ref

P, Q = 2, 3
X_ASKS = [(10000, 2000), (10100, 3000)]
X_BIDS = [(9900, 10000)]
Y_BIDS = [(10300, 1500), (10200, 5000)]
Y_ASKS = [(10400, 4000)]
FX, FY = Decimal("0.001"), Decimal("0.002")


def test_net_bps_at_size_walks_both_books_after_both_fees():
    assert net_bps_at_size(X_ASKS, Y_BIDS, P, Q, FX, FY, Decimal(300)) == Decimal("185.90")


def test_net_bps_at_size_the_other_direction_loses_and_floors():
    assert net_bps_at_size(Y_ASKS, X_BIDS, P, Q, FY, FX, Decimal(300)) == Decimal("-510.29")


def test_net_bps_at_size_within_the_top_level_is_its_price_pair():
    # 100 quote buys 1 at 100; sold at 103: (103 x 0.998 - 100 x 1.001) / 100 x 1e4 = 269.4 bps
    assert net_bps_at_size(X_ASKS, Y_BIDS, P, Q, FX, FY, Decimal(100)) == Decimal("269.40")


def test_net_bps_at_size_none_when_a_book_is_too_thin():
    # the asks hold 200 + 303 = 503 quote: 504 cannot be bought
    assert net_bps_at_size(X_ASKS, Y_BIDS, P, Q, FX, FY, Decimal(503)) is not None
    assert net_bps_at_size(X_ASKS, Y_BIDS, P, Q, FX, FY, Decimal(504)) is None
    # 300 quote buys 2.88 on Y; X's bids hold 10 but only 1 when cut down
    assert net_bps_at_size(Y_ASKS, [(9900, 1000)], P, Q, FY, FX, Decimal(300)) is None
    assert net_bps_at_size([], Y_BIDS, P, Q, FX, FY, Decimal(1)) is None
    with pytest.raises(ValueError):
        net_bps_at_size(X_ASKS, Y_BIDS, P, Q, FX, FY, Decimal(0))


def test_depth_at_breakeven_takes_every_level_pair_that_still_pays():
    # 100 x 1.001 = 100.1 < 103 x 0.998: 1.5 (150); 100.1 < 102 x 0.998 = 101.796: 0.5 (50);
    # 101 x 1.001 = 101.101 < 101.796: 3 (303); the next ask 102 x 1.001 = 102.102 > 101.796: stop
    asks = X_ASKS + [(10200, 1000)]
    assert depth_at_breakeven(asks, Y_BIDS, P, Q, FX, FY) == Decimal("503.00")
    # the losing direction has none
    assert depth_at_breakeven(Y_ASKS, X_BIDS, P, Q, FY, FX) == Decimal("0.00")


def test_depth_at_breakeven_counts_a_level_pair_at_exactly_zero():
    zero = Decimal(0)
    assert depth_at_breakeven([(10000, 1000)], [(10000, 2000)], P, Q, zero, zero) == Decimal("100.00")
    assert depth_at_breakeven([(10000, 1000)], [(9999, 2000)], P, Q, zero, zero) == Decimal("0.00")


def _book(venue: int, bids, asks, recv_ns: int) -> Book:
    b = Book(symbol_id=1, venue=venue)
    b.py_apply(bids=bids, asks=asks, full=True, first_id=1, last_id=1, recv_ns=recv_ns)
    b.mark_in_sync(True)
    return b


def test_sample_route_picks_the_better_direction_and_reads_the_ages():
    now = 10_000_000_000
    x = _book(0, X_BIDS, X_ASKS, now - 25_000_000)
    y = _book(1, Y_BIDS, Y_ASKS, now - 4_000_000)
    view = RouteView("r", "AAA/USDT", (LegView("vx", "AAA/USDT", x, FX), LegView("vy", "AAA/USDT", y, FY)), P, Q)
    s = sample_route(view, Decimal(300), now)
    assert (s.buy_venue, s.sell_venue, s.net_bps, s.depth) == ("vx", "vy", Decimal("185.90"), Decimal("503.00"))
    assert s.in_sync and s.age_of("vx") == 25 and s.age_of("vy") == 4
    # both directions too thin for the size: no net bps, the deeper direction is the one shown
    s = sample_route(view, Decimal(600), now)
    assert s.net_bps is None and (s.buy_venue, s.sell_venue, s.depth) == ("vx", "vy", Decimal("503.00"))
    # a book out of sync prices nothing
    y.mark_in_sync(False)
    s = sample_route(view, Decimal(300), now)
    assert s.net_bps is None and not s.in_sync


def test_scan_stats_follow_routes_that_come_and_go():
    now_ns = 10_000_000_000
    x = _book(0, X_BIDS, X_ASKS, now_ns)
    y = _book(1, Y_BIDS, Y_ASKS, now_ns)
    view = RouteView("r", "AAA/USDT", (LegView("vx", "AAA/USDT", x, FX), LegView("vy", "AAA/USDT", y, FY)), P, Q)
    stats = ScanStats(Decimal(300), started=0.0)
    table = {"r": view}
    assert [s.route for s in stats.refresh(table, now_ns, 30.0)] == ["r"]
    table["r2"] = dataclasses.replace(view, name="r2")
    stats.refresh(table, now_ns, 60.0)
    del table["r"]
    assert [s.route for s in stats.refresh(table, now_ns, 90.0)] == ["r2"]
    r, r2 = stats.routes["r"], stats.routes["r2"]
    assert (r.samples, r.until, r2.samples, r2.since) == (2, 90.0, 2, 60.0)
    assert r.best_bps == r.median_bps == Decimal("185.90") and r.best_direction == "vx -> vy"
    # in the table from the start (it was there at the first refresh) until 90 s: 1.5 minutes
    assert r.minutes(120.0) == pytest.approx(1.5) and r2.minutes(120.0) == pytest.approx(1.0)
    assert stats.per_minute("r", 120.0) == 0.0 and stats.per_minute("gone", 120.0) is None
    # back at 150 s after 60 s away: 1.5 minutes before, and the time since its return
    table["r"] = view
    stats.refresh(table, now_ns, 150.0)
    assert r.until is None and r.samples == 3 and r.minutes(180.0) == pytest.approx(2.0)


def test_fees_with_more_than_8_decimals_and_sizes_below_the_books_resolution():
    with pytest.raises(ValueError):
        net_bps_at_size(X_ASKS, Y_BIDS, P, Q, Decimal("0.000000001"), FY, Decimal(1))
    with pytest.raises(ValueError):
        depth_at_breakeven(X_ASKS, Y_BIDS, P, Q, FX, Decimal("0.000000001"))
    # P+Q = 5 decimals of quote: 0.000001 is below it, 0.00001 is one unit (at the best ask)
    assert net_bps_at_size(X_ASKS, Y_BIDS, P, Q, FX, FY, Decimal("0.000001")) is None
    assert net_bps_at_size(X_ASKS, Y_BIDS, P, Q, FX, FY, Decimal("0.00001")) == Decimal("269.40")


_ladder = st.lists(st.tuples(st.integers(1, 120), st.integers(1, 5000)), min_size=0, max_size=12)


@settings(max_examples=300, deadline=None)
@given(asks=_ladder, bids=_ladder, fb=st.integers(0, 300_000), fs=st.integers(0, 300_000),
       size=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(5000), places=3))
def test_pricing_equals_the_reference(asks, bids, fb, fs, size):
    # ladders: asks ascending from 100.00, bids descending from 103.00 (crossing or not)
    a = [(10000 + sum(d for d, _ in asks[:k + 1]), qty) for k, (_, qty) in enumerate(asks)]
    b = [(10300 - sum(d for d, _ in bids[:k + 1]), qty) for k, (_, qty) in enumerate(bids)]
    b = [(px, qty) for px, qty in b if px > 0]
    fee_b, fee_s = Decimal(fb).scaleb(-8), Decimal(fs).scaleb(-8)
    assert net_bps_at_size(a, b, P, Q, fee_b, fee_s, size) == ref.net_bps_at_size(a, b, P, Q, fee_b, fee_s, size)
    assert depth_at_breakeven(a, b, P, Q, fee_b, fee_s) == ref.depth_at_breakeven(a, b, P, Q, fee_b, fee_s)

"""cexnode.universe: route discovery, filters and ranking, frozen transfers, and the diff of two reads.

The venue names here are placeholders ("s1", "p1"): the universe is venue-neutral. The property
tests compare :func:`select` with the brute-force reference in tests/reference/universe_ref.py.
"""
from __future__ import annotations

import dataclasses
import random
from decimal import Decimal as D

import pytest
from hypothesis import given, strategies as st

from cexnode.universe import AssetTransfer, Listing, Ticker24h, Universe, UniverseRules, diff, removal_reason, select
from reference.universe_ref import select_ref

SPOT_VENUES = ("s1", "s2", "s3")
PERP_VENUES = ("p1", "p2")


def spot(venue, base, quote="USDT", tradable=True, asset_class="crypto"):
    return Listing(venue=venue, base=base, quote=quote, settle=None, market="spot",
                   venue_symbol=base + quote, tradable=tradable, asset_class=asset_class)


def perp(venue, base, quote="USDT", settle=None, tradable=True, asset_class="crypto"):
    return Listing(venue=venue, base=base, quote=quote, settle=settle or quote, market="perpetual",
                   venue_symbol=base + "_" + quote, tradable=tradable, asset_class=asset_class)


def vol(listing, volume, leveraged=False):
    return Ticker24h(venue=listing.venue, symbol=listing.symbol, quote_volume=D(volume), leveraged=leveraged)


def shown(u: Universe):
    return [(r.symbol, r.venues, r.kind, r.quote_volume) for r in u.routes]


# -- filters and ranking, by example ------------------------------------------------------------------

def market():
    """BTC on every venue, ETH on two spot venues and a perpetual, SOL on one spot venue only."""
    ls = [spot("s1", "BTC"), spot("s2", "BTC"), perp("p1", "BTC"),
          spot("s1", "ETH"), spot("s2", "ETH"), perp("p1", "ETH"),
          spot("s1", "SOL"), perp("p1", "SOL", settle="BTC")]
    vols = {("s1", "BTC"): 900, ("s2", "BTC"): 500, ("p1", "BTC"): 2000,
            ("s1", "ETH"): 300, ("s2", "ETH"): 700, ("p1", "ETH"): 100,
            ("s1", "SOL"): 5000, ("p1", "SOL"): 5000}
    ts = [vol(li, vols[(li.venue, li.base)]) for li in ls]
    return ls, ts


def test_common_instruments_spot_spot_and_spot_perp_ranked_by_the_thinner_leg():
    ls, ts = market()
    u = select(ls, ts, [], UniverseRules())
    assert shown(u) == [
        ("BTC/USDT", ("s1", "p1"), "spot_perp", D(900)),
        ("BTC/USDT", ("s1", "s2"), "spot_spot", D(500)),
        ("BTC/USDT", ("s2", "p1"), "spot_perp", D(500)),
        ("ETH/USDT", ("s1", "s2"), "spot_spot", D(300)),
        ("ETH/USDT", ("s1", "p1"), "spot_perp", D(100)),
        ("ETH/USDT", ("s2", "p1"), "spot_perp", D(100)),
    ]
    # SOL: one spot venue, and its perpetual settles in BTC, not in the quote: no route
    assert all(r.symbol != "SOL/USDT" for r in u.routes)
    r = u.routes[0]
    assert [leg.symbol for leg in r.legs] == ["BTC/USDT", "BTC/USDT:USDT"] and r.name == "BTC/USDT s1/p1"


def test_each_filter_leaves_out_what_it_names():
    ls, ts = market()
    keys = lambda rules: [(r.symbol, r.venues) for r in select(ls, ts, [], rules).routes]
    assert keys(UniverseRules(min_quote_volume=D(500))) == [
        ("BTC/USDT", ("s1", "p1")), ("BTC/USDT", ("s1", "s2")), ("BTC/USDT", ("s2", "p1"))]
    assert keys(UniverseRules(spot_perp=False)) == [("BTC/USDT", ("s1", "s2")), ("ETH/USDT", ("s1", "s2"))]
    assert keys(UniverseRules(spot_spot=False, max_routes=2)) == [("BTC/USDT", ("s1", "p1")),
                                                                  ("BTC/USDT", ("s2", "p1"))]
    assert keys(UniverseRules(include=("ETH/USDT",), exclude=("ETH/USDT:USDT",))) == [("ETH/USDT", ("s1", "s2"))]
    assert keys(UniverseRules(include=("BTC/USDT:USDT",))) == [("BTC/USDT", ("s1", "p1")), ("BTC/USDT", ("s2", "p1"))]
    assert keys(UniverseRules(exclude=("BTC/USDT",), max_routes=1)) == [("ETH/USDT", ("s1", "s2"))]
    assert keys(UniverseRules(quote_assets=("USDC",))) == []
    assert len(keys(UniverseRules(quote_assets=()))) == 6


def test_untradable_leveraged_and_other_asset_classes_form_no_route():
    ls = [spot("s1", "BTC"), spot("s2", "BTC", tradable=False), perp("p1", "BTC"),
          spot("s1", "SUSHI3L"), spot("s2", "SUSHI3L"),
          spot("s1", "EWJ"), perp("p1", "EWJ", asset_class="stocks")]
    ts = [vol(li, 1000, leveraged=(li.base == "SUSHI3L" and li.venue == "s2")) for li in ls]
    keys = lambda rules: {(r.symbol, r.venues) for r in select(ls, ts, [], rules).routes}
    assert keys(UniverseRules()) == {("BTC/USDT", ("s1", "p1"))}
    assert keys(UniverseRules(exclude_leveraged=False)) == {("BTC/USDT", ("s1", "p1")), ("SUSHI3L/USDT", ("s1", "s2"))}
    assert keys(UniverseRules(asset_classes=("crypto", "stocks"))) == {("BTC/USDT", ("s1", "p1")),
                                                                       ("EWJ/USDT", ("s1", "p1"))}


def test_a_leg_without_a_ticker_has_no_volume():
    ls = [spot("s1", "BTC"), spot("s2", "BTC")]
    assert shown(select(ls, [vol(ls[0], 10)], [])) == [("BTC/USDT", ("s1", "s2"), "spot_spot", D(0))]
    assert select(ls, [vol(ls[0], 10)], [], UniverseRules(min_quote_volume=D("0.01"))).routes == ()


def test_ties_rank_by_symbol_then_venues_and_input_order_does_not_matter():
    ls = [spot(v, b) for v in SPOT_VENUES for b in ("AAA", "BBB")]
    ts = [vol(li, 7) for li in ls]
    order = [(r.symbol, r.venues) for r in select(ls, ts, []).routes]
    assert order == [("AAA/USDT", ("s1", "s2")), ("AAA/USDT", ("s1", "s3")), ("AAA/USDT", ("s2", "s3")),
                     ("BBB/USDT", ("s1", "s2")), ("BBB/USDT", ("s1", "s3")), ("BBB/USDT", ("s2", "s3"))]
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(ls)
        rng.shuffle(ts)
        assert [(r.symbol, r.venues) for r in select(ls, ts, []).routes] == order


def test_inputs_that_name_one_thing_twice_are_refused():
    a = spot("s1", "BTC")
    with pytest.raises(ValueError, match="lists BTC/USDT twice"):
        select([a, spot("s1", "BTC")], [], [])
    with pytest.raises(ValueError, match="two 24 h tickers"):
        select([a], [vol(a, 1), vol(a, 2)], [])
    with pytest.raises(ValueError, match="two transfer statuses"):
        select([a], [], [AssetTransfer("s1", "BTC", True, True), AssetTransfer("s1", "BTC", True, False)])


def test_rules_and_listings_are_checked():
    with pytest.raises(ValueError, match="max_routes"):
        UniverseRules(max_routes=-1)
    with pytest.raises(ValueError, match="min_quote_volume"):
        UniverseRules(min_quote_volume=D(-1))
    for bad in ("BTCUSDT", "BTC/", "BTC/USDT:", "A/B/C"):
        with pytest.raises(ValueError, match="not a unified symbol"):
            UniverseRules(exclude=(bad,))
    with pytest.raises(ValueError, match="no settle"):
        Listing("s1", "BTC", "USDT", "USDT", "spot", "BTCUSDT", True)
    with pytest.raises(ValueError, match="settle"):
        Listing("p1", "BTC", "USDT", None, "perpetual", "BTC_USDT", True)
    with pytest.raises(ValueError, match="market"):
        Listing("p1", "BTC", "USDT", None, "option", "BTC_USDT", True)    # type: ignore[arg-type]
    with pytest.raises(ValueError, match="base"):
        Listing("s1", "BT/C", "USDT", None, "spot", "BTCUSDT", True)


# -- frozen transfers -----------------------------------------------------------------------------------

def wallet(venue, **flags):
    """``wallet("s1", BTC="dw", USDT="d")``: d = can deposit, w = can withdraw."""
    return [AssetTransfer(venue, asset, "d" in f, "w" in f) for asset, f in flags.items()]


def test_a_route_is_frozen_when_a_held_asset_cannot_move_both_ways_on_a_leg_venue():
    ls = [spot("s1", "BTC"), spot("s2", "BTC"), perp("p1", "BTC")]
    ts = [vol(ls[0], 300), vol(ls[1], 200), vol(ls[2], 100)]
    open_s2 = wallet("s2", BTC="dw", USDT="dw")
    # deposits of BTC closed on s1: BTC piles out of s1 and cannot come back
    u = select(ls, ts, wallet("s1", BTC="w", USDT="dw") + open_s2, UniverseRules(skip_frozen_transfers=False))
    by = {r.venues: r for r in u.routes}
    assert by[("s1", "s2")].frozen and by[("s1", "s2")].frozen_because == ("BTC deposit s1",)
    assert by[("s1", "p1")].frozen_because == ("BTC deposit s1",)
    assert not by[("s2", "p1")].frozen                     # p1 publishes no status: not judged
    # withdrawals closed instead: equally frozen (one direction is not enough)
    u = select(ls, ts, wallet("s1", BTC="d", USDT="dw") + open_s2, UniverseRules(skip_frozen_transfers=False))
    assert {r.venues: r.frozen_because for r in u.routes}[("s1", "s2")] == ("BTC withdraw s1",)
    # the quote asset counts too, and a venue with a status list that lacks an asset is closed for it
    u = select(ls, ts, wallet("s1", BTC="dw") + open_s2, UniverseRules(skip_frozen_transfers=False))
    assert {r.venues: r.frozen_because for r in u.routes}[("s1", "s2")] == ("USDT deposit s1", "USDT withdraw s1")
    # a perpetual leg holds its settle asset (margin) only
    u = select(ls, ts, open_s2 + wallet("p1", USDT="dw", BTC=""), UniverseRules(skip_frozen_transfers=False))
    assert not any(r.frozen for r in u.routes)
    u = select(ls, ts, open_s2 + wallet("p1", USDT="d"), UniverseRules(skip_frozen_transfers=False))
    assert {r.venues: r.frozen_because for r in u.routes}[("s2", "p1")] == ("USDT withdraw p1",)


def test_skip_frozen_transfers_leaves_frozen_routes_out_of_trading_and_the_cap():
    ls = [spot("s1", "BTC"), spot("s2", "BTC"), spot("s1", "ETH"), spot("s2", "ETH")]
    ts = [vol(li, 1000 if li.base == "BTC" else 10) for li in ls]
    frozen_btc = wallet("s1", BTC="w", ETH="dw", USDT="dw")
    u = select(ls, ts, frozen_btc, UniverseRules(max_routes=1))
    assert [r.symbol for r in u.routes] == ["ETH/USDT"]           # BTC ranks first but is frozen
    assert [(r.symbol, r.frozen) for r in u.frozen] == [("BTC/USDT", True)]
    kept = select(ls, ts, frozen_btc, UniverseRules(max_routes=1, skip_frozen_transfers=False))
    assert [(r.symbol, r.frozen) for r in kept.routes] == [("BTC/USDT", True)] and kept.frozen == ()


# -- listing added / removed between two reads -------------------------------------------------------------

def test_diff_of_two_reads_adds_new_listings_and_removes_delisted_halted_and_frozen_ones():
    ls = [spot("s1", "BTC"), spot("s2", "BTC"), spot("s1", "ETH"), spot("s2", "ETH"), spot("s1", "XRP")]
    ts = [vol(li, 100) for li in ls]
    old = select(ls, ts, [])
    assert old.keys() == {("BTC/USDT", ("s1", "s2")), ("ETH/USDT", ("s1", "s2"))}
    assert diff(old, old) == ((), ())

    listed = ls + [spot("s2", "XRP")]                                          # a new common listing
    new = select(listed, ts + [vol(listed[-1], 100)], [])
    added, removed = diff(old, new)
    assert [r.key for r in added] == [("XRP/USDT", ("s1", "s2"))] and removed == ()

    halted = [spot("s2", "ETH", tradable=False) if li == spot("s2", "ETH") else li for li in ls]
    new = select(halted, ts, [])
    added, removed = diff(old, new)
    assert added == () and [r.key for r in removed] == [("ETH/USDT", ("s1", "s2"))]
    assert removal_reason(removed[0], new, halted) == "halted"

    delisted = [li for li in ls if li != spot("s1", "BTC")]
    new = select(delisted, ts, [])
    added, removed = diff(old, new)
    assert added == () and [r.key for r in removed] == [("BTC/USDT", ("s1", "s2"))]
    assert removal_reason(removed[0], new, delisted) == "delisted"

    new = select(ls, ts, wallet("s2", BTC="dw", ETH="w", USDT="dw"))
    removed = diff(old, new)[1]
    assert [r.key for r in removed] == [("ETH/USDT", ("s1", "s2"))]
    assert removal_reason(removed[0], new, ls) == "frozen"

    new = select(ls, ts, [], UniverseRules(max_routes=1))
    removed = diff(old, new)[1]
    assert [r.key for r in removed] == [("ETH/USDT", ("s1", "s2"))]
    assert removal_reason(removed[0], new, ls) == "filtered"

    # volume moves between reads: the same route, no change
    busier = select(ls, [Ticker24h(t.venue, t.symbol, t.quote_volume * 3) for t in ts], [])
    assert diff(old, busier) == ((), ())


# -- property tests against the reference -------------------------------------------------------------------

BASES = ("BTC", "ETH", "X1")
QUOTES = ("USDT", "USDC")


@st.composite
def markets(draw):
    """Listings drawn over the whole grid of venues, bases and quotes (each present with
    probability 2/3, mostly tradable crypto), so that most draws have common instruments."""
    listings = []
    for venue in SPOT_VENUES + PERP_VENUES:
        for base in BASES:
            for quote in QUOTES:
                if draw(st.integers(0, 2)) == 2:
                    continue
                tradable = draw(st.integers(0, 5)) < 5
                cls = "stocks" if draw(st.integers(0, 9)) == 9 else "crypto"
                if venue in SPOT_VENUES:
                    listings.append(spot(venue, base, quote, tradable, cls))
                else:        # now and then a perpetual settled in another asset
                    settle = draw(st.sampled_from(QUOTES)) if draw(st.integers(0, 5)) == 5 else quote
                    listings.append(perp(venue, base, quote, settle, tradable, cls))
    tickers = []
    for li in listings:
        if draw(st.integers(0, 9)) < 8:
            tickers.append(vol(li, draw(st.sampled_from((10, 50, 100, 10, 5, 0))), draw(st.integers(0, 9)) == 9))
    transfers = []
    for venue in SPOT_VENUES + PERP_VENUES:
        if draw(st.integers(0, 2)) == 2:
            continue                       # this venue publishes no transfer status
        for asset in BASES + QUOTES:
            if draw(st.integers(0, 9)) < 9:
                transfers.append(AssetTransfer(venue, asset, draw(st.integers(0, 7)) < 7, draw(st.integers(0, 7)) < 7))
    names = st.sampled_from(["%s/%s" % (b, q) for b in BASES for q in QUOTES]
                            + ["%s/%s:%s" % (b, q, q) for b in BASES for q in QUOTES])
    rules = UniverseRules(
        quote_assets=draw(st.sampled_from(((), ("USDT",), ("USDT",), ("USDC", "USDT")))),
        min_quote_volume=D(draw(st.sampled_from((0, 0, 5, 10, 60)))),
        include=tuple(draw(st.lists(names, max_size=3))) if draw(st.integers(0, 3)) == 3 else (),
        exclude=tuple(draw(st.lists(names, max_size=2))) if draw(st.integers(0, 1)) == 1 else (),
        max_routes=draw(st.integers(0, 6)),
        spot_spot=draw(st.integers(0, 3)) < 3,
        spot_perp=draw(st.integers(0, 3)) < 3,
        skip_frozen_transfers=draw(st.booleans()),
        asset_classes=draw(st.sampled_from((("crypto",), ("crypto", "stocks")))),
        exclude_leveraged=draw(st.booleans()),
    )
    return listings, tickers, transfers, rules


def as_ref(routes):
    return [dict(symbol=r.symbol, venues=r.venues, kind=r.kind, volume=r.quote_volume, frozen=r.frozen,
                 because=r.frozen_because) for r in routes]


@given(markets())
def test_select_matches_the_reference(m):
    listings, tickers, transfers, rules = m
    u = select(listings, tickers, transfers, rules)
    traded, left_out = select_ref(listings, tickers, transfers, rules)
    assert as_ref(u.routes) == traded
    assert as_ref(u.frozen) == left_out
    for r in u.routes:       # each route's legs are the listings it names
        assert [(leg.venue, leg.spot_symbol) for leg in r.legs] == [(v, r.symbol) for v in r.venues]


@given(markets(), st.randoms(use_true_random=False))
def test_select_does_not_depend_on_input_order(m, rnd):
    listings, tickers, transfers, rules = m
    u = select(listings, tickers, transfers, rules)
    for seq in (listings, tickers, transfers):
        rnd.shuffle(seq)
    assert select(listings, tickers, transfers, rules) == u


@given(markets(), st.sampled_from((0, 5, 10, 60, 200)))
def test_a_higher_volume_floor_only_removes_routes(m, floor):
    listings, tickers, transfers, rules = m
    rules = dataclasses.replace(rules, max_routes=0)
    floor = max(D(floor), rules.min_quote_volume)
    low = select(listings, tickers, transfers, rules)
    high = select(listings, tickers, transfers, dataclasses.replace(rules, min_quote_volume=floor))
    assert high.keys() <= low.keys()
    assert all(r.quote_volume >= floor for r in high.routes)
    assert [r.key for r in high.routes] == [r.key for r in low.routes if r.quote_volume >= floor]


@given(markets(), markets())
def test_diff_turns_the_old_universe_into_the_new_one(a, b):
    old, new = select(*a), select(*b)
    added, removed = diff(old, new)
    assert (old.keys() - {r.key for r in removed}) | {r.key for r in added} == new.keys()
    assert not {r.key for r in added} & old.keys()
    assert {r.key for r in removed} <= old.keys() and not {r.key for r in removed} & new.keys()
    assert all(r in new.routes for r in added) and all(r in old.routes for r in removed)

"""Venue ids come from the venues' descriptors, not from the core: a venue with an id beyond the three
packaged ones (3, and the last the core's arrays hold, MAX_VENUES - 1) gets its instruments, books,
parser events, router counters and arbitrage legs like any other; an id the arrays cannot hold is
refused when the node is wired, with a ValueError naming it."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from cexnode._core.arb import ArbEngine
from cexnode._core.book import APPLY_OK, Book, SYNC_SNAPSHOT_DIFF
from cexnode._core.parsers.gateio_spot import GateSpotParser
from cexnode._core.router import BookRouter
from cexnode._core.symbols import MAX_VENUES, SymbolMap, SymbolRegistry
from cexnode.adapters import registry
from cexnode.adapters.descriptor import VenueDescriptor

NOW = 1_700_000_000_000_000_000


PACKAGED = registry.descriptor("gateio_spot")


def fake_venue(name: str, venue_id: int) -> VenueDescriptor:
    """A spot venue that speaks a packaged venue's protocol under its own name and id."""
    return dataclasses.replace(PACKAGED, name=name, venue_id=venue_id, title="test venue %s" % name)


FAR = fake_venue("far_spot", MAX_VENUES - 1)
FOURTH = fake_venue("fourth_spot", 3)


def venues():
    return [PACKAGED, FOURTH, FAR]


def instrument(venue: str) -> dict:
    return {"venue": venue, "symbol": "ETH/USDT", "venue_symbol": "ETH_USDT", "tick": "0.01", "qty_step": "0.0001"}


def loaded_registry() -> SymbolRegistry:
    reg = SymbolRegistry(venues())
    reg.add_instruments([instrument(d.name) for d in venues()])
    return reg.freeze()


def test_registry_maps_carry_the_descriptor_ids_and_names():
    reg = loaded_registry()
    assert reg.venue_names() == {PACKAGED.venue_id: "gateio_spot", 3: "fourth_spot", MAX_VENUES - 1: "far_spot"}
    for d in venues():
        m = reg.map(d.name)
        assert m is reg.map(d.venue_id)
        assert (m.venue, m.venue_label) == (d.venue_id, d.name)
        assert m.instrument("ETH_USDT")["venue"] == d.name
    with pytest.raises(ValueError, match="unknown venue 'mexc_spot'"):
        reg.map("mexc_spot")                   # not one of this registry's venues


def test_fourth_and_last_venue_through_parser_router_and_arbitrage():
    reg = loaded_registry()
    names = reg.venue_names()
    arb = ArbEngine(min_profit="0", venue_names=names)
    router = BookRouter(arb)
    router.set_now(NOW)
    opps = []
    router.on_opportunities = opps.extend
    sid = reg.map("fourth_spot").id_of("ETH_USDT")
    inst = reg.map("fourth_spot").instrument(sid)
    ps, qs = inst["price_scale"], inst["qty_scale"]
    books = {d.name: router.add_book(d.venue_id, sid, SYNC_SNAPSHOT_DIFF, 50) for d in venues()}
    assert {b.venue for b in books.values()} == {PACKAGED.venue_id, 3, MAX_VENUES - 1}
    legs = [dict(reg.map(n).instrument(sid), venue=n, book=books[n], taker_fee=Decimal("0.001")) for n in names.values()]
    arb.add_route("eth", "ETH/USDT", ps, qs, legs)
    assert arb.routes() == [("eth", "ETH/USDT", list(names.values()))]

    one = 10 ** qs
    # the packaged venue and the last one quote 3000.00 / 3000.10; nothing crosses
    for n in ("gateio_spot", "far_spot"):
        assert router.snapshot(books[n].venue, sid, 100, [(300000, one)], [(300010, one)], recv_ns=NOW) == APPLY_OK
    assert opps == []
    # the fourth venue's feed, read by an existing protocol's parser with the fourth venue's map
    parser = GateSpotParser(reg.map("fourth_spot"), router)
    assert parser.venue == 3
    assert router.snapshot(3, sid, 100, [(299000, one)], [(302000, one)], recv_ns=NOW) == APPLY_OK
    assert opps == []
    ms = NOW // 10 ** 6                       # a fresh push: its exchange time is now
    frame = (b'{"time":1,"time_ms":%d,"channel":"spot.order_book_update","event":"update","result":'
             b'{"t":%d,"s":"ETH_USDT","U":101,"u":101,"b":[["3010.00","2"]],"a":[]}}' % (ms, ms))
    parser.feed_bytes(frame, False, NOW)
    assert books["fourth_spot"].last_id == 101 and books["fourth_spot"].best_bid() == (301000, 2 * one)
    assert router.counters(3)["depth"] == 1 and router.counters(MAX_VENUES - 1)["depth"] == 0
    # a bid of 3010.00 on the fourth venue over asks of 3000.10 elsewhere: both pairs emit
    assert sorted((o.buy_venue, o.sell_venue) for o in opps) == [("far_spot", "fourth_spot"),
                                                                ("gateio_spot", "fourth_spot")]
    assert all(o.sell_price_m == 301000 and o.buy_price_m == 300010 for o in opps)
    # balances and fees are addressed by the names the engine was given
    arb.set_balance("far_spot", "USDT", "0")
    arb.set_leg_params("fourth_spot", taker_fee="0.002")
    assert ("fourth_spot", "0.002", None) in arb.leg_params()
    with pytest.raises(ValueError, match="unknown venue 'mexc_spot'"):
        arb.set_balance("mexc_spot", "USDT", "1")


def test_route_leg_book_must_be_on_the_named_venue():
    reg = loaded_registry()
    arb = ArbEngine(venue_names=reg.venue_names())
    router = BookRouter(arb)
    sid = reg.map("far_spot").id_of("ETH_USDT")
    b3, bfar = router.add_book(3, sid), router.add_book(MAX_VENUES - 1, sid)
    inst = reg.map("far_spot").instrument(sid)
    legs = [dict(inst, venue="fourth_spot", book=bfar, taker_fee="0"), dict(inst, venue="far_spot", book=b3, taker_fee="0")]
    with pytest.raises(ValueError, match="belongs to venue id %d" % (MAX_VENUES - 1)):
        arb.add_route("swapped", "ETH/USDT", inst["price_scale"], inst["qty_scale"], legs)


@pytest.mark.parametrize("bad", [MAX_VENUES, -1, 100])
def test_out_of_range_venue_ids_are_refused_at_construction(bad):
    msg = r"venue id %d.* outside 0\.\.%d" % (bad, MAX_VENUES - 1)
    with pytest.raises(ValueError, match=msg):
        SymbolRegistry([PACKAGED, fake_venue("too_far", bad)])
    with pytest.raises(ValueError, match=msg):
        ArbEngine(venue_names={0: "a", bad: "too_far"})
    with pytest.raises(ValueError, match=msg):
        BookRouter().add_book(bad, 1)
    with pytest.raises(ValueError, match=msg):
        Book(1, bad)
    with pytest.raises(ValueError, match=msg):
        SymbolMap(bad, (), -1, "too_far")


def test_the_default_venues_are_the_registry_descriptors():
    reg = SymbolRegistry()
    assert reg.venue_names() == {d.venue_id: d.name for d in registry.descriptors()}
    arb = ArbEngine()
    for d in registry.descriptors():
        arb.set_balance(d.name, "USDT", "1")
    assert set(arb.balances()) == {(d.name, "USDT") for d in registry.descriptors()}

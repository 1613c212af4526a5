"""The simulator's generated universe (``sim.universe``), its per-instrument rates, listings and
delistings, and the in-place book generator against the copying one it replaced.

Everything here runs on the manual clock without sockets; tests/integration/test_sim_universe_rest.py
reads the same universe over REST with the node's readers.
"""
from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal

import pytest

from cexnode.config import SimConfig, SimUniverseConfig
from cexnode.sim import ExchangeSimulator
from cexnode.sim import registry
from cexnode.sim.generator import GeneratorParams, MarketGenerator
from cexnode.sim.trading.matching import Reject
from cexnode.sim.replay import BookLoop
from reference.sim_generator_ref import CopyingGenerator


def _sim(seed=5, **universe) -> ExchangeSimulator:
    uc = SimUniverseConfig(enabled=True, **{"spot_pairs": 40, "common_pairs": 30, "perpetuals": 10, **universe})
    return ExchangeSimulator(SimConfig(seed=seed, book_levels=10, universe=uc), clock="manual")


def _markets(sim):
    return {n: v.market for n, v in sim.venues.items()}


def _spot(sim):
    return [n for n, m in _markets(sim).items() if m == "spot"]


def _perp(sim):
    return [n for n, m in _markets(sim).items() if m != "spot"]


def test_universe_lists_common_and_own_pairs_and_perpetuals_on_common_bases():
    sim = _sim()
    spot, perp = _spot(sim), _perp(sim)
    assert len(spot) >= 2 and perp
    bases = {n: {i.base for i in sim.venue(n).instruments.values()} for n in sim.venues}
    for n in spot:
        assert len(sim.venue(n).instruments) == 40
        assert all(i.quote == "USDT" for i in sim.venue(n).instruments.values())
    common = set.intersection(*(bases[n] for n in spot))
    assert len(common) == 30
    for n in perp:
        assert len(sim.venue(n).instruments) == 10
        assert bases[n] <= common
        # the most traded common bases get the perpetuals
        vol = {b: sim.universe.pairs[b].volume for b in common}
        assert min(vol[b] for b in bases[n]) >= sorted(vol.values(), reverse=True)[9]
    # each spot venue's own pairs are its alone
    for n in spot:
        for m in spot:
            if m != n:
                assert (bases[n] - common).isdisjoint(bases[m])


def test_universe_is_deterministic_per_seed_and_spread_over_decades():
    a, b, c = _sim(seed=5), _sim(seed=5), _sim(seed=6)
    name = _spot(a)[0]
    assert list(a.venue(name).instruments) == list(b.venue(name).instruments)
    assert a.venue(name).true_book(next(iter(a.venue(name).instruments))) == \
        b.venue(name).true_book(next(iter(b.venue(name).instruments)))
    assert list(a.venue(name).instruments) != list(c.venue(name).instruments)
    mids = [p.mid for p in a.universe.pairs.values()]
    assert max(mids) / min(mids) > Decimal(10) ** 4
    vols = [a.universe.volume(name, i.symbol) for i in a.venue(name).instruments.values()]
    assert max(vols) / min(vols) > 50                     # log-normal: a floor and a rank select something
    # every book quotes around its pair's mid
    for inst in a.venue(name).instruments.values():
        bid, ask = a.venue(name).book(inst.symbol).best_bid(), a.venue(name).book(inst.symbol).best_ask()
        mid = (inst.price(bid[0]) + inst.price(ask[0])) / 2
        assert abs(mid / a.universe.mid(inst.symbol) - 1) < Decimal("0.01")


def test_synthetic_bases_are_valid_names():
    sim = _sim(spot_pairs=300, common_pairs=200, perpetuals=50)
    bases = list(sim.universe.pairs)
    assert len(bases) == len(set(bases))
    assert all(b.isalpha() and b.isupper() and 3 <= len(b) <= 6 and b != "USDT" for b in bases)


def test_frozen_assets_are_common_bases_frozen_on_one_spot_venue():
    sim = _sim(frozen_assets=6)
    frozen = sim.universe.frozen
    assert len(frozen) == 6
    spot = _spot(sim)
    for (venue, asset), (dep, wd) in frozen.items():
        assert venue in spot and not (dep and wd)
        assert sim.venue(venue).transfer_status(asset) == (dep, wd)
        for other in spot:
            if other != venue:
                assert sim.venue(other).transfer_status(asset) == (True, True)
    assert {(dep, wd) for dep, wd in frozen.values()} == {(False, True), (True, False), (False, False)}


def test_each_instrument_steps_at_its_venue_rate_from_a_random_phase():
    sim = _sim(fast_pairs=5)                        # update_interval_ms 10: a 100 ms rate is every 10th tick
    first = {(n, s): v.books[s].last_id for n, v in sim.venues.items() for s in v.books}
    steps = Counter()
    per_tick = []
    for _ in range(200):
        before = {(n, s): v.books[s].last_id for n, v in sim.venues.items() for s in v.books}
        sim.tick()
        moved = [k for k, last in before.items() if sim.venues[k[0]].books[k[1]].last_id != last]
        steps.update(moved)
        per_tick.append(len(moved))
    for name, venue in sim.venues.items():
        rates = venue.universe_step_ms
        fast = sorted(venue.instruments.values(), key=lambda i: -sim.universe.volume(name, i.symbol))[:5]
        for inst in venue.instruments.values():
            ms = rates[0] if inst in fast else rates[-1]
            expected = 200 / max(1, round(ms / 10))
            # a step that changes nothing publishes nothing: rarely, so allow a few
            assert expected * 0.8 <= steps[(name, inst.venue_symbol)] <= expected, (name, inst.venue_symbol, ms)
    # the phases spread the slow books over their period instead of stepping them together
    assert max(per_tick) < 3 * (sum(per_tick) / len(per_tick))
    assert all(sim.venues[n].books[s].last_id > first[(n, s)] for n, s in first)


def test_step_ms_overrides_a_venue_rate():
    name = "gateio_spot"
    sim = _sim(step_ms={name: 20.0})
    lasts = {s: b.last_id for s, b in sim.venue(name).books.items()}
    sim.tick(100)
    moved = [sim.venue(name).books[s].last_id - last for s, last in lasts.items()]
    # 50 steps each, every step 1-3 ids
    assert all(40 <= m <= 150 for m in moved)


def test_listing_adds_a_book_on_every_venue_that_then_streams():
    sim = _sim()
    counts = {n: len(v.instruments) for n, v in sim.venues.items()}
    added = sim.list_next()
    assert {n for n, _ in added} == set(sim.venues)
    assert len({s.split("/")[0] for _, s in added}) == 1
    for name, sym in added:
        v = sim.venue(name)
        assert len(v.instruments) == counts[name] + 1
        assert v.instrument(sym).symbol == sym
        last = v.book(sym).last_id
        sim.tick(30)
        assert v.book(sym).last_id > last
        assert sim.universe.volume(name, sym) > 0
    assert sim.listed == added


def test_delisting_halts_the_pair_everywhere_its_book_stops_and_orders_are_refused():
    sim = _sim()
    removed = sim.delist_next()
    base = removed[0][1].split("/")[0]
    assert {s.split("/")[0] for _, s in removed} == {base}
    assert {n for n, _ in removed} >= set(_spot(sim))
    for name, sym in removed:
        v = sim.venue(name)
        assert v.venue_symbol(sym) in v.halted
        last = v.book(sym).last_id
        sim.tick(30)
        assert v.book(sym).last_id == last
        acct = sim.trading.add_account(name, "k-" + name, "s", {"USDT": "1000000", base: "1000000"})
        inst = v.instrument(sym)
        with pytest.raises(Reject, match="halted"):
            sim.trading.engine(name).place(acct, inst.venue_symbol, "buy", 1, v.book(sym).best_ask()[0], tif="ioc")
    # a delisted base takes no deposits on the venues that listed it
    assert sim.venue(_spot(sim)[0]).transfer_status(base)[0] is False
    # the next delisting picks another pair
    assert sim.delist_next()[0][1].split("/")[0] != base


def test_universe_off_keeps_the_configured_symbols():
    sim = ExchangeSimulator(SimConfig(seed=3), clock="manual", trading=False)
    assert sim.universe is None
    for name, v in sim.venues.items():
        assert list(v.instruments) == [registry.venue_class(name).make_instrument(name, s, Decimal(1)).venue_symbol
                                       for s in registry.venue_class(name).default_symbols(["BTC/USDT", "ETH/USDT"])]
    with pytest.raises(RuntimeError):
        sim.list_next()


def test_in_place_generator_equals_the_copying_reference():
    # the differential check of the fast step: same seed, same draws, same diffs, same books
    sim = _sim(seed=9)
    insts = {n: list(v.instruments.values()) for n, v in sim.venues.items()}
    mids = {(i.base, i.quote): sim.universe.mid(i.symbol) for lst in insts.values() for i in lst}
    for levels in (10, 50):
        params = GeneratorParams(seed=9, book_levels=levels, trade_probability=0.5, dislocation_probability=0.1)
        fast, ref = MarketGenerator(params, insts, mids), CopyingGenerator(params, insts, mids)
        diffs = 0
        for step in range(300):
            got, want = fast.step(1000 + step), ref.step(1000 + step)
            assert [(s.venue, d) for s, d in got] == [(s.venue, d) for s, d in want]
            diffs += len(got)
        assert diffs > 300 * len(fast.states) * 0.9
        for key, st in fast.states.items():
            rst = ref.states[key]
            assert st.book.top() == rst.book.top() and st.book.last_id == rst.book.last_id
            assert st.book.bid_px == sorted(st.book.bids) and st.book.ask_px == sorted(st.book.asks)
            assert not st.book.crossed
            assert math.isclose(st.offset_bps, rst.offset_bps)


def test_template_frames_equal_frames_rendered_for_the_diff():
    # a loop position's frames are rendered once with sentinel ids and time, then filled in: the
    # filled bytes equal what rendering the diff itself gives (at the diff's time)
    sim = _sim(replay_steps=2)
    channels = {"mexc_spot": [("book", "10ms"), ("book", "100ms"), ("limit", 5), ("ticker", "10ms")],
                "gateio_spot": [("ticker", None)], "gateio_futures": [("ticker", False), ("ticker", True)]}
    for name, kinds in channels.items():
        v = sim.venue(name)
        st = next(s for (n, _), s in sim.generator.states.items() if n == name)
        loop = BookLoop(2)
        for i in range(4):
            d = sim.generator.step_book(st, 1765000000123 + 997 * i)
            # the loop position's first push rendered the template (other ids and time) ...
            earlier = type(d)(d.symbol, d.first - 1000, d.last - 1000, d.bids, d.asks, ts_ms=d.ts_ms - 5000)
            if i == 3:          # ... with ids one digit shorter: this push renders anew
                d = type(d)(d.symbol, d.first * 10, d.last * 10, d.bids, d.asks, ts_ms=d.ts_ms)
            for kind, variant in kinds:
                v.replay_frames((loop, i), kind, earlier, variant)
                got = v.replay_frames((loop, i), kind, d, variant)
                v._clock_override = (d.ts_ms + 0.5) / 1000
                try:
                    want = v._frames_for(kind, d, variant)
                finally:
                    v._clock_override = None
                assert got == want, (name, kind, variant, i)
                assert got and all(b"%d" % d.last in f for f, _ in got)

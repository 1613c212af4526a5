"""The node on the universe (``arbitrage.universe``) against the simulator's generated market
(``sim.universe``): the routes it wires at start are the ones the venues' lists give (common pairs,
perpetuals, frozen assets left out), every book syncs, and while it runs a new listing gets its books,
subscriptions and routes and trades, and a delisted pair's routes stop, its books leave the node and
its subscriptions the venue, without a restart."""
from __future__ import annotations

import asyncio
from decimal import ROUND_DOWN, Decimal

import aiohttp

from cexnode.adapters.registry import descriptor
from cexnode.config import load_config_text
from cexnode.node import Node
from support.node_books import true_levels, wait_until

SPOT = ("gateio_spot", "mexc_spot")      # route names list a spot-spot route's venues in name order
PERP = "gateio_futures"

YAML = """
node: {name: universe, status_interval_s: 0, start_timeout_s: 60}
log: {console: {enabled: false}, audit: {path: "%(audit)s"}}
metrics: {port: 0}
sim:
  enabled: true
  seed: 5
  dislocation_probability: 0
  universe: {enabled: true, spot_pairs: 10, common_pairs: 7, perpetuals: 3, frozen_assets: 2}
venues:
  mexc_spot: {taker_fee: 0.0005}
  gateio_spot: {taker_fee: 0.001}
  gateio_futures: {taker_fee: 0.0005}
arbitrage:
  min_profit: 0.01
  max_notional: 500
  max_book_age_ms: 600000
  universe: {enabled: true, refresh_interval_s: 0.3}
risk: {max_notional_per_trade: 1000, max_open_exposure: 100000, route_cooldown_ms: 0, stale_data_halt_ms: 600000, stale_data_scope: venue}
trading:
  mode: paper
  recover: false
  paper:
    latency_ms: 1
    balances: {mexc_spot: {USDT: 100000}, gateio_spot: {USDT: 100000}, gateio_futures: {USDT: 100000}}
    asset_notional: 1000
storage: {enabled: false}
"""


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def judged(venue: str) -> bool:
    """The node reads ``venue``'s wallet status here: a paper node has no keys, so a venue whose
    wallet endpoint is signed is not judged (docs/universe.md)."""
    return not descriptor(venue).universe.transfers_signed


def expected_routes(universe) -> set[str]:
    """The routes the simulator's universe gives, worked out from its own draw: every common pair
    on the two spot venues, every perpetual with each spot venue; a leg's venue that has the base
    frozen (and whose wallet the node can read) leaves its routes out (a perpetual leg holds only
    its USDT margin); halted pairs none."""
    def live(venue, sym):
        return sym in universe.listed[venue] and sym not in universe.delisted[venue]

    def frozen(venue, base):
        return (venue, base) in universe.frozen and judged(venue)

    out = set()
    for base in universe.common:
        sym = base + "/USDT"
        if all(live(v, sym) for v in SPOT) and not any(frozen(v, base) for v in SPOT):
            out.add("%s %s/%s" % (sym, *SPOT))
        if live(PERP, sym + ":USDT"):
            out |= {"%s %s/%s" % (sym, v, PERP) for v in SPOT if live(v, sym) and not frozen(v, base)}
    return out


def subscribed(sim_venue, venue_symbol: str) -> bool:
    """The simulated venue streams ``venue_symbol``'s book to some connection of the node."""
    for c in sim_venue.connections:
        for s in c.subscriptions:
            key = s[1] if isinstance(s, tuple) else s.rsplit("@", 1)[-1]
            if key == venue_symbol:
                return True
    return False


def books_equal_sim(engine, sim, keys) -> bool:
    """Every book of ``keys`` ((venue, symbol)) at the simulator's last id with its top levels."""
    for venue, sym in keys:
        book = engine.books.get((venue, sym))
        if book is None or not book.in_sync:
            return False
        inst = engine.registry.map(venue).instrument(sym)
        (bids, asks), last_id = true_levels(sim.venue(venue), sym, inst, 10)
        if book.last_id != last_id or book.top(10) != (bids, asks):
            return False
    return True


def dislocate(sim, base: str) -> None:
    """An ask on MEXC 60 bps under Gate's best bid (MEXC's own bids at or above it removed): the
    spot-spot route and MEXC's spot-perpetual route both see it; one of them takes it."""
    sym = base + "/USDT"
    cheap, rich = sim.venue("mexc_spot"), sim.venue("gateio_spot")
    inst = cheap.instrument(sym)
    bid = rich.true_book(sym)[0][0][0]
    ask = (bid * (1 - Decimal("0.006"))).quantize(inst.tick, rounding=ROUND_DOWN)
    qty = (Decimal(200) / ask).quantize(inst.step, rounding=ROUND_DOWN)
    gone = [(inst.ticks_of(p), 0) for p, _ in cheap.true_book(sym)[0] if p >= ask]
    cheap.publish_change(sym, bids=gone, asks=[(inst.ticks_of(ask), inst.steps_of(qty))])


def test_universe_follows_the_venues_lists_while_the_node_runs(tmp_path):
    node = Node(load_config_text(YAML % {"audit": tmp_path / "audit.jsonl"}), duration=None)

    async def main():
        runner = asyncio.get_running_loop().create_task(node.run())
        ctx = node.context
        try:
            assert await wait_until(lambda: ctx.engine is not None and ctx.engine.executor is not None
                                    and ctx.engine.executor.started, 60)
            engine, sim = ctx.engine, ctx.sim
            universe = sim.universe
            want = expected_routes(universe)
            # one frozen asset per spot venue: the public wallet's is left out, the signed one's is not judged
            assert {v for v, _ in universe.frozen} == set(SPOT) and {judged(v) for v in SPOT} == {True, False}
            frozen_routes = {r for (v, b) in universe.frozen for r in ("%s/USDT %s/%s" % (b, *SPOT),)}
            assert len(frozen_routes & want) == 1
            assert set(engine.wired_routes) == want
            assert set(engine.arb.route_names()) == want
            # every book a route reads, and no other, syncs
            legs = engine.books_in_use()
            assert set(engine.books) == legs
            assert await wait_until(lambda: engine.books_in_sync() == (len(legs), len(legs)), 60), engine.books_in_sync()

            # a new listing: books, subscriptions and routes while the node runs
            listed = sim.list_next()
            base = listed[0][1].split("/")[0]
            new_routes = {"%s/USDT %s/%s" % (base, *SPOT)} | {"%s/USDT %s/%s" % (base, v, PERP) for v in SPOT}
            assert await wait_until(lambda: new_routes <= set(engine.wired_routes), 20), engine.wired_routes
            new_books = {(v, s) for v, s in listed}
            assert await wait_until(lambda: all(engine.books.get(k) is not None and engine.books[k].in_sync
                                                for k in new_books), 20)
            for venue, sym in listed:
                vs = engine.registry.map(venue).venue_symbol(sym)
                assert subscribed(sim.venue(venue), vs), (venue, vs)
            sim.pause()
            assert await wait_until(lambda: books_equal_sim(engine, sim, new_books), 10)
            sim.resume()
            # ... and it trades
            n0 = len(engine.executor.results)
            dislocate(sim, base)
            assert await wait_until(lambda: any(r.route in new_routes and r.status == "done"
                                                for r in engine.executor.results[n0:]), 10), \
                (engine.executor.skipped, engine.opportunities, engine.arb.route_names(), tops(engine, sim, base))

            # a delisting: the pair's routes stop, its books leave the node and its subscriptions the venue
            gone = sim.delist_next()
            dbase = gone[0][1].split("/")[0]
            old_routes = {r for r in want | new_routes if r.startswith(dbase + "/")}
            assert old_routes
            assert await wait_until(lambda: not old_routes & set(engine.wired_routes), 20), engine.wired_routes
            assert not old_routes & set(engine.arb.route_names())
            assert await wait_until(lambda: not any(k in engine.books for k in gone), 10)
            vss = {(v, engine.registry.map(v).venue_symbol(s)) for v, s in gone}
            assert await wait_until(lambda: not any(subscribed(sim.venue(v), vs) for v, vs in vss), 10), vss
            assert set(engine.wired_routes) == expected_routes(universe)
            changes = engine.universe.changes
            assert changes[("added", "listed")] == len(new_routes)
            assert changes[("removed", "halted")] == len(old_routes)
            text = await _scrape(node)
            assert 'cexnode_universe_changes_total{change="removed",reason="halted"} %d.0' % len(old_routes) in text
            # no trade starts on a removed route from here on
            n1 = len(engine.executor.results)
            for _ in range(3):
                await asyncio.sleep(0.3)
            assert not [r for r in engine.executor.results[n1:] if r.route in old_routes]
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 30)
        return engine

    engine = run(main())
    summary = "\n".join(engine.summary)
    assert "realised P&L total" in summary


async def _scrape(node) -> str:
    url = next(c.server.url for c in node.components if c.name == "metrics")
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/metrics") as r:
            return await r.text()


def tops(engine, sim, base):
    sym = base + "/USDT"
    out = {}
    for v in SPOT:
        b = engine.books[(v, sym)]
        out[v] = (b.in_sync, b.top(2), sim.venue(v).true_book(sym, 2))
    return out

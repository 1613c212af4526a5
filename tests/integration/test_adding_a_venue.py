"""Adding a venue is a descriptor (docs/adding-a-venue.md): a venue no package defines, built from a
descriptor alone and registered from the test, streams its books through the engine like a packaged
one. Its simulated venue speaks an existing protocol (Gate spot v4) under the new name and id, so the
node's whole path runs: config section (the venue's own config class), instruments over REST,
subscriptions, snapshots, the Cython parser, books in the router at the new venue id, a route between
the new venue and a packaged one evaluated on every update, paper trades on it.

The guide itself is checked too: it names every field of the descriptor and every hook a venue's
adapter fills in, so it cannot fall behind the code."""
from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest

from cexnode.adapters import registry
from cexnode.adapters.base import VenueAdapter
from cexnode.adapters.descriptor import VenueDescriptor, WsRules
from cexnode.config import ConfigError, load_config_text
from cexnode.node import Node
from support.node_books import true_levels, wait_until

NEW = "exampleex_spot"
PROTOCOL_OF = "gateio_spot"          # the protocol the new venue's simulator speaks
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "adding-a-venue.md"

YAML = """
node: {name: t, status_interval_s: 0, start_timeout_s: 20}
log:
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: never}
metrics: {port: 0}
sim:
  enabled: true
  seed: 23
  update_interval_ms: 5
  dislocation_probability: 0.05
  dislocation_bps: 60
  mid_prices: {BTC/USDT: 65000, ETH/USDT: 3200}
venues:
  %(new)s: {taker_fee: 0.0005, symbols: [BTC/USDT, ETH/USDT], book_depth: 100, book_audit_interval_s: 0}
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT, ETH/USDT], book_depth: 100, book_audit_interval_s: 0}
arbitrage:
  min_profit: 0.01
  max_notional: 2000
  routes:
    - {symbol: BTC/USDT, venues: [%(new)s, mexc_spot], name: btc-new}
    - {symbol: ETH/USDT, venues: [%(new)s, mexc_spot], name: eth-new}
risk:
  max_position: {BTC: 10, ETH: 100}
  max_notional_per_trade: 5000
  max_open_exposure: 100000
  daily_loss_limit: 100000
  route_cooldown_ms: 0
trading:
  mode: paper
  paper:
    latency_ms: 0
    balances:
      %(new)s: {USDT: 100000, BTC: 2, ETH: 20}
      mexc_spot: {USDT: 100000, BTC: 2, ETH: 20}
"""


@pytest.fixture
def new_venue():
    """The new venue's descriptor: the Gate spot protocol's parts under a new name and id."""
    base = registry.descriptor(PROTOCOL_OF)
    new_id = max(d.venue_id for d in registry.descriptors()) + 1
    desc = registry.register(dataclasses.replace(base, name=NEW, venue_id=new_id, title="Example exchange spot"))
    try:
        yield desc
    finally:
        registry.unregister(NEW)
    assert NEW not in registry.names()


def test_a_venue_built_from_a_descriptor_streams_its_books_through_the_engine(tmp_path, new_venue):
    cfg = load_config_text(YAML % {"audit": tmp_path / "audit.jsonl", "new": NEW})
    assert type(cfg.venues[NEW]) is new_venue.config_class
    node = Node(cfg, duration=None)

    async def main():
        runner = asyncio.get_running_loop().create_task(node.run())
        try:
            assert await wait_until(lambda: node.context.engine is not None and node.context.engine.router is not None
                               and node.context.engine.books_in_sync() == (4, 4), 30)
            engine, sim = node.context.engine, node.context.sim
            adapter = engine.adapters[NEW]
            assert adapter.venue_id == new_venue.venue_id and adapter.name == NEW
            assert set(sim.venues) == {NEW, "mexc_spot"}
            # the new venue's books: its own id in the router, equal to the simulator's at a paused checkpoint
            sim.pause()
            try:
                v = sim.venue(NEW)
                for sym in ("BTC/USDT", "ETH/USDT"):
                    book = engine.books[(NEW, sym)]
                    assert book.venue == new_venue.venue_id
                    assert await wait_until(lambda: book.in_sync and book.last_id == v.book(sym).last_id, 10)
                    want, last_id = true_levels(v, sym, engine.registry.map(NEW).instrument(sym))
                    assert book.last_id == last_id and book.top(20) == want, sym
            finally:
                sim.resume()
            # routes with a leg on the new venue are evaluated and traded (paper)
            assert await wait_until(lambda: engine.opportunities > 0 and sum(engine.executor.trades_by_status.values()) > 0,
                               20), (engine.opportunities, engine.executor.status())
            return engine
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 20)

    engine = asyncio.run(asyncio.wait_for(main(), 90))
    assert node.exit_code == 0
    assert any(line.startswith("btc-new ") or line.startswith("eth-new ") for line in engine.summary), engine.summary


def test_a_venue_key_of_the_new_venue_is_foreign_elsewhere_and_unknown_once_unregistered(tmp_path, new_venue):
    # the new venue's section takes its config class's keys; a key of a venue it does not have is refused
    # naming the owner, as for a packaged venue
    text = YAML % {"audit": tmp_path / "audit.jsonl", "new": NEW}
    bad = text.replace("%s: {taker_fee: 0.0005," % NEW, "%s: {recv_window_ms: 5000, taker_fee: 0.0005," % NEW)
    with pytest.raises(ConfigError, match=r"recv_window_ms.*mexc_spot"):
        load_config_text(bad)
    registry.unregister(NEW)
    with pytest.raises(ConfigError, match="unknown venue '%s'" % NEW):
        load_config_text(text)
    registry.register(new_venue)


def _adapter_hooks() -> list[str]:
    """The hooks a venue's adapter fills in: the base class's methods that say so."""
    hooks = []
    for name, fn in vars(VenueAdapter).items():
        doc = getattr(fn, "__doc__", "") or ""
        if callable(fn) and "venue hook" in doc.lower():
            hooks.append(name)
    return hooks


def test_the_guide_lists_everything_a_venue_provides():
    text = GUIDE.read_text()
    missing = [f.name for f in dataclasses.fields(VenueDescriptor) + dataclasses.fields(WsRules)
               if not re.search(r"`%s`" % re.escape(f.name), text)]
    assert not missing, "docs/adding-a-venue.md does not mention: %s" % missing
    hooks = _adapter_hooks()
    assert len(hooks) >= 5, hooks
    missing = [h for h in hooks if "`%s`" % h not in text and "`%s(" % h not in text]
    assert not missing, "docs/adding-a-venue.md does not mention the adapter hooks: %s" % missing
    # and every path it names exists (a venue's files as the packaged venues have them)
    root = GUIDE.parents[1]
    for path in re.findall(r"`(cexnode/[A-Za-z0-9_./<>]+)`", text):
        concrete = path.replace("<venue>", PROTOCOL_OF)
        if "<" in concrete:
            continue
        assert (root / concrete).exists() or list(root.glob(concrete.rstrip("/") + ".*")), path

"""The whole node against the embedded simulator over loopback: instruments from the venues' REST
endpoints, books synced from snapshots + streams on all three venues, arbitrage evaluated on every
update, paper trades on the dislocations the simulator generates; books equal the simulator's true
books at a paused checkpoint and again after injected faults; /readyz follows the books."""
from __future__ import annotations

import asyncio
import time

import aiohttp

from cexnode.config import load_config_text
from cexnode.node import Node
from support.node_books import true_levels, wait_until

YAML = """
node: {name: t, status_interval_s: 0, start_timeout_s: 20}
log:
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: never}
metrics: {port: 0}
sim:
  enabled: true
  seed: 11
  update_interval_ms: 5
  dislocation_probability: 0.05
  dislocation_bps: 60
  mid_prices: {BTC/USDT: 65000, ETH/USDT: 3200}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT, ETH/USDT], book_depth: 100}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT, ETH/USDT], book_depth: 100}
  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT], book_depth: 100}
arbitrage:
  min_profit: 0.01
  max_notional: 2000
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc-ss}
    - {symbol: ETH/USDT, venues: [mexc_spot, gateio_spot], name: eth-ss}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures], name: btc-sp}
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
      mexc_spot: {USDT: 100000, BTC: 2, ETH: 20}
      gateio_spot: {USDT: 100000, BTC: 2, ETH: 20}
      gateio_futures: {USDT: 100000}
"""


async def _checkpoint(engine, sim) -> int:
    """Pause the simulator's clock, let the node drain, compare every book; resume."""
    sim.pause()
    try:
        compared = 0
        for (venue, sym), book in engine.books.items():
            v = sim.venue(venue)
            inst = engine.registry.map(venue).instrument(sym)
            await wait_until(lambda: book.in_sync and book.last_id == v.book(sym).last_id, 10)
            want, last_id = true_levels(v, sym, inst)
            assert book.in_sync, (venue, sym)
            assert book.last_id == last_id, (venue, sym, book.last_id, last_id)
            assert book.top(20) == want, (venue, sym)
            compared += 1
        return compared
    finally:
        sim.resume()


def test_node_trades_the_simulator_in_paper_mode(tmp_path):
    cfg = load_config_text(YAML % {"audit": tmp_path / "audit.jsonl"})
    node = Node(cfg, duration=None)

    async def main():
        runner = asyncio.get_running_loop().create_task(node.run())
        try:
            ok = await wait_until(lambda: node.context.engine is not None and node.context.engine.router is not None
                             and node.context.engine.books_in_sync() == (5, 5), 30)
            engine = node.context.engine
            sim = node.context.sim
            assert ok, engine.books_in_sync() if engine.router is not None else "engine not built"
            metrics_url = None
            for c in node.components:
                if c.name == "metrics":
                    metrics_url = c.server.url
            async with aiohttp.ClientSession() as s:
                async with s.get(metrics_url + "/readyz") as r:
                    assert r.status == 200, await r.text()
            assert await _checkpoint(engine, sim) == 5
            # faults on every venue: gaps, a full reset (Gate), dropped connections
            for venue in ("mexc_spot", "gateio_spot", "gateio_futures"):
                v = sim.venue(venue)
                for sym in list(v.books):
                    v.faults.gap_next(sym)
            sim.venue("gateio_spot").faults.full_reset("BTC_USDT")
            sim.venue("mexc_spot").faults.close_connections()
            await asyncio.sleep(0.5)
            assert await wait_until(lambda: engine.books_in_sync() == (5, 5), 20), engine.books_in_sync()
            assert await _checkpoint(engine, sim) == 5
            assert await wait_until(lambda: engine.opportunities > 0 and sum(engine.executor.trades_by_status.values()) > 0,
                               20), (engine.opportunities, engine.executor.status())
            resyncs = sum(s.resyncs for _, _, s in engine.book_entries())
            assert resyncs >= 3
            async with aiohttp.ClientSession() as s:
                async with s.get(metrics_url + "/metrics") as r:
                    text = await r.text()
            assert "cexnode_book_updates_total" in text and "cexnode_trades_total" in text
            return engine
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 20)

    engine = asyncio.run(asyncio.wait_for(main(), 90))
    assert node.exit_code == 0
    assert not engine.executor.unreconciled
    # the closing summary counts what the feeds received (taken before they stop: frames still arriving
    # meanwhile add opportunities after it) and lists the routes
    import re
    head = re.match(r"summary: ran [0-9.]+ s, books 5/5 in sync, frames (\d+), opportunities (\d+)$", engine.summary[0])
    assert head and int(head.group(1)) > 100 and 0 < int(head.group(2)) <= engine.opportunities, engine.summary[:2]
    assert any(line.startswith("btc-ss ") for line in engine.summary), engine.summary


def test_busy_poll_keeps_the_loop_spinning_and_everything_running(tmp_path):
    """``node.busy_poll``: the loop never blocks in epoll (the spinner runs thousands of times per
    second), yet books sync, timers fire on time, the audit syncer thread gets the GIL, trades
    happen; the stop cancels the spinner."""
    text = (YAML % {"audit": tmp_path / "audit.jsonl"}).replace(
        "node: {name: t, status_interval_s: 0, start_timeout_s: 20}",
        "node: {name: t, status_interval_s: 0, start_timeout_s: 20, busy_poll: true}").replace(
        "fsync: never", "fsync: batch").replace("  mode: paper\n", "  mode: paper\n  warm_interval_ms: 0.25\n")
    node = Node(load_config_text(text), duration=None)

    async def main():
        loop = asyncio.get_running_loop()
        runner = loop.create_task(node.run())
        try:
            # books can be in sync while later components still start; the spinner comes after all
            assert await wait_until(lambda: node.context.engine is not None and node.context.engine.router is not None
                               and node.context.engine.books_in_sync() == (5, 5)
                               and len(node.started) == len(node.components), 30)
            bp = node._busy_poll
            assert bp is not None
            # rates per second of CPU the loop's thread got (time.thread_time), not of wall time: on a
            # loaded machine the thread waits for a core, and an idle loop would spin 0 times either way
            s0, t0 = bp.spins, time.thread_time()
            fired = loop.create_future()
            t_set = time.monotonic()
            loop.call_later(0.05, lambda: fired.set_result(time.monotonic() - t_set))
            late = await asyncio.wait_for(fired, 2)
            assert 0.045 <= late < 0.5, late                 # libuv timers: ms granularity
            engine = node.context.engine
            assert await wait_until(lambda: sum(engine.executor.trades_by_status.values()) > 0, 20)
            rate = (bp.spins - s0) / (time.thread_time() - t0)
            assert rate > 100, rate                       # an idle loop would call it 0 times (how
            # fast it spins is a benchmark's business: perf/, tick_to_order with busy polling)
            # the order-path warm-up runs from the spinner, every 0.25 ms: more often than the loop's
            # 1 ms timers could run it (the executor's own timer then leaves it to the spinner)
            ex = engine.executor
            assert ex.busy_warm and bp.poll == ex.warm_poll
            # (warm-ups run only while no trade is in flight: on a loaded machine trades last longer,
            # so wait for them rather than count them over a fixed window)
            w0 = ex.warmups
            assert await wait_until(lambda: ex.warmups - w0 >= 50, 15), ex.warmups - w0
            assert ex.warm_errors == 0
            # the audit syncer thread (fsync: batch) still gets the GIL while the loop spins
            audit = next(c for c in node.components if c.name == "log").system.audit
            assert await wait_until(lambda: audit.syncs_behind >= 2, 5), (audit.written, audit.syncs_behind)
            return bp
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 20)

    import uvloop
    bp = uvloop.run(main())
    assert node._busy_poll is None and not bp._on and bp._handle.cancelled()


def test_futures_decimal_sizes_books_match_with_the_header(tmp_path):
    """A Gate futures contract with fractional sizes (``enable_decimal``): with
    ``size_decimal: true`` the node asks for decimal sizes on the snapshot and the stream
    (X-Gate-Size-Decimal: 1) and its books equal the venue's, fractions included (without the
    header Gate truncates sizes to whole contracts)."""
    text = (YAML % {"audit": tmp_path / "audit.jsonl"}).replace(
        "  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT], book_depth: 100}",
        "  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT], book_depth: 100, size_decimal: true}").replace(
        "  dislocation_bps: 60\n", "  dislocation_bps: 60\n  futures_decimal_sizes: true\n")
    node = Node(load_config_text(text), duration=None)

    async def main():
        runner = asyncio.get_running_loop().create_task(node.run())
        try:
            assert await wait_until(lambda: node.context.engine is not None and node.context.engine.router is not None
                               and node.context.engine.books_in_sync() == (5, 5), 30)
            engine, sim = node.context.engine, node.context.sim
            v = sim.venue("gateio_futures")
            assert v.instrument("BTC_USDT").size_decimals > 0
            for _ in range(3):
                await asyncio.sleep(0.3)
                assert await _checkpoint(engine, sim) == 5
            bids, asks, _ = v.true_book("BTC_USDT", 100)
            assert any(q != q.to_integral_value() for _, q in bids + asks)    # fractions are there to lose
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 20)

    import uvloop
    uvloop.run(main())


def test_a_failed_start_closes_what_it_opened(tmp_path):
    """A venue that fails to start with ``on_venue_failure: stop``: the node exits 1 and the engine
    whose start failed is stopped too: no adapter keeps a REST session or a feed open (they were
    left to the garbage collector: 'Unclosed client session')."""
    text = (YAML % {"audit": tmp_path / "audit.jsonl"}).replace(
        "  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT], book_depth: 100}",
        "  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT], book_depth: 100, start_timeout_s: 3,"
        " rest_url: 'http://127.0.0.1:9'}")          # nothing listens there: its instruments cannot load
    node = Node(load_config_text(text), duration=5)

    import uvloop
    rc = uvloop.run(node.run())
    engine = node.context.engine
    assert rc == 1 and "gateio_futures" in engine.failed, engine.failed
    opened = [n for n, a in engine.adapters.items() if a.rest is not None and a.rest._session is not None]
    assert not opened
    assert all(a.feed is None or not a.feed.connected for a in engine.adapters.values())
    assert not node.started

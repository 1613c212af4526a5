"""Memory stays flat while the node trades: no allocation site under cexnode/ keeps growing.

The node runs in-process in live mode against the embedded simulator (fast clock, dislocations,
trades every few hundred ms), with the memory kept by age shortened to 1 s (settled legs, final
orders in the gateways and in the simulator's matching engines; their 60 s defaults are what
``perf/soak.py`` checks at full length). After a warm-up, tracemalloc snapshots at four moments;
every traced block is charged to its innermost frame under cexnode/. A site that grew by more than
``BOUND`` bytes in EVERY interval is a leak (a transient object alive at one snapshot, such as a
trade in flight, grows one interval and shrinks the next). The ws.py keep-alive leak fixed in
2d6b25e (one pending task per connection every 0.25 s) grows ~14 KB per interval here.
"""
from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc

from cexnode.config import load_config_text
from cexnode.node import Node

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "cexnode") + os.sep
BOUND = 6 * 1024           # bytes a site may grow in every interval (a trade in flight is ~5 KB)
INTERVAL_S = 4.0
SNAPSHOTS = 4
FRAMES_PER_INTERVAL = 100  # market data frames each interval must see, at least
INTERVAL_WAIT_S = 90.0     # hang guard for those frames and a trade (a loaded machine is slow)

YAML = """
node: {name: leak, status_interval_s: 0, start_timeout_s: 20}
log:
  console: {enabled: false}
  audit: {path: "%(tmp)s/audit.jsonl", fsync: never}
metrics: {port: 0}
storage: {path: "%(tmp)s/trades.sqlite"}
sim:
  enabled: true
  seed: 11
  update_interval_ms: 10
  dislocation_probability: 0.1
  dislocation_bps: 60
  mid_prices: {BTC/USDT: 65000, ETH/USDT: 3200}
  balances:
    mexc_spot: {USDT: 1000000, BTC: 20, ETH: 300}
    gateio_spot: {USDT: 1000000, BTC: 20, ETH: 300}
    gateio_futures: {USDT: 1000000}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT, ETH/USDT], api_key: "${CX_LEAK_KEY:-k-leak}", api_secret: "${CX_LEAK_SECRET:-s-leak}"}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT, ETH/USDT], api_key: "${CX_LEAK_KEY:-k-leak}", api_secret: "${CX_LEAK_SECRET:-s-leak}"}
  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT], api_key: "${CX_LEAK_KEY:-k-leak}", api_secret: "${CX_LEAK_SECRET:-s-leak}"}
arbitrage:
  min_profit: 0.50
  min_bps: 2
  max_notional: 2000
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot]}
    - {symbol: ETH/USDT, venues: [mexc_spot, gateio_spot]}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures]}
risk:
  max_notional_per_trade: 2500
  max_position: {BTC: 100, ETH: 1000}
  max_open_exposure: 10000000
  daily_loss_limit: 1000000
  route_cooldown_ms: 100
trading: {mode: live}
"""


def _by_site(snap: tracemalloc.Snapshot) -> dict[str, int]:
    """Traced bytes per innermost cexnode/ frame (file:line)."""
    out: dict[str, int] = {}
    for tr in snap.traces:
        for fr in reversed(tr.traceback):      # a Traceback lists the oldest frame first
            if fr.filename.startswith(PKG):
                key = "%s:%d" % (fr.filename[len(PKG):], fr.lineno)
                out[key] = out.get(key, 0) + tr.size
                break
    return out


async def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        await asyncio.sleep(0.05)


def test_no_cexnode_site_grows_while_trading(tmp_path):
    node = Node(load_config_text(YAML % {"tmp": tmp_path}), duration=None)
    snaps: list[tuple[dict[str, int], int, int]] = []
    seen: dict = {}

    def trades(ex) -> int:
        return sum(n for (_, st), n in ex.trades_by_status.items() if st != "rejected")

    async def main():
        runner = asyncio.get_running_loop().create_task(node.run())
        ctx = node.context
        try:
            await _wait(lambda: ctx.engine is not None and ctx.engine.executor is not None
                        and ctx.engine.executor.started and ctx.engine.books_in_sync() == (5, 5), 30, "the node")
            eng, sim = ctx.engine, ctx.sim
            ex = eng.executor
            ex.retired_keep_s = 1.0
            for a in eng.adapters.values():
                a.gateway.keep_final_s = 1.0
            for v in ("mexc_spot", "gateio_spot", "gateio_futures"):
                sim.trading.engine(v).keep_final_s = 1.0
            await asyncio.sleep(4.0)                        # warm-up: caches, pools, first trades
            tracemalloc.start(12)
            try:
                for _ in range(SNAPSHOTS):
                    await asyncio.sleep(INTERVAL_S if snaps else 2.0)
                    if snaps:
                        # each interval holds market data and at least one trade: how many arrive in
                        # INTERVAL_S depends on the machine's load, so wait for them rather than
                        # assume a rate (the wait is a hang guard, not a speed claim)
                        f0, t0 = snaps[-1][1], snaps[-1][2]
                        await _wait(lambda: eng.frames() - f0 > FRAMES_PER_INTERVAL and trades(ex) > t0,
                                    INTERVAL_WAIT_S, "market data and a trade in the interval")
                    gc.collect()
                    snaps.append((_by_site(tracemalloc.take_snapshot()), eng.frames(), trades(ex)))
            finally:
                tracemalloc.stop()
            assert not runner.done()
            seen.update(skipped=dict(ex.skipped), trades=dict(ex.trades_by_status), risk=sorted(ex.risk.reasons))
        finally:
            node.request_stop()
            rc = await asyncio.wait_for(runner, 30)
        assert rc == 0

    asyncio.run(asyncio.wait_for(main(), 120 + (SNAPSHOTS - 1) * INTERVAL_WAIT_S))
    (a, fa, ta), (z, fz, tz) = snaps[0], snaps[-1]
    # the window saw market data and trading (a test that does nothing proves nothing)
    assert fz - fa > 300, (fa, fz)
    assert tz - ta >= 2, (ta, tz, seen)
    growing = {}
    for site in set().union(*(s[0] for s in snaps)):
        steps = [q[0].get(site, 0) - p[0].get(site, 0) for p, q in zip(snaps, snaps[1:])]
        if min(steps) > BOUND:
            growing[site] = steps
    assert not growing, "allocation sites growing in every %.0f s interval (%d frames, %d trades): %s" % (
        INTERVAL_S, fz - fa, tz - ta,
        "; ".join("%s %s KB" % (s, [g // 1024 for g in steps]) for s, steps in sorted(growing.items())))

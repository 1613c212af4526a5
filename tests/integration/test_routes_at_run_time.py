"""Routes wired and unwired while the node runs (``Engine.wire_route`` / ``Engine.unwire_route``),
end to end: the whole node in paper mode on the embedded simulator, the market generator paused
once the books synced (only the test moves the market). A route wired at run time gets its
balance caps and trades (its book, wired while still syncing, halts nothing until its first sync);
an unwired route trades no more while its trade in flight finishes, its book no longer weighs on
the stale-data check, and its trades stay in the positions, the metrics and the closing summary.
The live variant unwires and wires again the route of a node in ``trading.mode: live`` (the
simulator answers its orders)."""
from __future__ import annotations

import asyncio
import types
from decimal import ROUND_DOWN, Decimal

import aiohttp

from cexnode.config import load_config_text
from cexnode.engine import route_legs
from cexnode.node import Node
from support.live_node import SYM, Live, check_end, run, wait_for

YAML = """
node: {name: routes, status_interval_s: 0, start_timeout_s: 20}
log:
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: never}
metrics: {port: 0}
sim:
  enabled: true
  seed: 5
  update_interval_ms: 5
  dislocation_probability: 0
  mid_prices: {BTC/USDT: 65000, ETH/USDT: 3200}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT, ETH/USDT]}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT, ETH/USDT]}
arbitrage:
  min_profit: 0.01
  max_notional: 2000
  size_to_balances: true
  max_book_age_ms: 600000
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc}
risk:
  max_position: {BTC: 1, ETH: 10}
  max_notional_per_trade: 5000
  max_open_exposure: 100000
  route_cooldown_ms: 0
  stale_data_halt_ms: 600000
trading:
  mode: paper
  paper:
    latency_ms: 2
    balances:
      mexc_spot: {USDT: 20000, BTC: 1, ETH: 5}
      gateio_spot: {USDT: 20000, BTC: 1, ETH: 5}
"""
VENUES = ("mexc_spot", "gateio_spot")
ETH = "ETH/USDT"


def legs_of(engine, symbol: str):
    """The ArbEngine legs and executor rules of a route on ``symbol`` over both venues, as the
    engine makes those of its configured routes."""
    route = types.SimpleNamespace(symbol=symbol, venues=list(VENUES))
    return route_legs(route, engine.registry, engine.books, engine.cfg.venues,
                      margin_fraction=engine.cfg.trading.futures_margin_fraction)


def dislocate(sim, symbol: str, cheap: str = "mexc_spot", bps: int = 40, size: str = "0.05") -> tuple:
    """One published diff on ``cheap``: an ask ``bps`` below the other venue's best bid (its own
    bids at or above it removed). Returns what :func:`restore` needs."""
    rich = VENUES[1 - VENUES.index(cheap)]
    cv, rv = sim.venue(cheap), sim.venue(rich)
    inst = cv.instrument(symbol)
    best_bid = rv.true_book(symbol)[0][0][0]
    ask = (best_bid * (1 - Decimal(bps) / 10000)).quantize(inst.tick, rounding=ROUND_DOWN)
    removed = [(p, q) for p, q in cv.true_book(symbol)[0] if p >= ask]
    cv.publish_change(symbol, bids=[(inst.ticks_of(p), 0) for p, _ in removed],
                      asks=[(inst.ticks_of(ask), inst.steps_of(Decimal(size)))])
    return cv, inst, symbol, removed, ask


def restore(undo: tuple) -> None:
    """The market before :func:`dislocate` (paper fills take nothing from the simulator's book)."""
    cv, inst, symbol, removed, ask = undo
    cv.publish_change(symbol, bids=[(inst.ticks_of(p), inst.steps_of(q)) for p, q in removed],
                      asks=[(inst.ticks_of(ask), 0)])


async def synced(engine, sim, symbol: str) -> None:
    """The node's books of ``symbol`` in step with the simulator's."""
    await wait_for(lambda: all(engine.books[(v, symbol)].in_sync
                               and engine.books[(v, symbol)].last_id == sim.venue(v).book(symbol).last_id
                               for v in VENUES), 10, "books in step with the simulator")


def results_of(ex, route: str) -> list:
    return [r for r in ex.results if r.route == route]


async def scrape(node) -> str:
    url = next(c.server.url for c in node.components if c.name == "metrics")
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/metrics") as r:
            assert r.status == 200
            return await r.text()


def test_a_route_wired_at_run_time_trades_and_an_unwired_one_stops_after_its_trade_in_flight(tmp_path):
    node = Node(load_config_text(YAML % {"audit": tmp_path / "audit.jsonl"}), duration=None)

    async def main():
        runner = asyncio.get_running_loop().create_task(node.run())
        ctx = node.context
        await wait_for(lambda: ctx.engine is not None and ctx.engine.executor is not None
                       and ctx.engine.executor.started and ctx.engine.books_in_sync() == (4, 4), 30, "the node")
        engine, sim = ctx.engine, ctx.sim
        ex, risk = engine.executor, engine.risk
        sim.pause()
        await ex.refresh_balances()
        seen = {}
        engine.opportunity_taps.append(lambda opps: seen.update((o.route, o) for o in opps))
        out = {"caps_before": dict(engine.arb.balances()), "routes_before": engine.wired_routes}

        # -- wired at run time: caps for its new asset, then a trade
        legs, rules = legs_of(engine, ETH)
        eth_book = engine.books[("mexc_spot", ETH)]
        eth_book.mark_in_sync(False)                   # as a new listing's book, still syncing
        engine.wire_route("eth", ETH, legs, rules)
        out["caps_after"] = dict(engine.arb.balances())
        out["risk_while_syncing"] = (risk.refresh(), engine.routed_books.pending)
        eth_book.mark_in_sync(True)
        undo = dislocate(sim, ETH)
        await wait_for(lambda: results_of(ex, "eth") and ex.inflight == 0, 10, "the eth trade")
        out["first"] = results_of(ex, "eth")[0]
        restore(undo)
        await synced(engine, sim, ETH)
        eth_book.mark_in_sync(False)                   # a routed book out of sync halts trading ...
        out["halted_while_routed"] = risk.refresh()
        eth_book.mark_in_sync(True)
        out["active_again"] = risk.refresh()

        # -- unwired with a trade in flight
        for v in VENUES:
            ex.gateways[v].latency_ms = 400
        await ex.refresh_balances()
        undo = dislocate(sim, ETH)
        await wait_for(lambda: ex.inflight == 1, 5, "the second eth trade in flight")
        n_eth = len(results_of(ex, "eth"))
        engine.unwire_route("eth")
        out["wired_after"] = engine.wired_routes
        out["releasing"] = ex.releasing("eth")
        out["late_submit"] = ex.submit(seen["eth"])    # an opportunity of it arriving late: skipped
        eth_book.mark_in_sync(False)                   # ... no longer once its route is gone
        out["risk_after_unwire"] = risk.refresh()
        eth_book.mark_in_sync(True)
        await wait_for(lambda: len(results_of(ex, "eth")) > n_eth and ex.inflight == 0, 10, "the trade in flight")
        out["in_flight"] = results_of(ex, "eth")[-1]
        out["released"] = (ex.releasing("eth"), ETH in ex.gateways["mexc_spot"].books,
                           ("mexc_spot", ETH) in ex.rules)
        restore(undo)
        await synced(engine, sim, ETH)
        for v in VENUES:
            ex.gateways[v].latency_ms = 2
        n_eth = len(results_of(ex, "eth"))
        await ex.refresh_balances()
        dislocate(sim, ETH)                            # no route reads it now
        await synced(engine, sim, ETH)
        dislocate(sim, SYM, size="0.02")               # the configured route still trades
        await wait_for(lambda: results_of(ex, "btc") and ex.inflight == 0, 10, "the btc trade")
        out["eth_after"] = len(results_of(ex, "eth")) - n_eth
        out["btc"] = results_of(ex, "btc")[0]
        out["metrics"] = await scrape(node)
        out["skipped"] = dict(ex.skipped)
        node.request_stop()
        await asyncio.wait_for(runner, 30)
        out["summary"] = engine.summary
        out["positions"] = {r["route"] for r in engine.positions.summary_rows()}
        return out

    out = run(main())
    assert out["routes_before"] == ["btc"]
    assert ("mexc_spot", "ETH") not in out["caps_before"] and out["caps_after"][("mexc_spot", "ETH")] == Decimal(5)
    assert out["risk_while_syncing"] == ("active", [("mexc_spot", ETH)])
    assert out["first"].status == "done" and out["first"].buy_filled > 0
    assert out["halted_while_routed"] == "halted" and out["active_again"] == "active"
    assert out["wired_after"] == ["btc"] and out["releasing"] is True and out["late_submit"] is None
    assert out["risk_after_unwire"] == "active"
    assert out["in_flight"].status == "done" and out["in_flight"].residual == 0
    assert out["released"] == (False, False, False)
    assert out["eth_after"] == 0 and out["btc"].status == "done"
    assert out["skipped"].get("route_removed") == 1
    text = out["metrics"]                            # the removed route's series stay, and stop
    assert 'cexnode_trades_total{route="eth",status="done"} 2.0' in text
    assert 'cexnode_trades_total{route="btc",status="done"} 1.0' in text
    assert 'cexnode_realised_pnl{route="eth"}' in text
    assert out["positions"] >= {"eth", "btc"}
    rows = [ln.split()[0] for ln in out["summary"] if ln.split() and ln.split()[0] in ("eth", "btc")]
    assert set(rows) == {"eth", "btc"}
    assert node.exit_code == 0


def test_live_route_unwired_with_a_trade_in_flight_then_wired_again(tmp_path, monkeypatch):
    """Live orders at the simulator: the route is unwired while its trade waits for Gate's answer;
    the trade still ends with every order reconciled, nothing trades meanwhile, and the route
    wired again trades again."""
    async def main():
        async with Live(tmp_path, monkeypatch) as lv:
            gate = lv.sim.venue("gateio_spot")
            await lv.ex.refresh_balances()
            gate.faults.order_delay(0.5)
            n0 = len(lv.ex.results)
            undo = lv.dislocate("mexc_spot")
            await wait_for(lambda: len(lv.sim_orders()) == 2, 5, "both orders at the venues")
            lv.engine.unwire_route("btc")
            releasing = lv.ex.releasing("btc")
            await wait_for(lambda: len(lv.ex.results) > n0 and lv.ex.inflight == 0, 15, "the trade to finish")
            res = lv.ex.results[n0]
            gate.faults.order_delay(0)
            await lv.synced()
            await lv.restore(undo)
            n1, o1 = len(lv.ex.results), lv.engine.opportunities
            undo = lv.dislocate("mexc_spot")         # no route: nothing trades
            await lv.synced()                        # (a trade would have started inside the book update)
            idle = (len(lv.ex.results) - n1, lv.engine.opportunities - o1, len(lv.sim_orders()))
            await lv.restore(undo)
            legs, rules = route_legs(types.SimpleNamespace(symbol=SYM, venues=["mexc_spot", "gateio_spot"]),
                                     lv.engine.registry, lv.engine.books, lv.engine.cfg.venues)
            lv.engine.wire_route("btc", SYM, legs, rules)
            again = await lv.trade("mexc_spot")
            return lv, releasing, res, idle, again

    lv, releasing, res, idle, again = run(main())
    check_end(lv)
    assert releasing is True
    assert res.status == "done" and res.residual == 0, res
    assert idle == (0, 0, 2)
    assert again.status == "done" and again.residual == 0, again

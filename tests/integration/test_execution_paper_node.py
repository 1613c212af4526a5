"""Execution wired the way the node wires it in paper mode: a YAML config (cexnode.config), the
log system writing the audit file, Books driven by updates, ArbEngine emitting, Executor.submit
from the book-update path, PaperGateways from ``build_paper_gateways``, metrics on a NodeMetrics.

Spot–spot and spot–perp routes; P&L against the opportunities; kill file; the periodic risk tick.
(The exchange-simulator variant of these checks belongs with the venue adapters.)"""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import orjson
from prometheus_client import generate_latest

from cexnode import log as clog
from cexnode._core.arb import ArbEngine
from cexnode._core.book import Book
from cexnode.config import load_config_text
from cexnode.execution import (Executor, LegRules, PositionBook, RiskManager, book_ages, build_paper_gateways,
                               venue_symbol)
from cexnode.metrics import NodeMetrics

D = Decimal
P, Q = 2, 6

YAML = """
log:
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: never}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT]}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT]}
  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT]}
arbitrage:
  min_profit: 0.5
  max_notional: 5000
  max_book_age_ms: 60000
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc-ss}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures], name: btc-sp}
risk:
  max_position: {BTC: 0.5}
  max_notional_per_trade: 5000
  route_cooldown_ms: 0
  kill_switch_file: "%(kill)s"
trading:
  mode: paper
  poll_interval_ms: 10
  order_timeout_ms: 500
  leg_deadline_ms: 1000
  paper:
    latency_ms: 1
    balances:
      mexc_spot: {USDT: 20000, BTC: 0.2}
      gateio_spot: {USDT: 20000, BTC: 0.2}
      gateio_futures: {USDT: 20000}
"""

VID = {"mexc_spot": 0, "gateio_spot": 1, "gateio_futures": 2}


def m(x, s):
    return int(D(x).scaleb(s))


class Node:
    def __init__(self, tmp_path):
        self.kill = tmp_path / "KILL"
        self.cfg = load_config_text(YAML % {"audit": tmp_path / "audit.jsonl", "kill": self.kill})
        self.books = {v: Book(0 if v != "gateio_futures" else 1, VID[v]) for v in VID}
        a = self.cfg.arbitrage
        self.arb = ArbEngine(min_profit=a.min_profit, max_notional=a.max_notional, max_book_age_ms=a.max_book_age_ms)
        rules = {}
        for r in a.routes:
            legs = []
            for v in r.venues:
                fee = getattr(self.cfg.venues, v).taker_fee
                inst = dict(tick=1, step=1, min_qty=0, min_notional=0, price_scale=P)
                legs.append(dict(venue=v, book=self.books[v], taker_fee=fee, tick=1, step=1))
                rules[(v, venue_symbol(v, r.symbol))] = LegRules.from_instrument(inst, fee)
            self.arb.add_route(r.name, r.symbol, P, Q, legs)
        self.gws = build_paper_gateways(self.cfg, {v: {venue_symbol(v, "BTC/USDT"): b} for v, b in self.books.items()})
        self.positions = PositionBook()
        self.risk = RiskManager(self.cfg.risk, self.positions,
                                book_ages_ms=book_ages({(v, venue_symbol(v, "BTC/USDT")): b
                                                        for v, b in self.books.items()}))
        self.ex = Executor(gateways=self.gws, risk=self.risk, positions=self.positions, trading=self.cfg.trading,
                           rules=rules)
        self.tasks = []

    def update(self, venue, bids, asks):
        """A book update as the feed applies it, then the engine's on-update path."""
        b = self.books[venue]
        now = time.time_ns()
        b.py_apply([(m(p, P), m(q, Q)) for p, q in bids], [(m(p, P), m(q, Q)) for p, q in asks], full=True,
                   exch_ts_ms=now // 1_000_000, recv_ns=now)
        b.mark_in_sync(True)
        opps = self.arb.evaluate(b, now)
        for o in opps or ():
            t = self.ex.submit(o)
            if t is not None:
                self.tasks.append((o, t))
        return opps

    async def __aenter__(self):
        self.ls = clog.setup(self.cfg.log)
        await self.ls.start()
        self.ex.start()
        return self

    async def __aexit__(self, *exc):
        await self.ex.stop()
        await self.ls.stop()


def events(path):
    return [r for r in (orjson.loads(x) for x in open(path, "rb").read().splitlines()) if "event" in r]


def test_paper_node_spot_spot_and_spot_perp(tmp_path):
    node = Node(tmp_path)

    async def main():
        async with node:
            node.update("gateio_futures", [("64990", "5")], [("65010", "5")])
            node.update("gateio_spot", [("64995", "5")], [("65005", "5")])
            assert node.update("mexc_spot", [("64990", "5")], [("65000", "5")]) is None
            # mexc dislocates down: buy mexc, sell gate (spot-spot)
            node.update("mexc_spot", [("64800", "5")], [("64810", "0.05")])
            o1, t1 = node.tasks[-1]
            r1 = await t1
            # perp dislocates up: buy gate spot, sell the perp (spot-perp)
            node.update("gateio_futures", [("65200", "0.04")], [("65210", "5")])
            o2, t2 = node.tasks[-1]
            r2 = await t2
            return o1, r1, o2, r2

    o1, r1, o2, r2 = asyncio.run(asyncio.wait_for(main(), 30))
    assert (o1.route, o1.buy_venue, o1.sell_venue) == ("btc-ss", "mexc_spot", "gateio_spot")
    assert (o2.route, o2.buy_venue, o2.sell_venue) == ("btc-sp", "gateio_spot", "gateio_futures")
    for o, r in ((o1, r1), (o2, r2)):
        assert r.status == "done" and r.buy_filled == r.sell_filled == o.qty
        assert abs(r.realised_pnl - o.net_profit) < D("1e-60")
    assert node.positions.position("BTC") == 0
    assert abs(node.positions.realised() - o1.net_profit - o2.net_profit) < D("1e-60")
    fut = node.gws["gateio_futures"]
    assert fut.free("BTC") == -o2.qty                         # the perp is short
    ev = events(tmp_path / "audit.jsonl")
    reqs = [o for e in ev if e["event"] == "trade_start" for o in e["data"]["orders"]]
    assert {r["symbol"] for r in reqs} == {"BTC/USDT", "BTC/USDT:USDT"}
    assert len([e for e in ev if e["event"] == "order_final"]) == 4
    m_ = NodeMetrics()
    node.ex.register_metrics(m_)
    text = generate_latest(m_.registry).decode()
    assert 'cexnode_trades_total{route="btc-sp",status="done"} 1.0' in text
    assert 'cexnode_orders_total{result="filled",venue="gateio_futures"} 1.0' in text


def test_paper_node_kill_file_and_stale_books_seen_by_the_ticker(tmp_path):
    node = Node(tmp_path)
    node.ex.risk_refresh_s = 0.02

    async def main():
        async with node:
            node.update("gateio_spot", [("64995", "5")], [("65005", "5")])
            node.update("gateio_futures", [("64990", "5")], [("65010", "5")])
            node.update("mexc_spot", [("64990", "5")], [("65000", "5")])
            node.kill.write_text("")
            for _ in range(100):
                await asyncio.sleep(0.01)
                if node.risk.state == "halted":
                    break
            halted = node.risk.state
            n = len(node.tasks)
            node.update("mexc_spot", [("64800", "5")], [("64810", "0.05")])   # an opportunity: skipped
            skipped = dict(node.ex.skipped)
            node.kill.unlink()
            node.books["gateio_futures"].mark_in_sync(False)
            for _ in range(100):
                await asyncio.sleep(0.01)
                if node.risk.reasons == {"stale_data"}:
                    break
            reasons = set(node.risk.reasons)
            return halted, n, skipped, reasons

    halted, n, skipped, reasons = asyncio.run(asyncio.wait_for(main(), 30))
    assert halted == "halted" and n == 0 and len(node.tasks) == 0
    assert skipped == {"risk_halted": 1}
    assert reasons == {"stale_data"}


def test_paper_node_spot_perp_perp_leg_fails_spot_unwound(tmp_path):
    node = Node(tmp_path)

    async def main():
        async with node:
            node.update("gateio_spot", [("64995", "5")], [("65005", "5")])
            node.update("mexc_spot", [("64990", "5")], [("65000", "5")])
            node.update("gateio_futures", [("64990", "5")], [("65010", "5")])
            # the perp jumps up; its book drops out of sync right after the orders were started
            # (submit() starts them synchronously; paper matches them at the next loop step)
            b = node.books["gateio_futures"]
            now = time.time_ns()
            b.py_apply([(m("65200", P), m("0.02", Q))], [(m("65210", P), m("5", Q))], full=True,
                       exch_ts_ms=now // 1_000_000, recv_ns=now)
            b.mark_in_sync(True)
            opps = node.arb.evaluate(b, time.time_ns())
            assert opps and opps[0].sell_venue == "gateio_futures"
            await node.ex.refresh_balances()         # fresh: the orders start inside submit()
            task = node.ex.submit(opps[0])
            b.mark_in_sync(False)
            r = await task
            return opps[0], r, node.risk.state

    o, r, state = asyncio.run(asyncio.wait_for(main(), 30))
    assert r.status == "unwound" and r.buy_filled == o.qty and r.sell_filled == 0
    assert state == "halted" and node.risk.reasons == {"stale_data"}   # new trades wait for the book
    assert node.positions.position("BTC") == 0
    fut_orders = [x for x in r.orders if x.venue == "gateio_futures"]
    assert fut_orders and all(x.symbol == "BTC/USDT:USDT" and x.reason == "book_unavailable" for x in fut_orders)
    spot = node.gws["gateio_spot"]
    assert spot.free("BTC") == D("0.2")                     # bought 0.02, sold it back (loss 2.8 < cap 5)
    assert -r.realised_pnl <= node.cfg.trading.hedge_loss_cap

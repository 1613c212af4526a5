"""One node in ``trading.mode: live`` against its embedded simulator (``Live``), the invariants every
live scenario ends with (``check_end``) and bounded waits. Shared by
tests/integration/test_live_trading.py and tests/integration/test_order_path.py."""
from __future__ import annotations

import asyncio
import time
from decimal import ROUND_DOWN, Decimal

import aiohttp

from audit_check import audit_events, check_audit, requested
from cexnode.config import load_config_text
from cexnode.node import Node

KEY, SECRET = "live-test-key", "live-test-secret-value"
SYM = "BTC/USDT"
VENUES = ("mexc_spot", "gateio_spot")
MAX_POS = Decimal("0.5")

YAML = """
node: {name: live, status_interval_s: 0, start_timeout_s: 20}
log:
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: always}
metrics: {port: 0}
sim:
  enabled: true
  seed: 3
  update_interval_ms: 5
  dislocation_probability: 0
  mid_prices: {BTC/USDT: 65000}
  balances:
    mexc_spot: {USDT: %(mexc_usdt)s, BTC: 2}
    gateio_spot: {USDT: 100000, BTC: 2}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT], api_key: "${CX_LT_KEY}", api_secret: "${CX_LT_SECRET}"}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT], api_key: "${CX_LT_KEY}", api_secret: "${CX_LT_SECRET}"}
arbitrage:
  min_profit: 0.01
  size_to_balances: %(size_to_balances)s
  max_notional: 2000
  max_book_age_ms: 600000
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc}
risk:
  max_position: {BTC: %(max_pos)s}
  max_notional_per_trade: 5000
  max_open_exposure: 100000
  daily_loss_limit: 1000
  route_cooldown_ms: 0
  stale_data_halt_ms: %(stale_ms)s
  error_rate_threshold: 0.01
  min_orders_for_breaker: %(min_orders)s
  kill_switch_file: "%(kill)s"
trading:
  mode: live
  order_timeout_ms: 1500
  leg_deadline_ms: 2000
  not_found_grace_ms: 300
  poll_interval_ms: 50
  max_balance_age_ms: 5000
  hedge_loss_cap: 50
"""


async def wait_for(pred, timeout: float, what: str, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(step)


class Live:
    """One node in live mode against its embedded simulator, the generator paused after the books
    synced (only the test moves the market)."""

    def __init__(self, tmp_path, monkeypatch, **kw):
        monkeypatch.setenv("CX_LT_KEY", KEY)
        monkeypatch.setenv("CX_LT_SECRET", SECRET)
        self.audit_path = tmp_path / "audit.jsonl"
        self.kill_path = tmp_path / "KILL"
        params = dict(audit=self.audit_path, kill=self.kill_path, mexc_usdt=100000, max_pos=MAX_POS,
                      stale_ms=600000, min_orders=20, size_to_balances="true")
        params.update(kw)
        self.max_pos = Decimal(str(params["max_pos"]))
        self.node = Node(load_config_text(YAML % params), duration=None)
        self.initial = {("mexc_spot", "USDT"): Decimal(params["mexc_usdt"]), ("mexc_spot", "BTC"): Decimal(2),
                        ("gateio_spot", "USDT"): Decimal(100000), ("gateio_spot", "BTC"): Decimal(2)}

    async def __aenter__(self) -> "Live":
        self.runner = asyncio.get_running_loop().create_task(self.node.run())
        ctx = self.node.context
        await wait_for(lambda: ctx.engine is not None and ctx.engine.executor is not None
                       and ctx.engine.executor.started and ctx.engine.books_in_sync() == (2, 2)
                       and all(a.gateway is not None and a.gateway.started for a in ctx.engine.adapters.values()),
                       30, "the live node")
        self.engine, self.sim = ctx.engine, ctx.sim
        self.ex, self.risk = self.engine.executor, self.engine.risk
        for v, a in self.engine.adapters.items():            # every connection stays on the loopback
            assert a.gateway.rest_url.startswith("http://127.0.0.1:") and a.gateway.ws_url.startswith("ws://127.0.0.1:"), v
        assert self.metrics_url().startswith("http://127.0.0.1:")
        self.sim.pause()
        await self.synced()
        await self.ex.refresh_balances()
        return self

    async def __aexit__(self, *exc) -> None:
        self.node.request_stop()
        await asyncio.wait_for(self.runner, 30)

    async def synced(self) -> None:
        books = {v: self.engine.books[(v, SYM)] for v in VENUES}
        await wait_for(lambda: all(books[v].in_sync and books[v].last_id == self.sim.venue(v).book(SYM).last_id
                                   for v in VENUES), 10, "books in step with the simulator")

    def dislocate(self, cheap: str, bps: int = 40, size: str = "0.01") -> tuple:
        """One published diff on ``cheap``: an ask ``bps`` below the other venue's best bid (its own
        bids at or above it removed). Returns what :meth:`restore` needs."""
        rich = VENUES[1 - VENUES.index(cheap)]
        cv, rv = self.sim.venue(cheap), self.sim.venue(rich)
        inst, rinst = cv.instrument(SYM), rv.instrument(SYM)
        best_bid, best_size = rv.true_book(SYM)[0][0]
        ask = (best_bid * (1 - Decimal(bps) / 10000)).quantize(inst.tick, rounding=ROUND_DOWN)
        removed = [(p, s) for p, s in cv.true_book(SYM)[0] if p >= ask]
        cv.publish_change(SYM, bids=[(inst.ticks_of(p), 0) for p, _ in removed],
                          asks=[(inst.ticks_of(ask), inst.steps_of(Decimal(size)))])
        return cv, inst, removed, ask, rv, rinst, best_bid, best_size

    async def restore(self, undo: tuple) -> None:
        cv, inst, removed, ask, rv, rinst, best_bid, best_size = undo
        left = [(inst.ticks_of(ask), 0)] if any(p == ask for p, _ in cv.true_book(SYM)[1]) else []
        cv.publish_change(SYM, bids=[(inst.ticks_of(p), inst.steps_of(s)) for p, s in removed], asks=left)
        rv.publish_change(SYM, bids=[(rinst.ticks_of(best_bid), rinst.steps_of(best_size))])
        await self.synced()

    async def trade(self, cheap: str, **kw):
        """Dislocate, wait for the trade it causes to finish, restore; the TradeResult."""
        await self.ex.refresh_balances()       # fresh (MEXC: 1 account request per 0.56 s) before the quotes move
        n0 = len(self.ex.results)
        undo = self.dislocate(cheap, **kw)
        await wait_for(lambda: len(self.ex.results) > n0 and self.ex.inflight == 0, 15, "the trade to finish")
        # the books take in what the trade consumed before the market moves back: a private fill can
        # arrive before the public diff that removes the level it took, and with the route cooldown
        # at 0 here, the restore's diff on the other venue would meet the stale level and trade again
        await self.synced()
        await self.restore(undo)
        return self.ex.results[n0]

    def metrics_url(self) -> str:
        return next(c.server.url for c in self.node.components if c.name == "metrics")

    async def scrape(self) -> str:
        async with aiohttp.ClientSession() as s:
            async with s.get(self.metrics_url() + "/metrics") as r:
                assert r.status == 200
                return await r.text()

    def sim_orders(self) -> dict:
        """client id -> (venue, SimOrder) of every order the simulator accepted from our account."""
        out = {}
        for v in VENUES:
            for (key, cid), o in self.sim.trading.engine(v).by_client.items():
                if key == KEY:                 # Gate keeps the order's text: "t-" + our client id
                    out[cid[2:] if v.startswith("gateio") and cid.startswith("t-") else cid] = (v, o)
        return out


def check_end(lv: Live) -> list[dict]:
    """The invariants every scenario ends with (after the node stopped): clean exit, nothing
    unreconciled, no credential in the audit log, the audit complete (tests/audit_check.py), every
    order at the venue requested in the audit and its final state there == the audited one, every
    audited order the venue does not know refused, positions within ``risk.max_position``."""
    assert lv.node.exit_code == 0
    assert not lv.ex.unreconciled
    raw = lv.audit_path.read_bytes()
    assert SECRET.encode() not in raw and KEY.encode() not in raw
    ev = audit_events(lv.audit_path)
    finals = check_audit(ev)
    reqs = requested(ev)
    venue_of = {o["client_id"]: o["venue"] for e in ev if e["event"] == "trade_start" for o in e["data"]["orders"]}
    venue_of.update({e["data"]["client_id"]: e["data"]["venue"] for e in ev if e["event"] == "order_request"})
    sim_orders = lv.sim_orders()
    assert set(sim_orders) <= set(reqs), "orders at the venue the audit never requested"
    for cid, f in finals.items():
        filled = Decimal(f["filled_qty"])
        if cid in sim_orders:
            v, o = sim_orders[cid]
            inst = lv.sim.venue(v).instrument(o.symbol)
            assert v == venue_of[cid] == f["venue"] and inst.size(o.filled) == filled, (cid, f, o)
            assert not o.is_open
            assert f["status"] == ("filled" if o.filled == o.qty else "cancelled"), (cid, f["status"], o)
        else:                                   # refused by the venue: nothing was placed
            assert f["status"] == "rejected" and filled == 0, (cid, f)
    for asset, pos in lv.engine.positions.positions().items():
        assert abs(pos) <= lv.max_pos, (asset, pos)
    # what the executor booked is what the venues did to the accounts, to the last unit
    deltas = lv.engine.positions.venue_deltas
    for (venue, asset), start in lv.initial.items():
        bal = lv.sim.trading.account(venue, KEY).balances[asset]
        assert bal.locked == 0 and bal.available == start + deltas.get((venue, asset), 0), (venue, asset, bal)
    assert sum(lv.engine.adapters[v].gateway.placed for v in VENUES) == len(finals)
    return ev


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))

"""The executor's parts (cexnode/execution: AuditWriter, BalanceBook, LegTracker, ResidualCloser)
composed as ``Executor`` composes them, over PaperGateways on real Books, auditing to a file: the
rig the parts' own tests (test_execution_legs, test_execution_hedging) share."""
from __future__ import annotations

import asyncio
import time
import types
from decimal import Decimal

import orjson

from cexnode import log as clog
from cexnode._core.book import Book
from cexnode.config import RiskConfig, TradingConfig
from cexnode.execution import PaperGateway, PositionBook, RiskManager
from cexnode.execution.audit import AuditWriter
from cexnode.execution.balances import BalanceBook
from cexnode.execution.gateway import Side
from cexnode.execution.hedging import ResidualCloser
from cexnode.execution.legs import LegRules, LegTracker, ioc_request
from cexnode.log import get_logger

D = Decimal
P, Q = 2, 4
SYM = "BTC/USDT"
ROUTE = "BTC/USDT mexc-gate"


def m(x, s):
    return int(D(x).scaleb(s))


def paper_book(venue_id, asks=(("100", "1"),), bids=(("99", "1"),)):
    b = Book(0, venue_id)
    now = time.time_ns()
    b.py_apply([(m(p, P), m(q, Q)) for p, q in bids], [(m(p, P), m(q, Q)) for p, q in asks], full=True,
               exch_ts_ms=now // 1_000_000, recv_ns=now)
    b.mark_in_sync(True)
    return b


class Opp:
    """The opportunity fields the residual closer reads."""

    def __init__(self, buy_venue="mexc_spot", sell_venue="gateio_spot"):
        self.route, self.symbol, self.buy_venue, self.sell_venue = ROUTE, SYM, buy_venue, sell_venue
        self.price_scale, self.qty_scale = P, Q


class Rig:
    """The parts as the executor composes them, over two paper venues (mexc_spot, gateio_spot:
    BTC/USDT asks 100, bids 99; fee 0.001; tick 0.01, step 0.0001), auditing to ``tmp_path``."""

    def __init__(self, tmp_path, *, latency_ms=1.0, venues=("mexc_spot", "gateio_spot"), **trading):
        self.audit_path = str(tmp_path / "audit.jsonl")
        self.gws = {v: PaperGateway(v, {SYM: paper_book(i + 1)}, latency_ms=latency_ms, fee_rate=D("0.001"),
                                    balances={"USDT": "10000", "BTC": "5"}) for i, v in enumerate(venues)}
        self.positions = PositionBook()
        self.risk = RiskManager(RiskConfig(max_position={"BTC": D(10)}, max_notional_per_trade=D(100000),
                                           max_open_exposure=D(100000), daily_loss_limit=D(100),
                                           error_rate_threshold=D("0.5"), error_window_s=300,
                                           min_orders_for_breaker=1000, stale_data_halt_ms=100000,
                                           route_cooldown_ms=0, kill_switch_file=None), self.positions)
        tr = dict(order_timeout_ms=150, leg_deadline_ms=300, poll_interval_ms=10, reconcile_timeout_ms=300,
                  not_found_grace_ms=100)
        tr.update(trading)
        self.trading = TradingConfig(**tr)
        log = get_logger("test.legs", ["execution", "trading"])
        self.audit = AuditWriter(log, self.risk)
        self.balances = BalanceBook(gateways=self.gws, trading=self.trading, log=log, clock_ns=time.time_ns)
        self.legs = LegTracker(gateways=self.gws, trading=self.trading, risk=self.risk, positions=self.positions,
                               balances=self.balances, audit=self.audit, log=log, clock_ns=time.time_ns)
        self.rules = {(v, SYM): LegRules(tick_m=1, step_m=1, taker_fee=D("0.001")) for v in venues}
        self.residuals = ResidualCloser(trading=self.trading, rules=self.rules, risk=self.risk, legs=self.legs,
                                        audit=self.audit, log=log, prefix="t")
        for gw in self.gws.values():
            gw.subscribe_orders(self.legs.on_order)

    def request(self, cid, venue="mexc_spot", side=Side.BUY, qty="0.5", price="100"):
        return ioc_request(cid, venue, SYM, side, m(qty, Q), m(price, P), Q, P, ROUTE, "entry")

    async def leg_sent(self, trade_id, req):
        """As the executor does it: the request audited ahead, then sent and answered."""
        self.audit.write("order_request", dict(req.audit_fields(), trade_id=trade_id))
        leg = self.legs.new(trade_id, req, "BTC", "USDT")
        await self.legs.send(leg)
        return leg

    async def entry(self, trade_id, venue, side, qty, price):
        """An entry leg sent, settled and finished (booked), as the executor's trade does it."""
        leg = await self.leg_sent(trade_id, ioc_request("e%d%s" % (trade_id, side.value[0]), venue, SYM, side,
                                                        m(qty, Q), m(price, P), Q, P, ROUTE, "entry"))
        await self.legs.settle(leg, leg.sent_ns + self.trading.leg_deadline_ms * 1_000_000)
        self.legs.finish(leg)
        return leg

    def set_book(self, venue, asks=(), bids=()):
        """Replace a paper venue's book (both sides)."""
        self.gws[venue].books[SYM] = paper_book(list(self.gws).index(venue) + 1, asks=asks, bids=bids)

    def events(self):
        with open(self.audit_path, "rb") as f:
            return [r for r in map(orjson.loads, f.read().splitlines()) if "event" in r]


def log_cfg(audit_path):
    ns = types.SimpleNamespace
    return ns(level="info", ring_capacity=1 << 14, flush_interval_ms=5, batch_size=1024, loggers={}, redact_keys=[],
              console=ns(enabled=False, level="warning", color="never"),
              file=ns(enabled=False, path="", level="debug", max_bytes=1 << 20, rotate_daily=False),
              audit=ns(path=audit_path, fsync="never"))


def run_logged(rig, body):
    async def main():
        ls = clog.setup(log_cfg(rig.audit_path))
        await ls.start()
        try:
            return await body()
        finally:
            rig.legs.cancel_background()
            await ls.stop()
    return asyncio.run(asyncio.wait_for(main(), 30))

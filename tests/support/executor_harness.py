"""The executor over two TEST-ONLY ScriptedVenues (tests/support/scripted_venue.py), shared by the
executor tests: tests/unit/test_execution_executor.py and tests/unit/test_balance_clock.py."""
from __future__ import annotations

import contextlib
from decimal import Decimal

from cexnode import log as clog
from cexnode.execution import Executor, LegRules, PositionBook, RiskManager
from support.scripted_venue import ScriptedVenue, audit_events, log_cfg, risk_cfg, trading_cfg

D = Decimal
FEE = D("0.001")
RULES = {("mexc_spot", "BTC/USDT"): LegRules(tick_m=1, step_m=1, taker_fee=FEE),
         ("gateio_spot", "BTC/USDT"): LegRules(tick_m=1, step_m=1, taker_fee=FEE)}


class H:
    """One executor over two scripted venues: A = mexc_spot (buy leg), B = gateio_spot (sell leg)."""

    def __init__(self, tmp_path, *, a_asks=(("100", "1"),), a_bids=(("99.9", "5"),), b_bids=(("101", "1"),),
                 b_asks=(("101.1", "5"),), a_bal=None, b_bal=None, risk=None, trading=None, book_ages=None):
        self.audit_path = str(tmp_path / "audit.jsonl")
        self.a = ScriptedVenue("mexc_spot", "BTC/USDT", asks=a_asks, bids=a_bids,
                               balances=a_bal or {"USDT": "10000", "BTC": "0"})
        self.b = ScriptedVenue("gateio_spot", "BTC/USDT", asks=b_asks, bids=b_bids,
                               balances=b_bal or {"USDT": "10000", "BTC": "1"})
        self.positions = PositionBook()
        self.risk = RiskManager(risk or risk_cfg(), self.positions, book_ages_ms=book_ages)
        self.ex = Executor(gateways={"mexc_spot": self.a, "gateio_spot": self.b}, risk=self.risk,
                           positions=self.positions, trading=trading or trading_cfg(), rules=RULES)

    def events(self):
        return audit_events(self.audit_path)


@contextlib.asynccontextmanager
async def started(h: H):
    """The audit log up and the executor started; a test using this stops the executor itself."""
    ls = clog.setup(log_cfg(h.audit_path))
    await ls.start()
    h.ex.start()
    try:
        yield h
    finally:
        await ls.stop()


@contextlib.asynccontextmanager
async def running(h: H):
    async with started(h):
        try:
            yield h
        finally:
            await h.ex.stop(timeout_s=5)

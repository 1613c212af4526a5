"""TEST-ONLY scriptable in-memory venue for the executor tests (NOT the exchange simulator).

``ScriptedVenue`` implements ``cexnode.execution.gateway.OrderGateway`` with real price-time
matching against an in-memory book (IOC orders take liquidity, which is removed), virtual
balances, a private-stream callback, and scripted faults per call: rejects, timeouts where the
venue did (or did not) receive the order, 5xx after processing, acks without a final state, lost
stream updates, failing queries and failing balance requests. The real simulator adapters come
later; until then this is what the state machine is exercised against.

Also holds the shared helpers of the execution tests (log-system set-up, config objects, an
Opportunity-shaped record). Its own tests are in tests/unit/test_execution_venue.py.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import time
import types
from decimal import Decimal

from audit_check import audit_events  # noqa: F401  (re-exported: the execution tests read the audit with it)
from cexnode.config import PaperConfig, RiskConfig, TradingConfig
from cexnode.execution.gateway import (Balance, GatewayError, OrderAck, OrderNotFound, OrderRequest, OrderState,
                                       OrderStatus, Outcome, Side)

D = Decimal


# ------------------------------------------------------------------------------------------------
# the scriptable venue

class ScriptedVenue:
    """In-memory venue with matching. ``script`` is a deque of per-``place`` actions (default
    ``"ok"``); see :meth:`place`. ``query_script`` / ``balance_script`` likewise."""

    def __init__(self, venue: str, symbol: str, *, bids=(), asks=(), balances=None, fee_rate=D("0.001"),
                 latency_s: float = 0.0):
        self.venue = venue
        self.symbol = symbol
        self.bids = [[D(p), D(q)] for p, q in bids]          # best first
        self.asks = [[D(p), D(q)] for p, q in asks]
        self.free = {a: D(v) for a, v in (balances or {}).items()}
        self.fee_rate = D(fee_rate)
        self.latency_s = latency_s
        self.orders: dict[str, OrderState] = {}
        self.script: collections.deque = collections.deque()
        self.query_script: collections.deque = collections.deque()
        self.balance_script: collections.deque = collections.deque()
        self.cancel_script: collections.deque = collections.deque()
        self.cbs: list = []
        self.bcbs: list = []
        self.placed: list[OrderRequest] = []
        self.queries = 0
        self.cancels = 0
        self.balance_calls = 0
        self._ids = itertools.count(1)
        self._pending_updates: list[OrderState] = []

    # -- matching --------------------------------------------------------------------------------
    def _match(self, req: OrderRequest) -> OrderState:
        base, quote = req.symbol.split(":")[0].split("/")
        qty, limit = req.qty, req.price
        buy = req.side is Side.BUY
        futures = self.venue.endswith("futures")
        if futures:
            need, asset = qty * limit * (1 + self.fee_rate), quote
        else:
            need, asset = (qty * limit * (1 + self.fee_rate), quote) if buy else (qty, base)
        if self.free.get(asset, D(0)) < need:
            return OrderState(client_id=req.client_id, venue=self.venue, symbol=req.symbol, side=req.side,
                              status=OrderStatus.REJECTED, qty=qty, reason="insufficient_balance", ts_ns=time.time_ns())
        book = self.asks if buy else self.bids
        remaining, cost = qty, D(0)
        while remaining > 0 and book:
            px, q = book[0]
            if (px > limit) if buy else (px < limit):
                break
            t = min(q, remaining)
            cost += t * px
            remaining -= t
            book[0][1] -= t
            if book[0][1] == 0:
                book.pop(0)
        filled = qty - remaining
        fee = cost * self.fee_rate
        if filled:
            sign = 1 if buy else -1
            self.free[base] = self.free.get(base, D(0)) + sign * filled
            self.free[quote] = self.free.get(quote, D(0)) - sign * cost - fee
        status = OrderStatus.FILLED if remaining == 0 else OrderStatus.CANCELLED
        return OrderState(client_id=req.client_id, venue=self.venue, symbol=req.symbol, side=req.side, status=status,
                          qty=qty, filled_qty=filled, avg_price=(cost / filled) if filled else None, fee=fee,
                          fee_asset=quote, order_id="S%d" % next(self._ids), ts_ns=time.time_ns())

    def _emit(self, st: OrderState) -> None:
        for cb in list(self.cbs):
            cb(st)

    # -- OrderGateway ----------------------------------------------------------------------------
    async def place(self, req: OrderRequest) -> OrderAck:
        """Actions: ``ok``; ``reject`` (venue refuses); ``hang_filled`` (venue executes, the answer
        never comes: ambiguous by timeout); ``hang_lost`` (the request never arrives, no answer);
        ``5xx_filled`` (executed, then HTTP 500); ``lost_error`` (transport error, not executed);
        ``ack_new`` (answer NEW; the final state comes only on the stream); ``ack_new_silent``
        (answer NEW, the stream update is lost: only a query tells); ``no_stream`` (normal answer,
        no stream update)."""
        action = self.script.popleft() if self.script else "ok"
        self.placed.append(req)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if action == "reject":
            st = OrderState(client_id=req.client_id, venue=self.venue, symbol=req.symbol, side=req.side,
                            status=OrderStatus.REJECTED, qty=req.qty, reason="scripted_reject")
            return OrderAck(client_id=req.client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=st,
                            reason="scripted_reject", error_code="400")
        if action in ("hang_lost", "lost_error"):
            if action == "lost_error":
                raise GatewayError("connection reset", ambiguous=True)
            await asyncio.sleep(3600)
        st = self._match(req)
        if st.status is not OrderStatus.REJECTED:
            self.orders[req.client_id] = st
        if action == "hang_filled":          # executed; answer and stream update both lost
            await asyncio.sleep(3600)
        if action == "5xx_filled":
            raise GatewayError("HTTP 502 Bad Gateway", ambiguous=True, code="502")
        if action in ("ack_new", "ack_new_silent"):
            new = dataclasses.replace(st, status=OrderStatus.NEW, filled_qty=D(0), avg_price=None, fee=D(0))
            if action == "ack_new":
                asyncio.get_running_loop().call_later(0.02, self._emit, st)
            return OrderAck(client_id=req.client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=new,
                            order_id=st.order_id)
        if action != "no_stream" and st.status is not OrderStatus.REJECTED:
            asyncio.get_running_loop().call_soon(self._emit, st)
        return OrderAck(client_id=req.client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=st,
                        order_id=st.order_id, reason=st.reason)

    async def cancel(self, symbol: str, client_id: str) -> OrderAck:
        self.cancels += 1
        if (self.cancel_script.popleft() if self.cancel_script else "ok") == "error":
            raise GatewayError("HTTP 503", ambiguous=True, code="503")
        st = self.orders.get(client_id)
        if st is None:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, reason="not_found")
        return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=st)

    async def query(self, symbol: str, client_id: str) -> OrderState:
        """Actions: ``ok``; ``error`` (GatewayError); ``hang`` (no answer)."""
        self.queries += 1
        action = self.query_script.popleft() if self.query_script else "ok"
        if action == "error":
            raise GatewayError("HTTP 503", ambiguous=True, code="503")
        if action == "hang":
            await asyncio.sleep(3600)
        st = self.orders.get(client_id)
        if st is None:
            raise OrderNotFound()
        return st

    async def balances(self) -> dict[str, Balance]:
        self.balance_calls += 1
        action = self.balance_script.popleft() if self.balance_script else "ok"
        if action == "error":
            raise GatewayError("HTTP 503", ambiguous=False, code="503")
        now = time.time_ns()
        return {a: Balance(asset=a, free=v, ts_ns=now) for a, v in self.free.items()}

    def subscribe_orders(self, cb):
        self.cbs.append(cb)
        return lambda: self.cbs.remove(cb)

    def subscribe_balances(self, cb):
        self.bcbs.append(cb)
        return lambda: self.bcbs.remove(cb)


# ------------------------------------------------------------------------------------------------
# shared helpers

@dataclasses.dataclass
class Opp:
    """Opportunity-shaped record (the fields the executor reads from cexnode._core.arb.Opportunity)."""
    route: str
    symbol: str
    buy_venue: str
    sell_venue: str
    qty_m: int
    buy_price_m: int
    sell_price_m: int
    price_scale: int = 2
    qty_scale: int = 4
    t: int = 0
    net_profit: Decimal = D(0)


def log_cfg(audit_path: str):
    ns = types.SimpleNamespace
    return ns(level="info", ring_capacity=1 << 14, flush_interval_ms=5, batch_size=1024, loggers={}, redact_keys=[],
              console=ns(enabled=False, level="warning", color="never"),
              file=ns(enabled=False, path="", level="debug", max_bytes=1 << 20, rotate_daily=False),
              audit=ns(path=audit_path, fsync="never"))


def risk_cfg(**kw) -> RiskConfig:
    base = dict(max_position={"BTC": D("1")}, max_notional_per_trade=D("100000"), max_open_exposure=D("100000"),
                daily_loss_limit=D("100"), error_rate_threshold=D("0.01"), error_window_s=300,
                min_orders_for_breaker=20, stale_data_halt_ms=10000, route_cooldown_ms=0, kill_switch_file=None)
    base.update(kw)
    return RiskConfig(**base)


def trading_cfg(**kw) -> TradingConfig:
    base = dict(order_timeout_ms=150, leg_deadline_ms=400, max_balance_age_ms=1000, hedge_loss_cap=D("5"),
                poll_interval_ms=20, reconcile_timeout_ms=600, not_found_grace_ms=100, hedge_attempts=3,
                paper=PaperConfig(latency_ms=1.0))
    base.update(kw)
    return TradingConfig(**base)

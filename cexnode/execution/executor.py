"""The executor: from an Opportunity to a settled trade (DESIGN §5).

``Executor.submit(opp)`` is called by the engine the moment the arbitrage code emits (no timer).
When the balances are fresh, steps 1–3 run synchronously inside that call — both ``place`` calls
are started before it returns, and a live gateway (``eager_place``) has written its order by then
(:func:`~cexnode.execution.eager.start_eager`) — and the rest continues in a task; otherwise the
task first refreshes the balances (and drops the opportunity if that took longer than
``max_opportunity_age_ms``). ``await execute(opp)`` runs all of it in the caller's task.
Between trades, :meth:`Executor.warm` dry-runs steps 1–3 every ``trading.warm_interval_ms``
(nothing sent, audited or counted) so that the next trade does not run from cold CPU caches.

1. **Risk** (``RiskManager.check_trade``): state, route cooldown, notional, positions, exposure.
2. **Balances fresh** (DESIGN §5): pushed by the venue or fetched within ``max_balance_age_ms``,
   else both venues are asked concurrently (REST); ``RiskManager.check_balances``. A venue's
   cached balances are invalidated the moment an order is sent there, and what a trade in flight
   takes is reserved (less free for the trades checked meanwhile) until it has ended.
3. **Both legs concurrently** as IOC limit orders at the opportunity's leg prices.
4. **Fills** from the private stream (``subscribe_orders``); while a leg has no final state the
   venue is queried every ``poll_interval_ms``. An AMBIGUOUS outcome (timeout, disconnect, 5xx)
   is reconciled by querying — never assumed; a venue that still does not know the order
   ``not_found_grace_ms`` after it was sent is taken as never placed. At ``leg_deadline_ms`` an
   open leg is cancelled and reconciled for up to ``reconcile_timeout_ms``; an order still unknown
   then goes to a background reconciler and risk enters ``reducing`` (``unreconciled``).
5. **Two-leg outcome**: both filled → done. A residual (buy filled ≠ sell filled) is closed with
   IOC orders, hedge first (the other venue, completing the arbitrage), then unwind (reversing
   on the filled leg's venue), alternating for ``hedge_attempts`` orders; each order's limit price
   is the worst price at which the residual's total loss (vs. its entry price, fees included)
   stays within what is left of ``hedge_loss_cap``. What cannot be closed is reported
   (``residual_open``, an error log line) and stays in the positions, where it counts toward
   ``risk.max_position`` / ``risk.max_open_exposure`` (beyond them risk is ``reducing``).

Audit: every order event is written with ``Logger.audit`` (synchronous, durable per
``log.audit.fsync``) *before* the executor acts on it; if the audit log cannot be written, risk
halts (``audit``) and nothing new is sent. Events (``data`` carries ``client_id`` where it is
about one order): ``executor_start``; ``trade_rejected`` (reason, detail); ``trade_start`` (the
opportunity and BOTH entry order requests in one record, written before they leave; with
``fsync: always`` its fdatasync runs off the loop while they are in flight — ``sync="behind"`` —
and every later record is synced before it is acted on, which makes this one durable too);
``order_request`` (hedge/unwind orders); ``order_ack`` (outcome definitive/ambiguous, the venue's
state, round trip); ``order_update`` (private stream; ``known`` false for orders no longer
tracked); ``order_fill`` (filled quantity grew); ``reconcile_query`` / ``reconcile_result``;
``cancel_request`` / ``cancel_ack``; ``order_final`` (exactly once per order: final status and
result); ``fill_booked`` (what went into the PositionBook); ``hedge_plan``, ``hedge_blocked``,
``hedge_impossible``, ``residual_dust``, ``residual_open``; ``unreconciled``,
``reconciled_late``, ``late_fill``; ``trade_done``; ``trade_error``, ``trade_cancelled``,
``stop_unreconciled``; and ``risk_state`` from the RiskManager.

Metrics (attributes read by the collector; see :meth:`Executor.register_metrics`):
``orders_by_result[(venue, result)]`` (one final result per order: filled, partial, unfilled,
rejected, not_found; plus ambiguous for each order whose answer was ambiguous, and late_fill),
``roundtrip_us[venue]`` (HotHistogram, send → answer), ``trades_by_status[(route,
status)]``, ``skipped[reason]``, ``opp_to_send_us`` (opportunity time → orders sent),
``unreconciled`` (open client ids), ``inflight``.
"""
from __future__ import annotations

import asyncio
import decimal
import itertools
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping, Optional

import orjson

from cexnode._core.logring import HotHistogram
from cexnode.execution.eager import start_eager
from cexnode.execution.gateway import (Balance, GatewayError, OrderAck, OrderGateway, OrderNotFound, OrderRequest,
                                       OrderState, OrderStatus, Outcome, Side, TimeInForce, mantissa_to_decimal)
from cexnode.execution.positions import DEC_CTX, PositionBook
from cexnode.execution.risk import ACTIVE, RiskManager, balance_needs
from cexnode.log import get_logger

__all__ = ["Executor", "LegRules", "TradeResult", "LATENCY_BUCKETS_US", "venue_symbol"]

LATENCY_BUCKETS_US = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000,
                      100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000)
_ZERO = Decimal(0)
_FUTURES_VENUES = ("gateio_futures",)


def venue_symbol(venue: str, route_symbol: str) -> str:
    """The venue's unified symbol for a route symbol: the perpetual on futures venues (DESIGN §3)."""
    if venue in _FUTURES_VENUES and ":" not in route_symbol:
        return route_symbol + ":" + route_symbol.split("/")[1]
    return route_symbol


@dataclass(frozen=True, kw_only=True, slots=True)
class LegRules:
    """Order rules of one (venue, symbol) at the route's scales (as the ArbEngine leg).

    tick_m: price step (mantissa at price_scale); step_m: base-qty step (mantissa at qty_scale;
    futures: contract step × multiplier); min_qty_m; min_notional (quote); taker_fee (rate)."""

    tick_m: int
    step_m: int
    taker_fee: Decimal
    min_qty_m: int = 0
    min_notional: Decimal = _ZERO

    @classmethod
    def from_instrument(cls, inst: Mapping[str, Any], taker_fee: Decimal) -> "LegRules":
        """From a ``SymbolMap.instrument()`` dict (the same numbers the ArbEngine leg gets)."""
        return cls(tick_m=int(inst["tick"]), step_m=int(inst["step"]), taker_fee=Decimal(taker_fee),
                   min_qty_m=int(inst.get("min_qty", 0)),
                   min_notional=mantissa_to_decimal(int(inst.get("min_notional", 0)), int(inst["price_scale"])))


class _Leg:
    __slots__ = ("req", "state", "final", "ambiguous", "event", "sent_ns", "sent_wall_ns", "answered",
                 "unreconciled", "booked", "cancel_sent", "gw", "failed", "trade_id", "base", "quote", "pnl",
                 "reserve", "retired_ns")

    def __init__(self, req: OrderRequest, gw: OrderGateway, trade_id: int, base: str, quote: str):
        self.req = req
        self.gw = gw
        self.trade_id = trade_id
        self.base = base
        self.quote = quote
        self.state: Optional[OrderState] = None
        self.final = False
        self.ambiguous = False
        self.failed = False
        self.event = asyncio.Event()
        self.sent_ns = 0
        self.sent_wall_ns = 0
        self.answered = False
        self.unreconciled = False
        self.booked = False
        self.cancel_sent = False
        self.pnl = _ZERO
        self.reserve: Optional[tuple[str, Decimal]] = None   # (asset, amount) an entry leg takes from its venue
        self.retired_ns = 0

    @property
    def filled(self) -> Decimal:
        return self.state.filled_qty if self.state is not None else _ZERO


@dataclass(frozen=True, kw_only=True)
class TradeResult:
    """Outcome of one opportunity. status: rejected | done | nothing_filled | hedged | unwound |
    residual | unreconciled | error; ``residual`` is the base quantity left open (+ long, − short)."""

    trade_id: int
    route: str
    symbol: str
    status: str
    reason: str = ""
    buy_filled: Decimal = _ZERO
    sell_filled: Decimal = _ZERO
    residual: Decimal = _ZERO
    realised_pnl: Decimal = _ZERO
    expected_pnl: Decimal = _ZERO
    orders: tuple = ()                  # final OrderState of every order (entry, hedge, unwind)
    unreconciled: tuple = ()            # client ids still unknown
    duration_ns: int = 0


class _AuditFailed(Exception):
    pass


class _Trade:
    """Working state of one trade between its synchronous front half and the async rest."""

    __slots__ = ("opp", "trade_id", "t0", "route", "symbol", "base", "quote", "qty", "buy_px", "sell_px", "bsym",
                 "ssym", "brules", "srules", "expected", "opp_t", "need", "needs", "buy", "sell", "tasks")

    def __init__(self, opp: Any, trade_id: int, t0: int, legs: tuple):
        self.opp = opp
        self.trade_id = trade_id
        self.t0 = t0
        self.route, self.symbol = opp.route, opp.symbol
        # what depends on the symbol and the venues only (Executor._legs_of)
        self.base, self.quote, self.bsym, self.ssym, self.brules, self.srules = legs
        self.qty = mantissa_to_decimal(opp.qty_m, opp.qty_scale)
        self.buy_px = mantissa_to_decimal(opp.buy_price_m, opp.price_scale)
        self.sell_px = mantissa_to_decimal(opp.sell_price_m, opp.price_scale)
        self.expected = getattr(opp, "net_profit", _ZERO)
        self.opp_t = getattr(opp, "t", 0)
        self.need: list = []          # venues whose balances must be fetched first
        self.needs: Optional[tuple] = None    # what each leg takes from its venue (the balance check)
        self.buy = self.sell = None
        self.tasks = None

    def fields(self) -> dict:
        o = self.opp
        return {"trade_id": self.trade_id, "route": self.route, "symbol": self.symbol, "buy_venue": o.buy_venue,
                "sell_venue": o.sell_venue, "qty": str(self.qty), "buy_price": str(self.buy_px),
                "sell_price": str(self.sell_px), "net_profit": str(self.expected), "t": self.opp_t}


class Executor:
    """Two-leg execution with risk, reconciliation, hedging and audit (module docstring).

    Parameters
    ----------
    gateways
        ``{venue: OrderGateway}``.
    risk, positions
        The node's RiskManager and PositionBook.
    trading
        The ``trading`` config section (reloadable fields are read on every trade).
    rules
        ``{(venue, venue unified symbol): LegRules}`` for every leg of every route.
    """

    def __init__(self, *, gateways: Mapping[str, OrderGateway], risk: RiskManager, positions: PositionBook,
                 trading: Any, rules: Mapping[tuple[str, str], LegRules], clock_ns: Callable[[], int] = time.time_ns,
                 logger: Any = None):
        self.gateways = dict(gateways)
        self.risk = risk
        self.positions = positions
        self.trading = trading
        self.rules = dict(rules)
        self._legs_by_key: dict[tuple, tuple] = {}      # (symbol, buy venue, sell venue) -> _legs_of
        self._clock = clock_ns
        self.log = logger if logger is not None else get_logger("execution.executor", ["execution", "trading"])
        self._legs: dict[str, _Leg] = {}
        self._retired: dict[str, _Leg] = {}       # settled legs, in the order they settled (bounded: _retire)
        self.max_retired = 10000
        self.retired_keep_s = 60.0
        self._trade_ids = itertools.count(1)
        self._prefix = _b36(time.time_ns() // 1_000_000_000 % (36 ** 5))
        self._balances: dict[str, tuple[dict[str, Balance], int]] = {}
        self._sent_at: dict[str, int] = {}        # venue -> wall ns of the last order sent there
        self._reserving: dict[str, list] = {}     # venue -> entry legs whose funds are reserved there
        self._unsubs: list = []
        self._tasks: set = set()
        self._inflight_routes: set[str] = set()
        self._bg: set = set()
        self.started = False
        self.stopping = False                     # stop() began: no new trade starts
        self.risk_refresh_s = 0.5
        self._ticker: Optional[asyncio.Task] = None
        self._warm_opp: Any = None                # the last opportunity submitted (warm())
        self._warm_handle: Any = None
        self.busy_warm = False                    # the busy-poll loop runs the dry runs (warm_poll)
        self._warm_due = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None      # set by start()
        self.warmups = 0
        self.warm_errors = 0
        # metrics
        self.opportunities = 0
        self.inflight = 0
        self.skipped: dict[str, int] = {}
        self.orders_by_result: dict[tuple[str, str], int] = {}
        self.trades_by_status: dict[tuple[str, str], int] = {}
        self.roundtrip_us: dict[str, HotHistogram] = {}
        self.opp_to_send_us = HotHistogram(LATENCY_BUCKETS_US)
        self.audit_events = 0
        self.audit_errors = 0
        self.unreconciled: set[str] = set()
        self.results: list[TradeResult] = []      # the newest max_results (history: audit log, trade database)
        self.max_results = 200

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe to every gateway's order updates and balance pushes."""
        if self.started:
            return
        for gw in self.gateways.values():
            self._unsubs.append(gw.subscribe_orders(self._on_order))
            self._unsubs.append(gw.subscribe_balances(self._on_balances))
        self.started = True
        self.stopping = False
        self._audit("executor_start", {"venues": sorted(self.gateways), "mode": getattr(self.trading, "mode", "")})
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._loop = loop      # the order path's (each asyncio.get_running_loop() is a getpid(2))
        if loop is not None and self.risk_refresh_s > 0:
            self._ticker = loop.create_task(self._tick())
        if loop is not None:
            self._warm_handle = loop.call_later(self._warm_interval_s(), self._warm_tick)

    async def _tick(self) -> None:
        """Re-evaluate risk periodically so the state (kill file, stale books, breaker ageing) is
        current in metrics and logs even when no opportunity arrives."""
        while True:
            await asyncio.sleep(self.risk_refresh_s)
            try:
                self.risk.refresh()
            except Exception as e:  # never let the ticker die silently
                self.log.error("risk refresh failed", error=repr(e)[:200])

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Refuse new trades, wait for those in flight (they manage live orders; the gateways stop
        only after this), then unsubscribe. A trade still running after ``timeout_s`` is cancelled:
        its open orders are audited (``trade_cancelled``) and reported as not reconciled."""
        self.stopping = True        # the feeds still run meanwhile: no opportunity may start a trade
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            done, not_done = await asyncio.wait(pending, timeout=timeout_s)
            for t in not_done:
                self.log.error("trade still running at stop; cancelling it (its orders stay in the audit log)")
                t.cancel()
            if not_done:            # their trade_cancelled records, before stop_unreconciled
                await asyncio.wait(not_done, timeout=1.0)
        for t in list(self._bg):
            t.cancel()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._warm_handle is not None:
            self._warm_handle.cancel()
            self._warm_handle = None
        if self.unreconciled:
            self.log.error("stopping with orders not reconciled", client_ids=sorted(self.unreconciled))
            self._audit_soft("stop_unreconciled", {"client_ids": sorted(self.unreconciled)})
        for u in self._unsubs:
            u()
        self._unsubs.clear()
        self.started = False
        self._loop = None

    def reconfigure(self, trading: Any) -> None:
        self.trading = trading

    # -- warm-up -----------------------------------------------------------------------------------
    def _warm_interval_s(self) -> float:
        ms = getattr(self.trading, "warm_interval_ms", 0) or 0
        return max(ms, 1) / 1000.0 if ms > 0 else 0.5     # off: look again later (the config reloads)

    def _warm_tick(self) -> None:
        if not self.started or self.busy_warm:       # busy_warm: the polling loop warms (warm_poll)
            return
        self._warm_handle = asyncio.get_running_loop().call_later(self._warm_interval_s(), self._warm_tick)
        if not getattr(self.trading, "warm_interval_ms", 0) or self.inflight:
            return
        self._warm_safely()

    def warm_poll(self) -> None:
        """Called by the busy-poll loop on every turn (``node.busy_poll``; it sets ``busy_warm``):
        a dry run once ``trading.warm_interval_ms`` has passed since the last one, to a fraction of
        a millisecond (the loop's timers have 1 ms resolution). The code is then warm within that
        interval of any frame. Measured here within one run, samples alternating 2 and 0.25 ms
        (busy poll, two runs of 300): both orders received 45-52 μs earlier at 0.25 ms."""
        ms = self.trading.warm_interval_ms
        if not ms or self.inflight or not self.started:
            return
        now = time.monotonic_ns()
        if now < self._warm_due:
            return
        self._warm_due = now + int(ms * 1_000_000)
        self._warm_safely()

    def _warm_safely(self) -> None:
        try:
            self.warm()
        except Exception as e:     # a dry run must never disturb trading; reported once per kind
            self.warm_errors += 1
            if self.warm_errors == 1:
                self.log.error("order-path warm-up failed (trading unaffected)", error=repr(e)[:200])

    def warm(self) -> bool:
        """A dry run of the order path's front half with the last opportunity submitted: the same
        risk and balance checks (nothing counted), both order requests, the ``trade_start`` record
        encoded, and each gateway's order request built and signed (``warm_order``, where the
        gateway has one) — nothing audited, registered, booked or sent. Run every
        ``trading.warm_interval_ms``, it keeps that code and its data in the CPU caches: a node
        trades rarely, and the order path otherwise runs cold, several times slower than warm
        (``perf/bench_execution.py`` measures both). False when there is nothing to warm with."""
        opp = self._warm_opp
        if opp is None:
            return False
        ctx = self._context(opp, 0, time.monotonic_ns())
        if not self._configured(ctx):
            return False
        self._check_trade(ctx, count=False)
        self._stale_balances([opp.buy_venue, opp.sell_venue])
        self._check_balances(ctx, count=False)
        buy, sell = self._entry_requests(ctx, "warm")
        orjson.dumps(self._trade_start_record(ctx, buy, sell))
        for req in (buy, sell):
            w = getattr(self.gateways[req.venue], "warm_order", None)
            if w is not None:
                w(req)
        self.warmups += 1
        return True

    # -- engine entry ------------------------------------------------------------------------------
    def submit(self, opp: Any) -> Optional[asyncio.Task]:
        """Hand over an opportunity (synchronous; from the engine's book-update callback).

        Returns the task executing it, or None when skipped (the executor is stopping, a trade
        already runs on the route, ``max_inflight_trades`` are running, the route is in its
        cooldown, or risk is not active).
        Skips are counted in ``skipped[reason]``, not audited: no order is involved."""
        self.opportunities += 1
        if self.stopping:
            self.skipped["stopping"] = self.skipped.get("stopping", 0) + 1
            return None
        if opp.route in self._inflight_routes:
            self.skipped["route_busy"] = self.skipped.get("route_busy", 0) + 1
            return None
        if self.inflight >= self.trading.max_inflight_trades:
            self.skipped["inflight_limit"] = self.skipped.get("inflight_limit", 0) + 1
            return None
        if self.risk.in_cooldown(opp.route):    # the same dislocation seen again on the next update
            self.skipped["cooldown"] = self.skipped.get("cooldown", 0) + 1
            return None
        if self.risk.state != ACTIVE and self.risk.refresh() != ACTIVE:   # execute() re-checks everything
            self.skipped["risk_" + self.risk.state] = self.skipped.get("risk_" + self.risk.state, 0) + 1
            return None
        self._warm_opp = opp
        self._inflight_routes.add(opp.route)
        self.inflight += 1
        trade_id, t0 = next(self._trade_ids), time.monotonic_ns()
        # The front half runs right here, in the book-update call: when the balances are fresh both
        # orders are started before this returns (no timer, no extra loop step).
        try:
            ctx = self._begin(opp, trade_id, t0)
            if isinstance(ctx, _Trade) and not ctx.need:
                rej = self._launch(ctx)
                if rej is not None:
                    ctx = rej
        except Exception as e:     # handled (audited, halts) inside the task like any other
            ctx = e
        task = (self._loop or asyncio.get_running_loop()).create_task(self._run(opp, trade_id, t0, ctx))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, opp: Any, trade_id: int, t0: int, ctx: Any) -> TradeResult:
        try:
            return await self._execute_guarded(opp, trade_id, t0, ctx)
        finally:
            self._inflight_routes.discard(opp.route)
            self.inflight -= 1

    # -- audit -------------------------------------------------------------------------------------
    def _audit(self, event: str, data: dict, sync: Any = True) -> int:
        try:
            seq = self.log.audit(event, data) if sync is True else self.log.audit(event, data, sync)
        except Exception as e:  # the audit trail is a precondition of trading
            self.audit_errors += 1
            self.risk.set_condition("audit", True, repr(e)[:200])
            self.log.error("audit write failed; trading halts", event=event, error=repr(e)[:200])
            raise _AuditFailed(event) from e
        self.audit_events += 1
        return seq

    def _audit_soft(self, event: str, data: dict) -> None:
        """Audit an event we must act on regardless (venue updates of live orders)."""
        try:
            self._audit(event, data)
        except _AuditFailed:
            pass

    # -- venue callbacks ---------------------------------------------------------------------------
    def _on_order(self, st: OrderState) -> None:
        leg = self._legs.get(st.client_id)
        self._audit_soft("order_update", dict(st.audit_fields(), known=leg is not None))
        if leg is not None:
            self._apply_state(leg, st, "stream")
            return
        old = self._retired.get(st.client_id)
        if old is not None and st.filled_qty > old.filled:
            self._late_fill(old, st)

    def _late_fill(self, leg: _Leg, st: OrderState) -> None:
        """A fill reported after the leg was settled (e.g. an order taken as never placed that the
        venue executed after all): book the difference, say so loudly, re-check the limits."""
        prev = leg.state
        with decimal.localcontext(DEC_CTX):
            delta = st.filled_qty - prev.filled_qty
            quote = st.filled_qty * (st.avg_price or _ZERO) - prev.filled_qty * (prev.avg_price or _ZERO)
            price = quote / delta
            fee = st.fee - prev.fee if st.fee_asset == prev.fee_asset or not prev.fee else st.fee
        self.log.error("fill after the order was settled", client_id=st.client_id, qty=str(delta))
        self._audit_soft("late_fill", dict(st.audit_fields(), trade_id=leg.trade_id, delta_qty=str(delta),
                                           delta_price=str(price)))
        leg.state = st
        req = leg.req
        pnl = self.positions.apply_fill(route=req.route, venue=req.venue, base=leg.base, quote=leg.quote,
                                        side=req.side, qty=delta, price=price, fee=fee, fee_asset=st.fee_asset)
        leg.pnl += pnl
        self._count(req.venue, "late_fill")
        self._audit_soft("fill_booked", {"client_id": req.client_id, "route": req.route, "venue": req.venue,
                                         "side": req.side.value, "qty": str(delta), "price": str(price),
                                         "fee": str(fee), "fee_asset": st.fee_asset, "realised": str(pnl),
                                         "late": True})
        self.risk.refresh()

    def _on_balances(self, venue: str, balances: Mapping[str, Balance]) -> None:
        ts = min((b.ts_ns for b in balances.values() if b.ts_ns), default=self._clock())
        if ts <= self._sent_at.get(venue, 0):
            return                        # observed before our last order there: already stale
        self._balances[venue] = (dict(balances), ts)

    def _apply_state(self, leg: _Leg, st: OrderState, source: str) -> None:
        """Merge a venue state into the leg: final states are sticky, fills never go backwards."""
        if leg.final:
            return
        old = leg.state
        if old is not None and st.filled_qty < old.filled_qty:
            return                        # an older update arriving late
        if old is not None and old.status is not OrderStatus.UNKNOWN and st.status is OrderStatus.UNKNOWN:
            return
        leg.state = st
        if st.filled_qty > (old.filled_qty if old is not None else _ZERO):
            self._audit_soft("order_fill", {"client_id": st.client_id, "venue": st.venue, "source": source,
                                            "filled_qty": str(st.filled_qty),
                                            "avg_price": None if st.avg_price is None else str(st.avg_price)})
        if st.is_final:
            leg.final = True
            leg.event.set()

    # -- balances ----------------------------------------------------------------------------------
    def _stale_balances(self, venues: list[str]) -> list[str]:
        now = self._clock()
        max_age = self.trading.max_balance_age_ms * 1_000_000
        return [v for v in venues if max_age == 0 or v not in self._balances or now - self._balances[v][1] > max_age]

    async def _fetch_balances(self, need: list[str]) -> None:
        """Ask the venues concurrently (REST); each result is as fresh as the request's start."""
        t_req = self._clock()
        timeout = self.trading.order_timeout_ms / 1000.0
        res = await asyncio.gather(*(asyncio.wait_for(self.gateways[v].balances(), timeout) for v in need),
                                   return_exceptions=True)
        for v, r in zip(need, res):
            if isinstance(r, BaseException):
                raise GatewayError("balances of %s unavailable: %r" % (v, r))
            self._balances[v] = (dict(r), t_req)

    async def refresh_balances(self, venues: Optional[list[str]] = None) -> None:
        """Fetch balances now (all venues by default), e.g. at start-up so that the first
        opportunity does not wait for them; raises GatewayError."""
        await self._fetch_balances(list(venues) if venues is not None else sorted(self.gateways))

    def _free(self, venue: str) -> dict[str, Decimal]:
        """Free balances at ``venue`` less what trades in flight have reserved there."""
        b = self._balances.get(venue)
        free = {a: x.free for a, x in b[0].items()} if b is not None else {}
        for asset, amount in self._reserved(venue).items():         # summed once for all assets
            free[asset] = DEC_CTX.subtract(free.get(asset, _ZERO), amount)
        return free

    def _free_of(self, venue: str, asset: str) -> Decimal:
        """What :meth:`_free` says for one asset (0 when there is none), without the whole map: the
        balance check's two."""
        b = self._balances.get(venue)
        x = b[0].get(asset) if b is not None else None
        free = x.free if x is not None else _ZERO
        if venue in self._reserving:
            r = self._reserved(venue).get(asset)
            if r is not None:
                free = DEC_CTX.subtract(free, r)
        return free

    # -- reservations --------------------------------------------------------------------------------
    # Trades run concurrently (max_inflight_trades > 1) may share a venue. A balance observed after
    # one trade's order was sent need not show that order yet (the venue may not have processed
    # it), so each entry leg reserves what it takes (risk.balance_needs) for as long as its trade
    # is in flight. (After a trade has ended, a snapshot taken between its send and the venue's
    # processing could still be used while younger than max_balance_age_ms, as between sequential
    # trades; a venue's pushes normally follow its processing.)
    def _reserve(self, ctx: "_Trade") -> None:
        ctx.buy.reserve, ctx.sell.reserve = ctx.needs       # as the balance check computed them
        for leg in (ctx.buy, ctx.sell):
            self._reserving.setdefault(leg.req.venue, []).append(leg)

    def _reserved(self, venue: str) -> dict[str, Decimal]:
        """What trades in flight have reserved at ``venue``, by asset."""
        out: dict[str, Decimal] = {}
        for leg in self._reserving.get(venue, ()):
            asset, amount = leg.reserve
            out[asset] = DEC_CTX.add(out.get(asset, _ZERO), amount)
        return out

    def _release(self, trade_id: int) -> None:
        """The trade has ended: its legs' reservations go."""
        for venue in list(self._reserving):
            keep = [leg for leg in self._reserving[venue] if leg.trade_id != trade_id]
            if keep:
                self._reserving[venue] = keep
            else:
                del self._reserving[venue]

    def _reserved_note(self, ctx: "_Trade") -> str:
        parts = ["%s %s %s" % (v, a, x) for v in dict.fromkeys((ctx.opp.buy_venue, ctx.opp.sell_venue))
                 for a, x in self._reserved(v).items()]
        return " (after reserving for trades in flight: %s)" % ", ".join(parts) if parts else ""

    # -- the trade ---------------------------------------------------------------------------------
    async def execute(self, opp: Any) -> TradeResult:
        """Run one opportunity to the end; returns its TradeResult (also kept in ``results``)."""
        return await self._execute_guarded(opp, next(self._trade_ids), time.monotonic_ns(), None)

    async def _execute_guarded(self, opp: Any, trade_id: int, t0: int, ctx: Any) -> TradeResult:
        try:
            try:
                if isinstance(ctx, BaseException):
                    raise ctx
                res = await self._execute(opp, trade_id, t0, ctx)
            finally:
                self._release(trade_id)
        except _AuditFailed as e:
            res = TradeResult(trade_id=trade_id, route=opp.route, symbol=opp.symbol, status="error",
                              reason="audit_failed:%s" % e, duration_ns=time.monotonic_ns() - t0)
        except asyncio.CancelledError:
            open_legs = [c for c, l in self._legs.items() if l.trade_id == trade_id and not l.final]
            if open_legs:                              # their outcome is unknown: said at stop, in metrics
                self.unreconciled.update(open_legs)
                self.risk.set_condition("unreconciled", True, ",".join(sorted(self.unreconciled)))
            self._audit_soft("trade_cancelled", {"trade_id": trade_id, "route": opp.route, "open_orders": open_legs})
            raise
        except Exception as e:  # a bug must not leave orders unaccounted: halt and say which
            open_legs = [c for c, l in self._legs.items() if l.trade_id == trade_id and not l.final]
            self.log.exception("executor error; trading halts", trade_id=trade_id, error=repr(e)[:300])
            self._audit_soft("trade_error", {"trade_id": trade_id, "route": opp.route, "error": repr(e)[:300],
                                             "open_orders": open_legs})
            self.risk.set_condition("executor_error", True, repr(e)[:200])
            res = TradeResult(trade_id=trade_id, route=opp.route, symbol=opp.symbol, status="error",
                              reason=repr(e)[:200], unreconciled=tuple(open_legs),
                              duration_ns=time.monotonic_ns() - t0)
        if res.status != "rejected":
            self.log.info("trade finished", trade_id=trade_id, route=res.route, status=res.status,
                          buy_filled=str(res.buy_filled), sell_filled=str(res.sell_filled),
                          residual=str(res.residual), realised=_display(res.realised_pnl),
                          expected=_display(res.expected_pnl), duration_us=res.duration_ns // 1000)
        key = (res.route, res.status)
        self.trades_by_status[key] = self.trades_by_status.get(key, 0) + 1
        self.results.append(res)
        if len(self.results) > self.max_results:
            del self.results[: len(self.results) - self.max_results]
        return res

    def _begin(self, opp: Any, trade_id: int, t0: int) -> "_Trade | TradeResult":
        """Synchronous front half: configuration, risk checks; the trade context or a rejection."""
        ctx = self._context(opp, trade_id, t0)
        if not self._configured(ctx):
            return self._rejected(ctx, "not_configured", "no gateway or rules for %s/%s" % (opp.buy_venue, opp.sell_venue))
        d = self._check_trade(ctx)
        if not d.ok:
            return self._rejected(ctx, d.reason, d.detail)
        ctx.need = self._stale_balances([opp.buy_venue, opp.sell_venue])
        return ctx

    def _context(self, opp: Any, trade_id: int, t0: int) -> "_Trade":
        key = (opp.symbol, opp.buy_venue, opp.sell_venue)
        legs = self._legs_by_key.get(key)
        if legs is None:
            legs = self._legs_by_key[key] = self._legs_of(*key)
        return _Trade(opp, trade_id, t0, legs)

    def _legs_of(self, symbol: str, buy_venue: str, sell_venue: str) -> tuple:
        """``(base, quote, buy venue's symbol, sell venue's symbol, buy LegRules, sell LegRules)``
        (rules None when not configured); fixed per symbol and venues, so computed once each."""
        base, quote = symbol.split(":")[0].split("/")
        bsym, ssym = venue_symbol(buy_venue, symbol), venue_symbol(sell_venue, symbol)
        return base, quote, bsym, ssym, self.rules.get((buy_venue, bsym)), self.rules.get((sell_venue, ssym))

    def _configured(self, ctx: "_Trade") -> bool:
        return (ctx.brules is not None and ctx.srules is not None and ctx.opp.buy_venue in self.gateways
                and ctx.opp.sell_venue in self.gateways)

    def _check_trade(self, ctx: "_Trade", count: bool = True) -> Any:
        return self.risk.check_trade(route=ctx.route, base=ctx.base, qty=ctx.qty, buy_price=ctx.buy_px,
                                     sell_price=ctx.sell_px, count=count)

    def _check_balances(self, ctx: "_Trade", count: bool = True) -> Any:
        """What each leg takes (``ctx.needs``: :func:`~cexnode.execution.risk.balance_needs`, kept
        for the reservation) against the free balances."""
        opp = ctx.opp
        ctx.needs = balance_needs(base=ctx.base, quote=ctx.quote, qty=ctx.qty, buy_price=ctx.buy_px,
                                  sell_price=ctx.sell_px, buy_fee=ctx.brules.taker_fee,
                                  sell_fee=ctx.srules.taker_fee, buy_is_futures=opp.buy_venue in _FUTURES_VENUES,
                                  sell_is_futures=opp.sell_venue in _FUTURES_VENUES,
                                  margin_fraction=self.trading.futures_margin_fraction)
        (asset_b, _), (asset_s, _) = ctx.needs
        return self.risk.check_needs(buy_venue=opp.buy_venue, sell_venue=opp.sell_venue, needs=ctx.needs,
                                     buy_free={asset_b: self._free_of(opp.buy_venue, asset_b)},
                                     sell_free={asset_s: self._free_of(opp.sell_venue, asset_s)}, count=count)

    def _entry_requests(self, ctx: "_Trade", tag: str) -> tuple[OrderRequest, OrderRequest]:
        opp, P, Q = ctx.opp, ctx.opp.price_scale, ctx.opp.qty_scale
        return (_order_request("cx%sb" % tag, opp.buy_venue, ctx.bsym, Side.BUY, opp.qty_m, opp.buy_price_m, Q, P,
                               ctx.route, "entry"),
                _order_request("cx%ss" % tag, opp.sell_venue, ctx.ssym, Side.SELL, opp.qty_m, opp.sell_price_m, Q,
                               P, ctx.route, "entry"))

    @staticmethod
    def _trade_start_record(ctx: "_Trade", buy: OrderRequest, sell: OrderRequest) -> dict:
        return dict(ctx.fields(), tif="ioc", orders=[buy.audit_brief(), sell.audit_brief()])

    def _rejected(self, ctx: "_Trade", reason: str, detail: str) -> TradeResult:
        self._audit("trade_rejected", dict(ctx.fields(), reason=reason, detail=detail))
        return TradeResult(trade_id=ctx.trade_id, route=ctx.route, symbol=ctx.symbol, status="rejected", reason=reason,
                           expected_pnl=ctx.expected, duration_ns=time.monotonic_ns() - ctx.t0)

    def _launch(self, ctx: "_Trade") -> Optional[TradeResult]:
        """Synchronous: balance check (balances are fresh here), audit both requests in one record,
        start both ``place`` calls (:meth:`_start_send`)."""
        if ctx.opp_t:
            age_ms = (self._clock() - ctx.opp_t) // 1_000_000
            if age_ms > self.trading.max_opportunity_age_ms:
                return self._rejected(ctx, "opportunity_stale", "%d ms old" % age_ms)
        d = self._check_balances(ctx)
        if not d.ok:
            return self._rejected(ctx, d.reason, d.detail + self._reserved_note(ctx))
        self.risk.note_trade(ctx.route)
        buy, sell = self._entry_requests(ctx, "%s%x" % (self._prefix, ctx.trade_id))
        ctx.buy = self._new_leg(ctx.trade_id, buy, ctx.base, ctx.quote)
        ctx.sell = self._new_leg(ctx.trade_id, sell, ctx.base, ctx.quote)
        # One audit record carries both order requests, written (write(2): survives kill -9) before
        # anything leaves; its fdatasync runs off the loop while the orders are in flight, and the
        # acks' records (synced before they are acted on) cannot be durable without it.
        self._audit("trade_start", self._trade_start_record(ctx, buy, sell), sync="behind")
        # Live gateways (eager_place) write their order right here, one after the other; others'
        # tasks run at the loop's next step, in the order they are made. Either way a leg whose
        # gateway writes in a few microseconds (a WebSocket order API) goes after one that first
        # builds an HTTP request, so that the slower one is not also the later one.
        if getattr(ctx.buy.gw, "fast_send", False) and not getattr(ctx.sell.gw, "fast_send", False):
            t_sell = self._start_send(ctx.sell)
            ctx.tasks = (self._start_send(ctx.buy), t_sell)
        else:
            ctx.tasks = (self._start_send(ctx.buy), self._start_send(ctx.sell))
        self._reserve(ctx)        # after the sends (bookkeeping), before anything else can run
        if ctx.opp_t:
            self.opp_to_send_us.observe(max(0, (ctx.buy.sent_wall_ns - ctx.opp_t) // 1000))
        return None

    async def _execute(self, opp: Any, trade_id: int, t0: int, ctx: "Optional[_Trade | TradeResult]" = None) -> TradeResult:
        if ctx is None:
            ctx = self._begin(opp, trade_id, t0)
        if isinstance(ctx, TradeResult):
            return ctx
        tr = self.trading
        if ctx.tasks is None:
            if ctx.need:
                try:
                    await self._fetch_balances(ctx.need)
                except GatewayError as e:
                    return self._rejected(ctx, "balance_unavailable", str(e)[:300])
                if self.risk.refresh() != ACTIVE:    # we awaited the balances: re-check (kill switch...)
                    return self._rejected(ctx, "state_" + self.risk.state, ",".join(sorted(self.risk.reasons)))
            rej = self._launch(ctx)
            if rej is not None:
                return rej
        buy, sell = ctx.buy, ctx.sell
        await asyncio.gather(self._await_ack(buy, ctx.tasks[0]), self._await_ack(sell, ctx.tasks[1]))
        deadline = buy.sent_ns + tr.leg_deadline_ms * 1_000_000
        await asyncio.gather(self._settle(buy, deadline), self._settle(sell, deadline))
        legs = [buy, sell]
        for leg in legs:
            self._finish_leg(leg)
        expected = ctx.expected
        if buy.unreconciled or sell.unreconciled:
            return self._result(trade_id, opp, legs, "unreconciled", expected, t0, buy.filled - sell.filled)
        residual = buy.filled - sell.filled
        if residual == 0:
            status = "done" if buy.filled == ctx.qty else ("nothing_filled" if buy.filled == 0 else "done_partial")
            return self._result(trade_id, opp, legs, status, expected, t0, _ZERO)
        status, residual = await self._close_residual(trade_id, opp, buy, sell, residual, legs, ctx.base, ctx.quote)
        return self._result(trade_id, opp, legs, status, expected, t0, residual)

    def _result(self, trade_id, opp, legs, status, expected, t0, residual) -> TradeResult:
        entry = [l for l in legs if l.req.purpose == "entry"]
        realised = sum((l.pnl for l in legs), _ZERO)     # P&L booked by this trade's fills
        for l in legs:
            if l.final:
                self._retire(l)
        res = TradeResult(trade_id=trade_id, route=opp.route, symbol=opp.symbol, status=status,
                          buy_filled=entry[0].filled, sell_filled=entry[1].filled, residual=residual,
                          realised_pnl=realised, expected_pnl=expected,
                          orders=tuple(l.state for l in legs if l.state is not None),
                          unreconciled=tuple(l.req.client_id for l in legs if l.unreconciled),
                          duration_ns=time.monotonic_ns() - t0)
        self._audit_soft("trade_done", {"trade_id": trade_id, "route": opp.route, "status": status,
                                        "buy_filled": str(res.buy_filled), "sell_filled": str(res.sell_filled),
                                        "residual": str(residual), "realised_pnl": str(realised),
                                        "expected_pnl": str(expected), "orders": [l.req.client_id for l in legs],
                                        "unreconciled": list(res.unreconciled),
                                        "duration_us": res.duration_ns // 1000})
        self.risk.refresh()
        return res

    # -- legs --------------------------------------------------------------------------------------
    def _new_leg(self, trade_id: int, req: OrderRequest, base: str, quote: str) -> _Leg:
        leg = _Leg(req, self.gateways[req.venue], trade_id, base, quote)
        self._legs[req.client_id] = leg
        return leg

    def _start_send(self, leg: _Leg) -> "asyncio.Future":
        """Start ``place`` now: a gateway with ``eager_place`` writes its order before this returns
        (:func:`~cexnode.execution.eager.start_eager`); any other's runs at the loop's next step."""
        venue = leg.req.venue
        self._balances.pop(venue, None)          # balances there change now: never reuse the cache
        leg.sent_wall_ns = self._sent_at[venue] = self._clock()
        leg.sent_ns = time.monotonic_ns()
        loop = self._loop or asyncio.get_running_loop()
        if getattr(leg.gw, "eager_place", False):
            return start_eager(leg.gw.place(leg.req), loop)
        return loop.create_task(leg.gw.place(leg.req))

    async def _send(self, leg: _Leg) -> None:
        await self._await_ack(leg, self._start_send(leg))

    async def _await_ack(self, leg: _Leg, task: asyncio.Task) -> None:
        """Wait for the venue's answer to ``place``; classify it; audit it before using it."""
        req = leg.req
        venue = req.venue
        remaining = self.trading.order_timeout_ms / 1000.0 - (time.monotonic_ns() - leg.sent_ns) / 1e9
        try:
            ack = await asyncio.wait_for(task, max(remaining, 0.0))
        except asyncio.TimeoutError:
            ack = OrderAck(client_id=req.client_id, venue=venue, outcome=Outcome.AMBIGUOUS, reason="timeout")
        except Exception as e:  # transport trouble after the request may have left: ambiguous
            ack = OrderAck(client_id=req.client_id, venue=venue, outcome=Outcome.AMBIGUOUS,
                           reason="error: %r" % (e,), error_code=getattr(e, "code", ""))
        rt = time.monotonic_ns() - leg.sent_ns
        self._audit_soft("order_ack", dict(ack.audit_fields(), trade_id=leg.trade_id, rt_us=rt // 1000))
        h = self.roundtrip_us.get(venue)
        if h is None:
            h = self.roundtrip_us[venue] = HotHistogram(LATENCY_BUCKETS_US)
        if ack.definitive:
            h.observe(rt // 1000)
            leg.answered = True
            st = ack.state
            if st is None:
                st = OrderState(client_id=req.client_id, venue=venue, symbol=req.symbol, side=req.side,
                                status=OrderStatus.NEW, qty=req.qty, order_id=ack.order_id)
            if st.status is OrderStatus.REJECTED:
                leg.failed = True
            self._apply_state(leg, st, "ack")
        else:
            leg.ambiguous = True
            leg.failed = True

    async def _query(self, leg: _Leg, why: str) -> Optional[OrderState]:
        """One reconcile query (audited); returns the state, or None (not found / error)."""
        req = leg.req
        self._audit_soft("reconcile_query", {"client_id": req.client_id, "venue": req.venue, "why": why})
        try:
            st = await asyncio.wait_for(leg.gw.query(req.symbol, req.client_id), self.trading.order_timeout_ms / 1000.0)
        except OrderNotFound:
            age_ms = (time.monotonic_ns() - leg.sent_ns) // 1_000_000
            never = age_ms >= self.trading.not_found_grace_ms and not leg.final
            self._audit_soft("reconcile_result", {"client_id": req.client_id, "venue": req.venue,
                                                  "result": "not_found", "age_ms": age_ms,
                                                  "conclusion": "never_placed" if never else "wait"})
            if never:
                # The venue answered definitively that the order does not exist, long enough after
                # sending that a late arrival is excluded: never placed, nothing filled.
                self._apply_state(leg, OrderState(client_id=req.client_id, venue=req.venue, symbol=req.symbol,
                                                  side=req.side, status=OrderStatus.REJECTED, qty=req.qty,
                                                  reason="not_found"), "reconcile")
            return None
        except (asyncio.TimeoutError, Exception) as e:
            self._audit_soft("reconcile_result", {"client_id": req.client_id, "venue": req.venue,
                                                  "result": "error", "error": repr(e)[:200]})
            return None
        self._audit_soft("reconcile_result", dict(st.audit_fields(), result="state"))
        self._apply_state(leg, st, "reconcile")
        return st

    async def _cancel(self, leg: _Leg) -> None:
        req = leg.req
        leg.cancel_sent = True
        self._audit_soft("cancel_request", {"client_id": req.client_id, "venue": req.venue})
        try:
            ack = await asyncio.wait_for(leg.gw.cancel(req.symbol, req.client_id), self.trading.order_timeout_ms / 1000.0)
        except (asyncio.TimeoutError, Exception) as e:
            ack = OrderAck(client_id=req.client_id, venue=req.venue, outcome=Outcome.AMBIGUOUS, reason=repr(e)[:200])
        self._audit_soft("cancel_ack", ack.audit_fields())
        if ack.definitive and ack.state is not None:
            self._apply_state(leg, ack.state, "cancel")

    async def _settle(self, leg: _Leg, deadline_ns: int) -> None:
        """Wait for the leg's final state: stream first, REST polling as fallback, cancel at the
        deadline, reconcile up to ``reconcile_timeout_ms`` more; then hand it to the background."""
        tr = self.trading
        poll = tr.poll_interval_ms / 1e3
        give_up = deadline_ns + tr.reconcile_timeout_ms * 1_000_000
        if leg.ambiguous and not leg.final:
            await self._query(leg, "ambiguous")          # at once: the answer never came
        while not leg.final:
            now = time.monotonic_ns()
            if now >= give_up:
                break
            if now >= deadline_ns and not leg.cancel_sent:
                await self._cancel(leg)                  # IOC should be final: make sure it is
                continue
            horizon = deadline_ns if now < deadline_ns else give_up
            try:
                await asyncio.wait_for(leg.event.wait(), max(0.0005, min(poll, (horizon - now) / 1e9)))
                continue
            except asyncio.TimeoutError:
                pass
            if not leg.final:
                await self._query(leg, "ambiguous" if leg.ambiguous and not leg.answered else "no_final_state")
        if not leg.final:
            leg.unreconciled = True
            self.unreconciled.add(leg.req.client_id)
            self._audit_soft("unreconciled", {"client_id": leg.req.client_id, "venue": leg.req.venue,
                                              "trade_id": leg.trade_id})
            self.risk.set_condition("unreconciled", True, ",".join(sorted(self.unreconciled)))
            t = asyncio.get_running_loop().create_task(self._background_reconcile(leg))
            self._bg.add(t)
            t.add_done_callback(self._bg.discard)

    async def _background_reconcile(self, leg: _Leg) -> None:
        delay = self.trading.poll_interval_ms / 1000.0
        while not leg.final:
            await self._query(leg, "background")
            if leg.final:
                break
            try:
                await asyncio.wait_for(leg.event.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, 5.0)
        leg.unreconciled = False
        self._finish_leg(leg)
        self._retire(leg)
        self.unreconciled.discard(leg.req.client_id)
        self._audit_soft("reconciled_late", dict(leg.state.audit_fields(), trade_id=leg.trade_id))
        if not self.unreconciled:
            self.risk.set_condition("unreconciled", False)
        self.risk.refresh()

    def _finish_leg(self, leg: _Leg) -> None:
        """Count the leg's outcome and book its fills (once, when its final state is known)."""
        if not leg.final or leg.booked:
            return
        leg.booked = True
        st = leg.state
        req = leg.req
        if st.status is OrderStatus.REJECTED:
            result = "not_found" if st.reason == "not_found" else "rejected"
        elif st.filled_qty == req.qty:
            result = "filled"
        elif st.filled_qty > 0:
            result = "partial"
        else:
            result = "unfilled"
        self._audit_soft("order_final", dict(st.audit_fields(), result=result, trade_id=leg.trade_id,
                                             ambiguous=leg.ambiguous, purpose=req.purpose))
        if leg.ambiguous:
            self._count(req.venue, "ambiguous")
        self._count(req.venue, result)
        self.risk.record_order(leg.failed or (result == "rejected"))
        if st.filled_qty > 0:
            with decimal.localcontext(DEC_CTX):
                pnl = self.positions.apply_fill(route=req.route, venue=req.venue, base=leg.base, quote=leg.quote,
                                                side=req.side, qty=st.filled_qty, price=st.avg_price,
                                                fee=st.fee, fee_asset=st.fee_asset)
            leg.pnl = pnl
            self._audit_soft("fill_booked", {"client_id": req.client_id, "route": req.route, "venue": req.venue,
                                             "side": req.side.value, "qty": str(st.filled_qty),
                                             "price": str(st.avg_price), "fee": str(st.fee),
                                             "fee_asset": st.fee_asset, "realised": str(pnl)})

    def _retire(self, leg: _Leg) -> None:
        """The leg is settled: later stream updates for it are audited and only a fill beyond what
        was booked is acted on (``_late_fill``). Settled legs are remembered for ``retired_keep_s``
        (60 s; at most ``max_retired``), so memory stays flat at any trade rate."""
        cid = leg.req.client_id
        self._legs.pop(cid, None)
        now = time.monotonic_ns()
        leg.retired_ns = now
        self._retired.pop(cid, None)          # re-retired (reconciled late): to the end, in settle order
        self._retired[cid] = leg
        cut = now - int(self.retired_keep_s * 1e9)
        retired = self._retired
        while retired:
            first = next(iter(retired))
            if retired[first].retired_ns > cut and len(retired) <= self.max_retired:
                break
            del retired[first]

    def _count(self, venue: str, result: str) -> None:
        k = (venue, result)
        self.orders_by_result[k] = self.orders_by_result.get(k, 0) + 1

    # -- one-leg residual --------------------------------------------------------------------------
    async def _close_residual(self, trade_id, opp, buy: _Leg, sell: _Leg, residual: Decimal, legs: list,
                              base: str, quote: str) -> tuple[str, Decimal]:
        """Hedge/unwind ``residual`` (+: long extra base to sell; −: short to buy back) within the
        loss cap. Returns (status, residual left)."""
        tr = self.trading
        P, Q = opp.price_scale, opp.qty_scale
        if residual > 0:      # bought more than sold: SELL the rest; entry = buy leg's cost per unit
            side = Side.SELL
            entry_leg = buy
            plan = [(opp.sell_venue, "hedge"), (opp.buy_venue, "unwind")]
        else:                 # sold more than bought: BUY back; entry = sell leg's proceeds per unit
            side = Side.BUY
            entry_leg = sell
            plan = [(opp.buy_venue, "hedge"), (opp.sell_venue, "unwind")]
        est = entry_leg.state
        erules = self.rules[(entry_leg.req.venue, entry_leg.req.symbol)]
        with decimal.localcontext(DEC_CTX):
            # per-unit entry value incl. its fee: what the residual cost (long) or brought (short)
            if side is Side.SELL:
                entry_unit = est.avg_price * (1 + erules.taker_fee)
            else:
                entry_unit = est.avg_price * (1 - erules.taker_fee)
        cap_left = Decimal(tr.hedge_loss_cap)
        used = set()
        status = "residual"
        n = 0
        for attempt in range(tr.hedge_attempts):
            venue, kind = plan[attempt % 2]
            if residual == 0:
                break
            if not self.risk.allows_hedge():
                self._audit("hedge_blocked", {"trade_id": trade_id, "reason": "kill_switch",
                                              "residual": str(residual)})
                break
            sym = venue_symbol(venue, opp.symbol)
            rules = self.rules[(venue, sym)]
            with decimal.localcontext(DEC_CTX):
                r_m = int(abs(residual).scaleb(Q).to_integral_value(decimal.ROUND_FLOOR))
                q_m = r_m // rules.step_m * rules.step_m
                if q_m <= 0 or q_m < rules.min_qty_m:
                    self._audit("residual_dust", {"trade_id": trade_id, "venue": venue, "residual": str(residual)})
                    continue
                q = mantissa_to_decimal(q_m, Q)
                fee = rules.taker_fee
                # loss(p) for SELL: q×entry_unit − q×p×(1−fee) ≤ cap_left → p ≥ (q×entry_unit − cap)/(q×(1−fee))
                # for BUY: q×p×(1+fee) − q×entry_unit ≤ cap_left → p ≤ (q×entry_unit + cap)/(q×(1+fee))
                if side is Side.SELL:
                    limit = (q * entry_unit - cap_left) / (q * (1 - fee))
                    p_m = int((limit.scaleb(P) / rules.tick_m).to_integral_value(decimal.ROUND_CEILING)) * rules.tick_m
                    p_m = max(p_m, rules.tick_m)
                else:
                    limit = (q * entry_unit + cap_left) / (q * (1 + fee))
                    p_m = int((limit.scaleb(P) / rules.tick_m).to_integral_value(decimal.ROUND_FLOOR)) * rules.tick_m
                    if p_m <= 0:
                        self._audit("hedge_impossible", {"trade_id": trade_id, "venue": venue, "limit": str(limit)})
                        continue
                if q * mantissa_to_decimal(p_m, P) < rules.min_notional:
                    self._audit("residual_dust", {"trade_id": trade_id, "venue": venue, "residual": str(residual),
                                                  "why": "min_notional"})
                    continue
            n += 1
            cid = "cx%s%x%s%d" % (self._prefix, trade_id, "h" if kind == "hedge" else "u", n)
            leg = self._new_leg(trade_id, _order_request(cid, venue, sym, side, q_m, p_m, Q, P, opp.route, kind),
                                base, quote)
            legs.append(leg)
            self._audit("hedge_plan", {"trade_id": trade_id, "kind": kind, "venue": venue, "side": side.value,
                                       "qty": str(q), "limit_price": str(mantissa_to_decimal(p_m, P)),
                                       "residual": str(residual), "entry_unit": str(entry_unit),
                                       "loss_cap_left": str(cap_left)})
            self._audit("order_request", dict(leg.req.audit_fields(), trade_id=trade_id))
            await self._send(leg)
            await self._settle(leg, leg.sent_ns + tr.leg_deadline_ms * 1_000_000)
            self._finish_leg(leg)
            if leg.unreconciled:
                return "unreconciled", residual
            f = leg.filled
            if f > 0:
                used.add(kind)
                with decimal.localcontext(DEC_CTX):
                    st = leg.state
                    if side is Side.SELL:
                        loss = f * entry_unit - f * st.avg_price * (1 - fee)
                        residual -= f
                    else:
                        loss = f * st.avg_price * (1 + fee) - f * entry_unit
                        residual += f
                    cap_left -= max(loss, _ZERO)
        if residual == 0:
            status = "unwound" if "unwind" in used else "hedged"
        else:
            self._audit_soft("residual_open", {"trade_id": trade_id, "route": opp.route, "asset": base,
                                               "residual": str(residual), "loss_cap_left": str(cap_left)})
            self.log.error("residual position left open", trade_id=trade_id, route=opp.route,
                           residual=str(residual))
        return status, residual

    # -- reporting ---------------------------------------------------------------------------------
    def status(self) -> dict:
        return {"opportunities": self.opportunities, "inflight": self.inflight, "skipped": dict(self.skipped),
                "trades": {"%s|%s" % k: v for k, v in self.trades_by_status.items()},
                "orders": {"%s|%s" % k: v for k, v in self.orders_by_result.items()},
                "unreconciled": sorted(self.unreconciled), "risk": self.risk.status(),
                "realised_pnl": str(self.positions.realised()), "warmups": self.warmups,
                "warm_errors": self.warm_errors,
                "reserved": {v: {a: str(x) for a, x in self._reserved(v).items()} for v in self._reserving}}

    def summary_rows(self) -> list[dict]:
        """PositionBook rows (route, asset, position, realised P&L, fees, volumes) plus, per route,
        ``trades`` (sent) and ``rejected`` counts — the rows of the node's closing summary table."""
        rows = self.positions.summary_rows()
        sent: dict[str, int] = {}
        rej: dict[str, int] = {}
        for (route, status), n in self.trades_by_status.items():
            d = rej if status == "rejected" else sent
            d[route] = d.get(route, 0) + n
        seen = set()
        for r in rows:
            r["trades"] = sent.get(r["route"], 0)
            r["rejected"] = rej.get(r["route"], 0)
            seen.add(r["route"])
        for route in sorted((set(sent) | set(rej)) - seen):
            rows.append({"route": route, "asset": "", "quote": "", "position": "0", "realised_pnl": "0", "fees": "0",
                         "fills": 0, "bought": "0", "sold": "0", "buy_cost": "0", "sell_proceeds": "0",
                         "trades": sent.get(route, 0), "rejected": rej.get(route, 0)})
        return rows

    METRIC_SERIES = (
        ("cexnode_trades", "Trades by route and final status.", "counter", ("route", "status")),
        ("cexnode_executor_skipped", "Opportunities not executed, by reason.", "counter", ("reason",)),
        ("cexnode_risk_state", "Trading state: 0 active, 1 reducing, 2 halted.", "gauge", ()),
        ("cexnode_risk_condition", "Risk conditions currently raised (1).", "gauge", ("reason",)),
        ("cexnode_realised_pnl", "Realised P&L per route (quote currency).", "gauge", ("route",)),
        ("cexnode_position", "Net base position per asset (all routes).", "gauge", ("asset",)),
        ("cexnode_unreconciled_orders", "Orders whose final state is not known yet.", "gauge", ()),
        ("cexnode_trades_inflight", "Trades executing now.", "gauge", ()),
        ("cexnode_balance_reserved", "Funds reserved by the trades in flight, per venue and asset.", "gauge",
         ("venue", "asset")),
        ("cexnode_audit_events", "Audit events written by the executor.", "counter", ()),
        ("cexnode_opportunity_to_send_microseconds", "Opportunity time to both orders sent (μs).", "histogram", ()),
        ("cexnode_executor_warmups", "Dry runs of the order path (trading.warm_interval_ms), by result.", "counter",
         ("result",)),
    )

    def register_metrics(self, metrics: Any) -> None:
        """Add this executor's sources to a ``cexnode.metrics.NodeMetrics``: the existing
        ``cexnode_orders`` and ``cexnode_order_roundtrip_microseconds`` plus METRIC_SERIES."""
        from cexnode.metrics import SeriesDef
        for name, help_, kind, labels in self.METRIC_SERIES:
            if kind == "histogram":
                metrics.define(SeriesDef(name, help_, kind, labels, LATENCY_BUCKETS_US))
            else:
                metrics.define(SeriesDef(name, help_, kind, labels))
        pos = self.positions
        metrics.add_source("cexnode_orders", lambda: list(self.orders_by_result.items()))
        metrics.add_source("cexnode_order_roundtrip_microseconds",
                           lambda: [((v,), h) for v, h in self.roundtrip_us.items()])
        metrics.add_source("cexnode_trades", lambda: list(self.trades_by_status.items()))
        metrics.add_source("cexnode_executor_skipped", lambda: [((k,), v) for k, v in self.skipped.items()])
        metrics.add_source("cexnode_risk_state", lambda: [((), self.risk.state_code)])
        metrics.add_source("cexnode_risk_condition", lambda: [((r,), 1) for r in sorted(self.risk.reasons)])
        metrics.add_source("cexnode_realised_pnl",
                           lambda: [((r["route"],), float(Decimal(r["realised_pnl"]))) for r in pos.summary_rows()])
        metrics.add_source("cexnode_position", lambda: [((a,), float(p)) for a, p in pos.positions().items()])
        metrics.add_source("cexnode_unreconciled_orders", lambda: [((), len(self.unreconciled))])
        metrics.add_source("cexnode_trades_inflight", lambda: [((), self.inflight)])
        metrics.add_source("cexnode_balance_reserved", lambda: [((v, a), float(x)) for v in list(self._reserving)
                                                                for a, x in self._reserved(v).items()])
        metrics.add_source("cexnode_audit_events", lambda: [((), self.audit_events)])
        metrics.add_source("cexnode_opportunity_to_send_microseconds", lambda: [((), self.opp_to_send_us)])
        metrics.add_source("cexnode_executor_warmups",
                           lambda: [(("ok",), self.warmups), (("error",), self.warm_errors)])


def _order_request(cid: str, venue: str, sym: str, side: Side, qty_m: int, price_m: int, Q: int, P: int, route: str,
                   purpose: str) -> OrderRequest:
    """An IOC limit order (every order the executor sends is one)."""
    return OrderRequest(client_id=cid, venue=venue, symbol=sym, side=side, qty_m=qty_m, price_m=price_m,
                        qty_scale=Q, price_scale=P, tif=TimeInForce.IOC, route=route, purpose=purpose)


def _display(d: Any) -> str:
    """A P&L for a log line: exact values carry up to 80 digits (lots at fractional unit prices);
    shown to 1e-8 (the audit trail keeps them exact)."""
    try:
        if d.as_tuple().exponent >= -8:
            return str(d)
        q = d.quantize(_DISPLAY_Q, rounding=decimal.ROUND_HALF_EVEN)
        return format(q.normalize(), "f") if q else "0"
    except (AttributeError, TypeError, decimal.InvalidOperation):
        return str(d)


_DISPLAY_Q = Decimal("1e-8")


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out

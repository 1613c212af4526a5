"""The executor: from an Opportunity to a settled trade (docs/design.md §5).

``Executor.submit(opp)`` is called by the engine the moment the arbitrage code emits (no timer).
When the balances are fresh, steps 1–3 run synchronously inside that call — both ``place`` calls
are started before it returns, and a live gateway (``eager_place``) has written its order by then
(:func:`~cexnode.execution.eager.start_eager`) — and the rest continues in a task; otherwise the
task first refreshes the balances (and drops the opportunity if that took longer than
``max_opportunity_age_ms``). ``await execute(opp)`` runs all of it in the caller's task.
Between trades, :meth:`Executor.warm` dry-runs steps 1–3 every ``trading.warm_interval_ms``
(nothing sent, audited or counted) so that the next trade does not run from cold CPU caches.

1. **Risk** (``RiskManager.check_trade``): state, route cooldown, notional, positions, exposure.
2. **Balances fresh** (docs/design.md §5): pushed by the venue or fetched within ``max_balance_age_ms``,
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

The pieces (each with its own module docstring, tests and audit events; the Executor composes
them and binds the order path's calls to them once, in ``__init__``):

* :class:`~cexnode.execution.balances.BalanceBook` — step 2: the fresh-balance cache per venue,
  the reservations of the trades in flight, the free balances the arbitrage stage sizes to.
* :class:`~cexnode.execution.legs.LegTracker` — steps 3–4 for every order: send, answer, stream,
  queries, cancel, settle, book, retire, late fills, the background reconciler.
* :class:`~cexnode.execution.hedging.ResidualCloser` — step 5's hedge/unwind orders.
* :class:`~cexnode.execution.audit.AuditWriter` — the audit writes they all make.
* The Executor itself: the engine's entry (``submit``), the trade's front half (risk, balance
  check, the ``trade_start`` record, both sends), the two-leg outcome, trades in flight, stop,
  warm-up, status, metrics and :meth:`Executor.recover`.

Restart (docs/design.md §5, state rebuilt from the audit trail by :mod:`cexnode.execution.recovery`):
the engine adopts the positions and daily P&L; :meth:`Executor.recover` restores the error-rate
window and hands the legs' part to the LegTracker (fills a crash cut off from their booking,
every order without a final record reconciled with its venue). Balances are not restored: they
are read fresh from the venues at start (``refresh_balances``); reservations and residual
closings do not outlive their trades.

Audit: every order event is written with ``Logger.audit`` (synchronous, durable per
``log.audit.fsync``) *before* the executor acts on it; if the audit log cannot be written, risk
halts (``audit``) and nothing new is sent — no hedge either: an order is sent only once its
request is in the file — while the trades in flight are still settled, reconciled and booked in
memory; the log system holds the records it could not write and writes them, in seq order, when
the file takes writes again (``cexnode.log.backends.AuditBackend``). Events (``data`` carries
``client_id`` where it is about one order): ``executor_start``; ``trade_rejected`` (reason,
detail); ``trade_start`` (the opportunity and BOTH entry order requests in one record, written
before they leave; with
``fsync: always`` its fdatasync runs off the loop while they are in flight — ``sync="behind"`` —
and every later record is synced before it is acted on, which makes this one durable too);
``order_request`` (hedge/unwind orders); ``order_ack`` (outcome definitive/ambiguous, the venue's
state, round trip); ``order_update`` (private stream; ``known`` false for orders no longer
tracked); ``order_fill`` (filled quantity grew); ``reconcile_query`` / ``reconcile_result``;
``cancel_request`` / ``cancel_ack``; ``order_final`` (exactly once per order: final status and
result); ``fill_booked`` (what went into the PositionBook); ``hedge_plan``, ``hedge_blocked``,
``hedge_impossible``, ``residual_dust``, ``residual_open``; ``unreconciled``,
``reconciled_late``, ``late_fill``; ``trade_done``; ``trade_error``, ``trade_cancelled``,
``stop_unreconciled``; ``orders_withdrawn`` (client ids never sent because their request's record
could not be written; ``record_seq`` is that record's seq); and ``risk_state`` from the RiskManager.

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

from cexnode._core.logring import HotHistogram, Logger
from cexnode.config import TradingConfig
from cexnode.execution.audit import AuditFailed, AuditWriter
from cexnode.execution.balances import BalanceBook, FreeListener
from cexnode.execution.gateway import GatewayError, OrderGateway, OrderRequest, Side, mantissa_to_decimal
from cexnode.execution.hedging import ResidualCloser
from cexnode.execution.legs import LATENCY_BUCKETS_US, Leg, LegRules, LegTracker, ioc_request, venue_symbol
from cexnode.execution.positions import PositionBook
from cexnode.execution.recovery import AuditFold
from cexnode.execution.risk import ACTIVE, RiskManager, balance_needs
from cexnode.log import get_logger
from cexnode.metrics import SeriesDef

__all__ = ["Executor", "LegRules", "TradeResult", "LATENCY_BUCKETS_US", "venue_symbol"]

_ZERO = Decimal(0)


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
        The ``trading`` config section (reloadable fields are read on every trade); a reloaded one
        is set with :meth:`reconfigure`, which hands it to the pieces too.
    rules
        ``{(venue, venue unified symbol): LegRules}`` for every leg of every route.
    """

    def __init__(self, *, gateways: Mapping[str, OrderGateway], risk: RiskManager, positions: PositionBook,
                 trading: TradingConfig, rules: Mapping[tuple[str, str], LegRules],
                 clock_ns: Callable[[], int] = time.time_ns, logger: Optional[Logger] = None):
        self.gateways = dict(gateways)
        self.risk = risk
        self.positions = positions
        self.trading = trading
        self.rules = dict(rules)
        # routes wired and unwired while the node runs (add_route_rules, remove_route)
        self._fixed_rules = set(self.rules)                 # given at construction: held by no route
        self._route_rules: dict[str, set[tuple[str, str]]] = {}   # route -> the rules keys it holds
        self._removed_routes: dict[str, None] = {}          # removed routes (their opportunities skipped)
        self._releasing: dict[str, list[Callable[[], None]]] = {}   # removed, trades in flight -> on_released
        self._route_trades: dict[str, int] = {}             # route -> its trades in flight
        self._legs_by_key: dict[tuple, tuple] = {}      # (symbol, buy venue, sell venue) -> _legs_of
        self._clock = clock_ns
        self.log = logger if logger is not None else get_logger("execution.executor", ["execution", "trading"])
        self.audit = AuditWriter(self.log, risk)
        # bound once: the order path writes its pre-send record through it
        self._audit, self._audit_soft = self.audit.write, self.audit.write_soft
        self._trade_ids = itertools.count(1)
        self._prefix = _b36(time.time_ns() // 1_000_000_000 % (36 ** 5))
        self.balances = BalanceBook(gateways=self.gateways, trading=trading, log=self.log, clock_ns=clock_ns)
        # bound once: the order path's balance freshness, check and reservation
        self._stale_balances, self._free_of = self.balances.stale, self.balances.free_of
        self._reserve = self.balances.reserve
        self.legs = LegTracker(gateways=self.gateways, trading=trading, risk=risk, positions=positions,
                               balances=self.balances, audit=self.audit, log=self.log, clock_ns=clock_ns)
        # bound once: the order path's two legs
        self._new_leg, self._start_send = self.legs.new, self.legs.start_send
        self.residuals = ResidualCloser(trading=trading, rules=self.rules, risk=risk, legs=self.legs, audit=self.audit,
                                        log=self.log, prefix=self._prefix)
        self._unsubs: list = []
        self._tasks: set = set()
        self._inflight_routes: set[str] = set()
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
        self.rejected_by_reason: dict[str, int] = {}    # trades refused (status rejected), by reason
        self.orders_by_result = self.legs.orders_by_result     # the legs count them (the same dicts)
        self.trades_by_status: dict[tuple[str, str], int] = {}
        self.roundtrip_us = self.legs.roundtrip_us
        self.opp_to_send_us = HotHistogram(LATENCY_BUCKETS_US)
        self.unreconciled = self.legs.unreconciled     # the same set
        self.results: list[TradeResult] = []
        self.max_results = 200                    # the newest results (history: audit log, trade database)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe to every gateway's order updates and balance pushes."""
        if self.started:
            return
        for gw in self.gateways.values():
            self._unsubs.append(gw.subscribe_orders(self.legs.on_order))
            self._unsubs.append(gw.subscribe_balances(self.balances.on_balances))
        self.started = True
        self.stopping = False
        self._audit("executor_start", {"venues": sorted(self.gateways), "mode": getattr(self.trading, "mode", "")})
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._loop = self.legs.loop = loop      # the order path's (each asyncio.get_running_loop() is a getpid(2))
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
        self.legs.cancel_background()
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
        self._loop = self.legs.loop = None

    def reconfigure(self, trading: TradingConfig, rules: Optional[Mapping[tuple[str, str], LegRules]] = None) -> None:
        """A reloaded ``trading`` section (read on every trade) and, when given, new leg rules
        (a reloaded taker fee)."""
        self.trading = self.balances.trading = self.legs.trading = self.residuals.trading = trading
        if rules is not None:
            self.rules = self.residuals.rules = dict(rules)
            self._legs_by_key.clear()

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

    def warm_poll(self, now_ns: Optional[int] = None) -> None:
        """Called by the busy-poll loop on every turn (``node.busy_poll``; it sets ``busy_warm``):
        a dry run once ``trading.warm_interval_ms`` has passed since the last one ended, to a
        fraction of a millisecond (the loop's timers have 1 ms resolution). The code is then warm
        within that interval of any frame (``perf/bench_execution.py`` compares intervals; its
        results are in ``perf/results/``). The interval counts from the end of a dry run, so a slow
        one (the thread preempted) is not followed by another at once. ``now_ns``: the monotonic
        clock's reading (tests); by default read here."""
        ms = self.trading.warm_interval_ms
        if not ms or self.inflight or not self.started:
            return
        now = time.monotonic_ns() if now_ns is None else now_ns
        if now < self._warm_due:
            return
        self._warm_due = now + int(ms * 1_000_000)      # no second dry run from inside this one
        self._warm_safely()
        if now_ns is None:
            self._warm_due = time.monotonic_ns() + int(ms * 1_000_000)

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
        Skips are counted in ``skipped[reason]``, not audited: no order is involved; an
        opportunity of a route removed by :meth:`remove_route` is skipped as ``route_removed``."""
        self.opportunities += 1
        if self.stopping:
            self.skipped["stopping"] = self.skipped.get("stopping", 0) + 1
            return None
        if opp.route in self._removed_routes:
            self.skipped["route_removed"] = self.skipped.get("route_removed", 0) + 1
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
        self._route_trades[opp.route] = self._route_trades.get(opp.route, 0) + 1
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
            self._route_trade_ended(opp.route)

    # -- routes wired and unwired while the node runs ---------------------------------------------
    def add_route_rules(self, rules: Mapping[tuple[str, str], LegRules], route: str = "") -> None:
        """The leg rules of a route wired while the node runs (``{(venue, venue unified symbol):
        LegRules}``, as the constructor's). With ``route`` they belong to it: :meth:`remove_route`
        takes them away again once nothing in flight needs them (unless another route holds them
        too); a removed route added again trades again."""
        self.rules.update(rules)            # in place: the residual closer reads the same map
        if route:
            self._route_rules.setdefault(route, set()).update(rules)
            self._removed_routes.pop(route, None)
            self._releasing.pop(route, None)      # wired again before its trades ended: nothing to release
        self._legs_by_key.clear()           # a key cached without rules has them now

    def remove_route(self, route: str, on_released: Optional[Callable[[], None]] = None) -> None:
        """``route`` trades no more: its opportunities are skipped (``skipped["route_removed"]``)
        from now on, while its trades in flight — hedges, unwinds, reconciliation — finish as any
        other. Once none is left, its leg rules go (those no other route holds), its cooldown
        entry goes, and ``on_released()`` is called (at once when nothing of it is in flight)."""
        self._removed_routes[route] = None
        if len(self._removed_routes) > _MAX_REMOVED_ROUTES:     # bounded over churn: oldest first
            del self._removed_routes[next(iter(self._removed_routes))]
        cbs = self._releasing.setdefault(route, [])
        if on_released is not None:
            cbs.append(on_released)
        if not self._route_trades.get(route):
            self._release(route)

    @property
    def removed_routes(self) -> list[str]:
        """Routes removed by :meth:`remove_route` (and not added again), oldest first."""
        return list(self._removed_routes)

    def releasing(self, route: str) -> bool:
        """``route`` was removed and a trade of it is still in flight."""
        return route in self._releasing

    def _route_trade_ended(self, route: str) -> None:
        n = self._route_trades.get(route, 0) - 1
        if n > 0:
            self._route_trades[route] = n
            return
        self._route_trades.pop(route, None)
        if route in self._releasing:
            self._release(route)

    def _release(self, route: str) -> None:
        cbs = self._releasing.pop(route, [])
        keys = self._route_rules.pop(route, set())
        if keys:
            held = self._fixed_rules.union(*self._route_rules.values())
            for k in keys - held:
                self.rules.pop(k, None)
            self._legs_by_key.clear()
        self.risk.forget_route(route)
        if self._warm_opp is not None and self._warm_opp.route == route:
            self._warm_opp = None             # dry runs go on with the next route's opportunity
        for cb in cbs:
            try:
                cb()
            except Exception as e:      # the route is gone either way; what the caller tidies is its own
                self.log.error("route release callback failed", route=route, error=repr(e)[:200])

    # -- audit -------------------------------------------------------------------------------------
    @property
    def max_retired(self) -> int:
        """Settled legs remembered for late stream updates (:class:`LegTracker`)."""
        return self.legs.max_retired

    @max_retired.setter
    def max_retired(self, n: int) -> None:
        self.legs.max_retired = n

    @property
    def retired_keep_s(self) -> float:
        """How long settled legs are remembered (LegTracker.retire)."""
        return self.legs.retired_keep_s

    @retired_keep_s.setter
    def retired_keep_s(self, s: float) -> None:
        self.legs.retired_keep_s = s

    @property
    def audit_events(self) -> int:
        """Audit records written by the executor."""
        return self.audit.events

    @property
    def audit_errors(self) -> int:
        """Audit writes that failed (trading halts at the first)."""
        return self.audit.errors

    # -- balances (cexnode.execution.balances) ----------------------------------------------------
    async def refresh_balances(self, venues: Optional[list[str]] = None) -> None:
        """Fetch balances now (all venues by default), e.g. at start-up so that the first
        opportunity does not wait for them; raises GatewayError."""
        await self.balances.fetch(list(venues) if venues is not None else sorted(self.gateways))

    def add_free_listener(self, callback: FreeListener) -> Callable[[], None]:
        """``callback(venue, free)`` whenever :meth:`free_balances` of ``venue`` may have changed
        (:meth:`BalanceBook.add_free_listener`); returns the unsubscribe function."""
        return self.balances.add_free_listener(callback)

    def free_balances(self, venue: str) -> Optional[dict[str, Decimal]]:
        """The free amounts last observed at ``venue`` less what trades in flight have reserved
        there (:meth:`BalanceBook.free_balances`); None before any observation."""
        return self.balances.free_balances(venue)

    # -- the trade ---------------------------------------------------------------------------------
    async def execute(self, opp: Any) -> TradeResult:
        """Run one opportunity to the end; returns its TradeResult (also kept in ``results``)."""
        self._route_trades[opp.route] = self._route_trades.get(opp.route, 0) + 1
        try:
            return await self._execute_guarded(opp, next(self._trade_ids), time.monotonic_ns(), None)
        finally:
            self._route_trade_ended(opp.route)

    async def _execute_guarded(self, opp: Any, trade_id: int, t0: int, ctx: Any) -> TradeResult:
        try:
            try:
                if isinstance(ctx, BaseException):
                    raise ctx
                res = await self._execute(opp, trade_id, t0, ctx)
            finally:
                self.balances.release(trade_id)
        except AuditFailed as e:
            res = TradeResult(trade_id=trade_id, route=opp.route, symbol=opp.symbol, status="error",
                              reason="audit_failed:%s" % e, duration_ns=time.monotonic_ns() - t0)
        except asyncio.CancelledError:
            open_legs = self.legs.open_of(trade_id)
            if open_legs:                              # their outcome is unknown: said at stop, in metrics
                self.unreconciled.update(open_legs)
                self.risk.set_condition("unreconciled", True, ",".join(sorted(self.unreconciled)))
            self._audit_soft("trade_cancelled", {"trade_id": trade_id, "route": opp.route, "open_orders": open_legs})
            raise
        except Exception as e:  # a bug must not leave orders unaccounted: halt and say which
            open_legs = self.legs.open_of(trade_id)
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
        if res.status == "rejected":
            self.rejected_by_reason[res.reason] = self.rejected_by_reason.get(res.reason, 0) + 1
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
                                  sell_fee=ctx.srules.taker_fee, buy_is_futures=":" in ctx.bsym,
                                  sell_is_futures=":" in ctx.ssym,       # a perpetual's symbol names its settle asset
                                  margin_fraction=self.trading.futures_margin_fraction)
        (asset_b, _), (asset_s, _) = ctx.needs
        return self.risk.check_needs(buy_venue=opp.buy_venue, sell_venue=opp.sell_venue, needs=ctx.needs,
                                     buy_free={asset_b: self._free_of(opp.buy_venue, asset_b)},
                                     sell_free={asset_s: self._free_of(opp.sell_venue, asset_s)}, count=count)

    def _entry_requests(self, ctx: "_Trade", tag: str) -> tuple[OrderRequest, OrderRequest]:
        opp, P, Q = ctx.opp, ctx.opp.price_scale, ctx.opp.qty_scale
        return (ioc_request("cx%sb" % tag, opp.buy_venue, ctx.bsym, Side.BUY, opp.qty_m, opp.buy_price_m, Q, P,
                               ctx.route, "entry"),
                ioc_request("cx%ss" % tag, opp.sell_venue, ctx.ssym, Side.SELL, opp.qty_m, opp.sell_price_m, Q,
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
        start both ``place`` calls (:meth:`LegTracker.start_send`)."""
        if ctx.opp_t:
            age_ms = (self._clock() - ctx.opp_t) // 1_000_000
            if age_ms > self.trading.max_opportunity_age_ms:
                return self._rejected(ctx, "opportunity_stale", "%d ms old" % age_ms)
        d = self._check_balances(ctx)
        if not d.ok:
            return self._rejected(ctx, d.reason, d.detail + self.balances.reserved_note((ctx.opp.buy_venue,
                                                                                         ctx.opp.sell_venue)))
        self.risk.note_trade(ctx.route)
        buy, sell = self._entry_requests(ctx, "%s%x" % (self._prefix, ctx.trade_id))
        ctx.buy = self._new_leg(ctx.trade_id, buy, ctx.base, ctx.quote)
        ctx.sell = self._new_leg(ctx.trade_id, sell, ctx.base, ctx.quote)
        # One audit record carries both order requests, written (write(2): survives kill -9) before
        # anything leaves; its fdatasync runs off the loop while the orders are in flight, and the
        # acks' records (synced before they are acted on) cannot be durable without it.
        try:
            self._audit("trade_start", self._trade_start_record(ctx, buy, sell), sync="behind")
        except AuditFailed as e:
            self.legs.withdraw(ctx.trade_id, (ctx.buy, ctx.sell), e)
            raise
        # Live gateways (eager_place) write their order right here, one after the other; others'
        # tasks run at the loop's next step, in the order they are made. Either way a leg whose
        # gateway writes at once (a WebSocket order API) goes after one that first
        # builds an HTTP request, so that the slower one is not also the later one.
        if getattr(ctx.buy.gw, "fast_send", False) and not getattr(ctx.sell.gw, "fast_send", False):
            t_sell = self._start_send(ctx.sell)
            ctx.tasks = (self._start_send(ctx.buy), t_sell)
        else:
            ctx.tasks = (self._start_send(ctx.buy), self._start_send(ctx.sell))
        # after the sends (bookkeeping), before anything else can run
        self._reserve(ctx.trade_id, ctx.opp.buy_venue, ctx.opp.sell_venue, ctx.needs)
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
                    await self.balances.fetch(ctx.need)
                except GatewayError as e:
                    return self._rejected(ctx, "balance_unavailable", str(e)[:300])
                if self.risk.refresh() != ACTIVE:    # we awaited the balances: re-check (kill switch...)
                    return self._rejected(ctx, "state_" + self.risk.state, ",".join(sorted(self.risk.reasons)))
            rej = self._launch(ctx)
            if rej is not None:
                return rej
        buy, sell, tracker = ctx.buy, ctx.sell, self.legs
        await asyncio.gather(tracker.await_ack(buy, ctx.tasks[0]), tracker.await_ack(sell, ctx.tasks[1]))
        deadline = buy.sent_ns + tr.leg_deadline_ms * 1_000_000
        await asyncio.gather(tracker.settle(buy, deadline), tracker.settle(sell, deadline))
        legs = [buy, sell]
        for leg in legs:
            tracker.finish(leg)
        expected = ctx.expected
        if buy.unreconciled or sell.unreconciled:
            return self._result(trade_id, opp, legs, "unreconciled", expected, t0, buy.filled - sell.filled)
        residual = buy.filled - sell.filled
        if residual == 0:
            status = "done" if buy.filled == ctx.qty else ("nothing_filled" if buy.filled == 0 else "done_partial")
            return self._result(trade_id, opp, legs, status, expected, t0, _ZERO)
        status, residual = await self.residuals.close(trade_id, opp, buy, sell, residual, legs, ctx.base, ctx.quote)
        return self._result(trade_id, opp, legs, status, expected, t0, residual)

    def _result(self, trade_id: int, opp: Any, legs: list[Leg], status: str, expected: Decimal, t0: int,
                residual: Decimal) -> TradeResult:
        entry = [l for l in legs if l.req.purpose == "entry"]
        realised = sum((l.pnl for l in legs), _ZERO)     # P&L booked by this trade's fills
        for l in legs:
            if l.final:
                self.legs.retire(l)
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

    # -- reporting ---------------------------------------------------------------------------------
    # -- recovery (state rebuilt from the audit trail: cexnode.execution.recovery) ----------------
    async def recover(self, fold: AuditFold, *, deadline_s: float) -> dict:
        """Before the first trade: restore the error-rate window, book the fills of orders whose
        final record came without its ``fill_booked`` (a crash between the two), and reconcile
        every order without a final record with its venue by client id
        (:meth:`LegTracker.adopt_open_orders`; a fill found is audited as ``fill_booked`` after its
        ``order_final``, as for any order). Orders the venue cannot answer about by ``deadline_s``
        go on being reconciled in the background and keep risk ``reducing`` (``unreconciled``)
        until they are. The positions (and daily P&L) were adopted by the engine before the risk
        manager's first check; balances are not restored (read fresh from the venues at start).
        Returns the summary."""
        now = self._clock()
        self.risk.restore_outcomes(fold.outcomes_since(now - fold.window_ns))
        booked = self.legs.book_cut_off_fills(fold.unbooked)
        adopted = await self.legs.adopt_open_orders(fold.open.values(), deadline_s=deadline_s)
        if self.unreconciled:
            self.risk.set_condition("unreconciled", True, ",".join(sorted(self.unreconciled)))
        self.risk.refresh()
        summary = {"orders_open": len(fold.open), "reconciled": adopted.reconciled, "filled": adopted.filled,
                   "unreconciled": len(self.unreconciled), "fills_booked_late": booked,
                   "window_orders": self.risk.window_orders, "realised_today": str(self.positions.daily_realised()),
                   "positions": {a: str(p) for a, p in self.positions.positions().items() if p},
                   "risk": self.risk.state}
        self._audit_soft("recovery", summary)
        return summary

    def status(self) -> dict:
        return {"opportunities": self.opportunities, "inflight": self.inflight, "skipped": dict(self.skipped),
                "trades": {"%s|%s" % k: v for k, v in self.trades_by_status.items()},
                "orders": {"%s|%s" % k: v for k, v in self.orders_by_result.items()},
                "unreconciled": sorted(self.unreconciled), "risk": self.risk.status(),
                "realised_pnl": str(self.positions.realised()), "warmups": self.warmups,
                "warm_errors": self.warm_errors, "routes_releasing": sorted(self._releasing),
                "reserved": {v: {a: str(x) for a, x in r.items()} for v, r in self.balances.reserved_by_venue().items()}}

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
        metrics.add_source("cexnode_balance_reserved", lambda: [((v, a), float(x)) for v, r in
                                                                self.balances.reserved_by_venue().items()
                                                                for a, x in r.items()])
        metrics.add_source("cexnode_audit_events", lambda: [((), self.audit_events)])
        metrics.add_source("cexnode_opportunity_to_send_microseconds", lambda: [((), self.opp_to_send_us)])
        metrics.add_source("cexnode_executor_warmups",
                           lambda: [(("ok",), self.warmups), (("error",), self.warm_errors)])


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
_MAX_REMOVED_ROUTES = 10_000     # removed route names remembered (their opportunities skipped)


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out

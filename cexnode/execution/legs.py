"""The legs of a trade: each order the executor sends, from its request to its booked fills.

A :class:`Leg` is one IOC order (an entry leg, a hedge or an unwind) and what is known about it;
:class:`LegTracker` owns every leg that has no final state yet and the recently settled ones, and
runs each leg's state machine (docs/design.md §5, steps 3–4 of the executor):

* **send** (:meth:`LegTracker.start_send`): ``place`` is started at once (eagerly where the gateway
  allows, :func:`~cexnode.execution.eager.start_eager`); the venue's balance cache is dropped
  (:meth:`~cexnode.execution.balances.BalanceBook.order_sent`).
* **answer** (:meth:`LegTracker.await_ack`): DEFINITIVE (the venue's state) or AMBIGUOUS (timeout,
  disconnect, 5xx, any exception): an ambiguous order is reconciled by querying, never assumed.
* **updates** (:meth:`LegTracker.on_order`, the private stream) and **queries**
  (:meth:`LegTracker.query`) are merged into the leg: final states are sticky, fills never go
  backwards. A venue that still does not know an order ``not_found_grace_ms`` after it was sent
  has never placed it.
* **settle** (:meth:`LegTracker.settle`): stream first, REST polling every ``poll_interval_ms`` as
  fallback, cancel at the leg deadline, reconcile up to ``reconcile_timeout_ms`` more; an order
  still unknown then goes to a background reconciler and risk enters ``reducing``
  (``unreconciled``) until it is known.
* **finish** (:meth:`LegTracker.finish`): once final, the outcome is counted (``orders_by_result``,
  the risk error window) and the fills booked in the PositionBook, exactly once.
* **retire** (:meth:`LegTracker.retire`): settled legs are remembered (``retired_keep_s``, at most ``max_retired``),
  so that a stream update after settlement is recognised and a fill beyond what was booked is
  booked then (``late_fill``).

Audit events written here (``AuditWriter``; ``data`` carries ``client_id``): ``order_ack``,
``order_update`` (``known`` false for orders no longer tracked), ``order_fill``,
``reconcile_query`` / ``reconcile_result``, ``cancel_request`` / ``cancel_ack``, ``order_final``
(exactly once per order), ``fill_booked``, ``unreconciled``, ``reconciled_late``, ``late_fill``,
``orders_withdrawn``.

Restart: what the legs knew is restored from the audit trail (:mod:`cexnode.execution.recovery`).
:meth:`LegTracker.book_cut_off_fills` books the fills whose ``fill_booked`` a crash cut off, and
:meth:`LegTracker.adopt_open_orders` takes every order without a final record back as a leg and
reconciles it with its venue by client id before the first trade (``Executor.recover``).
"""
from __future__ import annotations

import asyncio
import decimal
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, Optional

from cexnode._core.logring import HotHistogram, Logger
from cexnode.adapters import registry as venue_registry
from cexnode.config import TradingConfig
from cexnode.execution.audit import AuditFailed, AuditWriter
from cexnode.execution.balances import BalanceBook
from cexnode.execution.eager import start_eager
from cexnode.execution.gateway import (OrderAck, OrderGateway, OrderNotFound, OrderRequest, OrderState, OrderStatus,
                                       Outcome, Side, TimeInForce, mantissa_to_decimal)
from cexnode.execution.positions import DEC_CTX, PositionBook
from cexnode.execution.recovery import OpenOrder, split_symbol
from cexnode.execution.risk import RiskManager

__all__ = ["Leg", "LegTracker", "LegRules", "AdoptedOrders", "ioc_request", "venue_symbol", "LATENCY_BUCKETS_US"]

LATENCY_BUCKETS_US = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000,
                      100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000)
_ZERO = Decimal(0)


def venue_symbol(venue: str, route_symbol: str) -> str:
    """The venue's unified symbol for a route symbol: the perpetual settled in the quote currency
    on a perpetual-futures venue (its descriptor's market; docs/design.md §3)."""
    if ":" not in route_symbol and venue_registry.descriptor(venue).is_perpetual:
        return route_symbol + ":" + route_symbol.split("/")[1]
    return route_symbol


def ioc_request(cid: str, venue: str, sym: str, side: Side, qty_m: int, price_m: int, Q: int, P: int, route: str,
                purpose: str) -> OrderRequest:
    """An IOC limit order (every order the executor sends is one)."""
    return OrderRequest(client_id=cid, venue=venue, symbol=sym, side=side, qty_m=qty_m, price_m=price_m,
                        qty_scale=Q, price_scale=P, tif=TimeInForce.IOC, route=route, purpose=purpose)


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


class Leg:
    """One order of a trade (``req.purpose``: entry, hedge or unwind) and what is known about it:
    the venue's latest state, whether it is final, its answer was ambiguous, it failed (counts in
    the error window), it is unreconciled, its fills were booked (``pnl``: what they realised)."""

    __slots__ = ("req", "state", "final", "ambiguous", "event", "sent_ns", "sent_wall_ns", "answered",
                 "unreconciled", "booked", "cancel_sent", "gw", "failed", "trade_id", "base", "quote", "pnl",
                 "retired_ns")

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
        self.retired_ns = 0

    @property
    def filled(self) -> Decimal:
        return self.state.filled_qty if self.state is not None else _ZERO


@dataclass(frozen=True, slots=True)
class AdoptedOrders:
    """What :meth:`LegTracker.adopt_open_orders` found: orders whose final state the venue gave
    (``reconciled``), of which ``filled`` had fills."""

    reconciled: int
    filled: int


class LegTracker:
    """The legs in flight and the recently settled ones, and every leg's state machine (module
    docstring).

    Parameters
    ----------
    gateways
        ``{venue: OrderGateway}``, the executor's own map (shared, not copied).
    trading
        The ``trading`` config section (timeouts, poll interval, grace); the executor sets a
        reloaded one (``Executor.reconfigure``).
    risk, positions
        The node's RiskManager (error window, ``unreconciled``) and PositionBook (fills booked).
    balances
        The executor's BalanceBook: a send drops its venue's balance cache.
    audit, log
        The executor's AuditWriter and logger.
    clock_ns
        Wall clock (ns): the audit trail's, for the age of an adopted order.

    Metrics (attributes the executor shares): ``orders_by_result[(venue, result)]``,
    ``roundtrip_us[venue]``, ``unreconciled`` (client ids).
    """

    def __init__(self, *, gateways: Mapping[str, OrderGateway], trading: TradingConfig, risk: RiskManager,
                 positions: PositionBook, balances: BalanceBook, audit: AuditWriter, log: Logger,
                 clock_ns: Callable[[], int]):
        self.gateways = gateways
        self.trading = trading
        self.risk = risk
        self.positions = positions
        self.log = log
        self._clock = clock_ns
        self._audit_soft = audit.write_soft
        self._order_sent = balances.order_sent
        self._open: dict[str, Leg] = {}           # client id -> leg without a final state (or not yet retired)
        self._retired: dict[str, Leg] = {}        # settled legs, in the order they settled (bounded: retire)
        self.max_retired = 10000
        self.retired_keep_s = 60.0
        self._bg: set[asyncio.Task] = set()       # background reconcilers
        self.loop: Optional[asyncio.AbstractEventLoop] = None       # the executor's, set by its start()
        self.unreconciled: set[str] = set()
        self.orders_by_result: dict[tuple[str, str], int] = {}
        self.roundtrip_us: dict[str, HotHistogram] = {}

    # -- what is tracked -----------------------------------------------------------------------------
    def open_client_ids(self) -> list[str]:
        """Client ids of the legs tracked now (sent or about to be, not retired)."""
        return list(self._open)

    def open_of(self, trade_id: int) -> list[str]:
        """Client ids of trade ``trade_id``'s legs without a final state."""
        return [c for c, l in self._open.items() if l.trade_id == trade_id and not l.final]

    @property
    def retired_count(self) -> int:
        """Settled legs remembered (for late stream updates)."""
        return len(self._retired)

    def cancel_background(self) -> None:
        """Stop the background reconcilers (the executor stops)."""
        for t in list(self._bg):
            t.cancel()

    # -- a leg's life --------------------------------------------------------------------------------
    def new(self, trade_id: int, req: OrderRequest, base: str, quote: str) -> Leg:
        """A leg for ``req`` of trade ``trade_id``, tracked from now on (before it is sent)."""
        leg = Leg(req, self.gateways[req.venue], trade_id, base, quote)
        self._open[req.client_id] = leg
        return leg

    def withdraw(self, trade_id: int, legs: tuple[Leg, ...], e: AuditFailed) -> None:
        """The write-ahead record of ``legs`` failed: they are never sent. The record itself is held
        by the log system and may still reach the file: this one says they were not sent."""
        for leg in legs:
            self._open.pop(leg.req.client_id, None)
        self._audit_soft("orders_withdrawn", {"trade_id": trade_id, "client_ids": [l.req.client_id for l in legs],
                                              "reason": "audit_write_failed", "record": e.event, "record_seq": e.seq})

    def start_send(self, leg: Leg) -> "asyncio.Future":
        """Start ``place`` now: a gateway with ``eager_place`` writes its order before this returns
        (:func:`~cexnode.execution.eager.start_eager`); any other's runs at the loop's next step."""
        leg.sent_wall_ns = self._order_sent(leg.req.venue)   # balances there change now: never reuse the cache
        leg.sent_ns = time.monotonic_ns()
        loop = self.loop or asyncio.get_running_loop()
        if getattr(leg.gw, "eager_place", False):
            return start_eager(leg.gw.place(leg.req), loop)
        return loop.create_task(leg.gw.place(leg.req))

    async def send(self, leg: Leg) -> None:
        """Send the leg and wait for the venue's answer (:meth:`start_send`, :meth:`await_ack`)."""
        await self.await_ack(leg, self.start_send(leg))

    async def await_ack(self, leg: Leg, task: asyncio.Task) -> None:
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

    def on_order(self, st: OrderState) -> None:
        """An order update from a venue's private stream (``OrderGateway.subscribe_orders``)."""
        leg = self._open.get(st.client_id)
        self._audit_soft("order_update", dict(st.audit_fields(), known=leg is not None))
        if leg is not None:
            self._apply_state(leg, st, "stream")
            return
        old = self._retired.get(st.client_id)
        if old is not None and st.filled_qty > old.filled:
            self._late_fill(old, st)

    def _apply_state(self, leg: Leg, st: OrderState, source: str) -> None:
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

    def _late_fill(self, leg: Leg, st: OrderState) -> None:
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

    async def query(self, leg: Leg, why: str) -> Optional[OrderState]:
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

    async def _cancel(self, leg: Leg) -> None:
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

    async def settle(self, leg: Leg, deadline_ns: int) -> None:
        """Wait for the leg's final state: stream first, REST polling as fallback, cancel at the
        deadline, reconcile up to ``reconcile_timeout_ms`` more; then hand it to the background."""
        tr = self.trading
        poll = tr.poll_interval_ms / 1e3
        give_up = deadline_ns + tr.reconcile_timeout_ms * 1_000_000
        if leg.ambiguous and not leg.final:
            await self.query(leg, "ambiguous")          # at once: the answer never came
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
                await self.query(leg, "ambiguous" if leg.ambiguous and not leg.answered else "no_final_state")
        if not leg.final:
            leg.unreconciled = True
            self.unreconciled.add(leg.req.client_id)
            self._audit_soft("unreconciled", {"client_id": leg.req.client_id, "venue": leg.req.venue,
                                              "trade_id": leg.trade_id})
            self.risk.set_condition("unreconciled", True, ",".join(sorted(self.unreconciled)))
            t = asyncio.get_running_loop().create_task(self._background_reconcile(leg))
            self._bg.add(t)
            t.add_done_callback(self._bg.discard)

    async def _background_reconcile(self, leg: Leg) -> None:
        delay = self.trading.poll_interval_ms / 1000.0
        while not leg.final:
            await self.query(leg, "background")
            if leg.final:
                break
            try:
                await asyncio.wait_for(leg.event.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, 5.0)
        leg.unreconciled = False
        self.finish(leg)
        self.retire(leg)
        self.unreconciled.discard(leg.req.client_id)
        self._audit_soft("reconciled_late", dict(leg.state.audit_fields(), trade_id=leg.trade_id))
        if not self.unreconciled:
            self.risk.set_condition("unreconciled", False)
        self.risk.refresh()

    def finish(self, leg: Leg) -> None:
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

    def retire(self, leg: Leg) -> None:
        """The leg is settled: later stream updates for it are audited and only a fill beyond what
        was booked is acted on (``_late_fill``). Settled legs are remembered for ``retired_keep_s``
        (60 s; at most ``max_retired``), so memory stays flat at any trade rate."""
        cid = leg.req.client_id
        self._open.pop(cid, None)
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

    # -- restart (state rebuilt from the audit trail: cexnode.execution.recovery) -------------------
    def book_cut_off_fills(self, unbooked: Mapping[str, dict]) -> int:
        """Book the fills of orders whose final record came without its ``fill_booked`` (a crash
        between the two; ``AuditFold.unbooked``), audited as ``fill_booked`` (``recovered``).
        Returns how many were booked."""
        booked = 0
        for cid, d in unbooked.items():
            base, quote = split_symbol(d.get("symbol", ""))
            side = Side(d["side"])
            qty, price = Decimal(d["filled_qty"]), Decimal(d["avg_price"])
            fee, fee_asset = Decimal(d.get("fee") or "0"), d.get("fee_asset") or ""
            with decimal.localcontext(DEC_CTX):
                pnl = self.positions.apply_fill(route=d.get("route", ""), venue=d.get("venue", ""), base=base,
                                                quote=quote, side=side, qty=qty, price=price, fee=fee,
                                                fee_asset=fee_asset)
            self._audit_soft("fill_booked", {"client_id": cid, "route": d.get("route", ""), "venue": d.get("venue", ""),
                                             "side": side.value, "qty": str(qty), "price": str(price),
                                             "fee": str(fee), "fee_asset": fee_asset, "realised": str(pnl),
                                             "recovered": True})
            booked += 1
        return booked

    async def adopt_open_orders(self, open_orders: Iterable[OpenOrder], *, deadline_s: float) -> AdoptedOrders:
        """Take every order without a final record (``AuditFold.open``) back as a leg, at its real
        age (``not_found_grace_ms`` applies), and reconcile it with its venue by client id
        (:meth:`query`; a final state is finished — counted, its fills booked and audited as
        ``fill_booked`` after its ``order_final`` — and retired). Orders the venue cannot answer
        about by ``deadline_s``, and those of a venue not connected, are ``unreconciled``: the
        former go on being reconciled in the background. The caller raises risk's
        ``unreconciled`` condition."""
        legs = []
        mono, wall = time.monotonic_ns(), self._clock()
        for o in open_orders:
            base, quote = split_symbol(o.symbol)
            qty, price = Decimal(o.qty), Decimal(o.price)
            qs, ps = max(0, -qty.as_tuple().exponent), max(0, -price.as_tuple().exponent)
            req = OrderRequest(client_id=o.client_id, venue=o.venue, symbol=o.symbol, side=Side(o.side),
                               qty_m=int(qty.scaleb(qs)), price_m=int(price.scaleb(ps)), qty_scale=qs,
                               price_scale=ps, tif=TimeInForce.IOC, route=o.route, purpose=o.purpose)
            if o.venue not in self.gateways:
                self.unreconciled.add(o.client_id)
                self._audit_soft("unreconciled", {"client_id": o.client_id, "venue": o.venue,
                                                  "why": "recovery: venue not connected"})
                continue
            leg = self.new(o.trade_id, req, base, quote)
            leg.sent_ns = mono - max(0, wall - o.ts_ns)      # its real age: not_found_grace_ms applies
            leg.sent_wall_ns = o.ts_ns
            legs.append(leg)

        async def settle(leg: Leg) -> None:
            await self.query(leg, "recovery")
            if leg.final:
                self.finish(leg)
                self.retire(leg)

        if legs:
            try:
                await asyncio.wait_for(asyncio.gather(*(settle(leg) for leg in legs)), deadline_s)
            except asyncio.TimeoutError:
                pass
        left = [leg for leg in legs if not leg.final]
        for leg in left:
            leg.unreconciled = True
            self.unreconciled.add(leg.req.client_id)
            self._audit_soft("unreconciled", {"client_id": leg.req.client_id, "venue": leg.req.venue,
                                              "why": "recovery"})
            t = asyncio.get_running_loop().create_task(self._background_reconcile(leg))
            self._bg.add(t)
            t.add_done_callback(self._bg.discard)
        return AdoptedOrders(reconciled=len(legs) - len(left),
                             filled=sum(1 for leg in legs if leg.final and leg.filled > 0))

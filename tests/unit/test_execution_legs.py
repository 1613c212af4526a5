"""LegTracker (cexnode/execution/legs.py): each order's state machine — send, answer, stream and
query merged, settle, finish (counted, booked, audited), retire, late fills — and its restart from
the audit trail (adopt_open_orders, book_cut_off_fills), against PaperGateways over real Books
(the paper venue matches, answers, streams and is queried as a venue is)."""
from __future__ import annotations

import asyncio
import time
import types
from decimal import Decimal

from cexnode import log as clog
from cexnode._core.book import Book
from cexnode.config import RiskConfig, TradingConfig
from cexnode.execution import PaperGateway, PositionBook, RiskManager
from cexnode.execution.audit import AuditWriter
from cexnode.execution.balances import BalanceBook
from cexnode.execution.gateway import OrderState, OrderStatus, Side
from cexnode.execution.legs import LegTracker, ioc_request
from cexnode.execution.recovery import AuditFold
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


class Rig:
    """A LegTracker as the executor composes it, over two paper venues, auditing to ``tmp_path``."""

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

    def events(self):
        import orjson
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


def test_a_filled_leg_is_answered_settled_booked_once_and_retired(tmp_path):
    rig = Rig(tmp_path)

    async def body():
        leg = await rig.leg_sent(1, rig.request("e1b"))
        assert leg.answered and leg.final and not leg.ambiguous and leg.filled == D("0.5")
        assert rig.legs.open_client_ids() == ["e1b"] and rig.legs.open_of(1) == []   # final, not retired yet
        await rig.legs.settle(leg, leg.sent_ns + 300 * 1_000_000)
        rig.legs.finish(leg)
        rig.legs.finish(leg)                                     # once only
        rig.legs.retire(leg)
        assert rig.legs.open_client_ids() == [] and rig.legs.retired_count == 1
        # the same final state again from the stream: audited as not tracked, nothing booked twice
        rig.legs.on_order(leg.state)
        return leg

    leg = run_logged(rig, body)
    assert rig.positions.position("BTC") == D("0.5") and leg.pnl == D("-0.05")       # the fee
    assert rig.legs.orders_by_result == {("mexc_spot", "filled"): 1} and rig.legs.roundtrip_us["mexc_spot"].count == 1
    assert rig.balances.last_sent_ns("mexc_spot") == leg.sent_wall_ns > 0
    ev = rig.events()
    names = [e["event"] for e in ev if e["data"].get("client_id") == "e1b"]
    # the paper venue streams the fill before its answer arrives
    assert names == ["order_request", "order_update", "order_fill", "order_ack", "order_final", "fill_booked",
                     "order_update"]
    assert [e["data"]["known"] for e in ev if e["event"] == "order_update"] == [True, False]
    # the audit trail says the same as the tracker: nothing open, the same position
    fold = AuditFold()
    for e in ev:
        fold.feed(e)
    assert fold.open == {} and fold.unbooked == {} and fold.positions.position("BTC") == D("0.5")


def test_stream_updates_merge_forward_only_and_a_late_fill_is_booked(tmp_path):
    rig = Rig(tmp_path)

    def st(status, filled, avg="100", fee="0"):
        return OrderState(client_id="x1", venue="mexc_spot", symbol=SYM, side=Side.BUY, status=status, qty=D(1),
                          filled_qty=D(filled), avg_price=D(avg) if filled != "0" else None, fee=D(fee),
                          fee_asset="USDT")

    async def body():
        leg = rig.legs.new(7, rig.request("x1", qty="1"), "BTC", "USDT")
        rig.legs.on_order(st(OrderStatus.PARTIALLY_FILLED, "0.4"))
        rig.legs.on_order(st(OrderStatus.NEW, "0"))                       # older, arriving late: ignored
        rig.legs.on_order(st(OrderStatus.UNKNOWN, "0.4"))                 # says nothing new: ignored
        assert leg.state.status is OrderStatus.PARTIALLY_FILLED and not leg.final
        rig.legs.on_order(st(OrderStatus.CANCELLED, "0.6", fee="0.06"))
        rig.legs.on_order(st(OrderStatus.FILLED, "0.9"))                  # final is sticky
        assert leg.final and leg.filled == D("0.6")
        rig.legs.finish(leg)
        rig.legs.retire(leg)
        # the venue reports more after all (average over the whole order: 0.6@100 + 0.4@105)
        rig.legs.on_order(st(OrderStatus.FILLED, "1", avg="102", fee="0.102"))
        return leg

    leg = run_logged(rig, body)
    assert rig.positions.position("BTC") == D(1)
    assert rig.legs.orders_by_result == {("mexc_spot", "partial"): 1, ("mexc_spot", "late_fill"): 1}
    late = [e["data"] for e in rig.events() if e["event"] == "late_fill"]
    assert len(late) == 1 and D(late[0]["delta_qty"]) == D("0.4") and D(late[0]["delta_price"]) == D(105)
    booked = [e["data"] for e in rig.events() if e["event"] == "fill_booked"]
    assert [(b["qty"], b.get("late", False)) for b in booked] == [("0.6", False), ("0.4", True)]
    assert D(booked[1]["fee"]) == D("0.042")
    assert [e["data"]["filled_qty"] for e in rig.events() if e["event"] == "order_fill"] == ["0.4", "0.6"]


def test_an_unanswered_order_is_ambiguous_and_reconciled_by_query(tmp_path):
    """The venue filled the order but its answer never came (latency > order_timeout_ms): the leg
    is ambiguous, queried at once, and takes the venue's state; it counts as a failed order."""
    rig = Rig(tmp_path, latency_ms=400, order_timeout_ms=50)

    async def body():
        req = rig.request("a1")
        rig.audit.write("order_request", dict(req.audit_fields(), trade_id=3))
        leg = rig.legs.new(3, req, "BTC", "USDT")
        await rig.legs.await_ack(leg, rig.legs.start_send(leg))
        assert leg.ambiguous and leg.failed and not leg.final and rig.legs.open_of(3) == ["a1"]
        rig.gws["mexc_spot"].latency_ms = 0                              # the venue answers queries again
        await rig.legs.settle(leg, leg.sent_ns + 300 * 1_000_000)
        rig.legs.finish(leg)
        return leg

    leg = run_logged(rig, body)
    assert leg.final and leg.filled == D("0.5") and rig.positions.position("BTC") == D("0.5")
    assert rig.legs.orders_by_result == {("mexc_spot", "ambiguous"): 1, ("mexc_spot", "filled"): 1}
    assert rig.risk.window_failures == 1 and rig.legs.unreconciled == set()
    ev = rig.events()
    assert [e["data"]["outcome"] for e in ev if e["event"] == "order_ack"] == ["ambiguous"]
    q = [e["data"] for e in ev if e["event"] == "reconcile_query"]
    assert q[0]["why"] == "ambiguous"
    assert [e["data"]["result"] for e in ev if e["event"] == "reconcile_result"][-1] == "state"


def test_restart_adopts_open_orders_from_the_audit_trail(tmp_path):
    """A first run audits four orders and "crashes" before settling them; a new tracker folds the
    audit trail and reconciles each with its venue by client id: one the venue filled, one it
    never got (older than the grace: never placed), one too young to conclude (reconciled in the
    background once the grace has passed), one on a venue no longer connected."""
    first = Rig(tmp_path)
    second = Rig(tmp_path, venues=("mexc_spot",), not_found_grace_ms=600)

    async def crash_then_restart():
        gw = first.gws["mexc_spot"]
        known = first.request("r1")
        first.audit.write("order_request", dict(known.audit_fields(), trade_id=1))
        await gw.place(known)                                            # it reached the venue, filled
        for cid, venue in (("r2", "mexc_spot"), ("r4", "gateio_spot")):
            first.audit.write("order_request", dict(first.request(cid, venue=venue).audit_fields(), trade_id=1))
        await asyncio.sleep(0.7)                                         # r1, r2, r4: older than the grace
        first.audit.write("order_request", dict(first.request("r3").audit_fields(), trade_id=2))
        await asyncio.sleep(0.1)                                         # the log flushes the records
        fold = AuditFold()
        for line in open(first.audit_path, "rb").read().splitlines():
            fold.feed_line(line)
        assert sorted(fold.open) == ["r1", "r2", "r3", "r4"]
        second.gws["mexc_spot"] = gw                                     # the same venue, after the restart
        adopted = await second.legs.adopt_open_orders(fold.open.values(), deadline_s=0.5)
        left = set(second.legs.unreconciled)
        for _ in range(200):                                             # the background reconciler
            if second.legs.unreconciled == {"r4"}:
                break
            await asyncio.sleep(0.02)
        return adopted, left

    adopted, left = run_logged(second, crash_then_restart)
    assert (adopted.reconciled, adopted.filled) == (2, 1)
    assert left == {"r3", "r4"} and second.legs.unreconciled == {"r4"}
    assert second.positions.position("BTC") == D("0.5")
    assert second.legs.orders_by_result == {("mexc_spot", "filled"): 1, ("mexc_spot", "not_found"): 2}
    ev = second.events()
    finals = {e["data"]["client_id"]: e["data"]["result"] for e in ev if e["event"] == "order_final"}
    assert finals == {"r1": "filled", "r2": "not_found", "r3": "not_found"}
    why = {e["data"]["client_id"]: e["data"]["why"] for e in ev if e["event"] == "unreconciled"}
    assert why == {"r4": "recovery: venue not connected", "r3": "recovery"}
    assert [e["data"]["client_id"] for e in ev if e["event"] == "reconciled_late"] == ["r3"]
    # folded again, the trail has only the order on the missing venue open
    fold = AuditFold()
    for e in ev:
        fold.feed(e)
    assert sorted(fold.open) == ["r4"] and fold.positions.position("BTC") == D("0.5")


def test_fills_a_crash_cut_off_from_their_booking_are_booked_at_restart(tmp_path):
    rig = Rig(tmp_path)
    unbooked = {"c1": {"client_id": "c1", "venue": "gateio_spot", "symbol": SYM, "route": ROUTE, "side": "sell",
                       "filled_qty": "0.3", "avg_price": "101", "fee": "0.0303", "fee_asset": "USDT"}}

    async def body():
        return rig.legs.book_cut_off_fills(unbooked)

    assert run_logged(rig, body) == 1
    assert rig.positions.position("BTC") == D("-0.3")
    booked = [e["data"] for e in rig.events() if e["event"] == "fill_booked"]
    assert len(booked) == 1 and booked[0]["recovered"] is True and booked[0]["qty"] == "0.3"

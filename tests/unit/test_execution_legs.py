"""LegTracker (cexnode/execution/legs.py): each order's state machine — send, answer, stream and
query merged, settle, finish (counted, booked, audited), retire, late fills — and its restart from
the audit trail (adopt_open_orders, book_cut_off_fills), against PaperGateways over real Books
(the paper venue matches, answers, streams and is queried as a venue is)."""
from __future__ import annotations

import asyncio
from decimal import Decimal

from cexnode.execution.gateway import OrderState, OrderStatus, Side
from cexnode.execution.recovery import AuditFold
from executor_parts import ROUTE, SYM, Rig, run_logged

D = Decimal


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

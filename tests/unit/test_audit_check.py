"""The audit completeness check (tests/audit_check.py) itself: it accepts a complete order life
cycle and refuses each way an audit log can be incomplete."""
from __future__ import annotations

import copy

import pytest

from audit_check import check_audit


def _log():
    rows = [("executor_start", {}),
            ("trade_start", {"orders": [{"client_id": "b1"}, {"client_id": "s1"}]}),
            ("order_ack", {"client_id": "b1"}), ("order_ack", {"client_id": "s1"}),
            ("order_final", {"client_id": "b1", "status": "filled", "filled_qty": "0.5"}),
            ("fill_booked", {"client_id": "b1", "qty": "0.5"}),
            ("order_final", {"client_id": "s1", "status": "rejected", "filled_qty": "0"}),
            ("order_request", {"client_id": "h1"}), ("order_ack", {"client_id": "h1"}),
            ("order_final", {"client_id": "h1", "status": "cancelled", "filled_qty": "0.5"}),
            ("fill_booked", {"client_id": "h1", "qty": "0.5"}),
            ("trade_done", {})]
    return [{"seq": i + 1, "event": e, "data": d} for i, (e, d) in enumerate(rows)]


def _renumber(ev):
    return [dict(e, seq=i + 1) for i, e in enumerate(ev)]


def _drop(ev, event, cid):
    return [e for e in ev if not (e["event"] == event and e["data"].get("client_id") == cid)]


def test_complete_log_passes():
    finals = check_audit(_log(), sent={"b1", "s1", "h1"})
    assert {c: f["status"] for c, f in finals.items()} == {"b1": "filled", "s1": "rejected", "h1": "cancelled"}


@pytest.mark.parametrize("broken", [
    lambda ev: _drop(ev, "order_ack", "s1"),                       # no answer recorded
    lambda ev: _drop(ev, "order_final", "h1"),                     # no final state
    lambda ev: _renumber(ev[:6] + [copy.deepcopy(ev[4])] + ev[6:]),  # two finals
    lambda ev: _drop(ev, "fill_booked", "b1"),                     # fill not booked
    lambda ev: ev + [{"seq": 13, "event": "fill_booked", "data": {"client_id": "s1", "qty": "0"}}],  # booked, nothing filled
    lambda ev: [e for e in ev if e["event"] != "trade_done"],      # trade never ended
    lambda ev: _renumber([ev[0], ev[2], ev[1]] + ev[3:]),          # answer before the request
    lambda ev: _renumber(ev[:4] + [ev[5], ev[4]] + ev[6:]),        # booked before the final
    lambda ev: [dict(e, seq=e["seq"] if e["seq"] < 5 else e["seq"] - 1) for e in ev],   # a seq twice
])
def test_incomplete_logs_fail(broken):
    with pytest.raises(AssertionError):
        check_audit(broken(_log()))


def test_orders_sent_but_not_requested_fail():
    with pytest.raises(AssertionError):
        check_audit(_log(), sent={"b1", "s1", "h1", "x9"})


def test_withdrawn_requests_need_no_answer_and_must_not_be_sent():
    """The audit file failed when a trade's pre-send record (or a hedge's request) was written: its
    orders were never sent (orders_withdrawn); the record itself may reach the file later."""
    ev = _log()[:-1] + [
        {"seq": 12, "event": "trade_done", "data": {}},
        {"seq": 13, "event": "trade_start",
         "data": {"trade_id": 2, "orders": [{"client_id": "b2"}, {"client_id": "s2"}]}},
        {"seq": 14, "event": "orders_withdrawn", "data": {"trade_id": 2, "client_ids": ["b2", "s2"],
                                                          "record": "trade_start", "record_seq": 13}},
        {"seq": 15, "event": "order_request", "data": {"client_id": "h9"}},
        {"seq": 16, "event": "orders_withdrawn", "data": {"trade_id": 1, "client_ids": ["h9"],
                                                          "record": "order_request", "record_seq": 15}}]
    assert set(check_audit(ev, sent={"b1", "s1", "h1"})) == {"b1", "s1", "h1"}
    with pytest.raises(AssertionError):
        check_audit(ev, sent={"b1", "s1", "h1", "b2"})            # a withdrawn order reached a venue

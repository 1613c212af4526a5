"""Executor two-leg state machine against the TEST-ONLY ScriptedVenue (real matching, scripted faults).

Every scenario asserts the trade status, the final positions (within limits), that every order
is reconciled, and that the audit log (the JSONL file written by cexnode.log's AuditBackend) holds
the complete order life cycle of every client id.
"""
from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal

import pytest

from cexnode.execution.gateway import OrderStatus, Side
from audit_check import check_audit
from support.executor_harness import FEE, H, running, started
from support.scripted_venue import Opp, audit_events, risk_cfg, trading_cfg

D = Decimal
ROUTE = "BTC/USDT mexc-gate"


def opp(qty="0.5", buy="100", sell="101", route=ROUTE, **kw):
    return Opp(route=route, symbol="BTC/USDT", buy_venue="mexc_spot", sell_venue="gateio_spot",
               qty_m=int(D(qty) * 10000), buy_price_m=int(D(buy) * 100), sell_price_m=int(D(sell) * 100), **kw)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def assert_audit_complete(h: H, *, allow_unreconciled=()):
    """Every order request has an answer (ack) and a final state recorded, in that order, and every
    order sent to a venue appears as a request (tests/audit_check.py, shared with the live tests)."""
    ev = h.events()
    sent = {r.client_id for r in h.a.placed} | {r.client_id for r in h.b.placed}
    check_audit(ev, sent=sent, allow_unreconciled=allow_unreconciled)
    return ev


def test_both_legs_filled(tmp_path):
    h = H(tmp_path)

    async def main():
        async with running(h):
            return await h.ex.execute(opp(net_profit=D("0.3995")))

    res = run(main())
    assert res.status == "done" and res.buy_filled == D("0.5") and res.sell_filled == D("0.5")
    assert h.positions.position("BTC") == 0
    # 0.5×(101 − 100) − fees 0.05 − 0.0505: exactly the opportunity's net profit
    assert res.realised_pnl == D("0.3995") == h.positions.realised(ROUTE)
    assert h.ex.orders_by_result == {("mexc_spot", "filled"): 1, ("gateio_spot", "filled"): 1}
    assert h.ex.unreconciled == set() and h.risk.state == "active"
    assert h.a.free["BTC"] == D("0.5") and h.b.free["BTC"] == D("0.5")
    ev = assert_audit_complete(h)
    names = [e["event"] for e in ev]
    assert names.index("trade_start") < names.index("order_ack") < names.index("trade_done")
    assert names.count("fill_booked") == 2
    assert h.ex.roundtrip_us["mexc_spot"].count == 1


def test_one_leg_rejected_is_hedged_on_the_other_venue(tmp_path):
    h = H(tmp_path)
    h.b.script.append("reject")

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    assert res.status == "hedged", res
    assert res.residual == 0 and h.positions.position("BTC") == 0
    kinds = [r.purpose for r in h.b.placed]
    assert kinds == ["entry", "hedge"] and h.b.placed[1].side is Side.SELL
    # hedge limit: loss ≤ cap 5 → p ≥ (0.5×100×1.001 − 5)/(0.5×0.999) = 90.19..., ceil to tick
    assert h.b.placed[1].price == D("90.20")
    assert h.ex.orders_by_result[("gateio_spot", "rejected")] == 1
    ev = assert_audit_complete(h)
    assert [e for e in ev if e["event"] == "hedge_plan"][0]["data"]["kind"] == "hedge"


def test_hedge_rejected_then_unwound_within_loss_cap(tmp_path):
    h = H(tmp_path)
    h.b.script.extend(["reject", "reject"])

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    assert res.status == "unwound", res
    assert [r.purpose for r in h.a.placed] == ["entry", "unwind"] and h.a.placed[1].side is Side.SELL
    assert h.positions.position("BTC") == 0
    # bought 0.5 @100 (+0.05 fee), sold back @99.9 (−0.04995 fee)
    assert res.realised_pnl == D("-0.14995") == h.positions.realised()
    assert -res.realised_pnl <= D(5)
    assert_audit_complete(h)


def test_one_leg_partly_filled_residual_hedged(tmp_path):
    h = H(tmp_path, b_bids=(("101", "0.2"), ("95", "10")))

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    assert res.sell_filled == D("0.2") and res.buy_filled == D("0.5")
    assert res.status == "hedged" and res.residual == 0
    assert h.b.placed[1].qty == D("0.3")
    assert h.positions.position("BTC") == 0
    assert h.ex.orders_by_result[("gateio_spot", "partial")] == 1
    assert_audit_complete(h)


def test_partial_fill_loss_cap_forces_unwind(tmp_path):
    # hedging at 95 would lose 1.5585 > cap 1; the unwind on A at 99.9 loses 0.3×(100.1 − 99.8001)
    h = H(tmp_path, b_bids=(("101", "0.2"), ("95", "10")), trading=trading_cfg(hedge_loss_cap=D("1")))

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    assert res.status == "unwound", res
    hedge = h.b.placed[1]
    assert hedge.purpose == "hedge" and hedge.price == D("96.87")       # (30.03 − 1)/0.2997 = 96.86...
    assert [o.status for o in res.orders if o.client_id == hedge.client_id] == [OrderStatus.CANCELLED]
    assert h.positions.position("BTC") == 0
    loss = -(h.positions.realised() - D("0.2") * (D(101) - D(100)))
    assert loss < D(1) + D("0.2") * FEE * (D(101) + D(100))
    assert_audit_complete(h)


def test_loss_cap_unreachable_leaves_residual_and_reduces(tmp_path):
    h = H(tmp_path, a_bids=(("90", "5"),), b_bids=(("101", "0.2"), ("90", "10")),
          trading=trading_cfg(hedge_loss_cap=D("0.5")), risk=risk_cfg(max_position={"BTC": D("0.25")}))

    async def main():
        async with running(h):
            return await h.ex.execute(opp(qty="0.25"))

    res = run(main())
    assert res.status == "residual" and res.residual == D("0.05")
    assert h.positions.position("BTC") == D("0.05") <= D("0.25")
    assert len(h.a.placed) + len(h.b.placed) == 2 + 3          # hedge, unwind, hedge: none filled
    ev = assert_audit_complete(h)
    assert any(e["event"] == "residual_open" for e in ev)


@pytest.mark.parametrize("action", ["hang_filled", "5xx_filled"])
def test_venue_timeout_or_5xx_is_reconciled_by_query(tmp_path, action):
    h = H(tmp_path)
    h.a.script.append(action)

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    assert res.status == "done", res
    assert h.a.queries >= 1 and h.positions.position("BTC") == 0
    assert h.ex.orders_by_result[("mexc_spot", "ambiguous")] == 1
    assert h.ex.orders_by_result[("mexc_spot", "filled")] == 1
    ev = assert_audit_complete(h)
    ack = [e for e in ev if e["event"] == "order_ack" and e["data"]["venue"] == "mexc_spot"][0]
    assert ack["data"]["outcome"] == "ambiguous"
    rec = [e for e in ev if e["event"] == "reconcile_result" and e["data"].get("status") == "filled"]
    assert rec and rec[0]["seq"] > ack["seq"]


@pytest.mark.parametrize("action", ["hang_lost", "lost_error"])
def test_lost_order_not_found_after_grace_then_short_residual_hedged(tmp_path, action):
    h = H(tmp_path)
    h.a.script.append(action)

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    # the buy never reached A; the sell filled on B -> short 0.5, bought back on A (hedge venue)
    assert res.buy_filled == 0 and res.sell_filled == D("0.5")
    assert res.status == "hedged", res
    assert h.positions.position("BTC") == 0
    assert h.ex.orders_by_result[("mexc_spot", "not_found")] == 1
    ev = assert_audit_complete(h)
    assert any(e["event"] == "reconcile_result" and e["data"]["result"] == "not_found" for e in ev)


def test_ack_without_final_state_is_polled(tmp_path):
    h = H(tmp_path)
    h.a.script.append("ack_new_silent")
    h.b.script.append("ack_new")          # final state only on the stream

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    assert res.status == "done"
    assert h.a.queries >= 1
    assert_audit_complete(h)


def test_query_errors_then_unreconciled_then_background_reconciles(tmp_path):
    h = H(tmp_path, trading=trading_cfg(reconcile_timeout_ms=150, leg_deadline_ms=100))
    h.a.script.append("hang_filled")
    h.a.query_script.extend(["error"] * 1000)
    h.a.cancel_script.extend(["error"] * 10)

    async def main():
        async with running(h):
            res = await h.ex.execute(opp())
            state_during = h.risk.state
            unrec = set(h.ex.unreconciled)
            h.a.query_script.clear()
            for _ in range(200):
                await asyncio.sleep(0.02)
                if not h.ex.unreconciled:
                    break
            return res, state_during, unrec

    res, state_during, unrec = run(main())
    assert res.status == "unreconciled" and res.unreconciled and set(res.unreconciled) == unrec
    assert state_during == "reducing"
    assert h.ex.unreconciled == set() and h.risk.state == "active"
    assert h.positions.position("BTC") == 0            # the late-reconciled buy was booked
    ev = assert_audit_complete(h)
    assert any(e["event"] == "reconciled_late" for e in ev)


def test_balance_too_low_rejects_before_any_order(tmp_path):
    h = H(tmp_path, a_bal={"USDT": "10"}, trading=trading_cfg(max_balance_age_ms=0))

    async def main():
        async with running(h):
            r1 = await h.ex.execute(opp())
            h.b.balance_script.append("error")
            h.a.free["USDT"] = D(10000)
            r2 = await h.ex.execute(opp())
            return r1, r2

    r1, r2 = run(main())
    assert r1.status == "rejected" and r1.reason == "balance"
    assert r2.status == "rejected" and r2.reason == "balance_unavailable"
    assert not h.a.placed and not h.b.placed
    ev = h.events()
    assert [e["data"]["reason"] for e in ev if e["event"] == "trade_rejected"] == ["balance", "balance_unavailable"]


def test_balances_refetched_after_each_trade(tmp_path):
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), trading=trading_cfg(max_balance_age_ms=60000))

    async def main():
        async with running(h):
            await h.ex.execute(opp())
            await h.ex.execute(opp())

    run(main())
    assert h.a.balance_calls == 2 and h.b.balance_calls == 2        # never the cache of before the trade


def test_kill_switch_signal_and_file(tmp_path):
    kill = tmp_path / "KILL"
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), risk=risk_cfg(kill_switch_file=str(kill)))

    async def main():
        loop = asyncio.get_running_loop()
        async with running(h):
            h.risk.install_signal_handler(loop)
            try:
                os.kill(os.getpid(), signal.SIGUSR1)
                await asyncio.sleep(0.05)
                r1 = await h.ex.execute(opp())
                os.kill(os.getpid(), signal.SIGUSR1)
                await asyncio.sleep(0.05)
                r2 = await h.ex.execute(opp())
                kill.write_text("stop")
                r3 = await h.ex.execute(opp())
                st3 = h.risk.state
                kill.unlink()
                r4 = await h.ex.execute(opp())
            finally:
                h.risk.remove_signal_handler(loop)
            return r1, r2, r3, st3, r4

    r1, r2, r3, st3, r4 = run(main())
    assert (r1.status, r1.reason) == ("rejected", "state_halted")
    assert r2.status == "done"
    assert (r3.status, r3.reason, st3) == ("rejected", "state_halted", "halted")
    assert r4.status == "done"
    ev = h.events()
    states = [e["data"]["to"] for e in ev if e["event"] == "risk_state"]
    assert states == ["halted", "active", "halted", "active"]
    conds = [(e["data"]["reason"], e["data"]["raised"]) for e in ev if e["event"] == "risk_condition"]
    assert conds == [("kill_switch", True), ("kill_switch", False)] * 2
    assert [e["data"].get("detail") for e in ev if e["event"] == "risk_condition"][::2] == ["signal", "file"]


def test_kill_switch_during_trade_blocks_hedge(tmp_path):
    h = H(tmp_path)
    h.a.latency_s = h.b.latency_s = 0.05
    h.b.script.append("reject")

    async def main():
        async with running(h):
            asyncio.get_running_loop().call_later(0.02, h.risk.toggle_kill_signal)
            return await h.ex.execute(opp())

    res = run(main())
    assert res.status == "residual" and res.residual == D("0.5")
    assert len(h.b.placed) == 1                       # no hedge went out
    assert h.positions.position("BTC") == D("0.5") <= D(1)
    ev = assert_audit_complete(h)
    assert any(e["event"] == "hedge_blocked" for e in ev)


def test_error_rate_breaker_halts(tmp_path):
    h = H(tmp_path, a_asks=(("100", "50"),), b_bids=(("101", "50"),), b_bal={"USDT": "10000", "BTC": "10"},
          risk=risk_cfg(min_orders_for_breaker=6, max_position={"BTC": D(5)}))

    async def main():
        async with running(h):
            out = [await h.ex.execute(opp()) for _ in range(2)]           # 4 good orders
            h.b.script.append("reject")                                  # 1 failure in 7 > 1 %
            out.append(await h.ex.execute(opp()))
            out.append(await h.ex.execute(opp()))
            return out

    out = run(main())
    assert [r.status for r in out[:3]] == ["done", "done", "hedged"]
    assert (out[3].status, out[3].reason) == ("rejected", "state_halted")
    assert "error_rate" in h.risk.reasons and h.risk.state == "halted"
    assert h.risk.window_orders == 7 and h.risk.window_failures == 1
    assert h.positions.position("BTC") == 0
    assert_audit_complete(h)


def test_error_rate_breaker_needs_minimum_sample(tmp_path):
    h = H(tmp_path, risk=risk_cfg(min_orders_for_breaker=20))
    h.b.script.append("reject")

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    assert res.status == "hedged" and h.risk.state == "active"       # 1/3 failed, but only 3 orders


def test_stale_book_during_trade_halts_new_trades(tmp_path):
    ages = {("mexc_spot", "BTC/USDT"): 5.0, ("gateio_spot", "BTC/USDT"): 5.0}
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), book_ages=lambda: ages,
          risk=risk_cfg(stale_data_halt_ms=1000))
    h.a.latency_s = h.b.latency_s = 0.03

    async def main():
        async with running(h):
            def go_stale():
                ages[("gateio_spot", "BTC/USDT")] = None          # out of sync mid-trade
            asyncio.get_running_loop().call_later(0.01, go_stale)
            r1 = await h.ex.execute(opp())
            st = h.risk.state
            r2 = await h.ex.execute(opp())
            ages[("gateio_spot", "BTC/USDT")] = 5.0
            r3 = await h.ex.execute(opp())
            return r1, st, r2, r3

    r1, st, r2, r3 = run(main())
    assert r1.status == "done"                        # orders already out: the trade completes
    assert st == "halted" and (r2.status, r2.reason) == ("rejected", "state_halted")
    assert r3.status == "done"
    assert h.positions.position("BTC") == 0
    assert_audit_complete(h)


def test_daily_loss_limit_halts(tmp_path):
    h = H(tmp_path, a_asks=(("100", "5"),), risk=risk_cfg(daily_loss_limit=D("0.1")))
    h.b.script.extend(["reject", "reject"])            # -> unwind at a loss of 0.14995

    async def main():
        async with running(h):
            r1 = await h.ex.execute(opp())
            r2 = await h.ex.execute(opp())
            return r1, r2

    r1, r2 = run(main())
    assert r1.status == "unwound" and r1.realised_pnl == D("-0.14995")
    assert (r2.status, r2.reason) == ("rejected", "state_halted") and "daily_loss" in h.risk.reasons


def test_route_cooldown(tmp_path):
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), risk=risk_cfg(route_cooldown_ms=60000))

    async def main():
        async with running(h):
            return [await h.ex.execute(opp()), await h.ex.execute(opp()),
                    await h.ex.execute(opp(route="other route"))]

    r = run(main())
    assert [x.status for x in r] == ["done", "rejected", "done"] and r[1].reason == "cooldown"


def test_submit_skips_a_route_in_cooldown_without_auditing(tmp_path):
    """An opportunity seen again on the next book updates during the cooldown is skipped and
    counted; no task, no trade_rejected record (no order is involved); after it, trades again."""
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), risk=risk_cfg(route_cooldown_ms=150))

    async def main():
        async with running(h):
            r1 = await h.ex.submit(opp(qty="0.1"))
            skipped = [h.ex.submit(opp(qty="0.1")) for _ in range(50)]
            other = await h.ex.submit(opp(qty="0.1", route="other route"))
            await asyncio.sleep(0.2)
            r2 = await h.ex.submit(opp(qty="0.1"))
            return r1, skipped, other, r2

    r1, skipped, other, r2 = run(main())
    assert (r1.status, other.status, r2.status) == ("done", "done", "done"), r2.reason
    assert skipped == [None] * 50 and h.ex.skipped == {"cooldown": 50} and h.ex.opportunities == 53
    events = [e["event"] for e in audit_events(h.audit_path)]
    assert "trade_rejected" not in events and events.count("trade_done") == 3


def test_pre_trade_limits(tmp_path):
    h = H(tmp_path, risk=risk_cfg(max_position={"BTC": D("0.4")}, max_notional_per_trade=D("1000"),
                                  max_open_exposure=D("30")))

    async def main():
        async with running(h):
            return [await h.ex.execute(opp(qty="0.5")),            # position limit (one leg alone)
                    await h.ex.execute(opp(qty="0.3")),            # exposure 0.3×101 > 30
                    await h.ex.execute(opp(qty="0.2"))]

    r = run(main())
    assert [x.reason for x in r[:2]] == ["position_limit", "exposure_limit"]
    assert r[2].status == "done"
    h2 = H(tmp_path / "x", risk=risk_cfg(max_notional_per_trade=D("40")))
    (tmp_path / "x").mkdir()

    async def main2():
        async with running(h2):
            return await h2.ex.execute(opp(qty="0.5"))

    assert run(main2()).reason == "max_notional"


def test_submit_runs_immediately_and_skips_busy_route(tmp_path):
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),))
    h.a.latency_s = h.b.latency_s = 0.02

    async def main():
        async with running(h):
            t1 = h.ex.submit(opp())
            t2 = h.ex.submit(opp())                 # same route, first still running
            assert t1 is not None and t2 is None and h.ex.inflight == 1
            res = await t1
            t3 = h.ex.submit(opp())
            return res, await t3

    r1, r3 = run(main())
    assert r1.status == "done" and r3.status == "done"
    assert h.ex.skipped == {"route_busy": 1} and h.ex.inflight == 0 and h.ex.opportunities == 3
    assert h.ex.trades_by_status[(ROUTE, "done")] == 2


def test_late_and_duplicate_stream_updates_are_harmless(tmp_path):
    h = H(tmp_path)

    async def main():
        async with running(h):
            res = await h.ex.execute(opp())
            st = [o for o in res.orders if o.side is Side.BUY][0]
            for cb in h.a.cbs:                       # a replayed update after the trade
                cb(st)
            return res

    res = run(main())
    assert res.status == "done" and h.positions.position("BTC") == 0
    assert h.positions.fill_count == 2
    ev = h.events()
    assert [e["data"]["known"] for e in ev if e["event"] == "order_update"][-1] is False


def test_audit_failure_halts(tmp_path):
    h = H(tmp_path)

    async def main():
        # no log system: audit() raises -> nothing may be sent
        return await h.ex.execute(opp())

    from cexnode._core import logring as lr
    lr.set_audit_sink(None)
    res = run(main())
    assert res.status == "error" and not h.a.placed and not h.b.placed
    assert h.risk.state == "halted" and "audit" in h.risk.reasons


def test_metrics_registration(tmp_path):
    from prometheus_client import generate_latest
    from cexnode.metrics import NodeMetrics
    h = H(tmp_path)

    async def main():
        async with running(h):
            await h.ex.execute(opp())

    run(main())
    m = NodeMetrics()
    h.ex.register_metrics(m)
    text = generate_latest(m.registry).decode()
    assert 'cexnode_orders_total{result="filled",venue="mexc_spot"} 1.0' in text
    assert 'cexnode_trades_total{route="%s",status="done"} 1.0' % ROUTE in text
    assert "cexnode_risk_state 0.0" in text
    assert 'cexnode_order_roundtrip_microseconds_count{venue="gateio_spot"} 1.0' in text


def test_unconfigured_route_is_rejected(tmp_path):
    h = H(tmp_path)

    async def main():
        async with running(h):
            o = opp()
            o.sell_venue = "gateio_futures"
            return await h.ex.execute(o)

    res = run(main())
    assert (res.status, res.reason) == ("rejected", "not_configured") and not h.a.placed


def test_inconsistent_venue_state_halts_with_the_open_orders_named(tmp_path):
    """A venue report that cannot be booked (filled without a price) is a bug somewhere: the trade
    ends in 'error', risk halts (latched), and the audit log says which trade and why."""
    import dataclasses
    h = H(tmp_path)
    real = h.a._match

    def broken(req):
        return dataclasses.replace(real(req), avg_price=None)
    h.a._match = broken

    async def main():
        async with running(h):
            r1 = await h.ex.execute(opp())
            r2 = await h.ex.execute(opp())
            return r1, r2

    r1, r2 = run(main())
    assert r1.status == "error" and "executor_error" in h.risk.reasons
    assert (r2.status, r2.reason) == ("rejected", "state_halted")
    h.risk.clear("executor_error")
    assert h.risk.refresh() in ("active", "reducing")
    ev = h.events()
    assert [e for e in ev if e["event"] == "trade_error"][0]["data"]["trade_id"] == 1


def test_hedge_order_timing_out_is_reconciled(tmp_path):
    h = H(tmp_path)
    h.b.script.extend(["reject", "hang_filled"])         # entry rejected; the hedge's answer never comes

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    assert res.status == "hedged" and h.positions.position("BTC") == 0
    assert h.ex.orders_by_result[("gateio_spot", "ambiguous")] == 1
    assert_audit_complete(h)


def test_both_legs_rejected_nothing_filled_counts_failures(tmp_path):
    h = H(tmp_path)
    h.a.script.append("reject")
    h.b.script.append("reject")

    async def main():
        async with running(h):
            return await h.ex.execute(opp())

    res = run(main())
    assert res.status == "nothing_filled" and res.residual == 0 and h.positions.fill_count == 0
    assert h.risk.window_failures == 2 and h.risk.window_orders == 2
    assert_audit_complete(h)


def test_stream_updates_partial_then_final_and_stale_after_final(tmp_path):
    import dataclasses
    h = H(tmp_path)
    h.a.script.append("ack_new_silent")

    async def main():
        async with running(h):
            task = asyncio.get_running_loop().create_task(h.ex.execute(opp()))
            for _ in range(50):
                await asyncio.sleep(0)
                if h.a.placed:
                    break
            await asyncio.sleep(0.001)
            cid = h.a.placed[0].client_id
            final = h.a.orders[cid]
            partial = dataclasses.replace(final, status=OrderStatus.PARTIALLY_FILLED, filled_qty=D("0.2"))
            for cb in h.a.cbs:
                cb(partial)
                cb(final)
                cb(partial)                      # late, older: ignored
            return await task

    res = run(main())
    assert res.status == "done" and res.buy_filled == D("0.5")
    assert h.positions.position("BTC") == 0 and h.positions.fill_count == 2


def test_inflight_limit_and_two_routes(tmp_path):
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), trading=trading_cfg(max_inflight_trades=2))
    h.a.latency_s = h.b.latency_s = 0.02

    async def main():
        async with running(h):
            t1 = h.ex.submit(opp(route="r1"))
            t2 = h.ex.submit(opp(route="r2"))
            t3 = h.ex.submit(opp(route="r3"))
            return t3, await t1, await t2

    t3, r1, r2 = run(main())
    assert t3 is None and r1.status == r2.status == "done"
    assert h.ex.skipped == {"inflight_limit": 1}
    rows = h.ex.summary_rows()
    assert {(r["route"], r["trades"], r["position"]) for r in rows} == {("r1", 1, "0.0000"), ("r2", 1, "0.0000")}


def test_concurrent_trades_do_not_spend_the_same_funds(tmp_path):
    """Two routes trade through the same venues at once. The second trade's balances, fetched while
    the first one's buy is on its way (the venue has not processed it yet), still show the funds
    that buy will take: the first trade reserved them, so the second is refused up front
    ("balance") instead of sending a buy the venue rejects and leaving a one-leg position."""
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), a_bal={"USDT": "80", "BTC": "0"},
          trading=trading_cfg(max_inflight_trades=2))
    h.a.latency_s = h.b.latency_s = 0.03

    async def main():
        async with running(h):
            await h.ex.refresh_balances()
            t1 = h.ex.submit(opp(route="r1"))
            await asyncio.sleep(0.01)            # r1's orders are out, not processed by the venues
            reserved = h.ex.status()["reserved"]
            for v in ("mexc_spot", "gateio_spot"):   # the balance check's one-asset form == the map's
                for a in ("USDT", "BTC", "ETH"):
                    assert h.ex.balances.free_of(v, a) == h.ex.balances.free(v).get(a, D(0)), (v, a)
            assert h.ex.balances.free_of("mexc_spot", "USDT") == -D("50.05")    # cache dropped at the send; reserved
            t2 = h.ex.submit(opp(route="r2"))
            return reserved, await t1, await t2

    reserved, r1, r2 = run(main())
    # 0.5 × 100 × (1 + 0.001) quote on the buy venue, 0.5 base on the sell venue
    assert {v: {a: D(x) for a, x in r.items()} for v, r in reserved.items()} == \
        {"mexc_spot": {"USDT": D("50.05")}, "gateio_spot": {"BTC": D("0.5")}}
    assert r1.status == "done"
    assert r2.status == "rejected" and r2.reason == "balance", r2
    assert [r.route for r in h.a.placed] == ["r1"] and [r.route for r in h.b.placed] == ["r1"]
    assert h.positions.position("BTC") == 0 and h.a.free["USDT"] == D("29.95")
    ev = assert_audit_complete(h)
    rej = [e["data"] for e in ev if e["event"] == "trade_rejected"]
    assert len(rej) == 1 and rej[0]["route"] == "r2"
    assert "need 50.05" in rej[0]["detail"] and "have 29.95" in rej[0]["detail"]
    assert "reserving for trades in flight: mexc_spot USDT 50.05" in rej[0]["detail"]


def test_reservations_end_with_their_trade(tmp_path):
    """Both trades fit the funds and run at once; once they have ended nothing stays reserved, so
    a third trade is checked against the venues' balances alone (which now include the fills)."""
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), a_bal={"USDT": "160", "BTC": "0"},
          b_bal={"USDT": "10000", "BTC": "1.5"}, trading=trading_cfg(max_inflight_trades=2))
    h.a.latency_s = h.b.latency_s = 0.03

    async def main():
        async with running(h):
            await h.ex.refresh_balances()
            t1 = h.ex.submit(opp(route="r1"))
            await asyncio.sleep(0.01)
            t2 = h.ex.submit(opp(route="r2"))
            await asyncio.sleep(0.01)
            both, scraped = h.ex.status()["reserved"], generate_latest(m.registry).decode()
            r1, r2 = await t1, await t2
            after = h.ex.status()["reserved"]
            r3 = await h.ex.execute(opp(route="r3"))
            return r1, r2, both, scraped, after, r3, h.ex.status()["reserved"], generate_latest(m.registry).decode()

    from prometheus_client import generate_latest
    from cexnode.metrics import NodeMetrics
    m = NodeMetrics()
    h.ex.register_metrics(m)
    r1, r2, both, scraped, after, r3, last, scraped_last = run(main())
    assert r1.status == r2.status == "done"
    assert D(both["mexc_spot"]["USDT"]) == D("100.10") and D(both["gateio_spot"]["BTC"]) == D("1.0")
    assert 'cexnode_balance_reserved{asset="USDT",venue="mexc_spot"} 100.1' in scraped
    assert 'cexnode_balance_reserved{asset="BTC",venue="gateio_spot"} 1.0' in scraped
    assert after == {} and last == {} and "cexnode_balance_reserved{" not in scraped_last
    # 160 − 2 × 50.05 = 59.9 ≥ 50.05
    assert r3.status == "done" and h.a.free["USDT"] == D("9.85")
    assert h.positions.position("BTC") == 0
    assert_audit_complete(h)


def test_order_taken_as_never_placed_that_fills_later_is_booked(tmp_path):
    """The venue did not know the order within the grace period, then executed it after all: the
    late stream fill is audited, booked and the position limits re-checked (never silently lost)."""
    h = H(tmp_path, risk=risk_cfg(max_position={"BTC": D("0.6")}))
    h.a.script.append("hang_lost")

    async def main():
        async with running(h):
            res = await h.ex.execute(opp())
            cid = h.a.placed[0].client_id
            late = h.a._match(h.a.placed[0])          # the venue executes the old request now
            h.a.orders[cid] = late
            for cb in h.a.cbs:
                cb(late)
            return res, late

    res, late = run(main())
    assert res.status == "hedged" and late.filled_qty == D("0.5")
    assert h.positions.position("BTC") == D("0.5")               # booked, not lost
    assert h.ex.orders_by_result[("mexc_spot", "late_fill")] == 1
    ev = h.events()
    assert [e["event"] for e in ev if e["event"] in ("late_fill", "fill_booked")][-2:] == ["late_fill", "fill_booked"]


def test_opportunity_stale_after_balance_refresh_is_dropped(tmp_path):
    import time as _t
    h = H(tmp_path, trading=trading_cfg(max_opportunity_age_ms=50))
    orig = h.a.balances

    async def slow_balances():
        await asyncio.sleep(0.08)                 # the REST refresh takes longer than the budget
        return await orig()
    h.a.balances = slow_balances

    async def main():
        async with running(h):
            r1 = await h.ex.execute(opp(t=_t.time_ns()))
            r2 = await h.ex.execute(opp(t=_t.time_ns()))      # balances cached now: goes out at once
            return r1, r2

    r1, r2 = run(main())
    assert (r1.status, r1.reason) == ("rejected", "opportunity_stale") and r2.status == "done"
    assert len(h.a.placed) == 1


def test_stop_waits_for_the_trade_in_flight(tmp_path):
    h = H(tmp_path)
    h.a.latency_s = h.b.latency_s = 0.05

    async def main():
        async with started(h):
            task = h.ex.submit(opp())
            await h.ex.stop(timeout_s=5)            # the trade manages live orders: it is finished first
            return task.done(), task.result()

    done, res = run(main())
    assert done and res.status == "done" and h.positions.position("BTC") == 0
    assert_audit_complete(h)


def test_stop_starts_no_trade_while_it_waits(tmp_path):
    """The feeds run until the executor has stopped: an opportunity arriving while stop() waits for
    the trade in flight must not start a trade whose gateways are about to stop (seen in the demo:
    a trade begun after stop, its Gate answer lost with the connection, no final record)."""
    h = H(tmp_path, a_asks=(("100", "2"),), b_bids=(("101", "2"),), trading=trading_cfg(max_inflight_trades=2))
    h.a.latency_s = h.b.latency_s = 0.05

    async def main():
        async with started(h):
            first = h.ex.submit(opp())
            stopping = asyncio.get_running_loop().create_task(h.ex.stop(timeout_s=5))
            await asyncio.sleep(0.01)                      # stop() is waiting for the first trade
            late = h.ex.submit(opp(route="BTC/USDT other"))
            await stopping
            return first.result(), late

    res, late = run(main())
    assert res.status == "done" and late is None and h.ex.skipped == {"stopping": 1}
    assert len(h.a.placed) == len(h.b.placed) == 1 and h.positions.position("BTC") == 0
    assert [e["event"] for e in h.events()].count("trade_start") == 1
    assert_audit_complete(h)


def test_stop_cancels_a_trade_past_its_timeout_and_reports_its_orders(tmp_path):
    h = H(tmp_path)
    h.b.latency_s = 30                                     # Gate never answers within the stop timeout

    async def main():
        async with started(h):
            task = h.ex.submit(opp())
            await asyncio.sleep(0.05)
            await h.ex.stop(timeout_s=0.2)
            return task

    task = run(main())
    assert task.cancelled()
    ev = h.events()
    cancelled = [e["data"] for e in ev if e["event"] == "trade_cancelled"]
    stop = [e["data"] for e in ev if e["event"] == "stop_unreconciled"]
    final = {e["data"]["client_id"] for e in ev if e["event"] == "order_final"}
    placed = {r.client_id for r in h.a.placed + h.b.placed}
    assert len(cancelled) == 1
    open_orders = set(cancelled[0]["open_orders"])        # the orders the trade still waited for
    assert open_orders and open_orders <= placed and not open_orders & final
    assert open_orders | final >= placed                   # every order sent: final, or reported open
    assert stop == [{"client_ids": sorted(cancelled[0]["open_orders"])}]
    assert h.ex.unreconciled == set(cancelled[0]["open_orders"])
    assert "unreconciled" in h.risk.status()["reasons"] and h.risk.state == "reducing"


def test_warm_poll_dry_runs_once_per_interval(tmp_path):
    """The busy-poll loop calls warm_poll on every turn: one dry run per warm_interval_ms (sub-ms),
    none while a trade is in flight or before the executor started, and with busy_warm set the
    executor's 1 ms timer leaves the warming to it."""
    import dataclasses
    import time as _time
    h = H(tmp_path)

    async def main():
        async with running(h):
            h.ex.busy_warm = True
            h.ex.reconfigure(dataclasses.replace(h.ex.trading, warm_interval_ms=0.5))
            assert (await h.ex.submit(opp())).status == "done"    # the opportunity warm() runs with
            await asyncio.sleep(0.01)                      # the 1 ms timer fires: it must not warm
            assert h.ex.warmups == 0
            counts = []
            t0 = _time.monotonic_ns()
            for i in range(3):                             # the loop's clock readings, 0.6 ms apart
                now = t0 + i * 600_000
                h.ex.warm_poll(now)
                h.ex.warm_poll(now + 400_000)              # within the interval: not yet due
                counts.append(h.ex.warmups)
            while _time.monotonic_ns() < now + 600_000:    # past the last one's interval
                pass
            h.ex.warm_poll()                               # the clock read by the executor itself
            assert h.ex.warmups == 4
            h.ex.inflight += 1                             # a trade in flight: no dry run
            h.ex.warm_poll()
            busy = h.ex.warmups
            h.ex.inflight -= 1
            return counts, busy

    counts, busy = run(main())
    assert counts == [1, 2, 3] and busy == 4 and h.ex.warm_errors == 0
    h.ex.warm_poll()                                       # stopped: nothing
    assert h.ex.warmups == 4


def test_reconfigure_applies_reloaded_sections(tmp_path):
    import dataclasses
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), risk=risk_cfg(route_cooldown_ms=0))

    async def main():
        async with running(h):
            r1 = await h.ex.execute(opp())
            h.risk.reconfigure(dataclasses.replace(h.risk.cfg, route_cooldown_ms=60000))
            r2 = await h.ex.execute(opp())
            h.ex.reconfigure(dataclasses.replace(h.ex.trading, hedge_loss_cap=D("0.01")))
            h.risk.reconfigure(dataclasses.replace(h.risk.cfg, route_cooldown_ms=0))
            h.b.script.extend(["reject"] * 4)            # nothing within a 0.01 loss cap
            r3 = await h.ex.execute(opp())
            return r1, r2, r3

    r1, r2, r3 = run(main())
    assert r1.status == "done" and r2.reason == "cooldown"
    assert r3.status == "residual" and r3.residual == D("0.5")
    assert [o.purpose for o in h.a.placed][-1] == "unwind" and h.a.placed[-1].price >= D("100.19")


def test_trade_log_line_shows_pnl_to_1e8():
    """Exact P&L can carry dozens of digits (FIFO lots at fractional unit prices): the 'trade
    finished' log line shows it to 1e-8, plain notation; short values unchanged."""
    from cexnode.execution.executor import _display

    D = Decimal
    assert _display(D("3.917857044500000000000000286")) == "3.91785704"
    assert _display(D("-0.1004153846905537459283388887")) == "-0.10041538"
    assert _display(D("100.000000001")) == "100"            # no 1E+2
    assert _display(D("-0.000000000012")) == "0"            # no -0
    assert _display(D("1.5")) == "1.5" and _display(D("0E-12")) == "0"


def test_a_leg_over_rest_leaves_before_a_websocket_leg(tmp_path):
    """Both place() calls start in the same loop step, in the order their tasks were made. A gateway
    that writes its order at once (``fast_send``: Gate's logged-in WebSocket API) goes after one
    that builds an HTTP request first, so the later order reaches its venue sooner; otherwise the
    buy leg goes first."""
    h = H(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),), b_bal={"USDT": "10000", "BTC": "5"})
    order = []
    for v in (h.a, h.b):
        place = v.place

        async def recorded(req, _place=place, _v=v):
            order.append(_v.venue)
            return await _place(req)

        v.place = recorded

    async def main():
        async with running(h):
            r1 = await h.ex.submit(opp())              # neither is fast: buy (A) first
            h.a.fast_send = True                       # A's orders now go over a WebSocket API
            r2 = await h.ex.submit(opp())
            h.b.fast_send = True                       # both fast: buy first again
            r3 = await h.ex.submit(opp())
            return r1, r2, r3

    rs = run(main())
    assert [r.status for r in rs] == ["done"] * 3
    assert order == ["mexc_spot", "gateio_spot", "gateio_spot", "mexc_spot", "mexc_spot", "gateio_spot"], order
    assert_audit_complete(h)

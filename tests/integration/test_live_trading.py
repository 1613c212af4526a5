"""Live trading end to end: the node in ``trading.mode: live`` (built from YAML, as ``python -m
cexnode`` builds it) against the embedded simulator over 127.0.0.1 — signed orders, the venues'
matching engines, private-stream fills — with dislocations injected deterministically and each
failure mode of issue 7 exercised: one leg rejected, one leg partly filled, a venue timing out
during a trade, balance too low, the kill switch (file and SIGUSR1), the error-rate breaker, a
stale book during a trade.

After every scenario (the node stopped cleanly): every order the executor sent is in the
simulator's order records with the same final status and filled quantity, nothing is left
unreconciled, the audit log is complete (request -> ack -> exactly one final -> fill booked), no
credential is in it, positions are within ``risk.max_position``, and realised P&L of fully filled
trades equals the opportunity's within fees and rounding.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from audit_check import audit_events, check_audit
from cexnode.config import load_config_text
from cexnode.node import Node
from support.live_node import KEY, MAX_POS, SECRET, SYM, VENUES, YAML, Live, check_end, run, wait_for


def _fee_lot(res) -> tuple[Decimal, Decimal]:
    """The base a trade's venues took as fees (the short lot it leaves open on its route) and the
    highest average price among its fills."""
    base = res.symbol.split("/")[0]
    fills = [o for o in res.orders if o.filled_qty > 0]
    return (sum((o.fee for o in fills if o.fee_asset == base), Decimal(0)),
            max((o.avg_price for o in fills), default=Decimal(0)))


def pnl_check(res, lv: Live, earlier=()) -> Decimal:
    """Realised vs expected P&L of a trade whose buys and sells (entry, hedge, unwind) filled the
    same quantity, from the fills the venues reported.

    The expectation (DESIGN §4) is ``Σ sell × (1 − fee_B) − Σ buy × (1 + fee_A)`` with the fee
    rates in quote. Each fill's fee is asserted to be its venue's configured taker rate × notional,
    up to rate × qty × tick. The tolerance is the rounding: what each fee differs from rate ×
    notional (valued in quote) plus qty × tick per order (an average price rounded to the tick).

    * Cash P&L of the fills (a base-asset fee valued at its fill's price) == expected.
    * Realised P&L: spot venues charge the buy's fee in base, which leaves the account: the trade
      ends ``f`` base short, an open lot the PositionBook does not realise. Two filled orders,
      the buy booked first: realised == expected − f × (sell avg − buy avg); the sell first:
      realised == expected + f × buy avg (the fee's lot opened at 0), up to the rounding;
      otherwise it differs from the cash P&L by at most the value of ``f``.
    * ``earlier``: the trades booked before this one on the same route. Their fee lots are still
      open (the PositionBook's lots are FIFO per route and asset), and this trade's fills close
      them first. Such a lot was opened at the earlier trade's sell price (buy booked first) or at 0
      (sell booked first: which leg's fill arrives first is a race). Each changes what this trade
      realises by at most its size × the higher of its opening price and this trade's prices.
    Returns ``f``."""
    base = res.symbol.split("/")[0]
    fills = [o for o in res.orders if o.filled_qty > 0]
    buys, sells = [o for o in fills if o.side.value == "buy"], [o for o in fills if o.side.value == "sell"]
    qty = sum(o.filled_qty for o in buys)
    assert qty == sum(o.filled_qty for o in sells) > 0, res
    cost, proceeds = sum(o.filled_qty * o.avg_price for o in buys), sum(o.filled_qty * o.avg_price for o in sells)
    f_base = sum((o.fee for o in fills if o.fee_asset == base), Decimal(0))
    fees_quote = sum((o.fee * o.avg_price if o.fee_asset == base else o.fee for o in fills), Decimal(0))
    tol = Decimal(0)
    top = max(o.avg_price for o in fills)
    carried = sum((f * max(p, top) for f, p in map(_fee_lot, earlier)), Decimal(0))
    for o in fills:
        assert o.fee_asset in (base, "USDT") and o.fee > 0, o          # every fill carries its fee
        rate = lv.ex.rules[(o.venue, o.symbol)].taker_fee
        tick = lv.sim.venue(o.venue).instrument(SYM).tick
        fee_quote = o.fee * o.avg_price if o.fee_asset == base else o.fee
        # the venue charged the configured taker rate on what it paid out (base on a buy, quote on
        # a sell), up to the rounding of the average price the fee is valued at here
        dev = abs(fee_quote - rate * o.filled_qty * o.avg_price)
        assert dev <= rate * o.filled_qty * tick, (o, rate, dev)
        tol += dev + o.filled_qty * tick
    cash = proceeds - cost - fees_quote
    assert abs(cash - res.expected_pnl) <= tol, (cash, res.expected_pnl, tol, fills)
    b_avg, s_avg = cost / qty, proceeds / qty
    if len(fills) == 2:
        if fills[0] in buys:      # the fee's base left a long lot: the sell realised f less of it (f short at s)
            explained = res.realised_pnl + f_base * (s_avg - b_avg)
        else:                     # the buy closed the short and the fee opened one at 0: not yet realised
            explained = res.realised_pnl - f_base * b_avg
        assert abs(explained - res.expected_pnl) <= tol + carried, (res.realised_pnl, res.expected_pnl, f_base, tol, fills)
    else:
        assert abs(res.realised_pnl - cash) <= f_base * max(s_avg, b_avg) + tol + carried, (res.realised_pnl, cash, f_base)
    return f_base


# -- scenarios ---------------------------------------------------------------------------------------------

def test_dislocations_trade_and_pnl_matches_the_opportunity(tmp_path, monkeypatch):
    async def main():
        async with Live(tmp_path, monkeypatch) as lv:
            out = [await lv.trade(cheap) for cheap in ("mexc_spot", "gateio_spot", "mexc_spot")]
            return lv, out
    lv, results = run(main())
    check_end(lv)
    short = Decimal(0)
    for i, res in enumerate(results):
        assert res.status == "done" and res.residual == 0, res
        assert res.buy_filled == res.sell_filled == Decimal("0.01")
        short += pnl_check(res, lv, results[:i])
    assert sum(r.realised_pnl for r in results) > 0
    # all that is left open is the base the venues took as fees
    assert lv.engine.positions.positions() == {"BTC": -short}
    assert short > 0


def _hedged_after(tmp_path, monkeypatch, arm, venue):
    """One trade (MEXC cheap) with ``arm(faults)`` applied to ``venue`` first; checks the end state,
    that the trade ended hedged with no residual and its P&L. Returns (live, result, audit events,
    {venue: entry client id}, {client id: order_final data})."""
    async def main():
        async with Live(tmp_path, monkeypatch) as lv:
            arm(lv.sim.venue(venue).faults)
            res = await lv.trade("mexc_spot")
            return lv, res
    lv, res = run(main())
    ev = check_end(lv)
    assert res.status == "hedged" and res.residual == 0, res
    pnl_check(res, lv)
    # the trade's own entry orders (the rest of a half-taken dislocation can start a second trade)
    entry = {o["venue"]: o["client_id"] for e in ev if e["event"] == "trade_start"
             and e["data"]["trade_id"] == res.trade_id for o in e["data"]["orders"]}
    finals = {e["data"]["client_id"]: e["data"] for e in ev if e["event"] == "order_final"}
    return lv, res, ev, entry, finals


@pytest.mark.parametrize("venue", VENUES)
def test_one_leg_rejected_is_hedged_or_unwound(tmp_path, monkeypatch, venue):
    """One entry order is refused by the venue (insufficient balance there), the other fills:
    the residual is closed with IOC orders (hedge on the other venue first, else unwind) within
    ``hedge_loss_cap``; one failed order of three is under ``min_orders_for_breaker``: still active."""
    # the other venue still quotes the opportunity's price: the hedge completes the arbitrage there
    lv, res, ev, entry, finals = _hedged_after(tmp_path, monkeypatch, lambda f: f.reject_orders(1), venue)
    assert finals[entry[venue]]["status"] == "rejected" and finals[entry[venue]]["ambiguous"] is False
    other = entry[next(v for v in VENUES if v != venue)]
    assert finals[other]["status"] == "filled"
    plans = [e["data"] for e in ev if e["event"] == "hedge_plan" and e["data"]["trade_id"] == res.trade_id]
    closing = [c for c, f in finals.items() if f["purpose"] in ("hedge", "unwind") and f["trade_id"] == res.trade_id]
    assert plans and len(closing) == len(plans) and all(finals[c]["filled_qty"] != "0" for c in closing[-1:])
    assert res.realised_pnl >= -lv.node.cfg.trading.hedge_loss_cap
    assert lv.risk.state == "active" and lv.ex.orders_by_result[(venue, "rejected")] == 1
    assert lv.engine.positions.positions()["BTC"] <= 0 and abs(lv.engine.positions.positions()["BTC"]) < Decimal("0.0001")


@pytest.mark.parametrize("venue", VENUES)
def test_one_leg_partly_filled_closes_the_rest(tmp_path, monkeypatch, venue):
    """One entry order fills only half (the IOC rest is cancelled by the venue): the other leg's
    extra half is hedged or unwound; the partial order's audited final state is the venue's."""
    lv, res, ev, entry, finals = _hedged_after(tmp_path, monkeypatch,
                                               lambda f: f.partial_fill_next(Decimal("0.5")), venue)
    part = finals[entry[venue]]
    assert part["status"] == "cancelled" and part["result"] == "partial"
    assert Decimal(part["filled_qty"]) * 2 == Decimal(part["qty"]) == Decimal("0.01")
    assert finals[entry[next(v for v in VENUES if v != venue)]]["status"] == "filled"
    closing = [f for f in finals.values() if f["purpose"] in ("hedge", "unwind") and f["trade_id"] == res.trade_id]
    assert sum(Decimal(f["filled_qty"]) for f in closing) == Decimal("0.005")
    assert res.realised_pnl >= -lv.node.cfg.trading.hedge_loss_cap
    assert lv.risk.state == "active"


@pytest.mark.parametrize("venue,fault,stream", [
    ("mexc_spot", "timeout", "live"), ("mexc_spot", "timeout", "stalled"), ("gateio_spot", "timeout", "stalled"),
    ("gateio_spot", "drop", "live"), ("mexc_spot", "5xx", "stalled"), ("gateio_spot", "5xx", "live"),
])
def test_venue_timing_out_during_a_trade_is_reconciled(tmp_path, monkeypatch, venue, fault, stream):
    """The venue executes the order but its answer is lost: ``timeout`` — never answered (MEXC:
    the REST request hangs; Gate: the WebSocket order API sends nothing), ambiguous after
    ``order_timeout_ms``; ``drop`` — the connection carrying it is cut; ``5xx`` — answered with a
    server error. With the private stream up the fill arrives there; with the stream stalled
    (pushes dropped) the executor queries the venue and takes its state — filled — from the
    answer. Either way nothing is assumed and the trade completes."""
    async def main():
        async with Live(tmp_path, monkeypatch) as lv:
            v = lv.sim.venue(venue)
            if fault == "5xx":
                v.faults.order_5xx(1)
            else:
                v.faults.order_timeout(1, drop=fault == "drop")
            if stream == "stalled":
                v.faults.private_stream_stall(10, drop=True)
            res = await lv.trade("mexc_spot")
            return lv, res
    lv, res = run(main())
    ev = check_end(lv)
    cid = next(o["client_id"] for e in ev if e["event"] == "trade_start" for o in e["data"]["orders"] if o["venue"] == venue)
    mine = [e for e in ev if (e["data"] or {}).get("client_id") == cid]
    ack = [e["data"] for e in mine if e["event"] == "order_ack"]
    assert len(ack) == 1 and ack[0]["outcome"] == "ambiguous", ack
    if fault == "timeout":
        assert ack[0]["rt_us"] >= 1_500_000                     # trading.order_timeout_ms
    else:
        assert ack[0]["rt_us"] < 1_500_000                      # told at once: no waiting for the timeout
    final = [e["data"] for e in mine if e["event"] == "order_final"][0]
    assert final["ambiguous"] is True and final["status"] == "filled", final
    answers = [e["data"] for e in mine if e["event"] == "reconcile_result"]
    if stream == "stalled":
        assert not [e for e in mine if e["event"] == "order_update"]         # the stream said nothing
        assert answers and answers[0]["result"] == "state" and answers[0]["status"] == "filled", answers
        assert [e["event"] for e in mine].index("reconcile_result") < [e["event"] for e in mine].index("order_final")
    else:
        assert any(e["event"] == "order_fill" and e["data"]["source"] == "stream" for e in mine)
    assert res.status == "done" and res.residual == 0, res
    pnl_check(res, lv)
    assert lv.ex.orders_by_result[(venue, "ambiguous")] == 1


@pytest.mark.parametrize("reason,kw,detail", [
    # the executor's guard: opportunities sized to the balances would not ask for this much
    ("balance", dict(mexc_usdt=50, size_to_balances="false"), "mexc_spot USDT: need "),   # 0.01 BTC needs ~650 USDT
    ("position_limit", dict(max_pos="0.005"), "BTC 0 ± 0.01"),  # one leg alone: 0.01 > 0.005
], ids=["balance", "position_limit"])
def test_trade_refused_before_any_order(tmp_path, monkeypatch, reason, kw, detail):
    """Balance too low on the buy venue (fresh REST balances), or a leg alone would take the
    position past ``risk.max_position``: the trade is refused before any order is sent, audited
    as ``trade_rejected`` with the reason; the node stays active (nothing failed)."""
    async def main():
        async with Live(tmp_path, monkeypatch, **kw) as lv:
            res = await lv.trade("mexc_spot")
            return lv, res
    lv, res = run(main())
    ev = check_end(lv)
    assert res.status == "rejected" and res.reason == reason, res
    assert not lv.sim_orders() and not [e for e in ev if e["event"] in ("trade_start", "order_request")]
    assert sum(lv.engine.adapters[v].gateway.placed for v in VENUES) == 0
    rej = [e["data"] for e in ev if e["event"] == "trade_rejected"]
    assert len(rej) == 1 and rej[0]["reason"] == reason and detail in rej[0]["detail"], rej
    assert lv.risk.state == "active" and not lv.engine.positions.positions().get("BTC")


def test_kill_switch_by_file_and_by_signal(tmp_path, monkeypatch):
    """The kill file appears and a dislocation follows at once: the trade is refused before any
    order (``trade_rejected``, state halted); the file gone, SIGUSR1 to the process engages the
    switch (the node's handler), the next dislocation is skipped; a second SIGUSR1 releases it and
    the next one trades. Nothing is sent while the switch is engaged; metrics show it."""
    async def main():
        async with Live(tmp_path, monkeypatch) as lv:
            await lv.ex.refresh_balances()
            lv.kill_path.write_text("stop")                 # no refresh by the test: the node sees the file
            skipped = lv.ex.skipped.get("risk_halted", 0)
            undo = lv.dislocate("mexc_spot")
            # refused in the pre-trade check (or, if the executor's 0.5 s risk tick saw the file
            # first, skipped at submit): either way no order
            await wait_for(lambda: lv.ex.results or lv.ex.skipped.get("risk_halted", 0) > skipped, 5,
                           "the opportunity refused")
            by_file = lv.ex.results[0] if lv.ex.results else None
            state_file = lv.risk.state
            await lv.restore(undo)
            lv.kill_path.unlink()
            await wait_for(lambda: lv.risk.state == "active", 5, "the node to see the file gone")
            os.kill(os.getpid(), signal.SIGUSR1)              # the node's handler engages the switch
            await wait_for(lambda: lv.risk.state == "halted", 5, "SIGUSR1 to halt")
            text = await lv.scrape()
            skipped = lv.ex.skipped.get("risk_halted", 0)
            undo = lv.dislocate("gateio_spot")
            await wait_for(lambda: lv.ex.skipped.get("risk_halted", 0) > skipped, 5, "the opportunity skipped")
            await lv.restore(undo)
            n_results = len(lv.ex.results) - (by_file is not None)
            os.kill(os.getpid(), signal.SIGUSR1)              # and releases it
            await wait_for(lambda: lv.risk.state == "active", 5, "second SIGUSR1 to release")
            res = await lv.trade("mexc_spot")
            return lv, by_file, state_file, text, n_results, res
    lv, by_file, state_file, text, n_results, res = run(main())
    ev = check_end(lv)
    assert state_file == "halted"
    rej = [e["data"] for e in ev if e["event"] == "trade_rejected"]
    if by_file is not None:
        assert by_file.status == "rejected" and by_file.reason == "state_halted", by_file
        assert len(rej) == 1 and rej[0]["detail"] == "kill_switch"
    else:
        assert not rej
    assert n_results == 0                                   # the skipped one never became a trade
    assert "cexnode_risk_state 2.0" in text and 'cexnode_risk_condition{reason="kill_switch"} 1.0' in text
    assert res.status == "done"
    pnl_check(res, lv)
    cond = [e for e in ev if e["event"] == "risk_condition" and e["data"]["reason"] == "kill_switch"]
    assert [c["data"]["raised"] for c in cond] == [True, False, True, False]
    assert [c["data"]["detail"] for c in cond if c["data"]["raised"]] == ["file", "signal"]
    starts = [e["seq"] for e in ev if e["event"] == "trade_start"]
    assert len(starts) == 1 and starts[0] > cond[3]["seq"]  # nothing sent while the switch was engaged
    assert len(lv.sim_orders()) == 2


def test_error_rate_breaker_halts_trading(tmp_path, monkeypatch):
    """Failed orders above 1 % of the rolling window (once it holds ``min_orders_for_breaker``
    orders) halt trading: after two clean trades (4 orders) one refused order trips it; the next
    dislocation is skipped, the halt is audited and in the metrics."""
    async def main():
        async with Live(tmp_path, monkeypatch, min_orders=4) as lv:
            results = []
            for cheap in ("mexc_spot", "gateio_spot"):
                results.append(await lv.trade(cheap))
            state_before = lv.risk.state
            lv.sim.venue("gateio_spot").faults.reject_orders(1)
            results.append(await lv.trade("mexc_spot"))
            await wait_for(lambda: lv.risk.state == "halted", 5, "the breaker")
            text = await lv.scrape()
            n_sim, skipped = len(lv.sim_orders()), lv.ex.skipped.get("risk_halted", 0)
            undo = lv.dislocate("gateio_spot")
            await wait_for(lambda: lv.ex.skipped.get("risk_halted", 0) > skipped, 5, "the opportunity skipped")
            after = len(lv.sim_orders()) - n_sim
            await lv.restore(undo)
            return lv, results, state_before, text, after
    lv, results, state_before, text, after = run(main())
    ev = check_end(lv)
    assert [r.status for r in results[:2]] == ["done", "done"] and state_before == "active"
    assert results[2].status == "hedged"
    for i, r in enumerate(results):
        pnl_check(r, lv, results[:i])
    assert lv.risk.reasons == {"error_rate"} and lv.risk.window_failures == 1
    assert lv.risk.window_orders >= 5 and lv.risk.window_failures > Decimal("0.01") * lv.risk.window_orders
    assert after == 0 and len(lv.ex.results) == 3
    assert 'cexnode_risk_condition{reason="error_rate"} 1.0' in text and "cexnode_risk_state 2.0" in text
    cond = [e for e in ev if e["event"] == "risk_condition" and e["data"]["reason"] == "error_rate"]
    assert len(cond) == 1 and cond[0]["data"]["raised"] is True
    assert not [e for e in ev if e["event"] == "trade_start" and e["seq"] > cond[0]["seq"]]


def test_stale_book_during_a_trade(tmp_path, monkeypatch):
    """While a trade is in flight (Gate answers 0.5 s late) the MEXC book loses a diff and stays
    out of sync (its REST snapshot answers 1 s late): risk halts on stale_data, the trade in flight
    still ends with every order reconciled, and trading resumes once the book is back in sync."""
    async def main():
        async with Live(tmp_path, monkeypatch, stale_ms=60000) as lv:
            gate, mexc = lv.sim.venue("gateio_spot"), lv.sim.venue("mexc_spot")
            gate.faults.order_delay(0.5)
            await lv.ex.refresh_balances()
            n0 = len(lv.ex.results)
            undo = lv.dislocate("mexc_spot")
            await wait_for(lambda: len(lv.sim_orders()) == 2, 5, "both orders at the venues")
            mexc.faults.rest_delay(1.0)                 # the resync snapshot (and any REST) comes late
            mexc.faults.gap_next(SYM)
            inst = mexc.instrument(SYM)
            far = mexc.true_book(SYM)[1][-1][0] + inst.tick * 100
            mexc.publish_change(SYM, asks=[(inst.ticks_of(far), 1)])              # lost on the way
            mexc.publish_change(SYM, asks=[(inst.ticks_of(far + inst.tick), 1)])  # -> the gap is seen
            await wait_for(lambda: lv.risk.refresh() == "halted", 5, "the stale-data halt")
            halted = (set(lv.risk.reasons), lv.ex.inflight)
            await wait_for(lambda: len(lv.ex.results) > n0 and lv.ex.inflight == 0, 15, "the trade to finish")
            res = lv.ex.results[n0]
            mexc.faults.rest_delay(0)
            await lv.restore(undo)
            await wait_for(lambda: lv.risk.refresh() == "active", 10, "books back in sync")
            after = await lv.trade("gateio_spot")
            return lv, halted, res, after
    lv, halted, res, after = run(main())
    ev = check_end(lv)
    assert halted == ({"stale_data"}, 1)                # halted while the trade was still in flight
    assert res.status == "done" and res.residual == 0, res
    pnl_check(res, lv)
    cond = [e for e in ev if e["event"] == "risk_condition" and e["data"]["reason"] == "stale_data"]
    assert [c["data"]["raised"] for c in cond] == [True, False]
    done = [e for e in ev if e["event"] == "trade_done"]
    assert cond[0]["seq"] < done[0]["seq"] < cond[1]["seq"]
    starts = [e["seq"] for e in ev if e["event"] == "trade_start"]
    assert not [s for s in starts if cond[0]["seq"] < s < cond[1]["seq"]]    # nothing new while halted
    assert after.status == "done"


# -- the demo, as a user runs it ----------------------------------------------------------------------------

def test_demo_config_runs_live_against_the_simulator(tmp_path):
    """``python -m cexnode --config configs/demo.yaml --duration 8`` as a user runs it (the copy
    only writes its audit log under tmp_path): status lines, trades, the closing summary, exit 0,
    and the simulator-only credential fallbacks never printed nor audited."""
    import re

    import yaml

    root = Path(__file__).resolve().parents[2]
    cfg = yaml.safe_load((root / "configs" / "demo.yaml").read_text())
    assert cfg["trading"]["mode"] == "live" and cfg["sim"]["enabled"] is True
    audit = tmp_path / "audit.jsonl"
    cfg["log"]["audit"] = dict(cfg["log"].get("audit") or {}, path=str(audit))
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEXNODE_DEMO_")}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "cexnode", "--config", str(path), "--duration", "8"], cwd=str(root),
                       capture_output=True, timeout=60, env=env)
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out[-3000:]
    assert time.monotonic() - t0 < 30
    assert "Traceback" not in out and "sim-demo-" not in out, out[-3000:]
    status = [ln for ln in out.splitlines() if "engine: books" in ln]
    assert len(status) >= 2, out[-3000:]                      # every node.status_interval_s (2 s)
    pat = re.compile(r"books (\d+)/(\d+) in sync \| (\d+) msg/s \| opportunities (\d+) \| trades (\d+) \| "
                     r"P&L (-?[\d.]+) \| tick-to-decision p50 ([\d.]+) p99 ([\d.]+) μs \| risk (\w+)")
    m = pat.search(status[-1])
    assert m, status[-1]
    books, synced, rate, opps, trades = (int(m.group(i)) for i in range(1, 6))
    assert books == synced == 5 and rate > 100 and opps >= trades >= 1
    assert 0 < float(m.group(7)) <= float(m.group(8))
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if "engine: summary: ran" in ln)
    table = lines[head + 1:]
    assert re.search(r"route\s+asset\s+position\s+realised\s+fees\s+trades\s+rejected", table[0]), table[:3]
    rows = [ln for ln in table[2:] if "/USDT " in ln]
    assert rows and sum(int(ln.split()[-2]) for ln in rows) >= trades
    total = next(ln for ln in table if "realised P&L total" in ln)
    assert "unreconciled orders 0" in total
    raw = audit.read_bytes()
    assert b"sim-demo-" not in raw
    ev = audit_events(audit)
    finals = check_audit(ev)
    assert finals and any(e["event"] == "fill_booked" for e in ev)


@pytest.mark.parametrize("order_timeout_ms,warned", [(500, True), (1500, False)])
def test_order_timeout_below_mexc_account_spacing_is_warned_at_start(tmp_path, monkeypatch, order_timeout_ms, warned):
    """A REST balance refresh waits for MEXC's account-request spacing (2/s) within
    ``trading.order_timeout_ms``: a shorter timeout is named in a warning when the node starts."""
    monkeypatch.setenv("CX_LT_KEY", KEY)
    monkeypatch.setenv("CX_LT_SECRET", SECRET)
    log_path = tmp_path / "node.jsonl"
    text = (YAML % dict(audit=tmp_path / "audit.jsonl", kill=tmp_path / "KILL", mexc_usdt=100000, max_pos=MAX_POS,
                        stale_ms=600000, min_orders=20, size_to_balances="true")).replace(
        "  console: {enabled: false}\n", "  console: {enabled: false}\n  file: {enabled: true, path: \"%s\", level: info}\n"
        % log_path).replace("  order_timeout_ms: 1500\n", "  order_timeout_ms: %d\n" % order_timeout_ms)
    node = Node(load_config_text(text), duration=None)

    async def main():
        runner = asyncio.get_running_loop().create_task(node.run())
        try:
            await wait_for(lambda: node.context.engine is not None and node.context.engine.executor is not None
                           and node.context.engine.executor.started, 30, "the live node")
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 30)

    asyncio.run(asyncio.wait_for(main(), 60))
    lines = [json.loads(x) for x in log_path.read_text().splitlines()]
    warn = [x for x in lines if "below the venue's balance request spacing" in str(x.get("msg") or x.get("message"))
            and "mexc_spot" in json.dumps(x)]
    assert bool(warn) is warned, [x.get("msg") for x in lines if x.get("level") in ("warning", "WARNING")]
    if warned:
        assert "500" in json.dumps(warn[0])

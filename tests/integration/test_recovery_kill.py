"""A restart forgets nothing (issue 21): the node trades live against the simulator, which runs in
this test's process and outlives the node; the node runs in its own process and is killed with
SIGKILL at random moments while trading, then started again on the same audit file. After the last
start's recovery and a clean stop: every order the simulator accepted has a final record, every
fill the simulator made is booked exactly once (as its order's ``fill_booked``), and the positions
and today's realised P&L rebuilt from the audit trail equal what the simulator's fills give."""
from __future__ import annotations

import asyncio
import os
import pathlib
import random
import signal
import sys
import time
from collections import defaultdict
from decimal import Decimal

import orjson

from cexnode.config import load_config_text
from cexnode.execution.gateway import Side
from cexnode.execution.positions import PositionBook
from cexnode.execution.recovery import recover
from cexnode.sim import ExchangeSimulator

from audit_stream import Stream

ROOT = pathlib.Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("CEXNODE_RECOVERY_KILLS", "20"))
KEY, SECRET = "k-recovery", "s-recovery-secret"
VENUES = ("mexc_spot", "gateio_spot")

YAML = """
node: {name: recovery, stop_timeout_s: 5, start_timeout_s: 10, status_interval_s: 600}
log:
  level: warning
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: always, checkpoint_interval_s: %(ckpt)s}
metrics: {port: 0}
storage: {enabled: false}
sim:
  enabled: %(sim)s
  seed: 11
  update_interval_ms: 10
  dislocation_probability: 0.08
  dislocation_bps: 40
  mid_prices: {BTC/USDT: 65000}
  balances:
    mexc_spot: {USDT: 100000, BTC: 2}
    gateio_spot: {USDT: 100000, BTC: 2}
venues:
  mexc_spot: {ws_url: "%(mexc_ws)s", rest_url: "%(mexc_rest)s", taker_fee: 0.0005, symbols: [BTC/USDT],
              api_key: "${CX_RK_KEY}", api_secret: "${CX_RK_SECRET}", book_audit_interval_s: 0}
  gateio_spot: {ws_url: "%(gate_ws)s", rest_url: "%(gate_rest)s", taker_fee: 0.001, symbols: [BTC/USDT],
                api_key: "${CX_RK_KEY}", api_secret: "${CX_RK_SECRET}", book_audit_interval_s: 0}
  gateio_futures: {enabled: false}
arbitrage:
  min_profit: 0.01
  min_bps: 1
  max_notional: 1500
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc}
risk:
  max_notional_per_trade: 2500
  max_position: {BTC: 1}
  route_cooldown_ms: 20
  daily_loss_limit: %(daily_loss)s
trading:
  mode: live
"""


def _text(audit, sim_urls=None, sim=False, ckpt=1, daily_loss=100000):
    u = sim_urls or {}
    p = dict(audit=audit, ckpt=ckpt, sim="true" if sim else "false", daily_loss=daily_loss,
             mexc_ws=u["mexc_spot"].ws if u else "", mexc_rest=u["mexc_spot"].rest if u else "",
             gate_ws=u["gateio_spot"].ws if u else "", gate_rest=u["gateio_spot"].rest if u else "")
    return YAML % p


def _records(path):
    out = []
    for line in pathlib.Path(path).read_bytes().splitlines():
        try:
            r = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue                    # a line torn by a kill, sealed at the next start
        if isinstance(r, dict) and r.get("event"):
            out.append(r)
    return out


def test_kill9_while_trading_then_recover(tmp_path, monkeypatch):
    monkeypatch.setenv("CX_RK_KEY", KEY)
    monkeypatch.setenv("CX_RK_SECRET", SECRET)
    audit = tmp_path / "audit.jsonl"
    rnd = random.Random(int(os.environ.get("CEXNODE_RECOVERY_SEED", "5")))

    # every order the simulator accepts for the node's key, as it is placed: the matching engines
    # forget final orders keep_final_s (60 s) after they end, and this test runs longer than that,
    # so reading their maps at the end would miss the first runs' orders
    placed: list = []

    def tap(venue):
        def on_trading(event, data):
            if event == "order" and data[1] == "put" and data[0].account.api_key == KEY:
                placed.append((venue, data[0]))
        return on_trading

    async def main():
        sim = ExchangeSimulator(load_config_text(_text(audit, sim=True)))
        for v in VENUES:
            sim.trading.engine(v).listeners.append(tap(v))
        await sim.start()
        try:
            cfg_path = tmp_path / "node.yaml"
            cfg_path.write_text(_text(audit, sim.urls))
            env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            kills = 0
            for i in range(KILLS + 1):
                last = i == KILLS
                args = [sys.executable, "-m", "cexnode", "--config", str(cfg_path)] + (["--duration", "3"] if last else [])
                proc = await asyncio.create_subprocess_exec(*args, cwd=str(tmp_path), env=env,
                                                            stdout=asyncio.subprocess.DEVNULL,
                                                            stderr=asyncio.subprocess.PIPE)
                if last:
                    _, err = await asyncio.wait_for(proc.communicate(), 60)
                    assert proc.returncode == 0, err.decode()[-3000:]
                    assert b"Traceback" not in err, err.decode()[-3000:]
                    break
                # kill once it trades: wait for a new order request in the audit file, then a random moment
                n0 = audit.stat().st_size if audit.exists() else 0
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                    if audit.exists() and audit.stat().st_size > n0 and b"order_request" in audit.read_bytes()[n0:]:
                        break
                await asyncio.sleep(rnd.uniform(0.0, 0.6))
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                kills += 1
            return sim, kills
        finally:
            await sim.stop()

    sim, kills = asyncio.run(main())
    assert kills == KILLS
    recs = _records(audit)
    runs = {r.get("run") for r in recs if r["event"] == "executor_start"}
    assert len(runs) == KILLS + 1
    finals = defaultdict(list)
    booked = defaultdict(list)
    for r in recs:
        d = r["data"]
        if r["event"] == "order_final":
            finals[d["client_id"]].append(d)
        elif r["event"] == "fill_booked":
            booked[d["client_id"]].append(d)
    accepted = {}
    for v, o in placed:
        cid = o.client_id
        accepted[cid[2:] if v.startswith("gateio") and cid.startswith("t-") else cid] = (v, o)
    assert accepted, "the node never traded"
    assert len(accepted) == len(placed), "a client id reused across orders"
    # no fill is booked for an order the simulator never accepted
    unknown = sorted(c for c in booked if c not in accepted)
    assert not unknown, (unknown, [booked[c] for c in unknown])
    recovered = [r for r in recs if r["event"] == "recovery"]
    assert len(recovered) == KILLS + 1                  # every start recovers (the first from an empty file)
    # every order the simulator accepted has exactly one final record
    missing = sorted(c for c in accepted if len(finals.get(c, ())) != 1)
    assert not missing, (missing, [recovered[-1]["data"]])
    # every fill the simulator made is booked exactly once, with the simulator's quantity and price
    inst = {v: sim.venues[v].instruments for v in VENUES}
    want_pos = PositionBook()
    for cid, (v, o) in accepted.items():
        i = next(iter(inst[v].values()))
        filled = i.size(o.filled) if o.filled else Decimal(0)
        got = booked.get(cid, [])
        if not filled:
            assert not got, (cid, got)
            continue
        assert len(got) == 1, (cid, got)
        assert Decimal(got[0]["qty"]) == filled, (cid, got, filled)
        # the booked price is the average, quote over quantity: exact only where the division ends
        # (an order filled at several prices can average to a repeating decimal)
        assert Decimal(got[0]["price"]) == o.filled_quote / filled, (cid, got, o.filled_quote)
    # positions and today's P&L from the audit trail = booking the simulator's fills in the same order
    fold = recover(str(audit), use_checkpoint=False).fold
    for r in recs:
        if r["event"] != "fill_booked":
            continue
        d = r["data"]
        v, o = accepted[d["client_id"]]
        i = next(iter(inst[v].values()))
        want_pos.apply_fill(route=d["route"], venue=v, base="BTC", quote="USDT", side=Side(o.side),
                            qty=i.size(o.filled), price=o.filled_quote / i.size(o.filled), fee=o.fee,
                            fee_asset=o.fee_asset, ts_ns=r["ts"])
    assert fold.positions.positions() == want_pos.positions()
    assert fold.positions.daily == want_pos.daily
    # and the net BTC position is what the simulator's accounts moved: fills, less fees taken in BTC
    net = Decimal(0)
    for v, o in accepted.values():
        q = next(iter(inst[v].values())).size(o.filled)
        net += q if o.side == "buy" else -q
        if o.fee_asset == "BTC":
            net -= o.fee
    assert fold.positions.positions().get("BTC", Decimal(0)) == net


def test_daily_loss_halt_holds_across_a_restart(tmp_path, monkeypatch):
    """A run that lost more than risk.daily_loss_limit today halted; the next start rebuilds today's
    realised P&L from the audit trail and is halted (daily_loss) before its first trade."""
    monkeypatch.setenv("CX_RK_KEY", KEY)
    monkeypatch.setenv("CX_RK_SECRET", SECRET)
    audit = tmp_path / "audit.jsonl"
    before = Stream(audit, 4242, PositionBook(), "z9y8x")
    before.start("live")
    before.trade(route="btc", symbol="BTC/USDT", buy_venue="mexc_spot", sell_venue="gateio_spot", qty="0.01",
                 buy_px="65500", sell_px="64500", buy_fill="0.01", sell_fill="0.01", buy_fee="0", buy_fee_asset="",
                 sell_fee="0.645", sell_fee_asset="USDT")              # -10.645 realised today
    before.close()
    assert before.positions.daily_realised() < -10

    async def main():
        sim = ExchangeSimulator(load_config_text(_text(audit, sim=True)))
        await sim.start()
        try:
            cfg_path = tmp_path / "node.yaml"
            cfg_path.write_text(_text(audit, sim.urls, daily_loss=10))
            env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cexnode", "--config", str(cfg_path),
                                                        "--duration", "3", cwd=str(tmp_path), env=env,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.PIPE)
            _, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0 and b"Traceback" not in err, err.decode()[-3000:]
            return [o for v in VENUES for (key, _), o in sim.trading.engine(v).by_client.items() if key == KEY]
        finally:
            await sim.stop()

    orders = asyncio.run(main())
    recs = _records(audit)
    rec = [r for r in recs if r["event"] == "recovery"][-1]
    after = [r for r in recs if r.get("run") == rec["run"]]         # the restarted node's records
    assert rec["data"]["risk"] == "halted" and Decimal(rec["data"]["realised_today"]) < -10
    halts = [r["data"] for r in after if r["event"] == "risk_state"]
    assert halts and halts[0]["to"] == "halted" and "daily_loss" in halts[0]["reasons"], halts
    assert not [r for r in after if r["event"] in ("trade_start", "order_request")]
    assert not orders                                         # nothing reached the venue

"""`cexnode record` of a live run, then `cexnode replay` of that capture: the same opportunities.

The node trades live on the embedded simulator (127.0.0.1: signed orders, fills, private streams;
its trades move the simulator's books, which the feeds carry) while `record` taps its feeds and
REST managers and writes the opportunities it sees (`--opportunities`). `replay` runs the same
engine on the capture, trading off, and must emit the same opportunity stream: route, venues,
prices, sizes, profit, in order (only `t` differs: the live clock there, the frame's capture time
here). The config sizes opportunities by the books (a replay has no balances) and runs no book
audits (no venue behind a replay to ask)."""
from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import orjson

from cexnode.capture.format import read_capture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CFG = """
node: {name: rec, status_interval_s: 0, start_timeout_s: 20, stop_timeout_s: 10}
log:
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: never}
metrics: {enabled: false}
sim:
  enabled: true
  seed: 23
  update_interval_ms: 5
  dislocation_probability: 0.05
  dislocation_bps: 60
  mid_prices: {BTC/USDT: 65000, ETH/USDT: 3200}
  balances:
    mexc_spot: {USDT: 50000, BTC: 2, ETH: 20}
    gateio_spot: {USDT: 50000, BTC: 2, ETH: 20}
    gateio_futures: {USDT: 50000}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT, ETH/USDT], book_audit_interval_s: 0,
              api_key: "${CEXNODE_TEST_MEXC_KEY:-sim-key-m}", api_secret: "${CEXNODE_TEST_MEXC_SECRET:-sim-secret-m}"}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT, ETH/USDT], book_audit_interval_s: 0,
                api_key: "${CEXNODE_TEST_GATE_KEY:-sim-key-g}", api_secret: "${CEXNODE_TEST_GATE_SECRET:-sim-secret-g}"}
  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT], book_audit_interval_s: 0,
                   api_key: "${CEXNODE_TEST_GATE_KEY:-sim-key-g}", api_secret: "${CEXNODE_TEST_GATE_SECRET:-sim-secret-g}"}
arbitrage:
  min_profit: 0.10
  max_notional: 2000
  size_to_balances: false
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc-ss}
    - {symbol: ETH/USDT, venues: [mexc_spot, gateio_spot], name: eth-ss}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures], name: btc-sp}
risk:
  max_notional_per_trade: 5000
  max_position: {BTC: 10, ETH: 100}
  max_open_exposure: 1000000
  daily_loss_limit: 1000000
  route_cooldown_ms: 100
trading:
  mode: live
  recover: false
"""


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "cexnode", *args], cwd=ROOT, capture_output=True, timeout=timeout)


def _opps(lines):
    """The opportunity stream without ``t`` (the live clock vs the capture time)."""
    return [{k: v for k, v in x.items() if k != "t"} for x in lines if x["type"] == "opportunity"]


def test_replay_of_a_recorded_live_run_yields_its_opportunities(tmp_path):
    cfg = tmp_path / "rec.yaml"
    audit = tmp_path / "audit.jsonl"
    cfg.write_text(CFG % {"audit": audit})
    cap, opp_file = tmp_path / "run.jsonl.gz", tmp_path / "live-opportunities.jsonl"

    r = _cli("record", "--config", str(cfg), "--out", str(cap), "--duration", "6", "--opportunities", str(opp_file))
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    live = [orjson.loads(x) for x in opp_file.read_bytes().splitlines()]
    entries = list(read_capture(str(cap)))
    assert sum(1 for e in entries if e.kind == "ws") > 500 and any(e.kind == "rest" for e in entries)

    # it was a trading run: live orders filled on the simulator, each trade one of the opportunities
    records = [orjson.loads(x) for x in audit.read_bytes().splitlines() if x.strip()]
    trades = [x["data"] for x in records if x.get("event") == "trade_start"]
    assert trades and any(x.get("event") == "fill_booked" for x in records)
    seen = {(o["route"], o["buy_venue"], o["sell_venue"], Decimal(o["qty"]), o["t"]) for o in live}
    for t in trades:
        assert (t["route"], t["buy_venue"], t["sell_venue"], Decimal(t["qty"]), t["t"]) in seen

    r = _cli("replay", "--config", str(cfg), "--capture", str(cap))
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    replayed = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert replayed[-1]["type"] == "summary" and replayed[-1]["opportunities"] == len(live)
    assert _opps(replayed) == _opps(live) and len(live) >= 5

"""The node in paper mode on the embedded simulator feeds the trade database while it runs; then
`cexnode trades` / `cexnode pnl` agree with the run's closing summary table (trade count, total
realised P&L), and `cexnode db rebuild` from the audit file gives the same rows."""
from __future__ import annotations

import decimal
import json
import pathlib
import subprocess
import sys
from decimal import Decimal

from cexnode.storage.tradedb import TradeDB

ROOT = pathlib.Path(__file__).resolve().parents[2]

CONFIG = """\
node: {{name: tradedb-test, status_interval_s: 0}}
metrics: {{enabled: false}}
log:
  console: {{audit: false}}
  audit: {{path: "{audit}", fsync: batch}}
storage: {{poll_interval_ms: 50}}
sim:
  enabled: true
  seed: 7
  update_interval_ms: 10
  dislocation_probability: 0.05
  dislocation_bps: 40
  mid_prices: {{BTC/USDT: 65000, ETH/USDT: 3200}}
venues:
  mexc_spot: {{taker_fee: 0.0005, symbols: [BTC/USDT, ETH/USDT]}}
  gateio_spot: {{taker_fee: 0.001, symbols: [BTC/USDT, ETH/USDT]}}
  gateio_futures: {{taker_fee: 0.0005, symbols: [BTC/USDT:USDT]}}
arbitrage:
  min_profit: 0.50
  min_bps: 2
  max_notional: 2000
  routes:
    - {{symbol: BTC/USDT, venues: [mexc_spot, gateio_spot]}}
    - {{symbol: ETH/USDT, venues: [mexc_spot, gateio_spot]}}
    - {{symbol: BTC/USDT, venues: [gateio_spot, gateio_futures]}}
risk:
  max_notional_per_trade: 2500
  max_position: {{BTC: 1, ETH: 10}}
  route_cooldown_ms: 100
trading:
  mode: paper
  paper:
    latency_ms: 2
    balances:
      mexc_spot: {{USDT: 20000, BTC: 0.5, ETH: 5}}
      gateio_spot: {{USDT: 20000, BTC: 0.5, ETH: 5}}
      gateio_futures: {{USDT: 20000}}
"""


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cexnode", *args], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=60)


def _summary(stderr: str) -> tuple[int, str]:
    """(trades, realised P&L total as printed) from the closing summary table."""
    lines = stderr.splitlines()
    head = next(i for i, l in enumerate(lines) if l.rstrip().endswith("trades rejected") and " route " in l)
    trades = 0
    for line in lines[head + 2:]:
        if "realised P&L total" in line:
            total = line.split("realised P&L total ", 1)[1].split(";", 1)[0]
            return trades, total
        if not line.rstrip().endswith("(no trades)"):
            trades += int(line.split()[-2])
    raise AssertionError("no summary total in:\n" + stderr)


def test_trades_and_pnl_agree_with_the_run_summary(tmp_path):
    audit = tmp_path / "audit.jsonl"
    cfg = tmp_path / "node.yaml"
    cfg.write_text(CONFIG.format(audit=audit))
    r = subprocess.run([sys.executable, "-m", "cexnode", "--config", str(cfg), "--duration", "5"], cwd=str(ROOT),
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "trade database write failed" not in r.stderr
    n_trades, total = _summary(r.stderr)
    assert n_trades > 0, r.stderr[-3000:]       # the simulator's dislocations gave trades

    # what the node's own thread wrote while it ran (no CLI catch-up yet)
    db_file = tmp_path / "trades.sqlite"
    with TradeDB(str(db_file), readonly=True) as db:
        live = db.dump()

    t = _cli("trades", "--config", str(cfg), "--format", "json")
    assert t.returncode == 0, t.stderr
    recs = [json.loads(x) for x in t.stdout.splitlines()]
    assert len(recs) == n_trades
    assert "%.2f" % sum(Decimal(x["realised_pnl"]) for x in recs) == total

    p = _cli("pnl", "--config", str(cfg), "--by", "route", "--format", "json")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert sum(x["trades"] for x in rows) == n_trades
    assert "%.2f" % sum(Decimal(x["realised_pnl"]) for x in rows) == total
    table = _cli("pnl", "--config", str(cfg))
    assert table.returncode == 0 and ("total: %d trades" % n_trades) in table.stdout

    # every trade the executor audited, and the P&L its fill_booked records carry
    events = [json.loads(x) for x in audit.read_text().splitlines() if '"event"' in x]
    assert len([e for e in events if e["event"] == "trade_start"]) == n_trades
    with decimal.localcontext(decimal.Context(prec=400)):      # exact: values carry up to 80 digits
        booked = sum(Decimal(e["data"]["realised"]) for e in events if e["event"] == "fill_booked")
    assert "%.2f" % booked == total

    b = _cli("db", "rebuild", "--config", str(cfg))
    assert b.returncode == 0, b.stderr
    assert ("%d trades" % len(live["trades"])) in b.stdout
    with TradeDB(str(db_file), readonly=True) as db:
        rebuilt = db.dump()
        assert db.total_realised() == booked
    assert rebuilt == live

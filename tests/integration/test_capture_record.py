"""`record` against the exchange simulator (127.0.0.1): frames and REST answers recorded, books
resynced through injected gaps / full resets / malformed frames / a 5xx snapshot answer, and
`replay` of the recording rebuilds exactly the recorder's books (same frames, same snapshots at
the same points), deterministically."""
from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys

import orjson

from cexnode._core.arb import format_mantissa

from cexnode.capture.format import CaptureWriter, read_capture
from cexnode.capture.record import Recorder
from cexnode.capture.replay import replay_main
from cexnode.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# the node records as it runs: paper trading on the embedded simulator; opportunities sized by
# the books (no balance caps: a replay has no balances) and no book audits (no venue behind a replay)
CFG = """
node: {status_interval_s: 0, start_timeout_s: 20}
log:
  console: {enabled: false}
metrics: {enabled: false}
sim:
  enabled: true
  seed: 5
  update_interval_ms: 5
  book_levels: 20
  mid_prices: {BTC/USDT: 65000}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT], book_depth: 100, book_audit_interval_s: 0}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT], book_depth: 100, book_audit_interval_s: 0}
  gateio_futures: {taker_fee: 0.0005, symbols: ["BTC/USDT:USDT"], book_depth: 100, book_audit_interval_s: 0}
arbitrage:
  min_profit: 0.1
  size_to_balances: false
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot]}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures]}
"""


async def _record(cfg, path):
    with CaptureWriter(path) as w:
        rec = Recorder(cfg, w)
        eng = rec.engine
        live_opps = []
        eng.opportunity_taps.append(lambda opps: live_opps.extend(o.json_fields() for o in opps))
        task = asyncio.get_running_loop().create_task(rec.run())

        async def until(cond, timeout=15.0):
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while not cond():
                assert not task.done(), ("the node stopped", task.result())
                assert loop.time() < end, ("timed out", rec.frames(), rec.resyncs(), rec.snapshots(),
                                           [(k, b.in_sync) for k, b in eng.books.items()])
                await asyncio.sleep(0.01)

        def all_in_sync():
            n, total = eng.books_in_sync()
            return total > 0 and n == total

        await until(lambda: eng.executor is not None and eng.executor.started and all_in_sync())
        sim = rec.node.context.sim
        gs, gf, mx = sim.venue("gateio_spot"), sim.venue("gateio_futures"), sim.venue("mexc_spot")
        s0 = rec.snapshots()
        gs.faults.rest_5xx(1)
        gs.faults.gap_next("BTC/USDT")
        mx.faults.gap_next("BTC/USDT")
        gf.faults.malformed_next("BTC/USDT:USDT")
        gf.faults.full_reset("BTC/USDT:USDT")
        await until(lambda: rec.resyncs() >= 2 and rec.snapshots() >= s0 + 2 and all_in_sync())
        await asyncio.sleep(0.3)
        rec.stop()
        assert await asyncio.wait_for(task, 15) == 0
        books = {k: (b.in_sync, b.last_id, b.top(20)) for k, b in eng.books.items()}
        return rec, books, live_opps


def test_record_from_sim_then_replay_rebuilds_the_same_books(tmp_path):
    cfg_path = tmp_path / "rec.yaml"
    cfg_path.write_text(CFG)
    cfg = load_config(str(cfg_path))
    cap = str(tmp_path / "rec.jsonl.gz")
    rec, books, live_opps = asyncio.run(asyncio.wait_for(_record(cfg, cap), 60))
    assert rec.frames() > 100 and rec.snapshots() >= 5 and rec.resyncs() >= 2
    entries = list(read_capture(cap))
    rest = [e for e in entries if e.kind == "rest"]
    assert len(rest) == rec.writer.rest_entries and any(e.status >= 500 for e in rest)
    assert sum(1 for e in entries if e.kind == "ws") == rec.writer.ws_entries >= rec.frames()
    assert {e.venue for e in entries if e.kind == "ws" and e.binary} == {"mexc_spot"}
    ts = [e.t for e in entries]
    assert ts == sorted(ts)                                   # written in receive order

    buf = io.StringIO()
    assert replay_main(cfg, cap, dump_books=True, out=buf) == 0
    lines = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    summary = lines[-1]
    assert summary["frames"] == rec.writer.ws_entries and summary["resyncs"] >= 2 and summary["errors"] >= 1
    assert summary["snapshots"] == rec.snapshots()
    dumped = {(x["venue"], x["symbol"]): x for x in lines if x["type"] == "book"}
    assert len(dumped) == len(books) == 3
    for (venue, symbol), d in dumped.items():
        in_sync, last, (bids, asks) = books[(venue, symbol)]
        assert d["in_sync"] is True and in_sync and d["last"] == last
        inst = rec.engine.registry.map(venue).instrument(symbol)
        ps, qs = inst["price_scale"], inst["qty_scale"]
        assert d["bids"] == [[format_mantissa(p, ps), format_mantissa(q, qs)] for p, q in bids] and bids
        assert d["asks"] == [[format_mantissa(p, ps), format_mantissa(q, qs)] for p, q in asks] and asks

    # the same opportunities as the node saw live while recording (t: live clock vs capture time)
    live = [{k: v for k, v in o.items() if k != "t"} for o in live_opps]
    replayed = [{k: v for k, v in x.items() if k not in ("t", "type")} for x in lines if x["type"] == "opportunity"]
    assert replayed == live and len(live) > 0

    # deterministic, also through the CLI
    r = subprocess.run([sys.executable, "-m", "cexnode", "replay", "--config", str(cfg_path), "--capture", cap,
                        "--dump-books"], cwd=ROOT, capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout.decode() == buf.getvalue()


def test_record_cli_bad_config_and_short_run(tmp_path):
    p = tmp_path / "empty.yaml"
    p.write_text("venues: {}\n")
    r = subprocess.run([sys.executable, "-m", "cexnode", "record", "--config", str(p), "--out", str(tmp_path / "x.jsonl")],
                       cwd=ROOT, capture_output=True, timeout=60)
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    cfg_path = tmp_path / "rec.yaml"
    cfg_path.write_text(CFG)
    out = tmp_path / "short.jsonl"
    r = subprocess.run([sys.executable, "-m", "cexnode", "record", "--config", str(cfg_path), "--out", str(out),
                        "--duration", "1"], cwd=ROOT, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    entries = list(read_capture(str(out)))
    assert any(e.kind == "rest" and e.path == "/api/v3/exchangeInfo" for e in entries)
    assert sum(1 for e in entries if e.kind == "ws") > 10

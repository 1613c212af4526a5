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

CFG = """
sim:
  enabled: true
  seed: 5
  update_interval_ms: 5
  book_levels: 20
  mid_prices: {BTC/USDT: 65000}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT], book_depth: 100}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT], book_depth: 100}
  gateio_futures: {taker_fee: 0.0005, symbols: ["BTC/USDT:USDT"], book_depth: 100}
arbitrage:
  min_profit: 0.1
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot]}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures]}
"""


async def _record(cfg, path):
    from cexnode.sim import ExchangeSimulator

    sim = ExchangeSimulator(cfg)
    await sim.start()
    try:
        urls = {n: (u.ws, u.rest.rstrip("/")) for n, u in sim.urls.items()}
        with CaptureWriter(path) as w:
            rec = Recorder(cfg, w, urls=urls)
            task = asyncio.get_running_loop().create_task(rec.run(20.0))

            async def until(cond, timeout=10.0):
                loop = asyncio.get_running_loop()
                end = loop.time() + timeout
                while not cond():
                    assert loop.time() < end, ("timed out", rec.frames, rec.resyncs, rec.snapshots, rec.errors,
                                               rec.router and [(k, b.in_sync) for k, b in rec.router.books()])
                    await asyncio.sleep(0.01)

            await until(lambda: rec.router is not None and rec.router.all_in_sync())
            gs, gf, mx = sim.venue("gateio_spot"), sim.venue("gateio_futures"), sim.venue("mexc_spot")
            gs.faults.rest_5xx(1)
            gs.faults.gap_next("BTC/USDT")
            mx.faults.gap_next("BTC/USDT")
            gf.faults.malformed_next("BTC/USDT:USDT")
            gf.faults.full_reset("BTC/USDT:USDT")
            await until(lambda: rec.resyncs >= 2 and rec.snapshots >= 5 and rec.router.all_in_sync())
            await asyncio.sleep(0.3)
            rec.stop()
            await asyncio.wait_for(task, 5.0)
            books = {k: (b.in_sync, b.last_id, b.top(20)) for k, b in rec.router.books()}
            return rec, books
    finally:
        await sim.stop()


def test_record_from_sim_then_replay_rebuilds_the_same_books(tmp_path):
    cfg_path = tmp_path / "rec.yaml"
    cfg_path.write_text(CFG)
    cfg = load_config(str(cfg_path))
    cap = str(tmp_path / "rec.jsonl.gz")
    rec, books = asyncio.run(asyncio.wait_for(_record(cfg, cap), 30))
    assert rec.frames > 100 and rec.snapshots >= 5 and rec.resyncs >= 2
    entries = list(read_capture(cap))
    rest = [e for e in entries if e.kind == "rest"]
    assert len(rest) == rec.rest_calls and any(e.status >= 500 for e in rest)
    assert sum(1 for e in entries if e.kind == "ws") == rec.frames
    assert {e.venue for e in entries if e.kind == "ws" and e.binary} == {"mexc_spot"}
    ts = [e.t for e in entries]
    assert ts == sorted(ts)                                   # written in receive order

    buf = io.StringIO()
    assert replay_main(cfg, cap, dump_books=True, out=buf) == 0
    lines = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    summary = lines[-1]
    assert summary["frames"] == rec.frames and summary["resyncs"] >= 2 and summary["errors"] >= 1
    assert summary["snapshots"] == rec.snapshots
    dumped = {(x["venue"], x["symbol"]): x for x in lines if x["type"] == "book"}
    from cexnode.capture.replay import VENUE_IDS
    assert len(dumped) == len(books) == 3
    for (venue, symbol), d in dumped.items():
        sid = [k for k in books if k[0] == VENUE_IDS[venue]]
        in_sync, last, (bids, asks) = books[sid[0]]
        assert d["in_sync"] is True and in_sync and d["last"] == last
        inst = rec.maps[venue].instrument(symbol)
        ps, qs = inst["price_scale"], inst["qty_scale"]
        assert d["bids"] == [[format_mantissa(p, ps), format_mantissa(q, qs)] for p, q in bids] and bids
        assert d["asks"] == [[format_mantissa(p, ps), format_mantissa(q, qs)] for p, q in asks] and asks

    # the same opportunities as the pipeline saw live while recording (t: live clock vs capture time)
    live = [{k: v for k, v in o.items() if k != "t"} for o in rec.opportunities]
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

"""Book audits against the embedded simulator (cexnode.book_audit): a corruption planted in a live
book is found, logged, counted and resynced away; with nothing planted, many audits of moving
books find no mismatch."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import orjson

from cexnode.config import load_config_text
from cexnode.node import Node

YAML = """
node: {name: audit, status_interval_s: 0, start_timeout_s: 20}
log:
  console: {enabled: false}
  file: {enabled: true, path: "%(log)s", level: info}
  audit: {path: "%(audit)s", fsync: never}
metrics: {port: 0}
sim:
  enabled: true
  seed: 11
  update_interval_ms: 2
  mid_prices: {BTC/USDT: 65000, ETH/USDT: 3200}
venues:
  mexc_spot: {symbols: [BTC/USDT, ETH/USDT], book_depth: 100, book_audit_interval_s: 0.5}
  gateio_spot: {symbols: [BTC/USDT, ETH/USDT], book_depth: 100, book_audit_interval_s: 0.5}
  gateio_futures: {symbols: [BTC/USDT:USDT], book_depth: 100, book_audit_interval_s: 0.5}
"""


async def _wait(pred, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return bool(pred())


def _true_top(sim, engine, venue, sym, n=20):
    bids, asks, last_id = sim.venue(venue).true_book(sym, n)
    inst = engine.registry.map(venue).instrument(sym)
    ps, vqs, mult = inst["price_scale"], inst["venue_qty_scale"], inst["qty_mult"]

    def conv(side):
        return [(int(Decimal(p).scaleb(ps)), int(Decimal(q).scaleb(vqs)) * mult) for p, q in side]

    return (conv(bids), conv(asks)), last_id


async def _equal_to_sim(engine, sim, venue, sym) -> tuple:
    """Pause the simulator, let the book drain to the simulator's newest id, compare the top 20."""
    book = engine.books[(venue, sym)]
    sim.pause()
    try:
        ok = await _wait(lambda: book.in_sync and book.last_id == sim.venue(venue).book(sym).last_id, 10)
        want, last_id = _true_top(sim, engine, venue, sym)
        return ok, book.top(20) == want, book.last_id, last_id
    finally:
        sim.resume()


async def _scrape(node) -> str:
    url = next(c.server.url for c in node.components if c.name == "metrics")
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/metrics") as r:
            return await r.text()


def _run(tmp_path, body):
    """Run a node on YAML, call ``await body(node, engine, sim)`` once every book is in sync."""
    logf = tmp_path / "node.jsonl"
    cfg = load_config_text(YAML % {"audit": tmp_path / "audit.jsonl", "log": logf})
    node = Node(cfg, duration=None)
    unhandled: list = []

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _l, ctx: unhandled.append(ctx))
        runner = loop.create_task(node.run())
        try:
            assert await _wait(lambda: node.context.engine is not None and node.context.engine.router is not None
                               and node.context.engine.books_in_sync() == (5, 5), 15), "books not in sync"
            return await body(node, node.context.engine, node.context.sim)
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 20)

    out = asyncio.run(asyncio.wait_for(main(), 60))
    assert node.exit_code == 0
    assert not unhandled, unhandled
    records = [orjson.loads(line) for line in logf.read_text().splitlines() if line.strip()]
    return out, records


def _mismatch_records(records):
    return [r for r in records if "book audit mismatch" in orjson.dumps(r).decode()]


def test_audit_finds_a_planted_corruption_and_resyncs_the_book(tmp_path):
    venue, sym = "gateio_spot", "BTC/USDT"

    async def body(node, engine, sim):
        auditor = engine.adapters[venue].auditor
        book = engine.books[(venue, sym)]
        sync = engine.router.book_sync(book.venue, book.symbol_id)
        # the simulator stands still while the corruption waits for its audit: no diff can overwrite it
        sim.pause()
        assert await _wait(lambda: book.in_sync and book.last_id == sim.venue(venue).book(sym).last_id, 10)
        px, qty = book.top(5)[0][2]
        planted_id = book.last_id
        resyncs0 = sync.resyncs
        assert book.py_set_level(True, px, qty + 7)
        found = await _wait(lambda: auditor.mismatches[sym] >= 1, 5)
        resynced = sync.resyncs
        mismatch = auditor.last_mismatch
        sim.resume()
        assert found, dict(auditor.results)
        # back in sync after the resync, then equal to the simulator's book while it moves on
        assert await _wait(lambda: book.in_sync and book.last_id > planted_id + 20, 10)
        ok, equal, ours, theirs = await _equal_to_sim(engine, sim, venue, sym)
        text = await _scrape(node)
        others = {(a.venue, s): n for a in (ad.auditor for ad in engine.adapters.values())
                  for s, n in a.mismatches.items() if (a.venue, s) != (venue, sym)}
        return planted_id, px, qty, resyncs0, resynced, mismatch, ok, equal, ours, theirs, text, others

    (planted_id, px, qty, resyncs0, resynced, mismatch, ok, equal, ours, theirs, text,
     others), records = _run(tmp_path, body)
    # the audit named the planted level, at the id the books were compared at
    assert mismatch["symbol"] == sym and mismatch["id"] == planted_id
    (d,) = mismatch["differences"]
    assert (d.side, d.index, d.live, d.venue) == ("bid", 2, (px, qty + 7), (px, qty))
    assert resynced == resyncs0 + 1                # the mismatch resynced the book at once
    assert ok and equal, (ours, theirs)
    assert not others, others                      # nothing else was found
    assert 'cexnode_book_audit_mismatches_total{symbol="BTC/USDT",venue="gateio_spot"} 1.0' in text
    assert 'cexnode_book_audits_total{result="mismatch",venue="gateio_spot"} 1.0' in text
    assert 'cexnode_book_audits_total{result="match",venue="mexc_spot"}' in text
    (rec,) = _mismatch_records(records)
    flat = orjson.dumps(rec).decode()
    for part in ('"venue":"gateio_spot"', '"symbol":"BTC/USDT"', '"id":%d' % planted_id, '"bid_level":2'):
        assert part in flat, (part, rec)


def test_no_mismatch_over_many_audits_of_moving_books(tmp_path):
    async def body(node, engine, sim):
        def applied():
            return sum(s.applied for _, _, s in engine.book_entries())

        def matches():
            return sum(ad.auditor.results["match"] for ad in engine.adapters.values())

        u0, m0 = applied(), matches()
        # 5 books audited every 0.5 s: at least 25 conclusive audits while the books move
        assert await _wait(lambda: matches() - m0 >= 25, 8), {n: dict(a.auditor.results)
                                                              for n, a in engine.adapters.items()}
        results = {n: dict(a.auditor.results) for n, a in engine.adapters.items()}
        mismatches = {n: dict(a.auditor.mismatches) for n, a in engine.adapters.items()}
        return applied() - u0, results, mismatches, await _scrape(node)

    (moved, results, mismatches, text), records = _run(tmp_path, body)
    assert moved >= 1000, moved                    # the books moved throughout
    assert all(r.get("match", 0) >= 4 for r in results.values()), results     # every venue audited
    assert all(r.get("mismatch", 0) == 0 for r in results.values()), results
    assert not any(mismatches.values()), mismatches
    assert not _mismatch_records(records)
    assert "cexnode_book_audit_mismatches_total{" not in text
    assert 'cexnode_book_audits_total{result="match",venue="gateio_futures"}' in text

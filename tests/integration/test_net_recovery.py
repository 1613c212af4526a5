"""REST recovery of the whole node against the embedded simulator (127.0.0.1): a 429 storm with
Retry-After, 5xx answers that open and later close the circuit breaker, REST timeouts, /readyz
while snapshots are held back, and venue start failures (``node.on_venue_failure`` stop/degrade,
a book whose snapshot keeps failing stays out of sync and is retried). Every scenario checks the
books against the simulator afterwards, the scraped ``cexnode_rest_*`` values, that no exception
reached the event loop's handler and that no traceback was logged."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any, Awaitable, Callable

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from cexnode.config import load_config_text
from cexnode.node import Node

BASE = """
node: {name: rec, status_interval_s: 0, start_timeout_s: 20, on_venue_failure: %(on_failure)s}
log:
  console: {enabled: false}
  file: {enabled: true, path: "%(log)s", level: info}
  audit: {path: "%(audit)s", fsync: never}
metrics: {port: 0}
sim:
  enabled: true
  seed: 3
  update_interval_ms: 2
  mid_prices: {BTC/USDT: 65000, ETH/USDT: 3200}
  enforce_rate_limits: %(enforce)s
venues:
  mexc_spot:
    symbols: [BTC/USDT, ETH/USDT]
    book_depth: 100
    start_timeout_s: %(start_timeout)s
    rest: {max_attempts: 4, backoff_base_s: 0.02}
%(mexc_extra)s
  gateio_spot:
    symbols: [BTC/USDT, ETH/USDT]
    book_depth: 100
    start_timeout_s: %(start_timeout)s
    rest: {max_attempts: 2, backoff_base_s: 0.02, breaker_failures: 3, breaker_cooldown_s: 0.5, breaker_cooldown_max_s: 4}
  gateio_futures:
    symbols: [BTC/USDT:USDT]
    book_depth: 100
    rest: {timeout_s: 0.3, max_attempts: 3, backoff_base_s: 0.02}
"""

MEXC_DEPTH = "/api/v3/depth"
GATE_BOOK = "/api/v4/spot/order_book"
FUT_BOOK = "/api/v4/futures/usdt/order_book"


async def _wait(pred, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return bool(pred())


async def _wait_async(pred, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pred():
            return True
        await asyncio.sleep(step)
    return bool(await pred())


async def _ready_into(h: "Harness", seen: list) -> bool:
    seen.append(await h.readyz())
    return seen[-1][0]


class Harness:
    """The node running on its loop, with handles for the scenario."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.engine = node.context.engine
        self.sim = node.context.sim
        self.metrics_url = ""
        self.session: Any = None

    async def scrape(self) -> dict:
        """``{(name, frozenset(labels)): value}`` from /metrics."""
        async with self.session.get(self.metrics_url + "/metrics") as r:
            text = await r.text()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    async def ready(self) -> int:
        async with self.session.get(self.metrics_url + "/readyz") as r:
            await r.read()
            return r.status

    async def readyz(self) -> tuple:
        async with self.session.get(self.metrics_url + "/readyz") as r:
            body = await r.json()
            return r.status == 200, body["details"]

    def book(self, venue: str, symbol: str) -> Any:
        return self.engine.books[(venue, symbol)]

    async def compare_all(self) -> int:
        """Pause the sim, drain, every book == true book (top 20); resume."""
        sim, engine = self.sim, self.engine
        sim.pause()
        try:
            n = 0
            for (venue, sym), book in engine.books.items():
                v = sim.venue(venue)
                ok = await _wait(lambda: book.in_sync and book.last_id == v.book(sym).last_id, 10)
                assert ok, (venue, sym, book.in_sync, book.last_id, v.book(sym).last_id)
                inst = engine.registry.map(venue).instrument(sym)
                bids, asks, _ = v.true_book(sym, 20)
                ps, vqs, mult = inst["price_scale"], inst["venue_qty_scale"], inst["qty_mult"]

                def conv(side):
                    return [(int(Decimal(p).scaleb(ps)), int(Decimal(q).scaleb(vqs)) * mult) for p, q in side]
                assert book.top(20) == (conv(bids), conv(asks)), (venue, sym)
                n += 1
            return n
        finally:
            sim.resume()


def val(m: dict, name: str, **labels) -> float:
    return m.get((name, frozenset(labels.items())), 0.0)


def run_scenario(tmp_path, scenario: Callable[[Harness], Awaitable[Any]], *, on_failure: str = "stop",
                 start_timeout: float = 15, mexc_extra: str = "", before_start: Callable[[Node], None] = None,
                 expect_exit: int = 0, wait_books: int = 5, enforce_rate_limits: bool = False) -> Any:
    logf = tmp_path / "node.jsonl"
    cfg = load_config_text(BASE % {"audit": tmp_path / "audit.jsonl", "log": logf, "on_failure": on_failure,
                                   "start_timeout": start_timeout, "mexc_extra": mexc_extra,
                                   "enforce": "true" if enforce_rate_limits else "false"})
    node = Node(cfg, duration=None)
    if before_start is not None:
        before_start(node)
    unhandled: list = []

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _l, ctx: unhandled.append(ctx))
        runner = loop.create_task(node.run())
        h = Harness(node)
        try:
            async with aiohttp.ClientSession() as session:
                h.session = session
                if wait_books:
                    ok = await _wait(lambda: runner.done() or (h.engine.router is not None
                                                               and h.engine.books_in_sync()[0] == wait_books
                                                               and h.engine.started_at and _started(node)), 15)
                    assert ok and not runner.done(), "node did not start"
                    h.metrics_url = next(c.server.url for c in node.components if c.name == "metrics")
                    return await scenario(h)
                return await asyncio.wait_for(asyncio.shield(runner), 15)
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 20)

    result = asyncio.run(asyncio.wait_for(main(), 60))
    assert node.exit_code == expect_exit
    assert not unhandled, unhandled
    records = [orjson.loads(line) for line in logf.read_text().splitlines() if line.strip()]
    assert records
    bad = [r for r in records if "Traceback" in orjson.dumps(r).decode()]
    assert not bad, bad[:3]
    return result, records


def _started(node: Node) -> bool:
    return any(c.name == "engine" for c in node.started)


def test_429_storm_waits_retry_after_and_resyncs(tmp_path):
    async def scenario(h: Harness):
        mexc = h.sim.venue("mexc_spot")
        await h.compare_all()
        before = mexc.rest_requests[MEXC_DEPTH]
        m0 = await h.scrape()
        mexc.faults.rest_429(3, retry_after=1)
        mexc.faults.gap_next("BTCUSDT")
        book = h.book("mexc_spot", "BTC/USDT")
        t0 = time.monotonic()
        assert await _wait(lambda: not book.in_sync, 3)
        assert await h.ready() == 503                     # resyncing: not ready
        assert await _wait(lambda: book.in_sync, 10)
        took = time.monotonic() - t0
        assert await h.ready() == 200
        m1 = await h.scrape()
        assert await h.compare_all() == 5
        return took, mexc.rest_requests[MEXC_DEPTH] - before, m0, m1, h.engine.adapters["mexc_spot"].rest.stats()

    (took, sent, m0, m1, st), _ = run_scenario(tmp_path, scenario)
    lbl = dict(venue="mexc_spot", endpoint=MEXC_DEPTH)
    assert took >= 2.9, took                       # three Retry-After: 1 honoured one after the other
    assert sent == 4                               # 3 × 429 then the snapshot: nothing sent while paused
    assert val(m1, "cexnode_rest_rate_limited_total", status="429", **lbl) == 3
    assert val(m1, "cexnode_rest_requests_total", status="429", **lbl) == 3
    assert val(m1, "cexnode_rest_retries_total", **lbl) - val(m0, "cexnode_rest_retries_total", **lbl) == 3
    assert val(m1, "cexnode_rest_rate_limit_waits_total", **lbl) >= 1
    assert val(m1, "cexnode_rest_rate_limit_wait_seconds_total", **lbl) >= 2.9
    assert val(m1, "cexnode_rest_breaker_state", **lbl) == 0      # rate limiting is not an outage
    assert st["reuse_rate"] > 0.5


def test_5xx_opens_the_breaker_then_it_closes(tmp_path):
    async def scenario(h: Harness):
        gate = h.sim.venue("gateio_spot")
        before = gate.rest_requests[GATE_BOOK]
        gate.faults.rest_5xx(4, status=503)
        gate.faults.gap_next("BTC_USDT")
        book = h.book("gateio_spot", "BTC/USDT")
        brk = None
        assert await _wait(lambda: not book.in_sync, 3)
        rest = h.engine.adapters["gateio_spot"].rest
        assert await _wait(lambda: rest.breaker(GATE_BOOK).state == 2, 5)     # open
        mid = await h.scrape()
        assert await h.ready() == 503
        assert await _wait(lambda: book.in_sync, 10)
        brk = rest.breaker(GATE_BOOK)
        m1 = await h.scrape()
        assert await h.ready() == 200
        assert await h.compare_all() == 5
        return gate.rest_requests[GATE_BOOK] - before, mid, m1, brk.state

    (sent, mid, m1, state), records = run_scenario(tmp_path, scenario)
    lbl = dict(venue="gateio_spot", endpoint=GATE_BOOK)
    assert sent == 5                                   # 4 × 503 + the snapshot: retries bounded, no hammering
    assert val(mid, "cexnode_rest_breaker_state", **lbl) == 2
    assert val(m1, "cexnode_rest_breaker_state", **lbl) == 0 and state == 0
    assert val(m1, "cexnode_rest_requests_total", status="503", **lbl) == 4
    assert val(m1, "cexnode_rest_breaker_opens_total", **lbl) == 2   # 3 failures, then the failed probe
    assert val(m1, "cexnode_rest_refused_total", reason="circuit_open", **lbl) >= 1
    assert any(r.get("msg", "").startswith("snapshot failed") for r in records)


def test_rest_timeouts_are_retried_within_bounds(tmp_path):
    async def scenario(h: Harness):
        fut = h.sim.venue("gateio_futures")
        before = fut.rest_requests[FUT_BOOK]
        fut.faults.rest_delay(1.0, n=2)                   # longer than the 0.3 s timeout
        fut.faults.gap_next("BTC_USDT")
        book = h.book("gateio_futures", "BTC/USDT:USDT")
        t0 = time.monotonic()
        assert await _wait(lambda: not book.in_sync, 3)
        assert await _wait(lambda: book.in_sync, 10)
        took = time.monotonic() - t0
        m1 = await h.scrape()
        assert await h.compare_all() == 5
        return took, fut.rest_requests[FUT_BOOK] - before, m1

    (took, sent, m1), _ = run_scenario(tmp_path, scenario)
    lbl = dict(venue="gateio_futures", endpoint=FUT_BOOK)
    assert sent == 3
    assert 0.55 <= took < 5, took
    assert val(m1, "cexnode_rest_requests_total", status="timeout", **lbl) == 2
    assert val(m1, "cexnode_rest_retries_total", **lbl) == 2
    assert val(m1, "cexnode_rest_breaker_state", **lbl) == 0


def test_readyz_false_while_a_snapshot_is_held_back(tmp_path):
    async def scenario(h: Harness):
        gate = h.sim.venue("gateio_spot")
        assert await h.ready() == 200
        gate.faults.rest_delay(1.5, n=1)
        gate.faults.gap_next("ETH_USDT")
        book = h.book("gateio_spot", "ETH/USDT")
        assert await _wait(lambda: not book.in_sync, 3)
        seen = []
        t_end = time.monotonic() + 8
        while time.monotonic() < t_end:
            seen.append((await h.ready(), book.in_sync))
            if seen[-1][0] == 200:
                break
            await asyncio.sleep(0.05)
        return seen

    (seen, _) = run_scenario(tmp_path, scenario)
    assert seen[0] == (503, False)
    assert seen[-1][0] == 200 and seen[-1][1] is True
    assert len(seen) >= 10                           # held back ~1.5 s, polled every 50 ms
    assert all(ready == 503 for ready, in_sync in seen if not in_sync)


# MEXC instruments from the config (no REST at load) and a REST URL nobody listens on
MEXC_OFFLINE = """    rest_url: "http://127.0.0.1:9"
    instruments:
      - {symbol: BTC/USDT, venue_symbol: BTCUSDT, tick: "0.01", step: "0.000001", min_qty: "0.000001", min_notional: "1"}
      - {symbol: ETH/USDT, venue_symbol: ETHUSDT, tick: "0.01", step: "0.0001", min_qty: "0.0001", min_notional: "1"}"""


def test_venue_whose_snapshots_never_come_stops_the_node(tmp_path):
    t0 = time.monotonic()
    _, records = run_scenario(tmp_path, None, on_failure="stop", start_timeout=2, mexc_extra=MEXC_OFFLINE,
                              expect_exit=1, wait_books=0)
    assert time.monotonic() - t0 < 15
    failed = [r for r in records if r.get("msg") == "venue failed"]
    assert failed and "mexc_spot" in orjson.dumps(failed[0]).decode()
    assert "SnapshotError" in orjson.dumps(failed[0]).decode()


def test_degrade_runs_without_the_failed_venue_and_a_failing_book_is_retried(tmp_path):
    block = {"ETH_USDT": True}

    def before_start(node: Node) -> None:
        ad = node.context.engine.adapters["gateio_spot"]
        real = ad.venue_fetch_snapshot

        async def flaky(vs):          # this one market's snapshot keeps failing until released
            if block.get(vs):
                raise RuntimeError("snapshot refused for %s" % vs)
            return await real(vs)
        ad.venue_fetch_snapshot = flaky

    async def scenario(h: Harness):
        eng = h.engine
        assert "mexc_spot" in eng.failed and "SnapshotError" in eng.failed["mexc_spot"]
        assert eng.adapters["mexc_spot"].status()["connected"] is False
        eth = h.book("gateio_spot", "ETH/USDT")
        btc = h.book("gateio_spot", "BTC/USDT")
        assert btc.in_sync and not eth.in_sync
        errors0 = eng.adapters["gateio_spot"].snapshot_errors
        # still retrying (backoff doubles: the next attempt comes within a few seconds), still out of sync
        assert await _wait(lambda: eng.adapters["gateio_spot"].snapshot_errors > errors0, 6)
        assert not eth.in_sync
        ready, details = await h.readyz()
        assert not ready and details["books"]["out_of_sync"] == ["gateio_spot ETH/USDT"]
        # the failed venue is listed as failed, its books are not waited for
        assert "SnapshotError" in details["venues"]["failed"]["mexc_spot"]
        assert "mexc_spot" not in details["venues"]["disconnected"] and details["books"]["books"] == 3
        assert details["venues"]["ok"] is True
        block["ETH_USDT"] = False
        assert await _wait(lambda: eth.in_sync, 8)
        # ready once the remaining venues' books are in sync (degraded, not down)
        seen: list = []
        assert await _wait_async(lambda: _ready_into(h, seen), 5), seen[-1:]
        ready, details = seen[-1]
        assert details["books"]["out_of_sync"] == [] and details["books"]["stale"] == []
        assert list(details["venues"]["failed"]) == ["mexc_spot"]
        assert sorted(details["venues"]["connected"]) == ["gateio_futures", "gateio_spot"]
        assert not h.book("mexc_spot", "BTC/USDT").in_sync         # still failed, still not counted
        # the failed venue's books never come into the comparison; the others equal the sim
        books = {k: v for k, v in eng.books.items() if k[0] != "mexc_spot"}
        return len(books), sorted(eng.failed)

    (nbooks, failed), _ = run_scenario(tmp_path, scenario, on_failure="degrade", start_timeout=2,
                                       mexc_extra=MEXC_OFFLINE, before_start=before_start, wait_books=2)
    assert failed == ["mexc_spot"] and nbooks == 3


def test_venue_start_timeout_stops_the_node(tmp_path):
    def before_start(node: Node) -> None:
        node.context.sim.venue("mexc_spot").faults.rest_delay(2.5)     # instrument info never in time

    t0 = time.monotonic()
    _, records = run_scenario(tmp_path, None, on_failure="stop", start_timeout=1, before_start=before_start,
                              expect_exit=1, wait_books=0)
    assert time.monotonic() - t0 < 15
    failed = [r for r in records if r.get("msg") == "venue failed"]
    assert failed and "mexc_spot" in orjson.dumps(failed[0]).decode()
    assert "timed out" in orjson.dumps(failed[0]).decode()


def test_gate_quota_headers_pause_before_the_venue_says_429(tmp_path):
    """The simulator enforces a tiny per-endpoint quota (5 per 2 s) and reports it in Gate's
    X-Gate-RateLimit-* headers; a burst of resyncs must wait for the reset instead of getting 429s."""
    async def scenario(h: Harness):
        gate = h.sim.venue("gateio_spot")
        gate.rest_rate_limit = (5, 2.0)
        await asyncio.sleep(2.1)                       # a fresh window
        before = gate.rest_requests[GATE_BOOK]
        t0 = time.monotonic()
        for i in range(8):
            gate.faults.gap_next("BTC_USDT" if i % 2 else "ETH_USDT")
            await asyncio.sleep(0.03)
            assert await _wait(lambda: h.engine.books_in_sync() == (5, 5), 8), i
        took = time.monotonic() - t0
        m1 = await h.scrape()
        assert await h.compare_all() == 5
        return took, gate.rest_requests[GATE_BOOK] - before, m1

    (took, sent, m1), _ = run_scenario(tmp_path, scenario, enforce_rate_limits=True)
    lbl = dict(venue="gateio_spot", endpoint=GATE_BOOK)
    assert val(m1, "cexnode_rest_rate_limited_total", status="429", **lbl) == 0
    assert sent == 8
    assert val(m1, "cexnode_rest_requests_total", status="429", **lbl) == 0
    assert val(m1, "cexnode_rest_rate_limit_waits_total", **lbl) >= 1
    assert took >= 1.5                                   # the 6th request waited for the window's reset

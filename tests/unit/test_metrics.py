"""cexnode.metrics: real HTTP scrapes of /metrics, /healthz, /readyz on 127.0.0.1 (port 0)."""
import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cexnode._core import logring as lr
from cexnode._core.book import SYNC_SNAPSHOT_DIFF, Book, BookSync
from cexnode.metrics import (SERIES, MetricsServer, NodeMetrics, add_book_sources, books_readiness,
                              venues_readiness)


@dataclass(frozen=True)
class MetricsCfg:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 0


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


async def get(server, path):
    return await asyncio.to_thread(_get, server.url + path)


def samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class FakeListener:
    """Stands in for a _core object exposing C counters as properties."""

    def __init__(self, venue):
        self.venue, self.frames, self.bytes = venue, 0, 0


def test_scrape_metrics_healthz_readyz():
    async def main():
        m = NodeMetrics(node_name="test-node")
        ls = [FakeListener("mexc_spot"), FakeListener("gateio_spot")]
        m.add_source("cexnode_ws_frames", lambda: [((x.venue, "0"), x.frames) for x in ls])
        m.add_source("cexnode_ws_received_bytes", lambda: [((x.venue, "0"), x.bytes) for x in ls])
        m.add_source("cexnode_book_age_seconds", lambda: [(("mexc_spot", "BTC/USDT"), 0.25)])
        m.register_counter_source("cexnode_custom_things", "Custom.", ("kind",), lambda: [(("a",), 4)])
        m.order_result("mexc_spot", "filled")
        m.order_result("mexc_spot", "filled")
        m.order_result("gateio_spot", "rejected")
        m.order_roundtrip("mexc_spot").observe(700)
        m.order_roundtrip("mexc_spot").observe(3_000)
        m.tick_to_decision().observe(12)
        srv = MetricsServer(MetricsCfg(), m, lag_interval_s=0.02)
        await srv.start()
        try:
            assert srv.port and srv.port > 0
            ls[0].frames, ls[0].bytes, ls[1].frames = 10, 2048, 3      # C counters move; no prom call
            await asyncio.sleep(0.1)
            st, ctype, body = await get(srv, "/metrics")
            assert st == 200 and ctype.startswith("text/plain")
            s = samples(body)
            c0 = ("connection", "0")
            assert s[("cexnode_ws_frames_total", (c0, ("venue", "mexc_spot")))] == 10
            assert s[("cexnode_ws_frames_total", (c0, ("venue", "gateio_spot")))] == 3
            assert s[("cexnode_ws_received_bytes_total", (c0, ("venue", "mexc_spot")))] == 2048
            assert s[("cexnode_orders_total", (("result", "filled"), ("venue", "mexc_spot")))] == 2
            assert s[("cexnode_orders_total", (("result", "rejected"), ("venue", "gateio_spot")))] == 1
            assert s[("cexnode_order_roundtrip_microseconds_count", (("venue", "mexc_spot"),))] == 2
            assert s[("cexnode_order_roundtrip_microseconds_bucket", (("le", "1000.0"), ("venue", "mexc_spot")))] == 1
            assert s[("cexnode_order_roundtrip_microseconds_sum", (("venue", "mexc_spot"),))] == 3700
            assert s[("cexnode_tick_to_decision_microseconds_count", ())] == 1
            assert s[("cexnode_book_age_seconds", (("symbol", "BTC/USDT"), ("venue", "mexc_spot")))] == 0.25
            assert s[("cexnode_custom_things_total", (("kind", "a"),))] == 4
            assert s[("cexnode_info", (("node", "test-node"),))] == 1
            assert ("cexnode_event_loop_lag_seconds", ()) in s
            assert ("cexnode_log_records_dropped_total", ()) in s
            for d in SERIES:                                  # every series is declared
                exposed = d.name + ("_total" if d.kind == "counter" else "")
                assert "# TYPE %s " % exposed in body or "# TYPE %s " % d.name in body
            # a later scrape sees the C counters move
            ls[0].frames = 11
            s = samples((await get(srv, "/metrics"))[2])
            assert s[("cexnode_ws_frames_total", (c0, ("venue", "mexc_spot")))] == 11

            st, _, body = await get(srv, "/healthz")
            h = json.loads(body)
            assert st == 200 and h["status"] == "ok" and h["loop_alive"] and "loop_lag_ms" in h

            st, _, body = await get(srv, "/readyz")
            assert st == 503 and json.loads(body)["ready"] is False
            books = {"ok": False}
            srv.readiness.add_check("books", lambda: (books["ok"], {"in_sync": books["ok"]}))
            srv.readiness.add_check("venues", lambda: (True, {"connected": ["mexc_spot"]}))
            st, _, body = await get(srv, "/readyz")
            assert st == 503 and json.loads(body)["details"]["books"]["ok"] is False
            books["ok"] = True
            st, _, body = await get(srv, "/readyz")
            d = json.loads(body)
            assert st == 200 and d["ready"] and d["details"]["venues"]["connected"] == ["mexc_spot"]
            srv.set_readiness_provider(lambda: (_ for _ in ()).throw(RuntimeError("provider broke")))
            st, _, body = await get(srv, "/readyz")
            assert st == 503 and "provider broke" in body
        finally:
            await srv.stop()

    asyncio.run(main())


def test_healthz_reports_loop_lag():
    async def main():
        srv = MetricsServer(MetricsCfg(), max_loop_lag_s=0.1, lag_interval_s=0.02, lag_window_s=0.6)
        await srv.start()
        try:
            await asyncio.sleep(0.1)
            assert (await get(srv, "/healthz"))[0] == 200
            time.sleep(0.3)                           # block the event loop
            blocked_at = time.monotonic()
            await asyncio.sleep(0.1)
            st, _, body = await get(srv, "/healthz")
            h = json.loads(body)
            assert st == 503 and h["loop_lag_max_ms"] >= 250
            s = samples((await get(srv, "/metrics"))[2])
            assert s[("cexnode_event_loop_lag_max_seconds", ())] >= 0.25
            # the window moves on: healthy again once 0.6 s pass without a lag over 0.1 s (on a
            # loaded host a timer can itself fire late: the window restarts then, so wait for it)
            deadline = time.monotonic() + 10
            while (await get(srv, "/healthz"))[0] != 200:
                assert time.monotonic() < deadline, "still unhealthy 10 s after the loop was blocked"
                await asyncio.sleep(0.1)
            assert time.monotonic() - blocked_at >= 0.6       # not before the window moved past the block
        finally:
            await srv.stop()

    asyncio.run(main())


def test_registries_are_per_node_and_log_drops_exported():
    async def main():
        a, b = NodeMetrics(node_name="a"), NodeMetrics(node_name="b")
        a.inc("cexnode_ws_reconnects", "mexc_spot")
        sa, sb = MetricsServer(MetricsCfg(), a), MetricsServer(MetricsCfg(), b)
        await sa.start()
        await sb.start()
        ring = lr.LogRing(2)
        old = lr.activate_ring(ring)
        try:
            ring.drain(0)
            for _ in range(5):
                ring.push_log(lr.INFO, 0, "x")
            assert sa.port != sb.port
            ta, tb = samples((await get(sa, "/metrics"))[2]), samples((await get(sb, "/metrics"))[2])
            assert ta[("cexnode_ws_reconnects_total", (("venue", "mexc_spot"),))] == 1
            assert ("cexnode_ws_reconnects_total", (("venue", "mexc_spot"),)) not in tb
            assert ta[("cexnode_log_records_dropped_total", ())] == 3
            assert ta[("cexnode_log_ring_used_records", ())] == 2
        finally:
            # the first drain makes room, so the ring appends its drop report; drain that too, or
            # activate_ring would carry it into the restored ring and the next test would count it
            while len(ring):
                ring.drain(0)
            lr.activate_ring(old)
            await sa.stop()
            await sb.stop()

    asyncio.run(main())


def test_metrics_disabled_serves_nothing():
    async def main():
        srv = MetricsServer(MetricsCfg(enabled=False))
        await srv.start()
        assert srv.port is None
        await srv.stop()

    asyncio.run(main())


def test_label_arity_checked_and_broken_source_counted():
    m = NodeMetrics()
    with pytest.raises(ValueError):
        m.inc("cexnode_orders", "only-venue")
    with pytest.raises(KeyError):
        m.inc("cexnode_nope")
    m.add_source("cexnode_parse_errors", lambda: 1 / 0)
    list(m.collect())
    assert m.source_errors == 1


def test_book_levels_and_level_cap_resyncs_from_real_books():
    """cexnode_book_levels counts every level a side holds (beyond the depth too); a side that would
    pass book_max_levels resyncs the book, counted in cexnode_book_level_cap_resyncs_total."""
    sync = BookSync(Book(0, 0, 2, 4), SYNC_SNAPSHOT_DIFF, 8)
    m = NodeMetrics(node_name="caps")
    add_book_sources(m, lambda: [("mexc_spot", "BTC/USDT", sync)])

    def series():
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in m.collect() for s in f.samples}

    lab = (("symbol", "BTC/USDT"), ("venue", "mexc_spot"))
    assert sync.py_snapshot(10, [(10, 1), (9, 1), (8, 1)], [(11, 1)]) == 0
    s = series()
    assert s[("cexnode_book_levels", (("side", "bid"),) + lab)] == 3
    assert s[("cexnode_book_levels", (("side", "ask"),) + lab)] == 1
    assert s[("cexnode_book_level_cap_resyncs_total", lab)] == 0
    assert sync.py_update(11, 11, [(7, 1), (6, 1)], []) == 3            # 5 bids > cap 4: resync
    s = series()
    assert s[("cexnode_book_level_cap_resyncs_total", lab)] == 1 and s[("cexnode_book_resyncs_total", lab)] == 1
    assert not sync.book.in_sync


def test_readyz_and_book_series_from_real_books():
    """/readyz follows real BookSync objects (in sync and fresh by receive and exchange time) and
    venue connectivity; book updates/resyncs/age are read from the C counters at scrape time."""
    now = {"ns": 1_800_000_000_000_000_000}
    clock = lambda: now["ns"]                                          # noqa: E731
    syncs = [("mexc_spot", "BTC/USDT", BookSync(Book(0, 0), SYNC_SNAPSHOT_DIFF, 8)),
             ("gateio_spot", "BTC/USDT", BookSync(Book(0, 1), SYNC_SNAPSHOT_DIFF, 8))]
    up = {"mexc_spot": True, "gateio_spot": False}

    async def main():
        m = NodeMetrics(node_name="books")
        add_book_sources(m, lambda: syncs, clock)
        srv = MetricsServer(MetricsCfg(), m, lag_interval_s=0.02)
        srv.readiness.add_check("books", books_readiness(lambda: syncs, 5000, clock))
        srv.readiness.add_check("venues", venues_readiness(lambda: list(up.items())))
        await srv.start()
        try:
            st, _, body = await get(srv, "/readyz")
            d = json.loads(body)["details"]
            assert st == 503 and d["books"]["out_of_sync"] == ["mexc_spot BTC/USDT", "gateio_spot BTC/USDT"]
            t_ms = now["ns"] // 1_000_000
            for _, _, s in syncs:
                assert s.py_snapshot(100, [(10, 1)], [(11, 1)], exch_ts_ms=t_ms, recv_ns=now["ns"]) == 0
                assert s.py_update(101, 101, [(9, 2)], [], exch_ts_ms=t_ms, recv_ns=now["ns"]) == 0
            st, _, body = await get(srv, "/readyz")
            d = json.loads(body)["details"]
            assert st == 503 and d["books"]["ok"] and d["venues"]["disconnected"] == ["gateio_spot"]
            up["gateio_spot"] = True
            assert (await get(srv, "/readyz"))[0] == 200
            now["ns"] += 2_500_000_000
            s = samples((await get(srv, "/metrics"))[2])
            lab = (("symbol", "BTC/USDT"), ("venue", "mexc_spot"))
            assert s[("cexnode_book_updates_total", lab)] == 2
            assert s[("cexnode_book_resyncs_total", lab)] == 0
            assert s[("cexnode_book_age_seconds", lab)] == 2.5
            # a gap: out of sync, resync counted, not ready
            assert syncs[0][2].py_update(105, 105, [(9, 3)], [], recv_ns=now["ns"]) == 3
            st, _, body = await get(srv, "/readyz")
            assert st == 503 and json.loads(body)["details"]["books"]["out_of_sync"] == ["mexc_spot BTC/USDT"]
            assert samples((await get(srv, "/metrics"))[2])[("cexnode_book_resyncs_total", lab)] == 1
            assert syncs[0][2].py_snapshot(105, [(10, 1)], [(11, 1)], exch_ts_ms=now["ns"] // 1_000_000,
                                           recv_ns=now["ns"]) == 0
            # the other book has not updated for 2.5 s: still fresh at 5 s, stale after
            assert (await get(srv, "/readyz"))[0] == 200
            now["ns"] += 3_000_000_000
            st, _, body = await get(srv, "/readyz")
            assert st == 503 and json.loads(body)["details"]["books"]["stale"] == ["gateio_spot BTC/USDT"]
            # fresh locally but an old exchange timestamp is stale too (DESIGN §4 step 1)
            g = syncs[1][2]
            assert g.py_update(102, 102, [(9, 5)], [], exch_ts_ms=(now["ns"] - 6_000_000_000) // 1_000_000,
                               recv_ns=now["ns"]) == 0
            st, _, body = await get(srv, "/readyz")
            assert st == 503 and json.loads(body)["details"]["books"]["stale"] == ["gateio_spot BTC/USDT"]
        finally:
            await srv.stop()

    asyncio.run(main())

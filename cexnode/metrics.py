"""Observability: Prometheus series read from C counters at scrape time, plus /healthz and /readyz.

* :class:`NodeMetrics` defines every series of the node on its own ``CollectorRegistry`` (one per
  node, never the global default). Hot counters stay in C fields of the objects that own them
  (parsers, books, listeners); a *source* — a callable returning ``[(label_values, value), ...]`` —
  reads them when Prometheus scrapes, so nothing calls prometheus-client per message. Low-rate
  events (orders, reconnects) can use :meth:`NodeMetrics.inc`; latency histograms are
  :class:`~cexnode._core.logring.HotHistogram` objects updated from C (``observe_c``) or Python.
* :class:`LoopMonitor` measures event-loop lag with a periodic task.
* :class:`MetricsServer` serves ``/metrics``, ``/healthz`` (loop alive and lag under the limit) and
  ``/readyz`` (from a readiness provider the node sets) with aiohttp on the asyncio loop, bound to
  127.0.0.1 by default.

Plugging a source (later venue code)::

    metrics.add_source("cexnode_ws_frames", lambda: [((l.venue_name, str(l.index)), l.data_frames) for l in listeners])
    metrics.histogram("cexnode_order_roundtrip_microseconds", "venue_a").observe(812)
    server.readiness.add_check("books", lambda: (all_in_sync(), {"stale": [...]}))

Ready-made for the engine: :func:`add_book_sources` (book updates, resyncs, age from BookSync C
fields), :func:`add_rest_sources` (``cexnode_rest_*``: requests by status, retries, 429/418,
rate-limit waits, breaker state, connection reuse, round-trip histogram of each venue's
:class:`~cexnode.net.rest.RestManager`), :func:`add_ws_sources` (``cexnode_ws_*``: frames, bytes,
pings/pongs, connection state and age per connection; connects, reconnects, watchdog trips,
rotations, subscription rejects per venue, from each venue's :class:`~cexnode.net.ws.WsFeed` and
its FeedListeners), :func:`books_readiness` (every book in sync and fresh) and
:func:`venues_readiness`.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.utils import floatToGoString

from cexnode._core import logring as _lr
from cexnode._core.book import BookSync
from cexnode.config import MetricsConfig

__all__ = ["SeriesDef", "SERIES", "LATENCY_BUCKETS_US", "NodeMetrics", "LoopMonitor", "ReadinessRegistry",
           "MetricsServer", "add_book_sources", "add_book_audit_sources", "add_rest_sources", "add_ws_sources",
           "books_readiness", "venues_readiness"]

# μs bucket bounds: sub-μs parsing up to multi-second order round trips.
LATENCY_BUCKETS_US = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000,
                      100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000)


@dataclass(frozen=True)
class SeriesDef:
    name: str                       # counters without the _total suffix (added on exposition)
    help: str
    kind: str                       # counter | gauge | histogram
    labels: tuple = ()
    buckets: tuple = field(default=LATENCY_BUCKETS_US)


SERIES: tuple = (
    SeriesDef("cexnode_ws_frames", "WebSocket data frames (messages) received, per connection index.", "counter",
              ("venue", "connection")),
    SeriesDef("cexnode_ws_received_bytes", "WebSocket payload bytes received, per connection index.", "counter",
              ("venue", "connection")),
    SeriesDef("cexnode_parse_errors", "Frames that could not be parsed.", "counter", ("venue",)),
    SeriesDef("cexnode_book_updates", "Book updates applied.", "counter", ("venue", "symbol")),
    SeriesDef("cexnode_book_resyncs", "Book resyncs (gap, crossed, overflow, level cap, requested).", "counter",
              ("venue", "symbol")),
    SeriesDef("cexnode_book_level_cap_resyncs", "Book resyncs because a side reached book_max_levels (the memory cap).",
              "counter", ("venue", "symbol")),
    SeriesDef("cexnode_book_levels", "Levels the book holds per side: every level the venue sent, up to book_max_levels.",
              "gauge", ("venue", "symbol", "side")),
    SeriesDef("cexnode_book_age_seconds", "Seconds since the book's last applied update.", "gauge",
              ("venue", "symbol")),
    # book audits (cexnode.book_audit; add_book_audit_sources)
    SeriesDef("cexnode_book_audits", "Book audits against a REST snapshot, by result: match, mismatch (the book "
              "was resynced), inconclusive (the snapshot could not be brought to the live book's id; retried), "
              "skipped (REST busy, the venue resyncing or the book out of sync; retried), error (the snapshot "
              "request failed; retried).", "counter", ("venue", "result")),
    SeriesDef("cexnode_book_audit_mismatches", "Book audits whose top levels differed from the venue's snapshot "
              "(each resyncs the book).", "counter", ("venue", "symbol")),
    SeriesDef("cexnode_ws_reconnects", "WebSocket reconnects.", "counter", ("venue",)),
    # public WebSocket feeds (cexnode.net.ws; add_ws_sources)
    SeriesDef("cexnode_ws_pings_received", "WebSocket protocol pings received (each answered with a pong).", "counter",
              ("venue", "connection")),
    SeriesDef("cexnode_ws_pongs_received", "WebSocket protocol pongs received.", "counter", ("venue", "connection")),
    SeriesDef("cexnode_ws_connected", "1 while the connection is open.", "gauge", ("venue", "connection")),
    SeriesDef("cexnode_ws_connection_age_seconds", "Seconds since the current connection opened.", "gauge",
              ("venue", "connection")),
    SeriesDef("cexnode_ws_last_frame_age_seconds", "Seconds since the connection's last frame (watchdog input).",
              "gauge", ("venue", "connection")),
    SeriesDef("cexnode_ws_connections", "Connections the feed keeps (one per subscription group).", "gauge",
              ("venue",)),
    SeriesDef("cexnode_ws_connects", "WebSocket connections opened (first connects, reconnects, rotations).",
              "counter", ("venue",)),
    SeriesDef("cexnode_ws_disconnects", "WebSocket connections that went down.", "counter", ("venue",)),
    SeriesDef("cexnode_ws_watchdog_trips", "Connections closed by the watchdog (no frame for watchdog_s).", "counter",
              ("venue",)),
    SeriesDef("cexnode_ws_errors", "Failed connects and frame-handling exceptions.", "counter", ("venue",)),
    SeriesDef("cexnode_ws_frame_errors", "Frames whose handling raised (parser or sink exception).", "counter",
              ("venue",)),
    SeriesDef("cexnode_ws_app_pings", "Application-level pings sent (the venue's own ping messages).",
              "counter", ("venue",)),
    SeriesDef("cexnode_ws_rotations", "Connections replaced before the venue's age limit.", "counter", ("venue",)),
    SeriesDef("cexnode_ws_rotation_failures", "Rotations that failed (the old connection was kept).", "counter",
              ("venue",)),
    SeriesDef("cexnode_ws_subscription_rejects", "Subscription requests the venue rejected.", "counter", ("venue",)),
    SeriesDef("cexnode_ws_resubscribes", "Subscriptions re-sent after a rejection.", "counter", ("venue",)),
    SeriesDef("cexnode_ws_subscriptions_added", "Subscriptions added while the feed ran (books added).", "counter",
              ("venue",)),
    SeriesDef("cexnode_ws_subscriptions_removed", "Subscriptions removed while the feed ran (books removed).",
              "counter", ("venue",)),
    SeriesDef("cexnode_ws_idle_closes", "Connections closed because their last subscription was removed.",
              "counter", ("venue",)),
    SeriesDef("cexnode_ws_unsubscribed_books", "Books whose subscription was rejected and not yet accepted.", "gauge",
              ("venue",)),
    SeriesDef("cexnode_opportunities", "Arbitrage opportunities emitted.", "counter",
              ("symbol", "buy_venue", "sell_venue")),
    SeriesDef("cexnode_orders", "Orders by result (filled, partial, rejected, error, ...).", "counter",
              ("venue", "result")),
    SeriesDef("cexnode_order_roundtrip_microseconds", "Order send to venue acknowledgement (μs).", "histogram",
              ("venue",)),
    SeriesDef("cexnode_tick_to_decision_microseconds", "Frame receive to arbitrage decision (μs).", "histogram",
              ()),
    SeriesDef("cexnode_log_records", "Records accepted by the log ring.", "counter", ()),
    SeriesDef("cexnode_log_records_dropped", "Records dropped because the log ring was full.", "counter", ()),
    SeriesDef("cexnode_log_ring_used_records", "Records waiting in the log ring.", "gauge", ()),
    SeriesDef("cexnode_event_loop_lag_seconds", "Event-loop lag: last measurement.", "gauge", ()),
    SeriesDef("cexnode_event_loop_lag_max_seconds", "Event-loop lag: maximum in the recent window.", "gauge", ()),
    SeriesDef("cexnode_info", "Node identity (value 1).", "gauge", ("node",)),
    SeriesDef("cexnode_metrics_source_errors", "Metric sources that raised during a scrape.", "counter", ()),
    # REST manager (cexnode.net.rest; add_rest_sources)
    SeriesDef("cexnode_rest_requests", "REST requests sent, by answer (HTTP status, timeout, connect_error, "
              "transport_error).", "counter", ("venue", "endpoint", "status")),
    SeriesDef("cexnode_rest_retries", "REST requests sent again (429 after Retry-After, 5xx, timeouts; idempotent only).",
              "counter", ("venue", "endpoint")),
    SeriesDef("cexnode_rest_rate_limited", "REST answers 429 (rate limited) or 418 (banned).", "counter",
              ("venue", "endpoint", "status")),
    SeriesDef("cexnode_rest_rate_limit_waits", "REST requests delayed by a rate limit or a venue pause.", "counter",
              ("venue", "endpoint")),
    SeriesDef("cexnode_rest_rate_limit_wait_seconds", "Seconds REST requests spent waiting for rate limits and pauses.",
              "counter", ("venue", "endpoint")),
    SeriesDef("cexnode_rest_refused", "REST requests not sent: circuit open, paused longer than the caller waits, or a "
              "background request (book audit) without room to spare in the rate limits.",
              "counter", ("venue", "endpoint", "reason")),
    SeriesDef("cexnode_rest_breaker_state", "Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open.", "gauge",
              ("venue", "endpoint")),
    SeriesDef("cexnode_rest_breaker_opens", "Times an endpoint's circuit breaker opened.", "counter",
              ("venue", "endpoint")),
    SeriesDef("cexnode_rest_connections_created", "New HTTP connections opened by the REST pool.", "counter", ("venue",)),
    SeriesDef("cexnode_rest_connection_reuse_ratio", "Share of REST requests sent on a reused keep-alive connection.",
              "gauge", ("venue",)),
    SeriesDef("cexnode_rest_order_connection_up", "1 while the dedicated order connection is open.", "gauge", ("venue",)),
    SeriesDef("cexnode_rest_order_connection_requests",
              "Order requests by path: written on the order connection, or sent by the pool because it was busy or down.",
              "counter", ("venue", "via")),
    SeriesDef("cexnode_rest_order_connection_events", "Order connection connects and losses.", "counter",
              ("venue", "event")),
    SeriesDef("cexnode_rest_request_microseconds", "REST request round trip, send to complete answer (μs).",
              "histogram", ("venue", "endpoint")),
)

Source = Callable[[], Iterable[tuple]]


class NodeMetrics:
    """Every series of one node, on a dedicated registry; values come from sources at scrape time.

    Parameters
    ----------
    registry
        A prometheus_client CollectorRegistry (a new private one when None).
    node_name
        Exposed as ``cexnode_info{node=...} 1``.
    """

    def __init__(self, registry: Optional[CollectorRegistry] = None, node_name: str = "cexnode") -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.node_name = node_name
        self._defs: dict[str, SeriesDef] = {}
        self._sources: dict[str, list[Source]] = {}
        self._values: dict[str, dict[tuple, float]] = {}
        self._hists: dict[str, dict[tuple, _lr.HotHistogram]] = {}
        self.source_errors = 0
        self.loop_monitor: Optional[LoopMonitor] = None
        for d in SERIES:
            self.define(d)
        self.set("cexnode_info", 1, node_name)
        self.add_source("cexnode_log_records", lambda: [((), _lr.active_ring().accepted)])
        self.add_source("cexnode_log_records_dropped", lambda: [((), _lr.active_ring().dropped)])
        self.add_source("cexnode_log_ring_used_records", lambda: [((), len(_lr.active_ring()))])
        self.add_source("cexnode_metrics_source_errors", lambda: [((), self.source_errors)])
        self.add_source("cexnode_event_loop_lag_seconds", self._lag_source)
        self.add_source("cexnode_event_loop_lag_max_seconds", self._lag_max_source)
        self.registry.register(_Collector(self))

    # -- definitions and sources -------------------------------------------------------------------
    def define(self, d: SeriesDef) -> SeriesDef:
        if d.kind not in ("counter", "gauge", "histogram"):
            raise ValueError("series kind must be counter|gauge|histogram, got %r" % (d.kind,))
        old = self._defs.get(d.name)
        if old is not None and old != d:
            raise ValueError("series %s is already defined differently" % d.name)
        self._defs[d.name] = d
        self._sources.setdefault(d.name, [])
        self._values.setdefault(d.name, {})
        self._hists.setdefault(d.name, {})
        return d

    def series(self) -> dict[str, SeriesDef]:
        return dict(self._defs)

    def add_source(self, name: str, fn: Source) -> Source:
        """Read ``fn()`` at every scrape: an iterable of ``(label_values_tuple, value)``; for a
        histogram series, value is a HotHistogram (or a ``snapshot()``-shaped tuple). Samples with
        the same labels from several sources are summed. Returns ``fn`` (for ``remove_source``)."""
        self._need(name)
        self._sources[name].append(fn)
        return fn

    def remove_source(self, name: str, fn: Source) -> None:
        try:
            self._sources[name].remove(fn)
        except (KeyError, ValueError):
            pass

    def register_counter_source(self, name: str, help: str, labels: Iterable[str], fn: Source) -> Source:
        """Define a counter series (if new) and add a source for it."""
        self.define(SeriesDef(name, help, "counter", tuple(labels)))
        return self.add_source(name, fn)

    def register_gauge_source(self, name: str, help: str, labels: Iterable[str], fn: Source) -> Source:
        self.define(SeriesDef(name, help, "gauge", tuple(labels)))
        return self.add_source(name, fn)

    # -- Python-side values (low-rate events) --------------------------------------------------------
    def inc(self, name: str, *label_values: str, n: float = 1) -> None:
        d = self._need(name)
        key = self._key(d, label_values)
        vals = self._values[name]
        vals[key] = vals.get(key, 0) + n

    def set(self, name: str, value: float, *label_values: str) -> None:
        d = self._need(name)
        self._values[name][self._key(d, label_values)] = value

    def histogram(self, name: str, *label_values: str) -> _lr.HotHistogram:
        """The HotHistogram for these labels (created on first use); ``observe``/``observe_c`` it."""
        d = self._need(name)
        if d.kind != "histogram":
            raise ValueError("%s is not a histogram" % name)
        key = self._key(d, label_values)
        h = self._hists[name].get(key)
        if h is None:
            h = self._hists[name][key] = _lr.HotHistogram(d.buckets)
        return h

    # named helpers for the series later code feeds from Python
    def order_result(self, venue: str, result: str) -> None:
        self.inc("cexnode_orders", venue, result)

    def reconnect(self, venue: str) -> None:
        self.inc("cexnode_ws_reconnects", venue)

    def opportunity(self, symbol: str, buy_venue: str, sell_venue: str) -> None:
        self.inc("cexnode_opportunities", symbol, buy_venue, sell_venue)

    def order_roundtrip(self, venue: str) -> _lr.HotHistogram:
        return self.histogram("cexnode_order_roundtrip_microseconds", venue)

    def tick_to_decision(self) -> _lr.HotHistogram:
        return self.histogram("cexnode_tick_to_decision_microseconds")

    def _need(self, name: str) -> SeriesDef:
        d = self._defs.get(name)
        if d is None:
            raise KeyError("unknown series %s (define it first)" % name)
        return d

    @staticmethod
    def _key(d: SeriesDef, label_values: tuple) -> tuple:
        if len(label_values) != len(d.labels):
            raise ValueError("%s takes labels %s, got %r" % (d.name, d.labels, label_values))
        return tuple(str(v) for v in label_values)

    def _lag_source(self):
        m = self.loop_monitor
        return [((), m.lag_s)] if m is not None and m.ticks else []

    def _lag_max_source(self):
        m = self.loop_monitor
        return [((), m.recent_max_lag_s())] if m is not None and m.ticks else []

    # -- scrape ------------------------------------------------------------------------------------
    def collect(self):
        for name, d in self._defs.items():
            if d.kind == "histogram":
                yield self._collect_hist(d)
                continue
            acc: dict[tuple, float] = dict(self._values[name])
            for fn in self._sources[name]:
                try:
                    for labels, value in fn():
                        key = tuple(str(v) for v in labels)
                        acc[key] = acc.get(key, 0) + value
                except Exception:
                    self.source_errors += 1
            fam = (CounterMetricFamily if d.kind == "counter" else GaugeMetricFamily)(d.name, d.help, labels=d.labels)
            for key, value in acc.items():
                fam.add_metric(list(key), float(value))
            yield fam

    def _collect_hist(self, d: SeriesDef):
        fam = HistogramMetricFamily(d.name, d.help, labels=d.labels)
        snaps: dict[tuple, list] = {}

        def add(key, snap):
            bounds, counts, total, count = snap
            cur = snaps.get(key)
            if cur is None:
                snaps[key] = [list(bounds), list(counts), total, count]
            elif cur[0] == list(bounds):
                cur[1] = [a + b for a, b in zip(cur[1], counts)]
                cur[2] += total
                cur[3] += count

        for key, h in self._hists[d.name].items():
            add(key, h.snapshot())
        for fn in self._sources[d.name]:
            try:
                for labels, h in fn():
                    add(tuple(str(v) for v in labels), h.snapshot() if hasattr(h, "snapshot") else h)
            except Exception:
                self.source_errors += 1
        for key, (bounds, counts, total, count) in snaps.items():
            buckets, cum = [], 0
            for b, c in zip(bounds, counts):
                cum += c
                buckets.append((floatToGoString(b), cum))
            buckets.append(("+Inf", count))
            fam.add_metric(list(key), buckets, total)
        return fam


class _Collector:
    def __init__(self, m: NodeMetrics) -> None:
        self._m = m

    def collect(self):
        return self._m.collect()


class LoopMonitor:
    """Periodic task measuring how late the event loop wakes it up (lag)."""

    def __init__(self, interval_s: float = 0.1, window_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self.window_s = window_s
        self.lag_s = 0.0
        self.max_lag_s = 0.0
        self.ticks = 0
        self.last_tick = 0.0            # time.monotonic() of the last tick
        self._recent: list[tuple[float, float]] = []
        self._task: Optional[asyncio.Task] = None

    def start(self) -> None:
        if self._task is None:
            self.last_tick = time.monotonic()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cexnode-loop-monitor")

    async def stop(self) -> None:
        t, self._task = self._task, None
        if t is not None:
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(self.interval_s)
            now = time.monotonic()
            lag = max(0.0, now - t0 - self.interval_s)
            self.lag_s = lag
            self.max_lag_s = max(self.max_lag_s, lag)
            self.ticks += 1
            self.last_tick = now
            self._recent.append((now, lag))
            cut = now - self.window_s
            while self._recent and self._recent[0][0] < cut:
                self._recent.pop(0)

    def recent_max_lag_s(self) -> float:
        cut = time.monotonic() - self.window_s
        return max((lag for t, lag in self._recent if t >= cut), default=0.0)

    def tick_age_s(self) -> float:
        return time.monotonic() - self.last_tick


class ReadinessRegistry:
    """Named readiness checks; ready when every check passes (and at least one is registered).

    A check is ``fn() -> (ok: bool, details: dict)``, e.g. books in sync and fresh, venues connected."""

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], tuple]] = {}

    def add_check(self, name: str, fn: Callable[[], tuple]) -> None:
        self._checks[name] = fn

    def remove_check(self, name: str) -> None:
        self._checks.pop(name, None)

    def __call__(self) -> tuple[bool, dict]:
        if not self._checks:
            return False, {"reason": "no readiness checks registered"}
        ok_all, details = True, {}
        for name, fn in self._checks.items():
            try:
                ok, det = fn()
            except Exception as e:
                ok, det = False, {"error": "%s: %s" % (type(e).__name__, e)}
            ok_all = ok_all and bool(ok)
            details[name] = {"ok": bool(ok), **(det or {})}
        return ok_all, details


# A book entry for the helpers below: (venue name, unified symbol name, BookSync).
BookEntry = tuple[str, str, BookSync]


def add_book_sources(metrics: NodeMetrics, books: Callable[[], Iterable[BookEntry]],
                     clock_ns: Callable[[], int] = time.time_ns) -> None:
    """Export the C counters of every :class:`~cexnode._core.book.BookSync` at scrape time.

    ``books()`` returns ``(venue, symbol, sync)`` entries (called at every scrape, so books added
    later are seen). Series: ``cexnode_book_updates_total`` (``sync.applied``),
    ``cexnode_book_resyncs_total`` (``sync.resyncs``), ``cexnode_book_level_cap_resyncs_total``,
    ``cexnode_book_levels`` (per side) and ``cexnode_book_age_seconds`` (now minus the local receive
    time of the last applied update; only books that received one).
    """
    def updates():
        return [((v, s), sync.applied) for v, s, sync in books()]

    def resyncs():
        return [((v, s), sync.resyncs) for v, s, sync in books()]

    def cap_resyncs():
        return [((v, s), sync.level_cap_resyncs) for v, s, sync in books()]

    def levels():
        out = []
        for v, s, sync in books():
            nb, na = sync.book.counts()
            out += [((v, s, "bid"), nb), ((v, s, "ask"), na)]
        return out

    def age():
        now = clock_ns()
        return [((v, s), (now - sync.book.recv_ns) / 1e9) for v, s, sync in books() if sync.book.recv_ns]

    metrics.add_source("cexnode_book_updates", updates)
    metrics.add_source("cexnode_book_resyncs", resyncs)
    metrics.add_source("cexnode_book_level_cap_resyncs", cap_resyncs)
    metrics.add_source("cexnode_book_levels", levels)
    metrics.add_source("cexnode_book_age_seconds", age)


def add_book_audit_sources(metrics: NodeMetrics, auditors: Callable[[], Iterable[Any]]) -> None:
    """Export the counters of :class:`cexnode.book_audit.BookAuditor` objects at scrape time:
    ``cexnode_book_audits_total{venue,result}`` and ``cexnode_book_audit_mismatches_total{venue,symbol}``."""
    def audits():
        return [((a.venue, result), n) for a in auditors() for result, n in a.results.items()]

    def mismatches():
        return [((a.venue, sym), n) for a in auditors() for sym, n in a.mismatches.items()]

    metrics.add_source("cexnode_book_audits", audits)
    metrics.add_source("cexnode_book_audit_mismatches", mismatches)


def add_rest_sources(metrics: NodeMetrics, managers: Callable[[], Iterable[Any]]) -> None:
    """Export the counters of :class:`cexnode.net.rest.RestManager` objects at scrape time.

    ``managers()`` returns the managers (called at every scrape, so ones created later are seen);
    each contributes the ``cexnode_rest_*`` series labelled with its ``venue``."""
    def each(fn):
        def src():
            out = []
            for m in managers():
                if m is not None:
                    out.extend(fn(m))
            return out
        return src

    metrics.add_source("cexnode_rest_requests", each(
        lambda m: [((m.venue, ep, st), n) for (ep, st), n in m.by_status.items()]))
    metrics.add_source("cexnode_rest_retries", each(lambda m: [((m.venue, ep), n) for ep, n in m.retries_by.items()]))
    metrics.add_source("cexnode_rest_rate_limited", each(
        lambda m: [((m.venue, ep, st), n) for (ep, st), n in m.rate_limited.items()]))
    metrics.add_source("cexnode_rest_rate_limit_waits", each(lambda m: [((m.venue, ep), n) for ep, n in m.waits.items()]))
    metrics.add_source("cexnode_rest_rate_limit_wait_seconds", each(
        lambda m: [((m.venue, ep), s) for ep, s in m.wait_s.items()]))
    metrics.add_source("cexnode_rest_refused", each(
        lambda m: [((m.venue, ep, why), n) for (ep, why), n in m.refused.items()]))
    metrics.add_source("cexnode_rest_breaker_state", each(
        lambda m: [((m.venue, ep), b.state) for ep, b in m.breakers().items()]))
    metrics.add_source("cexnode_rest_breaker_opens", each(
        lambda m: [((m.venue, ep), b.opens) for ep, b in m.breakers().items()]))
    metrics.add_source("cexnode_rest_connections_created", each(lambda m: [((m.venue,), m.connections_created)]))
    metrics.add_source("cexnode_rest_connection_reuse_ratio", each(
        lambda m: [((m.venue,), m.reuse_rate)] if m.connections_created + m.connections_reused else []))
    def oc(m, fn):
        c = m.order_connection
        return fn(c) if c is not None else []

    metrics.add_source("cexnode_rest_order_connection_up", each(
        lambda m: oc(m, lambda c: [((m.venue,), 1 if c.connected else 0)])))
    metrics.add_source("cexnode_rest_order_connection_requests", each(
        lambda m: oc(m, lambda c: [((m.venue, "connection"), m.order_connection_requests),
                                   ((m.venue, "pool"), m.order_connection_fallbacks)])))
    metrics.add_source("cexnode_rest_order_connection_events", each(
        lambda m: oc(m, lambda c: [((m.venue, "connect"), c.connects), ((m.venue, "loss"), c.losses)])))
    metrics.add_source("cexnode_rest_request_microseconds", each(
        lambda m: [((m.venue, ep), h) for ep, h in m.latency.items()]))


def add_ws_sources(metrics: NodeMetrics, feeds: Callable[[], Iterable[Any]]) -> None:
    """Export the counters of :class:`cexnode.net.ws.WsFeed` objects (and their FeedListeners' C
    counters) at scrape time.

    ``feeds()`` returns the feeds (called at every scrape: a feed created at start is seen); each
    contributes the ``cexnode_ws_*`` series labelled with its ``venue``, and per connection index
    (``connection``: the subscription group, stable across reconnects and rotations) for frames,
    bytes, pings/pongs and the connection's state."""
    def each(fn):
        def src():
            out = []
            for f in feeds():
                if f is not None:
                    out.extend(fn(f))
            return out
        return src

    def per_conn(key, conv=lambda v: v):
        return each(lambda f: [((f.venue, str(c["connection"])), conv(c[key])) for c in f.connection_stats()
                               if c[key] is not None])

    metrics.add_source("cexnode_ws_frames", per_conn("frames"))
    metrics.add_source("cexnode_ws_received_bytes", per_conn("bytes"))
    metrics.add_source("cexnode_ws_pings_received", per_conn("pings"))
    metrics.add_source("cexnode_ws_pongs_received", per_conn("pongs"))
    metrics.add_source("cexnode_ws_connected", per_conn("connected", int))
    metrics.add_source("cexnode_ws_connection_age_seconds", per_conn("age_s"))
    metrics.add_source("cexnode_ws_last_frame_age_seconds", per_conn("last_frame_age_s"))
    metrics.add_source("cexnode_ws_connections", each(lambda f: [((f.venue,), sum(1 for g in f.groups if g))]))
    for series, attr in (("cexnode_ws_connects", "connects"), ("cexnode_ws_reconnects", "reconnects"),
                         ("cexnode_ws_disconnects", "disconnects"), ("cexnode_ws_watchdog_trips", "watchdog_trips"),
                         ("cexnode_ws_errors", "errors"), ("cexnode_ws_frame_errors", "frame_errors"),
                         ("cexnode_ws_app_pings", "app_pings"), ("cexnode_ws_rotations", "rotations"),
                         ("cexnode_ws_rotation_failures", "rotation_failures"),
                         ("cexnode_ws_subscription_rejects", "subscription_rejects"),
                         ("cexnode_ws_resubscribes", "resubscribes"),
                         ("cexnode_ws_subscriptions_added", "subscriptions_added"),
                         ("cexnode_ws_subscriptions_removed", "subscriptions_removed"),
                         ("cexnode_ws_idle_closes", "connections_closed_idle")):
        metrics.add_source(series, each(lambda f, attr=attr: [((f.venue,), getattr(f, attr))]))


def books_readiness(books: Callable[[], Iterable[BookEntry]], max_book_age_ms: int = 5000,
                    clock_ns: Callable[[], int] = time.time_ns) -> Callable[[], tuple]:
    """A readiness check (for :meth:`ReadinessRegistry.add_check`): every book in sync and fresh.

    Fresh as in docs/design.md §4 step 1: the local receive time of the last applied update, and its
    exchange timestamp when the venue sends one, are within ``max_book_age_ms`` of now. No books
    at all is not ready. Details list the books that are out of sync or stale.
    """
    max_ns = int(max_book_age_ms) * 1_000_000

    def check():
        now = clock_ns()
        entries = list(books())
        out_of_sync, stale = [], []
        for v, s, sync in entries:
            b = sync.book
            name = "%s %s" % (v, s)
            if not b.in_sync:
                out_of_sync.append(name)
            elif now - b.recv_ns > max_ns or (b.exch_ts_ms and now - b.exch_ts_ms * 1_000_000 > max_ns):
                stale.append(name)
        ok = bool(entries) and not out_of_sync and not stale
        return ok, {"books": len(entries), "out_of_sync": out_of_sync, "stale": stale}
    return check


def venues_readiness(connected: Callable[[], Iterable[tuple]],
                     failed: Optional[Callable[[], dict]] = None) -> Callable[[], tuple]:
    """A readiness check: every venue the node runs on connected. ``connected()`` returns
    ``(venue, is_connected)`` pairs of those venues; no venues at all is not ready. ``failed()``
    (degraded mode) returns ``{venue: reason}`` of venues that failed to start: they are not
    waited for, only listed under ``failed``."""
    def check():
        pairs = list(connected())
        down = [v for v, up in pairs if not up]
        det = {"connected": [v for v, up in pairs if up], "disconnected": down}
        if failed is not None:
            det["failed"] = dict(failed())
        return bool(pairs) and not down, det
    return check


class MetricsServer:
    """``/metrics``, ``/healthz``, ``/readyz`` over HTTP on the asyncio loop (aiohttp).

    Parameters
    ----------
    cfg
        The ``metrics`` config section: ``enabled``, ``host`` (default 127.0.0.1), ``port`` (0 = any).
    metrics
        The node's :class:`NodeMetrics` (a new one when None).
    readiness
        ``fn() -> (ready, details)``; default: a :class:`ReadinessRegistry` (``.readiness``).
    max_loop_lag_s
        /healthz is 503 when the largest loop lag within ``lag_window_s`` exceeds this, or the lag
        monitor has not ticked for that long.
    """

    def __init__(self, cfg: MetricsConfig, metrics: Optional[NodeMetrics] = None, *,
                 readiness: Optional[Callable] = None, max_loop_lag_s: float = 1.0, lag_interval_s: float = 0.1,
                 lag_window_s: float = 5.0) -> None:
        self.cfg = cfg
        self.metrics = metrics if metrics is not None else NodeMetrics()
        self.readiness = readiness if readiness is not None else ReadinessRegistry()
        self.max_loop_lag_s = max_loop_lag_s
        self.monitor = LoopMonitor(lag_interval_s, lag_window_s)
        self.metrics.loop_monitor = self.monitor
        self.port: Optional[int] = None
        self.host: str = getattr(cfg, "host", "127.0.0.1") or "127.0.0.1"
        self._runner: Optional[web.AppRunner] = None
        self._started_at = 0.0

    def set_readiness_provider(self, fn: Callable[[], tuple]) -> None:
        """Replace the readiness provider: ``fn() -> (ready: bool, details: dict)``."""
        self.readiness = fn

    @property
    def url(self) -> str:
        return "http://%s:%s" % (self.host if ":" not in self.host else "[%s]" % self.host, self.port)

    async def start(self) -> None:
        self.monitor.start()
        self._started_at = time.monotonic()
        if not getattr(self.cfg, "enabled", True):
            return
        app = web.Application()
        app.router.add_get("/metrics", self._h_metrics)
        app.router.add_get("/healthz", self._h_healthz)
        app.router.add_get("/readyz", self._h_readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, int(getattr(self.cfg, "port", 0)), reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        socks = site._server.sockets if site._server is not None else []   # bound port (port 0)
        self.port = socks[0].getsockname()[1] if socks else None

    async def stop(self) -> None:
        r, self._runner = self._runner, None
        if r is not None:
            await r.cleanup()
        await self.monitor.stop()

    # -- handlers ----------------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict]:
        m = self.monitor
        lag_max = m.recent_max_lag_s()
        age = m.tick_age_s()
        ok = m.running and lag_max <= self.max_loop_lag_s and age <= self.max_loop_lag_s + m.interval_s * 2
        return ok, {"status": "ok" if ok else "unhealthy", "loop_alive": m.running,
                    "loop_lag_ms": round(m.lag_s * 1e3, 3), "loop_lag_max_ms": round(lag_max * 1e3, 3),
                    "last_tick_age_ms": round(age * 1e3, 3), "max_loop_lag_ms": self.max_loop_lag_s * 1e3,
                    "uptime_s": round(time.monotonic() - self._started_at, 3)}

    async def _h_metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _h_healthz(self, request: web.Request) -> web.Response:
        ok, body = self.health()
        return web.json_response(body, status=200 if ok else 503)

    async def _h_readyz(self, request: web.Request) -> web.Response:
        try:
            ready, details = self.readiness()
        except Exception as e:
            ready, details = False, {"error": "%s: %s" % (type(e).__name__, e)}
        return web.json_response({"ready": bool(ready), "details": details or {}}, status=200 if ready else 503)

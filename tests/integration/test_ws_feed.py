"""WebSocket manager (cexnode.net.ws.WsFeed on picows + _core FeedListener) against the embedded
simulator over real sockets on 127.0.0.1: frames reach the parsers and books equal the simulator's
true books; >30 MEXC symbols open two connections; app and protocol pings; watchdog on a stalled
stream; reconnect with backoff after closes and drops; rotation without a gap (no resync);
rejected subscriptions retried with backoff; a clean stop. Every wait is bounded."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any, Awaitable, Callable

from cexnode.config import load_config_text
from cexnode.node import Node

BASE = """
node: {name: ws, status_interval_s: 0, start_timeout_s: 20}
log:
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: never}
metrics: {port: 0}
sim:
  enabled: true
  seed: 5
  update_interval_ms: 2
  mid_prices: {%(mids)s}
venues:
%(venues)s
"""

VENUES3 = """  mexc_spot: {symbols: [BTC/USDT, ETH/USDT], book_depth: 100%(mexc_extra)s}
  gateio_spot: {symbols: [BTC/USDT, ETH/USDT], book_depth: 100}
  gateio_futures: {symbols: [BTC/USDT:USDT], book_depth: 100}"""


async def _wait(pred: Callable[[], Any], timeout: float, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return bool(pred())


class H:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.engine = node.context.engine
        self.sim = node.context.sim

    def adapter(self, venue: str) -> Any:
        return self.engine.adapters[venue]

    def feed(self, venue: str) -> Any:
        return self.adapter(venue).feed

    async def compare_all(self) -> int:
        """Pause the sim, wait until every book caught up, compare top 20 with the true book."""
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


def run(tmp_path, scenario: Callable[[H], Awaitable[Any]], *, venues: str = "", mids: str = "",
        mexc_extra: str = "") -> Any:
    venues = venues or VENUES3 % {"mexc_extra": mexc_extra}
    mids = mids or "BTC/USDT: 65000, ETH/USDT: 3200"
    cfg = load_config_text(BASE % {"audit": tmp_path / "audit.jsonl", "venues": venues, "mids": mids})
    node = Node(cfg, duration=None)
    unhandled: list = []
    out: dict = {}

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _l, ctx: unhandled.append(ctx))
        runner = loop.create_task(node.run())
        try:
            ok = await _wait(lambda: runner.done() or (
                node.context.engine is not None and node.context.engine.router is not None
                and any(c.name == "engine" for c in node.started)
                and all(b.in_sync for b in node.context.engine.books.values())), 15)
            assert ok and not runner.done(), "node did not start"
            h = H(node)
            out["feeds"] = [a.feed for a in h.engine.adapters.values()]
            return await scenario(h)
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 20)
            # clean stop: nothing of the feeds left running
            for f in out.get("feeds", []):
                assert f._tasks == [] and not any(f._resub), f.venue
                assert f.listeners() == [None] * len(f.groups)
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
                       and t.get_coro().__name__ != "wait_for"]      # the asyncio.run(wait_for(main())) wrapper
            assert not pending, pending

    result = asyncio.run(asyncio.wait_for(main(), 60))
    assert node.exit_code == 0
    assert not unhandled, unhandled
    return result


def test_frames_reach_books_pings_and_clean_stop(tmp_path):
    from cexnode._core import feed as feedmod

    async def scenario(h: H):
        assert await h.compare_all() == 5
        pongs = {v: 0 for v in h.engine.adapters}
        for name, a in h.engine.adapters.items():
            def handler(kind, msg, a=a, name=name):
                if kind == feedmod.MSG_PONG:
                    pongs[name] += 1
                a.on_message(kind, msg)
            h.engine.router.set_message_handler(a.venue_id, handler)
        for name in h.engine.adapters:
            f = h.feed(name)
            assert len(f.groups) == 1 and f.connected
            lst = f.listeners()[0]
            assert lst.data_frames > 0 and lst.bytes_in > 0 and lst.errors == 0
            assert f.status()["frames"] == f.frames >= lst.data_frames
            assert abs(time.time_ns() - lst.last_frame_ns) < 2_000_000_000
            f.ping_interval_s = 0.05            # read live by the keep-alive loop
        # application pings: sent by every feed and answered by every venue (MEXC PONG, Gate spot.pong/futures.pong)
        assert await _wait(lambda: all(h.feed(n).app_pings >= 3 and pongs[n] >= 3 for n in pongs), 5), \
            ({n: h.feed(n).app_pings for n in pongs}, pongs)
        # protocol pings: Gate only (MEXC does not answer them); picows sends them when the stream is idle
        assert h.feed("mexc_spot").protocol_ping_s == 0 and h.feed("gateio_spot").protocol_ping_s > 0
        assert all(h.feed(n).reconnects == 0 and h.feed(n).errors == 0 for n in pongs)
        assert await h.compare_all() == 5

    run(tmp_path, scenario)


def test_mexc_more_than_30_symbols_open_two_connections(tmp_path):
    syms = ["C%02d/USDT" % i for i in range(32)]
    mids = ", ".join("%s: %d" % (s, 10 + i) for i, s in enumerate(syms))
    venues = "  mexc_spot: {symbols: [%s], book_depth: 100}" % ", ".join(syms)

    async def scenario(h: H):
        f = h.feed("mexc_spot")
        assert [len(g) for g in f.groups] == [30, 2]
        assert len(h.sim.venue("mexc_spot").connections) == 2
        assert all(len(c.subscriptions) <= 30 for c in h.sim.venue("mexc_spot").connections)
        assert all(lst.data_frames > 0 for lst in f.listeners())
        assert await h.compare_all() == 32

    run(tmp_path, scenario, venues=venues, mids=mids)


def test_watchdog_on_stall_reconnects_and_resyncs(tmp_path):
    async def scenario(h: H):
        f = h.feed("gateio_spot")
        f.watchdog_s = 0.3
        r0 = h.adapter("gateio_spot").snapshots
        h.sim.venue("gateio_spot").faults.stall(3.0, drop=True)
        assert await _wait(lambda: f.watchdog_trips >= 1, 3)
        assert await _wait(lambda: f.reconnects >= 1 and f.connected, 8)
        # reconnect -> on_reconnected -> every book of the venue resynced from REST
        assert await _wait(lambda: h.adapter("gateio_spot").snapshots >= r0 + 2, 5)
        assert await h.compare_all() == 5
        assert f.status()["watchdog_trips"] >= 1 and f.disconnects >= 1

    run(tmp_path, scenario)


def test_watchdog_setting_applies_to_the_look_already_waiting(tmp_path):
    """watchdog_s is read when the watchdog looks, not when its wait began: raised while the loop is
    held up (a GC pass, CPU starvation) over a silent stream, the look that comes late after the
    hold-up already uses the new value and does not trip."""
    async def scenario(h: H):
        f = h.feed("gateio_futures")
        f.watchdog_s = 0.3
        await asyncio.sleep(0.5)                         # the keep-alive loop now waits 0.075 s per look
        assert f.watchdog_trips == 0
        h.sim.venue("gateio_futures").faults.stall(5.0, drop=True)
        f.watchdog_s = 30.0
        time.sleep(0.6)                                  # the loop held up: the waiting look comes late
        await asyncio.sleep(0.3)
        h.sim.venue("gateio_futures").faults.stall(0.0)
        await asyncio.sleep(0.2)
        assert f.watchdog_trips == 0 and f.reconnects == 0 and f.connected, f.status()

    run(tmp_path, scenario)


def test_close_and_drop_reconnect_with_backoff(tmp_path):
    async def scenario(h: H):
        f = h.feed("mexc_spot")
        v = h.sim.venue("mexc_spot")
        c0 = v.connections_total
        assert v.faults.close_connections(1012) >= 1
        assert await _wait(lambda: f.reconnects == 1 and f.connected, 5)
        assert await h.compare_all() == 5
        assert f.listeners()[0].close_code in (-1, 1012)
        assert v.faults.drop_connections() >= 1             # TCP cut, no close frame
        assert await _wait(lambda: f.reconnects == 2 and f.connected, 5)
        assert v.connections_total == c0 + 2
        assert f.disconnects >= 2 and f.connects == 3
        # refused connections: the backoff keeps trying until the venue accepts again
        v.faults.reject_connections(3, 503)
        v.faults.close_connections(1012)
        assert await _wait(lambda: f.reconnects == 3 and f.connected, 10)
        assert f.errors >= 3
        assert await h.compare_all() == 5

    run(tmp_path, scenario)


def test_rotation_without_gap_or_resync(tmp_path):
    async def scenario(h: H):
        f = h.feed("mexc_spot")
        assert f.max_connection_age_s == 0.4
        router = h.engine.router
        a = h.adapter("mexc_spot")
        res0, req0, snaps0 = router.resyncs, a.resync_requests, a.snapshots
        v = h.sim.venue("mexc_spot")
        c0 = v.connections_total
        assert await _wait(lambda: f.rotations >= 3, 10), f.status()
        assert v.connections_total >= c0 + 3
        assert f.reconnects == 0 and f.rotation_failures == 0
        assert await h.compare_all() == 5
        # the overlap's duplicate diffs were dropped by BookSync (stale), never a gap
        assert router.resyncs == res0 and a.resync_requests == req0 and a.snapshots == snaps0
        f.max_connection_age_s = 0                 # read live: no rotation from now on
        assert await _wait(lambda: len(v.connections) == 1, 5)

    run(tmp_path, scenario, mexc_extra=", max_connection_age_s: 0.4")


def test_rejected_subscription_retried_with_backoff(tmp_path):
    async def scenario(h: H):
        for name in ("mexc_spot", "gateio_spot"):
            f = h.feed(name)
            v = h.sim.venue(name)
            v.faults.reject_subscriptions(True)
            v.faults.close_connections(1012)
            assert await _wait(lambda: f.subscription_rejects >= 2 and f.resubscribes >= 1, 5), (name, f.status())
            assert f.connected
            v.faults.reject_subscriptions(False)
            # the next retry (or the one already on its way, when the venue reads it after this) is
            # accepted: its ack starts the books' snapshots and they move with the venue again
            books = {s: b for (vn, s), b in h.engine.books.items() if vn == name}
            marks = {s: v.book(s).last_id for s in books}
            assert await _wait(lambda: all(b.in_sync and b.last_id > marks[s] for s, b in books.items()), 8), \
                (name, f.status())
            rejects, resubs = f.subscription_rejects, f.resubscribes
            await asyncio.sleep(0.5)                   # longer than the retry backoff: nothing more to retry
            assert (f.subscription_rejects, f.resubscribes) == (rejects, resubs), f.status()
        assert await h.compare_all() == 5

    run(tmp_path, scenario)


def test_resubscriptions_keep_within_the_venue_message_rate(tmp_path):
    """MEXC takes at most 100 client messages per second on a connection and closes one that sends
    more (1008). A rejected group of 30 subscriptions is re-sent with a backoff that starts at 0.05 s:
    unpaced, the fourth sending within a second got the connection closed (one reconnect more than
    the venue's close caused). Paced, the venue answers every re-send and closes nothing."""
    syms = ["C%02d/USDT" % i for i in range(32)]
    mids = ", ".join("%s: %d" % (s, 10 + i) for i, s in enumerate(syms))
    venues = "  mexc_spot: {symbols: [%s], book_depth: 100}" % ", ".join(syms)

    async def scenario(h: H):
        f, v = h.feed("mexc_spot"), h.sim.venue("mexc_spot")
        assert [len(g) for g in f.groups] == [30, 2] and f.max_messages_per_s == 100
        v.faults.reject_subscriptions(True)
        v.faults.close_connections(1012)
        assert await _wait(lambda: f.reconnects == 2 and f.connected, 5), f.status()
        conns = set(v.connections)
        n0 = f.subscription_rejects
        # 120 rejections more: the first connection's group of 30 re-sent at least three times, and
        # the second's as often as its backoff allows (unpaced, all of that came within a second)
        assert await _wait(lambda: f.subscription_rejects >= n0 + 120, 8), f.status()
        assert f.reconnects == 2 and f.connected and set(v.connections) == conns, f.status()
        v.faults.reject_subscriptions(False)
        assert await _wait(lambda: all(b.in_sync for b in h.engine.books.values()), 10), f.status()
        assert f.reconnects == 2 and set(v.connections) == conns
        assert await h.compare_all() == 32

    run(tmp_path, scenario, venues=venues, mids=mids)


def test_handshake_headers_and_direct_feed(tmp_path):
    """WsFeed on its own (no adapter): headers reach the venue, frames reach the parser's sink."""
    from cexnode.adapters.gateio_futures import subscriptions as fs
    from cexnode.net.ws import WsFeed

    async def scenario(h: H):
        v = h.sim.venue("gateio_futures")
        parser = h.adapter("gateio_futures").parser
        f = WsFeed(h.sim.urls["gateio_futures"].ws, parser, [fs.book_subscription("BTC_USDT", 100, req_id=9)],
                   venue="gateio_futures", headers={"X-Gate-Size-Decimal": "1"}, watchdog_s=5)
        before = set(v.connections)
        await f.start()
        try:
            new = [c for c in v.connections if c not in before]
            assert len(new) == 1
            assert new[0].headers.get("X-Gate-Size-Decimal") == "1"
            assert await _wait(lambda: f.frames >= 3, 5)
        finally:
            await f.stop()
        assert await _wait(lambda: not any(c in v.connections for c in new), 2)
        assert f.listeners() == [None] and f._tasks == []

    run(tmp_path, scenario)


ROUTES = """
arbitrage:
  min_profit: 0.01
  size_to_balances: false
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc-ss}
    - {symbol: ETH/USDT, venues: [mexc_spot, gateio_spot], name: eth-ss}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures], name: btc-sp}"""


def test_rejected_subscription_keeps_its_books_out_of_sync_until_accepted(tmp_path):
    """A venue that rejects the subscriptions of a fresh connection: the reconnect's snapshots must
    not put those books back in sync (no diffs would follow them) — not ready, not traded — until
    the venue accepts the re-sent subscription; then they sync and equal the venue's books."""
    import aiohttp

    async def scenario(h: H):
        url = next(c.server.url for c in h.node.components if c.name == "metrics")
        opps: list = []
        router = h.engine.router
        orig = router.on_opportunities

        def record(batch):
            opps.extend((o.buy_venue, o.sell_venue, time.monotonic()) for o in batch)
            orig(batch)
        router.on_opportunities = record
        async with aiohttp.ClientSession() as session:
            async def readyz():
                async with session.get(url + "/readyz") as r:
                    return r.status, (await r.json())["details"]

            for name in ("mexc_spot", "gateio_spot", "gateio_futures"):
                f, ad, v = h.feed(name), h.adapter(name), h.sim.venue(name)
                books = {s: b for (vn, s), b in h.engine.books.items() if vn == name}
                vsyms = sorted(v.venue_symbol(s) for s in books)
                assert await _wait(lambda: all(b.in_sync for b in books.values()), 10), name
                assert (await readyz())[0] == 200, name
                n0, snaps0 = f.subscription_rejects, ad.snapshots
                v.faults.reject_subscriptions(True)
                v.faults.close_connections(1012)
                assert await _wait(lambda: f.subscription_rejects > n0, 5), (name, f.status())
                t_rejected = time.monotonic()
                # the reconnect asked for snapshots; however long we look, none puts a book back in sync
                states = []
                while time.monotonic() < t_rejected + 1.0:
                    states.append(tuple(b.in_sync for b in books.values()))
                    await asyncio.sleep(0.01)
                assert not any(any(s) for s in states), (name, [i for i, s in enumerate(states) if any(s)][:5])
                assert f.subscription_rejects >= n0 + 2 and f.connected          # still rejected, re-sent
                assert sorted(ad.status()["unsubscribed"]) == vsyms
                assert ad.snapshots == snaps0              # no snapshot applied without a subscription
                st, det = await readyz()
                assert st == 503 and sorted(det["books"]["out_of_sync"]) == sorted("%s %s" % (name, s) for s in books)
                t_end = time.monotonic()
                used = [o for o in opps if name in o[:2] and t_rejected <= o[2] <= t_end]
                assert not used, (name, used[:3])
                # accepted: snapshot, in sync, moving with the venue again
                v.faults.reject_subscriptions(False)
                marks = {s: v.book(s).last_id for s in books}
                assert await _wait(lambda: all(b.in_sync and b.last_id > marks[s] for s, b in books.items()), 8), name
                assert ad.status()["unsubscribed"] == [] and ad.snapshots > snaps0
                assert await _wait(lambda: f.resubscribes >= 1, 1)
            assert await h.compare_all() == 5
            st, det = await readyz()
            assert st == 200, det
        return len(opps)

    n = run(tmp_path, scenario, venues=VENUES3 % {"mexc_extra": ""} + ROUTES)
    assert n > 0            # the routes were evaluated and traded on the venues that were in sync


def test_feed_counters_scraped_from_metrics(tmp_path):
    """The feeds' counters as ``cexnode_ws_*`` series on /metrics of the running node: per venue and
    connection (MEXC with 32 symbols: two), monotonic across reconnects and a watchdog trip, equal
    to what the feeds and listeners count; protocol pings/pongs both ways; parse errors; a rejected
    subscription seen as rejects, resubscribes and books waiting for their subscription."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    syms = ["C%02d/USDT" % i for i in range(32)]
    mids = ", ".join("%s: %d" % (s, 10 + i) for i, s in enumerate(syms))
    venues = ("  mexc_spot: {symbols: [%s], book_depth: 100}\n" % ", ".join(syms)
              + "  gateio_spot: {symbols: [C00/USDT, C01/USDT], book_depth: 100}\n"
              + "  gateio_futures: {symbols: [C00/USDT:USDT], book_depth: 100}")

    async def scenario(h: H):
        url = next(c.server.url for c in h.node.components if c.name == "metrics")
        feeds = {n: h.feed(n) for n in h.engine.adapters}
        mexc, gate, fut = feeds["mexc_spot"], feeds["gateio_spot"], feeds["gateio_futures"]
        async with aiohttp.ClientSession() as session:
            async def scrape() -> dict:
                async with session.get(url + "/metrics") as r:
                    text = await r.text()
                out = {}
                for fam in text_string_to_metric_families(text):
                    for s in fam.samples:
                        out[(s.name, tuple(sorted(s.labels.items())))] = s.value
                return out

            def v(m, name, venue, conn=None):
                lab = (("connection", str(conn)), ("venue", venue)) if conn is not None else (("venue", venue),)
                return m.get((name, lab))

            before = {n: f.status() for n, f in feeds.items()}
            m0 = await scrape()
            after = {n: f.status() for n, f in feeds.items()}
            for n, f in feeds.items():
                assert v(m0, "cexnode_ws_connections", n) == len(f.groups) == (2 if n == "mexc_spot" else 1)
                total = sum(v(m0, "cexnode_ws_frames_total", n, i) for i in range(len(f.groups)))
                assert before[n]["frames"] <= total <= after[n]["frames"] and total > 0, n
                nbytes = sum(v(m0, "cexnode_ws_received_bytes_total", n, i) for i in range(len(f.groups)))
                assert before[n]["bytes"] <= nbytes <= after[n]["bytes"] and nbytes > total, n
                for i in range(len(f.groups)):
                    assert v(m0, "cexnode_ws_frames_total", n, i) > 0, (n, i)
                    assert v(m0, "cexnode_ws_connected", n, i) == 1
                    assert 0 < v(m0, "cexnode_ws_connection_age_seconds", n, i) < 30
                    assert 0 <= v(m0, "cexnode_ws_last_frame_age_seconds", n, i) < 2
                for series in ("reconnects", "watchdog_trips", "subscription_rejects", "resubscribes",
                               "rotations", "frame_errors"):
                    assert v(m0, "cexnode_ws_%s_total" % series, n) == 0, (n, series)
                assert v(m0, "cexnode_ws_connects_total", n) == len(f.groups)
                assert v(m0, "cexnode_parse_errors_total", n) == 0
                assert v(m0, "cexnode_ws_unsubscribed_books", n) == 0

            # protocol pings both ways on Gate spot: the venue pings us (picows answers), we ping it
            sim_gate = h.sim.venue("gateio_spot")
            for c in list(sim_gate.connections):
                c.transport.send_ping(b"x")
            gate.listeners()[0].transport.send_ping(b"y")
            assert await _wait(lambda: gate.listeners()[0].pings == 1 and gate.listeners()[0].pongs == 1, 3), \
                gate.listeners()[0].status()
            # faults: a reconnect (Gate spot), a watchdog trip (futures), a malformed frame (MEXC)
            t_close = time.monotonic()
            sim_gate.faults.close_connections(1012)
            assert await _wait(lambda: gate.reconnects == 1 and gate.connected, 5)
            # one trip: the stall lasts until the watchdog has tripped (however late a loaded event loop
            # lets it look), then the watchdog goes back to 30 s and the stall ends before the
            # reconnect's backoff is over, so the new connection is never silent for 0.3 s with it armed
            fut.watchdog_s = 0.3
            sim_fut = h.sim.venue("gateio_futures")
            sim_fut.faults.stall(10.0, drop=True)
            assert await _wait(lambda: fut.watchdog_trips >= 1, 6), fut.status()
            fut.watchdog_s = 30.0
            sim_fut.faults.stall(0.0)                    # ends the stall
            assert await _wait(lambda: fut.reconnects == 1 and fut.connected, 6), fut.status()
            assert fut.watchdog_trips == 1
            mexc_ad = h.adapter("mexc_spot")
            h.sim.venue("mexc_spot").faults.malformed_next("C05USDT")
            assert await _wait(lambda: mexc_ad.parser.errors >= 1, 3)
            # MEXC rejects the subscriptions of both fresh connections for a while
            sim_mexc = h.sim.venue("mexc_spot")
            sim_mexc.faults.reject_subscriptions(True)
            sim_mexc.faults.close_connections(1012)
            # (the two reconnects are paced, ws.max_connects_per_s: the second one's rejections come later)
            assert await _wait(lambda: mexc.subscription_rejects >= 4 and mexc.resubscribes >= 2
                               and len(mexc_ad.unsubscribed_books()) == 32, 5), mexc.status()
            mid = await scrape()
            assert v(mid, "cexnode_ws_unsubscribed_books", "mexc_spot") == 32
            assert v(mid, "cexnode_ws_subscription_rejects_total", "mexc_spot") >= 4
            sim_mexc.faults.reject_subscriptions(False)
            assert await _wait(lambda: all(b.in_sync for b in h.engine.books.values()), 10)

            st = {n: f.status() for n, f in feeds.items()}
            m1 = await scrape()
            for n, f in feeds.items():
                for i in range(len(f.groups)):       # monotonic: counts of closed connections are kept
                    assert v(m1, "cexnode_ws_frames_total", n, i) > v(m0, "cexnode_ws_frames_total", n, i), (n, i)
                    assert v(m1, "cexnode_ws_received_bytes_total", n, i) > v(m0, "cexnode_ws_received_bytes_total", n, i)
                    assert v(m1, "cexnode_ws_connected", n, i) == 1
                for series in ("connects", "reconnects", "disconnects", "watchdog_trips", "subscription_rejects",
                               "resubscribes", "rotations", "rotation_failures"):
                    assert v(m1, "cexnode_ws_%s_total" % series, n) == st[n][series], (n, series)
                assert v(m1, "cexnode_ws_unsubscribed_books", n) == 0
                assert v(m1, "cexnode_ws_app_pings_total", n) >= st[n]["app_pings"]
            assert v(m1, "cexnode_ws_reconnects_total", "gateio_spot") == 1
            assert v(m1, "cexnode_ws_reconnects_total", "mexc_spot") == 2             # both connections
            assert v(m1, "cexnode_ws_watchdog_trips_total", "gateio_futures") == 1
            assert v(m1, "cexnode_ws_reconnects_total", "gateio_futures") == 1
            # the age is the current connection's: Gate spot's opened after the close
            assert 0 < v(m1, "cexnode_ws_connection_age_seconds", "gateio_spot", 0) < time.monotonic() - t_close
            assert v(m1, "cexnode_ws_pings_received_total", "gateio_spot", 0) == 1       # on the closed connection
            assert v(m1, "cexnode_ws_pongs_received_total", "gateio_spot", 0) == 1
            assert v(m1, "cexnode_parse_errors_total", "mexc_spot") == mexc_ad.parser.errors >= 1
            assert v(m1, "cexnode_parse_errors_total", "gateio_spot") == 0
            return {n: f.frames for n, f in feeds.items()}, feeds

    frames, feeds = run(tmp_path, scenario, venues=venues, mids=mids)
    for n, f in feeds.items():           # after the stop too: the closed listeners' counts are kept
        assert f.frames >= frames[n] > 0, n


def test_protocol_pongs_of_picows_auto_ping_are_counted(tmp_path):
    """An idle stream: picows' auto-ping pings, the venue answers; the pong is counted (picows hands
    it to is_user_specific_pong, not on_ws_frame) and keeps the watchdog quiet."""
    from cexnode.adapters.gateio_futures import subscriptions as fs
    from cexnode.net.ws import WsFeed

    async def scenario(h: H):
        v = h.sim.venue("gateio_futures")
        parser = h.adapter("gateio_futures").parser
        f = WsFeed(h.sim.urls["gateio_futures"].ws, parser, [fs.book_subscription("BTC_USDT", 100, req_id=9)],
                   venue="gateio_futures", protocol_ping_s=0.1, watchdog_s=0.8, ping_message=None)
        await f.start()
        try:
            lst = f.listeners()[0]
            assert await _wait(lambda: f.frames >= 2, 5)
            v.faults.stall(1.5, drop=True)               # no data: only the pongs arrive
            assert await _wait(lambda: lst.pongs >= 3, 3), lst.status()
            await asyncio.sleep(1.0)                     # silent longer than watchdog_s but for the pongs
            assert f.watchdog_trips == 0 and f.reconnects == 0 and lst.connected
            assert f.connection_stats()[0]["pongs"] == lst.pongs and f.status()["pongs"] == lst.pongs
        finally:
            await f.stop()

    run(tmp_path, scenario)

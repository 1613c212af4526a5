"""WebSocket manager benchmarks: the real WsFeed (picows + _core FeedListener) on loopback, fed by
the in-process simulator's Gate spot server (``SimVenue.send_raw`` / ``send_raw_batch``).

Pipeline per frame: picows → FeedListener (payload pointer, C clock) → GateSpotParser → BookRouter
→ BookSync → Book → ArbEngine (bench_pipeline's route BTC/USDT mexc_spot + gateio_spot, both
books synced, no edge: evaluated on every applied update). The frames are bench_pipeline's Gate
``spot.order_book_update`` diffs with consecutive ids moving the top of book, so every frame is
applied (checked: in sync at the end, one evaluation per frame). Synthetic rather than
``render_frames``: every frame moves the top of book, so none is a no-op for the book.

* ``ws_frame_to_book``: one frame at a time; latency = (listener receive time + router
  tick-to-decision) − time just before ``SimVenue.send_raw`` (all CLOCK_REALTIME ns, one process):
  the sim's send call, the loopback socket, picows, parse, book apply and arb evaluation.
  Side by side: an aiohttp client feeding ``FeedParser.feed_bytes`` (same stream, same pipeline).
* ``feed_throughput``: pre-rendered frames pushed with ``SimVenue.send_raw_batch`` (512 per write)
  into one connection, sim and client on the same core (one process); frames/s = frames / wall time
  until the last one was parsed and applied. Side by side: the aiohttp client peer.
"""
from __future__ import annotations

import asyncio
import gc
import time
from decimal import Decimal

from _timing import summarize

SUB = (b'{"time":1,"channel":"spot.order_book_update","event":"subscribe","payload":["BTC_USDT","100ms"]}',)


def _pipeline():
    """Fresh router (route BTC/USDT mexc_spot + gateio_spot, both synced, no edge) + Gate parser,
    and a generator of consecutive Gate diffs that move its top of book (bench_pipeline's)."""
    from bench_pipeline import _pipeline as pipe

    from cexnode._core.parsers.gateio_spot import GateSpotParser

    reg, router, arb, sid, top_bid = pipe(False)
    return router, GateSpotParser(reg.map("gateio_spot"), router), top_bid


def _frames(n: int, top_bid: int):
    from bench_pipeline import _gate_frames

    return [(f, False) for f in _gate_frames(n, top_bid)]


async def _setup():
    from cexnode.config import SimConfig
    from cexnode.sim import ExchangeSimulator

    sim = ExchangeSimulator(SimConfig(seed=1), venues={"gateio_spot": ["BTC/USDT"]}, clock="manual", trading=False)
    await sim.start()
    return sim, sim.venue("gateio_spot")


async def _ours(sim, v, router, parser):
    from cexnode.net.ws import WsFeed

    feed = WsFeed(sim.urls["gateio_spot"].ws, parser, list(SUB), venue="gateio_spot", ping_message=None,
                  protocol_ping_s=0, watchdog_s=600)
    await feed.start()
    while not any(c.subscriptions for c in v.connections):
        await asyncio.sleep(0.001)
    lst = feed.listeners()[0]
    return feed, (lambda: lst.data_frames), lst


class _AioPeer:
    """aiohttp client: receive() each message, feed_bytes() it (the interim transport before picows)."""

    def __init__(self, url, parser):
        self.url, self.parser, self.n, self.last_ns = url, parser, 0, 0

    async def start(self, v):
        import aiohttp

        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url, autoping=True, max_msg_size=0)
        await self.ws.send_str(SUB[0].decode())
        self.task = asyncio.get_running_loop().create_task(self._pump())
        while not any(c.subscriptions for c in v.connections):
            await asyncio.sleep(0.001)

    async def _pump(self):
        import aiohttp

        feed = self.parser.feed_bytes
        ws = self.ws
        while True:
            msg = await ws.receive()
            t = time.time_ns()
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.n += 1
                self.last_ns = t
                feed(msg.data.encode(), False, t)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self.n += 1
                self.last_ns = t
                feed(msg.data, True, t)
            else:
                return

    async def stop(self):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.ws.close()
        await self.session.close()


async def _latency_run(v, frames, count, recv_ns, router, warm):
    out = []
    for i, (payload, binary) in enumerate(frames):
        n0 = count()
        t0 = time.time_ns()
        v.send_raw(payload, binary)
        deadline = time.monotonic() + 5
        while count() == n0:
            await asyncio.sleep(0)
            if time.monotonic() > deadline:
                raise TimeoutError("frame %d not received" % i)
        if i >= warm:
            out.append(recv_ns() + router.last_tick_to_decision_ns - t0)
    return out


def ws_frame_to_book(quick: bool) -> dict:
    import uvloop

    n = 3000 if quick else 30000

    async def main():
        sim, v = await _setup()
        try:
            router, parser, top_bid = _pipeline()
            frames = _frames(n, top_bid)
            feed, count, lst = await _ours(sim, v, router, parser)
            gc.disable()
            try:
                ours = await _latency_run(v, frames, count, lambda: lst.last_data_ns, router, n // 10)
            finally:
                gc.enable()
            assert router.all_in_sync() and parser.errors == 0, parser.last_error
            evals = router.evaluations
            await feed.stop()
            # peer: aiohttp on the same stream, fresh pipeline
            router2, parser2, top_bid = _pipeline()
            frames = _frames(n, top_bid)
            peer = _AioPeer(sim.urls["gateio_spot"].ws, parser2)
            await peer.start(v)
            gc.disable()
            try:
                theirs = await _latency_run(v, frames, lambda: peer.n, lambda: peer.last_ns, router2, n // 10)
            finally:
                gc.enable()
            assert router2.all_in_sync() and parser2.errors == 0
            await peer.stop()
            return ours, theirs, evals
        finally:
            await sim.stop()

    ours, theirs, evals = uvloop.run(main())
    o, t = summarize(ours), summarize(theirs)
    return {"name": "ws_frame_to_book", "median_ns": o["median_ns"], "p99_ns": o["p99_ns"], "samples": o["samples"],
            "target_ns": 30000, "met": bool(o["median_ns"] <= 30000), "evaluations": evals,
            "level": "SimVenue.send_raw -> loopback TCP -> picows -> FeedListener -> GateSpotParser -> BookRouter -> "
                     "BookSync -> Book -> ArbEngine evaluated (uvloop, one process)",
            "peer_aiohttp_feed_bytes_median_ns": t["median_ns"], "peer_aiohttp_feed_bytes_p99_ns": t["p99_ns"],
            "ratio_vs_peer_aiohttp": t["median_ns"] / o["median_ns"]}


async def _throughput_run(v, frames, count, timeout=60.0):
    n0 = count()
    want = n0 + len(frames)
    t0 = time.perf_counter_ns()
    for i in range(0, len(frames), 512):
        v.send_raw_batch(frames[i:i + 512])
        await asyncio.sleep(0)
    deadline = time.monotonic() + timeout
    while count() < want:
        await asyncio.sleep(0)
        if time.monotonic() > deadline:
            raise TimeoutError("%d of %d frames received" % (count() - n0, len(frames)))
    return len(frames) * 1e9 / (time.perf_counter_ns() - t0)


def feed_throughput(quick: bool) -> dict:
    import uvloop

    n = 20_000 if quick else 100_000
    runs = 3 if quick else 5

    async def main():
        sim, v = await _setup()
        try:
            ours, theirs = [], []
            for _ in range(runs):
                router, parser, top_bid = _pipeline()
                frames = _frames(n, top_bid)
                feed, count, lst = await _ours(sim, v, router, parser)
                gc.disable()
                try:
                    ours.append(await _throughput_run(v, frames, count))
                finally:
                    gc.enable()
                assert router.all_in_sync() and parser.errors == 0, parser.last_error
                assert router.evaluations >= len(frames), (router.evaluations, len(frames))
                await feed.stop()
                router2, parser2, top_bid = _pipeline()
                frames = _frames(n, top_bid)
                peer = _AioPeer(sim.urls["gateio_spot"].ws, parser2)
                await peer.start(v)
                gc.disable()
                try:
                    theirs.append(await _throughput_run(v, frames, lambda: peer.n))
                finally:
                    gc.enable()
                assert router2.all_in_sync() and parser2.errors == 0
                await peer.stop()
            return ours, theirs, sum(len(p) for p, _ in frames) / len(frames)
        finally:
            await sim.stop()

    ours, theirs, avg = uvloop.run(main())
    ours.sort()
    theirs.sort()
    med, peer_med = ours[len(ours) // 2], theirs[len(theirs) // 2]
    return {"name": "feed_throughput", "frames_per_s": round(med), "median_ns": 1e9 / med, "p99_ns": 1e9 / ours[0],
            "target_frames_per_s": 250_000, "target_ns": 4000, "frames": n, "runs": runs,
            "avg_frame_bytes": round(avg), "runs_frames_per_s": [round(x) for x in ours],
            "level": "sim send_raw_batch (512 frames per write) -> loopback -> picows -> FeedListener -> GateSpotParser "
                     "-> BookRouter -> BookSync -> Book -> ArbEngine, sim and client in one process on one core; "
                     "median_ns = ns per frame at the median rate, p99_ns = at the slowest run",
            "peer_aiohttp_frames_per_s": round(peer_med), "ratio_vs_peer_aiohttp": med / peer_med}


BENCHMARKS = [ws_frame_to_book, feed_throughput]

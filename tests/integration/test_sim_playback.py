"""Capture playback: a capture recorded from the simulator plays back through it, and a client
rebuilds the same book from the captured REST snapshot and frames (DESIGN §3 capture format)."""
from __future__ import annotations

import asyncio
import base64
import gzip
import time

import aiohttp
import orjson
import pytest

from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator
from cexnode.sim.playback import load_capture
from support.sim_books import CLIENTS, Follower

T = 3.0


async def _record(venue, path):
    """Record a client's view of a manual-clock simulator into a capture; return the final true book."""
    symbol, vsym, cls = CLIENTS[venue]
    sim = ExchangeSimulator(SimConfig(seed=9, book_levels=20), venues={venue: [symbol]}, clock="manual", trading=False)
    lines = []
    async with sim, aiohttp.ClientSession() as session:
        client = cls(sim, venue, vsym, session)
        await client.connect()
        sim.tick(3)
        snap_url = {"gateio_spot": ("/api/v4/spot/order_book", "currency_pair=%s&limit=100&with_id=true" % vsym),
                    "gateio_futures": ("/api/v4/futures/usdt/order_book", "contract=%s&limit=100&with_id=true" % vsym),
                    "mexc_spot": ("/api/v3/depth", "symbol=%s&limit=1000" % vsym)}[venue]
        async with session.get(sim.urls[venue].rest + snap_url[0] + "?" + snap_url[1]) as r:
            body = await r.text()
        snap_t = time.time_ns()
        for _ in range(60):
            sim.tick()
            if venue == "mexc_spot":           # aggre depth: one push per 10 ms interval; one step each
                await asyncio.sleep(0.012)
        expected = sim.venue(venue).true_book(symbol)
        while True:
            try:
                msg = await client.ws.receive(timeout=0.3)
            except asyncio.TimeoutError:
                break
            binary = msg.type == aiohttp.WSMsgType.BINARY
            lines.append({"t": time.time_ns(), "venue": venue, "kind": "ws", "op": "binary" if binary else "text",
                          "data": base64.b64encode(msg.data).decode() if binary else msg.data})
        lines.insert(4, {"t": snap_t, "venue": venue, "kind": "rest", "method": "GET", "path": snap_url[0],
                         "query": snap_url[1], "status": 200, "body": body})
        lines.insert(10, {"t": snap_t, "venue": venue, "kind": "ws", "op": "text", "data": "{broken"})
    data = b"".join(orjson.dumps(x) + b"\n" for x in lines)
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return expected


@pytest.mark.parametrize("venue,suffix", [("gateio_spot", ".jsonl"), ("mexc_spot", ".jsonl.gz"),
                                          ("gateio_futures", ".jsonl")])
def test_playback_rebuilds_the_recorded_book(tmp_path, venue, suffix):
    path = tmp_path / ("cap" + suffix)
    symbol, vsym, cls = CLIENTS[venue]

    async def main():
        expected = await _record(venue, path)
        cap = load_capture(str(path))
        assert len(cap[venue].ws) >= 60                      # pushes only: the recorder's ack is dropped
        sim = ExchangeSimulator(SimConfig(seed=1, capture=str(path), capture_speed=0),
                                venues={venue: [symbol]}, trading=False)
        async with sim, aiohttp.ClientSession() as session:
            client = cls(sim, venue, vsym, session)
            await client.connect()
            f = Follower(client)
            await client.ws.receive(timeout=T)               # the live ack of our subscription
            await f.resync()
            await f.catch_up(expected[2])
            b, a = f.sync.book.top()
            assert (b, a) == (expected[0], expected[1])
            await asyncio.wait_for(sim.venue(venue).player.finished.wait(), T)
            assert client.errors == 1                         # the captured malformed frame was replayed
            await client.ws.close()

    asyncio.run(asyncio.wait_for(main(), 15))


def test_bad_capture_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"t": 1, "venue": "gateio_spot", "kind": "ws", "op": "text", "data": "{}"}\n{"t": 2}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_capture(str(p))


def test_send_raw_batch_frames_of_every_length_class():
    """Ready-made frames (one socket write per batch) arrive intact: 7-bit, 16-bit and 64-bit lengths."""
    async def main():
        sim = ExchangeSimulator(SimConfig(seed=1), venues={"gateio_spot": ["BTC/USDT"]}, clock="manual", trading=False)
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("gateio_spot")
            async with s.ws_connect(sim.urls["gateio_spot"].ws, max_msg_size=0) as ws:
                await ws.send_str('{"time":1,"channel":"spot.trades","event":"subscribe","payload":["BTC_USDT"]}')
                await ws.receive(timeout=T)
                frames = [(b"x" * 125, False), (b"y" * 126, True), (b"z" * 65535, False), (b"w" * 70000, True)]
                assert v.send_raw_batch(frames) == 4
                for payload, binary in frames:
                    msg = await ws.receive(timeout=T)
                    assert msg.type == (aiohttp.WSMsgType.BINARY if binary else aiohttp.WSMsgType.TEXT)
                    assert (msg.data if binary else msg.data.encode()) == payload

    asyncio.run(asyncio.wait_for(main(), 10))

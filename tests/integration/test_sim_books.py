"""Simulator market data end to end over real sockets on 127.0.0.1.

A tiny client per venue (aiohttp WebSocket + REST; tests/support/sim_books.py) rebuilds each book
from the REST snapshot and the diff stream with the sequence-rule oracle
(``reference.sync_ref.RefSync``) and must equal the simulator's true book at every checkpoint, through injected gaps, duplicates, reordering, ``full``
resets, malformed frames and dropped connections. The simulator runs on the manual clock, so the
test decides when the market moves and every wait is bounded.
"""
from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import orjson
import pytest

from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator
from support.sim_books import (CLIENTS, TIMEOUT, Follower, GateFutures20Client, GateFuturesClient, GateObuClient,
                               GateSpot20Client)

D = Decimal

def _sim(venue, symbol, **cfg):
    sc = SimConfig(seed=11, book_levels=30, **cfg)
    return ExchangeSimulator(sc, venues={venue: [symbol]}, clock="manual", trading=False)



@pytest.mark.parametrize("venue", list(CLIENTS))
def test_book_follows_true_book_through_faults(venue):
    symbol, vsym, cls = CLIENTS[venue]

    async def main():
        sim = _sim(venue, symbol)
        async with sim, aiohttp.ClientSession() as session:
            v = sim.venue(venue)
            client = cls(sim, venue, vsym, session)
            await client.connect()
            ack = await client.ws.receive(timeout=TIMEOUT)
            assert ack.type == aiohttp.WSMsgType.TEXT
            f = Follower(client)
            sim.tick(3)                           # diffs buffered before the snapshot
            await f.resync()
            await f.catch_up(v.book(vsym).last_id)
            f.assert_equal(v, vsym)
            checks = {"gap": 0, "dup": 0, "reorder": 0, "full": 0, "malformed": 0, "drop": 0}
            for step in range(1, 301):
                if step == 25:
                    v.faults.gap_next(vsym); checks["gap"] = f.sync.resyncs
                elif step == 55:
                    v.faults.duplicate_next(symbol); checks["dup"] = f.sync.stale_dropped
                elif step == 85:
                    v.faults.reorder_next(vsym); checks["reorder"] = f.sync.resyncs
                elif step == 115 and v.supports_full:
                    v.faults.full_reset(vsym)
                elif step == 145:
                    v.faults.malformed_next(vsym)
                elif step == 175:
                    v.faults.malformed_next(vsym, replace=True); checks["malformed"] = f.sync.resyncs
                elif step == 205:
                    v.faults.gap_next(vsym, n=5)
                sim.tick()
                if step % 10 == 0:
                    await f.catch_up(v.book(vsym).last_id)
                    f.assert_equal(v, vsym)
                if step == 30:
                    assert f.sync.resyncs == checks["gap"] + 1
                if step == 60:
                    assert f.sync.stale_dropped > checks["dup"]
                if step == 90:
                    assert f.sync.resyncs == checks["reorder"] + 1
                if step == 120 and v.supports_full:
                    assert f.fulls == 1
                if step == 150:
                    assert client.errors == 1
                if step == 180:
                    assert client.errors == 2 and f.sync.resyncs == checks["malformed"] + 1
                if step == 210:
                    assert f.sync.resyncs == checks["malformed"] + 2
            # dropped connection: reconnect, resubscribe, resync
            assert v.faults.drop_connections() == 1
            sim.tick(5)
            with pytest.raises(ConnectionResetError):
                for _ in range(100):
                    await client.next_diff()
            await client.ws.close()
            await client.connect()
            await client.ws.receive(timeout=TIMEOUT)
            f.sync.request_resync()
            sim.tick(2)
            await f.resync()
            sim.tick(20)
            await f.catch_up(v.book(vsym).last_id)
            f.assert_equal(v, vsym)
            # one push per step, except MEXC's aggre depth: it merges each 10 ms interval's diffs
            # into one push, and this clock steps far faster than that
            assert f.sync.applied > (250 if venue != "mexc_spot" else 25)
            await client.ws.close()

    asyncio.run(main())


def test_gate_obu_stream_full_then_diffs():
    async def main():
        sim = _sim("gateio_spot", "ETH/USDT")
        async with sim, aiohttp.ClientSession() as session:
            v = sim.venue("gateio_spot")
            client = GateObuClient(sim, "gateio_spot", "ETH_USDT", session)
            await client.connect()
            f = Follower(client)
            sim.tick(5)
            await f.catch_up(v.book("ETH_USDT").last_id)
            f.assert_equal(v, "ETH_USDT")
            assert f.fulls == 1                          # first push is the full book
            v.faults.gap_next("ETH_USDT")               # obu gap: unsubscribe + resubscribe
            sim.tick(10)
            await f.catch_up(v.book("ETH_USDT").last_id)
            f.assert_equal(v, "ETH_USDT")
            assert f.fulls == 2 and f.sync.resyncs == 1
            # a second subscription of the same obu stream is refused (venue rule)
            await client.ws.send_str(client.subscribe_msg())
            for _ in range(50):
                m = await client.ws.receive(timeout=TIMEOUT)
                d = orjson.loads(m.data)
                if d.get("event") == "subscribe":
                    break
            assert d["error"] == {"code": 2, "message": "Alert sub ob.ETH_USDT.400"}
            assert d["result"] == {"status": "fail"}
            await client.ws.close()

    asyncio.run(main())


def test_futures_decimal_sizes_with_header():
    async def main():
        sim = _sim("gateio_futures", "BTC/USDT:USDT", futures_decimal_sizes=True)
        async with sim, aiohttp.ClientSession() as session:
            v = sim.venue("gateio_futures")
            assert v.instrument("BTC_USDT").size_decimals == 1
            client = GateFuturesClient(sim, "gateio_futures", "BTC_USDT", session, headers={"X-Gate-Size-Decimal": "1"})
            await client.connect()
            await client.ws.receive(timeout=TIMEOUT)
            f = Follower(client)
            sim.tick(2)
            await f.resync()
            sim.tick(30)
            await f.catch_up(v.book("BTC_USDT").last_id)
            f.assert_equal(v, "BTC_USDT")
            # sizes are strings on the wire with the header, and some are fractional
            async with session.get(client.urls.rest + "/api/v4/futures/usdt/order_book", headers=client.headers,
                                   params={"contract": "BTC_USDT", "limit": "50"}) as r:
                body = await r.json()
            sizes = [x["s"] for x in body["bids"] + body["asks"]]
            assert all(isinstance(s, str) for s in sizes) and any("." in s for s in sizes)
            async with session.get(client.urls.rest + "/api/v4/futures/usdt/order_book",
                                   params={"contract": "BTC_USDT", "limit": "50"}) as r:
                plain = await r.json()
            assert all(isinstance(x["s"], int) for x in plain["bids"] + plain["asks"])
            assert "id" not in plain                        # only with with_id=true
            await client.ws.close()

    asyncio.run(main())


@pytest.mark.parametrize("venue,cls", [("gateio_spot", GateSpot20Client), ("gateio_futures", GateFutures20Client)])
def test_gate_20_level_stream_is_the_top_20_view(venue, cls):
    """A 50-level book on a 20-level channel: the client holds exactly the true top 20, levels
    entering the view included, through a gap and a full reset."""
    symbol, vsym, _ = CLIENTS[venue]

    async def main():
        sim = ExchangeSimulator(SimConfig(seed=13, book_levels=50), venues={venue: [symbol]}, clock="manual",
                                trading=False)
        async with sim, aiohttp.ClientSession() as session:
            v = sim.venue(venue)
            client = cls(sim, venue, vsym, session)
            await client.connect()
            await client.ws.receive(timeout=TIMEOUT)
            f = Follower(client)
            sim.tick(2)
            await f.resync()
            for step in range(1, 151):
                if step == 45:
                    v.faults.gap_next(vsym)
                elif step == 95:
                    v.faults.full_reset(vsym)
                sim.tick()
                if step % 10 == 0:
                    await f.catch_up(v.book(vsym).last_id)
                    f.assert_equal(v, vsym, 20)
                    assert len(f.sync.book.bids) == 20 and len(f.sync.book.asks) == 20
            assert f.sync.resyncs == 1 and f.fulls == 1
            await client.ws.close()

    asyncio.run(main())


@pytest.mark.parametrize("book_levels", [None, 200])
def test_gate_render_frames_follow_the_true_book(book_levels):
    """``render_frames`` (the benchmarks' loopback replay source): a client synced from
    ``true_book`` taken just before, applying the rendered frames with our parser, equals the true
    book after every frame. (The first frame used to carry the whole view with no deletions: the
    client kept levels the venue no longer had and crossed within a few dozen frames.)"""
    import time

    from cexnode._core.fixedpoint import parse
    from cexnode._core.parsers.gateio_spot import GateSpotParser
    from cexnode._core.router import BookRouter
    from cexnode._core.symbols import SymbolRegistry

    async def main():
        cfg = SimConfig(seed=1) if book_levels is None else SimConfig(seed=1, book_levels=book_levels)
        sim = ExchangeSimulator(cfg, venues={"gateio_spot": ["BTC/USDT"]}, clock="manual", trading=False)
        await sim.start()
        try:
            v = sim.venue("gateio_spot")
            inst = v.instrument("BTC/USDT")
            reg = SymbolRegistry()
            reg.add_instruments([{"venue": "gateio_spot", "symbol": "BTC/USDT", "venue_symbol": "BTC_USDT",
                                  "tick": str(inst.tick), "qty_step": str(D(1).scaleb(-inst.size_decimals)),
                                  "min_qty": "0", "min_notional": "1"}])
            reg.freeze()
            m = reg.map("gateio_spot")
            gi = m.instrument(0)
            ps, vqs = gi["price_scale"], gi["venue_qty_scale"]
            router = BookRouter(None)
            book = router.add_book(1, 0, 0, 100)

            def conv(side):
                return [(parse(str(p), ps), parse(str(q), vqs)) for p, q in side]

            bids, asks, last = v.true_book("BTC/USDT", 100)
            router.snapshot(1, 0, last, conv(bids), conv(asks))
            parser = GateSpotParser(m, router)
            applied = 0
            for step in range(300):
                for frame, binary in v.render_frames("BTC/USDT", 1):
                    parser.feed_bytes(frame, binary, time.time_ns())
                    applied += 1
                tb, ta, tl = v.true_book("BTC/USDT", 50)
                assert book.in_sync and book.last_id == tl, step
                assert book.top(50) == (conv(tb), conv(ta)), step
            assert applied >= 250 and parser.errors == 0
        finally:
            await sim.stop()

    asyncio.run(main())

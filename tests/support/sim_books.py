"""Tiny market-data clients per venue (aiohttp WebSocket + REST) that turn the simulator's frames
into ``reference.sync_ref.Diff``s, and the ``Follower`` that rebuilds a book from them with the
sequence-rule oracle (``RefSync``). Shared by tests/integration/test_sim_books.py and
tests/integration/test_sim_playback.py."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import orjson

from cexnode.sim import ExchangeSimulator
from cexnode.sim.venues.mexc_spot import proto as mp
from reference.sync_ref import RESYNC, SNAPSHOT_DIFF, STREAM_FULL, Diff, RefSync

D = Decimal
TIMEOUT = 3.0


def _pairs(levels):
    return [(D(p), D(q)) for p, q in levels]


class VenueClient:
    """Subscribe to one book channel, turn frames into ``Diff``s, fetch snapshots."""

    rule = SNAPSHOT_DIFF

    def __init__(self, sim: ExchangeSimulator, venue: str, vsym: str, session: aiohttp.ClientSession,
                 headers: dict | None = None):
        self.sim, self.venue, self.vsym, self.session = sim, venue, vsym, session
        self.urls = sim.urls[venue]
        self.headers = headers or {}
        self.ws = None
        self.errors = 0          # frames that could not be parsed
        self.controls = []       # acks, pongs, errors

    async def connect(self):
        self.ws = await self.session.ws_connect(self.urls.ws, headers=self.headers)
        await self.ws.send_str(self.subscribe_msg())

    async def next_diff(self):
        """Next book diff (None for non-book frames); raises on close/timeout."""
        msg = await self.ws.receive(timeout=TIMEOUT)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            raise ConnectionResetError("closed")
        if msg.type == aiohttp.WSMsgType.ERROR:
            raise ConnectionResetError(str(msg.data))
        try:
            return self.parse(msg)
        except Exception:
            self.errors += 1
            return None


class GateSpotClient(VenueClient):
    def subscribe_msg(self):
        return orjson.dumps({"time": 1, "channel": "spot.order_book_update", "event": "subscribe",
                             "payload": [self.vsym, "100ms"]}).decode()

    def parse(self, msg):
        m = orjson.loads(msg.data)
        if m.get("event") != "update":
            self.controls.append(m)
            return None
        r = m["result"]
        return Diff(r["U"], r["u"], _pairs(r["b"]), _pairs(r["a"]), full=bool(r.get("full")))

    async def snapshot(self):
        async with self.session.get(self.urls.rest + "/api/v4/spot/order_book",
                                    params={"currency_pair": self.vsym, "limit": "100", "with_id": "true"}) as r:
            assert r.status == 200
            b = await r.json()
        return Diff(b["id"], b["id"], _pairs(b["bids"]), _pairs(b["asks"]))


class GateFuturesClient(VenueClient):
    def subscribe_msg(self):
        return orjson.dumps({"time": 1, "channel": "futures.order_book_update", "event": "subscribe",
                             "payload": [self.vsym, "100ms", "100"]}).decode()

    def parse(self, msg):
        m = orjson.loads(msg.data)
        if m.get("event") != "update":
            self.controls.append(m)
            return None
        r = m["result"]
        lv = lambda side: [(D(x["p"]), D(str(x["s"]))) for x in side]  # noqa: E731
        return Diff(r["U"], r["u"], lv(r["b"]), lv(r["a"]), full=bool(r.get("full")))

    async def snapshot(self):
        async with self.session.get(self.urls.rest + "/api/v4/futures/usdt/order_book", headers=self.headers,
                                    params={"contract": self.vsym, "limit": "100", "with_id": "true"}) as r:
            assert r.status == 200
            b = await r.json()
        lv = lambda side: [(D(x["p"]), D(str(x["s"]))) for x in side]  # noqa: E731
        return Diff(b["id"], b["id"], lv(b["bids"]), lv(b["asks"]))


class GateSpot20Client(GateSpotClient):
    """The 20ms channel is a 20-level book: snapshot with limit=20 (venue rule)."""

    def subscribe_msg(self):
        return orjson.dumps({"time": 1, "channel": "spot.order_book_update", "event": "subscribe",
                             "payload": [self.vsym, "20ms"]}).decode()

    async def snapshot(self):
        async with self.session.get(self.urls.rest + "/api/v4/spot/order_book",
                                    params={"currency_pair": self.vsym, "limit": "20", "with_id": "true"}) as r:
            b = await r.json()
        return Diff(b["id"], b["id"], _pairs(b["bids"]), _pairs(b["asks"]))


class GateFutures20Client(GateFuturesClient):
    def subscribe_msg(self):
        return orjson.dumps({"time": 1, "channel": "futures.order_book_update", "event": "subscribe",
                             "payload": [self.vsym, "20ms", "20"]}).decode()

    async def snapshot(self):
        async with self.session.get(self.urls.rest + "/api/v4/futures/usdt/order_book",
                                    params={"contract": self.vsym, "limit": "20", "with_id": "true"}) as r:
            b = await r.json()
        lv = lambda side: [(D(x["p"]), D(str(x["s"]))) for x in side]  # noqa: E731
        return Diff(b["id"], b["id"], lv(b["bids"]), lv(b["asks"]))


class GateObuClient(GateSpotClient):
    rule = STREAM_FULL

    def subscribe_msg(self):
        return orjson.dumps({"time": 1, "channel": "spot.obu", "event": "subscribe",
                             "payload": ["ob.%s.400" % self.vsym]}).decode()

    def parse(self, msg):
        m = orjson.loads(msg.data)
        if m.get("event") != "update" or m.get("channel") != "spot.obu":
            self.controls.append(m)
            return None
        r = m["result"]
        full = bool(r.get("full"))
        return Diff(r["u"] if full else r["U"], r["u"], _pairs(r["b"]), _pairs(r["a"]), full=full)

    async def snapshot(self):      # obu: no REST snapshot; resync = resubscribe
        await self.ws.send_str(orjson.dumps({"time": 1, "channel": "spot.obu", "event": "unsubscribe",
                                             "payload": ["ob.%s.400" % self.vsym]}).decode())
        await self.ws.send_str(self.subscribe_msg())
        return None


class MexcClient(VenueClient):
    def subscribe_msg(self):
        return orjson.dumps({"method": "SUBSCRIPTION",
                             "params": ["spot@public.aggre.depth.v3.api.pb@10ms@%s" % self.vsym]}).decode()

    def parse(self, msg):
        if msg.type == aiohttp.WSMsgType.TEXT:
            self.controls.append(orjson.loads(msg.data))
            return None
        d = mp.decode_push(msg.data)
        body = d["publicAggreDepths"]
        lv = lambda side: [(D(x["price"]), D(x["quantity"])) for x in body.get(side, [])]  # noqa: E731
        return Diff(int(body["fromVersion"]), int(body["toVersion"]), lv("bids"), lv("asks"))

    async def snapshot(self):
        async with self.session.get(self.urls.rest + "/api/v3/depth", params={"symbol": self.vsym, "limit": "1000"}) as r:
            assert r.status == 200
            b = await r.json()
        return Diff(b["lastUpdateId"], b["lastUpdateId"], _pairs(b["bids"]), _pairs(b["asks"]))


class Follower:
    """RefSync fed by one client; resyncs from a snapshot (or resubscribes) when the oracle asks."""

    def __init__(self, client: VenueClient):
        self.c = client
        self.sync = RefSync(client.rule, depth=10_000)
        self.fulls = 0

    async def resync(self):
        snap = await self.c.snapshot()
        if snap is not None:
            self.sync.snapshot(snap)

    async def catch_up(self, target_id: int):
        """Consume frames until the oracle's book is in sync at ``target_id``."""
        async def loop():
            while not (self.sync.in_sync and self.sync.book.last_id == target_id):
                d = await self.c.next_diff()
                if d is None:
                    continue
                self.fulls += d.full
                if self.sync.update(d) == RESYNC:
                    await self.resync()
        try:
            await asyncio.wait_for(loop(), TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError("not in sync at %d: oracle at %d in_sync=%s buffered=%s resyncs=%d"
                                 % (target_id, self.sync.book.last_id, self.sync.in_sync,
                                    self.sync.buffered_ids(), self.sync.resyncs)) from None

    def assert_equal(self, venue, symbol, depth=None):
        bids, asks, last = venue.true_book(symbol, depth)
        b, a = self.sync.book.top()
        assert self.sync.book.last_id == last
        assert b == bids and a == asks, "book differs from the true book at id %d" % last


CLIENTS = {
    "gateio_spot": ("BTC/USDT", "BTC_USDT", GateSpotClient),
    "gateio_futures": ("BTC/USDT:USDT", "BTC_USDT", GateFuturesClient),
    "mexc_spot": ("BTC/USDT", "BTCUSDT", MexcClient),
}

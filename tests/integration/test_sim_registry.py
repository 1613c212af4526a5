"""Simulated venues are found by name (``cexnode.sim.registry``): an existing protocol is served under
a new venue name, registered from a test or named by a venue descriptor, with its instruments over
REST and its book pushes over WebSocket on 127.0.0.1."""
from __future__ import annotations

import asyncio
import dataclasses
import time

import aiohttp
import orjson
import pytest

from cexnode.adapters import registry as venue_registry
from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator, registry
from cexnode.sim.venues._gate import auth as gate_auth

T = 3.0
NEW = "exampleex_spot"          # a venue no package defines, speaking the Gate spot v4 protocol
PROTOCOL_OF = "gateio_spot"
KEY, SECRET = "example-key", "example-secret"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


async def _recv(ws, pred):
    for _ in range(500):
        msg = await ws.receive(timeout=T)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        m = orjson.loads(msg.data)
        if pred(m):
            return m
    raise AssertionError("no matching frame")


async def _instruments_and_book_pushes(sim: ExchangeSimulator, name: str, session: aiohttp.ClientSession) -> None:
    """The venue lists its instrument over REST, and its book pushes continue its REST snapshot."""
    urls = sim.urls[name]
    assert urls.rest.startswith("http://127.0.0.1:") and urls.ws.startswith("ws://127.0.0.1:")
    async with session.get(urls.rest + "/api/v4/spot/currency_pairs") as r:
        assert r.status == 200
        pairs = await r.json()
    ids = [p["id"] for p in pairs]
    assert ids == list(sim.venue(name).instruments) and "BTC_USDT" in ids
    btc = pairs[ids.index("BTC_USDT")]
    assert (btc["base"], btc["quote"]) == ("BTC", "USDT")
    async with session.ws_connect(urls.ws) as ws:
        await ws.send_str(orjson.dumps({"time": int(time.time()), "channel": "spot.order_book_update",
                                        "event": "subscribe", "payload": ["BTC_USDT", "100ms"]}).decode())
        ack = await _recv(ws, lambda m: m.get("event") == "subscribe")
        assert ack["result"] == {"status": "success"}
        async with session.get(urls.rest + "/api/v4/spot/order_book",
                               params={"currency_pair": "BTC_USDT", "limit": "100", "with_id": "true"}) as r:
            assert r.status == 200
            snap = await r.json()
        assert snap["bids"] and snap["asks"]
        pushes = []
        while len(pushes) < 5:
            m = await _recv(ws, lambda m: m.get("event") == "update")
            res = m["result"]
            assert m["channel"] == "spot.order_book_update" and res["s"] == "BTC_USDT"
            if res["u"] > snap["id"]:
                pushes.append(res)
    # the first push after the snapshot covers the id after it; every later push follows the previous one
    assert pushes[0]["U"] <= snap["id"] + 1
    assert all(b["U"] == a["u"] + 1 for a, b in zip(pushes, pushes[1:]))


def test_a_protocol_registered_under_a_new_name_is_served_under_it():
    with pytest.raises(ValueError, match=NEW):
        ExchangeSimulator(SimConfig(seed=3), venues={NEW: ["BTC/USDT"]}, trading=False)
    with pytest.raises(KeyError, match=PROTOCOL_OF):       # the error lists the venues it serves
        registry.venue_class(NEW)
    registry.register(NEW, registry.venue_class(PROTOCOL_OF))
    try:
        assert registry.names()[-1] == NEW and registry.venue_class(NEW) is registry.venue_class(PROTOCOL_OF)

        async def main():
            sim = ExchangeSimulator(SimConfig(seed=3), venues={NEW: ["BTC/USDT"]}, trading=False)
            assert list(sim.venues) == [NEW] and sim.venue(NEW).name == NEW
            assert sim.venue(NEW).instrument("BTC/USDT").venue_symbol == "BTC_USDT"
            async with sim, aiohttp.ClientSession() as s:
                await _instruments_and_book_pushes(sim, NEW, s)
            assert sim.diffs_published > 0

        run(main())
    finally:
        registry.unregister(NEW)
    assert registry.find(NEW) is None and NEW not in registry.names()


def test_a_descriptor_names_the_protocol_its_simulated_venue_speaks():
    """A venue descriptor whose ``sim_venue`` is an existing protocol module: the simulator serves the
    venue with that protocol under the descriptor's name and id order, trading side included."""
    base = venue_registry.descriptor(PROTOCOL_OF)
    new_id = max(d.venue_id for d in venue_registry.descriptors()) + 1
    venue_registry.register(dataclasses.replace(base, name=NEW, venue_id=new_id))
    try:
        assert base.sim_venue and registry.venue_class(NEW) is registry.venue_class(PROTOCOL_OF)
        assert registry.names().index(NEW) == registry.names().index(PROTOCOL_OF) + (new_id - base.venue_id)

        async def main():
            sim = ExchangeSimulator(SimConfig(seed=4))           # no venues named: every venue it can serve
            assert set(sim.venues) == set(registry.names()) and list(sim.venues)[-1] == NEW
            sim.trading.add_account(NEW, KEY, SECRET, {"USDT": "1000"})
            async with sim, aiohttp.ClientSession() as s:
                await _instruments_and_book_pushes(sim, NEW, s)
                ts = str(int(time.time()))
                sign = gate_auth.gate_rest_sign(SECRET, "GET", "/api/v4/spot/accounts", "currency=USDT", b"", ts)
                async with s.get(sim.urls[NEW].rest + "/api/v4/spot/accounts?currency=USDT",
                                 headers={"KEY": KEY, "Timestamp": ts, "SIGN": sign}) as r:
                    assert r.status == 200
                    assert await r.json() == [{"currency": "USDT", "available": "1000", "locked": "0", "update_id": 1}]
            # the new venue's account lives on it alone
            with pytest.raises(KeyError):
                sim.trading.account(PROTOCOL_OF, KEY)

        run(main())
    finally:
        venue_registry.unregister(NEW)
    assert NEW not in registry.names()

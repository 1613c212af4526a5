"""The generated universe over REST and WebSocket on 127.0.0.1, read by the node's own readers
(``cexnode.adapters.<venue>.universe.SOURCE``): instrument lists, 24 h tickers and wallet status
equal the simulator's universe; scheduled listings and delistings show up as the venues show them,
a new book streams, a delisted one stops. Every wait has a deadline."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib
import time
from urllib.parse import urlencode

import aiohttp
import orjson

from cexnode.config import SimConfig, SimUniverseConfig
from cexnode.sim import ExchangeSimulator
from cexnode.universe import UniverseRules, select
from support.sim_gateways import run

KEY, SECRET = "universe-key", "universe-secret"


def _sim(clock="manual", **universe) -> ExchangeSimulator:
    uc = SimUniverseConfig(enabled=True, **{"spot_pairs": 60, "common_pairs": 45, "perpetuals": 15,
                                             "frozen_assets": 4, **universe})
    sim = ExchangeSimulator(SimConfig(seed=17, book_levels=10, universe=uc), clock=clock)
    for name in sim.venues:
        sim.trading.add_account(name, KEY, SECRET, {"USDT": "1000"})
    return sim


def _source(name):
    return importlib.import_module("cexnode.adapters.%s.universe" % name).SOURCE


async def _get(session, sim, name, path, signed=False):
    url = sim.urls[name].rest + path
    headers = {}
    if signed:
        q = urlencode({"timestamp": int(time.time() * 1000)})
        q += "&signature=" + hmac.new(SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
        url += "?" + q
        headers["X-MEXC-APIKEY"] = KEY
    async with session.get(url, headers=headers) as r:
        assert r.status == 200, (path, r.status, await r.text())
        return orjson.loads(await r.read())


async def _read(session, sim, name):
    src = _source(name)
    listings = src.parse_listings(await _get(session, sim, name, src.instruments_path))
    tickers = src.parse_tickers(await _get(session, sim, name, src.tickers_path), listings)
    transfers = src.parse_transfers(await _get(session, sim, name, src.transfers_path, signed=src.transfers_signed))
    return listings, tickers, transfers


def test_readers_read_exactly_the_universe():
    async def main():
        sim = _sim()
        sim.list_next()
        sim.delist_next()
        assert len({n for n, _ in sim.delisted if sim.venues[n].market == "spot"}) >= 2
        async with sim, aiohttp.ClientSession() as session:
            all_listings, all_tickers, all_transfers = [], [], []
            for name, v in sim.venues.items():
                listings, tickers, transfers = await _read(session, sim, name)
                want = {i.symbol: i.venue_symbol not in v.halted for i in v.instruments.values()}
                assert {li.symbol: li.tradable for li in listings} == want
                assert {li.venue_symbol for li in listings} == set(v.instruments)
                assert {s for s, t in want.items() if not t} == {s for n, s in sim.delisted if n == name}
                assert {t.symbol: t.quote_volume for t in tickers} == \
                    {s: sim.universe.volume(name, s) for s in want}
                assert not any(t.leveraged for t in tickers)
                wallet = v.wallet_venue
                assets = {t.asset: (t.can_deposit, t.can_withdraw) for t in transfers}
                assert set(assets) >= {i.base for i in v.instruments.values()} | {"USDT"}
                assert assets == {a: sim.universe.transfer(wallet, a) for a in assets}
                all_listings += listings
                all_tickers += tickers
                all_transfers += transfers
            # the frozen assets appear in the wallet endpoints as frozen
            frozen = {(t.venue, t.asset) for t in all_transfers if not (t.can_deposit and t.can_withdraw)}
            for venue, asset in sim.universe.frozen:
                assert (venue, asset) in frozen
            # the node's selection finds every common pair still listed, and the perpetuals
            u = select(all_listings, all_tickers, all_transfers, UniverseRules(skip_frozen_transfers=False))
            spot = [n for n, v in sim.venues.items() if v.market == "spot"]
            symbols = {r.symbol for r in u.routes if r.kind == "spot_spot"}
            common = {sim.universe.pairs[b].spot_symbol for b in sim.universe.common}
            halted = {s for n, s in sim.delisted}
            assert symbols == common - halted
            assert len(spot) >= 2
            frozen_routes = {r.symbol for r in u.routes if r.frozen}
            assert {sim.universe.pairs[a].spot_symbol for _, a in sim.universe.frozen} <= frozen_routes

    run(main(), 30)


def test_scheduled_listing_and_delisting_while_running():
    # the auto clock lists a pair every 0.4 s and delists one every 0.6 s
    async def main():
        sim = _sim(clock="auto", listing_interval_s=0.4, delisting_interval_s=0.6)
        name = "gateio_spot"
        src = _source(name)
        async with sim, aiohttp.ClientSession() as session:
            before = {li.symbol for li in src.parse_listings(await _get(session, sim, name, src.instruments_path))}

            async def listed_new():
                rows = src.parse_listings(await _get(session, sim, name, src.instruments_path))
                return [li for li in rows if li.symbol not in before and li.tradable]

            async def halted():
                rows = src.parse_listings(await _get(session, sim, name, src.instruments_path))
                return [li for li in rows if not li.tradable]

            new = await _poll(listed_new, "a listing in the instrument list")
            gone = await _poll(halted, "a halted pair in the instrument list")
            # the new pair's book streams on the venue's WebSocket; the delisted one's stops
            ws = await session.ws_connect(sim.urls[name].ws)
            for li in (new[0], gone[0]):
                await ws.send_str(orjson.dumps({"time": 1, "channel": "spot.order_book_update", "event": "subscribe",
                                                "payload": [li.venue_symbol, "100ms"]}).decode())
            pushed = set()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and new[0].venue_symbol not in pushed:
                msg = await ws.receive(timeout=5)
                m = orjson.loads(msg.data)
                if m.get("event") == "update":
                    pushed.add(m["result"]["s"])
            assert new[0].venue_symbol in pushed
            book = sim.venue(name).books[gone[0].venue_symbol]
            live = sim.venue(name).books[new[0].venue_symbol]
            last, live_last = book.last_id, live.last_id

            async def live_moved():
                return live.last_id >= live_last + 6       # at least two steps

            await _poll(live_moved, "two steps of a live book")
            assert book.last_id == last and gone[0].venue_symbol not in pushed
            await ws.close()
            assert sim.listed and sim.delisted

    run(main(), 30)


async def _poll(fetch, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        got = await fetch()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("no %s within %.0f s" % (what, timeout))
        await asyncio.sleep(0.05)

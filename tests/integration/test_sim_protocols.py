"""Simulator protocol details over loopback: acks, errors, pings, limits, REST faults, instruments.

Message shapes follow the shared reference samples (``../shared/reference/exchange-payloads``).
"""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import orjson
import pytest

from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator
from cexnode.sim.venues.mexc_spot import proto as mp

T = 3.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 15))


async def _recv_json(ws, pred=lambda m: True, n=200):
    for _ in range(n):
        msg = await ws.receive(timeout=T)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        m = orjson.loads(msg.data)
        if pred(m):
            return m
    raise AssertionError("no matching frame")


def _sim(venues, **cfg):
    return ExchangeSimulator(SimConfig(seed=5, book_levels=20, **cfg), venues=venues, clock="manual", trading=False)


def test_gate_spot_control_frames_and_channels():
    async def main():
        sim = _sim({"gateio_spot": ["BTC/USDT"]})
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("gateio_spot")
            assert sim.urls["gateio_spot"].ws.endswith("/ws/v4/")
            async with s.ws_connect(sim.urls["gateio_spot"].ws) as ws:
                await ws.send_str('{"time":1,"id":7,"channel":"spot.ping"}')
                pong = await _recv_json(ws)
                assert pong["channel"] == "spot.pong" and pong["event"] == "" and pong["result"] is None
                assert pong["error"] is None and pong["id"] == 7
                await ws.send_str("{not json")
                err = await _recv_json(ws)
                assert err["error"]["code"] == 1 and err["result"] == {"status": "fail"}
                await ws.send_str(orjson.dumps({"time": 1, "channel": "spot.order_book_update", "event": "subscribe",
                                                "payload": ["BTC_USDT", "1000ms"]}).decode())
                assert (await _recv_json(ws))["error"]["code"] == 2       # 1000ms was removed
                await ws.send_str(orjson.dumps({"time": 1, "channel": "spot.nope", "event": "subscribe",
                                                "payload": ["BTC_USDT"]}).decode())
                assert (await _recv_json(ws))["error"]["code"] == 2
                await ws.send_str(orjson.dumps({"time": 1, "channel": "spot.trades", "event": "subscribe",
                                                "payload": ["DOGE_USDT"]}).decode())
                assert "DOGE_USDT" in (await _recv_json(ws))["error"]["message"]
                for ch in ("spot.book_ticker", "spot.trades"):
                    await ws.send_str(orjson.dumps({"time": 1, "id": 3, "channel": ch, "event": "subscribe",
                                                    "payload": ["BTC_USDT"]}).decode())
                    ack = await _recv_json(ws)
                    assert ack["result"] == {"status": "success"} and ack["payload"] == ["BTC_USDT"]
                    assert ack["id"] == 3 and ack["event"] == "subscribe" and ack["requestId"] == ack["trace_id"]
                    assert set(ack) >= {"time", "time_ms", "conn_id", "trace_id", "channel"}
                sim.tick(40)
                tickers, trades = [], []
                while True:
                    try:
                        msg = await ws.receive(timeout=0.3)
                    except asyncio.TimeoutError:
                        break
                    m = orjson.loads(msg.data)
                    (tickers if m["channel"] == "spot.book_ticker" else trades).append(m["result"])
                assert len(tickers) == 40 and trades
                bids, asks, last = v.true_book("BTC_USDT", 1)
                assert tickers[-1]["u"] == last
                assert (Decimal(tickers[-1]["b"]), Decimal(tickers[-1]["B"])) == bids[0]
                assert (Decimal(tickers[-1]["a"]), Decimal(tickers[-1]["A"])) == asks[0]
                t = trades[0]
                assert t["side"] in ("buy", "sell") and isinstance(t["create_time_ms"], str) and "." in t["create_time_ms"]
                # unsubscribe stops the stream; rejected subscriptions answer with an error frame
                for ch in ("spot.book_ticker", "spot.trades"):
                    await ws.send_str(orjson.dumps({"time": 1, "channel": ch, "event": "unsubscribe",
                                                    "payload": ["BTC_USDT"]}).decode())
                    assert (await _recv_json(ws))["event"] == "unsubscribe"
                sim.tick(5)
                with pytest.raises(asyncio.TimeoutError):
                    await ws.receive(timeout=0.2)
                v.faults.reject_subscriptions(True)
                await ws.send_str(orjson.dumps({"time": 1, "channel": "spot.book_ticker", "event": "subscribe",
                                                "payload": ["BTC_USDT"]}).decode())
                assert (await _recv_json(ws))["result"] == {"status": "fail"}
                # close_connections: a close frame reaches the client
                assert v.faults.close_connections() == 1
                msg = await ws.receive(timeout=T)
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1012

    run(main())


def test_gate_futures_control_frames_and_channels():
    async def main():
        sim = _sim({"gateio_futures": ["BTC/USDT:USDT"]})
        async with sim, aiohttp.ClientSession() as s:
            url = sim.urls["gateio_futures"].ws
            assert url.endswith("/v4/ws/usdt")
            async with s.ws_connect(url) as ws:
                await ws.send_str('{"time":1,"channel":"futures.ping"}')
                pong = await _recv_json(ws)
                assert pong["channel"] == "futures.pong" and pong["result"] is None and "conn_id" in pong
                await ws.send_str(orjson.dumps({"time": 1, "channel": "futures.order_book_update", "event": "subscribe",
                                                "payload": ["BTC_USDT", "20ms", "100"]}).decode())
                assert (await _recv_json(ws))["error"]["code"] == 2          # 20ms allows level 20 only
                for ch in ("futures.book_ticker", "futures.trades"):
                    await ws.send_str(orjson.dumps({"time": 1, "channel": ch, "event": "subscribe",
                                                    "payload": ["BTC_USDT"]}).decode())
                    assert (await _recv_json(ws))["result"] == {"status": "success"}
                sim.tick(40)
                got = {"futures.book_ticker": [], "futures.trades": []}
                while True:
                    try:
                        msg = await ws.receive(timeout=0.3)
                    except asyncio.TimeoutError:
                        break
                    m = orjson.loads(msg.data)
                    got[m["channel"]].append(m["result"])
                tk = got["futures.book_ticker"][-1]
                assert isinstance(tk["B"], int) and isinstance(tk["A"], int) and isinstance(tk["u"], int)
                trades = [t for batch in got["futures.trades"] for t in batch]
                assert trades and all(isinstance(t["size"], int) and t["size"] != 0 for t in trades)
                assert all(isinstance(t["create_time_ms"], int) for t in trades)

    run(main())


def test_mexc_control_frames_limits_and_pushes():
    syms = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]

    async def main():
        sim = _sim({"mexc_spot": syms})
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("mexc_spot")
            topics = []
            for sym in v.instruments:
                for iv in ("10ms", "100ms"):
                    topics += ["spot@public.aggre.depth.v3.api.pb@%s@%s" % (iv, sym),
                               "spot@public.aggre.bookTicker.v3.api.pb@%s@%s" % (iv, sym),
                               "spot@public.aggre.deals.v3.api.pb@%s@%s" % (iv, sym)]
                topics += ["spot@public.limit.depth.v3.api.pb@%s@%s" % (sym, n) for n in (5, 10, 20)]
            assert len(topics) == 36
            async with s.ws_connect(sim.urls["mexc_spot"].ws) as ws:
                await ws.send_str('{"method":"PING"}')
                assert await _recv_json(ws) == {"id": 0, "code": 0, "msg": "PONG"}
                await ws.send_str(orjson.dumps({"method": "SUBSCRIPTION", "params": topics[:31], "id": 9}).decode())
                ack = await _recv_json(ws)
                assert ack == {"id": 9, "code": 0, "msg": ",".join(topics[:30])}
                rej = await _recv_json(ws)
                assert rej["code"] == 0 and rej["msg"].startswith("Not Subscribed successfully! [%s]" % topics[30])
                # the old JSON topics are Blocked (code 0, the exact reference wording)
                old = "spot@public.deals.v3.api@BTCUSDT"
                await ws.send_str(orjson.dumps({"method": "UNSUBSCRIPTION", "params": topics[:1]}).decode())
                assert (await _recv_json(ws, lambda m: m.get("msg") == topics[0]))["code"] == 0
                await ws.send_str(orjson.dumps({"method": "SUBSCRIPTION", "params": [old]}).decode())
                blocked = await _recv_json(ws, lambda m: "Not Subscribed" in m.get("msg", ""))
                assert blocked == {"id": 0, "code": 0,
                                   "msg": "Not Subscribed successfully! [%s].  Reason： Blocked! " % old}
            async with s.ws_connect(sim.urls["mexc_spot"].ws) as ws:
                sub = ["spot@public.limit.depth.v3.api.pb@ETHUSDT@5", "spot@public.aggre.deals.v3.api.pb@10ms@ETHUSDT",
                       "spot@public.aggre.bookTicker.v3.api.pb@10ms@ETHUSDT"]
                await ws.send_str(orjson.dumps({"method": "SUBSCRIPTION", "params": sub}).decode())
                assert (await _recv_json(ws))["msg"] == ",".join(sub)
                sim.tick(30)
                pushes = []
                while True:
                    try:
                        msg = await ws.receive(timeout=0.3)
                    except asyncio.TimeoutError:
                        break
                    assert msg.type == aiohttp.WSMsgType.BINARY
                    pushes.append(mp.decode_push(msg.data))
                limits = [p for p in pushes if "publicLimitDepths" in p]
                bids, asks, last = v.true_book("ETHUSDT", 5)
                lp = limits[-1]
                assert lp["channel"] == sub[0] and lp["symbol"] == "ETHUSDT"
                assert int(lp["publicLimitDepths"]["version"]) == last
                assert [(Decimal(x["price"]), Decimal(x["quantity"])) for x in lp["publicLimitDepths"]["bids"]] == bids
                assert [(Decimal(x["price"]), Decimal(x["quantity"])) for x in lp["publicLimitDepths"]["asks"]] == asks
                tks = [p["publicAggreBookTicker"] for p in pushes if "publicAggreBookTicker" in p]
                assert (Decimal(tks[-1]["bidPrice"]), Decimal(tks[-1]["bidQuantity"])) == bids[0]
                deals = [d for p in pushes if "publicAggreDeals" in p for d in p["publicAggreDeals"]["deals"]]
                assert deals and all(d["tradeType"] in (1, 2) for d in deals)

    run(main())


def test_mexc_connection_timers():
    async def main():
        sim = _sim({"mexc_spot": ["BTC/USDT"]}, mexc_no_subscription_close_s=0.2, mexc_max_connection_age_s=0.6)
        async with sim, aiohttp.ClientSession() as s:
            async with s.ws_connect(sim.urls["mexc_spot"].ws) as idle, s.ws_connect(sim.urls["mexc_spot"].ws) as busy:
                await busy.send_str('{"method":"SUBSCRIPTION","params":["spot@public.aggre.depth.v3.api.pb@10ms@BTCUSDT"]}')
                await _recv_json(busy)
                t0 = time.monotonic()
                msg = await idle.receive(timeout=T)                 # no subscription: closed after 0.2 s
                assert msg.type == aiohttp.WSMsgType.CLOSE and time.monotonic() - t0 < 2.0   # bounded, with headroom
                while True:                                          # subscribed: lives until its max age
                    msg = await busy.receive(timeout=T)
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        break
                assert msg.type == aiohttp.WSMsgType.CLOSE and time.monotonic() - t0 > 0.3

    run(main())


def test_gate_connection_limit():
    async def main():
        sim = _sim({"gateio_spot": ["BTC/USDT"]})
        async with sim, aiohttp.ClientSession() as s:
            sim.venue("gateio_spot").max_connections = 2
            url = sim.urls["gateio_spot"].ws
            async with s.ws_connect(url), s.ws_connect(url):
                with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
                    await s.ws_connect(url)
                assert ei.value.status == 429
            async with s.get(url.replace("ws://", "http://").replace("/ws/v4/", "/nope")) as r:
                assert r.status == 404

    run(main())


@pytest.mark.parametrize("venue,path,params", [
    ("gateio_spot", "/api/v4/spot/order_book", {"currency_pair": "BTC_USDT", "with_id": "true"}),
    ("gateio_futures", "/api/v4/futures/usdt/order_book", {"contract": "BTC_USDT", "with_id": "true"}),
    ("mexc_spot", "/api/v3/depth", {"symbol": "BTCUSDT"}),
])
def test_rest_faults(venue, path, params):
    async def main():
        sim = _sim(None)
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue(venue)
            url = sim.urls[venue].rest + path
            v.faults.rest_429(2, retry_after=7)
            for _ in range(2):
                async with s.get(url, params=params) as r:
                    assert r.status == 429 and r.headers["Retry-After"] == "7"
                    body = await r.json()
                    assert ("label" in body) if venue.startswith("gateio") else ("code" in body)
            v.faults.rest_5xx(1, status=502)
            async with s.get(url, params=params) as r:
                assert r.status == 502
            async with s.get(url, params=params) as r:
                assert r.status == 200
            v.faults.rest_delay(0.5, n=1)
            with pytest.raises(asyncio.TimeoutError):
                async with s.get(url, params=params, timeout=aiohttp.ClientTimeout(total=0.15)) as r:
                    await r.read()
            async with s.get(url, params=params, timeout=aiohttp.ClientTimeout(total=2)) as r:
                assert r.status == 200
                body = await r.json()
            key = "lastUpdateId" if venue == "mexc_spot" else "id"
            assert body[key] == v.book("BTC_USDT" if venue != "mexc_spot" else "BTCUSDT").last_id
            assert v.rest_requests[path] == 6

    run(main())


def test_instrument_endpoints_match_the_wire_scale():
    async def main():
        sim = _sim(None)
        async with sim, aiohttp.ClientSession() as s:
            u = sim.urls
            async with s.get(u["mexc_spot"].rest + "/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"}) as r:
                info = (await r.json())["symbols"][0]
            assert info["status"] == "1" and info["tradeSideType"] == 1 and info["quotePrecision"] == 2
            async with s.get(u["mexc_spot"].rest + "/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "5"}) as r:
                depth = await r.json()
            assert len(depth["bids"]) == 5 and all(len(p.split(".")[1]) == info["quotePrecision"] for p, _ in depth["bids"])
            async with s.get(u["mexc_spot"].rest + "/api/v3/depth", params={"symbol": "NOPEUSDT"}) as r:
                assert r.status == 400 and "code" in await r.json()
            for path in ("/api/v3/time", "/api/v3/ping"):
                async with s.get(u["mexc_spot"].rest + path) as r:
                    assert r.status == 200
            async with s.get(u["gateio_spot"].rest + "/api/v4/spot/currency_pairs") as r:
                pairs = {p["id"]: p for p in await r.json()}
            assert set(pairs) == {"BTC_USDT", "ETH_USDT"} and pairs["BTC_USDT"]["precision"] == 1
            async with s.get(u["gateio_spot"].rest + "/api/v4/spot/currency_pairs/ETH_USDT") as r:
                assert (await r.json())["amount_precision"] == pairs["ETH_USDT"]["amount_precision"]
            async with s.get(u["gateio_spot"].rest + "/api/v4/spot/time") as r:
                assert abs((await r.json())["server_time"] - time.time() * 1000) < 5000
            async with s.get(u["gateio_futures"].rest + "/api/v4/futures/usdt/contracts") as r:
                cs = {c["name"]: c for c in await r.json()}
            assert cs["BTC_USDT"]["quanto_multiplier"] == "0.0001" and cs["BTC_USDT"]["order_price_round"] == "0.1"
            async with s.get(u["gateio_futures"].rest + "/api/v4/futures/usdt/contracts/NOPE_USDT") as r:
                assert r.status == 400

    run(main())


def test_stall_drop_and_queue():
    async def main():
        sim = _sim({"gateio_spot": ["BTC/USDT"]})
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("gateio_spot")
            async with s.ws_connect(sim.urls["gateio_spot"].ws) as ws:
                await ws.send_str(orjson.dumps({"time": 1, "channel": "spot.order_book_update", "event": "subscribe",
                                                "payload": ["BTC_USDT", "100ms"]}).decode())
                await _recv_json(ws)
                sim.tick()
                last = (await _recv_json(ws))["result"]["u"]
                v.faults.stall(0.2, drop=True)
                sim.tick(3)
                with pytest.raises(asyncio.TimeoutError):
                    await ws.receive(timeout=0.25)
                sim.tick()
                r = (await _recv_json(ws))["result"]
                assert r["U"] > last + 1                               # what the stall dropped is a gap
                last = r["u"]
                v.faults.stall(0.2, drop=False)
                sim.tick(3)
                with pytest.raises(asyncio.TimeoutError):
                    await ws.receive(timeout=0.25)
                sim.tick()                                             # queued pushes arrive, in order
                for _ in range(4):
                    r = (await _recv_json(ws))["result"]
                    assert r["U"] == last + 1
                    last = r["u"]

    run(main())


def _wire(seed):
    async def main():
        sim = ExchangeSimulator(SimConfig(seed=seed), venues={"gateio_spot": ["BTC/USDT"]}, clock="manual", trading=False)
        async with sim, aiohttp.ClientSession() as s:
            async with s.ws_connect(sim.urls["gateio_spot"].ws) as ws:
                await ws.send_str(orjson.dumps({"time": 1, "channel": "spot.order_book_update", "event": "subscribe",
                                                "payload": ["BTC_USDT", "100ms"]}).decode())
                await _recv_json(ws)
                sim.tick(50)
                out = []
                for _ in range(50):
                    r = (await _recv_json(ws))["result"]
                    out.append((r["U"], r["u"], r["b"], r["a"]))
                return out
    return run(main())


def test_deterministic_for_a_seed():
    a, b, c = _wire(42), _wire(42), _wire(43)
    assert a == b
    assert a != c


def test_dislocations_beat_fees_only_when_enabled():
    fee = Decimal("0.001")

    def arbs(prob):
        sim = ExchangeSimulator(SimConfig(seed=3, dislocation_probability=prob, dislocation_bps=40),
                                venues={"mexc_spot": ["BTC/USDT"], "gateio_spot": ["BTC/USDT"]}, clock="manual",
                                trading=False)
        m, g = sim.venue("mexc_spot"), sim.venue("gateio_spot")
        n = 0
        for _ in range(1500):
            sim.tick()
            (mb, ma, _), (gb, ga, _) = m.true_book("BTCUSDT", 1), g.true_book("BTC_USDT", 1)
            for bid, ask in ((mb[0][0], ga[0][0]), (gb[0][0], ma[0][0])):
                n += bid * (1 - fee) > ask * (1 + fee)
        return n

    assert arbs(0.02) > 20
    assert arbs(0.0) == 0


def test_rest_rate_limits_and_mexc_message_rate():
    async def main():
        sim = _sim({"gateio_spot": ["BTC/USDT"], "mexc_spot": ["BTC/USDT"]}, enforce_rate_limits=True)
        async with sim, aiohttp.ClientSession() as s:
            url = sim.urls["gateio_spot"].rest + "/api/v4/spot/time"
            statuses = []
            for _ in range(201):
                async with s.get(url) as r:
                    statuses.append(r.status)
                    hdr = dict(r.headers)
            assert statuses[:200] == [200] * 200 and statuses[200] == 429
            assert hdr["X-Gate-RateLimit-Limit"] == "200" and hdr["X-Gate-RateLimit-Requests-Remain"] == "0"
            assert int(hdr["Retry-After"]) >= 1
            async with s.ws_connect(sim.urls["mexc_spot"].ws) as ws:
                for _ in range(101):                       # venue rule: at most 100 messages per second
                    await ws.send_str('{"method":"PING"}')
                kinds = []
                for _ in range(102):
                    msg = await ws.receive(timeout=T)
                    kinds.append(msg.type)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                assert kinds[:100] == [aiohttp.WSMsgType.TEXT] * 100 and kinds[100] == aiohttp.WSMsgType.CLOSE

    run(main())


def test_rejected_handshakes_and_paused_clock():
    async def main():
        sim = ExchangeSimulator(SimConfig(seed=5, update_interval_ms=2), venues={"gateio_spot": ["BTC/USDT"]},
                                trading=False)
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("gateio_spot")
            url = sim.urls["gateio_spot"].ws
            v.faults.reject_connections(2, status=503)
            for _ in range(2):
                with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
                    await s.ws_connect(url)
                assert ei.value.status == 503
            async with s.ws_connect(url):
                pass
            await asyncio.sleep(0.05)
            sim.pause()
            await asyncio.sleep(0.01)
            frozen = v.book("BTC_USDT").last_id
            await asyncio.sleep(0.1)
            assert v.book("BTC_USDT").last_id == frozen and sim.paused      # auto clock stopped
            sim.resume()
            await asyncio.sleep(0.1)
            assert v.book("BTC_USDT").last_id > frozen

    run(main())

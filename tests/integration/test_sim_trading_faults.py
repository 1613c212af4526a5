"""Trading faults of the simulator: rejected orders, partial fills, late / missing / 5xx answers for
orders that were placed anyway, and stalled private streams (REST and Gate WebSocket API)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator

KEY, SECRET = "fault-key", "fault-secret"
T = 3.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 25))


def make_sim():
    sim = ExchangeSimulator(SimConfig(seed=41, book_levels=10), clock="manual",
                            venues={"mexc_spot": ["BTC/USDT"], "gateio_spot": ["BTC/USDT"]})
    for v in ("mexc_spot", "gateio_spot"):
        sim.trading.add_account(v, KEY, SECRET, {"USDT": "100000", "BTC": "2"})
    return sim


def mexc_req(base, **params):
    params["timestamp"] = int(time.time() * 1000)
    q = urlencode(params)
    q += "&signature=" + hmac.new(SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
    return base + "/api/v3/order?" + q, {"X-MEXC-APIKEY": KEY}


def gate_req(base, body):
    raw = orjson.dumps(body)
    ts = str(int(time.time()))
    path = "/api/v4/spot/orders"
    msg = "\n".join(["POST", path, "", hashlib.sha512(raw).hexdigest(), ts])
    return base + path, raw, {"KEY": KEY, "Timestamp": ts, "Content-Type": "application/json",
                              "SIGN": hmac.new(SECRET.encode(), msg.encode(), hashlib.sha512).hexdigest()}


def far_order(i):
    return dict(symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.01", price="1000.00", newClientOrderId="f%d" % i)


def test_reject_orders_rest():
    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            mx = sim.venue("mexc_spot")
            mx.faults.reject_orders(2)
            for i in range(2):
                url, h = mexc_req(sim.urls["mexc_spot"].rest, **far_order(i))
                async with s.post(url, headers=h) as r:
                    assert r.status == 400 and (await r.json())["code"] == 30004
            mx.faults.reject_orders(1, code=30016)
            url, h = mexc_req(sim.urls["mexc_spot"].rest, **far_order(9))
            async with s.post(url, headers=h) as r:
                assert (await r.json())["code"] == 30016
            assert not sim.trading.engine("mexc_spot").orders             # nothing was placed
            url, h = mexc_req(sim.urls["mexc_spot"].rest, **far_order(3))
            async with s.post(url, headers=h) as r:
                assert r.status == 200                                   # disarmed after n
            gv = sim.venue("gateio_spot")
            gv.faults.reject_orders(1)
            url, raw, h = gate_req(sim.urls["gateio_spot"].rest, {"currency_pair": "BTC_USDT", "side": "buy",
                                                                   "amount": "0.01", "price": "1000"})
            async with s.post(url, data=raw, headers=h) as r:
                assert (r.status, (await r.json())["label"]) == (400, "BALANCE_NOT_ENOUGH")
            assert not sim.trading.engine("gateio_spot").orders
    run(main())


def test_partial_fill_next_rest():
    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("mexc_spot")
            inst = v.instrument("BTCUSDT")
            ap, aq = v.book("BTCUSDT").best_ask()
            q = max(200, min(aq, 2000))
            v.faults.partial_fill_next(0.25)
            url, h = mexc_req(v.urls.rest, symbol="BTCUSDT", side="BUY", type="IMMEDIATE_OR_CANCEL",
                              quantity=inst.size_str(q), price=inst.price_str(ap), newClientOrderId="p1")
            async with s.post(url, headers=h) as r:
                assert r.status == 200
            o = sim.trading.engine("mexc_spot").by_client[(KEY, "p1")]
            assert o.filled == q // 4 and o.finish_as == "ioc"
            params = dict(symbol="BTCUSDT", origClientOrderId="p1", timestamp=int(time.time() * 1000))
            qs = urlencode(params)
            qs += "&signature=" + hmac.new(SECRET.encode(), qs.encode(), hashlib.sha256).hexdigest()
            async with s.get(v.urls.rest + "/api/v3/order?" + qs, headers={"X-MEXC-APIKEY": KEY}) as r:
                j = await r.json()
            assert j["status"] == "PARTIALLY_CANCELED" and j["executedQty"] == inst.size_str(q // 4)
    run(main())


def test_order_delay_timeout_and_5xx_rest():
    async def main():
        sim = make_sim()
        eng = sim.trading.engine("mexc_spot")
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("mexc_spot")
            base = v.urls.rest
            # late answer: the order exists before the answer arrives
            v.faults.order_delay(0.5)
            url, h = mexc_req(base, **far_order(1))
            t0 = time.monotonic()
            task = asyncio.ensure_future(s.post(url, headers=h))
            await asyncio.sleep(0.2)
            assert (KEY, "f1") in eng.by_client and not task.done()
            r = await task
            assert r.status == 200 and time.monotonic() - t0 >= 0.5
            r.release()
            # never answered: the client times out, the order exists
            v.faults.order_timeout(1)
            url, h = mexc_req(base, **far_order(2))
            with pytest.raises(asyncio.TimeoutError):
                async with s.post(url, headers=h, timeout=aiohttp.ClientTimeout(total=0.4)):
                    pass
            assert eng.by_client[(KEY, "f2")].is_open
            # dropped connection after accepting
            v.faults.order_timeout(1, drop=True)
            url, h = mexc_req(base, **far_order(3))
            with pytest.raises(aiohttp.ClientError):
                async with s.post(url, headers=h, timeout=aiohttp.ClientTimeout(total=T)):
                    pass
            assert eng.by_client[(KEY, "f3")].is_open
            # 5xx after placing: ambiguous for the client, the order is there
            v.faults.order_5xx(1, status=502)
            url, h = mexc_req(base, **far_order(4))
            async with s.post(url, headers=h) as r:
                assert r.status == 502
            assert eng.by_client[(KEY, "f4")].is_open
            # Gate REST too
            g = sim.venue("gateio_spot")
            g.faults.order_5xx(1)
            url, raw, h = gate_req(g.urls.rest, {"text": "t-g5", "currency_pair": "BTC_USDT", "side": "buy",
                                                  "amount": "0.01", "price": "1000"})
            async with s.post(url, data=raw, headers=h) as r:
                assert r.status == 503
            assert sim.trading.engine("gateio_spot").by_client[(KEY, "t-g5")].is_open
    run(main())


def _api(channel, param=None, req_id="r", login=False):
    t = int(time.time())
    payload = {"req_id": req_id}
    if login:
        payload.update(api_key=KEY, timestamp=str(t),
                       signature=hmac.new(SECRET.encode(), ("api\n%s\n\n%d" % (channel, t)).encode(),
                                          hashlib.sha512).hexdigest())
    else:
        payload["req_param"] = param
    return orjson.dumps({"time": t, "channel": channel, "event": "api", "payload": payload}).decode()


def test_ws_order_api_faults():
    async def main():
        sim = make_sim()
        eng = sim.trading.engine("gateio_spot")
        async with sim, aiohttp.ClientSession() as s:
            g = sim.venue("gateio_spot")
            order = {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.01", "price": "1000"}
            async with s.ws_connect(g.urls.ws) as ws:
                await ws.send_str(_api("spot.login", login=True))
                assert orjson.loads((await ws.receive(timeout=T)).data)["header"]["status"] == "200"
                # never answered, the order exists
                g.faults.order_timeout(1)
                await ws.send_str(_api("spot.order_place", dict(order, text="t-to"), "a"))
                with pytest.raises(asyncio.TimeoutError):
                    await ws.receive(timeout=0.4)
                assert eng.by_client[(KEY, "t-to")].is_open
                # 5xx: the ack, then status 500; the order exists
                g.faults.order_5xx(1)
                await ws.send_str(_api("spot.order_place", dict(order, text="t-5x"), "b"))
                assert orjson.loads((await ws.receive(timeout=T)).data)["ack"] is True
                m = orjson.loads((await ws.receive(timeout=T)).data)
                assert m["header"]["status"] == "500" and m["data"]["errs"]["label"] == "SERVER_ERROR"
                assert eng.by_client[(KEY, "t-5x")].is_open
                # late answer
                g.faults.order_delay(0.4)
                t0 = time.monotonic()
                await ws.send_str(_api("spot.order_place", dict(order, text="t-dl"), "c"))
                assert orjson.loads((await ws.receive(timeout=T)).data)["ack"] is True
                m = orjson.loads((await ws.receive(timeout=T)).data)
                assert m["data"]["result"]["text"] == "t-dl" and time.monotonic() - t0 >= 0.4
                # rejected
                g.faults.reject_orders(1, code="TOO_BUSY")
                await ws.send_str(_api("spot.order_place", dict(order, text="t-rj"), "d"))
                assert orjson.loads((await ws.receive(timeout=T)).data)["ack"] is True
                m = orjson.loads((await ws.receive(timeout=T)).data)
                assert m["data"]["errs"]["label"] == "TOO_BUSY" and (KEY, "t-rj") not in eng.by_client
                # dropped connection after accepting
                g.faults.order_timeout(1, drop=True)
                await ws.send_str(_api("spot.order_place", dict(order, text="t-dr"), "e"))
                m = await ws.receive(timeout=T)
                assert m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert eng.by_client[(KEY, "t-dr")].is_open
    run(main())


def _sub(channel, payload):
    t = int(time.time())
    sign = hmac.new(SECRET.encode(), ("channel=%s&event=subscribe&time=%d" % (channel, t)).encode(),
                    hashlib.sha512).hexdigest()
    return orjson.dumps({"time": t, "channel": channel, "event": "subscribe", "payload": payload,
                         "auth": {"method": "api_key", "KEY": KEY, "SIGN": sign}}).decode()


def test_private_stream_stall_queue_and_drop():
    async def main():
        sim = make_sim()
        eng = sim.trading.engine("gateio_spot")
        acct = sim.trading.account("gateio_spot", KEY)
        async with sim, aiohttp.ClientSession() as s:
            g = sim.venue("gateio_spot")
            async with s.ws_connect(g.urls.ws) as ws:
                await ws.send_str(_sub("spot.orders", ["BTC_USDT"]))
                assert orjson.loads((await ws.receive(timeout=T)).data)["result"]["status"] == "success"
                g.faults.private_stream_stall(0.5)
                eng.place(acct, "BTC_USDT", "buy", 10000, 10000, tif="gtc", client_id="t-q1")
                with pytest.raises(asyncio.TimeoutError):
                    await ws.receive(timeout=0.3)                  # held during the stall
                m = orjson.loads((await ws.receive(timeout=T)).data)  # delivered once it ends
                assert m["channel"] == "spot.orders" and m["result"][0]["text"] == "t-q1"
                g.faults.private_stream_stall(0.3, drop=True)
                eng.place(acct, "BTC_USDT", "buy", 10000, 10000, tif="gtc", client_id="t-q2")
                with pytest.raises(asyncio.TimeoutError):
                    await ws.receive(timeout=0.5)                  # dropped: never comes
                eng.place(acct, "BTC_USDT", "buy", 10000, 10000, tif="gtc", client_id="t-q3")
                m = orjson.loads((await ws.receive(timeout=T)).data)
                assert m["result"][0]["text"] == "t-q3"
    run(main())


def test_held_request_does_not_block_stop():
    """A request held by order_timeout is cut when the simulator stops (no shutdown wait)."""
    async def main():
        sim = make_sim()
        await sim.start()
        async with aiohttp.ClientSession() as s:
            sim.venue("mexc_spot").faults.order_timeout(1)
            url, h = mexc_req(sim.urls["mexc_spot"].rest, **far_order(1))
            task = asyncio.ensure_future(s.post(url, headers=h))
            for _ in range(100):
                if sim.trading.venue("mexc_spot").held:
                    break
                await asyncio.sleep(0.02)
            assert sim.trading.venue("mexc_spot").held
            t0 = time.monotonic()
            await sim.stop()
            assert time.monotonic() - t0 < 2.0
            with pytest.raises(aiohttp.ClientError):
                await asyncio.wait_for(task, T)
    run(main())

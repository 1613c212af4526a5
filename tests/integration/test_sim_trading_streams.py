"""Private streams and Gate's WebSocket order API on the simulator: pushes parse with our Cython parsers
into MSG_ORDER / MSG_FILL / MSG_BALANCE / MSG_API_RESPONSE and agree with REST order status."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import pathlib
import time
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from cexnode._core import feed as F
from cexnode._core import symbols as S
from cexnode._core.parsers.gateio_futures import GateFuturesParser
from cexnode._core.parsers.gateio_spot import GateSpotParser
from cexnode._core.parsers.mexc_spot import CollectSink, MexcSpotParser
from cexnode._core.parsers.recording import RecordingSink
from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator
from cexnode.sim.venues.mexc_spot import proto as mp

KEY, SECRET = "stream-key", "stream-secret"
T = 3.0
RES = pathlib.Path(__file__).resolve().parents[1] / "resources" / "mexc"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 25))


def make_sim():
    sim = ExchangeSimulator(SimConfig(seed=31, book_levels=10), clock="manual",
                            venues={"mexc_spot": ["BTC/USDT"], "gateio_spot": ["BTC/USDT"],
                                    "gateio_futures": ["BTC/USDT:USDT"]})
    for v in ("mexc_spot", "gateio_spot"):
        sim.trading.add_account(v, KEY, SECRET, {"USDT": "100000", "BTC": "2"})
    sim.trading.add_account("gateio_futures", KEY, SECRET, {"USDT": "100000"}, uid=16792411)
    return sim


def registry(sim):
    r = S.SymbolRegistry()
    for vname, v in sim.venues.items():
        for inst in v.instruments.values():
            spec = {"venue": vname, "symbol": inst.symbol, "venue_symbol": inst.venue_symbol,
                    "tick": str(inst.tick), "qty_step": str(inst.step)}
            if inst.is_futures:
                spec["quanto_multiplier"] = str(inst.multiplier)
            r.add_instrument(spec)
    return r.freeze()


async def mexc_call(s, base, method, path, **params):
    params["timestamp"] = int(time.time() * 1000)
    q = urlencode(params)
    q += "&signature=" + hmac.new(SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
    async with s.request(method, base + path + "?" + q, headers={"X-MEXC-APIKEY": KEY}) as r:
        return r.status, await r.json()


async def gate_call(s, base, method, path, query="", body=None):
    raw = orjson.dumps(body) if body is not None else b""
    ts = str(int(time.time()))
    msg = "\n".join([method, path, query, hashlib.sha512(raw).hexdigest(), ts])
    hdr = {"KEY": KEY, "Timestamp": ts, "SIGN": hmac.new(SECRET.encode(), msg.encode(), hashlib.sha512).hexdigest(),
           "Content-Type": "application/json"}
    async with s.request(method, base + path + ("?" + query if query else ""), data=raw, headers=hdr) as r:
        return r.status, await r.json()


def gate_sub(channel, payload, event="subscribe"):
    t = int(time.time())
    sign = hmac.new(SECRET.encode(), ("channel=%s&event=%s&time=%d" % (channel, event, t)).encode(),
                    hashlib.sha512).hexdigest()
    return orjson.dumps({"time": t, "channel": channel, "event": event, "payload": payload,
                         "auth": {"method": "api_key", "KEY": KEY, "SIGN": sign}}).decode()


async def collect(ws, until, limit=200):
    """Frames until ``until(frames)`` is true (bounded)."""
    frames = []
    for _ in range(limit):
        if until(frames):
            return frames
        m = await ws.receive(timeout=T)
        assert m.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), m
        frames.append(m)
    raise AssertionError("condition not met")


@pytest.mark.parametrize("name", ["ws_private_orders", "ws_private_deals", "ws_private_account"])
def test_private_samples_round_trip(name):
    frame = bytes.fromhex((RES / (name + ".pb.hex")).read_text().strip())
    dec = json.loads((RES / (name + ".decoded.json")).read_text())
    assert mp.decode_push(frame) == dec
    body = next(k for k in dec if k in mp.BODY_FIELDS)
    assert mp.encode_push(dec["channel"], dec.get("symbol"), body, dec[body], send_time=dec.get("sendTime"),
                          create_time=dec.get("createTime")) == frame


def test_mexc_private_streams_agree_with_rest():
    async def main():
        sim = make_sim()
        reg = registry(sim)
        async with sim, aiohttp.ClientSession() as s:
            base = sim.urls["mexc_spot"].rest
            v = sim.venue("mexc_spot")
            inst = v.instrument("BTCUSDT")
            st, lk = await mexc_call(s, base, "POST", "/api/v3/userDataStream")
            async with s.ws_connect(sim.urls["mexc_spot"].ws + "?listenKey=" + lk["listenKey"]) as ws:
                topics = ["spot@private.orders.v3.api.pb", "spot@private.deals.v3.api.pb",
                          "spot@private.account.v3.api.pb"]
                await ws.send_str(orjson.dumps({"method": "SUBSCRIPTION", "params": topics, "id": 3}).decode())
                ack = orjson.loads((await ws.receive(timeout=T)).data)
                assert ack == {"id": 3, "code": 0, "msg": ",".join(topics)}
                ap, aq = v.book("BTCUSDT").best_ask()
                q = min(aq, 3000)
                st, o = await mexc_call(s, base, "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY",
                                        type="IMMEDIATE_OR_CANCEL", quantity=inst.size_str(q),
                                        price=inst.price_str(ap), newClientOrderId="cid7")
                assert st == 200
                sink = CollectSink()
                parser = MexcSpotParser(reg.map("mexc_spot"), sink)

                def done(fr):
                    for f in fr[len(done.seen):]:
                        assert f.type == aiohttp.WSMsgType.BINARY
                        parser.feed_bytes(f.data, True, 1)
                    done.seen = list(fr)
                    orders = [m for _, k, m in sink.events if k == F.MSG_ORDER]
                    return any(m["status"] == "filled" for m in orders) and \
                        any(k == F.MSG_FILL for _, k, _ in sink.events) and \
                        sum(1 for _, k, _ in sink.events if k == F.MSG_BALANCE) >= 2
                done.seen = []
                await collect(ws, done)
                st, rest = await mexc_call(s, base, "GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="cid7")
                orders = [m for _, k, m in sink.events if k == F.MSG_ORDER]
                fills = [m for _, k, m in sink.events if k == F.MSG_FILL]
                bals = {m["asset"]: m for _, k, m in sink.events if k == F.MSG_BALANCE}
                assert orders[0]["status"] == "new" and orders[-1]["status"] == "filled"
                last = orders[-1]
                assert last["order_id"] == rest["orderId"] and last["client_order_id"] == "cid7"
                assert last["filled_qty"] == rest["executedQty"] == inst.size_str(q)
                assert Decimal(last["filled_amount"]) == Decimal(rest["cummulativeQuoteQty"])
                assert last["side"] == "buy" and last["symbol"] == "BTC/USDT" and last["order_type"] == "IOC"
                assert sum(Decimal(f["qty"]) for f in fills) == Decimal(rest["executedQty"])
                assert all(f["order_id"] == rest["orderId"] and f["fee_currency"] == "BTC" for f in fills)
                st, acc = await mexc_call(s, base, "GET", "/api/v3/account")
                for b in acc["balances"]:
                    if b["asset"] in bals:
                        assert Decimal(bals[b["asset"]]["free"]) == Decimal(b["free"])
                        assert Decimal(bals[b["asset"]]["frozen"]) == Decimal(b["locked"])
            # an unknown listenKey cannot subscribe
            async with s.ws_connect(sim.urls["mexc_spot"].ws + "?listenKey=nope") as ws:
                await ws.send_str(orjson.dumps({"method": "SUBSCRIPTION", "params": topics[:1]}).decode())
                m = orjson.loads((await ws.receive(timeout=T)).data)
                assert "Blocked" in m["msg"] and m["code"] == 0
    run(main())


def test_mexc_listen_key_expiry_and_keepalive():
    async def main():
        sim = make_sim()
        sim.trading.venue("mexc_spot").listen_key_ttl_s = 0.6
        async with sim, aiohttp.ClientSession() as s:
            base = sim.urls["mexc_spot"].rest
            st, lk = await mexc_call(s, base, "POST", "/api/v3/userDataStream")
            key = lk["listenKey"]
            async with s.ws_connect(sim.urls["mexc_spot"].ws + "?listenKey=" + key) as ws:
                await ws.send_str('{"method":"SUBSCRIPTION","params":["spot@private.orders.v3.api.pb"]}')
                assert orjson.loads((await ws.receive(timeout=T)).data)["msg"] == "spot@private.orders.v3.api.pb"
                await asyncio.sleep(0.4)
                st, _ = await mexc_call(s, base, "PUT", "/api/v3/userDataStream", listenKey=key)
                assert st == 200
                await asyncio.sleep(0.4)               # 0.8 s after creation: alive thanks to the PUT
                st, ls = await mexc_call(s, base, "GET", "/api/v3/userDataStream")
                assert ls["listenKey"] == [key] and not ws.closed
                m = await ws.receive(timeout=T)       # expiry closes the connection
                assert m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            st, e = await mexc_call(s, base, "PUT", "/api/v3/userDataStream", listenKey=key)
            assert (st, e["code"]) == (400, -1125)
            # at most 5 connections per listenKey
            sim.trading.venue("mexc_spot").listen_key_ttl_s = 60
            st, lk = await mexc_call(s, base, "POST", "/api/v3/userDataStream")
            url = sim.urls["mexc_spot"].ws + "?listenKey=" + lk["listenKey"]
            conns = []
            try:
                for i in range(6):
                    ws = await s.ws_connect(url)
                    conns.append(ws)
                    await ws.send_str('{"method":"SUBSCRIPTION","params":["spot@private.deals.v3.api.pb"]}')
                    msg = orjson.loads((await ws.receive(timeout=T)).data)["msg"]
                    assert ("Blocked" in msg) == (i == 5), (i, msg)
            finally:
                for ws in conns:
                    await ws.close()
    run(main())


def test_gate_spot_private_channels_agree_with_rest():
    async def main():
        sim = make_sim()
        reg = registry(sim)
        async with sim, aiohttp.ClientSession() as s:
            base = sim.urls["gateio_spot"].rest
            v = sim.venue("gateio_spot")
            inst = v.instrument("BTC_USDT")
            async with s.ws_connect(sim.urls["gateio_spot"].ws) as ws:
                for ch, pl in [("spot.orders", ["BTC_USDT"]), ("spot.usertrades", ["!all"]), ("spot.balances", [])]:
                    await ws.send_str(gate_sub(ch, pl))
                    ack = orjson.loads((await ws.receive(timeout=T)).data)
                    assert ack["channel"] == ch and ack["result"] == {"status": "success"}, ack
                bp, bq = v.book("BTC_USDT").best_bid()
                q = min(bq, 4000)
                st, o = await gate_call(s, base, "POST", "/api/v4/spot/orders",
                                        body={"text": "t-s1", "currency_pair": "BTC_USDT", "side": "sell",
                                              "amount": inst.size_str(q), "price": inst.price_str(bp),
                                              "time_in_force": "ioc"})
                assert st == 201
                sink = RecordingSink()
                parser = GateSpotParser(reg.map("gateio_spot"), sink)

                def kinds():
                    return [e[2] for e in sink.events]

                def done(fr):
                    for f in fr[len(done.seen):]:
                        parser.feed_bytes(f.data.encode(), False, 1)
                    done.seen = list(fr)
                    orders = [e[3] for e in sink.events if e[2] == F.MSG_ORDER]
                    return any(m["event"] == "finish" for m in orders) and F.MSG_FILL in kinds() \
                        and kinds().count(F.MSG_BALANCE) >= 2
                done.seen = []
                await collect(ws, done)
                st, rest = await gate_call(s, base, "GET", "/api/v4/spot/orders/t-s1", "currency_pair=BTC_USDT")
                orders = [e[3] for e in sink.events if e[2] == F.MSG_ORDER]
                assert [m["event"] for m in orders][0] == "put" and orders[-1]["event"] == "finish"
                fin = orders[-1]
                assert fin["id"] == rest["id"] and fin["client_id"] == "t-s1" and fin["finish_as"] == "filled"
                assert fin["left"] == rest["left"] == "0" and fin["filled_total"] == rest["filled_total"]
                assert fin["raw"]["user"] == sim.trading.account("gateio_spot", KEY).uid
                fills = [e[3] for e in sink.events if e[2] == F.MSG_FILL]
                assert sum(Decimal(f["qty"]) for f in fills) == Decimal(rest["filled_amount"])
                assert all(f["order_id"] == rest["id"] and f["role"] == "taker" for f in fills)
                bals = {e[3]["currency"]: e[3] for e in sink.events if e[2] == F.MSG_BALANCE}
                st, acc = await gate_call(s, base, "GET", "/api/v4/spot/accounts")
                for a in acc:
                    if a["currency"] in bals:
                        assert Decimal(bals[a["currency"]]["available"]) == Decimal(a["available"])
                # no auth: refused with code 4
                await ws.send_str(orjson.dumps({"time": int(time.time()), "channel": "spot.orders",
                                                "event": "subscribe", "payload": ["BTC_USDT"]}).decode())
                m = orjson.loads((await ws.receive(timeout=T)).data)
                assert m["error"]["code"] == 4
    run(main())


def test_gate_futures_private_channels_user_id_first():
    async def main():
        sim = make_sim()
        reg = registry(sim)
        async with sim, aiohttp.ClientSession() as s:
            base = sim.urls["gateio_futures"].rest
            v = sim.venue("gateio_futures")
            inst = v.instrument("BTC_USDT")
            async with s.ws_connect(sim.urls["gateio_futures"].ws) as ws:
                await ws.send_str(gate_sub("futures.orders", ["123", "BTC_USDT"]))
                assert orjson.loads((await ws.receive(timeout=T)).data)["error"]["code"] == 2   # not our user id
                for ch, pl in [("futures.orders", ["16792411", "BTC_USDT"]), ("futures.usertrades", ["16792411", "!all"]),
                               ("futures.balances", ["16792411"]), ("futures.positions", ["16792411", "BTC_USDT"])]:
                    await ws.send_str(gate_sub(ch, pl))
                    ack = orjson.loads((await ws.receive(timeout=T)).data)
                    assert ack["result"] == {"status": "success"} and ack["payload"] == pl, ack
                ap, aq = v.book("BTC_USDT").best_ask()
                n = min(aq, 9)
                st, o = await gate_call(s, base, "POST", "/api/v4/futures/usdt/orders",
                                        body={"contract": "BTC_USDT", "size": n, "price": inst.price_str(ap),
                                              "tif": "ioc", "text": "t-fut"})
                assert st == 201
                sink = RecordingSink()
                parser = GateFuturesParser(reg.map("gateio_futures"), sink)
                raw = []

                def done(fr):
                    for f in fr[len(done.seen):]:
                        parser.feed_bytes(f.data.encode(), False, 1)
                        raw.append(orjson.loads(f.data))
                    done.seen = list(fr)
                    orders = [e[3] for e in sink.events if e[2] == F.MSG_ORDER]
                    return any(m["status"] == "finished" for m in orders) and \
                        any(e[2] == F.MSG_FILL for e in sink.events) and \
                        any(e[2] == F.MSG_BALANCE for e in sink.events) and \
                        any(r["channel"] == "futures.positions" for r in raw)
                done.seen = []
                await collect(ws, done)
                st, rest = await gate_call(s, base, "GET", "/api/v4/futures/usdt/orders/t-fut")
                fin = [e[3] for e in sink.events if e[2] == F.MSG_ORDER][-1]
                assert fin["id"] == str(rest["id"]) and fin["raw"]["id"] == rest["id"] and fin["finish_as"] == "filled"
                assert fin["side"] == "buy" and fin["qty"] == str(n) and fin["symbol"] == "BTC_USDT"
                fills = [e[3] for e in sink.events if e[2] == F.MSG_FILL]
                assert sum(int(f["qty"]) for f in fills) == n
                bal = [e[3] for e in sink.events if e[2] == F.MSG_BALANCE][-1]
                st, acc = await gate_call(s, base, "GET", "/api/v4/futures/usdt/accounts")
                assert Decimal(bal["total"]) == Decimal(acc["total"])
                pos = [r for r in raw if r["channel"] == "futures.positions"][-1]["result"][0]
                assert pos["size"] == n and pos["user"] == 16792411
    run(main())


def _api(channel, param=None, req_id="r1", login=False):
    t = int(time.time())
    payload = {"req_id": req_id}
    if login:
        payload.update(api_key=KEY, timestamp=str(t),
                       signature=hmac.new(SECRET.encode(), ("api\n%s\n\n%d" % (channel, t)).encode(),
                                          hashlib.sha512).hexdigest())
    else:
        payload["req_param"] = param
    return orjson.dumps({"time": t, "channel": channel, "event": "api", "payload": payload}).decode()


def test_gate_ws_order_api_spot_and_futures():
    async def main():
        sim = make_sim()
        reg = registry(sim)
        async with sim, aiohttp.ClientSession() as s:
            for venue, prefix, parser_cls in [("gateio_spot", "spot", GateSpotParser),
                                              ("gateio_futures", "futures", GateFuturesParser)]:
                v = sim.venue(venue)
                inst = v.instrument("BTC_USDT")
                sink = RecordingSink()
                parser = parser_cls(reg.map(venue), sink)

                async def recv():
                    m = await ws.receive(timeout=T)
                    n = len(sink.events)
                    parser.feed_bytes(m.data.encode(), False, 1)
                    assert len(sink.events) == n + 1 and sink.events[-1][2] == F.MSG_API_RESPONSE
                    return sink.events[-1][3]

                async with s.ws_connect(sim.urls[venue].ws) as ws:
                    ap, aq = v.book("BTC_USDT").best_ask()
                    if prefix == "spot":
                        place = {"text": "t-w1", "currency_pair": "BTC_USDT", "type": "limit", "account": "spot",
                                 "side": "buy", "amount": inst.size_str(min(aq, 100)), "price": inst.price_str(ap),
                                 "time_in_force": "ioc"}
                        rest_order = {"text": "t-w2", "currency_pair": "BTC_USDT", "side": "buy", "amount": "0.01",
                                      "price": "1000"}
                    else:
                        place = {"contract": "BTC_USDT", "size": min(aq, 2), "price": inst.price_str(ap), "tif": "ioc",
                                 "text": "t-w1"}
                        rest_order = {"contract": "BTC_USDT", "size": 1, "price": "1000", "tif": "gtc", "text": "t-w2"}
                    # not logged in
                    await ws.send_str(_api(prefix + ".order_place", place, "r0"))
                    m = await recv()
                    assert m["status"] == "401" and not m["ok"] and m["request_id"] == "r0"
                    # bad login signature, then a good one
                    bad = orjson.loads(_api(prefix + ".login", login=True))
                    sig = bad["payload"]["signature"]
                    bad["payload"]["signature"] = ("1" if sig[0] == "0" else "0") + sig[1:]   # always differs
                    await ws.send_str(orjson.dumps(bad).decode())
                    m = await recv()
                    assert m["status"] == "401" and m["error"]["label"] == "INVALID_SIGNATURE"
                    await ws.send_str(_api(prefix + ".login", login=True, req_id="login"))
                    m = await recv()
                    assert m["ok"] and m["result"]["api_key"] == KEY and m["result"]["uid"]
                    # order_place: the ack echoes the request, then the result
                    await ws.send_str(_api(prefix + ".order_place", place, "r1"))
                    ack = await recv()
                    assert ack["ack"] is True and ack["ok"] and ack["result"]["req_param"] == place
                    res = await recv()
                    assert res["ack"] is False and res["ok"] and res["request_id"] == "r1"
                    order = res["result"]
                    assert order["text"] == "t-w1" and order["finish_as"] == "filled"
                    await ws.send_str(_api(prefix + ".order_place", rest_order, "r2"))
                    await recv()
                    resting = (await recv())["result"]
                    assert resting["status"] == "open"
                    # order_status by id and by text; order_cancel
                    sp = {"order_id": str(order["id"])}
                    cp = {"order_id": "t-w2"}
                    if prefix == "spot":
                        sp["currency_pair"] = cp["currency_pair"] = "BTC_USDT"
                    await ws.send_str(_api(prefix + ".order_status", sp, "r3"))
                    st = await recv()
                    assert st["ok"] and st["result"]["id"] == order["id"] and st["result"]["finish_as"] == "filled"
                    await ws.send_str(_api(prefix + ".order_cancel", cp, "r4"))
                    c = await recv()
                    assert c["ok"] and c["result"]["finish_as"] == "cancelled" and c["result"]["id"] == resting["id"]
                    await ws.send_str(_api(prefix + ".order_cancel", cp, "r5"))
                    c = await recv()
                    assert not c["ok"] and c["status"] == "400"
                    await ws.send_str(_api(prefix + ".order_status", dict(sp, order_id="999"), "r6"))
                    c = await recv()
                    assert c["status"] == "404" and c["error"]["label"] == "ORDER_NOT_FOUND"
                    # a rejected order: ack, then the error
                    bad_order = dict(place, price="0.00001") if prefix == "spot" else dict(place, contract="NOPE")
                    await ws.send_str(_api(prefix + ".order_place", bad_order, "r7"))
                    assert (await recv())["ack"] is True
                    e = await recv()
                    assert e["status"] == "400" and e["error"]["label"] in ("INVALID_PRECISION", "CONTRACT_NOT_FOUND")
                    # x-gate-exptime in the past: refused, nothing placed
                    n_orders = len(sim.trading.engine(venue).orders)
                    req = orjson.loads(_api(prefix + ".order_place", dict(place, text="t-exp"), "r8"))
                    req["payload"]["req_header"] = {"x-gate-exptime": str(int(time.time() * 1000) - 1000)}
                    await ws.send_str(orjson.dumps(req).decode())
                    e = await recv()
                    assert e["error"]["label"] == "REQUEST_EXPIRED" and len(sim.trading.engine(venue).orders) == n_orders
    run(main())

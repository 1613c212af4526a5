"""Simulator order/account REST endpoints of the three venues, over loopback with a plain aiohttp
client and a tiny signing helper (written here from the venue rules, not the client adapters)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import orjson

from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator

KEY, SECRET = "test-key", "test-secret"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def make_sim(**bal):
    sim = ExchangeSimulator(SimConfig(seed=21, book_levels=10), clock="manual",
                            venues={"mexc_spot": ["BTC/USDT"], "gateio_spot": ["BTC/USDT"],
                                    "gateio_futures": ["BTC/USDT:USDT"]})
    sim.trading.add_account("mexc_spot", KEY, SECRET, bal.get("mexc", {"USDT": "100000", "BTC": "2"}))
    sim.trading.add_account("gateio_spot", KEY, SECRET, bal.get("gate", {"USDT": "100000", "BTC": "2"}))
    sim.trading.add_account("gateio_futures", KEY, SECRET, bal.get("fut", {"USDT": "100000"}))
    return sim


class Mexc:
    def __init__(self, s, base):
        self.s, self.base = s, base

    async def call(self, method, path, **params):
        params["timestamp"] = int(time.time() * 1000)
        q = urlencode(params)
        q += "&signature=" + hmac.new(SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
        async with self.s.request(method, self.base + path + "?" + q, headers={"X-MEXC-APIKEY": KEY}) as r:
            return r.status, await r.json()


class Gate:
    def __init__(self, s, base, prefix):
        self.s, self.base, self.prefix = s, base, prefix

    async def call(self, method, path, query="", body=None, headers=None):
        raw = orjson.dumps(body) if body is not None else b""
        path = self.prefix + path
        ts = str(int(time.time()))
        msg = "\n".join([method, path, query, hashlib.sha512(raw).hexdigest(), ts])
        hdr = {"KEY": KEY, "Timestamp": ts, "SIGN": hmac.new(SECRET.encode(), msg.encode(), hashlib.sha512).hexdigest(),
               "Content-Type": "application/json", **(headers or {})}
        async with self.s.request(method, self.base + path + ("?" + query if query else ""), data=raw, headers=hdr) as r:
            return r.status, await r.json()


def test_mexc_order_endpoints():
    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            mx = Mexc(s, sim.urls["mexc_spot"].rest)
            v = sim.venue("mexc_spot")
            inst = v.instrument("BTCUSDT")
            book = v.book("BTCUSDT")
            ask_px, ask_q = book.best_ask()
            # IOC buy at the best ask, for less than the level: complete fill
            st, ack = await mx.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="IMMEDIATE_OR_CANCEL",
                                    quantity=inst.size_str(1000), price=inst.price_str(ask_px), newClientOrderId="c1")
            assert st == 200 and set(ack) == {"symbol", "orderId", "orderListId", "price", "origQty", "type", "side",
                                               "transactTime"}
            st, o = await mx.call("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="c1")
            assert st == 200 and o["status"] == "FILLED" and o["executedQty"] == inst.size_str(1000)
            assert o["orderId"] == ack["orderId"] and o["clientOrderId"] == "c1" and o["timeInForce"] == "IOC"
            assert Decimal(o["cummulativeQuoteQty"]) == inst.size(1000) * inst.price(ask_px)
            st, o2 = await mx.call("GET", "/api/v3/order", symbol="BTCUSDT", orderId=ack["orderId"])
            assert o2 == o
            # a resting limit far below the market, listed in openOrders, then cancelled
            st, ack = await mx.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                                    quantity="0.01", price="100.00", newClientOrderId="c2")
            assert st == 200
            st, oo = await mx.call("GET", "/api/v3/openOrders", symbol="BTCUSDT")
            assert [x["clientOrderId"] for x in oo] == ["c2"] and oo[0]["status"] == "NEW"
            st, acc = await mx.call("GET", "/api/v3/account")
            usdt = next(b for b in acc["balances"] if b["asset"] == "USDT")
            assert usdt["locked"] == "1" and acc["accountType"] == "SPOT" and acc["canTrade"] is True
            st, c = await mx.call("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="c2")
            assert st == 200 and c["status"] == "CANCELED" and c["origClientOrderId"] == "c2"
            st, e = await mx.call("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="c2")
            assert (st, e["code"]) == (400, -2011)
            st, e = await mx.call("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="nope")
            assert (st, e["code"]) == (400, -2013)
            st, e = await mx.call("GET", "/api/v3/order", symbol="BTCUSDT")
            assert e["code"] == 700004
            # validation: precision, minimum notional, balance, symbol
            for params, code in [(dict(quantity="0.0000001", price="100.00"), 400),
                                 (dict(quantity="0.001", price="100.001"), 400),
                                 (dict(quantity="0.001", price="100.00"), 30002),         # 0.1 USDT < 1
                                 (dict(quantity="100", price="65000.00"), 30004)]:
                st, e = await mx.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", **params)
                assert (st, e["code"]) == (400, code), e
            st, e = await mx.call("POST", "/api/v3/order", symbol="XYZUSDT", side="BUY", type="LIMIT",
                                  quantity="1", price="1")
            assert e["code"] == 10007
            # userDataStream: create / keepalive / list / delete
            st, lk = await mx.call("POST", "/api/v3/userDataStream")
            assert st == 200 and len(lk["listenKey"]) == 64
            st, k2 = await mx.call("PUT", "/api/v3/userDataStream", listenKey=lk["listenKey"])
            assert k2 == lk
            st, ls = await mx.call("GET", "/api/v3/userDataStream")
            assert ls == {"listenKey": [lk["listenKey"]]}
            st, d = await mx.call("DELETE", "/api/v3/userDataStream", listenKey=lk["listenKey"])
            assert d == lk
            st, e = await mx.call("PUT", "/api/v3/userDataStream", listenKey=lk["listenKey"])
            assert st == 400 and e["code"] == -1125
            # REST faults apply to these routes too
            v.faults.rest_429(1, retry_after=2)
            st, e = await mx.call("GET", "/api/v3/account")
            assert st == 429
            v.faults.rest_5xx(1)
            st, _ = await mx.call("GET", "/api/v3/openOrders", symbol="BTCUSDT")
            assert st == 503
    run(main())


def test_gate_spot_order_endpoints():
    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            g = Gate(s, sim.urls["gateio_spot"].rest, "/api/v4/spot")
            v = sim.venue("gateio_spot")
            inst = v.instrument("BTC_USDT")
            bid_px, bid_q = v.book("BTC_USDT").best_bid()
            st, o = await g.call("POST", "/orders", body={"text": "t-abc1", "currency_pair": "BTC_USDT", "type": "limit",
                                                          "account": "spot", "side": "sell", "amount": inst.size_str(500),
                                                          "price": inst.price_str(bid_px), "time_in_force": "ioc"})
            assert st == 201 and o["status"] == "closed" and o["finish_as"] == "filled" and o["left"] == "0"
            assert o["text"] == "t-abc1" and o["fee_currency"] == "USDT"
            expect_quote = inst.size(500) * inst.price(bid_px)
            assert Decimal(o["filled_total"]) == expect_quote and Decimal(o["fee"]) == expect_quote * v.taker_fee
            for oid in (o["id"], "t-abc1"):
                st, q = await g.call("GET", "/orders/" + oid, "currency_pair=BTC_USDT")
                assert st == 200 and q["id"] == o["id"] and q["finish_as"] == "filled"
            st, acc = await g.call("GET", "/accounts")
            bal = {a["currency"]: a for a in acc}
            assert Decimal(bal["BTC"]["available"]) == Decimal(2) - inst.size(500)
            assert Decimal(bal["USDT"]["available"]) == Decimal(100000) + expect_quote * (1 - v.taker_fee)
            # resting, cancelled; cancelling again says it is already cancelled
            st, o = await g.call("POST", "/orders", body={"text": "t-rest", "currency_pair": "BTC_USDT", "side": "buy",
                                                          "amount": "0.01", "price": "1000"})
            assert st == 201 and o["status"] == "open" and o["finish_as"] == "open"
            st, lst = await g.call("GET", "/orders", "currency_pair=BTC_USDT&status=open")
            assert st == 200 and [x["text"] for x in lst] == ["t-rest"]
            st, fin = await g.call("GET", "/orders", "currency_pair=BTC_USDT&status=finished")
            assert [x["text"] for x in fin] == ["t-abc1"]
            st, oo = await g.call("GET", "/open_orders")
            assert oo[0]["currency_pair"] == "BTC_USDT" and [x["text"] for x in oo[0]["orders"]] == ["t-rest"]
            st, c = await g.call("DELETE", "/orders/t-rest", "currency_pair=BTC_USDT")
            assert st == 200 and c["status"] == "cancelled" and c["finish_as"] == "cancelled"
            st, e = await g.call("DELETE", "/orders/t-rest", "currency_pair=BTC_USDT")
            assert (st, e["label"]) == (400, "ORDER_CANCELLED")
            st, e = await g.call("GET", "/orders/123", "currency_pair=BTC_USDT")
            assert (st, e["label"]) == (404, "ORDER_NOT_FOUND")
            for body, label in [({"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.0000001", "price": "1000"},
                                 "INVALID_PRECISION"),
                                ({"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001", "price": "1000"},
                                 "AMOUNT_TOO_LITTLE"),
                                ({"currency_pair": "BTC_USDT", "side": "buy", "amount": "10", "price": "60000"},
                                 "BALANCE_NOT_ENOUGH"),
                                ({"currency_pair": "NOPE_USDT", "side": "buy", "amount": "1", "price": "1"},
                                 "INVALID_CURRENCY_PAIR"),
                                ({"text": "abc", "currency_pair": "BTC_USDT", "side": "buy", "amount": "1", "price": "1"},
                                 "INVALID_PARAM_VALUE")]:
                st, e = await g.call("POST", "/orders", body=body)
                assert (st, e["label"]) == (400, label), e
    run(main())


def test_gate_futures_order_endpoints():
    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            g = Gate(s, sim.urls["gateio_futures"].rest, "/api/v4/futures/usdt")
            v = sim.venue("gateio_futures")
            inst = v.instrument("BTC_USDT")
            bid_px, bid_q = v.book("BTC_USDT").best_bid()
            n = min(bid_q, 5)
            st, o = await g.call("POST", "/orders", body={"contract": "BTC_USDT", "size": -n,
                                                          "price": inst.price_str(bid_px), "tif": "ioc", "text": "t-f1"})
            assert st == 201 and o["status"] == "finished" and o["finish_as"] == "filled" and o["size"] == -n
            assert o["left"] == 0 and o["fill_price"] == inst.price_str(bid_px) and o["id"] > 2 ** 53
            st, pos = await g.call("GET", "/positions/BTC_USDT")
            assert st == 200 and pos["size"] == -n and Decimal(pos["entry_price"]) == inst.price(bid_px)
            st, acc = await g.call("GET", "/accounts")
            notional = inst.base_qty(n) * inst.price(bid_px)
            assert Decimal(acc["total"]) == Decimal(100000) - notional * v.taker_fee
            assert Decimal(acc["position_margin"]) == notional / 10
            assert Decimal(acc["available"]) == Decimal(acc["total"]) - Decimal(acc["position_margin"])
            st, q = await g.call("GET", "/orders/t-f1")
            assert q["id"] == o["id"]
            # decimal sizes header: sizes become strings
            st, q = await g.call("GET", "/orders/%d" % o["id"], headers={"X-Gate-Size-Decimal": "1"})
            assert q["size"] == "-%d" % n
            # resting order, open list, cancel
            st, r = await g.call("POST", "/orders", body={"contract": "BTC_USDT", "size": -3, "price": "100000",
                                                          "tif": "gtc"})
            assert st == 201 and r["status"] == "open" and r["left"] == -3
            st, lst = await g.call("GET", "/orders", "contract=BTC_USDT&status=open")
            assert [x["id"] for x in lst] == [r["id"]]
            st, acc = await g.call("GET", "/accounts")
            # adding to the short: margin for the whole order
            assert Decimal(acc["order_margin"]) == inst.base_qty(3) * Decimal(100000) / 10
            st, c = await g.call("DELETE", "/orders/%d" % r["id"])
            assert c["finish_as"] == "cancelled" and c["status"] == "finished"
            st, e = await g.call("DELETE", "/orders/%d" % r["id"])
            assert (st, e["label"]) == (400, "ORDER_FINISHED")
            st, e = await g.call("POST", "/orders", body={"contract": "BTC_USDT", "size": 10 ** 9, "price": "60000",
                                                          "tif": "gtc"})
            assert (st, e["label"]) == (400, "INSUFFICIENT_AVAILABLE")
            st, e = await g.call("POST", "/orders", body={"contract": "NOPE_USDT", "size": 1, "price": "1"})
            assert e["label"] == "CONTRACT_NOT_FOUND"
            # close the position with close=true, size 0, market ioc
            st, o = await g.call("POST", "/orders", body={"contract": "BTC_USDT", "size": 0, "close": True, "price": "0",
                                                          "tif": "ioc"})
            assert st == 201 and o["size"] == n and o["is_close"] is True
            st, pos = await g.call("GET", "/positions")
            assert pos[0]["size"] == 0
    run(main())


def test_accounts_from_config(monkeypatch):
    """venues.<v>.api_key/api_secret (Secrets from ${ENV}) + sim.balances register the sim accounts."""
    from cexnode.config import load_config_text
    monkeypatch.setenv("SIMT_KEY", "cfg-key")
    monkeypatch.setenv("SIMT_SECRET", "cfg-secret")
    cfg = load_config_text("""
venues:
  gateio_spot:
    symbols: [BTC/USDT]
    api_key: ${SIMT_KEY}
    api_secret: ${SIMT_SECRET}
  mexc_spot:
    symbols: [BTC/USDT]
    api_key: ${SIMT_KEY}
    api_secret: ${SIMT_SECRET}
sim:
  balances:
    gateio_spot: {USDT: 500, BTC: 0.1}
""")
    sim = ExchangeSimulator(cfg, clock="manual")
    a = sim.trading.account("gateio_spot", "cfg-key")
    assert a.secret == "cfg-secret"
    assert {k: b.available for k, b in a.balances.items()} == {"USDT": Decimal(500), "BTC": Decimal("0.1")}
    m = sim.trading.account("mexc_spot", "cfg-key")               # no sim.balances entry: the defaults
    assert m.balances["USDT"].available == Decimal(100000) and m.balances["BTC"].available > 0


def test_fills_are_public_diffs_and_my_trades():
    """An IOC that eats book levels is published as an ordinary diff (+ public trades) that continues
    the id sequence, the REST snapshot agrees, and the fills are listed by the my-trades endpoints."""
    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("gateio_spot")
            inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
            g = Gate(s, v.urls.rest, "/api/v4/spot")
            async with s.ws_connect(v.urls.ws) as ws:
                for ch, pl in (("spot.order_book_update", ["BTC_USDT", "100ms"]), ("spot.trades", ["BTC_USDT"])):
                    await ws.send_str(orjson.dumps({"time": int(time.time()), "channel": ch, "event": "subscribe",
                                                    "payload": pl}).decode())
                    assert orjson.loads((await ws.receive(timeout=3)).data)["result"]["status"] == "success"
                async with s.get(v.urls.rest + "/api/v4/spot/order_book?currency_pair=BTC_USDT&limit=100&with_id=true") as r:
                    snap = await r.json()
                (p0, q0), (p1, q1) = book.top()[1][:2]
                st, o = await g.call("POST", "/orders", body={"text": "t-pub", "currency_pair": "BTC_USDT", "side": "buy",
                                                              "amount": inst.size_str(q0 + 1), "price": inst.price_str(p1),
                                                              "time_in_force": "ioc"})
                assert st == 201 and o["finish_as"] == "filled"
                got = {}
                while len(got) < 2:
                    m = orjson.loads((await ws.receive(timeout=3)).data)
                    got.setdefault(m["channel"], []).append(m["result"])
                upd = got["spot.order_book_update"][0]
                assert upd["U"] == snap["id"] + 1
                assert upd["a"] == [[inst.price_str(p0), "0"], [inst.price_str(p1), inst.size_str(q1 - 1)]]
                trades = [t for t in got["spot.trades"]]
                assert trades[0]["side"] == "buy" and trades[0]["price"] == inst.price_str(p0)
                async with s.get(v.urls.rest + "/api/v4/spot/order_book?currency_pair=BTC_USDT&limit=100&with_id=true") as r:
                    snap2 = await r.json()
                assert snap2["id"] == upd["u"] and snap2["asks"][0] == [inst.price_str(p1), inst.size_str(q1 - 1)]
            st, mt = await g.call("GET", "/my_trades", "currency_pair=BTC_USDT")
            assert [(t["amount"], t["role"], t["order_id"]) for t in mt] == \
                [(inst.size_str(q0), "taker", o["id"]), (inst.size_str(1), "taker", o["id"])]
            mx = Mexc(s, sim.urls["mexc_spot"].rest)
            mv = sim.venue("mexc_spot")
            mi = mv.instrument("BTCUSDT")
            bp, bq = mv.book("BTCUSDT").best_bid()
            st, ack = await mx.call("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="IMMEDIATE_OR_CANCEL",
                                    quantity=mi.size_str(min(bq, 500)), price=mi.price_str(bp))
            st, mt = await mx.call("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=ack["orderId"])
            assert st == 200 and len(mt) == 1 and mt[0]["isBuyer"] is False and mt[0]["commissionAsset"] == "USDT"
            assert mt[0]["qty"] == mi.size_str(min(bq, 500)) and mt[0]["orderId"] == ack["orderId"]
            f = Gate(s, sim.urls["gateio_futures"].rest, "/api/v4/futures/usdt")
            fv = sim.venue("gateio_futures")
            fp, fq = fv.book("BTC_USDT").best_bid()
            st, fo = await f.call("POST", "/orders", body={"contract": "BTC_USDT", "size": -min(fq, 3),
                                                           "price": fv.instrument("BTC_USDT").price_str(fp), "tif": "ioc"})
            st, mt = await f.call("GET", "/my_trades", "contract=BTC_USDT&order=%d" % fo["id"])
            assert [t["size"] for t in mt] == [-min(fq, 3)] and mt[0]["order_id"] == str(fo["id"])
    run(main())


def test_cancel_all_endpoints():
    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            mx = Mexc(s, sim.urls["mexc_spot"].rest)
            for i in range(3):
                st, _ = await mx.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                                      quantity="0.01", price="100%d.00" % i, newClientOrderId="ca%d" % i)
                assert st == 200
            st, out = await mx.call("DELETE", "/api/v3/openOrders", symbol="BTCUSDT")
            assert st == 200 and sorted(o["clientOrderId"] for o in out) == ["ca0", "ca1", "ca2"]
            assert all(o["status"] == "CANCELED" for o in out)
            st, oo = await mx.call("GET", "/api/v3/openOrders", symbol="BTCUSDT")
            assert oo == []
            g = Gate(s, sim.urls["gateio_spot"].rest, "/api/v4/spot")
            for side, px in (("buy", "1000"), ("sell", "900000")):
                st, _ = await g.call("POST", "/orders", body={"currency_pair": "BTC_USDT", "side": side,
                                                              "amount": "0.01", "price": px})
                assert st == 201
            st, out = await g.call("DELETE", "/orders", "currency_pair=BTC_USDT&side=buy")
            assert [o["side"] for o in out] == ["buy"] and out[0]["status"] == "cancelled"
            st, out = await g.call("DELETE", "/orders", "currency_pair=BTC_USDT")
            assert [o["side"] for o in out] == ["sell"]
            f = Gate(s, sim.urls["gateio_futures"].rest, "/api/v4/futures/usdt")
            st, _ = await f.call("POST", "/orders", body={"contract": "BTC_USDT", "size": 2, "price": "1000", "tif": "gtc"})
            st, out = await f.call("DELETE", "/orders", "contract=BTC_USDT")
            assert st == 200 and [o["finish_as"] for o in out] == ["cancelled"]
            st, e = await f.call("DELETE", "/orders")
            assert (st, e["label"]) == (400, "MISSING_REQUIRED_PARAM")
    run(main())


def test_futures_decimal_contract_sizes():
    """With sim.futures_decimal_sizes, fractional contracts need X-Gate-Size-Decimal: 1 (venue rule)."""
    async def main():
        sim = ExchangeSimulator(SimConfig(seed=5, book_levels=10, futures_decimal_sizes=True), clock="manual",
                                venues={"gateio_futures": ["BTC/USDT:USDT"]})
        sim.trading.add_account("gateio_futures", KEY, SECRET, {"USDT": "100000"})
        async with sim, aiohttp.ClientSession() as s:
            g = Gate(s, sim.urls["gateio_futures"].rest, "/api/v4/futures/usdt")
            body = {"contract": "BTC_USDT", "size": "1.5", "price": "1000", "tif": "gtc"}
            st, e = await g.call("POST", "/orders", body=body)
            assert (st, e["label"]) == (400, "INVALID_PARAM_VALUE")
            st, o = await g.call("POST", "/orders", body=body, headers={"X-Gate-Size-Decimal": "1"})
            assert st == 201 and o["size"] == "1.5" and o["left"] == "1.5"
            st, o2 = await g.call("GET", "/orders/%d" % o["id"])
            assert o2["size"] == 1                       # integers without the header: truncated toward zero
    run(main())

"""What third-party clients send and read, at the wire, with a plain aiohttp client: Gate's
``with_id`` spellings, the futures REST order schema, MEXC's lower-case ``ping``, the Gate
WebSocket API login signed over ``{}``, MEXC aggre depth batched to its interval, and the start-up
endpoints ccxt calls (shapes compared with the reference payloads in tests/resources).
ccxt itself drives the simulator in test_sim_ccxt.py."""
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

from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator
from cexnode.sim.venues.mexc_spot import proto as mp
from reference.sync_ref import RESYNC, Diff, RefSync

RES = pathlib.Path(__file__).resolve().parents[1] / "resources"
KEY, SECRET = "interop-key", "interop-secret"
UID = 7000002
T = 5.0
D = Decimal


def res(venue: str, name: str):
    return json.loads((RES / venue / name).read_text())


def run(coro, t: float = 30):
    asyncio.run(asyncio.wait_for(coro, t))


def make_sim(clock: str = "manual", **cfg) -> ExchangeSimulator:
    sim = ExchangeSimulator(SimConfig(seed=17, book_levels=20, **cfg), clock=clock,
                            venues={"mexc_spot": ["BTC/USDT"], "gateio_spot": ["BTC/USDT"],
                                    "gateio_futures": ["BTC/USDT:USDT"]})
    sim.trading.add_account("mexc_spot", KEY, SECRET, {"USDT": "100000", "BTC": "2"})
    sim.trading.add_account("gateio_spot", KEY, SECRET, {"USDT": "100000", "BTC": "2"}, uid=UID)
    sim.trading.add_account("gateio_futures", KEY, SECRET, {"USDT": "100000"}, uid=UID)
    return sim


async def gate_call(s, base, method, path, query="", body=None):
    """A Gate APIv4 signed request (KEY / Timestamp / SIGN over the raw query and the body)."""
    raw = orjson.dumps(body) if body is not None else b""
    ts = str(int(time.time()))
    msg = "\n".join([method, path, query, hashlib.sha512(raw).hexdigest(), ts])
    hdr = {"KEY": KEY, "Timestamp": ts, "SIGN": hmac.new(SECRET.encode(), msg.encode(), hashlib.sha512).hexdigest(),
           "Content-Type": "application/json"}
    async with s.request(method, base + path + ("?" + query if query else ""), data=raw, headers=hdr) as r:
        return r.status, await r.json()


async def mexc_call(s, base, method, path, **params):
    params["timestamp"] = int(time.time() * 1000)
    q = urlencode(params)
    q += "&signature=" + hmac.new(SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
    async with s.request(method, base + path + "?" + q, headers={"X-MEXC-APIKEY": KEY}) as r:
        return r.status, await r.json()


# ------------------------------------------------------------------------------------------ with_id

BOOKS = {"gateio_spot": ("/api/v4/spot/order_book", "currency_pair=BTC_USDT&limit=5"),
         "gateio_futures": ("/api/v4/futures/usdt/order_book", "contract=BTC_USDT&limit=5")}


@pytest.mark.parametrize("venue", list(BOOKS))
def test_with_id_is_honoured_or_refused_never_ignored(venue):
    """true → ``id``; false / absent → no ``id`` key (rest_order_book_with_id_false.json); Python's
    ``True``/``False`` (gate-api SDK) and other spellings → 400 INVALID_PARAM_VALUE with Gate's
    message (rest_error_invalid_param_with_id.json); ``sim.gate_python_bools`` accepts True/False."""
    path, q = BOOKS[venue]
    refused = res("gateio_spot", "rest_error_invalid_param_with_id.json")
    no_id = res("gateio_spot", "rest_order_book_with_id_false.json")

    async def main():
        for lenient in (False, True):
            sim = make_sim(gate_python_bools=lenient)
            async with sim, aiohttp.ClientSession() as s:
                base = sim.urls[venue].rest
                last = sim.venue(venue).book("BTC_USDT").last_id

                async def get(extra):
                    async with s.get(base + path + "?" + q + extra) as r:
                        return r.status, await r.json()
                st, b = await get("&with_id=true")
                assert st == 200 and b["id"] == last
                for extra in ("&with_id=false", ""):
                    st, b = await get(extra)
                    assert st == 200 and set(b) == set(no_id)
                for spelling, honoured in (("True", True), ("False", False)):
                    st, b = await get("&with_id=" + spelling)
                    if lenient:
                        assert st == 200 and ("id" in b) == honoured and b.get("id", last) == last
                    else:
                        assert st == 400 and b == dict(refused, message=refused["message"].replace("False", spelling))
                for spelling in ("1", "TRUE", "yes", ""):
                    st, b = await get("&with_id=" + spelling)
                    assert st == 400 and b["label"] == "INVALID_PARAM_VALUE" and "`with_id`" in b["message"]

    run(main())


# ------------------------------------------------------------------------------------------ finish_as

def test_futures_rest_orders_use_the_rest_schema():
    """Open futures orders over REST (and the WS API) carry no ``finish_as`` / ``finish_time``:
    the REST schema names only how a finished order ended; the ``futures.orders`` push keeps
    ``_new`` (ws_orders.json). Finished orders have the documented fields (rest_order_create_response)."""
    doc = res("gateio_futures", "rest_order_create_response.doc.json")
    push_doc = res("gateio_futures", "ws_orders.json")["result"][0]

    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("gateio_futures")
            base = sim.urls["gateio_futures"].rest
            book = v.book("BTC_USDT")
            inst = v.instrument("BTC_USDT")
            async with s.ws_connect(sim.urls["gateio_futures"].ws) as ws:
                t = int(time.time())
                sign = hmac.new(SECRET.encode(), ("channel=futures.orders&event=subscribe&time=%d" % t).encode(),
                                hashlib.sha512).hexdigest()
                await ws.send_json({"time": t, "channel": "futures.orders", "event": "subscribe",
                                    "payload": [str(UID), "BTC_USDT"],
                                    "auth": {"method": "api_key", "KEY": KEY, "SIGN": sign}})
                ack = orjson.loads((await ws.receive(timeout=T)).data)
                assert ack["result"] == {"status": "success"}
                far = inst.price_str(book.best_bid()[0] // 2)
                st, o = await gate_call(s, base, "POST", "/api/v4/futures/usdt/orders",
                                        body={"contract": "BTC_USDT", "size": 1, "price": far, "tif": "gtc"})
                assert st == 201 and o["status"] == "open"
                assert not {"finish_as", "finish_time", "finish_time_ms"} & set(o)
                assert set(doc) - {"finish_as", "finish_time"} <= set(o)
                st, got = await gate_call(s, base, "GET", "/api/v4/futures/usdt/orders/%d" % o["id"])
                assert st == 200 and got["status"] == "open" and "finish_as" not in got
                st, lst = await gate_call(s, base, "GET", "/api/v4/futures/usdt/orders", "contract=BTC_USDT&status=open")
                assert st == 200 and [x["id"] for x in lst] == [o["id"]] and "finish_as" not in lst[0]
                push = orjson.loads((await ws.receive(timeout=T)).data)["result"][0]
                assert push["id"] == o["id"] and push["status"] == "open" and push["finish_as"] == "_new"
                assert set(push_doc) - {"biz_info", "refr", "stop_loss_price", "stop_profit_price"} <= set(push)
                st, c = await gate_call(s, base, "DELETE", "/api/v4/futures/usdt/orders/%d" % o["id"])
                assert st == 200 and c["status"] == "finished" and c["finish_as"] == "cancelled"
                assert set(doc) <= set(c)

    run(main())


# ------------------------------------------------------------------------------------------ MEXC ping

def test_mexc_answers_lower_case_ping():
    ping = res("mexc", "ws_ping_request_lowercase.json")
    pong = res("mexc", "ws_pong.json")

    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            async with s.ws_connect(sim.urls["mexc_spot"].ws) as ws:
                for req in (ping, {"method": "PING"}, ping):
                    await ws.send_json(req)
                    assert orjson.loads((await ws.receive(timeout=T)).data) == pong
                await ws.send_json({"method": "Ping"})                  # no evidence for other casings
                assert orjson.loads((await ws.receive(timeout=T)).data)["code"] != 0

    run(main())


# ------------------------------------------------------------------------------------------ Gate login

@pytest.mark.parametrize("venue", ["gateio_spot", "gateio_futures"])
def test_gate_ws_api_login_signed_over_empty_or_sent_req_param(venue):
    prefix = "futures" if venue == "gateio_futures" else "spot"

    def login(ts, signed_over, req_param=None, secret=SECRET):
        sig = hmac.new(secret.encode(), ("api\n%s.login\n%s\n%s" % (prefix, signed_over, ts)).encode(),
                       hashlib.sha512).hexdigest()
        payload = {"req_id": "r1", "api_key": KEY, "timestamp": ts, "signature": sig}
        if req_param is not None:
            payload["req_param"] = req_param
        return {"time": int(ts), "channel": prefix + ".login", "event": "api", "payload": payload}

    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            cases = [(("", None), "200"), (("", {}), "200"), (("{}", {}), "200"),              # docs, ccxt
                     (('{"a":1}', {"a": 1}), "200"), (('{"a": 1}', {"a": 1}), "200"),
                     (("{}", None), "401"), (("{}", {"a": 1}), "401"), (("", {}), "401")]
            for i, ((over, rp), want) in enumerate(cases):
                async with s.ws_connect(sim.urls[venue].ws) as ws:
                    ts = str(int(time.time()))
                    await ws.send_json(login(ts, over, rp, secret=SECRET if i < len(cases) - 1 else "wrong"))
                    ans = orjson.loads((await ws.receive(timeout=T)).data)
                    assert ans["header"]["status"] == want, (over, rp)
                    if want == "200":
                        assert ans["data"]["result"] == {"api_key": KEY, "uid": str(UID)}
                    else:
                        assert ans["data"]["errs"]["label"] == "INVALID_SIGNATURE"

    run(main())


# ------------------------------------------------------------------------------------------ batching

def test_mexc_aggre_depth_pushes_once_per_named_interval():
    """Against the auto clock (a step every 10 ms): ``@100ms`` pushes at most once per 100 ms,
    merging that interval's diffs (contiguous version ranges spanning several steps), ``@10ms`` at
    most once per 10 ms; a book rebuilt from either stream plus the REST snapshot equals the true
    book at a paused checkpoint."""
    async def main():
        sim = make_sim(clock="auto")
        async with sim, aiohttp.ClientSession() as s:
            v = sim.venue("mexc_spot")
            streams = {"100ms": [], "10ms": []}
            async with s.ws_connect(sim.urls["mexc_spot"].ws) as ws1, s.ws_connect(sim.urls["mexc_spot"].ws) as ws2:
                conns = {"100ms": ws1, "10ms": ws2}
                for iv, ws in conns.items():
                    await ws.send_json({"method": "SUBSCRIPTION", "params": ["spot@public.aggre.depth.v3.api.pb@%s@BTCUSDT" % iv]})
                    assert orjson.loads((await ws.receive(timeout=T)).data)["code"] == 0
                t0 = time.monotonic()
                syncs = {iv: RefSync(depth=10_000) for iv in streams}
                async with s.get(sim.urls["mexc_spot"].rest + "/api/v3/depth?symbol=BTCUSDT&limit=1000") as r:
                    snap = await r.json()

                def feed(iv, d):
                    if syncs[iv].update(d) == RESYNC:
                        raise AssertionError("%s stream needed a resync" % iv)

                for iv in streams:
                    syncs[iv].snapshot(Diff(snap["lastUpdateId"], snap["lastUpdateId"],
                                            [(D(p), D(q)) for p, q in snap["bids"]], [(D(p), D(q)) for p, q in snap["asks"]]))

                async def read_until(iv, pred):
                    while not pred():
                        m = await conns[iv].receive(timeout=T)
                        p = mp.decode_push(m.data)
                        assert p["channel"] == "spot@public.aggre.depth.v3.api.pb@%s@BTCUSDT" % iv
                        body = p["publicAggreDepths"]
                        streams[iv].append((int(p["sendTime"]), int(body["fromVersion"]), int(body["toVersion"])))
                        lv = lambda side: [(D(x["price"]), D(x["quantity"])) for x in body.get(side, [])]  # noqa: E731
                        feed(iv, Diff(int(body["fromVersion"]), int(body["toVersion"]), lv("bids"), lv("asks")))
                await asyncio.gather(*(read_until(iv, lambda: time.monotonic() - t0 > 1.0) for iv in streams))
                sim.pause()
                last = v.book("BTCUSDT").last_id
                await asyncio.gather(*(read_until(iv, lambda iv=iv: bool(streams[iv]) and streams[iv][-1][2] == last)
                                       for iv in streams))
                elapsed_ms = (time.monotonic() - t0) * 1000
                bids, asks, _ = v.true_book("BTCUSDT")
                for iv, pushes in streams.items():
                    step = int(iv[:-2])
                    assert all(b[1] == a[2] + 1 for a, b in zip(pushes, pushes[1:])), iv        # contiguous
                    gaps = [b[0] - a[0] for a, b in zip(pushes, pushes[1:])]
                    assert min(gaps) >= step - 1, (iv, min(gaps))       # sendTime (ms): once per interval
                    assert len(pushes) <= elapsed_ms / step + 2, (iv, len(pushes))
                    assert syncs[iv].in_sync and syncs[iv].book.last_id == last
                    assert syncs[iv].book.top() == (bids, asks), iv
                # 100 ms merges ~10 generator steps (each 1-3 ids) into one push
                assert len(streams["100ms"]) >= 5
                assert max(p[2] - p[1] + 1 for p in streams["100ms"]) >= 8
                assert len(streams["10ms"]) > 2 * len(streams["100ms"])

    run(main())


# ------------------------------------------------------------------------------------------ endpoints

def test_start_up_endpoints_ccxt_calls():
    """Shapes of the endpoints ccxt's load_markets / fetch_currencies / fetch_my_trades use,
    compared with the reference payloads; values from the simulated venue."""
    cur = res("gateio_spot", "rest_currencies.json")
    detail = res("gateio_spot", "rest_account_detail.json")
    margin = res("gateio_spot", "rest_margin_currency_pairs.doc.json")
    timerange = res("gateio_futures", "rest_my_trades_timerange.doc.json")
    tick24 = res("mexc", "rest_ticker_24hr.json")
    coin = res("mexc", "rest_capital_config_getall_item.ccxt_comment.json")

    async def main():
        sim = make_sim()
        async with sim, aiohttp.ClientSession() as s:
            gs, gf, mx = (sim.urls[n].rest for n in ("gateio_spot", "gateio_futures", "mexc_spot"))
            sim.tick(20)
            # Gate spot currencies: every base and quote, the 2026 shape (delisted-coin key set)
            async with s.get(gs + "/api/v4/spot/currencies") as r:
                body = await r.json()
            assert r.status == 200 and [c["currency"] for c in body] == ["BTC", "USDT"]
            assert all(set(c) == set(cur[0]) and set(c["chains"][0]) == set(cur[0]["chains"][0]) for c in body)
            assert all(not c["delisted"] and not c["trade_disabled"] for c in body)
            async with s.get(gs + "/api/v4/spot/currencies/BTC") as r:
                assert r.status == 200 and (await r.json())["currency"] == "BTC"
            async with s.get(gs + "/api/v4/spot/currencies/NOPE") as r:
                assert r.status == 400
            async with s.get(gs + "/api/v4/margin/currency_pairs") as r:
                body = await r.json()
            assert r.status == 200 and [set(x) for x in body] == [set(margin[0])] and body[0]["id"] == "BTC_USDT"
            assert type(body[0]["leverage"]) is type(margin[0]["leverage"])
            # account detail, on both Gate hosts, signed
            for base in (gs, gf):
                st, d = await gate_call(s, base, "GET", "/api/v4/account/detail")
                assert st == 200 and set(d) == set(detail) and d["user_id"] == UID and d["key"] == {"mode": 1}
            async with s.get(gs + "/api/v4/account/detail") as r:
                assert r.status == 401
            # futures fills by time range: a taker fill, then an order that closes part of it
            v = sim.venue("gateio_futures")
            book = v.book("BTC_USDT")
            inst = v.instrument("BTC_USDT")
            st, o1 = await gate_call(s, gf, "POST", "/api/v4/futures/usdt/orders",
                                     body={"contract": "BTC_USDT", "size": 3, "price": inst.price_str(book.best_ask()[0]),
                                           "tif": "ioc"})
            assert st == 201 and o1["finish_as"] == "filled"
            st, o2 = await gate_call(s, gf, "POST", "/api/v4/futures/usdt/orders",
                                     body={"contract": "BTC_USDT", "size": -2, "price": inst.price_str(book.best_bid()[0]),
                                           "tif": "ioc"})
            assert st == 201 and o2["finish_as"] == "filled"
            now = int(time.time())
            st, tr = await gate_call(s, gf, "GET", "/api/v4/futures/usdt/my_trades_timerange",
                                     "contract=BTC_USDT&from=%d&to=%d" % (now - 60, now + 1))
            assert st == 200 and all(set(t) == set(timerange[0]) for t in tr)
            assert [t["order_id"] for t in tr][:1] == [str(o2["id"])]          # newest first
            assert all(isinstance(t["trade_id"], str) for t in tr)
            assert sum(t["size"] for t in tr if t["order_id"] == str(o1["id"])) == 3
            assert sum(t["size"] for t in tr if t["order_id"] == str(o2["id"])) == -2
            assert sum(t["close_size"] for t in tr if t["order_id"] == str(o2["id"])) == -2
            assert all(t["close_size"] == 0 for t in tr if t["order_id"] == str(o1["id"]))
            st, none = await gate_call(s, gf, "GET", "/api/v4/futures/usdt/my_trades_timerange",
                                       "contract=BTC_USDT&from=%d&to=%d" % (now - 600, now - 300))
            assert st == 200 and none == []
            # MEXC 24h ticker (public) and coin configuration (signed)
            async with s.get(mx + "/api/v3/ticker/24hr?symbol=BTCUSDT") as r:
                t = await r.json()
            assert r.status == 200 and set(t) == set(tick24) and t["count"] is None
            assert all(type(t[k]) is type(tick24[k]) for k in tick24 if tick24[k] is not None)
            mb = sim.venue("mexc_spot").book("BTCUSDT")
            minst = sim.venue("mexc_spot").instrument("BTCUSDT")
            assert t["bidPrice"] == minst.price_str(mb.best_bid()[0]) and t["askPrice"] == minst.price_str(mb.best_ask()[0])
            assert D(t["lowPrice"]) <= D(t["lastPrice"]) <= D(t["highPrice"]) and D(t["volume"]) > 0
            async with s.get(mx + "/api/v3/ticker/24hr") as r:
                assert r.status == 200 and [x["symbol"] for x in await r.json()] == ["BTCUSDT"]
            st, coins = await mexc_call(s, mx, "GET", "/api/v3/capital/config/getall")
            assert st == 200 and [c["coin"] for c in coins] == ["BTC", "USDT"]
            assert all(set(coin) <= set(c) and set(coin["networkList"][0]) | {"netWork"} <= set(c["networkList"][0])
                       for c in coins)
            async with s.get(mx + "/api/v3/capital/config/getall?timestamp=%d" % (time.time() * 1000)) as r:
                assert r.status == 400 and (await r.json())["code"] in (700001, 700002, 700004)
            async with s.get(mx + "/api/v1/contract/detail") as r:
                assert r.status == 200 and await r.json() == {"success": True, "code": 0, "data": []}

    run(main())

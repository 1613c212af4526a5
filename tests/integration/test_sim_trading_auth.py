"""Simulator auth: every documented signing vector is accepted (end to end over HTTP / WebSocket where
the venue path exists in the simulator), and one changed byte anywhere is refused with the venue's code.

Vectors: ``tests/resources/mexc/rest_signing_example.txt`` and
``tests/resources/gateio_spot/rest_signing_example.txt``.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac

import aiohttp
import orjson
import pytest

from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator
from cexnode.sim.venues._gate import auth as gate_auth
from cexnode.sim.venues.mexc_spot import auth as mexc_auth

T = 3.0

# --- MEXC vectors (mexcdevelop/apidocs spot_v3_en, recomputed) ---------------------------------------
MX_KEY, MX_SECRET = "mx0aBYs33eIilxBWC5", "45d0b3c26f2644f19bfb98b07741b2f5"
MX_TS = 1644489390087
MX_A_TOTAL = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
MX_A_SIG = "fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a"
MX_DOCS_WRONG_SIG = "323c96ab85a745712e95e63cad28903dd8292e4a905e99c4ee3932023843a117"
MX_B_QUERY = "symbol=BTCUSDT&side=BUY&type=LIMIT"
MX_B_BODY = "quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
MX_B_SIG = "d1a676610ceb39174c8039b3f548357994b2a34139a8addd33baadba65684592"

# --- Gate vectors (Gate APIv4 docs "Authentication", recomputed) -------------------------------------
G_KEY, G_SECRET, G_TS = "key", "secret", "1541993715"
G1 = ("GET", "/api/v4/futures/orders", "contract=BTC_USD&status=finished&limit=50", b"",
      "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a")
G2_BODY = b'{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}'
G2 = ("POST", "/api/v4/futures/orders", "", G2_BODY,
      "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541fc4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0")
GWS_TIME = 1611541000
GWS_SIGN = "833a44bb4cd083e47bc1fec22b5c12e8b98c30fc7a9f4a1e52800dcfdff9a57240d7c10f1e9553dee020011fa5d02cdc7d1155a380cc4dcbd45f8fb525e41f4b"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def flip(s: str, i: int) -> str:
    """``s`` with the character at ``i`` changed (one byte)."""
    c = s[i]
    return s[:i] + ("1" if c != "1" else "2") + s[i + 1:]


def _sim():
    return ExchangeSimulator(SimConfig(seed=11, book_levels=10), clock="manual",
                             venues={"mexc_spot": ["BTC/USDT"], "gateio_spot": ["BTC/USDT"],
                                     "gateio_futures": ["BTC/USDT:USDT"]})


# ------------------------------------------------------------------------------------------ unit level

def test_mexc_vectors_verify():
    secrets = {MX_KEY: MX_SECRET}.get
    assert mexc_auth.mexc_sign(MX_SECRET, MX_A_TOTAL) == MX_A_SIG
    assert mexc_auth.mexc_sign(MX_SECRET, MX_B_QUERY + MX_B_BODY) == MX_B_SIG
    params = dict(p.split("=") for p in MX_A_TOTAL.split("&"))
    body = MX_A_TOTAL + "&signature=" + MX_A_SIG
    assert mexc_auth.verify_mexc(MX_KEY, "", body, params, secrets, MX_TS) is None
    assert mexc_auth.verify_mexc(MX_KEY, MX_A_TOTAL + "&signature=" + MX_A_SIG, "", params, secrets, MX_TS) is None
    assert mexc_auth.verify_mexc(MX_KEY, MX_B_QUERY, MX_B_BODY + "&signature=" + MX_B_SIG, params, secrets, MX_TS) is None
    # the docs' "Example 1" signature is wrong for this string (see the vector file)
    assert mexc_auth.verify_mexc(MX_KEY, "", MX_A_TOTAL + "&signature=" + MX_DOCS_WRONG_SIG, params, secrets,
                                 MX_TS).code == 700002


def test_gate_vectors_verify():
    secrets = {G_KEY: G_SECRET}.get
    for method, path, query, body, sign in (G1, G2):
        assert gate_auth.gate_rest_sign(G_SECRET, method, path, query, body, G_TS) == sign
        hdr = {"KEY": G_KEY, "Timestamp": G_TS, "SIGN": sign}
        assert gate_auth.verify_gate_rest(hdr, method, path, query, body, secrets, float(G_TS) + 5) is None
        # one changed byte in each part of the request
        assert gate_auth.verify_gate_rest(hdr, method, path + "x", query, body, secrets, float(G_TS)).code == "INVALID_SIGNATURE"
        assert gate_auth.verify_gate_rest(hdr, method, path, query + "1", body, secrets, float(G_TS)).code == "INVALID_SIGNATURE"
        assert gate_auth.verify_gate_rest(hdr, method, path, query, body + b" ", secrets, float(G_TS)).code == "INVALID_SIGNATURE"
        assert gate_auth.verify_gate_rest(dict(hdr, Timestamp=str(int(G_TS) + 1)), method, path, query, body, secrets,
                                          float(G_TS)).code == "INVALID_SIGNATURE"
        assert gate_auth.verify_gate_rest(dict(hdr, SIGN=flip(sign, 7)), method, path, query, body, secrets,
                                          float(G_TS)).code == "INVALID_SIGNATURE"
        e = gate_auth.verify_gate_rest(dict(hdr, KEY="kez"), method, path, query, body, secrets, float(G_TS))
        assert (e.code, e.status) == ("INVALID_KEY", 401)
        e = gate_auth.verify_gate_rest(hdr, method, path, query, body, secrets, float(G_TS) + 61)
        assert (e.code, e.status) == ("REQUEST_EXPIRED", 403)
    assert gate_auth.gate_ws_sign(G_SECRET, "spot.orders", "subscribe", GWS_TIME) == GWS_SIGN
    # WebSocket API login: "api\n<channel>\n<req_param>\n<timestamp>" with an empty req_param
    expected = hmac.new(b"secret", b"api\nspot.login\n\n1681984544", hashlib.sha512).hexdigest()
    assert gate_auth.gate_api_sign("secret", "spot.login", "", "1681984544") == expected
    key, err = gate_auth.verify_gate_api_login("spot.login", {"api_key": "key", "signature": expected,
                                                              "timestamp": "1681984544"}, secrets, 1681984544.0)
    assert key == "key" and err is None
    key, err = gate_auth.verify_gate_api_login("futures.login", {"api_key": "key", "signature": expected,
                                                                 "timestamp": "1681984544"}, secrets, 1681984544.0)
    assert key is None and err.code == "INVALID_SIGNATURE"


# ------------------------------------------------------------------------------------------ over HTTP

def test_mexc_vectors_end_to_end_and_tampering():
    async def main():
        sim = _sim()
        sim.trading.add_account("mexc_spot", MX_KEY, MX_SECRET, {"USDT": "1000"})
        sim.trading.set_clock(MX_TS)
        async with sim, aiohttp.ClientSession() as s:
            url = sim.urls["mexc_spot"].rest + "/api/v3/order"
            hdr = {"X-MEXC-APIKEY": MX_KEY, "Content-Type": "application/x-www-form-urlencoded"}

            async def post(query, body, headers=hdr):
                async with s.post(url + ("?" + query if query else ""), data=body.encode(), headers=headers) as r:
                    return r.status, await r.json()

            # (a) every parameter in the body, exactly the docs' curl
            st, j = await post("", MX_A_TOTAL + "&signature=" + MX_A_SIG)
            assert st == 200 and j["symbol"] == "BTCUSDT" and j["orderId"] and "status" not in j
            # (a) every parameter in the query string
            st, j = await post(MX_A_TOTAL + "&signature=" + MX_A_SIG, "")
            assert st == 200 and j["price"] == "11.00" and j["origQty"] == "1.000000"
            # (b) mixed: query + body
            st, j = await post(MX_B_QUERY, MX_B_BODY + "&signature=" + MX_B_SIG)
            assert st == 200 and j["type"] == "LIMIT" and j["side"] == "BUY"
            # tampering: one byte in query / body / timestamp / key / signature
            cases = [
                (flip(MX_B_QUERY, 7), MX_B_BODY + "&signature=" + MX_B_SIG, hdr, 700002),            # symbol
                (MX_B_QUERY, MX_B_BODY.replace("price=11", "price=12") + "&signature=" + MX_B_SIG, hdr, 700002),
                (MX_B_QUERY, MX_B_BODY.replace("087", "088") + "&signature=" + MX_B_SIG, hdr, 700002),
                (MX_B_QUERY, MX_B_BODY + "&signature=" + flip(MX_B_SIG, 0), hdr, 700002),
                (MX_B_QUERY, MX_B_BODY + "&signature=" + MX_B_SIG, dict(hdr, **{"X-MEXC-APIKEY": flip(MX_KEY, 3)}), 700001),
                (MX_B_QUERY, MX_B_BODY + "&signature=" + MX_B_SIG, {"Content-Type": hdr["Content-Type"]}, 700001),
                (MX_B_QUERY, MX_B_BODY, hdr, 700004),                                                # unsigned
                ("", MX_A_TOTAL + "&signature=" + MX_DOCS_WRONG_SIG, hdr, 700002),
            ]
            for q, b, h, code in cases:
                st, j = await post(q, b, h)
                assert (st, j["code"]) == (400, code), (q, b, j)
                assert set(j) == {"code", "msg"}
            assert (await post("", MX_A_TOTAL + "&signature=" + flip(MX_A_SIG, 5)))[1]["msg"] == \
                "Signature for this request is not valid."
            # timestamp outside recvWindow (the same signed request, 5001 ms later / 1000 ms early)
            sim.trading.set_clock(MX_TS + 5001)
            st, j = await post("", MX_A_TOTAL + "&signature=" + MX_A_SIG)
            assert (st, j["code"]) == (400, 700003)
            sim.trading.set_clock(MX_TS - 1000)
            assert (await post("", MX_A_TOTAL + "&signature=" + MX_A_SIG))[1]["code"] == 700003
            sim.trading.set_clock(MX_TS - 999)
            assert (await post("", MX_A_TOTAL + "&signature=" + MX_A_SIG))[0] == 200
            # recvWindow above 60000
            total = MX_A_TOTAL.replace("recvWindow=5000", "recvWindow=60001")
            st, j = await post("", total + "&signature=" + mexc_auth.mexc_sign(MX_SECRET, total))
            assert j["code"] == 700005
            assert len(sim.trading.engine("mexc_spot").orders) == 4        # only the accepted ones exist
    run(main())


def test_gate_rest_end_to_end_and_tampering():
    async def main():
        sim = _sim()
        sim.trading.add_account("gateio_spot", G_KEY, G_SECRET, {"USDT": "1000"})
        sim.trading.add_account("gateio_futures", G_KEY, G_SECRET, {"USDT": "1000"})
        sim.trading.set_clock(int(G_TS) * 1000)
        async with sim, aiohttp.ClientSession() as s:
            base = sim.urls["gateio_spot"].rest

            async def call(method, path, query="", body=b"", ts=G_TS, key=G_KEY, sign=None, url_base=base):
                sig = sign or gate_auth.gate_rest_sign(G_SECRET, method, path, query, body, ts)
                hdr = {"KEY": key, "Timestamp": ts, "SIGN": sig, "Content-Type": "application/json"}
                async with s.request(method, url_base + path + ("?" + query if query else ""), data=body,
                                     headers=hdr) as r:
                    return r.status, await r.json()

            # built exactly as the docs' example 1 (GET with a query) and 2 (POST with a JSON body)
            st, j = await call("GET", "/api/v4/spot/accounts", "currency=USDT")
            assert st == 200 and j == [{"currency": "USDT", "available": "1000", "locked": "0", "update_id": 1}]
            body = b'{"currency_pair":"BTC_USDT","type":"limit","side":"buy","amount":"0.001","price":"6800","time_in_force":"gtc"}'
            st, j = await call("POST", "/api/v4/spot/orders", body=body)
            assert st == 201 and j["status"] == "open" and j["left"] == "0.001"
            fbase = sim.urls["gateio_futures"].rest
            st, j = await call("POST", "/api/v4/futures/usdt/orders",
                               body=b'{"contract":"BTC_USDT","size":1,"price":"6800","tif":"gtc"}', url_base=fbase)
            assert st == 201 and j["size"] == 1 and j["status"] == "open"
            good = gate_auth.gate_rest_sign(G_SECRET, "POST", "/api/v4/spot/orders", "", body, G_TS)
            for kw, exp in [(dict(body=body.replace(b"0.001", b"0.002"), sign=good), (401, "INVALID_SIGNATURE")),
                            (dict(body=body, sign=flip(good, 3)), (401, "INVALID_SIGNATURE")),
                            (dict(body=body, sign=good, ts=str(int(G_TS) + 1)), (401, "INVALID_SIGNATURE")),
                            (dict(body=body, sign=good, key="kez"), (401, "INVALID_KEY"))]:
                st, j = await call("POST", "/api/v4/spot/orders", **kw)
                assert (st, j["label"]) == exp and set(j) == {"label", "message"}
            st, j = await call("GET", "/api/v4/spot/accounts", "currency=USDT",
                               sign=gate_auth.gate_rest_sign(G_SECRET, "GET", "/api/v4/spot/accounts", "currency=BTC", b"", G_TS))
            assert (st, j["label"]) == (401, "INVALID_SIGNATURE")
            sim.trading.set_clock((int(G_TS) + 61) * 1000)
            st, j = await call("POST", "/api/v4/spot/orders", body=body)
            assert (st, j["label"]) == (403, "REQUEST_EXPIRED")
            assert len(sim.trading.engine("gateio_spot").orders) == 1
    run(main())


def test_gate_ws_auth_vector_end_to_end():
    """The docs' channel-auth example time with secret "secret": the documented-style SIGN subscribes;
    a changed byte in the SIGN, time or key is refused with error code 4."""
    async def main():
        sim = _sim()
        sim.trading.add_account("gateio_spot", G_KEY, G_SECRET, {"USDT": "10"})
        sim.trading.set_clock(GWS_TIME * 1000)
        async with sim, aiohttp.ClientSession() as s:
            async with s.ws_connect(sim.urls["gateio_spot"].ws) as ws:
                req = {"time": GWS_TIME, "id": 1, "channel": "spot.orders", "event": "subscribe",
                       "payload": ["BTC_USDT"], "auth": {"method": "api_key", "KEY": G_KEY, "SIGN": GWS_SIGN}}
                for bad in ({"SIGN": flip(GWS_SIGN, 9)}, {"KEY": "kez"}):
                    await ws.send_str(orjson.dumps(dict(req, auth=dict(req["auth"], **bad))).decode())
                    m = orjson.loads((await ws.receive(timeout=T)).data)
                    assert m["error"]["code"] == 4 and m["result"] == {"status": "fail"}
                await ws.send_str(orjson.dumps(dict(req, time=GWS_TIME + 1)).decode())
                assert orjson.loads((await ws.receive(timeout=T)).data)["error"]["code"] == 4
                await ws.send_str(orjson.dumps(req).decode())
                m = orjson.loads((await ws.receive(timeout=T)).data)
                assert m["result"] == {"status": "success"} and m["channel"] == "spot.orders" and m["id"] == 1
                # request time more than 60 s from the server's
                sim.trading.set_clock((GWS_TIME + 61) * 1000)
                await ws.send_str(orjson.dumps(req).decode())
                assert orjson.loads((await ws.receive(timeout=T)).data)["error"]["code"] == 4
    run(main())


def test_secrets_never_in_repr():
    sim = ExchangeSimulator(SimConfig(seed=1, book_levels=5), clock="manual", venues={"gateio_spot": ["BTC/USDT"]})
    a = sim.trading.add_account("gateio_spot", "publickey123", "topsecret-value", {"USDT": "1"})
    assert "topsecret" not in repr(a) and "topsecret" not in str(sim.trading.venue("gateio_spot").accounts)
    with pytest.raises(ValueError):
        sim.trading.add_account("gateio_spot", "k", "", {})

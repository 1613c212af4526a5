"""Signing: every vector of both venues' rest_signing_example.txt reproduced exactly, and the
signed requests the gateways build (secrets never in repr/str)."""
from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from urllib.parse import parse_qsl

import orjson
import pytest

from cexnode.adapters.gateio_spot import signing as gs
from cexnode.adapters.mexc_spot import signing as ms
from cexnode.config import Secret

REF = Path(__file__).resolve().parents[1] / "resources"   # verbatim copies of the reference samples


def _vectors(path: Path) -> list[tuple[str, str]]:
    """(key, value) lines of a signing example file, comments skipped, in order."""
    out = []
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.partition(":")
        out.append((k.strip(), v.strip()))
    return out


# -- MEXC ----------------------------------------------------------------------------------------

MEXC_SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"


def test_mexc_vectors_from_the_reference_file():
    vec = _vectors(REF / "mexc" / "rest_signing_example.txt")
    pairs = [(vec[i][1], vec[i + 1][1]) for i in range(0, len(vec), 2)]
    assert [k for k, _ in vec] == ["totalParams", "signature"] * 2
    assert len(pairs) == 2
    for total, sig in pairs:
        assert ms.signature(Secret(MEXC_SECRET), total) == sig
        assert ms.signature(MEXC_SECRET, total) == sig
    # (b) mixed: the query and the body concatenated without '&'
    q, b = "symbol=BTCUSDT&side=BUY&type=LIMIT", "quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
    assert ms.total_params(q, b) == pairs[1][0]
    # the docs' wrong "Example 1" value is not what we produce
    assert ms.signature(MEXC_SECRET, pairs[0][0]) != "323c96ab85a745712e95e63cad28903dd8292e4a905e99c4ee3932023843a117"


def test_mexc_signed_query_matches_the_docs_wire_form():
    signer = ms.MexcSigner(Secret("mx0aBYs33eIilxBWC5"), Secret(MEXC_SECRET), recv_window_ms=5000)
    q = signer.signed_query([("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "1"),
                             ("price", "11")], 1644489390087)
    assert q == ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
                 "&signature=fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a")
    # with a body part, the signature covers query + body
    q2 = signer.signed_query([("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT")], 1, body="x=1")
    pre, _, sig = q2.rpartition("&signature=")
    assert sig == hmac.new(MEXC_SECRET.encode(), (pre + "x=1").encode(), hashlib.sha256).hexdigest()
    assert signer.headers() == {"X-MEXC-APIKEY": "mx0aBYs33eIilxBWC5"}
    assert MEXC_SECRET not in repr(signer) and "mx0a" not in repr(signer)
    with pytest.raises(ValueError):
        ms.MexcSigner("k", "s", recv_window_ms=60001)


# -- Gate ----------------------------------------------------------------------------------------


def test_gate_vectors_from_the_reference_file():
    items = _vectors(REF / "gateio_spot" / "rest_signing_example.txt")
    signs = [v for k, v in items if k == "SIGN"]
    strings = [v for k, v in items if k == "sign_string"]
    body = next(v for k, v in items if k == "body")
    body_sha = next(v for k, v in items if k == "sha512(body)")
    ws_string = next(v for k, v in items if k == "ws_sign_string")
    assert len(signs) == 3 and len(strings) == 2
    secret = Secret("secret")
    # (1) GET with a query, empty body
    s1 = gs.rest_sign_string("GET", "/api/v4/futures/orders", "contract=BTC_USD&status=finished&limit=50", b"", 1541993715)
    assert s1 == strings[0].replace("\\n", "\n")
    assert gs.rest_signature(secret, "GET", "/api/v4/futures/orders", "contract=BTC_USD&status=finished&limit=50",
                             b"", 1541993715) == signs[0]
    assert gs.body_hash(b"") == gs.EMPTY_BODY_SHA512 == s1.split("\n")[3]
    # (2) POST with the exact body bytes
    assert gs.body_hash(body.encode()) == body_sha
    s2 = gs.rest_sign_string("POST", "/api/v4/futures/orders", "", body, 1541993715)
    head, _, tail = strings[1].replace("\\n", "\n").partition("...")
    assert s2.startswith(head) and s2.endswith(tail)       # the file abbreviates the hash
    assert gs.rest_signature(secret, "POST", "/api/v4/futures/orders", "", body, 1541993715) == signs[1]
    # (3) WebSocket channel auth
    assert gs.ws_channel_sign_string("spot.orders", "subscribe", 1611541000) == ws_string
    assert gs.ws_channel_signature(secret, "spot.orders", "subscribe", 1611541000) == signs[2]


def test_gate_signer_headers_channel_auth_and_ws_api_login():
    signer = gs.GateSigner(Secret("key"), Secret("secret"))
    h = signer.rest_headers("GET", "/api/v4/futures/orders", "contract=BTC_USD&status=finished&limit=50", b"", 1541993715)
    assert h == {"KEY": "key", "Timestamp": "1541993715",
                 "SIGN": "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a"}
    req = orjson.loads(signer.channel_request("spot.orders", "subscribe", ["BTC_USDT"], 1611541000, req_id=7))
    assert req["auth"] == {"method": "api_key", "KEY": "key",
                           "SIGN": "833a44bb4cd083e47bc1fec22b5c12e8b98c30fc7a9f4a1e52800dcfdff9a57240d7c10f1e9553dee020011fa5d02cdc7d1155a380cc4dcbd45f8fb525e41f4b"}
    assert req["id"] == 7 and req["payload"] == ["BTC_USDT"] and req["time"] == 1611541000
    # WebSocket API login: "api\n<channel>\n<req_param = ''>\n<timestamp>" (Gate WS API docs, Login)
    assert gs.ws_api_sign_string("spot.login", "", "1681984544") == "api\nspot.login\n\n1681984544"
    login = orjson.loads(signer.login_request("futures.login", 1681984544, "r-1"))
    assert login["channel"] == "futures.login" and login["event"] == "api"
    p = login["payload"]
    assert p["api_key"] == "key" and p["timestamp"] == "1681984544" and p["req_id"] == "r-1"
    assert p["signature"] == hmac.new(b"secret", b"api\nfutures.login\n\n1681984544", hashlib.sha512).hexdigest()
    assert "secret" not in repr(signer)


def test_secrets_never_in_repr_or_str():
    s = Secret("top-secret-value")
    signer = ms.MexcSigner(Secret("the-key"), s)
    text = " ".join([repr(signer), str(signer), repr(s), str(s), "%s" % s, format(s)])
    assert "top-secret-value" not in text and "the-key" not in text
    q = signer.signed_query([("symbol", "BTCUSDT")], 5)
    assert "top-secret-value" not in q
    assert re.fullmatch(r"[0-9a-f]{64}", dict(parse_qsl(q))["signature"])


@pytest.mark.parametrize("klen", [0, 1, 32, 63, 64, 65, 200])
def test_keyed_sha256_equals_hmac(klen):
    import random

    rnd = random.Random(klen)
    key = bytes(rnd.randrange(256) for _ in range(klen))
    mac = ms.KeyedSha256(key)
    for n in (0, 1, 55, 64, 150, 1000):
        msg = bytes(rnd.randrange(256) for _ in range(n))
        assert mac.hexdigest(msg) == hmac.new(key, msg, hashlib.sha256).hexdigest()
    assert key.hex() not in repr(mac) or not key


def test_mexc_sign_query_equals_signed_query_of_the_decoded_params():
    """The order path signs the REST manager's already encoded query; the wire string must be
    the one signed_query builds from the parameters (spaces, '&', '=' and unicode included)."""
    from urllib.parse import urlencode

    signer = ms.MexcSigner(Secret("k"), Secret(MEXC_SECRET), recv_window_ms=7000)
    for params in ([("symbol", "BTCUSDT"), ("side", "BUY"), ("quantity", "0.01"), ("newClientOrderId", "cx1ab")],
                   [("a", "x y"), ("b", "1&2=3"), ("c", "é/+")], []):
        q = urlencode(params)
        assert signer.sign_query(q, 1644489390087) == signer.signed_query(params, 1644489390087)
        assert signer.sign_query(q, 5, body="x=1") == signer.signed_query(params, 5, body="x=1")


def test_mexc_order_query_is_the_encoded_order_parameters():
    """MexcSpotGateway._order_query (one format, the order path) == encode_query(_order_params) ==
    urlencode, for generated orders; a symbol or client id that would need escaping takes the
    general encoder."""
    from urllib.parse import urlencode

    from hypothesis import given, settings, strategies as st

    from cexnode.adapters.live import VenueInstrument
    from cexnode.adapters.mexc_spot.execution import MexcSpotGateway as G
    from cexnode.execution.gateway import OrderRequest, Side, TimeInForce
    from cexnode.net.rest import encode_query

    @settings(max_examples=400, deadline=None)
    @given(st.sampled_from(["BTCUSDT", "ETHUSDT", "1000PEPEUSDT", "A-B_C.D~", "BTC/USDT", "X Y", "é"]),
           st.text("0123456789abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20) | st.sampled_from(["a&b", "x=y"]),
           st.sampled_from(list(Side)), st.sampled_from(list(TimeInForce)),
           st.integers(1, 10 ** 12), st.integers(0, 10), st.integers(1, 10 ** 12), st.integers(0, 10))
    def check(vsym, cid, side, tif, qty_m, qs, px_m, ps):
        o = OrderRequest(client_id=cid, venue="mexc_spot", symbol="BTC/USDT", side=side, qty_m=qty_m, price_m=px_m,
                         qty_scale=qs, price_scale=ps, tif=tif)
        inst = VenueInstrument(symbol="BTC/USDT", venue_symbol=vsym)
        params = G._order_params(o, inst)
        q = G._order_query(o, inst)
        assert q == encode_query(params) == urlencode(params)
        assert dict(parse_qsl(q)) == dict(params)

    check()

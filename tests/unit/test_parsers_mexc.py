"""MexcSpotParser: reference samples, control frames, errors, field order / unknown fields / merges,
the protobuf reader primitives, and decode + BookSync end to end."""
import pytest
from google.protobuf import json_format
from hypothesis import given, strategies as st

from cexnode._core import feed as F
from cexnode._core import symbols as S
from cexnode._core.book import Book, BookSync, APPLY_OK, SYNC_SNAPSHOT_DIFF
from cexnode._core.parsers import protobuf as PB
from cexnode._core.parsers.mexc_spot import BookSyncSink, CollectSink, MexcSpotParser, classify_control
from cexnode.sim.venues.mexc_spot import proto as mp
from reference import long_decimals
from reference.mexc_ref import (f_fixed32, f_fixed64, f_group, f_len, f_varint, reference_decode,
                                reference_sink_events, strip_empty, tag, varint)
from support.mexc_parsers import AGGRE_CH, INST, MAP, MARKET, PRIVATE, PUSHES, RES, depth_frame, sample


def live(frame, binary=True, recv_ns=7):
    sink = CollectSink()
    p = MexcSpotParser(MAP, sink)
    r = p.feed_bytes(frame, binary, recv_ns)
    return r, sink.events, p


# ---- the reference samples ---------------------------------------------------------------------

@pytest.mark.parametrize("name", PUSHES)
def test_sample_oracle_round_trip(name):
    """The runtime encoder/decoder built from the field table reproduces every sample exactly."""
    frame, expected = sample(name)
    assert strip_empty(mp.decode_push(frame)) == strip_empty(expected)
    body = next(k for k in expected if k in mp.BODY_FIELDS)
    again = mp.encode_push(expected["channel"], expected.get("symbol"), body, expected[body],
                           send_time=expected.get("sendTime"), create_time=expected.get("createTime"))
    assert again == frame


def expected_market_events(exp):
    """Events written by hand from a sample's decoded JSON (independent of both decoders)."""
    body = next(k for k in exp if k in mp.BODY_FIELDS)
    b = exp[body]
    sym, ts = exp["symbol"], int(exp["sendTime"])
    base = {"venue": "mexc_spot", "symbol": sym}
    if body == "publicAggreDepths":
        return [dict(base, type="book_delta", ts=ts, first=int(b["fromVersion"]), last=int(b["toVersion"]),
                     bids=[[x["price"], x["quantity"]] for x in b.get("bids", [])],
                     asks=[[x["price"], x["quantity"]] for x in b.get("asks", [])])]
    if body == "publicLimitDepths":
        v = int(b["version"])
        return [dict(base, type="book_snapshot", ts=ts, first=v, last=v,
                     bids=[[x["price"], x["quantity"]] for x in b["bids"]],
                     asks=[[x["price"], x["quantity"]] for x in b["asks"]])]
    if body in ("publicAggreBookTicker", "publicBookTickerBatch"):
        items = [b] if body == "publicAggreBookTicker" else b["items"]
        return [dict(base, type="bbo", ts=ts, bid=t["bidPrice"], bid_qty=t["bidQuantity"], ask=t["askPrice"],
                     ask_qty=t["askQuantity"], seq=int(t["version"]) if "version" in t else None) for t in items]
    return [dict(base, type="trade", ts=int(d["time"]), price=d["price"], qty=d["quantity"],
                 side={1: "buy", 2: "sell"}[d["tradeType"]], id=d.get("tradeId")) for d in b["deals"]]


@pytest.mark.parametrize("name", MARKET)
def test_market_samples_decode_to_expected(name):
    frame, exp = sample(name)
    want = expected_market_events(exp)
    p = MexcSpotParser()
    assert p.decode(frame, True) == want
    assert reference_decode(frame) == want
    assert p.errors == 0 and p.frames == 1


@pytest.mark.parametrize("name", MARKET)
def test_market_samples_live_match_reference(name):
    frame, exp = sample(name)
    r, events, p = live(frame)
    want = reference_sink_events(frame, INST, 7)
    assert want and events == want
    assert r in (F.FRAME_DEPTH, F.FRAME_BBO, F.FRAME_TRADE) and p.errors == 0


@pytest.mark.parametrize("name", MARKET)
def test_market_samples_with_18_decimals_same_mantissas(name):
    """Prices and sizes padded to 18 fraction digits (as MEXC writes them in other payloads) give
    the same mantissas live and the same values in decode, the padded strings kept verbatim."""
    frame = sample(name)[0]
    padded = long_decimals.pad_mexc_frame(frame)
    assert padded != frame
    assert live(padded)[1] == live(frame)[1] == reference_sink_events(padded, INST, 7)
    raw = MexcSpotParser().decode(padded, True)
    assert raw == reference_decode(padded) and long_decimals.has_18_decimals(raw)
    assert long_decimals.normalized(raw) == long_decimals.normalized(MexcSpotParser().decode(frame, True))


def test_sample_mantissas_by_hand():
    # BTC/USDT: price_scale 2, qty_scale 8 (step 0.000001 + 2 headroom decimals)
    assert MAP.instrument("BTCUSDT")["price_scale"] == 2 and MAP.instrument("BTCUSDT")["qty_scale"] == 8
    sid = MAP.id_of("BTCUSDT")
    _, ev, p = live(sample("ws_push_aggre_depth")[0])
    assert ev == [("depth", sid, 74891313263, 74891313263, 1782208005090, 7, False, [(6175973, 17780)], [])]
    assert p.depth_updates == 1
    _, ev, _ = live(sample("ws_push_limit_depth")[0])
    assert ev == [("depth", sid, 36913565463, 36913565463, 1736411838730, 7, True, [(9317998, 282651000)],
                   [(9318018, 21976424)])]
    _, ev, _ = live(sample("ws_push_aggre_bookticker")[0])
    assert ev == [("bbo", sid, 6238356, 7956651, 6238357, 9556000, 0, 1782208005090, 7)]
    _, ev, _ = live(sample("ws_push_aggre_deals")[0])
    assert ev == [("trade", sid, 6238356, 8235, -1, 0, 1782208006167, 7),
                  ("trade", sid, 6238357, 19595, 1, 0, 1782208006167, 7),
                  ("trade", sid, 6238357, 59353, 1, 0, 1782208006167, 7)]


@pytest.mark.parametrize("name", PRIVATE)
def test_private_samples(name):
    frame, exp = sample(name)
    r, ev, p = live(frame)
    assert r == F.FRAME_MESSAGE and p.messages == 1 and len(ev) == 1
    _, kind, msg = ev[0]
    body = next(k for k in exp if k in mp.BODY_FIELDS)
    # "raw" is the proto3-JSON of the body, exactly as the runtime renders it
    assert msg["raw"] == json_format.MessageToDict(getattr(mp.PushDataV3ApiWrapper.FromString(frame), body))
    assert msg["raw"] == exp[body]
    assert msg["ts"] == int(exp["sendTime"])
    b = exp[body]
    if body == "privateOrders":
        assert kind == F.MSG_ORDER
        assert (msg["symbol"], msg["order_id"], msg["side"], msg["order_type"], msg["status"]) == \
            ("MX/USDT", b["id"], "sell", "MARKET", "filled")
        assert (msg["price"], msg["filled_qty"], msg["filled_amount"], msg["create_time"]) == \
            ("3.5121", "1", "3.6962", 1736417034259)
    elif body == "privateDeals":
        assert kind == F.MSG_FILL
        assert (msg["trade_id"], msg["order_id"], msg["price"], msg["qty"], msg["fee"], msg["fee_currency"]) == \
            (b["tradeId"], b["orderId"], "3.6962", "1", "0.0003998377369698171", "MX")
        assert msg["side"] == "sell" and msg["time"] == 1736417034280
    else:
        assert kind == F.MSG_BALANCE
        assert (msg["asset"], msg["free"], msg["free_change"], msg["frozen"], msg["change_type"]) == \
            ("USDT", "21.94210356004384", "10", "0", "CONTRACT_TRANSFER")
    # private pushes are not decode events
    assert MexcSpotParser().decode(frame, True) == []


# ---- control frames ------------------------------------------------------------------------------

def control(text):
    r, ev, p = live(text.encode() if isinstance(text, str) else text, False)
    return r, ev, p


def test_control_samples():
    r, ev, _ = control((RES / "ws_subscribe_ack.json").read_bytes())
    assert r == F.FRAME_MESSAGE and ev[0][1] == F.MSG_ACK
    assert ev[0][2]["topics"] == ["spot@public.aggre.deals.v3.api.pb@10ms@BTCUSDT"]
    r, ev, _ = control((RES / "ws_pong.json").read_bytes())
    assert ev[0][1] == F.MSG_PONG and ev[0][2]["type"] == "pong"
    r, ev, _ = control((RES / "ws_unsubscribe_ack.json").read_bytes())
    assert ev[0][1] == F.MSG_ACK
    # "Blocked" rejection: code 0, detected from msg; topics and reason extracted
    r, ev, p = control((RES / "ws_subscribe_rejected_blocked.json").read_bytes())
    kind, msg = ev[0][1], ev[0][2]
    assert kind == F.MSG_ERROR and msg["type"] == "rejected" and msg["code"] == 0
    assert msg["topics"] == ["spot@public.increase.depth.v3.api@BTCUSDT", "spot@public.aggre.deals.v3.api.pb@BTCUSDT",
                             "spot@public.aggre.bookTicker.v3.api.pb@BTCUSDT"]
    assert msg["reason"] == "Blocked!" and p.errors == 0
    assert MexcSpotParser().decode((RES / "ws_subscribe_rejected_blocked.json").read_bytes(), False) == []


def test_control_variants():
    # escaped full-width colon, other key order, whitespace, extra keys of every JSON type
    text = ('  {"msg" : "Not Subscribed successfully! [spot@public.deals.v3.api@BTCUSDT].  Reason\\uff1a Blocked! ",'
            ' "extra": [1, -2.5e3, {"a": null, "b": [true, false]}, "x\\"y"], "code":0, "id":5 }\n')
    r, ev, _ = control(text)
    assert ev[0][1] == F.MSG_ERROR and ev[0][2]["id"] == 5 and ev[0][2]["topics"] == ["spot@public.deals.v3.api@BTCUSDT"]
    r, ev, _ = control('{"id":3,"code":0,"msg":"spot@a@BTCUSDT,spot@b@ETHUSDT"}')
    assert ev[0][1] == F.MSG_ACK and ev[0][2]["topics"] == ["spot@a@BTCUSDT", "spot@b@ETHUSDT"]
    r, ev, _ = control('{"id":0,"code":100401,"msg":"Invalid request"}')
    assert ev[0][1] == F.MSG_ERROR and ev[0][2]["code"] == 100401
    r, ev, _ = control('{"something":"else"}')
    assert r == F.FRAME_MESSAGE and ev[0][1] == F.MSG_OTHER
    assert classify_control(None, None, "PONG")[0] == F.MSG_PONG
    for bad in ['', 'PONG', '{"id":0,', '{"id":0}}', '{"msg":"a\x01"}', '{"msg":"\\x"}', '[1]', '{"a":tru}',
                '{"a":01}', '{"a":1.}', '{"a" 1}', '{"msg":"\xff"}'.encode("latin-1")]:
        r, ev, p = control(bad)
        assert r == F.FRAME_ERROR and p.errors == 1 and ev[0][0] == "error", bad
        assert p.last_error.startswith("json:")


# ---- errors ----------------------------------------------------------------------------------------

def synced_sink():
    book = Book(MAP.id_of("BTCUSDT"), MAP.venue)
    sync = BookSync(book, SYNC_SNAPSHOT_DIFF)
    assert sync.py_snapshot(9, [(10000, 100)], [(10100, 100)]) == APPLY_OK
    return sync, BookSyncSink({book.symbol_id: sync})


BAD = [
    (depth_frame()[:-3], "longer than"),                                         # body cut
    (b"\x0a\x05spot", "longer than"),                                            # length past the end
    (depth_frame() + b"\x30" + b"\xff" * 10, "varint"),                          # 11-byte varint
    (depth_frame() + b"\x30\xff", "truncated"),                                  # truncated varint
    (depth_frame() + b"\x08\x05", "wrong wire type"),                            # channel as varint
    (depth_frame() + b"\x16", "wire type"),                                      # wire type 6
    (depth_frame() + b"\x14", "END_GROUP"),                                      # stray end group
    (b"\x00\x01" + depth_frame(), "field number 0"),
    (depth_frame() + b"\x1a\x02\xc3\x28", "UTF-8"),                              # symbol not UTF-8
    (depth_frame(bids=[("100.555", "1")]), "more decimals"),                     # tick 0.01
    (depth_frame(bids=[("100.5", "0.000000001")]), "more decimals"),             # qty scale 8
    (depth_frame(bids=[("1e5", "1")]), "not a plain decimal"),
    (depth_frame(bids=[("99999999999999999", "1")]), "overflows"),
    (depth_frame(bids=[("-100", "1")]), "price must be > 0"),
    (depth_frame(bids=[("100", "-1")]), "quantity must be >= 0"),
    (depth_frame(bids=[("", "1")]), "empty"),
    (depth_frame(first="13", last="12"), "fromVersion > toVersion"),
    (depth_frame(first="", last="12"), "fromVersion missing"),
    (depth_frame(first="1x", last="12"), "fromVersion"),
    (depth_frame(last="99999999999999999999"), "toVersion"),
]


@pytest.mark.parametrize("frame,where", BAD, ids=[f"{i}-{w}" for i, (_, w) in enumerate(BAD)])
def test_malformed_frames_are_counted_and_never_touch_a_book(frame, where):
    sync, sink = synced_sink()
    before = sync.book.top(), sync.book.version, sync.book.last_id
    p = MexcSpotParser(MAP, sink)
    assert p.feed_bytes(frame, True, 1) == F.FRAME_ERROR
    assert p.errors == 1 and where in p.last_error, p.last_error
    assert (sync.book.top(), sync.book.version, sync.book.last_id) == before
    # the reference rejects it too, or it is one of our stricter checks (wrong wire type)
    if reference_decode(frame, INST) is not None:
        assert "wrong wire type" in where
    ev = MexcSpotParser(MAP).decode(frame, True)
    assert len(ev) == 1 and ev[0]["type"] == "error" and where in ev[0]["reason"]


def test_bad_trades_and_tickers():
    ch = "spot@public.aggre.deals.v3.api.pb@10ms@BTCUSDT"
    for deal in [{"price": "1", "quantity": "1", "tradeType": 3}, {"price": "1", "quantity": "0", "tradeType": 1},
                 {"price": "0", "quantity": "1", "tradeType": 1}]:
        f = mp.encode_push(ch, "BTCUSDT", "publicAggreDeals", {"deals": [{"price": "1", "quantity": "1", "tradeType": 1}, deal]})
        r, ev, p = live(f)
        assert r == F.FRAME_ERROR and [e[0] for e in ev] == ["error"], deal   # no partial delivery
        assert reference_decode(f, INST) is None
    ch = "spot@public.aggre.bookTicker.v3.api.pb@10ms@BTCUSDT"
    for t in [{"bidPrice": "1"}, {"askQuantity": "1"}, {"bidPrice": "1", "bidQuantity": "1", "version": "v1"}]:
        f = mp.encode_push(ch, "BTCUSDT", "publicAggreBookTicker", t)
        assert live(f)[0] == F.FRAME_ERROR and reference_decode(f, INST) is None
    # empty sides and a version are fine
    f = mp.encode_push(ch, "BTCUSDT", "publicAggreBookTicker", {"askPrice": "2", "askQuantity": "3", "version": "77"}, send_time=5)
    assert live(f)[1] == [("bbo", MAP.id_of("BTCUSDT"), 0, 0, 200, 300000000, 77, 5, 7)]


def test_sink_exception_propagates():
    class Boom(Exception):
        pass

    sync, sink = synced_sink()
    sync.set_on_resync(lambda s, r: (_ for _ in ()).throw(Boom()))
    p = MexcSpotParser(MAP, sink)
    with pytest.raises(Boom):
        p.feed_bytes(depth_frame(first="20", last="21"), True, 0)   # gap -> resync callback raises


# ---- symbols, ignored frames ---------------------------------------------------------------------

def test_symbol_from_channel_and_unlisted():
    body = {"bids": [{"price": "1", "quantity": "1"}], "fromVersion": "1", "toVersion": "1"}
    f = mp.encode_push(AGGRE_CH, None, "publicAggreDepths", body)
    assert live(f)[1][0][1] == MAP.id_of("BTCUSDT")
    f = mp.encode_push("spot@public.limit.depth.v3.api.pb@MXUSDT@5", None, "publicLimitDepths",
                       {"bids": [{"price": "1", "quantity": "1"}], "version": "4"})
    assert live(f)[1][0][1] == MAP.id_of("MXUSDT")
    assert MexcSpotParser().decode(f, True)[0]["symbol"] == "MXUSDT"
    assert MexcSpotParser(MAP).decode(f, True)[0]["symbol"] == "MX/USDT"
    for f in [mp.encode_push(AGGRE_CH.replace("BTCUSDT", "DOGEUSDT"), "DOGEUSDT", "publicAggreDepths", body),
              mp.encode_push("nochannel", None, "publicAggreDepths", body),
              mp.encode_push(AGGRE_CH, "BTCUSDT", "publicBookTicker", {"bidPrice": "1"}),
              b"\x0a\x03abc", b""]:
        r, ev, p = live(f)
        assert r == F.FRAME_IGNORED and ev == [] and p.ignored == 1


# ---- any valid encoding ----------------------------------------------------------------------------

def item(px, q, extra=b""):
    return extra + f_len(2, q) + f_len(1, px)


def test_field_order_unknowns_duplicates_and_merge():
    sid = MAP.id_of("BTCUSDT")
    unknown = (f_varint(9, 300) + f_fixed32(10, 7) + f_fixed64(11, 8) + f_len(12, b"\xff\xfe")
               + f_group(13, f_varint(1, 1) + f_group(2, b"")))
    seg1 = (f_len(5, "12") + f_len(2, item("100.5", "1", unknown)) + unknown + f_len(4, "99") + f_varint(6, 5))
    seg2 = (f_len(1, item("101", "2")) + f_len(4, "11") + f_len(2, item("100.25", "0")) + f_len(3, "evt"))
    frame = (f_varint(6, 123) + f_len(313, seg1) + unknown + f_len(3, "BTCUSDT") + f_len(315, f_len(1, "5"))
             + f_len(313, seg1) + f_len(313, seg2) + f_len(1, AGGRE_CH) + f_varint(5, 99) + f_varint(6, 456))
    # the runtime merges the two 313 occurrences after the 315 (which cleared the first 313)
    ref = reference_sink_events(frame, INST, 7)
    r, ev, p = live(frame)
    assert ev == ref == [("depth", sid, 11, 12, 456, 7, False, [(10050, 100000000), (10025, 0)], [(10100, 200000000)])]
    assert MexcSpotParser().decode(frame, True) == reference_decode(frame)


# ---- end to end: snapshot + diffs into a BookSync ------------------------------------------------

def test_decode_and_apply_pipeline():
    sync, sink = synced_sink()          # snapshot id 9: bid 100.00 x 0.000001, ask 101.00
    sink.results = []
    p = MexcSpotParser(MAP, sink)
    frames = [depth_frame(bids=[("100.5", "1")], first="8", last="9"),        # stale
              depth_frame(bids=[("100.5", "1")], asks=[("101", "0")], first="9", last="11"),
              depth_frame(bids=[("100", "0"), ("100.25", "3")], first="12", last="12"),
              depth_frame(bids=[("99", "1")], first="14", last="15")]         # gap
    for f in frames:
        assert p.feed_bytes(f, True, 0) == F.FRAME_DEPTH
    assert sink.results[:3] == [1, 0, 0] and sink.results[3] == 3             # STALE, OK, OK, RESYNC
    assert sync.resyncs == 1 and not sync.book.in_sync


# ---- the protobuf reader primitives ------------------------------------------------------------------

def py_walk(data):
    """Plain-Python schema-less walk (reference for PB.walk)."""
    out, i, n = [], 0, len(data)

    def rv(i, maxb):
        v = s = 0
        for k in range(maxb):
            if i >= n:
                raise ValueError("truncated")
            b = data[i]
            i += 1
            if s < 64:
                v |= (b & 0x7F) << s
            if b < 0x80:
                return v & (2**64 - 1), i
            s += 7
        raise ValueError("varint")

    def skip_group(i, f, depth):
        while True:
            if i >= n:
                raise ValueError("truncated")
            t, i = rv(i, 5)
            if t > 0xFFFFFFFF or t >> 3 == 0 or t & 7 > 5:
                raise ValueError("tag")
            g, wt = t >> 3, t & 7
            if wt == 4:
                if g != f:
                    raise ValueError("end")
                return i
            if wt == 3:
                if depth + 1 >= 32:
                    raise ValueError("depth")
                i = skip_group(i, g, depth + 1)
            else:
                i, _ = value(i, wt)

    def value(i, wt):
        if wt == 0:
            v, i = rv(i, 10)
            return i, v
        if wt in (1, 5):
            k = 8 if wt == 1 else 4
            if n - i < k:
                raise ValueError("truncated")
            return i + k, int.from_bytes(data[i:i + k], "little")
        if wt == 2:
            ln, i = rv(i, 5)
            if ln >= 0x7FFFFFFF or ln > n - i:
                raise ValueError("len")
            return i + ln, data[i:i + ln]
        raise ValueError("wt")

    while i < n:
        t, i = rv(i, 5)
        if t > 0xFFFFFFFF or t >> 3 == 0 or t & 7 > 5:
            raise ValueError("tag")
        f, wt = t >> 3, t & 7
        if wt == 3:
            i = skip_group(i, f, 0)
            out.append((f, wt, None))
        elif wt == 4:
            raise ValueError("end")
        else:
            i, v = value(i, wt)
            out.append((f, wt, v))
    return out


def _same_walk(data):
    try:
        want = py_walk(data)
    except ValueError:
        want = None
    try:
        got = PB.walk(data)
    except ValueError:
        got = None
    assert got == want, data.hex()


@given(st.binary(max_size=40))
def test_reader_walk_matches_python_on_random_bytes(data):
    _same_walk(data)


wire_field = st.one_of(
    st.builds(f_varint, st.integers(1, 2**29 - 1), st.integers(-(2**63), 2**64 - 1)),
    st.builds(f_fixed32, st.integers(1, 2**29 - 1), st.integers(0, 2**32 - 1)),
    st.builds(f_fixed64, st.integers(1, 2**29 - 1), st.integers(0, 2**64 - 1)),
    st.builds(f_len, st.integers(1, 2**29 - 1), st.binary(max_size=20)),
    st.builds(lambda f, inner: f_group(f, f_varint(1, inner)), st.integers(1, 2**29 - 1), st.integers(0, 2**40)))


@given(st.lists(wire_field, max_size=8), st.integers(0, 60))
def test_reader_walk_valid_and_truncated(fields, cut):
    data = b"".join(fields)
    _same_walk(data)
    _same_walk(data[:cut])


def test_reader_primitives():
    assert PB.walk(varint(1 << 3 | 0) + varint(2**64 - 1)) == [(1, 0, 2**64 - 1)]
    assert PB.packed_varints(varint(1) + varint(300) + varint(2**63)) == [1, 300, 2**63]
    with pytest.raises(ValueError):
        PB.packed_varints(b"\x81")
    assert [PB.zigzag64(v) for v in (0, 1, 2, 3, 2**64 - 1)] == [0, -1, 1, -2, -(2**63)]
    assert PB.walk(tag(2**29 - 1, 0) + b"\x01") == [(2**29 - 1, 0, 1)]
    deep = b"".join(tag(5, 3) for _ in range(33)) + b"".join(tag(5, 4) for _ in range(33))
    with pytest.raises(ValueError, match="too deep"):
        PB.walk(deep)
    ok = b"".join(tag(5, 3) for _ in range(32)) + b"".join(tag(5, 4) for _ in range(32))
    assert PB.walk(ok) == [(5, 3, None)]
    for bad in (b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"\xe0\x80\x80", b"\x80", b"\xc3"):
        assert not PB.utf8_valid(bad)
    for good in ("", "abc", "é", "：", "\U0010ffff", "spot@public"):
        assert PB.utf8_valid(good.encode())


@given(st.binary(max_size=12))
def test_utf8_check_matches_python(data):
    try:
        data.decode("utf-8")
        ok = True
    except UnicodeDecodeError:
        ok = False
    assert PB.utf8_valid(data) == ok


def test_fast_encoders_match_the_dict_path():
    ch = AGGRE_CH
    bids, asks = [("100.5", "1"), ("100.4", "0")], [("101", "2")]
    lv = lambda xs: [{"price": p, "quantity": q} for p, q in xs]
    assert mp.encode_aggre_depth(ch, "BTCUSDT", bids, asks, 5, 7, event_type="e", send_time=9) == mp.encode_push(
        ch, "BTCUSDT", "publicAggreDepths", {"bids": lv(bids), "asks": lv(asks), "eventType": "e",
                                             "fromVersion": "5", "toVersion": "7"}, send_time=9)
    assert mp.encode_limit_depth(ch, None, bids, asks, 8, create_time=3) == mp.encode_push(
        ch, None, "publicLimitDepths", {"bids": lv(bids), "asks": lv(asks), "version": "8"}, create_time=3)
    deals = [("1.5", "2", 1, 77), ("1.6", "3", 2, 78, "123")]
    assert mp.encode_aggre_deals(ch, "BTCUSDT", deals) == mp.encode_push(ch, "BTCUSDT", "publicAggreDeals", {"deals": [
        {"price": "1.5", "quantity": "2", "tradeType": 1, "time": 77},
        {"price": "1.6", "quantity": "3", "tradeType": 2, "time": 78, "tradeId": "123"}]})
    assert mp.encode_aggre_book_ticker(ch, "BTCUSDT", None, ("2", "3"), version=4) == mp.encode_push(
        ch, "BTCUSDT", "publicAggreBookTicker", {"askPrice": "2", "askQuantity": "3", "version": "4"})
    # an empty body still selects the oneof (the parser sees a depth push with no levels)
    f = mp.encode_aggre_depth(ch, "BTCUSDT", [], [], 1, 1)
    assert live(f)[1] == [("depth", MAP.id_of("BTCUSDT"), 1, 1, 0, 7, False, [], [])]

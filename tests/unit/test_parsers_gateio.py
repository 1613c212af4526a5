"""Gate spot/futures parsers: every reference sample, live conversion at instrument scales, control and
private frames, errors that never touch a book, any-order/escaped JSON, and BookSync end to end."""
import json
import pathlib

import orjson
import pytest
from hypothesis import given, strategies as st

from cexnode._core import feed as F
from cexnode._core import symbols as S
from cexnode._core.book import (APPLY_OK, APPLY_STALE, Book, BookSync, SYNC_SNAPSHOT_DIFF, SYNC_STREAM_FULL)
from cexnode._core.parsers import json as J
from cexnode._core.parsers.gateio_futures import GateFuturesParser
from cexnode._core.parsers.gateio_spot import GateSpotParser, classify_control, normalize_private
from cexnode._core.parsers.recording import BookSyncSink, RecordingSink
from reference import long_decimals
from reference.gate_ref import reference_decode, reference_sink_events
from support.gate_parsers import FUT, INST, PARSERS, SPOT, norm

RES = pathlib.Path(__file__).resolve().parents[1] / "resources"
SPOT_SAMPLES = sorted(p.name for p in (RES / "gateio_spot").glob("ws_*.json"))
FUT_SAMPLES = sorted(p.name for p in (RES / "gateio_futures").glob("ws_*.json"))


def sample(venue, name):
    return (RES / venue / name).read_bytes()


def live(venue, frame, recv_ns=7):
    cls, m = PARSERS[venue]
    sink = RecordingSink()
    p = cls(m, sink)
    r = p.feed_bytes(frame, False, recv_ns)
    return r, sink.events, p


def sid(m, vs):
    return m.id_of(vs)


TOO_PRECISE_FOR_TICK = {"ws_order_book_update_full.doc.json"}     # 19137.74 on a 0.1-tick BTC_USDT


# ---- every reference sample --------------------------------------------------------------------------

@pytest.mark.parametrize("venue,name", [("gateio_spot", n) for n in SPOT_SAMPLES] + [("gateio_futures", n) for n in FUT_SAMPLES])
def test_sample_decode_matches_reference(venue, name):
    frame = sample(venue, name)
    cls, m = PARSERS[venue]
    assert cls().decode(frame) == reference_decode(frame, venue)          # raw mode: never an error
    assert all(e["type"] != "error" for e in cls().decode(frame))
    assert norm(cls(m).decode(frame)) == norm(reference_decode(frame, venue, INST[venue]))
    r, events, p = live(venue, frame)
    assert [e[:3] if e[0] == "message" else (e[:2] if e[0] == "error" else e) for e in events] == \
        reference_sink_events(frame, venue, INST[venue], 7)
    assert p.errors == (1 if name in TOO_PRECISE_FOR_TICK else 0), p.last_error


@pytest.mark.parametrize("venue,name", [("gateio_spot", n) for n in SPOT_SAMPLES] + [("gateio_futures", n) for n in FUT_SAMPLES])
def test_samples_with_18_decimals_same_events(venue, name):
    """Every price/size string padded to 18 fraction digits: live mantissas unchanged, decode gives
    the same values (the padded strings verbatim), and never an error the unpadded frame lacks."""
    frame = sample(venue, name)
    padded = long_decimals.pad_gate_frame(frame)
    cls, m = PARSERS[venue]
    # error reasons and private messages quote the strings; market events carry only mantissas
    same = lambda evs: [e[:2] if e[0] == "error" else (e[:3] if e[0] == "message" else e) for e in evs]
    assert same(live(venue, padded)[1]) == same(live(venue, frame)[1])
    raw, raw_plain = cls().decode(padded), cls().decode(frame)
    assert raw == reference_decode(padded, venue)
    assert long_decimals.normalized(raw) == long_decimals.normalized(raw_plain)
    assert all(e["type"] != "error" for e in raw)


def test_spot_order_book_update_values():
    f = sample("gateio_spot", "ws_order_book_update.json")
    assert GateSpotParser().decode(f) == [{
        "venue": "gateio_spot", "symbol": "BTC_USDT", "type": "book_delta", "ts": 1682689045398,
        "first": 13934528633, "last": 13934528633, "bids": [["29291.4", "0.5124"]], "asks": []}]
    assert GateSpotParser(SPOT).decode(f)[0]["symbol"] == "BTC/USDT"
    r, ev, p = live("gateio_spot", f)
    assert r == F.FRAME_DEPTH and p.depth_updates == 1
    # BTC/USDT: price_scale 1, qty_scale 8 (6 step decimals + 2 headroom)
    assert ev == [("depth", SPOT.venue, sid(SPOT, "BTC_USDT"), 13934528633, 13934528633, 1682689045398, 7,
                   False, [(292914, 51_240_000)], [])]


def test_spot_full_and_obu_values():
    f = sample("gateio_spot", "ws_order_book_update_full.doc.json").replace(b"19137.74", b"19137.7").replace(
        b"19088.37", b"19088.3").replace(b"19137.75", b"19137.8")
    r, ev, _ = live("gateio_spot", f)
    assert ev[0][3:8] == (48776301, 48776306, 1606294781123, 7, True)
    assert ev[0][8:] == ([(191377, 10_000), (190883, 0)], [(191378, 61_350_000)])
    r, ev, p = live("gateio_spot", sample("gateio_spot", "ws_obu_full.json"))
    assert r == F.FRAME_DEPTH and ev[0][3:8] == (25847113075, 25847113075, 1754006400261, 7, True)
    assert ev[0][8][0] == (1157651, 33_783_900) and ev[0][9][0] == (1157652, 63_115_500)
    r, ev, p = live("gateio_spot", sample("gateio_spot", "ws_obu_update.json"))
    assert ev[0][3:8] == (25847129970, 25847129996, 1754006460600, 7, False)
    assert ev[0][8][2] == (1157177, 0)


def test_spot_full_too_precise_for_tick_is_an_error():
    # 19137.74 has 2 decimals, BTC_USDT here has tick 0.1 (price_scale 1): never truncated
    r, ev, p = live("gateio_spot", sample("gateio_spot", "ws_order_book_update_full.doc.json"))
    assert r == F.FRAME_ERROR and p.errors == 1
    assert "more decimals" in p.last_error and "19137.74" in p.last_error
    assert ev == [("error", SPOT.venue, p.last_error)]


def test_spot_book_ticker_and_trades_values():
    r, ev, _ = live("gateio_spot", sample("gateio_spot", "ws_book_ticker.json"))
    assert r == F.FRAME_BBO
    # ETC/ETH: price_scale 6, qty_scale 5
    assert ev == [("bbo", 1, sid(SPOT, "ETC_ETH"), 10326, 100, 10366, 1_000_000, 517377894, 1682689046131, 7)]
    r, ev, _ = live("gateio_spot", sample("gateio_spot", "ws_trades.json"))
    assert r == F.FRAME_TRADE
    assert ev == [("trade", 1, sid(SPOT, "TLOS_BTC"), 644, 8_923_800, 1, 5541729598, 1682689046123, 7)]
    r, ev, _ = live("gateio_spot", sample("gateio_spot", "ws_trades.doc.json"))
    assert ev == [("trade", 1, sid(SPOT, "GT_USDT"), 4705, 164_700, -1, 309143071, 1606292218213, 7)]


def test_futures_values_contracts_to_base():
    # BTC_USDT: 1 contract = 0.0001 BTC; qty_scale 8 (shared with spot BTC/USDT) -> qty_mult 10_000
    assert FUT.instrument("BTC_USDT")["qty_mult"] == 10_000
    r, ev, _ = live("gateio_futures", sample("gateio_futures", "ws_order_book_update.json"))
    assert ev == [("depth", 2, sid(FUT, "BTC_USDT"), 562559265, 562559265, 1733899016364, 7, False,
                   [(961869, 105_000_000), (974787, 220_000), (830800, 0)], [])]
    # decode keeps venue units (contracts), exactly as sent
    assert GateFuturesParser(FUT).decode(sample("gateio_futures", "ws_order_book_update.json"))[0]["bids"] == [
        ["96186.9", "10500"], ["97478.7", "22"], ["83080", "0"]]
    r, ev, _ = live("gateio_futures", sample("gateio_futures", "ws_book_ticker.json"))
    assert ev == [("bbo", 2, sid(FUT, "BTC_USDT"), 1011140, 33_570_000, 1011141, 258_050_000, 562921416,
                   1733972741772, 7)]
    r, ev, _ = live("gateio_futures", sample("gateio_futures", "ws_trades.json"))
    assert [e[3:7] for e in ev] == [(453000, 10_000, 1, 13654526), (453000, 20_000_000, 1, 13654527),
                                    (453000, 9_990_000, 1, 13654528)]


def test_futures_decimal_sizes_exact():
    # ETH_USDT: decimal contracts at 2 decimals, 0.01 ETH each; ETH qty_scale 6 (spot step 4 + 2) -> mult 100
    assert FUT.instrument("ETH_USDT")["venue_qty_scale"] == 2 and FUT.instrument("ETH_USDT")["qty_mult"] == 100
    r, ev, _ = live("gateio_futures", sample("gateio_futures", "ws_book_ticker_decimal.json"))
    assert ev == [("bbo", 2, sid(FUT, "ETH_USDT"), 217282, 0, 217285, 10_535_000, 92738902534, 1774443214909, 7)]
    r, ev, _ = live("gateio_futures", sample("gateio_futures", "ws_trades_decimal.json"))
    assert ev == [("trade", 2, sid(FUT, "ETH_USDT"), 217144, 2_500, -1, 1, 1774443183399, 7)]
    # a fractional size on the integer-contract instrument is an error, never truncated
    f = b'{"channel":"futures.trades","event":"update","result":[{"size":"-0.5","id":1,"price":"1","contract":"BTC_USDT"}]}'
    r, ev, p = live("gateio_futures", f)
    assert r == F.FRAME_ERROR and "more decimals" in p.last_error and ev == [("error", 2, p.last_error)]


def test_futures_empty_side_and_order_id_exact():
    r, ev, p = live("gateio_futures", sample("gateio_futures", "ws_book_ticker_empty_side.json"))
    assert r == F.FRAME_IGNORED          # BSW_USDT is not listed
    assert GateFuturesParser().decode(sample("gateio_futures", "ws_book_ticker_empty_side.json"))[0] == {
        "venue": "gateio_futures", "symbol": "BSW_USDT", "type": "bbo", "ts": 0, "bid": None, "bid_qty": None,
        "ask": None, "ask_qty": None, "seq": 0}
    f = sample("gateio_futures", "ws_book_ticker_empty_side.json").replace(b"BSW_USDT", b"BTC_USDT")
    r, ev, p = live("gateio_futures", f)
    assert ev == [("bbo", 2, sid(FUT, "BTC_USDT"), 0, 0, 0, 0, 0, 0, 7)]
    r, ev, p = live("gateio_futures", sample("gateio_futures", "ws_orders.json"))
    assert r == F.FRAME_MESSAGE and ev[0][2] == F.MSG_ORDER
    msg = ev[0][3]
    assert msg["id"] == "58828270140012048" and msg["raw"]["id"] == 58828270140012048
    assert msg["side"] == "buy" and msg["qty"] == "1" and msg["price"] == "93000" and msg["symbol"] == "BTC_USDT"


# ---- control and private frames ---------------------------------------------------------------------

def test_control_frames():
    r, ev, p = live("gateio_spot", sample("gateio_spot", "ws_subscribe_ack.json"))
    assert r == F.FRAME_MESSAGE and ev[0][2] == F.MSG_ACK and ev[0][3]["channel"] == "spot.obu"
    assert ev[0][3]["payload"] == ["ob.MAF_USDT.400"] and p.messages == 1
    r, ev, _ = live("gateio_spot", sample("gateio_spot", "ws_subscribe_error.json"))
    assert ev[0][2] == F.MSG_ERROR and ev[0][3]["code"] == 2 and ev[0][3]["message"] == "Alert sub ob.BTC_USDT.400"
    r, ev, _ = live("gateio_spot", sample("gateio_spot", "ws_pong.json"))
    assert ev[0][2] == F.MSG_PONG
    r, ev, _ = live("gateio_futures", sample("gateio_futures", "ws_pong.json"))
    assert ev[0][2] == F.MSG_PONG
    r, ev, _ = live("gateio_futures", sample("gateio_futures", "ws_subscribe_ack.json"))
    assert ev[0][2] == F.MSG_ACK and ev[0][3]["payload"] == ["16792411", "BTC_USDT"]
    # a frame without a channel
    r, ev, _ = live("gateio_spot", b'{"time": 1}')
    assert r == F.FRAME_MESSAGE and ev[0][2] == F.MSG_OTHER


def test_private_pushes():
    r, ev, _ = live("gateio_spot", sample("gateio_spot", "ws_orders.doc.json"))
    assert [e[2] for e in ev] == [F.MSG_ORDER]
    o = ev[0][3]
    assert (o["id"], o["client_id"], o["side"], o["price"], o["qty"], o["event"], o["finish_as"]) == \
        ("399123456", "t-testtext", "sell", "26253.3", "0.0001", "put", "open")
    r, ev, _ = live("gateio_spot", sample("gateio_spot", "ws_usertrades.doc.json"))
    f = ev[0][3]
    assert ev[0][2] == F.MSG_FILL and (f["id"], f["order_id"], f["qty"], f["role"], f["fee"]) == \
        ("5736713", "30784428", "1.00000000", "taker", "0.00200000000000")
    r, ev, _ = live("gateio_spot", sample("gateio_spot", "ws_balances.doc.json"))
    b = ev[0][3]
    assert ev[0][2] == F.MSG_BALANCE and (b["currency"], b["total"], b["available"]) == ("USDT", "222244.3827652", "222244.3827")


def test_ws_api_responses():
    ack = {"request_id": "r-1", "ack": True, "header": {"response_time": "1681986204784", "status": "200",
           "channel": "spot.order_place", "event": "api", "client_id": "x", "conn_id": "c"},
           "data": {"result": {"req_id": "r-1", "req_param": {"text": "t-abc"}}}}
    r, ev, _ = live("gateio_spot", orjson.dumps(ack))
    m = ev[0][3]
    assert ev[0][2] == F.MSG_API_RESPONSE and m["ack"] is True and m["ok"] and m["channel"] == "spot.order_place"
    order = {"request_id": "r-1", "header": {"status": "200", "channel": "futures.order_place", "event": "api"},
             "data": {"result": {"id": 58828270140012048, "size": -3, "status": "finished", "finish_as": "ioc"}}}
    r, ev, _ = live("gateio_futures", orjson.dumps(order))
    m = ev[0][3]
    assert m["ack"] is False and m["result"]["id"] == 58828270140012048 and m["request_id"] == "r-1"
    rej = {"request_id": "r-2", "header": {"status": "400", "channel": "spot.order_place", "event": "api"},
           "data": {"errs": {"label": "BALANCE_NOT_ENOUGH", "message": "Not enough balance"}}}
    r, ev, _ = live("gateio_spot", orjson.dumps(rej))
    m = ev[0][3]
    assert ev[0][2] == F.MSG_API_RESPONSE and not m["ok"] and m["error"]["label"] == "BALANCE_NOT_ENOUGH"
    assert classify_control({"header": {"status": "200"}, "data": {}})[0] == F.MSG_API_RESPONSE
    assert normalize_private("futures.orders", {"size": -2, "id": 1})[1]["side"] == "sell"


# ---- errors: counted, reported, never a book touch ------------------------------------------------------

BAD_SPOT = [
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":4,"b":[["1","1"]]}}', "U > u"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6,"b":[["1.05","1"]]}}', "more decimals"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6,"b":[["1","1e3"]]}}', "not a plain decimal"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6,"b":[["99999999999999999999","1"]]}}', "overflow"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6,"b":[["1","-1"]]}}', ">= 0"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6,"b":[["0","1"]]}}', "> 0"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6,"b":[[1,"1"]]}}', "string"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6,"b":[["1","1","2"]]}}', "2 elements"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"b":[]}}', "u missing"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","u":5,"b":[]}}', "U missing"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":1.0e1}}', "u: not"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6,"full":1}}', "full"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6,"b":[["1","1"]]}', "json"),
    (b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":5,"u":6}} x', "json"),
    (b'{"channel":"spot.obu","result":{"s":"BTC_USDT","u":6,"full":true}}', "ob.<PAIR>"),
    (b'{"channel":"spot.order_book_update","event":"update"}', "result missing"),
    (b'{"channel":"spot.book_ticker","event":"update","result":{"s":"BTC_USDT","b":"1","B":""}}', "without a size"),
    (b'{"channel":"spot.book_ticker","event":"update","result":{"s":"BTC_USDT","b":"","B":"2"}}', "without a price"),
    (b'{"channel":"spot.trades","event":"update","result":{"currency_pair":"BTC_USDT","price":"1","amount":"1","side":"up"}}', "buy or sell"),
    (b'{"channel":"spot.trades","event":"update","result":{"currency_pair":"BTC_USDT","price":"1","amount":"0","side":"buy"}}', "> 0"),
    (b'{"channel":"spot.trades","event":"update","result":{"currency_pair":"BTC_USDT","price":"1","amount":"1","side":"buy","id":-1}}', "id"),
    (b'[1, 2]', "not a JSON object"),
    (b'{"channel":"spot.trades","event":"update","result":{"currency_pair":"BTC_USDT","price":"\xff"}}', "UTF-8"),
    (b'', "json"),
]


@pytest.mark.parametrize("frame,why", BAD_SPOT)
def test_malformed_frames_are_counted_and_never_touch_a_book(frame, why):
    book = Book(sid(SPOT, "BTC_USDT"), SPOT.venue)
    sync = BookSync(book, SYNC_SNAPSHOT_DIFF)
    sync.py_snapshot(4, [(10, 100)], [(20, 100)])
    version = book.version
    sink = BookSyncSink({book.symbol_id: sync}, record=True)
    sink.results = []
    p = GateSpotParser(SPOT, sink)
    assert p.feed_bytes(frame) == F.FRAME_ERROR
    assert p.errors == 1 and why in p.last_error, p.last_error
    assert sink.results == [] and book.version == version and book.top() == ([(10, 100)], [(20, 100)])
    assert sink.events == [("error", SPOT.venue, p.last_error)]
    assert norm(GateSpotParser().decode(frame)) == norm(reference_decode(frame, "gateio_spot"))
    assert reference_sink_events(frame, "gateio_spot", INST["gateio_spot"]) == [("error", 1)]


def test_unlisted_symbol_is_ignored():
    f = b'{"channel":"spot.order_book_update","event":"update","result":{"s":"DOGE_USDT","U":5,"u":6,"b":[["0.123456789","1"]]}}'
    r, ev, p = live("gateio_spot", f)
    assert r == F.FRAME_IGNORED and ev == [] and p.ignored == 1 and p.errors == 0
    assert GateSpotParser().decode(f)[0]["symbol"] == "DOGE_USDT"
    # futures channels on the spot parser (and the reverse) are not ours
    assert live("gateio_spot", sample("gateio_futures", "ws_order_book_update.json"))[0] == F.FRAME_IGNORED
    assert live("gateio_futures", sample("gateio_spot", "ws_order_book_update.json"))[0] == F.FRAME_IGNORED


def test_sink_exception_propagates():
    class Boom(Exception):
        pass

    def on_resync(s, reason):
        raise Boom()

    book = Book(sid(SPOT, "BTC_USDT"), SPOT.venue)
    sync = BookSync(book, SYNC_SNAPSHOT_DIFF, on_resync=on_resync)
    sync.py_snapshot(4, [(10, 100)], [(20, 100)])
    p = GateSpotParser(SPOT, BookSyncSink({book.symbol_id: sync}))
    with pytest.raises(Boom):   # a gap -> resync callback raises -> feed returns -1 with the exception
        p.feed_bytes(b'{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":9,"u":9}}')


# ---- any valid JSON ---------------------------------------------------------------------------------

def test_key_order_whitespace_escapes_extra_fields():
    base = sample("gateio_spot", "ws_order_book_update.json")
    want = GateSpotParser(SPOT).decode(base)
    variants = [
        # result before channel, extra nested fields, escapes in keys and values
        b'{"result":{"a":[],"b":[["29291.4","0.5124"]],"u":13934528633,"U":13934528633,"s":"BTC_USDT",'
        b'"t":1682689045398,"x":{"y":[1,{"z":null}]}},"event":"update","channel":"spot.order_book_update"}',
        b' \n{ "time" : 1 , "channel" :"spot.\\u006frder_book_update",\t"event":"upd\\u0061te", "result" : '
        b'{ "t" : 1682689045398 , "\\u0073" : "BTC\\u005fUSDT" , "\\u0055" : 13934528633 , "u" : "13934528633" ,'
        b' "b" : [ [ "29291\\u002e4" , "0.5124" ] ] , "\\u0061" : [ ] , "f\\u0075ll" : false } } \r\n',
        # duplicate keys: the last one wins (orjson's rule)
        b'{"channel":"spot.trades","result":{"b":5},"channel":"spot.order_book_update","event":"update",'
        b'"result":{"s":"ETH_USDT","b":7,"s":"BTC_USDT","U":13934528633,"u":13934528633,"t":1682689045398,'
        b'"b":[["29291.4","0.5124"]]}}',
    ]
    for v in variants:
        assert orjson.loads(v)
        assert GateSpotParser(SPOT).decode(v) == want, v
        assert reference_decode(v, "gateio_spot", INST["gateio_spot"]) == want


def test_json_cursor_matches_orjson_on_samples():
    for venue, names in (("gateio_spot", SPOT_SAMPLES), ("gateio_futures", FUT_SAMPLES)):
        for n in names:
            b = sample(venue, n)
            assert J.loads(b) == orjson.loads(b)
            assert J.scan(b) is None
    for bad in [b'{"a":1,}', b'[01]', b'"\\x"', b'"\\ud800"', b'{"a" 1}', b'nul', b'1.', b'-', b'\xef\xbb\xbf{}', b'{"a":1}{}']:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(bad)
        with pytest.raises(J.JsonDecodeError):
            J.loads(bad)
        assert J.scan(bad) is not None


# ---- BookSync end to end ----------------------------------------------------------------------------

def _push(U, u, bids=(), asks=(), full=False, ch="spot.order_book_update", s="BTC_USDT"):
    r = {"t": 1, "s": s, "U": U, "u": u, "b": [list(x) for x in bids], "a": [list(x) for x in asks]}
    if full:
        r["full"] = True
    return orjson.dumps({"time": 1, "time_ms": 2, "channel": ch, "event": "update", "result": r})


def test_booksync_end_to_end_snapshot_diff_full_reset():
    book = Book(sid(SPOT, "BTC_USDT"), SPOT.venue)
    sync = BookSync(book, SYNC_SNAPSHOT_DIFF)
    sink = BookSyncSink({book.symbol_id: sync})
    sink.results = []
    p = GateSpotParser(SPOT, sink)
    p.feed_bytes(_push(99, 101, [("100.0", "1")]))          # before the snapshot: buffered
    sync.py_snapshot(100, [(1000, 100_000_000)], [(1010, 100_000_000)])
    p.feed_bytes(_push(102, 103, [("100.5", "2")], [("101", "0")]))
    p.feed_bytes(_push(102, 103, [("100.5", "9")]))          # duplicate: stale
    assert sink.results[-2:] == [APPLY_OK, APPLY_STALE]
    assert book.last_id == 103 and book.top() == ([(1005, 200_000_000), (1000, 100_000_000)], [])
    p.feed_bytes(_push(200, 210, [("90", "1")], [("91", "1")], full=True))   # full: replaces the book
    assert book.top() == ([(900, 100_000_000)], [(910, 100_000_000)]) and book.last_id == 210
    p.feed_bytes(_push(211, 211, [], [("91", "0.5")]))
    assert book.top() == ([(900, 100_000_000)], [(910, 50_000_000)]) and sync.resyncs == 0


def test_booksync_obu_stream_full():
    book = Book(sid(FUT, "BTC_USDT"), FUT.venue)
    sync = BookSync(book, SYNC_STREAM_FULL)
    sink = BookSyncSink({book.symbol_id: sync})
    p = GateFuturesParser(FUT, sink)
    obu = sample("gateio_futures", "ws_obu_full.doc.json")
    upd = sample("gateio_futures", "ws_obu_update.doc.json")
    assert p.feed_bytes(upd) == F.FRAME_DEPTH and not book.in_sync        # ignored until the full push
    p.feed_bytes(obu)
    assert book.in_sync and book.top() == ([(837059, 301_660_000)], [(837060, 42_080_000)])
    p.feed_bytes(upd)
    assert book.last_id == 79072179694 and book.top(1)[0] == [(837059, 301_660_000)] and sync.resyncs == 0


# ---- decimal conversion == fixedpoint.parse_decimal (the inline fast path included) -------------------

def _scales_registry():
    r = S.SymbolRegistry(qty_headroom=0)
    for k in range(0, 10):
        tick = "1" if k == 0 else "0." + "0" * (k - 1) + "1"
        r.add_instrument({"venue": "gateio_spot", "symbol": "S%d/USDT" % k, "venue_symbol": "S%d_USDT" % k,
                          "tick": tick, "qty_step": "1"})
    return r.freeze().map("gateio_spot")


SCALES = _scales_registry()


@given(st.text("0123456789.-", max_size=24) | st.from_regex(r"\A-?[0-9]{1,20}(\.[0-9]{1,20})?\Z"),
       st.integers(0, 9))
def test_price_conversion_equals_fixedpoint(text, k):
    from cexnode._core import fixedpoint as FP

    vs = "S%d_USDT" % k
    scale = SCALES.instrument(vs)["price_scale"]
    assert scale == k
    frame = orjson.dumps({"channel": "spot.book_ticker", "event": "update",
                          "result": {"s": vs, "u": 1, "b": text, "B": "1" if text else "", "a": "", "A": "0"}})
    sink = RecordingSink()
    p = GateSpotParser(SCALES, sink)
    r = p.feed_bytes(frame)
    try:
        want = FP.parse(text, scale)
    except ValueError:
        want = None
    if text == "":
        assert r == F.FRAME_BBO and sink.events[0][3] == 0          # empty side
    elif want is None or want <= 0:
        assert r == F.FRAME_ERROR, (text, scale, sink.events)
    else:
        assert r == F.FRAME_BBO and sink.events[0][3] == want, (text, scale)


def test_booksync_sink_two_symbols_alternating():
    syncs = {}
    for vs in ("BTC_USDT", "ETH_USDT"):
        book = Book(sid(SPOT, vs), SPOT.venue)
        syncs[book.symbol_id] = BookSync(book, SYNC_SNAPSHOT_DIFF)
        syncs[book.symbol_id].py_snapshot(10, [], [])
    p = GateSpotParser(SPOT, BookSyncSink(syncs))
    for k in range(11, 15):
        p.feed_bytes(_push(k, k, [("%d.5" % (100 + k), "1")], s="BTC_USDT"))
        p.feed_bytes(_push(k, k, [("%d.25" % (200 + k), "2")], s="ETH_USDT"))
        p.feed_bytes(_push(99, 99, [("1", "1")], s="DOGE_USDT"))          # not listed: ignored
    btc, eth = syncs[sid(SPOT, "BTC_USDT")].book, syncs[sid(SPOT, "ETH_USDT")].book
    assert p.errors == 0 and p.ignored == 4
    assert btc.last_id == eth.last_id == 14 and btc.counts() == (4, 0) and eth.counts() == (4, 0)
    assert btc.best_bid() == (1145, 100_000_000)          # BTC/USDT price_scale 1, qty_scale 8
    assert eth.best_bid() == (21425, 2_000_000)           # ETH/USDT price_scale 2, qty_scale 6

"""The body oneof of PushDataV3ApiWrapper, decoded as the official runtime does (issue 20 item 4).

The runtime keeps the LAST oneof member it reads. Members the schema did not declare (309, 310,
312, ...) used to be skipped as unknown fields, so a depth push followed by a miniTicker member
was still applied as depth. Here: the schema declares every official member (checked against the
official .proto), a depth member followed by 309/310/312 is not depth, one preceded by them is,
and random sequences of members (built by the runtime, concatenated raw: its serializer never
writes two) are decoded by our parser and by ``ParseFromString`` + ``WhichOneof`` alike.
"""
import pathlib

import pytest
from hypothesis import given, settings, strategies as st

from cexnode._core import feed as F
from cexnode._core import symbols as S
from cexnode._core.parsers.mexc_spot import CollectSink, MexcSpotParser
from cexnode.sim.venues.mexc_spot import proto as mp
from reference.mexc_ref import (MEMBERS, f_len, f_varint, reference_decode, reference_sink_events,
                                runtime_member)

RES = pathlib.Path(__file__).resolve().parents[1] / "resources" / "mexc"

# PushDataV3ApiWrapper.proto, mexcdevelop/websocket-proto @ 7b8ac7a6681f28551612a5a7cefbb7e09b56bb85
OFFICIAL_BODY = {
    301: ("publicDeals", "PublicDealsV3Api"), 302: ("publicIncreaseDepths", "PublicIncreaseDepthsV3Api"),
    303: ("publicLimitDepths", "PublicLimitDepthsV3Api"), 304: ("privateOrders", "PrivateOrdersV3Api"),
    305: ("publicBookTicker", "PublicBookTickerV3Api"), 306: ("privateDeals", "PrivateDealsV3Api"),
    307: ("privateAccount", "PrivateAccountV3Api"), 308: ("publicSpotKline", "PublicSpotKlineV3Api"),
    309: ("publicMiniTicker", "PublicMiniTickerV3Api"), 310: ("publicMiniTickers", "PublicMiniTickersV3Api"),
    311: ("publicBookTickerBatch", "PublicBookTickerBatchV3Api"),
    312: ("publicIncreaseDepthsBatch", "PublicIncreaseDepthsBatchV3Api"),
    313: ("publicAggreDepths", "PublicAggreDepthsV3Api"), 314: ("publicAggreDeals", "PublicAggreDealsV3Api"),
    315: ("publicAggreBookTicker", "PublicAggreBookTickerV3Api"),
}
# the bodies added to the schema for this issue, field by field from the same commit's .proto files
S_, I32, I64 = "string", "int32", "int64"
OFFICIAL_FIELDS = {
    "PublicDealsV3Api": [("deals", 1, "PublicDealsV3ApiItem"), ("eventType", 2, S_)],
    "PublicDealsV3ApiItem": [("price", 1, S_), ("quantity", 2, S_), ("tradeType", 3, I32), ("time", 4, I64)],
    "PublicIncreaseDepthsV3Api": [("asks", 1, "PublicIncreaseDepthV3ApiItem"), ("bids", 2, "PublicIncreaseDepthV3ApiItem"),
                                  ("eventType", 3, S_), ("version", 4, S_)],
    "PublicIncreaseDepthV3ApiItem": [("price", 1, S_), ("quantity", 2, S_)],
    "PublicIncreaseDepthsBatchV3Api": [("items", 1, "PublicIncreaseDepthsV3Api"), ("eventType", 2, S_)],
    "PublicSpotKlineV3Api": [("interval", 1, S_), ("windowStart", 2, I64), ("openingPrice", 3, S_),
                             ("closingPrice", 4, S_), ("highestPrice", 5, S_), ("lowestPrice", 6, S_),
                             ("volume", 7, S_), ("amount", 8, S_), ("windowEnd", 9, I64)],
    "PublicMiniTickerV3Api": [(n, i + 1, S_) for i, n in enumerate(
        ["symbol", "price", "rate", "zonedRate", "high", "low", "volume", "quantity", "lastCloseRate",
         "lastCloseZonedRate", "lastCloseHigh", "lastCloseLow"])],
    "PublicMiniTickersV3Api": [("items", 1, "PublicMiniTickerV3Api")],
    "PublicBookTickerBatchV3Api": [("items", 1, "PublicBookTickerV3Api"), ("version", 2, S_),
                                   ("lastOrderCreateTime", 3, I64)],
}
_TYPES = {9: S_, 5: I32, 3: I64}


def _registry():
    r = S.SymbolRegistry()
    r.add_instrument({"venue": "mexc_spot", "symbol": "BTC/USDT", "venue_symbol": "BTCUSDT", "tick": "0.01",
                      "qty_step": "0.000001"})
    return r.freeze()


MAP = _registry().map("mexc_spot")
_I = MAP.instrument("BTCUSDT")
INST = {"BTCUSDT": dict(name=_I["symbol"], symbol_id=_I["symbol_id"], price_scale=_I["price_scale"],
                        venue_qty_scale=_I["venue_qty_scale"], qty_mult=_I["qty_mult"])}


def live(frame):
    sink = CollectSink()
    p = MexcSpotParser(MAP, sink)
    return p.feed_bytes(frame, True, 7), sink.events, p


def which(frame):
    return mp.PushDataV3ApiWrapper.FromString(frame).WhichOneof("body")


# ---- the schema -------------------------------------------------------------------------------------

def test_schema_declares_every_official_oneof_member():
    oneof = mp.PushDataV3ApiWrapper.DESCRIPTOR.oneofs_by_name["body"]
    assert {f.number: (f.name, f.message_type.name) for f in oneof.fields} == OFFICIAL_BODY
    assert MEMBERS == {n: name for n, (name, _) in OFFICIAL_BODY.items()}


@pytest.mark.parametrize("name", sorted(OFFICIAL_FIELDS))
def test_schema_fields_match_the_official_proto(name):
    d = mp.message_class(name).DESCRIPTOR
    got = [(f.name, f.number, f.message_type.name if f.message_type else _TYPES[f.type]) for f in d.fields]
    assert got == OFFICIAL_FIELDS[name]
    assert [f.name for f in d.fields if f.is_repeated] == [n for n, _, t in OFFICIAL_FIELDS[name] if t.endswith("Item")
                                                           or t in ("PublicIncreaseDepthsV3Api", "PublicMiniTickerV3Api",
                                                                    "PublicBookTickerV3Api")]


# ---- last member wins: the real depth sample with a deprecated member after / before it -------------

DEPTH = bytes.fromhex((RES / "ws_push_aggre_depth.pb.hex").read_text().strip())     # REAL (tardis capture)
LATER = {
    309: mp.message_class("PublicMiniTickerV3Api")(symbol="BTCUSDT", price="61759.73", rate="0.01").SerializeToString(),
    310: mp.message_class("PublicMiniTickersV3Api")(items=[{"symbol": "BTCUSDT", "price": "61759.73"}]).SerializeToString(),
    312: mp.message_class("PublicIncreaseDepthsBatchV3Api")(
        items=[{"bids": [{"price": "61759.73", "quantity": "1"}], "version": "74891313264"}],
        eventType="spot@public.increase.depth.batch.v3.api.pb").SerializeToString(),
}


@pytest.mark.parametrize("number", sorted(LATER))
def test_depth_followed_by_a_deprecated_member_is_not_depth(number):
    frame = DEPTH + f_len(number, LATER[number])
    assert which(frame) == MEMBERS[number]
    r, events, p = live(frame)
    assert r == F.FRAME_IGNORED and events == [] and p.errors == 0 and p.depth_updates == 0
    assert MexcSpotParser().decode(frame, True) == [] == reference_decode(frame)


@pytest.mark.parametrize("number", sorted(LATER))
def test_deprecated_member_before_depth_is_replaced_by_it(number):
    frame = f_len(number, LATER[number]) + DEPTH
    assert which(frame) == "publicAggreDepths"
    r, events, p = live(frame)
    assert r == F.FRAME_DEPTH and events == reference_sink_events(frame, INST, 7) == live(DEPTH)[1]
    assert events[0][0] == "depth" and events[0][2:4] == (74891313263, 74891313263)
    assert MexcSpotParser().decode(frame, True) == reference_decode(frame) == MexcSpotParser().decode(DEPTH, True)


@pytest.mark.parametrize("number", sorted(LATER))
def test_malformed_replaced_member_rejects_the_frame_as_the_runtime_does(number):
    bad = f_len(1, b"\xff") if number == 309 else f_len(1, f_len(1, b"\xff"))      # invalid UTF-8 inside
    for frame in (f_len(number, bad) + DEPTH, DEPTH + f_len(number, bad)):
        with pytest.raises(Exception):
            mp.PushDataV3ApiWrapper.FromString(frame)
        r, events, p = live(frame)
        assert r == F.FRAME_ERROR and [e[0] for e in events] == ["error"] and p.depth_updates == 0


def test_every_member_after_depth_wins():
    for number in sorted(MEMBERS):
        if number == 313:
            continue
        frame = DEPTH + f_len(number, b"")
        assert which(frame) == MEMBERS[number]
        r, events, _ = live(frame)
        assert r != F.FRAME_DEPTH and not [e for e in events if e[0] == "depth"], number
        want = reference_sink_events(frame, INST, 7)
        if want is None:                            # an empty limit depth has no version: rejected
            assert r == F.FRAME_ERROR and [e[0] for e in events] == ["error"], number
        elif number not in (304, 306, 307):         # private pushes reach on_message only
            assert events == want, number


# ---- differential: random member sequences vs ParseFromString + WhichOneof ---------------------------

class Draw:
    """The draw protocol of reference.mexc_ref.runtime_member over hypothesis data."""

    def __init__(self, data):
        self.d = data

    def int(self, a, b):
        return self.d.draw(st.integers(a, b))

    def p(self, prob):
        return self.d.draw(st.integers(0, 999)) < prob * 1000

    def text(self, alphabet, n):
        return self.d.draw(st.text(alphabet, max_size=n))

    def choice(self, seq):
        return seq[self.int(0, len(seq) - 1)]


PRICES = ["61759.73", "0.01", "115198.740000000000000000", "7", "62383.5"]
QTYS = ["0.0001778", "1", "0", "2.50", "0.000082350000000000"]


def _levels(d, n):
    return [{"price": d.choice(PRICES), "quantity": d.choice(QTYS)} for _ in range(d.int(0, n))]


def market_member(d, number):
    """A member we convert, with content the parser accepts (mostly): built by the runtime."""
    cls = mp.BODY_FIELDS[MEMBERS[number]][1]
    v = d.int(1, 10**11)
    if number == 313:
        m = cls(asks=_levels(d, 2), bids=_levels(d, 2), fromVersion=str(v), toVersion=str(v + d.int(0, 9)))
    elif number == 303:
        m = cls(asks=_levels(d, 2), bids=_levels(d, 2), version=str(v))
    elif number == 314:
        m = cls(deals=[{"price": d.choice(PRICES), "quantity": d.choice(QTYS[:2]), "tradeType": d.int(1, 2),
                        "time": d.int(1, 2**42)} for _ in range(d.int(1, 2))])
    elif number == 315:
        m = cls(bidPrice=d.choice(PRICES), bidQuantity=d.choice(QTYS), askPrice=d.choice(PRICES),
                askQuantity=d.choice(QTYS), version=str(v))
    else:
        m = cls(items=[{"bidPrice": d.choice(PRICES), "bidQuantity": "1", "askPrice": d.choice(PRICES),
                        "askQuantity": "2"} for _ in range(d.int(1, 2))], version=str(v))
    return m.SerializeToString()


CONVERTED = {313: F.FRAME_DEPTH, 303: F.FRAME_DEPTH, 314: F.FRAME_TRADE, 315: F.FRAME_BBO, 311: F.FRAME_BBO}
PRIVATE = {304: F.MSG_ORDER, 306: F.MSG_FILL, 307: F.MSG_BALANCE}
RAW = MexcSpotParser()


def member_frame(d):
    members = []
    for _ in range(d.int(1, 4)):
        # the deprecated members of the issue and the converted ones most often, every member sometimes
        number = d.choice([309, 310, 312, 313, 313, 303, 314, 315, 311] + sorted(MEMBERS))
        if number in CONVERTED and d.p(0.8):
            body = market_member(d, number)
        else:
            body = runtime_member(d, number)
        members.append(f_len(number, body))
    scalars = [f_len(1, "spot@public.aggre.depth.v3.api.pb@10ms@BTCUSDT"), f_len(3, "BTCUSDT"),
               f_varint(6, d.int(1, 2**42))]
    out = list(members)
    for x in scalars:                   # wrapper scalars anywhere; the members keep their order
        out.insert(d.int(0, len(out)), x)
    return b"".join(out)


@settings(max_examples=600)
@given(st.data())
def test_random_member_sequences_decode_as_the_runtime(data):
    frame = member_frame(Draw(data))
    chosen = which(frame)                               # the runtime parses every generated frame
    number = next(n for n, name in MEMBERS.items() if name == chosen)
    ref = reference_decode(frame)
    ours = RAW.decode(frame, True)
    if ref is None:                                     # a semantic rule rejects the chosen member
        assert len(ours) == 1 and ours[0]["type"] == "error"
    else:
        assert ours == ref                              # same member, same levels, versions, strings
    r, events, _ = live(frame)
    want = reference_sink_events(frame, INST, 7)
    if want is None:
        assert r == F.FRAME_ERROR
    elif number in PRIVATE:
        assert r == F.FRAME_MESSAGE and [(e[0], e[1]) for e in events] == [("message", PRIVATE[number])]
    elif number in CONVERTED and want:
        assert r == CONVERTED[number] and events == want
    else:
        assert r == F.FRAME_IGNORED and events == want == []

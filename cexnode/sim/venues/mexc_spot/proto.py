"""MEXC spot v3 push messages, built with the official ``protobuf`` runtime.

The descriptors are built programmatically (``descriptor_pb2`` → a private ``DescriptorPool`` →
``message_factory.GetMessageClass``) from the official ``.proto`` files of mexcdevelop/websocket-proto
@ 7b8ac7a6681f28551612a5a7cefbb7e09b56bb85 (2026-06-17; the field table of
``../shared/reference/exchange-payloads/README.md`` is taken from it). Every member of the
``PushDataV3ApiWrapper.body`` oneof (301..315) is declared, the legacy and deprecated ones too: the
runtime keeps the LAST oneof member it reads, so a member left out of the schema would be skipped as
an unknown field and a frame carrying it would decode differently from the official schema.
The README's re-encoded samples match these descriptors byte for byte.

This module is the simulator's encoder and the test oracle: the Cython parser
(``cexnode._core.parsers.mexc_spot``) is checked against an encoder/decoder we did not write.

Public API
----------
PushDataV3ApiWrapper, PublicAggreDepthsV3Api, ... : generated message classes.
BODY_FIELDS : body field name -> (field number, message class).
encode_push(channel, symbol, body_field_name, body_dict, send_time=..., ...) -> bytes
encode_aggre_depth / encode_limit_depth / encode_aggre_deals / encode_aggre_book_ticker : the hot
    simulator pushes built with the generated classes directly (no dict to walk per push).
decode_push(data) -> dict (proto3 JSON mapping: camelCase names, int64 as strings, defaults omitted).
"""
from __future__ import annotations

from typing import Any, Optional

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

__all__ = [
    "BODY_FIELDS", "POOL", "PushDataV3ApiWrapper", "decode_push", "encode_aggre_book_ticker",
    "encode_aggre_deals", "encode_aggre_depth", "encode_limit_depth", "encode_push", "message_class",
]

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _INT32, _INT64, _BOOL, _MSG = _F.TYPE_STRING, _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_BOOL, _F.TYPE_MESSAGE
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# message name -> [(field name, number, type, repeated, message type name or None)]
# Public bodies: README "Item and body field numbers" (2026-06 additions included).
_MESSAGES: dict[str, list[tuple]] = {
    "PublicAggreDepthV3ApiItem": [("price", 1, _STRING), ("quantity", 2, _STRING)],
    "PublicAggreDepthsV3Api": [
        ("asks", 1, _MSG, True, "PublicAggreDepthV3ApiItem"),
        ("bids", 2, _MSG, True, "PublicAggreDepthV3ApiItem"),
        ("eventType", 3, _STRING), ("fromVersion", 4, _STRING), ("toVersion", 5, _STRING),
        ("lastOrderCreateTime", 6, _INT64),
    ],
    "PublicLimitDepthV3ApiItem": [("price", 1, _STRING), ("quantity", 2, _STRING)],
    "PublicLimitDepthsV3Api": [
        ("asks", 1, _MSG, True, "PublicLimitDepthV3ApiItem"),
        ("bids", 2, _MSG, True, "PublicLimitDepthV3ApiItem"),
        ("eventType", 3, _STRING), ("version", 4, _STRING), ("lastOrderCreateTime", 5, _INT64),
    ],
    "PublicAggreDealsV3ApiItem": [
        ("price", 1, _STRING), ("quantity", 2, _STRING), ("tradeType", 3, _INT32), ("time", 4, _INT64),
        ("tradeId", 5, _STRING),
    ],
    "PublicAggreDealsV3Api": [
        ("deals", 1, _MSG, True, "PublicAggreDealsV3ApiItem"), ("eventType", 2, _STRING),
    ],
    "PublicAggreBookTickerV3Api": [
        ("bidPrice", 1, _STRING), ("bidQuantity", 2, _STRING), ("askPrice", 3, _STRING),
        ("askQuantity", 4, _STRING), ("version", 5, _STRING), ("lastOrderCreateTime", 6, _INT64),
    ],
    # Legacy bookTicker body, also the item of publicBookTickerBatch (field 1 "items").
    "PublicBookTickerV3Api": [
        ("bidPrice", 1, _STRING), ("bidQuantity", 2, _STRING), ("askPrice", 3, _STRING),
        ("askQuantity", 4, _STRING),
    ],
    "PublicBookTickerBatchV3Api": [
        ("items", 1, _MSG, True, "PublicBookTickerV3Api"), ("version", 2, _STRING),
        ("lastOrderCreateTime", 3, _INT64),
    ],
    # Legacy / deprecated public bodies (no stream we subscribe to sends them, but they are oneof
    # members: PublicDealsV3Api.proto, PublicIncreaseDepthsV3Api.proto, PublicSpotKlineV3Api.proto,
    # PublicMiniTicker(s)V3Api.proto, PublicIncreaseDepthsBatchV3Api.proto).
    "PublicDealsV3ApiItem": [
        ("price", 1, _STRING), ("quantity", 2, _STRING), ("tradeType", 3, _INT32), ("time", 4, _INT64),
    ],
    "PublicDealsV3Api": [("deals", 1, _MSG, True, "PublicDealsV3ApiItem"), ("eventType", 2, _STRING)],
    "PublicIncreaseDepthV3ApiItem": [("price", 1, _STRING), ("quantity", 2, _STRING)],
    "PublicIncreaseDepthsV3Api": [
        ("asks", 1, _MSG, True, "PublicIncreaseDepthV3ApiItem"),
        ("bids", 2, _MSG, True, "PublicIncreaseDepthV3ApiItem"),
        ("eventType", 3, _STRING), ("version", 4, _STRING),
    ],
    "PublicIncreaseDepthsBatchV3Api": [
        ("items", 1, _MSG, True, "PublicIncreaseDepthsV3Api"), ("eventType", 2, _STRING),
    ],
    "PublicSpotKlineV3Api": [
        ("interval", 1, _STRING), ("windowStart", 2, _INT64), ("openingPrice", 3, _STRING),
        ("closingPrice", 4, _STRING), ("highestPrice", 5, _STRING), ("lowestPrice", 6, _STRING),
        ("volume", 7, _STRING), ("amount", 8, _STRING), ("windowEnd", 9, _INT64),
    ],
    "PublicMiniTickerV3Api": [
        ("symbol", 1, _STRING), ("price", 2, _STRING), ("rate", 3, _STRING), ("zonedRate", 4, _STRING),
        ("high", 5, _STRING), ("low", 6, _STRING), ("volume", 7, _STRING), ("quantity", 8, _STRING),
        ("lastCloseRate", 9, _STRING), ("lastCloseZonedRate", 10, _STRING), ("lastCloseHigh", 11, _STRING),
        ("lastCloseLow", 12, _STRING),
    ],
    "PublicMiniTickersV3Api": [("items", 1, _MSG, True, "PublicMiniTickerV3Api")],
    # Private bodies (official .proto as in ccxt's compiled bundle; samples ws_private_*.pb.hex agree).
    "PrivateOrdersV3Api": [
        ("id", 1, _STRING), ("clientId", 2, _STRING), ("price", 3, _STRING), ("quantity", 4, _STRING),
        ("amount", 5, _STRING), ("avgPrice", 6, _STRING), ("orderType", 7, _INT32), ("tradeType", 8, _INT32),
        ("isMaker", 9, _BOOL), ("remainAmount", 10, _STRING), ("remainQuantity", 11, _STRING),
        ("lastDealQuantity", 12, _STRING), ("cumulativeQuantity", 13, _STRING),
        ("cumulativeAmount", 14, _STRING), ("status", 15, _INT32), ("createTime", 16, _INT64),
        ("market", 17, _STRING), ("triggerType", 18, _INT32), ("triggerPrice", 19, _STRING),
        ("state", 20, _INT32), ("ocoId", 21, _STRING), ("routeFactor", 22, _STRING),
        ("symbolId", 23, _STRING), ("marketId", 24, _STRING), ("marketCurrencyId", 25, _STRING),
        ("currencyId", 26, _STRING),
    ],
    "PrivateDealsV3Api": [
        ("price", 1, _STRING), ("quantity", 2, _STRING), ("amount", 3, _STRING), ("tradeType", 4, _INT32),
        ("isMaker", 5, _BOOL), ("isSelfTrade", 6, _BOOL), ("tradeId", 7, _STRING),
        ("clientOrderId", 8, _STRING), ("orderId", 9, _STRING), ("feeAmount", 10, _STRING),
        ("feeCurrency", 11, _STRING), ("time", 12, _INT64),
    ],
    "PrivateAccountV3Api": [
        ("vcoinName", 1, _STRING), ("coinId", 2, _STRING), ("balanceAmount", 3, _STRING),
        ("balanceAmountChange", 4, _STRING), ("frozenAmount", 5, _STRING), ("frozenAmountChange", 6, _STRING),
        ("type", 7, _STRING), ("time", 8, _INT64),
    ],
}

# oneof body: field name -> (number, message type), every member of PushDataV3ApiWrapper.proto.
_BODIES: dict[str, tuple[int, str]] = {
    "publicDeals": (301, "PublicDealsV3Api"),
    "publicIncreaseDepths": (302, "PublicIncreaseDepthsV3Api"),
    "publicLimitDepths": (303, "PublicLimitDepthsV3Api"),
    "privateOrders": (304, "PrivateOrdersV3Api"),
    "publicBookTicker": (305, "PublicBookTickerV3Api"),
    "privateDeals": (306, "PrivateDealsV3Api"),
    "privateAccount": (307, "PrivateAccountV3Api"),
    "publicSpotKline": (308, "PublicSpotKlineV3Api"),
    "publicMiniTicker": (309, "PublicMiniTickerV3Api"),
    "publicMiniTickers": (310, "PublicMiniTickersV3Api"),
    "publicBookTickerBatch": (311, "PublicBookTickerBatchV3Api"),
    "publicIncreaseDepthsBatch": (312, "PublicIncreaseDepthsBatchV3Api"),
    "publicAggreDepths": (313, "PublicAggreDepthsV3Api"),
    "publicAggreDeals": (314, "PublicAggreDealsV3Api"),
    "publicAggreBookTicker": (315, "PublicAggreBookTickerV3Api"),
}

# Wrapper scalars: channel (1, plain proto3), symbol/symbolId/createTime/sendTime (3..6, `optional`).
_WRAPPER_OPTIONAL = [("symbol", 3, _STRING), ("symbolId", 4, _STRING), ("createTime", 5, _INT64),
                     ("sendTime", 6, _INT64)]


def _add_field(msg: descriptor_pb2.DescriptorProto, spec: tuple) -> descriptor_pb2.FieldDescriptorProto:
    name, number, ftype = spec[:3]
    repeated = len(spec) > 3 and spec[3]
    f = msg.field.add(name=name, number=number, type=ftype, label=_REP if repeated else _OPT)
    if ftype == _MSG:
        f.type_name = "." + spec[4]
    return f


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="cexnode_mexc_push.proto", syntax="proto3")
    # The official files declare no package: full names are ".PushDataV3ApiWrapper" etc.
    for name, fields in _MESSAGES.items():
        m = fdp.message_type.add(name=name)
        for spec in fields:
            _add_field(m, spec)
    w = fdp.message_type.add(name="PushDataV3ApiWrapper")
    w.oneof_decl.add(name="body")                      # real oneof first, synthetic ones after it
    _add_field(w, ("channel", 1, _STRING))
    for name, (number, tname) in _BODIES.items():
        f = _add_field(w, (name, number, _MSG, False, tname))
        f.oneof_index = 0
    for spec in _WRAPPER_OPTIONAL:
        w.oneof_decl.add(name="_" + spec[0])
        f = _add_field(w, spec)
        f.proto3_optional = True
        f.oneof_index = len(w.oneof_decl) - 1
    return fdp


POOL = descriptor_pool.DescriptorPool()
_FILE = POOL.Add(_build_file())


def message_class(name: str):
    """Generated class for a message of the MEXC push schema, e.g. ``"PublicAggreDepthsV3Api"``."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(name))


PushDataV3ApiWrapper = message_class("PushDataV3ApiWrapper")
PublicAggreDepthsV3Api = message_class("PublicAggreDepthsV3Api")
PublicAggreDepthV3ApiItem = message_class("PublicAggreDepthV3ApiItem")
PublicLimitDepthsV3Api = message_class("PublicLimitDepthsV3Api")
PublicLimitDepthV3ApiItem = message_class("PublicLimitDepthV3ApiItem")
PublicAggreDealsV3Api = message_class("PublicAggreDealsV3Api")
PublicAggreDealsV3ApiItem = message_class("PublicAggreDealsV3ApiItem")
PublicAggreBookTickerV3Api = message_class("PublicAggreBookTickerV3Api")
PublicBookTickerV3Api = message_class("PublicBookTickerV3Api")
PublicBookTickerBatchV3Api = message_class("PublicBookTickerBatchV3Api")
PrivateOrdersV3Api = message_class("PrivateOrdersV3Api")
PrivateDealsV3Api = message_class("PrivateDealsV3Api")
PrivateAccountV3Api = message_class("PrivateAccountV3Api")

#: body field name -> (oneof field number, message class)
BODY_FIELDS: dict[str, tuple[int, Any]] = {k: (n, message_class(t)) for k, (n, t) in _BODIES.items()}


def build_push(channel: str, symbol: Optional[str], body_field_name: str, body: Any = None, *,
               send_time: Optional[int] = None, create_time: Optional[int] = None,
               symbol_id: Optional[str] = None):
    """A ``PushDataV3ApiWrapper`` message (not serialized).

    Parameters
    ----------
    channel : str
        Full topic, e.g. ``"spot@public.aggre.depth.v3.api.pb@10ms@BTCUSDT"``.
    symbol : str or None
        Wrapper field 3; None leaves it absent (private account pushes carry none).
    body_field_name : str
        One of ``BODY_FIELDS`` (``"publicAggreDepths"``, ``"privateOrders"``...).
    body : dict or message, optional
        A proto3-JSON dict (camelCase names, int64 as int or str) or a body message instance.
    send_time, create_time : int, optional
        Wrapper fields 6 and 5 (ms); absent when None.
    symbol_id : str, optional
        Wrapper field 4.
    """
    if body_field_name not in BODY_FIELDS:
        raise KeyError(f"unknown MEXC body field {body_field_name!r}; known: {sorted(BODY_FIELDS)}")
    w = PushDataV3ApiWrapper(channel=channel)
    if symbol is not None:
        w.symbol = symbol
    if symbol_id is not None:
        w.symbolId = symbol_id
    if create_time is not None:
        w.createTime = int(create_time)
    if send_time is not None:
        w.sendTime = int(send_time)
    target = getattr(w, body_field_name)
    if body is None:
        target.SetInParent()                         # empty body still selects the oneof
    elif isinstance(body, dict):
        json_format.ParseDict(body, target)
        target.SetInParent()
    else:
        target.CopyFrom(body)
        target.SetInParent()
    return w


def encode_push(channel: str, symbol: Optional[str], body_field_name: str, body_dict: Any = None, *,
                send_time: Optional[int] = None, create_time: Optional[int] = None,
                symbol_id: Optional[str] = None) -> bytes:
    """Serialize one push exactly as the official runtime does (ascending field numbers).

    Example
    -------
    >>> encode_push("spot@public.aggre.depth.v3.api.pb@10ms@BTCUSDT", "BTCUSDT", "publicAggreDepths",
    ...             {"bids": [{"price": "61759.73", "quantity": "0.0001778"}],
    ...              "eventType": "spot@public.aggre.depth.v3.api.pb@10ms",
    ...              "fromVersion": "74891313263", "toVersion": "74891313263"},
    ...             send_time=1782208005090).hex()[:8]
    '0a2e7370'
    """
    return build_push(channel, symbol, body_field_name, body_dict, send_time=send_time,
                      create_time=create_time, symbol_id=symbol_id).SerializeToString()


def decode_push(data: bytes) -> dict:
    """Parse a binary push with the official runtime; proto3 JSON mapping (as the README's
    ``.decoded.json`` samples: camelCase, int64 as decimal strings, default values omitted).

    Raises ``google.protobuf.message.DecodeError`` on malformed input.
    """
    return json_format.MessageToDict(PushDataV3ApiWrapper.FromString(data))


# ---- fast paths for the simulator's frequent pushes (same bytes as encode_push) -----------------

def _wrapper(channel: str, symbol: Optional[str], send_time: Optional[int], create_time: Optional[int]):
    w = PushDataV3ApiWrapper(channel=channel)
    if symbol is not None:
        w.symbol = symbol
    if create_time is not None:
        w.createTime = int(create_time)
    if send_time is not None:
        w.sendTime = int(send_time)
    return w


def encode_aggre_depth(channel: str, symbol: Optional[str], bids, asks, from_version: int, to_version: int, *,
                       event_type: str = "", send_time: Optional[int] = None,
                       create_time: Optional[int] = None) -> bytes:
    """publicAggreDepths (313). ``bids``/``asks``: iterables of ``(price_str, qty_str)``; qty "0" deletes."""
    w = _wrapper(channel, symbol, send_time, create_time)
    b = w.publicAggreDepths
    b.SetInParent()
    for p, q in asks:
        b.asks.add(price=p, quantity=q)
    for p, q in bids:
        b.bids.add(price=p, quantity=q)
    if event_type:
        b.eventType = event_type
    b.fromVersion = str(from_version)
    b.toVersion = str(to_version)
    return w.SerializeToString()


def encode_limit_depth(channel: str, symbol: Optional[str], bids, asks, version: int, *, event_type: str = "",
                       send_time: Optional[int] = None, create_time: Optional[int] = None) -> bytes:
    """publicLimitDepths (303): a top-N snapshot with its version."""
    w = _wrapper(channel, symbol, send_time, create_time)
    b = w.publicLimitDepths
    b.SetInParent()
    for p, q in asks:
        b.asks.add(price=p, quantity=q)
    for p, q in bids:
        b.bids.add(price=p, quantity=q)
    if event_type:
        b.eventType = event_type
    b.version = str(version)
    return w.SerializeToString()


def encode_aggre_deals(channel: str, symbol: Optional[str], deals, *, event_type: str = "",
                       send_time: Optional[int] = None, create_time: Optional[int] = None) -> bytes:
    """publicAggreDeals (314). ``deals``: iterables of ``(price_str, qty_str, trade_type, time_ms)`` or
    ``(..., trade_id_str)``; trade_type 1 = taker buy, 2 = taker sell."""
    w = _wrapper(channel, symbol, send_time, create_time)
    b = w.publicAggreDeals
    b.SetInParent()
    for d in deals:
        it = b.deals.add(price=d[0], quantity=d[1], tradeType=int(d[2]), time=int(d[3]))
        if len(d) > 4 and d[4]:
            it.tradeId = str(d[4])
    if event_type:
        b.eventType = event_type
    return w.SerializeToString()


def encode_aggre_book_ticker(channel: str, symbol: Optional[str], bid: Optional[tuple], ask: Optional[tuple], *,
                             version: Optional[int] = None, send_time: Optional[int] = None,
                             create_time: Optional[int] = None) -> bytes:
    """publicAggreBookTicker (315). ``bid``/``ask``: ``(price_str, qty_str)`` or None for an empty side."""
    w = _wrapper(channel, symbol, send_time, create_time)
    b = w.publicAggreBookTicker
    b.SetInParent()
    if bid:
        b.bidPrice, b.bidQuantity = bid
    if ask:
        b.askPrice, b.askQuantity = ask
    if version is not None:
        b.version = str(version)
    return w.SerializeToString()

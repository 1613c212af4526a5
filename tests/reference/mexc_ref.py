"""Reference decoder for MEXC spot pushes: the official protobuf runtime + plain-Python normalization.

The frame is parsed by ``google.protobuf`` with the descriptors of ``cexnode/sim/venues/mexc_spot/proto.py``
(never by our Cython reader); the semantic rules of ``cexnode/_core/parsers/mexc_spot.pxd`` are
re-implemented here with ``re`` and Python ints so the differential tests compare two independent
implementations. Also a tiny protobuf *writer* used by the tests to emit fields in any order,
unknown fields of every wire type, and split (merged) bodies — encodings the runtime never writes.
"""
from __future__ import annotations

import re
from typing import Optional

from google.protobuf.message import DecodeError

from cexnode.sim.venues.mexc_spot import proto as mp
from reference.fixedpoint_ref import natural_scale_ref

VENUE = "mexc_spot"
I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
_DEC = re.compile(rb"-?[0-9]+(\.[0-9]+)?\Z")
_UINT = re.compile(r"[0-9]+\Z")


class RefError(Exception):
    """The frame is invalid for the reference (runtime DecodeError or a semantic rule)."""


# ---- decimals ----------------------------------------------------------------------------------

def dec_mantissa(s: str, scale: Optional[int]) -> int:
    """Exact mantissa of a plain decimal string at ``scale`` (None: its own scale, fixedpoint_ref.natural_scale_ref)."""
    b = s.encode("utf-8")
    if not b or not _DEC.match(b):
        raise RefError("bad decimal %r" % s)
    neg = s.startswith("-")
    body = s[1:] if neg else s
    ip, _, fp = body.partition(".")
    if scale is None:
        scale = natural_scale_ref(s)
    keep, extra = fp[:scale], fp[scale:]
    if extra.strip("0"):
        raise RefError("too precise %r" % s)
    mag = int(ip + keep.ljust(scale, "0"))
    v = -mag if neg else mag
    if not (I64_MIN <= v <= I64_MAX):
        raise RefError("overflow %r" % s)
    return v


def _uint(s: str, what: str) -> int:
    if not _UINT.match(s) or int(s) > I64_MAX:
        raise RefError("%s not a non-negative integer: %r" % (what, s))
    return int(s)


def _level(px: str, qty: str, inst: Optional[dict]) -> tuple[int, int]:
    p = dec_mantissa(px, inst["price_scale"] if inst else None)
    if p <= 0:
        raise RefError("price <= 0")
    q = dec_mantissa(qty, inst["venue_qty_scale"] if inst else None)
    if q < 0:
        raise RefError("qty < 0")
    if inst:
        q *= inst["qty_mult"]
        if q > I64_MAX:
            raise RefError("qty overflow")
    return p, q


# ---- the reference decoder -----------------------------------------------------------------------

def channel_symbol(channel: str, body: str) -> str:
    parts = channel.split("@")
    if body == "publicLimitDepths":
        return parts[2] if len(parts) >= 3 else ""
    return parts[-1] if len(parts) >= 2 else ""


def reference_events(frame: bytes, instruments: Optional[dict] = None) -> list[tuple[dict, Optional[tuple]]]:
    """Normalized events of a binary frame as ``[(decode_dict, sink_tuple_or_None), ...]``.

    ``instruments``: venue symbol -> ``{"name", "symbol_id", "price_scale", "venue_qty_scale",
    "qty_mult"}`` (live mode); None = raw mode (decimals at their own scale, venue symbol names).
    Raises RefError when the frame must be rejected.
    """
    try:
        m = mp.PushDataV3ApiWrapper.FromString(frame)
    except DecodeError as e:
        raise RefError("runtime: %s" % e) from None
    body = m.WhichOneof("body")
    if body not in ("publicAggreDepths", "publicLimitDepths", "publicAggreBookTicker", "publicBookTickerBatch",
                    "publicAggreDeals"):
        return []
    sym = m.symbol if m.HasField("symbol") and m.symbol else channel_symbol(m.channel, body)
    if not sym:
        return []
    inst = None
    name = sym
    if instruments is not None:
        inst = instruments.get(sym)
        if inst is None:
            return []
        name = inst["name"]
    sid = inst["symbol_id"] if inst else -1
    ts = m.sendTime if m.HasField("sendTime") else (m.createTime if m.HasField("createTime") else 0)
    b = getattr(m, body)
    out = []
    if body in ("publicAggreDepths", "publicLimitDepths"):
        limit = body == "publicLimitDepths"
        if limit:
            first = last = _uint(b.version, "version")
        else:
            first = _uint(b.fromVersion, "fromVersion")
            last = _uint(b.toVersion, "toVersion")
            if first > last:
                raise RefError("fromVersion > toVersion")
        bids = [_level(x.price, x.quantity, inst) for x in b.bids]
        asks = [_level(x.price, x.quantity, inst) for x in b.asks]
        d = {"venue": VENUE, "symbol": name, "type": "book_snapshot" if limit else "book_delta", "ts": ts,
             "first": first, "last": last, "bids": [[x.price, x.quantity] for x in b.bids],
             "asks": [[x.price, x.quantity] for x in b.asks]}
        out.append((d, ("depth", sid, first, last, ts, None, limit, bids, asks)))
    elif body in ("publicAggreBookTicker", "publicBookTickerBatch"):
        items = [b] if body == "publicAggreBookTicker" else list(b.items)
        for t in items:
            version = getattr(t, "version", "")
            seq = _uint(version, "ticker version") if version else 0
            sides = []
            for px, q in ((t.bidPrice, t.bidQuantity), (t.askPrice, t.askQuantity)):
                if not px and not q:
                    sides.append((0, 0))
                elif not px or not q:
                    raise RefError("half-empty side")
                else:
                    sides.append(_level(px, q, inst))
            d = {"venue": VENUE, "symbol": name, "type": "bbo", "ts": ts,
                 "bid": t.bidPrice or None, "bid_qty": t.bidQuantity or None,
                 "ask": t.askPrice or None, "ask_qty": t.askQuantity or None, "seq": seq if version else None}
            out.append((d, ("bbo", sid, sides[0][0], sides[0][1], sides[1][0], sides[1][1], seq, ts, None)))
    else:
        for x in b.deals:
            p, q = _level(x.price, x.quantity, inst)
            if q == 0:
                raise RefError("deal qty 0")
            if x.tradeType not in (1, 2):
                raise RefError("tradeType")
            side = 1 if x.tradeType == 1 else -1
            tid = int(x.tradeId) if re.fullmatch(r"[0-9]{1,18}", x.tradeId) else 0
            t_ms = x.time if x.time != 0 else ts
            d = {"venue": VENUE, "symbol": name, "type": "trade", "ts": t_ms, "price": x.price, "qty": x.quantity,
                 "side": "buy" if side > 0 else "sell", "id": x.tradeId or None}
            out.append((d, ("trade", sid, p, q, side, tid, t_ms, None)))
    return out


def reference_decode(frame: bytes, instruments: Optional[dict] = None) -> Optional[list[dict]]:
    """Decode dicts of a binary frame, or None when the reference rejects it."""
    try:
        return [d for d, _ in reference_events(frame, instruments)]
    except RefError:
        return None


def reference_sink_events(frame: bytes, instruments: dict, recv_ns: int) -> Optional[list[tuple]]:
    """What CollectSink must record for a binary frame in live mode, or None when rejected."""
    try:
        evs = reference_events(frame, instruments)
    except RefError:
        return None
    out = []
    for _, t in evs:
        if t[0] == "depth":
            out.append(("depth", t[1], t[2], t[3], t[4], recv_ns, t[6], t[7], t[8]))
        elif t[0] == "bbo":
            out.append(t[:8] + (recv_ns,))
        else:
            out.append(t[:7] + (recv_ns,))
    return out


# ---- a minimal protobuf writer (test side) --------------------------------------------------------

def varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def f_varint(field: int, v: int) -> bytes:
    return tag(field, 0) + varint(v)


def f_len(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return tag(field, 2) + varint(len(data)) + data


def f_fixed32(field: int, v: int) -> bytes:
    return tag(field, 5) + (v & 0xFFFFFFFF).to_bytes(4, "little")


def f_fixed64(field: int, v: int) -> bytes:
    return tag(field, 1) + (v & (2**64 - 1)).to_bytes(8, "little")


def f_group(field: int, inner: bytes) -> bytes:
    return tag(field, 3) + inner + tag(field, 4)


# ---- normalizing the runtime's JSON (sample tests) ---------------------------------------------

def strip_empty(x):
    """proto3 JSON drops empty repeated fields; the README samples sometimes keep ``[]``."""
    if isinstance(x, dict):
        return {k: strip_empty(v) for k, v in x.items() if v != []}
    if isinstance(x, list):
        return [strip_empty(v) for v in x]
    return x


# ---- oneof members built by the official runtime (differential tests of the body oneof) ----------

#: oneof number -> member name, every member of the official PushDataV3ApiWrapper (301..315)
MEMBERS = {n: name for name, (n, _) in mp.BODY_FIELDS.items()}
_TEXT = "0123456789.-abcXYZ@_\u00e9\u20ac\U0001f600"


def _fill(d, msg, depth=0):
    """Random content in every field of ``msg`` (a runtime message), per its descriptor."""
    for fd in msg.DESCRIPTOR.fields:
        if fd.message_type is not None:
            for _ in range(d.int(0, 2 if depth < 2 else 0)):
                _fill(d, getattr(msg, fd.name).add(), depth + 1)
            continue
        if not d.p(0.5):
            continue
        if fd.type == fd.TYPE_STRING:
            v = d.text(_TEXT, 8)
        elif fd.type == fd.TYPE_BOOL:
            v = d.p(0.5)
        elif fd.type == fd.TYPE_INT32:
            v = d.int(-(2**31), 2**31 - 1)
        else:
            v = d.int(-(2**63), 2**63 - 1)
        if fd.is_repeated:
            getattr(msg, fd.name).append(v)
        else:
            setattr(msg, fd.name, v)


def runtime_member(d, number: int) -> bytes:
    """Serialized body of oneof member ``number`` with random (valid) content, by the runtime.

    ``d`` draws values: ``int(a, b)``, ``p(prob)``, ``text(alphabet, max_len)`` (the draw objects of
    the fuzz tests, over hypothesis or random.Random)."""
    cls = mp.BODY_FIELDS[MEMBERS[number]][1]
    m = cls()
    _fill(d, m)
    return m.SerializeToString()

"""Reference decoder for Gate.io v4 WebSocket frames: orjson + plain-Python normalization.

The frame is parsed by orjson (never by our Cython cursor); the semantic rules of
``cexnode/_core/parsers/gateio_spot.pxd`` (classification, order of checks, integer fields,
level shapes, decimal conversion at the instrument's scales) are re-implemented here with ``re``
and Python ints, so the differential tests compare two independent implementations.

``reference(frame, venue, instruments)`` returns one of
  ("error", reason) | ("ignored",) | ("messages", [MessageKind, ...]) | ("events", [event, ...])
where an event is a dict with the decode() fields (venue strings) plus the mantissas a sink gets.
``instruments``: None (raw mode) or {venue_symbol: {"symbol", "symbol_id", "price_scale",
"venue_qty_scale", "qty_mult"}}.
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional

import orjson

from reference.fixedpoint_ref import natural_scale_ref

MSG_ACK, MSG_PONG, MSG_ERROR, MSG_ORDER, MSG_FILL, MSG_BALANCE, MSG_API_RESPONSE, MSG_OTHER = range(8)
VENUE_IDS = {"gateio_spot": 1, "gateio_futures": 2}
I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
_DEC = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_MS = re.compile(r"([0-9]+)(\.[0-9]+)?\Z")


class RefError(Exception):
    pass


# ---- JSON ------------------------------------------------------------------------------------------

def _check_strings(v):
    if isinstance(v, str):
        v.encode("utf-8")                     # lone surrogates raise
    elif isinstance(v, dict):
        for k, x in v.items():
            k.encode("utf-8")
            _check_strings(x)
    elif isinstance(v, list):
        for x in v:
            _check_strings(x)


def _no_constant(name):
    raise ValueError("not JSON: %s" % name)


def _int_like_orjson(s):
    v = int(s)
    return v if -(2**63) <= v < 2**64 else float(s)


def load(frame: bytes):
    """RFC 8259 JSON as orjson reads it. orjson rejects numbers that overflow a double (1e400),
    which the RFC allows; for those frames only, the stdlib parser is used with orjson's other rules
    (strict UTF-8, no surrogates, no NaN/Infinity, big integers as floats)."""
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        if "number is infinity" not in str(e):
            raise RefError("json: %s" % e)
    try:
        text = frame.decode("utf-8")
        if text.startswith("\ufeff"):
            raise ValueError("BOM")
        v = json.loads(text, parse_constant=_no_constant, parse_int=_int_like_orjson)
        _check_strings(v)
        return v
    except (ValueError, UnicodeError, RecursionError) as e:
        raise RefError("json: %s" % e)


# ---- numbers ---------------------------------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_size(v) -> bool:
    return isinstance(v, str) or _is_int(v)


def uint(v, what):
    if _is_int(v):
        if 0 <= v <= I64_MAX:
            return v
        raise RefError("%s out of range" % what)
    if isinstance(v, str) and _DIGITS.match(v) and int(v) <= I64_MAX:
        return int(v)
    raise RefError("%s: not a non-negative integer" % what)


def ms(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if isinstance(v, float):
            raise RefError("create_time_ms: not an integer")
        return uint(v, "create_time_ms")
    if not isinstance(v, str):
        raise RefError("create_time_ms: not an integer or a decimal string")
    m = _MS.match(v)
    if not m or int(m.group(1)) > I64_MAX:
        raise RefError("create_time_ms: bad")
    return int(m.group(1))


def dec(v, scale: Optional[int]) -> int:
    """Exact mantissa of a plain decimal (str) or integer at ``scale`` (None: its own scale, fixedpoint_ref.natural_scale_ref)."""
    s = str(v) if _is_int(v) else v
    if not _DEC.match(s):
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
    out = -mag if neg else mag
    if not I64_MIN <= out <= I64_MAX:
        raise RefError("overflow %r" % s)
    return out


def size(v, inst) -> int:
    q = dec(v, inst["venue_qty_scale"] if inst else None)
    mult = inst["qty_mult"] if inst else 1
    if mult != 1:
        if q > I64_MAX // mult or q < -(I64_MAX // mult):
            raise RefError("size overflow")
        q *= mult
    return q


def size_text(v, strip_sign=False) -> str:
    if _is_int(v):
        return str(abs(v) if strip_sign else v)
    return v[1:] if strip_sign and v.startswith("-") else v


# ---- the decoder -----------------------------------------------------------------------------------

def reference(frame: bytes, venue: str, instruments: Optional[dict] = None, recv_ns: int = 0, live: bool = True):
    """``live=False``: decode() semantics (control frames and private pushes are not events and their
    contents are not checked)."""
    try:
        return _reference(frame, venue, instruments, recv_ns, live)
    except RefError as e:
        return ("error", str(e))


def _channel(ch, prefix):
    if not isinstance(ch, str):
        return None
    if not ch.startswith(prefix):
        return "other"
    rest = ch[len(prefix):]
    return rest if rest in ("order_book_update", "obu", "book_ticker", "trades", "orders", "usertrades",
                            "balances", "pong") else "other"


def _reference(frame, venue, instruments, recv_ns, live):
    futures = venue == "gateio_futures"
    prefix = "futures." if futures else "spot."
    obj = load(frame)
    if not isinstance(obj, dict):
        raise RefError("frame is not a JSON object")
    ch = _channel(obj.get("channel"), prefix)
    if "event" not in obj:
        ev = "none"
    elif obj["event"] == "update":
        ev = "update"
    elif obj["event"] in ("subscribe", "unsubscribe"):
        ev = "sub"
    else:
        ev = "other"
    err = obj.get("error")
    if isinstance(obj.get("header"), dict):
        return ("messages", [MSG_API_RESPONSE])
    if ev == "sub":
        res = obj.get("result")
        ok = err is None and isinstance(res, dict) and res.get("status") == "success"
        return ("messages", [MSG_ACK if ok else MSG_ERROR])
    if err is not None:
        return ("messages", [MSG_ERROR])
    if ch == "pong":
        return ("messages", [MSG_PONG])
    if ch is None:
        return ("messages", [MSG_OTHER])
    if ev not in ("none", "update"):
        return ("ignored",)
    if ch in ("orders", "usertrades", "balances"):
        if not live:
            return ("messages", [])
        res = obj.get("result")
        if isinstance(res, dict):
            res = [res]
        if not isinstance(res, list):
            raise RefError("private push result is not an array or an object")
        kind = {"orders": MSG_ORDER, "usertrades": MSG_FILL, "balances": MSG_BALANCE}[ch]
        return ("messages", [kind if isinstance(it, dict) else MSG_OTHER for it in res])
    if ch not in ("order_book_update", "obu", "book_ticker", "trades"):
        return ("ignored",)
    if "result" not in obj:
        raise RefError("result missing")
    res = obj["result"]
    if ch == "trades":
        return _trades(res, venue, futures, instruments, recv_ns)
    if ch == "book_ticker":
        return _ticker(res, venue, instruments, recv_ns)
    return _depth(res, venue, ch == "obu", instruments, recv_ns)


def _levels(side):
    if not isinstance(side, list):
        raise RefError("levels: expected an array")
    out = []
    for lv in side:
        if isinstance(lv, list):
            if len(lv) != 2:
                raise RefError("level: expected [price, size]")
            px, q = lv
        elif isinstance(lv, dict):
            if "p" not in lv or "s" not in lv:
                raise RefError("level without p or s")
            px, q = lv["p"], lv["s"]
        else:
            raise RefError("level: expected an array or an object")
        if not isinstance(px, str):
            raise RefError("level price not a string")
        if not _is_size(q):
            raise RefError("level size not a string or an integer")
        out.append((px, q))
    return out


def _lookup(sym, instruments):
    if instruments is None:
        return None, sym, -1
    inst = instruments.get(sym)
    if inst is None:
        return False, None, None
    return inst, inst["symbol"], inst["symbol_id"]


def _conv_level(px, q, inst):
    p = dec(px, inst["price_scale"] if inst else None)
    if p <= 0:
        raise RefError("price <= 0")
    qq = size(q, inst)
    if qq < 0:
        raise RefError("size < 0")
    return p, qq


def _depth(r, venue, obu, instruments, recv_ns):
    if not isinstance(r, dict):
        raise RefError("result: expected an object")
    bids = _levels(r["b"]) if "b" in r else []
    asks = _levels(r["a"]) if "a" in r else []
    s = r.get("s")
    if not isinstance(s, str):
        raise RefError("s missing")
    sym = s
    if obu:
        dot = s.rfind(".")
        if not (s.startswith("ob.") and dot > 3 and _DIGITS.match(s[dot + 1:])):
            raise RefError("obu stream name")
        sym = s[3:dot]
    full = False
    if "full" in r:
        if not isinstance(r["full"], bool):
            raise RefError("full not a boolean")
        full = r["full"]
    if "u" not in r:
        raise RefError("u missing")
    last = uint(r["u"], "u")
    if "U" in r:
        first = uint(r["U"], "U")
    elif full:
        first = last
    else:
        raise RefError("U missing")
    if first > last:
        raise RefError("U > u")
    ts = uint(r["t"], "t") if "t" in r else 0
    inst, name, sid = _lookup(sym, instruments)
    if inst is False:
        return ("ignored",)
    mb = [_conv_level(px, q, inst) for px, q in bids]
    ma = [_conv_level(px, q, inst) for px, q in asks]
    return ("events", [{
        "venue": venue, "symbol": name, "type": "book_snapshot" if full else "book_delta", "ts": ts,
        "first": first, "last": last,
        "bids": [[px, size_text(q)] for px, q in bids], "asks": [[px, size_text(q)] for px, q in asks],
        "_sink": ("depth", VENUE_IDS[venue], sid, first, last, ts, recv_ns, full, mb, ma),
    }])


def _ticker(r, venue, instruments, recv_ns):
    if not isinstance(r, dict):
        raise RefError("result: expected an object")
    s = r.get("s")
    if not isinstance(s, str):
        raise RefError("s missing")
    seq = uint(r["u"], "u") if "u" in r else 0
    ts = uint(r["t"], "t") if "t" in r else 0
    empty = {}
    for pk, qk in (("b", "B"), ("a", "A")):
        if pk in r and not isinstance(r[pk], str):
            raise RefError("price not a string")
        if qk in r and not _is_size(r[qk]):
            raise RefError("size not a string or an integer")
        empty[pk] = pk not in r or r[pk] == ""
        if not empty[pk] and (qk not in r or r[qk] == ""):
            raise RefError("price without size")
    inst, name, sid = _lookup(s, instruments)
    if inst is False:
        return ("ignored",)
    vals = {}
    for pk, qk in (("b", "B"), ("a", "A")):
        if empty[pk]:
            if qk in r and r[qk] != "":
                if size(r[qk], inst) != 0:
                    raise RefError("size without price")
            vals[pk] = (0, 0)
        else:
            vals[pk] = _conv_level(r[pk], r[qk], inst)
    return ("events", [{
        "venue": venue, "symbol": name, "type": "bbo", "ts": ts,
        "bid": None if empty["b"] else r["b"], "bid_qty": None if empty["b"] else size_text(r["B"]),
        "ask": None if empty["a"] else r["a"], "ask_qty": None if empty["a"] else size_text(r["A"]),
        "seq": seq if "u" in r else None,
        "_sink": ("bbo", VENUE_IDS[venue], sid, vals["b"][0], vals["b"][1], vals["a"][0], vals["a"][1], seq, ts,
                  recv_ns),
    }])


def _trades(res, venue, futures, instruments, recv_ns):
    if isinstance(res, dict):
        items = [res]
    elif isinstance(res, list):
        items = res
        for it in items:
            if not isinstance(it, dict):
                raise RefError("trade: expected an object")
    else:
        raise RefError("result: expected an object or an array")
    symk, sizek = ("contract", "size") if futures else ("currency_pair", "amount")
    for t in items:
        if not isinstance(t.get(symk), str):
            raise RefError("trade symbol")
        if not isinstance(t.get("price"), str):
            raise RefError("trade price")
        if not _is_size(t.get(sizek)):
            raise RefError("trade size")
        if not futures and t.get("side") not in ("buy", "sell"):
            raise RefError("trade side")
        if "id" in t:
            uint(t["id"], "id")
        if "create_time_ms" in t:
            ms(t["create_time_ms"])
        if "create_time" in t:
            if uint(t["create_time"], "create_time") > I64_MAX // 1000:
                raise RefError("create_time out of range")
    out = []
    for t in items:
        inst, name, sid = _lookup(t[symk], instruments)
        if inst is False:
            continue
        px = dec(t["price"], inst["price_scale"] if inst else None)
        if px <= 0:
            raise RefError("trade price <= 0")
        q = size(t[sizek], inst)
        if futures:
            if q == 0:
                raise RefError("trade size 0")
            if q == I64_MIN:
                raise RefError("trade size overflows int64")
            side = 1 if q > 0 else -1
            q = abs(q)
        else:
            if q <= 0:
                raise RefError("trade amount <= 0")
            side = 1 if t["side"] == "buy" else -1
        tid = uint(t["id"], "id") if "id" in t else 0
        if "create_time_ms" in t:
            ts = ms(t["create_time_ms"])
        elif "create_time" in t:
            ts = uint(t["create_time"], "create_time") * 1000
        else:
            ts = 0
        out.append({
            "venue": venue, "symbol": name, "type": "trade", "ts": ts, "price": t["price"],
            "qty": size_text(t[sizek], futures), "side": "buy" if side > 0 else "sell",
            "id": str(tid) if "id" in t else None,
            "_sink": ("trade", VENUE_IDS[venue], sid, px, q, side, tid, ts, recv_ns),
        })
    if not out:
        return ("ignored",)
    return ("events", out)


# ---- adapters to what the parser produces -----------------------------------------------------------

def reference_decode(frame: bytes, venue: str, instruments: Optional[dict] = None) -> list[dict]:
    """What ``Gate*Parser.decode(frame)`` must return (error events compared by type only)."""
    r = reference(frame, venue, instruments, live=False)
    if r[0] == "error":
        return [{"venue": venue, "symbol": None, "type": "error", "ts": None, "reason": r[1]}]
    if r[0] != "events":
        return []
    return [{k: v for k, v in e.items() if k != "_sink"} for e in r[1]]


def reference_sink_events(frame: bytes, venue: str, instruments: dict, recv_ns: int = 0) -> list[tuple]:
    """What a RecordingSink must receive from ``feed_bytes(frame)``: sink tuples, ("message", venue,
    kind) for control/private (the dict is not compared), or [("error", venue)]."""
    r = reference(frame, venue, instruments, recv_ns)
    vid = VENUE_IDS[venue]
    if r[0] == "error":
        return [("error", vid)]
    if r[0] == "messages":
        return [("message", vid, k) for k in r[1]]
    if r[0] == "ignored":
        return []
    return [e["_sink"] for e in r[1]]

"""Gate.io v4 WebSocket parsers: the shared engine and the spot parser (contract in gateio_spot.pxd).

Frames are read with the JSON struct cursor of json.pxd straight into raw slices, validated, then
converted from the decimal text into int64 mantissas at the instrument's scales; no Python object
is created for a market-data frame. Control frames and private pushes (cold) become dicts.
"""
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcmp, memchr
from cpython.mem cimport PyMem_Realloc, PyMem_Free
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from cexnode._core.book cimport DepthUpdate, Level
from cexnode._core.feed cimport (FeedParser, FeedSink, Bbo, Trade, FRAME_DEPTH, FRAME_BBO, FRAME_TRADE,
                                 FRAME_MESSAGE, FRAME_IGNORED, FRAME_ERROR, MSG_ACK, MSG_PONG, MSG_ERROR,
                                 MSG_ORDER, MSG_FILL, MSG_BALANCE, MSG_API_RESPONSE, MSG_OTHER)
from cexnode._core.symbols cimport Instrument, SymbolMap
from cexnode._core.fixedpoint cimport (parse_decimal, natural_scale, DecimalError, DEC_OK, DEC_EMPTY,
                                       DEC_SYNTAX, DEC_TOO_PRECISE, DEC_OVERFLOW)
from cexnode._core.parsers.json cimport (
    JStr, JsonCursor, JK_NONE, JK_STRING, JK_NUMBER, JK_TRUE, JK_FALSE, JK_NULL, JK_OBJECT, JK_ARRAY,
    JE_OK, jc_init, jc_ws, jc_string, jc_value, jc_skip, jc_obj_first, jc_obj_next, jc_arr_first, jc_arr_next, jc_end,
    jc_diff, jc_eq, jc_int64, jc_is_int64_or_uint64, jc_unescape, jc_offset, jc_fail, jc_to_py, jc_error_text, jc_str, JE_SYNTAX)

from time import perf_counter_ns as _perf_counter_ns

cdef extern from "cexnode_debug.h":
    void CEXNODE_ASSERT(bint) nogil

cdef int64_t _I64_MAX = 9223372036854775807
cdef int64_t _POW10[19]
cdef int _k
_POW10[0] = 1
for _k in range(1, 19):
    _POW10[_k] = _POW10[_k - 1] * 10

_DEC_TEXT = {
    DEC_EMPTY: "empty",
    DEC_SYNTAX: "not a plain decimal",
    DEC_TOO_PRECISE: "more decimals than the instrument's scale",
    DEC_OVERFLOW: "overflows int64 at the instrument's scale",
}

VENUE = "gateio_spot"

cdef enum:
    _EV_NONE = 0
    _EV_UPDATE = 1
    _EV_SUB = 2
    _EV_OTHER = 3

cdef enum:
    _R_OK = 0
    _R_JSON = -1              # JSON error (detail in the cursor)
    _R_BAD = -2               # structural / value error (detail in _why*)
    _R_NOMEM = -3

cdef JStr _NOSTR
_NOSTR.p = NULL
_NOSTR.n = 0
_NOSTR.kind = JK_NONE
_NOSTR.esc = False
_NOSTR.is_int = False


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------

cdef inline void _clear(JStr* s) noexcept nogil:
    s.p = NULL
    s.n = 0
    s.kind = JK_NONE
    s.esc = False
    s.is_int = False


cdef inline int _bad(GateParserBase self, const char* why, const JStr* val) noexcept:
    self._why = why
    self._why_val = val[0] if val != NULL else _NOSTR
    self._why_dec = 0
    return _R_BAD


cdef inline bint _is_size(const JStr* s) noexcept nogil:
    # a size: a string, or an integer JSON number that orjson keeps as an int (|v| < 2**64)
    return s.kind == JK_STRING or jc_is_int64_or_uint64(s)


cdef int _uint(GateParserBase self, JStr* s, int64_t* out, const char* why) noexcept:
    # U, u, t, id, create_time: a JSON integer or a string of digits, 0 <= v <= INT64_MAX.
    cdef Py_ssize_t i
    if s.kind == JK_NUMBER and s.is_int:
        if jc_int64(s.p, s.n, out) != 0 or out[0] < 0:
            return _bad(self, why, s)
        return _R_OK
    if s.kind != JK_STRING:
        return _bad(self, why, s)
    if s.esc:
        self._plain(s)
    if s.n == 0:
        return _bad(self, why, s)
    for i in range(s.n):
        if s.p[i] < c'0' or s.p[i] > c'9':
            return _bad(self, why, s)
    if jc_int64(s.p, s.n, out) != 0:
        return _bad(self, why, s)
    return _R_OK


cdef int _ms(GateParserBase self, JStr* s, int64_t* out) noexcept:
    # create_time_ms: integer, or a plain non-negative decimal string (floored: "1682689046123.0").
    cdef Py_ssize_t i, dot = -1
    if s.kind == JK_NUMBER:
        return _uint(self, s, out, "create_time_ms: not a non-negative integer")
    if s.kind != JK_STRING:
        return _bad(self, "create_time_ms: not an integer or a decimal string", s)
    self._plain(s)
    for i in range(s.n):
        if s.p[i] == c'.':
            if dot >= 0:
                return _bad(self, "create_time_ms: not a plain non-negative decimal", s)
            dot = i
        elif s.p[i] < c'0' or s.p[i] > c'9':
            return _bad(self, "create_time_ms: not a plain non-negative decimal", s)
    if dot == 0 or dot == s.n - 1 or s.n == 0:
        return _bad(self, "create_time_ms: not a plain non-negative decimal", s)
    if jc_int64(s.p, dot if dot > 0 else s.n, out) != 0:
        return _bad(self, "create_time_ms: out of range", s)
    return _R_OK


cdef inline bint _fast_dec(const char* p, Py_ssize_t n, int scale, int64_t* out) noexcept nogil:
    # The common case of fixedpoint.parse_decimal, inline: unsigned, at most 17 characters, at most
    # `scale` fraction digits, and a result below 10**18 (no overflow possible). Anything else
    # (sign, too precise, trailing zeros beyond the scale, syntax, large values) returns False and
    # goes to parse_decimal, which decides; when this returns True the value is parse_decimal's.
    cdef Py_ssize_t i = 0, start
    cdef uint64_t v = 0
    cdef int frac = 0, nd
    cdef char ch
    if n == 0 or n > 17 or scale < 0 or scale > 18:
        return False
    while i < n:
        ch = p[i]
        if ch < c'0' or ch > c'9':
            break
        v = v * 10 + <uint64_t>(ch - c'0')
        i += 1
    if i == 0:
        return False
    nd = <int>i
    if i < n:
        if p[i] != c'.':
            return False
        i += 1
        start = i
        while i < n and frac < scale:
            ch = p[i]
            if ch < c'0' or ch > c'9':
                return False
            v = v * 10 + <uint64_t>(ch - c'0')
            frac += 1
            i += 1
        if i == start or i < n:
            return False
        nd += frac
    if nd + (scale - frac) > 18:
        return False
    out[0] = <int64_t>(v * <uint64_t>_POW10[scale - frac])
    return True


cdef inline int _dec(GateParserBase self, JStr* s, int scale, int64_t* out, const char* why) noexcept:
    # A decimal string or integer token at `scale` (< 0: raw mode, its own decimals).
    cdef DecimalError e
    if s.esc:
        self._plain(s)
    if scale < 0:
        scale = natural_scale(s.p, s.n)             # raw mode: trailing zeros never raise it
    if _fast_dec(s.p, s.n, scale, out):
        return _R_OK
    e = parse_decimal(s.p, s.n, scale, out)
    if e != DEC_OK:
        self._why = why
        self._why_val = s[0]
        self._why_dec = e
        return _R_BAD
    return _R_OK


cdef inline int _size(GateParserBase self, JStr* s, const Instrument* ins, int64_t* out, const char* why) noexcept:
    # venue size -> base quantity mantissa (sign kept): parsed at venue_qty_scale, x qty_mult.
    cdef int r
    cdef int64_t q = 0
    r = _dec(self, s, ins.venue_qty_scale if ins != NULL else -1, &q, why)
    if r != _R_OK:
        return r
    if ins != NULL and ins.qty_mult != 1:
        if q > _I64_MAX // ins.qty_mult or q < -(_I64_MAX // ins.qty_mult):
            self._why = why
            self._why_val = s[0]
            self._why_dec = DEC_OVERFLOW
            return _R_BAD
        q *= ins.qty_mult
    out[0] = q
    return _R_OK


cdef inline int _level(GateParserBase self, _GLevel* r, const Instrument* ins, Level* out, bint bid) noexcept:
    cdef int rc
    cdef int64_t px = 0, q = 0
    rc = _dec(self, &r.px, ins.price_scale if ins != NULL else -1, &px, "bid price" if bid else "ask price")
    if rc != _R_OK:
        return rc
    if px <= 0:
        return _bad(self, "price must be > 0", &r.px)
    rc = _size(self, &r.qty, ins, &q, "bid size" if bid else "ask size")
    if rc != _R_OK:
        return rc
    if q < 0:
        return _bad(self, "size must be >= 0", &r.qty)
    out.px = px
    out.qty = q
    return _R_OK


cdef inline str _pys(const JStr* s):
    return jc_str(s.p, s.n, s.esc)


cdef object _size_text(const JStr* s, bint strip_sign):
    # decode(): the venue's size text; integer JSON numbers canonical (as orjson's int would print)
    cdef str t
    if s.kind == JK_NUMBER:
        v = int(s.p[:s.n])
        return str(-v if strip_sign and v < 0 else v)
    t = _pys(s)
    if strip_sign and t.startswith("-"):
        return t[1:]
    return t


# ---------------------------------------------------------------------------------------------
# cold path: control and private messages
# ---------------------------------------------------------------------------------------------

def _txt(v):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def classify_control(dict obj, str venue="gateio_spot"):
    """``(MessageKind, dict)`` for a Gate control frame (already parsed into Python objects).

    Subscribe / unsubscribe acks (``result.status == "success"``) -> MSG_ACK; the same with an
    ``error`` or a failed status -> MSG_ERROR (Gate: ``error.code`` 1 invalid body, 2 invalid
    argument, 3 server error, 4 auth); ``*.pong`` -> MSG_PONG; a WebSocket API response
    (``header`` object: ``spot.order_place``, ``futures.order_place``, ``*.login`` ...) ->
    MSG_API_RESPONSE; anything else -> MSG_OTHER.
    """
    header = obj.get("header")
    if isinstance(header, dict):
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        status = _txt(header.get("status"))
        errs = data.get("errs")
        return MSG_API_RESPONSE, {
            "venue": venue, "type": "api_response", "channel": header.get("channel"),
            "event": header.get("event"), "status": status, "request_id": obj.get("request_id"),
            "ack": obj.get("ack") is True, "ok": status == "200" and not errs,
            "result": data.get("result"), "error": errs, "raw": obj,
        }
    channel = obj.get("channel")
    event = obj.get("event")
    err = obj.get("error")
    res = obj.get("result")
    if event in ("subscribe", "unsubscribe"):
        ok = err is None and isinstance(res, dict) and res.get("status") == "success"
        msg = {"venue": venue, "type": "ack" if ok else "error", "channel": channel, "event": event,
               "id": obj.get("id"), "payload": obj.get("payload")}
        if ok:
            return MSG_ACK, msg
        msg.update(code=err.get("code") if isinstance(err, dict) else None,
                   message=err.get("message") if isinstance(err, dict) else _txt(err),
                   reason=(err.get("message") if isinstance(err, dict) else None) or "subscription failed")
        return MSG_ERROR, msg
    if err is not None:
        return MSG_ERROR, {"venue": venue, "type": "error", "channel": channel, "event": event, "id": obj.get("id"),
                           "code": err.get("code") if isinstance(err, dict) else None,
                           "message": err.get("message") if isinstance(err, dict) else _txt(err),
                           "reason": (err.get("message") if isinstance(err, dict) else _txt(err)) or "error"}
    if isinstance(channel, str) and channel.endswith(".pong"):
        return MSG_PONG, {"venue": venue, "type": "pong", "channel": channel, "time": obj.get("time")}
    return MSG_OTHER, {"venue": venue, "type": "other", "raw": obj}


def normalize_private(str channel, item, str venue="gateio_spot"):
    """``(MessageKind, dict)`` for one item of a private push (orders / usertrades / balances).

    Numbers are decimal strings (futures sizes are signed contracts: ``side`` from the sign, ``qty``
    its magnitude); ids are strings, exact at any size; ``raw`` keeps the item.
    """
    if not isinstance(item, dict):
        return MSG_OTHER, {"venue": venue, "type": "other", "channel": channel, "raw": item}
    futures = channel.startswith("futures.")
    sym = item.get("contract") if futures else item.get("currency_pair")
    if channel.endswith(".balances"):
        return MSG_BALANCE, {
            "venue": venue, "type": "balance", "channel": channel, "currency": item.get("currency"),
            "total": _txt(item.get("total", item.get("balance"))), "available": _txt(item.get("available")),
            "freeze": _txt(item.get("freeze")), "change": _txt(item.get("change")),
            "ts": _txt(item.get("timestamp_ms", item.get("time_ms"))), "raw": item}
    size = item.get("size") if futures else item.get("amount")
    side = item.get("side")
    qty = _txt(size)
    if futures and qty is not None:
        side = "sell" if qty.startswith("-") else "buy"
        qty = qty.lstrip("-")
    if channel.endswith(".orders"):
        return MSG_ORDER, {
            "venue": venue, "type": "order", "channel": channel, "symbol": sym, "id": _txt(item.get("id")),
            "client_id": item.get("text"), "side": side, "price": _txt(item.get("price")), "qty": qty,
            "left": _txt(item.get("left")), "event": item.get("event"), "status": item.get("status"),
            "finish_as": item.get("finish_as"),
            "filled_total": _txt(item.get("filled_total")), "avg_price": _txt(item.get("avg_deal_price", item.get("fill_price"))),
            "ts": _txt(item.get("update_time_ms", item.get("finish_time_ms", item.get("create_time_ms")))),
            "raw": item}
    return MSG_FILL, {
        "venue": venue, "type": "fill", "channel": channel, "symbol": sym, "id": _txt(item.get("id")),
        "order_id": _txt(item.get("order_id")), "client_id": item.get("text"), "side": side,
        "price": _txt(item.get("price")), "qty": qty, "role": item.get("role"), "fee": _txt(item.get("fee")),
        "fee_currency": item.get("fee_currency"), "ts": _txt(item.get("create_time_ms")), "raw": item}


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------

cdef class GateParserBase(FeedParser):
    """Gate.io v4 frames -> typed events for a FeedSink (see gateio_spot.pxd). Use the subclasses."""

    def __cinit__(self):
        self._rb = NULL
        self._ra = NULL
        self._rt = NULL
        self._lv = NULL
        self._trades = NULL
        self._arena = NULL
        self._out = None
        self._decoding = False

    def __dealloc__(self):
        PyMem_Free(self._rb)
        PyMem_Free(self._ra)
        PyMem_Free(self._rt)
        PyMem_Free(self._lv)
        PyMem_Free(self._trades)
        PyMem_Free(self._arena)

    # ---- entry ------------------------------------------------------------------------------
    cdef int feed(self, const char* buf, Py_ssize_t n, bint binary, int64_t recv_ns) except -1:
        cdef int r
        cdef SymbolMap hold = self.symbols   # kept alive for this frame even if a sink swaps it (feed.pxd)
        self.frames += 1
        self.bytes_in += <uint64_t>n
        r = self._frame(buf, n, recv_ns)
        if r == FRAME_IGNORED:
            self.ignored += 1
        elif r == FRAME_MESSAGE:
            self.messages += 1
        return r

    cdef int _fail(self, str reason, const char* buf, Py_ssize_t n) except -1:
        if self._decoding:
            self.errors += 1
            self.last_error = reason
            self._out.append({"venue": self._venue_name, "symbol": None, "type": "error", "ts": None,
                              "reason": reason})
            return FRAME_ERROR
        return self._error(reason, buf, n)

    cdef int _fail_why(self, const char* buf, Py_ssize_t n) except -1:
        cdef str why = (<bytes>self._why).decode() if self._why != NULL else "invalid frame"
        cdef object val = None
        if self._why_val.p != NULL:
            val = <bytes>self._why_val.p[:min(self._why_val.n, 64)]
        if self._why_dec:
            return self._fail("gate: bad decimal in %s: %s: %r" % (why, _DEC_TEXT.get(self._why_dec, "invalid"), val),
                              buf, n)
        if val is not None:
            return self._fail("gate: %s: %r" % (why, val), buf, n)
        return self._fail("gate: %s" % why, buf, n)

    cdef int _grow(self, void** arr, int* cap, int need, size_t item) noexcept:
        cdef int nc
        cdef void* p
        if need <= cap[0]:
            return 0
        nc = cap[0] * 2 if cap[0] > 0 else 16
        while nc < need:
            nc *= 2
        p = PyMem_Realloc(arr[0], <size_t>nc * item)
        if p == NULL:
            return -1
        arr[0] = p
        cap[0] = nc
        return 0

    cdef void _plain(self, JStr* s) noexcept:
        # Decode the escapes of a string slice into the frame arena (capacity >= the frame, and the
        # decoded text of all strings of a frame never exceeds it: each slice is decoded once, in place).
        cdef Py_ssize_t m
        if not s.esc or s.kind != JK_STRING:
            return
        CEXNODE_ASSERT(self._arena_n + s.n <= self._arena_cap)
        m = jc_unescape(s.p, s.n, self._arena + self._arena_n)
        s.p = self._arena + self._arena_n
        s.n = m
        s.esc = False
        self._arena_n += m

    cdef int _channel_id(self, JStr* ch) noexcept:
        cdef const char* p
        cdef Py_ssize_t n, k
        if ch.kind != JK_STRING:
            return GC_NONE
        if ch.esc:
            self._plain(ch)
        p = ch.p
        n = ch.n
        if self._futures:
            if n < 8 or memcmp(p, b"futures.", 8) != 0:
                return GC_OTHER
            k = 8
        else:
            if n < 5 or memcmp(p, b"spot.", 5) != 0:
                return GC_OTHER
            k = 5
        p += k
        n -= k
        if n == 17 and memcmp(p, b"order_book_update", 17) == 0:
            return GC_BOOK_UPDATE
        if n == 3 and memcmp(p, b"obu", 3) == 0:
            return GC_OBU
        if n == 11 and memcmp(p, b"book_ticker", 11) == 0:
            return GC_BOOK_TICKER
        if n == 6 and memcmp(p, b"trades", 6) == 0:
            return GC_TRADES
        if n == 6 and memcmp(p, b"orders", 6) == 0:
            return GC_ORDERS
        if n == 10 and memcmp(p, b"usertrades", 10) == 0:
            return GC_USERTRADES
        if n == 8 and memcmp(p, b"balances", 8) == 0:
            return GC_BALANCES
        if n == 4 and memcmp(p, b"pong", 4) == 0:
            return GC_PONG
        return GC_OTHER

    # ---- pass 1: the top-level object ---------------------------------------------------------
    cdef int _walk(self, const char* buf, Py_ssize_t n, JsonCursor* c) noexcept:
        cdef JStr key
        cdef JStr tmp
        cdef int r, rr, ch_now = GC_NONE
        cdef const char* start
        cdef _GTop* t = &self._t
        _clear(&t.channel)
        _clear(&t.event)
        _clear(&t.result)
        _clear(&t.error)
        _clear(&t.header)
        t.ch = GC_NONE
        self._parsed_as = GC_NONE
        jc_init(c, buf, n)
        jc_ws(c)
        if c.p < c.end and c.p[0] != c'{':
            if jc_skip(c, 0) < 0 or jc_end(c) < 0:
                return _R_JSON
            return _bad(self, "frame is not a JSON object", NULL)
        r = jc_obj_first(c, &key)
        while r == 1:
            if not key.esc and (key.n < 5 or key.n > 7):      # time, time_ms (7) ... fast skip
                if jc_skip(c, 1) < 0:
                    return _R_JSON
            elif jc_eq(&key, "result", 6):
                start = c.p
                if GC_BOOK_UPDATE <= ch_now <= GC_TRADES:
                    rr = self._parse_result(ch_now, c)
                    if rr == _R_OK:
                        self._parsed_as = ch_now
                        t.result.p = start
                        t.result.n = jc_diff(c.p, start)
                        t.result.kind = JK_OBJECT if start[0] == c'{' else JK_ARRAY
                    elif rr == _R_NOMEM:
                        return _R_NOMEM
                    else:                   # not this shape: validate as a plain value, decide later
                        c.p = start
                        c.err = JE_OK
                        self._why = NULL
                        self._parsed_as = GC_NONE
                        if jc_value(c, &t.result) < 0:
                            return _R_JSON
                else:
                    self._parsed_as = GC_NONE
                    if jc_value(c, &t.result) < 0:
                        return _R_JSON
            elif jc_eq(&key, "channel", 7):
                if jc_value(c, &t.channel) < 0:
                    return _R_JSON
                ch_now = self._channel_id(&t.channel)
                t.ch = ch_now
            elif jc_eq(&key, "event", 5):
                if jc_value(c, &t.event) < 0:
                    return _R_JSON
            elif jc_eq(&key, "error", 5):
                if jc_value(c, &t.error) < 0:
                    return _R_JSON
            elif jc_eq(&key, "header", 6):
                if jc_value(c, &t.header) < 0:
                    return _R_JSON
            else:
                if jc_skip(c, 1) < 0:
                    return _R_JSON
            r = jc_obj_next(c, &key)
        if r < 0:
            return _R_JSON
        if jc_end(c) < 0:
            return _R_JSON
        return _R_OK

    # ---- result readers (raw slices; structure only) -------------------------------------------
    cdef int _parse_result(self, int ch, JsonCursor* c) noexcept:
        if ch == GC_BOOK_UPDATE or ch == GC_OBU:
            return self._parse_depth(c)
        if ch == GC_BOOK_TICKER:
            return self._parse_ticker(c)
        return self._parse_trades(c)

    cdef int _parse_depth(self, JsonCursor* c) noexcept:
        cdef JStr key
        cdef int r, rr
        cdef _GRes* g = &self._r
        cdef char k0
        cdef const char* start
        cdef bint bad_b = False, bad_a = False
        _clear(&g.s)
        _clear(&g.t)
        _clear(&g.U)
        _clear(&g.u)
        _clear(&g.full)
        self._nb = 0
        self._na = 0
        if c.p >= c.end or c.p[0] != c'{':
            return _bad(self, "result: expected an object", NULL)
        r = jc_obj_first(c, &key)
        while r == 1:
            rr = 0
            if key.n == 1 and not key.esc:
                k0 = key.p[0]
            elif jc_eq(&key, "full", 4):
                k0 = 1
            elif key.esc and (jc_eq(&key, "b", 1) or jc_eq(&key, "a", 1) or jc_eq(&key, "s", 1)
                              or jc_eq(&key, "t", 1) or jc_eq(&key, "U", 1) or jc_eq(&key, "u", 1)):
                k0 = c'b' if jc_eq(&key, "b", 1) else (c'a' if jc_eq(&key, "a", 1) else (
                    c's' if jc_eq(&key, "s", 1) else (c't' if jc_eq(&key, "t", 1) else (
                        c'U' if jc_eq(&key, "U", 1) else c'u'))))
            else:
                k0 = 0
            if k0 == c'b' or k0 == c'a':
                # a malformed side is remembered, not fatal yet: a later duplicate key replaces it
                # (last wins, as in orjson)
                start = c.p
                rr = self._parse_levels(c, k0 == c'b')
                if rr == _R_BAD:
                    c.p = start
                    c.err = JE_OK
                    if jc_skip(c, 2) < 0:
                        return _R_JSON
                    rr = 0
                    if k0 == c'b':
                        bad_b = True
                        self._nb = 0
                    else:
                        bad_a = True
                        self._na = 0
                elif rr == 0:
                    if k0 == c'b':
                        bad_b = False
                    else:
                        bad_a = False
            elif k0 == c's':
                rr = jc_value(c, &g.s)
            elif k0 == c'u':
                rr = jc_value(c, &g.u)
            elif k0 == c'U':
                rr = jc_value(c, &g.U)
            elif k0 == c't':
                rr = jc_value(c, &g.t)
            elif k0 == 1:
                rr = jc_value(c, &g.full)
            else:
                rr = jc_skip(c, 2)
            if rr != 0:
                return rr
            r = jc_obj_next(c, &key)
        if r < 0:
            return _R_JSON
        if bad_b or bad_a:
            return _R_BAD                           # detail of the last malformed side in _why*
        return _R_OK

    cdef int _parse_levels(self, JsonCursor* c, bint bids) noexcept:
        # [[p, s], ...] or [{"p": p, "s": s}, ...]; a repeated side key replaces the earlier one.
        cdef int r, m = 0, rr
        cdef _GLevel* lv
        cdef JStr key
        cdef bint have_p, have_s
        if c.p >= c.end or c.p[0] != c'[':
            if jc_skip(c, 2) < 0:
                return _R_JSON
            return _bad(self, "levels: expected an array", NULL)
        r = jc_arr_first(c)
        while r == 1:
            if bids:
                if m >= self._cap_b and self._grow(<void**>&self._rb, &self._cap_b, m + 1, sizeof(_GLevel)) != 0:
                    return _R_NOMEM
                lv = &self._rb[m]
            else:
                if m >= self._cap_a and self._grow(<void**>&self._ra, &self._cap_a, m + 1, sizeof(_GLevel)) != 0:
                    return _R_NOMEM
                lv = &self._ra[m]
            if c.p[0] == c'[':
                if jc_arr_first(c) != 1:
                    return _R_JSON if c.err != JE_OK else _bad(self, "level: expected [price, size]", NULL)
                if (jc_string(c, &lv.px) if c.p[0] == c'"' else jc_value(c, &lv.px)) < 0:
                    return _R_JSON
                if jc_arr_next(c) != 1:
                    return _R_JSON if c.err != JE_OK else _bad(self, "level: expected [price, size]", NULL)
                if (jc_string(c, &lv.qty) if c.p[0] == c'"' else jc_value(c, &lv.qty)) < 0:
                    return _R_JSON
                rr = jc_arr_next(c)
                if rr < 0:
                    return _R_JSON
                if rr != 0:
                    return _bad(self, "level: more than 2 elements", NULL)
            elif c.p[0] == c'{':
                _clear(&lv.px)
                _clear(&lv.qty)
                rr = jc_obj_first(c, &key)
                while rr == 1:
                    if jc_eq(&key, "p", 1):
                        if jc_value(c, &lv.px) < 0:
                            return _R_JSON
                    elif jc_eq(&key, "s", 1):
                        if jc_value(c, &lv.qty) < 0:
                            return _R_JSON
                    elif jc_skip(c, 4) < 0:
                        return _R_JSON
                    rr = jc_obj_next(c, &key)
                if rr < 0:
                    return _R_JSON
                if lv.px.kind == JK_NONE or lv.qty.kind == JK_NONE:
                    return _bad(self, "level: {p, s} object without p or s", NULL)
            else:
                if jc_skip(c, 3) < 0:
                    return _R_JSON
                return _bad(self, "level: expected an array or an object", NULL)
            if lv.px.kind != JK_STRING:
                return _bad(self, "level price: expected a string", &lv.px)
            if not _is_size(&lv.qty):
                return _bad(self, "level size: expected a string or an integer", &lv.qty)
            m += 1
            r = jc_arr_next(c)
        if r < 0:
            return _R_JSON
        if bids:
            self._nb = m
        else:
            self._na = m
        return _R_OK

    cdef int _parse_ticker(self, JsonCursor* c) noexcept:
        cdef JStr key
        cdef int r, rr
        cdef _GRes* g = &self._r
        cdef JStr* dst
        _clear(&g.s)
        _clear(&g.t)
        _clear(&g.u)
        _clear(&g.b)
        _clear(&g.B)
        _clear(&g.a)
        _clear(&g.A)
        if c.p >= c.end or c.p[0] != c'{':
            return _bad(self, "result: expected an object", NULL)
        r = jc_obj_first(c, &key)
        while r == 1:
            dst = NULL
            if jc_eq(&key, "b", 1):
                dst = &g.b
            elif jc_eq(&key, "B", 1):
                dst = &g.B
            elif jc_eq(&key, "a", 1):
                dst = &g.a
            elif jc_eq(&key, "A", 1):
                dst = &g.A
            elif jc_eq(&key, "s", 1):
                dst = &g.s
            elif jc_eq(&key, "u", 1):
                dst = &g.u
            elif jc_eq(&key, "t", 1):
                dst = &g.t
            if dst != NULL:
                rr = jc_value(c, dst)
            else:
                rr = jc_skip(c, 2)
            if rr != 0:
                return _R_JSON
            r = jc_obj_next(c, &key)
        return _R_JSON if r < 0 else _R_OK

    cdef int _parse_trades(self, JsonCursor* c) noexcept:
        cdef int r, rr, m = 0
        self._nt = 0
        if c.p >= c.end:
            return _R_JSON
        if c.p[0] == c'{':
            if self._grow(<void**>&self._rt, &self._cap_t, 1, sizeof(_GTrade)) != 0:
                return _R_NOMEM
            rr = self._parse_trade(c, &self._rt[0])
            if rr != 0:
                return rr
            self._nt = 1
            return _R_OK
        if c.p[0] != c'[':
            return _bad(self, "result: expected an object or an array", NULL)
        r = jc_arr_first(c)
        while r == 1:
            if self._grow(<void**>&self._rt, &self._cap_t, m + 1, sizeof(_GTrade)) != 0:
                return _R_NOMEM
            if c.p[0] != c'{':
                return _bad(self, "trade: expected an object", NULL)
            rr = self._parse_trade(c, &self._rt[m])
            if rr != 0:
                return rr
            m += 1
            r = jc_arr_next(c)
        if r < 0:
            return _R_JSON
        self._nt = m
        return _R_OK

    cdef int _parse_trade(self, JsonCursor* c, _GTrade* t) noexcept:
        cdef JStr key
        cdef int r, rr
        cdef JStr* dst
        _clear(&t.px)
        _clear(&t.size)
        _clear(&t.side)
        _clear(&t.sym)
        _clear(&t.id)
        _clear(&t.ctime_ms)
        _clear(&t.ctime)
        r = jc_obj_first(c, &key)
        while r == 1:
            dst = NULL
            if jc_eq(&key, "price", 5):
                dst = &t.px
            elif jc_eq(&key, "id", 2):
                dst = &t.id
            elif jc_eq(&key, "create_time_ms", 14):
                dst = &t.ctime_ms
            elif jc_eq(&key, "create_time", 11):
                dst = &t.ctime
            elif self._futures:
                if jc_eq(&key, "size", 4):
                    dst = &t.size
                elif jc_eq(&key, "contract", 8):
                    dst = &t.sym
            else:
                if jc_eq(&key, "amount", 6):
                    dst = &t.size
                elif jc_eq(&key, "side", 4):
                    dst = &t.side
                elif jc_eq(&key, "currency_pair", 13):
                    dst = &t.sym
            if dst != NULL:
                rr = jc_value(c, dst)
            else:
                rr = jc_skip(c, 3)
            if rr != 0:
                return _R_JSON
            r = jc_obj_next(c, &key)
        return _R_JSON if r < 0 else _R_OK

    # ---- frame --------------------------------------------------------------------------------
    cdef int _frame(self, const char* buf, Py_ssize_t n, int64_t recv_ns) except -1:
        cdef JsonCursor c
        cdef int r, ch, ev
        cdef _GTop* t = &self._t
        cdef void* p
        if n > self._arena_cap:
            p = PyMem_Realloc(self._arena, <size_t>n)
            if p == NULL:
                raise MemoryError()
            self._arena = <char*>p
            self._arena_cap = n
        self._arena_n = 0
        self._why = NULL
        r = self._walk(buf, n, &c)
        if r == _R_JSON:
            return self._fail("json: %s at offset %d" % (jc_error_text(c.err), jc_offset(&c)), buf, n)
        if r == _R_NOMEM:
            raise MemoryError()
        if r != _R_OK:
            return self._fail_why(buf, n)
        ch = t.ch
        if t.event.kind == JK_NONE:
            ev = _EV_NONE
        elif t.event.kind == JK_STRING and jc_eq(&t.event, "update", 6):
            ev = _EV_UPDATE
        elif t.event.kind == JK_STRING and (jc_eq(&t.event, "subscribe", 9) or jc_eq(&t.event, "unsubscribe", 11)):
            ev = _EV_SUB
        else:
            ev = _EV_OTHER
        if (t.header.kind == JK_OBJECT or ev == _EV_SUB or (t.error.kind != JK_NONE and t.error.kind != JK_NULL)
                or ch == GC_PONG or ch == GC_NONE):
            return self._control(buf, n, GC_NONE)
        if ev != _EV_NONE and ev != _EV_UPDATE:
            return FRAME_IGNORED
        if GC_ORDERS <= ch <= GC_BALANCES:
            return self._control(buf, n, ch)
        if not (GC_BOOK_UPDATE <= ch <= GC_TRADES):
            return FRAME_IGNORED
        if self._parsed_as != ch:
            if t.result.kind == JK_NONE:
                return self._fail("gate: result missing", buf, n)
            jc_init(&c, t.result.p, t.result.n)
            r = self._parse_result(ch, &c)
            if r == _R_NOMEM:
                raise MemoryError()
            if r == _R_JSON:                    # cannot happen: the span was validated
                return self._fail("json: %s in result" % jc_error_text(c.err), buf, n)
            if r != _R_OK:
                return self._fail_why(buf, n)
        if ch == GC_TRADES:
            r = self._trade(recv_ns)
        elif ch == GC_BOOK_TICKER:
            r = self._bbo(recv_ns)
        else:
            r = self._depth(ch, recv_ns)
        if r == _R_BAD:
            return self._fail_why(buf, n)
        if r == _R_NOMEM:
            raise MemoryError()
        return r

    cdef object _symbol_name(self, const Instrument* ins, JStr* vs):
        if ins != NULL:
            return self.symbols.get(self.symbols.name_of(ins.symbol_id)).name
        return _pys(vs)

    # ---- conversion + delivery ----------------------------------------------------------------
    # Each returns a FrameResult (>= 0), -1 when the sink raised (exception set), _R_BAD when the
    # frame is invalid (detail in _why*; nothing was delivered) or _R_NOMEM.
    cdef int _depth(self, int ch, int64_t recv_ns) except -1:
        cdef _GRes* g = &self._r
        cdef int nb = self._nb, na = self._na, i, r
        cdef bint full = False
        cdef int64_t first = 0, last = 0, ts = 0
        cdef const Instrument* ins = NULL
        cdef JStr sym
        cdef Py_ssize_t k, dot
        cdef DepthUpdate u
        # structure
        if g.s.kind != JK_STRING:
            return _bad(self, "s: missing or not a string", &g.s)
        self._plain(&g.s)
        sym = g.s
        if ch == GC_OBU:
            # "ob.<PAIR>.<level>"
            dot = -1
            for k in range(sym.n - 1, -1, -1):
                if sym.p[k] == c'.':
                    dot = k
                    break
            if sym.n < 5 or memcmp(sym.p, b"ob.", 3) != 0 or dot <= 3 or dot == sym.n - 1:
                return _bad(self, "obu stream name is not ob.<PAIR>.<level>", &g.s)
            for k in range(dot + 1, sym.n):
                if sym.p[k] < c'0' or sym.p[k] > c'9':
                    return _bad(self, "obu stream name is not ob.<PAIR>.<level>", &g.s)
            sym.p = g.s.p + 3
            sym.n = dot - 3
        if g.full.kind == JK_TRUE:
            full = True
        elif g.full.kind != JK_NONE and g.full.kind != JK_FALSE:
            return _bad(self, "full: not a boolean", &g.full)
        if g.u.kind == JK_NONE:
            return _bad(self, "u missing", NULL)
        r = _uint(self, &g.u, &last, "u: not a non-negative integer")
        if r != _R_OK:
            return r
        if g.U.kind != JK_NONE:
            r = _uint(self, &g.U, &first, "U: not a non-negative integer")
            if r != _R_OK:
                return r
        elif full:
            first = last
        else:
            return _bad(self, "U missing", NULL)
        if first > last:
            return _bad(self, "U > u", &g.U)
        if g.t.kind != JK_NONE:
            r = _uint(self, &g.t, &ts, "t: not a non-negative integer")
            if r != _R_OK:
                return r
        # symbol
        if self.symbols is not None:
            ins = self.symbols.find(sym.p, sym.n)
            if ins == NULL:
                return FRAME_IGNORED
        elif not self._decoding:
            return FRAME_IGNORED
        # numbers
        if nb + na > self._cap_lv and self._grow(<void**>&self._lv, &self._cap_lv, nb + na, sizeof(Level)) != 0:
            return _R_NOMEM
        for i in range(nb):
            r = _level(self, &self._rb[i], ins, &self._lv[i], True)
            if r != _R_OK:
                return r
        for i in range(na):
            r = _level(self, &self._ra[i], ins, &self._lv[nb + i], False)
            if r != _R_OK:
                return r
        self.depth_updates += 1
        if self._decoding:
            self._out.append({
                "venue": self._venue_name, "symbol": self._symbol_name(ins, &sym),
                "type": "book_snapshot" if full else "book_delta", "ts": ts, "first": first, "last": last,
                "bids": [[_pys(&self._rb[i].px), _size_text(&self._rb[i].qty, False)] for i in range(nb)],
                "asks": [[_pys(&self._ra[i].px), _size_text(&self._ra[i].qty, False)] for i in range(na)],
            })
            return FRAME_DEPTH
        u.symbol_id = ins.symbol_id
        u.first_id = first
        u.last_id = last
        u.exch_ts_ms = ts
        u.recv_ns = recv_ns
        u.full = full
        u.n_bids = nb
        u.n_asks = na
        u.bids = self._lv
        u.asks = self._lv + nb
        if self.sink.on_depth(self.venue, &u) < 0:
            return -1
        return FRAME_DEPTH

    cdef int _bbo(self, int64_t recv_ns) except -1:
        cdef _GRes* g = &self._r
        cdef const Instrument* ins = NULL
        cdef Bbo b
        cdef int r, side
        cdef int64_t seq = 0, ts = 0, q
        cdef JStr* px
        cdef JStr* qty
        cdef bint empty[2]
        cdef _GLevel lv
        cdef Level out
        # structure
        if g.s.kind != JK_STRING:
            return _bad(self, "s: missing or not a string", &g.s)
        self._plain(&g.s)
        if g.u.kind != JK_NONE:
            r = _uint(self, &g.u, &seq, "u: not a non-negative integer")
            if r != _R_OK:
                return r
        if g.t.kind != JK_NONE:
            r = _uint(self, &g.t, &ts, "t: not a non-negative integer")
            if r != _R_OK:
                return r
        for side in range(2):
            px = &g.b if side == 0 else &g.a
            qty = &g.B if side == 0 else &g.A
            if px.kind != JK_NONE and px.kind != JK_STRING:
                return _bad(self, "book ticker price: not a string", px)
            if qty.kind != JK_NONE and not _is_size(qty):
                return _bad(self, "book ticker size: not a string or an integer", qty)
            self._plain(px)
            self._plain(qty)
            empty[side] = px.kind == JK_NONE or px.n == 0
            if not empty[side] and (qty.kind == JK_NONE or (qty.kind == JK_STRING and qty.n == 0)):
                return _bad(self, "book ticker: price without a size", px)
        if self.symbols is not None:
            ins = self.symbols.find(g.s.p, g.s.n)
            if ins == NULL:
                return FRAME_IGNORED
        elif not self._decoding:
            return FRAME_IGNORED
        b.symbol_id = ins.symbol_id if ins != NULL else -1
        b.bid_px = b.bid_qty = b.ask_px = b.ask_qty = 0
        b.seq = seq
        b.exch_ts_ms = ts
        b.recv_ns = recv_ns
        for side in range(2):
            px = &g.b if side == 0 else &g.a
            qty = &g.B if side == 0 else &g.A
            if empty[side]:
                # an empty side carries no size, "" or zero
                if qty.kind != JK_NONE and not (qty.kind == JK_STRING and qty.n == 0):
                    q = 0
                    r = _size(self, qty, ins, &q, "book ticker size")
                    if r != _R_OK:
                        return r
                    if q != 0:
                        return _bad(self, "book ticker: size without a price", qty)
                continue
            lv.px = px[0]
            lv.qty = qty[0]
            r = _level(self, &lv, ins, &out, side == 0)
            if r != _R_OK:
                return r
            if side == 0:
                b.bid_px = out.px
                b.bid_qty = out.qty
            else:
                b.ask_px = out.px
                b.ask_qty = out.qty
        if self._decoding:
            self._out.append({
                "venue": self._venue_name, "symbol": self._symbol_name(ins, &g.s), "type": "bbo", "ts": ts,
                "bid": None if empty[0] else _pys(&g.b), "bid_qty": None if empty[0] else _size_text(&g.B, False),
                "ask": None if empty[1] else _pys(&g.a), "ask_qty": None if empty[1] else _size_text(&g.A, False),
                "seq": seq if g.u.kind != JK_NONE else None,
            })
            return FRAME_BBO
        if self.sink.on_bbo(self.venue, &b) < 0:
            return -1
        return FRAME_BBO

    cdef int _trade(self, int64_t recv_ns) except -1:
        cdef int i, r, m = self._nt, k = 0
        cdef _GTrade* d
        cdef Trade* t
        cdef const Instrument* ins
        cdef int64_t v = 0, q = 0, ts
        cdef int side = 0
        # structure of every trade first
        for i in range(m):
            d = &self._rt[i]
            if d.sym.kind != JK_STRING:
                return _bad(self, "trade: contract missing or not a string" if self._futures
                            else "trade: currency_pair missing or not a string", &d.sym)
            self._plain(&d.sym)
            if d.px.kind != JK_STRING:
                return _bad(self, "trade: price missing or not a string", &d.px)
            if not _is_size(&d.size):
                return _bad(self, "trade: size missing or not a string or an integer" if self._futures
                            else "trade: amount missing or not a string or an integer", &d.size)
            if not self._futures:
                if d.side.kind != JK_STRING:
                    return _bad(self, "trade: side missing or not a string", &d.side)
                self._plain(&d.side)
                if not (jc_eq(&d.side, "buy", 3) or jc_eq(&d.side, "sell", 4)):
                    return _bad(self, "trade: side is not buy or sell", &d.side)
            if d.id.kind != JK_NONE:
                r = _uint(self, &d.id, &v, "trade: id not a non-negative integer")
                if r != _R_OK:
                    return r
            if d.ctime_ms.kind != JK_NONE:
                r = _ms(self, &d.ctime_ms, &v)
                if r != _R_OK:
                    return r
            if d.ctime.kind != JK_NONE:
                r = _uint(self, &d.ctime, &v, "trade: create_time not a non-negative integer")
                if r != _R_OK:
                    return r
                if v > _I64_MAX // 1000:
                    return _bad(self, "trade: create_time out of range", &d.ctime)
        if self.symbols is None and not self._decoding:
            return FRAME_IGNORED
        pending = [] if self._decoding else None
        if self._grow(<void**>&self._trades, &self._cap_trades, m, sizeof(Trade)) != 0:
            return _R_NOMEM
        for i in range(m):
            d = &self._rt[i]
            ins = NULL
            if self.symbols is not None:
                ins = self.symbols.find(d.sym.p, d.sym.n)
                if ins == NULL:
                    continue                        # not ours: skipped (never a wrong mapping)
            t = &self._trades[k]
            r = _dec(self, &d.px, ins.price_scale if ins != NULL else -1, &t.px, "trade price")
            if r != _R_OK:
                return r
            if t.px <= 0:
                return _bad(self, "trade price must be > 0", &d.px)
            r = _size(self, &d.size, ins, &q, "trade size")
            if r != _R_OK:
                return r
            if self._futures:
                if q == 0:
                    return _bad(self, "trade size must not be 0", &d.size)
                if q == -_I64_MAX - 1:
                    return _bad(self, "trade size overflows int64", &d.size)
                side = 1 if q > 0 else -1
                q = q if q > 0 else -q
            else:
                if q <= 0:
                    return _bad(self, "trade amount must be > 0", &d.size)
                side = 1 if jc_eq(&d.side, "buy", 3) else -1
            t.qty = q
            t.side = side
            t.symbol_id = ins.symbol_id if ins != NULL else -1
            t.trade_id = 0
            if d.id.kind != JK_NONE:
                _uint(self, &d.id, &t.trade_id, "")
            ts = 0
            if d.ctime_ms.kind != JK_NONE:
                _ms(self, &d.ctime_ms, &ts)
            elif d.ctime.kind != JK_NONE:
                _uint(self, &d.ctime, &ts, "")
                ts *= 1000
            t.exch_ts_ms = ts
            t.recv_ns = recv_ns
            k += 1
            if self._decoding:
                pending.append({
                    "venue": self._venue_name, "symbol": self._symbol_name(ins, &d.sym), "type": "trade",
                    "ts": ts, "price": _pys(&d.px), "qty": _size_text(&d.size, self._futures),
                    "side": "buy" if side > 0 else "sell",
                    "id": str(t.trade_id) if d.id.kind != JK_NONE else None,
                })
        if k == 0:
            return FRAME_IGNORED
        if self._decoding:
            self._out.extend(pending)               # only once every trade of the frame converted
            return FRAME_TRADE
        for i in range(k):
            if self.sink.on_trade(self.venue, &self._trades[i]) < 0:
                return -1
        return FRAME_TRADE

    cdef int _control(self, const char* buf, Py_ssize_t n, int ch) except -1:
        cdef JsonCursor c
        cdef str venue = self._venue_name
        cdef str chname
        if self._decoding:
            return FRAME_MESSAGE                    # control frames and private pushes are not events
        jc_init(&c, buf, n)
        jc_ws(&c)
        obj = jc_to_py(&c, 0)
        if c.err != JE_OK:                          # cannot happen: the frame was validated
            return self._fail("json: %s at offset %d" % (jc_error_text(c.err), jc_offset(&c)), buf, n)
        if not isinstance(obj, dict):
            return self._fail("gate: frame is not a JSON object", buf, n)
        if GC_ORDERS <= ch <= GC_BALANCES and not isinstance(obj.get("header"), dict):
            res = obj.get("result")
            if isinstance(res, dict):
                res = [res]
            if not isinstance(res, list):
                return self._fail("gate: private push result is not an array or an object", buf, n)
            chname = obj["channel"]
            for item in res:
                kind, msg = normalize_private(chname, item, venue)
                if self.sink.on_message(self.venue, kind, msg) < 0:
                    return -1
            return FRAME_MESSAGE
        kind, msg = classify_control(obj, venue)
        if self.sink.on_message(self.venue, kind, msg) < 0:
            return -1
        return FRAME_MESSAGE

    # ---- Python API ---------------------------------------------------------------------------
    def decode(self, bytes frame, bint binary=False, int64_t recv_ns=0):
        """Normalized events of one frame (docs/design.md §3), read with the same cursor as the live path.

        Returns a list of dicts: ``book_snapshot`` / ``book_delta`` (``first``, ``last``, ``bids``,
        ``asks`` as ``[price, size]`` venue strings, sizes in venue units), ``bbo``, ``trade``, or
        one ``error`` with its ``reason``. Control frames and private pushes give ``[]``. The sink
        is not called. With a SymbolMap, unlisted symbols give ``[]`` and decimals are checked at
        the instrument's scales; without one (raw mode) at their own decimals.
        """
        self._out = []
        self._decoding = True
        try:
            self.feed(<const char*>frame, len(frame), binary, recv_ns)
            return self._out
        finally:
            self._decoding = False
            self._out = None

    def bench_feed(self, list frames, Py_ssize_t repeats):
        """Benchmark helper: feed ``frames`` ``repeats`` times in a C loop; returns elapsed ns."""
        cdef Py_ssize_t m = len(frames), r, k
        cdef int64_t t0, t1
        cdef bytes b
        t0 = _perf_counter_ns()
        for r in range(repeats):
            for k in range(m):
                b = <bytes>frames[k]
                self.feed(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), False, 0)
        t1 = _perf_counter_ns()
        return t1 - t0


@cython.final
cdef class GateSpotParser(GateParserBase):
    """Gate.io spot v4 frames -> typed events (see gateio_spot.pxd).

    Parameters
    ----------
    symbols : SymbolMap or None
        The gateio_spot map (instrument scales). None: raw mode, only for :meth:`decode`.
    sink : FeedSink, optional
        Receiver of the events (default: a no-op sink).
    """

    def __init__(self, SymbolMap symbols=None, FeedSink sink=None):
        # events carry the map's venue id (a venue speaking this protocol under another name and
        # id gets its own); raw mode (no map) has none (-1)
        FeedParser.__init__(self, symbols.venue if symbols is not None else -1, symbols, sink)
        self._venue_name = symbols.venue_label if symbols is not None else VENUE
        self._futures = False

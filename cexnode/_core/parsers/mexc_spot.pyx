"""MEXC spot v3 WebSocket parser (see mexc_spot.pxd, the contract).

Binary frames are PushDataV3ApiWrapper protobuf messages read with the cursor helpers of
protobuf.pxd; text frames are the JSON control messages (acks, PONG, rejections), read with a
small JSON cursor below (control path, not hot).
"""
cimport cython
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp
from cpython.mem cimport PyMem_Realloc, PyMem_Free
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from cexnode._core.book cimport DepthUpdate, Level, BookSync
from cexnode._core.feed cimport (FeedParser, FeedSink, Bbo, Trade, FRAME_DEPTH, FRAME_BBO, FRAME_TRADE,
                                 FRAME_MESSAGE, FRAME_IGNORED, FRAME_ERROR, MSG_ACK, MSG_PONG, MSG_ERROR,
                                 MSG_ORDER, MSG_FILL, MSG_BALANCE, MSG_OTHER)
from cexnode._core.symbols cimport Instrument, SymbolMap
from cexnode._core.fixedpoint cimport (parse_decimal, natural_scale, DecimalError, DEC_OK, DEC_EMPTY,
                                       DEC_SYNTAX, DEC_TOO_PRECISE, DEC_OVERFLOW)
from cexnode._core.parsers.protobuf cimport (
    PbCursor, pb_init, pb_sub, pb_more, pb_offset, pb_read_varint, pb_read_tag, pb_read_len, pb_skip,
    pb_utf8_valid, pb_error_text, PB_OK, PB_VARINT, PB_LEN, PB_ERR_WRONG_TYPE, PB_ERR_UTF8)

from time import perf_counter_ns as _perf_counter_ns
import json as _json

cdef extern from "cexnode_debug.h":
    void CEXNODE_ASSERT(bint) nogil

cdef int64_t _I64_MAX = 9223372036854775807

_DEC_TEXT = {
    DEC_EMPTY: "empty",
    DEC_SYNTAX: "not a plain decimal",
    DEC_TOO_PRECISE: "more decimals than the instrument's scale",
    DEC_OVERFLOW: "overflows int64 at the instrument's scale",
}

VENUE = "mexc_spot"


# ---------------------------------------------------------------------------------------------
# small C helpers
# ---------------------------------------------------------------------------------------------

cdef inline bint _is_body(uint32_t f) noexcept nogil:
    # Every member of the official oneof, 301..315: one we do not use still replaces the previous
    # member (the runtime keeps the last), so none of them may be skipped as an unknown field.
    return f >= MX_BODY_FIRST and f <= MX_BODY_LAST


cdef inline int _parse_uint(_Str s, int64_t* out) noexcept nogil:
    # Versions: decimal digits only, fits int64. 0 ok, MX_ERR_MISSING empty, MX_ERR_VALUE otherwise.
    cdef Py_ssize_t i
    cdef uint64_t v = 0
    cdef uint64_t d
    if s.n == 0:
        return MX_ERR_MISSING
    for i in range(s.n):
        if s.p[i] < c'0' or s.p[i] > c'9':
            return MX_ERR_VALUE
        d = <uint64_t>(s.p[i] - c'0')
        if v > (<uint64_t>_I64_MAX - d) // 10:
            return MX_ERR_VALUE
        v = v * 10 + d
    out[0] = <int64_t>v
    return 0


cdef inline int _dec(MexcSpotParser self, _Str s, int scale, int64_t* out, const char* where) noexcept:
    # scale < 0: raw mode, the decimal's own scale (trailing zeros excluded: fixedpoint.pxd).
    # Records the detail for the reason text on failure.
    cdef DecimalError e
    if scale < 0:
        scale = natural_scale(s.p, s.n)
    e = parse_decimal(s.p, s.n, scale, out)
    if e != DEC_OK:
        self._err_dec = e
        self._err_where = where
        self._err_val = s
        self._err_code = MX_ERR_DECIMAL
        return -2
    return 0


cdef inline int _bad(MexcSpotParser self, int code, const char* where, const char* what, _Str val) noexcept:
    self._err_where = where
    self._err_what = what
    self._err_val = val
    self._err_code = code
    return -2


cdef inline int _level_px_qty(MexcSpotParser self, const _RawLevel* r, const Instrument* ins,
                              Level* out, const char* where) noexcept:
    cdef int rc
    cdef int64_t px = 0, q = 0
    cdef int ps = ins.price_scale if ins != NULL else -1
    cdef int qs = ins.venue_qty_scale if ins != NULL else -1
    rc = _dec(self, r.px, ps, &px, where)
    if rc != 0:
        return rc
    if px <= 0:
        return _bad(self, MX_ERR_VALUE, where, "price must be > 0", r.px)
    rc = _dec(self, r.qty, qs, &q, where)
    if rc != 0:
        return rc
    if q < 0:
        return _bad(self, MX_ERR_VALUE, where, "quantity must be >= 0", r.qty)
    if ins != NULL and ins.qty_mult != 1:
        if q > _I64_MAX // ins.qty_mult:
            self._err_dec = DEC_OVERFLOW
            self._err_where = where
            self._err_val = r.qty
            self._err_code = MX_ERR_DECIMAL
            return -2
        q *= ins.qty_mult
    out.px = px
    out.qty = q
    return 0


cdef inline _Str _channel_symbol(const _Wrapper* w) noexcept nogil:
    # The symbol from the channel when the wrapper has none: limit depth "..pb@SYMBOL@5" (3rd
    # segment), every other topic ends with "@SYMBOL".
    cdef _Str out
    cdef Py_ssize_t i, k = 0, last_at = -1
    cdef Py_ssize_t seg_start = -1, seg_end = -1
    out.p = NULL
    out.n = 0
    for i in range(w.channel.n):
        if w.channel.p[i] == c'@':
            k += 1
            if w.body == MX_LIMIT_DEPTHS:
                if k == 2:
                    seg_start = i + 1
                elif k == 3:
                    seg_end = i
            last_at = i
    if w.body == MX_LIMIT_DEPTHS:
        if seg_start < 0:
            return out
        if seg_end < 0:
            seg_end = w.channel.n
        out.p = w.channel.p + seg_start
        out.n = seg_end - seg_start
        return out
    if last_at < 0:
        return out
    out.p = w.channel.p + last_at + 1
    out.n = w.channel.n - last_at - 1
    return out


cdef inline int _read_str(PbCursor* c, int wt, _Str* out, bint check_utf8) noexcept:
    cdef int r
    if wt != PB_LEN:
        return PB_ERR_WRONG_TYPE
    r = pb_read_len(c, &out.p, &out.n)
    if r != PB_OK:
        return r
    if check_utf8 and not pb_utf8_valid(out.p, out.n):
        return PB_ERR_UTF8
    return PB_OK


cdef inline int _read_i64(PbCursor* c, int wt, int64_t* out) noexcept:
    cdef uint64_t v
    cdef int r
    if wt != PB_VARINT:
        return PB_ERR_WRONG_TYPE
    r = pb_read_varint(c, &v)
    if r == PB_OK:
        out[0] = <int64_t>v
    return r


cdef inline bint _all_digits(_Str s) noexcept nogil:
    cdef Py_ssize_t i
    if s.n == 0 or s.n > 18:
        return False
    for i in range(s.n):
        if s.p[i] < c'0' or s.p[i] > c'9':
            return False
    return True


cdef inline str _s(_Str s):
    if s.n == 0:
        return ""
    return PyUnicode_DecodeUTF8(s.p, s.n, NULL)


cdef _Str _NOSTR
_NOSTR.p = NULL
_NOSTR.n = 0


# Bodies we do not convert (private ones, legacy and deprecated public ones) are still parsed
# against their official schema, without building objects: the runtime rejects the whole message
# when any member it read is malformed (wrong UTF-8, truncated), even one a later member replaced.
# _KINDS[type][field number]: 0 unknown (skipped), 1 proto3 string (UTF-8 checked), 2 varint
# (int32/int64/bool), _K_MSG + t an embedded message of type t. No type nests itself, so the
# recursion is as deep as the schema (3: 312 -> 302 -> item).
cdef enum _MsgType:
    _T_ORDERS = 0                 # PrivateOrdersV3Api
    _T_PDEALS                     # PrivateDealsV3Api
    _T_ACCOUNT                    # PrivateAccountV3Api
    _T_TICKER                     # PublicBookTickerV3Api (305, batch item)
    _T_DEALS                      # PublicDealsV3Api (301)
    _T_DEALS_ITEM                 # PublicDealsV3ApiItem
    _T_INC_DEPTHS                 # PublicIncreaseDepthsV3Api (302, 312 item)
    _T_DEPTH_ITEM                 # PublicIncreaseDepthV3ApiItem
    _T_KLINE                      # PublicSpotKlineV3Api (308)
    _T_MINI                       # PublicMiniTickerV3Api (309, 310 item)
    _T_MINIS                      # PublicMiniTickersV3Api (310)
    _T_INC_BATCH                  # PublicIncreaseDepthsBatchV3Api (312)
    _T_COUNT

cdef enum:
    _K_NF = 27                    # field numbers 0..26 (PrivateOrdersV3Api has the most)
    _K_MSG = 16

cdef unsigned char _KINDS[_T_COUNT][_K_NF]


def _schema_kinds():
    # official .proto field numbers (as in cexnode/sim/venues/mexc_spot/proto.py); 'i' any varint type
    S, I = 1, 2
    return {
        _T_ORDERS: {f: (I if f in (7, 8, 9, 15, 16, 18, 20) else S) for f in range(1, 27)},
        _T_PDEALS: {f: (I if f in (4, 5, 6, 12) else S) for f in range(1, 13)},
        _T_ACCOUNT: {f: (I if f == 8 else S) for f in range(1, 9)},
        _T_TICKER: {1: S, 2: S, 3: S, 4: S},
        _T_DEALS: {1: _K_MSG + _T_DEALS_ITEM, 2: S},
        _T_DEALS_ITEM: {1: S, 2: S, 3: I, 4: I},
        _T_INC_DEPTHS: {1: _K_MSG + _T_DEPTH_ITEM, 2: _K_MSG + _T_DEPTH_ITEM, 3: S, 4: S},
        _T_DEPTH_ITEM: {1: S, 2: S},
        _T_KLINE: {1: S, 2: I, 3: S, 4: S, 5: S, 6: S, 7: S, 8: S, 9: I},
        _T_MINI: {f: S for f in range(1, 13)},
        _T_MINIS: {1: _K_MSG + _T_MINI},
        _T_INC_BATCH: {1: _K_MSG + _T_INC_DEPTHS, 2: S},
    }


cdef int _t, _k
for _t in range(<int>_T_COUNT):
    for _k in range(_K_NF):
        _KINDS[_t][_k] = 0
for _t, _fields in _schema_kinds().items():
    for _k, _kind in _fields.items():
        _KINDS[_t][_k] = _kind


cdef int _check_msg(const char* p, Py_ssize_t n, int t) noexcept:
    # Parse (and drop) one message of type t; PB_OK or the PbError of the first malformation.
    cdef PbCursor c
    cdef uint32_t f
    cdef int wt, r
    cdef unsigned char kind
    cdef _Str s
    cdef int64_t tmp
    pb_init(&c, p, n)
    while pb_more(&c):
        r = pb_read_tag(&c, &f, &wt)
        if r != PB_OK:
            return r
        kind = _KINDS[t][f] if f < <uint32_t>_K_NF else 0
        if kind == 1:
            r = _read_str(&c, wt, &s, True)
        elif kind == 2:
            r = _read_i64(&c, wt, &tmp)
        elif kind >= _K_MSG:
            r = _read_str(&c, wt, &s, False)
            if r == PB_OK:
                r = _check_msg(s.p, s.n, kind - _K_MSG)
        else:
            r = pb_skip(&c, f, wt)
        if r != PB_OK:
            return r
    return PB_OK


cdef inline int _body_type(uint32_t b) noexcept nogil:
    if b == MX_PRIVATE_ORDERS:
        return _T_ORDERS
    if b == MX_PRIVATE_DEALS:
        return _T_PDEALS
    if b == MX_PRIVATE_ACCOUNT:
        return _T_ACCOUNT
    if b == MX_BOOK_TICKER:
        return _T_TICKER
    if b == MX_DEALS:
        return _T_DEALS
    if b == MX_INCREASE_DEPTHS:
        return _T_INC_DEPTHS
    if b == MX_SPOT_KLINE:
        return _T_KLINE
    if b == MX_MINI_TICKER:
        return _T_MINI
    if b == MX_MINI_TICKERS:
        return _T_MINIS
    return _T_INC_BATCH                 # MX_INCREASE_DEPTHS_BATCH: the last member we do not convert


cdef int _validate_member(MexcSpotParser self) noexcept:
    # Parse (and drop) the body segments collected so far, per their type's schema.
    cdef uint32_t b = self._w.body
    cdef int k, t, r = PB_OK
    cdef const char* where = self._err_where
    if b == MX_AGGRE_DEPTHS or b == MX_LIMIT_DEPTHS:
        r = self._parse_depth_body(b == MX_LIMIT_DEPTHS)
    elif b == MX_AGGRE_DEALS:
        r = self._parse_deals_body()
    elif b == MX_AGGRE_BOOK_TICKER or b == MX_BOOK_TICKER_BATCH:
        r = self._parse_ticker_body(b == MX_BOOK_TICKER_BATCH)
    else:
        t = _body_type(b)
        for k in range(self._w.n_seg):
            r = _check_msg(self._w.seg[k].p, self._w.seg[k].n, t)
            if r != PB_OK:
                break
    if r == PB_OK:
        self._err_where = where
    else:
        self._err_where = "replaced body member"
        self._err_off = 0
    return r


# ---------------------------------------------------------------------------------------------
# private bodies: field tables (official .proto numbers, as in cexnode/sim/venues/mexc_spot/proto.py)
# kinds: 's' string, 'i' int32, 'l' int64, 'b' bool
# ---------------------------------------------------------------------------------------------

_PRIVATE_FIELDS = {
    MX_PRIVATE_ORDERS: {
        1: ("id", "s"), 2: ("clientId", "s"), 3: ("price", "s"), 4: ("quantity", "s"), 5: ("amount", "s"),
        6: ("avgPrice", "s"), 7: ("orderType", "i"), 8: ("tradeType", "i"), 9: ("isMaker", "b"),
        10: ("remainAmount", "s"), 11: ("remainQuantity", "s"), 12: ("lastDealQuantity", "s"),
        13: ("cumulativeQuantity", "s"), 14: ("cumulativeAmount", "s"), 15: ("status", "i"),
        16: ("createTime", "l"), 17: ("market", "s"), 18: ("triggerType", "i"), 19: ("triggerPrice", "s"),
        20: ("state", "i"), 21: ("ocoId", "s"), 22: ("routeFactor", "s"), 23: ("symbolId", "s"),
        24: ("marketId", "s"), 25: ("marketCurrencyId", "s"), 26: ("currencyId", "s"),
    },
    MX_PRIVATE_DEALS: {
        1: ("price", "s"), 2: ("quantity", "s"), 3: ("amount", "s"), 4: ("tradeType", "i"), 5: ("isMaker", "b"),
        6: ("isSelfTrade", "b"), 7: ("tradeId", "s"), 8: ("clientOrderId", "s"), 9: ("orderId", "s"),
        10: ("feeAmount", "s"), 11: ("feeCurrency", "s"), 12: ("time", "l"),
    },
    MX_PRIVATE_ACCOUNT: {
        1: ("vcoinName", "s"), 2: ("coinId", "s"), 3: ("balanceAmount", "s"), 4: ("balanceAmountChange", "s"),
        5: ("frozenAmount", "s"), 6: ("frozenAmountChange", "s"), 7: ("type", "s"), 8: ("time", "l"),
    },
}
_PRIVATE_NAMES = {MX_PRIVATE_ORDERS: "privateOrders", MX_PRIVATE_DEALS: "privateDeals",
                  MX_PRIVATE_ACCOUNT: "privateAccount"}
# MEXC enums (reference README, private orders): side, order type, order status.
_SIDES = {1: "buy", 2: "sell"}
_ORDER_TYPES = {1: "LIMIT", 2: "POST_ONLY", 3: "IOC", 4: "FOK", 5: "MARKET", 100: "STOP_LIMIT"}
_ORDER_STATUS = {1: "new", 2: "filled", 3: "partially_filled", 4: "canceled", 5: "partially_canceled"}


cdef object _proto3_default(str kind, object v):
    # proto3 JSON mapping omits default values; int64 goes as a decimal string.
    if kind == "s":
        return None if v == "" else v
    if kind == "b":
        return True if v else None
    if v == 0:
        return None
    return str(v) if kind == "l" else v


def _none_if_empty(v):
    return None if v is None or v == "" else v


# ---------------------------------------------------------------------------------------------
# the parser
# ---------------------------------------------------------------------------------------------

@cython.final
cdef class MexcSpotParser(FeedParser):
    """MEXC spot v3 frames -> typed events for a FeedSink (see mexc_spot.pxd).

    Parameters
    ----------
    symbols : SymbolMap or None
        The mexc_spot map (instrument scales). None: raw mode, only for :meth:`decode`.
    sink : FeedSink, optional
        Receiver of the events (default: a no-op sink).
    """

    def __cinit__(self):
        self._raw_bids = NULL
        self._raw_asks = NULL
        self._deals = NULL
        self._tickers = NULL
        self._lv = NULL
        self._trades = NULL
        self._bbos = NULL
        self._out = None
        self._decoding = False

    def __dealloc__(self):
        PyMem_Free(self._raw_bids)
        PyMem_Free(self._raw_asks)
        PyMem_Free(self._deals)
        PyMem_Free(self._tickers)
        PyMem_Free(self._lv)
        PyMem_Free(self._trades)
        PyMem_Free(self._bbos)

    def __init__(self, SymbolMap symbols=None, FeedSink sink=None):
        # events carry the map's venue id (a venue speaking this protocol under another name and
        # id gets its own); raw mode (no map) has none (-1)
        FeedParser.__init__(self, symbols.venue if symbols is not None else -1, symbols, sink)

    # ---- entry ------------------------------------------------------------------------------
    cdef int feed(self, const char* buf, Py_ssize_t n, bint binary, int64_t recv_ns) except -1:
        cdef int r
        cdef SymbolMap hold = self.symbols   # kept alive for this frame even if a sink swaps it (feed.pxd)
        self.frames += 1
        self.bytes_in += <uint64_t>n
        if binary:
            r = self._binary(buf, n, recv_ns)
        else:
            r = self._text(buf, n)
        if r == FRAME_IGNORED:
            self.ignored += 1
        elif r == FRAME_MESSAGE:
            self.messages += 1
        return r

    cdef int _fail(self, str reason, const char* buf, Py_ssize_t n) except -1:
        if self._decoding:
            self.errors += 1
            self.last_error = reason
            self._out.append({"venue": VENUE, "symbol": None, "type": "error", "ts": None, "reason": reason})
            return FRAME_ERROR
        return self._error(reason, buf, n)

    cdef int _fail_code(self, int code, const char* buf, Py_ssize_t n) except -1:
        cdef str where = (<bytes>self._err_where).decode() if self._err_where != NULL else "frame"
        cdef str reason
        cdef object val
        if code == MX_ERR_DECIMAL:
            val = (<bytes>self._err_val.p[:self._err_val.n]) if self._err_val.p != NULL else b""
            reason = "mexc: bad decimal in %s: %s: %r" % (where, _DEC_TEXT.get(self._err_dec, "invalid"), val)
        elif code == MX_ERR_MISSING:
            reason = "mexc: %s missing or empty" % where
        elif code == MX_ERR_VALUE:
            val = (<bytes>self._err_val.p[:self._err_val.n]) if self._err_val.p != NULL else b""
            what = (<bytes>self._err_what).decode() if self._err_what != NULL else "invalid value"
            reason = "mexc: %s: %s: %r" % (where, what, val)
        elif code == MX_ERR_SEGMENTS:
            reason = "mexc: body field repeated more than %d times" % MX_MAX_SEGMENTS
        elif code == MX_ERR_NOMEM:
            raise MemoryError()
        else:
            reason = "protobuf: %s in %s at offset %d" % (pb_error_text(code), where, self._err_off)
        return self._fail(reason, buf, n)

    # ---- binary: pass 1, the wrapper ---------------------------------------------------------
    cdef int _parse_wrapper(self, const char* buf, Py_ssize_t n) noexcept:
        cdef PbCursor c
        cdef uint32_t f
        cdef int wt, r = PB_OK
        cdef _Wrapper* w = &self._w
        cdef _Str s
        w.channel.p = NULL
        w.channel.n = 0
        w.symbol.p = NULL
        w.symbol.n = 0
        w.symbol_id.p = NULL
        w.symbol_id.n = 0
        w.has_create = False
        w.has_send = False
        w.create_time = 0
        w.send_time = 0
        w.body = 0
        w.n_seg = 0
        self._err_where = "PushDataV3ApiWrapper"
        pb_init(&c, buf, n)
        while pb_more(&c):
            r = pb_read_tag(&c, &f, &wt)
            if r != PB_OK:
                break
            if f == 1:
                r = _read_str(&c, wt, &w.channel, True)
                self._err_where = "wrapper channel"
            elif f == 3:
                r = _read_str(&c, wt, &w.symbol, True)
                self._err_where = "wrapper symbol"
            elif f == 4:
                r = _read_str(&c, wt, &w.symbol_id, True)
                self._err_where = "wrapper symbolId"
            elif f == 5:
                r = _read_i64(&c, wt, &w.create_time)
                w.has_create = True
                self._err_where = "wrapper createTime"
            elif f == 6:
                r = _read_i64(&c, wt, &w.send_time)
                w.has_send = True
                self._err_where = "wrapper sendTime"
            elif _is_body(f):
                self._err_where = "wrapper body"
                r = _read_str(&c, wt, &s, False)
                if r == PB_OK:
                    if f != w.body:             # another oneof member replaces the previous one,
                        if w.body != 0:         # but the runtime still rejects it when malformed
                            r = _validate_member(self)
                            if r != PB_OK:
                                return r
                        w.body = f
                        w.n_seg = 0
                    if w.n_seg >= MX_MAX_SEGMENTS:
                        return MX_ERR_SEGMENTS
                    w.seg[w.n_seg] = s
                    w.n_seg += 1
            else:
                self._err_where = "wrapper unknown field"
                r = pb_skip(&c, f, wt)
            if r != PB_OK:
                break
            self._err_where = "PushDataV3ApiWrapper"
        self._err_off = pb_offset(&c)
        return r

    cdef int _grow(self, void** arr, int* cap, int need, size_t item) noexcept:
        cdef int nc
        cdef void* p
        if need <= cap[0]:
            return 0
        nc = max(need, 2 * cap[0], 16)
        p = PyMem_Realloc(arr[0], <size_t>nc * item)
        if p == NULL:
            return MX_ERR_NOMEM
        arr[0] = p
        cap[0] = nc
        return 0

    # ---- binary: pass 2, bodies into raw slices ----------------------------------------------
    cdef int _parse_depth_body(self, bint limit) noexcept:
        # PublicAggreDepthsV3Api: asks 1, bids 2, eventType 3, fromVersion 4, toVersion 5, lastOrderCreateTime 6
        # PublicLimitDepthsV3Api: asks 1, bids 2, eventType 3, version 4, lastOrderCreateTime 5
        cdef PbCursor c, ic
        cdef uint32_t f, g
        cdef int wt, iwt, r = PB_OK, k
        cdef _Str s
        cdef int64_t tmp = 0
        cdef _RawLevel* lv
        self._n_raw_bids = 0
        self._n_raw_asks = 0
        self._v_first.p = NULL
        self._v_first.n = 0
        self._v_last.p = NULL
        self._v_last.n = 0
        for k in range(self._w.n_seg):
            pb_init(&c, self._w.seg[k].p, self._w.seg[k].n)
            while pb_more(&c):
                self._err_where = "depth body"
                r = pb_read_tag(&c, &f, &wt)
                if r != PB_OK:
                    break
                if f == 1 or f == 2:
                    self._err_where = "depth level"
                    r = _read_str(&c, wt, &s, False)
                    if r != PB_OK:
                        break
                    if f == 1:
                        if self._n_raw_asks >= self._cap_raw_asks:
                            if self._grow(<void**>&self._raw_asks, &self._cap_raw_asks, self._n_raw_asks + 1,
                                          sizeof(_RawLevel)) != 0:
                                return MX_ERR_NOMEM
                        lv = &self._raw_asks[self._n_raw_asks]
                        self._n_raw_asks += 1
                    else:
                        if self._n_raw_bids >= self._cap_raw_bids:
                            if self._grow(<void**>&self._raw_bids, &self._cap_raw_bids, self._n_raw_bids + 1,
                                          sizeof(_RawLevel)) != 0:
                                return MX_ERR_NOMEM
                        lv = &self._raw_bids[self._n_raw_bids]
                        self._n_raw_bids += 1
                    lv.px.p = NULL
                    lv.px.n = 0
                    lv.qty.p = NULL
                    lv.qty.n = 0
                    pb_sub(&ic, &c, s.p, s.n)
                    while pb_more(&ic):
                        r = pb_read_tag(&ic, &g, &iwt)
                        if r != PB_OK:
                            break
                        if g == 1:
                            r = _read_str(&ic, iwt, &lv.px, True)
                        elif g == 2:
                            r = _read_str(&ic, iwt, &lv.qty, True)
                        else:
                            r = pb_skip(&ic, g, iwt)
                        if r != PB_OK:
                            break
                    if r != PB_OK:
                        c.p = ic.p
                        break
                elif f == 3:
                    self._err_where = "depth eventType"
                    r = _read_str(&c, wt, &s, True)
                elif f == 4:
                    if limit:
                        self._err_where = "depth version"
                    else:
                        self._err_where = "depth fromVersion"
                    r = _read_str(&c, wt, &self._v_first, True)
                elif f == 5 and not limit:
                    self._err_where = "depth toVersion"
                    r = _read_str(&c, wt, &self._v_last, True)
                elif (f == 6 and not limit) or (f == 5 and limit):
                    self._err_where = "depth lastOrderCreateTime"
                    r = _read_i64(&c, wt, &tmp)
                else:
                    r = pb_skip(&c, f, wt)
                if r != PB_OK:
                    break
            if r != PB_OK:
                self._err_off = pb_offset(&c)
                return r
        return PB_OK

    cdef int _parse_deals_body(self) noexcept:
        # PublicAggreDealsV3Api: deals 1 (price 1, quantity 2, tradeType 3, time 4, tradeId 5), eventType 2
        cdef PbCursor c, ic
        cdef uint32_t f, g
        cdef int wt, iwt, r = PB_OK, k
        cdef _Str s
        cdef int64_t tmp = 0
        cdef _RawDeal* d
        self._n_deals = 0
        for k in range(self._w.n_seg):
            pb_init(&c, self._w.seg[k].p, self._w.seg[k].n)
            while pb_more(&c):
                self._err_where = "deals body"
                r = pb_read_tag(&c, &f, &wt)
                if r != PB_OK:
                    break
                if f == 1:
                    self._err_where = "deal"
                    r = _read_str(&c, wt, &s, False)
                    if r != PB_OK:
                        break
                    if self._n_deals >= self._cap_deals:
                        if self._grow(<void**>&self._deals, &self._cap_deals, self._n_deals + 1,
                                      sizeof(_RawDeal)) != 0:
                            return MX_ERR_NOMEM
                    d = &self._deals[self._n_deals]
                    self._n_deals += 1
                    d.px.p = NULL
                    d.px.n = 0
                    d.qty.p = NULL
                    d.qty.n = 0
                    d.trade_id.p = NULL
                    d.trade_id.n = 0
                    d.trade_type = 0
                    d.time = 0
                    pb_sub(&ic, &c, s.p, s.n)
                    while pb_more(&ic):
                        r = pb_read_tag(&ic, &g, &iwt)
                        if r != PB_OK:
                            break
                        if g == 1:
                            r = _read_str(&ic, iwt, &d.px, True)
                        elif g == 2:
                            r = _read_str(&ic, iwt, &d.qty, True)
                        elif g == 3:
                            r = _read_i64(&ic, iwt, &tmp)
                            d.trade_type = <int32_t>tmp        # int32: low 32 bits of the varint
                        elif g == 4:
                            r = _read_i64(&ic, iwt, &d.time)
                        elif g == 5:
                            self._err_where = "deal tradeId"
                            r = _read_str(&ic, iwt, &d.trade_id, True)
                        else:
                            r = pb_skip(&ic, g, iwt)
                        if r != PB_OK:
                            break
                    if r != PB_OK:
                        c.p = ic.p
                        break
                elif f == 2:
                    self._err_where = "deals eventType"
                    r = _read_str(&c, wt, &s, True)
                else:
                    r = pb_skip(&c, f, wt)
                if r != PB_OK:
                    break
            if r != PB_OK:
                self._err_off = pb_offset(&c)
                return r
        return PB_OK

    cdef int _parse_ticker_body(self, bint batch) noexcept:
        # PublicAggreBookTickerV3Api: bidPrice 1, bidQuantity 2, askPrice 3, askQuantity 4, version 5,
        # lastOrderCreateTime 6. PublicBookTickerBatchV3Api: items 1 (PublicBookTickerV3Api fields 1..4),
        # version 2, lastOrderCreateTime 3.
        cdef PbCursor c, ic
        cdef PbCursor* cur
        cdef uint32_t f, g
        cdef int wt, iwt, r = PB_OK, k
        cdef _Str s
        cdef int64_t tmp = 0
        cdef _RawTicker* t = NULL
        self._n_tickers = 0
        if not batch:
            if self._grow(<void**>&self._tickers, &self._cap_tickers, 1, sizeof(_RawTicker)) != 0:
                return MX_ERR_NOMEM
            t = &self._tickers[0]
            t.bid_px.n = t.bid_qty.n = t.ask_px.n = t.ask_qty.n = t.version.n = 0
            t.bid_px.p = t.bid_qty.p = t.ask_px.p = t.ask_qty.p = t.version.p = NULL
            self._n_tickers = 1
        for k in range(self._w.n_seg):
            pb_init(&c, self._w.seg[k].p, self._w.seg[k].n)
            while pb_more(&c):
                self._err_where = "book ticker"
                r = pb_read_tag(&c, &f, &wt)
                if r != PB_OK:
                    break
                if batch:
                    if f != 1:
                        if f == 2:                  # the batch's version: checked, items carry none
                            self._err_where = "book ticker batch version"
                            r = _read_str(&c, wt, &s, True)
                        elif f == 3:                # lastOrderCreateTime
                            r = _read_i64(&c, wt, &tmp)
                        else:
                            r = pb_skip(&c, f, wt)
                        if r != PB_OK:
                            break
                        continue
                    r = _read_str(&c, wt, &s, False)
                    if r != PB_OK:
                        break
                    if self._grow(<void**>&self._tickers, &self._cap_tickers, self._n_tickers + 1,
                                  sizeof(_RawTicker)) != 0:
                        return MX_ERR_NOMEM
                    t = &self._tickers[self._n_tickers]
                    self._n_tickers += 1
                    t.bid_px.n = t.bid_qty.n = t.ask_px.n = t.ask_qty.n = t.version.n = 0
                    t.bid_px.p = t.bid_qty.p = t.ask_px.p = t.ask_qty.p = t.version.p = NULL
                    pb_sub(&ic, &c, s.p, s.n)
                    cur = &ic
                    while pb_more(cur):
                        r = pb_read_tag(cur, &g, &iwt)
                        if r != PB_OK:
                            break
                        if g == 1:
                            r = _read_str(cur, iwt, &t.bid_px, True)
                        elif g == 2:
                            r = _read_str(cur, iwt, &t.bid_qty, True)
                        elif g == 3:
                            r = _read_str(cur, iwt, &t.ask_px, True)
                        elif g == 4:
                            r = _read_str(cur, iwt, &t.ask_qty, True)
                        else:
                            r = pb_skip(cur, g, iwt)
                        if r != PB_OK:
                            break
                    if r != PB_OK:
                        c.p = ic.p
                        break
                else:
                    if f == 1:
                        r = _read_str(&c, wt, &t.bid_px, True)
                    elif f == 2:
                        r = _read_str(&c, wt, &t.bid_qty, True)
                    elif f == 3:
                        r = _read_str(&c, wt, &t.ask_px, True)
                    elif f == 4:
                        r = _read_str(&c, wt, &t.ask_qty, True)
                    elif f == 5:
                        self._err_where = "book ticker version"
                        r = _read_str(&c, wt, &t.version, True)
                    elif f == 6:
                        r = _read_i64(&c, wt, &tmp)
                    else:
                        r = pb_skip(&c, f, wt)
                    if r != PB_OK:
                        break
            if r != PB_OK:
                self._err_off = pb_offset(&c)
                return r
        return PB_OK

    # ---- binary: dispatch ---------------------------------------------------------------------
    cdef int _binary(self, const char* buf, Py_ssize_t n, int64_t recv_ns) except -1:
        cdef int r
        cdef uint32_t body
        cdef _Str sym
        cdef const Instrument* ins = NULL
        cdef int64_t ts
        r = self._parse_wrapper(buf, n)
        if r != PB_OK:
            return self._fail_code(r, buf, n)
        body = self._w.body
        ts = self._w.send_time if self._w.has_send else (self._w.create_time if self._w.has_create else 0)
        if body == MX_PRIVATE_ORDERS or body == MX_PRIVATE_DEALS or body == MX_PRIVATE_ACCOUNT:
            if self.symbols is not None and self._w.symbol.n > 0:
                ins = self.symbols.find(self._w.symbol.p, self._w.symbol.n)
            r = self._private(ins, ts)
            if r == -2:
                return self._fail_code(self._err_code, buf, n)
            return r
        if not (body == MX_AGGRE_DEPTHS or body == MX_LIMIT_DEPTHS or body == MX_AGGRE_BOOK_TICKER
                or body == MX_BOOK_TICKER_BATCH or body == MX_AGGRE_DEALS):
            if body != 0:                           # legacy / deprecated bodies: checked, then ignored
                r = _validate_member(self)
                if r != PB_OK:
                    self._err_where = "ignored body member"
                    return self._fail_code(r, buf, n)
            return FRAME_IGNORED
        # The body is walked before the symbol lookup so that a malformed frame is an error even
        # for a symbol we do not map (the runtime rejects the whole message).
        if body == MX_AGGRE_DEPTHS or body == MX_LIMIT_DEPTHS:
            r = self._parse_depth_body(body == MX_LIMIT_DEPTHS)
        elif body == MX_AGGRE_DEALS:
            r = self._parse_deals_body()
        else:
            r = self._parse_ticker_body(body == MX_BOOK_TICKER_BATCH)
        if r != PB_OK:
            return self._fail_code(r, buf, n)
        sym = self._w.symbol if self._w.symbol.n > 0 else _channel_symbol(&self._w)
        if sym.n == 0:
            return FRAME_IGNORED
        if self.symbols is not None:
            ins = self.symbols.find(sym.p, sym.n)
            if ins == NULL:
                return FRAME_IGNORED                # not subscribed by us: never a wrong mapping
        elif not self._decoding:
            return FRAME_IGNORED                    # raw mode serves decode() only
        if body == MX_AGGRE_DEPTHS or body == MX_LIMIT_DEPTHS:
            r = self._depth(ins, body == MX_LIMIT_DEPTHS, ts, recv_ns)
        elif body == MX_AGGRE_DEALS:
            r = self._trade(ins, ts, recv_ns)
        else:
            r = self._bbo(ins, ts, recv_ns)
        if r == -2:
            return self._fail_code(self._err_code, buf, n)
        return r

    # ---- conversion + delivery ----------------------------------------------------------------
    # Each returns a FrameResult (>= 0), -1 when the sink raised (exception set), or -2 when the
    # frame is invalid (code and detail in _err_code/_err_*; nothing was delivered).
    cdef int _depth(self, const Instrument* ins, bint limit, int64_t ts, int64_t recv_ns) except -1:
        cdef int nb = self._n_raw_bids, na = self._n_raw_asks, i, rc
        cdef DepthUpdate u
        cdef int64_t first = 0, last = 0
        rc = _parse_uint(self._v_first, &first)
        if rc != 0:
            if limit:
                return _bad(self, rc, "publicLimitDepths version", "not a non-negative integer", self._v_first)
            return _bad(self, rc, "publicAggreDepths fromVersion", "not a non-negative integer", self._v_first)
        if limit:
            last = first
        else:
            rc = _parse_uint(self._v_last, &last)
            if rc != 0:
                return _bad(self, rc, "publicAggreDepths toVersion", "not a non-negative integer", self._v_last)
            if first > last:
                return _bad(self, MX_ERR_VALUE, "publicAggreDepths versions", "fromVersion > toVersion",
                            self._v_first)
        if self._grow(<void**>&self._lv, &self._cap_lv, nb + na, sizeof(Level)) != 0:
            return _bad(self, MX_ERR_NOMEM, "depth", "out of memory", _NOSTR)
        for i in range(nb):
            rc = _level_px_qty(self, &self._raw_bids[i], ins, &self._lv[i], "bid level")
            if rc != 0:
                return rc
        for i in range(na):
            rc = _level_px_qty(self, &self._raw_asks[i], ins, &self._lv[nb + i], "ask level")
            if rc != 0:
                return rc
        if self._decoding:
            self._out.append({
                "venue": VENUE, "symbol": self._symbol_name(ins),
                "type": "book_snapshot" if limit else "book_delta", "ts": ts, "first": first, "last": last,
                "bids": [[_s(self._raw_bids[i].px), _s(self._raw_bids[i].qty)] for i in range(nb)],
                "asks": [[_s(self._raw_asks[i].px), _s(self._raw_asks[i].qty)] for i in range(na)],
            })
            self.depth_updates += 1
            return FRAME_DEPTH
        u.symbol_id = ins.symbol_id
        u.first_id = first
        u.last_id = last
        u.exch_ts_ms = ts
        u.recv_ns = recv_ns
        u.full = limit
        u.n_bids = nb
        u.n_asks = na
        u.bids = self._lv
        u.asks = self._lv + nb
        self.depth_updates += 1
        if self.sink.on_depth(self.venue, &u) < 0:
            return -1
        return FRAME_DEPTH

    cdef int _bbo(self, const Instrument* ins, int64_t ts, int64_t recv_ns) except -1:
        cdef int i, rc, m = self._n_tickers
        cdef _RawTicker* t
        cdef Bbo* b
        cdef Level lv
        cdef _RawLevel side
        if m == 0:
            return FRAME_IGNORED
        if self._grow(<void**>&self._bbos, &self._cap_bbos, m, sizeof(Bbo)) != 0:
            return _bad(self, MX_ERR_NOMEM, "bbo", "out of memory", _NOSTR)
        for i in range(m):
            t = &self._tickers[i]
            b = &self._bbos[i]
            b.symbol_id = ins.symbol_id if ins != NULL else -1
            b.exch_ts_ms = ts
            b.recv_ns = recv_ns
            b.seq = 0
            if t.version.n > 0:
                rc = _parse_uint(t.version, &b.seq)
                if rc != 0:
                    return _bad(self, rc, "book ticker version", "not a non-negative integer", t.version)
            # a side is empty when both strings are empty; half an empty side is malformed
            b.bid_px = b.bid_qty = b.ask_px = b.ask_qty = 0
            if t.bid_px.n > 0 or t.bid_qty.n > 0:
                if t.bid_px.n == 0 or t.bid_qty.n == 0:
                    return _bad(self, MX_ERR_MISSING, "book ticker bid", "half-empty side", t.bid_px)
                side.px = t.bid_px
                side.qty = t.bid_qty
                rc = _level_px_qty(self, &side, ins, &lv, "book ticker bid")
                if rc != 0:
                    return rc
                b.bid_px = lv.px
                b.bid_qty = lv.qty
            if t.ask_px.n > 0 or t.ask_qty.n > 0:
                if t.ask_px.n == 0 or t.ask_qty.n == 0:
                    return _bad(self, MX_ERR_MISSING, "book ticker ask", "half-empty side", t.ask_px)
                side.px = t.ask_px
                side.qty = t.ask_qty
                rc = _level_px_qty(self, &side, ins, &lv, "book ticker ask")
                if rc != 0:
                    return rc
                b.ask_px = lv.px
                b.ask_qty = lv.qty
        if self._decoding:
            name = self._symbol_name(ins)
            for i in range(m):
                t = &self._tickers[i]
                self._out.append({
                    "venue": VENUE, "symbol": name, "type": "bbo", "ts": ts,
                    "bid": _s(t.bid_px) if t.bid_px.n else None, "bid_qty": _s(t.bid_qty) if t.bid_qty.n else None,
                    "ask": _s(t.ask_px) if t.ask_px.n else None, "ask_qty": _s(t.ask_qty) if t.ask_qty.n else None,
                    "seq": self._bbos[i].seq if t.version.n else None,
                })
            return FRAME_BBO
        for i in range(m):
            if self.sink.on_bbo(self.venue, &self._bbos[i]) < 0:
                return -1
        return FRAME_BBO

    cdef int _trade(self, const Instrument* ins, int64_t ts, int64_t recv_ns) except -1:
        cdef int i, rc, m = self._n_deals
        cdef _RawDeal* d
        cdef Trade* t
        cdef _RawLevel side
        cdef Level lv
        if m == 0:
            return FRAME_IGNORED
        if self._grow(<void**>&self._trades, &self._cap_trades, m, sizeof(Trade)) != 0:
            return _bad(self, MX_ERR_NOMEM, "trades", "out of memory", _NOSTR)
        for i in range(m):
            d = &self._deals[i]
            t = &self._trades[i]
            side.px = d.px
            side.qty = d.qty
            rc = _level_px_qty(self, &side, ins, &lv, "deal")
            if rc != 0:
                return rc
            if lv.qty == 0:
                return _bad(self, MX_ERR_VALUE, "deal", "quantity must be > 0", d.qty)
            if d.trade_type == 1:
                t.side = 1
            elif d.trade_type == 2:
                t.side = -1
            else:
                return _bad(self, MX_ERR_VALUE, "deal tradeType", "not 1 (buy) or 2 (sell)", _NOSTR)
            t.symbol_id = ins.symbol_id if ins != NULL else -1
            t.px = lv.px
            t.qty = lv.qty
            t.trade_id = 0
            if _all_digits(d.trade_id):
                _parse_uint(d.trade_id, &t.trade_id)
            t.exch_ts_ms = d.time if d.time != 0 else ts
            t.recv_ns = recv_ns
        if self._decoding:
            name = self._symbol_name(ins)
            for i in range(m):
                d = &self._deals[i]
                self._out.append({
                    "venue": VENUE, "symbol": name, "type": "trade", "ts": self._trades[i].exch_ts_ms,
                    "price": _s(d.px), "qty": _s(d.qty), "side": "buy" if self._trades[i].side > 0 else "sell",
                    "id": _s(d.trade_id) if d.trade_id.n else None,
                })
            return FRAME_TRADE
        for i in range(m):
            if self.sink.on_trade(self.venue, &self._trades[i]) < 0:
                return -1
        return FRAME_TRADE

    cdef object _symbol_name(self, const Instrument* ins):
        cdef _Str sym
        if ins != NULL:
            return self.symbols.get(self.symbols.name_of(ins.symbol_id)).name
        sym = self._w.symbol if self._w.symbol.n > 0 else _channel_symbol(&self._w)
        return _s(sym) if sym.p != NULL else None

    cdef int _private(self, const Instrument* ins, int64_t ts) except -1:
        # Private bodies are not hot: read every known field into a proto3-JSON dict ("raw"), then
        # normalize. Wrong wire types and bad UTF-8 are errors (reported through _err_dec).
        cdef PbCursor c
        cdef uint32_t f
        cdef int wt, r = PB_OK, k
        cdef uint64_t v
        cdef _Str s
        cdef dict table = _PRIVATE_FIELDS[self._w.body]
        cdef dict vals = {}
        where = _PRIVATE_NAMES[self._w.body]
        for k in range(self._w.n_seg):
            pb_init(&c, self._w.seg[k].p, self._w.seg[k].n)
            while pb_more(&c):
                r = pb_read_tag(&c, &f, &wt)
                if r != PB_OK:
                    break
                spec = table.get(f)
                if spec is None:
                    r = pb_skip(&c, f, wt)
                elif spec[1] == "s":
                    r = _read_str(&c, wt, &s, True)
                    if r == PB_OK:
                        vals[spec[0]] = _s(s)
                else:
                    if wt != PB_VARINT:
                        r = PB_ERR_WRONG_TYPE
                    else:
                        r = pb_read_varint(&c, &v)
                        if r == PB_OK:
                            if spec[1] == "i":
                                vals[spec[0]] = <int32_t>v
                            elif spec[1] == "l":
                                vals[spec[0]] = <int64_t>v
                            else:
                                vals[spec[0]] = v != 0
                if r != PB_OK:
                    break
            if r != PB_OK:
                self._err_off = pb_offset(&c)
                self._err_where = "private body"
                self._err_code = r
                return -2
        if self._decoding:
            return FRAME_MESSAGE                    # private pushes are not decode events
        raw = {}
        for fnum in sorted(table):
            name, kind = table[fnum]
            if name in vals:
                x = _proto3_default(kind, vals[name])
                if x is not None:
                    raw[name] = x
        sym_name = self._symbol_name(ins) if ins != NULL else None
        vsym = _s(self._w.symbol) if self._w.symbol.n > 0 else None
        g = raw.get
        if self._w.body == MX_PRIVATE_ORDERS:
            kind = MSG_ORDER
            msg = {"venue": VENUE, "type": "order", "symbol": sym_name, "venue_symbol": vsym, "ts": ts,
                   "order_id": g("id"), "client_order_id": g("clientId"), "side": _SIDES.get(g("tradeType")),
                   "order_type": _ORDER_TYPES.get(g("orderType"), None if g("orderType") is None else str(g("orderType"))),
                   "status": _ORDER_STATUS.get(g("status"), None if g("status") is None else str(g("status"))),
                   "price": g("price"), "qty": g("quantity"), "amount": g("amount"), "avg_price": g("avgPrice"),
                   "filled_qty": g("cumulativeQuantity"), "filled_amount": g("cumulativeAmount"),
                   "remain_qty": g("remainQuantity"), "remain_amount": g("remainAmount"),
                   "last_fill_qty": g("lastDealQuantity"), "is_maker": bool(g("isMaker", False)),
                   "create_time": int(g("createTime", 0)), "raw": raw}
        elif self._w.body == MX_PRIVATE_DEALS:
            kind = MSG_FILL
            msg = {"venue": VENUE, "type": "fill", "symbol": sym_name, "venue_symbol": vsym, "ts": ts,
                   "trade_id": g("tradeId"), "order_id": g("orderId"), "client_order_id": g("clientOrderId"),
                   "side": _SIDES.get(g("tradeType")), "price": g("price"), "qty": g("quantity"),
                   "amount": g("amount"), "fee": g("feeAmount"), "fee_currency": g("feeCurrency"),
                   "is_maker": bool(g("isMaker", False)), "is_self_trade": bool(g("isSelfTrade", False)),
                   "time": int(g("time", 0)), "raw": raw}
        else:
            kind = MSG_BALANCE
            msg = {"venue": VENUE, "type": "balance", "ts": ts, "asset": g("vcoinName"),
                   "free": g("balanceAmount"), "free_change": g("balanceAmountChange"),
                   "frozen": g("frozenAmount"), "frozen_change": g("frozenAmountChange"),
                   "change_type": g("type"), "time": int(g("time", 0)), "raw": raw}
        if self.sink.on_message(self.venue, kind, msg) < 0:
            return -1
        return FRAME_MESSAGE

    # ---- text frames --------------------------------------------------------------------------
    cdef int _text(self, const char* buf, Py_ssize_t n) except -1:
        cdef Py_ssize_t i = 0, ks, ke, vs, ve
        cdef int depth
        cdef bint esc
        cdef object id_ = None, code = None, msgv = None
        cdef bint have_msg = False, other = False
        i = _ws(buf, 0, n)
        if i >= n or buf[i] != c'{':
            return self._fail("json: text frame is not a JSON object", buf, n)
        i = _ws(buf, i + 1, n)
        if i < n and buf[i] == c'}':
            i += 1
        else:
            while True:
                if i >= n or buf[i] != c'"':
                    return self._fail("json: expected a key at offset %d" % i, buf, n)
                ks = i + 1
                i = _json_string(buf, i, n, &esc)
                if i < 0:
                    return self._fail("json: bad string at offset %d" % ks, buf, n)
                ke = i - 1
                i = _ws(buf, i, n)
                if i >= n or buf[i] != c':':
                    return self._fail("json: expected ':' at offset %d" % i, buf, n)
                i = _ws(buf, i + 1, n)
                vs = i
                i = _json_value(buf, i, n, 0)
                if i < 0:
                    return self._fail("json: bad value at offset %d" % vs, buf, n)
                ve = i
                key = buf[ks:ke]
                if key == b"id" or key == b"code":
                    val = _json_int(buf, vs, ve)
                    if val is None:
                        other = True
                    elif key == b"id":
                        id_ = val
                    else:
                        code = val
                elif key == b"msg":
                    if buf[vs] != c'"':
                        other = True
                    else:
                        try:
                            msgv = _json.loads(buf[vs:ve].decode("utf-8"))
                        except (UnicodeDecodeError, ValueError):
                            return self._fail("json: msg is not valid UTF-8 text", buf, n)
                        have_msg = True
                i = _ws(buf, i, n)
                if i < n and buf[i] == c',':
                    i = _ws(buf, i + 1, n)
                    continue
                if i < n and buf[i] == c'}':
                    i += 1
                    break
                return self._fail("json: expected ',' or '}' at offset %d" % i, buf, n)
        if _ws(buf, i, n) != n:
            return self._fail("json: trailing bytes after the object", buf, n)
        if self._decoding:
            return FRAME_MESSAGE                        # control frames are not decode events
        if other or not have_msg:
            try:
                text = buf[:n].decode("utf-8")
            except UnicodeDecodeError:
                return self._fail("json: text frame is not valid UTF-8", buf, n)
            if self.sink.on_message(self.venue, MSG_OTHER, {"venue": VENUE, "type": "other", "raw": text}) < 0:
                return -1
            return FRAME_MESSAGE
        kind, msg = classify_control(id_, code, msgv)
        if self.sink.on_message(self.venue, kind, msg) < 0:
            return -1
        return FRAME_MESSAGE

    # ---- Python API ---------------------------------------------------------------------------
    def decode(self, bytes frame, bint binary, int64_t recv_ns=0):
        """Normalized events of one frame (docs/design.md §3), using the same reader as the live path.

        Returns a list of dicts: ``book_delta`` / ``book_snapshot`` (``first``, ``last``, ``bids``,
        ``asks`` as ``[price, qty]`` venue strings), ``bbo``, ``trade``, or one ``error`` with its
        ``reason``. Control frames and private pushes give ``[]``. The sink is not called.
        """
        self._out = []
        self._decoding = True
        try:
            self.feed(<const char*>frame, len(frame), binary, recv_ns)
            return self._out
        finally:
            self._decoding = False
            self._out = None

    def bench_feed(self, list frames, Py_ssize_t repeats, bint binary=True):
        """Benchmark helper: feed ``frames`` ``repeats`` times in a C loop; returns elapsed ns."""
        cdef Py_ssize_t m = len(frames), r, k
        cdef int64_t t0, t1
        cdef bytes b
        t0 = _perf_counter_ns()
        for r in range(repeats):
            for k in range(m):
                b = <bytes>frames[k]
                self.feed(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), binary, 0)
        t1 = _perf_counter_ns()
        return t1 - t0


def classify_control(id_, code, msg):
    """``(MessageKind, dict)`` for a MEXC JSON control message ``{"id","code","msg"}``.

    MEXC acks subscriptions with ``code: 0`` and the topic list in ``msg`` (several topics joined
    by ","). A rejection ("Blocked", deprecated JSON channels, bad topic) ALSO carries ``code: 0``:
    ``msg`` then reads ``"Not Subscribed successfully! [t1,t2].  Reason： Blocked! "`` (full-width
    colon). The adapter may also compare the topics with what it requested.
    """
    m = msg if isinstance(msg, str) else ""
    base = {"venue": VENUE, "id": id_, "code": code, "msg": msg}
    if code is not None and code != 0:
        base.update(type="error", reason=m)
        return MSG_ERROR, base
    if m == "PONG":
        base.update(type="pong")
        return MSG_PONG, base
    low = m.lower()
    if low.startswith("not subscribed") or "blocked" in low or "reason" in low or "fail" in low:
        topics = []
        lb, rb = m.find("["), m.find("]")
        if 0 <= lb < rb:
            topics = [t.strip() for t in m[lb + 1:rb].split(",") if t.strip()]
        reason = m
        for sep in ("Reason\uff1a", "Reason:"):
            j = m.find(sep)
            if j >= 0:
                reason = m[j + len(sep):].strip()
                break
        base.update(type="rejected", topics=topics, reason=reason)
        return MSG_ERROR, base
    base.update(type="ack", topics=[t.strip() for t in m.split(",") if t.strip()])
    return MSG_ACK, base


# ---------------------------------------------------------------------------------------------
# JSON cursor (control frames)
# ---------------------------------------------------------------------------------------------

cdef inline Py_ssize_t _ws(const char* b, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and (b[i] == c' ' or b[i] == c'\t' or b[i] == c'\n' or b[i] == c'\r'):
        i += 1
    return i


cdef Py_ssize_t _json_string(const char* b, Py_ssize_t i, Py_ssize_t n, bint* esc) noexcept:
    # b[i] == '"'; returns the index after the closing quote, -1 when malformed.
    cdef Py_ssize_t k
    cdef char ch
    esc[0] = False
    i += 1
    while i < n:
        ch = b[i]
        if ch == c'"':
            return i + 1
        if ch == c'\\':
            esc[0] = True
            if i + 1 >= n:
                return -1
            ch = b[i + 1]
            if ch == c'u':
                if i + 5 >= n:
                    return -1
                for k in range(i + 2, i + 6):
                    if not ((c'0' <= b[k] <= c'9') or (c'a' <= b[k] <= c'f') or (c'A' <= b[k] <= c'F')):
                        return -1
                i += 6
                continue
            if not (ch == c'"' or ch == c'\\' or ch == c'/' or ch == c'b' or ch == c'f' or ch == c'n'
                    or ch == c'r' or ch == c't'):
                return -1
            i += 2
            continue
        if <unsigned char>ch < 0x20:
            return -1
        i += 1
    return -1


cdef Py_ssize_t _json_number(const char* b, Py_ssize_t i, Py_ssize_t n) noexcept:
    cdef Py_ssize_t s
    if i < n and b[i] == c'-':
        i += 1
    if i >= n:
        return -1
    if b[i] == c'0':
        i += 1
    elif c'1' <= b[i] <= c'9':
        while i < n and c'0' <= b[i] <= c'9':
            i += 1
    else:
        return -1
    if i < n and b[i] == c'.':
        i += 1
        s = i
        while i < n and c'0' <= b[i] <= c'9':
            i += 1
        if i == s:
            return -1
    if i < n and (b[i] == c'e' or b[i] == c'E'):
        i += 1
        if i < n and (b[i] == c'+' or b[i] == c'-'):
            i += 1
        s = i
        while i < n and c'0' <= b[i] <= c'9':
            i += 1
        if i == s:
            return -1
    return i


cdef Py_ssize_t _json_value(const char* b, Py_ssize_t i, Py_ssize_t n, int depth) noexcept:
    # Validates and skips one JSON value; returns the index after it, -1 when malformed.
    cdef bint esc
    cdef char ch
    if depth > 64 or i >= n:
        return -1
    ch = b[i]
    if ch == c'"':
        return _json_string(b, i, n, &esc)
    if ch == c'{' or ch == c'[':
        i = _ws(b, i + 1, n)
        if i < n and b[i] == (c'}' if ch == c'{' else c']'):
            return i + 1
        while True:
            if ch == c'{':
                if i >= n or b[i] != c'"':
                    return -1
                i = _json_string(b, i, n, &esc)
                if i < 0:
                    return -1
                i = _ws(b, i, n)
                if i >= n or b[i] != c':':
                    return -1
                i = _ws(b, i + 1, n)
            i = _json_value(b, i, n, depth + 1)
            if i < 0:
                return -1
            i = _ws(b, i, n)
            if i < n and b[i] == c',':
                i = _ws(b, i + 1, n)
                continue
            if i < n and b[i] == (c'}' if ch == c'{' else c']'):
                return i + 1
            return -1
    if ch == c't':
        return i + 4 if i + 4 <= n and memcmp(b + i, b"true", 4) == 0 else -1
    if ch == c'f':
        return i + 5 if i + 5 <= n and memcmp(b + i, b"false", 5) == 0 else -1
    if ch == c'n':
        return i + 4 if i + 4 <= n and memcmp(b + i, b"null", 4) == 0 else -1
    return _json_number(b, i, n)


cdef object _json_int(const char* b, Py_ssize_t s, Py_ssize_t e):
    # An integer JSON number -> int (exact, any size), else None.
    cdef Py_ssize_t i
    if e <= s:
        return None
    for i in range(s, e):
        if not (c'0' <= b[i] <= c'9' or (i == s and b[i] == c'-')):
            return None
    return int(b[s:e])


# ---------------------------------------------------------------------------------------------
# sinks for tests and benchmarks
# ---------------------------------------------------------------------------------------------

@cython.final
cdef class CollectSink(FeedSink):
    """Records every event as a Python tuple (tests): ``events`` list of
    ``("depth", symbol_id, first, last, exch_ts_ms, recv_ns, full, bids, asks)``,
    ``("bbo", symbol_id, bid_px, bid_qty, ask_px, ask_qty, seq, exch_ts_ms, recv_ns)``,
    ``("trade", symbol_id, px, qty, side, trade_id, exch_ts_ms, recv_ns)``,
    ``("message", kind, msg)``, ``("error", reason)``."""
    cdef public list events

    def __init__(self):
        self.events = []

    cdef int on_depth(self, int venue, const DepthUpdate* u) except -1:
        cdef int i
        self.events.append(("depth", u.symbol_id, u.first_id, u.last_id, u.exch_ts_ms, u.recv_ns, bool(u.full),
                            [(u.bids[i].px, u.bids[i].qty) for i in range(u.n_bids)],
                            [(u.asks[i].px, u.asks[i].qty) for i in range(u.n_asks)]))
        return 0

    cdef int on_bbo(self, int venue, const Bbo* b) except -1:
        self.events.append(("bbo", b.symbol_id, b.bid_px, b.bid_qty, b.ask_px, b.ask_qty, b.seq, b.exch_ts_ms,
                            b.recv_ns))
        return 0

    cdef int on_trade(self, int venue, const Trade* t) except -1:
        self.events.append(("trade", t.symbol_id, t.px, t.qty, t.side, t.trade_id, t.exch_ts_ms, t.recv_ns))
        return 0

    cdef int on_message(self, int venue, int kind, object msg) except -1:
        self.events.append(("message", kind, msg))
        return 0

    cdef int on_parse_error(self, int venue, str reason, const char* buf, Py_ssize_t n) except -1:
        self.events.append(("error", reason))
        return 0


@cython.final
cdef class BookSyncSink(FeedSink):
    """Applies depth updates to one BookSync per symbol id (benchmarks, pipeline tests):
    ``full`` updates go through ``on_update`` too (MEXC limit depth is a stream snapshot)."""
    cdef public dict syncs
    cdef public object results

    def __init__(self, dict syncs):
        self.syncs = syncs
        self.results = None

    cdef int on_depth(self, int venue, const DepthUpdate* u) except -1:
        cdef BookSync s = <BookSync>self.syncs.get(u.symbol_id)
        cdef int r
        if s is None:
            return 0
        r = s.on_update(u)
        if self.results is not None:
            self.results.append(r)
        return 0

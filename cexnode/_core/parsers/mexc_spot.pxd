# cexnode._core.parsers.mexc_spot — MEXC spot v3 WebSocket parser. THE CONTRACT; review first.
#
# Binary frames: one PushDataV3ApiWrapper (protobuf, no prefix, no compression; schema in
# cexnode/sim/venues/mexc_spot/proto.py and the reference README). Text frames: JSON acks / PONG / rejections.
#
# Two passes, no Python objects on the market-data path:
#   1. the wrapper: channel(1), symbol(3), symbolId(4), createTime(5), sendTime(6) and the body
#      oneof: EVERY member of the official PushDataV3ApiWrapper, 301..315 (legacy and deprecated
#      ones included). Any field order; duplicates: last scalar wins; a body field repeated is
#      MERGED (the runtime's rule: parsing concatenated serializations), a different body member
#      replaces the previous one: the LAST member read is the body, as in the official runtime
#      (depth 313 followed by miniTicker 309 is a miniTicker push, ignored; 309 then 313 is depth).
#      A replaced member is still parsed against its schema (the runtime rejects the whole
#      message when it is malformed). Unknown fields of every wire type are skipped.
#   2. the body, walked once into raw string slices (_RawLevel/_RawDeal/_RawTicker, scratch
#      arrays owned by the parser), then converted: decimal strings straight into int64 mantissas
#      at the instrument's scales (price_scale; quantities at venue_qty_scale × qty_mult = base).
#      Everything is validated BEFORE the first event is delivered: a bad frame touches no book.
#
# Mapping (feed.pxd):
#   313 publicAggreDepths  -> one DepthUpdate (full=0, first=fromVersion, last=toVersion)
#   303 publicLimitDepths  -> one DepthUpdate (full=1, first=last=version)
#   315 publicAggreBookTicker, 311 publicBookTickerBatch (per item) -> Bbo (seq = version or 0;
#       the batch's own version/lastOrderCreateTime (2, 3) are checked, not used: items carry none)
#   314 publicAggreDeals   -> one Trade per deal (tradeType 1 buy +1 / 2 sell -1)
#   304/306/307 private orders/deals/account -> on_message(MSG_ORDER/MSG_FILL/MSG_BALANCE, dict)
#   301/302/305/308/309/310/312 (legacy, deprecated) -> validated against their schema, FRAME_IGNORED
#   no body -> FRAME_IGNORED
# exch_ts_ms: wrapper sendTime, else createTime, else 0 (trades: the deal's own time when set).
# Symbol: wrapper `symbol` when present and non-empty, else from the channel (limit depth:
# "...pb@SYMBOL@5"; others: the last "@" segment); SymbolMap.find miss -> FRAME_IGNORED.
# Errors (FRAME_ERROR via FeedParser._error, reason text names the field): protobuf malformations
# (protobuf.pxd), wrong wire type for a known field, invalid UTF-8 in a string field, missing or
# non-integer versions, fromVersion > toVersion, bad decimals (syntax, too precise for the scale,
# overflow, price <= 0, negative quantity, trade quantity 0, half-empty bbo side), tradeType not 1/2.
#
# Raw mode (symbols=None) serves `decode`: events keep the venue's exact strings; decimals are
# checked for syntax and int64 range at their own scale (fraction digits up to the last non-zero
# one, <= 18: fixedpoint.natural_scale; trailing zeros never raise it).
cimport cython
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from cexnode._core.book cimport DepthUpdate, Level, BookSync
from cexnode._core.feed cimport FeedParser, FeedSink, Bbo, Trade
from cexnode._core.symbols cimport Instrument, SymbolMap
from cexnode._core.parsers.protobuf cimport PbCursor


cdef enum:
    MX_MAX_SEGMENTS = 16          # repeated occurrences of one body field merged (more: error)

cdef enum MexcBody:
    # the body oneof of PushDataV3ApiWrapper.proto (mexcdevelop/websocket-proto), all members
    MX_BODY_FIRST = 301
    MX_DEALS = 301                # publicDeals (legacy)
    MX_INCREASE_DEPTHS = 302      # publicIncreaseDepths (legacy)
    MX_LIMIT_DEPTHS = 303
    MX_PRIVATE_ORDERS = 304
    MX_BOOK_TICKER = 305          # publicBookTicker (legacy)
    MX_PRIVATE_DEALS = 306
    MX_PRIVATE_ACCOUNT = 307
    MX_SPOT_KLINE = 308
    MX_MINI_TICKER = 309          # deprecated 2025-08
    MX_MINI_TICKERS = 310         # deprecated 2025-08
    MX_BOOK_TICKER_BATCH = 311
    MX_INCREASE_DEPTHS_BATCH = 312
    MX_AGGRE_DEPTHS = 313
    MX_AGGRE_DEALS = 314
    MX_AGGRE_BOOK_TICKER = 315
    MX_BODY_LAST = 315

cdef enum MexcError:
    # beyond protobuf.pxd PbError (negative, -1..-8)
    MX_ERR_DECIMAL = -20          # decimal string rejected (detail: _err_dec)
    MX_ERR_MISSING = -21          # required field absent / empty
    MX_ERR_VALUE = -22            # semantically invalid value (detail in _err_what)
    MX_ERR_SEGMENTS = -23         # body field repeated more than MX_MAX_SEGMENTS times
    MX_ERR_NOMEM = -24


cdef struct _Str:
    const char* p
    Py_ssize_t n

cdef struct _RawLevel:
    _Str px
    _Str qty

cdef struct _RawDeal:
    _Str px
    _Str qty
    int32_t trade_type
    int64_t time
    _Str trade_id

cdef struct _RawTicker:
    _Str bid_px
    _Str bid_qty
    _Str ask_px
    _Str ask_qty
    _Str version

cdef struct _Wrapper:
    _Str channel
    _Str symbol                   # wrapper field 3 (p NULL when absent)
    _Str symbol_id
    bint has_create
    bint has_send
    int64_t create_time
    int64_t send_time
    uint32_t body                 # oneof field number of the body, 0 when none
    int n_seg
    _Str seg[MX_MAX_SEGMENTS]     # occurrences of that body field, merged in order


@cython.final
cdef class MexcSpotParser(FeedParser):
    cdef:
        _Wrapper _w
        # pass-2 scratch (grown on demand, never shrunk; valid during one feed call)
        _RawLevel* _raw_bids
        _RawLevel* _raw_asks
        int _n_raw_bids
        int _n_raw_asks
        int _cap_raw_bids
        int _cap_raw_asks
        _RawDeal* _deals
        int _n_deals
        int _cap_deals
        _RawTicker* _tickers
        int _n_tickers
        int _cap_tickers
        _Str _v_first                 # fromVersion (aggre) / version (limit)
        _Str _v_last                  # toVersion (aggre)
        Level* _lv                    # converted levels: bids at [0, nb), asks at [nb, nb+na)
        int _cap_lv
        Trade* _trades
        int _cap_trades
        Bbo* _bbos
        int _cap_bbos
        # error detail of the current frame (read only when building the reason text)
        int _err_code                 # MexcError / PbError of the frame being rejected
        const char* _err_where
        const char* _err_what
        _Str _err_val
        int _err_dec
        Py_ssize_t _err_off
        # decode() mode: events appended here instead of calling the sink
        list _out
        bint _decoding
        readonly uint64_t messages    # FRAME_MESSAGE results (control + private)

    # feed() overrides FeedParser.feed (declared there)
    cdef int _binary(self, const char* buf, Py_ssize_t n, int64_t recv_ns) except -1
    cdef int _text(self, const char* buf, Py_ssize_t n) except -1
    cdef int _fail(self, str reason, const char* buf, Py_ssize_t n) except -1
    cdef int _fail_code(self, int code, const char* buf, Py_ssize_t n) except -1
    cdef int _parse_wrapper(self, const char* buf, Py_ssize_t n) noexcept
    cdef int _parse_depth_body(self, bint limit) noexcept
    cdef int _parse_deals_body(self) noexcept
    cdef int _parse_ticker_body(self, bint batch) noexcept
    cdef int _grow(self, void** arr, int* cap, int need, size_t item) noexcept
    # conversion + delivery: FrameResult, -1 (sink raised), or -2 (invalid; detail in _err_*)
    cdef int _depth(self, const Instrument* ins, bint limit, int64_t ts, int64_t recv_ns) except -1
    cdef int _bbo(self, const Instrument* ins, int64_t ts, int64_t recv_ns) except -1
    cdef int _trade(self, const Instrument* ins, int64_t ts, int64_t recv_ns) except -1
    cdef int _private(self, const Instrument* ins, int64_t ts) except -1
    cdef object _symbol_name(self, const Instrument* ins)

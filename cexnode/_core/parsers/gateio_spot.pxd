# cexnode._core.parsers.gateio_spot — Gate.io v4 WebSocket parsers (spot; futures shares the engine).
# THE CONTRACT; review first.
#
# GateParserBase holds the whole engine; GateSpotParser (here) and GateFuturesParser
# (gateio_futures.pyx) only choose the channel prefix ("spot." / "futures.") and the trade shape.
# Frames are JSON text (a binary frame is read the same way). One pass over the frame with the
# json.pxd cursor: the top-level object is walked once; when "channel" precedes "result" (always on
# the wire) a market-data result is read in the same pass into raw slices (_GRes, _GLevel, _GTrade:
# parser-owned scratch, grown on demand); otherwise (any key order) the result span is read again
# after the walk. Duplicate keys: the last one wins (orjson's rule). Nothing is delivered before
# the WHOLE frame was validated and every number converted: a bad frame never touches a book.
#
# Classification of a valid JSON object (first rule that applies):
#   "header" is an object            -> Gate WS API response (spot.order_place ...): MSG_API_RESPONSE
#   event "subscribe"/"unsubscribe"  -> MSG_ACK, or MSG_ERROR when "error" is non-null or
#                                       result.status != "success"
#   "error" present and not null     -> MSG_ERROR
#   channel <prefix>pong             -> MSG_PONG
#   channel missing / not a string   -> MSG_OTHER
#   market channel, event absent or "update" -> depth / bbo / trade (below); other events IGNORED
#   orders / usertrades / balances (event absent or "update") -> one on_message(MSG_ORDER /
#                                       MSG_FILL / MSG_BALANCE, dict) per item of `result`
#   anything else (tickers, candlesticks, legacy order_book, ...) -> FRAME_IGNORED
# Control and private messages are dicts built by classify_control / normalize_private (cold path;
# values from the cursor, integers exact: ids above 2**53 stay exact).
#
# Market data (result fields; numbers come from the venue's decimal TEXT, never through a double):
#   <p>order_book_update: s, U, u, t?, full?, b?, a?  -> DepthUpdate(first=U, last=u, full)
#   <p>obu:               s = "ob.<PAIR>.<level>", u, U (absent only when full), t?, full?, b?, a?
#       first = U when present, else u (full push); full:true -> DepthUpdate.full (book replaced)
#   <p>book_ticker:       s, t?, u?, b?, B?, a?, A?   -> Bbo(seq = u or 0); b "" (or absent) = empty
#       side, whose size must then be absent, "" or zero
#   <p>trades:            result object or array; spot: currency_pair, price, amount > 0, side
#       buy|sell; futures: contract, price, size != 0 (sign = taker side); id?; create_time_ms?
#       (integer, or decimal string: floored), else create_time? x 1000, else 0 -> Trade
# Levels: [price, size] arrays of exactly 2, or {"p": price, "s": size} objects (extra keys
# skipped); "0" deletes. Prices are strings, > 0. Sizes are strings or JSON integers (futures
# contracts; X-Gate-Size-Decimal strings may be fractional), >= 0 in books. Sizes are converted
# exactly: parsed at Instrument.venue_qty_scale, times Instrument.qty_mult (base quantity).
# Integer fields (U, u, t, id, create_time): a JSON integer or a string of digits, 0 <= v < 2**63.
# t absent -> exch_ts_ms 0.
#
# Order of checks (the reference decoder follows it): JSON validity; classification; structure
# (types, required fields, id ranges, U <= u, obu stream name, trade side); symbol lookup (an
# unlisted symbol is FRAME_IGNORED; a trade of an unlisted symbol in an array is skipped);
# decimals at the instrument's scales (syntax, too precise, overflow, price > 0, size >= 0,
# trade size != 0, half-empty bbo side). Any failure: FRAME_ERROR with the reason, counted via
# FeedParser._error (sink.on_parse_error), nothing delivered.
#
# Raw mode (symbols=None) serves decode(): every symbol is accepted and decimals are checked at
# their own scale (fraction digits up to the last non-zero one, <= 18: fixedpoint.natural_scale, so
# "41.847400000000000000" is checked at 4, not 18), sizes in venue units.
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t
from cexnode._core.book cimport DepthUpdate, Level
from cexnode._core.feed cimport FeedParser, FeedSink, Bbo, Trade
from cexnode._core.symbols cimport Instrument, SymbolMap
from cexnode._core.parsers.json cimport JStr, JsonCursor


cdef enum GateChannel:
    GC_NONE = 0
    GC_BOOK_UPDATE = 1        # order_book_update
    GC_OBU = 2                # obu (Order Book V2)
    GC_BOOK_TICKER = 3
    GC_TRADES = 4
    GC_ORDERS = 5
    GC_USERTRADES = 6
    GC_BALANCES = 7
    GC_PONG = 8
    GC_OTHER = 9              # a string channel we do not handle


cdef struct _GLevel:
    JStr px
    JStr qty

cdef struct _GTrade:
    JStr px
    JStr size                 # spot amount / futures size
    JStr side                 # spot only
    JStr sym
    JStr id
    JStr ctime_ms
    JStr ctime

cdef struct _GRes:            # the result object of a depth or book_ticker push
    JStr s
    JStr t
    JStr U
    JStr u
    JStr full
    JStr b                    # book_ticker sides
    JStr B
    JStr a
    JStr A

cdef struct _GTop:
    int ch                    # GateChannel of the (last) channel value
    JStr channel
    JStr event
    JStr result
    JStr error
    JStr header


cdef class GateParserBase(FeedParser):
    cdef:
        bint _futures
        str _venue_name               # the "venue" of decoded / normalized dicts: the map's venue, or this protocol's name
        _GTop _t
        _GRes _r
        int _parsed_as                # GateChannel the result was read as during the walk
        _GLevel* _rb
        _GLevel* _ra
        int _nb
        int _na
        int _cap_b
        int _cap_a
        _GTrade* _rt
        int _nt
        int _cap_t
        Level* _lv                    # converted levels: bids [0, nb), asks [nb, nb+na)
        int _cap_lv
        Trade* _trades
        int _cap_trades
        char* _arena                  # decoded escaped strings of the current frame (cap >= frame)
        Py_ssize_t _arena_cap
        Py_ssize_t _arena_n
        int64_t _first                # validated ids of the current depth push
        int64_t _last
        int64_t _ts
        JStr _sym                     # venue symbol of the current push (obu: the pair)
        # error detail of the current frame
        const char* _why
        JStr _why_val
        int _why_dec
        # decode(): events appended here instead of calling the sink
        list _out
        bint _decoding
        readonly uint64_t messages    # FRAME_MESSAGE results (control + private)

    cdef int _frame(self, const char* buf, Py_ssize_t n, int64_t recv_ns) except -1
    cdef int _fail(self, str reason, const char* buf, Py_ssize_t n) except -1
    cdef int _fail_why(self, const char* buf, Py_ssize_t n) except -1
    cdef int _walk(self, const char* buf, Py_ssize_t n, JsonCursor* c) noexcept
    cdef int _channel_id(self, JStr* ch) noexcept
    cdef int _parse_result(self, int ch, JsonCursor* c) noexcept
    cdef int _parse_depth(self, JsonCursor* c) noexcept
    cdef int _parse_levels(self, JsonCursor* c, bint bids) noexcept
    cdef int _parse_ticker(self, JsonCursor* c) noexcept
    cdef int _parse_trades(self, JsonCursor* c) noexcept
    cdef int _parse_trade(self, JsonCursor* c, _GTrade* t) noexcept
    cdef int _grow(self, void** arr, int* cap, int need, size_t item) noexcept
    cdef void _plain(self, JStr* s) noexcept
    cdef int _depth(self, int ch, int64_t recv_ns) except -1
    cdef int _bbo(self, int64_t recv_ns) except -1
    cdef int _trade(self, int64_t recv_ns) except -1
    cdef int _control(self, const char* buf, Py_ssize_t n, int ch) except -1
    cdef object _symbol_name(self, const Instrument* ins, JStr* vs)


@cython.final
cdef class GateSpotParser(GateParserBase):
    pass

# cexnode._core.feed — what a venue parser produces and who receives it. THE CONTRACT; review first.
#
# Data flow (docs/design.md §1):  FeedListener (picows, zero-copy)  →  FeedParser.feed(ptr, n, ...)  →  FeedSink
#   * market data (depth, bbo, trades) reaches the sink as C structs: no Python object per message;
#   * everything that is not hot (acks, pongs, errors, private orders/deals/balances) reaches the sink
#     as one Python object (a dict in the normalized shape of docs/design.md §3, decimal strings) via on_message;
#   * a frame that cannot be parsed is counted in the parser, its reason kept in last_error, and the
#     sink's on_parse_error is called; it never touches a book and never raises into the listener.
#
# Numbers in the structs: int64 mantissas at the instrument's shared scales (symbols.pxd Instrument):
# prices at price_scale, quantities as BASE quantity at qty_scale (futures contracts × multiplier,
# converted exactly by the parser). A symbol the venue map does not list is FRAME_IGNORED (we did
# not subscribe to it), never mapped to a wrong id.
#
# Instruments listed at run time: set_symbols(newer map of the same venue) swaps the parser's map
# between frames; frames of the instruments new in it parse from the next frame on. The parsers
# look instruments up per frame (no Instrument pointer outlives a feed call), and a feed call
# holds a reference to the map it started with, so a swap from inside a sink callback cannot free
# the instruments the rest of that frame reads.
#
# Lifetime: every pointer handed to a sink (DepthUpdate.bids/asks, the frame bytes) is valid only
# during that call. A sink that keeps data copies it (BookSync does).
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t
from cexnode._core.book cimport DepthUpdate, Level
from cexnode._core.symbols cimport SymbolMap


cdef enum FrameResult:
    FRAME_DEPTH = 0         # one or more DepthUpdate delivered (snapshot-or-diff per venue rule)
    FRAME_BBO = 1
    FRAME_TRADE = 2
    FRAME_MESSAGE = 3       # a Python object delivered through on_message (control / private)
    FRAME_IGNORED = 4       # valid frame we do not use (unlisted symbol, unknown channel, kline ...)
    FRAME_ERROR = 5         # malformed: counted, reason in last_error, on_parse_error called


cdef enum MessageKind:
    MSG_ACK = 0             # subscribe / unsubscribe / login ack (dict)
    MSG_PONG = 1
    MSG_ERROR = 2           # venue-reported error or rejection (also one a venue reports with code 0)
    MSG_ORDER = 3           # private order update (normalized dict)
    MSG_FILL = 4            # private deal / user trade
    MSG_BALANCE = 5         # private balance / account update
    MSG_API_RESPONSE = 6    # response of a venue's WebSocket order API (order place / cancel ...)
    MSG_OTHER = 7


cdef struct Bbo:
    int32_t symbol_id
    int64_t bid_px
    int64_t bid_qty         # 0 with bid_px 0 = empty side
    int64_t ask_px
    int64_t ask_qty
    int64_t seq             # venue update id of the push; 0 when none
    int64_t exch_ts_ms
    int64_t recv_ns


cdef struct Trade:
    int32_t symbol_id
    int64_t px
    int64_t qty             # base quantity at qty_scale, > 0
    int side                # +1 taker buy, -1 taker sell
    int64_t trade_id        # 0 when the venue sends none
    int64_t exch_ts_ms
    int64_t recv_ns


cdef class FeedSink:
    # Base class: every method is a no-op returning 0. Subclass in Cython (engine router) or use
    # the Python-visible hooks below for tests. Return -1 with an exception set to stop the caller
    # (the listener logs it and carries on with the next frame).
    cdef int on_depth(self, int venue, const DepthUpdate* u) except -1
    cdef int on_bbo(self, int venue, const Bbo* b) except -1
    cdef int on_trade(self, int venue, const Trade* t) except -1
    cdef int on_message(self, int venue, int kind, object msg) except -1
    cdef int on_parse_error(self, int venue, str reason, const char* buf, Py_ssize_t n) except -1


cdef class FeedParser:
    cdef:
        readonly int venue              # venue id of the SymbolMap (-1 in raw mode: no map)
        readonly SymbolMap symbols      # may be None: raw mode (decode without instrument info)
        public FeedSink sink
        readonly uint64_t frames        # every frame handed to feed()
        readonly uint64_t bytes_in
        readonly uint64_t errors        # FRAME_ERROR results
        readonly uint64_t ignored
        readonly uint64_t depth_updates
        readonly str last_error         # reason of the last FRAME_ERROR (None before any)

    # Parse one WebSocket frame (binary=False for text). Returns a FrameResult, or -1 only when the
    # sink raised. Never reads outside buf[0:n]; never keeps buf.
    cdef int feed(self, const char* buf, Py_ssize_t n, bint binary, int64_t recv_ns) except -1
    # Python entry (tests, replay): same as feed on a bytes object.
    cpdef int feed_bytes(self, bytes frame, bint binary=*, int64_t recv_ns=*) except -1
    cdef int _error(self, str reason, const char* buf, Py_ssize_t n) except -1   # count + notify; FRAME_ERROR
    # Swap in a newer map of the same venue (SymbolMap.extends(current)); ValueError otherwise, and
    # in raw mode (no map). Overridden by parsers that derive something from the map.
    cpdef set_symbols(self, SymbolMap symbol_map)

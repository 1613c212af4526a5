"""Typed market-data events and the parser/sink base classes (contract in feed.pxd)."""
from cexnode._core.book cimport DepthUpdate
from cexnode._core.symbols cimport SymbolMap

# The enums of feed.pxd, visible to Python (tests, decode, replay).
globals().update(
    FRAME_DEPTH=<int>FRAME_DEPTH, FRAME_BBO=<int>FRAME_BBO, FRAME_TRADE=<int>FRAME_TRADE,
    FRAME_MESSAGE=<int>FRAME_MESSAGE, FRAME_IGNORED=<int>FRAME_IGNORED, FRAME_ERROR=<int>FRAME_ERROR,
    MSG_ACK=<int>MSG_ACK, MSG_PONG=<int>MSG_PONG, MSG_ERROR=<int>MSG_ERROR, MSG_ORDER=<int>MSG_ORDER,
    MSG_FILL=<int>MSG_FILL, MSG_BALANCE=<int>MSG_BALANCE, MSG_API_RESPONSE=<int>MSG_API_RESPONSE,
    MSG_OTHER=<int>MSG_OTHER,
)


cdef class FeedSink:
    """Receiver of a parser's events; every hook is a no-op here (see feed.pxd)."""

    cdef int on_depth(self, int venue, const DepthUpdate* u) except -1:
        return 0

    cdef int on_bbo(self, int venue, const Bbo* b) except -1:
        return 0

    cdef int on_trade(self, int venue, const Trade* t) except -1:
        return 0

    cdef int on_message(self, int venue, int kind, object msg) except -1:
        return 0

    cdef int on_parse_error(self, int venue, str reason, const char* buf, Py_ssize_t n) except -1:
        return 0


cdef class FeedParser:
    """Base of the per-venue parsers in cexnode._core.parsers; feed() is overridden there."""

    def __init__(self, int venue, SymbolMap symbols=None, FeedSink sink=None):
        self.venue = venue
        self.symbols = symbols
        self.sink = sink if sink is not None else FeedSink()
        self.last_error = None

    cdef int feed(self, const char* buf, Py_ssize_t n, bint binary, int64_t recv_ns) except -1:
        self.frames += 1
        self.bytes_in += <uint64_t>n
        return self._error("no parser for this venue", buf, n)

    cpdef int feed_bytes(self, bytes frame, bint binary=False, int64_t recv_ns=0) except -1:
        return self.feed(<const char*>frame, len(frame), binary, recv_ns)

    cpdef set_symbols(self, SymbolMap symbol_map):
        """Use ``symbol_map``, a newer map of this parser's venue (one that lists every instrument
        of the current map unchanged, as ``SymbolRegistry.extend`` hands out), from the next frame
        on. ValueError for another venue's map, one that drops or changes an instrument, or a
        raw-mode parser (no map)."""
        if symbol_map is None:
            raise ValueError("set_symbols needs a SymbolMap, not None")
        if self.symbols is None:
            raise ValueError("a raw-mode parser (no SymbolMap) cannot take one later")
        if symbol_map.venue != self.venue or symbol_map.venue_label != self.symbols.venue_label:
            raise ValueError("the map is of %s (id %d), the parser of %s (id %d)"
                             % (symbol_map.venue_label, symbol_map.venue, self.symbols.venue_label, self.venue))
        if not symbol_map.extends(self.symbols):
            raise ValueError("the new %s map does not list every instrument of the current one unchanged"
                             % symbol_map.venue_label)
        self.symbols = symbol_map

    cdef int _error(self, str reason, const char* buf, Py_ssize_t n) except -1:
        self.errors += 1
        self.last_error = reason
        if self.sink.on_parse_error(self.venue, reason, buf, n) < 0:
            return -1
        return FRAME_ERROR

"""A capture tap in front of a venue parser (contract in tap.pxd)."""
cimport cython
from libc.stdint cimport int64_t, uint64_t
from cexnode._core.feed cimport FeedParser
from cexnode._core.symbols cimport SymbolMap


cdef class FrameTap(FeedParser):
    """Copies each frame to ``capture_sink`` with its receive time, then feeds ``inner`` (tap.pxd)."""

    def __init__(self, FeedParser inner, object capture_sink, str venue_name):
        if inner is None:
            raise TypeError("FrameTap needs the venue's parser")
        FeedParser.__init__(self, inner.venue, inner.symbols, inner.sink)
        self.inner = inner
        self.capture_sink = capture_sink
        self.venue_name = venue_name
        self.last_sink_error = None

    cpdef set_symbols(self, SymbolMap symbol_map):
        """The inner parser's map is the one that counts: swapped there, then mirrored here."""
        self.inner.set_symbols(symbol_map)
        FeedParser.set_symbols(self, symbol_map)

    cdef int feed(self, const char* buf, Py_ssize_t n, bint binary, int64_t recv_ns) except -1:
        self.frames += 1
        self.bytes_in += <uint64_t>n
        try:
            self.capture_sink.ws(self.venue_name, buf[:n], binary, recv_ns)
        except Exception as e:        # recording must not stop the market data
            self.sink_errors += 1
            self.last_sink_error = repr(e)[:200]
        return self.inner.feed(buf, n, binary, recv_ns)

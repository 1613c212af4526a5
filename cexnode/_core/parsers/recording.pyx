"""FeedSinks visible from Python: event recording and BookSync application (see recording.pxd)."""
cimport cython
from cexnode._core.book cimport DepthUpdate, BookSync
from cexnode._core.feed cimport FeedSink, Bbo, Trade


@cython.final
cdef class RecordingSink(FeedSink):
    """Records every delivered event as a Python tuple in :attr:`events` (see recording.pxd)."""

    def __init__(self):
        self.events = []

    cdef int on_depth(self, int venue, const DepthUpdate* u) except -1:
        cdef int i
        self.events.append(("depth", venue, u.symbol_id, u.first_id, u.last_id, u.exch_ts_ms, u.recv_ns,
                            bool(u.full), [(u.bids[i].px, u.bids[i].qty) for i in range(u.n_bids)],
                            [(u.asks[i].px, u.asks[i].qty) for i in range(u.n_asks)]))
        return 0

    cdef int on_bbo(self, int venue, const Bbo* b) except -1:
        self.events.append(("bbo", venue, b.symbol_id, b.bid_px, b.bid_qty, b.ask_px, b.ask_qty, b.seq,
                            b.exch_ts_ms, b.recv_ns))
        return 0

    cdef int on_trade(self, int venue, const Trade* t) except -1:
        self.events.append(("trade", venue, t.symbol_id, t.px, t.qty, t.side, t.trade_id, t.exch_ts_ms,
                            t.recv_ns))
        return 0

    cdef int on_message(self, int venue, int kind, object msg) except -1:
        self.events.append(("message", venue, kind, msg))
        return 0

    cdef int on_parse_error(self, int venue, str reason, const char* buf, Py_ssize_t n) except -1:
        self.events.append(("error", venue, reason))
        return 0


@cython.final
cdef class BookSyncSink(FeedSink):
    """Applies depth updates to ``syncs[symbol_id]`` (BookSync); see recording.pxd."""

    def __init__(self, dict syncs, bint record=False):
        self.syncs = syncs
        self.results = None
        self.events = []
        self.record = record
        self._last_sync = None
        self._last_id = -1

    cdef int on_depth(self, int venue, const DepthUpdate* u) except -1:
        cdef BookSync s
        cdef int r
        if u.symbol_id == self._last_id and self._last_sync is not None:
            s = <BookSync>self._last_sync
        else:
            s = <BookSync>self.syncs.get(u.symbol_id)
            if s is None:
                return 0
            self._last_sync = s
            self._last_id = u.symbol_id
        r = s.on_update(u)
        if self.results is not None:
            self.results.append(r)
        return 0

    cdef int on_bbo(self, int venue, const Bbo* b) except -1:
        if self.record:
            self.events.append(("bbo", venue, b.symbol_id, b.bid_px, b.bid_qty, b.ask_px, b.ask_qty, b.seq,
                                b.exch_ts_ms, b.recv_ns))
        return 0

    cdef int on_trade(self, int venue, const Trade* t) except -1:
        if self.record:
            self.events.append(("trade", venue, t.symbol_id, t.px, t.qty, t.side, t.trade_id, t.exch_ts_ms,
                                t.recv_ns))
        return 0

    cdef int on_message(self, int venue, int kind, object msg) except -1:
        if self.record:
            self.events.append(("message", venue, kind, msg))
        return 0

    cdef int on_parse_error(self, int venue, str reason, const char* buf, Py_ssize_t n) except -1:
        if self.record:
            self.events.append(("error", venue, reason))
        return 0

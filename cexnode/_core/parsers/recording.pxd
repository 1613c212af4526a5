# cexnode._core.parsers.recording — FeedSinks that Python code can inspect (tests, decode, benchmarks).
#
# FeedSink's hooks are cdef (no Python subclassing); these sinks turn every delivered event into a
# Python tuple, or apply depth updates to BookSync objects, so tests can check exactly what reached
# a sink (and that a malformed frame reached nothing).
cimport cython
from cexnode._core.feed cimport FeedSink


@cython.final
cdef class RecordingSink(FeedSink):
    # events: ("depth", venue, symbol_id, first, last, exch_ts_ms, recv_ns, full, bids, asks)
    #         ("bbo", venue, symbol_id, bid_px, bid_qty, ask_px, ask_qty, seq, exch_ts_ms, recv_ns)
    #         ("trade", venue, symbol_id, px, qty, side, trade_id, exch_ts_ms, recv_ns)
    #         ("message", venue, kind, msg)    ("error", venue, reason)
    cdef public list events


@cython.final
cdef class BookSyncSink(FeedSink):
    # Depth updates go to syncs[symbol_id].on_update (full updates too: a push its venue marks
    # full replaces the book through BookSync's stream rule); results[] records each ApplyResult when
    # a list is set. Every other event is recorded like RecordingSink when `record` is true.
    cdef public dict syncs
    cdef public object results
    cdef public list events
    cdef public bint record
    cdef object _last_sync        # BookSync of _last_id (one dict lookup saved per update of a symbol)
    cdef int _last_id

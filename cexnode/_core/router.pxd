# cexnode._core.router — the parsers' sink: BookSync → Book → ArbEngine. THE CONTRACT; review first.
#
# One BookRouter per node (and per replay). Every venue parser has it as its FeedSink; it holds one
# BookSync + Book per (venue, symbol id), registered up front with add_book() (the sync rule is the
# venue channel's: SYNC_SNAPSHOT_DIFF for a diff stream synced from REST snapshots,
# SYNC_STREAM_FULL for a stream whose first push is the full book), and one ArbEngine (set_arb()).
# Venue ids are the descriptors' (0..symbols.MAX_VENUES-1): add_book refuses any other, and the
# per-venue counters below are C arrays of MAX_VENUES.
#
# Hot path (on_depth, no Python object unless an opportunity exists):
#   key = venue * _n_sym + symbol_id → BookSync (unknown key: counted in `unrouted`, dropped)
#   → BookSync.on_update(u) → when it returned APPLY_OK, the book is in sync and its version moved:
#   ArbEngine.on_book_update(book, now) → when it returned a list: on_opportunities(list) is called
#   right there (never on a timer). Every evaluation records tick-to-decision = clock − u.recv_ns
#   (live clock only) in the histogram and `last_tick_to_decision_ns`.
#   A snapshot or a buffered replay that brings a book (back) into sync is evaluated the same way.
#
# Books leave at run time (a delisting): remove_book(venue, symbol_id) drops the BookSync + Book
# (the router's references; an audit of it ends), so books() no longer lists it and it is freed
# once nobody else holds it. Routes reading the book must be removed from the ArbEngine first
# (ArbEngine.remove_route): remove_book refuses, with RuntimeError, a book the engine still
# routes. Later frames for it (in flight, or until the venue confirms the unsubscription) are
# counted per venue in counters(venue)["removed_book_msgs"] and dropped, not in `unrouted`; a
# REST snapshot for it is a KeyError like any unknown book. add_book of the same key later
# creates a fresh book (a relisting), unsynced, with a new version history.
#
# `now` for freshness and Opportunity.t: CLOCK_REALTIME ns, unless the clock is fixed with
# set_now(ns) (replay: the frame's capture time), which also stops the latency recording.
#
# Python callbacks (attributes, None = not called; an exception propagates to the caller, i.e. the
# listener, which logs it and carries on):
#   on_opportunities(list[Opportunity])
#   on_resync(venue:int, symbol_id:int, reason:int)   book left sync; the adapter fetches a snapshot and
#                                                      calls snapshot(); per-venue handlers set with
#                                                      set_resync_handler(venue, fn(symbol_id, reason))
#                                                      are called instead of on_resync for that venue
#   message_handler(venue:int, kind:int, msg)         acks, pongs, errors, private updates (feed.MessageKind);
#                                                      per-venue: set_message_handler(venue, fn(kind, msg))
#   parse_error_handler(venue:int, reason:str)        after the per-venue error counter was bumped
#
# Book audits (cexnode.book_audit; live node only): audit_begin(venue, symbol_id) registers a shadow
# BookSync (SYNC_SNAPSHOT_DIFF, no resync callback) for one book of that venue, at most one per venue.
# Until audit_end(venue), on_depth feeds every depth update of that (venue, symbol) to the shadow
# too, BEFORE the live book (the shadow never calls back, so nothing the live book's callbacks do can
# make it miss a diff). The hot-path cost is one C flag test per update; nothing is allocated.
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t
from cexnode._core.arb cimport ArbEngine
from cexnode._core.book cimport Book, BookSync, DepthUpdate, Level
from cexnode._core.feed cimport Bbo, FeedSink, Trade
from cexnode._core.logring cimport HotHistogram
from cexnode._core.symbols cimport MAX_VENUES


cdef enum:
    LAT_RING = 4096            # recent tick-to-decision samples kept for quantiles (power of two)


@cython.final
cdef class BookRouter(FeedSink):
    cdef:
        list _syncs                     # BookSync or None by key = venue * _n_sym + symbol_id
        int _n_sym                      # symbol id capacity per venue (grows in add_book)
        unsigned char* _removed         # by key like _syncs: 1 = removed by remove_book, not re-added
        readonly int n_books            # books registered now
        readonly ArbEngine arb          # may be None: books only
        # clock
        bint _fixed_clock
        int64_t _now_fixed
        # counters (C fields, read by metrics)
        uint64_t _frames_depth[MAX_VENUES]        # depth updates per venue
        uint64_t _bbo[MAX_VENUES]
        uint64_t _trades[MAX_VENUES]
        uint64_t _messages[MAX_VENUES]
        uint64_t _parse_errors[MAX_VENUES]
        uint64_t _resyncs[MAX_VENUES]
        uint64_t _removed_msgs[MAX_VENUES]        # depth updates for a removed book (dropped)
        readonly uint64_t depth_updates
        readonly uint64_t unrouted              # depth updates for a (venue, symbol) with no book
        readonly uint64_t evaluations           # ArbEngine.on_book_update calls
        readonly uint64_t opportunities         # Opportunity objects emitted
        readonly uint64_t resyncs
        readonly int64_t last_tick_to_decision_ns
        readonly HotHistogram tick_to_decision_hist   # in ns
        HotHistogram _us_hist                   # optional extra histogram observed in μs (Prometheus series)
        int64_t _lat[LAT_RING]                  # ring of recent tick-to-decision ns
        uint64_t _lat_n
        # Python callbacks (see above)
        public object on_opportunities
        public object on_resync
        public object message_handler
        public object parse_error_handler
        dict _resync_handlers                   # venue -> fn(symbol_id, reason)
        dict _message_handlers                  # venue -> fn(kind, msg)
        # book audits (see above): shadow BookSync per venue while _audit_on[venue]
        bint _audit_on[MAX_VENUES]
        int32_t _audit_sid[MAX_VENUES]
        list _audits

    cdef inline int64_t now(self) noexcept
    cdef BookSync _sync(self, int venue, int32_t symbol_id)         # borrowed lookup, None when absent
    # After a BookSync call that may have changed the book: evaluate and dispatch (see above).
    cdef int _after_apply(self, BookSync s, int r, int64_t recv_ns) except -1
    cdef int _evaluate(self, Book book, int64_t recv_ns) except -1
    # FeedSink's on_depth/on_bbo/on_trade/on_message/on_parse_error are overridden in router.pyx
    # (not redeclared here: Cython forbids redeclaring them on a final subclass).
    # C-level snapshot entry (adapters in Cython): ApplyResult, or -1 with an exception set.
    cdef int snapshot_c(self, int venue, const DepthUpdate* snap) except -1

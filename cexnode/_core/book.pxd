# cexnode._core.book — L2 order book and venue sequence sync. THE CONTRACT; review this first.
#
# Numbers: every price and quantity is an int64 mantissa at the *symbol's* scale (see symbols.pxd):
# all books of one unified symbol share price_scale and qty_scale, so the arbitrage code compares
# books of different venues without conversion. Futures books hold BASE quantity
# (contracts × quanto_multiplier, converted exactly by the parser), never contracts.
#
# Lifetime: DepthUpdate.bids/asks point into parser-owned scratch memory that is valid only during
# the call that receives it (picows zero-copy style). BookSync copies what it must keep.
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t


cdef struct Level:
    int64_t px
    int64_t qty            # > 0 in a book; in a DepthUpdate 0 deletes the level


cdef struct DepthUpdate:
    int32_t symbol_id
    int64_t first_id       # the push's first update id; for a snapshot: its id (first == last)
    int64_t last_id        # the push's last update id (each parser's .pxd maps its venue's fields)
    int64_t exch_ts_ms     # exchange event time, ms (0 when the venue sends none)
    int64_t recv_ns        # local receive time, CLOCK_REALTIME ns
    bint full              # replaces the whole book (REST snapshot, a push marked full by its venue)
    int32_t n_bids
    int32_t n_asks
    const Level* bids
    const Level* asks


# A buffered pre-snapshot diff (BookSync implementation detail): levels copied into BookSync._buf_lv.
cdef struct _BufDiff:
    int64_t first_id
    int64_t last_id
    int64_t exch_ts_ms
    int64_t recv_ns
    bint full
    int32_t n_bids
    int32_t n_asks
    Py_ssize_t lv_off            # bids at _buf_lv[lv_off:], asks right after them


cdef enum SyncRule:
    # a diff stream synced from a REST snapshot (the venue parsers' .pxd say which channels):
    # REST snapshot id S; drop last <= S; first applied needs first <= S+1 <= last;
    # then first == prev_last + 1. Diffs before the snapshot are buffered (bounded) and replayed.
    SYNC_SNAPSHOT_DIFF = 0
    # a stream whose first push is the full book: no REST snapshot; then first == prev_last+1;
    # a gap means unsubscribe + resubscribe (the resync request says so).
    SYNC_STREAM_FULL = 1


cdef enum ApplyResult:
    APPLY_OK = 0           # applied; book changed (version bumped)
    APPLY_STALE = 1        # dropped: last_id <= current id (duplicate or old)
    APPLY_BUFFERED = 2     # kept for replay after the snapshot arrives
    APPLY_RESYNC = 3       # gap / crossed / buffer overflow: book out of sync, one resync request raised
    APPLY_IGNORED = 4      # book is resyncing and waiting (buffer full already reported)


cdef enum ResyncReason:
    RESYNC_NONE = 0
    RESYNC_GAP = 1
    RESYNC_CROSSED = 2
    RESYNC_BUFFER_OVERFLOW = 3
    RESYNC_SNAPSHOT_STALE = 4      # snapshot older than every buffered diff / cannot bridge
    RESYNC_REQUESTED = 5           # reconnect, manual
    RESYNC_LEVEL_CAP = 6           # a side would exceed Book.max_levels: the book cannot stay exact


cdef enum:
    # Default memory cap per side (16 bytes a level). Above the deepest snapshot any venue serves
    # (5,000 levels), so a fresh snapshot always fits.
    DEFAULT_MAX_LEVELS = 20000


@cython.final
cdef class Book:
    cdef:
        readonly int32_t symbol_id
        readonly int venue               # venue id (0..symbols.MAX_VENUES-1)
        readonly int depth               # levels a side that readers use (arb walk, metrics, dumps)
        readonly int max_levels          # memory cap per side; every level up to it is kept
        readonly bint overflowed         # an insert hit max_levels since the last clear/full replace
        readonly int64_t last_id         # sequence id of the last applied update
        readonly int64_t exch_ts_ms      # exchange time of the last applied update
        readonly int64_t recv_ns         # local receive time of the last applied update
        readonly uint64_t version        # +1 on every applied change; arb dedup key
        readonly bint in_sync            # False until synced, and while resyncing: never traded on
        Level* _bids                     # implementation-owned storage (see book.pyx): first valid
        Level* _asks                     #   level of each side; stored WORST first, touch LAST
        int _n_bids
        int _n_asks
        Level* _bids_mem                 # allocations the segments above live in
        Level* _asks_mem
        int _bids_cap                    # their capacities in levels (grow by doubling, see book.pyx)
        int _asks_cap
        int _cap0                        # initial capacity (2 * depth + 16), restored by clear()
        object __weakref__               # books leave at run time (a delisting): tests and owners
                                         # can check that nothing keeps a removed book alive

    # O(1) access; i = 0 is the touch. Caller guarantees 0 <= i < n (checked in debug builds).
    cdef inline int n_bids(self) noexcept:
        return self._n_bids
    cdef inline int n_asks(self) noexcept:
        return self._n_asks
    cdef Level bid(self, int i) noexcept
    cdef Level ask(self, int i) noexcept
    cdef bint is_crossed(self) noexcept           # best bid >= best ask (both sides present)

    cdef int set_level(self, bint is_bid, int64_t px, int64_t qty) except -1   # qty 0 deletes
    cdef int apply_levels(self, const DepthUpdate* u) except -1                # all levels of u, no seq checks
    cdef void clear(self) noexcept
    cdef int _replace_side(self, bint is_bid, const Level* lv, int32_t m) except -1
    cdef int _reserve(self, bint is_bid, int need) except -1   # capacity for `need` levels (grows)
    # (additions) set_level returns 1 when the book changed, 0 for a no-op (same qty, delete of an
    # absent level, insert into a side at max_levels: sets overflowed). apply_levels returns the
    # number of levels changed;
    # it sets last_id/exch_ts_ms/recv_ns from u (also when nothing changed) and bumps version once
    # when anything changed or u.full. clear() empties both sides and bumps version.


@cython.final
cdef class BookSync:
    cdef:
        readonly Book book
        readonly SyncRule rule
        readonly int buffer_limit           # max diffs held before the snapshot; overflow -> resync
        readonly ResyncReason resync_reason
        readonly uint64_t resyncs           # counted once per entry into resync
        readonly uint64_t applied
        readonly uint64_t stale_dropped
        object _on_resync                   # callable(book_sync, reason:int) or None; called once per resync
        # buffered pre-snapshot diffs: implementation-owned (see book.pyx)
        readonly uint64_t ignored           # diffs ignored while waiting for a full push (obu)
        readonly uint64_t buffer_dropped    # oldest buffered diffs dropped on overflow
        readonly uint64_t level_cap_resyncs # resyncs because a side hit Book.max_levels
        readonly int buffer_level_limit     # max levels held in the buffer (overflow beyond)
        bint _synced                        # book holds a valid snapshot (+ diffs)
        bint _bridged                       # a diff was applied on top of the snapshot (strict rule)
        bint _reported                      # this resync episode was reported (callback called)
        _BufDiff* _buf                      # FIFO of buffered diff headers (capacity buffer_limit)
        int _buf_n
        Level* _buf_lv                      # their levels, contiguous, in FIFO order
        Py_ssize_t _buf_lv_n
        Py_ssize_t _buf_lv_cap

    # Both return an ApplyResult value, or -1 with a Python exception set (only from _on_resync).
    cdef int on_update(self, const DepthUpdate* u) except -1
    cdef int on_snapshot(self, const DepthUpdate* snap) except -1
    cpdef request_resync(self, int reason=*)   # force out of sync (e.g. after reconnect)
    # (additions)
    cdef int _enter_resync(self, int reason) except -1
    cdef int _apply_checked(self, const DepthUpdate* u) except -1
    cdef int _apply_full(self, const DepthUpdate* u, bint from_stream) except -1
    cdef int _buffer(self, const DepthUpdate* u) except -1
    cdef int _replay_buffer(self) except -1
    cdef void _buf_clear(self) noexcept
    cdef void _buf_pop_front(self, int k) noexcept
    cdef void _leave_sync(self, int reason) noexcept
    cdef int _report(self) except -1
    cdef int _resync_keeping(self, const DepthUpdate* u, int reason) except -1

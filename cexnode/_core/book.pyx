"""L2 order book and venue sequence sync (see book.pxd, the contract).

Book storage
------------
Each side is a contiguous, sorted segment of ``Level`` inside an allocation, stored WORST first and
the touch LAST, so that the frequent changes near the touch move few bytes; a change in the lower
half moves the worst side instead (the segment may slide inside its allocation and is re-centred
when it reaches an edge, amortised O(1)). ``bid(i)``/``ask(i)`` are O(1) with ``i = 0`` the touch;
a depth walk reads the array in place.

Every level, and a memory cap (documented choice)
-------------------------------------------------
A side holds every level the venue has told it about: a diff stream covers the whole book and
never re-sends an unchanged level, so a level forgotten once would be a hole for good when the
market moves through it (aggregated diff streams, full pushes deeper than ``depth``). The
allocation starts at ``2 * depth + 16`` levels a side and doubles when full; ``clear()`` (a resync)
gives a grown allocation back. ``depth`` is only what readers use: the arbitrage walk, metrics
and dumps read at most ``depth`` levels a side.

``max_levels`` caps a side (memory bound: 16 bytes a level). An insert into a full side is not
made and sets ``overflowed``; BookSync then resyncs the book (``RESYNC_LEVEL_CAP``, counted), since
the book can no longer be shown exact. A full replace deeper than the cap keeps the best
``max_levels`` and sets ``overflowed`` the same way. Deleting a price that is not in the book is a
no-op.

Sync (BookSync)
---------------
``SYNC_SNAPSHOT_DIFF`` (a diff stream synced from REST snapshots; the parsers' ``.pxd`` name the channels):
until a snapshot arrives, diffs are copied into a bounded FIFO buffer. ``on_snapshot(S)`` replaces
the book, then replays the buffer with the live rule: drop ``last <= id``; the first diff applied
needs ``first <= id+1 <= last``; every later one ``first == id+1``. A diff with ``full`` (a push
the venue marks full) replaces the book and sets ``id = last`` (and counts as bridged). Futures: an
update with no levels still advances the id (and the timestamps), but not ``version``.
``SYNC_STREAM_FULL`` (a stream whose first push is the full book): no snapshot; diffs before the first
full push are ignored; after it ``first == id+1`` strictly.

Out of sync: a gap, a crossed book after an update or snapshot, a snapshot that cannot bridge
the buffer (``RESYNC_SNAPSHOT_STALE``), or a buffer overflow while waiting. The book is cleared
and marked not in sync (never traded), and the ``on_resync(sync, reason)`` callback is called
exactly once per entry into resync (``resyncs`` counts them). While waiting, diffs are buffered
again (the diff that revealed the gap too), so the next snapshot can bridge. On overflow the
OLDEST buffered diffs are dropped (a snapshot requested now is newer than them; the newest diffs
are the ones it needs); the overflow is reported once per episode. A snapshot always ends the
episode: if it cannot be used, that is a new entry and a new request.
"""
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memmove, memcpy
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from cexnode._core.symbols cimport MAX_VENUES
from time import perf_counter_ns as _perf_counter_ns

cdef extern from "cexnode_debug.h":
    void CEXNODE_ASSERT(bint) nogil

globals().update(
    SYNC_SNAPSHOT_DIFF=<int>SYNC_SNAPSHOT_DIFF, SYNC_STREAM_FULL=<int>SYNC_STREAM_FULL,
    APPLY_OK=<int>APPLY_OK, APPLY_STALE=<int>APPLY_STALE, APPLY_BUFFERED=<int>APPLY_BUFFERED,
    APPLY_RESYNC=<int>APPLY_RESYNC, APPLY_IGNORED=<int>APPLY_IGNORED,
    RESYNC_NONE=<int>RESYNC_NONE, RESYNC_GAP=<int>RESYNC_GAP, RESYNC_CROSSED=<int>RESYNC_CROSSED,
    RESYNC_BUFFER_OVERFLOW=<int>RESYNC_BUFFER_OVERFLOW, RESYNC_SNAPSHOT_STALE=<int>RESYNC_SNAPSHOT_STALE,
    RESYNC_REQUESTED=<int>RESYNC_REQUESTED, RESYNC_LEVEL_CAP=<int>RESYNC_LEVEL_CAP,
    DEFAULT_MAX_LEVELS=<int>DEFAULT_MAX_LEVELS,
)
APPLY_NAMES = {0: "ok", 1: "stale", 2: "buffered", 3: "resync", 4: "ignored"}
RESYNC_NAMES = {0: "none", 1: "gap", 2: "crossed", 3: "buffer_overflow", 4: "snapshot_stale", 5: "requested",
                6: "level_cap"}

cdef int _MAX_DEPTH = 1 << 20
cdef int _LINEAR = 8             # levels scanned linearly from the touch before binary search


# --------------------------------------------------------------------------------------------------
# side helpers: d[0..n) sorted worst -> best

cdef inline bint _worse(int64_t a, int64_t b, bint is_bid) noexcept nogil:
    """a is a strictly worse price than b on this side."""
    if is_bid:
        return a < b
    return a > b


cdef inline int _search(const Level* d, int n, int64_t px, bint is_bid) noexcept nogil:
    """Index of ``px`` in d, or where it would be inserted (first index not worse than px)."""
    cdef int i = n - 1
    cdef int stop = n - _LINEAR if n > _LINEAR else 0
    cdef int lo, hi, mid
    while i >= stop:
        if not _worse(px, d[i].px, is_bid):
            return i if d[i].px == px else i + 1
        i -= 1
    lo = 0
    hi = stop
    while lo < hi:
        mid = (lo + hi) >> 1
        if _worse(d[mid].px, px, is_bid):
            lo = mid + 1
        else:
            hi = mid
    return lo


@cython.final
@cython.freelist(8)
cdef class _PyUpdate:
    """A DepthUpdate built from Python lists, owning its level arrays."""
    cdef DepthUpdate u
    cdef Level* _lv

    def __cinit__(self, int32_t symbol_id, int64_t first_id, int64_t last_id, bids, asks, bint full,
                  int64_t exch_ts_ms, int64_t recv_ns):
        cdef Py_ssize_t nb = len(bids), na = len(asks), j = 0
        self._lv = <Level*>PyMem_Malloc(max(1, nb + na) * sizeof(Level))
        if self._lv == NULL:
            raise MemoryError()
        for px, qty in bids:
            self._lv[j].px = px
            self._lv[j].qty = qty
            j += 1
        for px, qty in asks:
            self._lv[j].px = px
            self._lv[j].qty = qty
            j += 1
        self.u.symbol_id = symbol_id
        self.u.first_id = first_id
        self.u.last_id = last_id
        self.u.exch_ts_ms = exch_ts_ms
        self.u.recv_ns = recv_ns
        self.u.full = full
        self.u.n_bids = <int32_t>nb
        self.u.n_asks = <int32_t>na
        self.u.bids = self._lv
        self.u.asks = self._lv + nb

    def __dealloc__(self):
        PyMem_Free(self._lv)


@cython.final
cdef class Book:
    """L2 book of one instrument on one venue; int64 mantissas at the symbol's scales.

    Python helpers (tests, parsers' tests, tools): :meth:`top`, :meth:`best_bid`,
    :meth:`best_ask`, :meth:`counts`, :meth:`py_set_level`, :meth:`py_apply`, :meth:`py_clear`,
    :meth:`mark_in_sync`.
    """

    def __cinit__(self, int32_t symbol_id=0, int venue=0, int depth=400, int max_levels=DEFAULT_MAX_LEVELS):
        self._bids_mem = NULL
        self._asks_mem = NULL
        if depth < 1 or depth > _MAX_DEPTH:
            raise ValueError("depth must be 1..%d, got %d" % (_MAX_DEPTH, depth))
        if max_levels < depth or max_levels > _MAX_DEPTH:
            raise ValueError("max_levels must be depth..%d, got %d" % (_MAX_DEPTH, max_levels))
        if venue < 0 or venue >= MAX_VENUES:
            raise ValueError("venue id %d is outside 0..%d (symbols.MAX_VENUES)" % (venue, MAX_VENUES - 1))
        self.symbol_id = symbol_id
        self.venue = venue
        self.depth = depth
        self.max_levels = max_levels
        self._cap0 = 2 * depth + 16
        self._bids_cap = self._cap0
        self._asks_cap = self._cap0
        self._bids_mem = <Level*>PyMem_Malloc(self._cap0 * sizeof(Level))
        self._asks_mem = <Level*>PyMem_Malloc(self._cap0 * sizeof(Level))
        if self._bids_mem == NULL or self._asks_mem == NULL:
            raise MemoryError()
        self._bids = self._bids_mem + self._cap0 // 2
        self._asks = self._asks_mem + self._cap0 // 2
        self.overflowed = False
        self._n_bids = 0
        self._n_asks = 0
        self.last_id = 0
        self.exch_ts_ms = 0
        self.recv_ns = 0
        self.version = 0
        self.in_sync = False

    def __dealloc__(self):
        PyMem_Free(self._bids_mem)
        PyMem_Free(self._asks_mem)

    # ---- C API --------------------------------------------------------------------------------
    cdef Level bid(self, int i) noexcept:
        CEXNODE_ASSERT(0 <= i < self._n_bids)
        return self._bids[self._n_bids - 1 - i]

    cdef Level ask(self, int i) noexcept:
        CEXNODE_ASSERT(0 <= i < self._n_asks)
        return self._asks[self._n_asks - 1 - i]

    cdef bint is_crossed(self) noexcept:
        if self._n_bids == 0 or self._n_asks == 0:
            return False
        return self._bids[self._n_bids - 1].px >= self._asks[self._n_asks - 1].px

    cdef int _reserve(self, bint is_bid, int need) except -1:
        # Make the side's allocation hold at least ``need + 2`` levels (room to re-centre the
        # segment with a free slot at each end), doubling; the segment is moved to the centre.
        cdef Level* mem = self._bids_mem if is_bid else self._asks_mem
        cdef Level* d = self._bids if is_bid else self._asks
        cdef int n = self._n_bids if is_bid else self._n_asks
        cdef int cap = self._bids_cap if is_bid else self._asks_cap
        cdef int new_cap = cap
        cdef Level* grown
        while new_cap < need + 2:
            new_cap *= 2
        if new_cap == cap:
            return 0
        grown = <Level*>PyMem_Malloc(new_cap * sizeof(Level))
        if grown == NULL:
            raise MemoryError()
        d = grown + (new_cap - n) // 2
        memcpy(d, self._bids if is_bid else self._asks, n * sizeof(Level))
        PyMem_Free(mem)
        if is_bid:
            self._bids_mem = grown
            self._bids = d
            self._bids_cap = new_cap
        else:
            self._asks_mem = grown
            self._asks = d
            self._asks_cap = new_cap
        return 0

    cdef int set_level(self, bint is_bid, int64_t px, int64_t qty) except -1:
        cdef Level* mem
        cdef Level* d
        cdef int n, i, start, cap
        if qty < 0:
            raise ValueError("negative quantity %d at price %d" % (qty, px))
        if is_bid:
            d = self._bids
            n = self._n_bids
        else:
            d = self._asks
            n = self._n_asks
        i = _search(d, n, px, is_bid)
        if i < n and d[i].px == px:
            if qty == d[i].qty:
                return 0
            if qty != 0:
                d[i].qty = qty
                return 1
            # delete: move the smaller part
            if i < n - 1 - i:
                memmove(d + 1, d, i * sizeof(Level))
                d += 1
            else:
                memmove(d + i, d + i + 1, (n - 1 - i) * sizeof(Level))
            n -= 1
        else:
            if qty == 0:
                return 0                      # delete of an absent level
            if n >= self.max_levels:
                self.overflowed = True        # cannot stay exact: the owner resyncs
                return 0
            if is_bid:
                if n + 2 > self._bids_cap:
                    self._reserve(True, n + 1)
                d = self._bids
                mem = self._bids_mem
                cap = self._bids_cap
            else:
                if n + 2 > self._asks_cap:
                    self._reserve(False, n + 1)
                d = self._asks
                mem = self._asks_mem
                cap = self._asks_cap
            start = <int>((<size_t>d - <size_t>mem) // sizeof(Level))   # offset; d >= mem (no checked ptr diff)
            if i >= n - i:                    # shift the touch side up
                if start + n >= cap:
                    start = (cap - n) // 2
                    memmove(mem + start, d, n * sizeof(Level))
                    d = mem + start
                memmove(d + i + 1, d + i, (n - i) * sizeof(Level))
                d[i].px = px
                d[i].qty = qty
            else:                             # shift the worst side down
                if start == 0:
                    start = (cap - n + 1) // 2
                    memmove(mem + start, d, n * sizeof(Level))
                    d = mem + start
                memmove(d - 1, d, i * sizeof(Level))
                d -= 1
                d[i].px = px
                d[i].qty = qty
            n += 1
        CEXNODE_ASSERT(n <= self.max_levels)
        if is_bid:
            self._bids = d
            self._n_bids = n
        else:
            self._asks = d
            self._n_asks = n
        return 1

    cdef int _replace_side(self, bint is_bid, const Level* lv, int32_t m) except -1:
        # Full replace of one (cleared) side. Fast path when the levels come touch-first, strictly
        # ordered (as venues send them): fill the segment directly. Otherwise insert one by one.
        cdef int32_t j, k = 0, keep = 0
        cdef Level* mem
        cdef Level* d
        cdef int64_t prev = 0
        cdef int n = 0
        for j in range(m):
            if lv[j].qty < 0:
                raise ValueError("negative quantity %d at price %d" % (lv[j].qty, lv[j].px))
            if j > 0 and not _worse(lv[j].px, prev, is_bid):
                break
            prev = lv[j].px
            k += 1
            if lv[j].qty > 0:
                keep += 1
        if k == m:
            if keep > self.max_levels:
                keep = self.max_levels
                self.overflowed = True
            self._reserve(is_bid, keep)
            mem = self._bids_mem if is_bid else self._asks_mem
            d = mem + ((self._bids_cap if is_bid else self._asks_cap) - keep) // 2
            for j in range(m):
                if n == keep:
                    break
                if lv[j].qty > 0:
                    d[keep - 1 - n] = lv[j]
                    n += 1
            if is_bid:
                self._bids = d
                self._n_bids = n
            else:
                self._asks = d
                self._n_asks = n
            return 0
        # Any other order: insert one by one with the cap lifted (a later entry may delete an
        # earlier one), then keep the best max_levels, as the fast path does.
        cdef int cap = self.max_levels
        self.max_levels = _MAX_DEPTH
        try:
            for j in range(m):
                self.set_level(is_bid, lv[j].px, lv[j].qty)
        finally:
            self.max_levels = cap
        if is_bid and self._n_bids > cap:
            self._bids += self._n_bids - cap          # worst first: drop from the front
            self._n_bids = cap
            self.overflowed = True
        elif not is_bid and self._n_asks > cap:
            self._asks += self._n_asks - cap
            self._n_asks = cap
            self.overflowed = True
        return 0

    cdef int apply_levels(self, const DepthUpdate* u) except -1:
        cdef int32_t j
        cdef int changed = 0
        if u.full:
            self._n_bids = 0
            self._n_asks = 0
            self.overflowed = False
            self._replace_side(True, u.bids, u.n_bids)
            self._replace_side(False, u.asks, u.n_asks)
            changed = self._n_bids + self._n_asks
            self.version += 1
        else:
            for j in range(u.n_bids):
                changed += self.set_level(True, u.bids[j].px, u.bids[j].qty)
            for j in range(u.n_asks):
                changed += self.set_level(False, u.asks[j].px, u.asks[j].qty)
            if changed:
                self.version += 1
        self.last_id = u.last_id
        self.exch_ts_ms = u.exch_ts_ms
        self.recv_ns = u.recv_ns
        return changed

    cdef void clear(self) noexcept:
        # A grown allocation is given back (a resync: the next snapshot sizes it again); when the
        # smaller one cannot be had, the grown one is kept.
        cdef Level* m
        if self._bids_cap > self._cap0:
            m = <Level*>PyMem_Malloc(self._cap0 * sizeof(Level))
            if m != NULL:
                PyMem_Free(self._bids_mem)
                self._bids_mem = m
                self._bids_cap = self._cap0
        if self._asks_cap > self._cap0:
            m = <Level*>PyMem_Malloc(self._cap0 * sizeof(Level))
            if m != NULL:
                PyMem_Free(self._asks_mem)
                self._asks_mem = m
                self._asks_cap = self._cap0
        self._bids = self._bids_mem + self._bids_cap // 2
        self._asks = self._asks_mem + self._asks_cap // 2
        self._n_bids = 0
        self._n_asks = 0
        self.overflowed = False
        self.version += 1

    # ---- Python helpers -----------------------------------------------------------------------
    def top(self, n=None):
        """``(bids, asks)``: lists of ``(px, qty)`` tuples, touch first, at most ``n`` per side."""
        cdef int nb = self._n_bids, na = self._n_asks, i
        if n is not None:
            nb = min(nb, max(0, n))
            na = min(na, max(0, n))
        return ([(self.bid(i).px, self.bid(i).qty) for i in range(nb)],
                [(self.ask(i).px, self.ask(i).qty) for i in range(na)])

    def best_bid(self):
        """``(px, qty)`` of the best bid, or None."""
        return (self.bid(0).px, self.bid(0).qty) if self._n_bids else None

    def best_ask(self):
        """``(px, qty)`` of the best ask, or None."""
        return (self.ask(0).px, self.ask(0).qty) if self._n_asks else None

    def counts(self):
        """``(n_bids, n_asks)``."""
        return self._n_bids, self._n_asks

    @property
    def crossed(self):
        return self.is_crossed()

    def py_set_level(self, bint is_bid, int64_t px, int64_t qty):
        """Set one level (qty 0 deletes); True when the book changed. No version/seq bookkeeping."""
        return self.set_level(is_bid, px, qty) == 1

    def py_apply(self, bids=(), asks=(), bint full=False, int64_t first_id=0, int64_t last_id=0,
                 int64_t exch_ts_ms=0, int64_t recv_ns=0):
        """Apply an update given as lists of ``(px, qty)`` (no sequence checks); levels changed."""
        cdef _PyUpdate pu = _PyUpdate(self.symbol_id, first_id, last_id, bids, asks, full, exch_ts_ms, recv_ns)
        return self.apply_levels(&pu.u)

    def py_clear(self):
        self.clear()

    def mark_in_sync(self, bint flag=True):
        """Set ``in_sync`` by hand (standalone books in tests/tools; BookSync manages it otherwise)."""
        self.in_sync = flag

    def bench_apply(self, list updates, Py_ssize_t repeats):
        """Benchmark helper: apply ``updates`` (list of ``(bids, asks)``) cyclically, ``repeats``
        times, in C. Returns elapsed ns of the C loop (conversion excluded) and checks nothing."""
        cdef list pus = [_PyUpdate(self.symbol_id, 0, 0, b, a, False, 0, 0) for b, a in updates]
        cdef Py_ssize_t m = len(pus), r, k
        cdef DepthUpdate* arr = <DepthUpdate*>PyMem_Malloc(max(1, m) * sizeof(DepthUpdate))
        cdef int64_t t0, t1
        if arr == NULL:
            raise MemoryError()
        try:
            for k in range(m):
                arr[k] = (<_PyUpdate>pus[k]).u
            t0 = _perf_counter_ns()
            for r in range(repeats):
                for k in range(m):
                    self.apply_levels(&arr[k])
            t1 = _perf_counter_ns()
        finally:
            PyMem_Free(arr)
        return t1 - t0

    def __repr__(self):
        return "Book(symbol_id=%d, venue=%d, bids=%d, asks=%d, last_id=%d, in_sync=%s)" % (
            self.symbol_id, self.venue, self._n_bids, self._n_asks, self.last_id, bool(self.in_sync))


# --------------------------------------------------------------------------------------------------

@cython.final
cdef class BookSync:
    """Applies a venue's depth stream to a :class:`Book` under the venue's sequence rule.

    Parameters
    ----------
    book : Book
    rule : int
        ``SYNC_SNAPSHOT_DIFF`` or ``SYNC_STREAM_FULL``.
    buffer_limit : int
        Max diffs buffered while waiting for a snapshot (>= 1).
    on_resync : callable(sync, reason) or None
        Called once per entry into resync; the adapter then fetches a snapshot (or, for obu,
        resubscribes). An exception it raises propagates out of the update call.
    buffer_level_limit : int
        Max levels held by the buffer in total.
    """

    def __cinit__(self, Book book not None, int rule=SYNC_SNAPSHOT_DIFF, int buffer_limit=1024,
                  on_resync=None, int buffer_level_limit=1 << 18):
        self._buf = NULL
        self._buf_lv = NULL
        if rule != SYNC_SNAPSHOT_DIFF and rule != SYNC_STREAM_FULL:
            raise ValueError("unknown sync rule %d" % rule)
        if buffer_limit < 1 or buffer_level_limit < 1:
            raise ValueError("buffer_limit and buffer_level_limit must be >= 1")
        if on_resync is not None and not callable(on_resync):
            raise TypeError("on_resync must be callable or None")
        self.book = book
        self.rule = <SyncRule>rule
        self.buffer_limit = buffer_limit
        self.buffer_level_limit = buffer_level_limit
        self._on_resync = on_resync
        self.resync_reason = RESYNC_NONE
        self._buf = <_BufDiff*>PyMem_Malloc(buffer_limit * sizeof(_BufDiff))
        if self._buf == NULL:
            raise MemoryError()
        self._buf_n = 0
        self._buf_lv_n = 0
        self._buf_lv_cap = 0
        self._synced = False
        self._bridged = False
        self._reported = False
        book.in_sync = False

    def __dealloc__(self):
        PyMem_Free(self._buf)
        PyMem_Free(self._buf_lv)

    # ---- core ---------------------------------------------------------------------------------
    cdef int on_update(self, const DepthUpdate* u) except -1:
        if u.full:
            return self._apply_full(u, True)
        if not self._synced:
            if self.rule == SYNC_STREAM_FULL:
                self.ignored += 1
                return APPLY_IGNORED
            return self._buffer(u)
        return self._apply_checked(u)

    cdef int on_snapshot(self, const DepthUpdate* snap) except -1:
        return self._apply_full(snap, False)

    cdef int _apply_checked(self, const DepthUpdate* u) except -1:
        # Live rule on a synced book (also used to replay the buffer after a snapshot).
        cdef Book book = self.book
        cdef int64_t nxt = book.last_id + 1
        if u.last_id < nxt:
            self.stale_dropped += 1
            return APPLY_STALE
        if u.first_id > nxt or u.first_id > u.last_id:
            return self._resync_keeping(u, RESYNC_GAP)
        book.apply_levels(u)
        self._bridged = True
        self.applied += 1
        if book.overflowed:
            return self._resync_keeping(u, RESYNC_LEVEL_CAP)
        if book.is_crossed():
            return self._resync_keeping(u, RESYNC_CROSSED)
        return APPLY_OK

    cdef int _resync_keeping(self, const DepthUpdate* u, int reason) except -1:
        # Out of sync because of ``u``: clear, then buffer ``u`` (the next snapshot may need it
        # to bridge; obu has no snapshot and waits for a full push instead), then report.
        self._buf_clear()
        self._leave_sync(reason)
        if self.rule == SYNC_SNAPSHOT_DIFF:
            if <Py_ssize_t>u.n_bids + u.n_asks <= self.buffer_level_limit:
                self._buffer(u)             # the buffer is empty: this cannot overflow
            else:
                self.buffer_dropped += 1    # too big to keep; the request still names `reason`
        return self._report()

    cdef int _apply_full(self, const DepthUpdate* u, bint from_stream) except -1:
        cdef Book book = self.book
        cdef int r
        cdef DepthUpdate f
        if self._synced and u.last_id <= book.last_id:
            self.stale_dropped += 1
            return APPLY_STALE
        if not from_stream:
            self._reported = False          # a snapshot answers the request: a failure is a new entry
        if from_stream:
            self._buf_clear()               # everything buffered predates this full push
        f = u[0]
        f.full = True                       # a snapshot replaces the book whatever its flag says
        book.apply_levels(&f)
        self.applied += 1
        if book.overflowed or book.is_crossed():
            # the buffer (if any) stays: the next snapshot may bridge it
            self._leave_sync(RESYNC_LEVEL_CAP if book.overflowed else RESYNC_CROSSED)
            return self._report()
        self._synced = True
        self._bridged = from_stream
        self._reported = False
        self.resync_reason = RESYNC_NONE
        book.in_sync = True
        if self._buf_n:
            r = self._replay_buffer()
            if r == APPLY_RESYNC:
                return APPLY_RESYNC
        return APPLY_OK

    cdef int _replay_buffer(self) except -1:
        # Replay buffered diffs on a fresh snapshot. The first diff that is not stale must bridge
        # (first <= id+1); if it does not, the snapshot is older than the buffer: keep the buffer
        # (from that diff on) for the next snapshot and request one.
        cdef Book book = self.book
        cdef _BufDiff* b
        cdef DepthUpdate u
        cdef int k = 0, r
        while k < self._buf_n:
            b = &self._buf[k]
            u.symbol_id = book.symbol_id
            u.first_id = b.first_id
            u.last_id = b.last_id
            u.exch_ts_ms = b.exch_ts_ms
            u.recv_ns = b.recv_ns
            u.full = b.full
            u.n_bids = b.n_bids
            u.n_asks = b.n_asks
            u.bids = self._buf_lv + b.lv_off
            u.asks = self._buf_lv + b.lv_off + b.n_bids
            if u.last_id <= book.last_id:
                self.stale_dropped += 1
                k += 1
                continue
            if u.first_id > book.last_id + 1:
                self._buf_pop_front(k)
                self._leave_sync(RESYNC_SNAPSHOT_STALE if not self._bridged else RESYNC_GAP)
                return self._report()
            book.apply_levels(&u)
            self._bridged = True
            self.applied += 1
            if book.overflowed or book.is_crossed():
                self._buf_pop_front(k)      # keep that diff: a newer snapshot may need it
                self._leave_sync(RESYNC_LEVEL_CAP if book.overflowed else RESYNC_CROSSED)
                return self._report()
            k += 1
        self._buf_clear()
        return APPLY_OK

    cdef void _leave_sync(self, int reason) noexcept:
        if reason == RESYNC_LEVEL_CAP:
            self.level_cap_resyncs += 1
        self.book.clear()
        self.book.in_sync = False
        self._synced = False
        self._bridged = False
        self.resync_reason = <ResyncReason>reason

    cdef int _report(self) except -1:
        if not self._reported:
            self._reported = True
            self.resyncs += 1
            if self._on_resync is not None:
                self._on_resync(self, <int>self.resync_reason)
        return APPLY_RESYNC

    cdef int _enter_resync(self, int reason) except -1:
        self._buf_clear()
        self._leave_sync(reason)
        return self._report()

    cdef int _buffer(self, const DepthUpdate* u) except -1:
        cdef _BufDiff* b
        cdef Py_ssize_t need = <Py_ssize_t>u.n_bids + u.n_asks, cap
        cdef Level* lv
        cdef bint overflow = False
        if self._buf_n:
            b = &self._buf[self._buf_n - 1]
            if u.last_id <= b.last_id:
                self.stale_dropped += 1     # duplicate / old diff while waiting
                return APPLY_STALE
            if u.first_id > b.last_id + 1:
                self._buf_clear()           # hole inside the buffer: only what follows is useful
        if need > self.buffer_level_limit:  # cannot hold even this diff
            self.buffer_dropped += self._buf_n + 1
            self._buf_clear()
            self.resync_reason = RESYNC_BUFFER_OVERFLOW
            if not self._reported:
                return self._report()
            return APPLY_IGNORED
        while self._buf_n and (self._buf_n >= self.buffer_limit
                               or self._buf_lv_n + need > self.buffer_level_limit):
            self._buf_pop_front(1)          # keep the newest: a snapshot requested now needs them
            self.buffer_dropped += 1
            overflow = True
        if self._buf_lv_n + need > self._buf_lv_cap:
            cap = max(<Py_ssize_t>64, self._buf_lv_cap * 2, self._buf_lv_n + need)
            if cap > self.buffer_level_limit:
                cap = self.buffer_level_limit
            lv = <Level*>PyMem_Realloc(self._buf_lv, cap * sizeof(Level))
            if lv == NULL:
                raise MemoryError()
            self._buf_lv = lv
            self._buf_lv_cap = cap
        b = &self._buf[self._buf_n]
        b.first_id = u.first_id
        b.last_id = u.last_id
        b.exch_ts_ms = u.exch_ts_ms
        b.recv_ns = u.recv_ns
        b.full = u.full
        b.n_bids = u.n_bids
        b.n_asks = u.n_asks
        b.lv_off = self._buf_lv_n
        if u.n_bids:
            memcpy(self._buf_lv + self._buf_lv_n, u.bids, u.n_bids * sizeof(Level))
        if u.n_asks:
            memcpy(self._buf_lv + self._buf_lv_n + u.n_bids, u.asks, u.n_asks * sizeof(Level))
        self._buf_lv_n += need
        self._buf_n += 1
        if overflow:
            self.resync_reason = RESYNC_BUFFER_OVERFLOW
            if not self._reported:
                return self._report()
        return APPLY_BUFFERED

    cdef void _buf_clear(self) noexcept:
        self._buf_n = 0
        self._buf_lv_n = 0

    cdef void _buf_pop_front(self, int k) noexcept:
        # drop the k oldest buffered diffs (k <= _buf_n)
        cdef Py_ssize_t off, j
        if k <= 0:
            return
        if k >= self._buf_n:
            self._buf_clear()
            return
        off = self._buf[k].lv_off
        memmove(self._buf_lv, self._buf_lv + off, (self._buf_lv_n - off) * sizeof(Level))
        memmove(self._buf, self._buf + k, (self._buf_n - k) * sizeof(_BufDiff))
        self._buf_n -= k
        self._buf_lv_n -= off
        for j in range(self._buf_n):
            self._buf[j].lv_off -= off

    cpdef request_resync(self, int reason=RESYNC_REQUESTED):
        """Force the book out of sync (e.g. after a reconnect): clears book and buffer, calls
        ``on_resync`` unless this resync episode was already reported."""
        self._enter_resync(reason)

    # ---- Python helpers -----------------------------------------------------------------------
    def py_update(self, int64_t first, int64_t last, bids=(), asks=(), bint full=False,
                  int64_t exch_ts_ms=0, int64_t recv_ns=0):
        """Feed one stream diff given as lists of ``(px, qty)`` mantissas; returns the ApplyResult."""
        cdef _PyUpdate pu = _PyUpdate(self.book.symbol_id, first, last, bids, asks, full, exch_ts_ms, recv_ns)
        return self.on_update(&pu.u)

    def py_snapshot(self, int64_t last_id, bids=(), asks=(), int64_t exch_ts_ms=0, int64_t recv_ns=0):
        """Feed a REST snapshot with id ``last_id``; returns the ApplyResult."""
        cdef _PyUpdate pu = _PyUpdate(self.book.symbol_id, last_id, last_id, bids, asks, True, exch_ts_ms, recv_ns)
        return self.on_snapshot(&pu.u)

    def set_on_resync(self, on_resync):
        if on_resync is not None and not callable(on_resync):
            raise TypeError("on_resync must be callable or None")
        self._on_resync = on_resync

    @property
    def awaiting_snapshot(self):
        """True while the book is not in sync (waiting for a snapshot / full push)."""
        return not self._synced

    @property
    def buffered(self):
        """Number of diffs currently buffered."""
        return self._buf_n

    def buffered_ids(self):
        """``[(first, last), ...]`` of the buffered diffs, oldest first."""
        return [(self._buf[k].first_id, self._buf[k].last_id) for k in range(self._buf_n)]

    def bench_updates(self, list updates, Py_ssize_t repeats):
        """Benchmark helper: feed ``updates`` (list of ``(bids, asks)``) cyclically through
        ``on_update`` with consecutive ids after the current one, in C. Returns elapsed ns."""
        cdef list pus = [_PyUpdate(self.book.symbol_id, 0, 0, b, a, False, 0, 0) for b, a in updates]
        cdef Py_ssize_t m = len(pus), r, k
        cdef DepthUpdate* arr = <DepthUpdate*>PyMem_Malloc(max(1, m) * sizeof(DepthUpdate))
        cdef int64_t t0, t1, nxt = self.book.last_id + 1
        if arr == NULL:
            raise MemoryError()
        try:
            for k in range(m):
                arr[k] = (<_PyUpdate>pus[k]).u
            t0 = _perf_counter_ns()
            for r in range(repeats):
                for k in range(m):
                    arr[k].first_id = nxt
                    arr[k].last_id = nxt
                    nxt += 1
                    self.on_update(&arr[k])
            t1 = _perf_counter_ns()
        finally:
            PyMem_Free(arr)
        return t1 - t0

    def __repr__(self):
        return "BookSync(rule=%d, in_sync=%s, last_id=%d, buffered=%d, resyncs=%d)" % (
            self.rule, bool(self.book.in_sync), self.book.last_id, self._buf_n, self.resyncs)

"""BookRouter: the parsers' sink — BookSync → Book → ArbEngine → opportunity callback (contract in router.pxd)."""
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdlib cimport qsort
from libc.string cimport memcpy, memset

from cexnode._core.book cimport (APPLY_OK, DEFAULT_MAX_LEVELS, SYNC_SNAPSHOT_DIFF, SYNC_STREAM_FULL, Book, BookSync,
                                 DepthUpdate, Level)
from cexnode._core.feed cimport FeedParser
from cexnode._core.logring cimport HotHistogram, now_ns as clock_now_ns
from cexnode._core.symbols cimport MAX_VENUES

from cexnode._core.symbols import check_venue_id, registered_venues

# Tick-to-decision histogram bounds (ns): 250 ns .. 10 ms, roughly ×2 per bucket.
_LAT_BOUNDS_NS = (250, 500, 1000, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 20000, 30000, 50000,
                  100000, 250000, 1000000, 10000000)


cdef int _cmp_i64(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*>a)[0], y = (<const int64_t*>b)[0]
    return (x > y) - (x < y)


@cython.final
cdef class _Levels:
    """Owned Level arrays built from Python ``(px, qty)`` pairs (the Python snapshot entries)."""
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
cdef class BookRouter(FeedSink):
    """Sink of every venue parser: keeps the books in sync and runs arbitrage on every change.

    Parameters
    ----------
    arb : ArbEngine, optional
        The arbitrage engine evaluated after every book change (also settable with ``set_arb``).
    """

    def __cinit__(self):
        self._removed = NULL

    def __dealloc__(self):
        PyMem_Free(self._removed)

    def __init__(self, ArbEngine arb=None):
        self._syncs = []
        self._n_sym = 0
        self.n_books = 0
        self.arb = arb
        self._fixed_clock = False
        self._now_fixed = 0
        self.tick_to_decision_hist = HotHistogram(_LAT_BOUNDS_NS)
        self._lat_n = 0
        self.last_tick_to_decision_ns = -1
        self.on_opportunities = None
        self.on_resync = None
        self.message_handler = None
        self.parse_error_handler = None
        self._resync_handlers = {}
        self._message_handlers = {}
        self._audits = [None] * MAX_VENUES
        cdef int v
        for v in range(<int>MAX_VENUES):
            self._audit_on[v] = False
            self._audit_sid[v] = -1
            self._frames_depth[v] = 0
            self._bbo[v] = 0
            self._trades[v] = 0
            self._messages[v] = 0
            self._parse_errors[v] = 0
            self._resyncs[v] = 0
            self._removed_msgs[v] = 0

    # -- configuration (not hot) -------------------------------------------------------------------
    def set_arb(self, ArbEngine arb):
        """Use ``arb`` (or None) for every later book change."""
        self.arb = arb

    def add_book(self, int venue, int32_t symbol_id, int rule=SYNC_SNAPSHOT_DIFF, int depth=400,
                 int buffer_limit=1024, int max_levels=DEFAULT_MAX_LEVELS):
        """Create (or return the existing) Book of ``(venue, symbol_id)`` kept by a BookSync with ``rule``.

        ``depth`` is what arbitrage and dumps read; the book keeps every level up to ``max_levels``
        a side (see book.pyx)."""
        cdef BookSync s
        cdef list grown
        cdef int v, n
        check_venue_id(venue)
        if symbol_id < 0:
            raise ValueError("symbol id must be >= 0")
        if rule != SYNC_SNAPSHOT_DIFF and rule != SYNC_STREAM_FULL:
            raise ValueError("unknown sync rule %d" % rule)
        s = self._sync(venue, symbol_id)
        if s is not None:
            if <int>s.rule != rule:
                raise ValueError("book (%d, %d) already registered with sync rule %d" % (venue, symbol_id, s.rule))
            return s.book
        cdef unsigned char* removed
        if symbol_id >= self._n_sym:
            n = max(symbol_id + 1, 2 * self._n_sym, 8)
            removed = <unsigned char*>PyMem_Malloc(MAX_VENUES * n)
            if removed == NULL:
                raise MemoryError()
            memset(removed, 0, MAX_VENUES * n)
            grown = [None] * (MAX_VENUES * n)
            for v in range(<int>MAX_VENUES):
                grown[v * n:v * n + self._n_sym] = self._syncs[v * self._n_sym:(v + 1) * self._n_sym]
                if self._n_sym:
                    memcpy(removed + v * n, self._removed + v * self._n_sym, self._n_sym)
            PyMem_Free(self._removed)
            self._removed = removed
            self._syncs = grown
            self._n_sym = n
        s = BookSync(Book(symbol_id, venue, depth, max_levels), rule, buffer_limit, self._book_resync)
        self._syncs[venue * self._n_sym + symbol_id] = s
        self._removed[venue * self._n_sym + symbol_id] = 0
        self.n_books += 1
        return s.book

    def remove_book(self, int venue, int32_t symbol_id):
        """Drop the book of ``(venue, symbol_id)`` (router.pxd); True when there was one.

        RuntimeError when the ArbEngine still has a route on it (remove those routes first)."""
        cdef BookSync s = self._sync(venue, symbol_id) if 0 <= venue < MAX_VENUES else None
        if s is None:
            return False
        if self.arb is not None:
            routes = self.arb.routes_on_book(venue, symbol_id)
            if routes:
                raise RuntimeError("book (%d, %d) is still traded by route(s) %s: remove them from the "
                                   "ArbEngine first" % (venue, symbol_id, ", ".join(routes)))
        if self._audit_on[venue] and self._audit_sid[venue] == symbol_id:
            self.audit_end(venue)
        self._syncs[venue * self._n_sym + symbol_id] = None
        self._removed[venue * self._n_sym + symbol_id] = 1
        self.n_books -= 1
        return True

    def book(self, int venue, int32_t symbol_id, bint create=True):
        """The Book of ``(venue, symbol_id)``; created (SYNC_SNAPSHOT_DIFF) when absent and ``create``."""
        cdef BookSync s = self._sync(venue, symbol_id) if 0 <= venue < MAX_VENUES else None
        if s is not None:
            return s.book
        if not create:
            return None
        return self.add_book(venue, symbol_id)

    def book_sync(self, int venue, int32_t symbol_id):
        """The BookSync of ``(venue, symbol_id)`` or None."""
        return self._sync(venue, symbol_id) if 0 <= venue < MAX_VENUES else None

    def books(self):
        """``[((venue, symbol_id), Book), ...]`` in (venue, symbol id) order."""
        cdef list out = []
        cdef Py_ssize_t k
        for k in range(len(self._syncs)):
            s = self._syncs[k]
            if s is not None:
                out.append(((k // self._n_sym, k % self._n_sym), (<BookSync>s).book))
        return out

    def all_in_sync(self):
        """True when there is at least one book and every book is in sync."""
        cdef bint any_book = False
        for s in self._syncs:
            if s is not None:
                any_book = True
                if not (<BookSync>s).book.in_sync:
                    return False
        return any_book

    def set_resync_handler(self, int venue, handler):
        """``handler(symbol_id, reason)`` receives the resync requests of ``venue`` (None removes it)."""
        if handler is None:
            self._resync_handlers.pop(venue, None)
        else:
            self._resync_handlers[venue] = handler

    def set_message_handler(self, int venue, handler):
        """``handler(kind, msg)`` receives the control/private messages of ``venue`` (None removes it)."""
        if handler is None:
            self._message_handlers.pop(venue, None)
        else:
            self._message_handlers[venue] = handler

    # -- clock ---------------------------------------------------------------------------------------
    def set_now(self, int64_t now_ns):
        """Fix the clock at ``now_ns`` (deterministic replay); latency is not recorded while fixed."""
        self._fixed_clock = True
        self._now_fixed = now_ns

    def use_live_clock(self):
        self._fixed_clock = False

    @property
    def clock_fixed(self):
        return self._fixed_clock

    cdef inline int64_t now(self) noexcept:
        if self._fixed_clock:
            return self._now_fixed
        return clock_now_ns()

    # -- hot path --------------------------------------------------------------------------------------
    cdef BookSync _sync(self, int venue, int32_t symbol_id):
        if symbol_id < 0 or symbol_id >= self._n_sym:
            return None
        return <BookSync>self._syncs[venue * self._n_sym + symbol_id]

    cdef int on_depth(self, int venue, const DepthUpdate* u) except -1:
        cdef BookSync s
        cdef uint64_t v0
        cdef int r
        if venue < 0 or venue >= MAX_VENUES:
            self.unrouted += 1
            return 0
        s = self._sync(venue, u.symbol_id)
        if s is None:
            if 0 <= u.symbol_id < self._n_sym and self._removed[venue * self._n_sym + u.symbol_id]:
                self._removed_msgs[venue] += 1
            else:
                self.unrouted += 1
            return 0
        self.depth_updates += 1
        self._frames_depth[venue] += 1
        if self._audit_on[venue] and self._audit_sid[venue] == u.symbol_id:
            (<BookSync>self._audits[venue]).on_update(u)      # the audit's shadow (router.pxd)
        v0 = s.book.version
        r = s.on_update(u)
        if r == APPLY_OK and s.book.version != v0:
            return self._after_apply(s, r, u.recv_ns)
        return 0

    cdef int _after_apply(self, BookSync s, int r, int64_t recv_ns) except -1:
        if r == APPLY_OK and s.book.in_sync and self.arb is not None:
            return self._evaluate(s.book, recv_ns)
        return 0

    cdef int _evaluate(self, Book book, int64_t recv_ns) except -1:
        cdef int64_t now = self.now(), lat
        cdef object opps = self.arb.on_book_update(book, now)
        self.evaluations += 1
        if not self._fixed_clock:
            lat = clock_now_ns() - recv_ns
            if lat >= 0:
                self.last_tick_to_decision_ns = lat
                self.tick_to_decision_hist.observe_c(lat)
                if self._us_hist is not None:
                    self._us_hist.observe_c(lat // 1000)
                self._lat[self._lat_n & (LAT_RING - 1)] = lat
                self._lat_n += 1
        if opps is not None:
            self.opportunities += len(<list>opps)
            if self.on_opportunities is not None:
                self.on_opportunities(opps)
        return 0

    cdef int on_bbo(self, int venue, const Bbo* b) except -1:
        if 0 <= venue < MAX_VENUES:
            self._bbo[venue] += 1
        return 0

    cdef int on_trade(self, int venue, const Trade* t) except -1:
        if 0 <= venue < MAX_VENUES:
            self._trades[venue] += 1
        return 0

    cdef int on_message(self, int venue, int kind, object msg) except -1:
        if 0 <= venue < MAX_VENUES:
            self._messages[venue] += 1
        h = self._message_handlers.get(venue) if self._message_handlers else None
        if h is not None:
            h(kind, msg)
        elif self.message_handler is not None:
            self.message_handler(venue, kind, msg)
        return 0

    cdef int on_parse_error(self, int venue, str reason, const char* buf, Py_ssize_t n) except -1:
        if 0 <= venue < MAX_VENUES:
            self._parse_errors[venue] += 1
        if self.parse_error_handler is not None:
            self.parse_error_handler(venue, reason)
        return 0

    def _book_resync(self, BookSync s, int reason):
        # BookSync's on_resync hook: called once per resync episode, inside on_update/on_snapshot.
        cdef int venue = s.book.venue
        self.resyncs += 1
        if 0 <= venue < MAX_VENUES:
            self._resyncs[venue] += 1
        h = self._resync_handlers.get(venue) if self._resync_handlers else None
        if h is not None:
            h(s.book.symbol_id, reason)
        elif self.on_resync is not None:
            self.on_resync(venue, s.book.symbol_id, reason)

    # -- snapshots and resync requests ------------------------------------------------------------
    cdef int snapshot_c(self, int venue, const DepthUpdate* snap) except -1:
        cdef BookSync s = self._sync(venue, snap.symbol_id) if 0 <= venue < MAX_VENUES else None
        cdef uint64_t v0
        cdef int r
        if s is None:
            raise KeyError("no book for venue %d symbol id %d" % (venue, snap.symbol_id))
        v0 = s.book.version
        r = s.on_snapshot(snap)
        if r == APPLY_OK and s.book.version != v0:
            self._after_apply(s, r, snap.recv_ns)
        return r

    def snapshot(self, int venue, int32_t symbol_id, int64_t last_id, bids, asks, int64_t exch_ts_ms=0,
                 int64_t recv_ns=-1):
        """Apply a REST snapshot (levels as ``(px, qty)`` mantissas at the book's scales); ApplyResult.

        ``recv_ns`` defaults to the router's clock (the snapshot's receive time decides freshness).
        """
        if recv_ns < 0:
            recv_ns = self.now()
        cdef _Levels lv = _Levels(symbol_id, last_id, last_id, bids, asks, True, exch_ts_ms, recv_ns)
        return self.snapshot_c(venue, &lv.u)

    def request_resync(self, int venue, int32_t symbol_id, int reason=5):
        """Force one book out of sync (its resync callback fires)."""
        cdef BookSync s = self._sync(venue, symbol_id) if 0 <= venue < MAX_VENUES else None
        if s is None:
            raise KeyError("no book for venue %d symbol id %d" % (venue, symbol_id))
        s.request_resync(reason)

    def request_resync_venue(self, int venue, int reason=5):
        """Force every book of ``venue`` out of sync (after a reconnect)."""
        for (v, sid), book in self.books():
            if v == venue:
                self.request_resync(v, sid, reason)

    # -- book audits (cexnode.book_audit; router.pxd) ---------------------------------------------
    def audit_begin(self, int venue, int32_t symbol_id):
        """Register a shadow BookSync for the book ``(venue, symbol_id)`` and return it: from now until
        :meth:`audit_end`, every depth update of that book reaches the shadow too (buffered until the
        shadow gets a snapshot, exactly as the live book's sync buffers them).

        Raises KeyError (no such book), ValueError (the book is not synced from REST snapshots:
        SYNC_STREAM_FULL ids have no documented relation to the REST snapshot's) or RuntimeError (an
        audit of this venue is pending).
        """
        cdef BookSync s = self._sync(venue, symbol_id) if 0 <= venue < MAX_VENUES else None
        cdef BookSync shadow
        if s is None:
            raise KeyError("no book for venue %d symbol id %d" % (venue, symbol_id))
        if s.rule != SYNC_SNAPSHOT_DIFF:
            raise ValueError("book (%d, %d) is not synced from REST snapshots: it cannot be audited"
                             % (venue, symbol_id))
        if self._audit_on[venue]:
            raise RuntimeError("an audit of venue %d (symbol id %d) is pending" % (venue, self._audit_sid[venue]))
        shadow = BookSync(Book(symbol_id, venue, s.book.depth, s.book.max_levels), SYNC_SNAPSHOT_DIFF, s.buffer_limit, None)
        self._audits[venue] = shadow
        self._audit_sid[venue] = symbol_id
        self._audit_on[venue] = True
        return shadow

    def audit_end(self, int venue):
        """Stop feeding the venue's audit shadow (no-op when none is pending)."""
        if 0 <= venue < MAX_VENUES:
            self._audit_on[venue] = False
            self._audit_sid[venue] = -1
            self._audits[venue] = None

    def audit_pending(self, int venue):
        """``(symbol_id, shadow BookSync)`` of the venue's pending audit, or None."""
        if 0 <= venue < MAX_VENUES and self._audit_on[venue]:
            return self._audit_sid[venue], self._audits[venue]
        return None

    # -- Python entries (tests, tools) ------------------------------------------------------------
    def py_depth(self, int venue, int32_t symbol_id, int64_t first, int64_t last, bids=(), asks=(),
                 bint full=False, int64_t exch_ts_ms=0, int64_t recv_ns=0):
        """Deliver one DepthUpdate as a parser would (levels as ``(px, qty)`` mantissas)."""
        cdef _Levels lv = _Levels(symbol_id, first, last, bids, asks, full, exch_ts_ms, recv_ns)
        return self.on_depth(venue, &lv.u)

    def py_message(self, int venue, int kind, msg):
        return self.on_message(venue, kind, msg)

    def py_parse_error(self, int venue, str reason):
        return self.on_parse_error(venue, reason, NULL, 0)

    # -- metrics -----------------------------------------------------------------------------------
    def counters(self, int venue):
        """Per-venue counters: depth, bbo, trades, messages, parse_errors, resyncs, removed_book_msgs."""
        if venue < 0 or venue >= MAX_VENUES:
            raise ValueError("venue id out of range: %d" % venue)
        return {"depth": self._frames_depth[venue], "bbo": self._bbo[venue], "trades": self._trades[venue],
                "messages": self._messages[venue], "parse_errors": self._parse_errors[venue],
                "resyncs": self._resyncs[venue], "removed_book_msgs": self._removed_msgs[venue]}

    @property
    def tick_to_decision(self):
        """Self: exposes ``quantile(q)`` over the recent tick-to-decision samples (ns)."""
        return self

    def quantile(self, double q):
        """q-quantile (nearest rank) of the last LAT_RING tick-to-decision samples in ns; None when empty."""
        cdef Py_ssize_t n = <Py_ssize_t>min(self._lat_n, <uint64_t>LAT_RING), k
        cdef int64_t* tmp
        if n == 0:
            return None
        tmp = <int64_t*>PyMem_Malloc(n * sizeof(int64_t))
        if tmp == NULL:
            raise MemoryError()
        memcpy(tmp, self._lat, n * sizeof(int64_t))
        qsort(tmp, n, sizeof(int64_t), _cmp_i64)
        k = <Py_ssize_t>(q * n)
        if k >= n:
            k = n - 1
        if k < 0:
            k = 0
        r = tmp[k]
        PyMem_Free(tmp)
        return r

    def latency_samples(self):
        """Number of tick-to-decision samples recorded since creation."""
        return self._lat_n

    def set_latency_histogram_us(self, HotHistogram hist):
        """Also observe every tick-to-decision sample, in μs, into ``hist`` (None stops)."""
        self._us_hist = hist

    def register_metrics(self, metrics, venue_names=None):
        """Feed a cexnode.metrics.NodeMetrics: the tick-to-decision histogram (μs) and the router's
        per-venue counters as ``cexnode_router_*`` series labelled with ``venue_names`` (``{venue id:
        name}``; default: the node's venue registry). Book updates/resyncs per book come from the
        metrics' BookSync sources, parse errors from the parsers."""
        if venue_names is None:
            venue_names = {d.venue_id: d.name for d in registered_venues()}
        labels = sorted((check_venue_id(v, n), n) for v, n in dict(venue_names).items())
        self.set_latency_histogram_us(metrics.tick_to_decision())
        for key, name, help_ in (("depth", "cexnode_router_depth_updates", "Depth updates routed to a book."),
                                 ("bbo", "cexnode_router_bbo", "Best bid/offer pushes received."),
                                 ("trades", "cexnode_router_trades", "Public trades received."),
                                 ("messages", "cexnode_router_messages", "Control/private messages routed."),
                                 ("resyncs", "cexnode_router_resyncs", "Books that left sync (resync requests)."),
                                 ("removed_book_msgs", "cexnode_router_removed_book_msgs",
                                  "Depth updates for a book removed at run time (dropped).")):
            metrics.register_counter_source(name, help_, ("venue",),
                                            lambda key=key: [((n,), self.counters(v)[key]) for v, n in labels])
        metrics.register_counter_source("cexnode_router_evaluations", "Arbitrage evaluations after a book change.", (),
                                        lambda: [((), self.evaluations)])
        metrics.register_counter_source("cexnode_router_opportunities", "Opportunities emitted by the arbitrage engine.", (),
                                        lambda: [((), self.opportunities)])
        metrics.register_counter_source("cexnode_router_unrouted", "Depth updates for a (venue, symbol) without a book.", (),
                                        lambda: [((), self.unrouted)])

    # -- benchmark -------------------------------------------------------------------------------------
    def bench_frames(self, parser, list frames, bint binary, Py_ssize_t repeats):
        """Benchmark helper: feed ``frames`` through ``parser`` (whose sink is this router) ``repeats``
        times; returns a list of per-frame ns (CLOCK_REALTIME around each feed call)."""
        cdef FeedParser p = parser
        cdef Py_ssize_t i, j, nf = len(frames)
        cdef bytes fr
        cdef int64_t t0
        cdef list out = []
        for j in range(repeats):
            for i in range(nf):
                fr = <bytes>frames[i]
                t0 = clock_now_ns()
                p.feed(<const char*>fr, len(fr), binary, t0)
                out.append(clock_now_ns() - t0)
        return out


globals().update(LAT_RING=<int>LAT_RING)

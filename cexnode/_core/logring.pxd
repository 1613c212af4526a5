# cexnode._core.logring — the log ring: preallocated C records, no formatting on the hot path.
# THE CONTRACT; review this first.
#
# Producers (Python Logger methods, and Cython code through log_event) write one LogRecord into a
# power-of-two ring: a timestamp, the level, the logger id, a *reference* to the message (an interned
# str for literals) and either typed fields (i0, i1, d0) or a reference to the caller's kwargs dict.
# Nothing is formatted, copied or locked on that path. When the ring is full the NEWEST record is
# dropped and counted (producers never block); the next drain that frees room appends one
# REC_DROPS warning saying how many were dropped.
#
# Concurrency: one consumer (the flusher task on the asyncio loop). Producers are the loop thread
# and, rarely, other threads through the stdlib bridge. push() and the slot hand-over in drain()
# run without releasing the GIL and without calling Python code (INCREF only, never DECREF), so each
# is atomic under the GIL: no lock is needed. Records are released (DECREF) only after they have
# left the ring, by their LogBatch.
cimport cython
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t


cdef enum:
    LVL_DEBUG = 10
    LVL_INFO = 20
    LVL_WARNING = 30
    LVL_ERROR = 40
    LVL_OFF = 255          # a logger at LVL_OFF accepts nothing


cdef enum RecordKind:
    REC_LOG = 0            # msg + fields (dict from **kwargs, or NULL)
    REC_EVENT = 1          # C-level record: msg + i0, i1, d0 named by define_event() (unnamed: omitted)
    REC_METRIC = 2         # gauge: msg = metric name, d0 = value, fields = tags dict or NULL
    REC_COUNTER = 3        # msg = counter name, i0 = increment, fields = tags dict or NULL
    REC_TIMER = 4          # msg = timer name, i0 = duration ns, fields = tags dict or NULL
    REC_AUDIT = 5          # already written to the audit file synchronously; msg = event, fields = data
    REC_DROPS = 6          # ring overflow report: i0 = records dropped since the previous report


cdef struct LogRecord:     # 64 bytes: one cache line per record
    int64_t ts_ns          # CLOCK_REALTIME, ns
    int64_t i0
    int64_t i1
    double d0
    PyObject* msg          # strong reference (str)
    PyObject* fields       # strong reference or NULL (dict)
    PyObject* ctx          # strong reference or NULL: the logger's with_context() dict
    int32_t logger_id
    uint8_t level
    uint8_t kind


@cython.final
cdef class LogRing:
    cdef:
        LogRecord* _slots
        readonly uint64_t capacity       # power of two
        uint64_t _mask
        uint64_t _head                   # next slot to read (monotonic)
        uint64_t _tail                   # next slot to write (monotonic)
        readonly uint64_t accepted       # records written into the ring, ever
        readonly uint64_t drained        # records handed to the consumer, ever
        readonly uint64_t dropped        # records refused because the ring was full, ever
        readonly uint64_t pending_drops  # dropped since the last REC_DROPS report
        readonly uint64_t rejected       # records refused because the ring is closed (after stop)
        readonly bint closed

    # 1 accepted, 0 dropped (full) or rejected (closed). Takes new references to msg/fields/ctx.
    cdef int push(self, int level, int kind, int32_t logger_id, object msg, PyObject* fields,
                  PyObject* ctx, int64_t i0, int64_t i1, double d0) noexcept
    cdef int _push_record(self, LogRecord* src) noexcept    # re-home a record (keeps its timestamp)
    cdef inline uint64_t size(self) noexcept:
        return self._tail - self._head
    # Moves up to max_n records (oldest first) into a new batch, then reports pending drops.
    cpdef LogBatch drain(self, Py_ssize_t max_n)


@cython.final
cdef class LogBatch:
    cdef:
        LogRecord* _recs                 # owned: references released in __dealloc__
        readonly Py_ssize_t n
        char* _buf                       # JSON Lines of every text record, encoded once (lazily)
        Py_ssize_t _buf_len
        Py_ssize_t* _offs                # record i's line is _buf[_offs[i]:_offs[i+1]] (empty if none)
        bint _encoded

    cdef int _encode(self) except -1
    cpdef bytes jsonl(self, int min_level, bint trading_only)
    cdef bint _want(self, Py_ssize_t i, int min_level, bint trading_only) noexcept


@cython.final
cdef class HotHistogram:
    # Fixed upper bounds (ascending int64, in the histogram's unit, e.g. μs); counts are plain C
    # integers updated without any Python call, read by the Prometheus collector at scrape time.
    cdef:
        int64_t* _bounds
        uint64_t* _counts                # n_bounds + 1 (last: +Inf)
        readonly int n_bounds
        readonly uint64_t count
        readonly double sum
    cdef void observe_c(self, int64_t value) noexcept


# ---- C-level API for other _core modules (cimport these) -----------------------------------------
# True when a record at `level` from logger `logger_id` would be accepted (cheap pre-check).
cdef bint log_enabled(int level, int32_t logger_id) noexcept
# One REC_EVENT record into the active ring. msg should be an interned str (define_event()); i0, i1
# and d0 are rendered under the names define_event() gave them. 1 accepted, 0 filtered or dropped.
cdef int log_event(int level, int32_t logger_id, object msg, int64_t i0, int64_t i1, double d0) noexcept
# Counter increment record (routed to Prometheus); tags may be None.
cdef int log_counter(int32_t logger_id, object name, int64_t n) noexcept
cdef int64_t now_ns() noexcept

# cexnode._core.logring — implementation. The contract (and the concurrency argument) is logring.pxd.
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_Next, PyDict_SetItem, PyDict_Size
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.list cimport PyList_CheckExact
from cpython.ref cimport Py_INCREF, Py_XDECREF, Py_XINCREF
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_CheckExact
from libc.math cimport isfinite, isnan
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec

import sys as _sys

import orjson as _orjson


cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags,
                                int* ptype) except NULL
    int Py_DTSF_ADD_DOT_0

cdef extern from "cexnode_debug.h":
    void CEXNODE_ASSERT(bint cond) nogil


# ------------------------------------------------------------------------------------------------
# clocks

cdef int64_t now_ns() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t _mono_ns() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


def wall_ns():
    """CLOCK_REALTIME in ns (the clock every record's ``ts`` uses)."""
    return now_ns()


# ------------------------------------------------------------------------------------------------
# module state: the active ring, the logger registry, per-logger levels (C arrays for the hot path)

cdef LogRing _active = None
cdef uint8_t* _levels = NULL          # logger id -> minimum level accepted
cdef uint8_t* _trading = NULL         # logger id -> 1 when its tags contain "trading" (routed to audit)
cdef int32_t _n_loggers = 0
cdef int32_t _cap_loggers = 0
cdef int _default_level = LVL_INFO
cdef dict _level_map = {}             # logger name (prefix) -> level
cdef list _logger_names = []          # id -> name
cdef list _logger_tags = []           # id -> tuple of tags
cdef list _logger_prefix = []         # id -> bytes: "logger":"...","tags":[...]
cdef dict _loggers = {}               # (name, tags) -> base Logger
cdef dict _event_names = {}           # msg str -> (i0 name, i1 name, d0 name), each str or None
cdef dict _key_class = {}             # field name -> 0 plain, 1 secret, 2 reserved (renamed "_"+key)
cdef object _audit_sink = None        # callable(logger, event, data[, sync]) -> seq; set by cexnode.log
cdef uint8_t _ESC[256]

BUILTIN_REDACT_KEYS = frozenset((
    "api_key", "apikey", "api_secret", "secret", "secret_key", "private_key", "password", "passphrase",
    "token", "access_token", "refresh_token", "signature", "sign", "authorization",
))
cdef frozenset _redact_keys = BUILTIN_REDACT_KEYS
RESERVED_KEYS = frozenset(("ts", "level", "logger", "tags", "msg", "kind"))
SECRET_MASK = "***"
DROPS_MSG = _sys.intern("log ring overflow: records dropped")
cdef str _DROPS_MSG = DROPS_MSG

LEVELS = {"debug": LVL_DEBUG, "info": LVL_INFO, "warning": LVL_WARNING, "error": LVL_ERROR}
KIND_LOG = REC_LOG
KIND_EVENT = REC_EVENT
KIND_METRIC = REC_METRIC
KIND_COUNTER = REC_COUNTER
KIND_TIMER = REC_TIMER
KIND_AUDIT = REC_AUDIT
KIND_DROPS = REC_DROPS
DEBUG, INFO, WARNING, ERROR = LVL_DEBUG, LVL_INFO, LVL_WARNING, LVL_ERROR


cdef void _init_escape_table() noexcept:
    cdef int c
    memset(_ESC, 0, sizeof(_ESC))
    for c in range(32):
        _ESC[c] = 1
    _ESC[34] = 1     # "
    _ESC[92] = 1     # backslash


_init_escape_table()


def level_value(level):
    """``"info"`` / ``20`` -> 20. Raises ValueError for anything else."""
    if isinstance(level, int):
        return int(level)
    try:
        return LEVELS[str(level).lower()]
    except KeyError:
        raise ValueError("unknown log level %r (debug|info|warning|error)" % (level,)) from None


def level_name(int level):
    return _level_name_str(level)


cdef str _level_name_str(int level):
    if level >= 50:
        return "critical"
    if level >= LVL_ERROR:
        return "error"
    if level >= LVL_WARNING:
        return "warning"
    if level >= LVL_INFO:
        return "info"
    return "debug"


cdef int _level_for(str name) except -1:
    cdef str n = name
    cdef Py_ssize_t i
    while True:
        v = _level_map.get(n)
        if v is not None:
            return <int>v
        i = n.rfind(".")
        if i < 0:
            return _default_level
        n = n[:i]


def set_levels(default, loggers=None):
    """Set the default level and per-logger levels (a logger name applies to its dotted children).

    Takes effect immediately for every existing logger (SIGHUP reload)."""
    global _default_level, _level_map
    cdef int32_t i
    newmap = {str(k): level_value(v) for k, v in (loggers or {}).items()}
    _default_level = level_value(default)
    _level_map = newmap
    for i in range(_n_loggers):
        _levels[i] = <uint8_t>min(_level_for(_logger_names[i]), LVL_OFF)


cdef int _grow_registry() except -1:
    global _levels, _trading, _cap_loggers
    cdef int32_t cap = _cap_loggers * 2 if _cap_loggers else 64
    cdef uint8_t* lv = <uint8_t*>PyMem_Realloc(_levels, cap)
    if lv == NULL:
        raise MemoryError()
    _levels = lv
    cdef uint8_t* tr = <uint8_t*>PyMem_Realloc(_trading, cap)
    if tr == NULL:
        raise MemoryError()
    _trading = tr
    _cap_loggers = cap
    return 0


cdef int32_t _register(str name, tuple tags) except -1:
    global _n_loggers
    if _n_loggers == _cap_loggers:
        _grow_registry()
    cdef int32_t lid = _n_loggers
    _levels[lid] = <uint8_t>min(_level_for(name), LVL_OFF)
    _trading[lid] = 1 if "trading" in tags else 0
    _logger_names.append(name)
    _logger_tags.append(tags)
    _logger_prefix.append(b'"logger":' + _orjson.dumps(name) + b',"tags":' + _orjson.dumps(list(tags)))
    _n_loggers = lid + 1
    return lid


def get_logger(name, tags=None):
    """The logger for ``name`` with hierarchical ``tags`` (e.g. ``[venue name, "public", "ws"]``).

    Loggers are cached: the same (name, tags) always gives the same object and logger id."""
    cdef tuple t = tuple(str(x) for x in tags) if tags else ()
    key = (str(name), t)
    lg = _loggers.get(key)
    if lg is None:
        lg = Logger.__new__(Logger)
        (<Logger>lg).id = _register(key[0], t)
        (<Logger>lg).name = key[0]
        (<Logger>lg).tags = t
        (<Logger>lg).context = None
        (<Logger>lg)._ctx = NULL
        _loggers[key] = lg
    return lg


def logger_info(int32_t logger_id):
    """(name, tags) of a logger id."""
    if logger_id < 0 or logger_id >= _n_loggers:
        logger_id = 0
    return _logger_names[logger_id], _logger_tags[logger_id]


def logger_count():
    return _n_loggers


def is_trading_logger(int32_t logger_id):
    return 0 <= logger_id < _n_loggers and _trading[logger_id] != 0


def define_event(msg, i0=None, i1=None, d0=None):
    """Intern ``msg`` for Cython callers of ``log_event`` and name its typed fields.

    Returns the interned str to keep in a module-level variable and pass as ``msg_obj``."""
    cdef str m = _sys.intern(str(msg))
    _event_names[m] = (i0, i1, d0)
    return m


def set_redact_keys(extra=()):
    """Field names rendered as ``"***"`` in every backend: the built-ins plus ``extra``.

    Names match case-insensitively, ``-`` and ``_`` alike."""
    global _redact_keys
    _redact_keys = BUILTIN_REDACT_KEYS | frozenset(_norm_key(k) for k in extra)
    _key_class.clear()


def redact_keys():
    return _redact_keys


cdef str _norm_key(object key):
    return str(key).lower().replace("-", "_")


cdef int _classify_key(object key) except -1:
    cdef PyObject* p = PyDict_GetItem(_key_class, key)
    if p != NULL:
        return <int><object>p
    cdef int c = 0
    if _norm_key(key) in _redact_keys:
        c = 1
    elif key in RESERVED_KEYS:
        c = 2
    if PyDict_Size(_key_class) < 65536:
        _key_class[key] = c
    return c


def is_secret_key(key):
    return _classify_key(key) == 1


def is_secret(value):
    """True for instances of classes declaring ``__cexnode_secret__ = True`` (the Secret protocol)."""
    return _is_secret(value)


cdef bint _is_secret(object v):
    try:
        return getattr(type(v), "__cexnode_secret__", False) is True
    except Exception:
        return False


def redact(value):
    """``value`` with every secret (by key or by type) replaced by ``"***"``, JSON-able (sets as
    lists, tuples as lists). Copy on write: a dict or list with nothing to replace anywhere inside is
    returned as it is (not copied); callers must not mutate the result."""
    return _redact_deep(value)


cdef object _redact_deep(object v):
    cdef dict out
    cdef list lst
    cdef Py_ssize_t i
    if v is None or PyUnicode_CheckExact(v) or PyLong_CheckExact(v) or PyFloat_CheckExact(v) \
            or v is True or v is False:
        return v
    if _is_secret(v):
        return SECRET_MASK
    if isinstance(v, dict):
        out = None
        for k, x in (<dict>v).items():
            y = SECRET_MASK if _classify_key(k) == 1 else _redact_deep(x)
            if y is not x:
                if out is None:
                    out = dict(v)
                out[k] = y
        return v if out is None else out
    if PyList_CheckExact(v):
        lst = None
        for i in range(len(<list>v)):
            x = (<list>v)[i]
            y = _redact_deep(x)
            if y is not x:
                if lst is None:
                    lst = list(v)
                lst[i] = y
        return v if lst is None else lst
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_redact_deep(x) for x in v]
    return v


def _json_default(o):
    if _is_secret(o):
        return SECRET_MASK
    return str(o)


def set_audit_sink(sink):
    """Install the synchronous audit writer (``sink(logger, event, data[, sync]) -> seq``) or None."""
    global _audit_sink
    _audit_sink = sink


def active_ring():
    return _active


def activate_ring(LogRing ring not None):
    """Make ``ring`` the one every logger writes to; records still in the previous ring move over
    (oldest first); any that do not fit are counted as drops of the new ring."""
    global _active
    cdef LogRing old = _active
    cdef LogBatch b
    cdef Py_ssize_t i
    cdef LogRecord* r
    if old is not None and old is not ring:
        b = old.drain(0)
        for i in range(b.n):
            r = &b._recs[i]
            ring._push_record(r)
    _active = ring
    return old


# ------------------------------------------------------------------------------------------------
# the ring

@cython.final
cdef class LogRing:
    """Preallocated power-of-two ring of LogRecord structs (see logring.pxd)."""

    def __cinit__(self, uint64_t capacity=65536):
        if capacity < 2 or (capacity & (capacity - 1)) != 0:
            raise ValueError("log ring capacity must be a power of two >= 2, got %d" % capacity)
        self._slots = <LogRecord*>PyMem_Malloc(capacity * sizeof(LogRecord))
        if self._slots == NULL:
            raise MemoryError()
        memset(self._slots, 0, capacity * sizeof(LogRecord))
        self.capacity = capacity
        self._mask = capacity - 1

    def __dealloc__(self):
        cdef uint64_t i
        cdef LogRecord* r
        if self._slots != NULL:
            for i in range(self._head, self._tail):
                r = &self._slots[i & self._mask]
                Py_XDECREF(r.msg)
                Py_XDECREF(r.fields)
                Py_XDECREF(r.ctx)
            PyMem_Free(self._slots)
            self._slots = NULL

    cdef int push(self, int level, int kind, int32_t logger_id, object msg, PyObject* fields,
                  PyObject* ctx, int64_t i0, int64_t i1, double d0) noexcept:
        cdef uint64_t t = self._tail
        if t - self._head >= self.capacity or self.closed:
            if self.closed:
                self.rejected += 1
            else:
                self.dropped += 1
                self.pending_drops += 1
            return 0
        cdef LogRecord* r = &self._slots[t & self._mask]
        r.ts_ns = now_ns()
        r.i0 = i0
        r.i1 = i1
        r.d0 = d0
        Py_INCREF(msg)
        r.msg = <PyObject*>msg
        Py_XINCREF(fields)
        r.fields = fields
        Py_XINCREF(ctx)
        r.ctx = ctx
        r.logger_id = logger_id
        r.level = <uint8_t>level
        r.kind = <uint8_t>kind
        self._tail = t + 1
        self.accepted += 1
        return 1

    cdef int _push_record(self, LogRecord* src) noexcept:
        # Re-home a record taken out of another ring (activate_ring): keep its timestamp.
        cdef uint64_t t = self._tail
        if t - self._head >= self.capacity or self.closed:
            self.dropped += 1
            self.pending_drops += 1
            return 0
        cdef LogRecord* r = &self._slots[t & self._mask]
        r[0] = src[0]
        Py_XINCREF(r.msg)
        Py_XINCREF(r.fields)
        Py_XINCREF(r.ctx)
        self._tail = t + 1
        self.accepted += 1
        return 1

    cpdef LogBatch drain(self, Py_ssize_t max_n):
        """Take up to ``max_n`` records (``<= 0``: all) out of the ring, oldest first."""
        cdef uint64_t avail = self._tail - self._head
        cdef uint64_t n = avail
        if max_n > 0 and <uint64_t>max_n < n:
            n = <uint64_t>max_n
        cdef LogBatch b = LogBatch.__new__(LogBatch)
        cdef uint64_t start, first
        if n:
            # Allocate before touching the ring: allocation may run a GC (and other threads); the
            # copy + head update below runs no Python code, so it is atomic under the GIL.
            b._recs = <LogRecord*>PyMem_Malloc(n * sizeof(LogRecord))
            if b._recs == NULL:
                raise MemoryError()
            start = self._head & self._mask
            first = self.capacity - start
            if first > n:
                first = n
            memcpy(b._recs, &self._slots[start], first * sizeof(LogRecord))
            if n > first:
                memcpy(&b._recs[first], self._slots, (n - first) * sizeof(LogRecord))
            self._head += n
            self.drained += n
            b.n = <Py_ssize_t>n
        if self.pending_drops and self._tail - self._head < self.capacity and not self.closed:
            if self.push(LVL_WARNING, REC_DROPS, 0, _DROPS_MSG, NULL, NULL,
                         <int64_t>self.pending_drops, <int64_t>self.dropped, 0.0):
                self.pending_drops = 0
        return b

    def __len__(self):
        return <Py_ssize_t>(self._tail - self._head)

    def close(self):
        """Refuse further records (counted in ``rejected``); used by a clean stop after the drain."""
        self.closed = True

    def reopen(self):
        self.closed = False

    # -- Python-level producer (tests, benchmarks, the stdlib bridge) ------------------------------
    def push_log(self, int level, int32_t logger_id, msg, dict fields=None):
        """Push one REC_LOG record into this ring; True if accepted."""
        return bool(self.push(level, REC_LOG, logger_id, msg,
                              <PyObject*>fields if fields else NULL, NULL, 0, 0, 0.0))

    def push_event(self, int level, int32_t logger_id, msg, int64_t i0=0, int64_t i1=0, double d0=0.0):
        return bool(self.push(level, REC_EVENT, logger_id, msg, NULL, NULL, i0, i1, d0))

    def stats(self):
        return {"capacity": self.capacity, "size": self._tail - self._head, "accepted": self.accepted,
                "drained": self.drained, "dropped": self.dropped, "pending_drops": self.pending_drops,
                "rejected": self.rejected}


# ------------------------------------------------------------------------------------------------
# JSON Lines encoder (C buffer; strings, ints, floats, bools, None written directly; rest via orjson)

cdef struct Buf:
    char* p
    Py_ssize_t n
    Py_ssize_t cap


cdef int _reserve(Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t need = b.n + extra
    if need <= b.cap:
        return 0
    cdef Py_ssize_t cap = b.cap * 2 if b.cap else 16384
    while cap < need:
        cap *= 2
    cdef char* p = <char*>PyMem_Realloc(b.p, cap)
    if p == NULL:
        raise MemoryError()
    b.p = p
    b.cap = cap
    return 0


cdef inline int _put(Buf* b, const char* s, Py_ssize_t n) except -1:
    if b.n + n > b.cap:
        _reserve(b, n)
    memcpy(b.p + b.n, s, n)
    b.n += n
    return 0


cdef inline int _put_bytes(Buf* b, bytes s) except -1:
    return _put(b, PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s))


cdef int _put_int(Buf* b, int64_t v) except -1:
    cdef char tmp[24]
    cdef int i = 24
    cdef uint64_t u
    cdef bint neg = v < 0
    if neg:
        u = <uint64_t>(-(v + 1)) + 1       # no overflow for INT64_MIN (debug builds check)
    else:
        u = <uint64_t>v
    while True:
        i -= 1
        tmp[i] = <char>(48 + <int>(u % 10))
        u //= 10
        if u == 0:
            break
    if neg:
        i -= 1
        tmp[i] = 45
    return _put(b, &tmp[i], 24 - i)


cdef int _put_float(Buf* b, double d) except -1:
    cdef char* s
    if isfinite(d):
        s = PyOS_double_to_string(d, 114, 0, Py_DTSF_ADD_DOT_0, NULL)    # 'r': shortest repr
        try:
            _put(b, s, <Py_ssize_t>len(<bytes>s))
        finally:
            PyMem_Free(s)
        return 0
    if isnan(d):
        return _put(b, '"nan"', 5)
    if d > 0:
        return _put(b, '"inf"', 5)
    return _put(b, '"-inf"', 6)


cdef int _put_str(Buf* b, object s) except -1:
    cdef Py_ssize_t n, i, j
    cdef const char* u
    cdef uint8_t c
    cdef char* out
    try:
        u = PyUnicode_AsUTF8AndSize(s, &n)
    except UnicodeEncodeError:      # lone surrogates
        return _put_str(b, (<str>s).encode("utf-8", "backslashreplace").decode("ascii"))
    _reserve(b, n * 6 + 2)
    out = b.p + b.n
    out[0] = 34
    j = 1
    for i in range(n):
        c = <uint8_t>u[i]
        if _ESC[c]:
            out[j] = 92
            if c == 34 or c == 92:
                out[j + 1] = <char>c
                j += 2
            elif c == 10:
                out[j + 1] = 110
                j += 2
            elif c == 13:
                out[j + 1] = 114
                j += 2
            elif c == 9:
                out[j + 1] = 116
                j += 2
            else:
                out[j + 1] = 117
                out[j + 2] = 48
                out[j + 3] = 48
                out[j + 4] = <char>(48 + (c >> 4))
                out[j + 5] = <char>((48 + (c & 15)) if (c & 15) < 10 else (87 + (c & 15)))
                j += 6
        else:
            out[j] = <char>c
            j += 1
    out[j] = 34
    b.n += j + 1
    return 0


cdef int _put_value(Buf* b, object v) except -1:
    cdef int ovf = 0
    cdef long long x
    if PyUnicode_CheckExact(v):
        return _put_str(b, v)
    if PyLong_CheckExact(v):
        x = PyLong_AsLongLongAndOverflow(v, &ovf)
        if ovf == 0:
            return _put_int(b, x)
        s = str(v).encode()
        return _put_bytes(b, s)
    if PyFloat_CheckExact(v):
        return _put_float(b, PyFloat_AS_DOUBLE(v))
    if v is None:
        return _put(b, "null", 4)
    if v is True:
        return _put(b, "true", 4)
    if v is False:
        return _put(b, "false", 5)
    if _is_secret(v):
        return _put(b, '"***"', 5)
    try:
        data = _orjson.dumps(_redact_deep(v), default=_json_default, option=_orjson.OPT_NON_STR_KEYS)
    except Exception:
        try:
            txt = repr(v)
        except Exception:
            txt = "<unrepresentable %s>" % type(v).__name__
        return _put_str(b, txt)
    return _put_bytes(b, <bytes>data)


cdef int _put_fields(Buf* b, object d) except -1:
    # ,"k":v for each item of dict d, secrets masked, reserved names renamed "_k"
    cdef Py_ssize_t pos = 0
    cdef PyObject* k
    cdef PyObject* v
    cdef int cls
    while PyDict_Next(d, &pos, &k, &v):
        key = <object>k
        if not PyUnicode_CheckExact(key):
            key = str(key)
        cls = _classify_key(key)
        _put(b, ",", 1)
        if cls == 2:
            _put_str(b, "_" + <str>key)
        else:
            _put_str(b, key)
        if cls == 1:
            _put(b, ':"***"', 6)
        else:
            _put(b, ":", 1)
            _put_value(b, <object>v)
    return 0


cdef int _put_named(Buf* b, object name, object value) except -1:
    if name is None:
        return 0
    _put(b, ",", 1)
    _put_str(b, name)
    _put(b, ":", 1)
    if _classify_key(name) == 1:
        return _put(b, '"***"', 5)
    return _put_value(b, value)


cdef int _encode_record(Buf* b, LogRecord* r) except -1:
    cdef int32_t lid = r.logger_id
    cdef int lvl = r.level
    if lid < 0 or lid >= _n_loggers:
        lid = 0
    _put(b, '{"ts":', 6)
    _put_int(b, r.ts_ns)
    if lvl >= 50:
        _put(b, ',"level":"critical",', 20)
    elif lvl >= LVL_ERROR:
        _put(b, ',"level":"error",', 17)
    elif lvl >= LVL_WARNING:
        _put(b, ',"level":"warning",', 19)
    elif lvl >= LVL_INFO:
        _put(b, ',"level":"info",', 16)
    else:
        _put(b, ',"level":"debug",', 17)
    _put_bytes(b, <bytes>(<list>_logger_prefix)[lid])
    _put(b, ',"msg":', 7)
    _put_value(b, <object>r.msg)
    if r.kind == REC_AUDIT:
        _put(b, ',"kind":"audit"', 15)
    if r.ctx != NULL:
        _put_fields(b, <object>r.ctx)
    if r.fields != NULL:
        _put_fields(b, <object>r.fields)
    if r.kind == REC_EVENT:
        names = _event_names.get(<object>r.msg)
        if names is not None:
            _put_named(b, (<tuple>names)[0], r.i0)
            _put_named(b, (<tuple>names)[1], r.i1)
            _put_named(b, (<tuple>names)[2], r.d0)
    elif r.kind == REC_DROPS:
        _put(b, ',"dropped":', 11)
        _put_int(b, r.i0)
        _put(b, ',"dropped_total":', 17)
        _put_int(b, r.i1)
    _put(b, "}\n", 2)
    return 0


cdef inline bint _is_text(int kind) noexcept:
    return kind == REC_LOG or kind == REC_EVENT or kind == REC_AUDIT or kind == REC_DROPS


@cython.final
cdef class LogBatch:
    """Records taken out of the ring (owned). Formats each text record once, on first use."""

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self._recs != NULL:
            for i in range(self.n):
                Py_XDECREF(self._recs[i].msg)
                Py_XDECREF(self._recs[i].fields)
                Py_XDECREF(self._recs[i].ctx)
            PyMem_Free(self._recs)
            self._recs = NULL
        PyMem_Free(self._buf)
        PyMem_Free(self._offs)

    def __len__(self):
        return self.n

    cdef int _encode(self) except -1:
        cdef Buf b
        cdef Py_ssize_t i
        cdef Py_ssize_t start
        if self._encoded:
            return 0
        b.p = NULL
        b.n = 0
        b.cap = 0
        self._offs = <Py_ssize_t*>PyMem_Malloc((self.n + 1) * sizeof(Py_ssize_t))
        if self._offs == NULL:
            raise MemoryError()
        try:
            for i in range(self.n):
                self._offs[i] = b.n
                if _is_text(self._recs[i].kind):
                    start = b.n
                    try:
                        _encode_record(&b, &self._recs[i])
                    except MemoryError:
                        raise
                    except Exception as e:      # never lose the line: fall back to a minimal one
                        b.n = start
                        _put(&b, '{"ts":', 6)
                        _put_int(&b, self._recs[i].ts_ns)
                        _put(&b, ',"level":"error","msg":', 23)
                        _put_str(&b, "unencodable log record: %s: %s" % (type(e).__name__, e))
                        _put(&b, "}\n", 2)
            self._offs[self.n] = b.n
        except BaseException:
            PyMem_Free(b.p)
            raise
        self._buf = b.p
        self._buf_len = b.n
        self._encoded = True
        return 0

    cpdef bytes jsonl(self, int min_level, bint trading_only):
        """JSON Lines of the text records with level >= min_level (``trading_only``: only records of
        loggers tagged ``trading`` that are not already-written audit records)."""
        cdef Py_ssize_t i, total = 0, pos = 0, ln
        cdef LogRecord* r
        cdef int32_t lid
        self._encode()
        cdef bint all_in = not trading_only
        for i in range(self.n):
            r = &self._recs[i]
            if not _is_text(r.kind):
                continue
            if r.level < min_level:
                all_in = False
                break
        if all_in:
            return PyBytes_FromStringAndSize(self._buf, self._buf_len)
        for i in range(self.n):
            if self._want(i, min_level, trading_only):
                total += self._offs[i + 1] - self._offs[i]
        out = PyBytes_FromStringAndSize(NULL, total)
        cdef char* dst = PyBytes_AS_STRING(out)
        for i in range(self.n):
            if self._want(i, min_level, trading_only):
                ln = self._offs[i + 1] - self._offs[i]
                memcpy(dst + pos, self._buf + self._offs[i], ln)
                pos += ln
        return out

    cdef bint _want(self, Py_ssize_t i, int min_level, bint trading_only) noexcept:
        cdef LogRecord* r = &self._recs[i]
        cdef int32_t lid = r.logger_id
        if not _is_text(r.kind) or r.level < min_level:
            return False
        if trading_only:
            if r.kind == REC_AUDIT or lid < 0 or lid >= _n_loggers or not _trading[lid]:
                return False
        return True

    def line(self, Py_ssize_t i):
        """Record i's JSON line (b"" for metric records)."""
        if i < 0 or i >= self.n:
            raise IndexError(i)
        self._encode()
        return PyBytes_FromStringAndSize(self._buf + self._offs[i], self._offs[i + 1] - self._offs[i])

    def record(self, Py_ssize_t i):
        """(ts_ns, level, kind, logger_id, msg, fields) — fields: a new dict merging the logger context,
        the call's fields and the typed fields (NOT redacted; see ``redact``)."""
        if i < 0 or i >= self.n:
            raise IndexError(i)
        cdef LogRecord* r = &self._recs[i]
        fields = {}
        if r.ctx != NULL:
            fields.update(<dict>r.ctx)
        if r.fields != NULL:
            fields.update(<object>r.fields)
        if r.kind == REC_EVENT:
            names = _event_names.get(<object>r.msg)
            if names is None:
                names = ("i0", "i1", "d0")
            for nm, val in zip(<tuple>names, (r.i0, r.i1, r.d0)):
                if nm is not None:
                    fields[nm] = val
        elif r.kind == REC_DROPS:
            fields["dropped"] = r.i0
            fields["dropped_total"] = r.i1
        elif r.kind == REC_METRIC:
            fields["value"] = r.d0
        elif r.kind == REC_COUNTER or r.kind == REC_TIMER:
            fields["value"] = r.i0
        return (r.ts_ns, r.level, r.kind, r.logger_id, <object>r.msg, fields)

    def metric(self, Py_ssize_t i):
        """(kind, name, value, tags-dict-or-None) of a metric/counter/timer record."""
        if i < 0 or i >= self.n:
            raise IndexError(i)
        cdef LogRecord* r = &self._recs[i]
        tags = <object>r.fields if r.fields != NULL else None
        if r.kind == REC_METRIC:
            return (r.kind, <object>r.msg, r.d0, tags)
        return (r.kind, <object>r.msg, r.i0, tags)

    def summary(self):
        """(kind bitmask, max text level, indices of metric records, indices of trading records)."""
        cdef int mask = 0, maxlvl = 0
        cdef Py_ssize_t i
        cdef LogRecord* r
        metric_idx = []
        for i in range(self.n):
            r = &self._recs[i]
            mask |= 1 << r.kind
            if _is_text(r.kind):
                if r.level > maxlvl:
                    maxlvl = r.level
            else:
                metric_idx.append(i)
        return mask, maxlvl, metric_idx

    def kind(self, Py_ssize_t i):
        if i < 0 or i >= self.n:
            raise IndexError(i)
        return self._recs[i].kind

    def level(self, Py_ssize_t i):
        if i < 0 or i >= self.n:
            raise IndexError(i)
        return self._recs[i].level


# ------------------------------------------------------------------------------------------------
# hot histogram (C counts, read at scrape time)

@cython.final
cdef class HotHistogram:
    """Fixed-bucket histogram updated from C without any Python call; read by the metrics collector."""

    def __cinit__(self, bounds):
        cdef list bl = sorted(int(x) for x in bounds)
        cdef int i
        if not bl:
            raise ValueError("HotHistogram needs at least one bucket bound")
        self.n_bounds = len(bl)
        self._bounds = <int64_t*>PyMem_Malloc(self.n_bounds * sizeof(int64_t))
        self._counts = <uint64_t*>PyMem_Malloc((self.n_bounds + 1) * sizeof(uint64_t))
        if self._bounds == NULL or self._counts == NULL:
            raise MemoryError()
        for i in range(self.n_bounds):
            self._bounds[i] = bl[i]
        memset(self._counts, 0, (self.n_bounds + 1) * sizeof(uint64_t))

    def __dealloc__(self):
        PyMem_Free(self._bounds)
        PyMem_Free(self._counts)

    cdef void observe_c(self, int64_t value) noexcept:
        cdef int i = 0
        while i < self.n_bounds and value > self._bounds[i]:
            i += 1
        self._counts[i] += 1
        self.count += 1
        self.sum += <double>value

    def observe(self, int64_t value):
        self.observe_c(value)

    def snapshot(self):
        """(bounds, per-bucket counts incl. +Inf as the last, sum, count)."""
        cdef int i
        return ([self._bounds[i] for i in range(self.n_bounds)],
                [self._counts[i] for i in range(self.n_bounds + 1)], self.sum, self.count)


# ------------------------------------------------------------------------------------------------
# Python API: Logger, LoggingTimer

@cython.final
@cython.freelist(8)
cdef class Logger:
    """Structured, non-blocking logger. Records go into the ring; formatting happens in the flusher."""
    cdef readonly int32_t id
    cdef readonly str name
    cdef readonly tuple tags
    cdef readonly object context          # dict or None (with_context)
    cdef PyObject* _ctx                   # borrowed from self.context, or NULL

    def __init__(self):
        raise TypeError("use cexnode.log.get_logger(name, tags)")

    def debug(self, msg, /, **fields):
        if LVL_DEBUG >= _levels[self.id]:
            _active.push(LVL_DEBUG, REC_LOG, self.id, msg, <PyObject*>fields if fields else NULL,
                         self._ctx, 0, 0, 0.0)

    def info(self, msg, /, **fields):
        if LVL_INFO >= _levels[self.id]:
            _active.push(LVL_INFO, REC_LOG, self.id, msg, <PyObject*>fields if fields else NULL,
                         self._ctx, 0, 0, 0.0)

    def warning(self, msg, /, **fields):
        if LVL_WARNING >= _levels[self.id]:
            _active.push(LVL_WARNING, REC_LOG, self.id, msg, <PyObject*>fields if fields else NULL,
                         self._ctx, 0, 0, 0.0)

    def error(self, msg, /, **fields):
        if LVL_ERROR >= _levels[self.id]:
            _active.push(LVL_ERROR, REC_LOG, self.id, msg, <PyObject*>fields if fields else NULL,
                         self._ctx, 0, 0, 0.0)

    def exception(self, msg, /, **fields):
        """error() plus the current exception's traceback in field ``exc``."""
        import traceback
        if LVL_ERROR >= _levels[self.id]:
            fields["exc"] = traceback.format_exc()
            _active.push(LVL_ERROR, REC_LOG, self.id, msg, <PyObject*>fields, self._ctx, 0, 0, 0.0)

    def log(self, int level, msg, /, **fields):
        if level >= _levels[self.id]:
            _active.push(level, REC_LOG, self.id, msg, <PyObject*>fields if fields else NULL,
                         self._ctx, 0, 0, 0.0)

    def is_enabled_for(self, level):
        return level_value(level) >= _levels[self.id]

    @property
    def level(self):
        return _levels[self.id]

    def metric(self, name, value, tags=None):
        """Gauge value (Prometheus backend). ``tags``: dict of label -> value."""
        _active.push(LVL_INFO, REC_METRIC, self.id, name, <PyObject*>tags if tags else NULL, NULL,
                     0, 0, <double>value)

    def counter(self, name, int64_t n=1, tags=None):
        """Counter increment (Prometheus backend)."""
        _active.push(LVL_INFO, REC_COUNTER, self.id, name, <PyObject*>tags if tags else NULL, NULL,
                     n, 0, 0.0)

    def audit(self, event, data=None, sync=True):
        """Write an audit event to the audit file NOW and return its sequence number; raises if it
        could not be written. Also logged through the ring.

        The line is in the kernel (one write(2)) before this returns, so it survives kill -9.
        ``sync=True``: made durable per ``log.audit.fsync`` before returning. ``sync="behind"``:
        the fdatasync is started off the event loop (at its next step) and this returns at once (for the record
        written just before orders leave: the sync runs while they are in flight, and the next
        ``sync=True`` record cannot return before it, as fdatasync covers the whole file)."""
        sink = _audit_sink
        if sink is None:
            raise RuntimeError("audit log is not open: start the cexnode.log LogSystem first")
        seq = sink(self, event, data) if sync is True else sink(self, event, data, sync)
        _active.push(LVL_INFO, REC_AUDIT, self.id, event,
                     <PyObject*>data if isinstance(data, dict) and data else NULL, self._ctx, 0, 0, 0.0)
        return seq

    def with_context(self, **fields):
        """A logger with the same name/tags whose records also carry ``fields``."""
        cdef Logger lg = Logger.__new__(Logger)
        lg.id = self.id
        lg.name = self.name
        lg.tags = self.tags
        ctx = dict(self.context) if self.context else {}
        ctx.update(fields)
        lg.context = ctx
        lg._ctx = <PyObject*>ctx if ctx else NULL
        return lg

    def child(self, suffix, tags=()):
        """Logger ``<name>.<suffix>`` with this logger's tags + ``tags`` (and its context)."""
        cdef Logger base = get_logger(self.name + "." + str(suffix), self.tags + tuple(tags))
        if self.context:
            return base.with_context(**self.context)
        return base

    def timer(self, name, tags=None):
        """Context manager timing a block; records a REC_TIMER (μs histogram in Prometheus)."""
        cdef LoggingTimer t = LoggingTimer.__new__(LoggingTimer)
        t.logger = self
        t.name = name
        t.tags = tags
        return t

    def __repr__(self):
        return "<Logger %s id=%d tags=%r>" % (self.name, self.id, self.tags)


@cython.final
@cython.freelist(8)
cdef class LoggingTimer:
    """``with log.timer("place_order"):`` — duration recorded on exit; failures also logged as errors."""
    cdef readonly Logger logger
    cdef readonly object name
    cdef object tags
    cdef int64_t _t0
    cdef int64_t _t1

    def __enter__(self):
        self._t1 = 0
        self._t0 = _mono_ns()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._t1 = _mono_ns()
        cdef int64_t d = self._t1 - self._t0
        _active.push(LVL_INFO, REC_TIMER, self.logger.id, self.name,
                     <PyObject*>self.tags if self.tags else NULL, NULL, d, 0, 0.0)
        if exc_type is not None:
            self.logger.error(str(self.name) + " failed", duration_us=d / 1000.0,
                              exception="%s: %s" % (exc_type.__name__, exc))
        return False

    @property
    def elapsed_ns(self):
        if self._t0 == 0:
            return 0
        return (self._t1 if self._t1 else _mono_ns()) - self._t0

    @property
    def elapsed_us(self):
        return self.elapsed_ns / 1000.0


# ------------------------------------------------------------------------------------------------
# C-level API

cdef bint log_enabled(int level, int32_t logger_id) noexcept:
    CEXNODE_ASSERT(0 <= logger_id < _n_loggers)
    return <unsigned>logger_id < <unsigned>_n_loggers and level >= _levels[logger_id]


cdef int log_event(int level, int32_t logger_id, object msg, int64_t i0, int64_t i1, double d0) noexcept:
    CEXNODE_ASSERT(0 <= logger_id < _n_loggers)
    if <unsigned>logger_id >= <unsigned>_n_loggers or level < _levels[logger_id]:
        return 0
    return _active.push(level, REC_EVENT, logger_id, msg, NULL, NULL, i0, i1, d0)


cdef int log_counter(int32_t logger_id, object name, int64_t n) noexcept:
    return _active.push(LVL_INFO, REC_COUNTER, logger_id, name, NULL, NULL, n, 0, 0.0)


def emit_event(int level, int32_t logger_id, msg, int64_t i0=0, int64_t i1=0, double d0=0.0):
    """Python access to the C-level ``log_event`` (tests)."""
    return log_event(level, logger_id, msg, i0, i1, d0)


def bench_log_event(int32_t logger_id, msg, Py_ssize_t batches, Py_ssize_t per_batch):
    """ns per ``log_event`` call (one sample per batch of ``per_batch`` calls, from a Cython loop).

    Uses a private ring (sized to hold a batch) made active for the duration; drained between
    batches outside the timed region."""
    global _active
    cdef uint64_t cap = 2
    while cap < <uint64_t>per_batch:
        cap *= 2
    cdef LogRing ring = LogRing(cap)
    cdef LogRing saved = _active
    cdef Py_ssize_t b, i
    cdef int64_t t0, t1
    samples = []
    _active = ring
    try:
        for b in range(batches):
            t0 = _mono_ns()
            for i in range(per_batch):
                log_event(LVL_INFO, logger_id, msg, i, b, 1.5)
            t1 = _mono_ns()
            samples.append((t1 - t0) / <double>per_batch)
            ring.drain(0)
    finally:
        _active = saved
    return samples


# module init: the boot ring (records logged before setup() are kept and flushed once it starts)
_active = LogRing(65536)
get_logger("cexnode.log", ("log",))

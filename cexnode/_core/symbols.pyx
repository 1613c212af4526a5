"""Unified symbols, per-venue symbol maps and instrument specs (see symbols.pxd, the contract).

Symbols are interned process-wide: ``get_symbol("BTC/USDT")`` always returns the same object, with a
small dense ``id`` usable as a C array index. A :class:`SymbolRegistry` is loaded with neutral
instrument specs (plain dicts: read from each venue's REST listing by the venue's package,
``cexnode.adapters.<venue>.instruments``, or given in the config), then frozen: freezing fixes one
price_scale and one qty_scale per economic instrument (``BTC/USDT`` and ``BTC/USDT:USDT`` share them)
and builds one :class:`SymbolMap` per venue.

The core names no venue: the registry takes the venues (name, id, market kind) from its caller, by
default the node's venue registry (:mod:`cexnode.adapters.registry`, read once at construction).
"""
import decimal
import json

cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcmp, memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.unicode cimport PyUnicode_AsUTF8AndSize

cdef extern from "cexnode_debug.h":
    void CEXNODE_ASSERT(bint) nogil

cdef int _MAX_SCALE = 18           # fixedpoint.MAX_SCALE

globals().update(MAX_VENUES=<int>MAX_VENUES)


def check_venue_id(venue_id, name=None):
    """``venue_id`` as an int when it fits the core's per-venue arrays (0..MAX_VENUES-1); else
    ValueError naming the venue. Every constructor that takes a venue id calls it, so a venue the
    arrays cannot hold is refused when the node is wired, never per message."""
    if isinstance(venue_id, bool) or not isinstance(venue_id, int) or not 0 <= venue_id < MAX_VENUES:
        raise ValueError("venue id %r%s is outside 0..%d (the core's capacity, symbols.MAX_VENUES)"
                         % (venue_id, "" if name is None else " of venue %r" % name, MAX_VENUES - 1))
    return int(venue_id)


# --------------------------------------------------------------------------------------------------
# Symbols (interned)

cdef dict _SYMBOLS = {}          # name -> Symbol
cdef list _SYMBOLS_BY_ID = []    # id -> Symbol
cdef list _ID_OBJS = []          # id -> its Python int, made once: id_of() returns it without allocating
cdef object _TOKEN = object()


def _check_part(str what, str part, str name):
    if not part or any(c in part for c in "/: \t\r\n"):
        raise ValueError("bad unified symbol %r: %s %r must be non-empty, without '/', ':' or spaces"
                         % (name, what, part))


@cython.final
cdef class Symbol:
    """A unified instrument name: ``BASE/QUOTE`` (spot) or ``BASE/QUOTE:SETTLE`` (perpetual).

    Interned: create with :func:`get_symbol`; ``is`` comparison is identity of instruments.
    """

    def __cinit__(self, token, int32_t id, str name, str base, str quote, settle):
        if token is not _TOKEN:
            raise TypeError("Symbol objects are interned: use cexnode._core.symbols.get_symbol(name)")
        self.id = id
        self.name = name
        self.base = base
        self.quote = quote
        self.settle = settle
        self.is_perp = settle is not None

    @property
    def spot_name(self):
        """``BASE/QUOTE``: the economic instrument the spot and perp books share scales by."""
        return self.base + "/" + self.quote

    def __repr__(self):
        return "Symbol(%r, id=%d)" % (self.name, self.id)

    def __str__(self):
        return self.name

    def __reduce__(self):
        return (get_symbol, (self.name,))


def get_symbol(str name):
    """The interned :class:`Symbol` for ``"BTC/USDT"`` or ``"BTC/USDT:USDT"`` (created on first use)."""
    cdef Symbol sym = _SYMBOLS.get(name)
    if sym is not None:
        return sym
    head, sep, settle = name.partition(":")
    base, slash, quote = head.partition("/")
    if not slash:
        raise ValueError("bad unified symbol %r: expected BASE/QUOTE or BASE/QUOTE:SETTLE" % name)
    _check_part("base", base, name)
    _check_part("quote", quote, name)
    if sep:
        _check_part("settle", settle, name)
    sym = Symbol(_TOKEN, len(_SYMBOLS_BY_ID), name, base, quote, settle if sep else None)
    _SYMBOLS[name] = sym
    _SYMBOLS_BY_ID.append(sym)
    _ID_OBJS.append(sym.id)
    return sym


def symbol_from_parts(str base, str quote, settle=None):
    """Interned symbol from its parts: ``symbol_from_parts("BTC", "USDT", "USDT")`` -> BTC/USDT:USDT."""
    return get_symbol(base + "/" + quote + ("" if settle is None else ":" + settle))


def symbol_by_id(int32_t symbol_id):
    """The interned symbol with this id; KeyError when no such id."""
    if 0 <= symbol_id < len(_SYMBOLS_BY_ID):
        return _SYMBOLS_BY_ID[symbol_id]
    raise KeyError(symbol_id)


def symbol_count():
    """Number of symbols interned so far (ids are 0 .. symbol_count()-1)."""
    return len(_SYMBOLS_BY_ID)


# --------------------------------------------------------------------------------------------------
# SymbolMap: venue string <-> instrument, C hash table

# The hash is modular (wrapping) 64-bit arithmetic by design, written in C so that the debug
# build's overflow checks do not flag the intended wraparound.
# Word-at-a-time (wyhash-style loads): full 8-byte words, then the last 8 bytes (overlapping) or
# two overlapping 4-byte loads for short strings; multiply-xorshift per word, splitmix64 finaliser.
# Venue strings are short (BTCUSDT, BTC_USDT): one or two multiplies, no per-byte dependency chain.
# The value depends on the host's byte order; it is only ever compared within one process.
cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline uint64_t cexnode_venue_hash(const char* p, Py_ssize_t n) {
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n, w;
        uint32_t lo, hi;
        Py_ssize_t i = 0;
        if (n >= 8) {
            for (; i + 8 < n; i += 8) {
                memcpy(&w, p + i, 8);
                h = (h ^ w) * 0x94d049bb133111ebULL;
                h ^= h >> 32;
            }
            memcpy(&w, p + n - 8, 8);
        } else if (n >= 4) {
            memcpy(&lo, p, 4);
            memcpy(&hi, p + n - 4, 4);
            w = (uint64_t)lo | ((uint64_t)hi << 32);
        } else {
            w = 0;
            for (; i < n; i++) w = (w << 8) | (unsigned char)p[i];
        }
        h = (h ^ w) * 0x94d049bb133111ebULL;
        h ^= h >> 32;
        h ^= h >> 31;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        return h;
    }
    """
    uint64_t cexnode_venue_hash(const char* p, Py_ssize_t n) noexcept nogil


cdef uint64_t venue_name_hash(const char* p, Py_ssize_t n) noexcept nogil:
    return cexnode_venue_hash(p, n)


cdef inline const char* _key_chars(object key, Py_ssize_t* n) except? NULL:
    if type(key) is str:
        return PyUnicode_AsUTF8AndSize(key, n)
    if type(key) is bytes:
        n[0] = PyBytes_GET_SIZE(key)
        return PyBytes_AS_STRING(key)
    raise TypeError("venue symbol must be str or bytes, not %s" % type(key).__name__)


@cython.final
cdef class SymbolMap:
    """Venue string <-> unified symbol and :class:`Instrument` spec, for one venue.

    Built by :meth:`SymbolRegistry.freeze`; immutable afterwards.
    """

    def __cinit__(self):
        self._slots = NULL
        self._insts = NULL
        self._by_id = NULL
        self._name_ptrs = NULL
        self._name_lens = NULL
        self._n_insts = 0
        self._n_ids = 0
        self._mask = 0
        self._name_bytes = []
        self._name_str = []
        self._str_by_id = []
        self._bytes_by_id = []
        self._symbols = []

    def __dealloc__(self):
        PyMem_Free(self._slots)
        PyMem_Free(self._insts)
        PyMem_Free(self._by_id)
        PyMem_Free(self._name_ptrs)
        PyMem_Free(self._name_lens)

    def __init__(self, venue, entries=(), int32_t n_ids=-1, str name=None):
        """``venue``: the venue id (0..MAX_VENUES-1); ``name``: the venue's name (reports; default
        ``"venue <id>"``). ``entries``: iterable of ``(venue_symbol: str, symbol: Symbol, spec:
        dict)``; spec keys are the :class:`Instrument` fields except symbol_id and venue. Normally
        built by the registry."""
        cdef Py_ssize_t cap = 8, i, k
        cdef uint64_t h
        cdef Instrument* ins
        cdef Symbol sym
        cdef bytes b
        self.venue = check_venue_id(venue, name)
        self.venue_label = name if name is not None else "venue %d" % self.venue
        entries = list(entries)
        if n_ids < 0:
            n_ids = len(_SYMBOLS_BY_ID)
        while cap < 2 * len(entries):
            cap *= 2
        self._slots = <_NameSlot*>PyMem_Malloc(cap * sizeof(_NameSlot))
        self._insts = <Instrument*>PyMem_Malloc(max(1, len(entries)) * sizeof(Instrument))
        self._by_id = <int32_t*>PyMem_Malloc(max(1, n_ids) * sizeof(int32_t))
        self._name_ptrs = <const char**>PyMem_Malloc(max(1, len(entries)) * sizeof(char*))
        self._name_lens = <Py_ssize_t*>PyMem_Malloc(max(1, len(entries)) * sizeof(Py_ssize_t))
        if (self._slots == NULL or self._insts == NULL or self._by_id == NULL
                or self._name_ptrs == NULL or self._name_lens == NULL):
            raise MemoryError()
        self._mask = <uint64_t>(cap - 1)
        for i in range(cap):
            self._slots[i].inst = -1
            self._slots[i].hash = 0
            self._slots[i].name = NULL
            self._slots[i].n = 0
        for i in range(n_ids):
            self._by_id[i] = -1
        self._n_ids = n_ids
        self._str_by_id = [None] * n_ids
        self._bytes_by_id = [None] * n_ids
        for name, sym, spec in entries:
            if not isinstance(name, str) or not name:
                raise ValueError("venue symbol must be a non-empty str, got %r" % (name,))
            if sym.id >= n_ids:
                raise ValueError("symbol %s (id %d) was interned after this map's id range" % (sym, sym.id))
            b = name.encode("utf-8")
            if self.find(b, len(b)) != NULL:
                raise ValueError("duplicate venue symbol %r on %s" % (name, self.venue_label))
            if self._by_id[sym.id] != -1:
                raise ValueError("%s listed twice on %s (%r and %r)"
                                 % (sym, self.venue_label, self._str_by_id[sym.id], name))
            k = self._n_insts
            ins = &self._insts[k]
            ins.symbol_id = sym.id
            ins.venue = self.venue
            ins.price_scale = spec["price_scale"]
            ins.qty_scale = spec["qty_scale"]
            ins.venue_qty_scale = spec["venue_qty_scale"]
            ins.qty_mult = spec["qty_mult"]
            ins.tick = spec["tick"]
            ins.step = spec["step"]
            ins.min_qty = spec["min_qty"]
            ins.min_notional = spec["min_notional"]
            ins.tradable = spec["tradable"]
            self._n_insts += 1
            self._name_bytes.append(b)
            self._name_ptrs[k] = PyBytes_AS_STRING(b)
            self._name_lens[k] = PyBytes_GET_SIZE(b)
            self._name_str.append(name)
            self._symbols.append(sym)
            self._by_id[sym.id] = <int32_t>k
            self._str_by_id[sym.id] = name
            self._bytes_by_id[sym.id] = b
            h = venue_name_hash(PyBytes_AS_STRING(b), len(b))
            i = <Py_ssize_t>(h & self._mask)
            while self._slots[i].inst != -1:
                i = <Py_ssize_t>((i + 1) & self._mask)
            self._slots[i].hash = h
            self._slots[i].name = PyBytes_AS_STRING(b)
            self._slots[i].n = len(b)
            self._slots[i].inst = <int32_t>k

    # ---- C API --------------------------------------------------------------------------------
    cdef const Instrument* find(self, const char* name, Py_ssize_t n) noexcept:
        cdef uint64_t h = venue_name_hash(name, n)
        cdef uint64_t i = h & self._mask
        cdef _NameSlot* s
        if self._slots == NULL:
            return NULL
        while True:
            s = &self._slots[i]
            if s.inst == -1:
                return NULL
            if s.hash == h and s.n == n and memcmp(s.name, name, <size_t>n) == 0:
                return &self._insts[s.inst]
            i = (i + 1) & self._mask

    cdef const Instrument* by_id(self, int32_t symbol_id) noexcept:
        cdef int32_t k
        if symbol_id < 0 or symbol_id >= self._n_ids:
            return NULL
        k = self._by_id[symbol_id]
        if k < 0:
            return NULL
        return &self._insts[k]

    cdef const char* venue_name(self, int32_t symbol_id, Py_ssize_t* n) noexcept:
        cdef int32_t k
        if symbol_id < 0 or symbol_id >= self._n_ids:
            return NULL
        k = self._by_id[symbol_id]
        if k < 0:
            return NULL
        n[0] = self._name_lens[k]
        return self._name_ptrs[k]

    cpdef bint extends(self, SymbolMap older):
        """True when this map is ``older`` or a newer map of the same venue: it lists every
        instrument of ``older`` under the same venue string and symbol id with the same numbers
        (what :meth:`SymbolRegistry.extend` guarantees; a parser's set_symbols checks it)."""
        cdef int32_t k, j
        cdef const Instrument* a
        cdef const Instrument* b
        if older is None or older.venue != self.venue:
            return False
        for k in range(older._n_insts):
            a = &older._insts[k]
            b = self.by_id(a.symbol_id)
            if b == NULL:
                return False
            if (a.price_scale != b.price_scale or a.qty_scale != b.qty_scale
                    or a.venue_qty_scale != b.venue_qty_scale or a.qty_mult != b.qty_mult
                    or a.tick != b.tick or a.step != b.step or a.min_qty != b.min_qty
                    or a.min_notional != b.min_notional or a.tradable != b.tradable):
                return False
            j = self._by_id[a.symbol_id]
            if (older._name_lens[k] != self._name_lens[j]
                    or memcmp(older._name_ptrs[k], self._name_ptrs[j], older._name_lens[k]) != 0):
                return False
        return True

    # ---- Python API ---------------------------------------------------------------------------
    def id_of(self, name):
        """Venue string (str or bytes) -> symbol id; KeyError when the venue does not list it."""
        cdef Py_ssize_t n = 0
        cdef const char* p = _key_chars(name, &n)
        cdef const Instrument* ins = self.find(p, n)
        if ins == NULL:
            raise KeyError(name)
        return _ID_OBJS[ins.symbol_id]         # cached int (ids above 256 would allocate otherwise)

    def name_of(self, int32_t symbol_id):
        """Symbol id -> venue string; KeyError when the venue does not list it."""
        cdef object s
        if 0 <= symbol_id < self._n_ids:
            s = self._str_by_id[symbol_id]
            if s is not None:
                return s
        raise KeyError(symbol_id)

    def get(self, name, default=None):
        """Venue string -> :class:`Symbol`, or ``default`` when unknown."""
        cdef Py_ssize_t n = 0
        cdef const char* p = _key_chars(name, &n)
        cdef const Instrument* ins = self.find(p, n)
        if ins == NULL:
            return default
        return self._symbols[self._by_id[ins.symbol_id]]

    def symbol(self, name):
        """Venue string -> :class:`Symbol`; KeyError when unknown."""
        sym = self.get(name)
        if sym is None:
            raise KeyError(name)
        return sym

    def venue_symbol(self, symbol):
        """:class:`Symbol`, unified name or id -> venue string; KeyError when not listed."""
        return self.name_of(_symbol_id(symbol))

    def instrument(self, key):
        """Instrument spec as a dict. ``key``: venue string (str/bytes), :class:`Symbol`, or symbol id."""
        cdef const Instrument* ins
        cdef Py_ssize_t n = 0
        cdef const char* p
        if isinstance(key, (str, bytes)) and not (isinstance(key, str) and "/" in key):
            p = _key_chars(key, &n)
            ins = self.find(p, n)
        else:
            ins = self.by_id(_symbol_id(key))
        if ins == NULL:
            raise KeyError(key)
        k = self._by_id[ins.symbol_id]
        return {
            "symbol": self._symbols[k].name, "symbol_id": ins.symbol_id, "venue": self.venue_label,
            "venue_symbol": self._name_str[k], "price_scale": ins.price_scale, "qty_scale": ins.qty_scale,
            "venue_qty_scale": ins.venue_qty_scale, "qty_mult": ins.qty_mult, "tick": ins.tick,
            "step": ins.step, "min_qty": ins.min_qty, "min_notional": ins.min_notional,
            "tradable": bool(ins.tradable),
        }

    def venue_symbols(self):
        """All venue strings, in load order."""
        return list(self._name_str)

    def symbols(self):
        """All unified symbols listed, in load order."""
        return list(self._symbols)

    def __len__(self):
        return self._n_insts

    def __contains__(self, name):
        cdef Py_ssize_t n = 0
        cdef const char* p
        if not isinstance(name, (str, bytes)):
            return False
        p = _key_chars(name, &n)
        return self.find(p, n) != NULL

    def __repr__(self):
        return "SymbolMap(%s, %d instruments)" % (self.venue_label, self._n_insts)

    def bench_find(self, list names, Py_ssize_t repeats):
        """Benchmark helper: C-level ``find`` over ``names`` (bytes), ``repeats`` times.

        Returns ``(lookups, hits)``; the caller times the call.
        """
        cdef Py_ssize_t nn = len(names), r, k, hits = 0
        cdef const char** ptrs = <const char**>PyMem_Malloc(max(1, nn) * sizeof(char*))
        cdef Py_ssize_t* lens = <Py_ssize_t*>PyMem_Malloc(max(1, nn) * sizeof(Py_ssize_t))
        cdef bytes b
        if ptrs == NULL or lens == NULL:
            PyMem_Free(ptrs)
            PyMem_Free(lens)
            raise MemoryError()
        try:
            for k in range(nn):
                b = names[k]
                ptrs[k] = PyBytes_AS_STRING(b)
                lens[k] = PyBytes_GET_SIZE(b)
            for r in range(repeats):
                for k in range(nn):
                    if self.find(ptrs[k], lens[k]) != NULL:
                        hits += 1
        finally:
            PyMem_Free(ptrs)
            PyMem_Free(lens)
        return nn * repeats, hits

    def bench_venue_name(self, list ids, Py_ssize_t repeats):
        """Benchmark helper: C-level ``venue_name`` over symbol ids; returns ``(lookups, total_len)``."""
        cdef Py_ssize_t nn = len(ids), r, k, total = 0, n = 0
        cdef int32_t* arr = <int32_t*>PyMem_Malloc(max(1, nn) * sizeof(int32_t))
        if arr == NULL:
            raise MemoryError()
        try:
            for k in range(nn):
                arr[k] = ids[k]
            for r in range(repeats):
                for k in range(nn):
                    if self.venue_name(arr[k], &n) != NULL:
                        total += n
        finally:
            PyMem_Free(arr)
        return nn * repeats, total


def _symbol_id(key):
    if isinstance(key, Symbol):
        return (<Symbol>key).id
    if isinstance(key, str):
        sym = _SYMBOLS.get(key)
        if sym is None:
            raise KeyError(key)
        return (<Symbol>sym).id
    if isinstance(key, int):
        return key
    raise TypeError("expected Symbol, unified name or id, not %s" % type(key).__name__)


# --------------------------------------------------------------------------------------------------
# Registry (cold path: plain Python with exact Decimal arithmetic)

_D = decimal.Decimal
_ZERO = _D(0)


def spec_decimal(value, what):
    """Exact Decimal of a venue number (str, int or JSON float given as text); None stays None.

    ValueError (naming ``what``) for anything else, a non-finite or a negative number. The venue
    instrument readers use it for the fields of their REST listings, the registry for specs."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("%s: expected a number, got %r" % (what, value))
    if isinstance(value, float):
        value = repr(value)
    try:
        d = _D(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError("%s: not a decimal number: %r" % (what, value)) from None
    if not d.is_finite() or d < 0:
        raise ValueError("%s: expected a finite non-negative number, got %r" % (what, value))
    return d


def decimals_of(d):
    """Number of decimals needed to write Decimal ``d`` exactly (0 for integers and None)."""
    if d is None or d == 0:
        return 0
    e = d.normalize().as_tuple().exponent
    return -e if e < 0 else 0


def spec_decimal_places(value, what):
    """An integer number of decimals 0..18 (int or its text); ValueError naming ``what`` otherwise."""
    if isinstance(value, bool) or value is None:
        raise ValueError("%s: expected an integer number of decimals, got %r" % (what, value))
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError("%s: expected an integer number of decimals, got %r" % (what, value)) from None
    if str(v) != str(value).strip() or not 0 <= v <= _MAX_SCALE:
        raise ValueError("%s: expected an integer 0..%d, got %r" % (what, _MAX_SCALE, value))
    return v


def load_json(obj):
    """A REST payload as given (parsed JSON) or parsed from its text (str/bytes)."""
    if isinstance(obj, (str, bytes, bytearray)):
        return json.loads(obj)
    return obj


def rejection_reason(exc):
    """The reason recorded in :attr:`SymbolRegistry.rejected` for an instrument that raised ``exc``."""
    return ("missing field %s" % exc) if isinstance(exc, KeyError) else str(exc)


_dec = spec_decimal
_decimals = decimals_of
_int_decimals = spec_decimal_places


def _mantissa(d, int scale, bint round_up=False):
    """Exact int mantissa of Decimal ``d`` at ``scale``; rounds up only when asked (minimums)."""
    m = d.scaleb(scale, decimal.Context(prec=200))
    i = int(m.to_integral_value(rounding=decimal.ROUND_CEILING if round_up else decimal.ROUND_FLOOR))
    if not round_up and i != m:
        raise ValueError("%s is not representable at scale %d" % (d, scale))
    if not -(2 ** 63) <= i < 2 ** 63:
        raise ValueError("%s overflows int64 at scale %d" % (d, scale))
    return i


def registered_venues():
    """The node's venues (:func:`cexnode.adapters.registry.descriptors`): the default of
    :class:`SymbolRegistry` and ``ArbEngine`` when their caller names none."""
    # Imported here, not at module level: the venue registry's packages import this module
    # (adapters -> core); the core reads the registry only when a caller leaves the venues out.
    from cexnode.adapters.registry import descriptors
    return descriptors()


_MARKETS = ("spot", "perpetual")
_SPEC_FIELDS = ("symbol", "tick", "qty_step", "min_qty", "min_notional", "quanto", "venue_qty_dec", "tradable")


def _spec_changes(old, new):
    """What differs between two parsed specs of one (venue, venue_symbol): "" when nothing."""
    return ", ".join("%s %s (was %s)" % (k, new[k], old[k]) for k in _SPEC_FIELDS if new[k] != old[k])


class SymbolRegistry:
    """Builds the per-venue :class:`SymbolMap` objects from instrument specs, then freezes.

    Parameters
    ----------
    venues : iterable of venue descriptors, optional
        The venues instruments may be listed on: objects with ``name``, ``venue_id`` (0..MAX_VENUES-1)
        and ``market`` (``"spot"`` lists BASE/QUOTE, ``"perpetual"`` BASE/QUOTE:SETTLE), such as
        :class:`cexnode.adapters.descriptor.VenueDescriptor`. Default: the node's venue registry.
    qty_headroom : int
        Extra decimals added to each spot instrument's quantity precision when choosing the shared
        qty_scale, so that book quantities finer than the order step still parse exactly (a venue
        may push such sizes). Default 2.
    price_headroom : int
        Extra decimals added to every tick's decimals for price_scale. Default 0.

    Notes
    -----
    Instruments come as neutral specs (:meth:`add_instrument`): given in the config, or read from a
    venue's REST listing by the venue's package (``cexnode.adapters.<venue>.instruments``), whose
    rows map to symbols from the venue's own fields, never by guessing. :meth:`add_listing` loads
    such a listing: instruments that cannot be loaded are skipped and listed in :attr:`rejected` as
    ``(venue, venue_symbol, reason)``.
    """

    def __init__(self, venues=None, *, qty_headroom=2, price_headroom=0):
        self.qty_headroom = int(qty_headroom)
        self.price_headroom = int(price_headroom)
        self._names = {}          # venue id -> name
        self._ids = {}            # venue name -> id
        self._spot = {}           # venue id -> True for a spot venue, False for a perpetual one
        for d in (registered_venues() if venues is None else venues):
            vid = check_venue_id(d.venue_id, d.name)
            if d.market not in _MARKETS:
                raise ValueError("venue %r: market %r is not one of %s" % (d.name, d.market, ", ".join(_MARKETS)))
            if vid in self._names or d.name in self._ids:
                raise ValueError("venue %r (id %d) is given twice or its id is taken" % (d.name, vid))
            self._names[vid] = d.name
            self._ids[d.name] = vid
            self._spot[vid] = d.market == "spot"
        self._specs = {}          # (venue_id, venue_symbol) -> spec dict (Decimals)
        self._listed = {}         # (venue_id, symbol id) -> venue_symbol
        self._entries = None      # venue id -> [map entry] once frozen (extend appends)
        self._maps = None         # venue id -> SymbolMap once frozen
        self._scales = {}         # (base, quote) -> (price_scale, qty_scale)
        self.rejected = []

    # ---- venues -------------------------------------------------------------------------------
    def venue_id(self, venue):
        """The id of ``venue`` (its name, or an id that is one of this registry's venues); ValueError
        naming the known venues otherwise."""
        if isinstance(venue, int) and not isinstance(venue, bool):
            if venue in self._names:
                return int(venue)
        elif venue in self._ids:
            return self._ids[venue]
        raise ValueError("unknown venue %r (expected one of %s)" % (venue, ", ".join(self._ids)))

    def venue_names(self):
        """``{venue id: name}`` of the registry's venues (what ``ArbEngine(venue_names=...)`` takes)."""
        return dict(self._names)

    # ---- loading ------------------------------------------------------------------------------
    def _check_open(self):
        if self._maps is not None:
            raise RuntimeError("SymbolRegistry is frozen; load instruments before freeze() (or extend())")

    def _check_new(self, spec):
        """ValueError when ``spec`` (a parsed spec) collides with a loaded instrument."""
        venue, vs, sym = spec["venue"], spec["venue_symbol"], spec["symbol"]
        if (venue, vs) in self._specs:
            raise ValueError("duplicate venue symbol %r on %s" % (vs, self._names[venue]))
        listed = self._listed.get((venue, (<Symbol>sym).id))
        if listed is not None:
            raise ValueError("%s already listed on %s as %r" % (sym.name, self._names[venue], listed))

    def _insert(self, spec):
        self._specs[(spec["venue"], spec["venue_symbol"])] = spec
        self._listed[(spec["venue"], (<Symbol>spec["symbol"]).id)] = spec["venue_symbol"]

    def _parse(self, spec):
        """A spec as :meth:`add_instrument` takes it -> the registry's parsed spec (Decimals);
        ValueError on bad input. Reads no loaded instrument."""
        spec = dict(spec)
        unknown = set(spec) - {"venue", "symbol", "venue_symbol", "tick", "qty_step", "min_qty",
                               "min_notional", "quanto_multiplier", "size_decimals", "tradable"}
        if unknown:
            raise ValueError("unknown instrument keys: %s" % ", ".join(sorted(unknown)))
        for k in ("venue", "symbol", "venue_symbol", "tick", "qty_step"):
            if k not in spec:
                raise ValueError("instrument needs %r" % k)
        venue = self.venue_id(spec["venue"])
        sym = get_symbol(spec["symbol"])
        vs = spec["venue_symbol"]
        if not isinstance(vs, str) or not vs:
            raise ValueError("venue_symbol must be a non-empty string")
        is_spot = self._spot[venue]
        if is_spot == sym.is_perp:
            raise ValueError("%s is %s but %s is a %s venue" % (sym.name, "a perpetual" if sym.is_perp else "spot",
                             self._names[venue], "spot" if is_spot else "perpetual"))
        step = _dec(spec["qty_step"], "qty_step")
        if is_spot:
            if "quanto_multiplier" in spec or "size_decimals" in spec:
                raise ValueError("quanto_multiplier/size_decimals apply to perpetual venues only")
            quanto, vdec = None, None
        else:
            quanto = _dec(spec.get("quanto_multiplier", 1), "quanto_multiplier")
            vdec = _int_decimals(spec.get("size_decimals", _decimals(step)), "size_decimals")
            if _decimals(step) > vdec:
                raise ValueError("qty_step %s has more decimals than size_decimals %d" % (step, vdec))
        tradable = spec.get("tradable", True)
        if not isinstance(tradable, bool):
            raise ValueError("tradable must be true/false")
        tick = _dec(spec["tick"], "tick")
        if tick is None or tick <= 0:
            raise ValueError("tick must be > 0")
        if step is None or step <= 0:
            raise ValueError("quantity step must be > 0")
        if quanto is not None and quanto <= 0:
            raise ValueError("quanto_multiplier must be > 0")
        return dict(symbol=sym, venue=venue, venue_symbol=vs, tick=tick, qty_step=step,
                    min_qty=_dec(spec.get("min_qty"), "min_qty") or _ZERO,
                    min_notional=_dec(spec.get("min_notional"), "min_notional") or _ZERO, quanto=quanto,
                    venue_qty_dec=vdec, tradable=bool(tradable), is_spot=is_spot)

    def add_listing(self, entries):
        """Load instruments read from a venue's REST listing; returns the number added.

        ``entries``, in listing order: an instrument spec (a dict as :meth:`add_instrument` takes)
        per row the venue's reader could read, or ``(venue, venue_symbol, reason)`` for a row it
        could not. A spec the registry refuses (duplicate, zero tick, ...) is skipped too; both are
        recorded in :attr:`rejected`, and the rest of the listing loads.
        """
        self._check_open()
        added = 0
        for entry in entries:
            if isinstance(entry, tuple):
                venue, vs, reason = entry
                self.rejected.append((self._names.get(venue, venue), vs, reason))
                continue
            try:
                self.add_instrument(entry)
            except (ValueError, KeyError, TypeError) as e:
                venue = entry.get("venue")
                self.rejected.append((self._names.get(venue, venue), entry.get("venue_symbol", "?"),
                                      rejection_reason(e)))
            else:
                added += 1
        return added

    def add_instrument(self, spec):
        """Add one instrument given explicitly (configs, replay, a venue's listing). Raises
        ValueError on bad input.

        ``{"venue": "<perpetual venue>", "symbol": "BTC/USDT:USDT", "venue_symbol": "BTC_USDT",
        "tick": "0.1", "qty_step": "1", "min_qty": "1", "min_notional": "0",
        "quanto_multiplier": "0.0001", "size_decimals": 0, "tradable": true}``

        ``venue`` is the venue's name or id. Sizes (``qty_step``, ``min_qty``) are in venue units:
        base for spot, contracts on a perpetual venue. ``quanto_multiplier`` (base per contract)
        and ``size_decimals`` apply to perpetual venues only (``size_decimals`` defaults to the
        decimals of ``qty_step``). ``min_notional`` is quote.
        """
        self._check_open()
        parsed = self._parse(spec)
        self._check_new(parsed)
        self._insert(parsed)

    def add_instruments(self, specs):
        for s in specs:
            self.add_instrument(s)

    # ---- freezing -----------------------------------------------------------------------------
    def _needs(self, spec):
        """``(price_scale, qty_scale)`` this one instrument asks of its economic instrument."""
        ps = _decimals(spec["tick"]) + self.price_headroom
        if spec["is_spot"]:
            return ps, _decimals(spec["qty_step"]) + self.qty_headroom
        return ps, spec["venue_qty_dec"] + _decimals(spec["quanto"])

    def _group_scales(self, key, members):
        ps = qs = 0
        for m in members:
            p, q = self._needs(m)
            ps, qs = max(ps, p), max(qs, q)
        if ps > _MAX_SCALE or qs > _MAX_SCALE:
            raise ValueError("%s/%s needs scales (%d, %d) beyond %d decimals" % (key + (ps, qs, _MAX_SCALE)))
        return ps, qs

    def _converted(self, spec):
        """The map entry ``(venue_symbol, Symbol, Instrument fields)`` of a spec at its group's scales."""
        sym = spec["symbol"]
        ps, qs = self._scales[(sym.base, sym.quote)]
        if spec["is_spot"]:
            vqs, mult, unit = qs, 1, _D(1)
        else:
            vqs = spec["venue_qty_dec"]
            mult = _mantissa(spec["quanto"], qs - vqs)
            unit = spec["quanto"]
        out = dict(price_scale=ps, qty_scale=qs, venue_qty_scale=vqs, qty_mult=mult,
                   tick=_mantissa(spec["tick"], ps),
                   step=_mantissa(spec["qty_step"] * unit, qs),
                   min_qty=_mantissa(spec["min_qty"] * unit, qs, True),
                   min_notional=_mantissa(spec["min_notional"], ps, True),
                   tradable=spec["tradable"])
        return (spec["venue_symbol"], sym, out)

    def freeze(self):
        """Fix the shared scales per economic instrument and build the venue maps. Idempotent."""
        if self._maps is not None:
            return self
        groups = {}
        for spec in self._specs.values():
            sym = spec["symbol"]
            groups.setdefault((sym.base, sym.quote), []).append(spec)
        for key, members in groups.items():
            self._scales[key] = self._group_scales(key, members)
        per_venue = {v: [] for v in self._names}
        for spec in self._specs.values():
            per_venue[spec["venue"]].append(self._converted(spec))
        n_ids = len(_SYMBOLS_BY_ID)
        self._entries = per_venue
        self._maps = {v: SymbolMap(v, per_venue[v], n_ids, self._names[v]) for v in self._names}
        return self

    def extend(self, entries):
        """Add instruments listed after :meth:`freeze` (a re-read listing); returns ``{venue id:
        SymbolMap}``, a NEW map for every venue that gained an instrument.

        ``entries`` as :meth:`add_listing` takes them (spec dicts, or ``(venue, venue_symbol,
        reason)`` for rows a reader could not read). A spec identical to the one loaded for its
        (venue, venue_symbol) is ignored, so a caller may pass the whole listing again; a changed
        one is refused (the map keeps the loaded instrument). A new economic instrument gets its
        scales as :meth:`freeze` computes them; a new instrument of one that has scales keeps
        them, and is refused when it needs finer ones (its tick, or its step plus the headroom,
        has more decimals: the live books of the others are at those scales). Refusals go to
        :attr:`rejected` (each reason once), and the rest loads.

        A new map lists the old map's instruments (same symbol ids, same numbers) then the new
        ones; :meth:`map` returns it from now on. Maps handed out earlier stay valid: they are
        immutable and simply lack the new instruments (``new.extends(old)`` is true).
        """
        if self._maps is None:
            raise RuntimeError("SymbolRegistry.freeze() first; extend() adds to a frozen registry")
        seen = set(self.rejected)

        def reject(venue, vs, reason):
            rec = (self._names.get(venue, venue), vs, reason)
            if rec not in seen:
                seen.add(rec)
                self.rejected.append(rec)

        fresh = []                # parsed specs new to the registry, in listing order
        batch = {}                # (venue, venue_symbol) -> parsed spec of this call
        batch_syms = {}           # (venue, symbol id) -> venue_symbol of this call
        for entry in entries:
            if isinstance(entry, tuple):
                reject(*entry)
                continue
            try:
                sp = self._parse(entry)
            except (ValueError, KeyError, TypeError) as e:
                reject(entry.get("venue"), entry.get("venue_symbol", "?"), rejection_reason(e))
                continue
            key = (sp["venue"], sp["venue_symbol"])
            known = self._specs.get(key, batch.get(key))
            if known is not None:
                changed = _spec_changes(known, sp)
                if changed:
                    reject(sp["venue"], sp["venue_symbol"], "listed again with %s; the loaded instrument stays"
                           % changed)
                continue
            try:
                self._check_new(sp)
                other = batch_syms.get((sp["venue"], (<Symbol>sp["symbol"]).id))
                if other is not None:
                    raise ValueError("%s already listed on %s as %r" % (sp["symbol"].name, self._names[sp["venue"]],
                                                                        other))
            except ValueError as e:
                reject(sp["venue"], sp["venue_symbol"], str(e))
                continue
            batch[key] = sp
            batch_syms[(sp["venue"], (<Symbol>sp["symbol"]).id)] = sp["venue_symbol"]
            fresh.append(sp)
        # scales: kept for a known economic instrument, computed as freeze does for a new one
        groups = {}
        for sp in fresh:
            groups.setdefault((sp["symbol"].base, sp["symbol"].quote), []).append(sp)
        refused = set()
        for key, members in groups.items():
            have = self._scales.get(key)
            if have is None:
                try:
                    self._scales[key] = self._group_scales(key, members)
                except ValueError as e:
                    for m in members:
                        refused.add(id(m))
                        reject(m["venue"], m["venue_symbol"], str(e))
                continue
            for m in members:
                need = self._needs(m)
                if need[0] > have[0] or need[1] > have[1]:
                    refused.add(id(m))
                    reject(m["venue"], m["venue_symbol"],
                           "needs scales (price %d, qty %d) finer than the scales (price %d, qty %d) %s/%s has: "
                           "its books would have to be rebuilt" % (need + have + key))
        gained = {}
        for sp in fresh:
            if id(sp) in refused:
                continue
            try:
                entry = self._converted(sp)
            except ValueError as e:
                reject(sp["venue"], sp["venue_symbol"], str(e))
                continue
            self._insert(sp)
            self._entries[sp["venue"]].append(entry)
            gained[sp["venue"]] = True
        n_ids = len(_SYMBOLS_BY_ID)
        out = {}
        for v in gained:
            out[v] = self._maps[v] = SymbolMap(v, self._entries[v], n_ids, self._names[v])
        return out

    @property
    def frozen(self):
        return self._maps is not None

    def map(self, venue):
        """The newest :class:`SymbolMap` of ``venue`` (name or id): freeze()'s, or the last extend()'s."""
        if self._maps is None:
            raise RuntimeError("SymbolRegistry.freeze() first")
        return self._maps[self.venue_id(venue)]

    def scales(self, symbol):
        """``(price_scale, qty_scale)`` shared by the economic instrument of ``symbol``."""
        if self._maps is None:
            raise RuntimeError("SymbolRegistry.freeze() first")
        sym = symbol if isinstance(symbol, Symbol) else get_symbol(symbol)
        return self._scales[(sym.base, sym.quote)]

    @property
    def symbols(self):
        """Unified symbols loaded, in load order, each once."""
        seen = {}
        for spec in self._specs.values():
            seen.setdefault(spec["symbol"].name, spec["symbol"])
        return list(seen.values())

    def __repr__(self):
        return "SymbolRegistry(%d instruments%s)" % (len(self._specs), ", frozen" if self._maps else "")

"""Unified symbols, per-venue symbol maps and instrument specs (see symbols.pxd, the contract).

Symbols are interned process-wide: ``get_symbol("BTC/USDT")`` always returns the same object, with a
small dense ``id`` usable as a C array index. A :class:`SymbolRegistry` is loaded from each venue's
instrument info (MEXC exchangeInfo, Gate currency_pairs, Gate futures contracts) or from plain
dicts, then frozen: freezing fixes one price_scale and one qty_scale per economic instrument
(``BTC/USDT`` and ``BTC/USDT:USDT`` share them) and builds one :class:`SymbolMap` per venue.
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

VENUES = ("mexc_spot", "gateio_spot", "gateio_futures")
_VENUE_IDS = {name: i for i, name in enumerate(VENUES)}
globals().update(VENUE_MEXC_SPOT=<int>VENUE_MEXC_SPOT, VENUE_GATEIO_SPOT=<int>VENUE_GATEIO_SPOT,
                 VENUE_GATEIO_FUTURES=<int>VENUE_GATEIO_FUTURES, N_VENUES=<int>N_VENUES)


def venue_id(venue):
    """``"mexc_spot"`` -> 0 etc.; ints are checked and returned. ValueError for an unknown venue."""
    if isinstance(venue, int) and not isinstance(venue, bool):
        if 0 <= venue < N_VENUES:
            return int(venue)
    elif venue in _VENUE_IDS:
        return _VENUE_IDS[venue]
    raise ValueError("unknown venue %r (expected one of %s)" % (venue, ", ".join(VENUES)))


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

    def __init__(self, venue, entries=(), int32_t n_ids=-1):
        """``entries``: iterable of ``(venue_name: str, symbol: Symbol, spec: dict)``; spec keys are
        the :class:`Instrument` fields except symbol_id and venue. Normally built by the registry."""
        cdef Py_ssize_t cap = 8, i, k
        cdef uint64_t h
        cdef Instrument* ins
        cdef Symbol sym
        cdef bytes b
        self.venue = venue_id(venue)
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
                raise ValueError("duplicate venue symbol %r on %s" % (name, VENUES[self.venue]))
            if self._by_id[sym.id] != -1:
                raise ValueError("%s listed twice on %s (%r and %r)"
                                 % (sym, VENUES[self.venue], self._str_by_id[sym.id], name))
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
            "symbol": self._symbols[k].name, "symbol_id": ins.symbol_id, "venue": VENUES[ins.venue],
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
        return "SymbolMap(%s, %d instruments)" % (VENUES[self.venue], self._n_insts)

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


def _dec(value, what):
    """Exact Decimal of a venue number (str, int or JSON float given as text); None stays None."""
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


def _decimals(d):
    """Number of decimals needed to write ``d`` exactly (0 for integers)."""
    if d is None or d == 0:
        return 0
    e = d.normalize().as_tuple().exponent
    return -e if e < 0 else 0


def _int_decimals(value, what):
    if isinstance(value, bool) or value is None:
        raise ValueError("%s: expected an integer number of decimals, got %r" % (what, value))
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError("%s: expected an integer number of decimals, got %r" % (what, value)) from None
    if str(v) != str(value).strip() or not 0 <= v <= _MAX_SCALE:
        raise ValueError("%s: expected an integer 0..%d, got %r" % (what, _MAX_SCALE, value))
    return v


def _load_json(obj):
    if isinstance(obj, (str, bytes, bytearray)):
        return json.loads(obj)
    return obj


def _mantissa(d, int scale, bint round_up=False):
    """Exact int mantissa of Decimal ``d`` at ``scale``; rounds up only when asked (minimums)."""
    m = d.scaleb(scale, decimal.Context(prec=200))
    i = int(m.to_integral_value(rounding=decimal.ROUND_CEILING if round_up else decimal.ROUND_FLOOR))
    if not round_up and i != m:
        raise ValueError("%s is not representable at scale %d" % (d, scale))
    if not -(2 ** 63) <= i < 2 ** 63:
        raise ValueError("%s overflows int64 at scale %d" % (d, scale))
    return i


class SymbolRegistry:
    """Builds the per-venue :class:`SymbolMap` objects from instrument info, then freezes.

    Parameters
    ----------
    qty_headroom : int
        Extra decimals added to each spot instrument's quantity precision when choosing the shared
        qty_scale, so that book quantities finer than the order step still parse exactly (MEXC
        pushes such sizes). Default 2.
    price_headroom : int
        Extra decimals added to every tick's decimals for price_scale. Default 0.

    Notes
    -----
    Venue strings map to symbols from the venue's own fields (MEXC ``baseAsset``/``quoteAsset``,
    Gate spot ``base``/``quote``). Gate futures contracts carry no base/quote fields: the settle
    currency is the endpoint's (``/futures/usdt`` -> USDT) and the name must read
    ``<BASE>_<SETTLE>``; anything else is rejected rather than guessed. Instruments that cannot
    be loaded are skipped and listed in :attr:`rejected` as ``(venue, venue_symbol, reason)``.
    """

    def __init__(self, *, qty_headroom=2, price_headroom=0):
        self.qty_headroom = int(qty_headroom)
        self.price_headroom = int(price_headroom)
        self._specs = {}          # (venue_id, venue_symbol) -> spec dict (Decimals)
        self._maps = None
        self._scales = {}         # (base, quote) -> (price_scale, qty_scale)
        self.rejected = []

    # ---- loading ------------------------------------------------------------------------------
    def _check_open(self):
        if self._maps is not None:
            raise RuntimeError("SymbolRegistry is frozen; load instruments before freeze()")

    @staticmethod
    def _wanted(only, venue_symbol, sym_name):
        return only is None or venue_symbol in only or sym_name in only

    def _add(self, int venue, str venue_symbol, Symbol sym, *, tick, qty_step, min_qty, min_notional,
             quanto, venue_qty_dec, tradable, is_spot):
        key = (venue, venue_symbol)
        if key in self._specs:
            raise ValueError("duplicate venue symbol %r on %s" % (venue_symbol, VENUES[venue]))
        for (v, vs), spec in self._specs.items():
            if v == venue and spec["symbol"] is sym:
                raise ValueError("%s already listed on %s as %r" % (sym.name, VENUES[venue], vs))
        if tick is None or tick <= 0:
            raise ValueError("tick must be > 0")
        if qty_step is None or qty_step <= 0:
            raise ValueError("quantity step must be > 0")
        if quanto is not None and quanto <= 0:
            raise ValueError("quanto_multiplier must be > 0")
        self._specs[key] = dict(symbol=sym, venue=venue, venue_symbol=venue_symbol, tick=tick,
                                qty_step=qty_step, min_qty=min_qty or _ZERO,
                                min_notional=min_notional or _ZERO, quanto=quanto,
                                venue_qty_dec=venue_qty_dec, tradable=bool(tradable), is_spot=is_spot)

    def _try(self, venue, venue_symbol, fn):
        try:
            fn()
        except (ValueError, KeyError, TypeError) as e:
            reason = ("missing field %s" % e) if isinstance(e, KeyError) else str(e)
            self.rejected.append((VENUES[venue], venue_symbol, reason))
            return False
        return True

    def add_mexc_exchange_info(self, info, only=None):
        """Load ``GET /api/v3/exchangeInfo`` (dict with ``symbols``, a list of symbol objects, one
        symbol object, or the JSON text). ``only``: optional set of venue strings / unified names.

        baseAssetPrecision = qty decimals, quotePrecision = price decimals (tick 10^-n),
        baseSizePrecision = min qty, quoteAmountPrecision = min notional, status "1" = online.
        Returns the number of instruments added.
        """
        self._check_open()
        info = _load_json(info)
        rows = info.get("symbols", [info] if "symbol" in info else []) if isinstance(info, dict) else info
        added = 0
        for row in rows:
            vs = row.get("symbol", "?")

            def one(row=row, vs=vs):
                if not self._wanted(only, vs, row["baseAsset"] + "/" + row["quoteAsset"]):
                    return
                sym = symbol_from_parts(row["baseAsset"], row["quoteAsset"])
                qdec = _int_decimals(row["baseAssetPrecision"], "baseAssetPrecision")
                pdec = _int_decimals(row["quotePrecision"], "quotePrecision")
                status = row.get("status")
                online = status in ("1", 1, "ENABLED")
                self._add(VENUE_MEXC_SPOT, vs, sym, tick=_D(1).scaleb(-pdec), qty_step=_D(1).scaleb(-qdec),
                          min_qty=_dec(row.get("baseSizePrecision"), "baseSizePrecision"),
                          min_notional=_dec(row.get("quoteAmountPrecision"), "quoteAmountPrecision"),
                          quanto=None, venue_qty_dec=None,
                          tradable=online and row.get("isSpotTradingAllowed", True) is not False,
                          is_spot=True)
            if self._try(VENUE_MEXC_SPOT, vs, one) and (VENUE_MEXC_SPOT, vs) in self._specs:
                added += 1
        return added

    def add_gateio_spot_pairs(self, pairs, only=None):
        """Load ``GET /spot/currency_pairs[/{pair}]`` (list, one object, or JSON text).

        precision = price decimals, amount_precision = amount decimals, min_base_amount = min qty,
        min_quote_amount = min notional (null = none), trade_status "tradable" = tradable.
        """
        self._check_open()
        pairs = _load_json(pairs)
        if isinstance(pairs, dict):
            pairs = [pairs]
        added = 0
        for row in pairs:
            vs = row.get("id", "?")

            def one(row=row, vs=vs):
                if not self._wanted(only, vs, row["base"] + "/" + row["quote"]):
                    return
                sym = symbol_from_parts(row["base"], row["quote"])
                pdec = _int_decimals(row["precision"], "precision")
                qdec = _int_decimals(row["amount_precision"], "amount_precision")
                self._add(VENUE_GATEIO_SPOT, vs, sym, tick=_D(1).scaleb(-pdec), qty_step=_D(1).scaleb(-qdec),
                          min_qty=_dec(row.get("min_base_amount"), "min_base_amount"),
                          min_notional=_dec(row.get("min_quote_amount"), "min_quote_amount"),
                          quanto=None, venue_qty_dec=None,
                          tradable=row.get("trade_status") == "tradable", is_spot=True)
            if self._try(VENUE_GATEIO_SPOT, vs, one) and (VENUE_GATEIO_SPOT, vs) in self._specs:
                added += 1
        return added

    def add_gateio_futures_contracts(self, contracts, settle="USDT", size_decimal=False,
                                     decimal_size_scale=4, only=None):
        """Load ``GET /futures/{settle}/contracts[/{contract}]`` (list, one object, or JSON text).

        quanto_multiplier = base units per contract, order_price_round = tick, order_size_min =
        minimum contracts, status "trading" and not in_delisting = tradable. Sizes are integer
        contracts unless ``size_decimal`` (the ``X-Gate-Size-Decimal: 1`` mode) is on and the
        contract has ``enable_decimal: true``; then sizes parse at ``decimal_size_scale`` decimals
        (Gate documents no per-contract size step for decimal mode; the order step is taken from
        ``order_size_min`` when it is fractional, else 1 contract).
        """
        self._check_open()
        contracts = _load_json(contracts)
        if isinstance(contracts, dict):
            contracts = [contracts]
        added = 0
        for row in contracts:
            vs = row.get("name", "?")

            def one(row=row, vs=vs):
                base, us, quote = vs.rpartition("_")
                if not us or not base or quote != settle:
                    raise ValueError("contract name %r is not <BASE>_%s on the %s-settled endpoint"
                                     % (vs, settle, settle))
                if row.get("type", "direct") != "direct":
                    raise ValueError("contract type %r is not a direct (linear) contract" % row.get("type"))
                if not self._wanted(only, vs, "%s/%s:%s" % (base, quote, settle)):
                    return
                sym = symbol_from_parts(base, quote, settle)
                mn = _dec(row.get("order_size_min", 1), "order_size_min")
                decimal_mode = bool(size_decimal and row.get("enable_decimal", False))
                vdec = max(_int_decimals(decimal_size_scale, "decimal_size_scale"), _decimals(mn)) if decimal_mode else 0
                if _decimals(mn) > vdec:
                    raise ValueError("order_size_min %s is fractional but decimal sizes are off" % mn)
                step = _D(1).scaleb(-_decimals(mn)) if _decimals(mn) else _D(1)
                self._add(VENUE_GATEIO_FUTURES, vs, sym, tick=_dec(row["order_price_round"], "order_price_round"),
                          qty_step=step, min_qty=mn, min_notional=None,
                          quanto=_dec(row["quanto_multiplier"], "quanto_multiplier"), venue_qty_dec=vdec,
                          tradable=row.get("status", "trading") == "trading" and not row.get("in_delisting", False),
                          is_spot=False)
            if self._try(VENUE_GATEIO_FUTURES, vs, one) and (VENUE_GATEIO_FUTURES, vs) in self._specs:
                added += 1
        return added

    def add_instrument(self, spec):
        """Add one instrument given explicitly (configs, replay). Raises ValueError on bad input.

        ``{"venue": "gateio_futures", "symbol": "BTC/USDT:USDT", "venue_symbol": "BTC_USDT",
        "tick": "0.1", "qty_step": "1", "min_qty": "1", "min_notional": "0",
        "quanto_multiplier": "0.0001", "size_decimals": 0, "tradable": true}``

        Sizes (``qty_step``, ``min_qty``) are in venue units: base for spot, contracts for
        futures. ``quanto_multiplier`` and ``size_decimals`` apply to futures only
        (``size_decimals`` defaults to the decimals of ``qty_step``). ``min_notional`` is quote.
        """
        self._check_open()
        spec = dict(spec)
        unknown = set(spec) - {"venue", "symbol", "venue_symbol", "tick", "qty_step", "min_qty",
                               "min_notional", "quanto_multiplier", "size_decimals", "tradable"}
        if unknown:
            raise ValueError("unknown instrument keys: %s" % ", ".join(sorted(unknown)))
        for k in ("venue", "symbol", "venue_symbol", "tick", "qty_step"):
            if k not in spec:
                raise ValueError("instrument needs %r" % k)
        venue = venue_id(spec["venue"])
        sym = get_symbol(spec["symbol"])
        vs = spec["venue_symbol"]
        if not isinstance(vs, str) or not vs:
            raise ValueError("venue_symbol must be a non-empty string")
        is_spot = venue != VENUE_GATEIO_FUTURES
        if is_spot == sym.is_perp:
            raise ValueError("%s is %s but %s is a %s venue" % (sym.name, "a perpetual" if sym.is_perp else "spot",
                             VENUES[venue], "spot" if is_spot else "futures"))
        step = _dec(spec["qty_step"], "qty_step")
        if is_spot:
            if "quanto_multiplier" in spec or "size_decimals" in spec:
                raise ValueError("quanto_multiplier/size_decimals apply to futures only")
            quanto, vdec = None, None
        else:
            quanto = _dec(spec.get("quanto_multiplier", 1), "quanto_multiplier")
            vdec = _int_decimals(spec.get("size_decimals", _decimals(step)), "size_decimals")
            if _decimals(step) > vdec:
                raise ValueError("qty_step %s has more decimals than size_decimals %d" % (step, vdec))
        tradable = spec.get("tradable", True)
        if not isinstance(tradable, bool):
            raise ValueError("tradable must be true/false")
        self._add(venue, vs, sym, tick=_dec(spec["tick"], "tick"), qty_step=step,
                  min_qty=_dec(spec.get("min_qty"), "min_qty"),
                  min_notional=_dec(spec.get("min_notional"), "min_notional"),
                  quanto=quanto, venue_qty_dec=vdec, tradable=tradable, is_spot=is_spot)

    def add_instruments(self, specs):
        for s in specs:
            self.add_instrument(s)

    # ---- freezing -----------------------------------------------------------------------------
    def freeze(self):
        """Fix the shared scales per economic instrument and build the venue maps. Idempotent."""
        if self._maps is not None:
            return self
        groups = {}
        for spec in self._specs.values():
            sym = spec["symbol"]
            groups.setdefault((sym.base, sym.quote), []).append(spec)
        for key, members in groups.items():
            ps = max(_decimals(m["tick"]) for m in members) + self.price_headroom
            qs = 0
            for m in members:
                if m["is_spot"]:
                    qs = max(qs, _decimals(m["qty_step"]) + self.qty_headroom)
                else:
                    qs = max(qs, m["venue_qty_dec"] + _decimals(m["quanto"]))
            if ps > _MAX_SCALE or qs > _MAX_SCALE:
                raise ValueError("%s/%s needs scales (%d, %d) beyond %d decimals" % (key + (ps, qs, _MAX_SCALE)))
            self._scales[key] = (ps, qs)
        per_venue = {v: [] for v in range(N_VENUES)}
        for spec in self._specs.values():
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
            per_venue[spec["venue"]].append((spec["venue_symbol"], sym, out))
        n_ids = len(_SYMBOLS_BY_ID)
        self._maps = tuple(SymbolMap(v, per_venue[v], n_ids) for v in range(N_VENUES))
        return self

    @property
    def frozen(self):
        return self._maps is not None

    def map(self, venue):
        """The frozen :class:`SymbolMap` of ``venue`` (name or VenueId)."""
        if self._maps is None:
            raise RuntimeError("SymbolRegistry.freeze() first")
        return self._maps[venue_id(venue)]

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

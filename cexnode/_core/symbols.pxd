# cexnode._core.symbols — unified symbols, venue ↔ symbol maps, per-instrument specs. THE CONTRACT.
#
# A unified Symbol ("BTC/USDT", "BTC/USDT:USDT") is interned: one object per instrument and a small
# dense integer id for C arrays. Each venue has a SymbolMap built from its instrument info (read by
# the venue's package from its REST listing, or given in the config); an unknown venue string is a
# miss (NULL / KeyError), never a wrong mapping.
#
# Venues: the core names none. Each is known by the id its descriptor gives it
# (cexnode.adapters.registry; SymbolRegistry takes the venues from its caller); ids index C arrays
# (router counters, book and leg indexes) bounded by MAX_VENUES, and an id outside 0..MAX_VENUES-1
# is refused when a registry, map, book or route is built, never per message.
#
# Scales: all instruments that belong to one *economic* instrument compared by arbitrage
# (BTC/USDT on two spot venues, and BTC/USDT:USDT on a perpetual venue) share one price_scale and
# one qty_scale (base units), fixed when the registry is frozen after loading.
#
# Listings at run time: SymbolRegistry.extend(specs) after freeze() adds instruments (a new economic
# instrument gets its scales as freeze computes them; one that has scales keeps them and refuses an
# instrument needing finer ones) and hands out a NEW SymbolMap per venue that gained one: the old
# entries (same symbol ids and numbers) plus the new. A SymbolMap never changes once built, so maps
# handed out earlier (parsers, books, gateways) stay valid until their holders swap
# (FeedParser.set_symbols); SymbolMap.extends(older) tells a newer map of the same venue.
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t


cdef enum:
    MAX_VENUES = 8            # capacity of the per-venue C arrays: venue ids are 0..MAX_VENUES-1


cdef struct Instrument:
    int32_t symbol_id
    int venue                 # venue id (0..MAX_VENUES-1, the venue descriptor's)
    int price_scale           # decimals of book/arb prices (shared across the economic instrument)
    int qty_scale             # decimals of book/arb BASE quantities (shared likewise)
    int venue_qty_scale       # decimals the venue's size field is parsed at (futures: contracts)
    int64_t qty_mult          # base mantissa (qty_scale) per venue-size mantissa (venue_qty_scale):
                              #   spot 10**(qty_scale - venue_qty_scale); futures × quanto_multiplier
    int64_t tick              # price mantissa step
    int64_t step              # base-qty mantissa step (futures: contract step × multiplier)
    int64_t min_qty           # base-qty mantissa
    int64_t min_notional      # quote mantissa at price_scale (0 = none)
    bint tradable


# One open-addressing slot of a SymbolMap's venue-string table (implementation detail).
cdef struct _NameSlot:
    uint64_t hash
    const char* name          # borrowed from a bytes object the map keeps alive
    Py_ssize_t n
    int32_t inst              # index into SymbolMap._insts, -1 = empty slot


# Hash of a venue string as used by SymbolMap (exposed so parsers may pre-hash; pure function).
cdef uint64_t venue_name_hash(const char* p, Py_ssize_t n) noexcept nogil


@cython.final
cdef class Symbol:
    cdef:
        readonly int32_t id
        readonly str name         # "BTC/USDT" or "BTC/USDT:USDT"
        readonly str base         # "BTC"
        readonly str quote        # "USDT"
        readonly str settle       # "USDT" for perpetuals, None for spot
        readonly bint is_perp


@cython.final
cdef class SymbolMap:
    cdef:
        readonly int venue        # venue id (0..MAX_VENUES-1)
        readonly str venue_label  # the venue's name (reports, errors)
        # implementation-owned hash table over venue strings (see symbols.pyx)
        _NameSlot* _slots
        uint64_t _mask
        Instrument* _insts
        int32_t _n_insts
        int32_t* _by_id           # symbol id -> index into _insts, -1 when not listed
        int32_t _n_ids
        const char** _name_ptrs   # venue name bytes by instrument index (borrowed from _name_bytes)
        Py_ssize_t* _name_lens
        list _name_bytes          # bytes venue names by instrument index (own the slot pointers)
        list _name_str            # str venue names by instrument index
        list _str_by_id           # str venue name by symbol id (None when not listed)
        list _bytes_by_id         # bytes venue name by symbol id (None when not listed)
        list _symbols             # Symbol by instrument index

    # Hot path: venue string bytes -> instrument, NULL when unknown. No Python objects touched.
    cdef const Instrument* find(self, const char* name, Py_ssize_t n) noexcept
    # symbol id -> instrument on this venue, NULL when the venue does not list it.
    cdef const Instrument* by_id(self, int32_t symbol_id) noexcept
    # symbol id -> venue string bytes (borrowed pointer valid for the map's lifetime), NULL if absent.
    cdef const char* venue_name(self, int32_t symbol_id, Py_ssize_t* n) noexcept
    # True when self lists every instrument of `older` (same venue) unchanged: a newer map of it.
    cpdef bint extends(self, SymbolMap older)

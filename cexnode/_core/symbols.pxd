# cexnode._core.symbols — unified symbols, venue ↔ symbol maps, per-instrument specs. THE CONTRACT.
#
# A unified Symbol ("BTC/USDT", "BTC/USDT:USDT") is interned: one object per instrument and a small
# dense integer id for C arrays. Each venue has a SymbolMap built from its instrument info (MEXC
# exchangeInfo, Gate currency_pairs, Gate futures contracts); an unknown venue string is a miss
# (NULL / KeyError), never a wrong mapping.
#
# Scales: all instruments that belong to one *economic* instrument compared by arbitrage
# (BTC/USDT on mexc_spot and gateio_spot, and BTC/USDT:USDT on gateio_futures) share one
# price_scale and one qty_scale (base units), fixed when the registry is frozen after loading.
cimport cython
from libc.stdint cimport int32_t, int64_t


cdef enum VenueId:
    VENUE_MEXC_SPOT = 0
    VENUE_GATEIO_SPOT = 1
    VENUE_GATEIO_FUTURES = 2
    N_VENUES = 3


cdef struct Instrument:
    int32_t symbol_id
    int venue                 # VenueId
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
        readonly int venue
        # implementation-owned hash table over venue strings (see symbols.pyx)

    # Hot path: venue string bytes -> instrument, NULL when unknown. No Python objects touched.
    cdef const Instrument* find(self, const char* name, Py_ssize_t n) noexcept
    # symbol id -> instrument on this venue, NULL when the venue does not list it.
    cdef const Instrument* by_id(self, int32_t symbol_id) noexcept
    # symbol id -> venue string bytes (borrowed pointer valid for the map's lifetime), NULL if absent.
    cdef const char* venue_name(self, int32_t symbol_id, Py_ssize_t* n) noexcept

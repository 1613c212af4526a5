# cexnode._core.arb — cross-venue arbitrage evaluation (docs/design.md §4). THE CONTRACT; review this first.
#
# A route is a set of legs (venue + Book + instrument rules) quoting one economic instrument, e.g.
# BTC/USDT on two spot venues, or BTC/USDT spot + BTC/USDT:USDT perp on a perpetual venue. Venues
# are ids (the descriptors', 0..symbols.MAX_VENUES-1) on books and legs, and the names the engine
# was given (ArbEngine(venue_names=...)) in routes, balances, fees and opportunities.
# ArbEngine.on_book_update(book, now_ns) evaluates, for every route with a leg on (book.venue,
# book.symbol_id), every ordered pair (buy leg A, sell leg B) in which the updated leg is A or B,
# in route registration order and lexicographic (A, B) leg order, and returns None or a list of
# Opportunity. Nothing is allocated unless an opportunity exists.
#
# Routes come and go at run time (configuration calls, between book updates, never inside one):
# add_route(name, ...) appends a route (names are unique: a second add of a name is a ValueError);
# remove_route(name) drops one: its legs, pair states and Book references go, the arrays are
# compacted (the other routes keep their registration order, params, balance caps and dedup memory)
# and the (venue, symbol_id) -> legs index is rebuilt, so an update of one of its books no longer
# reaches it. A name removed may be added again (a new route, no dedup memory). routes_on_book()
# tells which routes still read a book: BookRouter.remove_book refuses a book any route uses.
#
# Numbers — everything is an exact integer; no float anywhere:
#   P = route price_scale, Q = route qty_scale (shared by all books of the route, see symbols.pxd);
#   prices int64 at P, base quantities int64 at Q, fee rates int64 at FEE_SCALE (1e-8 units, so
#   0.001 -> 100000; more decimals than 8 is a ValueError), FEE_ONE = 1e8 = a rate of 1.
#   cost C = Σ ask×q and proceeds S = Σ bid×q are i128 at P+Q;
#   net N = S×(FEE_ONE−fee_B) − C×(FEE_ONE+fee_A) is i128 at P+Q+8 (= profit_scale): EXACT.
#
# Semantics of one pair (tests/reference/arb_ref.py implements the same with Decimal):
#  1. both books in_sync, not crossed, fresh: now_ns − recv_ns ≤ max_book_age_ms·1e6 and, when the
#     venue sent an exchange time (exch_ts_ms ≠ 0), now_ns//1e6 − exch_ts_ms ≤ max_book_age_ms.
#  2. two-pointer walk over A's asks (up) and B's bids (down) while
#     bid×(FEE_ONE−fee_B) > ask×(FEE_ONE+fee_A), chunk = min(remaining ask qty, remaining bid qty);
#  3. each chunk is cut to the caps, and the walk stops at the first cut:
#     C ≤ max_notional, and what each leg takes from its venue's free balance fits it — the
#     executor's balance check (execution.risk.balance_needs), at the leg limit prices of rule 5
#     for the worst level walked so far (lp_A(ask) = buy limit of that ask, lp_B(bid) = sell limit):
#       spot buy leg A     q × lp_A × (FEE_ONE + fee_A) ≤ quote balance of A
#       spot sell leg B    q ≤ base balance of B
#       margin leg (perp)  q × lp × (margin + fee) ≤ quote balance of its venue, buying or selling
#                          (its base balance is not read: a perp holds a position, not base)
#     i.e. per chunk the largest integer total that fits at the current levels (never below what
#     was taken: a deeper, dearer level that no longer fits ends the walk without taking from it);
#     then q is rounded down to lcm(step_A, step_B). The caps hold for the final q too: its worst
#     levels are levels the walk passed, each checked with the whole quantity taken through it
#     (≥ the final q) at that level's limit price. A sell limit ≤ 0 caps nothing (rule 5 drops it).
#     Balances come from the caller (set_balance / set_balances); an unset balance is no cap.
#  4. C, S, worst ask/bid are recomputed for the final q from the top of each ladder; emit iff
#     q > 0, q ≥ min_qty of both legs, N ≥ min_profit, N×1e4 ≥ min_bps×C (exact rational test),
#     q×buy_price ≥ min_notional_A and q×sell_price ≥ min_notional_B (order value at limit price).
#  5. buy_price = ceil_to_tick_A(worst_ask × (1 + slippage_bps/1e4)),
#     sell_price = floor_to_tick_B(worst_bid × (1 − slippage_bps/1e4)); sell_price ≤ 0 -> no emit.
#     Dedup: after a pair emits with book versions (vA, vB) it is not evaluated again until one of
#     the two Book.version values differs (reset_dedup() forgets all).
# Threshold conversion is exact-equivalent: min_profit -> ceil at P+Q+8, max_notional -> floor at
# P+Q, balances -> floor (negative = 0); min_bps must have ≤ 8 decimals, slippage_bps ≤ 4, fees ≤ 8.
#
# Output roundings (Opportunity): qty/prices exact; buy_vwap/sell_vwap floor(C/q), floor(S/q) at
# P+VWAP_EXTRA_DIGITS; net_bps floor(N/C) at BPS_SCALE (4 decimals: N/C is exactly bps×1e4);
# net_profit exact at profit_scale. Decimal strings: canonical (no exponent/trailing zeros, "0").
#
# Domain (asserted in debug builds via checked i128 helpers): book prices and quantities < 2^62,
# P ≤ 18, Q ≤ 18, min_bps within ±1e4, slippage_bps < 1e4, and C, S < 2^96 (C is also capped by
# max_notional; BTC at P=8, Q=10 with 1e4 BTC walked gives C ≈ 6.5e26 ≈ 2^89).
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t
from cexnode._core.book cimport Book

cdef extern from *:
    """
    #include "cexnode_debug.h"
    typedef __int128 cexnode_i128;
    #define CEXNODE_I128_MAX ((cexnode_i128)(((unsigned __int128)1 << 127) - 1))
    /* Checked in debug builds (abort on overflow), plain in release. Cython's overflowcheck cannot
       handle a 16-byte int, so every i128 operation goes through these. */
    static inline cexnode_i128 cx_mul(cexnode_i128 a, cexnode_i128 b) {
    #if CEXNODE_DEBUG
        cexnode_i128 r; CEXNODE_ASSERT(!__builtin_mul_overflow(a, b, &r)); return r;
    #else
        return a * b;
    #endif
    }
    static inline cexnode_i128 cx_add(cexnode_i128 a, cexnode_i128 b) {
    #if CEXNODE_DEBUG
        cexnode_i128 r; CEXNODE_ASSERT(!__builtin_add_overflow(a, b, &r)); return r;
    #else
        return a + b;
    #endif
    }
    static inline cexnode_i128 cx_sub(cexnode_i128 a, cexnode_i128 b) {
    #if CEXNODE_DEBUG
        cexnode_i128 r; CEXNODE_ASSERT(!__builtin_sub_overflow(a, b, &r)); return r;
    #else
        return a - b;
    #endif
    }
    /* floor(a / b) for b > 0 (a of any sign). */
    static inline cexnode_i128 cx_floordiv(cexnode_i128 a, cexnode_i128 b) {
        CEXNODE_ASSERT(b > 0);
        cexnode_i128 q = a / b;
        if ((a % b) != 0 && a < 0) q -= 1;
        return q;
    }
    static inline int64_t cx_hi(cexnode_i128 a) { return (int64_t)(a >> 64); }
    static inline uint64_t cx_lo(cexnode_i128 a) { return (uint64_t)a; }
    static inline cexnode_i128 cx_make(int64_t hi, uint64_t lo) {
        return (cexnode_i128)(((unsigned __int128)(uint64_t)hi << 64) | lo);
    }
    """
    # Cython believes this is a long long; it is really __int128. Never use Cython arithmetic
    # operators on it (overflowcheck would reject the type): only the cx_* helpers, comparisons,
    # assignment and casts.
    ctypedef long long i128 "cexnode_i128"
    i128 I128_MAX "CEXNODE_I128_MAX"
    i128 cx_mul(i128 a, i128 b) noexcept nogil
    i128 cx_add(i128 a, i128 b) noexcept nogil
    i128 cx_sub(i128 a, i128 b) noexcept nogil
    i128 cx_floordiv(i128 a, i128 b) noexcept nogil
    int64_t cx_hi(i128 a) noexcept nogil
    uint64_t cx_lo(i128 a) noexcept nogil
    i128 cx_make(int64_t hi, uint64_t lo) noexcept nogil


cdef enum:
    FEE_SCALE = 8
    FEE_ONE = 100000000          # 10**FEE_SCALE: fee/slippage fractions are mantissas at 1e-8
    BPS_SCALE = 4                # net_bps decimals (floor)
    VWAP_EXTRA_DIGITS = 4        # vwap decimals beyond price_scale (floor)
    MAX_ROUTE_LEGS = 3           # legs per route: 2 or 3 (at most one per venue); the pair loop is n×n


cdef struct ArbLeg:
    int venue                    # venue id (0..symbols.MAX_VENUES-1)
    int32_t symbol_id            # the venue's instrument (spot or perp symbol id)
    int route                    # index of the owning route
    int64_t fee                  # taker fee at FEE_SCALE
    int64_t tick                 # price mantissa step (> 0)
    int64_t step                 # base-qty mantissa step (> 0; futures: contract step × multiplier)
    int64_t min_qty              # base-qty mantissa
    i128 min_notional            # quote at P+Q (order value q×limit price must reach it)
    int64_t margin               # perp legs: margin fraction at FEE_SCALE (> 0); spot legs: 0
    int64_t cap_k                # quote taken per unit of limit-price notional, at FEE_SCALE:
                                 # spot FEE_ONE + fee (buying), perp margin + fee (either side)
    int64_t base_cap             # spot: base qty this leg may sell (INT64_MAX = no cap); perp: INT64_MAX
    i128 quote_cap               # free quote balance at P+Q+8 (I128_MAX = no cap); spot legs use
                                 # it when buying, perp legs on both sides


cdef struct ArbRoute:
    int first_leg                # legs are contiguous in ArbEngine._legs
    int n_legs
    int first_pair               # n_legs×n_legs PairState slots in ArbEngine._pairs
    int price_scale
    int qty_scale
    i128 max_notional            # at P+Q (floor of the configured decimal)
    i128 min_profit              # at P+Q+8 (ceil of the configured decimal)


cdef struct PairState:           # one ordered pair (buy leg, sell leg) of a route
    int64_t step                 # lcm(step_A, step_B), at Q
    bint emitted                 # dedup memory: emitted at these book versions
    uint64_t buy_version
    uint64_t sell_version


cdef struct ArbResult:           # one evaluated pair, filled only when it emits
    int64_t qty                  # at Q
    int64_t buy_price            # limit prices at P (tick-rounded)
    int64_t sell_price
    int64_t buy_worst            # worst level walked, at P
    int64_t sell_worst
    i128 buy_cost                # C at P+Q
    i128 sell_proceeds           # S at P+Q
    i128 net_profit              # N at P+Q+8
    i128 net_bps                 # floor(N / C) = net_bps at BPS_SCALE
    uint64_t buy_version
    uint64_t sell_version


@cython.final
@cython.freelist(64)
cdef class Opportunity:
    cdef:
        readonly str route
        readonly str symbol
        readonly str buy_venue
        readonly str sell_venue
        readonly int64_t t                 # now_ns passed to the evaluation
        readonly int price_scale
        readonly int qty_scale
        readonly int64_t qty_m             # at qty_scale
        readonly int64_t buy_price_m       # at price_scale
        readonly int64_t sell_price_m
        readonly int64_t buy_worst_m
        readonly int64_t sell_worst_m
        readonly uint64_t buy_book_version
        readonly uint64_t sell_book_version
        # exposed as Python ints by properties (buy_cost_m, ..., net_bps_m)
        i128 _buy_cost                     # at price_scale + qty_scale
        i128 _sell_proceeds
        i128 _net_profit                   # at profit_scale = price_scale + qty_scale + FEE_SCALE
        i128 _buy_vwap                     # at price_scale + VWAP_EXTRA_DIGITS
        i128 _sell_vwap
        i128 _net_bps                      # at BPS_SCALE


@cython.final
cdef class ArbEngine:
    cdef:
        # params (engine-wide; converted per route into ArbRoute fields)
        object _min_profit                 # Decimal
        readonly int64_t min_bps_m         # at 1e-8 bps
        object _max_notional               # Decimal
        readonly int64_t max_book_age_ms
        readonly int64_t slippage_m        # slippage fraction at FEE_SCALE (bps × 1e4)
        # routes and legs (C arrays, grown at add_route; never touched by Python on the hot path)
        ArbRoute* _routes
        int _n_routes
        ArbLeg* _legs
        int _n_legs
        PairState* _pairs
        int _n_pairs
        list _books                        # Book per leg (owns the references)
        list _route_names                  # str per route
        list _route_symbols                # str per route
        list _route_assets                 # (base, quote) per route
        list _venue_names                  # str per leg
        dict _venue_ids                    # venue name -> id, from the venue_names given
        list _leg_fees                     # Decimal taker fee per leg (set_leg_params changes them)
        list _leg_margins                  # Decimal margin fraction per leg, None for spot legs
        dict _balances                     # (venue name, asset) -> Decimal
        # index (venue, symbol_id) -> legs: CSR over key = venue * _n_sym + symbol_id (MAX_VENUES venues),
        # rebuilt by add_route / remove_route (entries in leg order, i.e. route registration order)
        int _n_sym
        int* _idx_off
        int* _idx_legs
        readonly uint64_t evaluations      # pairs evaluated (not skipped by dedup)
        readonly uint64_t emitted

    # Hot path: None, or a list of Opportunity (created only then). now_ns: CLOCK_REALTIME ns >= 0.
    cdef object on_book_update(self, Book book, int64_t now_ns)
    # Python/test entry to on_book_update.
    cpdef object evaluate(self, Book book, int64_t now_ns)
    # Benchmark helper: n calls of on_book_update (dedup forgotten before each call when
    # reset_dedup), returns the total CLOCK_MONOTONIC ns.
    cpdef int64_t bench_ns(self, Book book, int64_t now_ns, int64_t n, bint reset_dedup) except -1
    # One ordered pair (legs a, b of one route): 1 and res filled when it emits, else 0.
    cdef bint _eval_pair(self, int a, int b, int64_t now_ns, ArbResult* res) noexcept
    cdef Opportunity _make(self, int a, int b, const ArbResult* res, int64_t now_ns)
    # configuration (not hot): recompute per-route thresholds / per-leg caps / the leg index
    cdef int _apply_params(self) except -1
    cdef int _apply_balances(self) except -1
    cdef int _apply_leg_params(self) except -1
    cdef int _rebuild_index(self) except -1

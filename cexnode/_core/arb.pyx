"""Cross-venue arbitrage evaluation (docs/design.md §4). The contract, numbers and rules: ``arb.pxd``."""
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint64_t
from libc.string cimport memmove, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from cexnode._core.book cimport Book, Level
from cexnode._core.symbols cimport MAX_VENUES

import math
from decimal import Decimal

from cexnode._core.symbols import check_venue_id, registered_venues

cdef extern from "cexnode_debug.h":
    void CEXNODE_ASSERT(bint)

cdef object _I128_MAX_PY = (1 << 127) - 1
cdef object _U64_MASK = (1 << 64) - 1
cdef object _DEFAULT = object()


# ------------------------------------------------------------------------------------------------
# Python-level helpers (configuration and rendering only; never on the evaluation path)

cdef object _ratio(object value, str what):
    """Exact (numerator, denominator) of a Decimal / int / decimal string; floats are refused."""
    if isinstance(value, float):
        raise TypeError("%s: pass a Decimal or a decimal string, not a float (%r)" % (what, value))
    if isinstance(value, str):
        value = Decimal(value)
    elif isinstance(value, int):
        value = Decimal(value)
    elif not isinstance(value, Decimal):
        raise TypeError("%s: expected a Decimal, int or decimal string, found %r" % (what, value))
    if not value.is_finite():
        raise ValueError("%s: %r is not a finite number" % (what, value))
    return value.as_integer_ratio()


cdef object _scaled(object value, int scale, str mode, str what):
    """value × 10**scale as a Python int: mode 'floor', 'ceil' or 'exact' (ValueError if not)."""
    num, den = _ratio(value, what)
    num = num * (<object>10) ** (<object>scale)   # Python ints: exact (a C pow would be a double)
    if mode == "floor":
        return num // den
    if mode == "ceil":
        return -((-num) // den)
    if num % den:
        raise ValueError("%s: %s has more than %d decimal places" % (what, value, scale))
    return num // den


cdef i128 _to_i128(object v):
    """Python int -> i128, clamped to [-(2**127 - 1), 2**127 - 1]."""
    if v > _I128_MAX_PY:
        v = _I128_MAX_PY
    elif v < -_I128_MAX_PY:
        v = -_I128_MAX_PY
    return cx_make(<int64_t>(v >> 64), <uint64_t>(v & _U64_MASK))


cdef object _from_i128(i128 v):
    return (<object>cx_hi(v) << 64) | <object>cx_lo(v)


def format_mantissa(mantissa, int scale):
    """Canonical decimal string of ``mantissa / 10**scale`` (no exponent, no trailing zeros, "0")."""
    m = int(mantissa)
    if m == 0:
        return "0"
    sign = "-" if m < 0 else ""
    digits = str(-m if m < 0 else m)
    if scale <= 0:
        return sign + digits + "0" * (-scale)
    if len(digits) <= scale:
        digits = "0" * (scale - len(digits) + 1) + digits
    int_part, frac = digits[:-scale], digits[-scale:].rstrip("0")
    return sign + int_part + ("." + frac if frac else "")


cdef object _check_margin(object margin, str venue):
    m = _scaled(margin, FEE_SCALE, "exact", "%s margin_fraction" % venue)
    if not (0 < m <= FEE_ONE):
        raise ValueError("%s margin_fraction must be in (0, 1], found %s" % (venue, margin))
    return m


cdef object _dec(object mantissa, int scale):
    return Decimal(format_mantissa(mantissa, scale))


cdef inline int64_t _now_mono_ns() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline bint _tradable(Book bk, int64_t now_ns, int64_t max_age_ms) noexcept:
    # §4.1: in sync, not crossed, fresh by receive time and (when sent) exchange time.
    if not bk.in_sync or bk.is_crossed():
        return False
    if now_ns - bk.recv_ns > max_age_ms * 1000000:
        return False
    if bk.exch_ts_ms != 0 and now_ns // 1000000 - bk.exch_ts_ms > max_age_ms:
        return False
    return True


cdef inline int64_t _buy_limit(int64_t worst, int64_t tick, int64_t slip) noexcept:
    # §4.5: ceil_to_tick(worst × (1 + slippage))
    cdef i128 den = cx_mul(FEE_ONE, tick)
    cdef i128 num = cx_mul(worst, FEE_ONE + slip)
    return <int64_t>cx_mul(cx_floordiv(cx_sub(cx_add(num, den), 1), den), tick)


cdef inline int64_t _sell_limit(int64_t worst, int64_t tick, int64_t slip) noexcept:
    # §4.5: floor_to_tick(worst × (1 − slippage))
    return <int64_t>cx_mul(cx_floordiv(cx_mul(worst, FEE_ONE - slip), cx_mul(FEE_ONE, tick)), tick)


cdef inline int64_t _qty_fitting(i128 cap, int64_t limit_px, int64_t k) noexcept:
    # the largest total quantity q with q × limit_px × k ≤ cap (limit_px > 0, k > 0)
    cdef i128 v = cx_floordiv(cap, cx_mul(limit_px, k))
    return INT64_MAX if v > INT64_MAX else <int64_t>v


# ------------------------------------------------------------------------------------------------

@cython.final
@cython.freelist(64)
cdef class Opportunity:
    """One profitable ordered pair after a book update (docs/design.md §4); immutable.

    Decimal properties (``qty``, ``buy_price``, ..., ``net_bps``) are exact values of the integer
    fields; ``json_fields()`` renders the docs/design.md §3 ``opportunity`` line fields.
    """

    def __init__(self):
        raise TypeError("Opportunity objects are created by ArbEngine")

    @property
    def profit_scale(self):
        return self.price_scale + self.qty_scale + FEE_SCALE

    @property
    def buy_cost_m(self):
        """Σ ask × qty of the buy leg, at price_scale + qty_scale."""
        return _from_i128(self._buy_cost)

    @property
    def sell_proceeds_m(self):
        """Σ bid × qty of the sell leg, at price_scale + qty_scale."""
        return _from_i128(self._sell_proceeds)

    @property
    def net_profit_m(self):
        """Exact net profit at profit_scale (price_scale + qty_scale + 8)."""
        return _from_i128(self._net_profit)

    @property
    def buy_vwap_m(self):
        """floor(buy cost / qty) at price_scale + 4."""
        return _from_i128(self._buy_vwap)

    @property
    def sell_vwap_m(self):
        return _from_i128(self._sell_vwap)

    @property
    def net_bps_m(self):
        """floor(net_bps) at 4 decimals."""
        return _from_i128(self._net_bps)

    @property
    def qty(self):
        return _dec(self.qty_m, self.qty_scale)

    @property
    def buy_price(self):
        return _dec(self.buy_price_m, self.price_scale)

    @property
    def sell_price(self):
        return _dec(self.sell_price_m, self.price_scale)

    @property
    def buy_vwap(self):
        return _dec(self.buy_vwap_m, self.price_scale + VWAP_EXTRA_DIGITS)

    @property
    def sell_vwap(self):
        return _dec(self.sell_vwap_m, self.price_scale + VWAP_EXTRA_DIGITS)

    @property
    def net_profit(self):
        return _dec(self.net_profit_m, self.profit_scale)

    @property
    def net_bps(self):
        return _dec(self.net_bps_m, BPS_SCALE)

    def json_fields(self):
        """The docs/design.md §3 ``opportunity`` line fields: money and sizes as decimal strings, t as int ns."""
        cdef int p = self.price_scale
        return {
            "route": self.route,
            "symbol": self.symbol,
            "buy_venue": self.buy_venue,
            "sell_venue": self.sell_venue,
            "qty": format_mantissa(self.qty_m, self.qty_scale),
            "buy_price": format_mantissa(self.buy_price_m, p),
            "sell_price": format_mantissa(self.sell_price_m, p),
            "buy_vwap": format_mantissa(self.buy_vwap_m, p + VWAP_EXTRA_DIGITS),
            "sell_vwap": format_mantissa(self.sell_vwap_m, p + VWAP_EXTRA_DIGITS),
            "net_profit": format_mantissa(self.net_profit_m, self.profit_scale),
            "net_bps": format_mantissa(self.net_bps_m, BPS_SCALE),
            "t": self.t,
        }

    def __repr__(self):
        f = self.json_fields()
        return ("<Opportunity %s %s buy %s@%s sell %s@%s qty %s net %s (%s bps)>" % (
            f["route"], f["symbol"], f["buy_venue"], f["buy_price"], f["sell_venue"], f["sell_price"],
            f["qty"], f["net_profit"], f["net_bps"]))


# ------------------------------------------------------------------------------------------------

@cython.final
cdef class ArbEngine:
    """Routes, thresholds and balances; evaluates every route touching an updated book.

    Parameters (docs/design.md §4 / ``arbitrage`` config; Decimals, ints or decimal strings, never floats)
    ----------
    min_profit : net profit floor in quote currency (>= 0), default 0.50
    min_bps : net profit floor in bps of the buy cost (|x| <= 10000, <= 8 decimals), default 0
    max_notional : maximum quote spent on the buy leg (> 0), default 1000
    max_book_age_ms : freshness bound for exchange and receive time, default 5000
    slippage_bps : limit-price widening (0 <= x < 10000, <= 4 decimals), default 0
    venue_names : ``{venue id: name}`` of the venues legs may be on (ids 0..MAX_VENUES-1, the
        venue descriptors'); legs, balances and fees name venues, books carry their ids. Default:
        the node's venue registry.
    """

    def __cinit__(self):
        self._routes = NULL
        self._legs = NULL
        self._pairs = NULL
        self._idx_off = NULL
        self._idx_legs = NULL
        self._n_routes = self._n_legs = self._n_pairs = self._n_sym = 0
        self._books = []
        self._route_names = []
        self._route_symbols = []
        self._route_assets = []
        self._venue_names = []
        self._venue_ids = {}
        self._leg_fees = []
        self._leg_margins = []
        self._balances = {}

    def __dealloc__(self):
        PyMem_Free(self._routes)
        PyMem_Free(self._legs)
        PyMem_Free(self._pairs)
        PyMem_Free(self._idx_off)
        PyMem_Free(self._idx_legs)

    def __init__(self, min_profit="0.50", min_bps="0", max_notional="1000", max_book_age_ms=5000,
                 slippage_bps="0", venue_names=None):
        if venue_names is None:
            venue_names = {d.venue_id: d.name for d in registered_venues()}
        ids = {}
        for vid, vname in dict(venue_names).items():
            vid = check_venue_id(vid, vname)
            if not isinstance(vname, str) or not vname or vname in ids:
                raise ValueError("venue_names: %r (id %d) must be a distinct non-empty name" % (vname, vid))
            ids[vname] = vid
        self._venue_ids = ids
        self._min_profit = Decimal(0)
        self._max_notional = Decimal(1)
        self.set_params(min_profit=min_profit, min_bps=min_bps, max_notional=max_notional,
                        max_book_age_ms=max_book_age_ms, slippage_bps=slippage_bps)

    # -------------------------------------------------------------------- configuration (Python)

    @property
    def min_profit(self):
        return self._min_profit

    @property
    def max_notional(self):
        return self._max_notional

    @property
    def n_routes(self):
        return self._n_routes

    def set_params(self, *, min_profit=_DEFAULT, min_bps=_DEFAULT, max_notional=_DEFAULT,
                   max_book_age_ms=_DEFAULT, slippage_bps=_DEFAULT):
        """Change thresholds (all validated before any is applied). Dedup memory is kept."""
        mp, mn = self._min_profit, self._max_notional
        mb, age, slip = self.min_bps_m, self.max_book_age_ms, self.slippage_m
        if min_profit is not _DEFAULT:
            _ratio(min_profit, "min_profit")
            mp = Decimal(str(min_profit)) if not isinstance(min_profit, Decimal) else min_profit
            if mp < 0:
                raise ValueError("min_profit must be >= 0, found %s" % mp)
        if max_notional is not _DEFAULT:
            _ratio(max_notional, "max_notional")
            mn = Decimal(str(max_notional)) if not isinstance(max_notional, Decimal) else max_notional
            if mn <= 0:
                raise ValueError("max_notional must be > 0, found %s" % mn)
        if min_bps is not _DEFAULT:
            v = _scaled(min_bps, FEE_SCALE, "exact", "min_bps")
            if abs(v) > 10 ** 12:   # 10000 bps at 1e-8
                raise ValueError("min_bps must be within [-10000, 10000], found %s" % min_bps)
            mb = v
        if max_book_age_ms is not _DEFAULT:
            if isinstance(max_book_age_ms, bool) or not isinstance(max_book_age_ms, int) or not (
                    1 <= max_book_age_ms <= 86400000):
                raise ValueError("max_book_age_ms must be an int in [1, 86400000], found %r" % (max_book_age_ms,))
            age = max_book_age_ms
        if slippage_bps is not _DEFAULT:
            v = _scaled(slippage_bps, 4, "exact", "slippage_bps")   # bps×1e4 = fraction at 1e-8
            if not (0 <= v < FEE_ONE):
                raise ValueError("slippage_bps must be in [0, 10000), found %s" % slippage_bps)
            slip = v
        self._min_profit, self._max_notional = mp, mn
        self.min_bps_m, self.max_book_age_ms, self.slippage_m = mb, age, slip
        self._apply_params()

    cdef int _apply_params(self) except -1:
        cdef int r
        cdef int pq
        for r in range(self._n_routes):
            pq = self._routes[r].price_scale + self._routes[r].qty_scale
            self._routes[r].max_notional = _to_i128(_scaled(self._max_notional, pq, "floor", "max_notional"))
            self._routes[r].min_profit = _to_i128(_scaled(self._min_profit, pq + FEE_SCALE, "ceil", "min_profit"))
        return 0

    def set_balance(self, str venue, str asset, amount):
        """Free balance of ``asset`` on ``venue`` (Decimal/int/str; None = unknown = no cap).

        What the executor's balance check compares with (arb.pxd rule 3): a spot buy leg spends
        the route's quote asset (qty × buy limit × (1 + fee) must fit), a spot sell leg sells the
        base asset, a perp leg (``margin_fraction``) takes quote margin on either side (qty × limit
        × (margin + fee)). Configuration, not hot: call it when a balance changes, never per message.
        """
        self.set_balances({(venue, asset): amount})

    def set_balances(self, amounts):
        """Several :meth:`set_balance` at once (``{(venue, asset): amount or None}``): all are
        validated before any is applied, and the legs' caps are recomputed once."""
        items = list(amounts.items()) if hasattr(amounts, "items") else list(amounts)
        for (venue, asset), amount in items:
            if venue not in self._venue_ids:
                raise ValueError("unknown venue %r; known venues: %s" % (venue, ", ".join(self._venue_ids)))
            if amount is not None:
                _ratio(amount, "balance %s %s" % (venue, asset))
        for (venue, asset), amount in items:
            if amount is None:
                self._balances.pop((venue, asset), None)
            else:
                self._balances[(venue, asset)] = amount
        self._apply_balances()

    def balances(self):
        return dict(self._balances)

    def set_leg_params(self, str venue, *, taker_fee=_DEFAULT, margin_fraction=_DEFAULT):
        """Change the taker fee of every leg on ``venue`` and/or the margin fraction of its perp
        legs (those added with ``margin_fraction``; spot legs keep none). Validated first, then
        applied with the balance caps recomputed. Dedup memory is kept."""
        if venue not in self._venue_ids:
            raise ValueError("unknown venue %r; known venues: %s" % (venue, ", ".join(self._venue_ids)))
        if taker_fee is not _DEFAULT:
            fee = _scaled(taker_fee, FEE_SCALE, "exact", "%s taker_fee" % venue)
            if not (0 <= fee < FEE_ONE):
                raise ValueError("%s taker_fee must be in [0, 1)" % venue)
        if margin_fraction is not _DEFAULT:
            _check_margin(margin_fraction, venue)
        for k in range(self._n_legs):
            if self._venue_names[k] != venue:
                continue
            if taker_fee is not _DEFAULT:
                self._leg_fees[k] = taker_fee
            if margin_fraction is not _DEFAULT and self._leg_margins[k] is not None:
                self._leg_margins[k] = margin_fraction
        self._apply_leg_params()
        self._apply_balances()

    def leg_params(self):
        """[(venue, taker fee, margin fraction or None)] per leg, in route order."""
        return [(self._venue_names[k], self._leg_fees[k], self._leg_margins[k]) for k in range(self._n_legs)]

    cdef int _apply_leg_params(self) except -1:
        cdef int k
        cdef ArbLeg* leg
        for k in range(self._n_legs):
            leg = &self._legs[k]
            leg.fee = _scaled(self._leg_fees[k], FEE_SCALE, "exact", "taker_fee")
            m = self._leg_margins[k]
            leg.margin = 0 if m is None else _scaled(m, FEE_SCALE, "exact", "margin_fraction")
            leg.cap_k = (FEE_ONE if leg.margin == 0 else leg.margin) + leg.fee
        return 0

    cdef int _apply_balances(self) except -1:
        cdef int k
        cdef ArbLeg* leg
        cdef ArbRoute* r
        for k in range(self._n_legs):
            leg = &self._legs[k]
            r = &self._routes[leg.route]
            base, quote = self._route_assets[leg.route]
            venue = self._venue_names[k]
            bal = self._balances.get((venue, quote))
            if bal is None:
                leg.quote_cap = I128_MAX
            else:
                v = _scaled(bal, r.price_scale + r.qty_scale + FEE_SCALE, "floor", "balance")
                leg.quote_cap = _to_i128(v if v > 0 else 0)
            bal = self._balances.get((venue, base))
            if bal is None or leg.margin != 0:      # a perp leg sells against margin, not base
                leg.base_cap = INT64_MAX
            else:
                v = _scaled(bal, r.qty_scale, "floor", "balance")
                leg.base_cap = 0 if v <= 0 else (INT64_MAX if v > INT64_MAX else v)
        return 0

    def add_route(self, str name, str symbol, int price_scale, int qty_scale, legs, base=None, quote=None):
        """Add a route; returns its index.

        Parameters
        ----------
        name : route name (the ``route`` field of opportunities)
        symbol : unified spot symbol of the route, e.g. "BTC/USDT" (the ``symbol`` field)
        price_scale, qty_scale : the shared scales of every book of the route (symbols.Instrument)
        legs : 2 or 3 mappings, one per venue, with keys ``venue`` (name), ``book`` (Book),
            ``taker_fee`` (Decimal rate, <= 8 decimals), ``tick`` (price mantissa), ``step`` (base
            mantissa; futures: contract step × multiplier), optional ``min_qty`` (base mantissa)
            and ``min_notional`` (quote mantissa at price_scale), as in ``symbols.Instrument``:
            ``dict(symbol_map.instrument(sid), venue=..., book=..., taker_fee=...)`` works (its
            price_scale/qty_scale, when present, must equal the route's; other keys are ignored).
            A perpetual leg also has ``margin_fraction`` (Decimal in (0, 1], <= 8 decimals): the
            quote margin per unit of notional its orders take (the balance caps of arb.pxd rule 3).
        base, quote : asset names for balances (default: parsed from the unified symbol).
        """
        cdef int n = len(legs)
        cdef int i, j, k
        cdef Book bk
        if name in self._route_names:
            raise ValueError("route %r is already added (remove_route first)" % name)
        if not (2 <= n <= MAX_ROUTE_LEGS):
            raise ValueError("route %r: expected 2..%d legs, found %d" % (name, MAX_ROUTE_LEGS, n))
        if not (0 <= price_scale <= 18 and 0 <= qty_scale <= 18):
            raise ValueError("route %r: scales must be in [0, 18]" % name)
        if base is None or quote is None:
            b, _, q = symbol.partition(":")[0].partition("/")
            if not b or not q:
                raise ValueError("route %r: cannot tell base/quote of symbol %r" % (name, symbol))
            base = b if base is None else base
            quote = q if quote is None else quote
        parsed = []
        seen = set()
        for leg in legs:
            venue = leg["venue"]
            if venue not in self._venue_ids:
                raise ValueError("route %r: unknown venue %r" % (name, venue))
            if venue in seen:
                raise ValueError("route %r: venue %s listed twice" % (name, venue))
            seen.add(venue)
            bk = leg["book"]
            if bk is None:
                raise TypeError("route %r: leg %s has no book" % (name, venue))
            if bk.venue != self._venue_ids[venue]:
                raise ValueError("route %r: the book given for %s belongs to venue id %d" % (name, venue, bk.venue))
            fee = _scaled(leg["taker_fee"], FEE_SCALE, "exact", "%s taker_fee" % venue)
            if not (0 <= fee < FEE_ONE):
                raise ValueError("route %r: %s taker_fee must be in [0, 1)" % (name, venue))
            tick, step = int(leg["tick"]), int(leg["step"])
            min_qty, min_notional = int(leg.get("min_qty", 0)), int(leg.get("min_notional", 0))
            if tick <= 0 or step <= 0 or min_qty < 0 or min_notional < 0:
                raise ValueError("route %r: %s needs tick > 0, step > 0, min_qty >= 0, min_notional >= 0"
                                 % (name, venue))
            for key, want in (("price_scale", price_scale), ("qty_scale", qty_scale)):
                if key in leg and leg[key] != want:   # e.g. a SymbolMap.instrument() dict
                    raise ValueError("route %r: %s instrument has %s %s, the route %s"
                                     % (name, venue, key, leg[key], want))
            margin = leg.get("margin_fraction")
            if margin is not None:
                _check_margin(margin, venue)
            parsed.append((venue, bk, fee, tick, step, min_qty, min_notional, leg["taker_fee"], margin))

        cdef ArbRoute* routes = <ArbRoute*>PyMem_Realloc(self._routes, (self._n_routes + 1) * sizeof(ArbRoute))
        if routes == NULL:
            raise MemoryError()
        self._routes = routes
        cdef ArbLeg* nlegs = <ArbLeg*>PyMem_Realloc(self._legs, (self._n_legs + n) * sizeof(ArbLeg))
        if nlegs == NULL:
            raise MemoryError()
        self._legs = nlegs
        cdef PairState* pairs = <PairState*>PyMem_Realloc(self._pairs, (self._n_pairs + n * n) * sizeof(PairState))
        if pairs == NULL:
            raise MemoryError()
        self._pairs = pairs

        cdef int ri = self._n_routes
        cdef ArbRoute* r = &self._routes[ri]
        r.first_leg = self._n_legs
        r.n_legs = n
        r.first_pair = self._n_pairs
        r.price_scale = price_scale
        r.qty_scale = qty_scale
        cdef ArbLeg* lg
        for i in range(n):
            venue, bk, fee, tick, step, min_qty, min_notional, fee_dec, margin = parsed[i]
            lg = &self._legs[self._n_legs + i]
            lg.venue = bk.venue
            lg.symbol_id = bk.symbol_id
            lg.route = ri
            lg.fee = fee
            lg.tick = tick
            lg.step = step
            lg.min_qty = min_qty
            lg.min_notional = _to_i128(min_notional * (<object>10) ** (<object>qty_scale))
            lg.base_cap = INT64_MAX
            lg.quote_cap = I128_MAX
            self._books.append(bk)
            self._venue_names.append(venue)
            self._leg_fees.append(fee_dec)
            self._leg_margins.append(margin)
        cdef PairState* ps
        for i in range(n):
            for j in range(n):
                ps = &self._pairs[self._n_pairs + i * n + j]
                memset(ps, 0, sizeof(PairState))
                lcm = math.lcm(parsed[i][4], parsed[j][4])
                ps.step = lcm if lcm <= INT64_MAX else INT64_MAX   # no quantity is a multiple: never trades
        self._n_legs += n
        self._n_pairs += n * n
        self._n_routes += 1
        self._route_names.append(name)
        self._route_symbols.append(symbol)
        self._route_assets.append((base, quote))
        self._apply_params()
        self._apply_leg_params()
        self._apply_balances()
        self._rebuild_index()
        return ri

    def remove_route(self, str name):
        """Stop evaluating the route ``name``; True when it existed, False otherwise.

        No opportunity of it is emitted after the call, also when its books update; the other
        routes (those sharing its books too) keep their order, thresholds, balances and dedup
        memory. Its Book references are dropped (a book no route uses can then leave the router).
        The same name may be added again later (a new route: no dedup memory). Configuration,
        not hot: O(legs of all routes), called between book updates, never inside one.
        """
        cdef int ri, k, first, n, nn, fp
        try:
            ri = self._route_names.index(name)
        except ValueError:
            return False
        first = self._routes[ri].first_leg
        n = self._routes[ri].n_legs
        fp = self._routes[ri].first_pair
        nn = n * n
        # no evaluation until the index is rebuilt over the compacted legs (a MemoryError in
        # _rebuild_index then leaves an engine that evaluates nothing, never a stale index)
        self._n_sym = 0
        memmove(&self._legs[first], &self._legs[first + n], (self._n_legs - first - n) * sizeof(ArbLeg))
        memmove(&self._pairs[fp], &self._pairs[fp + nn], (self._n_pairs - fp - nn) * sizeof(PairState))
        memmove(&self._routes[ri], &self._routes[ri + 1], (self._n_routes - ri - 1) * sizeof(ArbRoute))
        self._n_legs -= n
        self._n_pairs -= nn
        self._n_routes -= 1
        for k in range(first, self._n_legs):
            self._legs[k].route -= 1
        for k in range(ri, self._n_routes):
            self._routes[k].first_leg -= n
            self._routes[k].first_pair -= nn
        del self._books[first:first + n]
        del self._venue_names[first:first + n]
        del self._leg_fees[first:first + n]
        del self._leg_margins[first:first + n]
        del self._route_names[ri]
        del self._route_symbols[ri]
        del self._route_assets[ri]
        self._rebuild_index()
        return True

    def route_names(self):
        """Names of the routes, in registration order."""
        return list(self._route_names)

    def routes_on_book(self, int venue, int32_t symbol_id):
        """Names of the routes with a leg on the book ``(venue id, symbol_id)``, in registration order."""
        cdef int e, key
        if venue < 0 or venue >= MAX_VENUES or symbol_id < 0 or symbol_id >= self._n_sym:
            return []
        key = venue * self._n_sym + symbol_id
        return [self._route_names[self._legs[self._idx_legs[e]].route]
                for e in range(self._idx_off[key], self._idx_off[key + 1])]

    cdef int _rebuild_index(self) except -1:
        cdef int k, key, n_keys, n_sym = 0
        for k in range(self._n_legs):
            if self._legs[k].symbol_id + 1 > n_sym:
                n_sym = self._legs[k].symbol_id + 1
        n_keys = MAX_VENUES * n_sym
        cdef int* off = <int*>PyMem_Malloc((n_keys + 1) * sizeof(int))
        cdef int* entries = <int*>PyMem_Malloc((self._n_legs + 1) * sizeof(int))
        if off == NULL or entries == NULL:
            PyMem_Free(off)
            PyMem_Free(entries)
            raise MemoryError()
        memset(off, 0, (n_keys + 1) * sizeof(int))
        for k in range(self._n_legs):
            off[self._legs[k].venue * n_sym + self._legs[k].symbol_id + 1] += 1
        for key in range(n_keys):
            off[key + 1] += off[key]
        cdef int* fill = <int*>PyMem_Malloc((n_keys + 1) * sizeof(int))
        if fill == NULL:
            PyMem_Free(off)
            PyMem_Free(entries)
            raise MemoryError()
        for key in range(n_keys + 1):
            fill[key] = off[key]
        for k in range(self._n_legs):   # legs in route order, so entries keep route order
            key = self._legs[k].venue * n_sym + self._legs[k].symbol_id
            entries[fill[key]] = k
            fill[key] += 1
        PyMem_Free(fill)
        PyMem_Free(self._idx_off)
        PyMem_Free(self._idx_legs)
        self._idx_off = off
        self._idx_legs = entries
        self._n_sym = n_sym
        return 0

    def reset_dedup(self):
        """Forget which opportunities were emitted (the next evaluation may emit them again)."""
        cdef int k
        for k in range(self._n_pairs):
            self._pairs[k].emitted = False

    def routes(self):
        """[(name, symbol, [venue names])] in registration order."""
        out = []
        for ri in range(self._n_routes):
            first, n = self._routes[ri].first_leg, self._routes[ri].n_legs
            out.append((self._route_names[ri], self._route_symbols[ri], self._venue_names[first:first + n]))
        return out

    # -------------------------------------------------------------------- hot path

    cdef object on_book_update(self, Book book, int64_t now_ns):
        cdef int venue = book.venue
        cdef int32_t sid = book.symbol_id
        cdef int e, u, a, b, first, last
        cdef ArbRoute* r
        cdef ArbResult res
        cdef object out = None
        if venue < 0 or venue >= MAX_VENUES or sid < 0 or sid >= self._n_sym:
            return None
        cdef int key = venue * self._n_sym + sid
        for e in range(self._idx_off[key], self._idx_off[key + 1]):
            u = self._idx_legs[e]
            r = &self._routes[self._legs[u].route]
            first = r.first_leg
            last = first + r.n_legs
            for a in range(first, last):
                for b in range(first, last):
                    if a == b or (a != u and b != u):
                        continue
                    if self._eval_pair(a, b, now_ns, &res):
                        opp = self._make(a, b, &res, now_ns)
                        if out is None:
                            out = [opp]
                        else:
                            out.append(opp)
        return out

    cpdef object evaluate(self, Book book, int64_t now_ns):
        """Evaluate every route touching ``book`` at time ``now_ns``: None or [Opportunity]."""
        return self.on_book_update(book, now_ns)

    cpdef int64_t bench_ns(self, Book book, int64_t now_ns, int64_t n, bint reset_dedup) except -1:
        cdef int64_t i, t0, t1
        cdef int k
        t0 = _now_mono_ns()
        for i in range(n):
            if reset_dedup:
                for k in range(self._n_pairs):
                    self._pairs[k].emitted = False
            self.on_book_update(book, now_ns)
        t1 = _now_mono_ns()
        return t1 - t0

    cdef bint _eval_pair(self, int a, int b, int64_t now_ns, ArbResult* res) noexcept:
        cdef ArbLeg* la = &self._legs[a]
        cdef ArbLeg* lb = &self._legs[b]
        cdef ArbRoute* r = &self._routes[la.route]
        cdef PairState* ps = &self._pairs[r.first_pair + (a - r.first_leg) * r.n_legs + (b - r.first_leg)]
        cdef Book A = <Book>self._books[a]
        cdef Book B = <Book>self._books[b]
        CEXNODE_ASSERT(la.route == lb.route)
        # §4.5 dedup: nothing changed since this pair last emitted
        if ps.emitted and ps.buy_version == A.version and ps.sell_version == B.version:
            return False
        self.evaluations += 1
        # §4.1
        if not _tradable(A, now_ns, self.max_book_age_ms) or not _tradable(B, now_ns, self.max_book_age_ms):
            return False
        # the walk reads at most each book's configured depth (books hold every level)
        cdef int n_a = A.n_asks() if A.n_asks() < A.depth else A.depth
        cdef int n_b = B.n_bids() if B.n_bids() < B.depth else B.depth
        if n_a == 0 or n_b == 0:
            return False
        cdef int64_t ka = FEE_ONE + la.fee
        cdef int64_t kb = FEE_ONE - lb.fee
        cdef Level ask = A.ask(0)
        cdef Level bid = B.bid(0)
        # cheapest reject first: no fee-adjusted edge at the touch
        if cx_mul(bid.px, kb) <= cx_mul(ask.px, ka):
            return False

        # §4.2-3: two-pointer walk, each chunk cut to the caps; the first cut ends the walk
        cdef int i = 0, j = 0
        cdef int64_t ra = ask.qty, rb = bid.qty
        cdef int64_t q = 0, full, x, lp
        cdef i128 c = 0, nc
        cdef i128 max_notional = r.max_notional
        cdef int64_t base_cap = lb.base_cap
        # balance caps as quantities at the current levels' limit prices (rule 3), recomputed only
        # when the walk reaches a new level and only for a leg with a balance set
        cdef bint cap_a = la.quote_cap != I128_MAX
        cdef bint cap_b = lb.margin != 0 and lb.quote_cap != I128_MAX
        cdef int64_t qmax_a = INT64_MAX, qmax_b = INT64_MAX
        cdef int at_a = -1, at_b = -1
        while True:
            full = ra if ra < rb else rb
            x = full
            if x > base_cap - q:
                x = base_cap - q
            if cap_a:
                if at_a != i:
                    at_a = i
                    qmax_a = _qty_fitting(la.quote_cap, _buy_limit(ask.px, la.tick, self.slippage_m), la.cap_k)
                if x > qmax_a - q:
                    x = qmax_a - q if qmax_a > q else 0
            if cap_b:
                if at_b != j:
                    at_b = j
                    lp = _sell_limit(bid.px, lb.tick, self.slippage_m)
                    qmax_b = _qty_fitting(lb.quote_cap, lp, lb.cap_k) if lp > 0 else INT64_MAX
                if x > qmax_b - q:
                    x = qmax_b - q if qmax_b > q else 0
            nc = cx_add(c, cx_mul(ask.px, x))
            if nc > max_notional:
                x = <int64_t>cx_floordiv(cx_sub(max_notional, c), ask.px)
                nc = cx_add(c, cx_mul(ask.px, x))
            q += x
            c = nc
            if x < full:
                break
            ra -= x
            rb -= x
            if ra == 0:
                i += 1
                if i == n_a:
                    break
                ask = A.ask(i)
                ra = ask.qty
            if rb == 0:
                j += 1
                if j == n_b:
                    break
                bid = B.bid(j)
                rb = bid.qty
            if cx_mul(bid.px, kb) <= cx_mul(ask.px, ka):
                break

        # round down to a step valid on both venues
        q -= q % ps.step
        if q <= 0 or q < la.min_qty or q < lb.min_qty:
            return False

        # §4.4: cost, proceeds and worst levels of the final quantity
        cdef int64_t rem = q
        c = 0
        i = 0
        while rem > 0:
            ask = A.ask(i)
            x = ask.qty if ask.qty < rem else rem
            c = cx_add(c, cx_mul(ask.px, x))
            rem -= x
            i += 1
        cdef i128 s = 0
        rem = q
        j = 0
        while rem > 0:
            bid = B.bid(j)
            x = bid.qty if bid.qty < rem else rem
            s = cx_add(s, cx_mul(bid.px, x))
            rem -= x
            j += 1
        cdef i128 net = cx_sub(cx_mul(s, kb), cx_mul(c, ka))
        if net < r.min_profit:
            return False
        CEXNODE_ASSERT(net > 0)
        # net_bps × 1e8 = floor(net × 1e4 / c) without forming net × 1e4 (overflow-safe split)
        cdef i128 bps4 = cx_floordiv(net, c)
        cdef i128 bps8 = cx_add(cx_mul(bps4, 10000),
                                cx_floordiv(cx_mul(cx_sub(net, cx_mul(bps4, c)), 10000), c))
        if bps8 < self.min_bps_m:
            return False

        # §4.5 limit prices: worst level walked, widened by slippage, rounded away from the touch
        cdef int64_t buy_price = _buy_limit(ask.px, la.tick, self.slippage_m)
        cdef int64_t sell_price = _sell_limit(bid.px, lb.tick, self.slippage_m)
        if sell_price <= 0:
            return False
        if cx_mul(q, buy_price) < la.min_notional or cx_mul(q, sell_price) < lb.min_notional:
            return False

        res.qty = q
        res.buy_price = buy_price
        res.sell_price = sell_price
        res.buy_worst = ask.px
        res.sell_worst = bid.px
        res.buy_cost = c
        res.sell_proceeds = s
        res.net_profit = net
        res.net_bps = bps4
        res.buy_version = A.version
        res.sell_version = B.version
        ps.emitted = True
        ps.buy_version = A.version
        ps.sell_version = B.version
        self.emitted += 1
        return True

    cdef Opportunity _make(self, int a, int b, const ArbResult* res, int64_t now_ns):
        cdef ArbRoute* r = &self._routes[self._legs[a].route]
        cdef Opportunity o = Opportunity.__new__(Opportunity)
        cdef int ri = self._legs[a].route
        o.route = <str>self._route_names[ri]
        o.symbol = <str>self._route_symbols[ri]
        o.buy_venue = <str>self._venue_names[a]
        o.sell_venue = <str>self._venue_names[b]
        o.t = now_ns
        o.price_scale = r.price_scale
        o.qty_scale = r.qty_scale
        o.qty_m = res.qty
        o.buy_price_m = res.buy_price
        o.sell_price_m = res.sell_price
        o.buy_worst_m = res.buy_worst
        o.sell_worst_m = res.sell_worst
        o.buy_book_version = res.buy_version
        o.sell_book_version = res.sell_version
        o._buy_cost = res.buy_cost
        o._sell_proceeds = res.sell_proceeds
        o._net_profit = res.net_profit
        o._buy_vwap = cx_floordiv(cx_mul(res.buy_cost, 10000), res.qty)
        o._sell_vwap = cx_floordiv(cx_mul(res.sell_proceeds, 10000), res.qty)
        o._net_bps = res.net_bps
        return o

"""Instruments of the simulated venues: integer scales and the venues' decimal strings.

Every simulated book keeps prices as integer *ticks* and sizes as integer *steps* (venue units:
base currency on spot, contracts on futures). :class:`SimInstrument` converts both ways and renders
the venue's decimal strings, so the wire, the REST snapshot and the instrument-info endpoint agree
on one scale (docs/design.md §3: "parsed from the venue's decimal strings straight into int64 mantissas at
a per-instrument scale").

Precision is derived from the starting price the way the real venues size their instruments:
:func:`instrument_basis` and :func:`default_decimals` give the common part, and each venue's
``make_instrument`` (``cexnode/sim/venues/``) its symbol naming, precision and minimums.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["SimInstrument", "instrument_basis", "default_decimals", "DEFAULT_MIDS", "fmt_scaled"]

# Starting mid prices used when ``sim.mid_prices`` does not name a base.
DEFAULT_MIDS = {"BTC": Decimal("65000"), "ETH": Decimal("3200"), "SOL": Decimal("150"),
                "XRP": Decimal("0.6"), "DOGE": Decimal("0.15")}


def fmt_scaled(value: int, decimals: int, strip: bool) -> str:
    """``value / 10**decimals`` as a decimal string; ``strip`` drops trailing zeros (else fixed precision)."""
    if decimals == 0:
        return str(value)
    neg = value < 0
    s = str(-value if neg else value).rjust(decimals + 1, "0")
    ip, fp = s[:-decimals], s[-decimals:]
    if strip:
        fp = fp.rstrip("0")
    out = ip + "." + fp if fp else ip
    return "-" + out if neg else out


@dataclass(frozen=True, kw_only=True)
class SimInstrument:
    """One instrument of one simulated venue.

    Attributes
    ----------
    symbol, venue_symbol : unified (``BTC/USDT``, ``BTC/USDT:USDT``) and venue name (``BTCUSDT``, ``BTC_USDT``).
    base, quote : assets.
    price_decimals : tick = 10**-price_decimals.
    size_decimals : step = 10**-size_decimals (venue units; contracts on futures).
    multiplier : futures base units per contract (``quanto_multiplier``); 1 on spot.
    min_qty, min_notional : order minimums (venue units / quote).
    is_futures : contract sizes (``{p,s}`` levels, signed trade sizes).
    strip_zeros : render decimals without trailing zeros, or at fixed precision (the venue's style).
    """

    venue: str
    symbol: str
    venue_symbol: str
    base: str
    quote: str
    price_decimals: int
    size_decimals: int
    multiplier: Decimal = Decimal(1)
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    is_futures: bool = False
    strip_zeros: bool = True

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.price_decimals)

    @property
    def step(self) -> Decimal:
        return Decimal(1).scaleb(-self.size_decimals)

    # -- conversions
    def price_str(self, ticks: int) -> str:
        return fmt_scaled(ticks, self.price_decimals, self.strip_zeros)

    def size_str(self, steps: int) -> str:
        return fmt_scaled(steps, self.size_decimals, self.strip_zeros)

    def price(self, ticks: int) -> Decimal:
        return Decimal(ticks).scaleb(-self.price_decimals)

    def size(self, steps: int) -> Decimal:
        return Decimal(steps).scaleb(-self.size_decimals)

    def ticks_of(self, price) -> int:
        """Exact tick count of a decimal price; ValueError when it is not on the tick grid."""
        d = Decimal(str(price)).scaleb(self.price_decimals)
        if d != d.to_integral_value():
            raise ValueError("price %s is not a multiple of tick %s" % (price, self.tick))
        return int(d)

    def steps_of(self, size) -> int:
        """Exact step count of a decimal size; ValueError when it is not on the step grid."""
        d = Decimal(str(size)).scaleb(self.size_decimals)
        if d != d.to_integral_value():
            raise ValueError("size %s is not a multiple of step %s" % (size, self.step))
        return int(d)

    def base_qty(self, steps: int) -> Decimal:
        """Base-currency quantity of ``steps`` venue units (contracts × multiplier on futures)."""
        return self.size(steps) * self.multiplier


def instrument_basis(venue: str, symbol: str, mid: Decimal, *, perpetual: bool) -> tuple[str, str, int]:
    """``(base, quote, digits)`` of unified ``symbol`` listed on ``venue`` (a perpetual venue when
    ``perpetual``); ``digits``: of the integer part of ``mid`` (65000 -> 5, 0.6 -> 0). ValueError when
    the symbol's kind is not the venue's or the price is not positive."""
    base, rest = symbol.split("/", 1)
    quote = rest.split(":", 1)[0]
    if (":" in symbol) != perpetual:
        raise ValueError("symbol %s does not belong on %s (futures venues quote BASE/QUOTE:SETTLE)" % (symbol, venue))
    if mid <= 0:
        raise ValueError("mid price of %s must be positive, found %s" % (symbol, mid))
    return base, quote, int(math.floor(math.log10(float(mid)))) + 1


def default_decimals(digits: int) -> tuple[int, int]:
    """``(price decimals, size decimals)`` for a price with ``digits`` integer digits: about 7
    significant digits of price (venues that quote coarser take fewer) and a size granularity
    near 1e-6 BTC worth."""
    return min(10, max(0, 7 - digits)), min(8, max(0, digits + 1))

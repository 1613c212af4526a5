"""Instrument tables of the simulated venues and their instrument-info payloads.

Every simulated book keeps prices as integer *ticks* and sizes as integer *steps* (venue units:
base currency on spot, contracts on futures). :class:`SimInstrument` converts both ways and renders
the venue's decimal strings, so the wire, the REST snapshot and the instrument-info endpoint agree
on one scale (DESIGN §3: "parsed from the venue's decimal strings straight into int64 mantissas at
a per-instrument scale").

Precision is derived from the starting price the way the real venues size their instruments
(MEXC BTCUSDT: 2 price decimals, 6 size decimals; Gate BTC_USDT: 1 and 6; Gate futures BTC_USDT:
``order_price_round`` 0.1, ``quanto_multiplier`` 0.0001).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["SimInstrument", "make_instrument", "venue_symbol_of", "DEFAULT_MIDS", "fmt_scaled"]

# Starting mid prices used when ``sim.mid_prices`` does not name a base.
DEFAULT_MIDS = {"BTC": Decimal("65000"), "ETH": Decimal("3200"), "SOL": Decimal("150"),
                "XRP": Decimal("0.6"), "DOGE": Decimal("0.15")}


def fmt_scaled(value: int, decimals: int, strip: bool) -> str:
    """``value / 10**decimals`` as a decimal string; ``strip`` drops trailing zeros (Gate style)."""
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
    strip_zeros : render decimals without trailing zeros (Gate) or at fixed precision (MEXC).
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


def venue_symbol_of(venue: str, symbol: str) -> str:
    """``BTC/USDT`` → ``BTCUSDT`` (MEXC) or ``BTC_USDT`` (Gate); ``BTC/USDT:USDT`` → ``BTC_USDT``."""
    base, rest = symbol.split("/", 1)
    quote = rest.split(":", 1)[0]
    return base + quote if venue == "mexc_spot" else base + "_" + quote


def make_instrument(venue: str, symbol: str, mid: Decimal, *, decimal_contracts: bool = False) -> SimInstrument:
    """Instrument for ``symbol`` on ``venue`` with precision sized to its starting ``mid`` price."""
    base, rest = symbol.split("/", 1)
    quote = rest.split(":", 1)[0]
    is_fut = ":" in symbol
    if is_fut != (venue == "gateio_futures"):
        raise ValueError("symbol %s does not belong on %s (futures venues quote BASE/QUOTE:SETTLE)" % (symbol, venue))
    if mid <= 0:
        raise ValueError("mid price of %s must be positive, found %s" % (symbol, mid))
    digits = int(math.floor(math.log10(float(mid)))) + 1      # 65000 -> 5, 0.6 -> 0
    # price: ~7 significant digits on MEXC, one fewer on Gate; size: ~1e-6 BTC-equivalent granularity
    pd = min(10, max(0, 7 - digits))
    sd = min(8, max(0, digits + 1))
    vs = venue_symbol_of(venue, symbol)
    if venue == "mexc_spot":
        return SimInstrument(venue=venue, symbol=symbol, venue_symbol=vs, base=base, quote=quote,
                             price_decimals=pd, size_decimals=sd, min_notional=Decimal(1), strip_zeros=False)
    if venue == "gateio_spot":
        return SimInstrument(venue=venue, symbol=symbol, venue_symbol=vs, base=base, quote=quote,
                             price_decimals=max(0, pd - 1), size_decimals=sd,
                             min_qty=Decimal(1).scaleb(-sd), min_notional=Decimal(3))
    # Gate USDT futures: contracts of 10**-(digits-1) base (BTC 0.0001), integer contracts unless
    # decimal sizes are on (enable_decimal, X-Gate-Size-Decimal: 1), then 0.1 contract steps.
    mult = Decimal(1).scaleb(-(digits - 1)) if digits > 1 else Decimal(1)
    return SimInstrument(venue=venue, symbol=symbol, venue_symbol=vs, base=base, quote=quote,
                         price_decimals=max(0, pd - 1), size_decimals=1 if decimal_contracts else 0,
                         multiplier=mult, min_qty=Decimal(1) if not decimal_contracts else Decimal("0.1"),
                         is_futures=True)

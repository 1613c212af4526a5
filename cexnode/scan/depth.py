"""What one direction of a route is worth now: a pure walk over two books' levels.

Buying on venue A and selling on venue B, with levels as the books give them (``Book.top``: price
and base-quantity mantissas at the route's scales, best first):

* :func:`net_bps_at_size` spends ``size`` quote on A's asks (the last level taken in part), sells
  the quantity bought into B's bids, and prices the pair after both taker fees:
  ``net = proceeds × (1 − fee_B) − cost × (1 + fee_A)``, ``net_bps = net / cost × 10⁴`` (the
  engine's definition, docs/design.md §4). None when either book is too thin for ``size``.
* :func:`depth_at_breakeven` walks both ladders as the engine does, while a level pair still nets
  ``≥ 0`` after fees, and returns the quote spent on A: how much the direction takes before it
  stops paying.

Exact arithmetic (fractions of the mantissas): the scanner runs these once per refresh, never per
frame, and quantity steps and minimum notionals are ignored (a scanner reads the market, it does
not size orders).
"""
from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Optional, Sequence

__all__ = ["Levels", "net_bps_at_size", "depth_at_breakeven", "BPS_PLACES"]

#: ``(price mantissa, base quantity mantissa)``, best level first
Levels = Sequence[tuple[int, int]]

BPS_PLACES = Decimal("0.01")        # net bps are floored to this (the engine floors too)
_QUOTE_PLACES = Decimal("0.01")


def _frac(d: Decimal) -> Fraction:
    return Fraction(d)


def _to_decimal(f: Fraction, places: Decimal) -> Decimal:
    """Floor of ``f`` at ``places`` (exact: the division is done on integers)."""
    scale = -places.as_tuple().exponent
    q = (f.numerator * 10 ** scale) // f.denominator
    return Decimal(q).scaleb(-scale).quantize(places, rounding=ROUND_FLOOR)


def net_bps_at_size(asks: Levels, bids: Levels, price_scale: int, qty_scale: int,
                    buy_fee: Decimal, sell_fee: Decimal, size: Decimal) -> Optional[Decimal]:
    """Net bps of buying ``size`` quote on ``asks`` and selling that quantity into ``bids``.

    Parameters
    ----------
    asks, bids
        The buy venue's asks (ascending) and the sell venue's bids (descending), as mantissas.
    price_scale, qty_scale
        The mantissas' decimal places (the route's, shared by both books).
    buy_fee, sell_fee
        Taker fee rates of the buy and the sell venue (0.001 = 0.1 %).
    size
        Quote to spend on the buy venue, before its fee (> 0).

    Returns
    -------
    Decimal or None
        Net bps floored to 0.01, or None when the asks hold less than ``size`` or the bids less
        than the quantity it buys.
    """
    if size <= 0:
        raise ValueError("size must be > 0, found %s" % size)
    p_unit, q_unit = 10 ** price_scale, 10 ** qty_scale
    left = _frac(size) * p_unit * q_unit          # quote left to spend, at P+Q
    cost = Fraction(0)
    qty = Fraction(0)                             # base bought, at Q
    for px, q in asks:
        if left <= 0:
            break
        if px <= 0 or q <= 0:
            continue
        take = min(Fraction(q), left / px)
        qty += take
        cost += take * px
        left -= take * px
    if left > 0 or qty <= 0:
        return None
    proceeds = Fraction(0)
    unsold = qty
    for px, q in bids:
        if unsold <= 0:
            break
        if px <= 0 or q <= 0:
            continue
        take = min(Fraction(q), unsold)
        proceeds += take * px
        unsold -= take
    if unsold > 0:
        return None
    net = proceeds * (1 - _frac(sell_fee)) - cost * (1 + _frac(buy_fee))
    return _to_decimal(net / cost * 10_000, BPS_PLACES)


def depth_at_breakeven(asks: Levels, bids: Levels, price_scale: int, qty_scale: int,
                       buy_fee: Decimal, sell_fee: Decimal) -> Decimal:
    """Quote spent on ``asks`` while each level pair nets ``≥ 0`` after fees (floored to 0.01).

    The engine's two-pointer walk (asks up, bids down, chunk = the smaller of what is left at the
    two levels), with ``≥`` where the engine wants ``>``: breakeven levels count as depth.
    """
    buy_k, sell_k = 1 + _frac(buy_fee), 1 - _frac(sell_fee)
    i = j = 0
    ask_left = bid_left = 0
    cost = 0                                      # at P+Q, integer: whole mantissa chunks only
    while i < len(asks) and j < len(bids):
        ask_px, bid_px = asks[i][0], bids[j][0]
        if ask_left == 0:
            ask_left = asks[i][1]
        if bid_left == 0:
            bid_left = bids[j][1]
        if ask_left <= 0 or ask_px <= 0:
            i, ask_left = i + 1, 0
            continue
        if bid_left <= 0 or bid_px <= 0:
            j, bid_left = j + 1, 0
            continue
        if bid_px * sell_k < ask_px * buy_k:
            break
        chunk = min(ask_left, bid_left)
        cost += chunk * ask_px
        ask_left -= chunk
        bid_left -= chunk
        if ask_left == 0:
            i += 1
        if bid_left == 0:
            j += 1
    return _to_decimal(Fraction(cost, 10 ** (price_scale + qty_scale)), _QUOTE_PLACES)

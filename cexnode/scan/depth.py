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

Exact integer arithmetic on the mantissas (fees at 1e-8, as the engine takes them; the size at the
books' price x quantity resolution, floored): the scanner runs these once per refresh per route,
never per frame. Quantity steps and minimum notionals are ignored (a scanner reads the market, it
does not size orders).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Optional, Sequence

__all__ = ["Levels", "net_bps_at_size", "depth_at_breakeven", "fee_mantissa", "FEE_ONE"]

#: ``(price mantissa, base quantity mantissa)``, best level first
Levels = Sequence[tuple[int, int]]

FEE_ONE = 10 ** 8                   # a fee rate of 1 at the engine's fee scale (arb.pxd)


def fee_mantissa(fee: Decimal) -> int:
    """``fee`` at 1e-8 (exact; the engine refuses fees with more decimals, so does this)."""
    m = fee * FEE_ONE
    if m != m.to_integral_value():
        raise ValueError("a fee rate has at most 8 decimals, found %s" % fee)
    return int(m)


def _floor_decimal(num: int, den: int, places: int) -> Decimal:
    """floor(num / den) at ``places`` decimals, exactly (den > 0)."""
    return Decimal(num * 10 ** places // den).scaleb(-places)


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
        Taker fee rates of the buy and the sell venue (0.001 = 0.1 %; at most 8 decimals).
    size
        Quote to spend on the buy venue, before its fee (> 0; floored to 10^-(price_scale +
        qty_scale), the books' resolution).

    Returns
    -------
    Decimal or None
        Net bps floored to 0.01, or None when the asks hold less than ``size`` or the bids less
        than the quantity it buys.
    """
    if size <= 0:
        raise ValueError("size must be > 0, found %s" % size)
    left = int(size.scaleb(price_scale + qty_scale))      # quote to spend at P+Q (floored)
    if left <= 0:
        return None
    cost = left
    whole = 0                      # base bought from levels taken whole, at Q
    part_px, part_quote = 1, 0     # the level taken in part: its price, and the quote spent there
    for px, q in asks:
        if px <= 0 or q <= 0:
            continue
        level = px * q
        if level >= left:
            part_px, part_quote = px, left
            left = 0
            break
        whole += q
        left -= level
    if left > 0:
        return None
    # quantity bought x part_px, an integer: whole x part_px + part_quote (part_quote / part_px bought there)
    unsold = whole * part_px + part_quote
    proceeds = 0                   # x part_px, at P+Q
    for px, q in bids:
        if unsold <= 0:
            break
        if px <= 0 or q <= 0:
            continue
        take = min(q * part_px, unsold)
        proceeds += take * px
        unsold -= take
    if unsold > 0:
        return None
    fb, fs = fee_mantissa(buy_fee), fee_mantissa(sell_fee)
    # net x part_px x FEE_ONE = proceeds x (FEE_ONE - fs) - cost x part_px x (FEE_ONE + fb)
    net = proceeds * (FEE_ONE - fs) - cost * part_px * (FEE_ONE + fb)
    return _floor_decimal(net * 10_000, cost * part_px * FEE_ONE, 2)


def depth_at_breakeven(asks: Levels, bids: Levels, price_scale: int, qty_scale: int,
                       buy_fee: Decimal, sell_fee: Decimal) -> Decimal:
    """Quote spent on ``asks`` while each level pair nets ``>= 0`` after fees (floored to 0.01).

    The engine's two-pointer walk (asks up, bids down, chunk = the smaller of what is left at the
    two levels), with ``>=`` where the engine wants ``>``: breakeven levels count as depth.
    """
    buy_k, sell_k = FEE_ONE + fee_mantissa(buy_fee), FEE_ONE - fee_mantissa(sell_fee)
    i = j = 0
    n_asks, n_bids = len(asks), len(bids)
    ask_left = bid_left = 0
    cost = 0                                      # at P+Q
    while i < n_asks and j < n_bids:
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
        chunk = ask_left if ask_left < bid_left else bid_left
        cost += chunk * ask_px
        ask_left -= chunk
        bid_left -= chunk
        if ask_left == 0:
            i += 1
        if bid_left == 0:
            j += 1
    return _floor_decimal(cost, 10 ** (price_scale + qty_scale), 2)

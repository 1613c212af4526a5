"""Pure-Python reference of the scanner's pricing (``cexnode/scan/depth.py``'s module docstring) —
the oracle for ``net_bps_at_size`` and ``depth_at_breakeven``.

Written from the rules with Decimal prices and quantities and exact fractions, unit by unit and
without shared code: the asks are expanded into what each level holds, the size is spent level by
level, and the quantity bought is sold the same way. Slow and obvious on purpose.
"""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction


def _levels(levels, p, q):
    return [(Fraction(px, 10 ** p), Fraction(qty, 10 ** q)) for px, qty in levels if px > 0 and qty > 0]


def _floor2(f: Fraction) -> Decimal:
    """``f`` floored to 0.01."""
    return Decimal(math.floor(f * 100)).scaleb(-2)


def net_bps_at_size(asks, bids, p, q, buy_fee, sell_fee, size):
    resolution = Fraction(1, 10 ** (p + q))
    to_spend = (Fraction(size) // resolution) * resolution
    if to_spend <= 0:
        return None
    spent, bought = Fraction(0), Fraction(0)
    for px, qty in _levels(asks, p, q):
        if spent == to_spend:
            break
        take = min(qty, (to_spend - spent) / px)
        spent += take * px
        bought += take
    if spent < to_spend:
        return None
    sold, proceeds = Fraction(0), Fraction(0)
    for px, qty in _levels(bids, p, q):
        if sold == bought:
            break
        take = min(qty, bought - sold)
        sold += take
        proceeds += take * px
    if sold < bought:
        return None
    net = proceeds * (1 - Fraction(sell_fee)) - spent * (1 + Fraction(buy_fee))
    return _floor2(net / spent * 10_000)


def depth_at_breakeven(asks, bids, p, q, buy_fee, sell_fee):
    a, b = _levels(asks, p, q), _levels(bids, p, q)
    i = j = 0
    a_left = a[0][1] if a else 0
    b_left = b[0][1] if b else 0
    cost = Fraction(0)
    while i < len(a) and j < len(b):
        if b[j][0] * (1 - Fraction(sell_fee)) < a[i][0] * (1 + Fraction(buy_fee)):
            break
        take = min(a_left, b_left)
        cost += take * a[i][0]
        a_left -= take
        b_left -= take
        if a_left == 0:
            i += 1
            a_left = a[i][1] if i < len(a) else 0
        if b_left == 0:
            j += 1
            b_left = b[j][1] if j < len(b) else 0
    return _floor2(cost)

"""Oracle for cexnode._core.book.Book: a dict-per-side L2 book with the same depth-bound rule.

Works with any totally ordered prices (int mantissas or decimal.Decimal). Rules (book.pyx docstring):
qty 0 deletes; an insert into a full side drops the worst level, or is dropped itself when worse
than every kept level; dropped levels are forgotten; a full update replaces both sides (zero
quantities skipped, best ``depth_limit`` kept); version bumps once per update that changed anything.
"""
from __future__ import annotations

from decimal import Decimal


class RefBook:
    def __init__(self, depth_limit: int = 400):
        self.depth_limit = depth_limit
        self.bids: dict = {}
        self.asks: dict = {}
        self.version = 0
        self.last_id = 0
        self.exch_ts_ms = 0
        self.recv_ns = 0

    def set_level(self, is_bid: bool, px, qty) -> int:
        if qty < 0:
            raise ValueError("negative quantity")
        side = self.bids if is_bid else self.asks
        if px in side:
            if qty == 0:
                del side[px]
                return 1
            if side[px] == qty:
                return 0
            side[px] = qty
            return 1
        if qty == 0:
            return 0
        if len(side) >= self.depth_limit:
            worst = min(side) if is_bid else max(side)
            if (px < worst) if is_bid else (px > worst):
                return 0
            del side[worst]
        side[px] = qty
        return 1

    def apply(self, bids, asks, full=False, last_id=0, exch_ts_ms=0, recv_ns=0) -> int:
        changed = 0
        if full:
            self.bids, self.asks = {}, {}
            for px, q in bids:
                self.set_level(True, px, q)
            for px, q in asks:
                self.set_level(False, px, q)
            changed = len(self.bids) + len(self.asks)
            self.version += 1
        else:
            for px, q in bids:
                changed += self.set_level(True, px, q)
            for px, q in asks:
                changed += self.set_level(False, px, q)
            if changed:
                self.version += 1
        self.last_id, self.exch_ts_ms, self.recv_ns = last_id, exch_ts_ms, recv_ns
        return changed

    def clear(self):
        self.bids, self.asks = {}, {}
        self.version += 1

    def top(self, n=None):
        b = sorted(self.bids.items(), key=lambda kv: kv[0], reverse=True)
        a = sorted(self.asks.items(), key=lambda kv: kv[0])
        if n is not None:
            b, a = b[:n], a[:n]
        return b, a

    @property
    def crossed(self) -> bool:
        return bool(self.bids) and bool(self.asks) and max(self.bids) >= min(self.asks)


def decimal_levels(rows, price_scale: int, qty_scale: int):
    """Venue ``[[price, qty], ...]`` strings -> mantissa pairs via Decimal (exact or ValueError)."""
    out = []
    for p, q in rows:
        dp, dq = Decimal(p).scaleb(price_scale), Decimal(q).scaleb(qty_scale)
        if dp != dp.to_integral_value() or dq != dq.to_integral_value():
            raise ValueError("not representable at the scale: %r %r" % (p, q))
        out.append((int(dp), int(dq)))
    return out

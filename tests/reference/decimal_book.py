"""Oracle for cexnode._core.book.Book: a dict-per-side L2 book holding every level it was told.

Works with any totally ordered prices (int mantissas or decimal.Decimal). Rules (book.pyx docstring):
qty 0 deletes; every level is kept up to ``max_levels`` a side; an insert into a side at the cap is
not made and sets ``overflowed`` (the owner resyncs); a full update replaces both sides (zero
quantities skipped, the best ``max_levels`` kept, ``overflowed`` when more came); version bumps once
per update that changed anything. ``depth`` is only what readers use.
"""
from __future__ import annotations

from decimal import Decimal


class RefBook:
    def __init__(self, depth: int = 400, max_levels: int = 20000):
        self.depth = depth
        self.max_levels = max_levels
        self.overflowed = False
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
        if len(side) >= self.max_levels:
            self.overflowed = True
            return 0
        side[px] = qty
        return 1

    def apply(self, bids, asks, full=False, last_id=0, exch_ts_ms=0, recv_ns=0) -> int:
        changed = 0
        if full:
            self.overflowed = False
            self.bids = self._best(bids, True)
            self.asks = self._best(asks, False)
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

    def _best(self, levels, is_bid: bool) -> dict:
        side = {}
        for px, q in levels:
            if q < 0:
                raise ValueError("negative quantity")
            if q:
                side[px] = q
            else:
                side.pop(px, None)
        if len(side) > self.max_levels:
            self.overflowed = True
            keep = sorted(side, reverse=is_bid)[:self.max_levels]
            side = {px: side[px] for px in keep}
        return side

    def clear(self):
        self.bids, self.asks = {}, {}
        self.overflowed = False
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

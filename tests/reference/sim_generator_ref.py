"""Reference of the simulator's per-step book generator (``MarketGenerator.step_book`` as it was
before it changed the true book in place): it copies both sides, edits the copies, and diffs them
against the book. The oracle of the in-place generator: same random draws, same book states.
"""
from __future__ import annotations

from cexnode.sim.books import BookDiff, Trade
from cexnode.sim.generator import BookState, MarketGenerator


class CopyingGenerator(MarketGenerator):
    """:class:`MarketGenerator` whose ``step_book`` is the copying original."""

    def step_book(self, st: BookState, ts_ms: int) -> BookDiff | None:
        p, rnd, book = self.p, st.rnd, st.book
        # dislocation: jump or decay
        if p.dislocation_probability > 0 and rnd.random() < p.dislocation_probability:
            st.offset_bps = p.dislocation_bps if rnd.random() < 0.5 else -p.dislocation_bps
        else:
            st.offset_bps *= self.decay
            if abs(st.offset_bps) < 0.05:
                st.offset_bps = 0.0
        bids, asks = dict(book.bids), dict(book.asks)
        trades: list[Trade] = []
        # a taker trade eats (part of) the touch
        if rnd.random() < p.trade_probability:
            taker_buy = rnd.random() < 0.5
            side = asks if taker_buy else bids
            if side:
                px = min(side) if taker_buy else max(side)
                have = side[px]
                take = have if rnd.random() < 0.3 else max(1, int(have * rnd.random()))
                take = min(take, have)
                if take == have:
                    del side[px]
                else:
                    side[px] = have - take
                st.trade_id += 1
                trades.append(Trade(st.trade_id, px, take, taker_buy, ts_ms))
        # the touch follows the quote
        b, a = self._touch(st)
        for px in [x for x in bids if x > b]:
            del bids[px]
        for px in [x for x in asks if x < a]:
            del asks[px]
        if b not in bids:
            bids[b] = self._size(st, b)
        if a not in asks:
            asks[a] = self._size(st, a)
        # resize / remove a few levels
        for _ in range(rnd.randint(0, 2)):
            side, touch = (bids, b) if rnd.random() < 0.5 else (asks, a)
            px = rnd.choice(sorted(side))
            if px != touch and rnd.random() < 0.25:
                del side[px]
            else:
                side[px] = self._size(st, px)
        # a new level in a gap
        if rnd.random() < 0.3:
            is_bid = rnd.random() < 0.5
            side = bids if is_bid else asks
            if len(side) >= 2:
                prices = sorted(side)
                i = rnd.randrange(len(prices) - 1)
                lo, hi = prices[i], prices[i + 1]
                if hi - lo > 1:
                    px = rnd.randint(lo + 1, hi - 1)
                    side[px] = self._size(st, px)
        # keep each side at book_levels
        self._fix_depth_ref(st, bids, True)
        self._fix_depth_ref(st, asks, False)
        db = _changes(book.bids, bids, reverse=True)
        da = _changes(book.asks, asks, reverse=False)
        if not db and not da and not trades:
            return None
        return book.apply(db, da, n_ids=rnd.randint(1, 3), ts_ms=ts_ms, trades=trades)

    def _fix_depth_ref(self, st: BookState, side: dict, is_bid: bool) -> None:
        n = self.p.book_levels
        if len(side) > n:
            for px in sorted(side, reverse=not is_bid)[: len(side) - n]:
                del side[px]
        while len(side) < n:
            worst = min(side) if is_bid else max(side)
            px = worst - st.rnd.randint(1, 2 * st.spacing) if is_bid else worst + st.rnd.randint(1, 2 * st.spacing)
            if px < 1:
                break
            side[px] = self._size(st, px)


def _changes(old: dict, new: dict, *, reverse: bool) -> list:
    out = []
    for px in sorted(old.keys() | new.keys(), reverse=reverse):
        q = new.get(px, 0)
        if old.get(px, 0) != q:
            out.append((px, q))
    return out


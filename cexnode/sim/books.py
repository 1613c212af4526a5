"""The simulator's true L2 books: integer ticks → integer steps, plus the venue's sequence id.

A :class:`TrueBook` is what the venue "really" holds. Every change goes through :meth:`TrueBook.apply`,
which assigns the change its id range ``[first, last]`` (the first and last update id a push
carries) and returns a :class:`BookDiff` that the venue then publishes.
REST snapshots read the same object, so a snapshot's id is always the ``last`` of the newest diff
applied, and the next diff starts at ``id + 1`` (the venues' sync rule).
"""
from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field

__all__ = ["TrueBook", "BookDiff", "Trade"]


@dataclass(slots=True)
class Trade:
    """A public trade. ``taker_buy``: the taker bought (hit the ask). Sizes in venue units (steps)."""

    id: int
    price: int
    size: int
    taker_buy: bool
    ts_ms: int


@dataclass(slots=True)
class BookDiff:
    """One published change: absolute sizes per level (0 deletes) and the id range it covers.

    ``full``: ``bids``/``asks`` are the whole book (a venue's full-book push), not changes.
    """

    symbol: str                       # venue symbol
    first: int
    last: int
    bids: list = field(default_factory=list)     # [(ticks, steps)]
    asks: list = field(default_factory=list)
    ts_ms: int = 0
    full: bool = False
    trades: list = field(default_factory=list)   # [Trade] executed in this step


class TrueBook:
    """Sorted price ladders with integer keys, and the venue's update id.

    ``bids``/``asks``: dict ticks → steps. ``bid_px`` ascending list of bid prices (best last),
    ``ask_px`` ascending list of ask prices (best first); after :meth:`set_levels` they are sorted
    again when next read (a replayed book changes often and is seldom read).
    """

    __slots__ = ("symbol", "bids", "asks", "_bid_px", "_ask_px", "last_id", "ts_ms", "_unsorted")

    def __init__(self, symbol: str, start_id: int):
        self.symbol = symbol
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self._bid_px: list[int] = []
        self._ask_px: list[int] = []
        self._unsorted = False
        self.last_id = start_id
        self.ts_ms = 0

    @property
    def bid_px(self) -> list[int]:
        if self._unsorted:
            self._sort()
        return self._bid_px

    @property
    def ask_px(self) -> list[int]:
        if self._unsorted:
            self._sort()
        return self._ask_px

    def _sort(self) -> None:
        self._bid_px[:] = sorted(self.bids)
        self._ask_px[:] = sorted(self.asks)
        self._unsorted = False

    # -- reading
    def best_bid(self):
        return (self.bid_px[-1], self.bids[self.bid_px[-1]]) if self.bid_px else None

    def best_ask(self):
        return (self.ask_px[0], self.asks[self.ask_px[0]]) if self.ask_px else None

    def top(self, n: int | None = None) -> tuple[list, list]:
        """``(bids best first, asks best first)`` as ``[(ticks, steps)]``, at most ``n`` levels each."""
        bp = self.bid_px[::-1] if n is None else self.bid_px[:-n - 1:-1] if n > 0 else []
        ap = self.ask_px if n is None else self.ask_px[:n]
        return [(p, self.bids[p]) for p in bp], [(p, self.asks[p]) for p in ap]

    # -- writing
    def _set(self, is_bid: bool, px: int, qty: int) -> None:
        side, ladder = (self.bids, self.bid_px) if is_bid else (self.asks, self.ask_px)
        if qty < 0:
            raise ValueError("negative size %d at %d" % (qty, px))
        if qty == 0:
            if px in side:
                del side[px]
                del ladder[bisect_left(ladder, px)]
            return
        if px not in side:
            insort(ladder, px)
        side[px] = qty

    def apply(self, bids, asks, *, n_ids: int = 1, ts_ms: int = 0, full: bool = False, trades=()) -> BookDiff:
        """Apply absolute level changes (or a full replacement), advance the id by ``n_ids``.

        Returns the diff to publish; its ``bids``/``asks`` hold only levels that really changed
        (a full diff holds the whole book after the change).
        """
        if n_ids < 1:
            raise ValueError("a diff covers at least one id")
        if full:
            self.bids.clear(), self.asks.clear(), self.bid_px.clear(), self.ask_px.clear()
            for px, q in bids:
                if q:
                    self._set(True, px, q)
            for px, q in asks:
                if q:
                    self._set(False, px, q)
            ob, oa = self.top()
        else:
            ob, oa = [], []
            for px, q in bids:
                if self.bids.get(px, 0) != q:
                    self._set(True, px, q)
                    ob.append((px, q))
            for px, q in asks:
                if self.asks.get(px, 0) != q:
                    self._set(False, px, q)
                    oa.append((px, q))
        first = self.last_id + 1
        self.last_id += n_ids
        self.ts_ms = ts_ms
        return BookDiff(self.symbol, first, self.last_id, ob, oa, ts_ms, full, list(trades))

    def set_levels(self, bids, asks) -> None:
        """Set absolute sizes (0 deletes) without making a diff (a replayed one: :meth:`commit` next)."""
        bside, aside = self.bids, self.asks
        for px, q in bids:
            if q:
                bside[px] = q
            else:
                bside.pop(px, None)
        for px, q in asks:
            if q:
                aside[px] = q
            else:
                aside.pop(px, None)
        self._unsorted = True

    def commit(self, bids, asks, *, n_ids: int, ts_ms: int, trades=()) -> BookDiff:
        """The diff of changes already made to the levels in place (the generator edits the book
        directly): advance the id by ``n_ids``; ``bids``/``asks`` are the changed levels, best first."""
        if n_ids < 1:
            raise ValueError("a diff covers at least one id")
        first = self.last_id + 1
        self.last_id += n_ids
        self.ts_ms = ts_ms
        return BookDiff(self.symbol, first, self.last_id, bids, asks, ts_ms, False, list(trades))

    @property
    def crossed(self) -> bool:
        return bool(self.bid_px) and bool(self.ask_px) and self.bid_px[-1] >= self.ask_px[0]

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)

"""Deterministic market generator: seeded random walks, per-venue books, dislocations, trades.

Model
-----
* One mid price per economic instrument (base/quote): a geometric random walk with per-step
  standard deviation ``volatility_bps``. Spot and perpetual books of the same base share it.
* Each (venue, symbol) book quotes around ``mid × (1 + (offset + noise) / 10⁴)``: ``noise`` is a small
  per-step jitter (``noise_bps``); ``offset`` is the venue's *dislocation*: with probability
  ``dislocation_probability`` per step it jumps to ±``dislocation_bps`` and then decays with a half
  life of ``dislocation_half_life_ms``. A jump larger than both venues' fees is an arbitrage.
* Books change incrementally (a few levels per step, like a real diff stream): the touch follows
  the quote, a random taker trade eats part of the touch (``trade_probability``), random levels are
  resized or removed, new levels appear in gaps, and each side is kept at ``book_levels`` levels.
* Every step of one book covers 1-3 update ids, so pushes span id ranges (first id < last id)
  as on the real venues.

Determinism: every random stream is ``random.Random("<seed>:<name>")`` (string seeds are hashed with
SHA-512, stable across processes), and one :meth:`MarketGenerator.step` advances every book once
in a fixed order. The same seed and config therefore give the same sequence of diffs, whatever
the wall clock does; timestamps are the only inputs from outside.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal

from .books import BookDiff, Trade, TrueBook
from .instruments import SimInstrument

__all__ = ["GeneratorParams", "MarketGenerator", "BookState"]


@dataclass(frozen=True, kw_only=True)
class GeneratorParams:
    """Numbers of the market model (see module docstring); built from ``SimConfig``."""

    seed: int = 1
    step_ms: float = 10.0
    volatility_bps: float = 1.0
    noise_bps: float = 0.3
    half_spread_bps: float = 0.5
    level_spacing_bps: float = 0.5
    level_notional: float = 3000.0
    book_levels: int = 50
    trade_probability: float = 0.3
    dislocation_probability: float = 0.02
    dislocation_bps: float = 30.0
    dislocation_half_life_ms: float = 300.0


class BookState:
    """Generator state of one (venue, symbol) book. ``book`` is the venue's true book."""

    __slots__ = ("venue", "inst", "book", "rnd", "offset_bps", "spacing", "tick_px", "key", "trade_id")

    def __init__(self, venue: str, inst: SimInstrument, seed: int):
        self.venue = venue
        self.inst = inst
        self.key = (inst.base, inst.quote)
        self.rnd = random.Random("%d:%s:%s" % (seed, venue, inst.venue_symbol))
        self.book = TrueBook(inst.venue_symbol, self.rnd.randrange(10 ** 9, 10 ** 11))
        self.offset_bps = 0.0
        self.tick_px = float(inst.tick)
        self.spacing = 1
        self.trade_id = self.rnd.randrange(10 ** 8, 10 ** 10)


class MarketGenerator:
    """Steps every book of every venue; returns the diffs to publish.

    Parameters
    ----------
    params : GeneratorParams
    instruments : mapping venue -> list of :class:`SimInstrument` (books are created in this order).
    mids : mapping ``(base, quote)`` -> starting mid price.
    """

    def __init__(self, params: GeneratorParams, instruments: dict[str, list[SimInstrument]],
                 mids: dict[tuple[str, str], Decimal]):
        self.p = params
        self.mids: dict[tuple[str, str], float] = {}
        self._mid_rnd: dict[tuple[str, str], random.Random] = {}
        self.states: dict[tuple[str, str], BookState] = {}     # (venue, venue_symbol)
        self.decay = 0.5 ** (params.step_ms / params.dislocation_half_life_ms) if params.dislocation_half_life_ms > 0 else 0.0
        self.steps = 0
        for venue, insts in instruments.items():
            for inst in insts:
                key = (inst.base, inst.quote)
                if key not in self.mids:
                    self.mids[key] = float(mids[key])
                    self._mid_rnd[key] = random.Random("%d:mid:%s/%s" % (params.seed, key[0], key[1]))
                st = BookState(venue, inst, params.seed)
                st.spacing = max(1, round(self.mids[key] * params.level_spacing_bps / 1e4 / st.tick_px))
                self.states[(venue, inst.venue_symbol)] = st
                levels = self.fresh_levels(st)
                st.book.apply(*levels, full=True)

    # ------------------------------------------------------------------ helpers
    def _touch(self, st: BookState) -> tuple[int, int]:
        mid = self.mids[st.key] * (1.0 + (st.offset_bps + st.rnd.gauss(0.0, self.p.noise_bps)) / 1e4)
        hs = max(st.tick_px, mid * self.p.half_spread_bps / 1e4)
        b = max(1, math.floor((mid - hs) / st.tick_px))
        a = max(b + 1, math.ceil((mid + hs) / st.tick_px))
        return b, a

    def _size(self, st: BookState, px: int) -> int:
        """Random level size in venue steps (contracts on futures), at least one step."""
        notional = self.p.level_notional * st.rnd.lognormvariate(0.0, 0.8)
        base = notional / (px * st.tick_px)
        units = base / float(st.inst.multiplier)
        return max(1, int(units * 10 ** st.inst.size_decimals))

    def fresh_levels(self, st: BookState) -> tuple[list, list]:
        """A complete new book around the current quote (start-up and ``full`` resets)."""
        b, a = self._touch(st)
        bids, asks = [], []
        px = b
        for _ in range(self.p.book_levels):
            if px < 1:
                break
            bids.append((px, self._size(st, px)))
            px -= st.rnd.randint(1, 2 * st.spacing)
        px = a
        for _ in range(self.p.book_levels):
            asks.append((px, self._size(st, px)))
            px += st.rnd.randint(1, 2 * st.spacing)
        return bids, asks

    # ------------------------------------------------------------------ stepping
    def step(self, ts_ms: int = 0) -> list[tuple[BookState, BookDiff]]:
        """Advance every mid and every book once; returns ``[(state, diff)]`` in book order."""
        self.steps += 1
        for key, rnd in self._mid_rnd.items():
            self.mids[key] *= math.exp(rnd.gauss(0.0, self.p.volatility_bps / 1e4))
        out = []
        for st in self.states.values():
            d = self.step_book(st, ts_ms)
            if d is not None:
                out.append((st, d))
        return out

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
        self._fix_depth(st, bids, True)
        self._fix_depth(st, asks, False)
        db = _changes(book.bids, bids, reverse=True)
        da = _changes(book.asks, asks, reverse=False)
        if not db and not da and not trades:
            return None
        return book.apply(db, da, n_ids=rnd.randint(1, 3), ts_ms=ts_ms, trades=trades)

    def _fix_depth(self, st: BookState, side: dict, is_bid: bool) -> None:
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

    def reset_book(self, st: BookState, ts_ms: int = 0) -> BookDiff:
        """Replace the whole book (a venue-side reset); returns the ``full`` diff."""
        bids, asks = self.fresh_levels(st)
        return st.book.apply(bids, asks, n_ids=1, ts_ms=ts_ms, full=True)


def _changes(old: dict, new: dict, *, reverse: bool) -> list:
    out = []
    for px in sorted(old.keys() | new.keys(), reverse=reverse):
        q = new.get(px, 0)
        if old.get(px, 0) != q:
            out.append((px, q))
    return out


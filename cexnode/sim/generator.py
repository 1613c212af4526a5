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
from bisect import bisect_left, insort
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

    __slots__ = ("venue", "inst", "book", "rnd", "offset_bps", "spacing", "tick_px", "key", "trade_id", "replaced")

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
        #: (bids, asks) price -> size before the last step_book, of the levels it touched
        self.replaced: tuple[dict, dict] = ({}, {})


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
        # scheduled stepping (step_due): period in ticks -> buckets by tick % period -> books
        self._wheel: dict[int, list[list[BookState]]] = {}
        self._slot: dict[tuple[str, str], tuple[int, int]] = {}
        self._mid_tick: dict[tuple[str, str], int] = {}
        for venue, insts in instruments.items():
            for inst in insts:
                self.add_book(venue, inst, mids[(inst.base, inst.quote)])

    def add_book(self, venue: str, inst: SimInstrument, mid: Decimal) -> BookState:
        """Create the book of ``inst`` on ``venue``: a full book around ``mid``, or around the
        current mid of its base/quote when another book quotes it already."""
        params = self.p
        key = (inst.base, inst.quote)
        if key not in self.mids:
            self.mids[key] = float(mid)
            self._mid_rnd[key] = random.Random("%d:mid:%s/%s" % (params.seed, key[0], key[1]))
        st = BookState(venue, inst, params.seed)
        st.spacing = max(1, round(self.mids[key] * params.level_spacing_bps / 1e4 / st.tick_px))
        self.states[(venue, inst.venue_symbol)] = st
        levels = self.fresh_levels(st)
        st.book.apply(*levels, full=True)
        return st

    # ------------------------------------------------------------------ scheduled stepping
    def schedule(self, st: BookState, period: int, phase: int) -> None:
        """Step ``st`` on every tick ``k`` of :meth:`step_due` with ``k % period == phase``."""
        if not 0 <= phase < period:
            raise ValueError("phase %d outside 0..%d" % (phase, period - 1))
        self.unschedule(st)
        buckets = self._wheel.get(period)
        if buckets is None:
            buckets = self._wheel[period] = [[] for _ in range(period)]
        buckets[phase].append(st)
        self._slot[(st.venue, st.inst.venue_symbol)] = (period, phase)

    def unschedule(self, st: BookState) -> bool:
        """Stop stepping ``st`` in :meth:`step_due` (a halted instrument); False when it was not scheduled."""
        slot = self._slot.pop((st.venue, st.inst.venue_symbol), None)
        if slot is None:
            return False
        self._wheel[slot[0]][slot[1]].remove(st)
        return True

    def due(self, tick: int) -> list[BookState]:
        """The books scheduled on ``tick``: shorter periods first, then in the order they were scheduled."""
        out: list[BookState] = []
        for period in sorted(self._wheel):
            out.extend(self._wheel[period][tick % period])
        return out

    def step_scheduled(self, st: BookState, tick: int, ts_ms: int = 0) -> BookDiff | None:
        """Step one scheduled book on ``tick``: its mid first walks the ticks since its base/quote
        last moved (so a mid's path does not depend on how many books quote it), then the book."""
        key = st.key
        n = tick - self._mid_tick.get(key, 0)
        if n > 0:
            self.mids[key] *= math.exp(self._mid_rnd[key].gauss(0.0, self.p.volatility_bps / 1e4 * math.sqrt(n)))
            self._mid_tick[key] = tick
        return self.step_book(st, ts_ms)

    def step_due(self, tick: int, ts_ms: int = 0) -> list[tuple[BookState, BookDiff]]:
        """Step every book scheduled on ``tick`` (:meth:`due`, :meth:`step_scheduled`)."""
        self.steps += 1
        out = []
        for st in self.due(tick):
            d = self.step_scheduled(st, tick, ts_ms)
            if d is not None:
                out.append((st, d))
        return out

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
        """One step of one book: edits the true book in place (only the levels it touches) and
        returns the diff, or None when nothing changed. The random draws and the resulting books are
        those of the copy-and-compare generator it replaced (tests/reference/sim_generator_ref.py)."""
        p, rnd, book = self.p, st.rnd, st.book
        # dislocation: jump or decay
        if p.dislocation_probability > 0 and rnd.random() < p.dislocation_probability:
            st.offset_bps = p.dislocation_bps if rnd.random() < 0.5 else -p.dislocation_bps
        else:
            st.offset_bps *= self.decay
            if abs(st.offset_bps) < 0.05:
                st.offset_bps = 0.0
        bids, asks, bpx, apx = book.bids, book.asks, book.bid_px, book.ask_px
        ob: dict[int, int] = {}         # price -> size before this step, of every bid level touched
        oa: dict[int, int] = {}
        put = _put
        trades: list[Trade] = []
        # a taker trade eats (part of) the touch
        if rnd.random() < p.trade_probability:
            taker_buy = rnd.random() < 0.5
            side, ladder, old = (asks, apx, oa) if taker_buy else (bids, bpx, ob)
            if ladder:
                px = ladder[0] if taker_buy else ladder[-1]
                have = side[px]
                take = have if rnd.random() < 0.3 else max(1, int(have * rnd.random()))
                take = min(take, have)
                put(side, ladder, old, px, have - take)
                st.trade_id += 1
                trades.append(Trade(st.trade_id, px, take, taker_buy, ts_ms))
        # the touch follows the quote
        b, a = self._touch(st)
        while bpx and bpx[-1] > b:
            put(bids, bpx, ob, bpx[-1], 0)
        while apx and apx[0] < a:
            put(asks, apx, oa, apx[0], 0)
        if b not in bids:
            put(bids, bpx, ob, b, self._size(st, b))
        if a not in asks:
            put(asks, apx, oa, a, self._size(st, a))
        # resize / remove a few levels
        for _ in range(rnd.randint(0, 2)):
            side, ladder, old, touch = (bids, bpx, ob, b) if rnd.random() < 0.5 else (asks, apx, oa, a)
            px = rnd.choice(ladder)
            if px != touch and rnd.random() < 0.25:
                put(side, ladder, old, px, 0)
            else:
                put(side, ladder, old, px, self._size(st, px))
        # a new level in a gap
        if rnd.random() < 0.3:
            is_bid = rnd.random() < 0.5
            side, ladder, old = (bids, bpx, ob) if is_bid else (asks, apx, oa)
            if len(ladder) >= 2:
                i = rnd.randrange(len(ladder) - 1)
                lo, hi = ladder[i], ladder[i + 1]
                if hi - lo > 1:
                    px = rnd.randint(lo + 1, hi - 1)
                    put(side, ladder, old, px, self._size(st, px))
        # keep each side at book_levels
        self._fix_depth(st, bids, bpx, ob, True)
        self._fix_depth(st, asks, apx, oa, False)
        db = [(px, bids.get(px, 0)) for px in sorted(ob, reverse=True) if bids.get(px, 0) != ob[px]]
        da = [(px, asks.get(px, 0)) for px in sorted(oa) if asks.get(px, 0) != oa[px]]
        st.replaced = (ob, oa)
        if not db and not da and not trades:
            return None
        return book.commit(db, da, n_ids=rnd.randint(1, 3), ts_ms=ts_ms, trades=trades)

    def _fix_depth(self, st: BookState, side: dict, ladder: list, old: dict, is_bid: bool) -> None:
        n = self.p.book_levels
        while len(ladder) > n:                      # drop the worst levels
            _put(side, ladder, old, ladder[0] if is_bid else ladder[-1], 0)
        while len(ladder) < n:
            worst = ladder[0] if is_bid else ladder[-1]
            px = worst - st.rnd.randint(1, 2 * st.spacing) if is_bid else worst + st.rnd.randint(1, 2 * st.spacing)
            if px < 1:
                break
            _put(side, ladder, old, px, self._size(st, px))

    def reset_book(self, st: BookState, ts_ms: int = 0) -> BookDiff:
        """Replace the whole book (a venue-side reset); returns the ``full`` diff."""
        bids, asks = self.fresh_levels(st)
        return st.book.apply(bids, asks, n_ids=1, ts_ms=ts_ms, full=True)


def _put(side: dict, ladder: list, old: dict, px: int, qty: int) -> None:
    """Set one level of a true book side in place, remembering its size before the step in ``old``."""
    if px not in old:
        old[px] = side.get(px, 0)
    if qty:
        if px not in side:
            insort(ladder, px)
        side[px] = qty
    elif px in side:
        del side[px]
        del ladder[bisect_left(ladder, px)]

"""The scanner's view of each route: what it is worth now (a sample), and what it was worth over the run.

Each refresh reads the engine's route table afresh (routes may appear and disappear while the node
runs) and takes one :class:`RouteSample` per route: the better direction at the scan size, its net
bps and break-even depth (:mod:`cexnode.scan.depth`), and the age of every leg's book. A
:class:`RouteStats` keeps what the closing report needs with memory bounded by the values seen, not
by the run's length (counts of net bps at 0.01 and of ages in ms). Opportunities are counted from the
engine's opportunity tap, by route name: the same opportunities the engine counts.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import permutations
from typing import Iterable, Mapping, Optional

from cexnode._core.arb import Opportunity
from cexnode.routes import RouteView
from cexnode.scan.depth import depth_at_breakeven, net_bps_at_size

__all__ = ["RouteSample", "RouteStats", "ScanStats", "sample_route", "LEVELS"]

#: levels read per side per book and refresh: the size walk and the depth go no deeper
LEVELS = 100


@dataclass(frozen=True)
class RouteSample:
    """One route at one refresh (the live table's row)."""

    route: str
    symbol: str
    buy_venue: str             # the better direction: buy here ...
    sell_venue: str            # ... sell there
    net_bps: Optional[Decimal]  # at the scan size; None: a book out of sync or too thin for the size
    depth: Decimal             # quote taken on the buy venue at >= 0 bps net
    ages_ms: tuple[tuple[str, Optional[int]], ...]   # (venue, ms since its book's last update) per leg
    in_sync: bool              # every leg's book is in sync

    def age_of(self, venue: str) -> Optional[int]:
        for v, a in self.ages_ms:
            if v == venue:
                return a
        return None


def _rank(net_bps: Optional[Decimal], depth: Decimal) -> tuple[int, Decimal, Decimal]:
    return (0, Decimal(0), depth) if net_bps is None else (1, net_bps, depth)


def sample_route(view: RouteView, size: Decimal, now_ns: int, levels: int = LEVELS,
                 tops: Optional[dict[int, tuple]] = None) -> RouteSample:
    """The better of the route's directions at ``size`` quote (every ordered pair of legs whose
    books are in sync; by net bps, then depth). ``tops``: the levels of books already read at
    this refresh, by ``id(book)`` (a book in several routes is read once)."""
    ladders = {}
    ages = []
    for leg in view.legs:
        book = leg.book
        recv = book.recv_ns
        ages.append((leg.venue, (now_ns - recv) // 1_000_000 if recv else None))
        if book.in_sync:
            if tops is None:
                ladders[leg.venue] = book.top(levels)      # (bids, asks)
                continue
            top = tops.get(id(book))
            if top is None:
                top = tops[id(book)] = book.top(levels)
            ladders[leg.venue] = top
    best: Optional[tuple] = None
    for a, b in permutations(view.legs, 2):
        if a.venue not in ladders or b.venue not in ladders:
            continue
        asks, bids = ladders[a.venue][1], ladders[b.venue][0]
        net = net_bps_at_size(asks, bids, view.price_scale, view.qty_scale, a.taker_fee, b.taker_fee, size)
        depth = depth_at_breakeven(asks, bids, view.price_scale, view.qty_scale, a.taker_fee, b.taker_fee)
        cand = (_rank(net, depth), a.venue, b.venue, net, depth)
        if best is None or cand[0] > best[0]:
            best = cand
    in_sync = len(ladders) == len(view.legs)
    if best is None:
        a, b = view.legs[0], view.legs[1]
        return RouteSample(view.name, view.symbol, a.venue, b.venue, None, Decimal(0), tuple(ages), in_sync)
    _, buy, sell, net, depth = best
    return RouteSample(view.name, view.symbol, buy, sell, net, depth, tuple(ages), in_sync)


def _median(counts: Counter) -> Optional[int]:
    """The lower median of the values counted (None when nothing was)."""
    n = sum(counts.values())
    if not n:
        return None
    mid = (n - 1) // 2
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen > mid:
            return value
    raise AssertionError("unreachable")


@dataclass
class RouteStats:
    """One route over the run (the closing report's row)."""

    route: str
    symbol: str
    since: float                       # monotonic s: its opportunities are counted from here
    until: Optional[float] = None      # monotonic s it left the route table (None: still there)
    samples: int = 0                   # refreshes that saw it
    priced: int = 0                    # ... of which gave a net bps at the scan size
    best_bps: Optional[Decimal] = None
    best_direction: str = ""
    depth_max: Decimal = Decimal("0.00")
    last: Optional[RouteSample] = None
    _bps: Counter = field(default_factory=Counter)                 # net bps x 100 -> refreshes
    _ages: dict[str, Counter] = field(default_factory=dict)        # venue -> age ms -> refreshes

    def add(self, s: RouteSample) -> None:
        self.samples += 1
        self.last = s
        self.depth_max = max(self.depth_max, s.depth)
        for venue, age in s.ages_ms:
            c = self._ages.setdefault(venue, Counter())
            if age is not None:
                c[age] += 1
        if s.net_bps is None:
            return
        self.priced += 1
        self._bps[int(s.net_bps * 100)] += 1
        if self.best_bps is None or s.net_bps > self.best_bps:
            self.best_bps = s.net_bps
            self.best_direction = "%s -> %s" % (s.buy_venue, s.sell_venue)

    @property
    def median_bps(self) -> Optional[Decimal]:
        m = _median(self._bps)
        return None if m is None else Decimal(m).scaleb(-2)

    def median_ages_ms(self) -> dict[str, Optional[int]]:
        return {venue: _median(c) for venue, c in self._ages.items()}

    def minutes(self, now: float) -> float:
        return max(0.0, (self.until if self.until is not None else now) - self.since) / 60.0


class ScanStats:
    """Every route the scan has seen, and the opportunities the engine emitted for each."""

    def __init__(self, size: Decimal, started: float) -> None:
        self.size = size
        # monotonic s: the opportunities of the routes there at the first refresh count from here
        self.started = started
        self.routes: dict[str, RouteStats] = {}
        self.opportunities: Counter = Counter()       # route name -> opportunities (the engine's tap)
        self.refreshes = 0

    def on_opportunities(self, opps: list[Opportunity]) -> None:
        """The engine's opportunity tap (inside the book-update call: a count, nothing more)."""
        counts = self.opportunities
        for o in opps:
            counts[o.route] += 1

    def refresh(self, table: Mapping[str, RouteView], now_ns: int, now: float) -> list[RouteSample]:
        """Sample every route in ``table`` (the engine's, read now); returns the samples."""
        first = self.refreshes == 0
        self.refreshes += 1
        out = []
        tops: dict[int, tuple] = {}       # this refresh's levels, by book (held here: ids stay unique)
        for name, view in list(table.items()):
            st = self.routes.get(name)
            if st is None or st.until is not None:
                if st is None:
                    # routes there at the first refresh were there when the tap was attached
                    st = self.routes[name] = RouteStats(name, view.symbol, since=self.started if first else now)
                else:                          # back after a removal: the time away is no time in the table
                    st.since += now - st.until
                    st.until = None
            s = sample_route(view, self.size, now_ns, tops=tops)
            st.add(s)
            out.append(s)
        for name, st in self.routes.items():
            if name not in table and st.until is None:
                st.until = now
        return out

    def opportunities_of(self, route: str) -> int:
        return self.opportunities.get(route, 0)

    def per_minute(self, route: str, now: float) -> Optional[float]:
        st = self.routes.get(route)
        if st is None:
            return None
        minutes = st.minutes(now)
        return self.opportunities_of(route) / minutes if minutes > 0 else None

    def all_routes(self) -> Iterable[RouteStats]:
        return self.routes.values()

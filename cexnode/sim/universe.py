"""A generated market universe (``sim.universe``): which pairs each venue lists, their starting mid
prices and 24 h volumes, which assets are frozen, and the listings and delistings to come.

Everything is drawn from ``random.Random("<seed>:universe...")`` streams, so one seed gives one
universe in every process. Bases are synthetic (upper-case letters, never a real ticker's shape
such as a leveraged token's ``3L``), mids spread over ten decades (1e-5 .. 1e5 USDT) and volumes are
log-normal around ``volume_median``, so a volume floor and a ranking select something.

The universe names venues only by their market (``spot`` / ``perpetual``): every spot venue lists
the common pairs plus its own; every perpetual venue lists the ``perpetuals`` most traded common
bases. A listing adds one new base on every venue; a delisting halts one common pair everywhere.
"""
from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Optional, Protocol

__all__ = ["SimUniverse", "UniversePair", "QUOTE", "UniverseSettings"]

QUOTE = "USDT"


class UniverseSettings(Protocol):
    """The ``sim.universe`` keys the universe reads (:class:`cexnode.config.SimUniverseConfig`)."""

    spot_pairs: int
    common_pairs: int
    perpetuals: int
    frozen_assets: int
    volume_median: Decimal
    volume_sigma: float


@dataclass(frozen=True)
class UniversePair:
    """One economic instrument ``base/USDT``: starting mid and its pair-wide 24 h quote volume."""

    base: str
    mid: Decimal
    volume: float

    @property
    def spot_symbol(self) -> str:
        return self.base + "/" + QUOTE

    def symbol_on(self, market: str) -> str:
        """Unified symbol on a venue of ``market``: ``B/USDT`` or ``B/USDT:USDT``."""
        return self.spot_symbol if market == "spot" else self.spot_symbol + ":" + QUOTE


def _sig(x: float, digits: int = 5) -> Decimal:
    """``x`` rounded to ``digits`` significant digits, as a Decimal."""
    e = math.floor(math.log10(x)) - digits + 1
    return Decimal(round(x / 10 ** e)).scaleb(e)


class SimUniverse:
    """The generated universe of one simulator.

    Parameters
    ----------
    cfg : the ``sim.universe`` settings.
    seed : the simulator's seed.
    markets : ``{venue name: "spot" | "perpetual"}`` of the venues served, in venue order.

    Attributes
    ----------
    pairs : ``{base: UniversePair}`` of every pair ever listed (initial and scheduled).
    listed : ``{venue: [unified symbols]}``, the venue's listings in order (delisted ones stay: the
        venues keep showing them, halted).
    delisted : ``{venue: set of unified symbols}`` halted by a delisting.
    frozen : ``{(venue, asset): (can_deposit, can_withdraw)}`` of the frozen assets.
    """

    def __init__(self, cfg: UniverseSettings, seed: int, markets: dict[str, str]):
        self.cfg = cfg
        self.seed = seed
        self.markets = dict(markets)
        self.spot_venues = [v for v, m in markets.items() if m == "spot"]
        self.perp_venues = [v for v, m in markets.items() if m != "spot"]
        self._names = random.Random("%d:universe:names" % seed)
        self._used: set[str] = {QUOTE}
        self._draw = random.Random("%d:universe:pairs" % seed)
        self._venue_rnd = random.Random("%d:universe:venues" % seed)
        self._delist_rnd = random.Random("%d:universe:delist" % seed)
        self.pairs: dict[str, UniversePair] = {}
        self._volume: dict[tuple[str, str], Decimal] = {}
        self.listed: dict[str, list[str]] = {v: [] for v in markets}
        self.delisted: dict[str, set[str]] = {v: set() for v in markets}
        self.frozen: dict[tuple[str, str], tuple[bool, bool]] = {}
        common = [self._new_pair() for _ in range(cfg.common_pairs)]
        self.common: list[str] = [p.base for p in common]
        own = {v: [self._new_pair() for _ in range(cfg.spot_pairs - cfg.common_pairs)] for v in self.spot_venues}
        for v in self.spot_venues:
            for p in common + own[v]:
                self._list(v, p)
        by_volume = sorted(common, key=lambda p: -p.volume)
        for v in self.perp_venues:
            for p in by_volume[:cfg.perpetuals]:
                self._list(v, p)
        frozen_rnd = random.Random("%d:universe:frozen" % seed)
        if self.spot_venues:
            for i, base in enumerate(frozen_rnd.sample(self.common, cfg.frozen_assets)):
                venue = self.spot_venues[i % len(self.spot_venues)]
                # deposits off, withdrawals off, or both: either way the asset cannot make the trip
                self.frozen[(venue, base)] = ((False, True), (True, False), (False, False))[i % 3]

    # ------------------------------------------------------------------ drawing
    def _new_name(self) -> str:
        rnd = self._names
        while True:
            name = "".join(rnd.choice(string.ascii_uppercase) for _ in range(rnd.randint(3, 6)))
            if name not in self._used and not name.endswith(QUOTE):
                self._used.add(name)
                return name

    def _new_pair(self) -> UniversePair:
        rnd = self._draw
        mid = _sig(10 ** rnd.uniform(-5.0, 5.0))
        volume = float(self.cfg.volume_median) * rnd.lognormvariate(0.0, self.cfg.volume_sigma)
        p = UniversePair(self._new_name(), mid, volume)
        self.pairs[p.base] = p
        return p

    def _list(self, venue: str, p: UniversePair) -> str:
        sym = p.symbol_on(self.markets[venue])
        self.listed[venue].append(sym)
        # each venue trades its own share of the pair's volume (its 24 h ticker's quote volume), in
        # whole USDT: the precision every venue's ticker carries
        share = p.volume * self._venue_rnd.lognormvariate(0.0, 0.3)
        self._volume[(venue, sym)] = Decimal(max(1, round(share)))
        return sym

    # ------------------------------------------------------------------ reading
    def mid(self, symbol: str) -> Decimal:
        """Starting mid of a unified symbol's base."""
        return self.pairs[symbol.split("/", 1)[0]].mid

    def volume(self, venue: str, symbol: str) -> Optional[Decimal]:
        """24 h quote volume (USDT) of ``symbol`` on ``venue``; None when the venue never listed it."""
        return self._volume.get((venue, symbol))

    def is_listed(self, venue: str, symbol: str) -> bool:
        """``symbol`` is listed on ``venue`` and not delisted."""
        return (venue, symbol) in self._volume and symbol not in self.delisted[venue]

    def transfer(self, venue: str, asset: str) -> tuple[bool, bool]:
        """``(can_deposit, can_withdraw)`` of ``asset`` on ``venue``'s wallet: frozen assets as
        drawn; a delisted base takes no deposits (withdrawals stay open, as the venues show it)."""
        dep, wd = self.frozen.get((venue, asset), (True, True))
        if asset in self.pairs and any(s.split("/", 1)[0] == asset for s in self.delisted.get(venue, ())):
            dep = False
        return dep, wd

    def is_delisted_asset(self, venue: str, asset: str) -> bool:
        return any(s.split("/", 1)[0] == asset for s in self.delisted.get(venue, ()))

    # ------------------------------------------------------------------ schedule
    def list_next(self) -> list[tuple[str, str]]:
        """List one new pair on every venue (spot, and its perpetual); ``[(venue, symbol)]``."""
        p = self._new_pair()
        self.common.append(p.base)
        return [(v, self._list(v, p)) for v in self.markets]

    def delist_next(self) -> list[tuple[str, str]]:
        """Halt one common pair still listed everywhere it was; ``[(venue, symbol)]`` (empty when
        none is left)."""
        live = [b for b in self.common
                if not any(self.pairs[b].symbol_on(m) in self.delisted[v] for v, m in self.markets.items())]
        if not live:
            return []
        base = live[self._delist_rnd.randrange(len(live))]
        out = []
        for v, m in self.markets.items():
            sym = self.pairs[base].symbol_on(m)
            if (v, sym) in self._volume:
                self.delisted[v].add(sym)
                out.append((v, sym))
        return out

    def symbols(self, venue: str) -> list[str]:
        return list(self.listed[venue])

    def assets(self, venue: str) -> Iterable[str]:
        return sorted({QUOTE} | {s.split("/", 1)[0] for s in self.listed[venue]})

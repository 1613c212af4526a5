"""The universe while the node runs: the engine's routes follow the venues' own lists.

:class:`UniverseManager` (``arbitrage.universe.enabled``) reads every enabled venue's instrument
list, 24 h tickers and wallet status (its descriptor's :class:`~cexnode.universe.UniverseSource`),
selects the routes (:func:`cexnode.universe.select`) and keeps the engine equal to them:

* **at start** (:meth:`UniverseManager.load`, before the symbol registry is frozen): the selected
  routes' instruments go into the registry in rank order, so the books are created, subscribed and
  snapshotted most liquid first, and the routes are wired with the configured ones;
* **every** ``refresh_interval_s`` (:meth:`UniverseManager.refresh`): the lists are read again and
  :func:`cexnode.universe.diff` says what changed. A removed route (delisted, halted, frozen or
  filtered) is unwired first, so no new trade starts on it while trades in flight finish; its books
  that no other route reads are unsubscribed and dropped. An added route's new instruments extend
  the registry (the live books are not paused: the parsers and gateways get the newer maps), its
  books are added, subscribed and synced, and the route is wired; it trades once both books sync.

A read that fails (a venue's REST down, an answer that does not parse) changes nothing: the node
keeps its routes and tries again at the next interval. An explicit route (``arbitrage.routes``) of
the same symbol and venues wins over the universe's, and is never removed by it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

from cexnode.config import RouteConfig, UniverseConfig
from cexnode.log import get_logger
from cexnode.metrics import SeriesDef
from cexnode.universe.records import AssetTransfer, Listing, Route, Ticker24h, Universe
from cexnode.universe.selection import diff, removal_reason, select

if TYPE_CHECKING:                       # the adapters import the engine's collaborators
    from cexnode.adapters.base import VenueAdapter

__all__ = ["UniverseManager", "VenueRead", "read_venue"]


@dataclass(frozen=True)
class VenueRead:
    """One venue's lists, as read at one time."""

    venue: str
    listings: tuple[Listing, ...]
    tickers: tuple[Ticker24h, ...]
    #: None: the venue's wallet status is not judged (it publishes none, or it needs keys we lack)
    transfers: Optional[tuple[AssetTransfer, ...]]
    #: venue symbol -> the registry spec of that instrument, from the same instrument-list answer
    specs: dict[str, dict]


def _as_venue(records: Iterable[Any], venue: str) -> tuple:
    """The records under ``venue``'s name (a venue package's reader names the venue it was written
    for; a descriptor reused under another name, as a plug-in may do, reads for that name)."""
    return tuple(r if r.venue == venue else dataclasses.replace(r, venue=venue) for r in records)


async def read_venue(adapter: "VenueAdapter") -> VenueRead:
    """Read ``adapter``'s venue: instrument list, 24 h tickers and, where its descriptor names one,
    wallet status. Raises what the REST client or a reader raises."""
    src = adapter.descriptor.universe
    if src is None:
        raise ValueError("%s has no universe source (its descriptor's universe)" % adapter.name)
    payload = await adapter.rest_get_json(src.instruments_path)
    listings = _as_venue(src.parse_listings(payload), adapter.name)
    tickers = _as_venue(src.parse_tickers(await adapter.rest_get_json(src.tickers_path), list(listings)),
                        adapter.name)
    transfers: Optional[tuple[AssetTransfer, ...]] = None
    if src.transfers_path and src.parse_transfers is not None:
        body = (await adapter.signed_get_json(src.transfers_path) if src.transfers_signed
                else await adapter.rest_get_json(src.transfers_path))
        if body is not None:
            transfers = _as_venue(src.parse_transfers(body), adapter.name)
    specs = {e["venue_symbol"]: e for e in adapter.instrument_entries(payload) if isinstance(e, dict)}
    return VenueRead(adapter.name, listings, tickers, transfers, specs)


class UniverseManager:
    """Keeps the engine's routes equal to the universe (module docstring).

    ``engine`` is the :class:`cexnode.engine.Engine`: its adapters, registry, books and the
    ``wire_route`` / ``unwire_route`` pair; ``config`` its ``arbitrage.universe`` section."""

    def __init__(self, engine: Any, config: UniverseConfig) -> None:
        self.engine = engine
        self.config = config
        self.rules = config.rules()
        self.log = get_logger("universe", ["universe"])
        self.universe = Universe()
        #: route name -> Route of the universe wired now
        self.routes: dict[str, Route] = {}
        self.reads: dict[str, VenueRead] = {}
        self.read_ok = 0
        self.read_failed = 0
        self.apply_failed = 0
        #: (change, reason) -> count: ("added", "listed" | "start"), ("removed", removal_reason)
        self.changes: dict[tuple[str, str], int] = {}
        self.refused: dict[str, str] = {}          # route name -> why it could not be added
        self.last_read_s = 0.0
        self._task: Optional[asyncio.Task] = None

    # -- reading -------------------------------------------------------------------------------------
    def _venues(self) -> list["VenueAdapter"]:
        return [a for n, a in self.engine.adapters.items()
                if n not in self.engine.failed and a.descriptor.universe is not None]

    async def read(self) -> tuple[Universe, dict[str, VenueRead]]:
        """Every venue's lists and the universe they give. Raises when any venue's read fails (a
        universe of some venues only would remove the routes of the others)."""
        t0 = time.monotonic()
        adapters = self._venues()
        reads = await asyncio.gather(*(read_venue(a) for a in adapters))
        by_venue = {r.venue: r for r in reads}
        listings = [li for r in reads for li in r.listings]
        tickers = [t for r in reads for t in r.tickers]
        transfers = [t for r in reads if r.transfers is not None for t in r.transfers]
        universe = select(listings, tickers, transfers, self.rules)
        universe = Universe(routes=tuple(r for r in universe.routes if not self._explicit(r)),
                            frozen=universe.frozen)
        self.last_read_s = time.monotonic() - t0
        return universe, by_venue

    def _explicit(self, route: Route) -> bool:
        """An explicit route (``arbitrage.routes``) covers this one: same symbol, both venues."""
        return any(r.symbol == route.symbol and set(route.venues) <= set(r.venues)
                   for r in self.engine.cfg.arbitrage.routes)

    def _count(self, change: str, reason: str, n: int = 1) -> None:
        self.changes[(change, reason)] = self.changes.get((change, reason), 0) + n

    # -- at start ------------------------------------------------------------------------------------
    async def load(self, registry: Any) -> None:
        """The first read, into the registry before it is frozen: each selected route's
        instruments, most liquid route first, that the venues' configured symbols did not load."""
        self.universe, self.reads = await self.read()
        self.read_ok += 1
        # what the venues' configured symbols loaded already
        listed = {(n, sym) for n, a in self.engine.adapters.items() for sym in a.config.symbols}
        entries = []
        for route in self.universe.routes:
            for leg in route.legs:
                spec = self.reads[leg.venue].specs.get(leg.venue_symbol)
                if spec is not None and (leg.venue, leg.symbol) not in listed:
                    listed.add((leg.venue, leg.symbol))
                    entries.append(spec)
        registry.add_listing(entries)
        self.log.info("universe read", routes=len(self.universe.routes), frozen=len(self.universe.frozen),
                      instruments=len(entries), seconds=round(self.last_read_s, 3))

    def route_configs(self) -> list[Any]:
        """The universe's routes as ``arbitrage.routes`` entries (what the engine wires at start)."""
        return [RouteConfig(symbol=r.symbol, venues=list(r.venues), name=r.name) for r in self.universe.routes]

    def started(self, wired: Iterable[str]) -> None:
        """The engine wired these route names at start (a route whose instrument the registry
        refused is not among them)."""
        names = set(wired)
        for r in self.universe.routes:
            if r.name in names:
                self.routes[r.name] = r
            else:
                self.refused[r.name] = "not wired at start"
        self._count("added", "start", len(self.routes))

    # -- while running -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.config.refresh_interval_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.refresh_interval_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as e:      # a change that could not be applied: logged, counted, retried
                self.apply_failed += 1
                self.log.error("universe change failed: the next read tries again",
                               error="%s: %s" % (type(e).__name__, str(e)[:300]))

    async def refresh(self) -> tuple[int, int]:
        """Read the venues again and apply what changed; returns (added, removed). A failed read
        changes nothing (logged, counted)."""
        try:
            new, reads = await self.read()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.read_failed += 1
            self.log.warning("universe read failed: routes unchanged until the next read",
                             error="%s: %s" % (type(e).__name__, str(e)[:200]))
            return 0, 0
        self.read_ok += 1
        old = Universe(routes=tuple(self.routes.values()))
        added, removed = diff(old, new)
        listings = [li for r in reads.values() for li in r.listings]
        self.reads = reads
        self.universe = new
        for route in removed:
            self._remove(route, removal_reason(route, new, listings))
        n_added = 0
        if added:
            n_added = await self._add(added)
        return n_added, len(removed)

    def _remove(self, route: Route, reason: str) -> None:
        """Unwire ``route`` now; its books go once its trades in flight (and their hedges, which
        price from the books) have ended, unless a route reads them again by then."""
        self.routes.pop(route.name, None)
        self._count("removed", reason)
        self.log.warning("route removed", route=route.name, reason=reason)
        self.engine.unwire_route(route.name, then=lambda: self._drop_books(route))

    def _drop_books(self, route: Route) -> None:
        in_use = self.engine.books_in_use()
        drop: dict[str, list[str]] = {}
        for leg in route.legs:
            if (leg.venue, leg.symbol) not in in_use and (leg.venue, leg.symbol) in self.engine.books:
                drop.setdefault(leg.venue, []).append(leg.symbol)
        for venue, symbols in drop.items():
            self.engine.remove_books(venue, symbols)

    async def _add(self, routes: Iterable[Route]) -> int:
        routes = sorted(routes, key=lambda r: -r.quote_volume)     # most liquid first
        specs: list[dict] = []
        for route in routes:
            for leg in route.legs:
                if (leg.venue, leg.symbol) in self.engine.books:
                    continue
                spec = self.reads[leg.venue].specs.get(leg.venue_symbol)
                if spec is not None:
                    specs.append(spec)
        self.engine.add_instruments(specs)
        wanted: dict[str, list[str]] = {}
        for route in routes:
            for leg in route.legs:
                if (leg.venue, leg.symbol) not in self.engine.books and self.engine.lists(leg.venue, leg.symbol):
                    wanted.setdefault(leg.venue, [])
                    if leg.symbol not in wanted[leg.venue]:
                        wanted[leg.venue].append(leg.symbol)
        for venue, symbols in wanted.items():
            self.engine.add_books(venue, symbols)
        n = 0
        for route in routes:
            missing = [leg for leg in route.legs if (leg.venue, leg.symbol) not in self.engine.books]
            if missing:
                why = "; ".join("%s %s: %s" % (leg.venue, leg.symbol, self.engine.refusal(leg.venue, leg.venue_symbol))
                                for leg in missing)
                self.refused[route.name] = why
                self.log.warning("route not added", route=route.name, reason=why[:300])
                continue
            if not self.engine.wire_universe_route(route.symbol, list(route.venues), route.name):
                self.refused[route.name] = "fewer than two legs"
                continue
            self.routes[route.name] = route
            self.refused.pop(route.name, None)
            self._count("added", "listed")
            self.log.info("route added", route=route.name, quote_volume=str(route.quote_volume))
            n += 1
        return n

    # -- reporting -------------------------------------------------------------------------------------
    METRIC_SERIES = (
        ("cexnode_universe_routes", "Routes of the universe wired now.", "gauge", ()),
        ("cexnode_universe_changes", "Universe routes added (reason: start, listed) and removed (delisted, "
         "halted, frozen, filtered).", "counter", ("change", "reason")),
        ("cexnode_universe_reads", "Reads of the venues' lists, by result (ok, failed: routes kept; apply_failed: a "
         "change could not be applied, logged, the next read tries again).", "counter", ("result",)),
    )

    def register_metrics(self, metrics: Any) -> None:
        for name, help_, kind, labels in self.METRIC_SERIES:
            metrics.define(SeriesDef(name, help_, kind, labels))
        metrics.add_source("cexnode_universe_routes", lambda: [((), len(self.routes))])
        metrics.add_source("cexnode_universe_changes", lambda: list(self.changes.items()))
        metrics.add_source("cexnode_universe_reads",
                           lambda: [(("ok",), self.read_ok), (("failed",), self.read_failed),
                                    (("apply_failed",), self.apply_failed)])


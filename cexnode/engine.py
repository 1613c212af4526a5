"""Engine: wires venues, books, arbitrage routes and the executor (docs/design.md §1).

Start-up is phased because the Cython structures need every instrument before they exist:

1. **instruments** — every venue adapter loads its instrument info concurrently (REST, or the
   config's ``instruments``) into one :class:`SymbolRegistry`; the registry is frozen, which
   fixes the shared price/quantity scales of each economic instrument;
2. **pipeline** — one :class:`BookRouter` (the parsers' sink: BookSync → Book → ArbEngine), one
   book per (venue, symbol), the executor with a gateway per venue (paper: :class:`PaperGateway`
   on our own books; live: the adapters'), and the arbitrage routes of ``arbitrage.routes``, each
   wired by :meth:`Engine.wire_route` — the one way a route is wired, at start or while the node
   runs (the universe; :meth:`Engine.unwire_route` takes one away);
3. **feeds** — the adapters connect, subscribe and sync their books concurrently, each within its
   ``start_timeout_s``; ``node.on_venue_failure`` decides whether a failed venue stops the node.

An opportunity reaches the executor from inside the book-update call (never on a timer).

Where the frames and REST answers come from is the engine's :class:`~cexnode.adapters.transport.
Transport`, chosen once at start: the venues themselves (:class:`~cexnode.adapters.transport.
LiveTransport`, tapped when the node context holds a capture sink: ``cexnode record``) or a capture
file (:class:`~cexnode.capture.transport.CaptureTransport`: ``cexnode replay``, with trading off).
Either way the same adapters, parsers, books, router and ArbEngine run.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from decimal import Decimal
from typing import Any, Callable, Optional

from cexnode._core.arb import ArbEngine
from cexnode._core.router import BookRouter
from cexnode._core.symbols import SymbolRegistry, get_symbol
from cexnode.adapters import create_adapter
from cexnode.adapters.registry import descriptor, descriptors
from cexnode.adapters.transport import CaptureSink, LiveTransport, Transport
from cexnode.component import Component, NodeContext
from cexnode.config import RouteConfig
from cexnode.execution import (Executor, LegRules, PaperGateway, PositionBook, RiskManager, RoutedBooks,
                               build_paper_gateways)
from cexnode.execution.legs import venue_symbol
from cexnode.execution.paper import reconfigure_paper_gateways
from cexnode.execution.recovery import AuditFold, Checkpointer, recover
from cexnode.log import get_logger
from cexnode.metrics import add_book_sources, books_readiness, venues_readiness
from cexnode.net.ratelimit import min_interval_s
from cexnode.routes import LegView, RouteView
from cexnode.universe.manager import UniverseManager

__all__ = ["Engine", "route_legs", "route_symbol_on", "format_summary", "context_capture"]


def route_symbol_on(venue: str, symbol: str) -> str:
    """A route's spot symbol as listed on ``venue`` (:func:`cexnode.execution.legs.venue_symbol`)."""
    return venue_symbol(venue, symbol)


def context_capture(context: Any) -> Optional[CaptureSink]:
    """The node context's capture sink (``cexnode record`` sets one), or None."""
    return context.capture


class Engine(Component):
    """Everything between the venues' sockets and the executor (module docstring)."""

    name = "engine"

    def __init__(self, node: Any, *, transport: Optional[Transport] = None, trading: bool = True) -> None:
        """``transport``: where market data comes from (default: the venues, tapped by the
        context's capture sink if any); ``trading=False``: no executor (replay), the
        opportunities go only to :attr:`opportunity_taps`."""
        self.node = node
        self.cfg = node.cfg
        self.context: NodeContext = node.context
        self.log = get_logger("engine", ["engine"])
        self.adapters = {name: create_adapter(name, vcfg, node.context) for name, vcfg in self.cfg.venues.enabled()}
        self.registry: Any = None
        self.router: Any = None
        self.arb: Any = None
        self.executor: Any = None
        self.risk: Any = None
        self.positions: Any = None
        self.books: dict[tuple[str, str], Any] = {}       # (venue, unified symbol) -> Book
        #: route name -> its view (the scanner reads it each refresh; routes may come and go)
        self.route_table: dict[str, RouteView] = {}
        self.failed: dict[str, str] = {}
        self.started_at = 0.0
        self.opportunities = 0
        self.last_opportunity: Any = None
        self.transport = transport
        self.trading = trading
        #: called with every batch of opportunities, from inside the book-update call (record, replay)
        self.opportunity_taps: list[Callable[[list], None]] = []
        self._status_task: Optional[asyncio.Task] = None
        self._last_status = (0.0, 0)
        self._cap_assets: dict[str, tuple[str, ...]] = {}   # venue -> assets the ArbEngine's caps read there
        self._caps_pushed: dict[str, dict] = {}             # venue -> what set_balances got last
        self._leg_venues: set[str] = set()                  # venues with an arbitrage leg
        self._perp_venues: set[str] = set()                 # venues whose legs are perpetuals
        self._cap_uses: dict[str, dict[str, int]] = {}      # venue -> asset -> wired legs reading it
        self._perp_uses: dict[str, int] = {}                # venue -> wired perpetual legs
        #: route name -> its legs' (venue, venue unified symbol, assets its caps read): wire_route
        self._wired: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {}
        #: the books of the wired routes: the risk manager's stale-data source
        self.routed_books = RoutedBooks()
        self._feeds_started = False          # routes wired from now on are news (logged)
        self.balance_pushes = 0
        self.summary: list[str] = []           # the closing summary table, once stopped
        self.checkpointer: Optional[Any] = None   # keeps the audit checkpoint current (recovery)
        #: arbitrage.universe: keeps the routes equal to the venues' lists while the node runs
        self.universe: Optional[UniverseManager] = None
        self._kill_signal_installed = False
        self.context.engine = self

    # -- phases ------------------------------------------------------------------------------------
    async def build(self) -> None:
        """Phases 1 and 2 (instruments, pipeline): everything but the feeds, the executor's start
        and the status lines (``start`` runs it first)."""
        self.started_at = time.monotonic()
        if self.transport is None:
            self.transport = LiveTransport(capture=context_capture(self.context))
        for adapter in self.adapters.values():
            adapter.use_transport(self.transport)
        self.registry = SymbolRegistry()
        await self._each_venue("load instruments", lambda a: a.load_instruments(self.registry))
        if self.cfg.arbitrage.universe.enabled:
            # the universe's instruments join the configured ones before the registry is frozen,
            # most liquid route first: books are created, subscribed and synced in that order
            self.universe = UniverseManager(self, self.cfg.arbitrage.universe)
            await asyncio.wait_for(self.universe.load(self.registry), self.cfg.node.start_timeout_s)
        self.registry.freeze()
        self._build_pipeline()

    async def start(self) -> None:
        if self.registry is None:          # a replay builds first, then starts
            await self.build()
        await self._each_venue("start", lambda a: a.start())
        self._feeds_started = True
        self._register_readiness()
        self._register_metrics()
        if self.executor is not None:
            await self._recover()          # before the first trade: the audit trail's state
            self.executor.start()
            try:                           # SIGUSR1 toggles the kill switch (as does risk.kill_switch_file)
                self.risk.install_signal_handler(asyncio.get_running_loop())
                self._kill_signal_installed = True
            except (RuntimeError, ValueError, NotImplementedError) as e:     # not the main thread
                self.log.warning("SIGUSR1 kill switch not installed", error=repr(e)[:200])
            try:
                await asyncio.wait_for(self.executor.refresh_balances(), self.cfg.node.start_timeout_s)
            except Exception as e:
                self.log.warning("initial balance refresh failed; trades will refresh first", error=repr(e)[:200])
        if self.universe is not None:
            self.universe.register_metrics(self.context.metrics)
            self.universe.start()
        self.restart_status()

    async def _recover(self) -> None:
        """Rebuild the executor's state from the audit trail (``trading.recover``) and keep its
        checkpoint current (``log.audit.checkpoint_interval_s``); see cexnode.execution.recovery."""
        cfg = self.cfg
        path = cfg.log.audit.path
        if not cfg.trading.recover or not path:
            return
        loop = asyncio.get_running_loop()
        rec = await loop.run_in_executor(None, lambda: recover(path, window_s=cfg.risk.error_window_s))
        fold = rec.fold
        self.positions.adopt(fold.positions)
        summary = await self.executor.recover(fold, deadline_s=cfg.node.start_timeout_s / 2)
        self.log.info("recovered from the audit trail", records=fold.records, seconds=round(rec.seconds, 3),
                      from_checkpoint=rec.from_checkpoint, **summary)
        if cfg.log.audit.checkpoint_interval_s > 0:
            # its own copy of the fold: the executor's positions move on without it
            self.checkpointer = Checkpointer(path, AuditFold.from_dict(fold.to_dict()), rec.offset,
                                             interval_s=cfg.log.audit.checkpoint_interval_s, logger=self.log)
            self.checkpointer.start()

    async def _each_venue(self, what: str, fn) -> None:
        names = [n for n in self.adapters if n not in self.failed]

        async def one(name: str) -> None:
            timeout = self.adapters[name].config.start_timeout_s
            await asyncio.wait_for(fn(self.adapters[name]), timeout)

        results = await asyncio.gather(*(one(n) for n in names), return_exceptions=True)
        for name, r in zip(names, results):
            if isinstance(r, BaseException):
                reason = "timed out" if isinstance(r, asyncio.TimeoutError) else "%s: %s" % (type(r).__name__, r)
                self.failed[name] = "%s: %s" % (what, reason)
                self.log.error("venue failed", venue=name, phase=what, reason=reason[:300])
        if self.failed and self.cfg.node.on_venue_failure == "stop":
            raise RuntimeError("venue(s) failed: " + "; ".join("%s (%s)" % kv for kv in sorted(self.failed.items())))

    def _build_pipeline(self) -> None:
        cfg = self.cfg
        a = cfg.arbitrage
        self.router = BookRouter()
        self.arb = ArbEngine(min_profit=a.min_profit, min_bps=a.min_bps, max_notional=a.max_notional,
                             max_book_age_ms=a.max_book_age_ms, slippage_bps=a.slippage_bps,
                             venue_names={d.venue_id: d.name for d in descriptors()})
        live = [n for n in self.adapters if n not in self.failed]
        for name in live:
            smap = self.registry.map(name)
            self.adapters[name].attach(smap, self.router)
            for sym in smap.symbols():
                self.books[(name, sym.name)] = self.router.book(self.adapters[name].venue_id, sym.id)
        if self.trading:
            self._build_executor({})
        routes = list(a.routes) + (self.universe.route_configs() if self.universe is not None else [])
        for r in routes:
            legs, leg_rules = route_legs(r, self.registry, self.books, cfg.venues, skip=self.failed,
                                         margin_fraction=cfg.trading.futures_margin_fraction)
            if len(legs) < 2:
                self.log.warning("route disabled: fewer than two venues available", route=r.name or r.symbol)
                continue
            self.wire_route(r.name or "%s %s" % (r.symbol, "/".join(r.venues)), r.symbol, legs, leg_rules)
        if self.universe is not None:
            self.universe.started(self.wired_routes)
        self.router.set_arb(self.arb)
        self.router.on_opportunities = self._on_opportunities
        # opportunities come sized to the free balances (less reservations) as they change
        if self.executor is not None and a.size_to_balances:
            self.executor.add_free_listener(self._push_free)

    # -- routes, wired at start (arbitrage.routes) and while the node runs (the universe) ----------
    def wire_route(self, name: str, symbol: str, legs: list[dict], rules: dict) -> None:
        """Trade route ``name`` on ``symbol`` from now on: its ArbEngine legs (``legs``, as
        :func:`route_legs` makes them: each with its ``venue`` and ``book``) and its executor leg
        rules (``rules``: ``{(venue, venue unified symbol): LegRules}``). Besides the ArbEngine
        route: the executor's rules, the balance caps of its legs' assets (pushed at once from the
        free balances the executor holds), its books in the stale-data check (a book wired while
        the node runs is watched from its first sync on: :class:`RoutedBooks`) and the paper
        venues' books; a live venue's gateway learns an instrument it did not have (a listing added
        to the registry after start)."""
        if name in self._wired:
            raise ValueError("route %r is wired already" % name)
        p, q = self.registry.scales(symbol)
        self.arb.add_route(name, symbol, p, q, legs)
        base, quote = symbol.split(":")[0].split("/")
        wired = tuple((leg["venue"], route_symbol_on(leg["venue"], symbol),
                       # a perp leg's caps read the quote margin only (arb.pxd rule 3)
                       (quote,) if leg.get("margin_fraction") is not None else (quote, base)) for leg in legs)
        for (venue, sym, _), leg in zip(wired, legs):
            # a book is watched by the stale-data check from its first sync: one that has not
            # synced yet (hundreds start together; a listing syncs later) cannot trade its route,
            # and must not halt the routes whose books are in sync
            self.routed_books.add((venue, sym), leg["book"], pending=True)
        self._wired[name] = wired
        self.route_table[name] = RouteView(name, symbol, tuple(
            LegView(leg["venue"], route_symbol_on(leg["venue"], symbol), leg["book"], leg["taker_fee"])
            for leg in legs), p, q)
        if self._feeds_started:        # those of arbitrage.routes are the config's; these are news
            self.log.info("route wired", route=name, symbol=symbol, venues=[w[0] for w in wired])
        if self.executor is not None:
            self.executor.add_route_rules(rules, route=name)
            for (venue, sym, _), leg in zip(wired, legs):
                gw = self.executor.gateways.get(venue)
                if isinstance(gw, PaperGateway):
                    gw.add_book(sym, leg["book"])
                elif gw is not None and hasattr(gw, "bind_symbol_map") and gw.instrument(sym) is None:
                    gw.bind_symbol_map(self.registry.map(venue))
        self._route_caps(wired, add=True)

    def unwire_route(self, name: str, then: Optional[Callable[[], None]] = None) -> None:
        """Route ``name`` trades no more: the ArbEngine drops it, the executor skips what is left
        of its opportunities (``route_removed``) while its trades in flight finish (hedges and
        reconciliation included), its books leave the stale-data check (those no other route
        uses), and once nothing of it is in flight its leg rules and paper books go. Its trades
        stay in the positions, the metrics and the closing summary. Unknown names are ignored.
        ``then``: called once nothing of the route is in flight any more (at once without an
        executor): what must outlive its trades, such as the books a hedge still reads."""
        wired = self._wired.pop(name, None)
        if wired is None:
            return
        self.arb.remove_route(name)
        self.route_table.pop(name, None)
        for venue, sym, _ in wired:
            self.routed_books.remove((venue, sym))
        self._route_caps(wired, add=False)
        if self.executor is not None:
            def released() -> None:
                self._drop_paper_books(wired)
                if then is not None:
                    then()
            self.executor.remove_route(name, on_released=released)
        elif then is not None:
            then()
        self.log.info("route unwired", route=name,
                      trade_in_flight=self.executor is not None and self.executor.releasing(name))

    @property
    def wired_routes(self) -> list[str]:
        """The routes trading now (wire_route), in the order they were wired."""
        return list(self._wired)

    def _drop_paper_books(self, wired: tuple) -> None:
        """A removed route's trades have ended: the paper venues forget the books no wired route uses."""
        for venue, sym, _ in wired:
            gw = self.executor.gateways.get(venue) if self.executor is not None else None
            if isinstance(gw, PaperGateway) and (venue, sym) not in self.routed_books:
                gw.remove_book(sym)

    def _route_caps(self, wired: tuple, add: bool) -> None:
        """One route's legs (``wired``) join (``add``) or leave the balance caps (venue -> assets
        the wired routes read there), the leg venues and the perpetual venues; a venue whose caps
        read a new asset gets them pushed now (the free balances the executor already holds: the
        whole account, every asset). Counted per use, so wiring is not quadratic in the routes."""
        grown = []
        for venue, sym, assets in wired:
            uses = self._cap_uses.setdefault(venue, {})
            for a in assets:
                n = uses.get(a, 0) + (1 if add else -1)
                if n > 0:
                    uses[a] = n
                else:
                    uses.pop(a, None)
                if add and n == 1:
                    grown.append(venue)
            if ":" in sym:
                n = self._perp_uses.get(venue, 0) + (1 if add else -1)
                if n > 0:
                    self._perp_uses[venue] = n
                else:
                    self._perp_uses.pop(venue, None)
            if uses:
                self._cap_assets[venue] = tuple(uses)
            else:
                self._cap_assets.pop(venue, None)
                self._cap_uses.pop(venue, None)
        self._leg_venues = set(self._cap_assets)
        self._perp_venues = set(self._perp_uses)
        ex = self.executor
        if ex is None or not self.cfg.arbitrage.size_to_balances:
            return
        for venue in dict.fromkeys(grown):
            free = ex.free_balances(venue)
            if free is not None:           # None: not observed yet (the first observation pushes)
                self._push_free(venue, free)

    def _build_executor(self, rules: dict) -> None:
        cfg = self.cfg
        self.positions = PositionBook()
        self.risk = RiskManager(cfg.risk, self.positions, book_ages_ms=self.routed_books)
        if cfg.trading.mode == "paper":
            by_venue: dict[str, dict[str, Any]] = {}
            for (venue, sym), book in self.books.items():
                by_venue.setdefault(venue, {})[sym] = book
            gateways = {v: g for v, g in build_paper_gateways(cfg, by_venue, mid_price=self.mid_price).items()
                        if v not in self.failed}
        else:
            gateways = {}
            for name, ad in self.adapters.items():
                gw = getattr(ad, "gateway", None)
                if name not in self.failed:
                    if gw is None:
                        raise RuntimeError("%s: live order entry is not available in this adapter" % name)
                    gateways[name] = gw
            for name in gateways:
                # a REST balance refresh waits for the venue's balance-request spacing within the order timeout
                desc = descriptor(name)
                if desc.balance_request is None or desc.rest_limits is None:
                    continue
                spacing_ms = 1000 * min_interval_s(desc.rest_limits(), *desc.balance_request,
                                                   self.adapters[name].config.rest.limit_headroom)
                if cfg.trading.order_timeout_ms < spacing_ms:
                    self.log.warning("trading.order_timeout_ms is below the venue's balance request spacing: a "
                                     "balance refresh right after another can time out (trade refused: "
                                     "balance_unavailable)", venue=name, order_timeout_ms=cfg.trading.order_timeout_ms,
                                     spacing_ms=round(spacing_ms))
        self.executor = Executor(gateways=gateways, risk=self.risk, positions=self.positions,
                                 trading=cfg.trading, rules=rules)

    def mid_price(self, venue: str, symbol: str) -> Optional[Decimal]:
        """The mid of ``venue``'s book of ``symbol`` (None: no such book, out of sync or one-sided)."""
        book = self.books.get((venue, symbol))
        if book is None or not book.in_sync:
            return None
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return None
        return Decimal(bid[0] + ask[0]).scaleb(-self.registry.scales(symbol)[0]) / 2

    def _push_free(self, venue: str, free: Optional[dict]) -> None:
        """The executor's free balances at ``venue`` changed: hand the ArbEngine what its caps read
        (an asset not in the map is 0, as in the balance check; no map yet = no cap)."""
        assets = self._cap_assets.get(venue)
        if not assets or self.arb is None:
            return
        zero = Decimal(0)
        items = {(venue, a): (None if free is None else free.get(a, zero)) for a in assets}
        if items == self._caps_pushed.get(venue):
            return
        self.arb.set_balances(items)
        self._caps_pushed[venue] = items
        self.balance_pushes += 1

    # -- the hot callback ----------------------------------------------------------------------------
    def _on_opportunities(self, opps: list) -> None:
        self.opportunities += len(opps)
        self.last_opportunity = opps[-1]
        for tap in self.opportunity_taps:
            tap(opps)
        ex = self.executor
        if ex is None or not ex.started:     # not before the gateways (live: private streams, time sync) are up
            return
        for o in opps:
            ex.submit(o)

    # -- routes and books while running (the universe: cexnode.universe.manager) ----------------------
    def books_in_use(self) -> set[tuple[str, str]]:
        """``(venue, unified symbol)`` of every book a wired route reads."""
        return {(venue, sym) for legs in self._wired.values() for venue, sym, _ in legs}

    def lists(self, venue: str, symbol: str) -> bool:
        """The symbol registry holds ``symbol`` on ``venue``."""
        try:
            self.registry.map(venue).instrument(get_symbol(symbol))
        except (KeyError, ValueError):
            return False
        return True

    def refusal(self, venue: str, venue_symbol: str) -> str:
        """Why the registry did not take ``venue_symbol`` of ``venue`` (its last rejection)."""
        for v, vs, reason in reversed(self.registry.rejected):
            if v == venue and vs == venue_symbol:
                return reason
        return "not in the venue's instrument list"

    def add_instruments(self, specs: list) -> None:
        """Extend the frozen registry with instrument specs (refusals go to ``registry.rejected``);
        the venues' newer maps reach their parsers and gateways when their books are added."""
        if specs:
            self.registry.extend(specs)

    def add_books(self, venue: str, symbols: list[str]) -> None:
        """Books for ``symbols`` (listed in the registry) on ``venue``, subscribed and synced in
        this order, while the venue's other books run."""
        adapter = self.adapters[venue]
        smap = self.registry.map(venue)
        sids = [get_symbol(s).id for s in symbols]
        adapter.add_books(smap, sids)
        for sym, sid in zip(symbols, sids):
            self.books[(venue, sym)] = self.router.book(adapter.venue_id, sid, False)

    def remove_books(self, venue: str, symbols: list[str]) -> None:
        """Unsubscribe and drop ``venue``'s books of ``symbols`` (no wired route reads them)."""
        adapter = self.adapters[venue]
        adapter.remove_books([get_symbol(s).id for s in symbols])
        for sym in symbols:
            self.books.pop((venue, sym), None)

    def wire_universe_route(self, symbol: str, venues: list[str], name: str) -> bool:
        """Wire a route of the universe whose books exist; False when fewer than two legs do."""
        r = RouteConfig(symbol=symbol, venues=venues, name=name)
        legs, rules = route_legs(r, self.registry, self.books, self.cfg.venues, skip=self.failed,
                                 margin_fraction=self.cfg.trading.futures_margin_fraction)
        if len(legs) < 2:
            return False
        self.wire_route(name, symbol, legs, rules)
        return True

    # -- readiness, metrics, status --------------------------------------------------------------------
    def books_in_sync(self) -> tuple[int, int]:
        n = sum(1 for b in self.books.values() if b.in_sync)
        return n, len(self.books)

    def book_entries(self) -> list[tuple[str, str, Any]]:
        """``(venue, unified symbol, BookSync)`` of every book (readiness and metrics)."""
        out = []
        for (venue, sym), book in self.books.items():
            sync = self.router.book_sync(book.venue, book.symbol_id)
            if sync is not None:
                out.append((venue, sym, sync))
        return out

    def _register_readiness(self) -> None:
        readiness = self.context.readiness
        if readiness is None:
            return
        # degraded mode (node.on_venue_failure: degrade): a venue that failed to start is not waited
        # for — its books are left out of the book check and it is listed under "failed"
        readiness.add_check("books", books_readiness(
            lambda: [e for e in self.book_entries() if e[0] not in self.failed], self.cfg.arbitrage.max_book_age_ms))
        readiness.add_check("venues", venues_readiness(
            lambda: [(n, bool(a.status().get("connected"))) for n, a in self.adapters.items() if n not in self.failed],
            failed=lambda: dict(self.failed)))

    def _register_metrics(self) -> None:
        m = self.context.metrics
        if self.executor is not None:
            self.executor.register_metrics(m)
        add_book_sources(m, self.book_entries)
        register = getattr(self.router, "register_metrics", None)
        if register is not None:
            register(m)
        for a in self.adapters.values():
            reg = getattr(a, "register_metrics", None)
            if reg is not None:
                reg(m)

    def book_health(self) -> dict[str, int]:
        """Books by state, for the status line: ``in_sync`` (in sync, venue connected, fresh as
        arbitrage takes it: receive and exchange time within ``arbitrage.max_book_age_ms``),
        ``disconnected`` (the venue's connection is down: the book no longer follows it),
        ``out_of_sync`` (resyncing), ``stale`` (no update within the age bound), ``total``."""
        now = time.time_ns()
        max_ns = self.cfg.arbitrage.max_book_age_ms * 1_000_000
        connected = {n: bool(a.status().get("connected")) for n, a in self.adapters.items()}
        out = {"in_sync": 0, "disconnected": 0, "out_of_sync": 0, "stale": 0, "total": len(self.books)}
        for (venue, _), b in self.books.items():
            if not connected.get(venue, False):
                out["disconnected"] += 1
            elif not b.in_sync:
                out["out_of_sync"] += 1
            elif now - b.recv_ns > max_ns or (b.exch_ts_ms and now - b.exch_ts_ms * 1_000_000 > max_ns):
                out["stale"] += 1
            else:
                out["in_sync"] += 1
        return out

    def status_line(self) -> str:
        h = self.book_health()
        n, total = h["in_sync"], h["total"]
        why = ", ".join("%d %s" % (h[k], k.replace("_", " ")) for k in ("disconnected", "out_of_sync", "stale") if h[k])
        books = "books %d/%d in sync%s" % (n, total, " (%s)" % why if why else "")
        frames = self.frames()
        now = time.monotonic()
        t0, f0 = self._last_status
        rate = (frames - f0) / (now - t0) if t0 else 0.0
        self._last_status = (now, frames)
        ex = self.executor
        trades = sum(n for (_, st), n in ex.trades_by_status.items() if st != "rejected") if ex is not None else 0
        pnl = self.positions.realised() if self.positions is not None else Decimal(0)
        p50, p99 = self.tick_to_decision_us()
        risk = self.risk.state if self.risk is not None else "-"
        return ("%s | %.0f msg/s | opportunities %d | trades %d | P&L %s | "
                "tick-to-decision p50 %s p99 %s μs | risk %s"
                % (books, rate, self.opportunities, trades, _fmt_money(pnl), p50, p99, risk))

    def frames(self) -> int:
        total = 0
        for a in self.adapters.values():
            st = a.status()
            total += int(st.get("frames", 0) or 0)
        return total

    def tick_to_decision_us(self) -> tuple[str, str]:
        h = getattr(self.router, "tick_to_decision", None) if self.router is not None else None
        if h is None or not hasattr(h, "quantile"):
            return "-", "-"
        try:
            q50, q99 = h.quantile(0.5), h.quantile(0.99)
        except Exception:
            return "-", "-"
        if q50 is None:
            return "-", "-"
        return "%.1f" % (q50 / 1000.0), "%.1f" % (q99 / 1000.0)

    def restart_status(self) -> None:
        """(Re)start the status lines at ``node.status_interval_s`` (0: none); a reload calls it."""
        if self._status_task is not None:
            self._status_task.cancel()
            self._status_task = None
        if self.cfg.node.status_interval_s > 0:
            self._status_task = asyncio.get_running_loop().create_task(self._status_loop())

    async def _status_loop(self) -> None:
        self._last_status = (time.monotonic(), self.frames())
        while True:
            await asyncio.sleep(self.cfg.node.status_interval_s)   # the current config's (SIGHUP)
            try:
                self.log.info(self.status_line())
            except Exception as e:   # status must never take the node down
                self.log.error("status line failed", error=repr(e)[:200])

    async def stop(self) -> None:
        if self.universe is not None:       # no route changes while stopping
            await self.universe.stop()
        if self._status_task is not None:
            self._status_task.cancel()
            self._status_task = None
        if self._kill_signal_installed:
            self._kill_signal_installed = False
            self.risk.remove_signal_handler(asyncio.get_running_loop())
        if self.executor is not None:
            await self.executor.stop(timeout_s=max(1.0, self.cfg.node.stop_timeout_s / 2))
        if self.checkpointer is not None:     # after the executor's last record
            cp, self.checkpointer = self.checkpointer, None
            await asyncio.get_running_loop().run_in_executor(None, cp.stop)
        summary = self.summary = format_summary(self) if self.executor is not None or self.router is not None else []
        await asyncio.gather(*(a.stop() for a in self.adapters.values()), return_exceptions=True)
        if summary:                # taken before the adapters stop: their feeds' counters go with them
            for line in summary:
                self.log.info(line)

    def apply_reload(self, cfg: Any) -> None:
        """The reloadable settings this engine holds: arbitrage thresholds, taker fees (arbitrage
        legs, executor rules, paper venues), the futures margin fraction (perp legs' caps, paper),
        paper latency, risk, trading, and the status-line interval."""
        old_interval = self.cfg.node.status_interval_s
        self.cfg = cfg
        a = cfg.arbitrage
        if self.arb is not None:
            self.arb.set_params(min_profit=a.min_profit, min_bps=a.min_bps, max_notional=a.max_notional,
                                max_book_age_ms=a.max_book_age_ms, slippage_bps=a.slippage_bps)
            mf = cfg.trading.futures_margin_fraction
            for venue in sorted(self._leg_venues):
                fee = getattr(cfg.venues, venue).taker_fee
                if venue in self._perp_venues:
                    self.arb.set_leg_params(venue, taker_fee=fee, margin_fraction=mf)
                else:
                    self.arb.set_leg_params(venue, taker_fee=fee)
            for name, view in list(self.route_table.items()):
                self.route_table[name] = dataclasses.replace(view, legs=tuple(
                    dataclasses.replace(leg, taker_fee=getattr(cfg.venues, leg.venue).taker_fee) for leg in view.legs))
        if self.risk is not None:
            self.risk.reconfigure(cfg.risk)
        if self.executor is not None:
            rules = {k: dataclasses.replace(r, taker_fee=getattr(cfg.venues, k[0]).taker_fee)
                     for k, r in self.executor.rules.items()}
            self.executor.reconfigure(cfg.trading, rules)
            if cfg.trading.mode == "paper":
                reconfigure_paper_gateways(cfg, self.executor.gateways)
        if cfg.node.status_interval_s != old_interval:
            try:
                asyncio.get_running_loop()
            except RuntimeError:        # not on the loop (a test reloading a built engine): next start
                return
            self.restart_status()


def route_legs(route: Any, registry: Any, books: dict, venues_cfg: Any, skip: Any = (),
               margin_fraction: Optional[Decimal] = None) -> tuple[list, dict]:
    """ArbEngine leg dicts and executor LegRules of one configured route (venues in ``skip`` left out).
    ``margin_fraction`` (``trading.futures_margin_fraction``) makes the perpetual legs margin legs:
    their balance caps are in quote margin, as the executor checks them."""
    legs, rules = [], {}
    for venue in route.venues:
        if venue in skip:
            continue
        sym = route_symbol_on(venue, route.symbol)
        book = books.get((venue, sym))
        if book is None:
            continue
        inst = registry.map(venue).instrument(sym)
        fee = getattr(venues_cfg, venue).taker_fee
        leg = dict(inst, venue=venue, book=book, taker_fee=fee)
        if margin_fraction is not None and ":" in sym:
            leg["margin_fraction"] = margin_fraction
        legs.append(leg)
        rules[(venue, sym)] = LegRules.from_instrument(inst, fee)
    return legs, rules


def _fmt_money(d: Decimal) -> str:
    return "%.2f" % d


def format_summary(engine: Engine) -> list[str]:
    """The closing summary table: books, opportunities, trades and P&L per route and asset."""
    lines = []
    elapsed = time.monotonic() - engine.started_at if engine.started_at else 0.0
    n, total = engine.books_in_sync()
    lines.append("summary: ran %.1f s, books %d/%d in sync, frames %d, opportunities %d"
                 % (elapsed, n, total, engine.frames(), engine.opportunities))
    ex = engine.executor
    if ex is None:
        return lines
    # the routes that made the most first (with a universe of hundreds, the top is what matters)
    rows = sorted(ex.summary_rows(), key=lambda r: (-Decimal(str(r.get("realised_pnl", "0"))), r["route"]))
    header = "%-36s %-6s %14s %12s %10s %7s %8s" % ("route", "asset", "position", "realised", "fees", "trades", "rejected")
    lines.append(header)
    lines.append("-" * len(header))
    for r in rows:
        lines.append("%-36s %-6s %14s %12s %10s %7s %8s" % (
            r["route"][:36], r.get("asset", ""), _short(r.get("position", "0")), _short(r.get("realised_pnl", "0"), 2),
            _short(r.get("fees", "0"), 4), r.get("trades", 0), r.get("rejected", 0)))
    if not rows:
        lines.append("(no trades)")
    lines.append("realised P&L total %s; risk %s; unreconciled orders %d"
                 % (_fmt_money(engine.positions.realised()), engine.risk.state, len(ex.unreconciled)))
    lines.append("rejected by reason: %s; skipped: %s" % (_counts(ex.rejected_by_reason), _counts(ex.skipped)))
    return lines


def _counts(d: dict) -> str:
    return ", ".join("%s %d" % (k, n) for k, n in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def _short(s: Any, places: int = 8) -> str:
    d = Decimal(str(s))
    if d == 0:
        return "0"
    q = d.quantize(Decimal(1).scaleb(-places)) if d.as_tuple().exponent < -places else d
    return "{:f}".format(q.normalize()) if places > 2 else "{:f}".format(q)

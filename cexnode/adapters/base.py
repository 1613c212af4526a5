"""What every venue adapter does, with the venue specifics left to the venue packages.

Lifecycle, driven by :class:`cexnode.engine.Engine`:

1. ``await load_instruments(registry)`` — instrument info (REST, or ``instruments`` in the config)
   for the configured symbols into the shared :class:`SymbolRegistry` (before it is frozen);
2. ``attach(symbol_map, router)`` — the venue's Cython parser with the router as its sink, and one
   book per configured symbol (sync rule and depth per the venue's rules);
3. ``await start()`` — the public WebSocket feed (``cexnode.net``), subscriptions, then REST
   snapshots for every book, each once its connection subscribed (diffs that arrive first are
   buffered by BookSync and replayed);
   a resync request from a book (gap, crossed, overflow) or a reconnect fetches a new snapshot;
   a book whose subscription the venue rejected is taken out of sync at once and gets its
   snapshot only once the venue acknowledges the (re-sent) subscription; then, with
   ``book_audit_interval_s`` > 0, the books' periodic truth checks (:mod:`cexnode.book_audit`);
4. ``await stop()``.

Books come and go while the node runs (the universe): ``add_books(symbol_map, symbol_ids)`` and
``remove_books(symbol_ids)`` (:meth:`VenueAdapter.add_books`). Each book keeps one subscription
request id for life (:meth:`VenueAdapter.request_id`), so acks and rejections find their book
whatever was added or removed since. Snapshots go through one queue per venue
(:class:`SnapshotQueue`): at most ``SNAPSHOT_CONCURRENCY`` fetches at a time, a live book's resync
first, then books in start-up / ``add_books`` order (most liquid first), each fetch within the REST
manager's rate limits.

A venue package subclasses :class:`VenueAdapter` and fills in the ``venue_*`` hooks: URLs, how
instrument info and snapshots are requested and read, and the subscription messages.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from typing import Any, Optional, Sequence

from cexnode._core import feed
from cexnode._core.book import SYNC_STREAM_FULL
from cexnode._core.fixedpoint import parse
from cexnode._core.symbols import SymbolMap
from cexnode.adapters.descriptor import VenueDescriptor
from cexnode.adapters.live import gateway_kwargs, live_config, start_gateway
from cexnode.adapters.registry import descriptor
from cexnode.adapters.transport import LiveTransport, MarketFeed, Transport
from cexnode.book_audit import BookAuditor
from cexnode.component import Component, NodeContext
from cexnode.log import get_exchange_logger
from cexnode.metrics import add_book_audit_sources, add_rest_sources, add_ws_sources
from cexnode.net.errors import CircuitOpenError, RateLimitedError
from cexnode.net.ws import subscription_rejected

__all__ = ["VenueAdapter", "SnapshotError", "SnapshotQueue"]

# SnapshotQueue priorities: a book that was in sync and left it is waiting traders; a new one is not
RESYNC_PRIORITY = 0
FIRST_SYNC_PRIORITY = 1


class SnapshotError(Exception):
    """A REST snapshot could not be fetched or read."""


class SnapshotQueue:
    """Turns for snapshot fetches: at most ``concurrency`` at a time, served by (priority, order)
    rather than by whoever wakes first, so that under the venue's rate limits the books wanted
    first (most liquid, or a live book's resync) sync first."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(int(concurrency), 1)
        self.active = 0
        self._waiting: list = []          # heap of (priority, order, seq, future)
        self._seq = itertools.count()

    def __len__(self) -> int:
        """Fetches waiting for their turn."""
        return sum(1 for *_, f in self._waiting if not f.done())

    async def acquire(self, priority: int, order: int) -> None:
        if self.active < self.concurrency:     # then nobody is waiting (release serves them first)
            self.active += 1
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, order, next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()             # the turn came with the cancellation: pass it on
            raise

    def release(self) -> None:
        self.active -= 1
        while self._waiting and self.active < self.concurrency:
            *_, fut = heapq.heappop(self._waiting)
            if not fut.done():
                self.active += 1
                fut.set_result(None)


class VenueAdapter(Component):
    """Market data of one venue (module docstring). Order entry: ``gateway`` (live mode)."""

    SNAPSHOT_BACKOFF_BASE_S = 0.05
    SNAPSHOT_BACKOFF_MAX_S = 5.0
    SNAPSHOT_FAILURES_ERROR = 5    # consecutive snapshot failures logged as errors from then on
    # snapshot fetches at a time: enough to keep the REST windows busy, few enough that the queue
    # (not the REST manager's waiters, woken in no order) decides which book goes next
    SNAPSHOT_CONCURRENCY = 8

    production_ws_url = ""
    production_rest_url = ""
    ws_headers: dict = {}

    def __init__(self, name: str, venue_config: Any, context: NodeContext) -> None:
        self.name = name
        #: the venue's descriptor (:mod:`cexnode.adapters.registry`): its id, market and rules
        self.descriptor: VenueDescriptor = descriptor(name)
        #: indexes the core's per-venue arrays (books, routes, counters)
        self.venue_id = self.descriptor.venue_id
        self.config = venue_config
        self.context = context
        self.log = get_exchange_logger(name, "adapter")
        self.connected = False
        self.symbol_map: Any = None
        self.router: Any = None
        self.parser: Any = None
        self.feed: Optional[MarketFeed] = None
        self.rest: Any = None
        self.gateway: Any = None
        self.books: dict[int, Any] = {}              # symbol id -> Book
        self._venue_symbols: dict[int, str] = {}     # symbol id -> venue string
        self._resyncing: dict[int, asyncio.Task] = {}
        self._stopping = False
        self.snapshots = 0
        self.snapshot_errors = 0
        self.last_snapshot_error = ""
        self._snapshot_ok: dict[int, bool] = {}          # symbol id -> last sync attempt succeeded
        self.resync_requests = 0
        self.message_errors = 0
        self.acks = 0
        # symbol id -> set while its book subscription stands (cleared by a rejection, set by the ack)
        self._subscribed: dict[int, asyncio.Event] = {}
        self.subscriptions_rejected = 0     # books taken out of sync by a rejected subscription
        self.auditor: Any = None            # BookAuditor (cexnode.book_audit) when book audits are on
        self.transport: Optional[Transport] = None     # use_transport(); live when none is given
        self._stream_full = False           # books follow a stream of whole books: no REST snapshots
        # subscription request ids, one per book for life (venue symbol <-> id); fresh for a new book
        self._req_ids: dict[str, int] = {}
        self._req_symbols: dict[int, str] = {}
        self._next_req_id = 1
        self._sub_msgs: dict[int, bytes] = {}       # symbol id -> its subscribe frame as sent
        self._order: dict[int, int] = {}            # symbol id -> priority order (start-up / add_books)
        self._next_order = 0
        self.snapshot_queue = SnapshotQueue(self.SNAPSHOT_CONCURRENCY)
        self.books_added = 0
        self.books_removed = 0
        self._awaiting_ack: set[int] = set()        # books added at run time, their subscription not acked yet

    # -- URLs ----------------------------------------------------------------------------------------
    def urls(self) -> tuple[str, str]:
        """(ws, rest): the config's, else the embedded simulator's, else production."""
        ws, rest = self.config.ws_url, self.config.rest_url
        sim = (self.context.sim_urls or {}).get(self.name)
        if sim is not None:
            ws, rest = ws or sim.ws, rest or sim.rest
        return ws or self.production_ws_url, (rest or self.production_rest_url).rstrip("/")

    def use_transport(self, transport: Transport) -> None:
        """Where market data and REST answers come from (the engine's choice, before ``attach``)."""
        self.transport = transport

    def _transport(self) -> Transport:
        if self.transport is None:       # an adapter used without an engine: the venue itself
            self.transport = LiveTransport(capture=self.context.capture)
        return self.transport

    def _rest_client(self) -> Any:
        """This venue's REST client: the :class:`~cexnode.net.rest.RestManager` of the live
        transport (created on first use: the embedded simulator's URL is known only once it has
        started)."""
        if self.rest is None:
            self.rest = self._transport().rest_client(self)
        return self.rest

    async def rest_get_json(self, path: str, params: Optional[dict] = None, *, weight: int = 1) -> Any:
        resp = await self._rest_client().request("GET", path, params=params, weight=weight,
                                                 headers=self.market_data_headers() or None)
        return resp.json()

    def market_data_headers(self) -> dict:
        """Venue hook: Headers of the public REST requests and the WebSocket handshake (venue options)."""
        return dict(self.ws_headers)

    def register_metrics(self, metrics: Any) -> None:
        """Series of this venue read at scrape time: REST manager (``cexnode_rest_*``), public feed
        (``cexnode_ws_*``), parse errors of its parser, books waiting for their subscription, the
        book audits (``cexnode_book_audit*``) and the gateway's (live mode)."""
        add_rest_sources(metrics, lambda: [self.rest] if self.rest is not None else [])
        add_ws_sources(metrics, lambda: [self.feed] if self.feed is not None else [])
        metrics.add_source("cexnode_parse_errors",
                           lambda: [((self.name,), self.parser.errors)] if self.parser is not None else [])
        metrics.add_source("cexnode_ws_unsubscribed_books",
                           lambda: [((self.name,), len(self.unsubscribed_books()))] if self.books else [])
        add_book_audit_sources(metrics, lambda: [self.auditor] if self.auditor is not None else [])
        if self.gateway is not None:
            self.gateway.register_metrics(metrics)

    # -- phase 1 -------------------------------------------------------------------------------------
    async def load_instruments(self, registry: Any) -> int:
        """Add this venue's configured symbols to ``registry``; returns how many were added (none
        configured: 0, the books come later through :meth:`add_books`)."""
        wanted = list(self.config.symbols)
        if not wanted and not self.config.instruments:
            return 0
        if self.config.instruments:
            specs = [self.instrument_spec(ic) for ic in self.config.instruments]
            registry.add_instruments(specs)
            n = len(specs)
        else:
            n = await self.venue_load_instruments(registry, wanted)
        if n < len(wanted):
            raise ValueError("%s lists %d of the %d configured symbols (%s); check venues.%s.symbols"
                             % (self.name, n, len(wanted), ", ".join(wanted), self.name))
        return n

    def instrument_spec(self, ic: Any) -> dict:
        """Venue hook: The registry spec (:meth:`SymbolRegistry.add_instrument`) of one instrument given in the
        config (``venues.<name>.instruments``); a venue with more fields (a perpetual venue's
        contract multiplier) extends it."""
        return {"venue": self.name, "symbol": ic.symbol, "venue_symbol": ic.venue_symbol,
                "tick": str(ic.tick), "qty_step": str(ic.step), "min_qty": str(ic.min_qty),
                "min_notional": str(ic.min_notional)}

    def instrument_entries(self, payload: Any) -> list:
        """Venue hook: the registry entries (:meth:`SymbolRegistry.add_listing`: a spec, or
        ``(venue, venue_symbol, reason)`` for a row it cannot read) of a whole answer of the venue's
        instrument listing (``descriptor.universe.instruments_path``), read with this venue's options."""
        raise NotImplementedError

    async def signed_get_json(self, path: str) -> Any:
        """Venue hook: a signed GET of ``path`` with this venue's account (a wallet-status endpoint
        that needs one), or None when this venue cannot sign here (no order gateway, no keys)."""
        return None

    async def venue_load_instruments(self, registry: Any, symbols: list[str]) -> int:
        """Venue hook: Fetch the venue's REST instrument listing and add ``symbols`` of it to ``registry``
        (the venue package's ``instruments.load``); returns how many were added."""
        raise NotImplementedError

    # -- phase 2 -------------------------------------------------------------------------------------
    def attach(self, symbol_map: Any, router: Any) -> None:
        self.symbol_map = symbol_map
        self.router = router
        self.parser = self.make_parser(symbol_map, router)
        transport = self._transport()
        rule = transport.book_sync_rule(self)
        self._stream_full = rule == SYNC_STREAM_FULL
        router.set_resync_handler(self.venue_id, self.on_resync)
        router.set_message_handler(self.venue_id, self.on_message)
        self._book_rule = rule
        for sym in symbol_map.symbols():
            self._add_book(sym.id)
        interval = float(getattr(self.config, "book_audit_interval_s", 0) or 0)
        if interval > 0 and self.auditor is None and transport.book_audits:
            self.auditor = BookAuditor(self, interval)
        self._attach_gateway(symbol_map)

    def _add_book(self, sid: int) -> None:
        self.books[sid] = self.router.add_book(self.venue_id, sid, self._book_rule, self.book_depth(),
                                               max_levels=int(self.config.book_max_levels))
        self._venue_symbols[sid] = self.symbol_map.venue_symbol(sid)
        ev = self._subscribed[sid] = asyncio.Event()
        ev.set()                  # until the venue says otherwise
        self._order[sid] = self._next_order
        self._next_order += 1

    # -- books at run time -----------------------------------------------------------------------------
    def add_books(self, symbol_map: SymbolMap, symbol_ids: Sequence[int]) -> None:
        """Add the books of ``symbol_ids`` (in priority order: most liquid first) while the venue
        runs. ``symbol_map`` is the venue's newer map that lists them (the registry grew): the
        parser and the gateway are bound to it, each book is added to the router, subscribed through
        the feed (paced by it), and synced from its snapshot in turn. Books already here are left
        alone. Before :meth:`start` they are subscribed and synced with the others."""
        if self.router is None:
            raise RuntimeError("%s: add_books before attach" % self.name)
        self.symbol_map = symbol_map
        self.parser.set_symbols(symbol_map)
        if self.gateway is not None:
            self.gateway.bind_symbol_map(symbol_map)
        new = [sid for sid in dict.fromkeys(symbol_ids) if sid not in self.books]
        for sid in new:
            self._add_book(sid)
            if self.feed is not None:
                # the subscribe frame may wait for the connection's message budget: a snapshot
                # fetched before the venue took the subscription would meet a gap; the ack says when
                self._subscribed[sid].clear()
                self._awaiting_ack.add(sid)
        self.books_added += len(new)
        if not new:
            return
        self.log.info("books added", venue=self.name, count=len(new),
                      symbols=",".join(self._venue_symbols[sid] for sid in new[:20]))
        if self.feed is None:
            return                        # start() subscribes and syncs every book
        self.feed.add_subscriptions(self._subscriptions(new))
        if not self._stream_full and not self._stopping:
            loop = asyncio.get_running_loop()
            for sid in new:
                self._resyncing[sid] = loop.create_task(self._sync_book(sid))

    def remove_books(self, symbol_ids: Sequence[int]) -> None:
        """Remove the books of ``symbol_ids`` while the venue runs: unsubscribe them (the feed
        sends the venue's unsubscribe frames), stop their sync, take them out of the router (no
        more frames reach them: they are never traded again) and forget them."""
        gone = [sid for sid in dict.fromkeys(symbol_ids) if sid in self.books]
        if not gone:
            return
        if self.feed is not None:
            vss = [self._venue_symbols[sid] for sid in gone]
            subs = [self._sub_msgs[sid] for sid in gone if sid in self._sub_msgs]
            unsubs = self.unsubscription_messages([self._venue_symbols[sid] for sid in gone if sid in self._sub_msgs])
            self.feed.remove_subscriptions(subs, unsubs)
        else:
            vss = [self._venue_symbols[sid] for sid in gone]
        for sid in gone:
            t = self._resyncing.pop(sid, None)
            if t is not None:
                t.cancel()
            if not self.router.remove_book(self.venue_id, sid):
                # a route still reads it (the routes leave first): it stays in the router, out of
                # its subscription, and its book is never updated again
                self.log.error("book removed while a route still reads it", venue=self.name,
                               symbol=self._venue_symbols[sid])
            del self.books[sid]
            vs = self._venue_symbols.pop(sid)
            self._subscribed.pop(sid, None)
            self._awaiting_ack.discard(sid)
            self._snapshot_ok.pop(sid, None)
            self._sub_msgs.pop(sid, None)
            self._order.pop(sid, None)
            rid = self._req_ids.pop(vs, None)
            self._req_symbols.pop(rid, None)
        self.books_removed += len(gone)
        self.log.info("books removed", venue=self.name, count=len(gone), symbols=",".join(vss[:20]))

    def _subscriptions(self, sids: Sequence[int]) -> list[bytes]:
        """The books' subscribe frames, kept as sent: the same bytes identify them to the feed later."""
        msgs = self.subscription_messages([self._venue_symbols[sid] for sid in sids])
        for sid, m in zip(sids, msgs):
            self._sub_msgs[sid] = m
        return msgs

    def request_id(self, venue_symbol: str) -> int:
        """The subscription request id of a book, the same for its life (its subscribe, re-sends and
        unsubscribe); a book added later, or added again after a removal, gets a fresh one. The venue
        packages' ``subscription_messages`` number their requests with it."""
        rid = self._req_ids.get(venue_symbol)
        if rid is None:
            rid = self._req_ids[venue_symbol] = self._next_req_id
            self._req_symbols[rid] = venue_symbol
            self._next_req_id += 1
        return rid

    @staticmethod
    def make_parser(symbol_map: Any, sink: Any) -> Any:
        """Venue hook: The venue's Cython parser feeding ``sink`` (both None: raw mode, for ``decode``)."""
        raise NotImplementedError

    # -- live order entry (cexnode.adapters.live) ------------------------------------------------------
    def make_gateway(self, common: dict) -> Any:
        """Venue hook: The venue's OrderGateway: ``common`` are the arguments every gateway takes
        (:func:`~cexnode.adapters.live.gateway_kwargs`), the venue adds its own settings. None: the
        venue has no order entry."""
        return None

    def _attach_gateway(self, symbol_map: Any) -> None:
        """Live mode with credentials for this venue: build its gateway (started after the books)."""
        if self.gateway is not None:
            return
        cfg = live_config(self)
        if cfg is not None:
            self.gateway = self.make_gateway(gateway_kwargs(self, cfg))
            if self.gateway is not None:
                self.gateway.bind_symbol_map(symbol_map)

    def on_message(self, kind: int, msg: Any) -> None:
        """Acks, pongs, venue errors and private updates of the public connection (feed.MessageKind)."""
        if kind == feed.MSG_ERROR:
            self.message_errors += 1
            hook = getattr(self.feed, "on_venue_error", None)
            if hook is not None and hook(msg):
                # a rejected subscription: counted, logged and re-sent by the feed; its books get no
                # diffs until it is accepted, so they leave sync now (not traded, not ready)
                self._on_subscription_rejected(msg)
                return
            self.log.error("venue reported an error", venue=self.name, msg=str(msg)[:300])
        elif kind == feed.MSG_ACK:
            self.acks += 1
            self._on_subscription_accepted(msg)

    # -- subscription state of each book ---------------------------------------------------------------
    def is_subscription_reject(self, msg: Any) -> bool:
        """Venue hook: Is a venue error frame ``msg`` the rejection of a subscription (the feed re-sends it)?
        Default: :func:`cexnode.net.ws.subscription_rejected`; venue packages add their own shapes."""
        return subscription_rejected(msg)

    def subscription_symbols(self, msg: Any) -> list[str]:
        """Venue hook: Venue symbols of the book subscriptions a subscribe ack / rejection ``msg`` is about.

        Default: the request id (``subscription_messages`` numbers each book's requests with its
        :meth:`request_id`, and the venues echo the id). Venue packages override this to read the
        echoed topics / payload first."""
        rid = msg.get("id") if isinstance(msg, dict) else None
        vs = self._req_symbols.get(rid) if isinstance(rid, int) else None
        return [vs] if vs is not None else []

    def _subscription_sids(self, msg: Any) -> list[int]:
        by_vs = {vs: sid for sid, vs in self._venue_symbols.items()}
        try:
            named = self.subscription_symbols(msg)
        except Exception:           # an unexpected shape: fall back to the request id
            named = []
        out = [by_vs[v] for v in named if v in by_vs]
        if not out:
            out = [by_vs[v] for v in VenueAdapter.subscription_symbols(self, msg) if v in by_vs]
        return out

    def _on_subscription_rejected(self, msg: Any) -> None:
        sids = self._subscription_sids(msg) or list(self.books)     # not attributable: every book
        for sid in sids:
            ev = self._subscribed.get(sid)
            if ev is None:
                continue
            if ev.is_set() or sid in self._awaiting_ack:
                ev.clear()
                self._awaiting_ack.discard(sid)
                self.subscriptions_rejected += 1
            if self.router is not None and self.books[sid].in_sync:
                # out of sync now; the resync callback starts a sync task that waits for the ack
                self.router.request_resync(self.venue_id, sid, 5)

    def _on_subscription_accepted(self, msg: Any) -> None:
        for sid in self._subscription_sids(msg):
            ev = self._subscribed.get(sid)
            if sid in self._awaiting_ack:           # a book added at run time: its first ack
                self._awaiting_ack.discard(sid)
                if ev is not None:
                    ev.set()
                continue
            if ev is not None and not ev.is_set():
                ev.set()
                self.log.info("subscription accepted: syncing the book", venue=self.name,
                              symbol=self._venue_symbols[sid])
                self.on_resync(sid, 5)      # no-op when a sync task is already waiting

    def unsubscribed_books(self) -> list[str]:
        """Venue symbols whose subscription was rejected and not yet accepted."""
        return [self._venue_symbols[sid] for sid, ev in self._subscribed.items()
                if not ev.is_set() and sid not in self._awaiting_ack]

    def book_depth(self) -> int:
        """Venue hook: the depth its stream and snapshot serve for ``venues.<name>.book_depth``
        (default: as configured)."""
        return int(self.config.book_depth)

    # -- phase 3 -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect the feed and sync every book from REST snapshots (a book's snapshot once its own
        connection subscribed, in :attr:`snapshot_queue` order).

        Returns once every book is in sync, or — when some snapshots keep failing — after
        ``start_timeout_s / 2`` with at least one book in sync: the others stay out of sync (never
        traded: the arbitrage engine needs both books in sync) and keep retrying in the background.
        No book in sync by then raises :class:`SnapshotError` (the venue failed to start;
        ``node.on_venue_failure`` decides). A failed or cancelled start leaves nothing running."""
        ws_url, _ = self.urls()
        self._stopping = False
        try:
            self.feed = self._transport().market_feed(
                self, ws_url, self._subscriptions(list(self._venue_symbols)), self._on_reconnected)
            # each book's snapshot goes once its own connection subscribed (feed.wait_sent), not once
            # every connection of the venue is open: the connects are paced
            loop = asyncio.get_running_loop()
            for sid in self.books if not self._stream_full else ():
                t = self._resyncing.get(sid)
                if t is None or t.done():
                    self._resyncing[sid] = loop.create_task(self._sync_book(sid))
            await self.feed.start()
            self.connected = True
            tasks = [self._resyncing[sid] for sid in self.books if sid in self._resyncing]
            if tasks:
                wait_s = max(0.5, float(self.config.start_timeout_s) / 2)
                await asyncio.wait(tasks, timeout=wait_s)
                synced = [sid for sid in self.books if self._snapshot_ok.get(sid)]
                if not synced:
                    raise SnapshotError("%s: no order book snapshot within %.1f s (%d failures; last: %s)"
                                        % (self.name, wait_s, self.snapshot_errors, self.last_snapshot_error))
                pending = [self._venue_symbols[sid] for sid in self.books if not self._snapshot_ok.get(sid)]
                if pending:
                    # hundreds of books start together: name the first few, count them all
                    self.log.warning("books without a snapshot yet: not traded until they sync", venue=self.name,
                                     count=len(pending), of=len(self.books), first=",".join(pending[:10]),
                                     last_error=self.last_snapshot_error)
            await start_gateway(self)           # order entry, private streams, balances (live mode)
            if self.auditor is not None:
                self.auditor.start()            # the books' truth checks (cexnode.book_audit)
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """Start failed or was cancelled: stop the snapshot tasks, the gateway and the feed without awaiting."""
        self._stopping = True
        for t in self._resyncing.values():
            t.cancel()
        self.connected = False
        for part in (self.auditor, self.gateway, self.feed):
            if part is not None:
                try:
                    asyncio.get_running_loop().create_task(part.stop())
                except RuntimeError:
                    pass

    def on_resync(self, symbol_id: int, reason: int) -> None:
        """From the router: the book left sync (gap, crossed, overflow). Fetch a new snapshot."""
        self.resync_requests += 1
        if self._stopping or symbol_id not in self.books or self._stream_full:
            return                      # a stream of whole books resyncs with its next push
        t = self._resyncing.get(symbol_id)
        # a sync task asking again from inside its own snapshot (the buffered diffs that followed it
        # show a gap) is ending: the book needs a new one
        if t is None or t.done() or t is asyncio.current_task():
            self._resyncing[symbol_id] = asyncio.get_running_loop().create_task(self._sync_book(symbol_id))

    def _on_reconnected(self, *args: Any) -> None:
        self.log.warning("feed reconnected: resyncing every book", venue=self.name)
        self.router.request_resync_venue(self.venue_id)
        for sid in self.books:
            self.on_resync(sid, 5)

    async def _sync_book(self, symbol_id: int) -> None:
        """Fetch a snapshot until one is applied. Each fetch waits for its turn in
        :attr:`snapshot_queue` (a book that was in sync before goes first) and already retries
        inside the REST manager (429 / 5xx / timeouts); between fetches: exponential backoff with
        jitter (at most ``SNAPSHOT_BACKOFF_MAX_S``), or as long as the breaker / the venue's pause
        says."""
        vs = self._venue_symbols[symbol_id]
        priority = RESYNC_PRIORITY if self._snapshot_ok.get(symbol_id) else FIRST_SYNC_PRIORITY
        order = self._order.get(symbol_id, 0)
        self._snapshot_ok[symbol_id] = False
        subscribed = self._subscribed[symbol_id]
        delay = self.SNAPSHOT_BACKOFF_BASE_S
        failures = 0
        while not self._stopping:
            try:
                # a book without its subscription would be "in sync" with no diffs coming: the
                # snapshot waits for the venue's ack (its diffs are buffered from then on)
                await subscribed.wait()
                msg = self._sub_msgs.get(symbol_id)
                if msg is not None and self.feed is not None:
                    await self.feed.wait_sent(msg)
                await self.snapshot_queue.acquire(priority, order)
                try:
                    last_id, bids, asks = await self.fetch_snapshot(vs)
                finally:
                    self.snapshot_queue.release()
                if not subscribed.is_set():
                    continue            # rejected meanwhile
                self.router.snapshot(self.venue_id, symbol_id, last_id, bids, asks)
                self.snapshots += 1
                self._snapshot_ok[symbol_id] = True
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.snapshot_errors += 1
                failures += 1
                self.last_snapshot_error = "%s: %s" % (type(e).__name__, str(e)[:160])
                wait = delay * (0.5 + random.random())
                if isinstance(e, (CircuitOpenError, RateLimitedError)):
                    wait = max(wait, e.retry_in_s)
                # the first failures are routine (a 5xx, a timeout); many in a row is a venue problem
                log = self.log.warning if failures < self.SNAPSHOT_FAILURES_ERROR else self.log.error
                if failures <= self.SNAPSHOT_FAILURES_ERROR or failures % 10 == 0:
                    log("snapshot failed; book stays out of sync, retrying", venue=self.name, symbol=vs,
                        error=self.last_snapshot_error, failures=failures, retry_in_s=round(wait, 3))
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.SNAPSHOT_BACKOFF_MAX_S)

    async def fetch_snapshot(self, venue_symbol: str) -> tuple[int, list, list]:
        """(last_id, bids, asks) with levels as (price mantissa, BASE qty mantissa) at the book's scales."""
        inst = self.symbol_map.instrument(venue_symbol)
        last_id, bids, asks = await self.venue_fetch_snapshot(venue_symbol)
        return last_id, self._scale_levels(inst, bids), self._scale_levels(inst, asks)

    def _scale_levels(self, inst: dict, levels: list) -> list:
        ps, vqs, mult = inst["price_scale"], inst["venue_qty_scale"], inst["qty_mult"]
        return [(parse(str(p), ps), parse(str(q), vqs) * mult) for p, q in levels]

    async def venue_fetch_snapshot(self, venue_symbol: str) -> tuple[int, list, list]:
        """Venue hook: one REST book snapshot, ``(last_id, bids, asks)`` with levels as the venue's
        (price, size) strings or numbers."""
        raise NotImplementedError

    def subscription_messages(self, venue_symbols: list[str]) -> list[bytes]:
        """Venue hook: the subscribe frames of the book streams, one per book, each numbered with
        the book's :meth:`request_id` where the venue echoes an id."""
        raise NotImplementedError

    def unsubscription_messages(self, venue_symbols: list[str]) -> list[bytes]:
        """Venue hook: the unsubscribe frames of the book streams, one per book (the same order),
        in the venue's protocol; sent when :meth:`remove_books` takes a book away at run time."""
        raise NotImplementedError

    def ping_message(self) -> bytes:
        """Venue hook: the venue's application-level ping frame (sent every ``ws.ping_interval_s``)."""
        raise NotImplementedError

    def ping_interval_s(self) -> float:
        """The descriptor's ``ws.ping_interval_s``."""
        return self.descriptor.ws.ping_interval_s

    def max_subscriptions_per_connection(self) -> int:
        """The descriptor's ``ws.max_subscriptions_per_connection`` (0: no limit)."""
        return self.descriptor.ws.max_subscriptions_per_connection

    async def stop(self) -> None:
        if self.auditor is not None:
            await self.auditor.stop()
        if self.gateway is not None:
            await self.gateway.stop()
        self._stopping = True
        for t in self._resyncing.values():
            t.cancel()
        if self.feed is not None:
            await self.feed.stop()
        if self.rest is not None:
            await self.rest.close()
        self.connected = False

    def status(self) -> dict:
        feed = self.feed.status() if self.feed is not None else {}
        n = sum(1 for b in self.books.values() if b.in_sync)
        return {"venue": self.name, "connected": self.connected, "symbols": list(self.config.symbols),
                "books_in_sync": n, "books": len(self.books), "frames": feed.get("frames", 0),
                "snapshots": self.snapshots, "snapshot_errors": self.snapshot_errors,
                "resync_requests": self.resync_requests, "unsubscribed": self.unsubscribed_books(),
                "subscriptions_rejected": self.subscriptions_rejected, "feed": feed,
                "books_added": self.books_added, "books_removed": self.books_removed,
                "snapshots_waiting": len(self.snapshot_queue), "awaiting_ack": len(self._awaiting_ack),
                "book_audits": dict(self.auditor.results) if self.auditor is not None else {},
                "rest": self.rest.stats() if self.rest is not None else {}}


# Kept for the placeholder import path of earlier revisions.
BaseVenueAdapter = VenueAdapter

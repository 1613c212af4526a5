"""Simulator plumbing shared by the venues: WebSocket connections, the venue base, the simulator.

* :class:`SimConnection` — one picows server-side WebSocket connection.
* :class:`SimVenue` — one venue: a picows WebSocket server and an aiohttp REST server on 127.0.0.1,
  its instruments, true books, subscriptions, faults, and the extension hook for the trading side.
  A venue's protocol is a subclass of it in ``cexnode/sim/venues/`` (see :mod:`cexnode.sim.venues`).
* :class:`ExchangeSimulator` — the venues (found by name in :mod:`cexnode.sim.registry`) plus the
  market generator and its clock.

Extension hook (the trading side plugs in here)
-----------------------------------------------
Before :meth:`ExchangeSimulator.start`, each ``SimVenue`` exposes:

``venue.app``
    its ``aiohttp.web.Application``; add routes (``venue.app.router.add_post(...)``) before start.
``venue.ws_handlers``
    dict of extra WebSocket handlers, looked up by a name the venue's protocol defines (a request's
    channel, a subscription topic...) and called with the arguments it defines; the venue's module
    in ``cexnode/sim/venues/`` documents both. A coroutine result is scheduled as a task.
``venue.books`` / ``venue.book(symbol)``
    the true books (:class:`cexnode.sim.books.TrueBook`, integer ticks and steps);
    ``venue.instruments`` venue symbol -> :class:`cexnode.sim.instruments.SimInstrument`.
``venue.publish_change(symbol, bids, asks, trades=())``
    change a true book from outside the generator (fills eating liquidity, resting orders) and
    publish it on the public streams like any other diff.
``venue.connections``
    live :class:`SimConnection` objects; ``conn.user_data`` is free per-connection state;
    ``conn.on_close`` callbacks run on disconnect.

If the package ``cexnode.sim.trading`` exists and defines ``install(sim)``, the simulator calls it
at the end of ``__init__`` (``trading=False`` skips it).
"""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence
from urllib.parse import parse_qsl, urlsplit

import orjson
from aiohttp import web
from picows import (WSCloseCode, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, WSUpgradeResponse,
                    WSUpgradeResponseWithListener, ws_create_server)

from cexnode.config import Config, SimConfig

from . import registry
from .books import BookDiff, Trade, TrueBook
from .faults import Faults
from .generator import BookState, GeneratorParams, MarketGenerator
from .instruments import DEFAULT_MIDS, SimInstrument
from .playback import Player, load_capture
from . import replay as replay_mod
from .replay import BookLoop
from .universe import SimUniverse

__all__ = ["SimConnection", "SimVenue", "ExchangeSimulator", "VenueUrls", "run_standalone"]

log = logging.getLogger("cexnode.sim")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_SENTINEL_VARINT = _varint(replay_mod.SENTINEL_MS)
_SENTINEL_MS_TEXT = b"%d" % replay_mod.SENTINEL_MS
_SENTINEL_S_TEXT = b"%d" % int(replay_mod.SENTINEL_S)
# sentinel ids as bytes by digit count (update ids are at most 19 digits: int64)
_SENTINEL_FIRST = {n: b"%d" % replay_mod.sentinel_id(n, False) for n in range(1, 20)}
_SENTINEL_LAST = {n: b"%d" % replay_mod.sentinel_id(n, True) for n in range(1, 20)}


def ws_frame_bytes(payload: bytes, binary: bool) -> bytes:
    """One unfragmented, unmasked server-to-client WebSocket frame (RFC 6455 §5.2)."""
    n = len(payload)
    op = 0x82 if binary else 0x81
    if n < 126:
        return bytes((op, n)) + payload
    if n < 65536:
        return bytes((op, 126)) + n.to_bytes(2, "big") + payload
    return bytes((op, 127)) + n.to_bytes(8, "big") + payload


# ------------------------------------------------------------------------------------------
# connections


class SimConnection(WSListener):
    """One server-side WebSocket connection of a venue.

    Attributes
    ----------
    venue : SimVenue
    path : request path without the query; ``query``: its parameters (a private stream's key...).
    headers : the handshake headers (a venue may read options from them).
    conn_id : hex id, echoed in the acks of venues that send one.
    subscriptions : keys this connection is subscribed to (venue-defined, e.g. topic strings).
    user_data : free per-connection state for extension handlers (auth, user id...).
    on_close : callbacks ``f(conn)`` run once when the connection ends.
    """

    def __init__(self, venue: "SimVenue", request: WSUpgradeRequest, conn_id: str):
        self.venue = venue
        target = request.path.decode("latin-1")
        parts = urlsplit(target)
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query))
        self.headers = request.headers
        self.conn_id = conn_id
        self.transport: Optional[WSTransport] = None
        self.subscriptions: set = set()
        self.user_data: dict = {}
        self.on_close: list[Callable[["SimConnection"], Any]] = []
        self.connected_at = time.monotonic()
        self.frames_sent = 0
        # client-message rate window, for venues that limit client messages per second
        self.msg_window: Optional[tuple[float, int]] = None
        self._queued: list[bytes] = []          # pushes held for one write (queue_frame, flush)
        self._timers: list[asyncio.TimerHandle] = []

    # picows callbacks
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.venue._on_connected(self)

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        mt = frame.msg_type
        if mt == WSMsgType.TEXT:
            self.venue.on_text(self, frame.get_payload_as_bytes())
        elif mt == WSMsgType.BINARY:
            self.venue.on_binary(self, frame.get_payload_as_bytes())
        elif mt == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        self.venue._on_disconnected(self)
        callbacks, self.on_close = self.on_close, []
        for cb in callbacks:
            try:
                cb(self)
            except Exception:  # an extension's bug must not take the venue down
                log.exception("on_close callback failed")

    # sending
    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_disconnected and not self.transport.is_close_frame_sent

    def send_text(self, data) -> None:
        if self.open:
            self.transport.send(WSMsgType.TEXT, data.encode() if isinstance(data, str) else data)
            self.frames_sent += 1

    def send_binary(self, data: bytes) -> None:
        if self.open:
            self.transport.send(WSMsgType.BINARY, data)
            self.frames_sent += 1

    def send_frame(self, data: bytes, binary: bool) -> None:
        if self.open:
            self.transport.send(WSMsgType.BINARY if binary else WSMsgType.TEXT, data)
            self.frames_sent += 1

    def queue_frame(self, data: bytes, binary: bool, batch: "list[SimConnection]") -> None:
        """Hold a push for :meth:`flush` (one socket write per connection and clock tick);
        ``batch`` collects the connections holding pushes."""
        if not self._queued:
            batch.append(self)
        self._queued.append(ws_frame_bytes(data, binary))

    def flush(self) -> None:
        """Write the held pushes at once: ready-made server frames (unmasked, RFC 6455 §5.2)."""
        queued, self._queued = self._queued, []
        if queued and self.open:
            self.transport.underlying_transport.write(b"".join(queued))
            self.frames_sent += len(queued)

    def send_json(self, obj: Any) -> None:
        self.send_text(orjson.dumps(obj))

    def close(self, code: Optional[int] = 1000, reason: bytes = b"") -> None:
        """Close with a close frame (``code``), or cut the TCP connection when ``code`` is None."""
        if self.transport is None or self.transport.is_disconnected:
            return
        if code is not None:
            self.transport.send_close(WSCloseCode(code), reason)
            self.transport.disconnect(graceful=True)
        else:
            self.transport.underlying_transport.abort()

    def call_later(self, delay: float, fn: Callable[[], Any]) -> None:
        """A timer cancelled when the connection ends."""
        self._timers.append(asyncio.get_running_loop().call_later(delay, fn))


# ------------------------------------------------------------------------------------------
# venues


class _Batch:
    """Diffs of one interval-batched stream waiting for their push."""

    __slots__ = ("first", "last", "bids", "asks", "ts_ms", "timer", "count", "replay")

    def __init__(self, first: int):
        self.first = first
        self.last = first
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.ts_ms = 0
        self.timer: Optional[asyncio.TimerHandle] = None
        self.count = 0
        self.replay: Optional[tuple] = None       # (loop, position) of its only diff, if replayed

    def add(self, diff: BookDiff, replay: Optional[tuple] = None) -> None:
        self.count += 1
        self.replay = replay if self.count == 1 else None
        self.last = diff.last
        self.bids.update(diff.bids)
        self.asks.update(diff.asks)
        self.ts_ms = diff.ts_ms


@dataclass(frozen=True)
class VenueUrls:
    """Where a simulated venue listens: ``ws`` (full URL with the venue path) and ``rest`` (base,
    without ``/api/...``: the adapters append the venue paths)."""

    ws: str
    rest: str


class SimVenue:
    """Base of a simulated venue (see the module docstring for the extension hook).

    A venue's protocol is a subclass in ``cexnode/sim/venues/`` (the class its module exports as
    ``SIM_VENUE``); the generic simulator asks it for everything that differs between venues:

    ``market``
        ``"spot"`` (``BASE/QUOTE``) or ``"perpetual"`` (``BASE/QUOTE:SETTLE``, contract sizes).
    :meth:`make_instrument`, :meth:`default_symbols`
        the venue's symbol naming and instrument precision; the symbols it lists by default.
    ``ws_paths``, :meth:`on_text`, ``BOOK_KINDS``, ``DEFAULT_BOOK_VARIANT``, :meth:`_frames_for`,
    :meth:`batch_interval`, :meth:`_malformed_frame`
        its WebSocket endpoint: requests, channels and how a book diff is written on each.
    ``supports_full``, ``max_connections``
        full-book pushes (the ``full_reset`` fault); WebSocket connections per IP.
    :meth:`_add_routes`, :meth:`rest_error`, ``rest_rate_limit``, :meth:`_rate_limit_headers`,
    :meth:`retry_after_s`
        its public REST endpoints, error shape, published limits and quota headers.
    :meth:`is_control_frame`, ``symbol_params``
        what capture playback leaves out (acks, pongs) and which query parameter names the symbol.
    ``trading_class``, ``order_id_start``
        the trading side's protocol (signed REST, private streams; built by
        :func:`cexnode.sim.trading.install`) and the venue's first order id.

    The instance's ``name`` is the venue name it is served under (given by the simulator), so one
    protocol can be served under several names.
    """

    name = "venue"
    market = "spot"
    ws_paths: tuple[str, ...] = ("/ws",)
    supports_full = False
    max_connections = 300           # WebSocket connections per IP; venues set their own
    #: query parameters that name the symbol of a REST request (capture playback keys answers by it)
    symbol_params: tuple[str, ...] = ("symbol",)
    #: the trading side's protocol handler class, called with the venue's ``VenueTrading`` (None: no trading)
    trading_class: Optional[Callable[[Any], Any]] = None
    #: first order id of the venue's matching engine
    order_id_start = 1
    #: update periods (ms) of a generated universe's instruments: one rate, or (fast, slow) where
    #: the venue's streams have two (the ``sim.universe.fast_pairs`` most traded take the fast one)
    universe_step_ms: tuple[float, ...] = (100.0,)
    #: pushes carry their time as a protobuf varint (milliseconds), not as decimal text
    template_time_varint = False

    def __init__(self, sim: "ExchangeSimulator", instruments: Sequence[SimInstrument], *,
                 name: Optional[str] = None, host: str = "127.0.0.1", ws_port: int = 0, rest_port: int = 0,
                 fees: tuple[Decimal, Decimal] = (Decimal("0.001"), Decimal("0.001"))):
        if name is not None:
            self.name = name
        self.sim = sim
        self.host, self._ws_port, self._rest_port = host, ws_port, rest_port
        self.taker_fee, self.maker_fee = fees
        self.instruments: dict[str, SimInstrument] = {i.venue_symbol: i for i in instruments}
        self._by_unified: dict[str, SimInstrument] = {i.symbol: i for i in instruments}
        self.books: dict[str, TrueBook] = {}        # filled by the simulator from the generator
        self.halted: set[str] = set()                # venue symbols delisted: listed as halted, not stepped
        self._clock_override: Optional[float] = None  # the time pushes carry while a template renders
        self._fill_times: tuple = (None, None)          # (ts_ms, its (sentinel, bytes) pairs) of fill_template
        self.faults = Faults(self)
        self.ws_handlers: dict[str, Callable] = {}
        self.connections: set[SimConnection] = set()
        # (kind, venue_symbol) -> {conn: variant}; kinds are venue-defined ("book", "obu", ...)
        self.subs: dict[tuple[str, str], dict[SimConnection, Any]] = {}
        # the same dicts by venue symbol, in the order they were made: [(kind, {conn: variant})]
        self._sym_subs: dict[str, list[tuple[str, dict]]] = {}
        self.rest_requests: Counter = Counter()      # path -> requests seen (faulted ones included)
        self._rate: dict[str, tuple[float, int]] = {}
        self.connections_total = 0
        self._conn_seq = 0
        self._stall_queue: list[tuple[SimConnection, bytes, bool]] = []
        self.app = web.Application(middlewares=[self._fault_middleware])
        self._add_routes(self.app.router)
        self.player = None                           # playback.Player when playing a capture
        self.first_subscription = asyncio.Event()     # set by the first public subscription
        self._ws_server: Optional[asyncio.AbstractServer] = None
        self._runner: Optional[web.AppRunner] = None
        self.urls: Optional[VenueUrls] = None
        # interval-batched book streams (batch_interval): (kind, vsym, variant) -> pending batch
        self._batches: dict[tuple, _Batch] = {}
        self._last_flush: dict[tuple, float] = {}

    # ---------------------------------------------------------------- symbols and books
    @property
    def is_perpetual(self) -> bool:
        return self.market == "perpetual"

    @classmethod
    def make_instrument(cls, venue: str, symbol: str, mid: Decimal, *,
                        decimal_contracts: bool = False) -> SimInstrument:  # pragma: no cover - abstract
        """The instrument of unified ``symbol`` on this venue (served as ``venue``): its venue
        symbol and precision sized to the starting ``mid`` price (:mod:`cexnode.sim.instruments`)."""
        raise NotImplementedError

    @classmethod
    def default_symbols(cls, spot: Sequence[str]) -> list[str]:
        """The unified symbols the venue lists when the config names none, from spot ``BASE/QUOTE``
        symbols: those on a spot venue, their ``BASE/QUOTE:QUOTE`` perpetuals on a perpetual one."""
        if cls.market == "perpetual":
            return [s + ":" + s.split("/")[1] for s in spot]
        return list(spot)

    def instrument(self, symbol: str) -> SimInstrument:
        """Instrument by venue symbol (``BTCUSDT``/``BTC_USDT``) or unified symbol (``BTC/USDT``)."""
        inst = self.instruments.get(symbol) or self._by_unified.get(symbol)
        if inst is None:
            raise KeyError("%s does not list %s (it lists %s)" % (self.name, symbol, ", ".join(self.instruments)))
        return inst

    def add_instrument(self, inst: SimInstrument, book: TrueBook) -> None:
        """List ``inst`` while running (a scheduled listing): its book joins the venue's."""
        self.instruments[inst.venue_symbol] = inst
        self._by_unified[inst.symbol] = inst
        self.books[inst.venue_symbol] = book

    def halt(self, symbol: str) -> None:
        """Delist ``symbol``: the instrument lists show it halted, its book stops, orders are refused."""
        self.halted.add(self.venue_symbol(symbol))

    # ---------------------------------------------------------------- generated universe
    @property
    def wallet_venue(self) -> str:
        """Name of the venue whose wallet funds this one (its own; a venue sharing another's
        wallet, like a futures account funded from the spot wallet, names that one)."""
        return self.name

    def quote_volume_24h(self, vsym: str) -> Optional[Decimal]:
        """24 h quote volume of the generated universe for ``vsym``; None without a universe."""
        u = self.sim.universe
        return u.volume(self.name, self.instruments[vsym].symbol) if u is not None else None

    def transfer_status(self, asset: str) -> tuple[bool, bool]:
        """``(can_deposit, can_withdraw)`` of ``asset`` on this venue's wallet (open without a universe)."""
        u = self.sim.universe
        return u.transfer(self.wallet_venue, asset) if u is not None else (True, True)

    def asset_delisted(self, asset: str) -> bool:
        u = self.sim.universe
        return u.is_delisted_asset(self.wallet_venue, asset) if u is not None else False

    def venue_symbol(self, symbol: str) -> str:
        return self.instrument(symbol).venue_symbol

    def book(self, symbol: str) -> TrueBook:
        return self.books[self.venue_symbol(symbol)]

    def true_book(self, symbol: str, depth: Optional[int] = None) -> tuple[list, list, int]:
        """``(bids, asks, last_id)``: levels best first as ``(Decimal price, Decimal size)`` in venue
        units (contracts on futures), and the id of the newest diff applied."""
        inst = self.instrument(symbol)
        b, a = self.books[inst.venue_symbol].top(depth)
        return ([(inst.price(p), inst.size(q)) for p, q in b], [(inst.price(p), inst.size(q)) for p, q in a],
                self.books[inst.venue_symbol].last_id)

    def publish_change(self, symbol: str, bids: Iterable = (), asks: Iterable = (), trades: Iterable[Trade] = (),
                       n_ids: int = 1) -> BookDiff:
        """Change a true book from outside the generator and publish the diff (and trades).

        ``bids``/``asks``: ``(ticks, steps)`` absolute sizes, 0 deletes. Use
        ``venue.instrument(symbol).ticks_of(price)`` / ``steps_of(size)`` to convert.
        """
        book = self.book(symbol)
        self.sim.book_changed(self.name, book.symbol)
        diff = book.apply(list(bids), list(asks), n_ids=n_ids, ts_ms=now_ms(), trades=list(trades))
        if book.crossed:
            log.warning("%s %s: external change crossed the book", self.name, book.symbol)
        self.publish(diff)
        return diff

    def next_trade_id(self, symbol: str) -> int:
        st = self.sim.generator.states[(self.name, self.venue_symbol(symbol))]
        st.trade_id += 1
        return st.trade_id

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._ws_server = await ws_create_server(self._ws_factory, self.host, self._ws_port,
                                                 logger_name="sim." + self.name, enable_auto_pong=True,
                                                 websocket_handshake_timeout=5)
        ws_port = self._ws_server.sockets[0].getsockname()[1]
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._rest_port, reuse_address=True)
        await site.start()
        rest_port = site._server.sockets[0].getsockname()[1]      # port 0: the one the OS picked
        self.urls = VenueUrls(ws="ws://%s:%d%s" % (self.host, ws_port, self.ws_paths[0]),
                              rest="http://%s:%d" % (self.host, rest_port))

    async def stop(self) -> None:
        for b in self._batches.values():
            if b.timer is not None:
                b.timer.cancel()
        self._batches.clear()
        if self._ws_server is not None:
            self._ws_server.close()
            for c in list(self.connections):
                c.close(1001)
            try:
                await asyncio.wait_for(self._ws_server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                for c in list(self.connections):
                    c.close(None)
            self._ws_server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---------------------------------------------------------------- WebSocket
    def _ws_factory(self, request: WSUpgradeRequest):
        path = urlsplit(request.path.decode("latin-1")).path
        if path not in self.ws_paths:
            return None                                     # picows answers 404
        f = self.faults
        if f.handshake_fail_left > 0:
            f.handshake_fail_left -= 1
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(f.handshake_fail_status, b"simulated handshake failure"), None)
        if len(self.connections) >= self.max_connections:
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(429, b"too many connections"), None)
        self._conn_seq += 1
        conn_id = "%016x" % (hash((self.name, self._conn_seq, id(self))) & 0xFFFFFFFFFFFFFFFF)
        return SimConnection(self, request, conn_id)

    def _on_connected(self, conn: SimConnection) -> None:
        self.connections.add(conn)
        self.connections_total += 1

    def _on_disconnected(self, conn: SimConnection) -> None:
        self.connections.discard(conn)
        for subs in self.subs.values():
            subs.pop(conn, None)

    def close_connections(self, code: Optional[int] = 1012) -> int:
        conns = list(self.connections)
        for c in conns:
            c.close(code)
        return len(conns)

    def subscribe(self, conn: SimConnection, kind: str, vsym: str, variant: Any = None) -> bool:
        """Add a public subscription; False when the connection already has it."""
        subs = self.subs.get((kind, vsym))
        if subs is None:
            subs = self.subs[(kind, vsym)] = {}
            self._sym_subs.setdefault(vsym, []).append((kind, subs))
        if conn in subs:
            return False
        subs[conn] = variant
        self.first_subscription.set()
        return True

    def unsubscribe(self, conn: SimConnection, kind: str, vsym: str) -> bool:
        return self.subs.get((kind, vsym), {}).pop(conn, None) is not None

    def on_text(self, conn: SimConnection, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_binary(self, conn: SimConnection, data: bytes) -> None:
        """Venues ignore binary client frames."""

    def _run_handler(self, handler: Callable, *args) -> Any:
        try:
            r = handler(*args)
        except Exception:
            log.exception("%s: ws handler failed", self.name)
            return None
        if asyncio.iscoroutine(r):
            asyncio.get_running_loop().create_task(r)
            return None
        return r

    # ---------------------------------------------------------------- publishing
    BOOK_KINDS: tuple[str, ...] = ("book",)
    DEFAULT_BOOK_VARIANT: Any = None      # the "book" channel variant render_frames uses by default

    def _frames_for(self, kind: str, diff: BookDiff, variant: Any) -> list[tuple[bytes, bool]]:  # pragma: no cover
        """Frames ``[(payload, is_binary)]`` of ``diff`` on channel ``kind`` for one subscription variant."""
        raise NotImplementedError

    def _malformed_frame(self, frame: bytes, binary: bool) -> bytes:
        return frame[: max(1, len(frame) // 2)]

    def batch_interval(self, kind: str, variant: Any) -> Optional[float]:
        """Seconds over which a book stream's diffs are merged into one push (None: one push per
        diff). Venues whose channels name an interval override it."""
        return None

    def push_clock(self) -> float:
        """Wall time (s) the pushes being rendered carry: now, or the sentinel of a template."""
        return self._clock_override if self._clock_override is not None else time.time()

    def after_replay(self, diff: BookDiff) -> None:
        """Called once a replayed diff is published (its frames came from templates)."""

    def before_render(self, replay: tuple, diff: BookDiff) -> None:
        """Called before a replayed diff's template is rendered, the diff already in the book;
        ``replay``: its ``(BookLoop, position)``."""

    def loop_ended(self, vsym: str) -> None:
        """The replay loop of ``vsym`` ended; the book has every replayed diff and no other yet."""

    def replay_frames(self, replay: tuple, kind: str, diff: BookDiff, variant: Any) -> list:
        """Frames of a replayed diff: its loop position's template with the real ids and time, the
        template rendered first if the position has none yet (or its ids were shorter)."""
        loop, pos = replay
        key = (pos, kind, variant)
        tpl = loop.templates.get(key)
        nf, nl = len(str(diff.first)), len(str(diff.last))
        if tpl is None or tpl[0] != nf or tpl[1] != nl:
            self.before_render(replay, diff)
            sentinel = BookDiff(diff.symbol, replay_mod.sentinel_id(nf, False), replay_mod.sentinel_id(nl, True),
                                diff.bids, diff.asks, ts_ms=replay_mod.SENTINEL_MS)
            self._clock_override = replay_mod.SENTINEL_S
            try:
                tpl = loop.templates[key] = (nf, nl, self._frames_for(kind, sentinel, variant))
            finally:
                self._clock_override = None
        frames = self.fill_template(tpl, diff)
        return frames if frames is not None else self._frames_for(kind, diff, variant)

    def fill_template(self, tpl: tuple, diff: BookDiff) -> Optional[list]:
        """``tpl``'s frames with ``diff``'s ids and time (``ts_ms``); None when a value does not
        fit the template's bytes (a varint of another length)."""
        nf, nl, frames = tpl
        ts = diff.ts_ms
        times = self._fill_times
        if times[0] != ts:          # the pushes of one tick share their time
            if self.template_time_varint:
                new = _varint(ts)
                times = (ts, [(_SENTINEL_VARINT, new)] if len(new) == len(_SENTINEL_VARINT) else None)
            else:
                times = (ts, [(_SENTINEL_MS_TEXT, b"%d" % ts), (_SENTINEL_S_TEXT, b"%d" % (ts // 1000))])
            self._fill_times = times
        if times[1] is None:
            return None
        pairs = [(_SENTINEL_FIRST[nf], b"%d" % diff.first), (_SENTINEL_LAST[nl], b"%d" % diff.last)] + times[1]
        out = []
        for data, binary in frames:
            for old, new in pairs:
                data = data.replace(old, new)
            out.append((data, binary))
        return out

    def publish(self, diff: BookDiff, replay: Optional[tuple] = None) -> None:
        """Send one diff (and its trades, ticker, ...) to every subscriber, applying armed faults.
        ``replay``: ``(BookLoop, position)`` of a replayed diff, whose frames come from templates."""
        sym = diff.symbol
        deliveries: list[tuple[SimConnection, bytes, bool]] = []
        book_deliveries: list[tuple[SimConnection, bytes, bool]] = []
        batched = False
        armed = None
        for kind, subs in self._sym_subs.get(sym, ()):
            if not subs:
                continue
            cache: dict = {}
            book = kind in self.BOOK_KINDS
            target = book_deliveries if book else deliveries
            for conn, variant in list(subs.items()):
                frames = cache.get(variant)
                if frames is None:
                    interval = self.batch_interval(kind, variant) if book else None
                    if interval is not None and armed is None:
                        armed = self.faults.book_fault_armed(sym)
                    if interval is not None and not armed:
                        self._batch_add(kind, diff, variant, interval, replay)
                        frames = cache[variant] = ()
                        batched = True
                    else:
                        if interval is not None:
                            # an injected fault hits this diff's own push (as on an unbatched stream):
                            # the interval so far goes out first, intact, and the next push shows the fault
                            self._flush_batch((kind, sym, variant), faults=False)
                            self._last_flush[(kind, sym, variant)] = time.monotonic()
                        frames = cache[variant] = (self._frames_for(kind, diff, variant) if replay is None else
                                                   self.replay_frames(replay, kind, diff, variant))
                for data, binary in frames:
                    target.append((conn, data, binary))
        if not batched:        # a batched stream meets the faults when its push goes out (_flush_batch)
            book_deliveries = self._book_faults(sym, book_deliveries)
        self._deliver(book_deliveries + deliveries)

    def _batch_add(self, kind: str, diff: BookDiff, variant: Any, interval: float, replay: Optional[tuple] = None) -> None:
        """Merge ``diff`` into the pending push of its stream: ids from the first diff's ``first`` to
        the last one's ``last``, the latest size per price. A push goes out at most once per
        ``interval``: at once when the previous one is older, else when the interval has passed."""
        key = (kind, diff.symbol, variant)
        b = self._batches.get(key)
        if b is None:
            if replay is not None and self._last_flush.get(key, float("-inf")) + interval <= time.monotonic():
                # alone in its interval, due now: its template goes out as it is
                self._last_flush[key] = time.monotonic()
                frames = self.replay_frames(replay, kind, diff, variant)
                subs = [c for c, v in self.subs.get((kind, diff.symbol), {}).items() if v == variant]
                self._deliver(self._book_faults(diff.symbol, [(c, d, bi) for c in subs for d, bi in frames]))
                return
            b = self._batches[key] = _Batch(diff.first)
        b.add(diff, replay)
        if b.timer is not None:
            return
        wait = self._last_flush.get(key, float("-inf")) + interval - time.monotonic()
        try:
            loop = asyncio.get_running_loop() if wait > 0 else None
        except RuntimeError:            # stepped outside an event loop: nothing could send later
            loop = None
        if loop is None:
            self._flush_batch(key)
        else:
            b.timer = loop.call_later(wait, self._flush_batch, key)

    def _flush_batch(self, key: tuple, faults: bool = True) -> None:
        b = self._batches.pop(key, None)
        if b is None:
            return
        if b.timer is not None:
            b.timer.cancel()
        self._last_flush[key] = time.monotonic()
        kind, sym, variant = key
        subs = [c for c, v in self.subs.get((kind, sym), {}).items() if v == variant]
        if not subs:
            return
        diff = BookDiff(sym, b.first, b.last, sorted(b.bids.items(), reverse=True), sorted(b.asks.items()),
                        ts_ms=b.ts_ms)
        # one replayed diff alone in its interval: its loop position's template
        frames = (self.replay_frames(b.replay, kind, diff, variant) if b.replay is not None
                  else self._frames_for(kind, diff, variant))
        out = [(c, d, binary) for c in subs for d, binary in frames]
        self._deliver(self._book_faults(sym, out) if faults else out)

    def _book_faults(self, sym: str, book_deliveries: list) -> list:
        """Apply the armed book-stream faults of ``sym`` to one push's deliveries."""
        f = self.faults
        if f.gap.get(sym, 0) > 0:
            f.gap[sym] -= 1
            book_deliveries = []
        if sym in f.malformed:
            replace = f.malformed.pop(sym)
            bad = [(c, self._malformed_frame(d, b), b) for c, d, b in book_deliveries]
            book_deliveries = bad if replace else bad + book_deliveries
        if f.duplicate.get(sym, 0) > 0:
            f.duplicate[sym] -= 1
            book_deliveries = book_deliveries + book_deliveries
        held = f.held.pop(sym, None)
        if f.reorder.get(sym, 0) > 0:
            f.reorder[sym] -= 1
            f.held[sym] = book_deliveries
            book_deliveries = []
        if held:
            book_deliveries = book_deliveries + held
        return book_deliveries

    def _deliver(self, deliveries: list) -> None:
        f = self.faults
        if f.stall_until:
            if f.stalled:
                if not f.stall_drop:
                    self._stall_queue.extend(deliveries)
                return
            f.stall_until = 0.0
            queued, self._stall_queue = self._stall_queue, []
            deliveries = queued + deliveries
        batch = self.sim.write_batch
        if batch is None:
            for conn, data, binary in deliveries:
                conn.send_frame(data, binary)
        else:
            for conn, data, binary in deliveries:
                conn.queue_frame(data, binary, batch)

    def send_raw(self, payload: bytes, binary: bool) -> None:
        """Send one ready frame to every connection with a subscription (capture playback, benchmarks)."""
        self.send_raw_batch(((payload, binary),))

    def send_raw_batch(self, frames) -> int:
        """Send ready frames ``[(payload, is_binary)]`` to every subscribed connection; stalls apply.
        Returns the number of frames written (the fast path of loopback replays)."""
        if self.faults.stall_until:
            self._deliver([(c, p, b) for p, b in frames for c in self.connections if c.subscriptions])
            return 0
        targets = [c for c in self.connections if c.subscriptions and c.open]
        if not targets:
            return 0
        # one write of ready-made server frames (unmasked, RFC 6455 §5.2) instead of one per frame
        blob = b"".join(ws_frame_bytes(p, b) for p, b in frames)
        for c in targets:
            c.transport.underlying_transport.write(blob)
            c.frames_sent += len(frames)
        return len(frames) * len(targets)

    def render_frames(self, symbol: str, n: int, kind: str = "book", variant: Any = None) -> list[tuple[bytes, bool]]:
        """Advance one book ``n`` generator steps without publishing; return the frames of channel
        ``kind`` those steps would have produced (e.g. a loopback replay source for benchmarks).
        Take the REST snapshot / ``true_book`` *before* calling this to sync a client to the frames."""
        st = self.sim.generator.states[(self.name, self.venue_symbol(symbol))]
        if variant is None:
            variant = self.DEFAULT_BOOK_VARIANT
        out = []
        for _ in range(n):
            d = self.sim.generator.step_book(st, now_ms())
            if d is not None:
                out.extend(self._frames_for(kind, d, variant))
        return out

    def flush_stall(self) -> None:
        """Deliver what a non-dropping stall queued, once the stall is over (called by the clock)."""
        if self.faults.stall_until and not self.faults.stalled:
            self._deliver([])

    # ---------------------------------------------------------------- REST
    def _add_routes(self, router: web.UrlDispatcher) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def rest_error(self, status: int, text: str, headers: Optional[dict] = None) -> web.Response:  # pragma: no cover
        raise NotImplementedError

    # (requests, window seconds) per endpoint and IP; venues set their published limit
    rest_rate_limit: tuple[int, float] = (200, 10.0)

    def _rate_headers(self, path: str) -> tuple[bool, dict]:
        """Count a request against its endpoint's fixed window: (over the limit?, venue headers)."""
        limit, window = self.rest_rate_limit
        now = time.time()
        start, n = self._rate.get(path, (0.0, 0))
        if now - start >= window:
            start, n = now, 0                     # window opens with the first request
        n += 1
        self._rate[path] = (start, n)
        reset_ms = int((start + window) * 1000)
        return n > limit, self._rate_limit_headers(limit, max(0, limit - n), reset_ms)

    def _rate_limit_headers(self, limit: int, remain: int, reset_ms: int) -> dict:
        """Quota headers sent on every REST response (none by default)."""
        return {}

    def retry_after_s(self, headers: dict) -> int:
        """``Retry-After`` seconds of a 429 beyond the rate limit; ``headers``: this response's quota
        headers (:meth:`_rate_limit_headers`). Default: the limit's whole window."""
        return int(self.rest_rate_limit[1])

    @classmethod
    def is_control_frame(cls, text: bytes) -> bool:
        """A captured text frame that answers the recorder (ack, pong, error), not a push:
        capture playback leaves it out. Default: none."""
        return False

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler):
        self.rest_requests[request.path] += 1
        over, headers = self._rate_headers(request.path)
        if over and self.sim.cfg.enforce_rate_limits:
            retry = self.retry_after_s(headers)
            return self.rest_error(429, "Too Many Requests", dict(headers, **{"Retry-After": str(retry)}))
        resp = await self._faulted(request, handler)
        if headers:
            resp.headers.update(headers)
        return resp

    async def _faulted(self, request: web.Request, handler):
        f = self.faults
        if f.rest_delay_s > 0 and (f.rest_delay_left is None or f.rest_delay_left > 0):
            if f.rest_delay_left is not None:
                f.rest_delay_left -= 1
            await asyncio.sleep(f.rest_delay_s)
        if f.rest_429_left > 0:
            f.rest_429_left -= 1
            return self.rest_error(429, "Too Many Requests", {"Retry-After": str(f.rest_retry_after)})
        if f.rest_5xx_left > 0:
            f.rest_5xx_left -= 1
            return self.rest_error(f.rest_5xx_status, "Service Unavailable")
        if self.player is not None:
            entry = self.player.rest_answer(request.method, request.path, request.query)
            if entry is not None:
                return web.Response(text=entry.body, status=entry.status, content_type="application/json")
        return await handler(request)

    @staticmethod
    def json_response(obj: Any, status: int = 200, headers: Optional[dict] = None) -> web.Response:
        return web.Response(body=orjson.dumps(obj), status=status, headers=headers, content_type="application/json")


# ------------------------------------------------------------------------------------------
# the simulator


class ExchangeSimulator:
    """The simulated venues on 127.0.0.1, one market generator, one clock.

    Parameters
    ----------
    cfg : ``cexnode.config.Config`` (venues and symbols from ``cfg.venues``, settings from ``cfg.sim``),
        or ``SimConfig`` alone (every venue of :func:`cexnode.sim.registry.names`, symbols from
        ``mid_prices``), or None (defaults).
    seed : overrides ``sim.seed``.
    venues : ``{venue: [unified symbols]}`` overriding the venues and symbols served; each venue is
        served by the protocol :func:`cexnode.sim.registry.venue_class` finds for its name.
    clock : ``"auto"`` — the generator steps every ``update_interval_ms`` once started;
        ``"manual"`` — only :meth:`tick` steps it (deterministic tests). With ``sim.capture`` the
        venues play the capture back instead (:mod:`cexnode.sim.playback`) and the clock stays off.
    host : bind address (default ``sim.host``).
    trading : call ``cexnode.sim.trading.install(self)`` when that module exists.

    Example
    -------
    >>> async with ExchangeSimulator(cfg, seed=3) as sim:            # doctest: +SKIP
    ...     print(sim.urls[name].ws)                                  # name: a venue it serves
    ...     sim.venue(name).faults.gap_next("BTC/USDT")
    ...     bids, asks, last_id = sim.venue(name).true_book("BTC/USDT")
    """

    def __init__(self, cfg: "Config | SimConfig | None" = None, *, seed: Optional[int] = None,
                 venues: Optional[Mapping[str, Sequence[str]]] = None, clock: str = "auto",
                 host: Optional[str] = None, trading: bool = True):
        full = cfg if isinstance(cfg, Config) else None
        sc: SimConfig = cfg.sim if full is not None else (cfg if cfg is not None else SimConfig())
        self.cfg = sc
        self.config = full
        if clock not in ("auto", "manual"):
            raise ValueError("clock must be 'auto' or 'manual'")
        self.clock = clock
        self.seed = sc.seed if seed is None else int(seed)
        self.host = host or sc.host
        mids_cfg = {k: Decimal(v) for k, v in sc.mid_prices.items()}
        # the registry is read here, once: the venues' classes serve every message after this
        known = registry.names()
        self.universe: Optional[SimUniverse] = None
        if venues is None and sc.universe.enabled:
            served = [n for n, _ in full.venues.enabled()] if full is not None else []
            served = [n for n in known if n in served] or list(known)
            self.universe = SimUniverse(sc.universe, self.seed, {n: registry.venue_class(n).market for n in served})
            venues = {n: self.universe.symbols(n) for n in served}
        if venues is None:
            if full is not None and any(v.symbols for _, v in full.venues.enabled()):
                venues = {n: list(v.symbols) for n, v in full.venues.enabled()}
            else:
                spot = list(mids_cfg) or ["BTC/USDT", "ETH/USDT"]
                venues = {n: registry.venue_class(n).default_symbols(spot) for n in known}
        self.venues: dict[str, SimVenue] = {}
        insts: dict[str, list[SimInstrument]] = {}
        mids: dict[tuple[str, str], Decimal] = {}
        # venue order (and with sim.base_port, each venue's ports) follows the registry's order
        for i, name in enumerate(known):
            if name not in venues:
                continue
            cls = registry.venue_class(name)
            lst = []
            for sym in venues[name]:
                base, quote = sym.split("/")[0], sym.split("/")[1].split(":")[0]
                mid = (self.universe.mid(sym) if self.universe is not None else
                       mids_cfg.get(base + "/" + quote) or DEFAULT_MIDS.get(base, Decimal(10)))
                mids[(base, quote)] = mid
                lst.append(cls.make_instrument(name, sym, mid, decimal_contracts=sc.futures_decimal_sizes))
            insts[name] = lst
            vcfg = getattr(full.venues, name, None) if full is not None else None
            fees = (vcfg.taker_fee, vcfg.maker_fee) if vcfg is not None else (Decimal("0.001"), Decimal("0.001"))
            ws_port = sc.base_port + 2 * i if sc.base_port else 0
            rest_port = sc.base_port + 2 * i + 1 if sc.base_port else 0
            self.venues[name] = cls(self, lst, name=name, host=self.host, ws_port=ws_port, rest_port=rest_port,
                                    fees=fees)
        unknown = set(venues) - set(known)
        if unknown:
            raise ValueError("unknown venue(s): %s" % ", ".join(sorted(unknown)))
        self.params = GeneratorParams(
            seed=self.seed, step_ms=sc.update_interval_ms, volatility_bps=sc.volatility_bps,
            noise_bps=sc.noise_bps, half_spread_bps=sc.half_spread_bps, level_spacing_bps=sc.level_spacing_bps,
            level_notional=float(sc.level_notional), book_levels=sc.book_levels,
            trade_probability=sc.trade_probability, dislocation_probability=sc.dislocation_probability,
            dislocation_bps=sc.dislocation_bps, dislocation_half_life_ms=sc.dislocation_half_life_ms)
        self.generator = MarketGenerator(self.params, insts, mids)
        for (vname, vsym), st in self.generator.states.items():
            self.venues[vname].books[vsym] = st.book
        # while the clock steps: the connections holding pushes, written once at the end of the tick
        self.write_batch: Optional[list[SimConnection]] = None
        self._tick_no = 0
        self._loops: dict[BookState, BookLoop] = {}     # a book's replay loop
        self._listings_done = self._delistings_done = 0
        self.listed: list[tuple[str, str]] = []       # (venue, symbol) listed while running
        self.delisted: list[tuple[str, str]] = []     # (venue, symbol) delisted while running
        if self.universe is not None:
            for name, venue in self.venues.items():
                ranked = sorted(venue.instruments.values(),
                                key=lambda i: -(self.universe.volume(name, i.symbol) or 0))
                fast = {i.venue_symbol for i in ranked[:sc.universe.fast_pairs]}
                for inst in venue.instruments.values():
                    self._schedule(self.generator.states[(name, inst.venue_symbol)], inst.venue_symbol in fast)
        self._task: Optional[asyncio.Task] = None
        self._running = asyncio.Event()
        self._running.set()
        self.capture = None
        if sc.capture:
            self.capture = load_capture(sc.capture)
            for name, data in self.capture.items():
                if name in self.venues:
                    self.venues[name].player = Player(self.venues[name], data, speed=sc.capture_speed,
                                                      loop=sc.capture_loop)
                else:
                    log.warning("capture %s has frames of %s, which the simulator does not serve", sc.capture, name)
        self.started = False
        self.diffs_published = 0
        if trading and importlib.util.find_spec("cexnode.sim.trading") is not None:
            mod = importlib.import_module("cexnode.sim.trading")
            install = getattr(mod, "install", None)
            if install is not None:
                install(self)

    # ---------------------------------------------------------------- access
    def venue(self, name: str) -> SimVenue:
        try:
            return self.venues[name]
        except KeyError:
            raise KeyError("the simulator serves %s, not %s" % (", ".join(self.venues), name)) from None

    @property
    def urls(self) -> dict[str, VenueUrls]:
        """``{venue: VenueUrls(ws, rest)}`` once started."""
        return {n: v.urls for n, v in self.venues.items() if v.urls is not None}

    def true_book(self, venue: str, symbol: str, depth: Optional[int] = None):
        return self.venue(venue).true_book(symbol, depth)

    # ---------------------------------------------------------------- generated universe
    def _schedule(self, st, fast: bool) -> None:
        """Step a universe book at its venue's rate (``sim.universe.step_ms`` or the venue's
        ``universe_step_ms``: the fast rate for the most traded), from a random phase so that the
        books' pushes spread over the period instead of coming together."""
        venue = self.venues[st.venue]
        uc = self.cfg.universe
        ms = uc.step_ms.get(st.venue) or (venue.universe_step_ms[0] if fast else venue.universe_step_ms[-1])
        period = max(1, round(ms / self.cfg.update_interval_ms))
        phase = random.Random("%d:phase:%s:%s" % (self.seed, st.venue, st.inst.venue_symbol)).randrange(period)
        self.generator.schedule(st, period, phase)

    def list_next(self) -> list[tuple[str, str]]:
        """List the universe's next pair on every venue now: instruments, books (streaming from
        the next tick), REST lists. Returns ``[(venue, unified symbol)]``."""
        if self.universe is None:
            raise RuntimeError("listings need sim.universe.enabled")
        added = self.universe.list_next()
        for name, sym in added:
            venue = self.venues[name]
            inst = type(venue).make_instrument(name, sym, self.universe.mid(sym),
                                               decimal_contracts=self.cfg.futures_decimal_sizes)
            st = self.generator.add_book(name, inst, self.universe.mid(sym))
            venue.add_instrument(inst, st.book)
            self._schedule(st, False)
            log.info("sim %s: listed %s (%s)", name, sym, inst.venue_symbol)
        self.listed.extend(added)
        return added

    def delist_next(self) -> list[tuple[str, str]]:
        """Delist one common pair on every venue listing it: halted in the instrument lists as each
        venue shows it, its books stop, its orders are refused. Returns ``[(venue, unified symbol)]``."""
        if self.universe is None:
            raise RuntimeError("delistings need sim.universe.enabled")
        removed = self.universe.delist_next()
        for name, sym in removed:
            venue = self.venues[name]
            venue.halt(sym)
            self.generator.unschedule(self.generator.states[(name, venue.venue_symbol(sym))])
            log.info("sim %s: delisted %s", name, sym)
        self.delisted.extend(removed)
        return removed

    def _step_universe(self, ts: int) -> int:
        """One tick of a universe: every book due on it generates a diff (recording its loop) or
        replays the next one of its loop (:mod:`cexnode.sim.replay`); returns the diffs published."""
        self._tick_no += 1
        tick, gen, loops, n_loop = self._tick_no, self.generator, self._loops, self.cfg.universe.replay_steps
        count = 0
        for st in gen.due(tick):
            venue = self.venues[st.venue]
            loop = loops.get(st)
            if loop is not None and loop.looping:
                pos, (bids, asks, n_ids) = loop.next_step()
                book = st.book
                book.set_levels(bids, asks)
                diff = book.commit(bids, asks, n_ids=n_ids, ts_ms=ts)
                venue.publish(diff, (loop, pos))
                venue.after_replay(diff)
                count += 1
                continue
            diff = gen.step_scheduled(st, tick, ts)
            if diff is None:
                continue
            if n_loop:
                if loop is None:
                    loop = loops[st] = BookLoop(n_loop)
                loop.record(diff.bids, diff.asks, st.replaced[0], st.replaced[1], diff.last - diff.first + 1)
            venue.publish(diff)
            count += 1
        return count

    def book_changed(self, venue: str, vsym: str) -> None:
        """A book is about to change outside the generator (a fill, a reset): its replay loop
        ends there, and the venue brings what it keeps per push up to the book (before the change)."""
        st = self.generator.states.get((venue, vsym))
        if st is not None and self._loops.pop(st, None) is not None:
            self.venues[venue].loop_ended(vsym)

    def _run_schedule(self, elapsed_s: float) -> None:
        """Listings and delistings due ``elapsed_s`` after the clock started."""
        uc = self.cfg.universe
        if uc.listing_interval_s > 0:
            while elapsed_s >= (self._listings_done + 1) * uc.listing_interval_s:
                self._listings_done += 1
                self.list_next()
        if uc.delisting_interval_s > 0:
            while elapsed_s >= (self._delistings_done + 1) * uc.delisting_interval_s:
                self._delistings_done += 1
                self.delist_next()

    # ---------------------------------------------------------------- clock
    def tick(self, n: int = 1) -> int:
        """Step the generator ``n`` times and publish; returns the number of diffs published.
        With a universe, one tick steps the books due on it (each at its own rate). The pushes of a
        tick go out with one socket write per connection at its end."""
        count = 0
        for _ in range(n):
            self.write_batch = batch = []
            try:
                count += self._tick_once()
            finally:
                self.write_batch = None
                for conn in batch:
                    conn.flush()
        self.diffs_published += count
        return count

    def _tick_once(self) -> int:
        """One step of the clock: the generator's diffs, then the armed ``full`` resets."""
        count = 0
        ts = now_ms()
        if self.universe is not None:
            count += self._step_universe(ts)
        else:
            for st, diff in self.generator.step(ts):
                self.venues[st.venue].publish(diff)
                count += 1
        for venue in self.venues.values():
            if venue.faults.reset:
                for vsym in sorted(venue.faults.reset):
                    st = self.generator.states[(venue.name, vsym)]
                    self.book_changed(venue.name, vsym)
                    venue.publish(self.generator.reset_book(st, ts))
                    count += 1
                venue.faults.reset.clear()
            venue.flush_stall()
        return count

    def pause(self) -> None:
        """Stop the auto clock after the current step (books stay still: compare them at leisure)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    async def _run_clock(self) -> None:
        interval = self.params.step_ms / 1000.0
        loop = asyncio.get_running_loop()
        nxt = start = loop.time()
        self._listings_done = self._delistings_done = 0
        while True:
            if not self._running.is_set():
                await self._running.wait()
                nxt = loop.time()
            if self.universe is not None:
                self._run_schedule(loop.time() - start)
            self.tick()
            nxt += interval
            delay = nxt - loop.time()
            if delay < -50 * interval:          # far behind (paused process): skip, don't burst
                nxt = loop.time()
                delay = 0
            await asyncio.sleep(max(0.0, delay))

    async def start(self) -> None:
        started = []
        try:
            for v in self.venues.values():
                await v.start()
                started.append(v)
        except BaseException:
            for v in reversed(started):
                await v.stop()
            raise
        self.started = True
        for v in self.venues.values():
            if v.player is not None:
                v.player.start()
        if self.clock == "auto" and self.capture is None:
            self._task = asyncio.get_running_loop().create_task(self._run_clock(), name="sim-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for v in reversed(list(self.venues.values())):
            if v.player is not None:
                await v.player.stop()
            await v.stop()
        self.started = False

    async def __aenter__(self) -> "ExchangeSimulator":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def describe(self) -> list[str]:
        """One line per venue: name, WebSocket URL, REST base URL, venue symbols (their count
        with a generated universe)."""
        def symbols(v: SimVenue) -> str:
            if self.universe is not None:
                return "%d (generated universe)" % len(v.instruments)
            return ",".join(v.instruments)
        return ["sim %-15s ws %s  rest %s  symbols %s" % (n, v.urls.ws, v.urls.rest, symbols(v))
                for n, v in self.venues.items() if v.urls is not None]


async def run_standalone(cfg: Any, duration: Optional[float] = None) -> int:
    """``python -m cexnode sim``: serve until SIGINT/SIGTERM or ``duration`` seconds; exit code."""
    try:
        sim = ExchangeSimulator(cfg)
        await sim.start()
    except (OSError, ValueError, KeyError) as e:      # busy port, unreadable capture, bad symbol
        print("cexnode sim: cannot start the simulator: %s" % e, file=sys.stderr)
        return 1
    for line in sim.describe():
        print(line)
    if sim.capture is not None:
        print("sim playing back %s (speed %s)" % (sim.cfg.capture, sim.cfg.capture_speed or "max"))
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    installed = []
    # SIGUSR1 pauses the clock and SIGUSR2 resumes it: another process (perf/bench_insitu.py) can
    # hold the books still and compare its clients' books with the REST snapshots, which keep answering.
    handlers = ((signal.SIGINT, done.set), (signal.SIGTERM, done.set), (signal.SIGUSR1, sim.pause),
                (signal.SIGUSR2, sim.resume))
    for sig, fn in handlers:
        try:
            loop.add_signal_handler(sig, fn)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread
            pass
    try:
        if duration is not None:
            try:
                await asyncio.wait_for(done.wait(), duration)
            except asyncio.TimeoutError:
                pass
        else:
            await done.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await sim.stop()
    print("sim stopped: %d diffs published" % sim.diffs_published)
    return 0

"""What the live venue gateways share: server-time sync, signed HTTP with the outcome rules of
:mod:`cexnode.execution.gateway`, instruments, callbacks and the balance cache.

Outcome rules (the contract's "Mapping venue states"): an HTTP answer < 500 is the venue's word
(DEFINITIVE); a 5xx, a timeout, or a connection lost after the request may have been written is
AMBIGUOUS; a failure to connect at all (nothing was written) is DEFINITIVE REJECTED.

Secrets (:class:`cexnode.config.Secret`) only reach the signers; nothing here logs headers,
query strings with signatures, or request bodies.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping, Optional

import aiohttp
import orjson

from cexnode.execution.gateway import (Balance, GatewayError, OrderAck, OrderNotFound, OrderRequest, OrderState,
                                       OrderStatus, Outcome)
from cexnode.log import get_exchange_logger
from cexnode.net.errors import (AmbiguousRequestError, CircuitOpenError, NotSentError, RateLimitedError, RestError,
                                RestFailure)
from cexnode.net.rest import RestManager, Signer
from cexnode.net.servertime import ServerClock

__all__ = ["VenueInstrument", "HttpAnswer", "NotSent", "LiveGateway", "PrivateConnection",
           "cancel_task", "instruments_from_symbol_map", "dec", "fmt_decimal"]

_ZERO = Decimal(0)
_KEEP_ORDERS = 20000        # orders tracked at most (beyond it the oldest half is forgotten)
KEEP_FINAL_S = 60.0         # a final order is forgotten this long after it became final


async def cancel_task(task: Optional[asyncio.Task]) -> None:
    """Cancel a background task and wait for it to end (its exception, if any, is not ours)."""
    if task is not None:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass


def _with(st: OrderState, **kw: Any) -> OrderState:
    return dataclasses.replace(st, **kw)


def dec(v: Any, default: Optional[Decimal] = None) -> Optional[Decimal]:
    """Exact Decimal of a venue number (string or JSON int; a JSON float via its repr)."""
    if v is None or v == "":
        return default
    if isinstance(v, Decimal):
        return v
    if isinstance(v, float):
        return Decimal(repr(v))
    return Decimal(str(v))


def fmt_decimal(d: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros ("0.001", "65000")."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


# -- private connections ----------------------------------------------------------------------------

class PrivateConnection:
    """A gateway's private WebSocket connection, kept open by a supervisor task: run one session
    (``_session``: connect, authenticate, read until the connection ends), then reconnect after the
    gateway's backoff, until :meth:`stop`. ``start`` waits up to ``timeout_s`` for ``up`` (set by
    the session once it is usable) and otherwise lets the supervisor keep trying in the background.

    Subclasses give ``_session`` and, where needed: ``_prepare`` (before each session, e.g. a
    listenKey), ``_failed(attempt)`` (after a failed session), ``_ended`` (after every session) and
    ``_closed`` (after the stop); ``what`` and ``not_ready_hint`` name it in the logs."""

    what = "private connection"
    not_ready_hint = ""

    def __init__(self, gateway: Any) -> None:
        self.gw = gateway
        self.log = gateway.log
        self.up = asyncio.Event()
        self._ws: Any = None
        self._task: Optional[asyncio.Task] = None
        self._stopping = False
        self.connects = 0
        self.frames = 0
        self.errors = 0

    async def start(self, timeout_s: float) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await asyncio.wait_for(self.up.wait(), timeout_s)
        except asyncio.TimeoutError:
            self.log.error("%s not ready yet; retrying in the background%s" % (self.what, self.not_ready_hint),
                           venue=self.gw.venue)

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            await self._ws.close()
        await cancel_task(self._task)
        self._task = None
        await self._closed()

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                await self._prepare()
                await self._session()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.errors += 1
                self.log.warning("%s failed; reconnecting" % self.what, venue=self.gw.venue,
                                 error=type(e).__name__, detail=self._redact(str(e))[:200])
                self._failed(attempt)
            self._ended()
            if self._stopping:
                break
            self.gw.stream_reconnects += 1
            await asyncio.sleep(self.gw.backoff(attempt))
            attempt += 1

    async def _session(self) -> None:
        raise NotImplementedError

    async def _prepare(self) -> None:
        pass

    def _failed(self, attempt: int) -> None:
        pass

    def _ended(self) -> None:
        self.up.clear()

    async def _closed(self) -> None:
        pass

    def _redact(self, text: str) -> str:
        return text


# -- instruments -------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True, slots=True)
class VenueInstrument:
    """A unified symbol on one venue: its venue string and, on futures, base units per contract."""

    symbol: str
    venue_symbol: str
    multiplier: Decimal = Decimal(1)

    @property
    def base(self) -> str:
        return self.symbol.partition("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.partition("/")[2].partition(":")[0]


def instruments_from_symbol_map(symbol_map: Any) -> dict[str, VenueInstrument]:
    """``{unified symbol: VenueInstrument}`` from a venue's frozen SymbolMap (multiplier exact:
    ``qty_mult × 10^(venue_qty_scale − qty_scale)``)."""
    out = {}
    for sym in symbol_map.symbols():
        vs = symbol_map.venue_symbol(sym)
        ins = symbol_map.instrument(vs)
        mult = Decimal(int(ins["qty_mult"])).scaleb(int(ins["venue_qty_scale"]) - int(ins["qty_scale"]))
        out[sym.name] = VenueInstrument(symbol=sym.name, venue_symbol=vs, multiplier=mult.normalize())
    return out


# -- HTTP ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: Any

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


class NotSent(Exception):
    """The request certainly did not leave (connection refused / DNS / no session)."""


class LiveGateway:
    """Base of the live venue gateways (see the module docstring). Subclasses implement the
    :class:`~cexnode.execution.gateway.OrderGateway` methods and ``_start_private``/``_stop_private``."""

    venue = ""
    # place() writes its request before it first waits (WebSocket order API, the REST manager's
    # order connection) and needs no Task until then: the executor starts it in its own call
    eager_place = True

    def __init__(self, *, rest_url: str, ws_url: str, request_timeout_s: float = 5.0,
                 time_sync_interval_s: float = 60.0, clock_ns: Callable[[], int] = time.time_ns,
                 instruments: Optional[Mapping[str, VenueInstrument]] = None, rest: Any = None,
                 balance_poll_s: float = 0.0) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.balance_poll_s = float(balance_poll_s)
        self._poll_task: Optional[asyncio.Task] = None
        self._rest: Optional[RestManager] = rest    # a shared RestManager (the adapter's), else ours
        self._own_rest = False
        self.ws_url = ws_url
        self.request_timeout_s = float(request_timeout_s)
        self._clock = clock_ns
        self.log = get_exchange_logger(self.venue, "gateway")
        self.server_clock = ServerClock(self._fetch_server_time, interval_s=time_sync_interval_s,
                                        clock_ns=clock_ns, log=self.log)
        self._instruments: dict[str, VenueInstrument] = {}
        self._by_venue_symbol: dict[str, VenueInstrument] = {}
        if instruments:
            self.set_instruments(instruments)
        self._session: Any = None
        self._order_cbs: list = []
        self._balance_cbs: list = []
        self._balances: dict[str, Balance] = {}
        self._orders: dict[str, OrderState] = {}          # client id -> newest state we know
        self._order_ids: dict[str, str] = {}              # venue order id -> client id
        self.keep_final_s = KEEP_FINAL_S
        self._finals: collections.deque = collections.deque()     # (monotonic s, client id) as orders end
        self._req_ids = itertools.count(1)
        self.started = False
        self._stopping = False
        self._closed = False
        self.placed = 0
        self.ambiguous = 0
        self.rejected = 0
        self.stream_updates = 0
        self.stream_reconnects = 0

    # -- instruments -------------------------------------------------------------------------------
    def set_instruments(self, instruments: Mapping[str, VenueInstrument]) -> None:
        self._instruments = dict(instruments)
        self._by_venue_symbol = {i.venue_symbol: i for i in self._instruments.values()}

    def bind_symbol_map(self, symbol_map: Any) -> None:
        self.set_instruments(instruments_from_symbol_map(symbol_map))

    def instrument(self, symbol: str) -> Optional[VenueInstrument]:
        return self._instruments.get(symbol)

    def by_venue_symbol(self, venue_symbol: Optional[str]) -> Optional[VenueInstrument]:
        return self._by_venue_symbol.get(venue_symbol or "")

    # -- HTTP --------------------------------------------------------------------------------------
    def _http(self) -> Any:
        """The aiohttp session of the private WebSockets."""
        if self._session is None:
            if self._closed:
                # stopped: a late caller (a background reconciliation) must not leave a new,
                # never-closed session behind; nothing is sent
                raise NotSent("%s: gateway stopped" % self.venue)
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8, keepalive_timeout=60))
        return self._session

    def _manager(self) -> RestManager:
        """The venue's :class:`~cexnode.net.rest.RestManager` (the adapter's, shared with market
        data: the venue counts its limits per IP/UID; or our own when standalone). It reads the
        venue's time from our clock."""
        rest = self._rest
        if rest is None:
            if self._closed:
                raise NotSent("%s: gateway stopped" % self.venue)
            rest = self._rest = RestManager(self.rest_url, venue=self.venue, timeout_s=self.request_timeout_s)
            self._own_rest = True
        if rest.server_clock is not self.server_clock:
            rest.adopt_server_clock(self.server_clock)
        return rest

    async def _send(self, method: str, path: str, params: Optional[dict] = None, body: bytes = b"", *,
                    sign: Optional[Signer] = None, endpoint: Optional[str] = None, market: Optional[str] = None,
                    timeout_s: Optional[float] = None, query: Optional[str] = None) -> HttpAnswer:
        """One exchange through the REST manager (rate limits, breaker; an order is never retried,
        a GET may be). Any HTTP answer is returned as is (the caller classifies it). Raises
        :class:`NotSent` when nothing was written (cannot connect, circuit open, paused by the venue),
        ``GatewayError(ambiguous=True)`` when the request may have been acted on without an answer
        (5xx on an order, timeout, connection lost after writing).

        ``query`` (already url-encoded, instead of ``params``) with no body: an order written in
        this call on the REST manager's order connection when it can go at once
        (:meth:`~cexnode.net.rest.RestManager.send_now`), else through the manager's ``request``."""
        if self._closed:
            raise NotSent("%s: gateway stopped" % self.venue)
        m = self._manager()
        try:
            sent = m.send_now(method, path, query, sign, endpoint=endpoint, market=market) \
                if query is not None and not body else None
            if sent is not None:
                r = await m.answer(sent, timeout_s or self.request_timeout_s)
            else:
                r = await m.request(method, path, params=params, query=query, body=body or None, sign=sign,
                                    endpoint=endpoint, market=market, timeout_s=timeout_s or self.request_timeout_s)
            return HttpAnswer(r.status, r.body, r.headers)
        except RestError as e:
            return HttpAnswer(e.status, e.body, e.headers)
        except (NotSentError, CircuitOpenError, RateLimitedError) as e:
            raise NotSent("%s %s %s: %s" % (self.venue, method, endpoint or path, type(e).__name__)) from None
        except AmbiguousRequestError as e:
            raise GatewayError("%s %s %s: %s" % (self.venue, method, endpoint or path,
                                                 "HTTP %d" % e.status if e.status else "no answer"),
                               ambiguous=True, code=str(e.status or "transport")) from None
        except (RestFailure, asyncio.TimeoutError) as e:
            raise GatewayError("%s %s %s: %s" % (self.venue, method, endpoint or path, type(e).__name__),
                               ambiguous=True, code="transport") from None

    async def _fetch_server_time(self) -> int:
        raise NotImplementedError

    # -- acks --------------------------------------------------------------------------------------
    def _ack(self, order: OrderRequest, outcome: Outcome, t0: int, state: Optional[OrderState] = None,
             reason: str = "", code: str = "") -> OrderAck:
        if outcome is Outcome.AMBIGUOUS:
            self.ambiguous += 1
        elif state is not None and state.status is OrderStatus.REJECTED:
            self.rejected += 1
        return OrderAck(client_id=order.client_id, venue=self.venue, outcome=outcome, state=state,
                        order_id=state.order_id if state is not None else "", reason=reason, error_code=code,
                        latency_ns=time.monotonic_ns() - t0)

    async def _cancel_answer_from_query(self, symbol: str, client_id: str, t0: int) -> OrderAck:
        """A cancel the venue refused (already final, unknown) or that was not sent: the venue's
        current word, from :meth:`query`, is the answer."""
        try:
            st = await self.query(symbol, client_id)
        except OrderNotFound as e:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, reason="not_found",
                            error_code=e.code, latency_ns=time.monotonic_ns() - t0)
        except GatewayError as e:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.AMBIGUOUS, reason=str(e),
                            error_code="ambiguous", latency_ns=time.monotonic_ns() - t0)
        return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=st,
                        order_id=st.order_id, latency_ns=time.monotonic_ns() - t0)

    def _rejected(self, order: OrderRequest, t0: int, reason: str, code: str = "") -> OrderAck:
        st = OrderState(client_id=order.client_id, venue=self.venue, symbol=order.symbol, side=order.side,
                        status=OrderStatus.REJECTED, qty=order.qty, reason=reason, ts_ns=self._clock())
        return self._ack(order, Outcome.DEFINITIVE, t0, st, reason=reason, code=code or reason)

    def _ambiguous(self, order: OrderRequest, t0: int, reason: str) -> OrderAck:
        st = OrderState(client_id=order.client_id, venue=self.venue, symbol=order.symbol, side=order.side,
                        status=OrderStatus.UNKNOWN, qty=order.qty, reason=reason, ts_ns=self._clock())
        self.log.warning("order outcome ambiguous: reconcile with query", venue=self.venue,
                         client_id=order.client_id, reason=reason)
        return self._ack(order, Outcome.AMBIGUOUS, t0, st, reason=reason, code="ambiguous")

    # -- order updates -----------------------------------------------------------------------------
    def _remember(self, st: OrderState) -> OrderState:
        """Keep the newest state per client id (fills never go backwards, final is sticky) and
        return the state to report."""
        old = self._orders.get(st.client_id)
        if st.order_id:
            self._order_ids[st.order_id] = st.client_id
        if old is not None:
            if st.filled_qty < old.filled_qty or (old.is_final and not st.is_final):
                return old
            if not st.order_id and old.order_id:
                st = _with(st, order_id=old.order_id)
        self._orders[st.client_id] = st
        if st.is_final and (old is None or not old.is_final):
            now = time.monotonic()
            self._finals.append((now, st.client_id))
            self._forget_finals(now)
        if len(self._orders) > _KEEP_ORDERS:
            self._prune()
        return st

    def _forget_finals(self, now: float) -> None:
        """Forget the orders that became final more than ``keep_final_s`` ago: the executor has
        settled them by then (it keeps its own record of late updates), and a node trading several
        times a second must not keep every order it ever sent."""
        cut = now - self.keep_final_s
        q = self._finals
        while q and q[0][0] <= cut:
            cid = q.popleft()[1]
            st = self._orders.get(cid)
            if st is not None and st.is_final:
                del self._orders[cid]
                if self._order_ids.get(st.order_id) == cid:
                    del self._order_ids[st.order_id]
                self._forget(cid)

    def _prune(self) -> None:
        """Forget the oldest half of the orders we track (a long-running node must not grow
        without bound; the executor settles an order within its reconcile timeout)."""
        drop = list(itertools.islice(self._orders, len(self._orders) // 2))
        for cid in drop:
            st = self._orders.pop(cid)
            self._order_ids.pop(st.order_id, None)
            self._forget(cid)

    def _forget(self, client_id: str) -> None:
        pass

    def _emit_order(self, st: OrderState) -> None:
        self.stream_updates += 1
        for cb in list(self._order_cbs):
            try:
                cb(st)
            except Exception as e:   # a subscriber's bug must not kill the private stream
                self.log.error("order callback failed", venue=self.venue, error=repr(e)[:200])

    def subscribe_orders(self, callback: Callable[[OrderState], None]) -> Callable[[], None]:
        self._order_cbs.append(callback)
        return lambda: self._order_cbs.remove(callback) if callback in self._order_cbs else None

    # -- balances ----------------------------------------------------------------------------------
    def _set_balances(self, balances: Mapping[str, Balance]) -> dict[str, Balance]:
        self._balances = dict(balances)
        return dict(self._balances)

    def _publish_balances(self, snap: Mapping[str, Balance]) -> None:
        for cb in list(self._balance_cbs):
            try:
                cb(self.venue, dict(snap))
            except Exception as e:
                self.log.error("balance callback failed", venue=self.venue, error=repr(e)[:200])

    async def _balance_poll(self) -> None:
        """``balance_poll_s`` > 0: re-read the balances over REST that often and hand them to the
        balance subscribers, stamped with the time the request was SENT (conservative: an order sent
        after that is not assumed to be in them). For venues whose private stream pushes changes
        only, this keeps a quiet account's balances fresh without a REST round trip per trade."""
        while True:
            await asyncio.sleep(self.balance_poll_s)
            t_sent = self._clock()
            try:
                bal = await self.balances()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.log.warning("balance poll failed", venue=self.venue, error=str(e)[:200])
                continue
            self._publish_balances({a: Balance(asset=a, free=b.free, locked=b.locked, ts_ns=t_sent)
                                    for a, b in bal.items()})

    def local_ns(self, venue_ms: Any) -> Optional[int]:
        """A venue timestamp (ms, the venue's clock) as ns of ours: the server clock's offset taken out
        (``Balance.ts_ns`` is compared with our send times); None when absent or unreadable."""
        try:
            v = dec(venue_ms)
        except ArithmeticError:              # decimal.InvalidOperation: not a number
            return None
        if v is None or not v.is_finite() or v <= 0:
            return None
        return int((v - self.server_clock.offset_ms) * 1_000_000)

    def _push_balances(self, updates: Mapping[str, Balance], ts_ns: int) -> None:
        """A private-stream balance push: merge it into the cache (seeded by REST when the stream
        connected) and hand every callback the whole cache observed at ``ts_ns`` — the stream has
        been connected since the seed, so unchanged assets are current too."""
        merged = {}
        for a, b in self._balances.items():
            merged[a] = Balance(asset=a, free=b.free, locked=b.locked, ts_ns=ts_ns)
        merged.update(updates)
        self._balances = merged
        self._publish_balances(merged)

    def subscribe_balances(self, callback: Callable[[str, Mapping[str, Balance]], None]) -> Callable[[], None]:
        self._balance_cbs.append(callback)
        return lambda: self._balance_cbs.remove(callback) if callback in self._balance_cbs else None

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Time sync, then the private stream (subclasses)."""
        self._stopping = False
        self._closed = False
        await self.server_clock.start()
        await self._start_private()
        if self.balance_poll_s > 0 and self._poll_task is None:
            self._poll_task = asyncio.get_running_loop().create_task(self._balance_poll())
        self.started = True

    async def stop(self) -> None:
        self._stopping = True
        await cancel_task(self._poll_task)
        self._poll_task = None
        await self._stop_private()
        await self.server_clock.stop()
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._own_rest and self._rest is not None:
            await self._rest.close()
            self._rest = None
            self._own_rest = False
        self.started = False

    async def _start_private(self) -> None:
        pass

    async def _stop_private(self) -> None:
        pass

    @staticmethod
    def backoff(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
        """Bounded exponential backoff with jitter (0.5..1.5 × base × 2^attempt, at most cap)."""
        return min(cap, base * (2 ** min(attempt, 16))) * (0.5 + random.random())

    # -- metrics ---------------------------------------------------------------------------------------
    def transport_counts(self) -> dict[str, int]:
        """Orders sent per transport (``rest`` / ``ws_api``)."""
        return {"rest": self.placed}

    def stream_connected(self) -> bool:
        return False

    def register_metrics(self, metrics: Any) -> None:
        """``cexnode_gateway_*`` series of this venue, read at scrape time."""
        v = self.venue
        metrics.register_counter_source("cexnode_gateway_orders", "Orders sent by the live gateway, by transport.",
                                        ("venue", "transport"),
                                        lambda: [((v, t), n) for t, n in self.transport_counts().items()])
        metrics.register_counter_source("cexnode_gateway_order_outcomes",
                                        "Order placements that were ambiguous or rejected.", ("venue", "outcome"),
                                        lambda: [((v, "ambiguous"), self.ambiguous), ((v, "rejected"), self.rejected)])
        metrics.register_counter_source("cexnode_gateway_stream_updates", "Order updates from the private stream.",
                                        ("venue",), lambda: [((v,), self.stream_updates)])
        metrics.register_counter_source("cexnode_gateway_stream_reconnects", "Private stream reconnects.",
                                        ("venue",), lambda: [((v,), self.stream_reconnects)])
        metrics.register_gauge_source("cexnode_gateway_stream_connected", "1 while the private stream is up.",
                                      ("venue",), lambda: [((v,), 1 if self.stream_connected() else 0)])
        metrics.register_gauge_source("cexnode_gateway_time_offset_ms", "Venue clock minus ours (signed requests).",
                                      ("venue",), lambda: [((v,), self.server_clock.offset_ms)])

    def status(self) -> dict:
        return {"venue": self.venue, "placed": self.placed, "ambiguous": self.ambiguous, "rejected": self.rejected,
                "stream_updates": self.stream_updates, "stream_reconnects": self.stream_reconnects,
                "time_offset_ms": self.server_clock.offset_ms, "time_synced": self.server_clock.synced}


# -- adapter wiring --------------------------------------------------------------------------------------

def live_config(adapter: Any) -> Any:
    """The node config when it asks for live trading and this venue has credentials, else None.

    The adapter finds the config in its context (the engine's ``cfg``: the engine attaches
    adapters after registering itself)."""
    cfg = getattr(adapter.context.engine, "cfg", None)
    if cfg is None or getattr(cfg.trading, "mode", "paper") != "live":
        return None
    vc = adapter.config
    if not vc.api_key or not vc.api_secret:
        adapter.log.error("live mode but no api_key/api_secret for this venue: no order entry", venue=adapter.name)
        return None
    return cfg


def gateway_kwargs(adapter: Any, cfg: Any) -> dict:
    """Constructor arguments every live gateway takes, from the venue and trading config."""
    ws, rest = adapter.urls()
    vc = adapter.config
    return dict(rest_url=rest, ws_url=ws, api_key=vc.api_key, api_secret=vc.api_secret, rest=adapter._rest_client(),
                request_timeout_s=cfg.trading.order_timeout_ms / 1000.0,
                time_sync_interval_s=vc.time_sync_interval_s,
                stream_start_timeout_s=max(1.0, min(10.0, vc.start_timeout_s / 2)),
                balance_poll_s=vc.balance_poll_s)


async def start_gateway(adapter: Any) -> None:
    """Start ``adapter.gateway`` (URLs resolved now: the embedded simulator's are known at start)."""
    gw = adapter.gateway
    if gw is None:
        return
    ws, rest = adapter.urls()
    gw.ws_url, gw.rest_url = ws, rest.rstrip("/")
    if adapter.symbol_map is not None:
        gw.bind_symbol_map(adapter.symbol_map)
    await gw.start()

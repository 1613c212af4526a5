"""The REST manager: one per venue, :class:`RestManager` — the venue's published rate limits and
quota headers, Retry-After, retries with backoff for idempotent requests, a circuit breaker per
endpoint, timeouts, signing hooks and the venue's clock, over a transport chosen per request.
Every counter is exported to Prometheus.

Request path, per attempt (one path: :meth:`RestManager.request` waits its turn in steps 1-2,
:meth:`RestManager.send_now` goes only when it need not wait; both then write and
:meth:`RestManager.answer` classifies):

1. **pause** — an endpoint told to wait (429/418 ``Retry-After``, or the venue's quota headers
   saying no request is left until a reset time: :data:`cexnode.net.ratelimit.QuotaReader`) sends
   nothing until then; a 418 (an IP ban) pauses the whole venue. A pause longer than
   ``max_retry_wait_s`` fails at once with :class:`RateLimitedError`.
2. **rate limit** — every matching :class:`~cexnode.net.ratelimit.LimitRule` of the venue (its
   descriptor's ``rest_limits``) reserves a slot in a rolling window; the request waits
   (``asyncio.sleep``, never blocking the loop, never dropped) until each rule has room.
3. **circuit breaker** (:class:`~cexnode.net.breaker.CircuitBreaker`, per endpoint) — after
   ``breaker_failures`` consecutive failures (5xx, timeout, transport error) requests fail fast with
   :class:`CircuitOpenError` (``retry_in_s``) until a half-open probe succeeds.
4. **sign** — ``sign(method, path, query, body) -> (query, headers)`` (the adapter's, or per request)
   is called now, right before sending, so timestamps are fresh on every attempt.
5. **send** on the transport chosen for this request (:mod:`cexnode.net.transport`): the order
   connection for the venue's order routes while it is open and idle, else the manager's transport
   (the keep-alive pool, or a recording in replay). The answer, within the request timeout, is
   classified:

   * < 400: returned (:class:`RestResponse`);
   * 429 / 418: pause (above), then an idempotent request tries again (bounded by ``max_attempts``);
   * 5xx, timeout, transport error: an idempotent request is retried after exponential backoff with
     jitter; a non-idempotent one (POST, DELETE unless said otherwise) is **never** retried: it
     raises :class:`AmbiguousRequestError` (the venue may have acted; the order gateways reconcile)
     — except a failure to connect at all, which is :class:`NotSentError` (nothing was written);
   * any other 4xx: :class:`RestError`, never retried.

Order requests can go over a dedicated kept-alive connection instead of the pool
(:meth:`RestManager.open_order_connection`, :mod:`cexnode.net.http1`): the request is written inside
the caller's own call (no request objects, no task hop) whenever that connection is open and idle.
:meth:`RestManager.send_now` + :meth:`RestManager.answer` are for an order that can go at once
(connection idle, not paused, room in the windows, breaker closed), without what only a general
request needs (body encoding, retries); :meth:`request` takes any other case.

**Background requests** (:func:`background_requests`, the book audits): inside that context a
request goes only when it can go at once *with room to spare* — not paused, breaker closed, every
rate-limit window at most :attr:`RestManager.BACKGROUND_SHARE` full — and is never retried;
otherwise it raises :class:`RestBusyError` and sends nothing. So a background request never waits
in front of, nor takes the last slots from, a request the node needs (a resync snapshot).

New pooled connections are counted (:mod:`cexnode.net.pool`): :meth:`RestManager.stats` reports how
often a request found one open (``reuse_rate``).

The errors live in :mod:`cexnode.net.errors`, the rate-limit arithmetic in
:mod:`cexnode.net.ratelimit`, the breaker in :mod:`cexnode.net.breaker`, the venue's clock in
:mod:`cexnode.net.servertime`; the names are importable from here too.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import dataclasses
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence
from urllib.parse import urlencode

import orjson

from cexnode._core.logring import HotHistogram
from cexnode.adapters.descriptor import VenueDescriptor
from cexnode.adapters.registry import UnknownVenueError, descriptor
from cexnode.log import get_exchange_logger
from cexnode.metrics import LATENCY_BUCKETS_US
from cexnode.net.breaker import BREAKER_CLOSED, BREAKER_HALF_OPEN, BREAKER_OPEN, CircuitBreaker
from cexnode.net.errors import (AmbiguousRequestError, CircuitOpenError, NotSentError, RateLimitedError, RestBusyError,
                                RestError, RestFailure, RestTimeoutError, RestTransportError)
from cexnode.net.http1 import OrderConnection
from cexnode.net.pool import PooledTransport
from cexnode.net.ratelimit import LimitRule, QuotaReader, RollingWindow, min_interval_s, retry_after_s, with_headroom
from cexnode.net.servertime import ServerClock
from cexnode.net.transport import NotWrittenError, Transport, cause_name

__all__ = ["RestManager", "RestClient", "RestPolicy", "RestResponse", "Signer", "LimitRule", "RollingWindow",
           "min_interval_s", "CircuitBreaker", "RestFailure", "RestError", "RestTimeoutError", "RestTransportError",
           "NotSentError", "AmbiguousRequestError", "CircuitOpenError", "RateLimitedError", "RestBusyError",
           "background_requests", "encode_query", "plain_value",
           "BREAKER_CLOSED", "BREAKER_HALF_OPEN", "BREAKER_OPEN"]

#: ``sign(method, path, query, body) -> (query, headers)``: signs one attempt of a request
Signer = Callable[[str, str, str, bytes], tuple]


# Set (per task: a context variable) while the requests made are background work (module docstring).
_BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar("cexnode_rest_background", default=False)


@contextlib.contextmanager
def background_requests() -> Any:
    """Requests made inside this block (in this task) are background requests: sent only with room
    to spare, never waiting and never retried; :class:`RestBusyError` otherwise (module docstring).
    Used around a call into adapter code that does its requests itself (the book audit's snapshot)."""
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


# -- responses and policy ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True, kw_only=True, slots=True)
class RestPolicy:
    """How one venue's REST manager behaves (``venues.<venue>.rest`` in the config).

    Parameters
    ----------
    timeout_s
        Whole-request timeout (connect + send + answer).
    max_attempts
        Attempts of an idempotent request (1 = no retry); non-idempotent requests get one.
    backoff_base_s, backoff_max_s
        Retry delay ``min(max, base × 2^(attempt-1)) × U(0.5, 1.5)``.
    max_retry_wait_s
        Longest pause (Retry-After, reset timestamp) a request waits for; longer: RateLimitedError.
    breaker_failures, breaker_cooldown_s, breaker_cooldown_max_s
        Circuit breaker per endpoint: consecutive failures to open, first cool-down, cap of the
        doubling cool-down while half-open probes fail.
    limit_headroom
        Fraction of each published rate limit used (clock skew between us and the venue's windows).
    pool_size, keepalive_s
        Pooled connections per venue and how long an idle one is kept.
    """

    timeout_s: float = 10.0
    max_attempts: int = 4
    backoff_base_s: float = 0.05
    backoff_max_s: float = 2.0
    max_retry_wait_s: float = 30.0
    breaker_failures: int = 5
    breaker_cooldown_s: float = 2.0
    breaker_cooldown_max_s: float = 30.0
    limit_headroom: float = 0.9
    pool_size: int = 32
    keepalive_s: float = 60.0

    @classmethod
    def from_config(cls, rc: Any) -> "RestPolicy":
        """From a ``venues.<venue>.rest`` config object (any object with these attribute names)."""
        kw = {}
        for name in cls.__dataclass_fields__:
            if hasattr(rc, name):
                kw[name] = getattr(rc, name)
        return cls(**kw)


# -- the manager -----------------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*\Z").match
plain_value = _PLAIN       # a match when the value needs no url-escaping (else None)


def encode_query(params: Any) -> str:
    """``urlencode(params)`` (a mapping or ``(key, value)`` pairs; values ``str()``-ed), with the
    common case — keys and values that need no escaping — joined directly."""
    items = [(k, v if isinstance(v, str) else str(v))
             for k, v in (params.items() if hasattr(params, "items") else params)]
    if all(_PLAIN(k) is not None and _PLAIN(v) is not None for k, v in items):
        return "&".join(k + "=" + v for k, v in items)
    return urlencode(items)


_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS"))


def _registered(venue: str) -> Optional[VenueDescriptor]:
    """The venue's descriptor, None for a name no venue package registers (tests, plug-ins)."""
    if not venue:
        return None
    try:
        return descriptor(venue)
    except UnknownVenueError:
        return None


class RestManager:
    """REST for one venue (module docstring).

    Parameters
    ----------
    base_url
        The venue's REST base URL; request paths are absolute (``/api/...``).
    venue
        Venue name: metrics label, and the registered venue whose descriptor gives the rate limits
        (``rest_limits``) and the quota-header reader (``rest_quota_reader``) unless given here.
    policy
        :class:`RestPolicy`; ``timeout_s``/``max_attempts`` override its fields (older callers).
    headers
        Sent with every request.
    limits
        Rate-limit rules (default: the venue's published ones).
    quota_reader
        Reads the venue's quota headers of an answer (default: the venue's;
        :data:`cexnode.net.ratelimit.QuotaReader`).
    signer
        Default signing hook for ``signed=True`` requests: ``sign(method, path, query, body) ->
        (query, headers)`` (a venue's ``VenueDescriptor.sign_hook`` makes one).
    capture
        An object with ``rest(venue, method, path, query, status, body)`` (a CaptureWriter) that sees
        every answer (recording).
    transport
        Where requests go (:class:`cexnode.net.transport.Transport`; default: a keep-alive pool
        to ``base_url``). The order connection, when open, takes the order routes.
    clock
        Monotonic seconds (tests).
    """

    # a venue's quota reset time is its clock (ms, truncated) and ours is only estimated
    QUOTA_RESET_MARGIN_S = 0.05
    # A background request goes only while every window it counts in is at most this full: the
    # rest of each window stays for the requests the node needs (snapshots, orders).
    BACKGROUND_SHARE = 0.5

    def __init__(self, base_url: str, *, venue: str = "", policy: Optional[RestPolicy] = None,
                 timeout_s: Optional[float] = None, max_attempts: Optional[int] = None,
                 headers: Optional[dict] = None, limits: Optional[Sequence[LimitRule]] = None,
                 quota_reader: Optional[QuotaReader] = None, signer: Optional[Signer] = None, capture: Any = None,
                 transport: Optional[Transport] = None, clock: Callable[[], float] = time.monotonic) -> None:
        pol = policy or RestPolicy()
        over = {}
        if timeout_s is not None:
            over["timeout_s"] = float(timeout_s)
        if max_attempts is not None:
            over["max_attempts"] = int(max_attempts)
        self.policy = dataclasses.replace(pol, **over) if over else pol
        self.base_url = base_url.rstrip("/")
        self.venue = venue
        self.headers = headers
        desc = _registered(venue) if limits is None or quota_reader is None else None
        if limits is None:
            limits = desc.rest_limits() if desc is not None and desc.rest_limits is not None else ()
        self.limits = list(limits)
        self.quota_reader: Optional[QuotaReader] = (quota_reader if quota_reader is not None
                                                    else desc.rest_quota_reader if desc is not None else None)
        self.signer = signer
        self.capture = capture
        self.clock = clock
        self.log = get_exchange_logger(venue or "rest", "rest")
        self.transport: Transport = transport if transport is not None else PooledTransport(
            self.base_url, headers=headers, pool_size=self.policy.pool_size, keepalive_s=self.policy.keepalive_s)
        self._windows: dict[tuple, RollingWindow] = {}
        self._windows_cache: dict[tuple, list] = {}     # (method, endpoint, market) -> its windows
        self._breakers: dict[str, CircuitBreaker] = {}
        self._paused_until: dict[str, float] = {}       # endpoint -> monotonic time
        self._venue_paused_until = 0.0
        # the venue's clock: our own until the order gateway's (kept in sync) is adopted
        self.server_clock = ServerClock()
        self._clock_adopted = False
        self.quota_remaining: dict[str, int] = {}       # endpoint -> requests left (the venue's quota headers)
        # counters (exported by cexnode.metrics.add_rest_sources)
        self.requests = 0                               # attempts that were sent
        self._on_wire = 0                               # requests that got a connection (new or pooled)
        self.retries = 0
        self.by_status: collections.Counter = collections.Counter()      # (endpoint, status label)
        self.retries_by: collections.Counter = collections.Counter()     # endpoint
        self.waits: collections.Counter = collections.Counter()          # endpoint: requests that waited
        self.wait_s: collections.Counter = collections.Counter()         # endpoint: seconds waited
        self.rate_limited: collections.Counter = collections.Counter()   # (endpoint, "429"|"418")
        self.refused: collections.Counter = collections.Counter()        # (endpoint, "circuit_open"|"rate_limited")
        self.latency: dict[str, Any] = {}                                # endpoint -> HotHistogram (μs)
        self.order_connection: Optional[OrderConnection] = None  # takes order_routes (open_order_connection)
        self.order_routes: frozenset = frozenset()
        self.order_connection_requests = 0
        self.order_connection_fallbacks = 0      # order requests sent by the pool: connection busy or down

    # -- compatibility -----------------------------------------------------------------------------
    @property
    def timeout_s(self) -> float:
        return self.policy.timeout_s

    @property
    def max_attempts(self) -> int:
        return self.policy.max_attempts

    @property
    def connections_created(self) -> int:
        """New connections the manager's transport opened (the order connection's are its own)."""
        return self.transport.connections_created

    @property
    def _session(self) -> Any:
        """The pool's aiohttp session while it is open (None before the first request and after close)."""
        return getattr(self.transport, "session", None)

    # -- server time -------------------------------------------------------------------------------
    def adopt_server_clock(self, clock: ServerClock) -> None:
        """Read the venue's time from ``clock`` (kept in sync by its owner, the venue's order gateway)
        from now on: signed timestamps and quota reset times. The first clock adopted stays."""
        if not self._clock_adopted:
            self.server_clock = clock
            self._clock_adopted = True

    @property
    def server_time_offset_ms(self) -> int:
        """Venue clock minus ours (ms)."""
        return int(self.server_clock.offset_ms)

    @server_time_offset_ms.setter
    def server_time_offset_ms(self, value: int) -> None:
        self.server_clock.offset_ms = int(value)

    def server_now_ms(self) -> int:
        """The venue's clock now (ms), for signed-request timestamps."""
        return self.server_clock.now_ms()

    async def sync_server_time(self, path: str, read_ms: Callable[[Any], int], *, samples: int = 3,
                               params: Optional[dict] = None) -> int:
        """Measure the offset with the venue's time endpoint ``path`` (``read_ms``: its answer's
        server ms) through this manager; sets and returns ``server_time_offset_ms``
        (:meth:`cexnode.net.servertime.ServerClock.sync`)."""
        async def fetch() -> int:
            return int(read_ms((await self.request("GET", path, params=params)).json()))

        return await self.server_clock.sync(fetch, samples=samples)

    # -- transports ----------------------------------------------------------------------------------
    async def open_order_connection(self, routes: Iterable[tuple[str, str]], ping_path: Optional[str] = None,
                                    keepalive_s: float = 20.0) -> bool:
        """Send ``routes`` (``(method, endpoint)`` pairs: the order requests) over one kept-alive
        :class:`~cexnode.net.http1.OrderConnection`, written in the caller's own call, whenever it
        is open and idle; the manager's transport otherwise. Rate limits, breaker, signing and the
        outcome rules are the same on both. ``ping_path``: a cheap GET that keeps it open when idle
        (it counts against the limits like any request; skipped when they have no room). False: not
        connected yet (it keeps trying in the background)."""
        if self.order_connection is not None:
            return self.order_connection.connected

        def admit() -> bool:
            return self._admit_now("GET", ping_path, None, 1) if ping_path else False

        self.order_connection = OrderConnection(self.base_url, name="%s orders" % (self.venue or "rest"),
                                                connect_timeout_s=min(self.policy.timeout_s, 5.0),
                                                keepalive_s=keepalive_s, ping_target=ping_path, admit=admit,
                                                headers=list((self.headers or {}).items()), log=self.log)
        self.order_routes = frozenset((m.upper(), p) for m, p in routes)
        return await self.order_connection.start()

    async def close_order_connection(self) -> None:
        oc, self.order_connection = self.order_connection, None
        self.order_routes = frozenset()
        if oc is not None:
            await oc.close()

    async def close(self) -> None:
        await self.close_order_connection()
        await self.transport.close()

    # -- pieces --------------------------------------------------------------------------------------
    def breaker(self, endpoint: str) -> CircuitBreaker:
        b = self._breakers.get(endpoint)
        if b is None:
            p = self.policy
            b = self._breakers[endpoint] = CircuitBreaker(p.breaker_failures, p.breaker_cooldown_s,
                                                          p.breaker_cooldown_max_s, clock=self.clock)
        return b

    def breakers(self) -> dict[str, CircuitBreaker]:
        return dict(self._breakers)

    def paused_for(self, endpoint: str, now: Optional[float] = None) -> float:
        """Seconds this endpoint must still wait because the venue said so (0: not paused)."""
        until = max(self._paused_until.get(endpoint, 0.0), self._venue_paused_until)
        return max(0.0, until - (self.clock() if now is None else now))

    def pause(self, endpoint: Optional[str], seconds: float) -> None:
        """Send nothing to ``endpoint`` (None: the whole venue) for ``seconds``."""
        until = self.clock() + max(0.0, seconds)
        if endpoint is None:
            self._venue_paused_until = max(self._venue_paused_until, until)
        else:
            self._paused_until[endpoint] = max(self._paused_until.get(endpoint, 0.0), until)

    def _windows_for(self, method: str, endpoint: str, market: Optional[str]) -> list[RollingWindow]:
        key0 = (method, endpoint, market)
        out = self._windows_cache.get(key0)
        if out is not None:
            return out
        out = self._windows_cache[key0] = []
        for r in self.limits:
            if not r.matches(method, endpoint):
                continue
            key: tuple
            if r.per == "endpoint":
                key = (r.name, endpoint)
            elif r.per == "market":
                key = (r.name, market or "")
            else:
                key = (r.name,)
            w = self._windows.get(key)
            if w is None:
                w = self._windows[key] = RollingWindow(*with_headroom(r.limit, r.window_s,
                                                                      self.policy.limit_headroom))
            out.append(w)
        return out

    async def _admit(self, method: str, endpoint: str, market: Optional[str], weight: int) -> None:
        """Wait out pauses and rate limits (module docstring, steps 1-2)."""
        waited = 0.0
        while True:
            p = self.paused_for(endpoint)
            if p <= 0:
                break
            if p > self.policy.max_retry_wait_s:
                self.refused[(endpoint, "rate_limited")] += 1
                raise RateLimitedError("%s %s paused by the venue for %.1f s" % (self.venue, endpoint, p),
                                       venue=self.venue, endpoint=endpoint, retry_in_s=p)
            await asyncio.sleep(p)
            waited += p
        windows = self._windows_for(method, endpoint, market)
        if windows:
            now = self.clock()
            t = max(w.earliest(now, weight) for w in windows)
            for w in windows:
                w.book(t, weight)
            if t > now:
                await asyncio.sleep(t - now)
                waited += t - now
                p = self.paused_for(endpoint)      # a pause that arrived while we waited
                while p > 0:
                    if p > self.policy.max_retry_wait_s:
                        self.refused[(endpoint, "rate_limited")] += 1
                        raise RateLimitedError("%s %s paused by the venue for %.1f s" % (self.venue, endpoint, p),
                                               venue=self.venue, endpoint=endpoint, retry_in_s=p)
                    await asyncio.sleep(p)
                    waited += p
                    p = self.paused_for(endpoint)
        if waited > 0:
            self.waits[endpoint] += 1
            self.wait_s[endpoint] += waited

    def _admit_now(self, method: str, endpoint: str, market: Optional[str], weight: int) -> bool:
        """Book a request that may go right now (not paused, room in every window); False (nothing
        booked) otherwise."""
        now = self.clock()
        if self.paused_for(endpoint, now) > 0:
            return False
        windows = self._windows_for(method, endpoint, market)
        for w in windows:                    # (a loop, no generator: the order path)
            if not (w.free_now(now) if weight == 1 else w.earliest(now, weight) <= now):
                return False
        for w in windows:
            w.book(now, weight)
        return True

    def _admit_background(self, method: str, endpoint: str, market: Optional[str], weight: int,
                          brk: "CircuitBreaker") -> bool:
        """Book a background request that may go now with room to spare (module docstring); False
        (nothing booked) otherwise."""
        now = self.clock()
        if self.paused_for(endpoint, now) > 0 or brk.state != BREAKER_CLOSED:
            return False
        windows = self._windows_for(method, endpoint, market)
        for w in windows:
            if w.used(now) + weight > w.limit * self.BACKGROUND_SHARE or w.earliest(now, weight) > now:
                return False
        for w in windows:
            w.book(now, weight)
        return True

    def _backoff(self, attempt: int) -> float:
        p = self.policy
        return min(p.backoff_max_s, p.backoff_base_s * (2 ** min(attempt - 1, 16))) * (0.5 + random.random())

    def _read_quota(self, endpoint: str, headers: Any) -> None:
        """The venue's quota headers (``quota_reader``): no request left -> pause the endpoint until
        the venue's reset time."""
        q = self.quota_reader(headers)                   # type: ignore[misc]
        if q is None:
            return
        remaining, reset_ms = q
        self.quota_remaining[endpoint] = remaining
        if remaining <= 0 and reset_ms is not None:
            wait = (reset_ms - self.server_now_ms()) / 1000.0 + self.QUOTA_RESET_MARGIN_S
            if wait > 0:
                self.pause(endpoint, min(wait, 60.0))

    def _observe(self, endpoint: str, t0: float) -> None:
        h = self.latency.get(endpoint)
        if h is None:
            h = self.latency[endpoint] = HotHistogram(LATENCY_BUCKETS_US)
        h.observe(int((time.perf_counter() - t0) * 1e6))

    # -- the request ---------------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: Optional[dict] = None, query: Optional[str] = None,
                      body: Any = None,
                      headers: Optional[dict] = None, weight: int = 1, idempotent: Optional[bool] = None,
                      endpoint: Optional[str] = None, market: Optional[str] = None, signed: bool = False,
                      sign: Optional[Signer] = None, timeout_s: Optional[float] = None) -> RestResponse:
        """Send one request with the venue's limits, retries and breaker (module docstring).

        Parameters
        ----------
        method, path
            HTTP method and absolute path (``/api/...``).
        params
            Query parameters (sent url-encoded in this order; this exact string is signed).
        query
            Or the query string already url-encoded (sent and signed as it is).
        body
            bytes/str, or an object sent as JSON.
        idempotent
            Default: GET/HEAD/OPTIONS only. Non-idempotent requests are sent once.
        endpoint
            Label and limit/breaker key (default: ``path``; give a template for paths with ids).
        market
            For per-market limits (a venue that limits order placement per market).
        signed, sign
            Sign with ``sign`` or the manager's ``signer``.
        timeout_s
            This request's timeout (default: the policy's).

        Raises
        ------
        RestError, AmbiguousRequestError, NotSentError, RestTimeoutError, RestTransportError,
        CircuitOpenError, RateLimitedError
        """
        method = method.upper()
        ep = endpoint or path
        idem = method in _IDEMPOTENT if idempotent is None else bool(idempotent)
        pol = self.policy
        attempts = pol.max_attempts if idem else 1
        if body is None:
            data = b""
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = orjson.dumps(body)
        query0 = query if query is not None else encode_query(params) if params else ""
        signer = sign or (self.signer if signed else None)
        if signed and signer is None:
            raise ValueError("%s: signed request without a signer" % self.venue)
        timeout = timeout_s or pol.timeout_s
        lane = self.order_connection if (method, ep) in self.order_routes else None
        brk = self.breaker(ep)
        background = _BACKGROUND.get()
        if background:
            attempts = 1
        for attempt in range(1, attempts + 1):
            if background:
                if not self._admit_background(method, ep, market, weight, brk):
                    self.refused[(ep, "background_busy")] += 1
                    raise RestBusyError("%s %s: no room for a background request" % (self.venue, ep),
                                        venue=self.venue, endpoint=ep)
            elif not self._admit_now(method, ep, market, weight):
                await self._admit(method, ep, market, weight)
            if not brk.allow():
                self.refused[(ep, "circuit_open")] += 1
                raise CircuitOpenError("%s %s: circuit open" % (self.venue, ep), venue=self.venue, endpoint=ep,
                                       retry_in_s=brk.retry_in())
            query, hdrs = query0, dict(headers) if headers else {}
            if signer is not None:
                query, extra = signer(method, path, query0, data)
                hdrs.update(extra or {})
            if data and "Content-Type" not in hdrs:
                hdrs["Content-Type"] = "application/json"
            if lane is not None and lane.ready:
                transport: Transport = lane
            else:
                if lane is not None:
                    self.order_connection_fallbacks += 1
                transport = self.transport
            r = await self.answer(self._write(transport, method, path, path + ("?" + query if query else ""), hdrs,
                                              data, ep, query0, brk, idem, attempt == attempts, attempt), timeout)
            if type(r) is RestResponse:
                return r
            self.retries += 1
            self.retries_by[ep] += 1
            if r > 0:
                await asyncio.sleep(r)
        raise AssertionError("unreachable")

    # -- the order path: written in the caller's call ---------------------------------------------------
    def send_now(self, method: str, path: str, query: str, sign: Optional[Signer] = None, *,
                 endpoint: Optional[str] = None, market: Optional[str] = None) -> Optional[tuple]:
        """Write a non-idempotent request (no body) on the order connection in this call, when it
        can go at once: one of ``order_routes``, the connection idle, the endpoint not paused, room
        in every rate window. Returns a handle for :meth:`answer`; None when it cannot go at once,
        with nothing booked or written (then :meth:`request` waits, falls back or refuses as
        usual). Raises CircuitOpenError (nothing written, no rate-limit slot taken).

        The steps of :meth:`request` for one attempt on the order connection, without what only a
        general request needs (body encoding, retries): the executor's order path runs from cold
        CPU caches, where every layer counts."""
        ep = endpoint or path
        lane = self.order_connection
        if lane is None or (method, ep) not in self.order_routes or method in _IDEMPOTENT or not lane.ready:
            return None
        brk = self.breaker(ep)
        if not brk.allow():                  # refused: no rate-limit slot taken
            self.refused[(ep, "circuit_open")] += 1
            raise CircuitOpenError("%s %s: circuit open" % (self.venue, ep), venue=self.venue, endpoint=ep,
                                   retry_in_s=brk.retry_in())
        if not self._admit_now(method, ep, market, 1):
            brk.release()                    # (a half-open probe: the next caller's)
            return None
        q, hdrs = sign(method, path, query, b"") if sign is not None else (query, None)
        return self._write(lane, method, path, path + "?" + q if q else path, hdrs, b"", ep, query, brk, False,
                           True, 1)

    # -- one attempt: write, then the answer's outcome ---------------------------------------------------
    def _write(self, transport: Transport, method: str, path: str, target: str, headers: Any, data: bytes,
               ep: str, query0: str, brk: CircuitBreaker, idem: bool, last: bool, attempt: int) -> tuple:
        """Hand one admitted, signed attempt to ``transport``; the handle :meth:`answer` takes."""
        self.requests += 1
        t0 = time.perf_counter()
        try:
            sent = transport.send(method, target, headers, data)
        except BaseException:
            self.requests -= 1
            brk.release()
            raise
        if transport is self.order_connection:
            self.order_connection_requests += 1
        return (transport, sent, t0, brk, method, path, ep, query0, idem, last, attempt)

    async def answer(self, sent: tuple, timeout_s: Optional[float] = None) -> Any:
        """The answer to an attempt written by :meth:`send_now` (or :meth:`request`), classified
        (module docstring): a :class:`RestResponse`, or RestError / AmbiguousRequestError /
        NotSentError / RestTimeoutError / RestTransportError. An attempt of :meth:`request` that may
        be retried gives the seconds to wait before the next one instead (never for send_now's)."""
        transport, handle, t0, brk, method, path, ep, query0, idem, last, attempt = sent
        timeout_s = timeout_s or self.policy.timeout_s
        verdict = False
        try:
            try:
                status, rheaders, rbody = await transport.answer(handle, timeout_s)
            except asyncio.TimeoutError:
                verdict = True
                self._no_answer(method, ep, brk, idem, "timeout", "timed out after %.1f s" % timeout_s)
                if last:
                    raise RestTimeoutError("%s %s %s: timed out after %.1f s (%d attempts)"
                                           % (self.venue, method, ep, timeout_s, attempt),
                                           venue=self.venue, endpoint=ep) from None
                return self._backoff(attempt)
            except NotWrittenError as e:
                self.by_status[(ep, "connect_error")] += 1
                brk.failure()
                verdict = True
                if not idem or last:
                    raise NotSentError("%s %s %s: cannot connect (%s)" % (self.venue, method, ep, e.cause),
                                       venue=self.venue, endpoint=ep) from None
                return self._backoff(attempt)
            except OSError as e:
                verdict = True
                self._no_answer(method, ep, brk, idem, "transport_error", "%s after sending" % cause_name(e))
                if last:
                    raise RestTransportError("%s %s %s: %s" % (self.venue, method, ep, cause_name(e)),
                                             venue=self.venue, endpoint=ep) from None
                return self._backoff(attempt)
            verdict = True
            return self._answered(method, path, ep, query0, status, rheaders, rbody, t0, brk, idem, last, attempt)
        finally:
            if not verdict:
                brk.release()

    # -- the outcome of an answer ----------------------------------
    def _answered(self, method: str, path: str, ep: str, query0: str, status: int, rheaders: Any, rbody: bytes,
                  t0: float, brk: CircuitBreaker, idem: bool, last: bool, attempt: int) -> Any:
        """Book an HTTP answer (counters, latency, capture, the venue's quota headers, breaker).
        Returns the RestResponse of a success, or the seconds to wait before the next attempt of
        a retryable answer; raises RestError / AmbiguousRequestError when the answer is final."""
        self._on_wire += 1
        self._observe(ep, t0)
        self.by_status[(ep, str(status))] += 1
        if self.capture is not None:
            try:
                self.capture.rest(self.venue, method, path, query0, status, rbody)
            except Exception as e:          # recording must never break trading
                self.log.warning("capture failed", error=repr(e)[:200])
        if self.quota_reader is not None:
            self._read_quota(ep, rheaders)
        if status < 400:
            brk.success()
            return RestResponse(status, rheaders, rbody)
        if status in (429, 418):
            # The venue answered: the endpoint is alive (breaker), only over quota.
            brk.success()
            self.rate_limited[(ep, str(status))] += 1
            ra = retry_after_s(rheaders)
            pause = ra if ra is not None else self._backoff(attempt)
            self.pause(None if status == 418 else ep, pause)
            self.log.warning("rate limited by the venue", venue=self.venue, endpoint=ep, status=status,
                             retry_after_s=round(pause, 3))
            if not idem or last:
                raise RestError(status, rbody, path, venue=self.venue, headers=rheaders)
            return 0.0                      # _admit waits the pause
        if status >= 500:
            brk.failure()
            if not idem:
                raise AmbiguousRequestError("%s %s %s: HTTP %d (outcome unknown)"
                                            % (self.venue, method, ep, status), venue=self.venue,
                                            endpoint=ep, status=status)
            if last:
                raise RestError(status, rbody, path, venue=self.venue, headers=rheaders)
            return self._backoff(attempt)
        brk.success()                       # the venue's definitive word: never retried
        raise RestError(status, rbody, path, venue=self.venue, headers=rheaders)

    def _no_answer(self, method: str, ep: str, brk: CircuitBreaker, idem: bool, label: str, what: str) -> None:
        """Book a request that left and got no answer (``label``: timeout | transport_error); raises
        AmbiguousRequestError ("``what`` (outcome unknown)") unless ``idem``."""
        self._on_wire += 1
        self.by_status[(ep, label)] += 1
        brk.failure()
        if not idem:
            raise AmbiguousRequestError("%s %s %s: %s (outcome unknown)" % (self.venue, method, ep, what),
                                        venue=self.venue, endpoint=ep) from None

    # -- reporting -----------------------------------------------------------------------------------
    @property
    def connections_reused(self) -> int:
        """Requests that went out on an already-open pooled connection."""
        return max(0, self._on_wire - self.connections_created)

    @property
    def reuse_rate(self) -> float:
        """Share of requests written to a connection that found one open in the pool."""
        return self.connections_reused / self._on_wire if self._on_wire else 0.0

    def stats(self) -> dict:
        return {"requests": self.requests, "connections_created": self.connections_created,
                "connections_reused": self.connections_reused, "reuse_rate": round(self.reuse_rate, 4),
                "retries": self.retries, "rate_limited": sum(self.rate_limited.values()),
                "rate_limit_waits": sum(self.waits.values()),
                "breakers": {ep: b.state_name for ep, b in self._breakers.items()},
                "server_time_offset_ms": self.server_time_offset_ms,
                "order_connection": (dict(self.order_connection.stats(), order_requests=self.order_connection_requests,
                                          pool_fallbacks=self.order_connection_fallbacks)
                                     if self.order_connection is not None else None)}

    status = stats


# The name earlier revisions and callers use.
RestClient = RestManager

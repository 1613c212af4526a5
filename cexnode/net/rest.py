"""REST manager: one per venue — pooled keep-alive connections, the venue's published rate limits,
Retry-After, retries with backoff for idempotent requests, a circuit breaker per endpoint,
timeouts, signing hooks and the server-time offset. Every counter is exported to Prometheus.

Request path (:meth:`RestManager.request`), per attempt:

1. **pause** — an endpoint told to wait (429/418 ``Retry-After``, Gate ``X-Gate-RateLimit-Requests-Remain: 0``
   until ``X-Gate-RateLimit-Reset-Timestamp``) sends nothing until then; a 418 (MEXC IP ban) pauses the
   whole venue. A pause longer than ``max_retry_wait_s`` fails at once with :class:`RateLimitedError`.
2. **rate limit** — every matching :class:`LimitRule` of the venue (:func:`venue_limits`) reserves a
   slot; the request waits (``asyncio.sleep``, never blocking the loop, never dropped) until each rule
   has room. Rules are *rolling windows*: at most ``limit`` weight in any ``window_s``. Why not a
   plain token bucket: a bucket that starts full lets ``limit`` through at once and then refills,
   i.e. up to 2 × limit inside one of the venue's fixed 10 s windows, which is what gets a 429.
3. **circuit breaker** (:class:`CircuitBreaker`, per endpoint) — after ``breaker_failures``
   consecutive failures (5xx, timeout, transport error) it opens: requests fail fast with
   :class:`CircuitOpenError` (``retry_in_s``) for ``breaker_cooldown_s`` (doubling while the probes
   keep failing, up to ``breaker_cooldown_max_s``); then one probe goes (half-open): success closes it.
4. **sign** — ``sign(method, path, query, body) -> (query, headers)`` (the adapter's, or per request)
   is called now, right before sending, so timestamps are fresh on every attempt.
5. **send** with the request timeout; the answer is classified:

   * < 400: returned (:class:`RestResponse`);
   * 429 / 418: pause (above), then an idempotent request tries again (bounded by ``max_attempts``);
   * 5xx, timeout, transport error: an idempotent request is retried after exponential backoff with
     jitter; a non-idempotent one (POST, DELETE unless said otherwise) is **never** retried: it
     raises :class:`AmbiguousRequestError` (the venue may have acted; the order gateways reconcile)
     — except a failure to connect at all, which is :class:`NotSentError` (nothing was written);
   * any other 4xx: :class:`RestError`, never retried.

Order requests can go over a dedicated kept-alive connection instead of the pool
(:meth:`RestManager.open_order_connection`, :mod:`cexnode.net.http1`): the same steps, but the
request is written inside the caller's own call (no request objects, no task hop) whenever that
connection is open and idle. :meth:`RestManager.send_now` + :meth:`RestManager.answer` are that
path alone, for an order that can go at once (connection idle, not paused, room in the windows,
breaker closed): the same steps and the same classification of the answer, without what only a
general request needs (the executor's order path; :meth:`request` takes any other case).

**Background requests** (:func:`background_requests`, the book audits): inside that context a
request goes only when it can go at once *with room to spare* — not paused, breaker closed, every
rate-limit window at most :attr:`RestManager.BACKGROUND_SHARE` full — and is never retried;
otherwise it raises :class:`RestBusyError` and sends nothing. So a background request never waits
in front of, nor takes the last slots from, a request the node needs (a resync snapshot).

Connection reuse is counted with aiohttp trace hooks (a request on a pooled connection vs. one
that had to open a new one); the seeds promise > 95 % reuse, :meth:`RestManager.stats` reports it.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence
from urllib.parse import urlencode

import orjson

from cexnode.log import get_exchange_logger

__all__ = ["RestManager", "RestClient", "RestPolicy", "RestResponse", "LimitRule", "venue_limits",
           "RollingWindow", "CircuitBreaker", "RestFailure", "RestError", "RestTimeoutError", "RestTransportError",
           "NotSentError", "AmbiguousRequestError", "CircuitOpenError", "RateLimitedError", "RestBusyError",
           "background_requests",
           "BREAKER_CLOSED", "BREAKER_HALF_OPEN", "BREAKER_OPEN", "mexc_sign_hook", "gate_sign_hook"]

Signer = Callable[[str, str, str, bytes], tuple]      # (method, path, query, body) -> (query, headers)


# -- errors ----------------------------------------------------------------------------------------

class RestFailure(Exception):
    """Base of every error the REST manager raises (``venue``, ``endpoint``)."""

    def __init__(self, msg: str, *, venue: str = "", endpoint: str = "") -> None:
        super().__init__(msg)
        self.venue = venue
        self.endpoint = endpoint


class RestError(RestFailure):
    """The venue answered with an HTTP error (``status``, ``body``, ``headers``)."""

    def __init__(self, status: int, body: bytes, path: str, *, venue: str = "", headers: Any = None) -> None:
        super().__init__("HTTP %d on %s: %s" % (status, path, body[:200].decode("utf-8", "replace")),
                         venue=venue, endpoint=path)
        self.status = status
        self.body = body
        self.headers = headers


class RestTimeoutError(RestFailure, asyncio.TimeoutError):
    """No complete answer within the request timeout."""


class RestTransportError(RestFailure):
    """The connection failed after the request may have been written."""


class NotSentError(RestFailure):
    """The request certainly did not leave (cannot connect): safe to send again."""


class AmbiguousRequestError(RestFailure):
    """A non-idempotent request (an order) got a 5xx, a timeout or a broken connection: the venue may
    or may not have acted on it. Never retried here; the caller reconciles (query the order).
    ``status`` is the HTTP status (0 for a timeout / transport error)."""

    def __init__(self, msg: str, *, venue: str = "", endpoint: str = "", status: int = 0) -> None:
        super().__init__(msg, venue=venue, endpoint=endpoint)
        self.status = status


class CircuitOpenError(RestFailure):
    """The endpoint's circuit breaker is open; nothing was sent. Try again in ``retry_in_s``."""

    def __init__(self, msg: str, *, venue: str = "", endpoint: str = "", retry_in_s: float = 0.0) -> None:
        super().__init__(msg, venue=venue, endpoint=endpoint)
        self.retry_in_s = retry_in_s


class RateLimitedError(RestFailure):
    """The endpoint is paused by the venue (Retry-After / ban) for longer than the caller may wait;
    nothing was sent. ``retry_in_s``: when it may be tried again."""

    def __init__(self, msg: str, *, venue: str = "", endpoint: str = "", retry_in_s: float = 0.0) -> None:
        super().__init__(msg, venue=venue, endpoint=endpoint)
        self.retry_in_s = retry_in_s


class RestBusyError(RestFailure):
    """A background request (:func:`background_requests`) was not sent: the endpoint is paused, its
    breaker is not closed, or its rate-limit windows have no room to spare. Try again later."""


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


# -- rate limits ---------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True, slots=True)
class LimitRule:
    """One published limit: ``limit`` weight per ``window_s``.

    ``methods``/``path_prefix`` select the requests it applies to (None: all); ``per`` says what is
    counted separately: ``"endpoint"`` (each path), ``"market"`` (each ``market=`` of the request) or
    ``"shared"`` (every matching request together)."""

    name: str
    limit: int
    window_s: float
    per: str = "endpoint"
    methods: Optional[tuple] = None
    path_prefix: Optional[str] = None
    exact: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.path_prefix is None:
            return True
        return path == self.path_prefix if self.exact else path.startswith(self.path_prefix)


def venue_limits(venue: str) -> list[LimitRule]:
    """The venue's published REST limits (exchange-payloads README, "rate limits").

    * MEXC: 500 requests / 10 s per endpoint; ``GET /api/v3/account`` and batch orders also 2 / s.
    * Gate spot and futures: public endpoints 200 / 10 s per endpoint (IP); spot order
      place/amend 10 / s per market (UID), spot cancel 200 / s. Futures order limits are not in
      the reference: those endpoints keep the 200 / 10 s per-endpoint rule.
    """
    if venue == "mexc_spot":
        return [LimitRule(name="endpoint", limit=500, window_s=10.0),
                LimitRule(name="account", limit=2, window_s=1.0, methods=("GET",), path_prefix="/api/v3/account",
                          exact=True, per="shared"),
                LimitRule(name="batch_orders", limit=2, window_s=1.0, path_prefix="/api/v3/batchOrders",
                          per="shared")]
    if venue == "gateio_spot":
        return [LimitRule(name="endpoint", limit=200, window_s=10.0),
                LimitRule(name="order_place", limit=10, window_s=1.0, methods=("POST", "PATCH"),
                          path_prefix="/api/v4/spot/orders", per="market"),
                LimitRule(name="order_cancel", limit=200, window_s=1.0, methods=("DELETE",),
                          path_prefix="/api/v4/spot/orders", per="shared"),
                LimitRule(name="order_cancel_batch", limit=200, window_s=1.0, methods=("POST",),
                          path_prefix="/api/v4/spot/cancel_batch_orders", per="shared")]
    if venue == "gateio_futures":
        return [LimitRule(name="endpoint", limit=200, window_s=10.0)]
    return []


def _with_headroom(limit: int, window_s: float, headroom: float) -> tuple[int, float]:
    """``headroom`` of a published limit as (limit, window): ``headroom`` of the rate exactly.

    Truncating ``limit * headroom`` can lose far more than asked for (MEXC's 2 account
    requests/s at 0.9 would become 1/s). When it would lose more than 5 % of the rate, requests
    are spaced evenly instead: 2/s at 0.9 is 1 per 0.556 s (1.8/s), and any window of the
    published length holds at most ceil(limit * headroom) <= limit of them. Large limits keep
    their burst (500 / 10 s -> 450 / 10 s)."""
    allowed = limit * headroom
    lim = max(1, int(allowed))
    if 0.95 * allowed <= lim <= allowed:
        return lim, window_s
    return 1, window_s / allowed


def min_interval_s(venue: str, method: str, path: str, headroom: float) -> float:
    """The shortest spacing the REST manager keeps between requests ``method path`` of ``venue``
    (its published limits at ``headroom``; see :func:`_with_headroom`): MEXC ``GET
    /api/v3/account`` at 0.9 is 0.556 s."""
    out = 0.0
    for r in venue_limits(venue):
        if r.matches(method, path):
            lim, win = _with_headroom(r.limit, r.window_s, headroom)
            out = max(out, win / lim)
    return out


class RollingWindow:
    """At most ``limit`` weight in any ``window_s`` (FIFO reservations; see the module docstring).

    :meth:`reserve` books the earliest slot at or after ``not_before`` that keeps every window
    within the limit and returns that time; the caller sleeps until then."""

    __slots__ = ("limit", "window_s", "_times")

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
        self.limit = int(limit)
        self.window_s = float(window_s)
        self._times: collections.deque = collections.deque()

    def earliest(self, now: float, weight: int = 1) -> float:
        times = self._times
        while times and times[0] <= now - self.window_s:
            times.popleft()
        weight = min(max(1, weight), self.limit)
        t = now
        if times:
            t = max(t, times[-1])                      # FIFO: never ahead of an earlier reservation
        k = self.limit - weight + 1                    # the k-th newest slot must have left the window
        if len(times) >= k:
            t = max(t, times[-k] + self.window_s)
        return t

    def free_now(self, now: float) -> bool:
        """``earliest(now, 1) <= now``: one more request may go at ``now`` (nothing booked). After
        the expired slots go, that is: none booked after ``now`` and fewer than ``limit`` left (or
        the limit-th newest out of the window, as :meth:`earliest` computes it in floats)."""
        times = self._times
        horizon = now - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        return not times or (times[-1] <= now and (len(times) < self.limit
                                                   or times[-self.limit] + self.window_s <= now))

    def book(self, t: float, weight: int = 1) -> None:
        for _ in range(min(max(1, weight), self.limit)):
            self._times.append(t)

    def used(self, now: float) -> int:
        return sum(1 for x in self._times if now - self.window_s < x <= now)


# -- circuit breaker -----------------------------------------------------------------------------------

BREAKER_CLOSED, BREAKER_HALF_OPEN, BREAKER_OPEN = 0, 1, 2
_BREAKER_NAMES = {BREAKER_CLOSED: "closed", BREAKER_HALF_OPEN: "half_open", BREAKER_OPEN: "open"}


class CircuitBreaker:
    """closed → open after ``failures`` consecutive failures → (after the cool-down) half-open: one
    probe → closed on success, open again (cool-down doubled up to ``cooldown_max_s``) on failure."""

    __slots__ = ("failures", "cooldown_s", "cooldown_max_s", "clock", "state", "consecutive", "opened_at",
                 "cooldown", "probing", "opens")

    def __init__(self, failures: int = 5, cooldown_s: float = 2.0, cooldown_max_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = max(1, int(failures))
        self.cooldown_s = float(cooldown_s)
        self.cooldown_max_s = max(float(cooldown_max_s), self.cooldown_s)
        self.clock = clock
        self.state = BREAKER_CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self.cooldown = self.cooldown_s
        self.probing = False
        self.opens = 0

    def retry_in(self) -> float:
        """Seconds until a request may go (0: now)."""
        if self.state == BREAKER_OPEN:
            return max(0.0, self.opened_at + self.cooldown - self.clock())
        if self.state == BREAKER_HALF_OPEN and self.probing:
            return min(self.cooldown_s, 0.05)
        return 0.0

    def allow(self) -> bool:
        """May a request go now? In half-open state only one probe at a time."""
        if self.state == BREAKER_CLOSED:
            return True
        if self.state == BREAKER_OPEN:
            if self.clock() < self.opened_at + self.cooldown:
                return False
            self.state = BREAKER_HALF_OPEN
            self.probing = False
        if self.probing:
            return False
        self.probing = True
        return True

    def success(self) -> None:
        self.state = BREAKER_CLOSED
        self.consecutive = 0
        self.probing = False
        self.cooldown = self.cooldown_s

    def failure(self) -> None:
        self.consecutive += 1
        if self.state == BREAKER_HALF_OPEN:
            self.cooldown = min(self.cooldown * 2, self.cooldown_max_s)
            self._open()
        elif self.state == BREAKER_CLOSED and self.consecutive >= self.failures:
            self._open()

    def release(self) -> None:
        """A probe ended without a verdict (cancelled, rate limited): let the next one go."""
        self.probing = False

    def _open(self) -> None:
        self.state = BREAKER_OPEN
        self.opened_at = self.clock()
        self.probing = False
        self.opens += 1

    @property
    def state_name(self) -> str:
        return _BREAKER_NAMES[self.state]


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


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(asyncio.TimeoutError())


async def _lane_answer(lane: Any, fut: asyncio.Future, timeout_s: float) -> tuple:
    """``(status, headers, body)`` of the request in flight on the order connection ``lane``.
    Raises TimeoutError after ``timeout_s`` (and OSError when the connection is lost). Whenever it
    does not return the answer — timed out, or the caller gave up (cancelled; the executor's order
    timeout) — a late answer must not hold the connection, nor be read as the next request's: the
    connection is abandoned (closed, opened again)."""
    timer = fut.get_loop().call_later(timeout_s, _expire, fut)
    try:
        return await fut
    except asyncio.TimeoutError:
        lane.abandon("no answer in %.1f s" % timeout_s)
        raise
    except asyncio.CancelledError:
        if not fut.done() or fut.cancelled() or isinstance(fut.exception(), asyncio.TimeoutError):
            lane.abandon("the caller gave up waiting")     # (or our timeout came first)
        raise
    finally:
        timer.cancel()


def _retry_after_s(headers: Any) -> Optional[float]:
    """``Retry-After`` in seconds (delta-seconds, or an HTTP date)."""
    v = headers.get("Retry-After") if headers is not None else None
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(v).timestamp() - time.time())
    except Exception:
        return None


class RestManager:
    """REST for one venue (module docstring).

    Parameters
    ----------
    base_url
        ``https://api.gateio.ws`` style base; request paths are absolute (``/api/v4/...``).
    venue
        Venue name (metrics label; selects :func:`venue_limits` when ``limits`` is None).
    policy
        :class:`RestPolicy`; ``timeout_s``/``max_attempts`` override its fields (older callers).
    headers
        Sent with every request.
    limits
        Rate-limit rules (default: the venue's published ones).
    signer
        Default signing hook for ``signed=True`` requests: ``sign(method, path, query, body) ->
        (query, headers)``; see :func:`mexc_sign_hook` / :func:`gate_sign_hook`.
    capture
        An object with ``rest(venue, method, path, query, status, body)`` (a CaptureWriter) that sees
        every answer (recording).
    clock
        Monotonic seconds (tests).
    """

    GATE_RESET_MARGIN_S = 0.05
    # A background request goes only while every window it counts in is at most this full: the
    # rest of each window stays for the requests the node needs (snapshots, orders).
    BACKGROUND_SHARE = 0.5

    def __init__(self, base_url: str, *, venue: str = "", policy: Optional[RestPolicy] = None,
                 timeout_s: Optional[float] = None, max_attempts: Optional[int] = None,
                 headers: Optional[dict] = None, limits: Optional[Sequence[LimitRule]] = None,
                 signer: Optional[Signer] = None, capture: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import dataclasses

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
        self.limits = list(venue_limits(venue) if limits is None else limits)
        self.signer = signer
        self.capture = capture
        self.clock = clock
        self.log = get_exchange_logger(venue or "rest", "rest")
        self._session: Any = None
        self._windows: dict[tuple, RollingWindow] = {}
        self._windows_cache: dict[tuple, list] = {}     # (method, endpoint, market) -> its windows
        self._breakers: dict[str, CircuitBreaker] = {}
        self._paused_until: dict[str, float] = {}       # endpoint -> monotonic time
        self._venue_paused_until = 0.0
        self._offset_ms = 0
        self.server_clock: Any = None                  # an object with offset_ms (ServerClock)
        self.gate_remaining: dict[str, int] = {}        # endpoint -> X-Gate-RateLimit-Requests-Remain
        # counters (exported by cexnode.metrics.add_rest_sources)
        self.requests = 0                               # attempts that were sent
        self.connections_created = 0
        self._on_wire = 0                               # requests that got a connection (new or pooled)
        self.retries = 0
        self.by_status: collections.Counter = collections.Counter()      # (endpoint, status label)
        self.retries_by: collections.Counter = collections.Counter()     # endpoint
        self.waits: collections.Counter = collections.Counter()          # endpoint: requests that waited
        self.wait_s: collections.Counter = collections.Counter()         # endpoint: seconds waited
        self.rate_limited: collections.Counter = collections.Counter()   # (endpoint, "429"|"418")
        self.refused: collections.Counter = collections.Counter()        # (endpoint, "circuit_open"|"rate_limited")
        self.latency: dict[str, Any] = {}                                # endpoint -> HotHistogram (μs)
        self.order_connection: Any = None        # OrderConnection for order_routes (open_order_connection)
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

    # -- server time -------------------------------------------------------------------------------
    @property
    def server_time_offset_ms(self) -> int:
        """Venue clock minus ours (ms): from ``server_clock`` when set, else the value assigned."""
        sc = self.server_clock
        return int(sc.offset_ms) if sc is not None else self._offset_ms

    @server_time_offset_ms.setter
    def server_time_offset_ms(self, value: int) -> None:
        self._offset_ms = int(value)

    def server_now_ms(self) -> int:
        """The venue's clock now (ms), for signed-request timestamps."""
        return time.time_ns() // 1_000_000 + self.server_time_offset_ms

    async def sync_server_time(self, path: str, read_ms: Callable[[Any], int], *, samples: int = 3,
                               params: Optional[dict] = None) -> int:
        """Estimate the offset from the venue's time endpoint (fastest of ``samples`` round trips:
        ``offset = server - (sent + received) / 2``); sets and returns ``server_time_offset_ms``."""
        best: Optional[tuple] = None
        for _ in range(max(1, samples)):
            t0 = time.time_ns()
            resp = await self.request("GET", path, params=params)
            t1 = time.time_ns()
            off = int(read_ms(resp.json())) - (t0 + t1) // 2_000_000
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, off)
        assert best is not None
        self._offset_ms = best[1]
        return self._offset_ms

    # -- session -----------------------------------------------------------------------------------
    def _ensure(self) -> Any:
        import aiohttp

        if self._session is None:
            kw = dict(limit=self.policy.pool_size, keepalive_timeout=self.policy.keepalive_s, ttl_dns_cache=300)
            cls = _counting_connector_class()
            traces = []
            if cls is not None:
                conn = cls(**kw)
                conn._cexnode_on_create = self._on_connection_created
            else:                                   # aiohttp without the hook: trace signals (slower)
                conn = aiohttp.TCPConnector(**kw)
                trace = aiohttp.TraceConfig()

                async def created(_s: Any, _c: Any, _p: Any) -> None:
                    self.connections_created += 1

                trace.on_connection_create_end.append(created)
                traces.append(trace)
            self._session = aiohttp.ClientSession(headers=self.headers, trace_configs=traces or None,
                                                  connector=conn)
        return self._session

    def _on_connection_created(self) -> None:
        self.connections_created += 1

    async def open_order_connection(self, routes: Iterable[tuple[str, str]], ping_path: Optional[str] = None,
                                    keepalive_s: float = 20.0) -> bool:
        """Send ``routes`` (``(method, endpoint)`` pairs: the order requests) over one kept-alive
        :class:`~cexnode.net.http1.OrderConnection`, written in the caller's own call, whenever it
        is open and idle; the pool otherwise. Rate limits, breaker, signing and the outcome rules are
        the same on both. ``ping_path``: a cheap GET that keeps it open when idle (it counts against
        the limits like any request; skipped when they have no room). False: not connected yet (it
        keeps trying in the background)."""
        from cexnode.net.http1 import OrderConnection

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
        if self._session is not None:
            s, self._session = self._session, None
            await s.close()

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
                w = self._windows[key] = RollingWindow(*_with_headroom(r.limit, r.window_s,
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

    def _read_gate_limits(self, endpoint: str, headers: Any) -> None:
        """Gate's X-Gate-RateLimit-*: no quota left -> pause the endpoint until the reset time."""
        remain = headers.get("X-Gate-RateLimit-Requests-Remain")
        if remain is None:
            return
        try:
            r = int(remain)
        except ValueError:
            return
        self.gate_remaining[endpoint] = r
        if r <= 0:
            reset = headers.get("X-Gate-RateLimit-Reset-Timestamp")
            try:
                reset_ms = int(reset)
            except (TypeError, ValueError):
                return
            # + a margin: the reset is the venue's clock (ms, truncated), ours is only estimated
            wait = (reset_ms - self.server_now_ms()) / 1000.0 + self.GATE_RESET_MARGIN_S
            if wait > 0:
                self.pause(endpoint, min(wait, 60.0))

    def _observe(self, endpoint: str, t0: float) -> None:
        h = self.latency.get(endpoint)
        if h is None:
            from cexnode._core.logring import HotHistogram
            from cexnode.metrics import LATENCY_BUCKETS_US

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
            HTTP method and absolute path (``/api/v3/depth``).
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
            For per-market limits (Gate spot order placement).
        signed, sign
            Sign with ``sign`` or the manager's ``signer``.
        timeout_s
            This request's timeout (default: the policy's).

        Raises
        ------
        RestError, AmbiguousRequestError, NotSentError, RestTimeoutError, RestTransportError,
        CircuitOpenError, RateLimitedError
        """
        import aiohttp
        from yarl import URL

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
        timeout = aiohttp.ClientTimeout(total=timeout_s or pol.timeout_s)
        lane = self.order_connection if (method, ep) in self.order_routes else None
        session = self._ensure() if lane is None else None
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
            target = path + ("?" + query if query else "")
            self.requests += 1
            t0 = time.perf_counter()
            verdict = False
            try:
                try:
                    if lane is not None and lane.ready:
                        # written now, in this call (the order path starts orders eagerly)
                        fut = lane.send(method, target, hdrs, data)
                        self.order_connection_requests += 1
                        status, rheaders, rbody = await _lane_answer(lane, fut, timeout.total)
                    else:
                        if lane is not None:
                            self.order_connection_fallbacks += 1
                        if session is None:
                            session = self._ensure()
                        if asyncio.current_task() is None:
                            # started eagerly outside a task (the executor's order path): aiohttp's
                            # timeouts need one; the rest of this request runs in its task
                            await asyncio.sleep(0)
                        url = URL(self.base_url + target, encoded=True)
                        async with session.request(method, url, data=data or None, headers=hdrs or None,
                                                   timeout=timeout) as r:
                            rbody = await r.read()
                            status, rheaders = r.status, r.headers
                except asyncio.TimeoutError:
                    verdict = True
                    self._no_answer(method, ep, brk, idem, "timeout", "timed out after %.1f s" % timeout.total)
                    if attempt == attempts:
                        raise RestTimeoutError("%s %s %s: timed out after %.1f s (%d attempts)"
                                               % (self.venue, method, ep, timeout.total, attempts),
                                               venue=self.venue, endpoint=ep) from None
                    wait = self._backoff(attempt)
                except aiohttp.ClientConnectorError as e:
                    self.by_status[(ep, "connect_error")] += 1
                    brk.failure()
                    verdict = True
                    if not idem or attempt == attempts:
                        raise NotSentError("%s %s %s: cannot connect (%s)" % (self.venue, method, ep,
                                                                                type(e).__name__),
                                           venue=self.venue, endpoint=ep) from None
                    wait = self._backoff(attempt)
                except (aiohttp.ClientError, OSError) as e:
                    verdict = True
                    self._no_answer(method, ep, brk, idem, "transport_error", "%s after sending" % type(e).__name__)
                    if attempt == attempts:
                        raise RestTransportError("%s %s %s: %s" % (self.venue, method, ep, type(e).__name__),
                                                 venue=self.venue, endpoint=ep) from None
                    wait = self._backoff(attempt)
                else:
                    verdict = True
                    r = self._answered(method, path, ep, query0, status, rheaders, rbody, t0, brk, idem,
                                       attempt == attempts, attempt)
                    if isinstance(r, RestResponse):
                        return r
                    wait = r
            finally:
                if not verdict:
                    brk.release()
            self.retries += 1
            self.retries_by[ep] += 1
            if wait > 0:
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    # -- one attempt's outcome (request() and the order fast path) ----------------------------------
    def _answered(self, method: str, path: str, ep: str, query0: str, status: int, rheaders: Any, rbody: bytes,
                  t0: float, brk: "CircuitBreaker", idem: bool, last: bool, attempt: int) -> Any:
        """Book an HTTP answer (counters, latency, capture, the venue's limit headers, breaker).
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
        self._read_gate_limits(ep, rheaders)
        if status < 400:
            brk.success()
            return RestResponse(status, rheaders, rbody)
        if status in (429, 418):
            # The venue answered: the endpoint is alive (breaker), only over quota.
            brk.success()
            self.rate_limited[(ep, str(status))] += 1
            ra = _retry_after_s(rheaders)
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

    def _no_answer(self, method: str, ep: str, brk: "CircuitBreaker", idem: bool, label: str, what: str) -> None:
        """Book a request that left and got no answer (``label``: timeout | transport_error); raises
        AmbiguousRequestError ("``what`` (outcome unknown)") unless ``idem``."""
        self._on_wire += 1
        self.by_status[(ep, label)] += 1
        brk.failure()
        if not idem:
            raise AmbiguousRequestError("%s %s %s: %s (outcome unknown)" % (self.venue, method, ep, what),
                                        venue=self.venue, endpoint=ep) from None

    # -- the order path: written in the caller's call ---------------------------------------------------
    def send_now(self, method: str, path: str, query: str, sign: Optional[Signer] = None, *,
                 endpoint: Optional[str] = None, market: Optional[str] = None) -> Optional[tuple]:
        """Write a non-idempotent request (no body) on the order connection in this call, when it
        can go at once: one of ``order_routes``, the connection idle, the endpoint not paused, room
        in every rate window. Returns a handle for :meth:`answer`; None when it cannot go at once,
        with nothing booked or written (then :meth:`request` waits, falls back or refuses as
        usual). Raises CircuitOpenError (nothing written, no rate-limit slot taken).

        The same steps as :meth:`request` for one attempt on the order connection, without what
        only a general request needs (body encoding, aiohttp timeouts, retries): the executor's
        order path runs from cold CPU caches, where each layer costs several times its warm time."""
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
        self.requests += 1
        t0 = time.perf_counter()
        try:
            fut = lane.send(method, path + "?" + q if q else path, hdrs)
        except BaseException:
            self.requests -= 1
            brk.release()
            raise
        self.order_connection_requests += 1
        return (fut, t0, brk, method, path, ep, query)

    async def answer(self, sent: tuple, timeout_s: Optional[float] = None) -> RestResponse:
        """The answer to a request written by :meth:`send_now`, classified as :meth:`request`
        classifies it (RestResponse, or RestError / AmbiguousRequestError...)."""
        fut, t0, brk, method, path, ep, query = sent
        lane = self.order_connection
        timeout_s = timeout_s or self.policy.timeout_s
        verdict = False
        try:
            try:
                status, rheaders, rbody = await _lane_answer(lane, fut, timeout_s)
            except asyncio.TimeoutError:
                verdict = True
                self._no_answer(method, ep, brk, False, "timeout", "timed out after %.1f s" % timeout_s)
            except OSError as e:
                verdict = True
                self._no_answer(method, ep, brk, False, "transport_error", "%s after sending" % type(e).__name__)
            verdict = True
            return self._answered(method, path, ep, query, status, rheaders, rbody, t0, brk, False, True, 1)
        finally:
            if not verdict:
                brk.release()

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

_CONNECTOR_CLS: Any = False


def _counting_connector_class() -> Any:
    """A TCPConnector that reports each new connection to ``_cexnode_on_create`` (None when this
    aiohttp has no ``_create_connection``). Why not aiohttp's trace signals: they cost ~14 μs per
    request on loopback (perf/bench_rest.py), this costs one call per new connection."""
    global _CONNECTOR_CLS
    if _CONNECTOR_CLS is False:
        import aiohttp

        if not hasattr(aiohttp.TCPConnector, "_create_connection"):
            _CONNECTOR_CLS = None
        else:
            class CountingConnector(aiohttp.TCPConnector):
                _cexnode_on_create: Any = None

                async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
                    proto = await super()._create_connection(req, traces, timeout)
                    cb = self._cexnode_on_create
                    if cb is not None:
                        cb()
                    return proto

            _CONNECTOR_CLS = CountingConnector
    return _CONNECTOR_CLS


# -- signing hooks (cexnode.adapters.*.signing) ------------------------------------------------------------

def mexc_sign_hook(signer: Any, manager: RestManager) -> Signer:
    """MEXC: ``recvWindow``, ``timestamp`` (venue time) and ``signature`` appended to the query,
    ``X-MEXC-APIKEY`` header (:class:`cexnode.adapters.mexc_spot.signing.MexcSigner`)."""
    def sign(method: str, path: str, query: str, body: bytes) -> tuple:
        return signer.sign_query(query, manager.server_now_ms(), body.decode() if body else ""), signer.headers()
    return sign


def gate_sign_hook(signer: Any, manager: RestManager) -> Signer:
    """Gate v4: ``KEY``/``Timestamp``/``SIGN`` headers over method, path, query and the body's
    SHA-512 (:class:`cexnode.adapters.gateio_spot.signing.GateSigner`)."""
    def sign(method: str, path: str, query: str, body: bytes) -> tuple:
        return query, signer.rest_headers(method, path, query, body, manager.server_now_ms() // 1000)
    return sign


def iter_managers(objs: Iterable[Any]) -> list[RestManager]:
    return [o for o in objs if isinstance(o, RestManager)]

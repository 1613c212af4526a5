"""Rate limits of the REST manager: a venue's published limits (:class:`LimitRule`), the rolling
windows that keep them (:class:`RollingWindow`), the headroom arithmetic, and the venue's quota
headers (:data:`QuotaReader`).

A venue package publishes its rules (``VenueDescriptor.rest_limits``); the manager keeps one
:class:`RollingWindow` per rule and key (endpoint, market, or shared). Rules are *rolling windows*:
at most ``limit`` weight in any ``window_s``. Why not a plain token bucket: a bucket that starts full
lets ``limit`` through at once and then refills, i.e. up to 2 × limit inside one of a venue's fixed
windows, which is what gets a 429.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Optional

__all__ = ["LimitRule", "RollingWindow", "QuotaReader", "with_headroom", "min_interval_s", "retry_after_s"]

#: ``reader(headers) -> (remaining, reset_ms) | None``: a venue's quota headers on an answer, read
#: by the REST manager after every answer. ``remaining``: requests the venue still allows on that
#: endpoint; ``reset_ms``: when the quota is restored (the venue's clock, epoch ms; None: unknown).
#: None: the answer carries no quota headers. No quota left pauses the endpoint until the reset.
QuotaReader = Callable[[Any], Optional[tuple[int, Optional[int]]]]


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


def with_headroom(limit: int, window_s: float, headroom: float) -> tuple[int, float]:
    """``headroom`` of a published limit as (limit, window): ``headroom`` of the rate exactly.

    Truncating ``limit * headroom`` can lose far more than asked for (2 requests/s at 0.9 would
    become 1/s). When it would lose more than 5 % of the rate, requests are spaced evenly instead:
    2/s at 0.9 is 1 per 0.556 s (1.8/s), and any window of the published length holds at most
    ceil(limit * headroom) <= limit of them. Large limits keep their burst (500 / 10 s -> 450 / 10 s)."""
    allowed = limit * headroom
    lim = max(1, int(allowed))
    if 0.95 * allowed <= lim <= allowed:
        return lim, window_s
    return 1, window_s / allowed


def min_interval_s(rules: Iterable[LimitRule], method: str, path: str, headroom: float) -> float:
    """The shortest spacing the REST manager keeps between requests ``method path`` under ``rules``
    (a venue's published limits, ``VenueDescriptor.rest_limits()``) at ``headroom`` (see
    :func:`with_headroom`): a rule of 2 requests/s at 0.9 spaces them 0.556 s apart."""
    out = 0.0
    for r in rules:
        if r.matches(method, path):
            lim, win = with_headroom(r.limit, r.window_s, headroom)
            out = max(out, win / lim)
    return out


def retry_after_s(headers: Any) -> Optional[float]:
    """``Retry-After`` in seconds (delta-seconds, or an HTTP date); None when absent or unreadable."""
    v = headers.get("Retry-After") if headers is not None else None
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(v).timestamp() - time.time())
    except Exception:
        return None


class RollingWindow:
    """At most ``limit`` weight in any ``window_s`` (FIFO reservations; see the module docstring).

    :meth:`earliest` gives the earliest time at or after ``now`` that keeps every window within the
    limit; :meth:`book` reserves it and the caller sleeps until then."""

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

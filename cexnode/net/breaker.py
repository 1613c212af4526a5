"""The circuit breaker of the REST manager, one per endpoint: :class:`CircuitBreaker`.

After ``failures`` consecutive failures (5xx, timeout, transport error) it opens: requests fail
fast (``retry_in``) for the cool-down (doubling while the probes keep failing, up to
``cooldown_max_s``); then one probe goes (half-open): success closes it.
"""
from __future__ import annotations

import time
from typing import Callable

__all__ = ["CircuitBreaker", "BREAKER_CLOSED", "BREAKER_HALF_OPEN", "BREAKER_OPEN"]

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

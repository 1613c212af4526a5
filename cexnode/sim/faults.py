"""Fault injection of one simulated venue, scriptable from tests.

Every method arms a fault; the venue consumes it on the next matching event. Stream faults apply
to the book channels of one venue symbol (Gate ``order_book_update``/``obu``, MEXC aggre depth);
the true book always advances, so a client that loses a diff must resync from REST.

==================================  ====================================================================
``gap_next(symbol, n=1)``           the next ``n`` diffs are applied to the true book but not sent
``duplicate_next(symbol)``          the next diff is sent twice
``reorder_next(symbol)``            the next diff is held back and sent after the one that follows it
``full_reset(symbol)``              the book is regenerated and pushed as ``full: true`` (Gate only)
``malformed_next(symbol, replace)`` a malformed frame is sent before the next diff (or instead of it)
``close_connections(code)``         every WebSocket connection of the venue is closed now
``drop_connections()``              every connection is cut without a close frame (TCP reset)
``stall(seconds, drop=True)``       no pushes for ``seconds``; dropped (gap afterwards) or queued
``reject_subscriptions(on)``        subscribe requests are refused with the venue's error frame
``reject_connections(n, status)``   the next ``n`` WebSocket handshakes fail with HTTP ``status``
``rest_429(n, retry_after)``        the next ``n`` REST requests get 429 with ``Retry-After``
``rest_5xx(n, status)``             the next ``n`` REST requests get ``status`` (default 503)
``rest_delay(seconds, n=None)``     REST responses are delayed (all, or the next ``n``)
``clear()``                         disarm everything
==================================  ====================================================================
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .server import SimVenue

__all__ = ["Faults"]


class Faults:
    """Armed faults of one venue (see module docstring). Symbols are venue or unified symbols."""

    def __init__(self, venue: "SimVenue"):
        self._venue = venue
        self.gap: dict[str, int] = {}
        self.duplicate: dict[str, int] = {}
        self.reorder: dict[str, int] = {}
        self.held: dict[str, list] = {}            # reorder: diff frames waiting for the next one
        self.malformed: dict[str, bool] = {}        # symbol -> replace
        self.reset: set[str] = set()
        self.stall_until = 0.0
        self.stall_drop = True
        self.rejecting = False
        self.handshake_fail_left = 0
        self.handshake_fail_status = 503
        self.rest_429_left = 0
        self.rest_retry_after = 1
        self.rest_5xx_left = 0
        self.rest_5xx_status = 503
        self.rest_delay_s = 0.0
        self.rest_delay_left: Optional[int] = None

    def _sym(self, symbol: str) -> str:
        return self._venue.venue_symbol(symbol)

    # -- stream
    def gap_next(self, symbol: str, n: int = 1) -> None:
        self.gap[self._sym(symbol)] = self.gap.get(self._sym(symbol), 0) + n

    def duplicate_next(self, symbol: str) -> None:
        self.duplicate[self._sym(symbol)] = self.duplicate.get(self._sym(symbol), 0) + 1

    def reorder_next(self, symbol: str) -> None:
        self.reorder[self._sym(symbol)] = self.reorder.get(self._sym(symbol), 0) + 1

    def full_reset(self, symbol: str) -> None:
        if not self._venue.supports_full:
            raise ValueError("%s has no full book pushes" % self._venue.name)
        self.reset.add(self._sym(symbol))

    def malformed_next(self, symbol: str, replace: bool = False) -> None:
        self.malformed[self._sym(symbol)] = replace

    def stall(self, seconds: float, drop: bool = True) -> None:
        self.stall_until = time.monotonic() + seconds
        self.stall_drop = drop

    @property
    def stalled(self) -> bool:
        return self.stall_until > 0 and time.monotonic() < self.stall_until

    # -- connections
    def close_connections(self, code: int = 1012) -> int:
        """Close every WebSocket connection with a close frame; returns how many."""
        return self._venue.close_connections(code)

    def drop_connections(self) -> int:
        """Cut every connection without a close frame; returns how many."""
        return self._venue.close_connections(None)

    def reject_subscriptions(self, on: bool = True) -> None:
        self.rejecting = on

    def reject_connections(self, n: int = 1, status: int = 503) -> None:
        if status < 400:
            raise ValueError("status must be an HTTP error (>= 400)")
        self.handshake_fail_left, self.handshake_fail_status = n, status

    # -- REST
    def rest_429(self, n: int = 1, retry_after: int = 1) -> None:
        self.rest_429_left, self.rest_retry_after = n, retry_after

    def rest_5xx(self, n: int = 1, status: int = 503) -> None:
        if not 500 <= status <= 599:
            raise ValueError("status must be 5xx")
        self.rest_5xx_left, self.rest_5xx_status = n, status

    def rest_delay(self, seconds: float, n: Optional[int] = None) -> None:
        self.rest_delay_s, self.rest_delay_left = seconds, n

    def clear(self) -> None:
        self.__init__(self._venue)

"""Fault injection of one simulated venue, scriptable from tests.

Every method arms a fault; the venue consumes it on the next matching event. Stream faults apply
to the book channels of one venue symbol (the venue's ``BOOK_KINDS``);
the true book always advances, so a client that loses a diff must resync from REST.

==================================  ====================================================================
``gap_next(symbol, n=1)``           the next ``n`` diffs are applied to the true book but not sent
``duplicate_next(symbol)``          the next diff is sent twice
``reorder_next(symbol)``            the next diff is held back and sent after the one that follows it
``full_reset(symbol)``              the book is regenerated and pushed whole (venues with full pushes)
``malformed_next(symbol, replace)`` a malformed frame is sent before the next diff (or instead of it)
``close_connections(code)``         every WebSocket connection of the venue is closed now
``drop_connections()``              every connection is cut without a close frame (TCP reset)
``stall(seconds, drop=True)``       no pushes for ``seconds``; dropped (gap afterwards) or queued
``reject_subscriptions(on)``        subscribe requests are refused with the venue's error frame
``reject_connections(n, status)``   the next ``n`` WebSocket handshakes fail with HTTP ``status``
``rest_429(n, retry_after)``        the next ``n`` REST requests get 429 with ``Retry-After``
``rest_5xx(n, status)``             the next ``n`` REST requests get ``status`` (default 503)
``rest_delay(seconds, n=None)``     REST responses are delayed (all, or the next ``n``)
``reject_orders(n, code=None)``     the next ``n`` order placements are refused (venue error ``code``
                                    or the venue's default, its insufficient-balance error);
                                    nothing is placed
``partial_fill_next(fraction)``     the next order fills at most ``fraction`` of its size (rest: IOC
                                    cancelled, GTC resting)
``order_delay(seconds, n=1)``       the next ``n`` placements are executed at once, answered late
``order_timeout(n=1, drop=False)``  the next ``n`` placements are executed but never answered (the
                                    REST request hangs / the WS API sends nothing); ``drop``: the
                                    connection is cut instead
``order_5xx(n=1, status=503)``      the next ``n`` placements are executed, answered with HTTP 5xx
                                    (WS API: header status 500): the client cannot tell
``private_stream_stall(s, drop)``   private pushes (orders, fills, balances) held for ``s`` seconds
                                    (queued and delivered after, or dropped with ``drop=True``)
``private_deals_late(s, n)``        venues with a separate deals channel: the next ``n`` deals pushes
                                    sent ``s`` seconds late, after their order's pushes
``private_deals_drop(n)``           the same venues: the next ``n`` deals pushes never sent
``clear()``                         disarm everything
==================================  ====================================================================

Order faults apply to order placement on REST and on a venue's WebSocket order API, counted
together per venue, in arrival order.
"""
from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

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
        # trading side (cexnode.sim.trading consumes these)
        self.reject_left = 0
        self.reject_code: Any = None
        self.partial_fraction: Optional[Decimal] = None
        self.order_delay_s = 0.0
        self.order_delay_left = 0
        self.order_timeout_left = 0
        self.order_timeout_drop = False
        self.order_5xx_left = 0
        self.order_5xx_status = 503
        self.private_stall_until = 0.0
        self.private_stall_drop = False
        self.deals_late_s = 0.0
        self.deals_late_left = 0
        self.deals_drop_left = 0

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

    def book_fault_armed(self, vsym: str) -> bool:
        """A diff fault (gap, duplicate, reorder, malformed) waits for ``vsym``'s next diff. On an
        interval-batched stream (``batch_interval``) that diff then goes out in a push of its own,
        so each fault hits exactly one diff, as on the other streams."""
        return (self.gap.get(vsym, 0) > 0 or self.duplicate.get(vsym, 0) > 0 or self.reorder.get(vsym, 0) > 0
                or vsym in self.malformed)

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

    # -- trading
    def reject_orders(self, n: int = 1, code: Any = None) -> None:
        """Refuse the next ``n`` order placements with venue error ``code`` (default per venue)."""
        self.reject_left, self.reject_code = n, code

    def partial_fill_next(self, fraction) -> None:
        """The next order fills at most ``fraction`` (0..1) of its size."""
        f = Decimal(str(fraction))
        if not 0 <= f <= 1:
            raise ValueError("fraction must be within [0, 1]")
        self.partial_fraction = f

    def order_delay(self, seconds: float, n: int = 1) -> None:
        """Answer the next ``n`` order placements ``seconds`` late (the order executes at once)."""
        self.order_delay_s, self.order_delay_left = seconds, n

    def order_timeout(self, n: int = 1, drop: bool = False) -> None:
        """Execute the next ``n`` placements but never answer them (``drop``: cut the connection)."""
        self.order_timeout_left, self.order_timeout_drop = n, drop

    def order_5xx(self, n: int = 1, status: int = 503) -> None:
        """Execute the next ``n`` placements and answer with HTTP ``status`` (ambiguous to the client)."""
        if not 500 <= status <= 599:
            raise ValueError("status must be 5xx")
        self.order_5xx_left, self.order_5xx_status = n, status

    def private_stream_stall(self, seconds: float, drop: bool = False) -> None:
        """Hold every private push for ``seconds``: queued and delivered afterwards, or dropped."""
        self.private_stall_until = time.monotonic() + seconds
        self.private_stall_drop = drop

    def private_deals_late(self, seconds: float, n: int = 1) -> None:
        """Venues with a separate deals channel: the next ``n`` deals pushes are sent ``seconds``
        late, after their order's pushes (the orders and deals channels are not ordered with each other)."""
        self.deals_late_s, self.deals_late_left = seconds, n

    def private_deals_drop(self, n: int = 1) -> None:
        """Venues with a separate deals channel: the next ``n`` deals pushes are never sent (the
        order pushes are)."""
        self.deals_drop_left = n

    def take_deals_fault(self) -> Optional[tuple]:
        """Consume the armed fault for one deals push: ``("drop",)``, ``("late", seconds)`` or None."""
        if self.deals_drop_left > 0:
            self.deals_drop_left -= 1
            return ("drop",)
        if self.deals_late_left > 0:
            self.deals_late_left -= 1
            return ("late", self.deals_late_s)
        return None

    @property
    def private_stalled(self) -> bool:
        return self.private_stall_until > 0 and time.monotonic() < self.private_stall_until

    def take_order_fault(self) -> Optional[tuple]:
        """Consume the armed order fault for one placement: ``("reject", code)``, ``("timeout", drop)``,
        ``("5xx", status)``, ``("delay", seconds)`` or None. Partial fills are taken by the engine."""
        if self.reject_left > 0:
            self.reject_left -= 1
            return ("reject", self.reject_code)
        if self.order_timeout_left > 0:
            self.order_timeout_left -= 1
            return ("timeout", self.order_timeout_drop)
        if self.order_5xx_left > 0:
            self.order_5xx_left -= 1
            return ("5xx", self.order_5xx_status)
        if self.order_delay_left > 0:
            self.order_delay_left -= 1
            return ("delay", self.order_delay_s)
        return None

    def clear(self) -> None:
        self.__init__(self._venue)

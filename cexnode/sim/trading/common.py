"""Helpers shared by the venues' trading modules: decimal rendering, private-push delivery with the
``private_stream_stall`` fault, holding unanswered requests (``order_timeout``) and the result type
of the venues' request authentication."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Optional

__all__ = ["dec_str", "PrivateOut", "AuthError", "hold_unanswered", "release_held"]


@dataclass(frozen=True)
class AuthError:
    """Why a request was refused: the venue's ``code`` (a number or a label, as the venue writes
    it), ``message`` and the HTTP ``status`` the venue answers with."""

    code: object
    message: str
    status: int


def dec_str(d: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros (``"0"`` for zero)."""
    if not d:
        return "0"
    s = format(d.normalize(), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


class PrivateOut:
    """Sends private pushes; while ``faults.private_stream_stall`` is armed they are queued (delivered
    in order when it ends) or dropped."""

    def __init__(self, venue):
        self.venue = venue
        self._queue: list[tuple[Any, bytes, bool]] = []
        self._timer: Optional[asyncio.TimerHandle] = None
        self.sent = 0

    def send(self, conn, data: bytes, binary: bool) -> None:
        f = self.venue.faults
        if f.private_stalled:
            if not f.private_stall_drop:
                self._queue.append((conn, data, binary))
                self._arm(f.private_stall_until - time.monotonic())
            return
        if self._queue:
            self.flush()
        conn.send_frame(data, binary)
        self.sent += 1

    def _arm(self, delay: float) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(max(0.0, delay) + 0.001, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        f = self.venue.faults
        if f.private_stalled:
            self._arm(f.private_stall_until - time.monotonic())
            return
        self.flush()

    def flush(self) -> None:
        q, self._queue = self._queue, []
        for conn, data, binary in q:
            conn.send_frame(data, binary)
            self.sent += 1


async def hold_unanswered(request, drop: bool, held: Optional[set] = None, max_s: float = 3600.0) -> None:
    """``order_timeout``: never answer a REST request (until the client gives up or the server stops),
    or cut its connection at once (``drop``). ``held``: the venue's set of held transports, which
    :func:`release_held` aborts when the venue stops (a held request must not block shutdown)."""
    transport = request.transport
    if drop:
        if transport is not None:
            transport.abort()
        return
    if transport is None:
        return
    if held is not None:
        held.add(transport)
    try:
        deadline = time.monotonic() + max_s
        while not transport.is_closing() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        if held is not None:
            held.discard(transport)


def release_held(held: set) -> None:
    """Abort every held (never answered) request's connection."""
    for t in list(held):
        t.abort()
    held.clear()

"""Gate.io USDT futures WebSocket subscriptions (exchange-payloads README, "Gate futures").

* ``futures.order_book_update`` payload ``[contract, "20ms"|"100ms", "20"|"50"|"100"]``; 20ms only
  with level 20. The REST snapshot ``limit`` must equal the WS level.
* Levels are ``{p, s}`` with ``s`` in contracts (the parser converts to base quantity).
"""
from __future__ import annotations

import time

import orjson

CHANNEL_BOOK = "futures.order_book_update"
PING_INTERVAL_S = 10.0
MAX_SUBSCRIPTIONS_PER_CONNECTION = 0
# Gate publishes at most 300 connections per IP but no rate of new connections: a conservative pace
MAX_CONNECTS_PER_S = 2.0


def book_level(depth: int) -> int:
    return 20 if depth <= 20 else (50 if depth <= 50 else 100)


def book_subscription(contract: str, depth: int, req_id: int = 0, now: float | None = None,
                      event: str = "subscribe") -> bytes:
    level = book_level(depth)
    msg: dict = {"time": int(now if now is not None else time.time()), "channel": CHANNEL_BOOK,
                 "event": event, "payload": [contract, "20ms" if level == 20 else "100ms", str(level)]}
    if req_id:
        msg["id"] = req_id
    return orjson.dumps(msg)


def book_unsubscription(contract: str, depth: int, req_id: int = 0, now: float | None = None) -> bytes:
    """The unsubscribe of :func:`book_subscription` (same channel and payload, ``event: unsubscribe``)."""
    return book_subscription(contract, depth, req_id, now, event="unsubscribe")


def ping_message(now: float | None = None) -> bytes:
    return orjson.dumps({"time": int(now if now is not None else time.time()), "channel": "futures.ping"})


def is_full_book_frame(frame: bytes) -> bool:
    """A push of the ``futures.obu`` channel, which sends whole books (its first push and each reset are
    full: no REST snapshot); subscription acks of that channel are not."""
    return b'.obu"' in frame and b'"event":"subscribe"' not in frame.replace(b" ", b"")

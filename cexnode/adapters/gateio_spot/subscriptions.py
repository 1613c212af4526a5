"""Gate.io spot v4 WebSocket subscriptions (exchange-payloads README, "Gate spot").

* ``spot.order_book_update``: one pair per subscribe; ``100ms`` = 100 levels, ``20ms`` = 20 levels;
  synced against REST ``order_book?with_id=true`` (U/u rule), may push ``full: true`` at any time.
* Keep-alive is protocol ping/pong; ``spot.ping`` resets the idle timer (official demo: every 10 s).
"""
from __future__ import annotations

import time

import orjson

CHANNEL_BOOK = "spot.order_book_update"
PING_INTERVAL_S = 10.0
MAX_SUBSCRIPTIONS_PER_CONNECTION = 0        # not documented: no limit applied
# Gate publishes at most 300 connections per IP but no rate of new connections: a conservative pace
MAX_CONNECTS_PER_S = 2.0


def book_interval(depth: int) -> str:
    """Stream interval for a book depth: 20 levels every 20 ms, otherwise 100 levels every 100 ms."""
    return "20ms" if depth <= 20 else "100ms"


def snapshot_limit(depth: int) -> int:
    return 20 if depth <= 20 else 100


def subscribe_message(channel: str, payload: list, req_id: int = 0, event: str = "subscribe",
                      now: float | None = None) -> bytes:
    msg: dict = {"time": int(now if now is not None else time.time()), "channel": channel,
                 "event": event, "payload": payload}
    if req_id:
        msg["id"] = req_id
    return orjson.dumps(msg)


def book_subscription(venue_symbol: str, depth: int, req_id: int = 0, now: float | None = None) -> bytes:
    return subscribe_message(CHANNEL_BOOK, [venue_symbol, book_interval(depth)], req_id, now=now)


def book_unsubscription(venue_symbol: str, depth: int, req_id: int = 0, now: float | None = None) -> bytes:
    """The unsubscribe of :func:`book_subscription` (same channel and payload, ``event: unsubscribe``)."""
    return subscribe_message(CHANNEL_BOOK, [venue_symbol, book_interval(depth)], req_id, event="unsubscribe", now=now)


def ping_message(now: float | None = None) -> bytes:
    return orjson.dumps({"time": int(now if now is not None else time.time()), "channel": "spot.ping"})


def is_full_book_frame(frame: bytes) -> bool:
    """A push of the ``spot.obu`` channel, which sends whole books (its first push and each reset are
    full: no REST snapshot); subscription acks of that channel are not."""
    return b'.obu"' in frame and b'"event":"subscribe"' not in frame.replace(b" ", b"")

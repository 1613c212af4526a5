"""MEXC spot v3 WebSocket subscriptions and keep-alive (exchange-payloads README, "MEXC" gotchas).

* Public streams are protobuf only (``.api.pb`` topics); the JSON topics answer "Blocked!".
* At most 30 subscriptions per connection; several topics in one request get one ack.
* No data for 60 s or no subscription for 30 s closes the connection; send ``{"method":"PING"}``
  every 20-30 s (protocol pings are reportedly not answered).
* A connection lives at most 24 h: rotate before that.
"""
from __future__ import annotations

from typing import Iterable

import orjson

MAX_SUBSCRIPTIONS_PER_CONNECTION = 30
PING_INTERVAL_S = 20.0
MAX_CONNECTION_AGE_S = 24 * 3600.0
# MEXC publishes no rate of new connections: a conservative pace (35 connections, 1,000 books, in 18 s)
MAX_CONNECTS_PER_S = 2.0
DEPTH_INTERVAL = "10ms"          # aggre depth pushes: 10ms or 100ms

PRIVATE_TOPICS = ("spot@private.orders.v3.api.pb", "spot@private.deals.v3.api.pb",
                  "spot@private.account.v3.api.pb")


def depth_topic(venue_symbol: str, interval: str = DEPTH_INTERVAL) -> str:
    """Diff-depth topic synced with REST /api/v3/depth (fromVersion/toVersion rule)."""
    return "spot@public.aggre.depth.v3.api.pb@%s@%s" % (interval, venue_symbol)


def book_ticker_topic(venue_symbol: str, interval: str = "10ms") -> str:
    return "spot@public.aggre.bookTicker.v3.api.pb@%s@%s" % (interval, venue_symbol)


def deals_topic(venue_symbol: str, interval: str = "10ms") -> str:
    return "spot@public.aggre.deals.v3.api.pb@%s@%s" % (interval, venue_symbol)


def public_topics(venue_symbols: Iterable[str]) -> list[str]:
    return [depth_topic(s) for s in venue_symbols]


def subscribe_message(topics: list[str], req_id: int = 0) -> bytes:
    if len(topics) > MAX_SUBSCRIPTIONS_PER_CONNECTION:
        raise ValueError("MEXC allows %d subscriptions per connection, got %d"
                         % (MAX_SUBSCRIPTIONS_PER_CONNECTION, len(topics)))
    msg: dict = {"method": "SUBSCRIPTION", "params": list(topics)}
    if req_id:
        msg["id"] = req_id
    return orjson.dumps(msg)


def unsubscribe_message(topics: list[str], req_id: int = 0) -> bytes:
    msg: dict = {"method": "UNSUBSCRIPTION", "params": list(topics)}
    if req_id:
        msg["id"] = req_id
    return orjson.dumps(msg)


def ping_message() -> bytes:
    return b'{"method":"PING"}'

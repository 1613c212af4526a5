"""Where a venue adapter's market data and REST answers come from: its :class:`Transport`.

The engine chooses one transport at start and hands it to every adapter; nothing branches on it
per message. Two exist:

* :class:`LiveTransport` — the venue itself: a picows feed (:class:`cexnode.net.ws.WsFeed`) and
  the venue's REST manager (:class:`cexnode.net.rest.RestManager`). Given a capture sink
  (``cexnode record``), it taps both: every received frame goes to the sink with its receive time
  (a :class:`cexnode._core.tap.FrameTap` in front of the parser) and every REST answer too (the
  REST manager's capture hook).
* :class:`cexnode.capture.transport.CaptureTransport` — a capture file (``cexnode replay``): the
  frames in their recorded order, the REST answers from the capture.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from cexnode._core.book import SYNC_SNAPSHOT_DIFF
from cexnode._core.tap import FrameTap
from cexnode.adapters.registry import descriptor
from cexnode.net.rest import RestManager, RestPolicy
from cexnode.net.ws import WsFeed

if TYPE_CHECKING:  # pragma: no cover
    from cexnode.adapters.base import VenueAdapter

__all__ = ["Transport", "RestClient", "RestAnswer", "MarketFeed", "CaptureSink", "LiveTransport"]


class RestAnswer(Protocol):
    """What the adapters read of a REST answer."""

    status: int
    body: bytes

    def json(self) -> Any: ...


class RestClient(Protocol):
    """The part of :class:`cexnode.net.rest.RestManager` the market-data path uses."""

    async def request(self, method: str, path: str, *, params: Optional[dict] = None, weight: int = 1,
                      headers: Optional[dict] = None) -> RestAnswer: ...

    async def close(self) -> None: ...

    def stats(self) -> dict: ...


class MarketFeed(Protocol):
    """The part of :class:`cexnode.net.ws.WsFeed` the adapters use."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def wait_sent(self, msg: bytes) -> None: ...

    def add_subscriptions(self, msgs: list[bytes]) -> None: ...

    def remove_subscriptions(self, sub_msgs: list[bytes], unsub_msgs: list[bytes]) -> None: ...

    def status(self) -> dict: ...


class CaptureSink(Protocol):
    """The recording hook (:class:`cexnode.capture.format.CaptureWriter`)."""

    def ws(self, venue: str, data: bytes, binary: bool = False, t: Optional[int] = None) -> None: ...

    def rest(self, venue: str, method: str, path: str, query: str, status: int, body: Any,
             t: Optional[int] = None) -> None: ...


class Transport(Protocol):
    """Chosen once at start (module docstring)."""

    #: False where there is no live venue to check the books against (book audits stay off)
    book_audits: bool

    def rest_client(self, adapter: "VenueAdapter") -> RestClient: ...

    def market_feed(self, adapter: "VenueAdapter", ws_url: str, subscriptions: list[bytes],
                    on_reconnected: Callable[..., None]) -> MarketFeed: ...

    def book_sync_rule(self, adapter: "VenueAdapter") -> int: ...


class LiveTransport:
    """The venue's own WebSocket and REST endpoints, optionally tapped by ``capture``."""

    book_audits = True

    def __init__(self, capture: Optional[CaptureSink] = None) -> None:
        self.capture = capture

    def rest_client(self, adapter: "VenueAdapter") -> Any:
        """The venue's REST manager (shared with its order entry in live mode)."""
        rc = getattr(adapter.config, "rest", None)
        policy = RestPolicy.from_config(rc) if rc is not None else RestPolicy()
        return RestManager(adapter.urls()[1], venue=adapter.name, policy=policy,
                           headers=dict(adapter.ws_headers) or None, capture=self.capture)

    def market_feed(self, adapter: "VenueAdapter", ws_url: str, subscriptions: list[bytes],
                    on_reconnected: Callable[..., None]) -> Any:
        """The venue's public feed; with a capture, the frames pass a tap before the parser."""
        parser = adapter.parser if self.capture is None else FrameTap(adapter.parser, self.capture, adapter.name)
        rules = descriptor(adapter.name).ws
        return WsFeed(ws_url, parser, subscriptions,
                      venue=adapter.name, headers=adapter.market_data_headers() or None,
                      max_subscriptions=adapter.max_subscriptions_per_connection(),
                      ping_message=adapter.ping_message, ping_interval_s=adapter.ping_interval_s(),
                      protocol_ping_s=None if rules.protocol_pings else 0.0,
                      max_connection_age_s=(getattr(adapter.config, "max_connection_age_s", 0.0)
                                            or rules.default_rotation_age_s or None),
                      max_messages_per_s=rules.max_client_messages_per_s,
                      is_subscription_reject=adapter.is_subscription_reject,
                      max_connects_per_s=rules.max_connects_per_s,
                      on_reconnected=on_reconnected)

    def book_sync_rule(self, adapter: "VenueAdapter") -> int:
        """The live subscriptions are diff streams: every book starts from a REST snapshot."""
        return SYNC_SNAPSHOT_DIFF

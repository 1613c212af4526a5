"""``venues.mexc_spot``: the keys only this venue takes (the common ones: :class:`cexnode.config.VenueConfig`)."""
from __future__ import annotations

from cexnode.config import VenueConfig, opt, section

__all__ = ["MexcSpotConfig"]


@section
class MexcSpotConfig(VenueConfig):
    """Signed requests carry a recvWindow; the private stream runs on a listenKey that must be kept
    alive; orders may go over a connection of their own. Limits of the venue that bear on the
    common keys: account requests are limited to 2 per second (``balance_poll_s``: 0.5 or more);
    public WebSocket connections are closed after 24 h, so ``max_connection_age_s: 0`` rotates them
    at 84600 s (23.5 h); the REST depth snapshot serves up to 5000 levels (``book_depth``)."""

    recv_window_ms: int = opt(5000, doc="recvWindow of signed requests (venue default 5000, at most 60000).", ge=1, le=60000)
    listen_key_keepalive_s: float = opt(1800.0, doc="Period of the listenKey keep-alive PUT (a key lives 60 min; the venue says every 30 min). A failed keep-alive rotates to a new key.", gt=0, le=3600)
    order_connection: bool = opt(True, doc="Place and cancel orders over one dedicated kept-alive HTTP/1.1 connection, written straight from the order path (the pooled client while it is busy or reconnecting).")

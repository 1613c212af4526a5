"""``venues.gateio_futures``: the keys only this venue takes (the common ones: :class:`cexnode.config.VenueConfig`)."""
from __future__ import annotations

from cexnode.config import VenueConfig, opt, section

__all__ = ["GateFuturesConfig"]


@section
class GateFuturesConfig(VenueConfig):
    """USDT-settled perpetuals: sizes are contracts (``quanto_multiplier`` base units each). Orders
    go over the WebSocket order API when it is logged in, else REST; the futures.orders channel
    needs the account's user id. Limits of the venue that bear on the common keys: the order-book
    stream comes at 20, 50 or 100 levels (``book_depth`` is rounded up to one of them, 100 at most;
    the REST snapshot is taken at the same depth); connections have no age limit, so
    ``max_connection_age_s: 0`` never rotates them."""

    ws_order_api: bool = opt(True, doc="Send orders through the WebSocket order API (after login); REST when that connection is down.")
    user_id: str = opt("", doc="Account user id for the futures.orders channel (empty: taken from the WebSocket login answer).")
    size_decimal: bool = opt(False, doc="Send X-Gate-Size-Decimal: 1 on market data (REST and WebSocket) and order requests: fractional contract sizes as decimal strings (without it the venue truncates them to integers). Needed for contracts with enable_decimal.")

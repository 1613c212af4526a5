"""``venues.gateio_spot``: the keys only this venue takes (the common ones: :class:`cexnode.config.VenueConfig`)."""
from __future__ import annotations

from typing import Literal

from cexnode.config import VenueConfig, opt, section

__all__ = ["GateSpotConfig"]


@section
class GateSpotConfig(VenueConfig):
    """Orders go over the WebSocket order API when it is logged in, else REST; they are placed in
    one account type. Limits of the venue that bear on the common keys: the order-book stream
    comes at 20 or 100 levels (a ``book_depth`` of 20 or less streams 20 levels, more streams 100;
    the REST snapshot is taken at the same depth); connections have no age limit, so
    ``max_connection_age_s: 0`` never rotates them."""

    ws_order_api: bool = opt(True, doc="Send orders through the WebSocket order API (after login); REST when that connection is down.")
    account: Literal["spot", "unified", "margin", "cross_margin"] = opt("spot", doc="The account type orders are placed in (unified accounts: unified).")

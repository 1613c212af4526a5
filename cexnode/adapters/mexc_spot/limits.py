"""MEXC spot's published REST limits (exchange-payloads README, "rate limits"), applied by the REST
manager through ``DESCRIPTOR.rest_limits``: 500 requests / 10 s per endpoint; ``GET /api/v3/account``
and batch orders also 2 / s. MEXC sends no quota headers (429 / 418 with ``Retry-After`` only; a 418
is an IP ban: the manager pauses the whole venue)."""
from __future__ import annotations

from cexnode.adapters.mexc_spot import urls
from cexnode.net.ratelimit import LimitRule

__all__ = ["rest_limits", "BALANCE_REQUEST"]

#: the request a balance refresh makes; its 2 / s limit spaces refreshes (the engine warns when that
#: spacing is longer than ``trading.order_timeout_ms``)
BALANCE_REQUEST = ("GET", urls.ACCOUNT)


def rest_limits() -> list[LimitRule]:
    return [LimitRule(name="endpoint", limit=500, window_s=10.0),
            LimitRule(name="account", limit=2, window_s=1.0, methods=("GET",), path_prefix=urls.ACCOUNT,
                      exact=True, per="shared"),
            LimitRule(name="batch_orders", limit=2, window_s=1.0, path_prefix="/api/v3/batchOrders", per="shared")]

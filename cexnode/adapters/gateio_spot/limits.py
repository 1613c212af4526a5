"""Gate.io spot's published REST limits (exchange-payloads README, "rate limits") and its quota
headers, applied by the REST manager through ``DESCRIPTOR.rest_limits`` / ``rest_quota_reader``.

* public endpoints 200 / 10 s per endpoint (IP); spot order place/amend 10 / s per market (UID),
  spot cancel 200 / s;
* every answer carries ``X-Gate-RateLimit-Requests-Remain`` and ``X-Gate-RateLimit-Reset-Timestamp``
  (ms, Gate's clock): with no request left the manager pauses that endpoint until the reset.
  Gate futures answers carry the same headers (:mod:`cexnode.adapters.gateio_futures.limits`).
"""
from __future__ import annotations

from typing import Any, Optional

from cexnode.adapters.gateio_spot import urls
from cexnode.net.ratelimit import LimitRule

__all__ = ["rest_limits", "read_quota_headers", "REMAIN_HEADER", "RESET_HEADER"]

REMAIN_HEADER = "X-Gate-RateLimit-Requests-Remain"
RESET_HEADER = "X-Gate-RateLimit-Reset-Timestamp"


def rest_limits() -> list[LimitRule]:
    return [LimitRule(name="endpoint", limit=200, window_s=10.0),
            LimitRule(name="order_place", limit=10, window_s=1.0, methods=("POST", "PATCH"),
                      path_prefix=urls.ORDERS, per="market"),
            LimitRule(name="order_cancel", limit=200, window_s=1.0, methods=("DELETE",),
                      path_prefix=urls.ORDERS, per="shared"),
            LimitRule(name="order_cancel_batch", limit=200, window_s=1.0, methods=("POST",),
                      path_prefix="/api/v4/spot/cancel_batch_orders", per="shared")]


def read_quota_headers(headers: Any) -> Optional[tuple[int, Optional[int]]]:
    """``(remaining, reset_ms)`` from Gate's quota headers (:data:`cexnode.net.ratelimit.QuotaReader`);
    None when the answer has none (or an unreadable count); ``reset_ms`` None when unreadable."""
    remain = headers.get(REMAIN_HEADER)
    if remain is None:
        return None
    try:
        r = int(remain)
    except ValueError:
        return None
    if r > 0:
        return r, None
    try:
        return r, int(headers.get(RESET_HEADER))
    except (TypeError, ValueError):
        return r, None

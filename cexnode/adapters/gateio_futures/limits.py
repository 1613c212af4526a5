"""Gate.io USDT futures' REST limits: public endpoints 200 / 10 s per endpoint (IP). The futures order
limits are not in the exchange-payloads reference: those endpoints keep the per-endpoint rule. The
answers carry Gate's quota headers (read as on spot: :func:`cexnode.adapters.gateio_spot.limits.
read_quota_headers`)."""
from __future__ import annotations

from cexnode.adapters.gateio_spot.limits import read_quota_headers
from cexnode.net.ratelimit import LimitRule

__all__ = ["rest_limits", "read_quota_headers"]


def rest_limits() -> list[LimitRule]:
    return [LimitRule(name="endpoint", limit=200, window_s=10.0)]

"""Request authentication of the simulated MEXC spot v3 venue (written from the venue specs).

MEXC spot v3 (exchange-payloads README "mexc/ Signing", mexcdevelop/apidocs "SIGNED Endpoint Examples")
    ``totalParams`` = the query string followed directly (no ``&``) by the request body, each without
    its ``signature=...`` parameter; ``signature`` = lowercase hex HMAC-SHA256(secret, totalParams);
    the key travels in the ``X-MEXC-APIKEY`` header. ``timestamp`` (ms) is required, ``recvWindow``
    defaults to 5000 and may not exceed 60000; accepted when ``timestamp < server_time + 1000`` and
    ``server_time - timestamp <= recvWindow``. Errors ``{"code", "msg"}`` with HTTP 400:
    700001 key invalid, 700002 bad signature, 700003 timestamp outside recvWindow, 700004 a mandatory
    parameter (``signature``, ``timestamp``) missing, 700005 recvWindow too large.

The verifier returns None on success or an :class:`~cexnode.sim.trading.common.AuthError` (int
``code``; never raises for bad input) and never includes a secret in its message.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Callable, Mapping, Optional

from ...trading.common import AuthError

__all__ = ["mexc_sign", "mexc_total_params", "verify_mexc", "MEXC_DEFAULT_RECV_WINDOW", "MEXC_MAX_RECV_WINDOW"]

MEXC_DEFAULT_RECV_WINDOW = 5000
MEXC_MAX_RECV_WINDOW = 60000


def mexc_sign(secret: str, total_params: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``total_params``."""
    return hmac.new(secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()


def _split_signature(raw: str) -> tuple[str, Optional[str]]:
    """``raw`` without its ``signature=`` parameter, and that parameter's value (None when absent)."""
    if not raw:
        return "", None
    kept, sig = [], None
    for part in raw.split("&"):
        if part.startswith("signature="):
            sig = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), sig


def mexc_total_params(raw_query: str, raw_body: str) -> tuple[str, Optional[str]]:
    """``(totalParams, signature)`` of a request: query then body, each without ``signature``."""
    q, sig_q = _split_signature(raw_query)
    b, sig_b = _split_signature(raw_body)
    return q + b, sig_q if sig_q is not None else sig_b


def verify_mexc(api_key: Optional[str], raw_query: str, raw_body: str, params: Mapping[str, str],
                secret_of: Callable[[str], Optional[str]], now_ms: int) -> Optional[AuthError]:
    """Check a signed MEXC request. ``params``: the merged, decoded query + body parameters."""
    if not api_key:
        return AuthError(700001, "API key info invalid", 400)
    secret = secret_of(api_key)
    if secret is None:
        return AuthError(700001, "API key info invalid", 400)
    total, sig = mexc_total_params(raw_query, raw_body)
    if not sig:
        return AuthError(700004, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.", 400)
    ts_raw = params.get("timestamp")
    if not ts_raw:
        return AuthError(700004, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.", 400)
    try:
        ts = int(ts_raw)
        rw = int(params.get("recvWindow") or MEXC_DEFAULT_RECV_WINDOW)
    except ValueError:
        return AuthError(700004, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.", 400)
    if rw > MEXC_MAX_RECV_WINDOW or rw <= 0:
        return AuthError(700005, "recvWindow must less than 60000", 400)
    if not hmac.compare_digest(mexc_sign(secret, total), sig):
        return AuthError(700002, "Signature for this request is not valid.", 400)
    # venue rule: timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow
    if not (ts < now_ms + 1000 and now_ms - ts <= rw):
        return AuthError(700003, "Timestamp for this request is outside of the recvWindow.", 400)
    return None

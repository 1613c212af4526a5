"""Request authentication of the simulated Gate venues, spot and futures (written from the venue specs).

Gate APIv4 REST (Gate docs "Authentication"; vectors in gateio_spot/rest_signing_example.txt)
    headers ``KEY``, ``Timestamp`` (unix seconds), ``SIGN`` = hex HMAC-SHA512(secret,
    ``METHOD\\nPATH\\nQUERY\\nhex(SHA512(body))\\nTIMESTAMP``), PATH with the ``/api/v4`` prefix, QUERY
    the raw query string ("" when none). Errors ``{"label", "message"}``: 401 ``INVALID_KEY`` /
    ``INVALID_SIGNATURE`` / ``MISSING_REQUIRED_HEADER``, 403 ``REQUEST_EXPIRED`` (``|now - Timestamp| > 60``).

Gate WebSocket channel auth (Gate spot WebSocket v4 docs "Authentication")
    request ``auth: {"method": "api_key", "KEY", "SIGN"}``, SIGN = hex HMAC-SHA512(secret,
    ``channel=<channel>&event=<event>&time=<time>``); request ``time`` within 60 s of server time.

Gate WebSocket API login (Gate spot WebSocket v4 docs "Websocket API / Login", verified in
rosssaunders/coincise docs/gateio/spot/websocket_api.md: ``key = f"api\\n{channel}\\n{request_param}\\n{ts}"``
with ``request_param`` always "" for ``spot.login`` / ``futures.login``)
    payload ``{"api_key", "signature", "timestamp", "req_id"}``, signature = hex HMAC-SHA512(secret,
    ``"api\\n<channel>\\n<req_param>\\n<timestamp>"``), with ``req_param`` "" (the documented form)
    or the JSON of the ``req_param`` the payload carries (ccxt signs over ``{}``, the object it sends).

Every verifier returns None on success or an :class:`~cexnode.sim.trading.common.AuthError` (a label
as ``code``; never raises for bad input) and never includes a secret in its message.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Callable, Mapping, Optional
from urllib.parse import unquote

from ...trading.common import AuthError

__all__ = ["gate_rest_sign_string", "gate_rest_sign", "verify_gate_rest", "gate_ws_sign", "verify_gate_ws_auth",
           "gate_api_sign", "verify_gate_api_login", "GATE_MAX_SKEW_S"]

GATE_MAX_SKEW_S = 60
_EMPTY_SHA512 = hashlib.sha512(b"").hexdigest()


# ------------------------------------------------------------------------------------------------ Gate REST

def gate_rest_sign_string(method: str, path: str, query: str, body: bytes, timestamp: str) -> str:
    """``METHOD\\nPATH\\nQUERY\\nhex(SHA512(body))\\nTIMESTAMP``."""
    digest = hashlib.sha512(body).hexdigest() if body else _EMPTY_SHA512
    return "%s\n%s\n%s\n%s\n%s" % (method.upper(), path, query, digest, timestamp)


def gate_rest_sign(secret: str, method: str, path: str, query: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), gate_rest_sign_string(method, path, query, body, timestamp).encode(),
                    hashlib.sha512).hexdigest()


def verify_gate_rest(headers: Mapping[str, str], method: str, path: str, query: str, body: bytes,
                     secret_of: Callable[[str], Optional[str]], now_s: float) -> Optional[AuthError]:
    """Check Gate's ``KEY`` / ``Timestamp`` / ``SIGN`` headers of one REST request."""
    key, ts, sign = headers.get("KEY"), headers.get("Timestamp"), headers.get("SIGN")
    if not key or not ts or not sign:
        missing = "KEY" if not key else "Timestamp" if not ts else "SIGN"
        return AuthError("MISSING_REQUIRED_HEADER", "Missing required header: %s" % missing, 401)
    secret = secret_of(key)
    if secret is None:
        return AuthError("INVALID_KEY", "Invalid key provided", 401)
    try:
        ts_val = float(ts)
    except ValueError:
        return AuthError("INVALID_SIGNATURE", "Signature mismatch", 401)
    expected = gate_rest_sign(secret, method, path, query, body, ts)
    if not hmac.compare_digest(expected, sign):
        # the docs: "query string without URL encode"; accept the decoded form as well as the raw one
        plain = unquote(query)
        if plain == query or not hmac.compare_digest(gate_rest_sign(secret, method, path, plain, body, ts), sign):
            return AuthError("INVALID_SIGNATURE", "Signature mismatch", 401)
    if abs(now_s - ts_val) > GATE_MAX_SKEW_S:
        return AuthError("REQUEST_EXPIRED", "gap between request Timestamp and server time exceeds 60", 403)
    return None


# ------------------------------------------------------------------------------------------------ Gate WS

def gate_ws_sign(secret: str, channel: str, event: str, time_s: int) -> str:
    """SIGN of a private channel request: HMAC-SHA512 of ``channel=..&event=..&time=..``."""
    msg = "channel=%s&event=%s&time=%d" % (channel, event, time_s)
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha512).hexdigest()


def verify_gate_ws_auth(msg: Mapping, secret_of: Callable[[str], Optional[str]], now_s: float
                        ) -> tuple[Optional[str], Optional[str]]:
    """``(api_key, None)`` when the request's ``auth`` is valid, else ``(None, reason)``."""
    auth = msg.get("auth")
    if not isinstance(auth, Mapping) or auth.get("method") != "api_key":
        return None, "auth required"
    key, sign = auth.get("KEY"), auth.get("SIGN")
    t = msg.get("time")
    if not isinstance(key, str) or not isinstance(sign, str) or not isinstance(t, int) or isinstance(t, bool):
        return None, "invalid auth"
    secret = secret_of(key)
    if secret is None:
        return None, "invalid key"
    if not hmac.compare_digest(gate_ws_sign(secret, str(msg.get("channel", "")), str(msg.get("event", "")), t), sign):
        return None, "signature mismatch"
    if abs(now_s - t) > GATE_MAX_SKEW_S:
        return None, "request time expired"
    return key, None


def gate_api_sign(secret: str, channel: str, req_param: str, timestamp: str, event: str = "api") -> str:
    """WebSocket API signature: HMAC-SHA512 of ``"<event>\\n<channel>\\n<req_param>\\n<timestamp>"``."""
    msg = "%s\n%s\n%s\n%s" % (event, channel, req_param, timestamp)
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha512).hexdigest()


def _login_req_params(payload: Mapping) -> list[str]:
    """The ``req_param`` texts a login signature may cover: "" (the documented form) and, when the
    payload carries ``req_param``, its JSON as clients serialise it (compact, and Python's default
    ``json.dumps`` spacing; both are ``{}`` for ccxt's empty object)."""
    out = [""]
    if "req_param" in payload:
        rp = payload["req_param"]
        if isinstance(rp, str):
            out.append(rp)
        else:
            for text in (json.dumps(rp, separators=(",", ":")), json.dumps(rp)):
                if text not in out:
                    out.append(text)
    return out


def verify_gate_api_login(channel: str, payload: Mapping, secret_of: Callable[[str], Optional[str]],
                          now_s: float) -> tuple[Optional[str], Optional[AuthError]]:
    """``(api_key, None)`` for a valid ``spot.login``/``futures.login`` payload, else ``(None, error)``."""
    key, sig, ts = payload.get("api_key"), payload.get("signature"), payload.get("timestamp")
    if not isinstance(key, str) or not key or not isinstance(sig, str) or not isinstance(ts, (str, int)):
        return None, AuthError("MISSING_REQUIRED_HEADER", "api_key, signature and timestamp are required", 401)
    secret = secret_of(key)
    if secret is None:
        return None, AuthError("INVALID_KEY", "Invalid key provided", 401)
    ts = str(ts)
    # The docs sign login over an empty req_param; ccxt signs over the req_param it sends ("{}",
    # json of its object). Accept both, and nothing else: each candidate is a full HMAC check.
    if not any(hmac.compare_digest(gate_api_sign(secret, channel, rp, ts), sig)
               for rp in _login_req_params(payload)):
        return None, AuthError("INVALID_SIGNATURE", "Signature mismatch", 401)
    try:
        skew = abs(now_s - float(ts))
    except ValueError:
        return None, AuthError("INVALID_SIGNATURE", "Signature mismatch", 401)
    if skew > GATE_MAX_SKEW_S:
        return None, AuthError("REQUEST_EXPIRED", "gap between request Timestamp and server time exceeds 60", 403)
    return key, None

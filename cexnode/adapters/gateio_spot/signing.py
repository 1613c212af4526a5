"""Gate.io APIv4 signing (spot and USDT futures; exchange-payloads README, rest_signing_example.txt).

REST: headers ``KEY``, ``Timestamp`` (unix seconds, within 60 s of server time) and ``SIGN`` =
hex HMAC-SHA512(secret, ``METHOD\\nPATH\\nQUERY\\nhex(SHA512(body))\\nTIMESTAMP``) where PATH
includes ``/api/v4`` and QUERY is the raw query string exactly as sent (empty when none).

WebSocket channels (``spot.orders``, ``futures.balances`` ...): ``auth`` object
``{"method":"api_key","KEY":..,"SIGN":..}`` with SIGN = hex HMAC-SHA512(secret,
``channel=<channel>&event=<event>&time=<time>``).

WebSocket order API (``spot.login`` / ``futures.login``; later requests on that connection
need no signature): SIGN = hex HMAC-SHA512(secret, ``api\\n<channel>\\n<req_param>\\n<timestamp>``)
where ``req_param`` is always the empty string for login (Gate WebSocket API docs, "Login").

Secrets are :class:`cexnode.config.Secret`: read only while signing, never logged or raised.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any, Optional

import orjson

if TYPE_CHECKING:  # pragma: no cover
    from cexnode.net.rest import RestManager, Signer

__all__ = ["EMPTY_BODY_SHA512", "body_hash", "rest_sign_string", "rest_signature", "ws_channel_sign_string",
           "ws_channel_signature", "ws_api_sign_string", "ws_api_signature", "GateSigner", "rest_sign_hook"]

EMPTY_BODY_SHA512 = hashlib.sha512(b"").hexdigest()


def _secret_value(secret: Any) -> str:
    return secret.get() if hasattr(secret, "get") else str(secret)


def _hmac512(secret: Any, msg: str) -> str:
    return hmac.new(_secret_value(secret).encode(), msg.encode(), hashlib.sha512).hexdigest()


def body_hash(body: bytes | str = b"") -> str:
    if isinstance(body, str):
        body = body.encode()
    return hashlib.sha512(body).hexdigest()


def rest_sign_string(method: str, path: str, query: str, body: bytes | str, timestamp: int | str) -> str:
    return "%s\n%s\n%s\n%s\n%s" % (method.upper(), path, query or "", body_hash(body or b""), timestamp)


def rest_signature(secret: Any, method: str, path: str, query: str, body: bytes | str, timestamp: int | str) -> str:
    return _hmac512(secret, rest_sign_string(method, path, query, body, timestamp))


def ws_channel_sign_string(channel: str, event: str, time_s: int) -> str:
    return "channel=%s&event=%s&time=%d" % (channel, event, int(time_s))


def ws_channel_signature(secret: Any, channel: str, event: str, time_s: int) -> str:
    return _hmac512(secret, ws_channel_sign_string(channel, event, time_s))


def ws_api_sign_string(channel: str, req_param: str, timestamp: int | str, event: str = "api") -> str:
    return "%s\n%s\n%s\n%s" % (event, channel, req_param, timestamp)


def ws_api_signature(secret: Any, channel: str, req_param: str, timestamp: int | str) -> str:
    return _hmac512(secret, ws_api_sign_string(channel, req_param, timestamp))


class GateSigner:
    """Signs Gate requests with one key pair (:class:`cexnode.config.Secret` or plain strings in tests)."""

    __slots__ = ("_key", "_secret")

    def __init__(self, api_key: Any, api_secret: Any) -> None:
        self._key = api_key
        self._secret = api_secret

    def __repr__(self) -> str:
        return "GateSigner()"

    def rest_headers(self, method: str, path: str, query: str, body: bytes | str, timestamp_s: int) -> dict[str, str]:
        return {"KEY": _secret_value(self._key), "Timestamp": str(int(timestamp_s)),
                "SIGN": rest_signature(self._secret, method, path, query, body, int(timestamp_s))}

    def channel_request(self, channel: str, event: str, payload: Any, time_s: int,
                        req_id: Optional[int] = None) -> bytes:
        """A private-channel (un)subscribe request with its ``auth`` object."""
        msg: dict = {"time": int(time_s), "channel": channel, "event": event, "payload": payload,
                     "auth": {"method": "api_key", "KEY": _secret_value(self._key),
                              "SIGN": ws_channel_signature(self._secret, channel, event, int(time_s))}}
        if req_id is not None:
            msg["id"] = req_id
        return orjson.dumps(msg)

    def login_request(self, channel: str, time_s: int, req_id: str) -> bytes:
        """``spot.login`` / ``futures.login`` (WebSocket order API)."""
        ts = str(int(time_s))
        return orjson.dumps({"time": int(time_s), "channel": channel, "event": "api",
                             "payload": {"api_key": _secret_value(self._key),
                                         "signature": ws_api_signature(self._secret, channel, "", ts),
                                         "timestamp": ts, "req_id": req_id}})


def rest_sign_hook(signer: GateSigner, manager: "RestManager") -> "Signer":
    """The REST manager's signing hook (``DESCRIPTOR.sign_hook``; spot and futures): ``KEY`` /
    ``Timestamp`` (the venue's time) / ``SIGN`` headers over method, path, query and the body's SHA-512."""
    def sign(method: str, path: str, query: str, body: bytes) -> tuple:
        return query, signer.rest_headers(method, path, query, body, manager.server_now_ms() // 1000)
    return sign

"""MEXC spot v3 request signing (exchange-payloads README "MEXC / Signing"; rest_signing_example.txt).

* ``totalParams`` = the query string concatenated with the request body, **without** a ``&``
  between them; the signature is the lowercase hex HMAC-SHA256 of ``totalParams`` with the secret,
  sent as the last parameter ``signature``. The API key goes in the ``X-MEXC-APIKEY`` header.
* ``timestamp`` is in ms (server time: see :class:`cexnode.net.servertime.ServerClock`);
  ``recvWindow`` (default 5000, at most 60000): the venue accepts a request only if
  ``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow``.

Secrets are :class:`cexnode.config.Secret`: their value is read once, when the signer derives its
keyed HMAC state (:class:`KeyedSha256`: SHA-256 states after the inner and outer pads, copied per
signature: a fourth of a one-shot ``hmac.digest``'s cost, less again on a cold CPU cache), and never
stored elsewhere, logged or put into an exception.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any, Iterable, Optional
from urllib.parse import urlencode

if TYPE_CHECKING:  # pragma: no cover
    from cexnode.net.rest import RestManager, Signer

__all__ = ["API_KEY_HEADER", "MAX_RECV_WINDOW_MS", "signature", "total_params", "KeyedSha256", "MexcSigner",
           "rest_sign_hook"]

API_KEY_HEADER = "X-MEXC-APIKEY"
MAX_RECV_WINDOW_MS = 60000


def _secret_value(secret: Any) -> str:
    return secret.get() if hasattr(secret, "get") else str(secret)


def total_params(query: str = "", body: str = "") -> str:
    """The string MEXC signs: query + body, concatenated as is (no separator)."""
    return query + body


def signature(secret: Any, total: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``total`` keyed with ``secret`` (a Secret or a str)."""
    return hmac.digest(_secret_value(secret).encode(), total.encode(), hashlib.sha256).hex()


class KeyedSha256:
    """HMAC-SHA256 with one key, its pads hashed once (RFC 2104): ``hexdigest(msg)`` ==
    ``hmac.new(key, msg, sha256).hexdigest()``."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __repr__(self) -> str:
        return "KeyedSha256(...)"

    def hexdigest(self, msg: bytes) -> str:
        i = self._inner.copy()
        i.update(msg)
        o = self._outer.copy()
        o.update(i.digest())
        return o.hexdigest()


class MexcSigner:
    """Signs MEXC requests with one key pair.

    Parameters
    ----------
    api_key, api_secret
        :class:`cexnode.config.Secret` values (plain strings are accepted for tests).
    recv_window_ms
        ``recvWindow`` sent with every signed request (1..60000).
    """

    __slots__ = ("_key", "_secret", "_mac", "recv_window_ms")

    def __init__(self, api_key: Any, api_secret: Any, recv_window_ms: int = 5000) -> None:
        if not 0 < int(recv_window_ms) <= MAX_RECV_WINDOW_MS:
            raise ValueError("MEXC recvWindow must be 1..%d ms" % MAX_RECV_WINDOW_MS)
        self._key = api_key
        self._secret = api_secret
        self._mac = KeyedSha256(_secret_value(api_secret).encode())
        self.recv_window_ms = int(recv_window_ms)

    def __repr__(self) -> str:
        return "MexcSigner(recv_window_ms=%d)" % self.recv_window_ms

    def headers(self) -> dict[str, str]:
        return {API_KEY_HEADER: _secret_value(self._key)}

    def signed_query(self, params: Optional[Iterable[tuple[str, Any]]], timestamp_ms: int,
                     body: str = "") -> str:
        """``params`` url-encoded in order, then ``recvWindow``, ``timestamp`` and ``signature``
        (computed over this query + ``body``). The returned string is sent exactly as is."""
        items = [(k, v if isinstance(v, str) else str(v)) for k, v in (params or ())]
        items.append(("recvWindow", str(self.recv_window_ms)))
        items.append(("timestamp", str(int(timestamp_ms))))
        q = urlencode(items)
        return q + "&signature=" + self._mac.hexdigest(total_params(q, body).encode())

    def sign_query(self, query: str, timestamp_ms: int, body: str = "") -> str:
        """:meth:`signed_query` for parameters already url-encoded in ``query`` (the same string,
        without decoding and encoding them again)."""
        q = "%s%srecvWindow=%d&timestamp=%d" % (query, "&" if query else "", self.recv_window_ms, int(timestamp_ms))
        return q + "&signature=" + self._mac.hexdigest(total_params(q, body).encode())


def rest_sign_hook(signer: MexcSigner, manager: "RestManager") -> "Signer":
    """The REST manager's signing hook (``DESCRIPTOR.sign_hook``): ``recvWindow``, ``timestamp``
    (the venue's time) and ``signature`` appended to the query, the ``X-MEXC-APIKEY`` header."""
    def sign(method: str, path: str, query: str, body: bytes) -> tuple:
        return signer.sign_query(query, manager.server_now_ms(), body.decode() if body else ""), signer.headers()
    return sign

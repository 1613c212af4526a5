"""What the REST manager raises (:mod:`cexnode.net.rest`): one base, :class:`RestFailure`, and one
class per outcome a caller acts on differently.

* :class:`RestError`: the venue answered with an HTTP error (its definitive word, or a 5xx after
  the retries of an idempotent request);
* :class:`AmbiguousRequestError`: a non-idempotent request (an order) may or may not have been
  acted on (5xx, timeout, connection lost after writing): the caller reconciles;
* :class:`NotSentError`, :class:`CircuitOpenError`, :class:`RateLimitedError`,
  :class:`RestBusyError`: nothing was sent; safe to try again later;
* :class:`RestTimeoutError`, :class:`RestTransportError`: an idempotent request that kept failing
  without an answer.
"""
from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["RestFailure", "RestError", "RestTimeoutError", "RestTransportError", "NotSentError",
           "AmbiguousRequestError", "CircuitOpenError", "RateLimitedError", "RestBusyError"]


class RestFailure(Exception):
    """Base of every error the REST manager raises (``venue``, ``endpoint``)."""

    def __init__(self, msg: str, *, venue: str = "", endpoint: str = "") -> None:
        super().__init__(msg)
        self.venue = venue
        self.endpoint = endpoint


class RestError(RestFailure):
    """The venue answered with an HTTP error (``status``, ``body``, ``headers``)."""

    def __init__(self, status: int, body: bytes, path: str, *, venue: str = "", headers: Any = None) -> None:
        super().__init__("HTTP %d on %s: %s" % (status, path, body[:200].decode("utf-8", "replace")),
                         venue=venue, endpoint=path)
        self.status = status
        self.body = body
        self.headers = headers


class RestTimeoutError(RestFailure, asyncio.TimeoutError):
    """No complete answer within the request timeout."""


class RestTransportError(RestFailure):
    """The connection failed after the request may have been written."""


class NotSentError(RestFailure):
    """The request certainly did not leave (cannot connect): safe to send again."""


class AmbiguousRequestError(RestFailure):
    """A non-idempotent request (an order) got a 5xx, a timeout or a broken connection: the venue may
    or may not have acted on it. Never retried here; the caller reconciles (query the order).
    ``status`` is the HTTP status (0 for a timeout / transport error)."""

    def __init__(self, msg: str, *, venue: str = "", endpoint: str = "", status: int = 0) -> None:
        super().__init__(msg, venue=venue, endpoint=endpoint)
        self.status = status


class CircuitOpenError(RestFailure):
    """The endpoint's circuit breaker is open; nothing was sent. Try again in ``retry_in_s``."""

    def __init__(self, msg: str, *, venue: str = "", endpoint: str = "", retry_in_s: float = 0.0) -> None:
        super().__init__(msg, venue=venue, endpoint=endpoint)
        self.retry_in_s = retry_in_s


class RateLimitedError(RestFailure):
    """The endpoint is paused by the venue (Retry-After / ban) for longer than the caller may wait;
    nothing was sent. ``retry_in_s``: when it may be tried again."""

    def __init__(self, msg: str, *, venue: str = "", endpoint: str = "", retry_in_s: float = 0.0) -> None:
        super().__init__(msg, venue=venue, endpoint=endpoint)
        self.retry_in_s = retry_in_s


class RestBusyError(RestFailure):
    """A background request (:func:`cexnode.net.rest.background_requests`) was not sent: the endpoint
    is paused, its breaker is not closed, or its rate-limit windows have no room to spare. Try again
    later."""

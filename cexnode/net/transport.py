"""How the REST manager's requests reach a venue: the :class:`Transport` interface.

The REST manager (:mod:`cexnode.net.rest`) owns everything a request goes through before and after
the wire — pauses, rate limits, breaker, signing, the classification of the answer — and hands the
request itself to a transport chosen per request:

* the pool (:class:`cexnode.net.pool.PooledTransport`, aiohttp keep-alive connections): every
  request by default;
* the order connection (:class:`cexnode.net.http1.OrderConnection`, one kept-alive HTTP/1.1
  connection written in the caller's own call): the venue's order routes, while it is open and idle;
* a transport that answers from a recording (replay), given to the manager in place of the pool.

Contract
--------
``send(method, target, headers, body) -> handle`` starts one request. ``target`` is the path with
its query string exactly as it goes on the wire (appended to the transport's base URL); ``headers``
the request's own (the transport adds its fixed ones). A transport that is :attr:`~Transport.ready`
writes the request inside this call, before it returns; another one may write it when the answer is
awaited. Nothing is written when ``send`` raises.

``await answer(handle, timeout_s) -> (status, headers, body)``: the answer (``headers`` a
case-insensitive mapping). Raises

* :class:`NotWrittenError`: nothing of the request was written (cannot connect): safe to send again;
* ``asyncio.TimeoutError``: no complete answer within ``timeout_s``; the request may have been acted on;
* ``OSError`` (:class:`TransportLostError` or the transport's own): the connection failed after the
  request may have been written.

A transport that gives up on a request (timeout, the caller cancelled) must not read a late answer
as the next request's.

``connections_created`` counts the connections it opened (the manager's reuse accounting);
``close()`` releases what it holds.
"""
from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Transport", "Answer", "NotWrittenError", "TransportLostError", "cause_name"]

#: ``(status, headers, body)`` of one answer
Answer = tuple[int, Any, bytes]


class NotWrittenError(Exception):
    """Nothing of the request was written (cannot connect). ``cause``: what failed (a class name)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class TransportLostError(ConnectionError):
    """The connection failed after the request may have been written. ``cause``: what failed."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def cause_name(exc: BaseException) -> str:
    """What failed, for messages: the transport's ``cause`` when it wrapped an error, else the class name."""
    return getattr(exc, "cause", None) or type(exc).__name__


class Transport(Protocol):
    """Carries the REST manager's requests to a venue and their answers back (module docstring)."""

    connections_created: int

    @property
    def ready(self) -> bool:
        """:meth:`send` would write a request now, in the caller's call."""
        ...

    def send(self, method: str, target: str, headers: Any = None, body: bytes = b"") -> Any:
        """Start one request; a handle for :meth:`answer`."""
        ...

    async def answer(self, sent: Any, timeout_s: float) -> Answer:
        """The answer to a request started by :meth:`send` (module docstring: what it raises)."""
        ...

    async def close(self) -> None:
        ...

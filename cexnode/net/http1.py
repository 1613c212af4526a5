"""One kept-alive HTTP/1.1 connection for the order path (:class:`OrderConnection`).

Why: an order over aiohttp's client goes through request and URL objects, header multidicts, the
connector and the writer before its bytes leave (``perf/bench_execution.py`` measures both paths).
An order is one small request on a connection that is already open, so this writes it in one
``transport.write`` from the caller's own call (the executor starts orders inside the book-update
callback), and reads the one answer back. It is a :class:`cexnode.net.transport.Transport` of the
REST manager (:meth:`OrderConnection.send` + :meth:`OrderConnection.answer`).

Contract
--------
* :meth:`OrderConnection.send` writes the request **now** (synchronously) and returns a future of
  ``(status, headers, body)``; it raises :class:`ConnectionBusy` (nothing written) when the
  connection is not open or a request is already in flight: the caller uses its pooled client.
  One request at a time (no pipelining: a lost connection then leaves exactly one ambiguous request).
* After the write, the future fails with :class:`ConnectionLostError` (an ``OSError``) when the
  connection drops or the answer cannot be read: the request may have been acted on (ambiguous).
* :meth:`OrderConnection.answer` awaits that future with a timeout; whenever it does not return the
  answer (timed out, or its caller gave up) the connection is abandoned: closed and opened again,
  so that a late answer is never read as the next request's.
* Answers: status line, headers (a case-insensitive ``multidict.CIMultiDict``), a body by
  ``Content-Length``, ``Transfer-Encoding: chunked`` or, without either, up to the close; an answer
  with ``Connection: close`` (or HTTP/1.0) closes the connection after it.
* A background task keeps the connection: it reconnects after a loss (backoff 0.25 s doubling to
  10 s) and, when ``ping_target`` is set, sends that request after ``keepalive_s`` idle (the venue
  would otherwise close an idle connection, and the next order would find it half-closed).
  ``admit`` (optional) is asked before each keep-alive request and may refuse it (rate limits).
* TLS for ``https://`` URLs (the system's default context, SNI = the host).
"""
from __future__ import annotations

import asyncio
import re
import socket
import ssl as _ssl
import time
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from multidict import CIMultiDict

__all__ = ["OrderConnection", "ConnectionBusy", "ConnectionLostError", "parse_head"]

_MAX_HEAD = 64 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}\Z").match
_MAX_BODY = 4 * 1024 * 1024


class ConnectionBusy(Exception):
    """Not written: the connection is not open, or a request is in flight."""


class ConnectionLostError(ConnectionResetError):
    """The connection dropped (or sent something unreadable) after the request was written."""


def parse_head(head: bytes) -> tuple[int, bool, CIMultiDict]:
    """``HTTP/1.x status reason`` + header lines (without the blank line) -> (status, http/1.0, headers).
    Raises ValueError on a malformed head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise ValueError("bad status line %r" % lines[0][:80])
    headers: CIMultiDict = CIMultiDict()
    for ln in lines[1:]:
        if not ln:
            continue
        k, sep, v = ln.partition(b":")
        if not sep or not k or k != k.strip():
            raise ValueError("bad header line %r" % ln[:80])
        headers.add(k.decode("latin-1"), v.strip().decode("latin-1"))
    return int(parts[1]), parts[0] == b"HTTP/1.0", headers


class _Answer:
    """Incremental reader of one answer."""

    __slots__ = ("status", "close", "headers", "length", "chunked", "body", "done", "_chunk_left", "_trailer")

    def __init__(self) -> None:
        self.status = 0
        self.headers: Optional[CIMultiDict] = None
        self.close = False
        self.length = -1          # -1: up to the close
        self.chunked = False
        self.body = bytearray()
        self.done = False
        self._chunk_left = -1     # -1: at a chunk-size line
        self._trailer = False

    def feed(self, buf: bytearray, head_request: bool) -> None:
        """Consume what it can from ``buf`` (in place). Raises ValueError on a protocol error."""
        while self.headers is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0 or end > _MAX_HEAD:
                if len(buf) > _MAX_HEAD:
                    raise ValueError("answer head over %d bytes" % _MAX_HEAD)
                return
            self.status, http10, self.headers = parse_head(bytes(buf[:end]))
            del buf[:end + 4]
            if 100 <= self.status < 200:       # an interim answer: the real one follows
                self.headers = None
                continue
            conn = self.headers.get("Connection", "").lower()
            self.close = http10 or "close" in conn
            te = self.headers.get("Transfer-Encoding", "").lower()
            cl = self.headers.get("Content-Length")
            if head_request or self.status in (204, 304):
                self.length = 0
            elif "chunked" in te:
                self.chunked = True
            elif cl is not None:
                if not cl.strip().isdigit():
                    raise ValueError("bad Content-Length %r" % cl[:40])
                self.length = int(cl)
                if self.length > _MAX_BODY:
                    raise ValueError("answer body over %d bytes" % _MAX_BODY)
            else:
                self.close = True              # delimited by the close
        if self.chunked:
            self._feed_chunked(buf)
        elif self.length >= 0:
            take = min(len(buf), self.length - len(self.body))
            self.body += buf[:take]
            del buf[:take]
            if len(self.body) == self.length:
                self.done = True
        else:
            self.body += buf
            del buf[:]
            if len(self.body) > _MAX_BODY:
                raise ValueError("answer body over %d bytes" % _MAX_BODY)

    def _feed_chunked(self, buf: bytearray) -> None:
        while not self.done:
            if self._trailer:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(buf[:end])
                del buf[:end + 2]
                if not line:
                    self.done = True
                continue
            if self._chunk_left < 0:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 1024:
                        raise ValueError("chunk size line too long")
                    return
                size = bytes(buf[:end]).split(b";", 1)[0].strip()
                if _HEX(size) is None:
                    raise ValueError("bad chunk size %r" % size[:20])
                n = int(size, 16)
                del buf[:end + 2]
                if n == 0:
                    self._trailer = True
                    continue
                if len(self.body) + n > _MAX_BODY:
                    raise ValueError("answer body over %d bytes" % _MAX_BODY)
                self._chunk_left = n
            if self._chunk_left > 0:
                take = min(len(buf), self._chunk_left)
                self.body += buf[:take]
                del buf[:take]
                self._chunk_left -= take
                if self._chunk_left > 0:
                    return
            if len(buf) < 2:
                return
            if buf[:2] != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            del buf[:2]
            self._chunk_left = -1


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(asyncio.TimeoutError())


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: "OrderConnection") -> None:
        self.owner = owner
        self.transport: Any = None
        self.buf = bytearray()
        self.loop = asyncio.get_running_loop()          # (each get_running_loop() is a getpid(2))
        self.lost: asyncio.Future = self.loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.owner._on_data(self, data)

    def eof_received(self) -> Optional[bool]:
        return None                      # close the transport: connection_lost follows

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.owner._on_lost(self, exc)
        if not self.lost.done():
            self.lost.set_result(None)


class OrderConnection:
    """One kept-alive HTTP/1.1 connection to ``base_url`` (module docstring).

    Parameters
    ----------
    base_url
        ``http://host:port`` or ``https://host``.
    name
        For logs.
    connect_timeout_s
        Per connection attempt.
    keepalive_s, ping_target
        After this long without a request, ``GET ping_target`` (None: no keep-alive requests).
    admit
        ``admit() -> bool`` asked before each keep-alive request (False: skip this one).
    headers
        Extra headers sent with every request (``(name, value)`` pairs).
    ssl_context
        For ``https://``: the context (default: the system's, certificates verified).
    """

    def __init__(self, base_url: str, *, name: str = "", connect_timeout_s: float = 5.0, keepalive_s: float = 20.0,
                 ping_target: Optional[str] = None, admit: Optional[Callable[[], bool]] = None,
                 headers: Optional[list] = None, log: Any = None,
                 ssl_context: Optional[_ssl.SSLContext] = None) -> None:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("OrderConnection needs an http(s) URL, got %r" % base_url)
        self.tls = u.scheme == "https"
        self.ssl_context = ssl_context
        self.host = u.hostname
        self.port = u.port or (443 if self.tls else 80)
        default = 443 if self.tls else 80
        host_hdr = self.host if self.port == default else "%s:%d" % (self.host, self.port)
        extra = "".join("%s: %s\r\n" % (k, v) for k, v in (headers or ()))
        self._fixed = ("Host: %s\r\nAccept: */*\r\nUser-Agent: cexnode\r\n%s" % (host_hdr, extra)).encode("latin-1")
        self.name = name or self.host
        self.connect_timeout_s = float(connect_timeout_s)
        self.keepalive_s = float(keepalive_s)
        self.ping_target = ping_target
        self.admit = admit
        self.log = log
        self._proto: Optional[_Protocol] = None
        self._pending: Optional[asyncio.Future] = None
        self._answer: Optional[_Answer] = None
        self._head_request = False
        self._task: Optional[asyncio.Task] = None
        self._closing = False
        self._wake: Optional[asyncio.Event] = None
        self.last_used = 0.0
        # counters
        self.connects = 0
        self.losses = 0
        self.requests = 0
        self.pings = 0
        self.busy = 0

    # -- state -------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Open and idle: :meth:`send` would write now."""
        p = self._proto
        return p is not None and self._pending is None and not p.transport.is_closing()

    @property
    def connected(self) -> bool:
        return self._proto is not None

    @property
    def connections_created(self) -> int:
        return self.connects

    # -- the request ---------------------------------------------------------------------------------
    def send(self, method: str, target: str, headers: Optional[dict] = None, body: bytes = b"") -> asyncio.Future:
        """Write one request now; a future of ``(status, headers, body)``. ``target`` is the path
        with its query string, exactly as it goes on the wire. Raises :class:`ConnectionBusy`
        (nothing written)."""
        p = self._proto
        if p is None or self._pending is not None or p.transport.is_closing():
            self.busy += 1
            raise ConnectionBusy(self.name + (": a request is in flight" if self._pending is not None
                                              else ": not connected"))
        data = self.request_bytes(method, target, headers, body)
        fut = p.loop.create_future()
        self._pending = fut
        self._answer = _Answer()
        self._head_request = method == "HEAD"
        self.requests += 1
        self.last_used = time.monotonic()
        p.transport.write(data)
        return fut

    async def answer(self, fut: asyncio.Future, timeout_s: float) -> tuple:
        """``(status, headers, body)`` of the request :meth:`send` wrote (``fut``). Raises
        TimeoutError after ``timeout_s`` (and OSError when the connection is lost). Whenever it
        does not return the answer — timed out, or the caller gave up (cancelled; the executor's
        order timeout) — a late answer must not hold the connection, nor be read as the next
        request's: the connection is abandoned (closed, opened again)."""
        timer = fut.get_loop().call_later(timeout_s, _expire, fut)
        try:
            return await fut
        except asyncio.TimeoutError:
            self.abandon("no answer in %.1f s" % timeout_s)
            raise
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled() or isinstance(fut.exception(), asyncio.TimeoutError):
                self.abandon("the caller gave up waiting")     # (or our timeout came first)
            raise
        finally:
            timer.cancel()

    def request_bytes(self, method: str, target: str, headers: Optional[dict] = None, body: bytes = b"") -> bytes:
        """The request exactly as :meth:`send` writes it."""
        parts = [method.encode("ascii"), b" ", target.encode("latin-1"), b" HTTP/1.1\r\n", self._fixed]
        if headers:
            for k, v in headers.items():
                parts.append(("%s: %s\r\n" % (k, v)).encode("latin-1"))
        if body or method not in ("GET", "HEAD", "DELETE"):
            parts.append(b"Content-Length: %d\r\n" % len(body))
        parts.append(b"\r\n")
        if body:
            parts.append(body)
        return b"".join(parts)

    # -- protocol callbacks ----------------------------------------------------------------------------
    def _on_data(self, proto: _Protocol, data: bytes) -> None:
        if proto is not self._proto:
            return
        proto.buf += data
        ans = self._answer
        if ans is None:
            self._fail(proto, "data without a request")
            return
        try:
            ans.feed(proto.buf, self._head_request)
        except ValueError as e:
            self._fail(proto, str(e))
            return
        if ans.done:
            self._complete(proto, ans)

    def _complete(self, proto: _Protocol, ans: _Answer) -> None:
        fut, self._pending, self._answer = self._pending, None, None
        if ans.close or proto.buf:
            # the server closes after this one (or sent more than one answer): start afresh
            self._proto = None
            proto.transport.close()
            self._kick()
        if fut is not None and not fut.done():
            fut.set_result((ans.status, ans.headers, bytes(ans.body)))

    def _fail(self, proto: _Protocol, why: str) -> None:
        if self.log is not None:
            self.log.warning("order connection: unreadable answer; reconnecting", connection=self.name, error=why[:200])
        self._proto = None
        self.losses += 1
        proto.transport.abort()
        self._drop_pending("unreadable answer: " + why)
        self._kick()

    def _on_lost(self, proto: _Protocol, exc: Optional[BaseException]) -> None:
        if proto is not self._proto:
            return
        self._proto = None
        self.losses += 1
        ans = self._answer
        if ans is not None and ans.headers is not None and ans.length < 0 and not ans.chunked:
            self._answer = None                # a body delimited by the close: complete now
            ans.done = True
            fut, self._pending = self._pending, None
            if fut is not None and not fut.done():
                fut.set_result((ans.status, ans.headers, bytes(ans.body)))
        else:
            self._drop_pending("connection lost" + (": %s" % type(exc).__name__ if exc else ""))
        self._kick()

    def _drop_pending(self, why: str) -> None:
        fut, self._pending, self._answer = self._pending, None, None
        if fut is not None and not fut.done():
            fut.set_exception(ConnectionLostError("%s: %s" % (self.name, why)))

    def abandon(self, why: str) -> None:
        """Give up on the request in flight (its caller timed out): the connection is closed (a
        late answer must not be read as the next request's) and opened again."""
        p, self._proto = self._proto, None
        self._drop_pending(why)
        if p is not None:
            self.losses += 1
            p.transport.abort()
            self._kick()

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- lifecycle -------------------------------------------------------------------------------------
    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        ctx = (self.ssl_context or _ssl.create_default_context()) if self.tls else None
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that races
        # with the result, and a cancelled keeper must end
        async with asyncio.timeout(self.connect_timeout_s):
            _t, proto = await loop.create_connection(lambda: _Protocol(self), self.host, self.port, ssl=ctx,
                                                     server_hostname=self.host if self.tls else None)
        sock = _t.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._proto = proto
        self.connects += 1
        self.last_used = time.monotonic()

    async def start(self) -> bool:
        """Connect (once; False if that failed) and keep the connection in the background."""
        if self._task is not None:
            return self.connected
        self._closing = False
        self._wake = asyncio.Event()
        ok = True
        try:
            await self._connect()
        except (OSError, asyncio.TimeoutError) as e:
            ok = False
            if self.log is not None:
                self.log.warning("order connection: cannot connect; orders use the pooled client meanwhile",
                                 connection=self.name, error=type(e).__name__)
        self._task = asyncio.get_running_loop().create_task(self._keep())
        return ok

    async def _keep(self) -> None:
        backoff = 0.25
        while not self._closing:
            if self._proto is None:
                try:
                    await self._connect()
                    backoff = 0.25
                except (OSError, asyncio.TimeoutError):
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                continue
            self._wake.clear()
            idle = time.monotonic() - self.last_used
            wait = self.keepalive_s - idle if self.ping_target else 3600.0
            if wait > 0:
                try:
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            if self.ready and (self.admit is None or self.admit()):
                self.pings += 1
                fut = self.send("GET", self.ping_target)
                try:
                    async with asyncio.timeout(self.connect_timeout_s):
                        await fut
                except TimeoutError:              # no answer (fut cancelled): this connection is not usable
                    if self._pending is fut:
                        self.abandon("keep-alive request unanswered")
                except OSError:                   # lost meanwhile: reconnected above
                    pass
            else:
                self.last_used = time.monotonic()  # try again after another interval

    async def close(self) -> None:
        self._closing = True
        t, self._task = self._task, None
        if t is not None:
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
        p, self._proto = self._proto, None
        self._drop_pending("closed")
        if p is not None:
            p.transport.close()
            try:
                await asyncio.wait_for(asyncio.shield(p.lost), 1.0)
            except asyncio.TimeoutError:
                pass

    def stats(self) -> dict:
        return {"connected": self.connected, "connects": self.connects, "losses": self.losses,
                "requests": self.requests, "pings": self.pings, "busy": self.busy}

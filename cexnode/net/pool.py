"""The REST manager's default transport: pooled keep-alive connections (aiohttp),
:class:`PooledTransport` (the :class:`cexnode.net.transport.Transport` contract).

The request is written when its answer is awaited (:meth:`PooledTransport.answer`). New connections
are counted (``connections_created``) so that the manager can report how often a request found a
pooled connection open.
"""
from __future__ import annotations

import asyncio
from typing import Any, Optional

import aiohttp
from yarl import URL

from cexnode.net.transport import Answer, NotWrittenError, TransportLostError

__all__ = ["PooledTransport"]


class _CountingConnector(aiohttp.TCPConnector):
    """A TCPConnector that reports each new connection to ``on_create``. Why not aiohttp's trace
    signals: they cost a call per request; this costs one per new connection."""

    on_create: Any = None

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        proto = await super()._create_connection(req, traces, timeout)  # type: ignore[misc]
        cb = self.on_create
        if cb is not None:
            cb()
        return proto


# aiohttp without the connector hook: trace signals instead
_HOOKED = hasattr(aiohttp.TCPConnector, "_create_connection")


class PooledTransport:
    """Keep-alive connections to ``base_url`` (at most ``pool_size``, idle ones kept ``keepalive_s``);
    ``headers`` go with every request. The session is opened on the first request."""

    ready = False                   # the request leaves when its answer is awaited

    def __init__(self, base_url: str, *, headers: Optional[dict] = None, pool_size: int = 32,
                 keepalive_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = headers
        self.pool_size = pool_size
        self.keepalive_s = keepalive_s
        self.session: Optional[aiohttp.ClientSession] = None
        self.connections_created = 0
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _ensure(self) -> aiohttp.ClientSession:
        if self.session is None:
            kw: dict = dict(limit=self.pool_size, keepalive_timeout=self.keepalive_s, ttl_dns_cache=300)
            traces = []
            if _HOOKED:
                conn: aiohttp.TCPConnector = _CountingConnector(**kw)
                conn.on_create = self._created      # type: ignore[attr-defined]
            else:
                conn = aiohttp.TCPConnector(**kw)
                trace = aiohttp.TraceConfig()

                async def created(_s: Any, _c: Any, _p: Any) -> None:
                    self._created()

                trace.on_connection_create_end.append(created)
                traces.append(trace)
            self.session = aiohttp.ClientSession(headers=self.headers, trace_configs=traces or None, connector=conn)
        return self.session

    def _created(self) -> None:
        self.connections_created += 1

    def send(self, method: str, target: str, headers: Any = None, body: bytes = b"") -> tuple:
        """Nothing is written yet: the request goes in :meth:`answer`."""
        self._ensure()
        return (method, target, headers, body)

    async def answer(self, sent: tuple, timeout_s: float) -> Answer:
        method, target, headers, body = sent
        session = self._ensure()
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            if len(self._timeouts) > 64:
                self._timeouts.clear()
            timeout = self._timeouts[timeout_s] = aiohttp.ClientTimeout(total=timeout_s)
        if asyncio.current_task() is None:
            # started eagerly outside a task (the executor's order path): aiohttp's timeouts need
            # one; the rest of this request runs in its task
            await asyncio.sleep(0)
        url = URL(self.base_url + target, encoded=True)
        try:
            async with session.request(method, url, data=body or None, headers=headers or None,
                                       timeout=timeout) as r:
                rbody = await r.read()
                return r.status, r.headers, rbody
        except asyncio.TimeoutError:
            raise
        except aiohttp.ClientConnectorError as e:
            raise NotWrittenError(type(e).__name__) from None
        except aiohttp.ClientError as e:
            if isinstance(e, OSError):
                raise
            raise TransportLostError(type(e).__name__) from None

    async def close(self) -> None:
        s, self.session = self.session, None
        if s is not None:
            await s.close()

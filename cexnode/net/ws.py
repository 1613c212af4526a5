"""Public WebSocket feeds: connect, subscribe, app pings, watchdog, reconnect with backoff.

Every frame goes straight to the venue's Cython parser (``FeedParser.feed_bytes``) with its local
receive time. Interim transport: aiohttp (see package docstring).
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Callable, Optional

from cexnode.log import get_logger

__all__ = ["WsFeed"]


class WsFeed:
    """One venue's public stream over one or more connections.

    Parameters
    ----------
    url, parser
        Where to connect and the venue's FeedParser (frames are fed to it).
    subscriptions
        Subscription messages sent on every (re)connect; split across connections when
        ``max_subscriptions`` (per connection, 0 = unlimited) requires it (MEXC: 30).
    ping_message, ping_interval_s
        Application-level keep-alive (MEXC ``PING``, Gate ``spot.ping``).
    watchdog_s
        A connection silent this long is closed and reconnected.
    on_reconnected
        Called with the connection index after a reconnect: the owner resyncs its books.
    """

    def __init__(self, url: str, parser: Any, subscriptions: list[bytes], *, venue: str = "",
                 headers: Optional[dict] = None, max_subscriptions: int = 0,
                 ping_message: Optional[Callable[[], bytes]] = None, ping_interval_s: float = 10.0,
                 watchdog_s: float = 30.0, backoff_initial_s: float = 0.05, backoff_max_s: float = 5.0,
                 connect_timeout_s: float = 10.0, on_reconnected: Optional[Callable[[int], Any]] = None) -> None:
        self.url = url
        self.parser = parser
        self.venue = venue
        self.headers = headers
        self.ping_message = ping_message
        self.ping_interval_s = ping_interval_s
        self.watchdog_s = watchdog_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.connect_timeout_s = connect_timeout_s
        self.on_reconnected = on_reconnected
        n = max_subscriptions if max_subscriptions > 0 else max(len(subscriptions), 1)
        self.groups = [subscriptions[i:i + n] for i in range(0, len(subscriptions), n)] or [[]]
        self.log = get_logger("net.ws." + venue, [venue, "public", "ws"])
        self._session: Any = None
        self._tasks: list[asyncio.Task] = []
        self._up = [False] * len(self.groups)
        self._ready: list[asyncio.Event] = []
        self._stopping = False
        self.connects = 0
        self.reconnects = 0
        self.frames = 0
        self.bytes = 0
        self.watchdog_trips = 0
        self.errors = 0

    async def start(self) -> None:
        """Connect every group and subscribe; returns once all are connected (raises on timeout)."""
        import aiohttp

        self._session = aiohttp.ClientSession(headers=self.headers)
        self._ready = [asyncio.Event() for _ in self.groups]
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(i)) for i in range(len(self.groups))]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self._ready)), self.connect_timeout_s)

    @property
    def connected(self) -> bool:
        return all(self._up)

    async def _run(self, i: int) -> None:
        import aiohttp

        delay = self.backoff_initial_s
        first = True
        while not self._stopping:
            t_conn = time.monotonic()
            try:
                async with self._session.ws_connect(self.url, autoping=True, max_msg_size=0,
                                                    timeout=aiohttp.ClientWSTimeout(ws_close=1.0)) as ws:
                    for m in self.groups[i]:
                        await ws.send_str(m.decode())
                    self.connects += 1
                    self._up[i] = True
                    self._ready[i].set()
                    if not first:
                        self.reconnects += 1
                        if self.on_reconnected is not None:
                            self.on_reconnected(i)
                    first = False
                    await self._pump(ws)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.errors += 1
                self.log.warning("connection failed", venue=self.venue, error=repr(e)[:200])
            self._up[i] = False
            if self._stopping:
                break
            if time.monotonic() - t_conn > 30.0:
                delay = self.backoff_initial_s          # healthy for a while: reset the backoff
            self.log.warning("disconnected; reconnecting", venue=self.venue, conn=i, in_s=round(delay, 3))
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.backoff_max_s)

    async def _pump(self, ws: Any) -> None:
        import aiohttp

        feed = self.parser.feed_bytes
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self.ping_interval_s
        while True:
            timeout = min(self.watchdog_s, max(next_ping - loop.time(), 0.001)) if self.ping_message else self.watchdog_s
            try:
                msg = await ws.receive(timeout=timeout)
            except asyncio.TimeoutError:
                if self.ping_message is not None and loop.time() >= next_ping:
                    await ws.send_str(self.ping_message().decode())
                    next_ping = loop.time() + self.ping_interval_s
                    continue
                self.watchdog_trips += 1
                self.log.warning("stream silent: closing", venue=self.venue, silent_s=self.watchdog_s)
                return
            t = time.time_ns()
            if msg.type == aiohttp.WSMsgType.BINARY:
                data, binary = msg.data, True
            elif msg.type == aiohttp.WSMsgType.TEXT:
                data, binary = msg.data.encode(), False
            else:
                return
            self.frames += 1
            self.bytes += len(data)
            try:
                feed(data, binary, t)
            except Exception as e:    # a sink callback failed: log, keep the stream
                self.errors += 1
                self.log.error("frame handling failed", venue=self.venue, error=repr(e)[:200])
            if self.ping_message is not None and loop.time() >= next_ping:
                await ws.send_str(self.ping_message().decode())
                next_ping = loop.time() + self.ping_interval_s

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def status(self) -> dict:
        return {"connected": self.connected, "connections": len(self.groups), "connects": self.connects,
                "reconnects": self.reconnects, "frames": self.frames, "bytes": self.bytes,
                "watchdog_trips": self.watchdog_trips, "errors": self.errors}

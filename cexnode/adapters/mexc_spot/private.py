"""MEXC private stream over a listenKey (exchange-payloads README, "Private streams").

Flow: ``POST /api/v3/userDataStream`` (signed) → ``listenKey``; connect ``<ws_url>?listenKey=<key>``;
``SUBSCRIPTION`` of ``spot@private.{orders,deals,account}.v3.api.pb``; ``{"method":"PING"}`` every
20 s; the key lives 60 min, so ``PUT`` keeps it alive every ``listen_key_keepalive_s`` (30 min).
A failed keep-alive, or a connection that cannot be re-established with the key, rotates to a
new key. Pushes are protobuf frames read by the Cython MEXC parser (raw mode: venue symbols),
whose private dicts go to :meth:`MexcSpotGateway.on_private`. Each (re)connect first re-reads the
balances over REST, so the balance cache the pushes update is current.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Optional

from cexnode._core import feed
from cexnode._core.parsers.mexc_spot import MexcSpotParser
from cexnode._core.parsers.recording import RecordingSink
from cexnode.adapters.live import PrivateConnection
from cexnode.adapters.mexc_spot import subscriptions, urls

__all__ = ["MexcUserStream"]


class MexcUserStream(PrivateConnection):
    what = "MEXC private stream"
    not_ready_hint = " (orders are reconciled over REST meanwhile)"

    def __init__(self, gateway: Any) -> None:
        super().__init__(gateway)
        self.connected = self.up            # set once subscribed (the venue's ack)
        self.listen_key: Optional[str] = None
        self.rotations = 0
        self.keepalives = 0
        self.keepalive_failures = 0
        self._last_keepalive = 0.0

    def _redact(self, text: str) -> str:
        # aiohttp errors quote the URL, whose query holds the listenKey (it grants the private stream)
        return text.replace(self.listen_key, "***") if self.listen_key else text

    # -- listenKey REST --------------------------------------------------------------------------------
    async def create_key(self) -> str:
        ans = await self.gw.signed("POST", urls.USER_DATA_STREAM)
        if ans.status != 200:
            raise RuntimeError("listenKey create: HTTP %d" % ans.status)
        key = ans.json().get("listenKey")
        if not key:
            raise RuntimeError("listenKey create: no key in the answer")
        return str(key)

    async def keepalive(self) -> bool:
        if self.listen_key is None:
            return False
        try:
            ans = await self.gw.signed("PUT", urls.USER_DATA_STREAM, [("listenKey", self.listen_key)])
            ok = ans.status == 200
        except Exception as e:
            self.log.warning("listenKey keep-alive failed", venue=self.gw.venue, error=type(e).__name__)
            ok = False
        if ok:
            self.keepalives += 1
        else:
            self.keepalive_failures += 1
        self._last_keepalive = time.monotonic()
        return ok

    async def _close_key(self) -> None:
        if self.listen_key is None:
            return
        try:
            await self.gw.signed("DELETE", urls.USER_DATA_STREAM, [("listenKey", self.listen_key)], timeout_s=2.0)
        except Exception:
            pass

    # -- lifecycle (PrivateConnection) ----------------------------------------------------------------
    async def _closed(self) -> None:
        await self._close_key()
        self.listen_key = None

    def rotate(self) -> None:
        """Drop the current key: the next connect creates a new one (also closes the connection)."""
        self.listen_key = None
        self.rotations += 1
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def _prepare(self) -> None:
        if self.listen_key is None:
            self.listen_key = await self.create_key()
            self._last_keepalive = time.monotonic()

    def _failed(self, attempt: int) -> None:
        if attempt >= 2:
            self.listen_key = None          # the key may be gone: rotate
            self.rotations += 1

    async def _session(self) -> None:
        sep = "&" if "?" in self.gw.ws_url else "?"
        url = "%s%slistenKey=%s" % (self.gw.ws_url, sep, self.listen_key)
        sink = RecordingSink()
        parser = MexcSpotParser(None, sink)
        ws = await self.gw._http().ws_connect(url, autoping=True, heartbeat=None)
        self._ws = ws
        pinger: Optional[asyncio.Task] = None
        try:
            await ws.send_str(subscriptions.subscribe_message(list(subscriptions.PRIVATE_TOPICS), req_id=1).decode())
            pinger = asyncio.get_running_loop().create_task(self._ping(ws))
            async for m in ws:
                data = m.data
                if isinstance(data, str):
                    data = data.encode()
                elif not isinstance(data, (bytes, bytearray)):
                    break                          # CLOSE / ERROR
                self.frames += 1
                parser.feed_bytes(bytes(data), m.type.name == "BINARY")
                events, sink.events = sink.events, []
                for ev in events:
                    if ev[0] == "message":
                        await self._on_message(ev[2], ev[3])
                    elif ev[0] == "error":
                        self.errors += 1
                        self.log.warning("MEXC private frame unreadable", venue=self.gw.venue, reason=str(ev[2])[:200])
        finally:
            if pinger is not None:
                pinger.cancel()
            self._ws = None
            self.connected.clear()
            await ws.close()

    async def _on_message(self, kind: int, msg: Any) -> None:
        if kind == feed.MSG_ACK:
            if not self.connected.is_set():
                # (re)connected and subscribed: re-read balances so the pushes update a current cache
                try:
                    await self.gw.balances()
                except Exception as e:
                    self.log.warning("balances after (re)connect failed", venue=self.gw.venue, error=str(e)[:200])
                self.connects += 1
                self.connected.set()
        elif kind == feed.MSG_ERROR:
            self.errors += 1
            self.log.error("MEXC private stream refused", venue=self.gw.venue, msg=str(msg.get("msg"))[:200])
        elif kind in (feed.MSG_ORDER, feed.MSG_FILL, feed.MSG_BALANCE):
            self.gw.on_private(kind, msg)

    async def _ping(self, ws: Any) -> None:
        # app-level PING every 20 s (the venue may not answer protocol pings) and the keep-alive
        # PUT when due; a failed keep-alive rotates the key (the connection is closed and redone)
        tick = max(0.05, min(subscriptions.PING_INTERVAL_S, self.gw.listen_key_keepalive_s))
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - last_ping >= subscriptions.PING_INTERVAL_S:
                last_ping = now
                await ws.send_str(subscriptions.ping_message().decode())
            if now - self._last_keepalive >= self.gw.listen_key_keepalive_s:
                if not await self.keepalive():
                    self.rotate()
                    return

    def status(self) -> dict:
        return {"connected": self.connected.is_set(), "connects": self.connects, "rotations": self.rotations,
                "keepalives": self.keepalives, "keepalive_failures": self.keepalive_failures,
                "frames": self.frames, "errors": self.errors}

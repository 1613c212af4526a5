"""One authenticated Gate WebSocket connection per gateway: the WebSocket order API and the private
channels (Gate spot / futures WebSocket v4 docs; exchange-payloads README "Gate spot").

On every (re)connect: ``<prefix>.login`` (event ``api``, signature over
``api\\n<channel>\\n\\n<timestamp>``; the answer names the user id), then each private channel
subscribed with its ``auth`` object (``channel=..&event=..&time=..``), then the REST balance re-read
(the cache the pushes update must be current), then ``ready``. ``<prefix>.ping`` every 10 s.

:meth:`GateWsSession.request` sends one WebSocket API request (``<prefix>.order_place`` ...) and
returns the final answer (the ``ack: true`` echo is skipped). It raises :class:`NotSent` when the
connection is not logged in or the frame could not be written (the caller falls back to REST),
and ``GatewayError(ambiguous=True)`` when the request left but no answer came (timeout,
disconnect): the order may exist.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, Optional

import orjson
from aiohttp import WSMsgType

from cexnode.adapters.live import NotSent, PrivateConnection
from cexnode.execution.gateway import GatewayError

__all__ = ["GateWsSession"]

PING_INTERVAL_S = 10.0


class GateWsSession(PrivateConnection):
    what = "Gate private connection"
    not_ready_hint = " (orders go over REST meanwhile)"

    def __init__(self, gateway: Any) -> None:
        super().__init__(gateway)
        self.prefix = gateway.channel_prefix
        self.ready = self.up                # set once logged in and subscribed
        self.logged_in = False
        self.uid: Optional[str] = None
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self.api_requests = 0
        self.api_lost = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None     # the session's

    def drop(self) -> None:
        """Close the connection now (tests; the run loop reconnects)."""
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    def _ended(self) -> None:
        self.ready.clear()
        self.logged_in = False
        self._ws = None
        pend, self._pending = self._pending, {}
        for fut in pend.values():
            if not fut.done():
                self.api_lost += 1
                fut.set_exception(GatewayError("%s: WebSocket API connection lost before the answer" % self.gw.venue,
                                               ambiguous=True, code="disconnected"))

    async def _session(self) -> None:
        ws = await self.gw._http().ws_connect(self.gw.ws_url, autoping=True, heartbeat=None,
                                              headers=self.gw.ws_headers() or None)
        self._ws = ws
        self._loop = asyncio.get_running_loop()       # for the order path: each get_running_loop() is a getpid(2)
        reader = self._loop.create_task(self._read(ws))
        pinger: Optional[asyncio.Task] = None
        try:
            await self._login()
            for channel, payload in (self.gw.private_channels(self.uid) if self.gw.private_stream else ()):
                t = self.gw.server_clock.now_s()
                await ws.send_str(self.gw.signer.channel_request(channel, "subscribe", payload, t,
                                                                 req_id=next(self._ids)).decode())
            try:
                await self.gw.balances()
            except Exception as e:
                self.log.warning("balances after (re)connect failed", venue=self.gw.venue, error=str(e)[:200])
            self.connects += 1
            self.ready.set()
            pinger = asyncio.get_running_loop().create_task(self._ping(ws))
            await reader
        finally:
            if pinger is not None:
                pinger.cancel()
            reader.cancel()
            self.ready.clear()
            await ws.close()

    async def _login(self) -> None:
        channel = self.prefix + ".login"
        req_id = "login-%d" % next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        await self._ws.send_str(self.gw.signer.login_request(channel, self.gw.server_clock.now_s(), req_id).decode())
        resp = await asyncio.wait_for(fut, self.gw.request_timeout_s)
        if str(resp.get("header", {}).get("status")) != "200":
            errs = (resp.get("data") or {}).get("errs") or {}
            raise RuntimeError("%s refused: %s %s" % (channel, errs.get("label"), str(errs.get("message"))[:100]))
        result = (resp.get("data") or {}).get("result") or {}
        uid = result.get("uid") if isinstance(result, dict) else None
        self.uid = str(uid) if uid not in (None, "") else (self.gw.user_id or None)
        self.logged_in = True

    async def _ping(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            await ws.send_str(orjson.dumps({"time": int(time.time()), "channel": self.prefix + ".ping"}).decode())

    async def _read(self, ws: Any) -> None:
        async for m in ws:
            data = m.data
            if not isinstance(data, (str, bytes, bytearray)):
                break
            self.frames += 1
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                self.errors += 1
                self.log.warning("Gate private frame is not JSON", venue=self.gw.venue)
                continue
            if not isinstance(obj, dict):
                continue
            try:
                self._dispatch(obj)
            except Exception as e:         # one bad push must not end the connection
                self.errors += 1
                self.log.error("Gate private frame not handled", venue=self.gw.venue, error=repr(e)[:200])

    def _dispatch(self, obj: dict) -> None:
        if isinstance(obj.get("header"), dict):
            if obj.get("ack") is True:
                return                                    # the request echo; the answer follows
            fut = self._pending.pop(str(obj.get("request_id")), None)
            if fut is not None and not fut.done():
                fut.set_result(obj)
            return
        channel = obj.get("channel") or ""
        event = obj.get("event")
        err = obj.get("error")
        if event in ("subscribe", "unsubscribe"):
            if err is not None:
                self.errors += 1
                self.log.error("Gate private subscription refused", venue=self.gw.venue, channel=channel,
                               error=str(err)[:200])
            return
        if event == "update":
            res = obj.get("result")
            items = res if isinstance(res, list) else [res]
            self.gw.on_push(channel, items, obj.get("time_ms"))

    # -- WebSocket API -----------------------------------------------------------------------------
    @property
    def api_ready(self) -> bool:
        return self.logged_in and self._ws is not None and not self._ws.closed

    def api_message(self, channel: str, req_param: Any, req_id: str) -> bytes:
        """One WebSocket API request frame's text."""
        return orjson.dumps({"time": self.gw.server_clock.now_s(), "channel": channel, "event": "api",
                             "payload": {"req_id": req_id, "req_param": req_param}})

    async def request(self, channel: str, req_param: Any, timeout_s: float) -> dict:
        if not self.api_ready:
            raise NotSent("%s: WebSocket API not connected" % self.gw.venue)
        req_id = "%d-%d" % (time.time_ns() // 1_000_000, next(self._ids))
        msg = self.api_message(channel, req_param, req_id)
        fut = self._loop.create_future()
        self._pending[req_id] = fut
        try:
            await self._ws.send_frame(msg, WSMsgType.TEXT)     # orjson's UTF-8 bytes as they are
        except Exception as e:
            self._pending.pop(req_id, None)
            raise NotSent("%s: WebSocket API send failed (%s)" % (self.gw.venue, type(e).__name__)) from None
        self.api_requests += 1
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except asyncio.TimeoutError:
            self._pending.pop(req_id, None)
            raise GatewayError("%s %s: no answer in %.3f s" % (self.gw.venue, channel, timeout_s), ambiguous=True,
                               code="timeout") from None

    def status(self) -> dict:
        return {"ready": self.ready.is_set(), "logged_in": self.logged_in, "connects": self.connects,
                "frames": self.frames, "errors": self.errors, "api_requests": self.api_requests,
                "api_lost": self.api_lost, "uid": self.uid}

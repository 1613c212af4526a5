"""REST client: one pooled keep-alive aiohttp session per venue, timeouts, retries for idempotent
requests (429 honouring Retry-After, 5xx, timeouts; other 4xx never), connection reuse counted."""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Optional

import orjson

__all__ = ["RestClient", "RestResponse", "RestError"]


class RestError(Exception):
    def __init__(self, status: int, body: bytes, path: str) -> None:
        super().__init__("HTTP %d on %s: %s" % (status, path, body[:200].decode("utf-8", "replace")))
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class RestClient:
    def __init__(self, base_url: str, *, venue: str = "", timeout_s: float = 10.0, max_attempts: int = 4,
                 headers: Optional[dict] = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.venue = venue
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.headers = headers
        self._session: Any = None
        self.requests = 0
        self.connections_created = 0
        self.retries = 0

    def _ensure(self) -> Any:
        import aiohttp

        if self._session is None:
            trace = aiohttp.TraceConfig()

            async def created(_s: Any, _c: Any, _p: Any) -> None:
                self.connections_created += 1

            trace.on_connection_create_end.append(created)
            self._session = aiohttp.ClientSession(headers=self.headers, trace_configs=[trace],
                                                  connector=aiohttp.TCPConnector(limit=32, keepalive_timeout=60))
        return self._session

    async def request(self, method: str, path: str, *, params: Optional[dict] = None, weight: int = 1,
                      idempotent: Optional[bool] = None) -> RestResponse:
        import aiohttp

        session = self._ensure()
        idem = method in ("GET", "HEAD") if idempotent is None else idempotent
        delay = 0.05
        for attempt in range(1, self.max_attempts + 1):
            self.requests += 1
            try:
                async with session.request(method, self.base_url + path, params=params,
                                           timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as r:
                    body = await r.read()
                    if r.status < 400:
                        return RestResponse(r.status, r.headers, body)
                    retry = idem and (r.status == 429 or r.status >= 500)
                    if not retry or attempt == self.max_attempts:
                        raise RestError(r.status, body, path)
                    ra = r.headers.get("Retry-After")
                    wait = float(ra) if ra and ra.replace(".", "", 1).isdigit() else delay
            except (asyncio.TimeoutError, aiohttp.ClientConnectionError):
                if not idem or attempt == self.max_attempts:
                    raise
                wait = delay
            self.retries += 1
            await asyncio.sleep(wait * (0.5 + random.random()) if wait == delay else wait)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def stats(self) -> dict:
        reuse = 1.0 - self.connections_created / self.requests if self.requests else 0.0
        return {"requests": self.requests, "connections_created": self.connections_created,
                "reuse_rate": reuse, "retries": self.retries}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

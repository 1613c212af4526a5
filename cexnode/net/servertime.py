"""A venue's clock as seen from ours: :class:`ServerClock`, the one place the node estimates it.

Signed requests carry the venue's time (a venue refuses a timestamp too far from its own), and a
venue's quota reset times are on its clock. The order gateway keeps a clock in sync with the venue's
time endpoint; the venue's REST manager reads the same clock (:meth:`cexnode.net.rest.RestManager.
adopt_server_clock`).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Optional

__all__ = ["ServerClock"]


class ServerClock:
    """Offset between the venue's clock and ours, for signed-request timestamps.

    ``sync()`` asks ``fetch`` (the venue's time endpoint, returning server ms) ``samples`` times and
    keeps the estimate of the fastest round trip: ``offset = server - (t_sent + t_received) / 2``.
    ``start()`` syncs once (failures are logged; the offset stays 0) and then every ``interval_s``.
    Without ``fetch`` the offset stays what is assigned to ``offset_ms`` (or what a ``sync(fetch)``
    measured).
    """

    def __init__(self, fetch: Optional[Callable[[], Awaitable[int]]] = None, *, interval_s: float = 60.0,
                 samples: int = 3, clock_ns: Callable[[], int] = time.time_ns, log: Any = None) -> None:
        self._fetch = fetch
        self.interval_s = float(interval_s)
        self.samples = max(1, int(samples))
        self._clock = clock_ns
        self.log = log
        self.offset_ms = 0
        self.rtt_ms: Optional[float] = None
        self.synced = False
        self.syncs = 0
        self.failures = 0
        self._task: Optional[asyncio.Task] = None

    def now_ms(self) -> int:
        return self._clock() // 1_000_000 + self.offset_ms

    def now_s(self) -> int:
        return self.now_ms() // 1000

    async def sync(self, fetch: Optional[Callable[[], Awaitable[int]]] = None, samples: Optional[int] = None) -> int:
        """Measure the offset now (``fetch``/``samples``: this time only, instead of the clock's)
        and return it."""
        fetch = fetch or self._fetch
        if fetch is None:
            raise ValueError("ServerClock.sync: no time source")
        best: Optional[tuple[float, int]] = None
        for _ in range(max(1, int(samples)) if samples is not None else self.samples):
            t0 = self._clock()
            server_ms = int(await fetch())
            t1 = self._clock()
            rtt = (t1 - t0) / 1e6
            off = server_ms - (t0 + t1) // 2_000_000
            if best is None or rtt < best[0]:
                best = (rtt, off)
        assert best is not None
        self.rtt_ms, self.offset_ms = best
        self.synced = True
        self.syncs += 1
        return self.offset_ms

    async def _sync_logged(self) -> None:
        try:
            await self.sync()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.failures += 1
            if self.log is not None:
                self.log.warning("server time sync failed", error=type(e).__name__, detail=str(e)[:200])

    async def start(self) -> None:
        await self._sync_logged()
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self._sync_logged()

    async def stop(self) -> None:
        t, self._task = self._task, None
        if t is not None:
            t.cancel()
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass

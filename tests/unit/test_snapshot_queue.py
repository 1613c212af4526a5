"""SnapshotQueue (cexnode.adapters.base): at most ``concurrency`` snapshot fetches at a time, the
waiting ones served by (priority, order) whatever order they asked in; a cancelled waiter, or one
cancelled just as its turn came, does not lose the turn for the others."""
from __future__ import annotations

import asyncio

from cexnode.adapters.base import FIRST_SYNC_PRIORITY, RESYNC_PRIORITY, SnapshotQueue


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_waiters_are_served_by_priority_then_order_within_the_concurrency():
    async def main():
        q = SnapshotQueue(2)
        entered: list = []
        active_max = 0
        gate = asyncio.Event()

        async def fetch(name, priority, order):
            nonlocal active_max
            await q.acquire(priority, order)
            try:
                entered.append(name)
                active_max = max(active_max, q.active)
                await gate.wait()
            finally:
                q.release()

        first = [asyncio.create_task(fetch("a", FIRST_SYNC_PRIORITY, 0)),
                 asyncio.create_task(fetch("b", FIRST_SYNC_PRIORITY, 1))]
        await _settle()
        assert entered == ["a", "b"] and q.active == 2
        # asked in this order; wanted: the resync first, then the first syncs by order
        later = [asyncio.create_task(fetch(n, p, o)) for n, p, o in
                 [("z", FIRST_SYNC_PRIORITY, 9), ("c", FIRST_SYNC_PRIORITY, 2), ("r", RESYNC_PRIORITY, 50),
                  ("d", FIRST_SYNC_PRIORITY, 3)]]
        await _settle()
        assert len(q) == 4 and entered == ["a", "b"]
        gate.set()
        await asyncio.gather(*first, *later)
        assert entered == ["a", "b", "r", "c", "d", "z"]
        assert active_max == 2 and q.active == 0 and len(q) == 0

    run(main())


def test_a_cancelled_waiter_passes_its_turn_on():
    async def main():
        q = SnapshotQueue(1)
        await q.acquire(FIRST_SYNC_PRIORITY, 0)
        waiting = asyncio.create_task(q.acquire(FIRST_SYNC_PRIORITY, 1))
        granted_then_cancelled = asyncio.create_task(q.acquire(RESYNC_PRIORITY, 0))
        last = asyncio.create_task(q.acquire(FIRST_SYNC_PRIORITY, 2))
        await _settle()
        waiting.cancel()                   # cancelled while waiting: simply leaves
        await _settle()
        q.release()                        # the turn goes to the resync waiter...
        granted_then_cancelled.cancel()    # ...cancelled before it ran: the turn moves on
        await _settle()
        assert waiting.cancelled() and granted_then_cancelled.cancelled()
        assert last.done() and q.active == 1
        q.release()
        assert q.active == 0
        await q.acquire(FIRST_SYNC_PRIORITY, 3)      # free again: no wait
        assert q.active == 1

    run(main())

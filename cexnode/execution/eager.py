"""Start a coroutine eagerly: its first step runs in the caller's call, the rest as a Task.

Python 3.12 has this built in (``asyncio.eager_task_factory``); this node runs on 3.11. The executor
starts both orders of a trade from inside the book-update callback; with a plain Task an order's
bytes would leave only at the loop's next step, after the callback (and everything else ready)
returns. With :func:`start_eager` a gateway whose ``place`` writes its request before it first
waits (``eager_place = True``: a logged-in WebSocket order API, a kept-alive order connection) has
the order on the wire before ``start_eager`` returns.

The first step runs outside any Task: ``asyncio.current_task()`` is None there (code that needs a
task, such as aiohttp's client timeouts, must first ``await asyncio.sleep(0)``; everything after
the first suspension runs inside the Task as usual, cancellation included).
"""
from __future__ import annotations

import asyncio
from typing import Any, Coroutine

__all__ = ["start_eager"]


class _Resume:
    """Awaitable that hands a coroutine's pending suspension to the Task awaiting it and then
    drives the coroutine on, exactly as the Task would have (values and exceptions passed through)."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine, first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self):
        coro, out = self.coro, self.first
        self.first = None
        while True:
            try:
                sent = yield out
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as e:          # CancelledError from Task.cancel(), and the like
                try:
                    out = coro.throw(e)
                except StopIteration as s:
                    return s.value
            else:
                try:
                    out = coro.send(sent)
                except StopIteration as s:
                    return s.value


async def _rest(coro: Coroutine, first: Any) -> Any:
    return await _Resume(coro, first)


def start_eager(coro: Coroutine, loop: Any = None) -> "asyncio.Future":
    """Run ``coro`` up to its first suspension now; a future of its result (a Task when it
    suspended, else an already completed future)."""
    loop = loop or asyncio.get_running_loop()
    try:
        first = coro.send(None)
    except StopIteration as s:
        fut = loop.create_future()
        fut.set_result(s.value)
        return fut
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:
        fut = loop.create_future()
        fut.set_exception(e)
        return fut
    return loop.create_task(_rest(coro, first))

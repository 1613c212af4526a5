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
import collections.abc
from typing import Any, Coroutine

__all__ = ["start_eager"]


class _Resumed(collections.abc.Coroutine):
    """The rest of a coroutine already suspended on ``first``, as a coroutine for a Task: its first
    ``send`` hands ``first`` to the Task (which then waits on it as if it had run the first step
    itself); after that every ``send``/``throw`` goes straight to the coroutine. A ``throw`` before
    that (the Task cancelled before its first step) cancels ``first`` and is delivered at the
    coroutine's await, as a Task cancelled while waiting on it would."""

    __slots__ = ("coro", "first", "started")

    def __init__(self, coro: Coroutine, first: Any) -> None:
        self.coro = coro
        self.first = first
        self.started = False

    def send(self, value: Any) -> Any:
        if not self.started:
            self.started = True
            first, self.first = self.first, None
            return first
        return self.coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if not self.started:
            self.started = True
            first, self.first = self.first, None
            if first is not None and hasattr(first, "cancel") and not first.done():
                first.cancel()
        if val is None and tb is None:
            return self.coro.throw(typ)
        return self.coro.throw(typ, val, tb)

    def close(self) -> None:
        self.first = None
        self.coro.close()

    def __await__(self):
        """Driven by ``await`` instead of a Task (not used by start_eager; the ABC wants it)."""
        value, exc = None, None
        while True:
            try:
                out = self.send(value) if exc is None else self.throw(exc)
            except StopIteration as s:
                return s.value
            value, exc = None, None
            try:
                value = yield out
            except BaseException as e:
                exc = e


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
    return loop.create_task(_Resumed(coro, first))

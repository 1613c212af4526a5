"""cexnode.execution.eager.start_eager: a coroutine's first step runs in the caller's own call
(outside any Task), the rest in a Task, with results, exceptions, values sent back by awaited
futures and cancellation passed through exactly as a Task started with the coroutine would."""
from __future__ import annotations

import asyncio
import contextvars
import gc

import pytest

from cexnode.execution.eager import start_eager


def run(coro, timeout: float = 10.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def one_step() -> None:
    """Let the loop run one step (callbacks scheduled so far run)."""
    await asyncio.sleep(0)


# -- the first step --------------------------------------------------------------------------------

def test_first_step_runs_before_start_eager_returns_the_rest_after_a_loop_step():
    async def main():
        loop = asyncio.get_running_loop()
        log = []

        async def coro():
            log.append("first")
            await asyncio.sleep(0)
            log.append("second")
            return 42

        t = start_eager(coro(), loop)
        assert log == ["first"]                   # synchronous: before start_eager returned
        assert isinstance(t, asyncio.Task) and not t.done()
        await one_step()
        await one_step()
        assert log == ["first", "second"]
        assert await t == 42 and t.result() == 42

    run(main())


def test_first_step_runs_before_any_callback_already_scheduled():
    """From inside a plain callback (the executor's book-update call): the first step runs in that
    call, ahead of callbacks scheduled before it; the rest only at a later loop step."""
    async def main():
        loop = asyncio.get_running_loop()
        log = []
        done = loop.create_future()

        async def coro():
            log.append("first")
            await asyncio.sleep(0)
            log.append("rest")
            return "ok"

        def callback():
            loop.call_soon(log.append, "other")           # ready before start_eager is called
            t = start_eager(coro())                       # no loop argument: the running loop
            log.append("returned")
            done.set_result(t)

        loop.call_soon(callback)
        t = await done
        assert log[:2] == ["first", "returned"]
        assert await t == "ok"
        assert log.index("other") < log.index("rest")

    run(main())


def test_no_suspension_gives_an_already_done_future():
    async def main():
        log = []

        async def coro():
            log.append("ran")
            return {"v": 1}

        f = start_eager(coro())
        assert log == ["ran"]
        assert f.done() and not f.cancelled() and f.result() == {"v": 1}
        assert not isinstance(f, asyncio.Task)            # nothing left to run
        assert await f == {"v": 1}

        async def nothing():
            return None

        f2 = start_eager(nothing())
        assert f2.done() and f2.result() is None

    run(main())


def test_exception_in_the_first_step_goes_into_the_future_not_to_the_caller():
    async def main():
        class Boom(Exception):
            pass

        async def coro():
            raise Boom("first step")

        f = start_eager(coro())                           # no raise here
        assert f.done() and isinstance(f.exception(), Boom)
        with pytest.raises(Boom, match="first step"):
            await f

        # also when it fails before its first await of a value that would have suspended
        async def coro2(fut):
            if not fut.done():
                raise ValueError("before the await")
            await fut

        f2 = start_eager(coro2(asyncio.get_running_loop().create_future()))
        assert f2.done() and isinstance(f2.exception(), ValueError)

    run(main())


def test_keyboard_interrupt_in_the_first_step_is_raised_to_the_caller():
    async def main():
        async def coro():
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            start_eager(coro())

    # KeyboardInterrupt would otherwise tear the loop down: catch it inside main
    run(main())


def test_result_and_exception_of_the_rest_propagate_through_the_task():
    async def main():
        loop = asyncio.get_running_loop()

        async def ok():
            await asyncio.sleep(0)
            await asyncio.sleep(0.001)
            return "done"

        async def fails():
            await asyncio.sleep(0)
            raise LookupError("after a suspension")

        t1, t2 = start_eager(ok()), start_eager(fails())
        assert await t1 == "done"
        with pytest.raises(LookupError, match="after a suspension"):
            await t2
        assert isinstance(t2.exception(), LookupError)

        # awaited by another task, and with gather
        t3, t4 = start_eager(ok()), start_eager(fails())
        res = await asyncio.gather(t3, t4, return_exceptions=True)
        assert res[0] == "done" and isinstance(res[1], LookupError)

        # add_done_callback works as on any Task
        seen = []
        t5 = start_eager(ok())
        t5.add_done_callback(lambda f: seen.append(f.result()))
        await t5
        await one_step()
        assert seen == ["done"]
        assert loop.is_running()

    run(main())


def test_current_task_is_none_in_the_first_step_and_the_task_afterwards():
    async def main():
        seen = {}

        async def coro():
            seen["first"] = asyncio.current_task()
            await asyncio.sleep(0)
            seen["second"] = asyncio.current_task()
            fut = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(fut.set_result, 1)
            await fut
            seen["third"] = asyncio.current_task()
            return seen

        done = asyncio.get_running_loop().create_future()
        # from a plain callback, the way the executor starts orders
        asyncio.get_running_loop().call_soon(lambda: done.set_result(start_eager(coro())))
        t = await done
        assert seen == {"first": None}
        await t
        assert seen["first"] is None
        assert seen["second"] is t and seen["third"] is t

    run(main())


def test_first_step_started_from_a_task_runs_in_that_task_then_moves_to_its_own():
    """Started from inside a task, the first step sees the caller's task (it is the caller's call);
    everything after the first suspension runs in the new task."""
    async def main():
        seen = []

        async def coro():
            seen.append(asyncio.current_task())
            await asyncio.sleep(0)
            seen.append(asyncio.current_task())

        me = asyncio.current_task()
        t = start_eager(coro())
        await t
        assert seen == [me, t] and t is not me

    run(main())


# -- values and exceptions across suspensions ----------------------------------------------------------

def test_values_of_awaited_futures_arrive_across_several_suspensions():
    async def main():
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(3)]
        got = []

        async def slow(v):
            await asyncio.sleep(0.01)
            return v

        async def coro():
            for f in futs:                     # three futures in sequence
                got.append(await f)
            await asyncio.sleep(0)
            got.append(await asyncio.sleep(0.001, result="slept"))
            got.append(await asyncio.wait_for(slow("waited"), 1.0))
            got.append(await asyncio.wait_for(asyncio.shield(slow("shielded")), 1.0))
            inner = loop.create_task(slow("a task"))
            got.append(await inner)
            got.append(await asyncio.gather(slow(1), slow(2)))
            return sum(1 for _ in got)

        t = start_eager(coro())
        assert got == [] and not t.done()
        for i, f in enumerate(futs):
            await one_step()
            assert got == [("v", j) for j in range(i)]      # waiting on futs[i]
            f.set_result(("v", i))
        assert await t == 8
        assert got == [("v", 0), ("v", 1), ("v", 2), "slept", "waited", "shielded", "a task", [1, 2]]

    run(main())


def test_first_future_completed_before_the_task_starts():
    """The future the first step waits on completes before the loop gives the task its first step:
    its value is still delivered."""
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        async def coro():
            v = await fut
            return v * 2

        t = start_eager(coro())
        fut.set_result(21)                         # before the task ever ran
        assert await t == 42

    run(main())


def test_exception_set_on_an_awaited_future_is_raised_at_the_await_and_can_be_caught():
    async def main():
        loop = asyncio.get_running_loop()
        f1, f2, f3 = (loop.create_future() for _ in range(3))
        log = []

        async def coro():
            try:
                await f1
            except KeyError as e:
                log.append(("caught", e.args[0]))
            v = await f2                           # carries on normally after catching
            log.append(("value", v))
            try:
                await f3
            finally:
                log.append("finally")

        t = start_eager(coro())
        await one_step()
        f1.set_exception(KeyError("k1"))
        await one_step()
        await one_step()
        assert log == [("caught", "k1")]
        f2.set_result("v2")
        await one_step()
        await one_step()
        assert log == [("caught", "k1"), ("value", "v2")]
        f3.set_exception(ConnectionResetError("gone"))
        with pytest.raises(ConnectionResetError, match="gone"):
            await t
        assert log[-1] == "finally"

    run(main())


def test_exception_set_on_the_first_future_before_the_task_runs():
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        async def coro():
            try:
                await fut
            except OSError as e:
                return "caught %s" % e

        t = start_eager(coro())
        fut.set_exception(OSError("early"))
        assert await t == "caught early"

    run(main())


def test_wait_for_timeout_inside_the_coroutine():
    async def main():
        loop = asyncio.get_running_loop()
        never = loop.create_future()

        async def coro():
            try:
                await asyncio.wait_for(never, 0.02)        # the first suspension (3.11's wait_for needs no task)
            except asyncio.TimeoutError:
                return "timed out"

        t = start_eager(coro())
        assert await t == "timed out"
        assert never.cancelled()                            # wait_for cancelled what it waited on

    run(main())


# -- cancellation ----------------------------------------------------------------------------------------

def test_cancel_while_waiting_on_a_future_throws_into_the_coroutine_at_that_await():
    async def main():
        loop = asyncio.get_running_loop()
        f1, f2 = loop.create_future(), loop.create_future()
        log = []

        async def coro():
            v = await f1
            log.append(("got", v))
            try:
                await f2
                log.append("not reached")
            except asyncio.CancelledError:
                log.append("except CancelledError")
                raise
            finally:
                log.append("finally")

        t = start_eager(coro())
        await one_step()
        f1.set_result(1)
        await one_step()
        await one_step()
        assert log == [("got", 1)]
        assert t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert t.cancelled()
        assert log == [("got", 1), "except CancelledError", "finally"]
        assert f2.cancelled()                                # the Task cancelled what it waited on

    run(main())


@pytest.mark.parametrize("step_first", [True, False], ids=["after_a_loop_step", "right_after_start_eager"])
def test_cancel_while_waiting_on_the_first_future_throws_into_the_coroutine(step_first):
    """Cancelled once the Task has taken over the first suspension, or right after start_eager
    returned (no loop step in between: the Task has not run at all): either way CancelledError is
    raised at the coroutine's await, its cleanup runs, and the future it waited on is cancelled."""
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        log = []

        async def coro():
            try:
                await fut
            except asyncio.CancelledError:
                log.append("cancelled at the await")
                raise
            finally:
                log.append("finally")

        t = start_eager(coro())
        if step_first:
            await one_step()
        t.cancel("why")
        with pytest.raises(asyncio.CancelledError):
            await t
        gc.collect()
        assert t.cancelled() and fut.cancelled()
        assert log == ["cancelled at the await", "finally"], log

    run(main())


def test_cancellation_caught_by_the_coroutine_lets_it_finish():
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        async def coro():
            try:
                await fut
            except asyncio.CancelledError:
                await asyncio.sleep(0)               # may await again while handling it
                return "cleaned up"

        t = start_eager(coro())
        await one_step()
        t.cancel()
        assert await t == "cleaned up" and not t.cancelled()

    run(main())


def test_cancel_inside_wait_for_reaches_the_coroutine():
    """The executor's ``wait_for(task, order timeout)`` cancels a place() that waits in its own
    ``wait_for`` on the answer: the CancelledError reaches the inner await."""
    async def main():
        loop = asyncio.get_running_loop()
        never = loop.create_future()
        log = []

        async def coro():
            try:
                await asyncio.wait_for(never, 10.0)
            except asyncio.CancelledError:
                log.append("cancelled")
                raise

        t = start_eager(coro())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(t, 0.02)
        assert t.cancelled() and never.cancelled() and log == ["cancelled"]

    run(main())


def test_closing_the_task_wrapper_closes_the_coroutine():
    """A task left pending when the loop shuts down: asyncio.run cancels it, the coroutine's
    cleanup runs."""
    log = []

    async def coro(fut):
        try:
            await fut
        finally:
            log.append("finally")

    async def main():
        fut = asyncio.get_running_loop().create_future()
        t = start_eager(coro(fut))
        await one_step()
        return t

    t = asyncio.run(main())
    assert t.cancelled() and log == ["finally"]


def test_context_variables_of_the_caller_are_seen_in_every_step():
    var = contextvars.ContextVar("var", default="unset")

    async def main():
        seen = []

        async def coro():
            seen.append(var.get())
            await asyncio.sleep(0)
            seen.append(var.get())

        var.set("caller")
        t = start_eager(coro())
        await t
        assert seen == ["caller", "caller"]

    run(main())


def test_many_eager_tasks_interleave_and_all_complete():
    async def main():
        loop = asyncio.get_running_loop()
        gates = [loop.create_future() for _ in range(50)]
        order = []

        async def coro(i):
            order.append(("start", i))
            v = await gates[i]
            await asyncio.sleep(0)
            return i + v

        tasks = [start_eager(coro(i)) for i in range(50)]
        assert order == [("start", i) for i in range(50)]          # each first step ran at once
        for i in reversed(range(50)):
            gates[i].set_result(1000)
        assert await asyncio.gather(*tasks) == [i + 1000 for i in range(50)]

    run(main())

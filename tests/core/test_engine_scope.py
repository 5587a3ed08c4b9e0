"""The call scope on its own (``cncf.engine.scope``): origin and delivery.

A real event loop and real futures; what is checked is the scope's promise
to the engine and the boundaries: a delivery registered at send time is
delivered whatever unwinds, a force never hits an operation that ended, the
caller is released at the cancellation while the operation goes on, and the
caller's own cancellation never cancels the operation's future.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from cncf.boundaries.base import Interrupted
from cncf.call import CancelTier
from cncf.engine.scope import CallScope, CancelReason


def _run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_a_cancel_releases_the_caller_at_once_and_the_operation_goes_on() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scope = CallScope("c1", 0.2, loop)
        scope.running = True
        delivered: list[str] = []
        done = scope.operation_future()
        scope.attach(done, cooperative=lambda: delivered.append("cooperative"), force=lambda: delivered.append("force"))
        waiter = asyncio.ensure_future(scope.wait(done))
        await asyncio.sleep(0.01)
        t0 = loop.time()
        assert scope.cancel(CancelReason.RUN_DEADLINE)
        with pytest.raises(Interrupted):
            await waiter
        assert loop.time() - t0 < 0.05
        assert delivered == ["cooperative"] and scope.tier is CancelTier.COOPERATIVE
        assert not done.done() and not scope.ended  # the operation goes on
        assert not scope.cancel(CancelReason.CALLER)  # one reason, recorded first
        await asyncio.sleep(0.3)
        assert delivered == ["cooperative", "force"] and scope.tier is CancelTier.KILLED
        done.set_exception(RuntimeError("killed"))
        await scope.finished
        assert scope.ended and isinstance(scope.operation_error(), RuntimeError)

    _run(main())


def test_a_force_never_hits_an_operation_that_ended_within_the_grace() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scope = CallScope("c2", 0.1, loop)
        scope.running = True
        forced: list[bool] = []
        done = scope.operation_future()
        scope.attach(done, cooperative=lambda: None, force=lambda: forced.append(True))
        ended: list[CallScope] = []
        assert scope.cancel(CancelReason.CALLER)
        scope.on_end(ended.append)
        done.set_result("late value")
        assert ended == [scope]  # ended the moment its future completed
        await asyncio.sleep(0.2)
        assert forced == [] and scope.tier is CancelTier.COOPERATIVE
        assert not scope.cancel(CancelReason.SHUTDOWN)  # over: nothing to cancel

    _run(main())


def test_the_callers_own_cancellation_never_cancels_the_operation() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scope = CallScope("c3", 1.0, loop)
        scope.running = True
        done = scope.operation_future()
        scope.attach(done, cooperative=lambda: None, force=lambda: None)
        caller = asyncio.ensure_future(scope.wait(done))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert not done.cancelled() and not done.done()
        assert scope.cancel(CancelReason.CALLER)  # the engine records it; delivery follows
        done.set_result(1)
        assert scope.ended

    _run(main())


def test_a_value_that_arrived_first_is_returned() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scope = CallScope("c4", 1.0, loop)
        scope.running = True
        done = scope.operation_future()
        scope.attach(done)
        done.set_result(42)
        assert not scope.cancel(CancelReason.RUN_DEADLINE)  # it ended: nothing to cancel
        assert await scope.wait(done) == 42

    _run(main())


def test_a_waiting_call_is_woken_with_its_reason() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scope = CallScope("c5", 1.0, loop)
        scope.waiter = loop.create_future()
        assert scope.cancel(CancelReason.WAIT_DEADLINE)
        assert scope.waiter.cancelled() and scope.reason is CancelReason.WAIT_DEADLINE
        assert scope.tier is None  # nothing ran: no tier
        assert not scope.started

    _run(main())

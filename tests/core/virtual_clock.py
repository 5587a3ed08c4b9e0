"""A virtual clock for asyncio (Trio's ``MockClock`` idea, autojump flavour).

``loop.time()`` returns virtual seconds; whenever the loop would block waiting
for its next timer and no I/O is ready, virtual time jumps straight to that
timer.  The engine keeps every deadline on ``loop.time()``, so its timing
logic (wait and run deadlines, their interaction with the caller's overall
timeout) can be tested to the exact virtual second, instantly and without
flakiness.  Only for components that do no real I/O (the inline form): a
worker's pipe that is merely slow would look idle and let time jump.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def virtual_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    now = [1000.0]
    selector = loop._selector  # type: ignore[attr-defined]
    real_select = selector.select

    def select(timeout: float | None = None) -> Any:
        if timeout is None or timeout <= 0:
            return real_select(timeout)
        ready = real_select(0)
        if not ready:
            now[0] += timeout  # nothing to do until the next timer: jump to it
        return ready

    selector.select = select
    loop.time = lambda: now[0]  # type: ignore[method-assign]
    return loop


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    loop = virtual_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()

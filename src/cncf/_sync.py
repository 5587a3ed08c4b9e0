"""The synchronous facade's engine room: one private event loop, driven from
any number of caller threads, and a pump that turns it for jobs between calls.

The problem.  ``Hub`` is a synchronous facade over ``AsyncHub``, whose
components, pipes and gates belong to one event loop.  A permanent loop
thread would make every call pay a thread hop (~65 µs here: twice the whole
budget of an inline call); running the loop in the caller's thread under one
lock (the first design) made calls from different threads run one after
another across the whole hub, policies notwithstanding.

The design: a *conductor's baton*.  Whoever holds the baton turns the loop.

* A caller that finds the baton free takes it and runs its own coroutine in
  its own thread — eagerly when the call is settled (see :func:`drive`), so a
  one-thread program pays no loop round and no hop.
* A caller that finds the baton taken submits its coroutine to the loop
  (``run_coroutine_threadsafe``, which wakes the loop through its self-pipe)
  and sleeps until either its result is there or the baton is free.  The
  holder's loop runs the submitted call alongside its own, so neither waits
  for the other unless the policy says so.
* When the holder's own call ends it puts the baton down and wakes the
  sleepers; one whose call is not done yet picks it up and turns the loop
  until its call is done, and so on.  Nobody ever sleeps while its call needs
  the loop and nobody turns it.

Cost: a thread that holds the baton pays two condition-variable sections per
call (~1 µs); a second thread pays one hop while the first one drives.

Jobs need the loop to turn while no caller is there (a retry back-off, a
queued job): the :class:`Pump` thread takes the baton only while the job
system is busy and nobody holds it, and puts it down when the work is done
or when ``close`` asks.  Callers arriving meanwhile are served by its loop
like any second thread.
"""

from __future__ import annotations

import asyncio
import asyncio.events as asyncio_events
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["LoopDriver", "Pump", "drive"]


def drive(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on ``loop`` in this thread, eagerly.

    The coroutine first runs synchronously, without a Task and without turning
    the loop (Python 3.12's eager task factory, done by hand for 3.11): an
    inline call, or a worker call whose reply the channel's short spin already
    caught, finishes there and pays no loop round.  At its first real
    suspension the rest is handed to ``run_until_complete``.
    """
    asyncio_events._set_running_loop(loop)
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        asyncio_events._set_running_loop(None)
    return loop.run_until_complete(_resume(coro, yielded))


async def _resume(coro: Coroutine[Any, Any, T], yielded: Any) -> T:
    """Continue a coroutine that :func:`drive` started, as a Task would."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)  # a bare yield: give the loop one turn
            elif not yielded.done():
                yielded._asyncio_future_blocking = False
                await asyncio.wait((yielded,))
        except BaseException as exc:  # the resuming task was cancelled: deliver it inside
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            continue
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


class LoopDriver:
    """One private loop that any thread may drive (see module docstring)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._cv = threading.Condition(threading.Lock())  # not an RLock: the fast path pays two sections
        self._holder: int | None = None  # ident of the thread turning the loop
        self._waiters = 0  # threads sleeping in _join (guarded by _cv)
        self.pump: Pump | None = None

    @property
    def holder(self) -> int | None:
        return self._holder

    def run(self, coro: Coroutine[Any, Any, T], eager: Callable[[], bool] | None = None) -> T:
        """Run ``coro`` on the loop and return its result, from any thread.

        ``eager``: asked only when this thread gets the baton; True lets the
        call start without a loop round (see :func:`drive`).
        """
        if asyncio_events._get_running_loop() is not None:
            coro.close()
            raise RuntimeError("cncf.Hub cannot be used inside a running event loop; use cncf.AsyncHub there")
        me = threading.get_ident()
        with self._cv:
            free = self._holder is None
            if free:
                self._holder = me
        if free:
            try:
                if eager is not None and eager():
                    return drive(self.loop, coro)
                return self.loop.run_until_complete(coro)
            finally:
                self._put_down()
        return self._join(coro, me)

    def _join(self, coro: Coroutine[Any, Any, T], me: int) -> T:
        """Hand ``coro`` to the thread turning the loop; take over if it stops."""
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        fut.add_done_callback(self._wake)
        try:
            with self._cv:
                self._waiters += 1
                try:
                    while not fut.done() and self._holder is not None:
                        self._cv.wait()
                finally:
                    self._waiters -= 1
                if fut.done():
                    return fut.result()
                self._holder = me
            try:
                self.loop.run_until_complete(asyncio.wrap_future(fut, loop=self.loop))
            finally:
                self._put_down()
            return fut.result()
        except BaseException:
            if not fut.done():  # KeyboardInterrupt while waiting: the call is abandoned
                self.loop.call_soon_threadsafe(fut.cancel)
            raise

    def _wake(self, _fut: concurrent.futures.Future[Any]) -> None:
        with self._cv:
            self._cv.notify_all()

    def start_pump(self, busy: Callable[[], bool], until_idle: Callable[[], Awaitable[None]]) -> Pump:
        """Keep the loop turning between calls while ``busy()`` (see :class:`Pump`);
        idempotent: the first pump installed stays."""
        if self.pump is None:
            self.pump = Pump(self, busy, until_idle)
        self.pump.poke()
        return self.pump

    def _put_down(self) -> None:
        # No lock needed to drop the baton: a sleeper reads ``_holder`` under
        # ``_cv`` and is inside ``wait()`` (which released it) before we can
        # take ``_cv`` to wake it.
        self._holder = None
        if self._waiters:
            with self._cv:
                self._cv.notify_all()
        pump = self.pump
        if pump is not None:
            pump.poke()

    def take(self, me: int, stop: Callable[[], bool]) -> bool:
        """Take the baton when it is free; False when ``stop()`` says to give up."""
        with self._cv:
            while self._holder is not None:
                if stop():
                    return False
                self._cv.wait(0.05)
            if stop():
                return False
            self._holder = me
            return True

    def release(self, me: int) -> None:
        """Put down the baton ``take`` gave ``me`` and wake whoever waits for it
        (no pump poke: the pump is the one putting it down)."""
        with self._cv:
            if self._holder == me:
                self._holder = None
            self._cv.notify_all()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule ``fn`` on the loop from any thread (it runs at the loop's next turn)."""
        if self._holder == threading.get_ident():
            self.loop.call_soon(fn, *args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


class Pump:
    """Turns the driver's loop on a thread of its own while ``busy()`` and no
    caller holds the baton; stops by itself when ``until_idle()`` returns.

    Args:
        driver: the facade's loop driver.
        busy: is there job work that needs the loop to turn?
        until_idle: a coroutine function that returns once ``busy()`` is false.
    """

    def __init__(self, driver: LoopDriver, busy: Callable[[], bool], until_idle: Callable[[], Awaitable[None]]) -> None:
        self._driver = driver
        self._busy = busy
        self._until_idle = until_idle
        self._cv = threading.Condition()
        self._closed = False
        self._wanted = False
        self._stop: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None
        self.turns = 0  # how many times the pump took the loop (for tests)

    @property
    def running(self) -> bool:
        """Is the pump thread turning the loop right now?"""
        return self._stop is not None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poke(self) -> None:
        """The baton was put down: turn the loop if job work is outstanding."""
        if self._closed or not self._busy():
            return
        with self._cv:
            self._wanted = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name="cncf-hub-pump", daemon=True)
                self._thread.start()
            self._cv.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the pump and join its thread (the caller must not hold the baton)."""
        with self._cv:
            self._closed = True
            stop = self._stop
            self._cv.notify()
        if stop is not None:
            with contextlib.suppress(RuntimeError):
                self._driver.loop.call_soon_threadsafe(_set, stop)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _main(self) -> None:
        me = threading.get_ident()
        while True:
            with self._cv:
                while not self._wanted and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                self._wanted = False
            if not self._driver.take(me, lambda: self._closed):
                continue
            loop = self._driver.loop
            try:
                if not loop.is_closed() and self._busy():
                    self.turns += 1
                    self._stop = loop.create_future()
                    loop.run_until_complete(self._turn(self._stop))
            except BaseException:  # noqa: BLE001 - the pump must never kill the process
                pass
            finally:
                self._stop = None
                self._driver.release(me)

    async def _turn(self, stop: asyncio.Future[None]) -> None:
        idle = asyncio.ensure_future(self._until_idle())
        try:
            await asyncio.wait({stop, idle}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not idle.done():
                idle.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await idle


def _set(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)

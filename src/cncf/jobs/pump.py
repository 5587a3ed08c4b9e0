"""LoopPump: keeps the synchronous ``Hub``'s loop turning while jobs need it.

The problem.  ``Hub`` runs its private event loop in the *caller's* thread,
and only for the duration of each method (``run_until_complete``): a hop to a
loop thread would cost ~65 µs on every call, twice the whole budget of an
inline call.  But then nothing runs between two sync calls, and a queued job
would not progress while the user sleeps.

The fix.  A pump thread runs the same loop, with the same lock, but only
while there is outstanding job work (an attempt running, a retry back-off
pending, a ready job for a loaded component) *and* no sync call holds the
loop.  Handover, on each sync call:

1. ``pause()`` — mark the pump unwanted and, if it is turning the loop,
   resolve its stop future from outside (``call_soon_threadsafe``);
2. take the lock — the pump releases it as soon as ``run_until_complete``
   returns; tasks it left pending simply continue under the caller;
3. run the call in the caller's thread, as before;
4. after it, ``resume()`` if the job system is busy; the pump takes the loop
   once the caller has been silent for ``LINGER`` (2 ms).

A sync call that finds no job work pays two attribute reads: no thread, no
hop.  With job work outstanding, a call after a pause pays one handover
(~0.13 ms here); calls in a burst pay none (the pump lingers), and the jobs
progress inside those calls' own turns of the loop meanwhile.  The pump
stops by itself when the job system becomes idle (it awaits
``until_idle()``), and ``close()`` stops and joins the thread, so a closed hub
leaves no thread behind.

Alternatives considered: a permanent loop thread (a hop on every call — the
cost we avoid); running the loop only in ``wait`` (jobs stall while the user
sleeps, which is the bug); a second loop for jobs (a component's instance,
its pipes and its gate belong to one loop, so jobs could not share them).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

LINGER = 0.002  # seconds of caller silence before the pump takes the loop


def _set(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class LoopPump:
    """Runs ``loop`` in a background thread while ``busy()`` (see module doc).

    Args:
        loop: the facade's private loop.
        lock: the facade's lock; whoever runs the loop holds it.
        busy: is there work that needs the loop to turn?
        until_idle: a coroutine function that returns once ``busy()`` is false.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, lock: Any, busy: Callable[[], bool],
                 until_idle: Callable[[], Awaitable[None]]) -> None:
        self._loop = loop
        self._lock = lock
        self._busy = busy
        self._until_idle = until_idle
        self._cv = threading.Condition()
        self._wanted = False
        self._closed = False
        self._stop: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None
        self._resumed = 0.0
        self.turns = 0  # how many times the pump took the loop (for tests)

    @property
    def running(self) -> bool:
        """Is the pump thread turning the loop right now?"""
        return self._stop is not None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pause(self) -> None:
        """Before taking the lock: ask the pump to give the loop back."""
        with self._cv:
            self._wanted = False
            stop = self._stop
        if stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs
                self._loop.call_soon_threadsafe(_set, stop)

    def resume(self) -> None:
        """After releasing the lock: let the pump turn the loop while work remains."""
        with self._cv:
            if self._closed:
                return
            self._wanted = True
            self._resumed = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name="cncf-hub-pump", daemon=True)
                self._thread.start()
            self._cv.notify()

    def maybe_resume(self) -> None:
        if self._busy():
            self.resume()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the pump and join its thread (the caller must not hold the lock)."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self.pause()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    # ------------------------------------------------------------ the thread

    def _main(self) -> None:
        while True:
            with self._cv:
                while not self._wanted and not self._closed:
                    self._cv.wait()
                # Linger: a caller who comes back within LINGER keeps the loop
                # without paying a handover (a burst of sync calls pays none).
                while self._wanted and not self._closed:
                    left = self._resumed + LINGER - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
                if self._closed:
                    return
                if not self._wanted:
                    continue
            with self._lock:
                with self._cv:
                    if not self._wanted or self._closed or self._loop.is_closed():
                        continue  # a sync call came first
                    stop = self._stop = self._loop.create_future()
                try:
                    self.turns += 1
                    idle = self._loop.run_until_complete(self._drive(stop))
                except BaseException:  # noqa: BLE001 - the pump must never kill the process
                    idle = True
                finally:
                    with self._cv:
                        self._stop = None
                        if idle:
                            self._wanted = False

    async def _drive(self, stop: asyncio.Future[None]) -> bool:
        """Turn the loop until asked to stop (False) or the work is done (True)."""
        idle = asyncio.ensure_future(self._until_idle())
        try:
            await asyncio.wait({stop, idle}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not idle.done():
                idle.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await idle
        return not stop.done()

"""The call scope: one call's deadline, why it was cancelled, and how far that went.

The engine opens a :class:`CallScope` when it admits a call.  Trio's split is
the model: the scope is where a cancellation *originates* (``CancelScope``:
the caller's own cancellation, the wait and run deadlines, ``cancel(id)``,
unload and shutdown all call :meth:`CallScope.cancel` with a
:class:`CancelReason`), and the delivery is registered by whoever can deliver
it (``CancelStatus``): a boundary calls :meth:`CallScope.attach` at the moment
it sends the request, with the future that ends when the operation ends and
two callbacks — how to ask the component to stop (cooperative) and how to stop
it at any price (force).

What this buys:

* **A delivery cannot be lost.**  The deliveries live on the scope, not in a
  map that the caller's unwinding ``CancelledError`` clears: a caller that
  gives up still has its cooperative cancel delivered.
* **A force never hits a call that already ended.**  The force is armed as a
  timer (``cancel_grace``) and disarmed the moment the operation's future
  completes.
* **The caller gets its Outcome at its deadline.**  The caller awaits the
  operation through :meth:`CallScope.wait`, which returns the operation's
  result, or raises :class:`Interrupted` as soon as the scope is cancelled —
  whatever the component does.  The operation goes on for the instance until
  it ends or is forced; :attr:`CallScope.tier` then holds the tier it finally
  took, and :attr:`CallScope.finished` resolves.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cncf.boundaries.base import Interrupted
from cncf.call import CancelTier

T = TypeVar("T")

__all__ = ["CallScope", "CancelReason", "Interrupted"]

_KILLED = CancelTier.KILLED


class CancelReason(enum.Enum):
    """Why a call was cancelled, recorded when the cancellation is requested."""

    CALLER = "caller"  # the caller's task was cancelled, or cancel(id)
    WAIT_DEADLINE = "wait deadline"  # wait_timeout, or the call's deadline while it waited
    RUN_DEADLINE = "run deadline"  # run_timeout, or the call's deadline while it ran
    UNLOAD = "unload"
    SHUTDOWN = "shutdown"


class CallScope:
    """One admitted call's cancellation state (see the module docstring).

    ``deadline`` is absolute (``loop.time()``); ``reason`` and ``tier`` are
    None until a cancellation is requested; ``started`` is true once the
    request crossed to the component (:meth:`attach`), ``ended`` once the
    operation's future completed (or the operation was forced away).
    """

    __slots__ = (
        "call_id",
        "grace",
        "deadline",
        "reason",
        "tier",
        "waiter",
        "running",
        "admitted",
        "parked",
        "executed",
        "returned",
        "started",
        "ended",
        "_loop",
        "_done",
        "_cooperative",
        "_force",
        "_force_tier",
        "_timer",
        "_wake",
        "_finished",
        "_on_end",
        "_idle",
    )

    def __init__(
        self,
        call_id: str,
        grace: float,
        loop: asyncio.AbstractEventLoop,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        self.call_id = call_id
        self.grace = grace
        self.deadline: float | None = None
        self.reason: CancelReason | None = None
        self.tier: CancelTier | None = None
        self.waiter: asyncio.Future[Any] | None = None  # set while the call waits at the gate
        self.running = False  # the engine handed the call to the boundary
        # Measurement stamps (time.perf_counter_ns, never the loop's clock): admitted,
        # parked at the gate, handed to the boundary, the boundary returned.
        self.admitted = time.perf_counter_ns()
        self.parked: int | None = None
        self.executed: int | None = None
        self.returned: int | None = None
        self.started = False
        self.ended = False
        self._loop = loop
        self._done: asyncio.Future[Any] | None = None
        self._cooperative: Callable[[], None] | None = None
        self._force: Callable[[], None] | None = None
        self._force_tier = _KILLED
        self._timer: asyncio.TimerHandle | None = None
        self._wake: asyncio.Future[None] | None = None
        self._finished: asyncio.Future[None] | None = None
        self._on_end: list[Callable[[CallScope], None]] | None = None
        self._idle = idle

    def idle(self) -> bool:
        """Do one piece of the hub's deferred work (telling a deferred listener of
        an earlier call, e.g. recording its span) while the boundary would
        otherwise spin-wait for a reply; False when there is none."""
        work = self._idle
        return work is not None and work()

    # ------------------------------------------------------------ origin

    def cancel(self, reason: CancelReason) -> bool:
        """Record ``reason`` and deliver: wake the waiter, or (running) deliver the
        cooperative cancel, release the caller at once and arm the force after
        ``grace``.  False when there is nothing to cancel (not admitted yet,
        already over, or already cancelled)."""
        if self.reason is not None or self.ended:
            return False
        if self.waiter is not None:
            self.reason = reason
            self.waiter.cancel()
            return True
        if not self.running:
            return False
        self.reason = reason
        self.tier = CancelTier.COOPERATIVE
        if self._done is not None:
            self._deliver()
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)
        return True

    @property
    def due(self) -> bool:
        """Whether the caller's Outcome is due before the operation ends."""
        return self.reason is not None and not self.ended

    # ---------------------------------------------------------- delivery

    def operation_future(self) -> asyncio.Future[Any]:
        """A future for the boundary to complete when the operation ends; its
        completion ends the scope at once (no extra loop round before the caller
        resumes: the caller waits on the scope, not on this future)."""
        fut = _OperationFuture(loop=self._loop)
        fut._scope = self
        return fut

    def attach(
        self,
        done: asyncio.Future[Any],
        *,
        cooperative: Callable[[], None] | None = None,
        force: Callable[[], None] | None = None,
        force_tier: CancelTier = CancelTier.KILLED,
    ) -> None:
        """The request was sent: ``done`` completes when the operation ends;
        ``cooperative`` asks the component to stop; ``force`` stops it at any
        price after the grace period (``force_tier``: what that is called)."""
        self.started = True
        self._done, self._cooperative, self._force = done, cooperative, force
        self._force_tier = force_tier
        if not isinstance(done, _OperationFuture) or done._scope is not self:
            done.add_done_callback(self._operation_ended)
        elif done.done():
            self.end()
        if self.reason is not None and not self.ended:
            self._deliver()

    async def wait(self, done: asyncio.Future[T]) -> T:
        """The operation's result, unless the scope is cancelled first: then
        :class:`Interrupted` (the operation goes on; ``done`` is untouched).
        The caller's own cancellation cancels only this wait, never ``done``."""
        if not done.done():
            if self.reason is not None:
                raise Interrupted
            wake = self._wake = self._loop.create_future()
            if done is not self._done:
                done.add_done_callback(self._wake_up)
            try:
                await wake
            finally:
                self._wake = None
            if not done.done():
                raise Interrupted
        return done.result()

    def _wake_up(self, _: object = None) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _deliver(self) -> None:
        if self._cooperative is not None:
            try:
                self._cooperative()
            except Exception:  # delivering must never take the hub down
                pass
        if self._force is not None and self._timer is None:
            self._timer = self._loop.call_later(self.grace, self._force_now)

    def _force_now(self) -> None:
        self._timer = None
        if self.ended or self._force is None:
            return
        self.tier = self._force_tier  # recorded first: forcing may end the operation at once
        try:
            self._force()
        except Exception:
            pass

    def _operation_ended(self, done: asyncio.Future[Any]) -> None:
        if not done.cancelled():
            done.exception()  # retrieved: nobody may be left to read it
        self.end()

    def end(self) -> None:
        """The operation is over (its future completed, or it never crossed):
        disarm the force, wake the caller, resolve :attr:`finished`."""
        if self.ended:
            return
        self.ended = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cooperative = self._force = None
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)
        finished = self._finished
        if finished is not None and not finished.done():
            finished.set_result(None)
        callbacks = self._on_end
        if callbacks:
            self._on_end = None
            for cb in callbacks:
                cb(self)

    def reopen(self) -> None:
        """Run the call once more (its replica was lost under it; the deadline stays the
        call's): the previous attempt has ended (or never crossed) and nothing was cancelled."""
        assert self.reason is None and (self.ended or not self.started)
        self.tier = None
        self.waiter = None
        self.running = self.started = self.ended = False
        self.executed = None
        self._done = self._cooperative = self._force = None
        self._force_tier = _KILLED
        self._timer = self._wake = self._finished = None
        self._on_end = None

    # ------------------------------------------------------------- results

    @property
    def finished(self) -> asyncio.Future[None]:
        """Resolves when the operation has ended (at once if it never started)."""
        if self._finished is None:
            self._finished = self._loop.create_future()
            if self.ended:
                self._finished.set_result(None)
        return self._finished

    def on_end(self, callback: Callable[[CallScope], None]) -> None:
        """Run ``callback(scope)`` when the operation ends (now, if it has)."""
        if self.ended:
            callback(self)
        elif self._on_end is None:
            self._on_end = [callback]
        else:
            self._on_end.append(callback)

    def operation_error(self) -> BaseException | None:
        """How the attached operation ended, when it ended in an exception."""
        done = self._done
        if done is None or not done.done() or done.cancelled():
            return None
        return done.exception()


class _OperationFuture(asyncio.Future[Any]):
    """An operation's future that ends its scope the moment it completes
    (a done callback would cost the caller one more loop round)."""

    __slots__ = ("_scope",)  # set by CallScope.operation_future (no Python __init__ per call)
    _scope: CallScope

    def set_result(self, result: Any, /) -> None:
        _future_set_result(self, result)
        self._scope.end()  # a result needs no retrieval (see _operation_ended)

    def set_exception(self, exception: type | BaseException, /) -> None:
        _future_set_exception(self, exception)
        self._scope._operation_ended(self)

    def cancel(self, msg: Any | None = None) -> bool:
        cancelled = _future_cancel(self, msg)
        if cancelled:
            self._scope._operation_ended(self)
        return cancelled


_future_set_result = asyncio.Future.set_result
_future_set_exception = asyncio.Future.set_exception
_future_cancel = asyncio.Future.cancel

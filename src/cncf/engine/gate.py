"""The per-instance admission gate: a fair queue that can be broken.

Serialize calls need the instance to themselves; concurrent calls share it up
to their declared limit.  Waiters are served strictly in arrival order (a
concurrent call never overtakes a serialize call that arrived first), a
waiter that gives up removes itself, and when the instance dies
:meth:`Gate.break_` wakes every waiter at once with the Observation that
names the death — nobody is left hanging.  This is Trio's ``ParkingLot``
idea (abortable park, ``break_lot``, frozen statistics) specialised to a
reader/writer admission rule.

The uncontended path (:meth:`Gate.try_enter`) allocates nothing and never
yields to the event loop: most calls pay a few attribute updates.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses

from cncf.observation import Failed, Observation


@dataclasses.dataclass(frozen=True, slots=True)
class GateStatistics:
    running: int
    exclusive: bool
    waiting: int
    admitted_total: int


class _Waiter:
    __slots__ = ("exclusive", "limit", "future")

    def __init__(self, exclusive: bool, limit: int, future: asyncio.Future[None]) -> None:
        self.exclusive = exclusive
        self.limit = limit
        self.future = future


class Gate:
    __slots__ = ("_running", "_exclusive", "_waiters", "_admitted", "_broken")

    def __init__(self) -> None:
        self._running = 0
        self._exclusive = False
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._admitted = 0
        self._broken: Observation | None = None

    def _fits(self, exclusive: bool, limit: int) -> bool:
        if exclusive:
            return self._running == 0
        return not self._exclusive and self._running < limit

    def try_enter(self, exclusive: bool, limit: int) -> bool:
        """Enter at once if nobody waits and the rule allows it."""
        if (
            not self._waiters
            and self._broken is None
            and (self._running == 0 if exclusive else not self._exclusive and self._running < limit)  # _fits
        ):
            self._running += 1
            self._exclusive = exclusive
            self._admitted += 1
            return True
        return False

    def park(self, exclusive: bool, limit: int) -> asyncio.Future[None]:
        """Join the line; the future resolves when admitted, or fails with
        ``Failed`` if the gate breaks.  Cancel it (or :meth:`unpark`) to give up."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._broken is not None:
            fut.set_exception(Failed(self._broken))
            return fut
        self._waiters.append(_Waiter(exclusive, limit, fut))
        self._wake()
        return fut

    def unpark(self, fut: asyncio.Future[None]) -> None:
        """Leave the line after giving up; returns the slot if it was granted."""
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            self.leave()
            return
        if not fut.done():
            fut.cancel()
        self._wake()  # the head may have been blocked behind this waiter

    def leave(self) -> None:
        self._running -= 1
        if self._running == 0:
            self._exclusive = False
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            head = waiters[0]
            if head.future.done():
                waiters.popleft()
                continue
            if not self._fits(head.exclusive, head.limit):
                return
            waiters.popleft()
            self._running += 1
            self._exclusive = head.exclusive
            self._admitted += 1
            head.future.set_result(None)

    def break_(self, observation: Observation) -> None:
        """Wake every waiter with ``observation``; later ``enter`` calls fail too
        until :meth:`reset`."""
        self._broken = observation
        waiters, self._waiters = self._waiters, collections.deque()
        for w in waiters:
            if not w.future.done():
                w.future.set_exception(Failed(observation))

    def reset(self) -> None:
        """A fresh instance: accept waiters again (running calls of the old one
        still leave normally)."""
        self._broken = None

    def statistics(self) -> GateStatistics:
        return GateStatistics(self._running, self._exclusive, len(self._waiters), self._admitted)

    @property
    def running(self) -> int:
        return self._running

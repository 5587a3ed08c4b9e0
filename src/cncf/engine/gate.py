"""The admission gate: a fair queue in front of one or more replicas, that can be broken.

A gate admits calls to its *slots*, one slot per replica it serves (one slot
for an ordinary component, or for each replica of a keyed one; every replica
of a stateless component shares one gate).  Serialize calls need a slot to
themselves; concurrent calls share it up to their declared limit.  Waiters
are served strictly in arrival order (a concurrent call never overtakes a
serialize call that arrived first), a waiter that gives up removes itself,
and :meth:`Gate.break_` wakes every waiter at once with the Observation that
names why — nobody is left hanging.  This is Trio's ``ParkingLot`` idea
(abortable park, ``break_lot``, frozen statistics) specialised to a
reader/writer admission rule over several slots.

Routing: a call goes to the open slot with the fewest calls in flight where
it fits (the hub sees every call, so the counts are exact); a tie goes to the
slot admitted to most recently — the warm one.  A random tie-break (a
power-of-two choice) was measured first: a sequential echo over 4 replicas
then cost 2.1× one replica's, every call waking a worker whose caches had
gone cold; the warm slot costs nothing (docs/replicas.md).  A call waits
only when no open slot fits it.  A slot is *closed* while its replica is lost or restarting: its
calls in flight leave normally, nobody new is admitted to it, and it opens
again (waking the line) when its replica is back.

The uncontended path (:meth:`Gate.try_enter`) allocates nothing and never
yields to the event loop: most calls pay a few attribute updates.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from typing import Any

from cncf.observation import Failed, Observation


@dataclasses.dataclass(frozen=True, slots=True)
class GateStatistics:
    running: int
    exclusive: bool
    waiting: int
    admitted_total: int


class Slot:
    """One replica's admission state (owned by its gate)."""

    __slots__ = ("running", "exclusive", "admitted", "open", "owner", "last")

    def __init__(self, owner: Any) -> None:
        self.last = 0  # the gate's admission count when this slot last admitted (warmth)
        self.running = 0
        self.exclusive = False
        self.admitted = 0
        self.open = True
        self.owner = owner  # the Replica this slot admits to

    def fits(self, exclusive: bool, limit: int) -> bool:
        if not self.open:
            return False
        if exclusive:
            return self.running == 0
        return not self.exclusive and self.running < limit


class _Waiter:
    __slots__ = ("exclusive", "limit", "future")

    def __init__(self, exclusive: bool, limit: int, future: asyncio.Future[Slot]) -> None:
        self.exclusive = exclusive
        self.limit = limit
        self.future = future


class Gate:
    __slots__ = ("_slots", "_waiters", "_broken", "_one", "_tick")

    def __init__(self, owners: list[Any] | None = None) -> None:
        self._slots: list[Slot] = [Slot(o) for o in (owners or [None])]
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._broken: Observation | None = None
        self._one: Slot | None = self._slots[0] if len(self._slots) == 1 else None
        self._tick = 0

    # -------------------------------------------------------------- slots

    @property
    def slots(self) -> list[Slot]:
        return self._slots

    @property
    def single(self) -> Slot | None:
        """The slot of a one-replica gate (None when it has several)."""
        return self._one

    def add(self, owner: Any, *, open: bool = True) -> Slot:
        """A new replica (scaling out): a new slot, open at once or at :meth:`open`."""
        slot = Slot(owner)
        slot.open = open
        self._slots.append(slot)
        self._one = self._slots[0] if len(self._slots) == 1 else None
        if open:
            self._wake()
        return slot

    def remove(self, slot: Slot) -> None:
        """A replica retired (scaling in): nobody is admitted to it any more."""
        slot.open = False
        if slot in self._slots and len(self._slots) > 1:
            self._slots.remove(slot)
            self._one = self._slots[0] if len(self._slots) == 1 else None

    def close(self, slot: Slot) -> None:
        """The slot's replica is lost or restarting: admit nobody new to it."""
        slot.open = False

    def open(self, slot: Slot) -> None:
        """The slot's replica is back: admit to it again (the line first)."""
        slot.open = True
        self._wake()

    def _choose(self, exclusive: bool, limit: int) -> Slot | None:
        one = self._one
        if one is not None:
            return one if one.fits(exclusive, limit) else None
        best: Slot | None = None
        for s in self._slots:
            if s.fits(exclusive, limit) and (
                best is None or s.running < best.running or (s.running == best.running and s.last > best.last)
            ):
                best = s
        if best is not None:
            self._tick += 1
            best.last = self._tick
        return best

    # ---------------------------------------------------------- admission

    def try_enter(self, exclusive: bool, limit: int) -> Slot | None:
        """Enter at once if nobody waits and a slot fits: the slot, else None."""
        if self._waiters or self._broken is not None:
            return None
        slot = self._one
        if slot is not None:  # one replica: the common case, without a call
            if not slot.open or (slot.running if exclusive else (slot.exclusive or slot.running >= limit)):
                return None
            slot.running += 1
            slot.exclusive = exclusive
            slot.admitted += 1
            return slot
        slot = self._choose(exclusive, limit)
        if slot is not None:
            slot.running += 1
            slot.exclusive = exclusive
            slot.admitted += 1
        return slot

    def park(self, exclusive: bool, limit: int) -> asyncio.Future[Slot]:
        """Join the line; the future resolves to the slot admitted to, or fails with
        ``Failed`` if the gate breaks.  Cancel it (or :meth:`unpark`) to give up."""
        fut: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        if self._broken is not None:
            fut.set_exception(Failed(self._broken))
            return fut
        self._waiters.append(_Waiter(exclusive, limit, fut))
        self._wake()
        return fut

    def unpark(self, fut: asyncio.Future[Any]) -> None:
        """Leave the line after giving up; returns the slot if it was granted."""
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            self.leave(fut.result())
            return
        if not fut.done():
            fut.cancel()
        self._wake()  # the head may have been blocked behind this waiter

    def leave(self, slot: Slot) -> None:
        slot.running -= 1
        if slot.running == 0:
            slot.exclusive = False
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            head = waiters[0]
            if head.future.done():
                waiters.popleft()
                continue
            slot = self._choose(head.exclusive, head.limit)
            if slot is None:
                return
            waiters.popleft()
            slot.running += 1
            slot.exclusive = head.exclusive
            slot.admitted += 1
            head.future.set_result(slot)

    def move_waiters(self, other: Gate) -> None:
        """Hand this line to ``other`` (a new generation took over): each waiter keeps
        its place and is admitted to one of ``other``'s slots."""
        waiters, self._waiters = self._waiters, collections.deque()
        other._waiters.extend(w for w in waiters if not w.future.done())
        other._wake()

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

    @property
    def broken(self) -> Observation | None:
        return self._broken

    # -------------------------------------------------------------- views

    def statistics(self, slot: Slot | None = None) -> GateStatistics:
        """The whole gate's figures, or one slot's (its waiters are the gate's line)."""
        waiting = len(self._waiters)
        if slot is not None:
            return GateStatistics(slot.running, slot.exclusive, waiting, slot.admitted)
        return GateStatistics(
            sum(s.running for s in self._slots),
            any(s.exclusive for s in self._slots),
            waiting,
            sum(s.admitted for s in self._slots),
        )

    @property
    def running(self) -> int:
        one = self._one
        if one is not None:
            return one.running
        return sum(s.running for s in self._slots)

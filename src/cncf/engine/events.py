"""What the engine tells observers: one event per finished call.

Observers (metrics, the dashboard, traces) subscribe through
``AsyncHub.subscribe``; they see every call from every reception, job
attempts included, because the event is emitted where the engine returns
its Outcome.

Times are measurements, not deadlines: nanosecond stamps of
``time.perf_counter_ns`` (CLOCK_MONOTONIC), one read per phase, whatever the
event loop (uvloop's ``loop.time()`` is millisecond-grained, and a 0.7 ms call
measured with it reads as 0 or 1 ms).  Deadlines and timers stay on the loop's
clock.  The phases of a call, each an exact interval:

* **admission** — from ``admitted_ns`` (the engine took the call) until it
  joined its component's gate: parked there (``parked_ns``) or let through at
  once (``executed_ns``); a load or restart in progress is waited for here;
* **wait** — parked at the gate, until it was handed to its boundary
  (``executed_ns``); 0 when it was let through at once;
* **execution** — the boundary hop itself: from ``executed_ns`` (handed to the
  boundary: the request is encoded and sent) until the boundary returned
  (``returned_ns``) or the caller was released at its deadline.

``ended_ns`` is when the Outcome was delivered; :attr:`CallFinished.duration`
is admission to Outcome.  To place a stamp on the wall clock, add
:func:`wall_offset_ns` (read once per event by the tracer).

A call whose Outcome was delivered before its operation ended (a deadline, a
cancellation: the caller is answered at once, the escalation goes on for the
instance) is reported once, when the operation has ended: ``tier`` is then the
tier the cancellation finally took (``cooperative``: it stopped or ended within
``cancel_grace``; ``killed``: its worker was killed; ``abandoned``: an inline
thread runs on) and ``settled_ns`` the time the operation ended.  A call that was
never cancelled has ``tier`` None and ``settled_ns`` equal to ``ended_ns``.  A call
whose caller's own task was cancelled has no Outcome for its caller; its event
carries the ``cancelled`` Observation the engine recorded.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from cncf.call import ActionCall
from cncf.outcome import Outcome

__all__ = ["ENGINE_HOOKS", "CallFinished", "wall_offset_ns"]

#: Called with every new ActionEngine (``cncf.telemetry.enable()`` without a hub
#: instruments every hub made afterwards through it).
ENGINE_HOOKS: list[Callable[[Any], None]] = []


def wall_offset_ns() -> int:
    """What to add to a ``perf_counter_ns`` stamp to get ``time.time_ns`` (now)."""
    return time.time_ns() - time.perf_counter_ns()


@dataclasses.dataclass(slots=True)
class CallFinished:
    """One finished call (read-only for listeners: not frozen, since a frozen
    dataclass's ``__init__`` costs a microsecond more a call, every call observed)."""

    call: ActionCall
    outcome: Outcome
    admitted_ns: int  # the engine took the call
    ended_ns: int  # the Outcome was delivered
    tier: str | None = None  # the tier a cancellation finally took (None: not cancelled)
    settled_ns: int | None = None  # the operation ended (None: as ``ended_ns``)
    executed_ns: int | None = None  # handed to its boundary (None: it never ran)
    parked_ns: int | None = None  # parked at its gate (None: it never waited there)
    returned_ns: int | None = None  # its boundary returned (None: it never ran)

    @property
    def duration(self) -> float:
        """Seconds from admission to the Outcome."""
        return (self.ended_ns - self.admitted_ns) / 1e9

    @property
    def admission_ns(self) -> int:
        """Admitted until parked at the gate or handed to the boundary."""
        joined = self.parked_ns if self.parked_ns is not None else self.executed_ns
        return (joined if joined is not None else self.ended_ns) - self.admitted_ns

    @property
    def wait_ns(self) -> int:
        """Parked at the gate until handed to the boundary (0: let through at once)."""
        if self.parked_ns is None:
            return 0
        return (self.executed_ns if self.executed_ns is not None else self.ended_ns) - self.parked_ns

    @property
    def execution_ns(self) -> int:
        """The boundary hop: handed to the boundary until it returned (0: it never ran)."""
        if self.executed_ns is None:
            return 0
        return (self.returned_ns if self.returned_ns is not None else self.ended_ns) - self.executed_ns

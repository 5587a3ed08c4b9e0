"""What the engine tells observers: one event per finished call.

Observers (metrics, the dashboard, traces) subscribe through
``AsyncHub.subscribe``; they see every call from every reception, job
attempts included, because the event is emitted where the engine returns
its Outcome.  Times are the engine's loop clock (``loop.time()``).

A call whose Outcome was delivered before its operation ended (a deadline, a
cancellation: the caller is answered at once, the escalation goes on for the
instance) is reported once, when the operation has ended: ``tier`` is then the
tier the cancellation finally took (``cooperative``: it stopped or ended within
``cancel_grace``; ``killed``: its worker was killed; ``abandoned``: an inline
thread runs on) and ``settled`` the time the operation ended.  A call that was
never cancelled has ``tier`` None and ``settled`` equal to ``ended``.  A call
whose caller's own task was cancelled has no Outcome for its caller; its event
carries the ``cancelled`` Observation the engine recorded.
"""

from __future__ import annotations

import dataclasses

from cncf.call import ActionCall
from cncf.outcome import Outcome

__all__ = ["CallFinished"]


@dataclasses.dataclass(frozen=True, slots=True)
class CallFinished:
    call: ActionCall
    outcome: Outcome
    started: float  # admission (the call's ``submitted`` time)
    ended: float  # when the Outcome was delivered
    tier: str | None = None  # the tier a cancellation finally took (None: not cancelled)
    settled: float | None = None  # when the operation ended (None: as ``ended``)
    executed: float | None = None  # when the call was handed to its boundary (None: it never ran)

    @property
    def duration(self) -> float:
        return self.ended - self.started

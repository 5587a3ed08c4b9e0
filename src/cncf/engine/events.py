"""What the engine tells observers: one event per finished call.

Observers (metrics, the dashboard, traces) subscribe through
``AsyncHub.subscribe``; they see every call from every reception, job
attempts included, because the event is emitted where the engine returns
its Outcome.  Times are the engine's loop clock (``loop.time()``).
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
    ended: float

    @property
    def duration(self) -> float:
        return self.ended - self.started

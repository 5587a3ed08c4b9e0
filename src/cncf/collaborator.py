"""The component-facing API (Python): what a component may import.

A component needs nothing from cncf to be callable — its public methods are
its operations.  It may use this module to see cooperative cancellation, to
return a failure with its own code, or to receive calls itself by
implementing :class:`Collaborator`.

The classes are the worker runtime's own (``cncf.worker.runtime``), so one
component behaves identically inline and in a worker process.  Inside a
worker whose environment has ``cncf`` installed, this module re-exports the
running worker's API (``_cncf_worker``) so cancellation stays visible there;
elsewhere (the inline form) the running call is tracked per task.
"""

from __future__ import annotations

import contextvars
import sys
from typing import Any

__all__ = ["Cancelled", "Collaborator", "Failure", "cancelled", "check_cancelled", "current_call"]

_worker: Any = sys.modules.get("_cncf_worker")

if _worker is not None:  # inside a worker process: the worker's own state
    Cancelled = _worker.Cancelled
    Failure = _worker.Failure
    Collaborator = _worker.Collaborator
    cancelled = _worker.cancelled
    check_cancelled = _worker.check_cancelled
    current_call = _worker.current_call
else:
    from cncf.worker.runtime import Cancelled, Collaborator, Failure  # noqa: F401

    class CallState:
        """The running call as the component sees it: ``id``, ``operation``, ``cancelled``."""

        __slots__ = ("id", "operation", "cancelled")

        def __init__(self, call_id: str, operation: str) -> None:
            self.id = call_id
            self.operation = operation
            self.cancelled = False

    _current: contextvars.ContextVar[CallState | None] = contextvars.ContextVar("cncf_call", default=None)

    def current_call() -> CallState | None:  # type: ignore[misc]
        """The call being executed (id, operation), or None outside a call."""
        return _current.get()

    def cancelled() -> bool:  # type: ignore[misc]
        """True once the hub has asked the running call to stop."""
        state = _current.get()
        return state is not None and state.cancelled

    def check_cancelled() -> None:  # type: ignore[misc]
        """Raise :class:`Cancelled` if the running call was asked to stop."""
        state = _current.get()
        if state is not None and state.cancelled:
            raise Cancelled(f"call {state.id} was cancelled")

"""The component-facing API (Python): what a component may import.

A component needs nothing from cncf to be callable — its public methods are
its operations.  It may use this module to see cooperative cancellation, to
reject its arguments (:class:`Rejected`: the caller's fault, HTTP 400; any
other exception is the component's own failure, ``raised``, HTTP 500), to
return a failure with its own code (:class:`Failure`), or to receive calls
itself by implementing :class:`Collaborator`.

Every name is the worker runtime's own (``cncf.worker.runtime``), so one
component behaves identically inline and in a worker process: inside a
worker whose environment has ``cncf`` installed this module re-exports the
running worker's API (``_cncf_worker``); in the hub's process (the inline
form) it is the runtime module imported as a library, whose running-call
lookup the inline boundary points at a context variable.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Cancelled", "Collaborator", "Failure", "Rejected", "cancelled", "check_cancelled", "current_call"]

_api: Any = sys.modules.get("_cncf_worker")
if _api is None:
    from cncf.worker import runtime as _api

CallState = _api.CallState
Cancelled = _api.Cancelled
Failure = _api.Failure
Rejected = _api.Rejected
Collaborator = _api.Collaborator
cancelled = _api.cancelled
check_cancelled = _api.check_cancelled
current_call = _api.current_call

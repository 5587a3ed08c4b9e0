"""The component-facing API (Python): what a component may import.

A component needs nothing from cncf to be callable — its public methods are
its operations.  It may use this module to see cooperative cancellation, to
return a failure with its own code, or to receive calls itself by
implementing :class:`Collaborator`.  Inside a worker process (the ``python``
form) the worker runtime provides a module with exactly these names when the
component's environment has no ``cncf`` installed, so the same component code
runs inline and out of process.
"""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["Cancelled", "Collaborator", "Failure", "cancelled", "check_cancelled", "current_call"]


class Cancelled(Exception):
    """Raised by :func:`check_cancelled`; the hub reports the call as ``cancelled``."""


class Failure(Exception):
    """Raise to fail an operation with the component's own code and attributes.

    The Observation is ``operation_failed`` with ``attributes['component_code']``.
    """

    def __init__(self, code: str, message: str = "", **attributes: Any) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.attributes = attributes


class Collaborator:
    """Base for components that receive ActionCalls themselves.

    Override :meth:`operations` (names, or a class attribute ``OPERATIONS``)
    and :meth:`invoke`.
    """

    OPERATIONS: tuple[str, ...] = ()

    def operations(self) -> list[str]:
        return list(self.OPERATIONS)

    def invoke(self, operation: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError


class CallState:
    """What the running call looks like from inside the component."""

    __slots__ = ("id", "operation", "cancelled")

    def __init__(self, call_id: str, operation: str) -> None:
        self.id = call_id
        self.operation = operation
        self.cancelled = False


_current: contextvars.ContextVar[CallState | None] = contextvars.ContextVar("cncf_call", default=None)


def current_call() -> CallState | None:
    """The call being executed (id, operation), or None outside a call."""
    return _current.get()


def cancelled() -> bool:
    """True once the hub has asked the running call to stop."""
    state = _current.get()
    return state is not None and state.cancelled


def check_cancelled() -> None:
    """Raise :class:`Cancelled` if the running call was asked to stop."""
    if cancelled():
        raise Cancelled("the call was cancelled")

"""ActionCall: the one thing that executes component logic.

Relative timeouts are converted once, at admission, into absolute deadlines
on the hub's monotonic clock (``ExecutionContext``); nothing downstream passes
"seconds left" around.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cncf._frozen import twin
from cncf.policy import ResolvedPolicy

_ids = itertools.count(1)
_prefix = f"{os.getpid():x}"


def new_call_id() -> str:
    return f"c-{_prefix}-{next(_ids)}"


class CancelTier(enum.StrEnum):
    """How far a cancellation had to go (style rule 6: report the tier)."""

    COOPERATIVE = "cooperative"  # the component saw the request and stopped
    ABANDONED = "abandoned"  # inline: the caller was released; the operation's thread runs on, unobserved
    KILLED = "killed"  # the worker was killed after the grace period; the instance restarts
    LATE = "late"  # the operation could not be interrupted and returned past its deadline


@dataclasses.dataclass(frozen=True, slots=True)
class Arguments:
    """Positional and named arguments together (``hub.call(sel, Arguments((1,), {"x": 2}))``);
    a plain dict or list is the usual way to pass one kind."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """A resolved operation address: ``component.service.operation``."""

    component: str
    service: str
    operation: str
    text: str = dataclasses.field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", f"{self.component}.{self.service}.{self.operation}")

    def __str__(self) -> str:
        return self.text


@dataclasses.dataclass(frozen=True, slots=True)
class ExecutionContext:
    """Who asked, and by when it must be done (absolute ``loop.time()`` values)."""

    correlation_id: str
    caller: str = "api"
    deadline: float | None = None  # the caller's overall deadline (wait + run)
    submitted: float = 0.0
    idempotency_key: str | None = None  # queue policy: a second submission with it returns the first job
    # W3C trace context of the call's span when telemetry is on (cncf.telemetry): sent to the component
    traceparent: str | None = None
    tracestate: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ActionCall:
    """One execution request.  ``args``/``kwargs`` are the opaque payload: the
    engine never looks inside them; the boundary hands them to the component."""

    id: str
    target: Target
    policy: ResolvedPolicy
    context: ExecutionContext
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def job_attempt(
        cls,
        call_id: str,
        target: Target,
        policy: ResolvedPolicy,
        *,
        correlation_id: str,
        idempotency_key: str | None,
        timeout: float | None,
        now: float,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> ActionCall:
        """One attempt of a stored job (caller ``"job"``): the job's relative
        ``timeout`` becomes this attempt's absolute deadline, counted from ``now``
        (the hub loop's clock) — admitted afresh on each attempt."""
        deadline = now + timeout if timeout else None
        context = ExecutionContext(correlation_id, "job", deadline, now, idempotency_key=idempotency_key)
        return cls(
            id=call_id, target=target, policy=policy, context=context, args=tuple(args), kwargs=dict(kwargs or {})
        )


_MutableContext = twin(ExecutionContext)
_MutableCall = twin(ActionCall)


def make_context(
    correlation_id: str, caller: str, deadline: float | None, submitted: float, idempotency_key: str | None
) -> ExecutionContext:
    """``ExecutionContext(...)`` for the engine's hot path, 4× cheaper (see ``cncf._frozen``)."""
    c = _MutableContext()
    c.correlation_id = correlation_id
    c.caller = caller
    c.deadline = deadline
    c.submitted = submitted
    c.idempotency_key = idempotency_key
    c.traceparent = None
    c.tracestate = None
    c.__class__ = ExecutionContext
    context: ExecutionContext = c
    return context


def make_call(
    call_id: str,
    target: Target,
    policy: ResolvedPolicy,
    context: ExecutionContext,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> ActionCall:
    """``ActionCall(...)`` for the engine's hot path, 5× cheaper (see ``cncf._frozen``)."""
    c = _MutableCall()
    c.id = call_id
    c.target = target
    c.policy = policy
    c.context = context
    c.args = args
    c.kwargs = kwargs
    c.__class__ = ActionCall
    call: ActionCall = c
    return call

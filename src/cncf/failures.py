"""Foreign failures into Observations, hub side: the one converter.

Style rule 12: a foreign failure is converted once, where it enters the hub.
Three kinds enter, and each has one function here:

* a worker's **failure record** (``{"code", "message", "attributes",
  "cause"}``, docs/wire-protocol.md) — :func:`from_record`; the inline form
  builds the same record with the worker runtime's own rules
  (:func:`component_failure`, :func:`component_exception`), so a component
  fails identically inline and in a worker;
* a Python **exception in the hub's process** — :func:`cause_of` makes its
  cause record (type, message, stack, nested cause following ``__cause__``
  then an unsuppressed ``__context__``), which the site puts on the
  Observation of its own code;
* a **defect of the hub itself** — :func:`internal_error`, which never
  raises: when even describing the exception fails it still returns a
  minimal ``internal_error`` Observation (style rule 8, the Temporal
  activity worker's rule; Temporal's ``_failure_converter.py`` is the model
  for the whole module).

What the codes mean and how they are classified is the registry's
(``cncf.observation``); which code a failure gets is decided by the site that
knows (a boundary, the engine), never guessed here from exception types —
except for component code run in the hub's process, which is classified by
the worker runtime's rules (``cncf.worker.runtime.classify``).
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Mapping
from typing import Any

from cncf.observation import Cause, Code, Observation, Stage
from cncf.worker import runtime as _rt

__all__ = [
    "cause_of",
    "component_exception",
    "component_failure",
    "from_record",
    "internal_error",
    "observation_cause",
]

_MAX_DEPTH = 8  # nested causes kept (the worker runtime and the JVM host keep as many)


def cause_of(exc: BaseException, _depth: int = 0) -> Cause:
    """The cause record of an exception raised in the hub's process, following
    ``__cause__`` then an unsuppressed ``__context__``; never raises (an
    exception whose ``str`` fails is still described by its type)."""
    t = type(exc)
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a component's broken __str__
        message = f"<unprintable {t.__qualname__}>"
    try:
        stack = "".join(traceback.format_exception(t, exc, exc.__traceback__, chain=False))
    except Exception:  # noqa: BLE001 - formatting calls the same broken __str__
        stack = ""
    nested = exc.__cause__
    if nested is None and not exc.__suppress_context__:
        nested = exc.__context__
    return Cause(
        type=f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__,
        message=message,
        stack=stack,
        cause=cause_of(nested, _depth + 1) if nested is not None and _depth < _MAX_DEPTH else None,
    )


def observation_cause(obs: Observation | None) -> Cause | None:
    """An earlier Observation as the cause of a later one (a crash behind an
    ``instance_lost_waiting``, a kill behind a ``timed_out``)."""
    if obs is None:
        return None
    return Cause(
        type=f"Observation:{obs.code.value}",
        message=obs.message,
        stack=obs.cause.stack if obs.cause else "",
        cause=obs.cause,
    )


def from_record(record: Mapping[str, Any], stage: Stage) -> Observation:
    """A worker's failure record as an Observation at ``stage`` (kept when the
    code may occur there).  A code the hub does not know is the component's own
    ``operation_failed``, with the code in ``attributes['component_code']``."""
    raw = str(record.get("code") or "")
    attributes = dict(record.get("attributes") or {})
    try:
        code = Code(raw)
    except ValueError:
        code = Code.OPERATION_FAILED
        attributes.setdefault("component_code", raw)
    cause = record.get("cause")
    obs = Observation.of(
        code,
        str(record.get("message") or raw or "the worker reported a failure"),
        stage=stage,
        cause=Cause.from_dict(cause) if isinstance(cause, Mapping) else None,
    )
    # The component's attributes, whatever their names ("stage", "target"): data, never keywords.
    return dataclasses.replace(obs, attributes=attributes)


def component_failure(
    code: str,
    message: str,
    exc: BaseException | None,
    stage: Stage,
    attributes: Mapping[str, Any] | None = None,
) -> Observation:
    """A failure of component code run in the hub's process (the inline form),
    recorded by the worker runtime's rules — the record a worker would send —
    and converted like one."""
    return from_record(_rt.failure_record(code, message, exc, attributes), stage)


def component_exception(exc: BaseException, stage: Stage, what: str) -> Observation:
    """What component code run in the hub's process raised, mapped as the
    worker runtime maps it: a ``Failure`` is ``operation_failed`` with its own
    code, a ``Rejected`` is ``rejected``, the rest by type (``raised``,
    ``exit_requested``, ...).  For an operation's call: failures while loading
    and constructing are the runtime's ``LoadFailed`` records."""
    if isinstance(exc, _rt.Failure):
        attributes = dict(exc.attributes)
        attributes["component_code"] = exc.code
        return component_failure("operation_failed", f"{what} failed: {exc.message}", exc, stage, attributes)
    code, message = _rt.classify(exc, what)
    return component_failure(code, message, exc, stage)


def internal_error(
    exc: BaseException, failed: str, *, stage: Stage, target: str = "", call_id: str = ""
) -> Observation:
    """A defect of the hub (``internal_error``): ``failed`` says what failed, in
    words ("the hub failed while handling x.y"), and the message adds the
    exception.  Never raises: if describing ``exc`` fails, a minimal
    Observation without its description is returned."""
    try:
        return Observation.of(
            Code.INTERNAL_ERROR,
            f"{failed}: {exc!r}",
            stage=stage,
            target=target,
            call_id=call_id,
            cause=cause_of(exc),
        )
    except BaseException:  # noqa: BLE001 - even describing the exception failed
        spec = Code.INTERNAL_ERROR.spec
        return Observation(
            Code.INTERNAL_ERROR,
            stage if stage in Code.INTERNAL_ERROR.stages else spec.stage,
            f"{failed}: internal error",
            spec.category,
            spec.symptom,
            spec.cause_kind,
            spec.retryable,
            target,
            call_id,
        )

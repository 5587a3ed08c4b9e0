"""Execution policies and their resolution across levels.

A policy may be declared at component, service and operation level; the most
specific level that sets a field wins, field by field (an operation may set
only ``run_timeout`` and inherit its service's ``policy``).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class Restart(enum.StrEnum):
    """What the supervisor does when an instance crashes."""

    NEVER = "never"  # stay crashed; calls get component_unavailable
    ON_FAILURE = "on-failure"  # restart on next use, within max_restarts per restart_period


class Mode(enum.StrEnum):
    SERIALIZE = "serialize"  # one call at a time per instance, in arrival order
    CONCURRENT = "concurrent"  # up to max_concurrency at once
    QUEUE = "queue"  # becomes a durable Job


@dataclasses.dataclass(frozen=True, slots=True)
class PolicySpec:
    """What one level declares (``None`` = inherit)."""

    policy: Mode | None = None
    max_concurrency: int | None = None
    wait_timeout: float | None = None
    run_timeout: float | None = None
    cancel_grace: float | None = None
    max_attempts: int | None = None  # queue: executions before quarantine
    http_get: bool | None = None  # safe to run on an HTTP GET (brief section 11)
    idempotent: bool | None = None  # the operation may run twice (retries of a call that may have started)

    def over(self, base: PolicySpec) -> PolicySpec:
        """This level's settings on top of ``base`` (self wins where set)."""
        return PolicySpec(
            **{
                f.name: (getattr(self, f.name) if getattr(self, f.name) is not None else getattr(base, f.name))
                for f in dataclasses.fields(PolicySpec)
            }
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    """The policy a call runs under; every field has a value."""

    mode: Mode = Mode.SERIALIZE
    max_concurrency: int = 1
    wait_timeout: float | None = None
    run_timeout: float | None = None
    cancel_grace: float = 2.0
    max_attempts: int = 3
    http_get: bool = False
    #: The operation may run twice: a ``timed_out`` / ``cancelled`` call that may have
    #: started is ``retryable`` only when this is true (brief, section 14).
    idempotent: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.mode.value,
            "max_concurrency": self.max_concurrency,
            "wait_timeout": self.wait_timeout,
            "run_timeout": self.run_timeout,
            "cancel_grace": self.cancel_grace,
            "max_attempts": self.max_attempts,
            "http_get": self.http_get,
            "idempotent": self.idempotent,
        }


DEFAULT = ResolvedPolicy()


def resolve(*levels: PolicySpec | None) -> ResolvedPolicy:
    """Resolve from the most general level to the most specific (later wins)."""
    merged = PolicySpec()
    for level in levels:
        if level is not None:
            merged = level.over(merged)
    mode = merged.policy or DEFAULT.mode
    concurrent = mode is Mode.CONCURRENT
    return ResolvedPolicy(
        mode=mode,
        # Only a concurrent operation uses the limit; the others run one at a time.
        max_concurrency=(merged.max_concurrency or 4) if concurrent else 1,
        wait_timeout=merged.wait_timeout,
        run_timeout=merged.run_timeout,
        cancel_grace=merged.cancel_grace if merged.cancel_grace is not None else DEFAULT.cancel_grace,
        max_attempts=merged.max_attempts if merged.max_attempts is not None else DEFAULT.max_attempts,
        http_get=bool(merged.http_get),
        idempotent=bool(merged.idempotent),
    )

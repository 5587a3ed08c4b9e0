"""The Job record: a queued ActionCall as the user sees it.

A Job moves through five states::

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled
      ▲                  │
      └──retry/resume────┘        queued ──cancel──▶ cancelled

``failed`` covers three distinct endings, told apart by the Outcome's code:
a non-retryable Observation (the component's own, e.g. ``raised``), a
retryable one after the last allowed attempt (``job_quarantined``, with every
attempt's Observation in ``attributes['attempts']``), and a job the store
could not resume.  Terminal states are final: a job leaves ``running`` for a
terminal state exactly once.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

from cncf.failures import observation_cause
from cncf.observation import Code, Observation, Stage
from cncf.outcome import ObservationError, Outcome


class JobState(enum.StrEnum):
    QUEUED = "queued"  # accepted and on disk; waiting for a worker (or for its back-off)
    RUNNING = "running"  # claimed by a worker of a live hub (its owner)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class JobNotFound(ObservationError, LookupError):
    """Raised by ``hub.job(job_id)`` for an id this hub's store does not hold;
    ``.observation.code`` is ``job_not_found``.  (``wait`` returns the same
    Observation as an Outcome instead, and ``cancel_job`` returns False.)"""


class JobStoreError(ObservationError):
    """Raised by ``hub.jobs()`` when the store cannot be read: a store that
    cannot be read never reads as an empty one."""


class JobStoreCorrupt(JobStoreError):
    """``home/jobs.sqlite3`` is not a readable store; ``.observation.code`` is
    ``job_store_corrupt`` and ``attributes['file']`` names the file."""


class JobStoreUnavailable(JobStoreError):
    """The store could not be opened or read just now (SQLite busy past its
    wait, PostgreSQL unreachable, a file this user cannot read);
    ``.observation.code`` is ``job_store_unavailable`` (retryable) and
    ``attributes['reason']`` says which."""


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a job that did not succeed (or was interrupted), with
    the hub that ran it (``hub``: its owner id ``PID-TOKEN@HOST``) and how it
    ended (``observation``; ``job_lost`` when that hub died while it ran)."""

    number: int
    observation: Observation
    started: float | None = None
    finished: float | None = None
    hub: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "hub": self.hub,
            "started": self.started,
            "finished": self.finished,
            "ended": self.observation.code.value,
            "observation": self.observation.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attempt:
        return cls(
            int(d.get("attempt", 0)),
            Observation.from_dict(d["observation"]),
            d.get("started"),
            d.get("finished"),
            d.get("hub"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of one job, read from the store (not a live view)."""

    id: str
    state: JobState
    target: str  # component.service.operation
    component: str
    attempts: int  # executions started so far (an interrupted one counts)
    max_attempts: int
    created: float  # wall-clock (time.time()) values
    started: float | None = None  # start of the latest attempt
    finished: float | None = None
    not_before: float | None = None  # a queued job waiting out its retry back-off
    outcome: Outcome | None = None  # set once the job is terminal
    history: tuple[Attempt, ...] = ()  # attempts that failed or were interrupted
    call_id: str = ""  # the ActionCall that submitted it
    correlation_id: str = ""
    idempotency_key: str | None = None
    caller: str = ""
    cancel_requested: bool = False
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    owner: str | None = None  # the hub running it ("PID-TOKEN@HOST"), while running
    waiting: str | None = None  # why a queued job is not running (no live hub has its component loaded)

    @property
    def done(self) -> bool:
        return self.state.terminal

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` shape of a job."""
        return {
            "id": self.id,
            "state": self.state.value,
            "target": self.target,
            "component": self.component,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "not_before": self.not_before,
            "call_id": self.call_id,
            "correlation_id": self.correlation_id,
            "idempotency_key": self.idempotency_key,
            "caller": self.caller,
            "cancel_requested": self.cancel_requested,
            "owner": self.owner,
            "waiting": self.waiting,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "outcome": self.outcome.to_dict() if self.outcome is not None else None,
            "history": [a.to_dict() for a in self.history],
        }


# ---------------------------------------------------------------------------
# Outcome <-> stored JSON
# ---------------------------------------------------------------------------


def encode_outcome(outcome: Outcome) -> str:
    """The stored form of a job's final Outcome (keeps what ``to_dict`` drops:
    the call id and the component's captured output)."""
    d: dict[str, Any] = {"call_id": outcome.call_id, "stdout": outcome.stdout, "stderr": outcome.stderr}
    if outcome.observation is not None:
        d["ok"] = False
        d["observation"] = outcome.observation.to_dict()
    else:
        d["ok"] = True
        d["value"] = outcome.value
    try:
        return json.dumps(d, allow_nan=False)
    except (TypeError, ValueError):
        # Boundaries refuse values that cannot cross as JSON, so this is a defect
        # guard: keep a readable trace rather than lose the job's ending.
        return json.dumps(d, default=repr)


def decode_outcome(text: str | None, job_id: str) -> Outcome | None:
    if not text:
        return None
    d = json.loads(text)
    call_id = str(d.get("call_id", ""))
    if d.get("ok"):
        return Outcome(
            call_id, value=d.get("value"), stdout=d.get("stdout", ""), stderr=d.get("stderr", ""), job_id=job_id
        )
    return Outcome(
        call_id,
        observation=Observation.from_dict(d["observation"]),
        stdout=d.get("stdout", ""),
        stderr=d.get("stderr", ""),
        job_id=job_id,
    )


def encode_history(history: list[Attempt] | tuple[Attempt, ...]) -> str:
    return json.dumps([a.to_dict() for a in history], default=repr)


def decode_history(text: str | None) -> tuple[Attempt, ...]:
    if not text:
        return ()
    return tuple(Attempt.from_dict(d) for d in json.loads(text))


def not_found(job_id: str, detail: str = "") -> Observation:
    return Observation.of(
        Code.JOB_NOT_FOUND,
        f"no job {job_id!r} in this hub's store"
        + (f" ({detail})" if detail else "")
        + "; check the id and the hub home (--home / CNCF_HOME)",
        stage=Stage.JOB,
        target=job_id,
        job_id=job_id,
    )


def quarantined(job_id: str, target: str, call_id: str, hist: list[Attempt], max_attempts: int) -> Outcome:
    last = hist[-1].observation if hist else None
    obs = Observation.of(
        Code.JOB_QUARANTINED,
        f"job {job_id} ({target}) failed {len(hist)} time(s) and reached max_attempts={max_attempts}; "
        f"last: {last.code.value if last else '?'}: {last.message if last else ''}",
        stage=Stage.JOB,
        target=target,
        call_id=call_id,
        cause=observation_cause(last),
        job_id=job_id,
        attempts=[a.to_dict() for a in hist],
        last_code=last.code.value if last else None,
        max_attempts=max_attempts,
    )
    return Outcome(call_id, observation=obs, job_id=job_id)

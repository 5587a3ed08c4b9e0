"""Observations: failures as values, with a closed vocabulary.

Every failure the hub can report is a member of :class:`Code`, declared once
here with its stage and the classification the original CNCF uses (category,
symptom, cause kind, retryable).  Free text lives only in ``message``; code
that reacts to failures branches on ``code`` and the classification fields.

Observations are built through :meth:`Observation.of` (never ad hoc), so the
classification always comes from the registry.  Foreign failures — a Python
exception in the hub's process, or the failure record a worker sends — are
converted once, at the boundary, by :mod:`cncf.failures` (its
:class:`Cause` records are declared here, as part of the value).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["Cause", "Code", "Failed", "Observation", "Stage"]


class Stage(enum.StrEnum):
    """Where in a call's life a failure happened."""

    LOAD = "load"
    INSTANTIATE = "instantiate"
    DISPATCH = "dispatch"
    WAIT = "wait"
    EXECUTE = "execute"
    JOB = "job"
    RECEPTION = "reception"  # a request a reception (the HTTP server) refused before it became a call


@dataclasses.dataclass(frozen=True, slots=True)
class _Spec:
    stage: Stage
    category: str
    symptom: str
    cause_kind: str
    retryable: bool
    meaning: str
    also: tuple[Stage, ...] = ()


def _s(
    stage: Stage,
    category: str,
    symptom: str,
    cause_kind: str,
    retryable: bool,
    meaning: str,
    also: tuple[Stage, ...] = (),
) -> _Spec:
    return _Spec(stage, category, symptom, cause_kind, retryable, meaning, also)


L, I, D, W, X, J, R = (
    Stage.LOAD,
    Stage.INSTANTIATE,
    Stage.DISPATCH,
    Stage.WAIT,
    Stage.EXECUTE,
    Stage.JOB,
    Stage.RECEPTION,
)


class Code(enum.StrEnum):
    """The closed set of Observation codes.

    The value is the stable wire/JSON name.  ``Code.X.spec`` gives the
    declared stage and classification.
    """

    # -- load ------------------------------------------------------------
    ARTIFACT_NOT_FOUND = "artifact_not_found"
    INVALID_ARCHIVE = "invalid_archive"
    ARCHIVE_TOO_LARGE = "archive_too_large"
    FORM_NOT_ALLOWED = "form_not_allowed"
    INVALID_MANIFEST = "invalid_manifest"
    UNSUPPORTED_FORM = "unsupported_form"
    COMPONENT_CONFLICT = "component_conflict"
    ENTRY_NOT_FOUND = "entry_not_found"
    ENTRY_AMBIGUOUS = "entry_ambiguous"
    IMPORT_FAILED = "import_failed"
    DEPENDENCY_UNRESOLVED = "dependency_unresolved"
    ENVIRONMENT_FAILED = "environment_failed"
    INTERPRETER_NOT_FOUND = "interpreter_not_found"
    WORKER_START_FAILED = "worker_start_failed"
    CLASS_NOT_FOUND = "class_not_found"
    LINKAGE_ERROR = "linkage_error"
    INITIALIZER_FAILED = "initializer_failed"
    PLACEMENT_UNAVAILABLE = "placement_unavailable"
    CLUSTER_UNREACHABLE = "cluster_unreachable"
    PLACEMENT_INFEASIBLE = "placement_infeasible"
    PLACEMENT_TIMEOUT = "placement_timeout"
    # -- instantiate -----------------------------------------------------
    CONSTRUCTOR_FAILED = "constructor_failed"
    # -- dispatch --------------------------------------------------------
    UNKNOWN_OPERATION = "unknown_operation"
    AMBIGUOUS_OPERATION = "ambiguous_operation"
    UNKNOWN_COMPONENT = "unknown_component"
    INVALID_ARGUMENTS = "invalid_arguments"
    ARGUMENTS_TOO_LARGE = "arguments_too_large"
    CALL_ID_IN_USE = "call_id_in_use"
    INVALID_POLICY = "invalid_policy"
    READINESS_FAILED = "readiness_failed"
    HANDOVER_FAILED = "handover_failed"
    COMPONENT_UNAVAILABLE = "component_unavailable"
    HUB_CLOSED = "hub_closed"
    # -- wait ------------------------------------------------------------
    WAIT_TIMEOUT = "wait_timeout"
    CANCELLED_WAITING = "cancelled_waiting"
    INSTANCE_LOST_WAITING = "instance_lost_waiting"
    # -- execute ---------------------------------------------------------
    RAISED = "raised"
    REJECTED = "rejected"
    EXIT_REQUESTED = "exit_requested"
    OPERATION_FAILED = "operation_failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    WORKER_CRASHED = "worker_crashed"
    OUT_OF_MEMORY = "out_of_memory"
    STACK_OVERFLOW = "stack_overflow"
    RESULT_NOT_SERIALISABLE = "result_not_serialisable"
    PROTOCOL_ERROR = "protocol_error"
    NODE_LOST = "node_lost"
    # -- job -------------------------------------------------------------
    ENQUEUE_FAILED = "enqueue_failed"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    JOB_STORE_CORRUPT = "job_store_corrupt"
    JOB_STORE_UNAVAILABLE = "job_store_unavailable"
    JOB_NOT_FOUND = "job_not_found"
    JOB_CANCELLED = "job_cancelled"
    JOB_LOST = "job_lost"
    JOB_QUARANTINED = "job_quarantined"
    # -- reception -------------------------------------------------------
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    ROUTE_NOT_FOUND = "route_not_found"
    BODY_TOO_LARGE = "body_too_large"
    BODY_NOT_JSON = "body_not_json"
    HUB_UNREACHABLE = "hub_unreachable"
    # -- anywhere --------------------------------------------------------
    INTERNAL_ERROR = "internal_error"

    @property
    def spec(self) -> _Spec:
        return _REGISTRY[self]

    @property
    def stage(self) -> Stage:
        return _REGISTRY[self].stage

    @property
    def stages(self) -> tuple[Stage, ...]:
        spec = _REGISTRY[self]
        return (spec.stage, *spec.also)


_ALL = (L, I, D, W, X, J, R)

_REGISTRY: dict[Code, _Spec] = {
    Code.ARTIFACT_NOT_FOUND: _s(
        L,
        "component",
        "missing",
        "configuration",
        False,
        "The artifact (folder, file, jar, wheel, zipapp) named by the target or manifest does not exist.",
    ),
    Code.INVALID_ARCHIVE: _s(
        L,
        "component",
        "corrupted",
        "format",
        False,
        "The artifact exists but is not a readable archive of its kind (a corrupt jar, wheel or zipapp).",
    ),
    Code.ARCHIVE_TOO_LARGE: _s(
        L,
        "component",
        "invalid",
        "limit",
        False,
        "The archive (zipapp, wheel) declares more bytes or members than the hub extracts (a zip bomb?); "
        "attributes name the bound and its variable (CNCF_MAX_ARCHIVE_BYTES, CNCF_MAX_ARCHIVE_FILES).",
    ),
    Code.FORM_NOT_ALLOWED: _s(
        L,
        "security",
        "invalid",
        "configuration",
        False,
        "The artifact's own manifest asks for the in-process inline form, which this reception runs only "
        'when its caller asks for it (--form inline, or form = "inline" in the hub file\'s own entry).',
    ),
    Code.INVALID_MANIFEST: _s(
        L,
        "configuration",
        "invalid",
        "format",
        False,
        "cncf.toml (or the overrides given to load) is malformed: the message names the file, key, value and what was expected.",
    ),
    Code.UNSUPPORTED_FORM: _s(
        L,
        "configuration",
        "invalid",
        "format",
        False,
        "The form could not be inferred from the artifact, or names no known execution form.",
    ),
    Code.COMPONENT_CONFLICT: _s(
        L,
        "component",
        "conflict",
        "configuration",
        False,
        "A component with the same name is already loaded in this hub.",
    ),
    Code.ENTRY_NOT_FOUND: _s(
        L,
        "component",
        "not-found",
        "configuration",
        False,
        "The entry (module, class, function or Java facade) cannot be found in the artifact.",
    ),
    Code.ENTRY_AMBIGUOUS: _s(
        L,
        "component",
        "conflict",
        "configuration",
        False,
        "No entry was named and several candidates exist (e.g. several Collaborator classes in a jar).",
    ),
    Code.IMPORT_FAILED: _s(
        L,
        "component",
        "invalid",
        "defect",
        False,
        "Importing the component's module raised (a syntax error, or an exception at import time).",
    ),
    Code.DEPENDENCY_UNRESOLVED: _s(
        L,
        "configuration",
        "missing",
        "dependency",
        False,
        "A dependency is missing at import, or the resolver could not satisfy the requirements (its own message is kept).",
    ),
    Code.ENVIRONMENT_FAILED: _s(
        L,
        "system",
        "unavailable",
        "dependency",
        True,
        "Building the component's private environment failed for a reason other than resolution.",
    ),
    Code.INTERPRETER_NOT_FOUND: _s(
        L,
        "configuration",
        "missing",
        "configuration",
        False,
        "The interpreter named by `interpreter` is neither on PATH nor an executable path.",
    ),
    Code.WORKER_START_FAILED: _s(
        L,
        "system",
        "unavailable",
        "crash",
        True,
        "The worker process (or JVM host) exited or closed its channel before its ready handshake.",
    ),
    Code.CLASS_NOT_FOUND: _s(
        L,
        "component",
        "missing",
        "dependency",
        False,
        "JVM: ClassNotFoundException or NoClassDefFoundError; a class the component needs is not in its jar.",
        (I, X),
    ),
    Code.LINKAGE_ERROR: _s(
        L,
        "component",
        "conflict",
        "dependency",
        False,
        "JVM: NoSuchMethodError or another LinkageError; the jar was built against another version of a dependency.",
        (I, X),
    ),
    Code.INITIALIZER_FAILED: _s(
        L,
        "component",
        "invalid",
        "defect",
        False,
        "JVM: ExceptionInInitializerError; a static initialiser threw.",
        (I, X),
    ),
    Code.PLACEMENT_UNAVAILABLE: _s(
        L,
        "configuration",
        "missing",
        "dependency",
        False,
        "placement = 'ray' but Ray is not installed in the hub's environment (pip install 'cncf[ray]').",
    ),
    Code.CLUSTER_UNREACHABLE: _s(
        L,
        "system",
        "unavailable",
        "resource",
        True,
        "The Ray cluster named by ray_address (or RAY_ADDRESS, or 'auto') cannot be reached, or this process is connected to another one.",
    ),
    Code.PLACEMENT_INFEASIBLE: _s(
        L,
        "configuration",
        "missing",
        "configuration",
        False,
        "No alive node of the cluster offers the resources in placement_resources; attributes list what the nodes offer.",
    ),
    Code.PLACEMENT_TIMEOUT: _s(
        L,
        "system",
        "unavailable",
        "timeout",
        True,
        "Nodes offering the resources exist but none took the component's node actor (or its worker) within the load timeout.",
    ),
    Code.CONSTRUCTOR_FAILED: _s(
        I, "component", "invalid", "defect", False, "Creating the component's live instance raised."
    ),
    Code.UNKNOWN_OPERATION: _s(
        D,
        "operation",
        "not-found",
        "configuration",
        False,
        "No operation matches the selector; the candidates are in attributes['candidates'].",
    ),
    Code.AMBIGUOUS_OPERATION: _s(
        D,
        "operation",
        "conflict",
        "configuration",
        False,
        "The selector omits the service and several services have that operation; candidates listed.",
    ),
    Code.UNKNOWN_COMPONENT: _s(
        D,
        "component",
        "not-found",
        "configuration",
        False,
        "No loaded component matches the selector's component part; loaded names listed.",
    ),
    Code.INVALID_ARGUMENTS: _s(
        D,
        "argument",
        "invalid",
        "format",
        False,
        "The arguments do not fit the operation's parameters (or no Java overload accepts them).",
    ),
    Code.ARGUMENTS_TOO_LARGE: _s(
        D,
        "argument",
        "invalid",
        "limit",
        False,
        "The arguments nest deeper or encode larger than the bound (CNCF_MAX_ARG_DEPTH, CNCF_MAX_FRAME); "
        "refused before crossing, or by the worker for that call alone.",
        (X,),
    ),
    Code.CALL_ID_IN_USE: _s(
        D,
        "argument",
        "conflict",
        "configuration",
        False,
        "The caller-supplied call_id is already used by a call in flight; ids must be unique while in flight.",
    ),
    Code.INVALID_POLICY: _s(
        D,
        "configuration",
        "invalid",
        "configuration",
        False,
        "The call asks for a policy or limit that cannot be applied (e.g. a negative timeout).",
    ),
    Code.READINESS_FAILED: _s(
        L,
        "component",
        "unavailable",
        "state",
        True,
        "An upgrade's new generation did not pass its readiness operation (the manifest's readiness): "
        "it was rolled back, the old generation serves on.",
    ),
    Code.HANDOVER_FAILED: _s(
        L,
        "component",
        "invalid",
        "state",
        True,
        "An upgrade's state hand-over failed (export_state of the old generation or import_state of the "
        "new one): it was rolled back, the old generation serves on with its state.",
    ),
    Code.COMPONENT_UNAVAILABLE: _s(
        D,
        "component",
        "unavailable",
        "crash",
        True,
        "The component is unloaded, or crashed and its restart policy forbids (or has exhausted) restarts.",
    ),
    Code.HUB_CLOSED: _s(
        D,
        "system",
        "unavailable",
        "shutdown",
        False,
        "The hub is closing or closed; the call was not admitted or was abandoned by shutdown.",
        (W, X),
    ),
    Code.WAIT_TIMEOUT: _s(
        W,
        "operation",
        "unavailable",
        "timeout",
        True,
        "The call waited longer than wait_timeout (or its overall deadline) before it could run; it never ran. "
        "Also returned by hub.wait(job_id, timeout) when the wait ends before the job does (attributes.job_state).",
    ),
    Code.CANCELLED_WAITING: _s(
        W, "operation", "unavailable", "cancellation", False, "The call was cancelled while waiting; it never ran."
    ),
    Code.INSTANCE_LOST_WAITING: _s(
        W,
        "component",
        "unavailable",
        "crash",
        True,
        "The instance crashed or was unloaded while the call waited for it; it never ran.",
    ),
    Code.RAISED: _s(
        X,
        "component",
        "invalid",
        "defect",
        False,
        "The operation raised an exception (or a Java throwable) of its own: the component's failure, not the "
        "caller's (HTTP 500); cause carries type, message and remote stack.",
    ),
    Code.REJECTED: _s(
        X,
        "argument",
        "invalid",
        "format",
        False,
        "The component rejected its arguments (cncf.collaborator.Rejected in Python, Java and Scala; a failure "
        'record with code "rejected" from a command worker): the caller\'s request is wrong (HTTP 400); the '
        "message is the component's own, its attributes are kept.",
    ),
    Code.EXIT_REQUESTED: _s(
        X,
        "component",
        "invalid",
        "defect",
        False,
        "The operation raised SystemExit / KeyboardInterrupt or another BaseException; the worker survived it.",
        (L, I),
    ),
    Code.OPERATION_FAILED: _s(
        X,
        "operation",
        "invalid",
        "defect",
        False,
        "A Collaborator returned a failure; its own code and attributes are kept in attributes.",
    ),
    Code.TIMED_OUT: _s(
        X,
        "operation",
        "unavailable",
        "timeout",
        True,
        "The call ran longer than run_timeout (or its overall deadline) and was answered at that deadline; "
        "attributes: tier (reached when answered; the final one is in the call event), started and completed "
        "(booleans: whether the operation began, whether it ended anyway). The Observation is retryable only "
        "when the operation never started or is declared idempotent.",
    ),
    Code.CANCELLED: _s(
        X,
        "operation",
        "unavailable",
        "cancellation",
        False,
        "The running call was cancelled (by its caller, unload or shutdown); attributes: tier, started, completed, "
        "as for timed_out. Retryable only when the operation never started or is declared idempotent.",
    ),
    Code.WORKER_CRASHED: _s(
        X,
        "system",
        "unavailable",
        "crash",
        True,
        "The process hosting the instance died (exit code or signal in attributes, stderr tail in cause)."
        " At stage execute, started and completed (booleans) say whether the request had crossed and that no result came back; it is then retryable only when the operation never started or is declared idempotent (a crash that may have had its effect is not retried).",
        (L, I),
    ),
    Code.OUT_OF_MEMORY: _s(
        X,
        "resource",
        "unavailable",
        "exhaustion",
        False,
        "The component exhausted its memory limit (MemoryError, OutOfMemoryError, or killed by the limit).",
        (L, I),
    ),
    Code.STACK_OVERFLOW: _s(
        X,
        "resource",
        "unavailable",
        "limit",
        False,
        "The operation overflowed its stack (RecursionError, StackOverflowError).",
        (I,),
    ),
    Code.RESULT_NOT_SERIALISABLE: _s(
        X,
        "component",
        "invalid",
        "format",
        False,
        "The operation returned a value that cannot cross the boundary as JSON (the component's failure, HTTP 500).",
    ),
    Code.PROTOCOL_ERROR: _s(
        X,
        "system",
        "corrupted",
        "format",
        True,
        "The worker's channel carried a malformed or unexpected frame; the worker is treated as crashed."
        " At stage execute, started and completed (booleans) say whether the request had crossed and that no result came back; it is then retryable only when the operation never started or is declared idempotent (a crash that may have had its effect is not retried).",
        (L, I),
    ),
    Code.NODE_LOST: _s(
        X,
        "system",
        "unavailable",
        "crash",
        True,
        "The cluster node (or its node actor) hosting a placed boundary died or stopped answering its heartbeat; attributes name node_id and node_address."
        " At stage execute, started and completed (booleans) say whether the request had crossed and that no result came back; it is then retryable only when the operation never started or is declared idempotent (a crash that may have had its effect is not retried).",
        (L, I),
    ),
    Code.ENQUEUE_FAILED: _s(
        J,
        "system",
        "unavailable",
        "resource",
        True,
        "The job could not be stored durably (store not writable, disk full, the PostgreSQL server unreachable, payload not encodable); attributes['reason'] says which (store_unreachable: the hub reconnects by itself, retry the call).",
    ),
    Code.IDEMPOTENCY_CONFLICT: _s(
        J,
        "argument",
        "conflict",
        "configuration",
        False,
        "The idempotency key was first used for another target or other arguments; attributes['job_id'] "
        "names the first job. Use a new key for a different request.",
    ),
    Code.JOB_STORE_CORRUPT: _s(
        J,
        "system",
        "corrupted",
        "format",
        False,
        "The job store (home/jobs.sqlite3) is not a readable SQLite database; attributes['file'] names it. "
        "Move it aside (jobs in it are lost unless recovered with sqlite3 .recover) and the hub starts a new one.",
    ),
    Code.JOB_STORE_UNAVAILABLE: _s(
        J,
        "system",
        "unavailable",
        "resource",
        True,
        "The job store could not be opened or read just now (SQLite busy past its 5 s wait, the PostgreSQL "
        "server unreachable, a file this user cannot read); attributes['reason'] says which. Nothing is lost "
        "and it never reads as 'no jobs': retry (the hub reopens the store on the next request).",
    ),
    Code.JOB_NOT_FOUND: _s(
        J, "operation", "not-found", "configuration", False, "No job with that id exists in this hub's store."
    ),
    Code.JOB_CANCELLED: _s(
        J, "operation", "unavailable", "cancellation", False, "The job was cancelled before it finished."
    ),
    Code.JOB_LOST: _s(
        J,
        "system",
        "unavailable",
        "crash",
        True,
        "An attempt of the job was interrupted because the hub running it died (or, on a PostgreSQL store, lost its lease); recorded in the job's history with that hub (attributes['owner']), the job is queued again (at-least-once) or quarantined after its last allowed attempt.",
    ),
    Code.JOB_QUARANTINED: _s(
        J,
        "operation",
        "invalid",
        "crash",
        False,
        "The job exhausted its attempts; each attempt's Observation is in attributes['attempts'].",
    ),
    Code.UNAUTHENTICATED: _s(
        R,
        "security",
        "missing",
        "configuration",
        False,
        "The route needs the serve token and the request carried none, or a wrong one (HTTP 401); send `Authorization: Bearer TOKEN`.",
    ),
    Code.FORBIDDEN: _s(
        R,
        "security",
        "forbidden",
        "configuration",
        False,
        "The request was refused whoever sent it (HTTP 403): its Host header names neither the bound address nor localhost (DNS rebinding), "
        "or it asks for the in-process inline form without saying so.",
    ),
    Code.ROUTE_NOT_FOUND: _s(
        R,
        "request",
        "not-found",
        "configuration",
        False,
        "No route of the HTTP reception matches the request's method and path (HTTP 404); the routes are listed in attributes['routes'].",
    ),
    Code.BODY_TOO_LARGE: _s(
        R,
        "request",
        "invalid",
        "limit",
        False,
        "The request body is larger than the reception's limit (HTTP 413); attributes give the limit.",
    ),
    Code.BODY_NOT_JSON: _s(
        R,
        "request",
        "unsupported",
        "format",
        False,
        "The request body is not JSON (HTTP 415): a call's body is a JSON object (named), array (positional) or empty.",
    ),
    Code.HUB_UNREACHABLE: _s(
        R,
        "network",
        "unavailable",
        "connection",
        True,
        "The client (cncf.connect) could not reach the serving hub, or got an answer that is not an Outcome (a proxy's error page); "
        "the call may or may not have run. attributes give the URL and the HTTP status when there was one.",
    ),
    Code.INTERNAL_ERROR: _s(
        D,
        "system",
        "invalid",
        "defect",
        False,
        "A defect in the hub itself; the call still got exactly one Outcome.",
        (L, I, W, X, J, R),
    ),
}

assert set(_REGISTRY) == set(Code), "every Code must be declared in the registry"
del _ALL


@dataclasses.dataclass(frozen=True, slots=True)
class Cause:
    """A foreign failure (Python exception, Java throwable, dead process)."""

    type: str
    message: str
    stack: str = ""
    cause: Cause | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "message": self.message, "stack": self.stack}
        if self.cause is not None:
            d["cause"] = self.cause.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Cause | None:
        if not d:
            return None
        return cls(
            type=str(d.get("type", "")),
            message=str(d.get("message", "")),
            stack=str(d.get("stack", "")),
            cause=cls.from_dict(d.get("cause")),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    """A failure as a value.

    Build with :meth:`Observation.of`; the classification fields always come
    from the code's registry entry.
    """

    code: Code
    stage: Stage
    message: str
    category: str
    symptom: str
    cause_kind: str
    retryable: bool
    target: str = ""
    call_id: str = ""
    cause: Cause | None = None
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    time: float = dataclasses.field(default_factory=time.time)

    @classmethod
    def of(
        cls,
        code: Code,
        message: str,
        *,
        stage: Stage | None = None,
        target: str = "",
        call_id: str = "",
        cause: Cause | None = None,
        **attributes: Any,
    ) -> Observation:
        spec = code.spec
        if stage is None or stage not in code.stages:
            stage = spec.stage
        return cls(
            code=code,
            stage=stage,
            message=message,
            category=spec.category,
            symptom=spec.symptom,
            cause_kind=spec.cause_kind,
            retryable=spec.retryable,
            target=target,
            call_id=call_id,
            cause=cause,
            attributes=attributes,
        )

    def with_context(self, *, target: str | None = None, call_id: str | None = None) -> Observation:
        """Fill in the call's identity where the boundary did not know it."""
        return dataclasses.replace(
            self,
            target=self.target or (target or ""),
            call_id=self.call_id or (call_id or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "stage": self.stage.value,
            "message": self.message,
            "category": self.category,
            "symptom": self.symptom,
            "cause_kind": self.cause_kind,
            "retryable": self.retryable,
            "target": self.target,
            "call_id": self.call_id,
            "cause": self.cause.to_dict() if self.cause else None,
            "attributes": dict(self.attributes),
            "time": self.time,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Observation:
        code = Code(d["code"])
        return cls(
            code=code,
            stage=Stage(d.get("stage", code.stage)),
            message=str(d.get("message", "")),
            category=str(d.get("category", code.spec.category)),
            symptom=str(d.get("symptom", code.spec.symptom)),
            cause_kind=str(d.get("cause_kind", code.spec.cause_kind)),
            retryable=bool(d.get("retryable", code.spec.retryable)),
            target=str(d.get("target", "")),
            call_id=str(d.get("call_id", "")),
            cause=Cause.from_dict(d.get("cause")),
            attributes=dict(d.get("attributes") or {}),
            time=float(d.get("time", 0.0)),
        )

    def __str__(self) -> str:
        where = f" [{self.target}]" if self.target else ""
        return f"{self.stage.value}/{self.code.value}{where}: {self.message}"


class Failed(Exception):
    """Internal carrier: a boundary or the manifest reader raises this with an
    Observation; the engine turns it into an Outcome.  Never escapes the hub."""

    def __init__(self, observation: Observation, *, stdout: str = "", stderr: str = "") -> None:
        super().__init__(str(observation))
        self.observation = observation
        self.stdout = stdout  # what the instance printed before failing, if known
        self.stderr = stderr

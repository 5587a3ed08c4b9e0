"""The Boundary contract: what every execution form provides.

A Boundary creates the isolated place where a component lives and moves calls
across it.  It does no scheduling and no policy — the ActionEngine owns
waiting, timeouts and escalation; a Boundary only executes what it is given
and reports failures as :class:`~cncf.observation.Failed` carrying an
Observation.  The engine imports this module and never a concrete form.

The shape is designed for out-of-process forms: an instance may live in a
worker process that can die, in a JVM host shared with other components, or
(later) in an actor on a cluster.  Everything here is async so a boundary can
wait on a pipe without blocking the hub.

Cancellation is not a method of the Boundary: the engine owns it, through the
call's :class:`Scope`.  When a boundary sends a request it registers on the
scope the future that ends with the operation and how to deliver a
cancellation (cooperative, and forced), then awaits the operation through
``scope.wait``, which raises :class:`Interrupted` when the caller's Outcome is
due first.  A boundary lets ``Interrupted`` (and ``CancelledError``) through
and keeps no per-call bookkeeping that unwinding could lose.

:class:`Boundary` is generic in the form's loaded-artifact and instance types,
so each form is checked against it as it is (``mypy --strict``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import asyncio

    from cncf.call import ActionCall, CancelTier
    from cncf.manifest import ComponentSpec

T = TypeVar("T")
L = TypeVar("L", bound="Loaded")
I = TypeVar("I")  # noqa: E741 - the instance type


class Interrupted(Exception):
    """Raised by :meth:`Scope.wait` when the caller's Outcome is due (the call
    was cancelled, or its deadline passed) before the operation ended; the
    operation goes on, and the scope's deliveries stop it."""


class Scope(Protocol):
    """What a boundary sees of a call's scope (``cncf.engine.scope.CallScope``)."""

    def operation_future(self) -> asyncio.Future[Any]:
        """A future to complete when the operation ends (what to pass to
        :meth:`attach`); completing it ends the scope without a loop round."""
        ...

    def attach(
        self,
        done: asyncio.Future[Any],
        *,
        cooperative: Callable[[], None] | None = None,
        force: Callable[[], None] | None = None,
        force_tier: CancelTier = ...,
    ) -> None:
        """The request was sent: ``done`` completes when the operation ends;
        ``cooperative`` asks the component to stop (the worker's flag);
        ``force`` stops it at any price after ``cancel_grace`` (kill the worker;
        ``force_tier`` names that tier, ``killed`` by default).  Neither is
        called once ``done`` has completed."""
        ...

    async def wait(self, done: asyncio.Future[T]) -> T:
        """``done``'s result, or :class:`Interrupted` when the Outcome is due
        first.  The caller's own cancellation never cancels ``done``."""
        ...

    def idle(self) -> bool:
        """Do one piece of the hub's deferred work while waiting for a reply
        without yielding (a spin); False when there is none."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Parameter:
    """A parameter of an operation, where the form can know it."""

    name: str
    kind: str = "any"  # positional | named | any | varargs | varkw
    required: bool = True
    # JSON Schema of the values it admits (of each value for varargs / varkw); None: unknown
    schema: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "kind": self.kind, "required": self.required}
        if self.schema is not None:
            d["schema"] = self.schema
        return d


@dataclasses.dataclass(frozen=True, slots=True)
class OperationInfo:
    """An operation as discovered by the boundary (before the manifest groups it)."""

    name: str
    params: tuple[Parameter, ...] | None = None
    doc: str = ""
    # an overloaded operation (JVM): each overload's parameters; a call fits one of them
    overloads: tuple[tuple[Parameter, ...], ...] | None = None
    signatures: tuple[str, ...] = ()  # the overloads' signatures, as the form writes them

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> OperationInfo:
        params = d.get("params")
        overloads = d.get("overloads")
        return cls(
            name=str(d["name"]),
            params=None if params is None else _parameters(params),
            doc=str(d.get("doc") or ""),
            overloads=tuple(_parameters(o) for o in overloads)
            if params is None and isinstance(overloads, list) and overloads
            else None,
            signatures=tuple(str(x) for x in d.get("signatures") or ()),
        )


def _parameters(params: list[dict[str, Any]]) -> tuple[Parameter, ...]:
    return tuple(
        Parameter(
            str(p["name"]),
            str(p.get("kind", "any")),
            bool(p.get("required", True)),
            p["schema"] if isinstance(p.get("schema"), dict) else None,
        )
        for p in params
    )


@dataclasses.dataclass(slots=True)
class Returned:
    """A successful invocation: the value, and what the instance printed meanwhile."""

    value: Any
    stdout: str = ""
    stderr: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Health:
    alive: bool
    pid: int | None = None
    rss_kb: int | None = None
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class BoundaryContext:
    """What the hub lends every boundary: where to cache, how to report progress."""

    home: Path  # the hub's home folder (state, caches)
    cache_dir: Path  # shared caches: environments, compiled JVM host, ...
    progress: Callable[[str], None] | None = None  # "building environment ..." lines for the CLI
    event: Callable[[str, dict[str, Any]], None] | None = None  # diagnostics (component, event)
    allow_loader_env: bool | None = None  # manifests may set LD_* (None: CNCF_ALLOW_LOADER_ENV)


class Loaded(Protocol):
    """A loaded artifact: what the boundary found in it."""

    @property
    def operations(self) -> Sequence[OperationInfo]: ...


class Instance(Protocol):
    """A live instance behind the boundary (opaque to the engine)."""


class Boundary(Protocol[L, I]):
    """One per execution form, generic in what it loads (``L``) and the live
    instance it makes (``I``).  All failures are raised as ``Failed``.

    ``invoke`` must return (or raise ``Failed``) exactly once per call, even
    when the instance dies mid-call: then it raises ``Failed`` with
    ``worker_crashed`` (or ``out_of_memory``) and a later ``health`` reports
    ``alive=False``.  A boundary is made with a :class:`BoundaryContext`.
    """

    form: str

    async def load(self, spec: ComponentSpec) -> L:
        """Load the artifact and discover its operations (stage ``load``)."""
        ...

    async def instantiate(self, loaded: L) -> I:
        """Create the live instance (stage ``instantiate``)."""
        ...

    async def invoke(
        self, instance: I, call: ActionCall, operation: str, *, concurrent: bool, scope: Scope
    ) -> Returned:
        """Run ``operation`` on the instance with the call's payload (stage
        ``execute``); register the request on ``scope`` when it is sent and
        await it through ``scope.wait`` (see the module docstring)."""
        ...

    async def unload(self, loaded: L, instance: I | None) -> None:
        """Release everything: processes reaped, loaders dropped, files removed."""
        ...

    def health(self, instance: I) -> Health:
        """Cheap liveness check; must not block."""
        ...

    async def close(self) -> None:
        """Release resources shared by all components of this form (e.g. a JVM host)."""
        ...

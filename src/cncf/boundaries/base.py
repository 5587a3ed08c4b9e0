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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cncf.call import ActionCall, CancelTier
    from cncf.manifest import ComponentSpec


@dataclasses.dataclass(frozen=True, slots=True)
class Parameter:
    """A parameter of an operation, where the form can know it."""

    name: str
    kind: str = "any"  # positional | named | any | varargs | varkw
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "required": self.required}


@dataclasses.dataclass(frozen=True, slots=True)
class OperationInfo:
    """An operation as discovered by the boundary (before the manifest groups it)."""

    name: str
    params: tuple[Parameter, ...] | None = None
    doc: str = ""

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> OperationInfo:
        params = d.get("params")
        return cls(
            name=str(d["name"]),
            params=None
            if params is None
            else tuple(
                Parameter(str(p["name"]), str(p.get("kind", "any")), bool(p.get("required", True))) for p in params
            ),
            doc=str(d.get("doc") or ""),
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


@runtime_checkable
class Boundary(Protocol):
    """One per execution form.  All failures are raised as ``Failed``.

    ``invoke`` must return (or raise ``Failed``) exactly once per call, even
    when the instance dies mid-call: then it raises ``Failed`` with
    ``worker_crashed`` (or ``out_of_memory``) and a later ``health`` reports
    ``alive=False``.
    """

    form: str

    def __init__(self, context: BoundaryContext) -> None: ...

    async def load(self, spec: ComponentSpec) -> Loaded:
        """Load the artifact and discover its operations (stage ``load``)."""
        ...

    async def instantiate(self, loaded: Loaded) -> Instance:
        """Create the live instance (stage ``instantiate``)."""
        ...

    async def invoke(self, instance: Instance, call: ActionCall, operation: str, *, concurrent: bool) -> Returned:
        """Run ``operation`` on the instance with the call's payload (stage ``execute``)."""
        ...

    async def cancel(self, instance: Instance, call: ActionCall, *, force: bool) -> CancelTier | None:
        """Deliver a cancellation: cooperative first; ``force`` stops the call at any
        price (kill the worker), after which the instance is dead.  Returns the
        tier applied when it differs from the one asked for (inline abandons a
        synchronous operation's thread at once), else None."""
        ...

    async def unload(self, loaded: Loaded, instance: Instance | None) -> None:
        """Release everything: processes reaped, loaders dropped, files removed."""
        ...

    def health(self, instance: Instance) -> Health:
        """Cheap liveness check; must not block."""
        ...

    async def close(self) -> None:
        """Release resources shared by all components of this form (e.g. a JVM host)."""
        ...

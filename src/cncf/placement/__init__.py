"""Placement: where a boundary's worker process lives.

``local`` (the default) is a child process of the hub over pipes; ``ray`` is
the same worker process, or the same JVM host, started on a node of a Ray
cluster and spoken to over TCP.  Placement is a property of where a boundary
lives, not a form: the boundaries ask :func:`spawn_worker` for their worker and
get back the same channel either way; the ActionEngine never learns which.
Ray is imported only when a component asks for it.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cncf.wire.link import WorkerLink
from cncf.wire.process import WorkerProcess

if TYPE_CHECKING:
    from cncf.manifest import ComponentSpec

T = TypeVar("T")

__all__ = ["SPREAD", "Spread", "WorkerLink", "describe", "localize", "placement_key", "release", "spawn_worker"]


@dataclasses.dataclass(frozen=True, eq=False)
class Spread:
    """Who asks for a placed worker, when it is one of several replicas: ``member``
    (the replica) of ``group`` (its component).  ``placement = "ray"`` places the
    members of a group on distinct fitting nodes while there are some, else on the
    nodes holding the fewest of them (see ``ray_cluster``); ``local`` ignores it."""

    group: object
    member: object


#: Set by a replica of a component with several replicas (or autoscaled) around its
#: load, so that the boundary's :func:`spawn_worker` needs no new argument.
SPREAD: contextvars.ContextVar[Spread | None] = contextvars.ContextVar("cncf_spread", default=None)


def placement_key(spec: ComponentSpec) -> tuple[str, ...]:
    """What makes two components' placements the same (shared JVM hosts are per placement)."""
    if spec.placement == "local":
        return ()
    resources = (f"{k}={v:g}" for k, v in sorted(spec.placement_resources.items()))
    return (spec.placement, spec.ray_address or "", *resources)


def describe(worker: WorkerLink) -> dict[str, Any]:
    """``inspect``'s ``placement``: the engine, and for a cluster the node id and address."""
    return dict(worker.placement)


async def spawn_worker(
    spec: ComponentSpec | None,
    argv: Sequence[str],
    *,
    label: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    memory_limit: int | None = None,
    start_timeout: float = 60.0,
    on_exit: Callable[[WorkerLink], None] | None = None,
    environment: tuple[str, Sequence[str], Sequence[str], str, Sequence[str]] | None = None,
    runtime_dir: str = "",
    bridged: bool = False,
    home: Path | None = None,
    tmpdir_option: str | None = None,
    ship: Sequence[str] = (),
) -> WorkerLink:
    """Start a worker where ``spec`` places it; ``Failed`` (load stage) otherwise.

    A local worker gets a private temporary folder under ``home``'s run folder
    (``TMPDIR``, and ``tmpdir_option`` + the folder after ``argv[0]``: the JVM's
    ``-Djava.io.tmpdir=``), removed when it ends; a placed one a private folder of
    its node.  ``ship`` names the artifacts (files or folders) a placed worker's
    node must have: they travel by sha256, and :func:`localize` rewrites the paths
    handed to the worker afterwards.
    """
    if spec is None or spec.placement == "local":
        return await WorkerProcess.spawn(
            argv,
            label=label,
            env=env,
            cwd=cwd,
            memory_limit=memory_limit,
            start_timeout=start_timeout,
            on_exit=on_exit,
            home=home,
            tmpdir_option=tmpdir_option,
            visible=ship,  # shown read-only where the hub's home is hidden from the worker
        )
    from cncf.placement import ray_cluster

    # The node rebuilds the environment from its own allow-list values (ray_node.node_environment).
    return await ray_cluster.spawn(
        argv,
        label=label,
        ray_address=spec.ray_address,
        resources=spec.placement_resources,
        env=env,
        cwd=cwd,
        memory_limit=memory_limit,
        start_timeout=start_timeout,
        on_exit=on_exit,
        environment=environment,
        runtime_dir=runtime_dir,
        bridged=bridged,
        ship=ship,
        home=home,
        spread=SPREAD.get(),
    )


async def localize(worker: WorkerLink, ship: Sequence[str], obj: T) -> T:
    """``obj`` (a request's artifact and paths) for where ``worker`` lives: as is for a
    local worker; for a placed one, ``ship`` pulled onto its node (by sha256, once)
    and every hub path in ``obj`` rewritten to the node's.  ``Failed`` (load stage,
    ``artifact_not_found`` naming the node) if the node cannot get them."""
    if getattr(worker, "shipment", None) is None:
        return obj
    from cncf.placement import ray_cluster
    from cncf.placement.remote import RemoteWorker

    assert isinstance(worker, RemoteWorker)
    result: T = await ray_cluster.localize(worker, ship, obj)
    return result


async def release(home: Path | None) -> None:
    """A hub's boundary closed: a hub that connected to a cluster disconnects once
    none of its placed workers is left (a process connected before keeps its
    connection).  Never imports Ray."""
    import sys

    engine = sys.modules.get("cncf.placement.ray_cluster")
    if engine is not None:
        await engine.release(home)

"""The worker-process boundary: shared by the ``python`` and ``command`` forms.

A form says *how to start* a worker (a :class:`LaunchPlan`: argv,
environment, the LOAD request); everything after that is common and lives
here once: spawning a worker (a :class:`~cncf.wire.link.WorkerLink`), the
LOAD / NEW / INVOKE exchange, attributing captured output to calls,
cooperative and forced cancellation, health, and reaping.

One worker process hosts one component instance, so a crash, ``os._exit``
or memory blow-up takes down exactly one instance; the engine restarts it by
calling ``unload`` then ``load`` + ``instantiate`` again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cncf.boundaries.base import BoundaryContext, Health, OperationInfo, Returned, Scope
from cncf.observation import Code, Failed, Observation, Stage
from cncf.placement import describe as describe_placement
from cncf.placement import localize, release, spawn_worker
from cncf.wire import channel as wire
from cncf.wire.link import WorkerLink

if TYPE_CHECKING:
    from cncf.call import ActionCall
    from cncf.manifest import ComponentSpec

#: How long an import (LOAD) or constructor (NEW) may take before the worker
#: is killed; the engine's run timeouts govern calls, not loading.
LOAD_TIMEOUT = 300.0
#: Seconds a worker's RSS figure may be reused by ``health``.
RSS_REFRESH = 0.5


@dataclasses.dataclass
class LaunchPlan:
    """How to start one worker and what to ask it to load."""

    argv: Sequence[str]
    entry: str | None
    artifact: str
    paths: Sequence[str] = ()
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    memory_limit: int | None = None
    temp_dirs: Sequence[Path] = ()  # removed on unload
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # for inspect
    # Placed on a node: (interpreter, requirements, wheels, label, build constraints) of the private
    # environment the node builds; the worker starts with that environment's python.
    environment: tuple[str, Sequence[str], Sequence[str], str, Sequence[str]] | None = None
    runtime_dir: str = ""  # the hub's worker runtime folder, mapped to the node's


@dataclasses.dataclass(eq=False)
class WorkerLoaded:
    """A component loaded into its own worker process (not yet instantiated)."""

    spec: ComponentSpec
    worker: WorkerLink
    operations: tuple[OperationInfo, ...]
    entry: str | None
    plan: LaunchPlan
    kind: str = ""  # what the worker found: class | module | object | collaborator

    @property
    def placement(self) -> dict[str, Any]:
        return describe_placement(self.worker)


@dataclasses.dataclass(eq=False)
class WorkerInstance:
    """The live instance inside a worker (calls in flight live on their scopes)."""

    loaded: WorkerLoaded
    worker: WorkerLink
    rss_kb: int | None = None  # cached: the engine checks health on every call
    rss_at: float = -1.0
    healthy: Health | None = None  # the answer while it lives, renewed with rss_kb

    def force(self) -> None:
        """Stop a call at any price: one instance per worker, so killing the worker
        stops exactly this instance."""
        worker = self.worker
        worker.kill_reason = worker.kill_reason or "cancelled by the hub"
        worker.kill()


_INSTANCE_ID = 1  # one instance per worker process


class WorkerBoundary:
    """Base of the process forms: subclasses implement :meth:`plan`."""

    form = "worker"

    def __init__(self, context: BoundaryContext) -> None:
        self.context = context
        self._workers: set[WorkerLink] = set()

    # -------------------------------------------------------------- planning

    async def plan(self, spec: ComponentSpec) -> LaunchPlan:  # pragma: no cover - abstract
        raise NotImplementedError

    def _progress(self, line: str) -> None:
        if self.context.progress is not None:
            with contextlib.suppress(Exception):
                self.context.progress(line)

    # ------------------------------------------------------------- lifecycle

    async def load(self, spec: ComponentSpec) -> WorkerLoaded:
        plan = await self.plan(spec)
        try:
            worker = await spawn_worker(
                spec,
                plan.argv,
                label=spec.name,
                env=plan.env,
                cwd=plan.cwd,
                memory_limit=plan.memory_limit,
                environment=plan.environment,
                runtime_dir=plan.runtime_dir,
                home=self.context.home,  # the worker's private TMPDIR lives in the hub's run folder
                ship=[plan.artifact, *plan.paths],  # placed: they travel to the node by sha256
            )
        except Failed:
            _remove(plan.temp_dirs)
            raise
        self._workers.add(worker)
        try:
            # Placed: the node's paths of what was shipped (as is for a local worker).
            artifact, paths, options = await localize(
                worker, [plan.artifact, *plan.paths], (plan.artifact, list(plan.paths), dict(plan.options))
            )
            reply = await wire.load(
                worker.channel,
                _INSTANCE_ID,
                entry=plan.entry,
                artifact=artifact,
                paths=paths,
                options=options,
                timeout=LOAD_TIMEOUT,
                on_timeout=lambda: failed(
                    Code.IMPORT_FAILED, f"loading {plan.entry!r} did not finish within {LOAD_TIMEOUT:g}s"
                ),
            )
        except Failed as exc:
            error = wire.attach_output(exc, worker.take_output)
            await self._reap(worker, plan)
            raise error from None
        operations = tuple(OperationInfo.from_wire(op) for op in reply.get("operations") or ())
        return WorkerLoaded(
            spec=spec,
            worker=worker,
            operations=operations,
            entry=reply.get("entry") or plan.entry,
            plan=plan,
            kind=str(reply.get("kind") or ""),
        )

    async def instantiate(self, loaded: WorkerLoaded) -> WorkerInstance:
        worker = loaded.worker
        try:
            await wire.new(
                worker.channel, _INSTANCE_ID, entry=loaded.entry, timeout=LOAD_TIMEOUT, init=loaded.spec.init
            )
        except Failed as exc:
            if exc.observation.attributes.get("limit") == "load_timeout":
                worker.kill()  # a constructor that never returns
            raise wire.attach_output(exc, worker.take_output) from None
        return WorkerInstance(loaded=loaded, worker=worker)

    async def invoke(
        self, instance: WorkerInstance, call: ActionCall, operation: str, *, concurrent: bool, scope: Scope
    ) -> Returned:
        worker = instance.worker
        try:
            pending = wire.start_invoke(
                worker.channel, _INSTANCE_ID, call, operation, concurrent=concurrent, scope=scope, force=instance.force
            )
            if pending.future.done():  # the common case: the reply came while the channel spun for it
                body = pending.result(Stage.EXECUTE)
            else:
                body = await pending.reply(Stage.EXECUTE, scope, spin=False)
        except Failed as exc:
            raise wire.attach_output(exc, worker.take_output) from None
        out, err = worker.take_output()
        return Returned(body.get("value"), out, err)

    async def unload(self, loaded: WorkerLoaded, instance: WorkerInstance | None) -> None:
        await self._reap(loaded.worker, loaded.plan)

    def health(self, instance: WorkerInstance) -> Health:
        worker = instance.worker
        if not worker.alive:
            return Health(alive=False, pid=worker.pid, detail=f"exit status {worker.returncode}")
        # dead, though the event loop has not heard yet (sync Hub idle)
        if worker.exited_unnoticed():
            return Health(alive=False, pid=worker.pid, detail="exited while idle")
        now = time.monotonic()
        healthy = instance.healthy
        if healthy is None or now - instance.rss_at > RSS_REFRESH:  # reading /proc costs more than a call
            instance.rss_kb, instance.rss_at = worker.rss_kb(), now
            healthy = instance.healthy = Health(alive=True, pid=worker.pid, rss_kb=instance.rss_kb)
        return healthy

    async def close(self) -> None:
        workers, self._workers = list(self._workers), set()
        await asyncio.gather(*(w.close(grace=1.0) for w in workers), return_exceptions=True)
        await release(self.context.home)  # the hub owns its cluster connection

    async def _reap(self, worker: WorkerLink, plan: LaunchPlan) -> None:
        self._workers.discard(worker)
        try:
            await worker.close(grace=1.0 if worker.alive else 0)
        finally:
            _remove(plan.temp_dirs)


def _remove(paths: Sequence[Path]) -> None:
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)


def resolve_executable(name: str, base_dir: Path) -> str | None:
    """An executable named by a component: a path (relative to its folder) or a
    bare name looked up on PATH.  None when there is no such executable."""
    if os.sep in name or name.startswith("."):
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name)


def failed(code: Code, message: str, **attributes: Any) -> Failed:
    """A load-stage failure raised while planning."""
    return Failed(Observation.of(code, message, stage=Stage.LOAD, **attributes))

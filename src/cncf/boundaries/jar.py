"""The ``jar`` form: components in JVM hosts, one isolated class loader each.

A JVM host (``cncf.jvm``, Java 8 level, no dependencies) is a child process
of the hub speaking the wire protocol; it hosts many components at once, each
in a ``URLClassLoader`` of its own whose parent is the platform class loader,
so a component sees the JDK, the collaborator API and its own jar — never the
host's classes nor another component's.  This module is the hub side:

* **Hosts.**  Components share a host when they ask for the same JVM options
  (``jvm_options``, and ``-Xmx`` from ``memory_limit``); ``isolation =
  "process"`` gives a component a host of its own.  Hosts start on first use
  and stop on :meth:`JarBoundary.close` (a dedicated host stops with its
  component).
* **Host death.**  ``System.exit`` in a component, a crash of the JVM, or a
  forced cancellation kills the whole host.  Every in-flight call of every
  instance in it fails with ``worker_crashed`` (from the channel), every
  instance reports ``alive=False`` from :meth:`health`, and the engine restarts
  each one per its restart policy (``unload`` then ``load`` + ``instantiate``),
  which starts a fresh host.
* **Cancellation.**  Cooperative = ``Thread.interrupt()`` of the call's thread
  (a CANCEL frame); forced = the host is killed, since a JVM cannot stop one
  thread safely.  ``isolation = "process"`` confines that to one component.

Failures are classified in the host (``Failures.java``); this side only adds
the stage.  The prior art is the application-server pattern (one loader per
deployment, parent-last isolation; Tomcat's WebappClassLoader, JBoss
Modules) with the host as a disposable process, as Gradle's worker daemons.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import math
import os
import time
import zipfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cncf import limits
from cncf.boundaries._environment_policy import worker_environment
from cncf.boundaries.base import BoundaryContext, Health, OperationInfo, Returned, Scope
from cncf.observation import Code, Failed, Observation, Stage
from cncf.placement import describe as describe_placement
from cncf.placement import localize, placement_key, release, spawn_worker
from cncf.wire import channel as wire
from cncf.wire.frames import Kind
from cncf.wire.link import WorkerLink

if TYPE_CHECKING:
    from cncf.call import ActionCall
    from cncf.jvm.build import JvmBuild
    from cncf.manifest import ComponentSpec

#: Loading runs the entry's static initialisers and NEW its constructor; the
#: engine's run timeouts govern calls, not these.
LOAD_TIMEOUT = 120.0
HOST_START_TIMEOUT = 30.0
_EVENTS_KEPT = 2000


# ---------------------------------------------------------------------------
# Hosts
# ---------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class JvmHost:
    """One JVM host process and the instances living in it."""

    key: tuple[str, ...]
    worker: WorkerLink
    dedicated: bool
    shared_key: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # (placement, JVM options)
    instances: dict[str, JarInstance | JarLoaded] = dataclasses.field(default_factory=dict)
    events: collections.deque[dict[str, Any]] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=_EVENTS_KEPT)
    )
    _rss: int | None = None
    _rss_at: float = -10.0
    last_beat: float = 0.0  # loop time of the host's last heartbeat
    watchdog: asyncio.TimerHandle | None = None
    loading: int = 0  # loads handed this shared host and not finished yet

    @property
    def placed(self) -> bool:
        """A shared host on a cluster node: it holds placement resources there while it lives."""
        return bool(self.shared_key[0])

    @property
    def remote(self) -> bool:
        """On a cluster node (shared or dedicated): its link notices a lost node by a poll."""
        return self.worker.placement.get("engine") == "ray"

    @property
    def alive(self) -> bool:
        return self.worker.alive

    @property
    def pid(self) -> int:
        return self.worker.pid

    def rss_kb(self) -> int | None:
        """The host's resident size, read at most once a second (health is on the hot path)."""
        now = time.monotonic()
        if now - self._rss_at > 1.0:
            self._rss, self._rss_at = self.worker.rss_kb(), now
        return self._rss


@dataclasses.dataclass(eq=False)
class JarLoaded:
    """A jar loaded into a host's isolated loader (not yet instantiated)."""

    spec: ComponentSpec
    host: JvmHost
    instance_id: str
    operations: tuple[OperationInfo, ...]
    entry: str | None
    entry_source: str = ""
    facade: str = ""  # collaborator | adapter
    scala: bool = False

    @property
    def placement(self) -> dict[str, Any]:
        return describe_placement(self.host.worker)


@dataclasses.dataclass(eq=False)
class JarInstance:
    """The live instance (calls in flight live on their scopes)."""

    loaded: JarLoaded
    host: JvmHost
    released: bool = False
    frozen: str = ""  # why the host found its executor threads frozen (see _component_frozen)
    healthy: Health | None = None  # the last alive answer, reused while the host's RSS figure is the same

    @property
    def instance_id(self) -> str:
        return self.loaded.instance_id


def _load_failure(code: Code, message: str, **attributes: Any) -> Failed:
    return Failed(Observation.of(code, message, stage=Stage.LOAD, **attributes))


def heartbeat_timeout() -> float:
    """Seconds without a heartbeat after which a JVM host counts as frozen (``CNCF_HEARTBEAT_TIMEOUT``)."""
    try:
        value = float(os.environ.get("CNCF_HEARTBEAT_TIMEOUT", "15"))
    except ValueError:
        return 15.0
    return value if math.isfinite(value) and value > 0 else 15.0


#: Hub settings the host reads from its environment (passed even with the allow-list).
_HOST_SETTINGS = ("CNCF_MAX_OUTPUT", "CNCF_HEARTBEAT_MS", "CNCF_HEARTBEAT_STALL_MS", "CNCF_FROZEN_MS")


def _component_frozen(host: JvmHost, body: dict[str, Any]) -> None:
    """The host found one component's executor threads frozen (a neighbour in the same
    JVM suspended them, or they deadlocked): the host has already answered its calls in
    flight with ``worker_crashed``; the instance counts as dead, so the engine reloads it
    (per its restart policy) while the host and its other components go on."""
    inst = host.instances.get(str(body.get("instance", "")))
    if isinstance(inst, JarInstance):
        inst.frozen = str(body.get("reason") or "frozen")


def _env_key(spec: ComponentSpec) -> tuple[str, ...]:
    marks = tuple(f"env:{k}={v}" for k, v in sorted(spec.env.items()))
    return (*marks, "env:inherit") if spec.inherit_env else marks


def jvm_options(spec: ComponentSpec) -> tuple[str, ...]:
    """The host's JVM options for a component: ``-Xmx`` from memory_limit, then jvm_options."""
    opts: list[str] = []
    if spec.memory_limit and not any(o.startswith("-Xmx") for o in spec.jvm_options):
        opts.append(f"-Xmx{max(spec.memory_limit // (1024 * 1024), 16)}m")
    opts.extend(spec.jvm_options)
    return tuple(opts)


class JarBoundary:
    """The ``jar`` execution form (see the module docstring)."""

    form = "jar"

    def __init__(self, context: BoundaryContext) -> None:
        self.context = context
        self._build: JvmBuild | None = None
        self._build_lock = asyncio.Lock()
        self._shared: dict[tuple[tuple[str, ...], tuple[str, ...]], JvmHost] = {}
        self._hosts: set[JvmHost] = set()
        self._spawn_locks: dict[tuple[tuple[str, ...], tuple[str, ...]], asyncio.Lock] = {}
        self._seq = itertools.count(1)
        self._reaping: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------- hosts

    async def build(self) -> JvmBuild:
        """Compile (or find cached) the host and API jars."""
        if self._build is None:
            async with self._build_lock:
                if self._build is None:
                    from cncf.jvm.build import ensure_built, is_built

                    if not is_built(self.context.cache_dir) and self.context.progress is not None:
                        with contextlib.suppress(Exception):
                            self.context.progress("compiling the JVM host (once per JDK and version)")
                    self._build = await asyncio.to_thread(ensure_built, self.context.cache_dir)
        return self._build

    async def host_for(self, spec: ComponentSpec) -> JvmHost:
        """The shared host for the component's JVM options (started if needed), or a
        dedicated one for ``isolation = "process"``."""
        options = jvm_options(spec)
        # A JVM's environment is process-wide: components share a host only when they
        # ask for the same environment too (manifest ``env`` / ``inherit_env``).
        env = worker_environment(
            spec.env,
            inherit=spec.inherit_env,
            allow_loader=self.context.allow_loader_env,
            source=spec.manifest_path or "",
            jvm_options=options,
        )
        key = (*options, *_env_key(spec))
        env.setdefault("CNCF_MAX_OUTPUT", str(limits.current().output_bytes))
        for name in _HOST_SETTINGS:
            if name in os.environ:
                env.setdefault(name, os.environ[name])
        if spec.isolation == "process":
            return await self._spawn(key, dedicated=True, label=spec.name, spec=spec, options=options, env=env)
        shared = (placement_key(spec), key)  # a shared host per node placement, JVM options and env
        lock = self._spawn_locks.setdefault(shared, asyncio.Lock())
        async with lock:
            host = self._shared.get(shared)
            if host is None or not host.alive:
                host = await self._spawn(key, dedicated=False, label="jvm-host", spec=spec, options=options, env=env)
                host.shared_key = shared
                self._shared[shared] = host
            host.loading += 1  # until load() is done with it: never retired under a load
            return host

    async def _spawn(
        self,
        key: tuple[str, ...],
        *,
        dedicated: bool,
        label: str,
        spec: ComponentSpec | None = None,
        options: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> JvmHost:
        build = await self.build()
        host: JvmHost | None = None

        def on_exit(_worker: WorkerLink) -> None:
            if host is not None:
                self._host_died(host)
                self._reap_later(host)

        worker = await spawn_worker(
            spec,
            build.host_argv(options),
            label=label,
            env=env,
            start_timeout=HOST_START_TIMEOUT,
            on_exit=on_exit,
            bridged=True,  # the host opens its descriptors through /dev/fd: pipes on the node
            home=self.context.home,  # a private temporary folder per host (TMPDIR and java.io.tmpdir)
            tmpdir_option="-Djava.io.tmpdir=",
        )
        host = JvmHost(key=key, worker=worker, dedicated=dedicated)
        worker.on_event = lambda body, h=host: self._on_event(h, body)
        self._watch(host)
        self._hosts.add(host)
        if not worker.alive:  # died between HELLO and now
            self._host_died(host)
            self._reap_later(host)
        return host

    def _reap_later(self, host: JvmHost) -> None:
        """A dead host's process is reaped and its capture files removed (the crash
        report has already been built from them)."""
        task = asyncio.get_running_loop().create_task(host.worker.close(grace=0))
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    def _watch(self, host: JvmHost) -> None:
        """The hub's half of the heartbeat (see ``Heartbeat.java``): a host whose beats
        stop, or that reports its main loop stalled, is frozen: it is ended with the
        reason, so its calls get ``worker_crashed`` and its components restart."""
        loop = asyncio.get_running_loop()
        host.last_beat = loop.time()
        timeout = heartbeat_timeout()

        def check() -> None:
            if not host.alive:
                return
            silent = loop.time() - host.last_beat
            if silent > timeout:
                self._frozen(host, f"no heartbeat from the JVM host for {silent:.1f}s (the host is frozen)")
                return
            host.watchdog = loop.call_later(min(timeout / 4, 1.0), check)

        host.watchdog = loop.call_later(min(timeout / 4, 1.0), check)

    def _frozen(self, host: JvmHost, reason: str) -> None:
        worker = host.worker
        if worker.alive:
            worker.kill_reason = worker.kill_reason or reason
            worker.kill()

    def _on_event(self, host: JvmHost, body: dict[str, Any]) -> None:
        if body.get("event") == "heartbeat":
            host.last_beat = asyncio.get_running_loop().time()
            stalled = body.get("stalled")
            if stalled:
                self._frozen(host, f"the JVM host is frozen: {stalled}")
            return
        host.events.append(body)
        if body.get("event") == "component_frozen":
            _component_frozen(host, body)
        if self.context.event is not None:
            inst = host.instances.get(str(body.get("instance", "")))
            name = (
                inst.spec.name
                if isinstance(inst, JarLoaded)
                else (inst.loaded.spec.name if isinstance(inst, JarInstance) else "jvm-host")
            )
            with contextlib.suppress(Exception):
                self.context.event(name, body)

    def _host_died(self, host: JvmHost) -> None:
        if host.watchdog is not None:
            host.watchdog.cancel()
            host.watchdog = None
        if self._shared.get(host.shared_key) is host:
            del self._shared[host.shared_key]
        self._hosts.discard(host)

    # ---------------------------------------------------------- lifecycle

    async def load(self, spec: ComponentSpec) -> JarLoaded:
        artifact = spec.artifact
        if not artifact.exists():
            raise _load_failure(
                Code.ARTIFACT_NOT_FOUND, f"the jar {str(artifact)!r} does not exist", path=str(artifact)
            )
        if artifact.is_dir() or not zipfile.is_zipfile(artifact):
            raise _load_failure(
                Code.INVALID_ARCHIVE,
                f"{str(artifact)!r} is not a jar (zip) archive; was the build interrupted?",
                path=str(artifact),
            )
        host = await self.host_for(spec)
        try:
            return await self._load_into(host, spec)
        finally:
            if not host.dedicated:
                host.loading -= 1
                if not host.instances:
                    await self._retire(host)  # a failed first load leaves no user

    async def _load_into(self, host: JvmHost, spec: ComponentSpec) -> JarLoaded:
        artifact = spec.artifact
        instance_id = f"{spec.name}#{next(self._seq)}"
        timed_out = False

        def on_timeout() -> Failed:
            nonlocal timed_out
            timed_out = True
            return _load_failure(
                Code.INITIALIZER_FAILED,
                f"loading {spec.entry or artifact.name!r} did not finish within {LOAD_TIMEOUT:g}s "
                "(a static initialiser that never returns?)",
            )

        try:
            # Placed: the jar and its classpath pulled onto the host's node, paths rewritten.
            jar_path, classpath = await localize(
                host.worker,
                [str(artifact), *map(str, spec.classpath)],
                (str(artifact), [str(p) for p in spec.classpath]),
            )
            reply = await wire.load(
                host.worker.channel,
                instance_id,
                entry=spec.entry,
                artifact=jar_path,
                paths=classpath,
                options={"isolation": spec.isolation},
                timeout=LOAD_TIMEOUT,
                on_timeout=on_timeout,
                extra=None if spec.init is None else {"init": spec.init},
            )
        except Failed:
            if timed_out:
                await self._abandon(host, instance_id)
            elif host.dedicated:
                await self._stop(host)
            raise
        discovered = [OperationInfo.from_wire(op) for op in reply.get("operations") or ()]
        known = {op.name for op in discovered}
        # A Collaborator without @Operations answers the operations its manifest lists.
        for service in spec.services.values():
            for name in service.operations:
                if name not in known and reply.get("facade") == "collaborator":
                    discovered.append(OperationInfo(name))
                    known.add(name)
        for key in spec.operations:
            name = key.rpartition(".")[2]
            if name not in known and reply.get("facade") == "collaborator":
                discovered.append(OperationInfo(name))
                known.add(name)
        loaded = JarLoaded(
            spec=spec,
            host=host,
            instance_id=instance_id,
            operations=tuple(discovered),
            entry=reply.get("entry") or spec.entry,
            entry_source=str(reply.get("entry_source") or ""),
            facade=str(reply.get("facade") or ""),
            scala=bool(reply.get("scala")),
        )
        host.instances[instance_id] = loaded
        return loaded

    async def instantiate(self, loaded: JarLoaded) -> JarInstance:
        host = loaded.host
        try:
            await wire.new(host.worker.channel, loaded.instance_id, entry=loaded.entry, timeout=LOAD_TIMEOUT)
        except Failed as exc:
            if exc.observation.attributes.get("limit") == "load_timeout":
                await self._abandon(host, loaded.instance_id)
            raise
        instance = JarInstance(loaded=loaded, host=host)
        host.instances[loaded.instance_id] = instance
        return instance

    async def invoke(
        self, instance: JarInstance, call: ActionCall, operation: str, *, concurrent: bool, scope: Scope
    ) -> Returned:
        worker = instance.host.worker

        def force() -> None:
            # A JVM cannot stop one thread safely: the host goes, and with it every
            # instance it holds (each is restarted per its restart policy).  The
            # scope never forces a call that already ended.
            worker.kill_reason = worker.kill_reason or f"forced cancellation of a call to {instance.loaded.spec.name!r}"
            worker.kill()

        body = await wire.invoke(
            worker.channel,
            instance.loaded.instance_id,
            call,
            operation,
            concurrent=concurrent,
            scope=scope,
            force=force,
        )
        return Returned(body.get("value"), str(body.get("stdout") or ""), str(body.get("stderr") or ""))

    async def unload(self, loaded: JarLoaded, instance: JarInstance | None) -> None:
        host = loaded.host
        host.instances.pop(loaded.instance_id, None)
        if instance is not None:
            instance.released = True
        if host.dedicated:
            await self._stop(host)
            return
        if host.alive:
            with contextlib.suppress(Failed, TimeoutError):
                async with asyncio.timeout(10):
                    await host.worker.channel.request(
                        Kind.UNLOAD, {"instance": loaded.instance_id}, stage=Stage.EXECUTE
                    )
        await self._retire(host)

    async def _retire(self, host: JvmHost) -> None:
        """A placed shared host with no component left, and none loading, ends and frees
        the placement resources it held on its node (a local one stays warm for the
        next jar until the hub closes)."""
        if host.dedicated or not host.placed:
            return
        async with self._spawn_locks.setdefault(host.shared_key, asyncio.Lock()):
            if host.instances or host.loading:
                return
            self._host_died(host)
        await host.worker.close(grace=1.0 if host.alive else 0)

    def health(self, instance: JarInstance) -> Health:
        host = instance.host
        if instance.released:
            return Health(alive=False, pid=host.pid, detail="unloaded")
        if not host.alive:
            return Health(alive=False, pid=host.pid, detail=f"JVM host exited with status {host.worker.returncode}")
        if host.remote and host.worker.exited_unnoticed():  # its node lost while the hub was idle
            return Health(alive=False, pid=host.pid, detail="the JVM host's node was lost while idle")
        if instance.frozen:
            return Health(alive=False, pid=host.pid, detail=f"frozen in its shared JVM host: {instance.frozen}")
        rss_kb, healthy = host.rss_kb(), instance.healthy  # (health is on every call's path)
        if healthy is None or healthy.rss_kb != rss_kb:
            healthy = instance.healthy = Health(
                alive=True,
                pid=host.pid,
                rss_kb=rss_kb,
                detail=f"JVM host pid {host.pid} ({'dedicated' if host.dedicated else 'shared'})",
            )
        return healthy

    async def close(self) -> None:
        hosts, self._hosts = list(self._hosts), set()
        for h in hosts:
            if h.watchdog is not None:
                h.watchdog.cancel()
        self._shared.clear()
        await asyncio.gather(*(h.worker.close(grace=1.0) for h in hosts), *self._reaping, return_exceptions=True)
        await release(self.context.home)  # the hub owns its cluster connection

    # ------------------------------------------------------- diagnostics

    async def diagnostics(self, instance: JarInstance | JarLoaded | JvmHost, *, gc: bool = False) -> dict[str, Any]:
        """The host's own evidence (PING): loaded classes, live loaders, metaspace,
        and per component its loader's parent and refused class names."""
        host = instance if isinstance(instance, JvmHost) else instance.host
        body = await host.worker.channel.request(Kind.PING, {"gc": gc}, stage=Stage.EXECUTE)
        value = body.get("value")
        return dict(value) if isinstance(value, dict) else {}

    def hosts(self) -> Sequence[JvmHost]:
        return list(self._hosts)

    # ----------------------------------------------------------- helpers

    async def _stop(self, host: JvmHost) -> None:
        self._host_died(host)
        await host.worker.close(grace=1.0 if host.alive else 0)

    async def _abandon(self, host: JvmHost, instance_id: str) -> None:
        """A load or constructor that never returns: drop it (its thread is interrupted)."""
        host.instances.pop(instance_id, None)
        if host.dedicated:
            await self._stop(host)
            return
        with contextlib.suppress(Failed, TimeoutError):
            async with asyncio.timeout(5):
                await host.worker.channel.request(Kind.UNLOAD, {"instance": instance_id}, stage=Stage.EXECUTE)

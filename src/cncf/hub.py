"""AsyncHub (the core) and Hub (its synchronous facade).

``AsyncHub`` owns the components, one Boundary per form, the ActionEngine
and, once a queue-policy operation is used, the job system: it routes
queue-mode calls to the jobs and every other call to the engine.  Receptions
only translate.  ``Hub`` is a thin adapter over ``AsyncHub`` driven from any
number of threads (``cncf._sync``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cncf import boundaries
from cncf._private import private_dir
from cncf._sync import LoopDriver, Pump
from cncf.boundaries.base import Boundary, BoundaryContext
from cncf.engine import generations
from cncf.engine.component import Component, State
from cncf.engine.engine import ActionEngine
from cncf.engine.events import CallFinished
from cncf.failures import internal_error
from cncf.manifest import ComponentSpec, _default_name, locate
from cncf.observation import Code, Failed, Observation, Stage
from cncf.outcome import Outcome
from cncf.paths import cache_dir, default_home
from cncf.policy import Mode
from cncf.selector import normalize
from cncf.wire import link, ownership

if TYPE_CHECKING:
    from cncf.jobs import Job, JobSystem

T = TypeVar("T")


class ComponentHandle:
    """The user's view of a loaded component (a live view: state changes)."""

    __slots__ = ("_component", "_target", "_overrides")

    def __init__(self, component: Component, target: str, overrides: dict[str, Any]) -> None:
        self._component = component
        self._target = target
        self._overrides = overrides

    @property
    def name(self) -> str:
        return self._component.name

    @property
    def form(self) -> str:
        return self._component.spec.form

    @property
    def state(self) -> str:
        return self._component.state.value

    @property
    def observation(self) -> Observation | None:
        """The load Observation of a failed component, or the last crash."""
        return self._component.observation

    @property
    def operations(self) -> list[str]:
        return [f"{s}.{o}" for s, ops in self._component.services.items() for o in ops]

    @property
    def restarts(self) -> int:
        return self._component.restarts

    def describe(self) -> dict[str, Any]:
        return self._component.describe()

    def __repr__(self) -> str:
        return f"<ComponentHandle {self.name!r} form={self.form} state={self.state}>"


class AsyncHub:
    """The execution hub (async API).  Use as ``async with AsyncHub() as hub``."""

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        progress: Callable[[str], None] | None = None,
        job_workers: int = 2,
        job_store: str | None = None,
        job_lease: float | None = None,
        manifest_inline: bool = True,
        allow_loader_env: bool | None = None,
    ) -> None:
        self.home = Path(home).expanduser() if home is not None else default_home()
        self._manifest_inline = manifest_inline  # receptions: inline only when their caller asks
        if self.home.is_dir():
            private_dir(self.home)  # narrowed if an older hub left it world-readable
        ownership.reap_orphans()  # processes a hub killed with -9 left (only without PID namespaces)
        link.sweep_run_dir(self.home)  # temporary folders of workers whose hub was killed with -9
        self._context = BoundaryContext(
            home=self.home, cache_dir=cache_dir(self.home), progress=progress, allow_loader_env=allow_loader_env
        )
        self._components: dict[str, Component] = {}
        self._handles: dict[str, ComponentHandle] = {}
        # Generations beside the serving one: loading (an upgrade) or draining (the old).
        self._generations: dict[str, list[Component]] = {}
        self._background: set[asyncio.Task[None]] = set()  # drains, background restarts
        self._upgrading: dict[str, asyncio.Lock] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}  # watch = true: upgrade on a changed artifact
        self._boundaries: dict[str, Boundary[Any, Any]] = {}
        self.engine = ActionEngine(self._components)
        self._job_workers = job_workers
        self._job_store, self._job_lease = job_store, job_lease  # None: $CNCF_JOB_STORE, else home SQLite
        self._jobs: JobSystem | None = None
        self._closed = False

    async def __aenter__(self) -> AsyncHub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ components

    def _boundary(self, form: str) -> Boundary[Any, Any] | None:
        b = self._boundaries.get(form)
        if b is None:
            try:
                b = boundaries.create(form, self._context)
            except (KeyError, ImportError):
                return None
            self._boundaries[form] = b
        return b

    async def load(self, target: str | os.PathLike[str], **overrides: Any) -> ComponentHandle:
        """Load and instantiate a component.  Never raises for anything the
        artifact does: a failure gives a handle in state ``failed`` whose
        ``observation`` says why."""
        if self._closed:
            raise RuntimeError("this hub is closed")
        target_s = os.fspath(target)
        watch = overrides.pop("watch", False)
        try:
            if not isinstance(watch, bool):
                raise Failed(
                    Observation.of(
                        Code.INVALID_MANIFEST,
                        f"<overrides>: key 'watch' is {watch!r}; expected true or false",
                        file="<overrides>",
                        key="watch",
                        value=repr(watch),
                        expected="true or false",
                    )
                )
            spec = await asyncio.to_thread(locate, target_s, overrides)  # reads files: off the loop
            refusal = self._refuse_form(spec, overrides)
            if refusal is not None:
                raise Failed(refusal)
        except Exception as exc:  # load never raises: a defect in reading is still data
            obs = (
                exc.observation
                if isinstance(exc, Failed)
                else internal_error(exc, f"reading {target_s!r} failed", stage=Stage.LOAD)
            )
            name = str(overrides.get("name") or _default_name(Path(target_s.replace("\0", ""))))
            spec = ComponentSpec(
                name=name,
                form=str(overrides.get("form") or "unknown"),
                artifact=Path(target_s),
                base_dir=Path(target_s).parent,
            )
            comp = Component(spec, None)
            comp._fail(obs)
            return self._register(comp, target_s, overrides)
        existing = self._components.get(normalize(spec.name))
        if existing is not None and existing.state is not State.UNLOADED:
            comp = Component(spec, None)
            comp._fail(
                Observation.of(
                    Code.COMPONENT_CONFLICT,
                    f"a component named {spec.name!r} is already loaded (from {existing.spec.artifact}); "
                    "give this one another name (name=... or --name)",
                    target=spec.name,
                )
            )
            return ComponentHandle(comp, target_s, overrides)
        comp = Component(spec, self._boundary(spec.form), background=self._background)
        handle = self._register(comp, target_s, overrides)
        await comp.start()
        if self._jobs is not None or _uses_queue(comp):
            await self._ensure_jobs()
        if watch:
            key = normalize(comp.name)
            first = await asyncio.to_thread(fingerprint, handle)  # as loaded: a later change upgrades
            self._watchers[key] = asyncio.get_running_loop().create_task(self._watch(key, handle, first))
        return handle

    async def _watch(self, key: str, handle: ComponentHandle, last: tuple[Any, ...]) -> None:
        """``watch = true``: a changed artifact (or manifest) starts an upgrade.  Polls
        every :data:`WATCH_INTERVAL` seconds while the hub's loop turns (always under
        ``cncf serve``; during calls with the synchronous ``Hub``)."""
        try:
            while not self._closed and self._handles.get(key) is handle:
                await asyncio.sleep(WATCH_INTERVAL)
                now = await asyncio.to_thread(fingerprint, handle)
                if now == last:
                    continue
                await asyncio.sleep(WATCH_INTERVAL / 2)  # let the writer finish
                last = await asyncio.to_thread(fingerprint, handle)
                if self._handles.get(key) is handle and not self._closed:
                    await self.upgrade(handle.name)  # a failure rolls back: the old one serves on
        except Exception:  # unloaded or closed meanwhile: nothing left to watch
            pass

    def _refuse_form(self, spec: ComponentSpec, overrides: dict[str, Any]) -> Observation | None:
        """``inline`` runs in the hub's own process: a reception (CLI, serve and
        its admin routes) runs it only when its caller asked (``form =
        "inline"`` in its own overrides), never because an artifact's own
        manifest says so or because a target happens to be importable
        (``os:system``) — brief section 13.  The one place this rule lives;
        ``form_not_allowed`` is a security refusal (HTTP 403)."""
        if self._manifest_inline or spec.form != "inline" or overrides.get("form") == "inline":
            return None
        why = (
            f"{spec.manifest_path} asks for the in-process 'inline' form"
            if spec.manifest_path is not None
            else f"{spec.entry!r} would be imported into the hub (form 'inline')"
        )
        return Observation.of(
            Code.FORM_NOT_ALLOWED,
            f"{why}, which runs the component inside the hub without isolation; this reception runs it "
            'only when you ask: pass --form inline (or form = "inline" in the hub file\'s own [[component]] '
            "entry, or in the load request), or drop the manifest's form to run it as 'python' in a worker process",
            stage=Stage.LOAD,
            file=spec.manifest_path,
            form="inline",
        )

    def _register(self, comp: Component, target: str, overrides: dict[str, Any]) -> ComponentHandle:
        key = normalize(comp.name)
        self._components[key] = comp
        handle = self._handles[key] = ComponentHandle(comp, target, overrides)
        return handle

    def component(self, name: str) -> ComponentHandle | None:
        return self._handles.get(normalize(name))

    def components(self) -> list[ComponentHandle]:
        return list(self._handles.values())

    async def unload(self, name: str) -> bool:
        key = normalize(name)
        comp = self._components.pop(key, None)
        self._handles.pop(key, None)
        watcher = self._watchers.pop(key, None)
        if watcher is not None:
            watcher.cancel()
        if comp is None:
            return False
        await self.engine.cancel_component(comp)
        await comp.unload()
        for other in self._generations.pop(key, []):  # a generation loading or draining beside it
            await self.engine.cancel_component(other)
            await other.unload()
        return True

    async def reload(self, name: str) -> ComponentHandle:
        """An upgrade to the same target (re-reading its manifest): see :meth:`upgrade`."""
        return await self.upgrade(name)

    async def upgrade(
        self, name: str, target: str | os.PathLike[str] | None = None, **overrides: Any
    ) -> ComponentHandle:
        """Load a new generation of ``name`` beside the serving one (from ``target``,
        default the same; ``overrides`` on top of the previous ones), switch to it
        when it is ready, let the old one drain (``drain_timeout``) and unload.

        Returns at the switch with the component's handle.  A new generation that
        fails to load, to pass its ``readiness`` operation or to take the state over
        is rolled back: the old one serves on, and the answer is a handle in state
        ``failed`` whose ``observation`` says why (the component's own handle is
        untouched).  Raises ``KeyError`` for an unknown name; never for anything the
        artifact does.  See :mod:`cncf.engine.generations`."""
        if self._closed:
            raise RuntimeError("this hub is closed")
        key = normalize(name)
        handle = self._handles.get(key)
        if handle is None:
            raise KeyError(f"no component named {name!r}")
        lock = self._upgrading.setdefault(key, asyncio.Lock())
        async with lock:  # one upgrade of a component at a time
            return await self._upgrade(key, handle, target, overrides)

    async def _upgrade(
        self, key: str, handle: ComponentHandle, target: str | os.PathLike[str] | None, overrides: dict[str, Any]
    ) -> ComponentHandle:
        old = handle._component
        target_s = handle._target if target is None else os.fspath(target)
        merged = {**handle._overrides, **overrides}
        try:
            spec = await asyncio.to_thread(locate, target_s, merged)
            refusal = self._refuse_form(spec, merged)
            if refusal is not None:
                raise Failed(refusal)
        except Exception as exc:  # read like load(): a defect in reading is still data
            obs = (
                exc.observation
                if isinstance(exc, Failed)
                else internal_error(exc, f"reading {target_s!r} failed", stage=Stage.LOAD)
            )
            failed = Component(old.spec, None, generation=old.generation + 1)
            failed._fail(obs)
            return ComponentHandle(failed, target_s, merged)
        if normalize(spec.name) != key:  # the name is the component's address: it stays
            spec = dataclasses.replace(spec, name=old.name)
        new = Component(spec, self._boundary(spec.form), generation=old.generation + 1, background=self._background)
        live = generations.serving(old)
        self._generations.setdefault(key, []).append(new)
        switched = held = False
        try:
            await new.start()
            if self._handles.get(key) is not handle:  # unloaded meanwhile
                await new.unload()
                return handle
            problem = new.observation if new.state is State.FAILED else None
            if problem is None and live:
                problem = await generations.ready_check(self.engine, new)
            handover = (
                problem is None
                and live
                and not old.spec.stateless  # a stateful component of one replica: its state moves
                and len(old.replicas) == 1
                and len(new.replicas) == 1
                and generations.has(old, generations.EXPORT)
                and generations.has(new, generations.IMPORT)
            )
            if handover:
                generations.hold(old)  # new calls wait; the running ones finish
                held = True
                if not await generations.quiet(old, spec.drain_timeout, waiting=False):
                    problem = Observation.of(
                        Code.HANDOVER_FAILED,
                        f"the calls running on {old.name!r} did not finish within drain_timeout "
                        f"({spec.drain_timeout:g}s): its state could not be handed over",
                        target=old.name,
                        step="drain",
                    )
                else:
                    problem = await generations.hand_over(self.engine, old, new)
                if problem is not None:
                    generations.release(old)
                    held = False
            if problem is not None and live:  # rollback: the old generation serves on
                await new.unload()
                failed = Component(spec, None, generation=new.generation)
                failed._fail(problem)
                return ComponentHandle(failed, target_s, merged)
            # ---- the switch
            self._components[key] = new
            handle._component, handle._target, handle._overrides = new, target_s, merged
            switched = True
            if handover:
                generations.take_over(old, new)
        finally:
            gens = self._generations.get(key)
            if gens is not None and new in gens:
                gens.remove(new)
            if not switched:  # rolled back, or the caller's task was cancelled: nothing may leak
                if held:
                    generations.release(old)
                if new.state is not State.UNLOADED:
                    gone = asyncio.get_running_loop().create_task(new.unload())
                    self._background.add(gone)
                    gone.add_done_callback(self._background.discard)
        old.drain()
        self._generations.setdefault(key, []).append(old)
        task = asyncio.get_running_loop().create_task(
            generations.drain(self.engine, old, lambda: self._drained(key, old))
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        if self._jobs is not None or _uses_queue(new):
            await self._ensure_jobs()  # queued jobs not yet started run on the new generation
        return handle

    def _drained(self, key: str, old: Component) -> None:
        gens = self._generations.get(key)
        if gens is not None and old in gens:
            gens.remove(old)
            if not gens:
                del self._generations[key]

    def inspect(self, name: str) -> dict[str, Any]:
        key = normalize(name)
        handle = self._handles.get(key)
        if handle is None:
            raise KeyError(f"no component named {name!r}")
        info = handle.describe()
        others = self._generations.get(key)
        if others:  # during a switch: the loading and draining generations too
            info["generations"] = [
                {
                    "generation": c.generation,
                    "state": c.state.value,
                    "calls": {"running": sum(g.running for g in c.gates)},
                    "replicas": [r.describe() for r in c.replicas],
                }
                for c in sorted([*others, handle._component], key=lambda c: c.generation)
            ]
        return info

    # ----------------------------------------------------------------- calls

    async def call(
        self,
        selector: str,
        args: Any = None,
        *,
        timeout: float | None = None,
        correlation_id: str | None = None,
        caller: str = "api",
        call_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome:
        """Call ``component.service.operation`` (service optional).  ``args``: a
        dict (named) or a list (positional).  ``timeout`` is the overall deadline
        (wait + run); it only tightens the declared limits.  Never raises.

        On a queue-policy operation the Outcome carries ``job_id`` at once; with
        ``idempotency_key``, a second submission with the same key returns the
        first job's id instead of queueing another (other policies ignore it)."""
        try:
            dispatched = self.engine.dispatch(
                selector,
                args,
                timeout=timeout,
                caller=caller,
                correlation_id=correlation_id,
                call_id=call_id,
                idempotency_key=idempotency_key,
            )
        except Failed as exc:
            return Outcome.failure(exc.observation)
        except Exception as exc:  # a defect in dispatch: still one Outcome
            return Outcome.failure(
                internal_error(
                    exc,
                    f"the hub failed while dispatching {selector!r}",
                    stage=Stage.DISPATCH,
                    target=str(selector),
                    call_id=call_id or "",
                )
            )
        if dispatched.entry.policy.mode is Mode.QUEUE:
            jobs = await self._ensure_jobs()
            return await jobs.enqueue(dispatched)
        return await self.engine.run(dispatched)

    def subscribe(self, listener: Callable[[CallFinished], None]) -> Callable[[], None]:
        """Call ``listener(event)`` once per finished call from any reception,
        job attempts included; returns the function that unsubscribes it."""
        return self.engine.subscribe(listener)

    def cancel(self, call_id: str) -> bool:
        """Cancel a waiting or running call by id; its Outcome says how it ended."""
        return self.engine.cancel(call_id)

    # ------------------------------------------------------------------ jobs

    async def _ensure_jobs(self) -> JobSystem:
        if self._jobs is None:
            from cncf.jobs import JobSystem  # lazy: SQLite only when jobs are used

            self._jobs = JobSystem(
                self.home,
                self.engine,
                self._components,
                workers=self._job_workers,
                sources=lambda: {k: (h._target, h._overrides) for k, h in self._handles.items()},
                job_store=self._job_store,
                lease=self._job_lease,
            )
            await self._jobs.start()
        else:
            self._jobs.poke()  # a component was (re)loaded: its queued jobs may run now
        return self._jobs

    async def _jobs_to_read(self) -> JobSystem:
        """The job system, its store opened again if it could not be before (a read
        has no deadline to keep; a call's enqueue and a load never wait for this)."""
        jobs = await self._ensure_jobs()
        await jobs.reopen()
        return jobs

    async def job(self, job_id: str) -> Job:
        """The job's record (``cncf.Job``: state, attempts, outcome when
        finished); raises ``cncf.JobNotFound`` (an ``ObservationError``
        with ``job_not_found``) for an unknown id."""
        return (await self._jobs_to_read()).get(job_id)

    async def wait(self, job_id: str, timeout: float | None = None) -> Outcome:
        """The job's final Outcome; on ``timeout``, an Outcome with ``wait_timeout``
        (stage wait): the wait ended, the job goes on.  Never raises."""
        return await (await self._ensure_jobs()).wait(job_id, timeout)

    async def cancel_job(self, job_id: str) -> bool:
        """Cancel a queued job at once, or a running one cooperatively."""
        return await (await self._ensure_jobs()).cancel(job_id)

    async def jobs(self, **filters: Any) -> list[Job]:
        """Jobs, newest first; filters: ``state``, ``component``, ``limit``."""
        return (await self._jobs_to_read()).list(**filters)

    @property
    def busy(self) -> bool:
        """Is there background work (jobs: a queued attempt, a retry back-off;
        the escalation of a call answered at its deadline whose operation still
        runs) that needs this hub's loop to turn although no call is running?
        The synchronous ``Hub`` keeps its loop turning while this is true."""
        jobs = self._jobs
        return bool(self.engine.settling or self._background) or (jobs is not None and jobs.busy)

    async def until_idle(self) -> None:
        """Return once :attr:`busy` is false."""
        while self.busy:
            await self.engine.until_settled()
            if self._background:
                await asyncio.wait(list(self._background))
            if self._jobs is not None:
                await self._jobs.until_idle()

    # --------------------------------------------------------------- closing

    async def close(self) -> None:
        """Cancel what runs, unload every component, stop shared hosts; reaps all."""
        if self._closed:
            return
        self._closed = True
        await self.engine.shutdown()
        for task in [*self._background, *self._watchers.values()]:
            task.cancel()
        self._watchers.clear()
        for gens in list(self._generations.values()):
            for c in list(gens):
                await c.unload()
        self._generations.clear()
        if self._jobs is not None:
            await self._jobs.close()
        for name in list(self._components):
            comp = self._components.pop(name)
            await comp.unload()
        self._handles.clear()
        for b in self._boundaries.values():
            try:
                await b.close()
            except Exception:  # closing must reap the rest even if one form fails
                pass
        self._boundaries.clear()
        self.engine.drain()  # the deferred listeners hear of every call (spans recorded)


#: Seconds between two looks of ``watch = true`` at a component's files.
WATCH_INTERVAL = 1.0
_WATCH_FILES = 10_000  # a folder's files looked at, at most


def fingerprint(handle: ComponentHandle) -> tuple[Any, ...]:
    """What ``watch`` compares: size and modification time of the target, the
    artifact and the manifest (a folder: of its files, caches and VCS folders aside)."""
    spec = handle._component.spec
    roots = {Path(handle._target), spec.artifact}
    if spec.manifest_path and "!/" not in spec.manifest_path:
        roots.add(Path(spec.manifest_path))
    marks: list[tuple[str, int, int]] = []
    for root in sorted(roots, key=str):
        paths = [root]
        if root.is_dir():
            paths = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
                paths.extend(Path(dirpath) / f for f in sorted(filenames))
                if len(paths) > _WATCH_FILES:
                    break
        for p in paths[:_WATCH_FILES]:
            try:
                st = p.stat()
            except OSError:
                marks.append((str(p), -1, -1))
                continue
            marks.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(marks)


def _uses_queue(comp: Component) -> bool:
    return any(e.policy.mode is Mode.QUEUE for ops in comp.services.values() for e in ops.values())


class Hub:
    """Synchronous facade over :class:`AsyncHub` (same methods, blocking).

    Safe to share between threads: a call from one thread never waits for
    another thread's call unless its policy says so (see ``cncf._sync`` for
    how one private loop is driven from many threads without a hop for the
    first).  Not for use inside a running event loop: use ``AsyncHub`` there.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        self._driver = LoopDriver()
        self._loop = self._driver.loop
        self._async = AsyncHub(home, **kwargs)

    def _run(self, coro: Coroutine[Any, Any, T], eager: Callable[[], bool] | None = None) -> T:
        result = self._driver.run(coro, eager)
        engine = self._async.engine
        if engine.deferred:  # a blocking caller's span is recorded before it returns, as it always was
            engine.drain()
        if self._driver.pump is None and self._async.busy:
            self._driver.start_pump(lambda: self._async.busy, self._async.until_idle)
        return result

    @property
    def _pump(self) -> Pump | None:
        return self._driver.pump

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def home(self) -> Path:
        return self._async.home

    @property
    def aio(self) -> AsyncHub:
        """The underlying AsyncHub (for use only from this hub's loop)."""
        return self._async

    def load(self, target: str | os.PathLike[str], **overrides: Any) -> ComponentHandle:
        return self._run(self._async.load(target, **overrides))

    def call(
        self,
        selector: str,
        args: Any = None,
        *,
        timeout: float | None = None,
        correlation_id: str | None = None,
        caller: str = "api",
        call_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome:
        """As :meth:`AsyncHub.call`, blocking; never raises."""
        if self._loop.is_closed():
            return Outcome.failure(Observation.of(Code.HUB_CLOSED, "this hub is closed", target=str(selector)))
        try:
            return self._run(
                self._async.call(
                    selector,
                    args,
                    timeout=timeout,
                    caller=caller,
                    correlation_id=correlation_id,
                    call_id=call_id,
                    idempotency_key=idempotency_key,
                ),
                eager=lambda: self._async.engine.settled(selector),
            )
        except BaseException as exc:  # KeyboardInterrupt in the caller's thread, a closed loop, ...
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            return Outcome.failure(internal_error(exc, "the hub failed", stage=Stage.DISPATCH, target=str(selector)))

    def subscribe(self, listener: Callable[[CallFinished], None]) -> Callable[[], None]:
        """Call ``listener(event)`` once per finished call (``cncf.engine.events.CallFinished``),
        job attempts included; returns the function that unsubscribes it.  The
        listener runs on whichever thread is driving the hub's loop at the time:
        keep it short, and hand work to a thread or queue of your own."""
        return self._async.subscribe(listener)

    def cancel(self, call_id: str) -> bool:
        """Cancel a call by id, from any thread (its Outcome says how it ended)."""
        if self._loop.is_closed():
            return False
        return self._run(_acall(self._async.cancel, call_id))

    def unload(self, name: str) -> bool:
        return self._run(self._async.unload(name))

    def reload(self, name: str) -> ComponentHandle:
        return self._run(self._async.reload(name))

    def upgrade(self, name: str, target: str | os.PathLike[str] | None = None, **overrides: Any) -> ComponentHandle:
        """As :meth:`AsyncHub.upgrade`, blocking until the switch (or the rollback)."""
        return self._run(self._async.upgrade(name, target, **overrides))

    def component(self, name: str) -> ComponentHandle | None:
        return self._async.component(name)

    def components(self) -> list[ComponentHandle]:
        return self._async.components()

    def inspect(self, name: str) -> dict[str, Any]:
        return self._run(_acall(self._async.inspect, name))

    def job(self, job_id: str) -> Job:
        return self._run(self._async.job(job_id))

    def wait(self, job_id: str, timeout: float | None = None) -> Outcome:
        return self._run(self._async.wait(job_id, timeout))

    def cancel_job(self, job_id: str) -> bool:
        return self._run(self._async.cancel_job(job_id))

    def jobs(self, **filters: Any) -> list[Job]:
        return self._run(self._async.jobs(**filters))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._driver.pump is not None:
            self._driver.pump.close()  # stop and join the pump thread before closing its loop
        try:
            self._run(self._async.close())
        finally:
            self._driver.close()


async def _acall(fn: Callable[..., T], *args: Any) -> T:
    """Run a synchronous AsyncHub method on the loop (its state lives there)."""
    return fn(*args)

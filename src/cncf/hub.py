"""AsyncHub (the core) and Hub (its synchronous facade).

``AsyncHub`` owns the components, one Boundary per form, the ActionEngine
and, once a queue-policy operation is used, the job system: it routes
queue-mode calls to the jobs and every other call to the engine.  Receptions
only translate.  ``Hub`` is a thin adapter over ``AsyncHub`` driven from any
number of threads (``cncf._sync``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cncf import boundaries
from cncf._private import private_dir
from cncf._sync import LoopDriver, Pump
from cncf.boundaries.base import Boundary, BoundaryContext
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
        try:
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
        comp = Component(spec, self._boundary(spec.form))
        handle = self._register(comp, target_s, overrides)
        await comp.start()
        if self._jobs is not None or _uses_queue(comp):
            await self._ensure_jobs()
        return handle

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
        if comp is None:
            return False
        await self.engine.cancel_component(comp)
        await comp.unload()
        return True

    async def reload(self, name: str) -> ComponentHandle:
        """Unload and load again from the same target (re-reading its manifest)."""
        handle = self._handles.get(normalize(name))
        if handle is None:
            raise KeyError(f"no component named {name!r}")
        refused = self._refused_reload(handle)
        if refused is not None:  # the old instance keeps serving; the answer says why
            return refused
        await self.unload(name)
        return await self.load(handle._target, **handle._overrides)

    def _refused_reload(self, handle: ComponentHandle) -> ComponentHandle | None:
        """A reload whose target now reads as refused (its manifest asks for the
        ``inline`` form, or no longer parses) leaves the loaded component alone."""
        try:
            spec = locate(handle._target, handle._overrides)
            refusal = self._refuse_form(spec, handle._overrides)
        except Failed as exc:
            refusal = exc.observation
        except Exception:  # a defect in reading: load() reports it as usual
            return None
        if refusal is None:
            return None
        comp = Component(handle._component.spec, None)
        comp._fail(refusal)
        return ComponentHandle(comp, handle._target, handle._overrides)

    def inspect(self, name: str) -> dict[str, Any]:
        handle = self._handles.get(normalize(name))
        if handle is None:
            raise KeyError(f"no component named {name!r}")
        return handle.describe()

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

    async def job(self, job_id: str) -> Job:
        """The job's record (``cncf.Job``: state, attempts, outcome when
        finished); raises ``cncf.JobNotFound`` (an ``ObservationError``
        with ``job_not_found``) for an unknown id."""
        return (await self._ensure_jobs()).get(job_id)

    async def wait(self, job_id: str, timeout: float | None = None) -> Outcome:
        """The job's final Outcome; on ``timeout``, an Outcome with ``wait_timeout``
        (stage wait): the wait ended, the job goes on.  Never raises."""
        return await (await self._ensure_jobs()).wait(job_id, timeout)

    async def cancel_job(self, job_id: str) -> bool:
        """Cancel a queued job at once, or a running one cooperatively."""
        return await (await self._ensure_jobs()).cancel(job_id)

    async def jobs(self, **filters: Any) -> list[Job]:
        """Jobs, newest first; filters: ``state``, ``component``, ``limit``."""
        return (await self._ensure_jobs()).list(**filters)

    @property
    def busy(self) -> bool:
        """Is there background work (jobs: a queued attempt, a retry back-off;
        the escalation of a call answered at its deadline whose operation still
        runs) that needs this hub's loop to turn although no call is running?
        The synchronous ``Hub`` keeps its loop turning while this is true."""
        jobs = self._jobs
        return bool(self.engine.settling) or (jobs is not None and jobs.busy)

    async def until_idle(self) -> None:
        """Return once :attr:`busy` is false."""
        while self.busy:
            await self.engine.until_settled()
            if self._jobs is not None:
                await self._jobs.until_idle()

    # --------------------------------------------------------------- closing

    async def close(self) -> None:
        """Cancel what runs, unload every component, stop shared hosts; reaps all."""
        if self._closed:
            return
        self._closed = True
        await self.engine.shutdown()
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

"""The ``inline`` form: Python importable in the hub's own process.

No isolation but exception containment — for trusted, light components and
for measuring the engine itself.  Everything a component raises —
``KeyboardInterrupt`` and ``SystemExit`` included — becomes an Observation.

Where operations run.  Asynchronous operations run as tasks on the hub's
loop and are cancelled cooperatively (``task.cancel()``).  Synchronous ones
run on the hub's inline threads, so the loop stays free: other components
keep answering, ``concurrent`` operations overlap, and a deadline is met at
the deadline.  A thread cannot be pre-empted, so a cancellation sets the
call's cooperative flag and releases the caller at once (tier
``abandoned``); the thread runs on unobserved, and while an abandoned
*exclusive* operation still runs the instance reports itself dead, so the
next call gets a fresh instance (the restart policy applies) instead of
sharing the old one with a runaway.

The hop to a thread costs tens of microseconds, more than many operations.
An operation that has finished in under ``FAST`` seconds ``PROMOTE`` times in
a row on a thread is therefore *promoted* to run on the loop directly (as a
function call, no hop); if it ever blocks the loop for more than ``SLOW``
seconds it is demoted back to threads for good.  The worst case is one
call that blocks the loop once, and whose overshoot of a deadline is then
reported after the fact (tier ``late``).

Discovery of operations, argument checking and the mapping of exceptions to
codes are the worker runtime's (``cncf.worker.runtime``, importable here
because it is standard-library only and free of import-time effects): one
implementation, so an operation behaves the same inline and in a worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import importlib
import inspect
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from cncf.boundaries.base import BoundaryContext, Health, OperationInfo, Returned
from cncf.call import ActionCall, CancelTier
from cncf.manifest import ComponentSpec
from cncf.observation import Failed, Stage
from cncf.wire.channel import failure_observation
from cncf.worker import runtime as _rt

_SIMPLE = (str, int, float, bool, type(None))
_ALIVE, _DEAD = Health(True), Health(False)
FAST = 100e-6  # an operation this quick is cheaper to run on the loop than to hop to a thread
PROMOTE = 16  # consecutive fast runs on a thread before an operation runs on the loop
SLOW = 1e-3  # a promoted operation that blocks the loop this long goes back to threads for good
_IDLE = 30.0  # seconds an idle inline thread waits for work before it exits

# The running call, per thread and per task: the worker runtime's accessors
# (``cncf.collaborator.cancelled()`` and friends) read it from here.
_CALL: contextvars.ContextVar[Any] = contextvars.ContextVar("cncf_call", default=None)
_rt._current = _CALL.get


class _Threads:
    """Daemon threads for synchronous operations: grows when all are busy,
    shrinks when idle.  Daemon, because an abandoned runaway operation must
    not keep the hub's process from exiting."""

    def __init__(self) -> None:
        self._work: collections.deque[Callable[[], None]] = collections.deque()
        self._cv = threading.Condition(threading.Lock())
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._cv:
            self._work.append(job)
            if self._idle:
                self._idle -= 1
                self._cv.notify()
                return
        threading.Thread(target=self._main, name="cncf-inline", daemon=True).start()

    def _main(self) -> None:
        while True:
            with self._cv:
                if not self._work:
                    self._idle += 1
                    if not self._cv.wait_for(lambda: self._work, _IDLE):
                        self._idle -= 1
                        return
                job = self._work.popleft()
            job()


def _failed(code: str, message: str, exc: BaseException | None, stage: Stage, **attrs: Any) -> Failed:
    return Failed(failure_observation(_rt._failure(code, message, exc, **attrs), stage))


def classify(exc: BaseException, stage: Stage, what: str) -> Failed:
    """An exception raised by component code, as the worker runtime maps it."""
    if isinstance(exc, _rt.Failure):
        return _failed("operation_failed", f"{what} failed: {exc.message}", exc, stage,
                       component_code=exc.code, **exc.attributes)
    code, message = _rt._classify(exc, what)
    if stage is Stage.INSTANTIATE and code == "raised":
        code = "constructor_failed"
    return _failed(code, message, exc, stage)


class _Loaded:
    __slots__ = ("spec", "target", "is_class", "collaborator", "operations", "params", "early", "fast")

    def __init__(self, spec: ComponentSpec, target: Any, is_class: bool) -> None:
        self.spec = spec
        self.target = target
        self.is_class = is_class
        self.collaborator = is_class and _rt._is_collaborator(target)
        self.operations: list[OperationInfo] = []
        self.params: dict[str, Any] = {}
        self.early: _Instance | None = None
        self.fast: collections.Counter[str] = collections.Counter()  # consecutive fast thread runs


class _Running:
    """One call in progress: its state, and how to stop waiting for it."""

    __slots__ = ("state", "task", "future", "exclusive")

    def __init__(self, state: Any, exclusive: bool) -> None:
        self.state = state
        self.task: asyncio.Task[Any] | None = None
        self.future: asyncio.Future[Any] | None = None  # a thread's result
        self.exclusive = exclusive


class _Instance:
    __slots__ = ("obj", "methods", "collaborator", "running", "alive", "runaways", "fast")

    def __init__(self, obj: Any, methods: dict[str, Any], collaborator: bool,
                 fast: collections.Counter[str]) -> None:
        self.fast = fast  # shared with the loaded artifact: speed survives a restart
        self.obj = obj
        self.methods = methods
        self.collaborator = collaborator
        self.running: dict[str, _Running] = {}
        self.alive = True
        self.runaways = 0  # abandoned exclusive operations whose threads still run


class InlineBoundary:
    form = "inline"

    def __init__(self, context: BoundaryContext) -> None:
        self.context = context
        self._threads = _Threads()

    async def load(self, spec: ComponentSpec) -> _Loaded:
        entry = spec.entry or ""
        modname, _, attr = entry.partition(":")
        for folder in {spec.base_dir, spec.artifact} if spec.artifact.is_dir() else ():
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name and (modname == exc.name or modname.startswith(exc.name + ".")):
                raise _failed("entry_not_found", f"module {modname!r} not found", exc, Stage.LOAD,
                              entry=entry) from None
            raise _failed("dependency_unresolved",
                          f"importing {modname!r} needs {exc.name!r}, which is not installed",
                          exc, Stage.LOAD, missing=exc.name) from None
        except BaseException as exc:  # noqa: BLE001 - import-time code is component code
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise _failed("import_failed", f"importing {modname!r} raised {_rt._exc_summary(exc)}",
                          exc, Stage.LOAD) from None
        target: Any = module
        for part in attr.split(".") if attr else ():
            target = getattr(target, part, None)
            if target is None:
                raise _failed("entry_not_found", f"{modname!r} has no attribute {attr!r}", None, Stage.LOAD,
                              entry=entry, candidates=sorted(n for n in vars(module) if not n.startswith("_")))
        loaded = _Loaded(spec, target, inspect.isclass(target))
        if loaded.collaborator:
            try:
                ops, early = _rt._collaborator_operations(target)
            except _rt._EarlyConstructorFailed as exc:
                raise classify(exc.args[0], Stage.INSTANTIATE, f"{spec.name}()") from None
            if early is not None:
                loaded.early = _Instance(early, {}, True, loaded.fast)
        elif loaded.is_class:
            ops = _rt._class_operations(target)
        else:
            ops = _rt._module_operations(target)
        loaded.operations = [OperationInfo.from_wire(op) for op in ops]
        loaded.params = {op["name"]: op["params"] for op in ops}
        return loaded

    async def instantiate(self, loaded: _Loaded) -> _Instance:
        if loaded.early is not None:
            early, loaded.early = loaded.early, None
            return early
        obj = loaded.target
        if loaded.is_class:
            try:
                obj = loaded.target()
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise classify(exc, Stage.INSTANTIATE, f"{loaded.spec.name}()") from None
        if loaded.collaborator:
            return _Instance(obj, {}, True, loaded.fast)
        return _Instance(obj, {op.name: getattr(obj, op.name) for op in loaded.operations}, False, loaded.fast)

    async def invoke(self, instance: _Instance, call: ActionCall, operation: str, *,
                     concurrent: bool) -> Returned:
        if instance.collaborator:
            fn: Callable[..., Any] = instance.obj.invoke
            args: tuple[Any, ...] = (operation, list(call.args), dict(call.kwargs))
            kwargs: dict[str, Any] = {}
        else:
            fn, args, kwargs = instance.methods[operation], call.args, call.kwargs
        run = instance.running[call.id] = _Running(_rt.CallState(None, call.id, operation), not concurrent)
        loaded_fast = instance.fast
        try:
            if inspect.iscoroutinefunction(fn) or loaded_fast[operation] >= PROMOTE:
                t0 = time.perf_counter()
                token = _CALL.set(run.state)
                try:
                    result = fn(*args, **kwargs)
                finally:
                    _CALL.reset(token)
                if time.perf_counter() - t0 > SLOW:
                    loaded_fast[operation] = -(1 << 30)  # blocked the loop: threads for good
            else:
                result = await self._on_thread(instance, run, operation, fn, args, kwargs, loaded_fast)
            if type(result) not in _SIMPLE and inspect.isawaitable(result):
                context = contextvars.copy_context()
                context.run(_CALL.set, run.state)
                run.task = asyncio.get_running_loop().create_task(_awaited(result), context=context)
                result = await run.task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the engine's own task is being cancelled
            raise _failed("cancelled", f"{call.target} stopped on cancellation", None, Stage.EXECUTE,
                          tier="cooperative") from None
        except _Abandoned:
            raise _failed("cancelled", f"{call.target} was abandoned on cancellation; its thread runs on",
                          None, Stage.EXECUTE, tier="abandoned") from None
        except BaseException as exc:  # noqa: BLE001
            raise self._call_failure(instance, call, operation, exc) from None
        finally:
            instance.running.pop(call.id, None)
        if type(result) not in _SIMPLE or result != result:  # NaN is not JSON either
            try:  # values cross as JSON in every form: inline gives the same shapes
                result = json.loads(json.dumps(result, allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise _failed("result_not_serialisable",
                              f"{call.target} returned a {type(result).__name__}, which cannot cross "
                              f"a boundary as JSON: {exc}", exc, Stage.EXECUTE) from None
        return Returned(result)

    async def _on_thread(self, instance: _Instance, run: _Running, operation: str, fn: Callable[..., Any],
                         args: tuple[Any, ...], kwargs: dict[str, Any],
                         fast: collections.Counter[str]) -> Any:
        """Run ``fn`` on an inline thread; the loop waits on a future, free meanwhile."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        run.future = fut
        state, exclusive = run.state, run.exclusive

        def job() -> None:
            token = _CALL.set(state)
            t0 = time.perf_counter()
            try:
                outcome: tuple[bool, Any] = (True, fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - component code; delivered to the loop
                outcome = (False, exc)
            finally:
                _CALL.reset(token)
            elapsed = time.perf_counter() - t0
            with contextlib.suppress(RuntimeError):  # the hub closed meanwhile
                loop.call_soon_threadsafe(_deliver, fut, outcome, elapsed, fast, operation, instance, exclusive)

        self._threads.submit(job)
        return await fut

    @staticmethod
    def _call_failure(instance: _Instance, call: ActionCall, operation: str, exc: BaseException) -> Failed:
        if isinstance(exc, TypeError) and not instance.collaborator:
            params = _rt._params(instance.methods[operation], 0)
            misfit = _rt._misfit(params, call.args, call.kwargs) if params is not None else None
            if misfit:
                return _failed("invalid_arguments", f"{call.target} {misfit}", exc, Stage.DISPATCH,
                               params=params)
        return classify(exc, Stage.EXECUTE, str(call.target))

    async def cancel(self, instance: _Instance, call: ActionCall, *, force: bool) -> CancelTier | None:
        run = instance.running.get(call.id)
        if run is None:
            return None
        run.state.cancelled = True
        if run.task is not None and not run.task.done():
            run.task.cancel()
            return None
        fut = run.future
        if fut is not None and not fut.done():
            # A thread cannot be interrupted: release the caller now, let the
            # thread see the flag (or not), and keep the instance away from
            # later exclusive calls while it runs on.
            if run.exclusive:
                instance.runaways += 1
            fut.set_exception(_Abandoned())
            return CancelTier.ABANDONED
        return None

    async def unload(self, loaded: _Loaded, instance: _Instance | None) -> None:
        if instance is not None:
            instance.alive = False
            close = getattr(instance.obj, "close", None) if loaded.is_class else None
            if callable(close):
                with contextlib.suppress(Exception):
                    close()

    def health(self, instance: _Instance) -> Health:
        if not instance.alive:
            return _DEAD
        if instance.runaways:
            return Health(False, detail="an abandoned operation still runs on this instance")
        return _ALIVE

    async def close(self) -> None:
        return None


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class _Abandoned(Exception):
    """The caller stopped waiting for an operation's thread (cancellation)."""


def _deliver(fut: asyncio.Future[Any], outcome: tuple[bool, Any], elapsed: float,
             fast: collections.Counter[str], operation: str, instance: _Instance, exclusive: bool) -> None:
    """On the loop: a thread finished ``operation``; learn its speed, hand over its result."""
    if fut.done():  # abandoned: the instance is free of this runaway now
        if exclusive and instance.runaways:
            instance.runaways -= 1
    else:
        ok, value = outcome
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
    if fast[operation] >= 0:
        fast[operation] = fast[operation] + 1 if elapsed < FAST else 0

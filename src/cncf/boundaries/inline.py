"""The ``inline`` form: Python importable in the hub's own process.

No isolation but exception containment — for trusted, light components and
for measuring the engine itself.  Everything a component raises —
``KeyboardInterrupt`` and ``SystemExit`` included — becomes an Observation.

Where operations run.  Asynchronous operations run as tasks on the hub's
loop and are cancelled cooperatively (``task.cancel()``).  Synchronous ones
run on the hub's inline threads, so the loop stays free: other components
keep answering, ``concurrent`` operations overlap, and a deadline is met at
the deadline.  Cancellation is cooperative first, as in every form: the
call's flag is set (``cncf.collaborator.cancelled()``) and the engine waits
``cancel_grace``.  A thread cannot be pre-empted, so where another form
would kill its worker the inline form releases the caller (tier
``abandoned``); the thread runs on unobserved, and while an abandoned
*exclusive* operation still runs the instance reports itself dead, so the
next call gets a fresh instance (the restart policy applies) instead of
sharing the old one with a runaway.

The hop to a thread costs tens of microseconds, more than many operations.
An operation that has finished in under ``FAST`` seconds ``PROMOTE`` times in
a row on a thread is therefore *promoted* to run on the loop directly (as a
function call, no hop); when it blocks the loop for more than ``SLOW``
seconds it is demoted back to threads; after ``DEMOTIONS`` demotions each
within ``STRIKE_WINDOW`` runs of the previous one it stays there for good.
A lone demotion now and then is the hub's process being preempted, not the
operation's fault; an operation that really blocks is demoted every time.  The worst case is a few calls that block the
loop, and whose overshoot of a deadline is then reported after the fact
(tier ``late``).

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
import inspect
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from cncf import failures
from cncf.boundaries.base import BoundaryContext, Health, OperationInfo, Returned, Scope
from cncf.call import ActionCall, CancelTier
from cncf.manifest import ComponentSpec
from cncf.observation import Failed, Stage
from cncf.worker import runtime as _rt

_SIMPLE = (str, int, float, bool, type(None))
_ALIVE, _DEAD = Health(True), Health(False)
_CLASSES = ("class", "collaborator")  # kinds whose instance the boundary created (and closes)
FAST = 100e-6  # an operation this quick is cheaper to run on the loop than to hop to a thread
PROMOTE = 16  # consecutive fast runs on a thread before an operation runs on the loop
SLOW = 1e-3  # a promoted operation that blocks the loop this long goes back to threads
DEMOTIONS = 3  # demotions in a row (each within STRIKE_WINDOW loop runs) that are final
STRIKE_WINDOW = 256
_IDLE = 30.0  # seconds an idle inline thread waits for work before it exits

# The running call, per thread and per task: the worker runtime's accessors
# (``cncf.collaborator.cancelled()`` and friends) read it from here.
_CALL: contextvars.ContextVar[Any] = contextvars.ContextVar("cncf_call", default=None)
_rt.use_call_lookup(_CALL.get)


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
    return Failed(failures.component_failure(code, message, exc, stage, attrs))


def _staged(record: dict[str, Any], stage: Stage) -> Failed:
    """A load failure record from the runtime, at the stage it belongs to."""
    if record.get("code") == "constructor_failed":
        stage = Stage.INSTANTIATE
    return Failed(failures.from_record(record, stage))


class InlineLoaded:
    __slots__ = ("spec", "slot", "operations", "fast", "demoted")

    def __init__(self, spec: ComponentSpec, slot: Any) -> None:
        self.spec = spec
        self.slot = slot  # the worker runtime's Slot: entry, target, kind, operations
        self.operations = [OperationInfo.from_wire(op) for op in slot.operations]
        self.fast: collections.Counter[str] = collections.Counter()  # consecutive fast thread runs
        self.demoted: collections.Counter[str] = collections.Counter()

    @property
    def entry(self) -> str:
        return str(self.slot.entry)


class InlineInstance:
    __slots__ = ("obj", "methods", "invoke", "alive", "runaways", "fast", "demoted", "coroutine")

    def __init__(
        self, obj: Any, methods: dict[str, Any] | None, invoke: Callable[..., Any] | None, loaded: InlineLoaded
    ) -> None:
        self.fast, self.demoted = loaded.fast, loaded.demoted  # speed survives a restart
        self.obj = obj
        self.methods = methods or {}
        self.invoke = invoke  # a Collaborator's own invoke, else None
        self.alive = True
        self.runaways = 0  # abandoned exclusive operations whose threads (or tasks) still run
        self.coroutine: dict[str, bool] = {}  # operation -> is its function a coroutine function (asked once)


class InlineBoundary:
    form = "inline"

    def __init__(self, context: BoundaryContext) -> None:
        self.context = context
        self._threads = _Threads()

    async def load(self, spec: ComponentSpec) -> InlineLoaded:
        for folder in {spec.base_dir, spec.artifact} if spec.artifact.is_dir() else ():
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
        try:
            return InlineLoaded(spec, _rt.load_entry(spec.entry or "", init=spec.init))
        except _rt.LoadFailed as exc:
            raise _staged(exc.record, Stage.LOAD) from None

    async def instantiate(self, loaded: InlineLoaded) -> InlineInstance:
        try:
            obj, bound, invoke = _rt.instantiate(loaded.slot, loaded.spec.init)
        except _rt.LoadFailed as exc:
            raise _staged(exc.record, Stage.INSTANTIATE) from None
        return InlineInstance(obj, bound, invoke, loaded)

    async def invoke(
        self, instance: InlineInstance, call: ActionCall, operation: str, *, concurrent: bool, scope: Scope
    ) -> Returned:
        if instance.invoke is not None:
            fn: Callable[..., Any] = instance.invoke
            args: tuple[Any, ...] = (operation, list(call.args), dict(call.kwargs))
            kwargs: dict[str, Any] = {}
        else:
            fn, args, kwargs = instance.methods[operation], call.args, call.kwargs
        state = _rt.CallState(None, call.id, operation, call.context.traceparent, call.context.tracestate)
        loaded_fast = instance.fast
        is_async = instance.coroutine.get(operation)
        if is_async is None:  # inspect's answer costs ten calls: asked once per operation and instance
            is_async = instance.coroutine[operation] = inspect.iscoroutinefunction(fn)
        if is_async or loaded_fast[operation] >= PROMOTE:
            # On the loop, as a plain function call: nothing to interrupt, nothing to register.
            t0 = time.perf_counter()
            token = _CALL.set(state)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - component code, KeyboardInterrupt included
                raise self._call_failure(instance, call, operation, exc) from None
            finally:
                _CALL.reset(token)
            if time.perf_counter() - t0 > SLOW and not is_async:
                _demote(instance, operation)
            elif loaded_fast[operation] >= PROMOTE:
                loaded_fast[operation] += 1  # counts on-loop runs since the promotion
        else:
            result = await self._on_thread(instance, state, call, operation, fn, args, kwargs, not concurrent, scope)
        if type(result) not in _SIMPLE and inspect.isawaitable(result):
            result = await self._on_task(instance, state, call, operation, result, not concurrent, scope)
        if type(result) not in _SIMPLE or result != result:  # NaN is not JSON either
            try:  # values cross as JSON in every form: inline gives the same shapes
                result = json.loads(json.dumps(_rt.exact_json(result), allow_nan=False))
            except _rt.NotExact as exc:
                raise _failed(
                    "result_not_serialisable",
                    f"{call.target} returned a {type(result).__name__}, which cannot cross "
                    f"a boundary as JSON: {exc}; {exc.hint}",
                    None,
                    Stage.EXECUTE,
                    type=exc.type_name,
                    hint=exc.hint,
                ) from None
            except (TypeError, ValueError) as exc:
                raise _failed(
                    "result_not_serialisable",
                    f"{call.target} returned a {type(result).__name__}, which cannot cross a boundary as JSON: {exc}",
                    exc,
                    Stage.EXECUTE,
                ) from None
        return Returned(result)

    async def _on_thread(
        self,
        instance: InlineInstance,
        state: Any,
        call: ActionCall,
        operation: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exclusive: bool,
        scope: Scope,
    ) -> Any:
        """Run ``fn`` on an inline thread; the loop waits on a future, free meanwhile."""
        loop = asyncio.get_running_loop()
        fut = scope.operation_future()
        fast = instance.fast

        def job() -> None:
            token = _CALL.set(state)
            t0 = time.perf_counter()
            try:
                outcome: tuple[bool, Any] = (True, fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - component code; delivered to the loop
                outcome = (False, _Raised(exc))
            finally:
                _CALL.reset(token)
            elapsed = time.perf_counter() - t0
            with contextlib.suppress(RuntimeError):  # the hub closed meanwhile
                loop.call_soon_threadsafe(_deliver, fut, outcome, elapsed, fast, operation, instance, exclusive)

        self._threads.submit(job)

        def cooperative() -> None:
            state.cancelled = True

        scope.attach(
            fut,
            cooperative=cooperative,
            force=lambda: _abandon(instance, fut, exclusive),
            force_tier=CancelTier.ABANDONED,
        )
        return await self._outcome(instance, call, operation, fut, scope)

    async def _on_task(
        self,
        instance: InlineInstance,
        state: Any,
        call: ActionCall,
        operation: str,
        awaitable: Any,
        exclusive: bool,
        scope: Scope,
    ) -> Any:
        """Await what an operation returned, as a task of its own on the hub's loop;
        cancelled cooperatively with ``task.cancel()`` (and its call's flag)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        context.run(_CALL.set, state)
        task = loop.create_task(_awaited(awaitable), context=context)
        fut = scope.operation_future()

        def chain(t: asyncio.Task[tuple[bool, Any]]) -> None:
            if (
                t.cancelled()
                and inspect.iscoroutine(awaitable)
                and inspect.getcoroutinestate(awaitable) == "CORO_CREATED"
            ):
                awaitable.close()  # cancelled before its first step: it never ran (no "never awaited" warning)
            if fut.done():  # abandoned: the instance is free of this runaway now
                if exclusive and instance.runaways:
                    instance.runaways -= 1
                if not t.cancelled():
                    t.exception()
            elif t.cancelled():
                fut.set_exception(_TaskCancelled())
            else:
                ok, value = t.result()
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(_Raised(value))

        task.add_done_callback(chain)

        def cooperative() -> None:
            state.cancelled = True
            task.cancel()

        scope.attach(
            fut,
            cooperative=cooperative,
            force=lambda: _abandon(instance, fut, exclusive),
            force_tier=CancelTier.ABANDONED,
        )
        return await self._outcome(instance, call, operation, fut, scope)

    async def _outcome(
        self, instance: InlineInstance, call: ActionCall, operation: str, fut: asyncio.Future[Any], scope: Scope
    ) -> Any:
        """The operation's result through the scope (``Interrupted`` and the caller's
        own ``CancelledError`` pass through; the operation goes on)."""
        try:
            return await scope.wait(fut)
        except _Raised as raised:
            raise self._call_failure(instance, call, operation, raised.exc) from None
        except _TaskCancelled:
            raise _failed(
                "cancelled", f"{call.target} stopped on cancellation", None, Stage.EXECUTE, tier="cooperative"
            ) from None
        except _Abandoned:
            raise _failed(
                "cancelled",
                f"{call.target} was abandoned on cancellation; its thread runs on",
                None,
                Stage.EXECUTE,
                tier="abandoned",
            ) from None

    @staticmethod
    def _call_failure(instance: InlineInstance, call: ActionCall, operation: str, exc: BaseException) -> Failed:
        if isinstance(exc, TypeError) and instance.invoke is None:
            params = _rt.parameters(instance.methods[operation], 0)
            misfit = _rt.misfit(params, call.args, call.kwargs) if params is not None else None
            if misfit:
                return _failed("invalid_arguments", f"{call.target} {misfit}", exc, Stage.DISPATCH, params=params)
        return Failed(failures.component_exception(exc, Stage.EXECUTE, str(call.target)))

    async def unload(self, loaded: InlineLoaded, instance: InlineInstance | None) -> None:
        if instance is not None:
            instance.alive = False
            close = getattr(instance.obj, "close", None) if loaded.slot.kind in _CLASSES else None
            if callable(close):
                with contextlib.suppress(Exception):
                    close()

    def health(self, instance: InlineInstance) -> Health:
        if not instance.alive:
            return _DEAD
        if instance.runaways:
            return Health(False, detail="an abandoned operation still runs on this instance")
        return _ALIVE

    async def close(self) -> None:
        return None


def _demote(instance: InlineInstance, operation: str) -> None:
    """A promoted operation blocked the loop: back to threads, for good on the third strike."""
    fast, demoted = instance.fast, instance.demoted
    recent = fast[operation] - PROMOTE < STRIKE_WINDOW
    demoted[operation] = demoted[operation] + 1 if recent else 1
    fast[operation] = 0 if demoted[operation] < DEMOTIONS else -(1 << 30)


async def _awaited(awaitable: Any) -> tuple[bool, Any]:
    """Await an operation's awaitable; what it raises (``KeyboardInterrupt``
    included) is data, only its cancellation is the task's own."""
    try:
        return True, await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - component code
        return False, exc


def _abandon(instance: InlineInstance, fut: asyncio.Future[Any], exclusive: bool) -> None:
    """The forced tier of the inline form.  A thread cannot be interrupted (nor a
    task that ignores its cancellation): the operation is abandoned — it runs
    on unobserved — and while an abandoned exclusive operation runs the
    instance reports itself dead, so the next call gets a fresh one."""
    if not fut.done():
        if exclusive:
            instance.runaways += 1
        fut.set_exception(_Abandoned())


class _Abandoned(Exception):
    """The caller stopped waiting for an operation's thread (cancellation)."""


class _TaskCancelled(Exception):
    """An operation's task ended on its (cooperative) cancellation."""


class _Raised(Exception):
    """What component code raised, carried to the loop as data (a
    ``CancelledError`` or ``KeyboardInterrupt`` of the component's included)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc)
        self.exc = exc


def _deliver(
    fut: asyncio.Future[Any],
    outcome: tuple[bool, Any],
    elapsed: float,
    fast: collections.Counter[str],
    operation: str,
    instance: InlineInstance,
    exclusive: bool,
) -> None:
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

"""The ``inline`` form: Python importable in the hub's own process.

No isolation but exception containment — for trusted, light components and
for measuring the engine itself.  Synchronous operations run directly on the
event loop (no thread hop), so they cannot be pre-empted: a run deadline they
overshoot is reported after the fact (``timed_out``, tier ``late``) and their
result discarded.  Asynchronous operations run as a task and can be cancelled
cooperatively.  Everything a component raises — ``KeyboardInterrupt`` and
``SystemExit`` included — becomes an Observation.

Discovery of operations, argument checking and the mapping of exceptions to
codes are the worker runtime's (``cncf.worker.runtime``, importable here
because it is standard-library only and free of import-time effects): one
implementation, so an operation behaves the same inline and in a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import sys
from typing import Any

from cncf import collaborator as _collab
from cncf.boundaries.base import BoundaryContext, Health, OperationInfo, Returned
from cncf.call import ActionCall
from cncf.manifest import ComponentSpec
from cncf.observation import Failed, Stage
from cncf.wire.channel import failure_observation
from cncf.worker import runtime as _rt

_SIMPLE = (str, int, float, bool, type(None))
_ALIVE, _DEAD = Health(True), Health(False)


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
    __slots__ = ("spec", "target", "is_class", "collaborator", "operations", "params", "early")

    def __init__(self, spec: ComponentSpec, target: Any, is_class: bool) -> None:
        self.spec = spec
        self.target = target
        self.is_class = is_class
        self.collaborator = is_class and _rt._is_collaborator(target)
        self.operations: list[OperationInfo] = []
        self.params: dict[str, Any] = {}
        self.early: _Instance | None = None


class _Instance:
    __slots__ = ("obj", "methods", "collaborator", "running", "alive")

    def __init__(self, obj: Any, methods: dict[str, Any], collaborator: bool) -> None:
        self.obj = obj
        self.methods = methods
        self.collaborator = collaborator
        self.running: dict[str, tuple[_collab.CallState, asyncio.Task[Any] | None]] = {}
        self.alive = True


class InlineBoundary:
    form = "inline"

    def __init__(self, context: BoundaryContext) -> None:
        self.context = context

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
                loaded.early = _Instance(early, {}, True)
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
            return _Instance(obj, {}, True)
        return _Instance(obj, {op.name: getattr(obj, op.name) for op in loaded.operations}, False)

    async def invoke(self, instance: _Instance, call: ActionCall, operation: str, *,
                     concurrent: bool) -> Returned:
        state = _collab.CallState(call.id, operation)
        token = _collab._current.set(state)
        instance.running[call.id] = (state, None)
        try:
            if instance.collaborator:
                result = instance.obj.invoke(operation, list(call.args), dict(call.kwargs))
            else:
                result = instance.methods[operation](*call.args, **call.kwargs)
            if type(result) not in _SIMPLE and inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                instance.running[call.id] = (state, task)
                result = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the engine's own task is being cancelled
            raise _failed("cancelled", f"{call.target} stopped on cancellation", None, Stage.EXECUTE,
                          tier="cooperative") from None
        except BaseException as exc:  # noqa: BLE001
            raise self._call_failure(instance, call, operation, exc) from None
        finally:
            _collab._current.reset(token)
            instance.running.pop(call.id, None)
        if type(result) not in _SIMPLE or result != result:  # NaN is not JSON either
            try:  # values cross as JSON in every form: inline gives the same shapes
                result = json.loads(json.dumps(result, allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise _failed("result_not_serialisable",
                              f"{call.target} returned a {type(result).__name__}, which cannot cross "
                              f"a boundary as JSON: {exc}", exc, Stage.EXECUTE) from None
        return Returned(result)

    @staticmethod
    def _call_failure(instance: _Instance, call: ActionCall, operation: str, exc: BaseException) -> Failed:
        if isinstance(exc, TypeError) and not instance.collaborator:
            params = _rt._params(instance.methods[operation], 0)
            misfit = _rt._misfit(params, call.args, call.kwargs) if params is not None else None
            if misfit:
                return _failed("invalid_arguments", f"{call.target} {misfit}", exc, Stage.DISPATCH,
                               params=params)
        return classify(exc, Stage.EXECUTE, str(call.target))

    async def cancel(self, instance: _Instance, call: ActionCall, *, force: bool) -> None:
        entry = instance.running.get(call.id)
        if entry is None:
            return
        state, task = entry
        state.cancelled = True
        if task is not None and not task.done():
            task.cancel()

    async def unload(self, loaded: _Loaded, instance: _Instance | None) -> None:
        if instance is not None:
            instance.alive = False
            close = getattr(instance.obj, "close", None) if loaded.is_class else None
            if callable(close):
                with contextlib.suppress(Exception):
                    close()

    def health(self, instance: _Instance) -> Health:
        return _ALIVE if instance.alive else _DEAD

    async def close(self) -> None:
        return None

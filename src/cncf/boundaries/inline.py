"""The ``inline`` form: Python importable in the hub's own process.

No isolation but exception containment — for trusted, light components and
for measuring the engine itself.  Synchronous operations run directly on the
event loop (no thread hop), so they cannot be pre-empted: a run deadline they
overshoot is reported after the fact (``timed_out``, tier ``late``) and their
result discarded.  Asynchronous operations run as a task and can be cancelled
cooperatively.  Everything a component raises — ``KeyboardInterrupt`` and
``SystemExit`` included — becomes an Observation.
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
from cncf.boundaries.base import BoundaryContext, Health, OperationInfo, Parameter, Returned
from cncf.call import ActionCall
from cncf.manifest import ComponentSpec
from cncf.observation import Code, Failed, Observation, Stage

_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "any",
    inspect.Parameter.KEYWORD_ONLY: "named",
    inspect.Parameter.VAR_POSITIONAL: "varargs",
    inspect.Parameter.VAR_KEYWORD: "varkw",
}
_SIMPLE = (str, int, float, bool, type(None))
_ALIVE, _DEAD = Health(True), Health(False)


def _params(fn: Any, bound: bool = False) -> tuple[Parameter, ...] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if bound and params:
        params = params[1:]  # self
    return tuple(
        Parameter(
            p.name,
            _KINDS[p.kind],
            p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD),
        )
        for p in params
    )


def _discover(target: Any, is_class: bool) -> dict[str, Any]:
    """Public callables: methods of a class, or functions defined in a module."""
    found: dict[str, Any] = {}
    if is_class:
        for name, member in inspect.getmembers(target):
            if name.startswith("_") or not callable(member) or inspect.isclass(member):
                continue
            found[name] = member
    else:
        for name, member in vars(target).items():
            if (
                not name.startswith("_")
                and inspect.isfunction(member)
                and member.__module__ == target.__name__
            ):
                found[name] = member
    return found


class _Loaded:
    __slots__ = ("spec", "target", "is_class", "collaborator", "operations", "early")

    def __init__(self, spec: ComponentSpec, target: Any, is_class: bool) -> None:
        self.spec = spec
        self.target = target
        self.is_class = is_class
        self.collaborator = is_class and issubclass(target, _collab.Collaborator)
        self.operations: list[OperationInfo] = []
        self.early: _Instance | None = None


class _Instance:
    __slots__ = ("obj", "methods", "collaborator", "running", "alive")

    def __init__(self, obj: Any, methods: dict[str, Any], collaborator: bool) -> None:
        self.obj = obj
        self.methods = methods
        self.collaborator = collaborator
        self.running: dict[str, tuple[_collab.CallState, asyncio.Task[Any] | None]] = {}
        self.alive = True


def _failure(code: Code, message: str, exc: BaseException | None, stage: Stage, **attrs: Any) -> Failed:
    return Failed(Observation.of(code, message, stage=stage, cause=exc, **attrs))


def classify(exc: BaseException, stage: Stage, what: str) -> Failed:
    """The one mapping from an exception raised by component code to an Observation."""
    if isinstance(exc, _collab.Failure):
        return _failure(Code.OPERATION_FAILED, exc.message, exc, stage,
                        component_code=exc.code, **exc.attributes)
    if isinstance(exc, _collab.Cancelled):
        return _failure(Code.CANCELLED, f"{what} stopped on cancellation", exc, stage)
    if isinstance(exc, RecursionError):
        return _failure(Code.STACK_OVERFLOW, f"{what} overflowed the stack: {exc}", exc, stage)
    if isinstance(exc, MemoryError):
        return _failure(Code.OUT_OF_MEMORY, f"{what} ran out of memory", exc, stage)
    if not isinstance(exc, Exception):
        return _failure(Code.EXIT_REQUESTED, f"{what} raised {type(exc).__name__}({exc})", exc, stage)
    code = Code.CONSTRUCTOR_FAILED if stage is Stage.INSTANTIATE else Code.RAISED
    return _failure(code, f"{what} raised {type(exc).__name__}: {exc}", exc, stage)


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
                raise _failure(Code.ENTRY_NOT_FOUND, f"module {modname!r} not found", exc, Stage.LOAD,
                               entry=entry) from None
            raise _failure(Code.DEPENDENCY_UNRESOLVED,
                           f"importing {modname!r} needs {exc.name!r}, which is not installed",
                           exc, Stage.LOAD, missing=exc.name) from None
        except BaseException as exc:  # noqa: BLE001 - import-time code is component code
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise _failure(Code.IMPORT_FAILED, f"importing {modname!r} raised {type(exc).__name__}: {exc}",
                           exc, Stage.LOAD) from None
        target: Any = module
        if attr:
            target = module
            for part in attr.split("."):
                target = getattr(target, part, None)
                if target is None:
                    raise _failure(Code.ENTRY_NOT_FOUND, f"{modname!r} has no attribute {attr!r}", None,
                                   Stage.LOAD, entry=entry,
                                   candidates=sorted(n for n in vars(module) if not n.startswith("_")))
        loaded = _Loaded(spec, target, inspect.isclass(target))
        if loaded.collaborator:
            names = list(target.OPERATIONS or ())
            if not names:  # the instance itself knows its operations: create it now, once
                loaded.early = await self.instantiate(loaded)
                names = list(loaded.early.obj.operations())
            loaded.operations = [OperationInfo(str(n)) for n in names]
        else:
            loaded.operations = [
                OperationInfo(name, _params(fn, _takes_self(target, name, loaded.is_class)),
                              inspect.getdoc(fn) or "")
                for name, fn in sorted(_discover(target, loaded.is_class).items())
            ]
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
        methods = {op.name: getattr(obj, op.name) for op in loaded.operations}
        return _Instance(obj, methods, False)

    async def invoke(self, instance: _Instance, call: ActionCall, operation: str, *,
                     concurrent: bool) -> Returned:
        state = _collab.CallState(call.id, operation)
        token = _collab._current.set(state)
        task: asyncio.Task[Any] | None = None
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
            raise _failure(Code.CANCELLED, f"{call.target} stopped on cancellation", None,
                           Stage.EXECUTE) from None
        except TypeError as exc:
            if not instance.collaborator and _bad_arguments(instance.methods[operation], call):
                raise _failure(Code.INVALID_ARGUMENTS, f"{call.target}: {exc}", exc, Stage.DISPATCH,
                               signature=_signature(instance.methods[operation])) from None
            raise classify(exc, Stage.EXECUTE, str(call.target)) from None
        except BaseException as exc:  # noqa: BLE001
            raise classify(exc, Stage.EXECUTE, str(call.target)) from None
        finally:
            _collab._current.reset(token)
            instance.running.pop(call.id, None)
        if type(result) not in _SIMPLE or result != result:  # NaN is not JSON either
            try:  # values cross as JSON in every form: inline gives the same shapes
                result = json.loads(json.dumps(result, allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise _failure(Code.RESULT_NOT_SERIALISABLE,
                               f"{call.target} returned a {type(result).__name__}, which cannot cross "
                               f"a boundary as JSON: {exc}", exc, Stage.EXECUTE) from None
        return Returned(result)

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


def _takes_self(target: Any, name: str, is_class: bool) -> bool:
    if not is_class:
        return False
    raw = inspect.getattr_static(target, name, None)
    return not isinstance(raw, staticmethod | classmethod)


def _signature(fn: Any) -> str:
    try:
        return f"{getattr(fn, '__name__', 'operation')}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return ""


def _bad_arguments(fn: Any, call: ActionCall) -> bool:
    """Did the TypeError come from binding the arguments (not from inside the body)?"""
    try:
        inspect.signature(fn).bind(*call.args, **call.kwargs)
    except TypeError:
        return True
    except ValueError:
        return False
    return False

# Types of the worker runtime as the hub uses it: its face to the hub
# (HUB_API: the inline form) and the component API (cncf.collaborator).
# Nothing private is declared here, so mypy refuses a hub module that reaches
# past that face.  The runtime itself carries no annotations: it runs
# unchanged on CPython 3.8 and PyPy 3.9 inside components' environments.
from collections.abc import Callable, Mapping
from typing import Any

PROTOCOL: int
MAX_BODY: int
HUB_API: tuple[str, ...]

class Cancelled(BaseException): ...

class Failure(Exception):
    code: str
    message: str
    attributes: dict[str, Any]
    def __init__(self, code: object, message: str = ..., **attributes: Any) -> None: ...

class Rejected(Exception):
    message: str
    attributes: dict[str, Any]
    def __init__(self, message: object = ..., **attributes: Any) -> None: ...

class Collaborator:
    OPERATIONS: tuple[Any, ...] | list[Any]
    def operations(self) -> list[Any]: ...
    def invoke(self, operation: str, args: list[Any], kwargs: dict[str, Any]) -> Any: ...

class CallState:
    id: str | None
    operation: str
    cancelled: bool
    rid: int | None
    tier: str | None
    traceparent: str | None
    tracestate: str | None
    def __init__(
        self,
        rid: int | None,
        call: str | None,
        operation: str,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> None: ...

def use_call_lookup(lookup: Callable[[], CallState | None]) -> Callable[[], CallState | None]: ...
def cancelled() -> bool: ...
def check_cancelled() -> None: ...
def current_call() -> CallState | None: ...

class LoadFailed(Exception):
    record: dict[str, Any]
    def __init__(self, record: dict[str, Any]) -> None: ...

class Slot:
    entry: str
    target: Any
    kind: str
    operations: list[dict[str, Any]]
    params: dict[str, Any]
    obj: Any
    bound: dict[str, Any] | None
    invoke: Callable[..., Any] | None
    early: Any

def load_entry(entry: str, infer_entry: bool = ..., init: list[Any] | dict[str, Any] | None = ...) -> Slot: ...
def instantiate(
    slot: Slot, init: list[Any] | dict[str, Any] | None = ...
) -> tuple[Any, dict[str, Any] | None, Callable[..., Any] | None]: ...
def failure_record(
    code: str, message: str, exc: BaseException | None = ..., attributes: Mapping[str, Any] | None = ...
) -> dict[str, Any]: ...
def classify(exc: BaseException, what: str, rejects: bool = ...) -> tuple[str, str]: ...
def parameters(f: Any, drop: int) -> list[dict[str, Any]] | None: ...
def misfit(params: list[dict[str, Any]], args: Any, kwargs: Any) -> str | None: ...

class NotExact(TypeError):
    type_name: str
    hint: str
    def __init__(self, message: str, type_name: str, hint: str) -> None: ...

def exact_json(value: Any, depth: int = ...) -> Any: ...

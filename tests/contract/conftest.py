"""The contract suite: one behavioural suite for every form and both doors.

The brief (section 3) says a test that passes for one form and has no twin
for another is a gap.  Every test here therefore runs over the product of

* the **form** — ``inline``, ``python``, ``command`` (Node.js, on the bundled
  ``examples/node-counter/worker.js``) and ``jar`` — each loading the same
  component (``tests/fixtures/contract``: one Python class for inline and
  python, its Node.js and Java twins), and
* the **door** — ``async`` (``cncf.AsyncHub`` on a loop of its own; concurrent
  callers are tasks) and ``sync`` (``cncf.Hub``; concurrent callers are
  threads, as in a threaded web app or a thread pool),

with the same assertions: Observation ``code`` / ``stage`` and values, never
message text.  Timings use short limits (0.2-0.5 s) and generous upper bounds
so that a loaded two-core machine decides nothing but the order of events.

The ``hub`` fixture of this folder is a :class:`Door` (the hub under test
through one door), not the root conftest's ``cncf.Hub``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

import cncf
from cncf.engine.events import CallFinished
from tests.conftest import FIXTURES, require_tool
from tests.jar.conftest import fat_jar, jar_home, javac

T = TypeVar("T")

CONTRACT = FIXTURES / "contract"
PYTHON_DIR = CONTRACT / "python"
COMMAND_DIR = CONTRACT / "command"
NODE_WORKER = Path(__file__).resolve().parents[2] / "examples" / "node-counter" / "worker.js"
NAME = "contract"

FORMS = ("inline", "python", "command", "jar")
DOORS = ("async", "sync")
#: ``CNCF_TEST_PLACEMENT=ray`` (with ``RAY_ADDRESS``) runs the whole suite with the
#: boundary of every process form placed on a node of that Ray cluster: the same
#: assertions, only where the worker lives changes (docs/placement.md).
PLACED: dict[str, Any] = (
    {"placement": os.environ["CNCF_TEST_PLACEMENT"]} if os.environ.get("CNCF_TEST_PLACEMENT") else {}
)
#: Generous bound for "this happened promptly" on a loaded machine; every
#: such assertion compares against a limit of 0.2-0.5 s and an operation that
#: would take several seconds if the contract were broken.
PROMPT = 2.0


# ---------------------------------------------------------------------------
# Forms
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Form:
    """One execution form of the contract component."""

    name: str
    target: Path  # what ``hub.load`` is given (its manifest names the component "contract")
    entry: str  # the Contract class, as this form names it
    broken_entry: str  # its twin whose constructor fails
    keys: dict[str, Any]  # [component] keys that place it in a manifest written elsewhere

    @property
    def process(self) -> bool:
        """Whether the component lives in a process of its own (pid, crash, kill)."""
        return self.name != "inline"


@pytest.fixture(scope="session")
def contract_jar(jvm: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Java twin, compiled at test time, its manifest inside the jar."""
    out = tmp_path_factory.mktemp("contract-jar")
    classes = javac(sorted((CONTRACT / "jar" / "src").rglob("*.java")), out / "classes", parameters=True)
    return fat_jar(out / "contract.jar", [classes], resources=[CONTRACT / "jar" / "resources"])


def _form(name: str, request: pytest.FixtureRequest) -> Form:
    if name in ("inline", "python"):
        return Form(
            name,
            CONTRACT / name,
            "contract_component:Contract",
            "contract_component:Broken",
            {"form": name, "entry": "contract_component:Contract", "artifact": str(PYTHON_DIR)},
        )
    if name == "command":
        require_tool("node")
        js = COMMAND_DIR / "contract.js"
        return Form(
            name,
            COMMAND_DIR,
            "contract.js:Contract",
            "contract.js:Broken",
            {"form": "command", "command": ["node", str(NODE_WORKER)], "entry": f"{js}:Contract"},
        )
    if name == "jar":
        jar: Path = request.getfixturevalue("contract_jar")
        return Form(
            name,
            jar,
            "contract.Contract",
            "contract.Broken",
            {"form": "jar", "entry": "contract.Contract", "artifact": str(jar), "isolation": "process"},
        )
    raise ValueError(name)


@pytest.fixture(params=FORMS)
def form(request: pytest.FixtureRequest) -> Form:
    return _form(request.param, request)


# ---------------------------------------------------------------------------
# Doors
# ---------------------------------------------------------------------------


class Door(Protocol):
    """The hub under test, seen the same way whichever door it is used through."""

    kind: str

    def load(self, target: str | os.PathLike[str], **overrides: Any) -> cncf.ComponentHandle: ...

    def call(self, selector: str, args: Any = None, **kw: Any) -> cncf.Outcome: ...

    def submit(self, selector: str, args: Any = None, **kw: Any) -> concurrent.futures.Future[cncf.Outcome]:
        """Start a call from another caller (a thread, or a task) and return at once."""
        ...

    def cancel(self, call_id: str) -> bool: ...

    def inspect(self, name: str) -> dict[str, Any]: ...

    def cancel_own(self, selector: str, args: Any, *, how: str, after: float, call_id: str) -> str | cncf.Outcome:
        """Start a call and have its own caller give up after ``after`` seconds:
        ``task`` (its asyncio task is cancelled), ``wait_for`` (``asyncio.wait_for``
        times out), ``cancel`` (``hub.cancel(call_id)`` from another caller: a
        thread with the sync hub).  Returns the Outcome the caller got, or
        ``"cancelled"`` when its task was cancelled (no Outcome)."""
        ...

    def event(self, call_id: str, timeout: float = 10.0) -> CallFinished:
        """The engine's event for ``call_id`` (``AsyncHub.subscribe``), once the
        call's operation has ended; fails (never hangs) after ``timeout`` seconds."""
        ...

    def unload(self, name: str) -> bool: ...

    def reload(self, name: str) -> cncf.ComponentHandle: ...

    def close(self) -> None:
        """Close the hub (idempotent); the door itself stays usable until :meth:`shutdown`."""
        ...

    def shutdown(self) -> None:
        """Release the door's own threads (after :meth:`close`)."""
        ...


class _Events:
    """The engine's events, collected from the hub's loop thread."""

    def __init__(self) -> None:
        self._seen: dict[str, CallFinished] = {}
        self._lock = threading.Lock()

    def __call__(self, event: CallFinished) -> None:
        with self._lock:
            self._seen[event.call.id] = event

    def event(self, call_id: str, timeout: float = 10.0) -> CallFinished:
        found: list[CallFinished] = []

        def seen() -> bool:
            with self._lock:
                hit = self._seen.get(call_id)
            if hit is not None:
                found.append(hit)
            return hit is not None

        wait_until(seen, f"the event of {call_id!r} arrives", timeout)
        return found[0]


class SyncDoor:
    """``cncf.Hub``: every concurrent caller is a thread of its own."""

    kind = "sync"

    def __init__(self, home: Path) -> None:
        self.hub = cncf.Hub(home=home)
        self._callers = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="caller")
        self._events = _Events()
        subscribe = getattr(self.hub, "subscribe", None) or self.hub._async.subscribe  # Hub.subscribe: issue 15
        subscribe(self._events)

    def event(self, call_id: str, timeout: float = 10.0) -> CallFinished:
        return self._events.event(call_id, timeout)

    def cancel_own(self, selector: str, args: Any, *, how: str, after: float, call_id: str) -> str | cncf.Outcome:
        if how != "cancel":
            raise ValueError(f"a synchronous caller cannot be cancelled by {how!r}")
        fut = self.submit(selector, args, call_id=call_id)
        time.sleep(after)
        assert self.hub.cancel(call_id)  # from this thread, not the caller's
        return fut.result(timeout=30)

    def load(self, target: str | os.PathLike[str], **overrides: Any) -> cncf.ComponentHandle:
        return self.hub.load(target, **{**PLACED, **overrides})

    def call(self, selector: str, args: Any = None, **kw: Any) -> cncf.Outcome:
        return self.hub.call(selector, args, **kw)

    def submit(self, selector: str, args: Any = None, **kw: Any) -> concurrent.futures.Future[cncf.Outcome]:
        return self._callers.submit(self.hub.call, selector, args, **kw)

    def cancel(self, call_id: str) -> bool:
        return self.hub.cancel(call_id)

    def inspect(self, name: str) -> dict[str, Any]:
        return self.hub.inspect(name)

    def unload(self, name: str) -> bool:
        return self.hub.unload(name)

    def reload(self, name: str) -> cncf.ComponentHandle:
        return self.hub.reload(name)

    def close(self) -> None:
        self.hub.close()

    def shutdown(self) -> None:
        self._callers.shutdown(wait=True, cancel_futures=True)


class AsyncDoor:
    """``cncf.AsyncHub`` on an event loop of its own; every concurrent caller is a task."""

    kind = "async"

    def __init__(self, home: Path) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hub-loop", daemon=True)
        self._thread.start()
        self.hub: cncf.AsyncHub = self._do(self._new(home))
        self._events = _Events()
        self.hub.subscribe(self._events)

    def event(self, call_id: str, timeout: float = 10.0) -> CallFinished:
        return self._events.event(call_id, timeout)

    def cancel_own(self, selector: str, args: Any, *, how: str, after: float, call_id: str) -> str | cncf.Outcome:
        return self._do(self._cancel_own(selector, args, how, after, call_id))

    async def _cancel_own(self, selector: str, args: Any, how: str, after: float, call_id: str) -> str | cncf.Outcome:
        call = self.hub.call(selector, args, call_id=call_id)
        if how == "wait_for":
            try:
                return await asyncio.wait_for(call, after)
            except TimeoutError:
                return "cancelled"
        task = asyncio.ensure_future(call)
        await asyncio.sleep(after)
        if how == "cancel":
            assert self.hub.cancel(call_id)
            return await task
        assert how == "task", how
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return "cancelled"

    @staticmethod
    async def _new(home: Path) -> cncf.AsyncHub:
        return cncf.AsyncHub(home=home)

    def _do(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _plain(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def load(self, target: str | os.PathLike[str], **overrides: Any) -> cncf.ComponentHandle:
        return self._do(self.hub.load(target, **{**PLACED, **overrides}))

    def call(self, selector: str, args: Any = None, **kw: Any) -> cncf.Outcome:
        return self._do(self.hub.call(selector, args, **kw))

    def submit(self, selector: str, args: Any = None, **kw: Any) -> concurrent.futures.Future[cncf.Outcome]:
        return asyncio.run_coroutine_threadsafe(self.hub.call(selector, args, **kw), self._loop)

    def cancel(self, call_id: str) -> bool:
        return self._do(self._plain(self.hub.cancel, call_id))

    def inspect(self, name: str) -> dict[str, Any]:
        return self._do(self._plain(self.hub.inspect, name))

    def unload(self, name: str) -> bool:
        return self._do(self.hub.unload(name))

    def reload(self, name: str) -> cncf.ComponentHandle:
        return self._do(self.hub.reload(name))

    def close(self) -> None:
        self._do(self.hub.close())

    def shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


@pytest.fixture(params=DOORS)
def door(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def contract_home(tmp_path: Path, form: Form, request: pytest.FixtureRequest) -> Path:
    home = tmp_path / "home"
    if form.name == "jar":  # the session's compiled JVM host, not compiled again
        return jar_home(home, request.getfixturevalue("jvm_cache"))
    return home


@pytest.fixture
def hub(contract_home: Path, door: str) -> Iterator[Door]:
    """The hub under test through one door; closed after the test, leaving no process."""
    before = descendants()
    d: Door = AsyncDoor(contract_home) if door == "async" else SyncDoor(contract_home)
    try:
        yield d
    finally:
        try:
            d.close()
        finally:
            d.shutdown()
    left = descendants() - before
    assert not left, f"processes left after the hub closed: {sorted(left)}"


Loader = Callable[..., cncf.ComponentHandle]


@pytest.fixture
def load(hub: Door, form: Form) -> Loader:
    """Load the contract component (manifest overrides as keywords); it must be ready."""

    def _load(**overrides: Any) -> cncf.ComponentHandle:
        handle = hub.load(form.target, **overrides)
        assert handle.state == "ready", handle.observation
        return handle

    return _load


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll until ``predicate()`` holds; fail (never hang) after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g}s waiting until {what}")
        time.sleep(0.005)


def waiting(hub: Door, name: str = NAME) -> int:
    """How many calls wait at the component's gate (``inspect``'s call counts)."""
    return int(hub.inspect(name)["calls"]["waiting"])


def running(hub: Door, name: str = NAME) -> int:
    return int(hub.inspect(name)["calls"]["running"])


def pid_of(hub: Door, name: str = NAME) -> int | None:
    health = hub.inspect(name)["health"]
    return None if health is None else health.get("pid")


def descendants() -> set[int]:
    """Live (not zombie) processes descending from this one, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    me, found = os.getpid(), set()
    frontier = {me}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def write_manifest(
    folder: Path, form: Form, component: dict[str, Any], tables: dict[str, dict[str, Any]] | None = None
) -> Path:
    """A ``cncf.toml`` for the contract component of ``form`` with the given
    [component] keys and further tables (``{"services.x": {...}, 'operations."x.y"': {...}}``)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["[component]", f"name = {toml_value(NAME)}"]
    lines += [f"{k} = {toml_value(v)}" for k, v in {**form.keys, **component}.items()]
    for table, keys in (tables or {}).items():
        lines += ["", f"[{table}]"] + [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    path = folder / "cncf.toml"
    path.write_text("\n".join(lines) + "\n")
    return path

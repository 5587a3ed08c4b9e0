"""A shared JVM host against a hostile component (``tests/jar/rogue``): it
cannot reach the host's registry or a neighbour's instance by any class-loader
walk, stack walk, thread list or service lookup; freezing a neighbour's
executor threads gets that neighbour's calls an Observation within a bound;
unloading a component ends the processes it started, and only those."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import cncf
from cncf import Code, Stage
from tests.jar.conftest import fat_jar, jar_boundary, javac

ROGUE = Path(__file__).resolve().parent / "rogue" / "src"


@pytest.fixture(scope="session")
def rogue_jar(jvm, build_dir: Path) -> Path:  # noqa: ANN001
    classes = javac(sorted(ROGUE.rglob("*.java")), build_dir / "rogue-classes", release=11)
    return fat_jar(build_dir / "rogue.jar", [classes])


def _same_host(*handles) -> bool:  # noqa: ANN002
    return len({x.describe()["health"]["pid"] for x in handles}) == 1


def _in_background(fn) -> tuple[threading.Thread, list]:  # noqa: ANN001
    box: list = []
    t = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    t.start()
    return t, box


def test_a_rogue_component_reaches_neither_the_host_registry_nor_a_neighbour(
    jar_hub: cncf.Hub, collab_jar: Path, rogue_jar: Path
) -> None:
    victim = jar_hub.load(collab_jar, name="victim")
    rogue = jar_hub.load(rogue_jar, name="rogue", entry="rogue.Rogue")
    assert victim.state == rogue.state == "ready", (victim.observation, rogue.observation)
    assert _same_host(victim, rogue)
    assert jar_hub.call("victim.increment", [5]).value == 5
    # The victim is in a call while the rogue walks: its thread's context loader is visible.
    sleeper, _ = _in_background(lambda: jar_hub.call("victim.sleep", [1500]))
    time.sleep(0.3)
    out = jar_hub.call("rogue.attack", [1_000_000], timeout=60)
    assert out.ok, out.observation
    report = out.value
    assert report["visited"] > 20, report  # the walk had something to walk
    # No loader walk (getClass().getClassLoader(), getParent(), the system loader) names the host.
    assert report["host_classes_by_loader_walk"] == [], report
    # The host's classes its stack shows hold no state: no host object, no neighbour instance.
    assert not [n for n in report["reached"] if n.startswith("cncf.host.")], report
    assert "demo.Counter" not in report["reached"], report
    assert report["changed"] == 0
    # Thread names do not tell which components share the host.
    assert not [n for n in report["thread_names"] if "victim" in n or "rogue" in n], report["thread_names"]
    sleeper.join(30)
    assert jar_hub.call("victim.get").value == 5


def test_a_neighbour_that_suspends_or_blocks_a_components_threads_gets_it_an_observation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, collab_jar: Path, rogue_jar: Path, jvm_cache: Path
) -> None:
    from tests.jar.conftest import jar_home

    monkeypatch.setenv("CNCF_FROZEN_MS", "1000")
    with cncf.Hub(home=jar_home(tmp_path / "home", jvm_cache)) as hub:
        victim = hub.load(collab_jar, name="victim")
        rogue = hub.load(rogue_jar, name="rogue", entry="rogue.Rogue")
        assert _same_host(victim, rogue)
        pid = victim.describe()["health"]["pid"]
        started = time.monotonic()
        call, box = _in_background(lambda: hub.call("victim.sleep", [5000]))
        time.sleep(0.4)
        suspended = hub.call("rogue.suspend-others", [300])
        assert suspended.ok, suspended.observation
        if suspended.value == 0:
            pytest.fail("the rogue found no thread to suspend (is the victim's call running?)")
        call.join(15)
        assert box, "the frozen component's call got no Outcome"
        elapsed = time.monotonic() - started
        obs = box[0].observation
        assert obs is not None
        assert (obs.code, obs.stage) == (Code.WORKER_CRASHED, Stage.EXECUTE)
        assert obs.attributes.get("frozen")
        assert elapsed < 5.0  # before the 5 s sleep could have ended by itself
        host = jar_boundary(hub).hosts()[0]
        assert any(e["event"] == "component_frozen" and e["instance"].startswith("victim#") for e in host.events)
        # The victim is reloaded in the same host; the host and the rogue go on.
        assert hub.call("victim.increment", [2]).value == 2
        assert victim.describe()["health"]["pid"] == pid
        assert hub.call("rogue.spawn", [0]).ok
        # A JVM-wide lock held by the rogue (System.out's) blocks the victim's print.
        holder, _ = _in_background(lambda: hub.call("rogue.hold-out", [4000]))
        time.sleep(0.4)
        started = time.monotonic()
        printed = hub.call("victim.print", ["x"], timeout=30)
        assert (printed.observation.code, printed.observation.stage) == (Code.WORKER_CRASHED, Stage.EXECUTE)
        assert printed.observation.attributes.get("frozen")
        assert time.monotonic() - started < 3.5  # before the rogue let go
        holder.join(30)
        assert hub.call("victim.print", ["y"]).ok  # reloaded once more
        # Every idle executor thread of the victim suspended: the next call is taken by none.
        assert hub.call("rogue.suspend-idle").value >= 1
        started = time.monotonic()
        late = hub.call("victim.get", timeout=30)
        assert (late.observation.code, late.observation.stage) == (Code.WORKER_CRASHED, Stage.EXECUTE)
        assert late.observation.attributes.get("frozen")
        assert time.monotonic() - started < 5.0
        assert hub.call("victim.get").value == 0  # a fresh instance


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (state first), or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def _identity(pid: int) -> tuple[int, str]:
    """A process as (pid, start time): pids wrap quickly on a busy machine (pid_max 32768)."""
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is gone"
    return pid, fields[19]


def _alive(proc: tuple[int, str]) -> bool:
    fields = _stat(proc[0])
    return fields is not None and fields[19] == proc[1] and fields[0] not in ("Z", "X")


def _ppids() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    out[int(entry)] = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


def _real_pid(hub: cncf.Hub, ns_pid: int) -> int:
    """The hub's view of a pid the host reported (the host may run in a PID namespace of its own)."""
    root = jar_boundary(hub).hosts()[0].worker.pid
    ppids = _ppids()
    tree, todo = {root}, [root]
    while todo:
        p = todo.pop()
        for c, pp in ppids.items():
            if pp == p and c not in tree:
                tree.add(c)
                todo.append(c)
    mine = os.readlink("/proc/self/ns/pid")
    for p in tree:
        try:
            with open(f"/proc/{p}/status") as f:
                nspid = next(line.split()[1:] for line in f if line.startswith("NSpid:"))
        except (OSError, StopIteration):
            continue
        if int(nspid[-1]) == ns_pid and (len(nspid) > 1 or os.readlink(f"/proc/{p}/ns/pid") == mine):
            return p
    raise AssertionError(f"no process {ns_pid} under the host {root}")


def _child_of(ppid: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == ppid:
                return int(entry)
        time.sleep(0.05)
    raise AssertionError(f"no child of {ppid}")


def _gone(proc: tuple[int, str], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_unloading_a_component_ends_the_processes_it_started_and_only_those(jar_hub: cncf.Hub, rogue_jar: Path) -> None:
    a = jar_hub.load(rogue_jar, name="a", entry="rogue.Rogue")
    b = jar_hub.load(rogue_jar, name="b", entry="rogue.Rogue")
    assert a.state == b.state == "ready"
    assert _same_host(a, b)
    pid_a = _real_pid(jar_hub, jar_hub.call("a.spawn", [300]).value)
    pid_b = _real_pid(jar_hub, jar_hub.call("b.spawn", [300]).value)
    # And one from a thread the component started itself.
    pid_t = _real_pid(jar_hub, jar_hub.call("a.spawn-from-thread", [300]).value)
    child_a, child_b, child_t = _identity(pid_a), _identity(pid_b), _identity(pid_t)
    grand_a, grand_b = _identity(_child_of(pid_a)), _identity(_child_of(pid_b))
    try:
        jar_hub.unload("a")
        assert _gone(child_a) and _gone(grand_a) and _gone(child_t)
        assert _alive(child_b) and _alive(grand_b)  # the neighbour's processes live on
        assert jar_hub.call("b.spawn", [0]).ok
        host = jar_boundary(jar_hub).hosts()[0]
        ended = [e for e in host.events if e["event"] == "processes_ended"]
        assert ended and ended[0]["instance"].startswith("a#") and ended[0]["processes"] == 4
        jar_hub.unload("b")  # the host's last component: its tree is frozen, then killed
        assert _gone(child_b) and _gone(grand_b)
    finally:
        for proc in (child_a, grand_a, child_t, child_b, grand_b):
            if _alive(proc):  # still that very process, not a reused pid
                os.kill(proc[0], 9)

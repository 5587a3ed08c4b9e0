"""The python and command forms end to end: every artifact kind, PyPy, Node,
private environments, entries, output capture, cancellation, concurrency and
reaping.  Real processes throughout; no boundary is mocked."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import cncf
from tests.python_form.conftest import (
    EXAMPLES,
    FIXTURES,
    KINDS,
    Builder,
    artifact_for,
    node,
    pypy,
)


def _children() -> set[int]:
    """Live (non-zombie) child processes of this test process."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    return pids


def _dead(pid: int) -> bool:
    """Exited (gone, or a zombie nobody has reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _worker_dirs() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("cncf-worker-")}


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp folder of this test's own (other processes share /tmp)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# ---------------------------------------------------------------------------
# Artifact kinds and interpreters
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_artifact_kind_keeps_state_and_captures_output(pyhub: cncf.Hub, builder: Builder, kind: str) -> None:
    path, overrides = artifact_for(builder, kind, "counter", "counter:Counter")
    handle = pyhub.load(path, name="counter", **overrides)
    assert handle.state == "ready", handle.observation
    assert handle.form == "python"
    assert pyhub.call("counter.increment", {"by": 2}).value == 2
    assert pyhub.call("counter.increment", [3]).value == 5
    out = pyhub.call("counter.shout", {"text": "hi", "times": 2})
    assert out.ok and out.value == 2
    assert out.stdout == "HIHI\n"
    assert out.stderr == "to stderr\n"
    impl = pyhub.call("counter.implementation").value
    assert impl["hub_visible"] is False  # the worker never sees the hub's packages


def test_pypy_interpreter(pyhub: cncf.Hub) -> None:
    pypy()
    handle = pyhub.load(FIXTURES / "counter", interpreter="pypy3")
    assert handle.state == "ready", handle.observation
    assert pyhub.call("counter.implementation").value["name"] == "pypy"
    assert pyhub.call("counter.increment", {"by": 4}).value == 4


def test_pypy_with_private_environment(pyhub: cncf.Hub) -> None:
    pypy()
    handle = pyhub.load(FIXTURES / "pkgver", interpreter="pypy3", requirements=["packaging==21.3"])
    assert handle.state == "ready", handle.observation
    assert pyhub.call("pkgver.version").value == "21.3"


def test_interpreter_by_path(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "counter", interpreter=os.path.realpath(sys.executable))
    assert handle.state == "ready", handle.observation
    assert pyhub.call("counter.implementation").value["name"] == sys.implementation.name


def test_missing_interpreter(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "counter", interpreter="no-such-python-3.99")
    assert handle.state == "failed"
    assert (handle.observation.code, handle.observation.stage) == ("interpreter_not_found", "load")


# ---------------------------------------------------------------------------
# Private environments (uv) and clashing versions
# ---------------------------------------------------------------------------


def test_major_versions_side_by_side(pyhub: cncf.Hub, builder: Builder) -> None:
    """packaging 21 (parses anything) next to packaging 24 (refuses non-PEP 440),
    in every artifact kind, in one hub."""
    loads = {
        "folder21": (FIXTURES / "pkgver", {"requirements": ["packaging==21.3"]}),
        "folder24": (FIXTURES / "pkgver", {"requirements": ["packaging==24.1"]}),
        "wheel21": artifact_for(builder, "wheel", "pkgver", "pkgver:PkgVer", ("packaging==21.3",)),
        "pyz24": artifact_for(builder, "pyz", "pkgver", "pkgver:PkgVer", ("packaging==24.1",)),
        "shiv21": artifact_for(builder, "shiv", "pkgver", "pkgver:PkgVer", ("packaging==21.3",)),
        "pex24": artifact_for(builder, "pex", "pkgver", "pkgver:PkgVer", ("packaging==24.1",)),
    }
    for name, (path, overrides) in loads.items():
        handle = pyhub.load(path, name=name, **{"entry": "pkgver:PkgVer", **overrides})
        assert handle.state == "ready", (name, handle.observation)
    for name in loads:
        major = name[-2:]
        assert pyhub.call(f"{name}.version").value.split(".")[0] == major
        parsed = pyhub.call(f"{name}.parse", ["not-a-version"]).value
        if major == "21":
            assert parsed == {"ok": True, "type": "LegacyVersion"}
        else:
            assert parsed == {"ok": False, "type": "InvalidVersion"}


def test_environment_is_built_once_and_reused(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNCF_CACHE", str(tmp_path / "fresh-cache"))
    lines: list[str] = []
    with cncf.Hub(home=tmp_path / "h1", progress=lines.append) as hub:
        handle = hub.load(FIXTURES / "pkgver", requirements=["packaging==23.2"])
        assert handle.state == "ready", handle.observation
        assert hub.call("pkgver.version").value == "23.2"
    assert any("building environment" in line for line in lines)
    envs = [p for p in (tmp_path / "fresh-cache" / "envs").iterdir() if not p.name.startswith(".")]
    assert len(envs) == 1
    lines.clear()
    with cncf.Hub(home=tmp_path / "h2", progress=lines.append) as hub:
        started = time.monotonic()
        handle = hub.load(FIXTURES / "pkgver", requirements=["packaging==23.2"])
        assert handle.state == "ready", handle.observation
        assert time.monotonic() - started < 5
    assert not any("building environment" in line for line in lines)
    assert [p for p in (tmp_path / "fresh-cache" / "envs").iterdir() if not p.name.startswith(".")] == envs


def test_unresolvable_requirement_carries_the_resolver_message(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "counter", requirements=["cncf-no-such-distribution-zz==1.0"])
    assert handle.state == "failed"
    obs = handle.observation
    assert (obs.code, obs.stage) == ("dependency_unresolved", "load")
    assert obs.attributes["resolver_output"]
    assert not any((Path(os.environ["CNCF_CACHE"]) / "envs").glob(".build-*"))


# ---------------------------------------------------------------------------
# Entries: module functions, inferred classes, wheels, collaborators
# ---------------------------------------------------------------------------


def test_module_functions_are_operations(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "funcs", entry="mathops")
    assert handle.state == "ready", handle.observation
    assert sorted(op.split(".")[-1] for op in handle.operations) == ["add", "div", "nap"]
    assert pyhub.call("funcs.add", [2, 3]).value == 5
    bad = pyhub.call("funcs.add", {"a": 1})  # a is positional-only
    assert (bad.observation.code, bad.observation.stage) == ("invalid_arguments", "dispatch")
    div = pyhub.call("funcs.div", [1, 0])
    assert (div.observation.code, div.observation.stage) == ("raised", "execute")
    assert div.observation.cause.type == "ZeroDivisionError"
    params = pyhub.inspect("funcs")["services"]["default"]["add"]["params"]
    assert [(p["name"], p["kind"], p["required"]) for p in params] == [
        ("a", "positional", True),
        ("b", "positional", False),
        ("scale", "named", False),
    ]


def test_entry_is_inferred_from_a_single_module(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "counter")
    assert handle.state == "ready", handle.observation
    assert pyhub.call("counter.increment").value == 1


def test_ambiguous_folder_names_its_candidates(pyhub: cncf.Hub, tmp_path: Path) -> None:
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "alpha.py").write_text("def a():\n    return 1\n")
    (folder / "beta.py").write_text("def b():\n    return 2\n")
    handle = pyhub.load(folder)
    assert (handle.observation.code, handle.observation.stage) == ("entry_ambiguous", "load")
    assert handle.observation.attributes["candidates"] == ["alpha", "beta"]


def test_missing_entry_class(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "counter", entry="counter:Nope")
    assert (handle.observation.code, handle.observation.stage) == ("entry_not_found", "load")
    handle = pyhub.load(FIXTURES / "counter", entry="nomodule:Nope", name="other")
    assert (handle.observation.code, handle.observation.stage) == ("entry_not_found", "load")


def test_wheel_names_its_component_in_entry_points(pyhub: cncf.Hub, builder: Builder) -> None:
    wheel = builder("wheel", "counter", "counter:Counter")
    handle = pyhub.load(wheel, name="counter")  # no entry: from [cncf.components]
    assert handle.state == "ready", handle.observation
    assert pyhub.call("counter.increment", [7]).value == 7


def test_collaborator_receives_calls_itself(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "collab", entry="collab:Echoes")
    assert handle.state == "ready", handle.observation
    out = pyhub.call("collab.echo", {"x": 1})
    assert out.value == {"args": [], "kwargs": {"x": 1}, "seen": 1}
    refused = pyhub.call("collab.refuse")
    assert (refused.observation.code, refused.observation.stage) == ("operation_failed", "execute")
    assert refused.observation.attributes["component_code"] == "insufficient_funds"
    assert refused.observation.attributes["balance"] == 3
    who = pyhub.call("collab.whoami")
    assert who.value == {"call": who.call_id, "operation": "whoami"}


# ---------------------------------------------------------------------------
# Cancellation across the boundary
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("interpreter", ["cpython", "pypy3"])
def test_cooperative_cancellation_is_seen_by_the_component(pyhub: cncf.Hub, interpreter: str) -> None:
    overrides = {"interpreter": pypy()} if interpreter == "pypy3" else {}
    handle = pyhub.load(FIXTURES / "collab", entry="collab:Echoes", cancel_grace=5, **overrides)
    assert handle.state == "ready", handle.observation
    out = pyhub.call("collab.wait_for_cancel", timeout=0.5)
    assert (out.observation.code, out.observation.stage) == ("timed_out", "execute")
    assert out.observation.attributes["tier"] == "cooperative"
    assert pyhub.call("collab.echo").value["seen"] == 2  # the same live instance


def test_ignored_cancellation_kills_and_restarts(pyhub: cncf.Hub) -> None:
    pyhub.load(FIXTURES / "collab", entry="collab:Echoes", cancel_grace=0.3)
    out = pyhub.call("collab.ignore_cancel", timeout=0.5)
    assert (out.observation.code, out.observation.stage) == ("timed_out", "execute")
    assert out.observation.attributes["tier"] == "cooperative"  # answered at the deadline
    assert pyhub.call("collab.echo", timeout=10).value["seen"] == 1  # a restarted instance
    assert pyhub.inspect("collab")["cancellations"] == {"killed": 1}  # the tier it finally took


def test_explicit_cancel(pyhome: Path) -> None:
    async def scenario() -> None:
        async with cncf.AsyncHub(home=pyhome) as hub:
            await hub.load(FIXTURES / "collab", entry="collab:Echoes")
            task = asyncio.create_task(hub.call("collab.wait_for_cancel", call_id="stop-me"))
            await asyncio.sleep(0.3)
            assert hub.cancel("stop-me")
            out = await asyncio.wait_for(task, 10)
            assert (out.observation.code, out.observation.stage) == ("cancelled", "execute")
            assert out.observation.attributes["tier"] == "cooperative"

    asyncio.run(scenario())


@pytest.mark.parametrize("interpreter", ["cpython", "pypy3"])
def test_concurrent_calls_run_on_threads(pyhome: Path, interpreter: str) -> None:
    overrides = {"interpreter": pypy()} if interpreter == "pypy3" else {}

    async def scenario() -> None:
        async with cncf.AsyncHub(home=pyhome) as hub:
            handle = await hub.load(
                FIXTURES / "funcs", entry="mathops", policy="concurrent", max_concurrency=4, **overrides
            )
            assert handle.state == "ready", handle.observation
            names: list[set[str]] = []
            for _ in range(2):
                started = time.monotonic()
                outs = await asyncio.gather(*(hub.call("funcs.nap", [0.4]) for _ in range(4)))
                assert all(o.ok for o in outs), [o.observation for o in outs]
                assert time.monotonic() - started < 1.4
                names.append({o.value for o in outs})
            assert "MainThread" not in names[0]
            if interpreter == "cpython":
                assert names[1] <= names[0]  # the threads are reused

    asyncio.run(scenario())


# ---------------------------------------------------------------------------
# The command form (Node.js)
# ---------------------------------------------------------------------------


def test_node_component_through_the_command_form(pyhub: cncf.Hub) -> None:
    node()
    handle = pyhub.load(EXAMPLES / "node-counter")
    assert handle.state == "ready", handle.observation
    assert handle.form == "command"
    assert pyhub.call("node-counter.increment", [5]).value == 5
    out = pyhub.call("node-counter.greet", ["ada"])
    assert out.value == "hello, ada" and out.stdout == "hello from node, ada\n"
    failed = pyhub.call("node-counter.fail")
    assert (failed.observation.code, failed.observation.stage) == ("raised", "execute")
    assert failed.observation.cause.type == "RangeError"
    crashed = pyhub.call("node-counter.crash")
    assert (crashed.observation.code, crashed.observation.stage) == ("worker_crashed", "execute")
    assert crashed.observation.attributes["exit_code"] == 7
    assert pyhub.call("node-counter.increment", timeout=10).value == 1  # restarted


def test_node_cooperative_cancellation(pyhub: cncf.Hub) -> None:
    node()
    pyhub.load(EXAMPLES / "node-counter", cancel_grace=5)
    out = pyhub.call("node-counter.slow", [20000], timeout=0.5)
    assert (out.observation.code, out.observation.stage) == ("timed_out", "execute")
    assert out.observation.attributes["tier"] == "cooperative"


def test_missing_command(pyhub: cncf.Hub, tmp_path: Path) -> None:
    (tmp_path / "cncf.toml").write_text(
        '[component]\nname = "ghost"\nform = "command"\ncommand = ["./no-such-binary"]\n'
    )
    handle = pyhub.load(tmp_path)
    assert (handle.observation.code, handle.observation.stage) == ("artifact_not_found", "load")


# ---------------------------------------------------------------------------
# Lifecycle and reaping
# ---------------------------------------------------------------------------


def test_unload_and_close_reap_every_process_and_folder(pyhome: Path, builder: Builder, private_tmp: Path) -> None:
    before_children = _children()
    with cncf.Hub(home=pyhome) as hub:
        for kind in ("folder", "pyz", "shiv"):
            path, overrides = artifact_for(builder, kind, "counter", "counter:Counter")
            assert hub.load(path, name=f"c-{kind}", **overrides).state == "ready"
        pid = hub.inspect("c-folder")["health"]["pid"]  # the worker's own pid (below unshare, if wrapped)
        assert not _dead(pid)
        assert hub.unload("c-folder")
        assert _dead(pid)
        assert len(_children() - before_children) == 2
        assert len(_worker_dirs()) == 0  # capture files are unlinked at spawn: no folder to leave behind
    assert _children() - before_children == set()
    assert list(private_tmp.iterdir()) == []


def test_hub_exit_by_exception_reaps(pyhome: Path) -> None:
    before = _children()
    with pytest.raises(RuntimeError), cncf.Hub(home=pyhome) as hub:
        hub.load(FIXTURES / "counter")
        hub.call("counter.increment")
        raise RuntimeError("the caller fails")
    assert _children() - before == set()


def test_states(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "faulty", entry="faulty:Faulty", restart="never")
    assert handle.state == "ready"
    out = pyhub.call("faulty.hard_exit")
    assert out.observation.code == "worker_crashed"
    assert handle.state == "crashed"
    again = pyhub.call("faulty.ping")
    assert again.observation.code == "component_unavailable"
    pyhub.unload("faulty")
    assert handle.state == "unloaded"


def test_runtime_is_stdlib_only_and_python38_syntax() -> None:
    import ast

    source = (Path(cncf.__file__).parent / "worker" / "runtime.py").read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    imported = set()
    for node_ in ast.walk(tree):
        if isinstance(node_, ast.Import):
            imported.update(a.name.split(".")[0] for a in node_.names)
        elif isinstance(node_, ast.ImportFrom) and node_.module:
            imported.add(node_.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"_pypyjson"}
    assert "cncf" not in imported


def test_shutil_which_python3_runs_the_runtime(pyhub: cncf.Hub) -> None:
    """The Debian system interpreter, unrelated to the hub's, runs components too."""
    system = shutil.which("python3", path="/usr/bin")
    if system is None:
        pytest.skip("no /usr/bin/python3")
    handle = pyhub.load(FIXTURES / "counter", interpreter=system)
    assert handle.state == "ready", handle.observation
    assert pyhub.call("counter.increment").value == 1


def test_large_values_cross_in_both_directions(pyhub: cncf.Hub) -> None:
    pyhub.load(FIXTURES / "counter")
    big = "x" * (8 * 1024 * 1024) + "é"
    started = time.monotonic()
    out = pyhub.call("counter.echo", [big], timeout=30)
    assert out.ok and out.value == big
    assert time.monotonic() - started < 10


def test_a_killed_hub_leaves_no_worker(tmp_path: Path, shared_cache: Path) -> None:
    """SIGKILL the hub's process mid-call: its worker notices (the control
    pipe closes) and exits although its operation never returns."""
    import signal
    import subprocess

    script = (
        "import sys, cncf\n"
        f"hub = cncf.Hub(home={str(tmp_path / 'h')!r})\n"
        f"hub.load({str(FIXTURES / 'faulty')!r}, entry='faulty:Faulty')\n"
        "print(hub.inspect('faulty')['health']['pid'], flush=True)\n"
        "hub.call('faulty.loop')\n"
    )
    env = dict(os.environ, CNCF_CACHE=str(shared_cache))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    with proc.stdout:
        worker = int(proc.stdout.readline())
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _dead(worker):
            break
        time.sleep(0.05)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its hub")


# ---------------------------------------------------------------------------
# Workers that fail to start or break the protocol
# ---------------------------------------------------------------------------


def _command(tmp_path: Path, name: str, command: list[str]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "cncf.toml").write_text(
        f'[component]\nname = "{name}"\nform = "command"\ncommand = {command!r}\n'.replace("'", '"')
    )
    return folder


def test_worker_that_exits_before_its_handshake(pyhub: cncf.Hub, tmp_path: Path) -> None:
    folder = _command(tmp_path, "quitter", ["sh", "-c", "echo no protocol here >&2; exit 3"])
    handle = pyhub.load(folder)
    assert (handle.observation.code, handle.observation.stage) == ("worker_start_failed", "load")
    assert handle.observation.attributes["exit_code"] == 3


def test_interpreter_that_is_not_python(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "counter", interpreter="/bin/false")
    assert (handle.observation.code, handle.observation.stage) == ("worker_start_failed", "load")


def test_environment_that_cannot_be_created(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "counter", interpreter="/bin/true", requirements=["packaging==24.1"])
    assert (handle.observation.code, handle.observation.stage) == ("environment_failed", "load")


def test_worker_that_breaks_the_protocol(pyhub: cncf.Hub, tmp_path: Path, neighbour: Callable[[], None]) -> None:
    folder = _command(tmp_path, "rogue", [sys.executable, str(FIXTURES / "rogue_worker.py")])
    handle = pyhub.load(folder)
    assert handle.state == "ready", handle.observation
    assert pyhub.call("rogue.fine").value == "fine"
    out = pyhub.call("rogue.garble", timeout=10)
    assert (out.observation.code, out.observation.stage) == ("protocol_error", "execute")
    neighbour()
    assert pyhub.call("rogue.fine", timeout=10).value == "fine"  # restarted


def test_entry_may_name_a_ready_instance(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "collab", entry="collab:READY", name="ready")
    assert handle.state == "ready", handle.observation
    assert pyhub.call("ready.hello").value == "hello from a ready-made instance"


def test_collaborator_listing_operations_from_its_state(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "collab", entry="collab:Stateful", name="stateful")
    assert handle.state == "ready", handle.observation
    assert [op.split(".")[-1] for op in handle.operations] == ["count"]
    assert pyhub.call("stateful.count").value == 1
    assert pyhub.call("stateful.count").value == 2  # the instance created at load is the live one


def test_entry_may_name_one_function(pyhub: cncf.Hub) -> None:
    handle = pyhub.load(FIXTURES / "funcs", entry="mathops:div", name="div")
    assert handle.state == "ready", handle.observation
    assert [op.split(".")[-1] for op in handle.operations] == ["div"]
    assert pyhub.call("div.div", {"a": 6, "b": 3}).value == 2


def test_real_pypi_wheel_without_a_manifest(pyhub: cncf.Hub, tmp_path: Path) -> None:
    """A third-party wheel nobody wrote a manifest for: its single top-level
    module is the entry, its public functions the operations."""
    import subprocess

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "six==1.16.0",
            "-d",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("six-*.whl")
    handle = pyhub.load(wheel)
    assert handle.state == "ready", handle.observation
    assert handle.name == "six"
    assert pyhub.call("six.ensure_str", ["abc"]).value == "abc"


def test_shiv_entry_point_names_the_module(pyhub: cncf.Hub, builder: Builder, tmp_path: Path) -> None:
    import subprocess

    stage = tmp_path / "src"
    shutil.copytree(FIXTURES / "counter", stage, ignore=shutil.ignore_patterns("__pycache__"))
    (stage / "helper.py").write_text("def help_me():\n    return 1\n")  # two modules
    target = tmp_path / "counter.pyz"
    subprocess.run(
        [sys.executable, "-m", "shiv", "--site-packages", str(stage), "-e", "counter:Counter", "-o", str(target)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    handle = pyhub.load(target)  # no entry: shiv's own entry point names the module
    assert handle.state == "ready", handle.observation
    assert pyhub.call("counter.increment", [2]).value == 2


def test_worker_killed_while_idle_is_restarted_for_the_next_call(pyhub: cncf.Hub) -> None:
    import signal

    pyhub.load(FIXTURES / "counter")
    assert pyhub.call("counter.increment").value == 1
    pid = pyhub.inspect("counter")["health"]["pid"]  # the worker's own pid: not always our child
    fd = os.pidfd_open(pid)
    os.kill(pid, signal.SIGKILL)
    select.select([fd], [], [], 5)  # until every thread of it is gone (not just the leader)
    os.close(fd)
    out = pyhub.call("counter.increment", timeout=10)
    assert out.ok, out.observation
    assert out.value == 1  # a fresh instance
    assert pyhub.inspect("counter")["health"]["pid"] != pid

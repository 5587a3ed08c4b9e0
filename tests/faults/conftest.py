"""The fault suite's components: one hostile component, every form.

``make(form, name, **manifest)`` writes a component folder whose manifest
gives the form, the entry and any extra keys, and returns its path.  The
python, inline and command forms share ``fixtures/rogue.py``; the jar form is
compiled from ``fixtures/jar/src`` once per session.  Each component gets a
unique ``FAULT_MARK`` in its environment, inherited by every process it
starts, so a test can count what is left by scanning ``/proc``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import cncf
from cncf.boundaries.python import RUNTIME_DIR
from tests.conftest import require_tool

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
FORMS = ("inline", "python", "command", "jar")
PROCESS_FORMS = ("python", "command", "jar")

Maker = Callable[..., Path]


def toml_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v)


@pytest.fixture(scope="session")
def rogue_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.jar.conftest import fat_jar, javac

    require_tool("javac")
    out = tmp_path_factory.mktemp("rogue-jar")
    classes = javac(sorted((FIXTURES / "jar" / "src").rglob("*.java")), out / "classes")
    return fat_jar(out / "rogue.jar", [classes])


@pytest.fixture
def mark() -> str:
    return f"cncf-fault-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make(tmp_path: Path, request: pytest.FixtureRequest, mark: str) -> Maker:
    def build(form: str, name: str = "rogue", **manifest: Any) -> Path:
        folder = tmp_path / f"{name}-{form}"
        folder.mkdir()
        table: dict[str, Any] = {"name": name, "form": form}
        if form == "jar":
            jar = request.getfixturevalue("rogue_jar")
            shutil.copy(jar, folder / "rogue.jar")
            table.update(artifact="rogue.jar", entry="rogue.Rogue")
        else:
            shutil.copy(FIXTURES / "rogue.py", folder / f"{name}_rogue.py")
            table["entry"] = f"{name}_rogue:Rogue"
            if form == "command":
                shutil.copy(FIXTURES / "run_rogue.py", folder / "run_rogue.py")
                table["command"] = [sys.executable, "run_rogue.py", str(RUNTIME_DIR)]
        env = dict(manifest.pop("env", {}))
        env.setdefault("FAULT_MARK", mark)
        table["env"] = env
        table.update(manifest)
        lines = ["[component]"] + [f"{k} = {toml_value(v)}" for k, v in table.items()]
        (folder / "cncf.toml").write_text("\n".join(lines) + "\n")
        return folder

    return build


@pytest.fixture
def fhome(tmp_path: Path, jvm_cache_link: Path) -> Path:
    return jvm_cache_link


@pytest.fixture(scope="session")
def fault_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fault-cache")


@pytest.fixture
def jvm_cache_link(tmp_path: Path, fault_cache: Path) -> Path:
    """A hub home whose JVM build is shared by the session (compiled once)."""
    home = tmp_path / "home"
    (home / "cache").mkdir(parents=True)
    (fault_cache / "jvm").mkdir(exist_ok=True)
    (home / "cache" / "jvm").symlink_to(fault_cache / "jvm", target_is_directory=True)
    return home


@pytest.fixture
def fhub(fhome: Path) -> Iterator[cncf.Hub]:
    with cncf.Hub(home=fhome) as hub:
        yield hub


def marked(mark: str) -> list[int]:
    """Pids of live processes whose environment carries ``FAULT_MARK=mark``."""
    needle = f"FAULT_MARK={mark}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{name}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # a zombie is already dead
        except OSError:
            continue
        if needle in env:
            found.append(int(name))
    return found


def wait_gone(mark: str, seconds: float = 5.0) -> list[int]:
    import time

    deadline = time.monotonic() + seconds
    while True:
        left = marked(mark)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def load(hub: cncf.Hub, path: Path, **overrides: Any) -> cncf.ComponentHandle:
    handle = hub.load(path, **overrides)
    assert handle.state == "ready", handle.observation
    return handle

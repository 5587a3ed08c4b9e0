"""Fixtures for the python and command forms.

Artifacts are built for real, once per session: a zipapp with the standard
``zipapp`` module, a shiv, a pex, and a wheel built by ``uv build`` (its
environment then created by uv).  Environments and extracted zipapps are
cached in one session-wide cache folder, as a user's hub would cache them,
so every environment is built once per run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipapp
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cncf
from tests.conftest import IN_CI
from tests.conftest import require_tool as _require_tool

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "python"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KINDS = ("folder", "pyz", "shiv", "pex", "wheel")


def require_tool(name: str) -> str:
    """A tool's path: skipped locally when absent, a failure under ``CI=true``."""
    return _require_tool(name)


def tool_module(module: str) -> None:
    """A build tool installed as a Python package (shiv, pex): same CI rule."""
    try:
        __import__(module)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{module} is required under CI=true (pip install -e '.[test]')")
        pytest.skip(f"{module} is not installed")


def _run(argv: list[str], **kw: object) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "1.0.0"
dependencies = {deps!r}

[project.entry-points."cncf.components"]
{name} = "{entry}"

[tool.hatch.build.targets.wheel]
include = ["{module}.py"]
"""


class Builder:
    """Builds each (kind, source, deps) artifact once per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[tuple[str, str, tuple[str, ...]], Path] = {}

    def _stage(self, source: str, tag: str) -> Path:
        stage = self.root / f"stage-{tag}"
        if stage.exists():
            shutil.rmtree(stage)
        shutil.copytree(FIXTURES / source, stage, ignore=shutil.ignore_patterns("__pycache__"))
        return stage

    def __call__(self, kind: str, source: str, entry: str, deps: tuple[str, ...] = ()) -> Path:
        key = (kind, source, deps)
        if key not in self._built:
            self._built[key] = self._build(kind, source, entry, deps)
        return self._built[key]

    def _build(self, kind: str, source: str, entry: str, deps: tuple[str, ...]) -> Path:
        tag = f"{source}-{kind}-{abs(hash(deps)) % 10**8}"
        out = self.root / "dist" / tag
        out.mkdir(parents=True, exist_ok=True)
        module = entry.partition(":")[0]
        if kind == "folder":
            stage = self._stage(source, tag)
            if deps:
                uv = require_tool("uv")
                _run([uv, "pip", "install", "--quiet", "--python", sys.executable, "--target", str(stage), *deps])
            return stage
        if kind == "pyz":
            stage = self._stage(source, tag)
            if deps:  # vendored: installed next to the sources inside the archive
                uv = require_tool("uv")
                _run([uv, "pip", "install", "--quiet", "--python", sys.executable, "--target", str(stage), *deps])
            (stage / "__main__.py").write_text("print('a cncf component: load it with cncf')\n")
            target = out / f"{source}.pyz"
            zipapp.create_archive(stage, target, interpreter="/usr/bin/env python3")
            return target
        if kind == "shiv":
            tool_module("shiv")
            stage = self._stage(source, tag)
            target = out / f"{source}.pyz"
            _run(
                [
                    sys.executable,
                    "-m",
                    "shiv",
                    "--site-packages",
                    str(stage),
                    "-o",
                    str(target),
                    "--reproducible",
                    "--no-modify",
                    *deps,
                ]
            )
            return target
        if kind == "pex":
            tool_module("pex")
            stage = self._stage(source, tag)
            target = out / f"{source}.pex"
            _run([sys.executable, "-m", "pex", "-D", str(stage), "-o", str(target), *deps])
            return target
        if kind == "wheel":
            uv = require_tool("uv")
            stage = self._stage(source, tag)
            (stage / "pyproject.toml").write_text(
                _PYPROJECT.format(
                    dist=f"cncf-fixture-{source}", deps=list(deps), name=source, entry=entry, module=module
                )
            )
            _run([uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(stage)])
            (wheel,) = out.glob("*.whl")
            return wheel
        raise ValueError(kind)


@pytest.fixture(scope="session")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    return Builder(tmp_path_factory.mktemp("python-artifacts"))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (environments, extracted zipapps) for the whole session."""
    return tmp_path_factory.mktemp("cncf-cache")


@pytest.fixture
def pyhome(tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CNCF_CACHE", str(shared_cache))
    return tmp_path / "home"


@pytest.fixture
def pyhub(pyhome: Path) -> Iterator[cncf.Hub]:
    with cncf.Hub(home=pyhome) as h:
        yield h


@pytest.fixture
def neighbour(pyhub: cncf.Hub) -> Callable[[], None]:
    """A counter component loaded next to the one under test; returns a check
    that it still answers (and kept its state)."""
    handle = pyhub.load(FIXTURES / "counter", name="neighbour")
    assert handle.state == "ready", handle.observation
    first = pyhub.call("neighbour.increment", {"by": 1}, timeout=10)
    assert first.ok and first.value == 1, first.observation
    expected = [1]

    def check() -> None:
        expected[0] += 1
        out = pyhub.call("neighbour.increment", {"by": 1}, timeout=10)
        assert out.ok, out.observation
        assert out.value == expected[0]

    return check


def artifact_for(
    builder: Builder, kind: str, source: str, entry: str, deps: tuple[str, ...] = ()
) -> tuple[Path, dict[str, object]]:
    """(target, load overrides) for ``source`` packaged as ``kind``."""
    path = builder(kind, source, entry, deps)
    overrides: dict[str, object] = {} if kind == "wheel" else {"entry": entry}
    return path, overrides


def pypy() -> str:
    return require_tool("pypy3")


def node() -> str:
    return require_tool("node")

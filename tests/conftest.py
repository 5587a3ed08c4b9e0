"""Shared fixtures: a hub per test with its own home, fixture paths, and the
CI rule that a missing tool fails the run instead of skipping."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import cncf

FIXTURES = Path(__file__).parent / "fixtures"
INLINE = FIXTURES / "inline"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_tool(name: str) -> str:
    """The tool's path; skip when absent locally, fail when absent under CI=true."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required under CI=true but is not on PATH (.ci/run must install it)")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def hub(home: Path) -> Iterator[cncf.Hub]:
    with cncf.Hub(home=home) as h:
        yield h


@pytest.fixture
def counter(hub: cncf.Hub) -> cncf.ComponentHandle:
    handle = hub.load(INLINE / "counter")
    assert handle.state == "ready", handle.observation
    return handle


@pytest.fixture(scope="session")
def jvm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's cache: the JVM host is compiled once and every hub of the
    session finds it there (see ``tests/jar/conftest.py``'s ``jar_home``)."""
    return tmp_path_factory.mktemp("cncf-cache")


@pytest.fixture(scope="session")
def jvm(jvm_cache: Path):  # noqa: ANN201 - cncf.jvm.build.JvmBuild
    """The JVM host and collaborator API, compiled once per session (shared by
    the jar suite and the contract suite)."""
    require_tool("javac")
    require_tool("java")
    from cncf.jvm.build import ensure_built

    return ensure_built(jvm_cache)

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

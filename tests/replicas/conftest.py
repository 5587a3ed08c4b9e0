"""Fixtures of the replica and generation tests: real worker processes."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import cncf

HERE = Path(__file__).resolve().parent
WORKER = HERE / "fixtures" / "worker"


@pytest.fixture
def rhub(tmp_path: Path) -> Iterator[cncf.Hub]:
    with cncf.Hub(home=tmp_path / "home") as h:
        yield h


@pytest.fixture
def worker_dir(tmp_path: Path) -> Path:
    """A private copy of the worker fixture (tests may rewrite it: a new version)."""
    dest = tmp_path / "worker"
    shutil.copytree(WORKER, dest)
    return dest


def pids_of(hub: cncf.Hub, name: str) -> list[int]:
    return [r["pid"] for r in hub.inspect(name)["replicas"]]


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)

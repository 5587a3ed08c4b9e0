"""Fixtures for the job tests: a sync hub with the queue-policy ``worker``
component loaded (short retry back-off), and a file that counts effects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cncf

from ._util import WORKER


@pytest.fixture
def hub(home: Path) -> Iterator[cncf.Hub]:
    with cncf.Hub(home=home) as h:
        handle = h.load(WORKER)
        assert handle.state == "ready", handle.observation
        h.aio._jobs.retry_base = 0.05  # keep back-offs short in tests
        yield h


@pytest.fixture
def effects(tmp_path: Path) -> Path:
    return tmp_path / "effects.txt"

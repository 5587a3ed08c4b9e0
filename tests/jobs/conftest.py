"""Fixtures for the job tests: a sync hub with the queue-policy ``worker``
component loaded (short retry back-off), a file that counts effects, and a
real PostgreSQL server (``pg``, session-wide) for the tests run over both
stores (``each_store``: the module's tests run once on the home's SQLite file
and once on a database of their own on that server)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import cncf

from ._util import WORKER
from .pg import PgServer


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


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A PostgreSQL server for the session; a skip when none is installed —
    a failure under ``CI=true``."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401

        server = PgServer()
    except (ImportError, FileNotFoundError, RuntimeError, OSError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is needed under CI=true: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(pg: PgServer) -> str:
    """A fresh database on the session's server."""
    return pg.database()


@pytest.fixture(params=["sqlite", "postgresql"])
def each_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each store: ``$CNCF_JOB_STORE`` is what every hub of the test uses."""
    if request.param == "sqlite":
        monkeypatch.delenv("CNCF_JOB_STORE", raising=False)
        return "sqlite"
    url: str = request.getfixturevalue("pg_url")
    monkeypatch.setenv("CNCF_JOB_STORE", url)
    return url

"""The PostgreSQL store's own promises: the lease (a frozen hub's job is resumed
by another after the lease, and the frozen hub's late ending is not recorded),
a lost database (``enqueue_failed``, retryable, while other calls go on; the hub
reconnects by itself), and the schema the hub creates and versions itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cncf
from cncf.jobs import JobState

from ._util import WORKER, HubProcess, lines
from .pg import PgServer
from .test_shared import SHARED


def test_a_frozen_hub_loses_its_lease_and_its_job_is_resumed(tmp_path: Path, pg_url: str) -> None:
    lease = 2.0
    effects = tmp_path / "effects.txt"
    env = dict(os.environ, PYTHONUNBUFFERED="1", CNCF_JOB_STORE=pg_url, CNCF_JOB_LEASE=str(lease))
    a = HubProcess(SHARED, tmp_path / "a.err", env, str(tmp_path / "a"), str(WORKER), str(effects), "1", "1.5")
    try:
        a.until(lambda: "submitted" in a.lines and lines(effects) == ["t0"])
        job_id = next(x.split()[1] for x in a.lines if x.startswith("accepted"))
        a.p.send_signal(signal.SIGSTOP)  # alive, connected, holding its lock: only the lease can tell
        stopped = time.monotonic()
        with cncf.Hub(home=tmp_path / "b", job_store=pg_url) as b:
            b.load(WORKER)
            owner_a = b.job(job_id).owner
            final = b.wait(job_id, lease + 15)
            took = time.monotonic() - stopped
            assert final.ok and final.value == "t0", final.observation
            assert lease <= took < lease + 10, took
            job = b.job(job_id)
            assert job.attempts == 2
            assert [(h.observation.code, h.hub) for h in job.history] == [(cncf.Code.JOB_LOST, owner_a)]
            finished = job.finished
            a.p.send_signal(signal.SIGCONT)  # the frozen attempt ends late: its ending is not recorded
            time.sleep(2.5)
            again = b.job(job_id)
            assert (again.state, again.finished, again.attempts) == (JobState.SUCCEEDED, finished, 2)
    finally:
        a.p.send_signal(signal.SIGCONT)
        a.stop(signal.SIGKILL)
    assert lines(effects) == ["t0", "t0"]  # at-least-once: it ran twice, recorded once


@pytest.fixture
def own_pg(pg: PgServer) -> PgServer:
    """A server this test may stop (not the session's)."""
    server = PgServer()
    yield server  # type: ignore[misc]
    server.close()


def test_a_lost_database_is_enqueue_failed_then_the_hub_reconnects(tmp_path: Path, own_pg: PgServer) -> None:
    url = own_pg.database()
    with cncf.Hub(home=tmp_path / "home", job_store=url) as hub:
        hub.load(WORKER)
        assert hub.wait(hub.call("worker.add", [1, 2]).job_id, 10).value == 3
        own_pg.stop("immediate")
        t0 = time.monotonic()
        out = hub.call("worker.add", [2, 3])
        assert time.monotonic() - t0 < 15
        assert out.observation is not None and out.observation.code is cncf.Code.ENQUEUE_FAILED
        assert out.observation.retryable and out.observation.attributes["reason"] == "store_unreachable"
        assert out.observation.attributes["store"] == url  # (no password here to hide; see test_redact)
        # calls that need no store go on
        assert hub.call("worker.direct", [7]).value == 7
        own_pg.start()
        deadline = time.monotonic() + 30
        while True:
            out = hub.call("worker.add", [2, 3])
            if out.ok or time.monotonic() > deadline:
                break
            assert out.observation.code is cncf.Code.ENQUEUE_FAILED
            time.sleep(0.5)
        assert out.ok, out.observation
        assert hub.wait(out.job_id, 10).value == 5


def test_the_hub_creates_and_versions_its_schema(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    with cncf.Hub(home=tmp_path / "h", job_store=pg_url) as hub:
        hub.load(WORKER)
        assert hub.wait(hub.call("worker.add", [1, 2]).job_id, 10).value == 3
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT max(version) FROM cncf.schema_version").fetchone() == (1,)
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='cncf'")}
        assert tables == {"jobs", "sources", "owners", "schema_version"}
        conn.execute("INSERT INTO cncf.schema_version VALUES (99)")  # a newer hub migrated it
    with cncf.Hub(home=tmp_path / "h", job_store=pg_url) as hub:
        hub.load(WORKER)
        out = hub.call("worker.add", [1, 2])
        assert out.observation is not None and out.observation.code is cncf.Code.ENQUEUE_FAILED
        assert "99" in out.observation.message


def test_redact_hides_the_password() -> None:
    from cncf.jobs.protocol import redact

    assert redact("postgresql://cncf:s3cret@db.example:5432/jobs") == "postgresql://cncf:***@db.example:5432/jobs"
    assert redact("postgresql://db.example/jobs") == "postgresql://db.example/jobs"


def test_cncf_serve_takes_its_job_store_from_the_hub_file(tmp_path: Path, pg_url: str) -> None:
    from cncf.client import connect

    from .test_shutdown import PYWORKER, READY

    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(f'[hub]\njob_store = "{pg_url}"\njob_lease = 4\n\n[[component]]\ntarget = "{PYWORKER}"\n')
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for k in ("CNCF_TOKEN", "CNCF_JOB_STORE", "CNCF_JOB_LEASE"):
        env.pop(k, None)
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "cncf", "serve", str(hubfile), "--port", "0", "--home", str(home)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        m = READY.search(proc.stdout.readline())
        assert m is not None, proc.stderr.read() if proc.poll() is not None else ""
        with connect(m.group(1)) as remote:
            out = remote.call("pyworker.add", [2, 3])
            assert out.ok and out.job_id
            assert remote.wait(out.job_id, 30).value == 5
            assert remote.job(out.job_id).owner is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert not (home / "jobs.sqlite3").exists()  # the job went to PostgreSQL, not to the home
    with cncf.Hub(home=tmp_path / "reader", job_store=pg_url, job_workers=0) as reader:
        assert reader.job(out.job_id).state is JobState.SUCCEEDED
    # a [hub] job_store that is not understood is a usage error
    hubfile.write_text('[hub]\njob_store = "mysql://x"\n')
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "job_store" in bad.stderr


def test_cncf_run_takes_its_job_store_from_the_hub_file(tmp_path: Path, pg_url: str) -> None:
    from .test_shutdown import PYWORKER

    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(
        f'[hub]\njob_store = "{pg_url}"\n\n[[component]]\ntarget = "{PYWORKER}"\n\n'
        '[[call]]\ncall = "pyworker.add"\nargs = [2, 3]\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "CNCF_JOB_STORE"}
    home = tmp_path / "home"
    r = subprocess.run(
        [sys.executable, "-m", "cncf", "run", str(hubfile), "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert not (home / "jobs.sqlite3").exists()
    with cncf.Hub(home=tmp_path / "reader", job_store=pg_url, job_workers=0) as reader:
        (job,) = reader.jobs(limit=None)
        assert job.target == "pyworker.default.add" and job.args == (2, 3)

"""The same job tests for every form that can host a queue-policy component,
and what only a process boundary allows: a job of an idempotent operation
that keeps killing its worker is quarantined, each attempt's
``worker_crashed`` kept; one of an operation not declared idempotent is not
run again (its attempt may have had its effect)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cncf
from cncf.jobs import JobState

from ._util import HERE, WORKER

pytestmark = pytest.mark.usefixtures("each_store")  # on SQLite and on PostgreSQL

FORMS = {"inline": (WORKER, "worker"), "python": (HERE / "fixtures" / "pyworker", "pyworker")}


@pytest.fixture(params=sorted(FORMS))
def loaded(request: pytest.FixtureRequest, home: Path) -> Iterator[tuple[cncf.Hub, str]]:
    path, name = FORMS[request.param]
    with cncf.Hub(home=home) as hub:
        handle = hub.load(path)
        if handle.state != "ready":
            pytest.skip(f"{request.param} form unavailable: {handle.observation}")
        hub.aio._jobs.retry_base = 0.05
        yield hub, name


def test_job_succeeds(loaded: tuple[cncf.Hub, str]) -> None:
    hub, name = loaded
    out = hub.call(f"{name}.add", [20, 22])
    assert out.job_id and hub.wait(out.job_id, 20).value == 42
    assert hub.job(out.job_id).state is JobState.SUCCEEDED


def test_job_fails_on_raise(loaded: tuple[cncf.Hub, str]) -> None:
    hub, name = loaded
    out = hub.call(f"{name}.boom")
    final = hub.wait(out.job_id, 20)
    assert final.observation.code is cncf.Code.RAISED
    assert hub.job(out.job_id).state is JobState.FAILED and hub.job(out.job_id).attempts == 1


def test_jobs_progress_while_the_caller_sleeps(loaded: tuple[cncf.Hub, str]) -> None:
    hub, name = loaded
    ids = [hub.call(f"{name}.add", [i, i]).job_id for i in range(10)]
    time.sleep(1)
    assert [hub.job(j).state for j in ids] == [JobState.SUCCEEDED] * 10


def test_job_that_kills_its_worker_is_quarantined(home: Path) -> None:
    path, name = FORMS["python"]
    with cncf.Hub(home=home) as hub:
        handle = hub.load(path)
        if handle.state != "ready":
            pytest.skip(f"python form unavailable: {handle.observation}")
        hub.aio._jobs.retry_base = 0.05
        out = hub.call(f"{name}.die")
        final = hub.wait(out.job_id, 30)
        assert final.observation.code is cncf.Code.JOB_QUARANTINED
        attempts = final.observation.attributes["attempts"]
        assert [a["observation"]["code"] for a in attempts] == ["worker_crashed"] * 2
        job = hub.job(out.job_id)
        assert job.state is JobState.FAILED and job.attempts == 2
        assert [a.observation.code for a in job.history] == [cncf.Code.WORKER_CRASHED] * 2
        # the component was restarted and takes the next job
        assert hub.wait(hub.call(f"{name}.add", [1, 1]).job_id, 20).value == 2


def test_a_job_that_kills_its_worker_once_is_not_run_again_unless_idempotent(home: Path) -> None:
    """Brief section 14: an attempt that started and crashed may have had its
    effect, so the job fails with that ``worker_crashed`` (not retryable) after
    one attempt."""
    path, name = FORMS["python"]
    with cncf.Hub(home=home) as hub:
        handle = hub.load(path)
        if handle.state != "ready":
            pytest.skip(f"python form unavailable: {handle.observation}")
        hub.aio._jobs.retry_base = 0.05
        out = hub.call(f"{name}.crash")
        final = hub.wait(out.job_id, 30)
        assert (final.observation.code, final.observation.stage.value) == (cncf.Code.WORKER_CRASHED, "execute")
        assert final.observation.attributes["started"] is True and not final.observation.retryable
        job = hub.job(out.job_id)
        assert job.state is JobState.FAILED and job.attempts == 1
        assert hub.wait(hub.call(f"{name}.add", [1, 1]).job_id, 20).value == 2

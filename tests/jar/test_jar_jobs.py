"""The jar twin of the job tests (tests/jobs/test_forms.py): queue-policy
operations of a JVM component become durable jobs like any other form's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cncf
from cncf.jobs import JobState
from tests.jar.conftest import jar_home


@pytest.fixture
def queued(tmp_path: Path, faults_jar: Path, jvm_cache: Path) -> Iterator[cncf.Hub]:
    with cncf.Hub(home=jar_home(tmp_path / "home", jvm_cache)) as hub:
        # idempotent: a job whose attempt crashed the host is retried only then (brief section 14)
        h = hub.load(
            faults_jar, name="worker", entry="faults.Faults", policy="queue", isolation="process", idempotent=True
        )
        assert h.state == "ready", h.observation
        hub.aio._jobs.retry_base = 0.05
        yield hub


def test_jar_job_succeeds(queued: cncf.Hub) -> None:
    out = queued.call("worker.add", [20, 22])
    assert out.job_id
    assert queued.wait(out.job_id, 30).value == 42
    assert queued.job(out.job_id).state is JobState.SUCCEEDED


def test_jar_job_fails_on_a_java_exception(queued: cncf.Hub) -> None:
    out = queued.call("worker.raise", ["no"])
    final = queued.wait(out.job_id, 30)
    assert final.observation.code is cncf.Code.RAISED
    assert final.observation.cause.type == "java.lang.IllegalStateException"
    assert queued.job(out.job_id).state is JobState.FAILED


def test_jar_job_that_kills_its_host_is_quarantined(queued: cncf.Hub) -> None:
    out = queued.call("worker.exit", [9])
    final = queued.wait(out.job_id, 60)
    assert final.observation.code is cncf.Code.JOB_QUARANTINED
    attempts = final.observation.attributes["attempts"]
    assert {a["observation"]["code"] for a in attempts} == {"worker_crashed"}
    # the component was restarted in a new host and takes the next job
    assert queued.wait(queued.call("worker.add", [1, 1]).job_id, 30).value == 2

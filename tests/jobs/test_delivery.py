"""Delivery semantics: retries with back-off, quarantine, idempotency keys,
cancellation of a queued and of a running job."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import cncf
from cncf.jobs import JobState

from ._util import lines

pytestmark = pytest.mark.usefixtures("each_store")  # on SQLite and on PostgreSQL

# -- retries -----------------------------------------------------------------


def test_retryable_observation_is_retried_until_success(hub: cncf.Hub, effects: Path) -> None:
    out = hub.call("worker.flaky", {"path": str(effects), "slow_times": 2})
    final = hub.wait(out.job_id, 10)
    assert final.ok and final.value == 3
    job = hub.job(out.job_id)
    assert job.state is JobState.SUCCEEDED and job.attempts == 3
    assert [a.observation.code for a in job.history] == [cncf.Code.TIMED_OUT] * 2
    assert [a.number for a in job.history] == [1, 2]
    assert lines(effects) == ["attempt"] * 3


def test_back_off_grows_exponentially(hub: cncf.Hub, effects: Path) -> None:
    jobs = hub.aio._jobs
    jobs.retry_base = 0.3
    out = hub.call("worker.flaky", {"path": str(effects), "slow_times": 2})
    assert hub.wait(out.job_id, 10).ok
    job = hub.job(out.job_id)
    h = job.history
    # attempt 2 starts ~0.3 s after attempt 1 ended, attempt 3 ~0.6 s after attempt 2
    assert h[1].started - h[0].finished >= 0.3 * 0.8 - 0.02
    assert job.started - h[1].finished >= 0.6 * 0.8 - 0.02
    for n in (1, 2, 3):
        assert 0.8 <= jobs.backoff(n) / (0.3 * 2 ** (n - 1)) <= 1.2  # ±20 % jitter
    jobs.retry_max = 0.5
    assert jobs.backoff(10) <= 0.5 * 1.2


def test_exhausted_attempts_quarantine_the_job_with_every_observation(hub: cncf.Hub) -> None:
    out = hub.call("worker.hang")
    final = hub.wait(out.job_id, 10)
    obs = final.observation
    assert obs.code is cncf.Code.JOB_QUARANTINED and obs.stage is cncf.Stage.JOB
    assert obs.retryable is False
    assert [a["observation"]["code"] for a in obs.attributes["attempts"]] == ["timed_out"] * 3
    assert obs.attributes["last_code"] == "timed_out" and obs.attributes["max_attempts"] == 3
    assert obs.cause is not None and obs.cause.type == "Observation:timed_out"
    job = hub.job(out.job_id)
    assert job.state is JobState.FAILED and job.attempts == 3 and len(job.history) == 3
    assert job.outcome.observation.code is cncf.Code.JOB_QUARANTINED


# -- idempotency -------------------------------------------------------------


def test_same_idempotency_key_returns_the_first_job(hub: cncf.Hub, effects: Path) -> None:
    first = hub.call("worker.append", {"path": str(effects), "tag": "a"}, idempotency_key="k-1")
    again = hub.call("worker.append", {"path": str(effects), "tag": "a"}, idempotency_key="k-1")
    assert first.job_id and again.job_id == first.job_id
    assert hub.wait(first.job_id, 5).value == "a"
    late = hub.call("worker.append", {"path": str(effects), "tag": "a"}, idempotency_key="k-1")
    assert late.job_id == first.job_id  # also once the first has finished
    other = hub.call("worker.append", {"path": str(effects), "tag": "b"}, idempotency_key="k-2")
    assert other.job_id != first.job_id
    hub.wait(other.job_id, 5)
    assert lines(effects) == ["a", "b"]
    assert hub.job(first.job_id).idempotency_key == "k-1"
    assert len(hub.jobs()) == 2


def test_idempotency_key_holds_across_restarts_and_concurrent_submissions(home: Path) -> None:
    import asyncio

    from ._util import WORKER

    async def main() -> list[str]:
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(WORKER)
            outs = await asyncio.gather(*(hub.call("worker.add", [1, 2], idempotency_key="same") for _ in range(20)))
            return [o.job_id for o in outs]

    ids = asyncio.run(main())
    assert len(set(ids)) == 1
    with cncf.Hub(home=home) as hub:
        hub.load(WORKER)
        assert hub.call("worker.add", [1, 2], idempotency_key="same").job_id == ids[0]
        assert hub.wait(ids[0], 5).value == 3
        assert len(hub.jobs()) == 1


def test_idempotency_key_travels_in_the_call_context(hub: cncf.Hub) -> None:
    out = hub.call("worker.add", [1, 1], idempotency_key="ctx")
    hub.wait(out.job_id, 5)
    job = hub.job(out.job_id)
    assert job.idempotency_key == "ctx"


# -- cancellation ------------------------------------------------------------


def test_cancel_a_queued_job(hub: cncf.Hub, effects: Path) -> None:
    running = hub.call("worker.sleep", {"seconds": 0.3})
    queued = hub.call("worker.append", {"path": str(effects), "tag": "never"})
    assert hub.job(queued.job_id).state is JobState.QUEUED
    assert hub.cancel_job(queued.job_id) is True
    job = hub.job(queued.job_id)
    assert job.state is JobState.CANCELLED and job.attempts == 0
    final = hub.wait(queued.job_id, 1)
    assert final.observation.code is cncf.Code.JOB_CANCELLED
    assert final.observation.stage is cncf.Stage.JOB
    assert hub.wait(running.job_id, 5).ok
    time.sleep(0.1)
    assert lines(effects) == []  # it never ran
    assert hub.cancel_job(queued.job_id) is False  # already finished


def test_cancel_a_running_job(hub: cncf.Hub, effects: Path) -> None:
    out = hub.call("worker.sleep", {"seconds": 5, "path": str(effects)})
    deadline = time.monotonic() + 5
    while not lines(effects) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub.job(out.job_id).state is JobState.RUNNING
    t0 = time.monotonic()
    assert hub.cancel_job(out.job_id) is True
    final = hub.wait(out.job_id, 5)
    assert time.monotonic() - t0 < 2  # cooperative: the async operation stops at once
    assert final.observation.code is cncf.Code.JOB_CANCELLED
    assert final.observation.attributes["inner_code"] == "cancelled"
    assert hub.job(out.job_id).state is JobState.CANCELLED
    assert hub.call("worker.add", [1, 1]).job_id  # the component goes on
    assert hub.wait(hub.jobs(limit=1)[0].id, 5).value == 2


def test_cancel_a_job_waiting_out_its_back_off(hub: cncf.Hub, effects: Path, each_store: str) -> None:
    hub.aio._jobs.retry_base = 5.0
    out = hub.call("worker.flaky", {"path": str(effects), "slow_times": 5})
    deadline = time.monotonic() + 5
    while hub.job(out.job_id).not_before is None and time.monotonic() < deadline:
        time.sleep(0.02)
    job = hub.job(out.job_id)
    assert job.state is JobState.QUEUED and job.attempts == 1 and job.not_before > time.time()
    assert hub.cancel_job(out.job_id) is True
    assert hub.job(out.job_id).state is JobState.CANCELLED
    assert out.job_id not in hub.aio._jobs._timers  # its back-off timer is gone too
    if each_store == "sqlite":  # (a hub on a shared PostgreSQL queue stays busy: other hubs' jobs may come)
        assert not hub.aio._jobs.busy


def test_unload_hands_a_running_job_back_uncounted(hub: cncf.Hub, effects: Path) -> None:
    from ._util import WORKER

    out = hub.call("worker.sleep", {"seconds": 5, "path": str(effects)})
    deadline = time.monotonic() + 5
    while not lines(effects) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub.unload("worker")
    deadline = time.monotonic() + 5  # the hand-back is committed by the store's writer (a thread on PostgreSQL)
    while hub.job(out.job_id).state is JobState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    job = hub.job(out.job_id)
    assert job.state is JobState.QUEUED and job.attempts == 0
    handle = hub.load(WORKER)  # a new instance: the job runs again from the start
    assert handle.state in ("ready", "busy")  # the pump may have claimed the job already
    deadline = time.monotonic() + 5
    while len(lines(effects)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    job = hub.job(out.job_id)
    assert job.state is JobState.RUNNING and job.attempts == 1
    assert hub.cancel_job(out.job_id)
    assert hub.wait(out.job_id, 5).observation.code is cncf.Code.JOB_CANCELLED


def test_callers_timeout_applies_to_each_attempt(hub: cncf.Hub) -> None:
    out = hub.call("worker.sleep", {"seconds": 2}, timeout=0.2)
    final = hub.wait(out.job_id, 10)
    assert final.observation.code is cncf.Code.JOB_QUARANTINED
    job = hub.job(out.job_id)
    assert [a.observation.code for a in job.history] == [cncf.Code.TIMED_OUT] * 3
    assert all(a.finished - a.started < 1.0 for a in job.history)
    assert len(hub.jobs()) == 1  # hub.jobs() lists all jobs unless limited

"""Job states and transitions, through the sync and the async API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import cncf
from cncf.jobs import Job, JobNotFound, JobState

from ._util import WORKER, lines

pytestmark = pytest.mark.usefixtures("each_store")  # on SQLite and on PostgreSQL


def test_queue_call_returns_job_id_at_once_and_job_succeeds(hub: cncf.Hub) -> None:
    out = hub.call("worker.add", [2, 3])
    assert out.ok and out.value is None and out.job_id
    final = hub.wait(out.job_id, timeout=5)
    assert final.ok and final.value == 5 and final.job_id == out.job_id
    job = hub.job(out.job_id)
    assert isinstance(job, Job)
    assert job.state is JobState.SUCCEEDED and job.done
    assert job.attempts == 1 and job.max_attempts == 3
    assert job.created <= job.started <= job.finished
    assert job.outcome is not None and job.outcome.value == 5
    assert job.target == "worker.default.add" and job.component == "worker"
    assert job.args == (2, 3) and job.call_id == out.call_id
    assert job.history == ()


def test_named_arguments_and_correlation_id_are_stored(hub: cncf.Hub) -> None:
    out = hub.call("worker.add", {"a": 1, "b": 41}, correlation_id="order-7")
    assert hub.wait(out.job_id, 5).value == 42
    job = hub.job(out.job_id)
    assert job.kwargs == {"a": 1, "b": 41} and job.correlation_id == "order-7"


def test_running_state_is_visible(hub: cncf.Hub, effects: Path) -> None:
    out = hub.call("worker.sleep", {"seconds": 0.5, "path": str(effects)})
    deadline = time.monotonic() + 5
    while not lines(effects) and time.monotonic() < deadline:
        time.sleep(0.01)
    job = hub.job(out.job_id)
    assert job.state is JobState.RUNNING and job.started is not None and job.finished is None
    assert hub.wait(out.job_id, 5).value == 0.5
    assert hub.job(out.job_id).state is JobState.SUCCEEDED


def test_second_job_of_a_component_stays_queued_while_the_first_runs(hub: cncf.Hub) -> None:
    first = hub.call("worker.sleep", {"seconds": 0.4})
    second = hub.call("worker.add", [1, 1])
    time.sleep(0.1)
    assert hub.job(first.job_id).state is JobState.RUNNING
    assert hub.job(second.job_id).state is JobState.QUEUED  # queue ops run one at a time
    assert hub.wait(second.job_id, 5).value == 2
    assert hub.job(first.job_id).finished <= hub.job(second.job_id).started


def test_non_retryable_observation_fails_the_job(hub: cncf.Hub) -> None:
    out = hub.call("worker.boom")
    final = hub.wait(out.job_id, 5)
    assert not final.ok
    assert final.observation.code is cncf.Code.RAISED
    assert final.observation.stage is cncf.Stage.EXECUTE
    job = hub.job(out.job_id)
    assert job.state is JobState.FAILED and job.attempts == 1
    assert [a.observation.code for a in job.history] == [cncf.Code.RAISED]


def test_invalid_arguments_are_refused_before_a_job_is_stored(hub: cncf.Hub) -> None:
    before = len(hub.jobs())
    out = hub.call("worker.add", {"nope": 1})  # the hub knows the parameters: no job for that
    assert out.job_id is None and not out.queued
    assert out.observation.code is cncf.Code.INVALID_ARGUMENTS
    assert out.observation.stage is cncf.Stage.DISPATCH
    assert len(hub.jobs()) == before
    ok = hub.call("worker.add", {"a": 1, "b": 2})
    assert ok.job_id and hub.wait(ok.job_id, 5).value == 3


def test_non_queue_operation_of_the_same_component_runs_directly(hub: cncf.Hub) -> None:
    out = hub.call("worker.direct", [7])
    assert out.ok and out.value == 7 and out.job_id is None


def test_unknown_job(hub: cncf.Hub) -> None:
    with pytest.raises(JobNotFound) as info:
        hub.job("j-nope")
    assert info.value.observation.code is cncf.Code.JOB_NOT_FOUND
    assert info.value.observation.stage is cncf.Stage.JOB
    assert isinstance(info.value, LookupError)
    out = hub.wait("j-nope", 1)
    assert out.observation.code is cncf.Code.JOB_NOT_FOUND and out.job_id == "j-nope"
    assert hub.cancel_job("j-nope") is False


def test_wait_timeout_is_an_observation_and_the_job_goes_on(hub: cncf.Hub) -> None:
    out = hub.call("worker.sleep", {"seconds": 0.6})
    t0 = time.monotonic()
    early = hub.wait(out.job_id, timeout=0.1)
    assert time.monotonic() - t0 < 0.5
    assert early.observation.code is cncf.Code.WAIT_TIMEOUT
    assert early.observation.stage is cncf.Stage.WAIT
    assert early.observation.attributes["job_state"] in ("queued", "running")
    assert early.job_id == out.job_id
    assert hub.wait(out.job_id, 5).value == 0.6


def test_list_filters(hub: cncf.Hub) -> None:
    ok = [hub.call("worker.add", [i, i]).job_id for i in range(3)]
    bad = hub.call("worker.boom").job_id
    for j in [*ok, bad]:
        hub.wait(j, 5)
    assert [j.id for j in hub.jobs()] == [bad, *reversed(ok)]  # newest first
    assert {j.id for j in hub.jobs(state="succeeded")} == set(ok)
    assert [j.id for j in hub.jobs(state=JobState.FAILED)] == [bad]
    assert len(hub.jobs(limit=2)) == 2
    assert len(hub.jobs(component="Worker")) == 4  # names compare normalized
    assert hub.jobs(component="other") == []
    assert [j.id for j in hub.jobs(oldest_first=True, limit=1)] == [ok[0]]
    assert hub.job(ok[0]).to_dict()["state"] == "succeeded"


def test_jobs_survive_a_clean_restart(home: Path) -> None:
    with cncf.Hub(home=home) as hub:
        hub.load(WORKER)
        done = hub.call("worker.add", [1, 2]).job_id
        assert hub.wait(done, 5).value == 3
    with cncf.Hub(home=home) as hub:  # no component loaded: the store is still readable
        job = hub.job(done)
        assert job.state is JobState.SUCCEEDED and job.outcome.value == 3


def test_queued_job_waits_for_its_component_to_be_loaded(home: Path, tmp_path: Path) -> None:
    with cncf.Hub(home=home) as hub:
        hub.load(WORKER)
        blocker = hub.call("worker.sleep", {"seconds": 0.3}).job_id
        pending = hub.call("worker.add", [20, 22]).job_id
        # close right away: the running attempt is handed back uncounted, the other stays queued
    with cncf.Hub(home=home) as hub:
        assert hub.job(pending).state is JobState.QUEUED
        assert hub.wait(pending, 0.3).observation.code is cncf.Code.WAIT_TIMEOUT
        hub.load(WORKER)
        assert hub.wait(pending, 5).value == 42
        assert hub.wait(blocker, 5).value == 0.3
        assert hub.job(blocker).attempts == 1  # the attempt cut short by close() was not counted


def test_async_api(home: Path) -> None:
    async def main() -> None:
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(WORKER)
            outs = await asyncio.gather(*(hub.call("worker.add", [i, 1]) for i in range(50)))
            assert all(o.ok and o.job_id for o in outs)
            finals = await asyncio.gather(*(hub.wait(o.job_id, 10) for o in outs))
            assert [f.value for f in finals] == [i + 1 for i in range(50)]
            job = await hub.job(outs[0].job_id)
            assert job.state is JobState.SUCCEEDED
            assert len(await hub.jobs(state="succeeded", limit=None)) == 50
            # 50 concurrent enqueues share few commits (group commit)
            assert hub._jobs.stats()["commits"] < 50 * 3

    asyncio.run(main())


def test_submit_only_hub_runs_no_job(home: Path) -> None:
    with cncf.Hub(home=home, job_workers=0) as hub:
        hub.load(WORKER)
        out = hub.call("worker.add", [1, 2])
        time.sleep(0.2)
        assert hub.job(out.job_id).state is JobState.QUEUED
        assert hub._pump is None  # nothing to pump for
    with cncf.Hub(home=home) as hub:
        hub.load(WORKER)
        assert hub.wait(out.job_id, 5).value == 3


@pytest.mark.parametrize("each_store", ["sqlite"], indirect=True)  # SQLite's synchronous pragma
def test_power_durability_uses_full_sync_and_group_commit(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNCF_JOB_DURABILITY", "power")

    async def main() -> None:
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(WORKER)
            store = hub._jobs.store
            assert store.durability == "power"
            assert store._wdb.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
            outs = await asyncio.gather(*(hub.call("worker.add", [i, 1]) for i in range(40)))
            finals = await asyncio.gather(*(hub.wait(o.job_id, 10) for o in outs))
            assert [f.value for f in finals] == [i + 1 for i in range(40)]

    asyncio.run(main())


def test_bad_durability_setting_is_an_enqueue_failure(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNCF_JOB_DURABILITY", "forever")
    with cncf.Hub(home=home) as hub:
        hub.load(WORKER)
        out = hub.call("worker.add", [1, 2])
        assert out.observation.code is cncf.Code.ENQUEUE_FAILED
        assert out.observation.attributes["reason"] == "store_error"


def test_workers_are_fair_across_components(home: Path, tmp_path: Path) -> None:
    effects = tmp_path / "order.txt"

    async def main() -> None:
        async with cncf.AsyncHub(home=home, job_workers=1) as hub:
            await hub.load(WORKER)
            await hub.load(WORKER, name="other")
            hub._jobs.pause()
            ids = []
            for name in ("worker", "other"):  # a backlog of 4, then another of 4
                for i in range(4):
                    out = await hub.call(f"{name}.append", {"path": str(effects), "tag": f"{name[0]}{i}"})
                    ids.append(out.job_id)
            hub._jobs.resume()
            for j in ids:
                assert (await hub.wait(j, 5)).ok

    asyncio.run(main())
    assert lines(effects) == ["w0", "o0", "w1", "o1", "w2", "o2", "w3", "o3"]  # round robin


def test_components_run_their_jobs_side_by_side(home: Path, tmp_path: Path) -> None:
    async def main() -> float:
        async with cncf.AsyncHub(home=home, job_workers=2) as hub:
            await hub.load(WORKER)
            await hub.load(WORKER, name="other")
            t0 = time.monotonic()
            a = await hub.call("worker.sleep", {"seconds": 0.3})
            b = await hub.call("other.sleep", {"seconds": 0.3})
            assert (await hub.wait(a.job_id, 5)).ok and (await hub.wait(b.job_id, 5)).ok
            return time.monotonic() - t0

    assert asyncio.run(main()) < 0.55  # two workers, two components: in parallel

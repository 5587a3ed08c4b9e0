"""The sync facade's pump: jobs progress between sync calls, while the user
sleeps; calls without job work never start a thread; close() leaves nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import cncf
from cncf.jobs import JobState

from ._util import WORKER, lines

pytestmark = pytest.mark.usefixtures("each_store")  # on SQLite and on PostgreSQL

INLINE_COUNTER = Path(__file__).parents[1] / "fixtures" / "inline" / "counter"


def _pump_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("cncf-hub-pump", "cncf-jobs"))]


def test_jobs_progress_while_the_caller_sleeps(hub: cncf.Hub, effects: Path) -> None:
    ids = [
        hub.call("worker.slow_append", {"path": str(effects), "tag": f"t{i}", "seconds": 0.05}).job_id for i in range(5)
    ]
    time.sleep(1)  # no hub method runs during this second
    assert [hub.job(j).state for j in ids] == [JobState.SUCCEEDED] * 5
    assert lines(effects) == [f"t{i}" for i in range(5)]


def test_retries_progress_while_the_caller_sleeps(hub: cncf.Hub, effects: Path) -> None:
    out = hub.call("worker.flaky", {"path": str(effects), "slow_times": 1})
    time.sleep(1.5)  # attempt 1 times out (0.3 s), back-off, attempt 2 succeeds
    job = hub.job(out.job_id)
    assert job.state is JobState.SUCCEEDED and job.attempts == 2


@pytest.mark.parametrize("each_store", ["sqlite"], indirect=True)  # on a shared PostgreSQL queue it keeps turning
def test_pump_stops_when_idle_and_restarts_on_new_work(hub: cncf.Hub) -> None:
    j = hub.call("worker.add", [1, 2]).job_id
    time.sleep(0.3)
    assert hub.job(j).state is JobState.SUCCEEDED
    pump = hub._pump
    assert pump is not None and not pump.running  # parked: nothing to do
    turns = pump.turns
    j2 = hub.call("worker.add", [2, 2]).job_id
    time.sleep(0.3)
    assert hub.job(j2).state is JobState.SUCCEEDED and pump.turns > turns


def test_sync_calls_interleave_with_running_jobs(hub: cncf.Hub, effects: Path) -> None:
    ids = [
        hub.call("worker.slow_append", {"path": str(effects), "tag": f"t{i}", "seconds": 0.005}).job_id
        for i in range(40)
    ]
    for i in range(300):  # each takes the loop back from the pump, then hands it over
        assert hub.call("worker.direct", [i]).value == i
    finals = [hub.wait(j, 10) for j in ids]
    assert all(f.ok for f in finals)
    assert sorted(lines(effects)) == sorted(f"t{i}" for i in range(40))


def test_no_pump_without_job_work(home: Path) -> None:
    before = len(_pump_threads())
    with cncf.Hub(home=home) as hub:
        hub.load(INLINE_COUNTER)
        for _ in range(100):
            assert hub.call("counter.increment", {}).ok
        assert hub._pump is None and hub.aio._jobs is None  # no SQLite, no thread
        assert len(_pump_threads()) == before


def test_idle_job_system_costs_no_thread_hop(hub: cncf.Hub) -> None:
    assert hub.wait(hub.call("worker.add", [1, 1]).job_id, 5).ok
    time.sleep(0.1)
    pump = hub._pump
    turns = pump.turns if pump is not None else 0
    for i in range(200):
        hub.call("worker.direct", [i])
    assert (pump.turns if pump is not None else 0) == turns  # no job work: the pump never woke


def test_close_stops_the_pump_and_leaves_no_thread(home: Path, effects: Path) -> None:
    before = {t.ident for t in _pump_threads()}
    hub = cncf.Hub(home=home)
    hub.load(WORKER)
    ids = [
        hub.call("worker.slow_append", {"path": str(effects), "tag": f"t{i}", "seconds": 0.2}).job_id for i in range(5)
    ]
    time.sleep(0.1)
    assert hub._pump is not None and hub._pump.alive
    hub.close()
    assert not hub._pump.alive
    assert {t.ident for t in _pump_threads()} <= before
    with cncf.Hub(home=home) as again:  # what close() interrupted is still in the store
        again.load(WORKER)
        assert all(again.wait(j, 10).ok for j in ids)


def test_cancel_from_another_thread_while_the_pump_runs(hub: cncf.Hub, effects: Path) -> None:
    out = hub.call("worker.sleep", {"seconds": 5, "path": str(effects)})
    deadline = time.monotonic() + 5
    while not lines(effects) and time.monotonic() < deadline:
        time.sleep(0.01)
    done = threading.Event()
    result: list[bool] = []

    def other() -> None:
        result.append(hub.cancel_job(out.job_id))
        done.set()

    threading.Thread(target=other).start()
    assert done.wait(5) and result == [True]
    assert hub.wait(out.job_id, 5).observation.code is cncf.Code.JOB_CANCELLED

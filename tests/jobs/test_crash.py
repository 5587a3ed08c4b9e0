"""Durability: a hub process killed with SIGKILL mid-way, twice, then
restarted on the same home: every accepted job ends exactly once in a
terminal state with a stored Outcome.

Delivery is at-least-once: a job whose attempt was running at a kill runs
again after the restart, so its effect may be seen twice; its history then
holds a ``job_lost`` attempt.  A job that had *finished* before a kill is never
run again, and its stored Outcome does not change.
"""

from __future__ import annotations

import collections
import signal
import sqlite3
from pathlib import Path

import cncf
from cncf.jobs import JobState

from ._util import HERE, WORKER, HubProcess, lines

SCRIPT = HERE / "fixtures" / "crash_hub.py"
N = 1000


class _Proc(HubProcess):
    def __init__(self, stderr: Path, *args: str) -> None:
        super().__init__(SCRIPT, stderr, None, *args)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
        assert self.p.returncode == -signal.SIGKILL


def _snapshot(home: Path) -> dict[str, tuple[str, float | None, str | None]]:
    db = sqlite3.connect(home / "jobs.sqlite3")
    try:
        return {r[0]: (r[1], r[2], r[3]) for r in db.execute("SELECT id, state, finished, outcome FROM jobs")}
    finally:
        db.close()


def test_kill_9_twice_then_every_accepted_job_ends_once(tmp_path: Path) -> None:
    home, effects = tmp_path / "home", tmp_path / "effects.txt"

    # 1. submit, and kill while jobs are still being submitted and run
    first = _Proc(tmp_path / "first.err", "submit", str(home), str(WORKER), str(effects), str(N))
    first.until(lambda: sum(1 for x in first.lines if x.startswith("accepted")) >= N // 5 and len(lines(effects)) >= 20)
    first.kill()
    accepted = {parts[1]: parts[2] for parts in (x.split() for x in first.lines) if parts[0] == "accepted"}
    assert N // 5 <= len(accepted) <= N
    snap1 = _snapshot(home)
    assert set(accepted) <= set(snap1)  # acknowledged ⇒ on disk
    assert any(state == "running" for state, _, _ in snap1.values())  # killed mid-attempt
    done1 = {j for j, (state, _, _) in snap1.items() if state == "succeeded"}
    runs1 = collections.Counter(lines(effects))

    # 2. a second hub resumes, and is killed mid-way too
    second = _Proc(tmp_path / "second.err", "resume", str(home), str(WORKER))
    second.until(lambda: len(lines(effects)) >= sum(runs1.values()) + 100)
    second.kill()
    snap2 = _snapshot(home)
    runs2 = collections.Counter(lines(effects))

    # 3. a third hub finishes the work
    with cncf.Hub(home=home) as hub:
        hub.load(WORKER)
        for job_id, tag in accepted.items():
            final = hub.wait(job_id, 30)
            assert final.ok and final.value == tag, final.observation
        everything = hub.jobs(limit=None)
        assert len(everything) == len(snap1)  # nothing lost, nothing invented
        # a job committed but not yet acknowledged at the kill runs too
        for job in everything:
            assert hub.wait(job.id, 30).ok
        everything = hub.jobs(limit=None)
        assert [(j.id, j.state) for j in everything if j.state is not JobState.SUCCEEDED] == []
        assert all(j.outcome is not None for j in everything)
        jobs = {j.id: j for j in everything}

    runs = collections.Counter(lines(effects))
    tag_of = {j.id: j.kwargs["tag"] for j in everything}
    for job_id, job in jobs.items():
        tag = tag_of[job_id]
        lost = [a for a in job.history if a.observation.code is cncf.Code.JOB_LOST]
        assert 1 <= runs[tag] <= job.attempts == 1 + len(lost), (tag, runs[tag], job)
        if runs[tag] > 1:
            assert lost  # a second execution only ever follows a kill
    # terminal before a kill ⇒ never run again and never rewritten
    for job_id in done1:
        assert runs[tag_of[job_id]] == runs1[tag_of[job_id]]
        assert (jobs[job_id].finished, snap1[job_id][1]) == (snap1[job_id][1], jobs[job_id].finished)
    for job_id, (state, finished, _) in snap2.items():
        if state == "succeeded":
            assert runs[tag_of[job_id]] == runs2[tag_of[job_id]] and jobs[job_id].finished == finished
    lost_total = sum(1 for j in everything for a in j.history if a.observation.code is cncf.Code.JOB_LOST)
    assert 1 <= lost_total <= 4  # at most the attempts in flight at the two kills (2 workers, 1 component)


def test_idle_hub_killed_leaves_no_litter(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = _Proc(tmp_path / "idle.err", "resume", str(home), str(WORKER))
    proc.until(lambda: "ready" in proc.lines)
    with cncf.Hub(home=home) as hub:  # it is alive: its lock file stays
        hub.jobs()
        assert len(list((home / "jobs.owners").glob("*.lock"))) == 2
    proc.kill()
    with cncf.Hub(home=home) as hub:
        hub.jobs()
        assert len(list((home / "jobs.owners").glob("*.lock"))) == 1  # only this hub's own
    assert list((home / "jobs.owners").glob("*.lock")) == []


def _state(home: Path, job_id: str) -> tuple[str, int]:
    db = sqlite3.connect(home / "jobs.sqlite3")
    try:
        return db.execute("SELECT state, attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
    finally:
        db.close()


def test_job_that_keeps_killing_its_hub_is_quarantined(tmp_path: Path) -> None:
    """max_attempts = 3: the job runs at three hubs, each killed while it runs;
    the fourth hub quarantines it without running it again."""
    home = tmp_path / "home"
    proc = _Proc(tmp_path / "0.err", "hang", str(home), str(WORKER))
    proc.until(lambda: any(x.startswith("accepted") for x in proc.lines))
    job_id = next(x.split()[1] for x in proc.lines if x.startswith("accepted"))
    for n in (1, 2, 3):
        proc.until(lambda n=n: _state(home, job_id) == ("running", n))
        proc.kill()
        if n < 3:
            proc = _Proc(tmp_path / f"{n}.err", "resume", str(home), str(WORKER))
    with cncf.Hub(home=home) as hub:
        hub.load(WORKER)
        final = hub.wait(job_id, 5)
        assert final.observation.code is cncf.Code.JOB_QUARANTINED
        assert [a["observation"]["code"] for a in final.observation.attributes["attempts"]] == ["job_lost"] * 3
        job = hub.job(job_id)
        assert job.state is JobState.FAILED and job.attempts == 3
        assert all(a.observation.stage is cncf.Stage.JOB for a in job.history)


def test_a_live_hub_takes_over_the_jobs_of_a_hub_that_died(tmp_path: Path) -> None:
    """Two hubs share a home; the one running a job is killed; the other one,
    waiting for that job, notices and runs it itself."""
    home = tmp_path / "home"
    with cncf.Hub(home=home) as hub:
        hub.load(WORKER)  # hub B, alive before A dies
        proc = _Proc(tmp_path / "a.err", "hang", str(home), str(WORKER))
        proc.until(lambda: any(x.startswith("accepted") for x in proc.lines))
        job_id = next(x.split()[1] for x in proc.lines if x.startswith("accepted"))
        proc.until(lambda: _state(home, job_id) == ("running", 1))
        owner_a = hub.job(job_id).owner
        proc.kill()
        early = hub.wait(job_id, 1.0)  # the job sleeps for 600 s: this wait times out ...
        assert early.observation.code is cncf.Code.WAIT_TIMEOUT
        job = hub.job(job_id)  # ... but meanwhile B has resumed it and runs it
        assert job.state is JobState.RUNNING and job.attempts == 2
        assert job.owner not in (None, owner_a)
        assert [a.observation.code for a in job.history] == [cncf.Code.JOB_LOST]
        assert hub.cancel_job(job_id)
        assert hub.wait(job_id, 5).observation.code is cncf.Code.JOB_CANCELLED

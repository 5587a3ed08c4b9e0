"""Several hubs, one queue: on one home (SQLite) and on one PostgreSQL database.

Every live hub that has a component loaded drains that component's jobs,
whichever hub accepted them, one attempt per component per hub at a time (so
no hub idles while another claims everything); a dead hub's running jobs are
resumed by the survivors without a restart (``job_lost`` in their history); a
job no live hub can run stays queued and says why.
"""

from __future__ import annotations

import asyncio
import collections
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cncf
from cncf.jobs import JobState

from ._util import HERE, WORKER, HubProcess, lines

SHARED = HERE / "fixtures" / "shared_hub.py"


def _homes(tmp_path: Path, each_store: str) -> tuple[Path, Path]:
    """One home for two hubs on SQLite; two homes (two "machines") on PostgreSQL."""
    if each_store == "sqlite":
        return tmp_path / "home", tmp_path / "home"
    return tmp_path / "a", tmp_path / "b"


@pytest.mark.usefixtures("each_store")
def test_two_hubs_drain_one_queue_fairly(tmp_path: Path, each_store: str) -> None:
    effects = tmp_path / "effects.txt"
    home_a, home_b = _homes(tmp_path, each_store)
    n = 60

    async def main() -> tuple[int, int]:
        async with cncf.AsyncHub(home=home_a) as a, cncf.AsyncHub(home=home_b) as b:
            ran = {"a": 0, "b": 0}
            for name, hub in (("a", a), ("b", b)):
                await hub.load(WORKER)

                def count(event: object, name: str = name) -> None:
                    if getattr(event, "target", "").endswith("slow_append") or "slow_append" in str(event):
                        ran[name] += 1

                hub.subscribe(count)
            outs = [
                await a.call("worker.slow_append", {"path": str(effects), "tag": f"t{i}", "seconds": 0.02})
                for i in range(n)
            ]
            assert all(o.ok and o.job_id for o in outs)
            finals = await asyncio.gather(*(a.wait(o.job_id, 30) for o in outs))
            assert [f.value for f in finals] == [f"t{i}" for i in range(n)]
            # hub b sees every job a accepted, with its final state
            assert {j.id: j.state for j in await b.jobs(limit=None)} == {o.job_id: JobState.SUCCEEDED for o in outs}
            return ran["a"], ran["b"]

    ran_a, ran_b = asyncio.run(main())
    assert sorted(lines(effects)) == sorted(f"t{i}" for i in range(n))  # each ran exactly once
    assert ran_a + ran_b == n
    assert ran_a >= n // 6 and ran_b >= n // 6, (ran_a, ran_b)  # both drained: neither idled


@pytest.mark.usefixtures("each_store")
def test_a_job_no_live_hub_can_run_stays_queued_and_says_why(tmp_path: Path, each_store: str) -> None:
    home_a, home_b = _homes(tmp_path, each_store)
    with cncf.Hub(home=home_a, job_workers=0) as submitter:  # stores jobs, runs none
        submitter.load(WORKER)
        out = submitter.call("worker.add", [1, 2])
        time.sleep(0.3)
        job = submitter.job(out.job_id)
        assert job.state is JobState.QUEUED
        assert job.waiting is not None and "worker" in job.waiting
        assert submitter.jobs(state="queued")[0].to_dict()["waiting"] == job.waiting
        from .test_cli_jobs import _run  # `cncf jobs` (another hub, in this process) says so too

        code, text = _run("list", "--home", str(home_a))
        assert code == 0 and "waiting: no live hub has worker" in text
        code, text = _run("show", out.job_id, "--home", str(home_a), "--json")
        assert code == 0 and json.loads(text)["waiting"] == job.waiting
        with cncf.Hub(home=home_b) as runner:  # a hub that has it loaded comes: the job runs there
            runner.load(WORKER)
            assert runner.wait(out.job_id, 10).value == 3
        assert submitter.job(out.job_id).state is JobState.SUCCEEDED
        assert submitter.job(out.job_id).waiting is None


def _token(home: str, barrier: multiprocessing.synchronize.Barrier, q: multiprocessing.Queue[str]) -> None:
    from cncf.receptions.http.auth import token_for_serving

    barrier.wait()
    try:
        token, _, _ = token_for_serving(None, Path(home))
        q.put(token)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        q.put(f"error: {exc!r}")


def test_serves_started_at_once_on_one_home_share_one_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was ``[Errno 17] File exists`` (exit 2) for the loser of the race."""
    monkeypatch.delenv("CNCF_TOKEN", raising=False)
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        home = tmp_path / f"home{round_}"
        barrier = ctx.Barrier(6)
        q: multiprocessing.Queue[str] = ctx.Queue()
        procs = [ctx.Process(target=_token, args=(str(home), barrier, q)) for _ in range(6)]
        for p in procs:
            p.start()
        tokens = [q.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(10)
        assert len(set(tokens)) == 1 and not tokens[0].startswith("error"), tokens
        assert (home / "serve.token").read_text().strip() == tokens[0]
        assert sorted(p.name for p in home.iterdir()) == ["serve.token"]  # no temporary file left


def test_two_cncf_serve_started_at_once_on_one_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNCF_TOKEN", raising=False)
    hubfile = tmp_path / "hub.toml"
    hubfile.write_text("[serve]\nport = 0\n")
    home = tmp_path / "home"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "cncf", "serve", str(hubfile), "--home", str(home)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.startswith("cncf: serving"), (line, p.poll(), p.stderr.read() if p.poll() is not None else "")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
            assert p.returncode == 0, p.stderr.read() if p.stderr else ""
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()


# -- two processes, two homes, one PostgreSQL, kill -9 ------------------------


def _kill_while_running(a: HubProcess, reader: cncf.Hub) -> None:
    """SIGKILL hub ``a`` while the store says it runs an attempt: it is stopped
    (SIGSTOP) while the store is read, so the attempt cannot end in between (a
    kill between two attempts would leave nothing to resume)."""
    reader.jobs(limit=1)  # (opened while ``a`` runs: a hub stopped holding the write lock would make it wait)
    for _ in range(500):
        a.p.send_signal(signal.SIGSTOP)
        running = [j for j in reader.jobs(state="running", limit=None) if (j.owner or "").startswith(f"{a.p.pid}-")]
        if running:
            a.stop(signal.SIGKILL)
            return
        a.p.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    states = collections.Counter((j.state.value, (j.owner or "").split("-")[0]) for j in reader.jobs(limit=None))
    raise AssertionError(f"hub a (pid {a.p.pid}) never had an attempt running: {states}")


@pytest.mark.usefixtures("each_store")
def test_two_hub_processes_one_queue_one_killed(tmp_path: Path, each_store: str) -> None:
    """2,000 jobs, two hub processes sharing one queue — two homes on one
    PostgreSQL, or one home on SQLite; the one that accepted them is killed with
    SIGKILL mid-way: the survivor finishes every job within the lease plus a few
    seconds, each exactly once or retried after ``job_lost``; none is lost."""
    n, lease = 2000, 3.0
    effects = tmp_path / "effects.txt"
    home_a, home_b = _homes(tmp_path, each_store)
    env = dict(os.environ, PYTHONUNBUFFERED="1", CNCF_JOB_LEASE=str(lease))
    a = HubProcess(SHARED, tmp_path / "a.err", env, str(home_a), str(WORKER), str(effects), str(n))
    a.until(lambda: "ready" in a.lines, timeout=120)  # every job queued (none ran before a's drain)
    b = HubProcess(SHARED, tmp_path / "b.err", env, str(home_b), str(WORKER), str(effects), "0")
    try:
        a.until(lambda: len(lines(effects)) >= n // 3, timeout=120)
        with cncf.Hub(home=home_b if each_store == "sqlite" else tmp_path / "reader", job_workers=0) as reader:
            _kill_while_running(a, reader)
            killed = time.monotonic()
            accepted = {p[1]: p[2] for p in (x.split() for x in a.lines) if p[0] == "accepted"}
            assert len(accepted) == n
            deadline = killed + lease + 30
            while time.monotonic() < deadline:
                if not reader.jobs(state="queued", limit=1) and not reader.jobs(state="running", limit=1):
                    break
                time.sleep(0.2)
            took = time.monotonic() - killed
            everything = {j.id: j for j in reader.jobs(limit=None)}
    finally:
        a.stop(signal.SIGKILL)
        b.stop(signal.SIGTERM)
    assert set(everything) == set(accepted)  # none lost, none invented
    assert [j.id for j in everything.values() if j.state is not JobState.SUCCEEDED] == []
    assert took < lease + 20, took
    runs = collections.Counter(lines(effects))
    lost_total = 0
    for job_id, job in everything.items():
        tag = accepted[job_id]
        assert job.outcome is not None and job.outcome.value == tag
        lost = [h for h in job.history if h.observation.code is cncf.Code.JOB_LOST]
        lost_total += len(lost)
        assert 1 <= runs[tag] <= 1 + len(lost), (tag, runs[tag], job.history)
        assert job.attempts == 1 + len(lost)
        for h in lost:  # the attempt names the hub that died running it
            assert h.hub is not None and h.hub == h.observation.attributes["owner"]
    assert 1 <= lost_total <= 2  # what hub a had in flight (one attempt per component per hub)


def test_a_sqlite_hub_never_imports_the_postgresql_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNCF_JOB_STORE", raising=False)
    code = (
        "import sys, cncf\n"
        f"with cncf.Hub(home={str(tmp_path / 'h')!r}) as hub:\n"
        f"    hub.load({str(WORKER)!r})\n"
        "    assert hub.wait(hub.call('worker.add', [1, 2]).job_id, 10).value == 3\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"

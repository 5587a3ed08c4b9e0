"""``cncf serve`` on SIGTERM keeps its promise to running jobs: they get
``--grace`` seconds to finish like other calls; what still runs then is
cancelled (the cancel tiers) and requeued uncounted, and the count is printed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cncf
from cncf.jobs import JobState

from ._util import HERE

PYWORKER = HERE / "fixtures" / "pyworker"
READY = re.compile(r"cncf: serving \d+ components at (http://\S+)")


def _serve(tmp_path: Path, home: Path, grace: float) -> tuple[subprocess.Popen[str], str]:
    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(f'[[component]]\ntarget = "{PYWORKER}"\n')
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CNCF_TOKEN", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cncf",
            "serve",
            str(hubfile),
            "--port",
            "0",
            "--home",
            str(home),
            "--grace",
            str(grace),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = READY.search(line)
    if m is None:
        proc.kill()
        raise AssertionError(f"not ready: {line!r} {proc.communicate()[1]}")
    return proc, m.group(1)


def _running(home: Path, job_id: str) -> None:
    with cncf.Hub(home=home, job_workers=0) as reader:
        deadline = time.monotonic() + 60
        while reader.job(job_id).state is not JobState.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_sigterm_lets_a_running_job_finish_within_the_grace(tmp_path: Path) -> None:
    from cncf.client import connect

    home = tmp_path / "home"
    proc, url = _serve(tmp_path, home, grace=10)
    try:
        with connect(url) as remote:
            out = remote.call("pyworker.sleep", {"seconds": 1.5})
        assert out.ok and out.job_id
        _running(home, out.job_id)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 10  # it did not wait out the whole grace
    assert "jobs: no running job was interrupted" in err
    with cncf.Hub(home=home, job_workers=0) as reader:
        job = reader.job(out.job_id)
        assert job.state is JobState.SUCCEEDED and job.attempts == 1 and job.outcome.value == 1.5


def test_sigterm_requeues_what_outlives_the_grace_and_says_how_many(tmp_path: Path) -> None:
    from cncf.client import connect

    home = tmp_path / "home"
    proc, url = _serve(tmp_path, home, grace=1)
    try:
        with connect(url) as remote:
            out = remote.call("pyworker.sleep", {"seconds": 60})
            queued = remote.call("pyworker.add", [1, 2])  # waits behind it (one attempt per component)
        _running(home, out.job_id)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert 1 <= time.monotonic() - t0 < 30
    assert "jobs: 1 running job did not finish within the grace period: requeued" in err
    with cncf.Hub(home=home, job_workers=0) as reader:
        job = reader.job(out.job_id)
        assert job.state is JobState.QUEUED and job.attempts == 0  # handed back uncounted
        assert reader.job(queued.job_id).state is JobState.QUEUED  # never started: still queued

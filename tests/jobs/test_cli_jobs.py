"""``cncf jobs list | show | wait | cancel``, readable and ``--json``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cncf
from cncf.receptions.cli_jobs import jobs_app

from ._util import lines

pytestmark = pytest.mark.usefixtures("each_store")  # on SQLite and on PostgreSQL

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(jobs_app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_list_show_wait(hub: cncf.Hub, home: Path) -> None:
    ok = hub.call("worker.add", [2, 3]).job_id
    bad = hub.call("worker.boom").job_id
    hub.wait(ok, 5), hub.wait(bad, 5)

    code, text = _run("list", "--home", str(home), "--json")
    assert code == 0
    listed = json.loads(text)["jobs"]
    assert [j["id"] for j in listed] == [bad, ok]
    assert listed[1]["state"] == "succeeded" and listed[1]["outcome"] == {"ok": True, "value": 5, "job_id": ok}

    code, text = _run("list", "--home", str(home), "--state", "failed", "--json")
    assert [j["id"] for j in json.loads(text)["jobs"]] == [bad]
    code, text = _run("list", "--home", str(home))
    assert code == 0 and ok in text and "succeeded" in text and "execute/raised" in text
    assert _run("list", "--home", str(home), "--state", "nope")[0] == 2

    code, text = _run("show", ok, "--home", str(home), "--json")
    assert code == 0 and json.loads(text)["attempts"] == 1
    code, text = _run("show", bad, "--home", str(home))
    assert code == 0 and "failed" in text and "raised" in text

    code, text = _run("wait", ok, "--home", str(home), "--json")
    assert code == 0 and json.loads(text) == {"ok": True, "value": 5, "job_id": ok}
    code, text = _run("wait", ok, "--home", str(home))
    assert code == 0 and text.strip() == "5"
    code, text = _run("wait", bad, "--home", str(home), "--json")
    assert code == 1 and json.loads(text)["observation"]["code"] == "raised"


def test_unknown_job(home: Path) -> None:
    for cmd in ("show", "wait", "cancel"):
        code, text = _run(cmd, "j-missing", "--home", str(home), "--json")
        assert code == 1 and json.loads(text)["observation"]["code"] == "job_not_found", cmd


def test_wait_timeout(hub: cncf.Hub, home: Path) -> None:
    job = hub.call("worker.sleep", {"seconds": 1}).job_id
    code, text = _run("wait", job, "--home", str(home), "--timeout", "0.1", "--json")
    assert code == 1
    obs = json.loads(text)["observation"]
    assert obs["code"] == "wait_timeout" and obs["stage"] == "wait"
    assert _run("wait", job, "--home", str(home), "--timeout", "-1")[0] == 2


def test_cancel_queued_and_running_from_another_hub(hub: cncf.Hub, home: Path, effects: Path) -> None:
    running = hub.call("worker.sleep", {"seconds": 5, "path": str(effects)}).job_id
    queued = hub.call("worker.add", [1, 1]).job_id
    deadline = time.monotonic() + 5
    while not lines(effects) and time.monotonic() < deadline:
        time.sleep(0.01)

    code, text = _run("cancel", queued, "--home", str(home), "--json")
    assert code == 0 and json.loads(text)["cancelled"] is True

    # the CLI's hub is another owner: the request reaches the running hub through the store
    code, text = _run("cancel", running, "--home", str(home), "--json")
    answer = json.loads(text)  # (on PostgreSQL the running hub is notified: it may have cancelled it already)
    assert code == 0 and answer["ok"] is True and (answer["requested"] or answer["cancelled"])
    final = hub.wait(running, 5)
    assert final.observation.code is cncf.Code.JOB_CANCELLED
    assert hub.job(queued).state.value == "cancelled"

    code, text = _run("cancel", running, "--home", str(home))
    assert code == 1 and "nothing to cancel" in text


def test_mounted_as_cncf_jobs(hub: cncf.Hub, home: Path) -> None:
    from cncf.receptions.cli import app

    job = hub.call("worker.add", [1, 1]).job_id
    hub.wait(job, 5)
    result = runner.invoke(app, ["jobs", "show", job, "--home", str(home), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["id"] == job


def test_call_then_wait_run_then_work(home: Path) -> None:
    """The one-shot CLI story: `cncf call` queues and exits; `cncf jobs wait
    --run` or `cncf jobs work` load the component again from where it was
    loaded, and run the jobs."""
    from cncf.receptions.cli import app

    from ._util import WORKER

    def call(*args: str) -> str:
        result = runner.invoke(app, ["call", str(WORKER), *args, "--form", "inline", "--home", str(home), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["job_id"]

    first = call("add", "1", "2")
    # Nobody runs it now (unless `cncf call`'s own hub got to it before it closed).
    code, text = _run("wait", first, "--home", str(home), "--timeout", "0.3", "--json")
    assert (code, json.loads(text).get("observation", {}).get("code")) in ((1, "wait_timeout"), (0, None))
    code, text = _run("wait", first, "--run", "--home", str(home), "--timeout", "10", "--json")
    assert code == 0 and json.loads(text)["value"] == 3

    more = [call("add", str(i), "1") for i in range(3)] + [call("boom")]
    code, text = _run("work", "--home", str(home), "--json")
    assert code == 0
    assert json.loads(text)["components"] in (["worker"], [])  # [] when no job was left queued
    with cncf.Hub(home=home) as hub:
        assert [hub.job(j).state.value for j in more] == ["succeeded"] * 3 + ["failed"]
    code, text = _run("work", "--home", str(home))
    assert code == 0 and "nothing to do" in text

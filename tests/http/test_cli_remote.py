"""The CLI against a real ``cncf serve`` process: ``--hub URL`` on components,
inspect, reload, unload and jobs, ``cncf top``, help texts and the token line.

Each command runs as ``python -m cncf`` in a subprocess with ``COLUMNS=80``,
as a user's terminal would; the served hub's own routes are the judge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.conftest import FIXTURES, HUBFILE, SRC, Served, start


def cncf(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, PYTHONPATH=str(SRC), COLUMNS="80", TERM="dumb")
    e.pop("CNCF_TOKEN", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "cncf", *args], capture_output=True, text=True, env=e, timeout=timeout)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = start(HUBFILE, tmp_path_factory.mktemp("cli-remote") / "home")
    yield s
    code, err = s.stop()
    assert code == 0, err


def _fits(text: str, width: int = 80) -> None:
    wide = [line for line in text.splitlines() if len(line) > width]
    assert not wide, f"lines wider than {width}: {wide}"


def test_components_lists_every_component_of_the_served_hub(hub: Served) -> None:
    r = cncf("components", "--hub", hub.url)
    assert r.returncode == 0, r.stderr
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") > 3}
    served = {c["name"]: c for c in hub.http.get("/hub/v1/components").json()["components"]}
    assert set(rows) == set(served)
    assert "failed" in rows["broken"] and "constructor_failed" in rows["broken"]
    assert str(served["svc"]["pid"]) in rows["svc"]
    _fits(r.stdout)
    j = cncf("components", "--hub", hub.url, "--json")
    assert j.returncode == 0
    assert {c["name"] for c in json.loads(j.stdout)["components"]} == set(served)


def test_inspect_on_a_served_hub_prints_what_the_local_inspect_prints(hub: Served, tmp_path: Path) -> None:
    local = cncf("inspect", str(FIXTURES / "svc"), "--home", str(tmp_path / "home"))
    remote = cncf("inspect", "svc", "--hub", hub.url)
    assert local.returncode == remote.returncode == 0, (local.stderr, remote.stderr)
    assert remote.stdout == local.stdout
    # a failed component: exit 1 and its Observation, as locally
    failed = cncf("inspect", "broken", "--hub", hub.url, "--json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["observation"]["code"] == "constructor_failed"
    unknown = cncf("inspect", "nope", "--hub", hub.url, "--json")
    assert unknown.returncode == 1
    obs = json.loads(unknown.stdout)["observation"]
    assert (obs["code"], obs["stage"]) == ("unknown_component", "dispatch")


def test_reload_and_unload_need_the_token_from_the_environment_or_a_file(hub: Served, tmp_path: Path) -> None:
    before = hub.http.get("/hub/v1/components/svc").json()["health"]["pid"]
    refused = cncf("reload", "svc", "--hub", hub.url, "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["observation"]["code"] == "unauthenticated"
    assert hub.http.get("/hub/v1/components/svc").json()["health"]["pid"] == before

    r = cncf("reload", "svc", "--hub", hub.url, env={"CNCF_TOKEN": hub.token})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "default.echo" in r.stdout
    after = hub.http.get("/hub/v1/components/svc").json()
    assert after["state"] == "ready" and after["health"]["pid"] != before

    token_file = tmp_path / "token"
    token_file.write_text(hub.token + "\n")
    u = cncf("unload", "fragile", "--hub", hub.url, "--token-file", str(token_file))
    assert u.returncode == 0, u.stdout + u.stderr
    assert "fragile" not in {c["name"] for c in hub.http.get("/hub/v1/components").json()["components"]}
    again = cncf("unload", "fragile", "--hub", hub.url, "--token-file", str(token_file), "--json")
    assert again.returncode == 1
    assert json.loads(again.stdout)["observation"]["code"] == "unknown_component"
    # without --hub there is nothing to list: a usage error
    assert cncf("components").returncode == 2
    assert cncf("unload", "x", "--hub", hub.url, "--token-file", str(tmp_path / "absent")).returncode == 2


def test_jobs_commands_on_a_served_hub(hub: Served) -> None:
    done = hub.http.post("/rest/v1/jobs/add", json=[20, 22]).json()["job"]["id"]
    w = cncf("jobs", "wait", done, "--hub", hub.url, "--timeout", "30")
    assert w.returncode == 0, w.stderr
    assert w.stdout.strip() == "42"
    sleepers = [hub.http.post("/rest/v1/jobs/sleep", json=[30]).json()["job"]["id"] for _ in range(4)]
    running, queued = sleepers[0], sleepers[-1]

    listed = cncf("jobs", "list", "--hub", hub.url)
    assert listed.returncode == 0, listed.stderr
    _fits(listed.stdout)
    for job_id in (done, running, queued):
        assert job_id in listed.stdout
    assert "jobs.add" in listed.stdout  # the target is not squeezed to "…"
    as_json = json.loads(cncf("jobs", "list", "--hub", hub.url, "--json").stdout)["jobs"]
    assert {j["id"] for j in as_json} >= {done, running, queued}

    shown = cncf("jobs", "show", done, "--hub", hub.url, "--json")
    assert json.loads(shown.stdout)["outcome"]["value"] == 42

    c = cncf("jobs", "cancel", queued, "--hub", hub.url, "--json")
    assert c.returncode == 0, c.stdout + c.stderr
    assert json.loads(c.stdout)["cancelled"] is True
    assert hub.http.get(f"/hub/v1/jobs/{queued}").json()["state"] == "cancelled"
    again = cncf("jobs", "cancel", queued, "--hub", hub.url)
    assert again.returncode == 1
    missing = cncf("jobs", "show", "j-nope", "--hub", hub.url, "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["observation"]["code"] == "job_not_found"
    for job_id in sleepers:
        hub.http.post(f"/hub/v1/jobs/{job_id}/cancel")


def test_top_shows_calls_latency_and_errors(hub: Served) -> None:
    for _ in range(12):
        assert hub.http.post("/rest/v1/counter/increment", json={"by": 1}).json()["ok"]
    for _ in range(3):
        assert not hub.http.post("/rest/v1/svc/fail", json=["no"]).json()["ok"]
    r = cncf("top", "--hub", hub.url, "--once")
    assert r.returncode == 0, r.stderr
    _fits(r.stdout)
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[3:] if line.strip()}
    assert rows["counter"][1] == "ready"
    assert rows["svc"][5] == "3"  # err/min
    assert rows["broken"][1] == "failed"
    frames = cncf("top", "--hub", hub.url, "--iterations", "2", "--interval", "0.2", "--json")
    assert frames.returncode == 0
    lines = [json.loads(line) for line in frames.stdout.splitlines()]
    assert len(lines) == 2
    minute = lines[-1]["console"]["components"]["counter"]["minute"]
    assert minute["calls"] >= 12 and minute["errors"] == 0 and minute["p50"] is not None
    down = cncf("top", "--hub", "http://127.0.0.1:9", "--once", "--json")
    assert down.returncode == 1
    assert json.loads(down.stdout)["observation"]["code"] == "hub_unreachable"


def test_help_texts_keep_every_bracket() -> None:
    serve = cncf("serve", "--help")
    assert "[[component]]" in serve.stdout
    run = cncf("run", "--help")
    assert "[[component]]" in run.stdout and "[[call]]" in run.stdout
    for command in (("components",), ("top",), ("jobs", "list"), ("inspect",)):
        h = cncf(*command, "--help")
        assert h.returncode == 0
        assert "--hub" in h.stdout
        _fits(h.stdout)


def test_serve_says_whether_its_token_was_created_or_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, err = start(FIXTURES / "browser" / "hub.toml", home).stop()
    assert code == 0
    assert "(created;" in err
    code, err = start(FIXTURES / "browser" / "hub.toml", home).stop()
    assert code == 0
    assert "(reused;" in err and "(created;" not in err


def test_a_hub_that_asks_for_the_token_on_every_route(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    served: Served = serve(FIXTURES / "browser" / "hub.toml", "--auth", "always")
    token_file = tmp_path / "token"
    token_file.write_text(served.token)
    refused = cncf("components", "--hub", served.url, "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["observation"]["code"] == "unauthenticated"
    listed = cncf("components", "--hub", served.url, "--token-file", str(token_file), "--json")
    assert listed.returncode == 0
    assert "counter" in {c["name"] for c in json.loads(listed.stdout)["components"]}
    called = cncf("call", "--hub", served.url, "--token-file", str(token_file), "counter.increment", "by=2", "--json")
    assert called.returncode == 0, called.stdout + called.stderr
    assert json.loads(called.stdout)["value"] == 2
    top = cncf("top", "--hub", served.url, "--once", env={"CNCF_TOKEN": served.token})
    assert top.returncode == 0 and "counter" in top.stdout
    denied = cncf("top", "--hub", served.url, "--once", "--json")
    assert denied.returncode == 1
    assert json.loads(denied.stdout)["observation"]["code"] == "unauthenticated"

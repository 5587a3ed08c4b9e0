"""Replicas and generations over HTTP: a real ``cncf serve`` process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.http.conftest import SRC, Served, start
from tests.replicas.conftest import kill


def _serve(tmp_path: Path, worker_dir: Path, extra: str) -> Served:
    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(f'[[component]]\ntarget = "{worker_dir}"\nname = "w"\n{extra}\n')
    return start(hubfile, tmp_path / "home")


def _stream(s: Served, path: str, body: object, callers: int, stop: threading.Event) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def caller() -> None:
        with httpx.Client(base_url=s.url, timeout=60, trust_env=False) as c:
            while not stop.is_set():
                r = c.post(path, json=body)
                with lock:
                    answers.append(r)

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(callers)]
    for t in threads:
        t.start()
    answers_ref = answers
    stop_threads = threads

    def join() -> None:
        for t in stop_threads:
            t.join()

    _stream.join = join  # type: ignore[attr-defined]
    return answers_ref


def test_replicas_and_a_lost_replica_over_http(tmp_path: Path, worker_dir: Path) -> None:
    s = _serve(tmp_path, worker_dir, "replicas = 4\nstateless = true\nidempotent = true")
    try:
        info = s.http.get("/hub/v1/components/w").json()
        pids = [r["pid"] for r in info["replicas"]]
        assert len(set(pids)) == 4 and info["scaling"]["replicas"] == 4
        stop = threading.Event()
        answers = _stream(s, "/rest/v1/w/work", {"seconds": 0.02}, 16, stop)
        time.sleep(0.6)
        kill(pids[2])
        time.sleep(1.0)
        stop.set()
        _stream.join()  # type: ignore[attr-defined]
        assert len(answers) > 100
        assert [r.json() for r in answers if r.status_code != 200] == []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            info = s.http.get("/hub/v1/components/w").json()
            if info["replicas"][2]["state"] == "ready":
                break
            time.sleep(0.05)
        assert info["replicas"][2]["restarts"] == 1 and info["replicas"][2]["pid"] != pids[2]
        rows = {c["name"]: c for c in s.http.get("/hub/v1/components").json()["components"]}
        assert [r["state"] for r in rows["w"]["replicas"]] == ["ready"] * 4
        assert rows["w"]["replicas"][2]["restarts"] == 1 and rows["w"]["generation"] == 1
        metrics = s.http.get("/metrics").text
        assert 'cncf_replica_restarts_total{component="w",replica="2"} 1.0' in metrics
        assert 'cncf_replica_up{component="w",replica="3"} 1.0' in metrics
        # a stateful component with two replicas is refused by the admin route too
        r = s.http.post(
            "/hub/v1/components", json={"target": str(worker_dir), "name": "s", "replicas": 2}, headers=s.auth
        )
        assert r.json()["observation"]["code"] == "invalid_manifest"
        assert r.json()["observation"]["attributes"]["key"] == "component.replicas"
    finally:
        s.stop()


def test_upgrade_over_http_under_a_stream_and_a_rollback(tmp_path: Path, worker_dir: Path) -> None:
    s = _serve(tmp_path, worker_dir, 'stateless = true\nreplicas = 2\ninit = { version = "v1" }')
    try:
        stop = threading.Event()
        answers = _stream(s, "/rest/v1/w/version_of", {}, 4, stop)
        time.sleep(0.4)
        assert s.http.post("/hub/v1/components/w/upgrade", json={"init": {"version": "v2"}}).status_code == 401
        r = s.http.post("/hub/v1/components/w/upgrade", json={"init": {"version": "v2"}}, headers=s.auth)
        switched = time.monotonic()
        assert r.status_code == 200, r.text
        assert r.json()["component"]["generation"] == 2
        time.sleep(0.4)
        stop.set()
        _stream.join()  # type: ignore[attr-defined]
        assert [a.text for a in answers if a.status_code != 200] == []
        seen = {(a.json()["value"], a.headers["x-cncf-generation"]) for a in answers}
        assert seen == {("v1", "1"), ("v2", "2")}
        del switched
        # a broken new generation: rolled back, the old one answers on
        (worker_dir / "worker.py").write_text("this is not python\n")
        r = s.http.post("/hub/v1/components/w/upgrade", json={}, headers=s.auth)
        assert r.json()["ok"] is False and r.json()["observation"]["code"] == "import_failed"
        assert r.status_code >= 400 and r.headers["x-cncf-observation-code"] == "import_failed"
        a = s.http.post("/rest/v1/w/version_of", json={})
        assert (a.json()["value"], a.headers["x-cncf-generation"]) == ("v2", "2")
        # the CLI against the running hub
        env = dict(os.environ, PYTHONPATH=str(SRC), CNCF_TOKEN=s.token)
        cli = [sys.executable, "-m", "cncf", "upgrade", "w", "--hub", s.url, "--json"]
        p = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 1, p.stderr  # still broken: rolled back
        (worker_dir / "worker.py").write_text((Path(__file__).parent / "fixtures/worker/worker.py").read_text())
        p = subprocess.run([*cli, "--set", 'init={"version": "v3"}'], capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        a = s.http.post("/rest/v1/w/version_of", json={})
        assert (a.json()["value"], a.headers["x-cncf-generation"]) == ("v3", "3")
    finally:
        s.stop()


def test_keyed_replicas_and_a_hand_over_over_http(tmp_path: Path, worker_dir: Path) -> None:
    s = _serve(tmp_path, worker_dir, "")  # stateful, one replica: its counter is handed over
    try:
        body = {"target": str(worker_dir), "name": "k", "replicas": 3, "route_by": "key"}
        r = s.http.post("/hub/v1/components", json=body, headers=s.auth)
        assert r.status_code == 201, r.text
        values: dict[str, list[int]] = {}
        pids: dict[str, set[str]] = {}
        for i in range(300):
            key = f"u{i % 7}"
            v = s.http.post("/rest/v1/k/add", json={"key": key}).json()["value"]
            values.setdefault(key, []).append(v["value"])
            pids.setdefault(key, set()).add(v["pid"])
        assert all(vs == list(range(1, len(vs) + 1)) for vs in values.values())
        assert all(len(p) == 1 for p in pids.values())
        missing = s.http.post("/rest/v1/k/add", json={"by": 1})
        assert (missing.status_code, missing.json()["observation"]["code"]) == (400, "invalid_arguments")
        for _ in range(5):
            s.http.post("/rest/v1/w/increment", json={})
        r = s.http.post("/hub/v1/components/w/upgrade", json={"init": {"version": "v2"}}, headers=s.auth)
        assert r.status_code == 200 and r.json()["component"]["generation"] == 2
        a = s.http.post("/rest/v1/w/get", json={})
        assert (a.json()["value"], a.headers["x-cncf-generation"]) == (5, "2")
        r = s.http.post("/hub/v1/components/w/upgrade", json={"init": {"version": "no-import"}}, headers=s.auth)
        assert r.json()["observation"]["code"] == "handover_failed" and r.status_code == 500
        a = s.http.post("/rest/v1/w/increment", json={})
        assert (a.json()["value"], a.headers["x-cncf-generation"]) == (6, "2")
    finally:
        s.stop()

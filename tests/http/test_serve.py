"""``cncf serve``'s life: the ready line, graceful shutdown, exit statuses, trust rules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import cncf
from tests.http.conftest import FIXTURES, HUBFILE, SRC, alive, child_pids, start


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, PYTHONPATH=str(SRC))
    e.pop("CNCF_TOKEN", None)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cncf", "serve", *args], capture_output=True, text=True, env=e, timeout=timeout
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_running_calls_keeps_jobs_and_leaves_nothing(tmp_path: Path, sig: int) -> None:
    s = start(HUBFILE, tmp_path / "home")
    h = s.http
    assert s.token and oct((s.home / "serve.token").stat().st_mode & 0o777) == "0o600"
    assert h.post("/rest/v1/svc/echo", json=[1]).json()["ok"]
    children = child_pids(s.proc.pid)
    assert children, "the python components run in worker processes"
    # a queued job that cannot start before shutdown (one runs, the rest wait)
    jobs = [h.post("/rest/v1/jobs/sleep", json=[30]).json()["job"]["id"] for _ in range(3)]
    result: dict[str, httpx.Response] = {}

    def running_call() -> None:
        with httpx.Client(base_url=s.url, timeout=30) as c:
            result["r"] = c.post("/rest/v1/svc/hold", json=[1.5])

    t = threading.Thread(target=running_call)
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    code, err = s.stop(sig)
    t.join()
    assert code == 0, err
    assert "stopped" in err
    assert result["r"].json() == {"ok": True, "value": "held"}, "a running call finishes within the grace period"
    assert time.monotonic() - t0 < 30
    for pid in children:
        assert not alive(pid), f"process {pid} outlived cncf serve"
    assert list(s.tmp.iterdir()) == [], "temporary folders left behind"
    with pytest.raises(httpx.ConnectError):
        httpx.get(s.url + "/healthz", timeout=2)
    # the jobs are still in the store: the one running was handed back, the others never started
    with cncf.Hub(home=s.home, job_workers=0) as hub:
        states = {j.id: j.state.value for j in hub.jobs()}
    assert all(states[j] == "queued" for j in jobs), states


def test_ready_line_port_and_serve_table(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(
        f'[serve]\nhost = "127.0.0.1"\nport = 0\ntoken_file = "token"\n\n[[component]]\ntarget = "{FIXTURES / "svc"}"\n'
    )
    s = start(hubfile, tmp_path / "home")
    try:
        assert s.count == 1 and s.url.startswith("http://127.0.0.1:")
        assert not (s.home / "serve.token").exists()
        r = s.http.delete("/hub/v1/components/svc", headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200
    finally:
        assert s.stop()[0] == 0


def test_non_loopback_needs_an_explicit_token(tmp_path: Path) -> None:
    r = _run(str(HUBFILE), "--host", "0.0.0.0", "--port", "0", "--home", str(tmp_path / "home"))
    assert r.returncode == 2
    assert "non-loopback" in r.stderr
    token = tmp_path / "token"
    token.write_text("t0ken")
    s = start(HUBFILE, tmp_path / "home2", "--host", "0.0.0.0", "--token-file", str(token))
    try:
        port = s.url.rsplit(":", 1)[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as h:
            assert h.get("/healthz").status_code == 200  # the one open route
            for path in ("/hub/v1/components", "/metrics", "/rest/v1/openapi.json", "/"):
                r = h.get(path)
                assert (r.status_code, r.json()["observation"]["code"]) == (401, "unauthenticated"), path
            assert h.post("/rest/v1/svc/add", json=[1, 2]).status_code == 401
            ok = h.post("/rest/v1/svc/add", json=[1, 2], headers={"Authorization": "Bearer t0ken"})
            assert ok.json() == {"ok": True, "value": 3}
            # a browser: the page answers 401 with a form; /?token= sets an HttpOnly, SameSite=Strict cookie
            page = h.get("/", headers={"Accept": "text/html"})
            assert page.status_code == 401 and "<form" in page.text
            assert h.get("/", params={"token": "wrong"}).status_code == 401
            r = h.get("/", params={"token": "t0ken"})
            assert r.status_code == 303 and r.headers["location"] == "/"
            cookie = r.headers["set-cookie"]
            # bound to this hub: its name carries the port; host-only (no Domain)
            assert f"cncf_token_{port}=t0ken" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
            assert "domain" not in cookie.lower()
            jar = {"Cookie": f"cncf_token_{port}=t0ken"}
            assert h.get("/hub/v1/components", headers={"Cookie": "cncf_token=t0ken"}).status_code == 401
            page = h.get("/", headers=jar)
            assert page.status_code == 200
            assert h.get("/hub/v1/components", headers=jar).status_code == 200
            # the cookie never runs an operation: that takes the Bearer token
            assert h.post("/rest/v1/svc/add", json=[2, 3], headers=jar).status_code == 401
            # a mutating request with the cookie needs the anti-forgery header the page carries
            xsrf = page.text.split('name="cncf-xsrf" content="', 1)[1].split('"', 1)[0]
            assert len(xsrf) == 64 and "t0ken" not in xsrf
            cancel = "/hub/v1/calls/nope/cancel"
            assert h.post(cancel, json={}, headers=jar).status_code == 401
            assert h.post(cancel, json={}, headers={**jar, "X-Cncf-Xsrf": "0" * 64}).status_code == 401
            assert h.post(cancel, json={}, headers={**jar, "X-Cncf-Xsrf": xsrf}).status_code == 200
            fresh = httpx.get(f"http://127.0.0.1:{port}/hub/v1/components", params={"token": "t0ken"})
            assert fresh.status_code == 401  # the query token is for the page only
        with cncf.connect(f"http://127.0.0.1:{port}", token="t0ken") as remote:
            assert remote.call("svc.add", [2, 2]).value == 4
        with cncf.connect(f"http://127.0.0.1:{port}") as remote:
            refused = remote.call("svc.add", [2, 2]).observation
        assert refused is not None and refused.code.value == "unauthenticated"
    finally:
        assert s.stop()[0] == 0


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = _run(str(tmp_path / "nope.toml"), "--home", str(tmp_path / "h"))
    assert missing.returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[serve]\nport = "x"\n')
    assert _run(str(bad), "--home", str(tmp_path / "h")).returncode == 2
    bad.write_text("[serve]\nbogus = 1\n")
    assert _run(str(bad), "--home", str(tmp_path / "h")).returncode == 2


def test_a_port_in_use_fails_before_loading(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        r = _run(str(HUBFILE), "--port", str(port), "--home", str(tmp_path / "h"))
    assert r.returncode == 1
    assert "cannot listen" in r.stderr
    assert "svc (python)" not in r.stderr  # no component was loaded


@pytest.mark.parametrize("exporter", ["console", "otlp", "jaeger"])
def test_serve_says_whether_it_traces_and_why_not(tmp_path: Path, exporter: str) -> None:
    """``OTEL_TRACES_EXPORTER`` set: the server says it traces, or why it cannot
    (an exporter cncf does not set up, or one that is not installed): never silence."""
    import importlib.util

    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(f'[[component]]\ntarget = "{FIXTURES / "svc"}"\n')
    s = start(hubfile, tmp_path / "home", env={"OTEL_TRACES_EXPORTER": exporter})
    code, err = s.stop()
    assert code == 0, err
    try:
        otlp = importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is not None
    except ModuleNotFoundError:  # (its parent package is missing)
        otlp = False
    if exporter == "console" or (exporter == "otlp" and otlp):
        assert "tracing calls with OpenTelemetry" in err and "not tracing" not in err
    elif exporter == "otlp":
        assert "not tracing: OTEL_TRACES_EXPORTER=otlp needs OpenTelemetry's OTLP/HTTP exporter" in err, err
    else:
        assert "not tracing: OTEL_TRACES_EXPORTER='jaeger' is not one cncf sets up" in err, err

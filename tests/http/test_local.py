"""Other local users, and workers of the same user (docs/security.md).

Another user on the same machine gets no further than a remote client: on
loopback TCP the hub reads the peer's user from the kernel (``/proc/net/tcp``)
and asks another user's requests for the token; ``--unix PATH`` listens on a
socket only the hub's user can open.  The serving hub's environment, command
line and memory do not hand its token to a process of the same user.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.http.conftest import FIXTURES, Served

PROBE_HUB = FIXTURES / "probe" / "hub.toml"
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by every user (the test's own may live under /root)

CLIENT = r"""
import http.client, json, socket, sys
where, method, path, token = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if where.startswith("/"):
    class C(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(where)
    conn = C("localhost", timeout=30)
else:
    host, port = where.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
headers = {"Content-Type": "application/json"}
if token:
    headers["Authorization"] = "Bearer " + token
try:
    conn.request(method, path, body=b"[1]" if method == "POST" else None, headers=headers)
except PermissionError:
    print("EACCES"); sys.exit(0)
r = conn.getresponse()
print(r.status, r.getheader("x-cncf-observation-code") or "", r.read().decode()[:200].replace("\n", " "))
"""


def _as_nobody() -> list[str]:
    if os.geteuid() != 0 or shutil.which("runuser") is None or not os.access(SYSTEM_PYTHON, os.X_OK):
        if IN_CI:
            pytest.fail("these tests run as root with runuser and /usr/bin/python3 under CI=true")
        pytest.skip("needs root, runuser and /usr/bin/python3 to act as another user")
    return ["runuser", "-u", "nobody", "--"]


def _request(who: list[str], where: str, method: str, path: str, token: str = "") -> str:
    r = subprocess.run(
        [*who, SYSTEM_PYTHON, "-c", CLIENT, where, method, path, token],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_another_local_user_needs_the_token_on_loopback(serve) -> None:  # type: ignore[no-untyped-def]
    nobody = _as_nobody()
    s: Served = serve(PROBE_HUB)
    where = s.url.removeprefix("http://")
    # the hub's user (root here): no token needed on loopback
    assert _request([], where, "POST", "/rest/v1/svc/echo").startswith("200 ")
    job = s.http.post("/rest/v1/svc/echo", json=["root's secret argument"]).headers["x-cncf-call-id"]
    assert job
    # another user: refused on every route but /healthz, as a remote client would be
    for method, path in (
        ("POST", "/rest/v1/svc/echo"),
        ("GET", "/hub/v1/jobs"),
        ("GET", "/hub/v1/jobs/anything"),
        ("GET", "/hub/v1/components"),
        ("GET", "/"),
        ("GET", "/metrics"),
    ):
        answer = _request(nobody, where, method, path)
        assert answer.startswith("401 unauthenticated"), (method, path, answer)
        assert "secret" not in answer
    assert _request(nobody, where, "GET", "/healthz").startswith("200 ")
    # ... unless it has the token
    assert _request(nobody, where, "POST", "/rest/v1/svc/echo", s.token).startswith("200 ")


PIPELINE = r"""
import re, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=30)
health = b"GET /healthz HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
call = (b"POST /rest/v1/svc/echo HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 3\r\n\r\n[1]")
s.sendall(call + call + health)  # three requests in one write: the parser meets them in one read
got = b""
while got.count(b"HTTP/1.1 ") < 3:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
print(" ".join(code.decode() for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", got)))
"""


def test_another_users_pipelined_requests_each_need_the_token(serve) -> None:  # type: ignore[no-untyped-def]
    """The peer's user is decided once per connection; every request on it carries
    the decision, also requests the parser meets together in one read."""
    nobody = _as_nobody()
    s: Served = serve(PROBE_HUB)
    where = s.url.removeprefix("http://").rstrip("/")
    r = subprocess.run(
        [*nobody, SYSTEM_PYTHON, "-c", PIPELINE, where], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["401", "401", "200"], r.stdout  # the calls need the token; /healthz does not
    mine = subprocess.run([SYSTEM_PYTHON, "-c", PIPELINE, where], capture_output=True, text=True, timeout=60, cwd="/")
    assert mine.stdout.split() == ["200", "200", "200"], mine.stdout


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every user may enter (pytest's own tmp is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="cncf-unix-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_unix_socket_is_the_hubs_users_only(serve, open_dir: Path) -> None:  # type: ignore[no-untyped-def]
    nobody = _as_nobody()
    path = open_dir / "hub.sock"
    s: Served = serve(PROBE_HUB, "--unix", str(path))
    assert s.url == f"unix:{path}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert s.http.post("/rest/v1/svc/echo", json=[5]).json() == {"ok": True, "value": 5}
    assert _request([], str(path), "POST", "/rest/v1/svc/echo").startswith("200 ")
    assert _request(nobody, str(path), "POST", "/rest/v1/svc/echo") == "EACCES"
    code, err = s.stop()
    assert code == 0, err
    assert not path.exists(), "the socket outlived the hub"


def test_the_token_is_not_in_the_serving_hubs_environ_cmdline_or_memory(serve) -> None:  # type: ignore[no-untyped-def]
    secret = "s3cret-t0ken-in-the-environment"
    s: Served = serve(PROBE_HUB, env={"CNCF_TOKEN": secret})
    s.token = secret
    pid = s.proc.pid
    assert s.http.post("/rest/v1/probe/pid", json=None).json()["value"] == pid  # the probe runs in the hub
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert secret.encode() not in environ
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert b"serve" in cmdline and str(s.home).encode() not in cmdline, cmdline
    assert s.http.post("/rest/v1/probe/token_in_environ", json=None).json()["value"] is False
    # not dumpable: /proc/PID/mem, environ and ptrace are refused to the same user
    assert s.http.post("/rest/v1/probe/dumpable", json=None).json()["value"] == 0
    # the hub still knows its token
    assert s.http.post("/hub/v1/components/svc/reload", json={}, headers=s.auth).status_code == 200


def test_auth_always_asks_for_the_token_on_loopback_too(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve(PROBE_HUB, "--auth", "always")
    h = s.http
    assert h.get("/healthz").status_code == 200
    for method, path in (("POST", "/rest/v1/svc/echo"), ("GET", "/hub/v1/jobs"), ("GET", "/metrics")):
        r = h.request(method, path, json=[1] if method == "POST" else None)
        assert (r.status_code, r.json()["observation"]["code"]) == (401, "unauthenticated"), path
    assert h.post("/rest/v1/svc/echo", json=[1], headers=s.auth).json() == {"ok": True, "value": 1}
    assert h.get("/hub/v1/jobs", headers=s.auth).status_code == 200

"""HTTP limits (docs/http.md, *Limits*): slowloris and header floods against a
hub with a low descriptor limit (``prlimit --nofile=256``), the body, keep-alive
and connection bounds, and decoding at the edge that never escapes.

The hub file (``fixtures/probe/hub.toml``) sets low limits so that the tests
are quick: ``header_timeout = 2``, ``keep_alive = 1``, ``max_body = 4096``,
``max_headers = 50``, ``max_header_bytes = 16384``.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.http.conftest import FIXTURES, Served

PROBE_HUB = FIXTURES / "probe" / "hub.toml"


def _prlimit(n: int) -> tuple[str, ...]:
    path = shutil.which("prlimit")
    if path is None:
        if IN_CI:
            pytest.fail("prlimit (util-linux) is required under CI=true")
        pytest.skip("prlimit is not installed")
    return (path, f"--nofile={n}")


def _addr(s: Served) -> tuple[str, int]:
    host, port = s.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _raw(s: Served, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` on a fresh connection; what comes back until the hub closes or answers."""
    with socket.create_connection(_addr(s), timeout=timeout) as c:
        try:
            c.sendall(data)
        except OSError:
            pass  # the hub closed while we were still sending: read what it said
        out = b""
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out and len(out) > 200:
                    break
        except OSError:
            pass
        return out


def test_slowloris_leaves_a_normal_client_served(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve(PROBE_HUB, prefix=_prlimit(256))
    addr = _addr(s)
    stop = threading.Event()
    held: list[socket.socket] = []
    opened = [0]

    def attacker() -> None:
        # more half-open connections than the hub has descriptors, kept topped up,
        # each sending a header byte now and then
        while not stop.is_set():
            while len(held) < 400 and not stop.is_set():
                try:
                    c = socket.create_connection(addr, timeout=2)
                    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
                    held.append(c)
                    opened[0] += 1
                except OSError:
                    time.sleep(0.05)
            for c in list(held):
                try:
                    c.sendall(b"a")
                except OSError:
                    held.remove(c)
                    c.close()
            time.sleep(0.5)

    t = threading.Thread(target=attacker, daemon=True)
    t.start()
    try:
        time.sleep(3)  # the flood is up
        answered = 0
        for i in range(15):
            try:
                with httpx.Client(base_url=s.url, timeout=5) as h:
                    r = h.post("/rest/v1/svc/echo", json=[i])
                answered += r.json() == {"ok": True, "value": i}
            except httpx.HTTPError:
                pass
        assert answered >= 14, f"a normal client got {answered} answers of 15 under slowloris"
        assert opened[0] > 256, "the attacker did hold more connections than the hub's descriptors"
    finally:
        stop.set()
        t.join(10)
        for c in held:
            c.close()
    assert s.proc.poll() is None


def test_a_slow_header_is_cut_at_the_header_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve(PROBE_HUB)
    with socket.create_connection(_addr(s), timeout=10) as c:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        t0 = time.monotonic()
        got = b""
        try:
            while chunk := c.recv(4096):
                got += chunk
                c.sendall(b"X-a: b\r\n")  # never the blank line
                time.sleep(0.2)
        except OSError:
            pass
        took = time.monotonic() - t0
    assert took < 6, took
    assert got.startswith(b"HTTP/1.1 408"), got[:100]
    body = json.loads(got.split(b"\r\n\r\n", 1)[1])
    assert body["ok"] is False and body["observation"]["attributes"]["reason"] == "header_timeout"


def test_idle_connections_close_after_keep_alive(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve(PROBE_HUB)
    with socket.create_connection(_addr(s), timeout=10) as c:
        t0 = time.monotonic()
        assert c.recv(10) == b""  # opened, then nothing sent: closed at the header timeout
        assert time.monotonic() - t0 < 5
        assert c.recv(10) == b""
    with socket.create_connection(_addr(s), timeout=10) as c:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got = b""
        while not got.endswith(b"}"):
            got += c.recv(65536)
        assert got.startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        assert c.recv(10) == b""  # kept alive for keep_alive = 1 s, then closed
        assert time.monotonic() - t0 < 4


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(20_000)) + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (32 << 20) + b"\r\n\r\n",
        b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ],
    ids=["20000-headers", "32MB-header", "1MB-url"],
)
def test_header_floods_are_431(serve, request_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve(PROBE_HUB)
    got = _raw(s, request_bytes)
    assert got.startswith(b"HTTP/1.1 431"), got[:200]
    body = json.loads(got.split(b"\r\n\r\n", 1)[1])
    assert body["observation"]["attributes"]["reason"] == "headers"
    assert s.http.get("/healthz").status_code == 200


def test_endless_headers_do_not_grow_the_hub(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve(PROBE_HUB, prefix=_prlimit(256))
    before = _rss_kb(s.proc.pid)
    stop = threading.Event()
    sent = [0]

    def endless() -> None:
        chunk = b"a" * 65536
        while not stop.is_set():
            try:
                with socket.create_connection(_addr(s), timeout=2) as c:
                    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
                    while not stop.is_set():
                        c.sendall(chunk)
                        sent[0] += len(chunk)
            except OSError:
                continue

    threads = [threading.Thread(target=endless, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        worst = 0.0
        for _ in range(10):
            time.sleep(0.5)
            t0 = time.monotonic()
            assert s.http.get("/healthz").status_code == 200
            worst = max(worst, time.monotonic() - t0)
        grown = _rss_kb(s.proc.pid) - before
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert grown < 64 * 1024, f"the hub grew by {grown} kB"
    assert worst < 2.0, f"/healthz took {worst:.1f}s"


def test_body_limit_from_the_hub_file(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve(PROBE_HUB)
    r = s.http.post("/rest/v1/svc/echo", json=["x" * 5000])
    assert (r.status_code, r.json()["observation"]["code"]) == (413, "body_too_large")
    assert r.json()["observation"]["attributes"]["limit"] == 4096
    assert s.http.post("/rest/v1/svc/echo", json=["x" * 100]).status_code == 200


def test_connections_are_bounded_and_the_oldest_idle_one_goes(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(
        f"[serve]\nmax_connections = 20\nheader_timeout = 30\n\n[[component]]\ntarget = {str(FIXTURES / 'svc')!r}\n"
    )
    s: Served = serve(hubfile)
    idle = [socket.create_connection(_addr(s), timeout=10) for _ in range(40)]
    time.sleep(0.5)
    try:
        assert s.http.post("/rest/v1/svc/echo", json=[1]).json()["value"] == 1
        closed = 0
        for c in idle:
            c.settimeout(0.2)
            try:
                closed += c.recv(1) == b""
            except TimeoutError:
                pass
            except OSError:
                closed += 1
        assert closed >= 20, closed
        assert closed < 40  # the youngest stay
    finally:
        for c in idle:
            c.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "code"),
    [
        ("POST", "/rest/v1/svc/echo", "[" * 1000 + "]" * 1000, {}, "arguments_too_large"),
        ("POST", "/rest/v1/svc/echo", "[" * 100_000 + "]" * 100_000, {}, "arguments_too_large"),
        ("POST", "/rest/v1/svc/echo", '{"value": ' + "[" * 1500 + "]" * 1500 + "}", {}, "arguments_too_large"),
        ("GET", "/rest/v1/svc/echo?value=" + "[" * 1000 + "]" * 1000, None, {}, "arguments_too_large"),
        ("POST", "/rest/v1/svc/echo?timeout=" + "1" + "0" * 400, "[1]", {}, "invalid_policy"),
        ("POST", "/rest/v1/svc/echo", "[1]", {"x-cncf-timeout": "1" + "0" * 400}, "invalid_policy"),
        ("POST", "/rest/v1/svc/echo?timeout=" + "[" * 1000 + "]" * 1000, "[1]", {}, "arguments_too_large"),
    ],
    ids=[
        "body-1000-deep",
        "body-100000-deep",
        "named-1500-deep",
        "query-1000-deep",
        "timeout-10e400",
        "header-10e400",
        "timeout-deep",
    ],
)
def test_decoding_at_the_edge_is_an_observation(hub_server: Served, method, path, body, headers, code) -> None:  # type: ignore[no-untyped-def]
    r = hub_server.http.request(method, path, content=body, headers=headers)
    assert r.status_code == 400, r.text[:300]
    assert r.headers["content-type"] == "application/json"
    assert r.json()["observation"]["code"] == code
    assert r.headers["x-cncf-observation-code"] == code


def test_a_huge_job_limit_is_bounded(hub_server: Served) -> None:
    r = hub_server.http.get("/hub/v1/jobs", params={"limit": "9" * 40})
    assert r.status_code == 200 and isinstance(r.json()["jobs"], list)


def test_bad_limits_in_the_hub_file_are_usage_errors(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.http.conftest import SRC

    for line in ("header_timeout = 0", "max_headers = -1", "max_body = 1.5", 'keep_alive = "x"', "auth = 'never'"):
        hubfile = tmp_path / "hub.toml"
        hubfile.write_text(f"[serve]\n{line}\n")
        r = subprocess.run(
            [sys.executable, "-m", "cncf", "serve", str(hubfile), "--home", str(tmp_path / "h")],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(SRC)),
            timeout=60,
        )
        assert r.returncode == 2, (line, r.stderr)

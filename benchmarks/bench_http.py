"""The HTTP reception: an echo POST through ``cncf serve`` against a bare
Starlette + uvicorn echo app, measured in the same run with the same client.

Both servers run as their own processes with the same uvicorn settings
(uvloop, httptools, no access log).  The client is a minimal keep-alive
HTTP/1.1 client on asyncio streams (lighter than any library client, so the
servers' costs dominate): one connection sending requests back to back, then
8 connections at once.  Rounds alternate between the two servers; each figure
is the best round's.  Printed: median latency with 1 and 8 clients (the hub's
added µs is value − floor), and requests/s with 8 clients (ratio = hub/bare).
The hub's component is inline, so the figure is reception + engine, not a
worker round trip.

Run standalone: ``python benchmarks/bench_http.py``.

``python benchmarks/bench_http.py --load [--old REF] [--seconds S] [--clients N]``:
the load check of the HTTP limits instead — N concurrent keep-alive clients
(64) for S seconds (30) against ``cncf serve`` of this tree and of git REF
(default ``main``; its ``src`` is extracted to a temporary folder),
in ``--rounds`` (6) alternating slices, in the same run; printed:
requests/s, the server's CPU time per request and errors of each, and the
ratios new/old; then the median slice's CPU time per request of each (the
figure to trust when the machine is shared: a rate follows the neighbours).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ECHO = HERE / "http_echo"
SRC = HERE.parent / "src"
N1, N8, ROUNDS = 3000, 6000, 5
Row = tuple[str, float, float, str]


def _start(cmd: list[str], pattern: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(pattern, line)
        if m:
            return proc, int(m.group(1))
    raise RuntimeError(f"{cmd} did not start")


async def _client(port: int, path: str, n: int, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"value": "hello"}).encode()
    req = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    pc = time.perf_counter
    for _ in range(n):
        t = pc()
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
        payload = await reader.readexactly(length)
        out.append(pc() - t)
        assert payload.startswith(b'{"ok": true'), payload
    writer.close()


async def _measure(port: int, path: str, clients: int, n: int) -> tuple[float, float]:
    """(median latency µs, requests/s)."""
    await asyncio.gather(*(_client(port, path, 200, []) for _ in range(clients)))  # warm up
    samples: list[float] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(port, path, n // clients, samples) for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    return statistics.median(samples) * 1e6, len(samples) / elapsed


async def _load_client(port: int, path: str, until: float, counts: list[int]) -> None:
    body = json.dumps({"value": "hello"}).encode()
    req = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < until:
        try:
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: (\d+)", head)
            payload = await reader.readexactly(int(m.group(1))) if m else b""
            ok = head.startswith(b"HTTP/1.1 200") and payload.startswith(b'{"ok": true')
            counts[0 if ok else 1] += 1
        except (OSError, asyncio.IncompleteReadError):
            counts[1] += 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()


async def _load(port: int, path: str, clients: int, seconds: float) -> tuple[float, int]:
    """(requests/s, errors) of ``clients`` keep-alive clients for ``seconds``."""
    counts = [0, 0]
    t0 = time.perf_counter()
    await asyncio.gather(*(_load_client(port, path, t0 + seconds, counts) for _ in range(clients)))
    return counts[0] / (time.perf_counter() - t0), counts[1]


def _hub(src: Path, home: Path) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, "-m", "cncf", "serve", str(ECHO / "hub.toml"), "--port", "0", "--home", str(home)]
    return _start(cmd, r"at http://127\.0\.0\.1:(\d+)/", env)


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_check(old: str, seconds: float, clients: int, rounds: int = 6) -> None:
    """New (this tree) against old (git ``old``) under the same load: ``rounds``
    alternating slices of ``seconds / rounds`` each, so that both see the same
    neighbours on a shared machine.  Requests/s, and the server's CPU time per
    request (less sensitive to neighbours than a rate)."""
    with tempfile.TemporaryDirectory(prefix="cncf-bench-load-") as tmp:
        old_src = Path(tmp) / "old"
        old_src.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", old, "src"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive, check=True)
        servers = {"old": _hub(old_src / "src", Path(tmp) / "h-old"), "new": _hub(SRC, Path(tmp) / "h-new")}
        done = {k: 0.0 for k in servers}
        took = {k: 0.0 for k in servers}
        cpu = {k: 0.0 for k in servers}
        errors = {k: 0 for k in servers}
        slices: dict[str, list[float]] = {k: [] for k in servers}  # CPU µs per request, per slice
        try:
            for _, port in servers.values():  # warm up
                asyncio.run(_load(port, "/rest/v1/echo/echo", clients, 1.0))
            for r in range(rounds):
                for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    proc, port = servers[name]
                    c0, t0 = _cpu(proc.pid), time.perf_counter()
                    rate, errs = asyncio.run(_load(port, "/rest/v1/echo/echo", clients, seconds / rounds))
                    elapsed = time.perf_counter() - t0
                    used = _cpu(proc.pid) - c0
                    cpu[name] += used
                    done[name] += rate * elapsed
                    slices[name].append(used / max(1.0, rate * elapsed) * 1e6)
                    took[name] += elapsed
                    errors[name] += errs
                    print(f"  slice {r + 1} {name}: {rate:.0f} req/s, {errs} errors", flush=True)
        finally:
            for proc, _ in servers.values():
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    rate = {k: done[k] / took[k] for k in servers}
    per = {k: cpu[k] / done[k] * 1e6 for k in servers}
    print(
        f"{clients} clients, {seconds:g}s each: old ({old}) {rate['old']:.0f} req/s, {per['old']:.0f} µs CPU/request, "
        f"{errors['old']} errors; new {rate['new']:.0f} req/s, {per['new']:.0f} µs CPU/request, "
        f"{errors['new']} errors; "
        f"ratio (req/s) {rate['new'] / rate['old']:.3f}, CPU per request {per['new'] / per['old']:.3f}"
    )
    # On a shared machine a slice's rate follows the neighbours; the median slice's
    # CPU time per request follows the server's own work.
    med = {k: statistics.median(v) for k, v in slices.items()}
    print(
        f"median slice: old {med['old']:.1f} µs CPU/request, new {med['new']:.1f}; "
        f"ratio {med['new'] / med['old']:.3f} (≤ 1.05 keeps a CPU-bound server at ≥ 0.95× the rate)"
    )


def main() -> list[Row]:
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory(prefix="cncf-bench-http-") as tmp:
        bare, bare_port = _start([sys.executable, str(ECHO / "bare.py")], r"^port (\d+)", env)
        hub, hub_port = _start(
            [
                sys.executable,
                "-m",
                "cncf",
                "serve",
                str(ECHO / "hub.toml"),
                "--port",
                "0",
                "--home",
                str(Path(tmp) / "home"),
            ],
            r"at http://127\.0\.0\.1:(\d+)/",
            env,
        )
        try:
            runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
            servers = [("bare", bare_port, "/echo"), ("hub", hub_port, "/rest/v1/echo/echo")]
            for r in range(ROUNDS):
                for name, port, path in servers if r % 2 == 0 else servers[::-1]:  # alternate who goes first
                    for clients, n in ((1, N1), (8, N8)):
                        runs.setdefault((name, clients), []).append(asyncio.run(_measure(port, path, clients, n)))
            best = {
                k: (statistics.median(m for m, _ in v), statistics.median(r for _, r in v)) for k, v in runs.items()
            }
        finally:
            for p in (bare, hub):
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
    return [
        ("http echo median, 1 client (cncf serve vs bare Starlette)", best[("hub", 1)][0], best[("bare", 1)][0], "µs"),
        ("http echo median, 8 clients", best[("hub", 8)][0], best[("bare", 8)][0], "µs"),
        ("http requests/s, 8 clients (ratio = hub/bare)", best[("hub", 8)][1], best[("bare", 8)][1], "req/s"),
        ("http requests/s, 1 client", best[("hub", 1)][1], best[("bare", 1)][1], "req/s"),
    ]


if __name__ == "__main__":
    if "--load" in sys.argv:
        args = sys.argv[1:]

        def _opt(name: str, default: str) -> str:
            return args[args.index(name) + 1] if name in args else default

        load_check(
            _opt("--old", "main"),
            float(_opt("--seconds", "30")),
            int(_opt("--clients", "64")),
            int(_opt("--rounds", "6")),
        )
        sys.exit(0)
    for name, value, floor, unit in main():
        print(
            f"{name:60} {value:10.1f} {unit:5} floor {floor:10.1f}  ratio {value / floor:.2f}x  "
            f"added {value - floor:+.1f}"
        )

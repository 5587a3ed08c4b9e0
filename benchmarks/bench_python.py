"""The python form: echo round trip, component start and worker memory, each
against a floor measured in the same run.

* echo round trip (median, p99) through ``AsyncHub`` and through ``Hub`` vs a
  raw ``os.pipe`` length-prefixed JSON ping-pong between two processes
  (targets: <= 1.5x and <= 2x);
* load + instantiate of a folder component (warm) vs a bare interpreter start
  plus the component's own import (target: <= 1.3x);
* worker RSS vs a bare interpreter that imported the component (<= 1.3x).

Standalone: ``python benchmarks/bench_python.py``; ``benchmarks/run.py``
calls :func:`main`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import cncf  # noqa: E402

Row = tuple[str, float, float, str]
COMPONENT = ROOT / "examples" / "python-counter"
N = 6000
ROUNDS = 20
STARTS = 15
PAYLOAD = {"id": 42, "name": "echo", "tags": ["a", "b"], "ratio": 0.5}
PYTHON = os.path.realpath(sys.executable)

# The floor's peer: reads a frame, decodes it, encodes the reply, writes it.
_PEER = r"""
import json, os, sys
r, w = int(sys.argv[1]), int(sys.argv[2])
dumps, loads = json.dumps, json.loads
while True:
    head = os.read(r, 5)
    if len(head) < 5:
        break
    n = int.from_bytes(head[:4], "big")
    body = os.read(r, n)
    while len(body) < n:
        body += os.read(r, n - len(body))
    msg = loads(body)
    data = dumps({"id": msg["id"], "ok": True, "value": msg["args"][0]}).encode()
    os.write(w, len(data).to_bytes(4, "big") + b"\x08" + data)
"""


def _stats(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


class _RawPeer:
    """The floor: a peer process answering length-prefixed JSON frames."""

    def __init__(self) -> None:
        a_r, self.a_w = os.pipe()
        self.b_r, b_w = os.pipe()
        self.proc = subprocess.Popen([PYTHON, "-I", "-S", "-c", _PEER, str(a_r), str(b_w)], pass_fds=(a_r, b_w))
        os.close(a_r)
        os.close(b_w)
        self.i = 0

    def block(self, n: int, spin: bool = False) -> list[float]:
        """``spin``: poll the reply pipe without sleeping, as the hub's channel does
        for up to 100 µs — the fair floor for it on a machine whose idle CPUs wake slowly."""
        import json

        dumps, loads = json.dumps, json.loads
        a_w, b_r = self.a_w, self.b_r
        os.set_blocking(b_r, not spin)
        samples = []
        for _ in range(n):
            self.i += 1
            t = time.perf_counter()
            data = dumps({"id": self.i, "operation": "echo", "args": [PAYLOAD], "kwargs": {}}).encode()
            os.write(a_w, len(data).to_bytes(4, "big") + b"\x05" + data)
            while spin:
                try:
                    head = os.read(b_r, 5)
                    break
                except BlockingIOError:
                    continue
            else:
                head = os.read(b_r, 5)
            size = int.from_bytes(head[:4], "big")
            body = b""
            while len(body) < size:
                try:
                    body += os.read(b_r, size - len(body))
                except BlockingIOError:
                    continue
            loads(body)
            samples.append(time.perf_counter() - t)
        os.set_blocking(b_r, True)
        return samples

    def close(self) -> None:
        os.close(self.a_w)
        os.close(self.b_r)
        self.proc.wait()


async def _async_block(hub: cncf.AsyncHub, n: int) -> list[float]:
    call = hub.call
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        out = await call("counter.echo", [PAYLOAD])
        samples.append(time.perf_counter() - t)
    assert out.ok, out.observation
    return samples


def _sync_block(hub: cncf.Hub, n: int) -> list[float]:
    call = hub.call
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        out = call("counter.echo", [PAYLOAD])
        samples.append(time.perf_counter() - t)
    assert out.ok, out.observation
    return samples


def echo_round_trips(home: Path, n: int = N, rounds: int = ROUNDS) -> dict[str, tuple[float, float]]:
    """Floor, AsyncHub and Hub measured in alternating blocks, so that a change
    in the machine's load during the run affects all three alike."""
    peer = _RawPeer()
    loop = asyncio.new_event_loop()
    ahub = cncf.AsyncHub(home=home / "async")
    samples: dict[str, list[float]] = {"floor": [], "spin floor": [], "async": [], "sync": []}
    try:
        handle = loop.run_until_complete(ahub.load(COMPONENT))
        assert handle.state == "ready", handle.observation
        with cncf.Hub(home=home / "sync") as hub:
            assert hub.load(COMPONENT).state == "ready"
            per = max(1, n // rounds)
            peer.block(200)  # warm up all three
            loop.run_until_complete(_async_block(ahub, 200))
            _sync_block(hub, 200)
            for _ in range(rounds):
                samples["floor"] += peer.block(per)
                samples["spin floor"] += peer.block(per, spin=True)
                samples["async"] += loop.run_until_complete(_async_block(ahub, per))
                samples["sync"] += _sync_block(hub, per)
    finally:
        loop.run_until_complete(ahub.close())
        loop.close()
        peer.close()
    return {k: _stats(v) for k, v in samples.items()}


def _spawn_floor(argv: list[str], runs: int = STARTS) -> float:
    samples = []
    for _ in range(runs + 2):
        t = time.perf_counter()
        subprocess.run(argv, check=True)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples[2:])


def _starts(home: Path) -> float:
    samples = []
    with cncf.Hub(home=home) as hub:
        for i in range(STARTS + 2):
            t = time.perf_counter()
            handle = hub.load(COMPONENT, name=f"start{i}")
            samples.append(time.perf_counter() - t)
            assert handle.state == "ready", handle.observation
            hub.unload(handle.name)
    return statistics.median(samples[2:])


def _rss_kb_of(argv: list[str]) -> int:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdout.readline()  # ready
    with open(f"/proc/{proc.pid}/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    proc.stdin.close()
    proc.wait()
    return rss


def _worker_rss(home: Path) -> int:
    with cncf.Hub(home=home) as hub:
        hub.load(COMPONENT)
        hub.call("counter.echo", [PAYLOAD])
        return int(hub.inspect("counter")["health"]["rss_kb"])


def main() -> list[Row]:
    gc.collect()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cncf-bench-python-") as tmp:
        home = Path(tmp) / "home"
        rt = echo_round_trips(home)
        floor_med, floor_p99 = rt["floor"]
        a_med, a_p99 = rt["async"]
        s_med, s_p99 = rt["sync"]
        us = 1e6
        rows += [
            ("python echo via AsyncHub, median", a_med * us, floor_med * us, "µs"),
            ("python echo via AsyncHub, p99", a_p99 * us, floor_p99 * us, "µs"),
            ("python echo via Hub, median", s_med * us, floor_med * us, "µs"),
            ("python echo via Hub, p99", s_p99 * us, floor_p99 * us, "µs"),
            ("python echo via AsyncHub vs a spinning raw pipe, median", a_med * us, rt["spin floor"][0] * us, "µs"),
            ("python echo via Hub vs a spinning raw pipe, median", s_med * us, rt["spin floor"][0] * us, "µs"),
        ]
        importer = f"import sys; sys.path.insert(0, {str(COMPONENT)!r}); import counter"
        bare = _spawn_floor([PYTHON, "-c", importer])
        bare_isolated = _spawn_floor([PYTHON, "-I", "-S", "-c", importer])
        start = _starts(home)
        ms = 1e3
        rows += [
            ("python start (load + instantiate) vs python -c import", start * ms, bare * ms, "ms"),
            ("python start vs python -I -S -c import", start * ms, bare_isolated * ms, "ms"),
        ]
        ready = importer + "; print('ready', flush=True); sys.stdin.read()"
        bare_rss = _rss_kb_of([PYTHON, "-c", ready])
        bare_rss_isolated = _rss_kb_of([PYTHON, "-I", "-S", "-c", ready])
        worker = _worker_rss(home)
        rows += [
            ("python worker RSS vs bare interpreter", worker / 1024, bare_rss / 1024, "MiB"),
            ("python worker RSS vs python -I -S", worker / 1024, bare_rss_isolated / 1024, "MiB"),
        ]
    return rows


if __name__ == "__main__":
    for name, value, floor, unit in main():
        ratio = value / floor if floor else float("nan")
        print(f"{name:58} {value:10.2f} {unit:3} floor {floor:10.2f} {unit:3} ratio {ratio:5.2f}x")

"""Replicas and generations, measured in one run (``python benchmarks/bench_replicas.py``).

Printed, each against a floor measured in the same run:

* **CPU-bound throughput** with 1, 2 and 4 replicas of a stateless python
  component (``burn``: a pure-Python loop), 8 callers at once: calls/s and
  the ratio against 1 replica (this machine's cores bound it);
* **routing cost**: a sequential echo with ``replicas = 4`` against
  ``replicas = 1`` (median µs per call, alternating rounds; target ≤ 1.1×);
* **upgrade**: the time from ``upgrade()`` to the switch, and the longest
  pause a caller saw during the switch (4 callers calling in a loop) against
  the longest call of the same stream without an upgrade — without a
  hand-over (stateless) and with one (stateful: ``export_state`` /
  ``import_state``).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import cncf  # noqa: E402

WORKER = HERE.parent / "tests" / "replicas" / "fixtures" / "worker"
BURN = 150_000


async def _throughput(hub: cncf.AsyncHub, name: str, calls: int, callers: int) -> float:
    todo = iter(range(calls))

    async def caller() -> None:
        for _ in todo:
            o = await hub.call(f"{name}.burn", [BURN])
            assert o.ok, o.observation

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return calls / (time.perf_counter() - t0)


async def _echo(hub: cncf.AsyncHub, name: str, n: int) -> float:
    times = []
    sel = f"{name}.echo"
    for i in range(n):
        t0 = time.perf_counter()
        o = await hub.call(sel, [i])
        times.append(time.perf_counter() - t0)
        assert o.ok
    return statistics.median(times) * 1e6


async def _stream(hub: cncf.AsyncHub, sel: str, stop: asyncio.Event, out: list[tuple[float, float]]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        o = await hub.call(sel, None)
        assert o.ok, o.observation
        out.append((t0, time.perf_counter() - t0))


async def _upgrade(hub: cncf.AsyncHub, name: str, op: str) -> tuple[float, float, float]:
    """(seconds to the switch, longest call during it, longest call of the stream before)."""
    stop = asyncio.Event()
    before: list[tuple[float, float]] = []
    tasks = [asyncio.create_task(_stream(hub, f"{name}.{op}", stop, before)) for _ in range(4)]
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*tasks)
    stop = asyncio.Event()
    during: list[tuple[float, float]] = []
    tasks = [asyncio.create_task(_stream(hub, f"{name}.{op}", stop, during)) for _ in range(4)]
    await asyncio.sleep(0.3)
    t0 = time.perf_counter()
    handle = await hub.upgrade(name)
    switch = time.perf_counter() - t0
    assert handle.state in ("ready", "busy"), handle.observation
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*tasks)
    window = [d for start, d in during if start + d >= t0]
    return switch, max(window), max(d for _, d in before)


Row = tuple[str, float, float, str]


async def measure() -> list[Row]:
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    folder = tmp / "worker"
    shutil.copytree(WORKER, folder)
    try:
        async with cncf.AsyncHub(home=tmp / "home") as hub:
            base = 0.0
            for n in (1, 2, 4):
                await hub.load(folder, name=f"cpu{n}", replicas=n, stateless=True)
                await _throughput(hub, f"cpu{n}", 8, 8)  # warm
                rate = max([await _throughput(hub, f"cpu{n}", 48, 8) for _ in range(2)])
                base = base or rate
                rows.append((f"CPU-bound burn({BURN}), 8 callers, {n} replica(s) vs 1", rate, base, "calls/s"))
                await hub.unload(f"cpu{n}")
            t0 = time.perf_counter()
            await hub.load(folder, name="e1", stateless=True)
            started = time.perf_counter() - t0
            await hub.load(folder, name="e4", replicas=4, stateless=True)
            await _echo(hub, "e1", 300)
            await _echo(hub, "e4", 300)
            one, four = [], []
            for _ in range(5):
                one.append(await _echo(hub, "e1", 1000))
                four.append(await _echo(hub, "e4", 1000))
            rows.append(("sequential echo, median: replicas = 4 vs 1 (routing)", min(four), min(one), "µs"))
            await hub.unload("e1")
            switch, pause, floor = await _upgrade(hub, "e4", "version_of")
            rows.append(
                ("upgrade of 4 stateless replicas: time to the switch vs loading 1", switch * 1e3, started * 1e3, "ms")
            )
            rows.append(("  longest call during that switch vs without an upgrade", pause * 1e3, floor * 1e3, "ms"))
            await hub.unload("e4")
            await hub.load(folder, name="st")
            switch, pause, floor = await _upgrade(hub, "st", "get")
            rows.append(
                (
                    "upgrade with hand-over (stateful): time to the switch vs loading 1",
                    switch * 1e3,
                    started * 1e3,
                    "ms",
                )
            )
            rows.append(("  longest call during that switch vs without an upgrade", pause * 1e3, floor * 1e3, "ms"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> list[Row]:
    return asyncio.run(measure())


if __name__ == "__main__":
    for name, value, floor, unit in main():
        print(f"{name:78s} {value:10.1f} {unit:8s} floor {floor:10.1f} {unit:8s} ratio {value / floor:.2f}x")

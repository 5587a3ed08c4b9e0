"""The synchronous Hub from many threads: parallel efficiency of 8 caller
threads on a ``concurrent`` component, and a fast component's latency while
another component is busy — for the inline and python forms.

Floors, measured in the same run: the ideal time of the threaded batch (what
perfect overlap would take), and the fast component's latency when nothing
else runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cncf

HERE = Path(__file__).resolve().parent
INLINE = HERE.parent / "tests" / "fixtures" / "inline" / "counter"
PYTHON = HERE.parent / "tests" / "fixtures" / "python" / "brief_counter"
THREADS, CALLS, SLEEP = 8, 5, 0.05
Row = tuple[str, float, float, str]


def _batch(hub: cncf.Hub, selector: str, args: dict[str, float]) -> float:
    barrier = threading.Barrier(THREADS)

    def worker() -> None:
        barrier.wait()
        for _ in range(CALLS):
            out = hub.call(selector, args)
            assert out.ok, out.observation

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def _latency(hub: cncf.Hub, selector: str, n: int = 200) -> float:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        hub.call(selector)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _neighbour(hub: cncf.Hub, busy: str, busy_args: dict[str, float], fast: str) -> tuple[float, float]:
    idle = _latency(hub, fast)
    done = threading.Event()

    def hog() -> None:
        while not done.is_set():
            hub.call(busy, busy_args)

    t = threading.Thread(target=hog)
    t.start()
    time.sleep(0.05)
    try:
        loaded = _latency(hub, fast)
    finally:
        done.set()
        t.join()
    return loaded, idle


def main() -> list[Row]:
    rows: list[Row] = []
    ideal = CALLS * SLEEP
    with tempfile.TemporaryDirectory() as home, cncf.Hub(home=home) as hub:
        hub.load(INLINE, name="ci", policy="concurrent", max_concurrency=THREADS)
        hub.load(INLINE, name="fi")
        hub.load(PYTHON, name="cp", max_concurrency=THREADS)  # its get is concurrent (operation level)
        hub.load(PYTHON, name="fp")
        for name, selector, args in (
            ("inline", "ci.block", {"seconds": SLEEP}),
            ("python", "cp.get", {"delay": SLEEP}),
        ):
            took = _batch(hub, selector, args)
            rows.append(
                (
                    f"{name}: {THREADS} threads x {CALLS} calls of {SLEEP * 1e3:g} ms, efficiency {ideal / took:.2f}",
                    took * 1e3,
                    ideal * 1e3,
                    "ms",
                )
            )
        for name, busy, args, fast in (
            ("inline", "ci.block", {"seconds": 1.0}, "fi.get"),
            ("python", "cp.get", {"delay": 1.0}, "fp.increment"),
        ):
            loaded, idle = _neighbour(hub, busy, args, fast)
            rows.append((f"{name}: fast component median while another is busy", loaded * 1e3, idle * 1e3, "ms"))
    return rows


if __name__ == "__main__":
    for name, value, floor, unit in main():
        print(
            f"{name:70s} {value:9.3f} {unit}  floor {floor:8.3f} {unit}  ratio {value / floor:6.2f}x", file=sys.stdout
        )

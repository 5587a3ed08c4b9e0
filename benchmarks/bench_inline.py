"""Engine overhead on the inline form: a call through AsyncHub and through Hub,
against a direct call of the same method measured in the same run."""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cncf

HERE = Path(__file__).resolve().parent
COMPONENT = HERE.parent / "tests" / "fixtures" / "inline" / "counter"
N = 20000
Row = tuple[str, float, float, str]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def _time_sync(fn: Callable[[], object], n: int = N) -> tuple[float, float]:
    for _ in range(n // 10):
        fn()
    out = []
    pc = time.perf_counter
    for _ in range(n):
        t = pc()
        fn()
        out.append(pc() - t)
    return _percentiles(out)


async def _time_async(fn: Callable[[], object], n: int = N) -> tuple[float, float]:
    for _ in range(n // 10):
        await fn()  # type: ignore[misc]
    out = []
    pc = time.perf_counter
    for _ in range(n):
        t = pc()
        await fn()  # type: ignore[misc]
        out.append(pc() - t)
    return _percentiles(out)


def main() -> list[Row]:
    rows: list[Row] = []
    gc.disable()
    try:
        with tempfile.TemporaryDirectory() as home:
            for policy in ("serialize", "concurrent"):
                with cncf.Hub(home=home) as hub:
                    h = hub.load(COMPONENT, policy=policy, name=f"c{policy[0]}")
                    obj = h._component.instance.obj  # type: ignore[attr-defined]
                    direct = _time_sync(obj.get)
                    sync = _time_sync(lambda: hub.call(f"c{policy[0]}.get"))  # noqa: B023
                rows.append((f"inline {policy}: Hub.call median", sync[0], direct[0], "us"))
                rows.append((f"inline {policy}: Hub.call p99", sync[1], direct[1], "us"))

                async def run_async(policy: str = policy) -> tuple[tuple[float, float], tuple[float, float]]:
                    async with cncf.AsyncHub(home=home) as ahub:
                        a = await ahub.load(COMPONENT, policy=policy, name="ca")
                        obj = a._component.instance.obj  # type: ignore[attr-defined]

                        async def direct_async() -> object:
                            return obj.get()

                        d = await _time_async(direct_async)
                        r = await _time_async(lambda: ahub.call("ca.get"))
                        return d, r

                d, r = asyncio.run(run_async())
                rows.append((f"inline {policy}: AsyncHub.call median", r[0], d[0], "us"))
                rows.append((f"inline {policy}: AsyncHub.call p99", r[1], d[1], "us"))
    finally:
        gc.enable()
    return rows


if __name__ == "__main__":
    for name, value, floor, unit in main():
        print(
            f"{name:45s} {value:9.2f} {unit}  floor {floor:8.2f} {unit}  overhead {value - floor:8.2f} {unit}"
            f"  ratio {value / floor if floor else float('nan'):7.1f}x",
            file=sys.stdout,
        )

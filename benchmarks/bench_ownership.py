"""What process ownership costs: a worker start inside a PID namespace of its
own (``unshare`` + a ``sh`` init, see ``cncf/wire/ownership.py``) against the
same start without it, both measured here; and an echo call on each."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from cncf.boundaries.python import worker_argv
from cncf.observation import Stage
from cncf.wire import ownership, process
from cncf.wire.frames import Kind

Row = tuple[str, float, float, str]
STARTS = 15
CALLS = 2000


async def _start(wrapped: bool) -> tuple[float, float]:
    real = ownership.wrap
    if not wrapped:
        ownership.wrap = lambda argv: (list(argv), False)  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        w = await process.WorkerProcess.spawn(worker_argv(sys.executable, site=False), label="bench")
        started = time.perf_counter() - t0
    finally:
        ownership.wrap = real  # type: ignore[assignment]
    await w.channel.request(Kind.PING, {}, stage=Stage.EXECUTE)
    t1 = time.perf_counter()
    for _ in range(CALLS):
        await w.channel.request(Kind.PING, {}, stage=Stage.EXECUTE)
    per_call = (time.perf_counter() - t1) / CALLS
    await w.close()
    return started, per_call


def main() -> list[Row]:
    if not ownership.namespace_available():
        return [("PID namespaces unavailable here: nothing to compare", 0.0, 0.0, "")]
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(STARTS):
        for wrapped in (False, True):
            runs[wrapped].append(asyncio.run(_start(wrapped)))
    start = {k: statistics.median(s for s, _ in v) * 1e3 for k, v in runs.items()}
    call = {k: statistics.median(c for _, c in v) * 1e6 for k, v in runs.items()}
    return [
        ("worker start in its own PID namespace (vs without)", start[True], start[False], "ms"),
        ("PING round trip, namespaced worker (vs without)", call[True], call[False], "µs"),
    ]

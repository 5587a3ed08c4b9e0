"""The hub's own short memory of its calls: per component, one bucket a second.

The console's charts (latency p50/p99, throughput, error rate over the last
minutes) read it; nothing outside the hub is needed.  Each bucket holds the
second's call count, its failure count and its durations — all of them up to
:data:`SAMPLES` a second, then a uniform reservoir sample of them (Vitter's
algorithm R), so a percentile is exact at the rates a person watches and an
unbiased estimate above.  Buckets older than the window are dropped as new
seconds begin; the memory is bounded by components × window × SAMPLES.

Wall-clock seconds (``time.time``) label the buckets: the charts show times of
day.  A duration is whatever the caller measured (the engine's event).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

_random = random.random
WINDOW = 600  # seconds kept
SAMPLES = 256  # durations kept per component and second


class _Bucket:
    __slots__ = ("calls", "durations", "errors", "second")

    def __init__(self, second: int) -> None:
        self.second = second
        self.calls = 0
        self.errors = 0
        self.durations: list[float] = []


def quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile of ``values`` (nearest rank), None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n q), at least 1
    return ordered[min(len(ordered), int(rank)) - 1]


class Series:
    """Per-component call counts, failures and durations over the last ``window`` seconds."""

    def __init__(self, window: int = WINDOW, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.clock = clock
        self._buckets: dict[str, deque[_Bucket]] = {}

    def record(self, component: str, seconds: float, failed: bool, now: float | None = None) -> None:
        second = int(self.clock() if now is None else now)
        seconds = seconds if seconds > 0.0 else 0.0
        buckets = self._buckets.get(component)
        if buckets is None:
            buckets = self._buckets[component] = deque((_Bucket(second),))
        last = buckets[-1]
        if last.second < second:  # a new second (if the wall clock stepped back: the newest one)
            last = _Bucket(second)
            buckets.append(last)
            while buckets[0].second <= second - self.window:
                buckets.popleft()
        # _Bucket.add, inlined: this runs on every call a serving hub makes
        last.calls += 1
        if failed:
            last.errors += 1
        durations = last.durations
        if len(durations) < SAMPLES:
            durations.append(seconds)
        else:  # reservoir: each of the second's calls is kept with the same chance
            j = int(_random() * last.calls)
            if j < SAMPLES:
                durations[j] = seconds

    def record_many(self, entries: Iterable[tuple[str, float, bool]], now: float | None = None) -> None:
        """:meth:`record` for several ``(component, seconds, failed)`` at once, all
        in the same second (the clock is read once)."""
        now = self.clock() if now is None else now
        record = self.record
        for component, seconds, failed in entries:
            record(component, seconds, failed, now)

    def components(self) -> list[str]:
        return sorted(self._buckets)

    def forget(self, component: str) -> None:
        self._buckets.pop(component, None)

    def points(
        self, component: str, *, span: int = 300, step: int = 5, now: float | None = None
    ) -> list[dict[str, Any]]:
        """``span // step`` points, oldest first, each over ``step`` seconds ending at
        its ``t``: ``calls``, ``errors``, ``rate`` (calls a second), ``error_rate``
        (failed / calls, None without calls), ``p50`` and ``p99`` (seconds, None
        without calls)."""
        step = max(1, int(step))
        span = max(step, min(int(span), self.window))
        end = int(self.clock() if now is None else now) + 1  # the current second included
        count = span // step
        start = end - count * step
        slots: list[list[_Bucket]] = [[] for _ in range(count)]
        for b in self._buckets.get(component, ()):
            if start <= b.second < end:
                slots[(b.second - start) // step].append(b)
        out = []
        for i, group in enumerate(slots):
            calls = sum(b.calls for b in group)
            errors = sum(b.errors for b in group)
            durations = [d for b in group for d in b.durations]
            out.append(
                {
                    "t": start + (i + 1) * step,
                    "calls": calls,
                    "errors": errors,
                    "rate": calls / step,
                    "error_rate": errors / calls if calls else None,
                    "p50": quantile(durations, 0.5),
                    "p99": quantile(durations, 0.99),
                }
            )
        return out

    def totals(self, component: str, *, span: int = 60, now: float | None = None) -> dict[str, Any]:
        """One point over the last ``span`` seconds (the overview's figures)."""
        return self.points(component, span=span, step=span, now=now)[-1]


__all__ = ["SAMPLES", "WINDOW", "Series", "quantile"]

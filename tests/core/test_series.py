"""``cncf.series``: the console's per-second memory of calls (no hub needed)."""

from __future__ import annotations

import random

from cncf.series import SAMPLES, Series, quantile


def test_points_count_calls_failures_and_quantiles_per_step() -> None:
    s = Series(window=600)
    base = 1_000_000
    for i in range(10):  # 10 calls at second 0..9, every third failed, 10..100 ms
        s.record("a", (i + 1) / 100, failed=i % 3 == 0, now=base + i)
    pts = s.points("a", span=60, step=5, now=base + 9)
    assert len(pts) == 12
    last, before = pts[-1], pts[-2]
    assert (before["calls"], last["calls"]) == (5, 5)
    assert before["errors"] == 2 and last["errors"] == 2  # i = 0, 3 | 6, 9
    assert before["rate"] == 1.0 and before["error_rate"] == 0.4
    assert before["p50"] == 0.03 and before["p99"] == 0.05
    assert last["p50"] == 0.08 and last["p99"] == 0.10
    assert all(p["calls"] == 0 and p["p50"] is None and p["error_rate"] is None for p in pts[:-2])
    assert pts[-1]["t"] - pts[-2]["t"] == 5
    total = s.totals("a", span=60, now=base + 9)
    assert total["calls"] == 10 and total["errors"] == 4
    assert s.points("nobody", span=60, step=5, now=base)[-1]["calls"] == 0


def test_old_seconds_are_dropped_and_a_busy_second_is_sampled() -> None:
    s = Series(window=60)
    s.record("a", 1.0, False, now=100)
    s.record("a", 2.0, False, now=200)  # 100 is out of the window now
    assert s.totals("a", span=60, now=200)["calls"] == 1
    assert sum(p["calls"] for p in s.points("a", span=600, step=60, now=200)) == 1
    random.seed(7)
    for i in range(SAMPLES * 8):
        s.record("b", i / (SAMPLES * 8), False, now=300)
    t = s.totals("b", span=60, now=300)
    assert t["calls"] == SAMPLES * 8  # every call counted, durations sampled
    assert 0.4 < t["p50"] < 0.6 and t["p99"] > 0.9


def test_quantile_is_nearest_rank() -> None:
    assert quantile([], 0.5) is None
    assert quantile([3.0], 0.99) == 3.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert quantile([float(i) for i in range(1, 101)], 0.99) == 99.0

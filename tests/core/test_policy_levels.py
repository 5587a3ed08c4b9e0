"""Policy keys resolve field by field from the most specific level that sets
them — the brief's section 10 example manifest loads and behaves as written."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cncf
from cncf import Code

BRIEF = Path(__file__).parent.parent / "fixtures" / "python" / "brief_counter"


def test_the_brief_example_manifest_resolves_field_by_field(hub: cncf.Hub) -> None:
    handle = hub.load(BRIEF)
    assert handle.state == "ready", handle.observation
    ops = hub.inspect("counter")["services"]["counting"]
    assert ops["get"]["policy"] == {
        "policy": "concurrent",
        "max_concurrency": 4,
        "wait_timeout": 10,
        "run_timeout": 2,
        "cancel_grace": 2.0,
        "max_attempts": 3,
        "http_get": False,
        "idempotent": False,
    }
    assert ops["increment"]["policy"]["policy"] == "serialize"
    assert ops["increment"]["policy"]["max_concurrency"] == 1
    assert ops["increment"]["policy"]["run_timeout"] == 30


def test_the_brief_example_overlaps_get_up_to_the_component_limit(hub: cncf.Hub) -> None:
    hub.load(BRIEF)
    assert hub.call("counter.increment", {"by": 2}).value == 2
    results: list[cncf.Outcome] = []
    threads = [
        threading.Thread(target=lambda: results.append(hub.call("counter.get", {"delay": 0.4}))) for _ in range(4)
    ]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert [o.value for o in results] == [2, 2, 2, 2]
    assert elapsed < 1.2  # four 0.4 s calls overlapped (serially: 1.6 s)
    out = hub.call("counter.get", {"delay": 3})
    assert out.observation.code is Code.TIMED_OUT  # the operation's own run_timeout = 2

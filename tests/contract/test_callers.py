"""Many callers, the same for every form and door: what the brief (section 8)
owes a threaded web app or a thread pool.  Calls from different callers never
wait for each other unless their policy says so: concurrent calls overlap, and
an idle component answers while another one is busy.  (Wait timeouts and
cancellation from another caller are in ``test_timeouts`` / ``test_cancellation``.)"""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from tests.contract.conftest import NAME, Door, Form, Loader, running, wait_until

pytestmark = pytest.mark.slow  # the jar form compiles its jar


def test_concurrent_calls_from_many_caller_threads_overlap(hub: Door, load: Loader) -> None:
    load(policy="concurrent", max_concurrency=8)
    callers, per_caller, seconds = 8, 4, 0.1

    def caller(k: int) -> list[str]:
        outs = [hub.call(f"{NAME}.probe", [f"c{k}-{i}", seconds]) for i in range(per_caller)]
        assert all(o.ok for o in outs), [o.observation for o in outs]
        return [o.value for o in outs]

    with concurrent.futures.ThreadPoolExecutor(callers) as pool:
        t0 = time.monotonic()
        results = list(pool.map(caller, range(callers)))
        took = time.monotonic() - t0
    assert results == [[f"c{k}-{i}" for i in range(per_caller)] for k in range(callers)]
    ideal, serial = per_caller * seconds, callers * per_caller * seconds
    assert took < serial / 2, f"parallel efficiency {ideal / took:.2f} (the calls ran one after another)"
    assert hub.call(f"{NAME}.stats").value["peak"] >= 4


def test_an_idle_component_answers_while_another_is_busy(hub: Door, form: Form) -> None:
    for name in ("busy", "idle"):
        handle = hub.load(form.target, name=name)
        assert handle.state == "ready", handle.observation
    busy = hub.submit("busy.sleep", [2.0])
    wait_until(lambda: running(hub, "busy") == 1, "the busy component runs its call")
    for expected in (1, 2, 3):
        t0 = time.monotonic()
        out = hub.submit("idle.increment", [1]).result(timeout=30)
        took = time.monotonic() - t0
        assert out.ok and out.value == expected, out.observation
        assert took < 0.5, f"the idle component answered after {took:.2f}s"
    assert not busy.done(), "the idle component answered only once the busy one was done"
    assert busy.result(timeout=30).value == "slept"

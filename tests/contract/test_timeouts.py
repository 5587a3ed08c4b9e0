"""Timeouts, the same for every form and door: waiting and running are two
limits with two codes, a call's ``timeout=`` is an overall deadline that only
tightens the declared ones, and each fires on time — for a call from a
second caller too, while the first caller's call holds the instance."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cncf import Code
from tests.contract.conftest import NAME, PROMPT, Door, Form, Loader, running, wait_until

pytestmark = pytest.mark.slow  # the jar form compiles its jar

# (declared wait_timeout, the call's timeout=): the effective limit is 0.3 s in every case.
WAIT_LIMITS = {
    "declared": ({"wait_timeout": 0.3}, None),
    "overall": ({}, 0.3),
    "overall-tightens": ({"wait_timeout": 20}, 0.3),
    "overall-cannot-loosen": ({"wait_timeout": 0.3}, 20),
}
RUN_LIMITS = {
    "declared": ({"run_timeout": 0.3}, None),
    "overall": ({}, 0.3),
    "overall-tightens": ({"run_timeout": 20}, 0.3),
    "overall-cannot-loosen": ({"run_timeout": 0.3}, 20),
}


@pytest.mark.parametrize("limits", sorted(WAIT_LIMITS))
def test_a_waiting_call_times_out_on_time_while_another_caller_holds_the_instance(
    hub: Door, load: Loader, limits: str
) -> None:
    declared, timeout = WAIT_LIMITS[limits]
    load(**declared)
    assert hub.call(f"{NAME}.increment", [4]).value == 4
    holder = hub.submit(f"{NAME}.sleep", [1.8])  # a first caller holds the serialize instance
    wait_until(lambda: running(hub) == 1, "the first call runs")
    kw: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    t0 = time.monotonic()
    out = hub.submit(f"{NAME}.increment", [1], **kw).result(timeout=30)  # a second caller
    took = time.monotonic() - t0
    assert not out.ok
    assert (out.observation.code, out.observation.stage.value) == (Code.WAIT_TIMEOUT, "wait")
    assert 0.25 <= took < 1.2, f"the wait timeout of 0.3 s fired after {took:.2f}s"
    assert not holder.done(), "the wait timeout fired only once the instance was free"
    assert holder.result(timeout=30).value == "slept"
    assert hub.call(f"{NAME}.get").value == 4  # the timed-out call never ran


@pytest.mark.parametrize("limits", sorted(RUN_LIMITS))
def test_a_running_call_times_out_on_time_and_the_next_call_is_served(hub: Door, load: Loader, limits: str) -> None:
    declared, timeout = RUN_LIMITS[limits]
    load(**declared)
    assert hub.call(f"{NAME}.increment", [4]).value == 4
    kw: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    t0 = time.monotonic()
    out = hub.call(f"{NAME}.sleep", [5.0], **kw)
    took = time.monotonic() - t0
    assert not out.ok
    assert (out.observation.code, out.observation.stage.value) == (Code.TIMED_OUT, "execute")
    assert 0.25 <= took < PROMPT, f"the run timeout of 0.3 s fired after {took:.2f}s"
    assert hub.call(f"{NAME}.increment", [1]).value == 5  # same instance: it stopped cooperatively


def test_a_run_timeout_on_an_operation_that_ignores_cancellation_restarts_the_instance(
    hub: Door, load: Loader, form: Form
) -> None:
    handle = load(run_timeout=0.3, cancel_grace=0.3)
    assert hub.call(f"{NAME}.increment", [4]).value == 4
    t0 = time.monotonic()
    out = hub.call(f"{NAME}.spin", [6.0], call_id="contract-ignores")
    took = time.monotonic() - t0
    assert (out.observation.code, out.observation.stage.value) == (Code.TIMED_OUT, "execute")
    assert out.observation.attributes["tier"] == "cooperative"  # reached at the deadline
    assert took < 0.3 + 0.25, f"answered {took:.2f}s after the call, for a 0.3 s run_timeout"
    assert hub.call(f"{NAME}.get").value == 0  # waits for the escalation; served by a fresh instance
    assert handle.restarts == 1
    assert hub.event("contract-ignores").tier == ("abandoned" if form.name == "inline" else "killed")

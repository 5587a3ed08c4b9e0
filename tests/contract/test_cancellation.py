"""Cancellation, the same for every form and door, always requested by
another caller than the one waiting for the Outcome (another thread with the
synchronous ``Hub``): a waiting call never runs, a running call that looks
stops cooperatively and keeps the instance, one that ignores it is stopped
after ``cancel_grace`` and the instance restarted."""

from __future__ import annotations

import time

import pytest

from cncf import Code
from tests.contract.conftest import NAME, PROMPT, Door, Form, Loader, pid_of, running, wait_until, waiting

pytestmark = pytest.mark.slow  # the jar form compiles its jar


def test_cancel_a_waiting_call(hub: Door, load: Loader) -> None:
    load()
    holder = hub.submit(f"{NAME}.sleep", [1.0])
    wait_until(lambda: running(hub) == 1, "the first call runs")
    waiter = hub.submit(f"{NAME}.increment", [1], call_id="contract-waiting")
    wait_until(lambda: waiting(hub) == 1, "the second call waits")
    assert hub.cancel("contract-waiting")
    out = waiter.result(timeout=PROMPT)  # at once, not when the first call ends
    assert not out.ok and out.call_id == "contract-waiting"
    assert (out.observation.code, out.observation.stage.value) == (Code.CANCELLED_WAITING, "wait")
    assert not holder.done()
    assert holder.result(timeout=30).value == "slept"
    assert hub.call(f"{NAME}.get").value == 0  # the cancelled call never ran
    assert not hub.cancel("contract-waiting")  # over: nothing to cancel


def test_cancel_a_running_call_cooperatively(hub: Door, load: Loader) -> None:
    handle = load()
    assert hub.call(f"{NAME}.increment", [4]).value == 4
    pid = pid_of(hub)
    call = hub.submit(f"{NAME}.sleep", [8.0], call_id="contract-running")
    wait_until(lambda: running(hub) == 1, "the call runs")
    t0 = time.monotonic()
    assert hub.cancel("contract-running")
    out = call.result(timeout=30)
    took = time.monotonic() - t0
    assert not out.ok and out.call_id == "contract-running"
    assert (out.observation.code, out.observation.stage.value) == (Code.CANCELLED, "execute")
    assert out.observation.attributes["tier"] == "cooperative"
    assert took < PROMPT, f"the cancelled call ended after {took:.2f}s"
    assert hub.call(f"{NAME}.increment", [1]).value == 5  # the same instance, state kept
    assert (handle.restarts, pid_of(hub)) == (0, pid)


def test_a_running_call_that_ignores_cancellation_is_stopped_and_the_instance_restarted(
    hub: Door, load: Loader, form: Form
) -> None:
    handle = load(cancel_grace=0.3)
    assert hub.call(f"{NAME}.increment", [4]).value == 4
    pid = pid_of(hub)
    call = hub.submit(f"{NAME}.spin", [6.0], call_id="contract-spinning")
    wait_until(lambda: running(hub) == 1, "the call runs")
    t0 = time.monotonic()
    assert hub.cancel("contract-spinning")
    out = call.result(timeout=30)
    took = time.monotonic() - t0
    assert not out.ok
    # The caller is answered at once, with the tier reached by then ...
    assert (out.observation.code, out.observation.stage.value) == (Code.CANCELLED, "execute")
    assert out.observation.attributes["tier"] == "cooperative"
    assert (out.observation.attributes["started"], out.observation.attributes["completed"]) == (True, False)
    assert not out.observation.retryable  # it may have had its effect, and is not idempotent
    assert took < 0.3, f"the cancelled caller was answered after {took:.2f}s"
    # ... the escalation goes on: the next call waits for it and is served by a fresh instance.
    assert hub.call(f"{NAME}.get").value == 0
    assert handle.restarts == 1 and handle.state == "ready"
    if form.process:
        assert pid_of(hub) != pid
    final = "abandoned" if form.name == "inline" else "killed"
    assert hub.event("contract-spinning").tier == final  # the tier it finally took
    assert hub.inspect(NAME)["cancellations"] == {final: 1}

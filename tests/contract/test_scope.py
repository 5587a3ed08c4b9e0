"""The call scope, the same for every form and door (brief, sections 5 and 14):

* a caller that gives up on its own call (its task cancelled, ``asyncio.wait_for``,
  ``hub.cancel`` from another thread) costs the component nothing when the
  operation ends within ``cancel_grace``: same instance, state kept;
* a deadline (``run_timeout``, a call's ``timeout=``) is kept to the
  millisecond whatever the component does: the Outcome comes at the deadline
  with the tier reached by then, the escalation goes on for the instance and
  its final tier is in the call's event and in ``inspect``;
* a ``timed_out`` / ``cancelled`` Observation says whether the operation
  ``started`` and ``completed``, and is ``retryable`` only when it never
  started or is declared ``idempotent``.

``cancel_grace = 2`` throughout, so a hub that answered after the grace period
(the old behaviour) fails the 0.25 s bounds.
"""

from __future__ import annotations

import time

import pytest

import cncf
from cncf import Code
from tests.contract.conftest import NAME, PROMPT, Door, Form, Loader, pid_of, running, wait_until, waiting

pytestmark = pytest.mark.slow  # the jar form compiles its jar

GRACE = 2.0
#: How late after its deadline an Outcome may arrive on a loaded two-core CI
#: machine (the contract is a few milliseconds; the old behaviour was GRACE).
LATE = 0.25


@pytest.mark.parametrize("how", ["task", "wait_for", "cancel"])
def test_a_caller_that_gives_up_costs_the_component_nothing(hub: Door, load: Loader, form: Form, how: str) -> None:
    if hub.kind == "sync" and how != "cancel":
        pytest.skip("a synchronous caller is cancelled by hub.cancel from another thread")
    handle = load(cancel_grace=GRACE)
    assert hub.call(f"{NAME}.increment", [1]).value == 1
    pid = pid_of(hub)
    # spin ignores the cooperative cancel, and ends 0.2 s after the caller gave up.
    got = hub.cancel_own(f"{NAME}.spin", [0.3], how=how, after=0.1, call_id=f"own-{how}")
    if how == "cancel":
        assert isinstance(got, cncf.Outcome) and not got.ok
        obs = got.observation
        assert (obs.code, obs.stage.value) == (Code.CANCELLED, "execute")
        assert (obs.attributes["started"], obs.attributes["completed"]) == (True, False)
        assert not obs.retryable
    else:
        assert got == "cancelled"
    t0 = time.monotonic()
    assert hub.call(f"{NAME}.increment", [1]).value == 2  # the same instance, its state kept
    assert time.monotonic() - t0 < GRACE, "the next call waited for a forced stop"
    assert handle.restarts == 0 and handle.state == "ready"
    assert pid_of(hub) == pid
    event = hub.event(f"own-{how}")
    assert event.tier == "cooperative"  # the operation ended within the grace: never forced
    assert not event.outcome.ok and event.outcome.observation.code is Code.CANCELLED
    assert hub.inspect(NAME)["cancellations"] == {"cooperative": 1}


@pytest.mark.parametrize("limit", ["run_timeout", "timeout"])
def test_a_deadline_is_kept_whatever_the_component_does(hub: Door, load: Loader, form: Form, limit: str) -> None:
    handle = load(cancel_grace=GRACE, **({"run_timeout": 0.3} if limit == "run_timeout" else {}))
    assert hub.call(f"{NAME}.increment", [4]).value == 4
    kw = {"timeout": 0.3} if limit == "timeout" else {}
    t0 = time.monotonic()
    out = hub.call(f"{NAME}.spin", [6.0], call_id="deadline", **kw)  # ignores the cooperative cancel
    took = time.monotonic() - t0
    assert not out.ok
    obs = out.observation
    assert (obs.code, obs.stage.value) == (Code.TIMED_OUT, "execute")
    assert took < 0.3 + LATE, f"the 0.3 s deadline was answered after {took:.3f}s"
    assert obs.attributes["tier"] == "cooperative"  # the tier reached at the deadline
    assert (obs.attributes["started"], obs.attributes["completed"]) == (True, False)
    assert not obs.retryable  # it may have had its effect, and is not declared idempotent
    # The escalation goes on: the next call (serialize) waits for it, and is served by a fresh instance.
    assert hub.call(f"{NAME}.get").value == 0
    assert handle.restarts == 1
    final = "abandoned" if form.name == "inline" else "killed"
    event = hub.event("deadline")
    assert event.tier == final
    assert event.settled_ns is not None and event.settled_ns - event.ended_ns >= (GRACE - 0.1) * 1e9
    assert hub.inspect(NAME)["cancellations"] == {final: 1}


def test_an_idempotent_operation_that_timed_out_is_retryable(hub: Door, load: Loader) -> None:
    load(run_timeout=0.3, idempotent=True)
    policy = hub.inspect(NAME)["services"]["default"]["sleep"]["policy"]
    assert policy["idempotent"] is True
    out = hub.call(f"{NAME}.sleep", [5.0])
    obs = out.observation
    assert (obs.code, obs.attributes["started"], obs.attributes["completed"]) == (Code.TIMED_OUT, True, False)
    assert obs.retryable


def test_a_call_that_never_started_is_retryable(hub: Door, load: Loader) -> None:
    load()
    holder = hub.submit(f"{NAME}.sleep", [0.6])
    wait_until(lambda: running(hub) == 1, "the first call runs")
    waiter = hub.submit(f"{NAME}.increment", [1], timeout=0.2)
    wait_until(lambda: waiting(hub) == 1 or waiter.done(), "the second call waits")
    obs = waiter.result(timeout=PROMPT).observation
    assert (obs.code, obs.stage.value) == (Code.WAIT_TIMEOUT, "wait")
    assert (obs.attributes["started"], obs.attributes["completed"]) == (False, False)
    assert obs.retryable
    assert holder.result(timeout=30).ok
    assert hub.call(f"{NAME}.get").value == 0  # it never ran


def test_a_cooperative_stop_keeps_the_instance_and_reports_the_tier(hub: Door, load: Loader) -> None:
    handle = load(cancel_grace=GRACE, run_timeout=0.3)
    assert hub.call(f"{NAME}.increment", [3]).value == 3
    t0 = time.monotonic()
    out = hub.call(f"{NAME}.sleep", [5.0], call_id="stops")  # sees the cancel, stops at once
    assert time.monotonic() - t0 < 0.3 + LATE
    assert out.observation.code is Code.TIMED_OUT
    event = hub.event("stops")
    assert event.tier == "cooperative"
    assert event.executed_ns is not None and event.admitted_ns <= event.executed_ns <= event.ended_ns
    assert hub.call(f"{NAME}.increment", [1]).value == 4
    assert handle.restarts == 0


def test_a_deadline_that_passed_before_the_request_crossed_never_runs(hub: Door, load: Loader) -> None:
    load()
    out = hub.call(f"{NAME}.increment", [1], timeout=1e-6)  # over before the request can cross
    obs = out.observation
    assert (obs.code, obs.stage.value) == (Code.WAIT_TIMEOUT, "wait")
    assert (obs.attributes["started"], obs.attributes["completed"]) == (False, False)
    assert obs.retryable  # it never ran: retrying it applies it once
    assert hub.call(f"{NAME}.get").value == 0

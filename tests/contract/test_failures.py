"""Failure as data, the same for every form and door: an operation that
raises, an unknown operation, values that cross unchanged, and exactly one
Outcome for every call of a mixed burst from concurrent callers."""

from __future__ import annotations

import pytest

import cncf
from cncf import Code
from tests.contract.conftest import NAME, PROMPT, Door, Loader, wait_until

pytestmark = pytest.mark.slow  # the jar form compiles its jar

VALUE = {"n": 1, "x": 2.5, "s": "héllo", "list": [1, "two", None, True, {"deep": [[]]}], "none": None}


def test_values_cross_unchanged(hub: Door, load: Loader) -> None:
    load()
    for value in (VALUE, [VALUE, VALUE], "text", 42, -7, 0.25, True, None, []):
        out = hub.call(f"{NAME}.echo", [value])
        assert out.ok, out.observation
        assert out.value == value


def test_an_operation_that_raises_is_a_raised_observation_and_the_component_keeps_serving(
    hub: Door, load: Loader
) -> None:
    load()
    assert hub.call(f"{NAME}.increment", [3]).value == 3
    out = hub.call(f"{NAME}.fail", ["boom"])
    assert not out.ok
    obs = out.observation
    assert (obs.code, obs.stage.value) == (Code.RAISED, "execute")
    assert (obs.category, obs.symptom, obs.retryable) == ("component", "invalid", False)  # its own failure: 500
    assert obs.call_id == out.call_id and obs.target == f"{NAME}.default.fail"
    assert obs.cause is not None and obs.cause.type  # the component's own exception, by type
    assert hub.call(f"{NAME}.increment", [1]).value == 4  # same instance, state kept


def test_an_unknown_operation_is_a_dispatch_observation_listing_the_candidates(hub: Door, load: Loader) -> None:
    load()
    out = hub.call(f"{NAME}.incremnt", [1])
    obs = out.observation
    assert (obs.code, obs.stage.value) == (Code.UNKNOWN_OPERATION, "dispatch")
    candidates = obs.attributes["candidates"]
    for op in ("increment", "get", "echo", "probe", "sleep", "spin", "fail", "crash"):
        assert f"{NAME}.default.{op}" in candidates
    assert hub.call(f"{NAME}.get").value == 0  # nothing ran


def test_exactly_one_outcome_per_call_from_concurrent_callers(hub: Door, load: Loader) -> None:
    load(policy="concurrent", max_concurrency=4, wait_timeout=0.2)
    plan = [
        ("increment", [1]),
        ("fail", ["x"]),
        ("nope", None),
        ("probe", ["p", 0.05]),
        ("sleep", [0.4]),
        ("echo", [VALUE]),
    ]
    futures = {}
    for i in range(36):
        op, args = plan[i % len(plan)]
        futures[f"burst-{i}"] = (op, hub.submit(f"{NAME}.{op}", args, call_id=f"burst-{i}", timeout=0.3))
    outcomes = {cid: (op, f.result(timeout=60)) for cid, (op, f) in futures.items()}
    assert all(isinstance(o, cncf.Outcome) and o.call_id == cid for cid, (_, o) in outcomes.items())
    allowed = {  # a burst on a limit of 4 with wait_timeout 0.2: any call may time out waiting
        "increment": {None},
        "fail": {Code.RAISED},
        "probe": {None},
        "echo": {None},
        "sleep": {Code.TIMED_OUT},
    }
    seen: set[Code | None] = set()
    for op, o in outcomes.values():
        code = None if o.ok else o.observation.code
        seen.add(code)
        if op == "nope":  # resolved at dispatch: never waits
            assert code is Code.UNKNOWN_OPERATION
        else:
            # timeout=0.3 is each call's deadline, waiting and running: any call may reach it
            assert code in allowed[op] | {Code.WAIT_TIMEOUT, Code.TIMED_OUT}, (op, o.observation)
    assert {None, Code.RAISED, Code.UNKNOWN_OPERATION} <= seen
    assert hub.call(f"{NAME}.get").value == sum(1 for op, o in outcomes.values() if op == "increment" and o.ok)
    # A timed-out caller is answered at its deadline; its operation stops cooperatively just after.
    wait_until(lambda: hub.inspect(NAME)["calls"]["running"] == 0, "the timed-out operations have stopped", PROMPT)
    assert hub.inspect(NAME)["calls"]["waiting"] == 0

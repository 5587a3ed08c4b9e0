"""Whose fault is it: a component that rejects its arguments, against one that
fails on its own, the same for every form and door.

A rejection (``cncf.collaborator.Rejected`` in Python, Java and Scala; an
Error named ``Rejected`` in the bundled Node worker, whose failure record's
code is ``"rejected"``) is the code ``rejected``: stage execute, category
argument, not retryable, HTTP 400, the component's own message and
attributes, and the instance serves on with its state.  Anything else an
operation raises is ``raised``: the component's failure, HTTP 500.  The
component is ``Picky`` (``tests/fixtures/contract/python/contract_picky.py``
and its twins).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cncf
from cncf import Code
from cncf.receptions.http.status import status_of
from tests.contract.conftest import COMMAND_DIR, CONTRACT, NAME, Door, Form, pid_of
from tests.jar.conftest import fat_jar, javac

pytestmark = pytest.mark.slow  # the jar form compiles its jar

PICKY_JAVA = CONTRACT / "jar-picky" / "src"


@pytest.fixture(scope="session")
def picky_jar(jvm: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Java twin, compiled against the collaborator API jar (it throws its ``Rejected``)."""
    out = tmp_path_factory.mktemp("picky-jar")
    classes = javac(sorted(PICKY_JAVA.rglob("*.java")), out / "classes", [jvm.api_jar], parameters=True)
    return fat_jar(out / "picky.jar", [classes])


def load_picky(hub: Door, form: Form, request: pytest.FixtureRequest, cls: str = "Picky") -> cncf.ComponentHandle:
    if form.name == "jar":
        jar: Path = request.getfixturevalue("picky_jar")
        handle = hub.load(jar, name=NAME, entry=f"contract.{cls}", isolation="process")
    elif form.name == "command":
        handle = hub.load(form.target, entry=f"{COMMAND_DIR / 'picky.js'}:{cls}")
    else:
        handle = hub.load(form.target, entry=f"contract_picky:{cls}")
    if cls == "Picky":
        assert handle.state == "ready", handle.observation
    return handle


def test_a_rejection_is_the_callers_fault_and_the_component_serves_on(
    hub: Door, form: Form, request: pytest.FixtureRequest
) -> None:
    load_picky(hub, form, request)
    assert hub.call(f"{NAME}.take", [2]).value == 2
    pid = pid_of(hub) if form.process else None
    out = hub.call(f"{NAME}.take", [-1])
    assert not out.ok
    obs = out.observation
    assert (obs.code, obs.stage.value) == (Code.REJECTED, "execute")
    assert (obs.category, obs.symptom, obs.retryable) == ("argument", "invalid", False)
    assert status_of(obs) == 400
    # the component's own message and attributes, as it wrote them (the same text in every twin)
    assert obs.message == "qty must be a positive whole number, got -1"
    assert (obs.attributes["field"], obs.attributes["value"]) == ("qty", -1)
    assert obs.call_id == out.call_id and obs.target == f"{NAME}.default.take"
    assert obs.cause is not None and obs.cause.type.rsplit(".", 1)[-1] == "Rejected"
    wrong_type = hub.call(f"{NAME}.take", ["many"])  # a value of the wrong kind: rejected too
    assert wrong_type.observation.code is Code.REJECTED
    assert wrong_type.observation.attributes["value"] == "many"
    assert hub.call(f"{NAME}.take", [3]).value == 5  # nothing rejected was taken; same instance
    assert hub.call(f"{NAME}.taken").value == 5
    if form.process:
        assert pid_of(hub) == pid  # no restart: a rejection is not a crash


def test_anything_else_an_operation_raises_is_the_components_own_failure(
    hub: Door, form: Form, request: pytest.FixtureRequest
) -> None:
    load_picky(hub, form, request)
    assert hub.call(f"{NAME}.take", [1]).value == 1
    out = hub.call(f"{NAME}.fail", ["a bug"])
    obs = out.observation
    assert (obs.code, obs.stage.value) == (Code.RAISED, "execute")
    assert (obs.category, obs.symptom, obs.retryable) == ("component", "invalid", False)
    assert status_of(obs) == 500
    assert obs.cause is not None and obs.cause.type.rsplit(".", 1)[-1] != "Rejected"
    assert hub.call(f"{NAME}.taken").value == 1


def test_rejections_and_failures_from_concurrent_callers_each_keep_their_code(
    hub: Door, form: Form, request: pytest.FixtureRequest
) -> None:
    load_picky(hub, form, request)
    plan = [("take", [1], None), ("take", [0], Code.REJECTED), ("fail", ["x"], Code.RAISED), ("taken", None, None)]
    futures = [
        (expected, hub.submit(f"{NAME}.{op}", args, call_id=f"mix-{i}"))
        for i, (op, args, expected) in enumerate(plan * 6)
    ]
    for expected, f in futures:
        o = f.result(timeout=60)
        assert (None if o.ok else o.observation.code) is expected, o.observation
    assert hub.call(f"{NAME}.taken").value == 6


def test_a_rejection_in_a_constructor_is_a_constructor_failure(
    hub: Door, form: Form, request: pytest.FixtureRequest
) -> None:
    """No caller's arguments reach a constructor: ``Rejected`` there is the component's failure."""
    handle = load_picky(hub, form, request, "Unwilling")
    assert handle.state == "failed"
    obs = handle.observation
    assert obs is not None
    assert (obs.code, obs.stage.value) == (Code.CONSTRUCTOR_FAILED, "instantiate")
    assert status_of(obs) == 500
    assert hub.call(f"{NAME}.taken").observation.code is Code.CONSTRUCTOR_FAILED

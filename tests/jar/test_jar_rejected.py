"""Scala components reject their arguments with ``cncf.collaborator.Rejected``
from the collaborator API jar, as Java ones do (tests/contract/test_rejected.py):
code ``rejected`` (HTTP 400) with the component's message; anything else
thrown is ``raised`` (HTTP 500).  A plain Scala class (reached by reflection:
the rejection arrives wrapped in an InvocationTargetException) and a Scala
Collaborator, both in the Scala fixture jar, which shares the JVM host."""

from __future__ import annotations

from pathlib import Path

import pytest

import cncf
from cncf.receptions.http.status import status_of

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("entry", ["demo.scala.Picky", "demo.scala.PickyLedger"])
def test_scala_rejection_is_rejected_with_its_message(jar_hub: cncf.Hub, scala_jar: Path, entry: str) -> None:
    h = jar_hub.load(scala_jar, name="picky", entry=entry)
    assert h.state == "ready", h.observation
    assert jar_hub.call("picky.take", [4]).value == 4
    out = jar_hub.call("picky.take", [-2])
    obs = out.observation
    assert (obs.code, obs.stage.value, obs.category, obs.retryable) == (
        cncf.Code.REJECTED,
        "execute",
        "argument",
        False,
    )
    assert status_of(obs) == 400
    assert obs.message.startswith("qty must be positive")  # the component's own text, nothing added
    assert obs.cause is not None and obs.cause.type == "cncf.collaborator.Rejected"
    if entry == "demo.scala.Picky":
        assert obs.attributes == {"field": "qty"}
    assert jar_hub.call("picky.taken").value == 4  # same instance, nothing taken


def test_scala_throwable_is_raised_and_a_server_error(jar_hub: cncf.Hub, scala_jar: Path) -> None:
    jar_hub.load(scala_jar, name="picky", entry="demo.scala.Picky")
    obs = jar_hub.call("picky.fail").observation
    assert (obs.code, obs.category) == (cncf.Code.RAISED, "component")
    assert status_of(obs) == 500
    assert obs.cause is not None and obs.cause.type == "java.lang.IllegalStateException"

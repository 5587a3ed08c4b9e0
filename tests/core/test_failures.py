"""The hub's one failure converter (``cncf.failures``): a worker's failure
record, an exception in the hub's process and a defect of the hub itself
become Observations the same way wherever they arise; the inline form's
failures are the worker runtime's records, so a component fails identically
inline and in a worker."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import cncf
from cncf import Code, Observation, Stage
from cncf.failures import cause_of, component_exception, from_record, internal_error, observation_cause
from cncf.worker import runtime


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _chained() -> RuntimeError:
    try:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise RuntimeError("outer") from exc
    except RuntimeError as exc:
        return exc


def test_a_cause_follows_the_chain_and_survives_json() -> None:
    cause = cause_of(_chained())
    assert (cause.type, cause.cause.type if cause.cause else None) == ("RuntimeError", "KeyError")
    assert "RuntimeError: outer" in cause.stack
    obs = Observation.of(Code.RAISED, "boom", cause=cause)
    assert Observation.from_dict(json.loads(json.dumps(obs.to_dict()))).cause == cause


def test_a_cause_of_an_unprintable_exception_is_still_a_cause() -> None:
    cause = cause_of(_Unprintable())
    assert cause.type.endswith("_Unprintable") and cause.message


def test_an_internal_error_is_built_even_when_describing_the_exception_fails() -> None:
    obs = internal_error(_Unprintable(), "the hub failed while handling a.b", stage=Stage.EXECUTE, call_id="c-1")
    assert (obs.code, obs.stage, obs.call_id, obs.retryable) == (Code.INTERNAL_ERROR, Stage.EXECUTE, "c-1", False)
    plain = internal_error(ValueError("x"), "loading 'a' failed", stage=Stage.LOAD, target="a")
    assert (plain.code, plain.stage, plain.target) == (Code.INTERNAL_ERROR, Stage.LOAD, "a")
    assert plain.cause is not None and plain.cause.type == "ValueError"


def test_a_records_attributes_are_data_whatever_their_names() -> None:
    record = runtime.failure_record(
        "rejected", "no", None, {"stage": "s", "target": "t", "code": "c", "exc": 1, "call_id": "x"}
    )
    obs = from_record(record, Stage.EXECUTE)
    assert (obs.code, obs.stage, obs.target, obs.call_id) == (Code.REJECTED, Stage.EXECUTE, "", "")
    assert dict(obs.attributes) == {"stage": "s", "target": "t", "code": "c", "exc": 1, "call_id": "x"}


def test_a_code_the_hub_does_not_know_is_the_components_own() -> None:
    obs = from_record({"code": "PERSON_NOT_FOUND", "message": "no one"}, Stage.EXECUTE)
    assert obs.code is Code.OPERATION_FAILED and obs.attributes["component_code"] == "PERSON_NOT_FOUND"


def test_an_earlier_observation_is_a_cause() -> None:
    crash = Observation.of(Code.WORKER_CRASHED, "gone", cause=cause_of(_chained()))
    cause = observation_cause(crash)
    assert cause is not None and cause.type == "Observation:worker_crashed" and cause.cause == crash.cause
    assert observation_cause(None) is None


def test_component_code_in_the_hubs_process_is_classified_by_the_runtimes_rules() -> None:
    failure = runtime.Failure("GONE", "it left", stage="s", exc=2)
    obs = component_exception(failure, Stage.EXECUTE, "x.y")
    assert obs.code is Code.OPERATION_FAILED
    assert dict(obs.attributes) == {"stage": "s", "exc": 2, "component_code": "GONE"}
    assert component_exception(runtime.Rejected("bad", field="f"), Stage.EXECUTE, "x.y").code is Code.REJECTED
    assert component_exception(ValueError("v"), Stage.EXECUTE, "x.y").code is Code.RAISED
    assert component_exception(KeyboardInterrupt(), Stage.EXECUTE, "x.y").code is Code.EXIT_REQUESTED


_NAMED = """\
from cncf.collaborator import Failure, Rejected


class Named:
    def fail(self):
        raise Failure("GONE", "it left", stage="s", target="t", exc=1, call_id="c")

    def reject(self):
        raise Rejected("bad", stage="s", target="t", code="c", exc=1)

    def ok(self):
        return 7
"""


@pytest.mark.parametrize("form", ["inline", "python"])
def test_component_attributes_named_like_keywords_reach_the_caller(tmp_path: Path, form: str) -> None:
    """A ``Failure`` or ``Rejected`` whose attributes are called ``stage``,
    ``target``, ``exc``, ``code``: its code, stage and attributes, in both
    Python forms (never an ``internal_error``), and the instance serves on."""
    (tmp_path / "named").mkdir()
    (tmp_path / "named" / "named_component.py").write_text(textwrap.dedent(_NAMED))
    with cncf.Hub(tmp_path / "home") as hub:
        handle = hub.load(tmp_path / "named", name="named", form=form, entry="named_component:Named")
        assert handle.state == "ready", handle.observation
        failed = hub.call("named.fail").observation
        assert failed is not None
        assert (failed.code, failed.stage) == (Code.OPERATION_FAILED, Stage.EXECUTE)
        assert failed.target == "named.default.fail" and failed.call_id
        assert {k: failed.attributes[k] for k in ("stage", "target", "exc", "call_id", "component_code")} == {
            "stage": "s",
            "target": "t",
            "exc": 1,
            "call_id": "c",
            "component_code": "GONE",
        }
        rejected = hub.call("named.reject").observation
        assert rejected is not None and (rejected.code, rejected.stage) == (Code.REJECTED, Stage.EXECUTE)
        assert {k: rejected.attributes[k] for k in ("stage", "target", "code", "exc")} == {
            "stage": "s",
            "target": "t",
            "code": "c",
            "exc": 1,
        }
        assert hub.call("named.ok").value == 7

import json

import pytest

from cncf import Code, Observation, Stage
from cncf.failures import cause_of
from cncf.observation import Cause


@pytest.mark.parametrize("code", list(Code))
def test_every_code_is_classified(code):
    spec = code.spec
    assert isinstance(spec.stage, Stage)
    assert spec.category and spec.symptom and spec.cause_kind and spec.meaning
    obs = Observation.of(code, "m")
    assert obs.stage is spec.stage and obs.retryable is spec.retryable


def test_json_round_trip_keeps_every_field():
    try:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise RuntimeError("outer") from exc
    except RuntimeError as exc:
        obs = Observation.of(Code.RAISED, "boom", target="a.b.c", call_id="c-1", cause=cause_of(exc), n=3)
    back = Observation.from_dict(json.loads(json.dumps(obs.to_dict())))
    assert back == obs
    assert back.cause.type == "RuntimeError" and back.cause.cause.type == "KeyError"


def test_stage_override_only_within_declared_stages():
    assert Observation.of(Code.WORKER_CRASHED, "x", stage=Stage.INSTANTIATE).stage is Stage.INSTANTIATE
    assert Observation.of(Code.RAISED, "x", stage=Stage.LOAD).stage is Stage.EXECUTE


def test_cause_follows_unsuppressed_context_only():
    try:
        try:
            raise ValueError("a")
        except ValueError:
            raise TypeError("b") from None
    except TypeError as exc:
        cause = cause_of(exc)
    assert cause.type == "TypeError" and cause.cause is None
    assert Cause.from_dict(cause.to_dict()) == cause

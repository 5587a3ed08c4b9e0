"""The hot path's makers of frozen values (``cncf._frozen``) build values that
are indistinguishable from the ones their classes build."""

import dataclasses
import pickle

import pytest

from cncf._frozen import twin
from cncf.call import ActionCall, ExecutionContext, Target, make_call, make_context
from cncf.engine.engine import Dispatched, _dispatched
from cncf.observation import Code, Observation
from cncf.outcome import Outcome, make_outcome
from cncf.policy import ResolvedPolicy


def _same(made, built):
    assert type(made) is type(built)
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    for f in dataclasses.fields(built):  # every slot is set (an unset slot raises here)
        assert getattr(made, f.name) == getattr(built, f.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, dataclasses.fields(built)[0].name, "changed")
    assert dataclasses.replace(made) == built
    assert pickle.loads(pickle.dumps(made)) == built


def test_make_context_and_call_equal_the_classes_own():
    ctx = make_context("corr", "api", 12.5, 10.0, "key")
    _same(ctx, ExecutionContext("corr", "api", 12.5, 10.0, "key"))
    target = Target("c", "s", "op")
    policy = ResolvedPolicy()
    made = make_call("c-1", target, policy, ctx, (1, 2), {"x": 3})
    built = ActionCall(id="c-1", target=target, policy=policy, context=ctx, args=(1, 2), kwargs={"x": 3})
    assert made == built and type(made) is ActionCall and repr(made) == repr(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.id = "other"  # type: ignore[misc]


def test_make_outcome_equals_the_classes_own():
    _same(make_outcome("c-1", {"v": [1]}.get("v") and 7, None, "out", "err"), Outcome("c-1", 7, None, "out", "err"))
    obs = Observation.of(Code.RAISED, "boom")
    made = make_outcome("c-2", None, obs, "", "")
    assert made == Outcome("c-2", observation=obs) and not made.ok and made.job_id is None and made.queued is False


def test_dispatched_maker_equals_the_classes_own():
    made = _dispatched("call", "comp", "entry")  # type: ignore[arg-type]
    assert made == Dispatched("call", "comp", "entry") and type(made) is Dispatched  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.call = None  # type: ignore[misc]


def test_twin_refuses_what_it_cannot_mirror():
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    with pytest.raises(TypeError):
        twin(NoSlots)
    with pytest.raises(TypeError):
        twin(int)

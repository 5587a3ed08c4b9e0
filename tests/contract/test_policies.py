"""Policies, the same for every form and door: serialize is one call at a time
in arrival order, concurrent overlaps up to its limit and not beyond, and
policy keys resolve field by field from the most specific level that sets
them — the brief's own example manifest (section 10) included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cncf
from cncf import Code
from tests.contract.conftest import NAME, PROMPT, Door, Form, Loader, running, wait_until, waiting, write_manifest

pytestmark = pytest.mark.slow  # the jar form compiles its jar


def _probes(hub: Door, selector: str, n: int, seconds: float) -> list[cncf.Outcome]:
    futures = [hub.submit(selector, [f"t{i}", seconds]) for i in range(n)]
    return [f.result(timeout=60) for f in futures]


def _policy(hub: Door, service: str, operation: str) -> dict[str, Any]:
    return dict(hub.inspect(NAME)["services"][service][operation]["policy"])


def test_serialize_runs_one_call_at_a_time_in_arrival_order(hub: Door, load: Loader) -> None:
    load()  # serialize is the default
    first = hub.submit(f"{NAME}.probe", ["t0", 0.4])
    wait_until(lambda: running(hub) == 1, "the first call runs")
    later = []
    for i in range(1, 7):  # each caller arrives while the ones before it wait
        later.append(hub.submit(f"{NAME}.probe", [f"t{i}", 0.02]))
        wait_until(lambda i=i: waiting(hub) == i, f"call t{i} waits behind the others")
    outs = [f.result(timeout=60) for f in [first, *later]]
    assert [o.value for o in outs] == [f"t{i}" for i in range(7)], [o.observation for o in outs]
    stats = hub.call(f"{NAME}.stats").value
    assert stats == {"peak": 1, "order": [f"t{i}" for i in range(7)]}


def test_concurrent_overlaps_up_to_its_limit_and_not_beyond(hub: Door, load: Loader) -> None:
    load(policy="concurrent", max_concurrency=3)
    outs = _probes(hub, f"{NAME}.probe", 9, 0.3)
    assert all(o.ok for o in outs), [o.observation for o in outs]
    assert sorted(o.value for o in outs) == sorted(f"t{i}" for i in range(9))
    assert hub.call(f"{NAME}.stats").value["peak"] == 3


def test_policy_levels_resolve_field_by_field(hub: Door, form: Form, tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "levels",
        form,
        {"policy": "concurrent", "max_concurrency": 3, "run_timeout": 30},
        {
            "services.wide": {"operations": ["probe", "stats", "reset", "sleep"]},
            "services.pair": {"operations": ["probe"], "max_concurrency": 2},
            "services.narrow": {"operations": ["probe"], "policy": "serialize"},
            "services.tight": {"operations": ["probe"], "policy": "serialize"},
            'operations."tight.probe"': {"policy": "concurrent"},
            'operations."wide.sleep"': {"run_timeout": 0.3},
        },
    )
    handle = hub.load(manifest)
    assert handle.state == "ready", handle.observation
    # (service, expected peak): component level; service sets only the limit; service
    # sets only the policy; operation beats service, limit from the component.
    for service, peak in (("wide", 3), ("pair", 2), ("narrow", 1), ("tight", 3)):
        assert hub.call(f"{NAME}.reset").ok
        outs = _probes(hub, f"{NAME}.{service}.probe", 6, 0.15)
        assert all(o.ok for o in outs), (service, [o.observation for o in outs])
        assert hub.call(f"{NAME}.stats").value["peak"] == peak, service
    assert {k: _policy(hub, "pair", "probe")[k] for k in ("policy", "max_concurrency", "run_timeout")} == {
        "policy": "concurrent",
        "max_concurrency": 2,
        "run_timeout": 30,
    }
    # An operation that sets only run_timeout keeps the component's policy.
    assert _policy(hub, "wide", "sleep")["policy"] == "concurrent"
    out = hub.call(f"{NAME}.wide.sleep", [5.0])
    assert (out.observation.code, out.observation.stage.value) == (Code.TIMED_OUT, "execute")


def _brief_example(form: Form, folder: Path, **component: Any) -> Path:
    """The brief's section 10 manifest, placed on this form's artifact."""
    return write_manifest(
        folder,
        form,
        {
            "policy": "serialize",
            "max_concurrency": 4,
            "wait_timeout": 10,
            "run_timeout": 30,
            "restart": "on-failure",
            **component,
        },
        {
            "services.counting": {"operations": ["increment", "get"], "policy": "serialize"},
            "operations.get": {"policy": "concurrent", "run_timeout": 2},
        },
    )


def test_the_brief_example_manifest_loads_and_behaves_as_written(hub: Door, form: Form, tmp_path: Path) -> None:
    handle = hub.load(_brief_example(form, tmp_path / "brief"))
    assert handle.state == "ready", handle.observation
    assert sorted(handle.operations) == ["counting.get", "counting.increment"]
    get, increment = _policy(hub, "counting", "get"), _policy(hub, "counting", "increment")
    assert {k: get[k] for k in ("policy", "max_concurrency", "wait_timeout", "run_timeout")} == {
        "policy": "concurrent",
        "max_concurrency": 4,
        "wait_timeout": 10,
        "run_timeout": 2,
    }
    assert {k: increment[k] for k in ("policy", "wait_timeout", "run_timeout")} == {
        "policy": "serialize",
        "wait_timeout": 10,
        "run_timeout": 30,
    }
    futures = [hub.submit(f"{NAME}.increment", [1]) for _ in range(8)]
    assert sorted(f.result(timeout=60).value for f in futures) == list(range(1, 9))
    assert hub.call(f"{NAME}.counting.get").value == 8
    out = hub.call(f"{NAME}.echo", [1])  # the services narrow what the component offers
    assert out.observation.code is Code.UNKNOWN_OPERATION


def test_a_higher_level_max_concurrency_limits_a_lower_level_concurrent(hub: Door, form: Form, tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "inherit",
        form,
        {"policy": "serialize", "max_concurrency": 3},
        {"operations.probe": {"policy": "concurrent"}},
    )
    handle = hub.load(manifest)
    assert handle.state == "ready", handle.observation
    outs = _probes(hub, f"{NAME}.probe", 9, 0.3)
    assert all(o.ok for o in outs), [o.observation for o in outs]
    assert hub.call(f"{NAME}.stats").value["peak"] == 3
    # The component's other operations stay serialize: a sleep holds the instance alone.
    sleeping = hub.submit(f"{NAME}.sleep", [0.5])
    wait_until(lambda: running(hub) == 1, "the sleep runs")
    probe = hub.submit(f"{NAME}.probe", ["after", 0.01])
    wait_until(lambda: waiting(hub) == 1, "the probe waits for the serialize call")
    assert sleeping.result(timeout=PROMPT * 5).value == "slept"
    assert probe.result(timeout=PROMPT * 5).value == "after"

"""Cases 1, 2, 5, 9, 14 and part of 15: what a caller or a manifest sends.

Every numeric policy value is finite and in range, every string is free of
NUL bytes, requirements are PEP 508 only, names are selector-safe; a load
never raises and a failed load leaves no worker and no folder; arguments
nested too deep are refused for that call alone; a duplicate call id is an
Observation and cancel() cannot hit the wrong call.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import cncf
from tests.faults.conftest import FORMS, PROCESS_FORMS, Maker, load, marked


def nested(depth: int) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v]
    return v


# ---------------------------------------------------------------- case 1: nesting


@pytest.mark.parametrize("form", PROCESS_FORMS)  # inline hands values over by reference: nothing crosses
def test_deep_argument_is_refused_for_that_call_alone(fhub: cncf.Hub, make: Maker, form: str) -> None:
    load(fhub, make(form, "deep"))
    load(fhub, make(form, "neighbour"))
    assert fhub.call("neighbour.bump").value == 1
    out = fhub.call("deep.echo", [nested(600)], timeout=30)
    assert (out.observation.code, out.observation.stage) == ("arguments_too_large", "dispatch")
    assert fhub.call("deep.echo", [nested(50)]).value == nested(50)
    assert fhub.call("neighbour.bump").value == 2  # the neighbour kept its state


@pytest.mark.parametrize("form", PROCESS_FORMS)
def test_worker_refuses_an_over_deep_frame_without_exiting(
    fhub: cncf.Hub, make: Maker, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the hub's bound lifted, the worker itself (the shared JVM host, the
    Python runtime) refuses the frame for that request and stays up."""
    import sys

    monkeypatch.setenv("CNCF_MAX_ARG_DEPTH", "1000000")
    monkeypatch.setattr(sys, "getrecursionlimit", sys.getrecursionlimit)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        load(fhub, make(form, "deep"))
        load(fhub, make(form, "neighbour"))
        pid = fhub.inspect("neighbour")["health"]["pid"]
        assert fhub.call("neighbour.bump").value == 1
        depth = 600 if form == "jar" else 3000  # over the JVM host's 512; over CPython's decoder
        out = fhub.call("deep.echo", [nested(depth)], timeout=30)
        assert (out.observation.code, out.observation.stage) == ("arguments_too_large", "execute")
        assert fhub.call("neighbour.bump").value == 2
        assert fhub.inspect("neighbour")["health"]["pid"] == pid  # no host or worker restart
        assert fhub.call("deep.echo", ["fine"]).value == "fine"
    finally:
        sys.setrecursionlimit(old)


# ---------------------------------------------------------- case 2: numeric values

BAD_NUMBERS = [
    ("cancel_grace", math.nan),
    ("cancel_grace", math.inf),
    ("restart_backoff", math.nan),
    ("run_timeout", math.nan),
    ("wait_timeout", math.nan),
    ("restart_period", math.nan),
    ("run_timeout", math.inf),
    ("max_concurrency", 10**12),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("key", "value"), BAD_NUMBERS, ids=[f"{k}={v}" for k, v in BAD_NUMBERS])
def test_non_finite_policy_value_is_invalid_manifest(
    fhub: cncf.Hub, make: Maker, form: str, key: str, value: float
) -> None:
    extra: dict[str, Any] = {"policy": "concurrent"} if key == "max_concurrency" else {}
    folder = make(form, "numbers", **extra)
    text = (folder / "cncf.toml").read_text()
    literal = "nan" if math.isnan(value) else "inf" if math.isinf(value) else str(value)
    (folder / "cncf.toml").write_text(text + f"{key} = {literal}\n")
    handle = fhub.load(folder)
    obs = handle.observation
    assert handle.state == "failed" and (obs.code, obs.stage) == ("invalid_manifest", "load")
    assert obs.attributes["key"] == f"component.{key}"


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("memory_limit", "0", "component.memory_limit"),
        ("memory_limit", "9223372036854775808", "component.memory_limit"),
        ("memory_limit", 2**53, "component.memory_limit"),
        ("env", {"A=B": "x"}, "component.env.A=B"),
        ("env", {"A": "x\0y"}, "component.env.A"),
        ("name", "a.b", "component.name"),
        ("name", "a/b", "component.name"),
        ("name", "nul\0name", "component.name"),
        ("requirements", ["--target=/tmp/elsewhere", "six"], "component.requirements"),
        ("requirements", ["six\0"], "component.requirements"),
        ("requirements", ["-r other.txt"], "component.requirements"),
        ("artifact", "x\0y", "component.artifact"),
    ],
)
@pytest.mark.parametrize("form", PROCESS_FORMS)
def test_value_the_os_refuses_is_invalid_manifest_and_leaks_nothing(
    fhub: cncf.Hub,
    make: Maker,
    mark: str,
    form: str,
    key: str,
    value: Any,
    named: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # other hubs share /tmp
    handle = fhub.load(make(form, "bad"), **{key: value})
    obs = handle.observation
    assert handle.state == "failed" and (obs.code, obs.stage) == ("invalid_manifest", "load"), obs
    assert obs.attributes["key"] == named
    assert not marked(mark)  # no worker was started
    assert list(private.iterdir()) == []
    if key != "name":
        assert fhub.call(f"{handle.name}.echo").observation.code == "invalid_manifest"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'[component]\nname = "caf\xe9"\n', id="latin-1"),
        pytest.param('[component]\nname = "x"\n'.encode("utf-16"), id="utf-16"),
        pytest.param(b"x = " + b"[" * 2000 + b"]" * 2000 + b"\n", id="nested-2000"),
        pytest.param(b"x = " + b"{a=" * 2000 + b"1" + b"}" * 2000 + b"\n", id="tables-2000"),
    ],
)
def test_unreadable_manifest_is_a_failed_handle_never_an_exception(
    fhub: cncf.Hub, tmp_path: Path, content: bytes
) -> None:
    folder = tmp_path / "weird"
    folder.mkdir()
    (folder / "cncf.toml").write_bytes(content)
    handle = fhub.load(folder)
    assert handle.state == "failed"
    assert (handle.observation.code, handle.observation.stage) == ("invalid_manifest", "load")


@pytest.mark.parametrize("form", FORMS)
def test_env_must_be_a_table(fhub: cncf.Hub, make: Maker, form: str) -> None:
    folder = make(form, "envlist")
    text = (folder / "cncf.toml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("env ="))
    (folder / "cncf.toml").write_text(text + "\nenv = []\n")
    handle = fhub.load(folder)
    assert (handle.observation.code, handle.observation.attributes["key"]) == ("invalid_manifest", "component.env")


def test_call_timeout_nan_is_refused_at_dispatch(fhub: cncf.Hub, make: Maker) -> None:
    load(fhub, make("inline", "t"))
    for bad in (math.nan, math.inf, -1.0):
        out = fhub.call("t.echo", [1], timeout=bad)
        assert (out.observation.code, out.observation.stage) == ("invalid_policy", "dispatch")
    assert fhub.call("t.echo", [1], timeout=5).value == 1


# ------------------------------------------------------------ case 14: call ids


@pytest.mark.parametrize("form", FORMS)
def test_duplicate_call_id_is_an_observation_and_cancel_hits_the_first(fhome: Path, make: Maker, form: str) -> None:
    import asyncio

    folder = make(form, "dup", policy="concurrent", max_concurrency=4, cancel_grace=0.5)

    async def scenario() -> None:
        async with cncf.AsyncHub(home=fhome) as hub:
            assert (await hub.load(folder)).state == "ready"
            first = asyncio.ensure_future(hub.call("dup.nap", [20], call_id="same", timeout=60))
            await asyncio.sleep(0.5)
            second = await hub.call("dup.echo", [1], call_id="same")
            assert (second.observation.code, second.observation.stage) == ("call_id_in_use", "dispatch")
            assert hub.cancel("same")
            out = await asyncio.wait_for(first, 30)
            assert out.observation.code == "cancelled"  # the first call, not the refused one
            third = await hub.call("dup.echo", [3], call_id="same")  # free again once the first ended
            assert third.value == 3

    asyncio.run(scenario())

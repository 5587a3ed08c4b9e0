"""Lifecycle, the same for every form and door: ready after load, busy while a
call runs, a failed load that answers every call with its Observation, and an
unload (or close) that releases every process and temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

import cncf
from cncf import Code
from tests.contract.conftest import NAME, PLACED, PROMPT, Door, Form, Loader, descendants, pid_of, wait_until

pytestmark = pytest.mark.slow  # the jar form compiles its jar


def test_ready_after_load_and_state_lives_with_the_instance(hub: Door, load: Loader, form: Form) -> None:
    handle = load()
    assert (handle.name, handle.form, handle.state) == (NAME, form.name, "ready")
    assert [hub.call(f"{NAME}.increment", [by]).value for by in (2, 3)] == [2, 5]
    assert hub.call(f"{NAME}.default.get").value == 5
    assert hub.call("CONTRACT.Get").value == 5  # selectors ignore case
    assert handle.state == "ready"


def test_busy_while_a_call_runs_then_ready(hub: Door, load: Loader) -> None:
    handle = load()
    slow = hub.submit(f"{NAME}.sleep", [0.6])
    wait_until(lambda: handle.state == "busy", "the component is busy")
    out = slow.result(timeout=30)
    assert out.ok and out.value == "slept", out.observation
    assert handle.state == "ready"


def test_failed_load_gives_a_failed_handle_and_every_call_its_observation(hub: Door, form: Form) -> None:
    handle = hub.load(form.target, entry=form.broken_entry)
    assert handle.state == "failed"
    obs = handle.observation
    assert obs is not None
    assert (obs.code, obs.stage.value) == (Code.CONSTRUCTOR_FAILED, "instantiate")
    for selector in (f"{NAME}.get", f"{NAME}.increment", f"{NAME}.anything"):
        out = hub.call(selector, [1])
        assert not out.ok
        assert (out.observation.code, out.observation.stage) == (obs.code, obs.stage)
    again = hub.reload(NAME)  # retried on reload: fails the same way
    assert again.state == "failed" and again.observation.code is Code.CONSTRUCTOR_FAILED


def test_unload_releases_every_process_and_temporary_folder(
    hub: Door, load: Loader, form: Form, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    before = descendants()
    handle = load()
    assert hub.call(f"{NAME}.increment", [1]).value == 1
    pid = pid_of(hub)
    if form.process and not PLACED:  # a placed worker is the node's child, not ours
        assert pid is not None and pid in descendants() - before
    assert hub.unload(NAME)
    assert handle.state == "unloaded"
    assert descendants() <= before, "the component's processes outlive its unload"
    assert sorted(p.name for p in temp.iterdir()) == [], "temporary files outlive the unload"
    out = hub.call(f"{NAME}.get")
    assert out.observation.code is Code.UNKNOWN_COMPONENT and out.observation.stage.value == "dispatch"
    again = load()  # a fresh instance under the same name
    assert again.state == "ready" and hub.call(f"{NAME}.get").value == 0


def test_close_ends_a_running_call_and_releases_everything(
    hub: Door, load: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    before = descendants()
    load()
    running = hub.submit(f"{NAME}.sleep", [8.0])
    wait_until(lambda: hub.inspect(NAME)["calls"]["running"] == 1, "the call runs")
    hub.close()
    out = running.result(timeout=PROMPT * 5)
    assert isinstance(out, cncf.Outcome) and not out.ok
    assert out.observation.code is Code.HUB_CLOSED
    assert descendants() <= before
    assert sorted(p.name for p in temp.iterdir()) == []
    assert hub.call(f"{NAME}.get").observation.code is Code.HUB_CLOSED

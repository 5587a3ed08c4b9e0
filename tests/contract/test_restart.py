"""Crash and restart, the same for every form whose component lives in a
process of its own (an ``inline`` component shares the hub's process: it has
no process to lose, so it is the one documented skip): the crash is an
Observation, ``restart = "on-failure"`` serves the next call from a fresh
instance, ``restart = "never"`` stays crashed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from cncf import Code
from tests.contract.conftest import (
    NAME,
    NODE_WORKER,
    Door,
    Form,
    Loader,
    pid_of,
    running,
    wait_until,
    waiting,
    write_manifest,
)

pytestmark = pytest.mark.slow  # the jar form compiles its jar


@pytest.fixture
def crashable(form: Form) -> Form:
    if not form.process:
        pytest.skip("the inline form has no process of its own: nothing to crash")
    return form


def test_a_crash_is_an_observation_and_on_failure_serves_the_next_call_fresh(
    hub: Door, load: Loader, crashable: Form
) -> None:
    handle = load(restart="on-failure")
    assert hub.call(f"{NAME}.increment", [5]).value == 5
    pid = pid_of(hub)
    out = hub.call(f"{NAME}.crash")
    assert not out.ok
    assert (out.observation.code, out.observation.stage.value) == (Code.WORKER_CRASHED, "execute")
    # it started and may have had its effect: not retryable, as it is not declared idempotent
    assert (out.observation.attributes["started"], out.observation.attributes["completed"]) == (True, False)
    assert not out.observation.retryable
    assert handle.state == "crashed"
    assert hub.call(f"{NAME}.get").value == 0  # a fresh instance
    assert handle.state == "ready" and handle.restarts == 1
    assert pid_of(hub) not in (None, pid)
    assert hub.call(f"{NAME}.increment", [2]).value == 2


def test_the_calls_waiting_behind_a_crash_are_served_by_the_restarted_instance(
    hub: Door, load: Loader, crashable: Form
) -> None:
    handle = load(restart="on-failure")
    holder = hub.submit(f"{NAME}.sleep", [0.5])
    wait_until(lambda: running(hub) == 1, "the first call runs")
    crash = hub.submit(f"{NAME}.crash")
    wait_until(lambda: waiting(hub) == 1, "the crash call waits")
    waiters = [hub.submit(f"{NAME}.increment", [1]) for _ in range(3)]
    wait_until(lambda: waiting(hub) == 4, "every call waits")
    assert holder.result(timeout=30).value == "slept"
    assert crash.result(timeout=30).observation.code is Code.WORKER_CRASHED
    # The restart policy allows a restart: the waiters keep their place in line.
    assert sorted(w.result(timeout=30).value for w in waiters) == [1, 2, 3]
    assert hub.call(f"{NAME}.get").value == 3
    assert handle.restarts == 1


def test_a_crash_wakes_the_waiting_calls_when_there_is_no_restart(hub: Door, load: Loader, crashable: Form) -> None:
    load(restart="never")
    holder = hub.submit(f"{NAME}.sleep", [0.5])
    wait_until(lambda: running(hub) == 1, "the first call runs")
    crash = hub.submit(f"{NAME}.crash")
    wait_until(lambda: waiting(hub) == 1, "the crash call waits")
    waiters = [hub.submit(f"{NAME}.increment", [1]) for _ in range(3)]
    wait_until(lambda: waiting(hub) == 4, "every call waits")
    assert holder.result(timeout=30).value == "slept"
    assert crash.result(timeout=30).observation.code is Code.WORKER_CRASHED
    for w in waiters:
        out = w.result(timeout=30)
        # style rule 7: an instance that will not come back wakes every waiter with an Observation
        assert not out.ok, "a call that waited behind the crash was served instead of woken"
        assert (out.observation.code, out.observation.stage.value) == (Code.INSTANCE_LOST_WAITING, "wait")


def test_restart_never_stays_crashed(hub: Door, load: Loader, crashable: Form) -> None:
    handle = load(restart="never")
    out = hub.call(f"{NAME}.crash")
    assert (out.observation.code, out.observation.stage.value) == (Code.WORKER_CRASHED, "execute")
    for _ in range(2):
        again = hub.call(f"{NAME}.get")
        assert not again.ok
        assert again.observation.code is Code.COMPONENT_UNAVAILABLE
    assert handle.state == "crashed" and handle.restarts == 0


def _startable(folder: Path, form: Form) -> tuple[dict[str, Any], Path]:
    """Manifest keys whose worker starts only while ``folder/go`` exists (a
    start failure is ``worker_start_failed``: retryable), and that file."""
    go = folder / "go"
    wrapper = folder / "start"
    if form.name == "python":
        exe, keys = sys.executable, {"interpreter": str(wrapper)}
    elif form.name == "command":
        exe, keys = "node", {"command": [str(wrapper), str(NODE_WORKER)]}
    else:
        pytest.skip(f"the {form.name} form's worker start cannot be wrapped (a shared interpreter or JVM host)")
    folder.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\n[ -e "{go}" ] || exit 3\nexec {exe} "$@"\n')
    wrapper.chmod(0o755)
    return keys, go


def test_a_restart_that_fails_retryably_stays_a_restart_and_recovers_once_the_cause_is_gone(
    hub: Door, crashable: Form, tmp_path: Path
) -> None:
    keys, go = _startable(tmp_path / "c", crashable)
    go.touch()
    handle = hub.load(
        write_manifest(tmp_path / "c", crashable, {**keys, "restart": "on-failure", "restart_backoff": 0.05}).parent
    )
    assert handle.state == "ready", handle.observation
    assert hub.call(f"{NAME}.increment", [2]).value == 2
    go.unlink()  # from now on the worker cannot start
    assert hub.call(f"{NAME}.crash").observation.code is Code.WORKER_CRASHED
    out = hub.call(f"{NAME}.get")
    assert (out.observation.code, out.observation.stage.value) == (Code.WORKER_START_FAILED, "load")
    assert out.observation.retryable
    assert handle.state == "crashed"  # still restartable, not failed
    go.touch()  # the cause is gone
    assert hub.call(f"{NAME}.get").value == 0  # a fresh instance
    assert handle.state == "ready" and handle.restarts == 2


def test_a_restart_that_keeps_failing_is_failed_at_the_intensity_limit(
    hub: Door, crashable: Form, tmp_path: Path
) -> None:
    keys, go = _startable(tmp_path / "c", crashable)
    go.touch()
    manifest = write_manifest(
        tmp_path / "c", crashable, {**keys, "restart": "on-failure", "restart_backoff": 0.05, "max_restarts": 2}
    )
    handle = hub.load(manifest.parent)
    assert handle.state == "ready", handle.observation
    go.unlink()
    assert hub.call(f"{NAME}.crash").observation.code is Code.WORKER_CRASHED
    assert hub.call(f"{NAME}.get").observation.code is Code.WORKER_START_FAILED  # restart 1 of 2
    assert handle.state == "crashed"
    assert hub.call(f"{NAME}.get").observation.code is Code.WORKER_START_FAILED  # restart 2 of 2
    assert handle.state == "failed"
    go.touch()
    assert hub.call(f"{NAME}.get").observation.code is Code.WORKER_START_FAILED  # failed stays failed


def test_a_crash_under_an_idempotent_operation_is_retryable(hub: Door, load: Loader, crashable: Form) -> None:
    """Brief section 14: a call that may have started is ``retryable`` only when
    its operation is declared ``idempotent`` — for a crash as for a timeout."""
    load(restart="on-failure", idempotent=True)
    out = hub.call(f"{NAME}.crash")
    assert (out.observation.code, out.observation.stage.value) == (Code.WORKER_CRASHED, "execute")
    assert out.observation.attributes["started"] is True and out.observation.retryable
    assert hub.call(f"{NAME}.increment", [2]).value == 2

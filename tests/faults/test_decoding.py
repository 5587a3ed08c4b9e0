"""Hub-side decoding never escapes (issue 16, item 5).

What a worker sends — a reply nested far deeper than the hub decodes, an event
frame nested 100,000 deep ahead of a good reply, ``NaN`` or ``Infinity``
forged into a RESULT — is an Observation for that call alone: the worker's
other calls and its neighbours carry on, and no byte of a refused frame is
left for the next one.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

import cncf
from tests.faults.conftest import FIXTURES, Maker, load


def raw_component(tmp_path: Path, name: str = "raw") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(FIXTURES / "raw_worker.py", folder / "raw_worker.py")
    (folder / "cncf.toml").write_text(
        f'[component]\nname = "{name}"\nform = "command"\ncommand = [{json.dumps(sys.executable)}, "raw_worker.py"]\n'
    )
    return folder


def test_deep_result_of_a_python_component_is_an_observation_for_that_call(fhub: cncf.Hub, make: Maker) -> None:
    load(fhub, make("python", "deep"))
    load(fhub, make("python", "neighbour"))
    started = time.monotonic()
    out = fhub.call("deep.deep", [3000], timeout=30)
    assert time.monotonic() - started < 20
    assert out.observation is not None
    assert (out.observation.code, out.observation.stage) == ("result_not_serialisable", "execute")
    assert fhub.call("deep.deep", [3]).value == [[[1]]]  # the same worker answers the next call
    assert fhub.call("neighbour.bump").value == 1


@pytest.mark.parametrize("operation", ["deep_result", "nan", "infinity", "deep_id_last", "deep_no_id"])
def test_forged_result_is_an_observation_and_the_worker_reads_on(
    fhub: cncf.Hub, tmp_path: Path, operation: str
) -> None:
    load(fhub, raw_component(tmp_path))
    out = fhub.call(f"raw.{operation}", timeout=20)
    assert out.observation is not None, out.value
    if operation == "deep_no_id":  # no id at either end: the reply is unmatched, the worker is broken
        assert out.observation.code == "protocol_error"
        return
    assert (out.observation.code, out.observation.stage) == ("result_not_serialisable", "execute")
    again = fhub.call("raw.ok", timeout=20)
    assert again.value == "fine", again.observation  # nothing of the refused frame was left behind


def test_deep_event_before_a_good_result_is_dropped(fhub: cncf.Hub, tmp_path: Path) -> None:
    load(fhub, raw_component(tmp_path))
    out = fhub.call("raw.deep_event", timeout=20)
    assert out.value == "after the event", out.observation
    assert fhub.call("raw.ok", timeout=20).value == "fine"


def test_nan_result_never_renders_as_invalid_json(tmp_path: Path) -> None:
    """The CLI's --json answer is always JSON a strict parser accepts."""
    import subprocess

    folder = raw_component(tmp_path)
    env = {**__import__("os").environ, "CNCF_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "cncf", "call", str(folder), "nan", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )

    def refuse(c: str) -> None:
        raise ValueError(c)

    answer = json.loads(proc.stdout, parse_constant=refuse)
    assert answer["ok"] is False
    assert answer["observation"]["code"] == "result_not_serialisable"


def test_init_nested_100000_deep_is_invalid_manifest(fhub: cncf.Hub, make: Maker) -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    handle = fhub.load(make("python", "deepinit"), init=deep)
    assert handle.state == "failed"
    assert (handle.observation.code, handle.observation.attributes["key"]) == ("invalid_manifest", "component.init")


def test_timeout_no_float_can_hold_is_invalid_policy(fhub: cncf.Hub, make: Maker) -> None:
    load(fhub, make("inline", "t"))
    out = fhub.call("t.bump", timeout=10**400)
    assert out.observation is not None
    assert (out.observation.code, out.observation.stage) == ("invalid_policy", "dispatch")
    assert fhub.call("t.bump").value == 1

"""The fault matrix: every failure kind x every Python artifact kind.

Each row asserts the Observation's ``code`` and ``stage`` (never message
text), that a neighbour component keeps answering with its state intact, and
for execute-stage faults that the next call is served (by a restarted
instance where the fault killed the worker).
"""

from __future__ import annotations

import signal
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cncf
from tests.python_form.conftest import FIXTURES, KINDS, Builder, artifact_for, pypy

ENTRY = "faulty:Faulty"
SUFFIX = {"folder": "", "pyz": ".pyz", "shiv": ".pyz", "pex": ".pex", "wheel": ".whl"}


def _load(hub: cncf.Hub, builder: Builder, kind: str, **extra: Any) -> cncf.ComponentHandle:
    path, overrides = artifact_for(builder, kind, "faulty", ENTRY)
    return hub.load(path, name="faulty", **overrides, **extra)


# ---------------------------------------------------------------------------
# Load and instantiate stages
# ---------------------------------------------------------------------------

LOAD_FAULTS = {
    # fault: (FAULTY_AT, code, stage)
    "import_error": ("import", "import_failed", "load"),
    "missing_dependency": ("dependency", "dependency_unresolved", "load"),
    "exit_at_import": ("import_exit", "exit_requested", "load"),
    "constructor_raises": ("constructor", "constructor_failed", "instantiate"),
    "crash_at_import": ("import_crash", "worker_crashed", "load"),
    "crash_in_constructor": ("constructor_crash", "worker_crashed", "instantiate"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", sorted(LOAD_FAULTS))
def test_load_fault(pyhub: cncf.Hub, builder: Builder, neighbour: Callable[[], None], kind: str, fault: str) -> None:
    at, code, stage = LOAD_FAULTS[fault]
    handle = _load(pyhub, builder, kind, env={"FAULTY_AT": at}, restart="never")
    assert handle.state == "failed"
    assert handle.observation is not None
    assert (handle.observation.code, handle.observation.stage) == (code, stage)
    out = pyhub.call("faulty.ping", timeout=10)
    assert not out.ok
    assert out.observation.code == code
    neighbour()


@pytest.mark.parametrize("kind", KINDS)
def test_missing_artifact(pyhub: cncf.Hub, tmp_path: Path, neighbour: Callable[[], None], kind: str) -> None:
    handle = pyhub.load(tmp_path / f"nowhere{SUFFIX[kind]}", name="faulty", entry=ENTRY)
    assert handle.state == "failed"
    assert (handle.observation.code, handle.observation.stage) == ("artifact_not_found", "load")
    neighbour()


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
@pytest.mark.parametrize("kind", [k for k in KINDS if k != "folder"])  # a folder is no archive
def test_corrupt_artifact(
    pyhub: cncf.Hub, builder: Builder, tmp_path: Path, neighbour: Callable[[], None], kind: str, damage: str
) -> None:
    good, overrides = artifact_for(builder, kind, "faulty", ENTRY)
    bad = tmp_path / good.name
    data = bytearray(good.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2 :]
    else:  # damage the stored members, keep the central directory intact
        with zipfile.ZipFile(good) as zf:
            member = max(zf.infolist(), key=lambda i: i.compress_size)
        start = member.header_offset + 30 + len(member.filename) + len(member.extra)
        for i in range(start + 10, start + 20):
            data[i] ^= 0xFF
    bad.write_bytes(bytes(data))
    handle = pyhub.load(bad, name="faulty", **{"entry": ENTRY, **overrides})
    assert handle.state == "failed"
    assert (handle.observation.code, handle.observation.stage) == ("invalid_archive", "load")
    neighbour()


# ---------------------------------------------------------------------------
# Execute stage
# ---------------------------------------------------------------------------

EXECUTE_FAULTS: dict[str, tuple[str, str | None, bool | None]] = {
    # operation: (code, the value when it succeeds, does the instance change?)
    # out_of_memory: the worker survives its MemoryError, but the engine may
    # replace an instance whose memory ran out: either is right.
    "boom": ("raised", None, False),
    "exit": ("exit_requested", None, False),
    "hard_exit": ("worker_crashed", None, True),
    "segfault": ("worker_crashed", None, True),
    "loop": ("timed_out", None, True),
    "blowup": ("out_of_memory", None, None),
    "unencodable": ("result_not_serialisable", None, False),
    "close_channel": ("worker_crashed", None, True),
    "recurse": ("stack_overflow", None, False),
    "garbage": ("", "still fine", False),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("operation", list(EXECUTE_FAULTS))
def test_execute_fault(
    pyhub: cncf.Hub, builder: Builder, neighbour: Callable[[], None], kind: str, operation: str
) -> None:
    code, value, dies = EXECUTE_FAULTS[operation]
    handle = _load(
        pyhub,
        builder,
        kind,
        memory_limit="512MB",
        run_timeout=1.0 if operation == "loop" else 15.0,
        cancel_grace=0.3,
        restart="on-failure",
    )
    assert handle.state == "ready", handle.observation
    before = pyhub.call("faulty.ping", timeout=10)
    assert before.ok, before.observation
    out = pyhub.call(f"faulty.{operation}", timeout=20)
    if value is not None:
        assert out.ok, out.observation
        assert out.value == value
        assert "not a frame" in out.stdout
    else:
        assert not out.ok
        assert (out.observation.code, out.observation.stage) == (code, "execute")
    neighbour()
    after = pyhub.call("faulty.ping", timeout=20)
    assert after.ok, after.observation
    if dies:
        assert after.value["pid"] != before.value["pid"]  # a restarted instance
        assert after.value["calls"] == 1
    elif dies is False:
        assert after.value["pid"] == before.value["pid"]  # the worker survived
        assert after.value["calls"] == 2
    if operation == "segfault":
        assert out.observation.attributes.get("signal") == signal.SIGSEGV
    if operation == "hard_exit":
        assert out.observation.attributes.get("exit_code") == 9
    if operation == "boom":
        cause = out.observation.cause
        assert cause is not None and cause.type == "ValueError"
        assert cause.cause is not None and cause.cause.type == "KeyError"
        assert "faulty.py" in cause.stack


# ---------------------------------------------------------------------------
# The same execute faults on PyPy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("operation", list(EXECUTE_FAULTS))
def test_execute_fault_on_pypy(pyhub: cncf.Hub, neighbour: Callable[[], None], operation: str) -> None:
    pypy()
    code, value, dies = EXECUTE_FAULTS[operation]
    handle = pyhub.load(
        FIXTURES / "faulty",
        name="faulty",
        entry=ENTRY,
        interpreter="pypy3",
        memory_limit="1GB",
        run_timeout=1.0 if operation == "loop" else 15.0,
        cancel_grace=0.3,
    )
    assert handle.state == "ready", handle.observation
    before = pyhub.call("faulty.ping", timeout=10)
    out = pyhub.call(f"faulty.{operation}", timeout=20)
    if value is not None:
        assert out.ok and out.value == value, out.observation
    else:
        assert (out.observation.code, out.observation.stage) == (code, "execute")
    neighbour()
    after = pyhub.call("faulty.ping", timeout=20)
    assert after.ok, after.observation
    if dies is not None:
        assert (after.value["pid"] != before.value["pid"]) is dies

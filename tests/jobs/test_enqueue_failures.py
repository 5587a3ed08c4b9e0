"""Enqueue failures are Observations of the job stage, returned at once:
nothing is stored, nothing runs, and the hub goes on."""

from __future__ import annotations

import math
from pathlib import Path

import cncf

from ._util import WORKER, read_only


def _enqueue_failed(out: cncf.Outcome, reason: str) -> None:
    assert not out.ok and out.job_id is None
    assert out.observation.code is cncf.Code.ENQUEUE_FAILED
    assert out.observation.stage is cncf.Stage.JOB
    assert out.observation.attributes["reason"] == reason


def test_payload_that_is_not_json(hub: cncf.Hub) -> None:
    _enqueue_failed(hub.call("worker.add", [object(), 1]), "payload_not_encodable")
    _enqueue_failed(hub.call("worker.add", [math.nan, 1]), "payload_not_encodable")
    _enqueue_failed(hub.call("worker.add", {"a": {1, 2}, "b": 1}), "payload_not_encodable")
    assert hub.jobs() == []
    assert hub.wait(hub.call("worker.add", [1, 2]).job_id, 5).value == 3  # the next one is fine


def test_read_only_home_before_the_store_exists(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with read_only(home), cncf.Hub(home=home) as hub:
        handle = hub.load(WORKER)
        assert handle.state == "ready"  # the component loads; only its jobs cannot be stored
        _enqueue_failed(hub.call("worker.add", [1, 2]), "store_not_writable")
        assert hub.jobs() == []
        assert hub.call("worker.direct", [1]).value == 1  # non-queue calls are unaffected


def test_store_becomes_writable_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with cncf.Hub(home=home) as hub:
        with read_only(home):
            hub.load(WORKER)
            assert hub.call("worker.add", [1, 2]).observation.code is cncf.Code.ENQUEUE_FAILED
        out = hub.call("worker.add", [1, 2])  # the store is opened on the next enqueue
        assert out.ok and hub.wait(out.job_id, 5).value == 3


def test_home_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with cncf.Hub(home=blocker / "home") as hub:
        hub.load(WORKER)
        out = hub.call("worker.add", [1, 2])
        assert out.observation.code is cncf.Code.ENQUEUE_FAILED
        assert out.observation.attributes["reason"] == "store_not_writable"


def test_disk_full(hub: cncf.Hub) -> None:
    # SQLite's page limit gives the real SQLITE_FULL path without filling a disk.
    store = hub.aio._jobs.store
    store._wdb.execute("PRAGMA max_page_count=" + str(store._wdb.execute("PRAGMA page_count").fetchone()[0]))
    big = "x" * 200_000
    _enqueue_failed(hub.call("worker.add", [big, big]), "disk_full")
    store._wdb.execute("PRAGMA max_page_count=1073741823")
    out = hub.call("worker.add", ["a", "b"])
    assert hub.wait(out.job_id, 5).value == "ab"
    assert len(hub.jobs()) == 1


def test_closed_hub_refuses_jobs(home: Path) -> None:
    hub = cncf.Hub(home=home)
    hub.load(WORKER)
    hub.close()
    assert hub.call("worker.add", [1, 2]).observation.code is cncf.Code.HUB_CLOSED

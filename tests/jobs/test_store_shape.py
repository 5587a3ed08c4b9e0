"""A job store that is not this hub's store is ``job_store_corrupt``, never "no jobs":
a directory at the store's path, another program's SQLite database, a store of
another schema version.  The hub names the file and keeps serving other calls."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import cncf

SRC = Path(__file__).resolve().parents[2] / "src"


def _queued(tmp_path: Path) -> Path:
    queued = tmp_path / "queued"
    queued.mkdir()
    (queued / "q_mod.py").write_text("def add(a, b):\n    return a + b\n")
    (queued / "cncf.toml").write_text('[component]\nname = "q"\nform = "inline"\nentry = "q_mod"\npolicy = "queue"\n')
    return queued


def _directory(store: Path) -> None:
    store.mkdir()
    (store / "inside").write_text("x")


def _foreign(store: Path) -> None:
    db = sqlite3.connect(store)
    db.execute("CREATE TABLE jobs (id TEXT, payload BLOB)")
    db.execute("INSERT INTO jobs VALUES ('j-1', x'00')")
    db.commit()
    db.close()


def _newer(store: Path) -> None:
    with cncf.Hub(home=store.parent) as hub:
        hub.load(_queued(store.parent.parent), name="q")
        assert hub.wait(hub.call("q.add", [1, 2]).job_id, 30).value == 3
    db = sqlite3.connect(store)
    db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.commit()
    db.close()


@pytest.mark.parametrize("make", [_directory, _foreign, _newer], ids=["directory", "foreign_schema", "newer_version"])
def test_a_store_that_is_not_ours_is_job_store_corrupt(tmp_path: Path, make) -> None:
    home = tmp_path / "home"
    home.mkdir()
    store = home / "jobs.sqlite3"
    make(store)
    queued = tmp_path / "queued"
    if not queued.exists():
        _queued(tmp_path)
    with cncf.Hub(home=home) as hub:
        with pytest.raises(cncf.ObservationError) as info:
            hub.jobs()
        obs = info.value.observation
        assert (obs.code, obs.stage) == ("job_store_corrupt", "job")
        assert obs.attributes["file"] == str(store)
        assert hub.load(queued, name="q").state == "ready"
        out = hub.call("q.add", [1, 2])
        assert (out.observation.code, out.observation.attributes["reason"]) == ("enqueue_failed", "store_corrupt")
        other = tmp_path / "other"
        other.mkdir()
        (other / "o_mod.py").write_text("def ping():\n    return 'pong'\n")
        assert hub.load(other, form="inline", entry="o_mod", name="o").state == "ready"
        assert hub.call("o.ping").value == "pong"
    # nothing was written into what is not our store
    assert store.is_dir() if make is _directory else store.is_file()
    r = subprocess.run(
        [sys.executable, "-m", "cncf", "jobs", "list", "--json", "--home", str(home)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert r.returncode == 1 and '"job_store_corrupt"' in r.stdout, r.stdout + r.stderr


def test_a_store_another_writer_holds_past_the_wait_is_unavailable_never_empty(tmp_path: Path) -> None:
    """Was ``[]``: a hub that could not open the store (another process held its
    write lock longer than the 5 s busy wait) listed no jobs; it is now
    ``job_store_unavailable`` (retryable), and the next read opens the store."""
    home = tmp_path / "home"
    queued = _queued(tmp_path)
    with cncf.Hub(home=home) as hub:
        hub.load(queued, name="q")
        job_id = hub.call("q.add", [1, 2]).job_id
        assert hub.wait(job_id, 30).value == 3
    holder = sqlite3.connect(home / "jobs.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with cncf.Hub(home=home) as hub:
            with pytest.raises(cncf.jobs.JobStoreUnavailable) as info:
                hub.jobs()
            obs = info.value.observation
            assert (obs.code, obs.stage, obs.retryable) == ("job_store_unavailable", "job", True)
            assert obs.attributes["reason"] == "store_busy"
            holder.execute("COMMIT")
            assert [j.id for j in hub.jobs()] == [job_id]
    finally:
        holder.close()

"""Cases 8, 10, 11, 15: archives, the job store, the environment, private files.

A zip bomb or a zip slip is refused as an archive code before anything is
written; a corrupt job store is an error naming the file (never "no jobs");
a worker sees an allow-list of the hub's environment plus its manifest's
``env``, jars included, ``LD_*`` only when the hub allows it; the hub's files
are its user's alone; an idempotency key reused for another request is an
Observation.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import cncf
from tests.faults.conftest import FORMS, PROCESS_FORMS, Maker, load

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(cncf.__file__).resolve().parents[1]  # the code under test, for hub subprocesses


# ------------------------------------------------------------ case 8: archives


def _bomb(path: Path, members: dict[str, int]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__main__.py", "print('hi')\n")
        for name, size in members.items():
            with zf.open(name, "w", force_zip64=True) as f:
                chunk = b"\0" * (1 << 20)
                for _ in range(size >> 20):
                    f.write(chunk)
    return path


@pytest.mark.parametrize("kind", ["pyz", "wheel"])
def test_zip_bomb_is_refused_before_extraction(
    fhub: cncf.Hub, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNCF_MAX_ARCHIVE_BYTES", "64M")
    if kind == "pyz":
        art = _bomb(tmp_path / "bomb.pyz", {"bomb/__init__.py": 100 << 20})
    else:
        art = _bomb(
            tmp_path / "bomb-1.0-py3-none-any.whl", {"bomb/__init__.py": 100 << 20, "bomb-1.0.dist-info/METADATA": 0}
        )
    assert art.stat().st_size < 1 << 20  # ~100 KB declaring 100 MB
    handle = fhub.load(art, name="bomb", entry="bomb")
    assert (handle.observation.code, handle.observation.stage) == ("archive_too_large", "load")
    cache = fhub.home / "cache"
    assert not any(
        p.is_file() and p.stat().st_size > 1 << 20
        for p in cache.rglob("*")
        if not p.is_symlink() and "jvm" not in p.parts
    )


def test_zip_slip_is_an_archive_code(fhub: cncf.Hub, tmp_path: Path) -> None:
    art = tmp_path / "slip.pyz"
    with zipfile.ZipFile(art, "w") as zf:
        zf.writestr("__main__.py", "")
        zf.writestr("../../escaped.py", "x = 1\n")
    handle = fhub.load(art, name="slip", entry="escaped")
    obs = handle.observation
    assert (obs.code, obs.stage, obs.retryable) == ("invalid_archive", "load", False)


def test_too_many_members_is_archive_too_large(fhub: cncf.Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNCF_MAX_ARCHIVE_FILES", "50")
    art = tmp_path / "many.pyz"
    with zipfile.ZipFile(art, "w") as zf:
        for i in range(60):
            zf.writestr(f"m{i}.py", "")
    assert fhub.load(art, name="many", entry="m1").observation.code == "archive_too_large"


# ----------------------------------------------------------- case 10: job store


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 3 or 100])
    elif how == "garbage_header":
        path.write_bytes(b"this is not sqlite!!" + os.urandom(80) + data[100:])
    else:
        page = 4096
        path.write_bytes(data[:page] + os.urandom(max(len(data) - page, page)))


@pytest.mark.parametrize("how", ["truncated", "garbage_header", "garbage_pages"])
def test_corrupt_store_is_an_error_naming_the_file(tmp_path: Path, how: str) -> None:
    home = tmp_path / "home"
    queued = tmp_path / "queued"
    queued.mkdir()
    (queued / "q_mod.py").write_text("def add(a, b):\n    return a + b\n")
    (queued / "cncf.toml").write_text('[component]\nname = "q"\nform = "inline"\nentry = "q_mod"\npolicy = "queue"\n')
    with cncf.Hub(home=home) as hub:
        load(hub, queued)
        for i in range(30):
            assert hub.wait(hub.call("q.add", [i, i]).job_id, 30).value == 2 * i
    for suffix in ("-wal", "-shm"):
        (home / f"jobs.sqlite3{suffix}").unlink(missing_ok=True)
    _corrupt(home / "jobs.sqlite3", how)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    r = subprocess.run(
        [sys.executable, "-m", "cncf", "jobs", "list", "--json", "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 1 and '"job_store_corrupt"' in r.stdout, r.stdout + r.stderr
    assert str(home / "jobs.sqlite3") in r.stdout
    with cncf.Hub(home=home) as hub:
        with pytest.raises(cncf.ObservationError) as info:
            hub.jobs()
        assert info.value.observation.code == "job_store_corrupt"
        load(hub, queued)
        out = hub.call("q.add", [1, 2])
        assert (out.observation.code, out.observation.stage) == ("enqueue_failed", "job")
        assert out.observation.attributes["reason"] == "store_corrupt"
        other = tmp_path / "other"
        other.mkdir()
        (other / "o_mod.py").write_text("def ping():\n    return 'pong'\n")
        assert hub.load(other, form="inline", entry="o_mod", name="o").state == "ready"
        assert hub.call("o.ping").value == "pong"  # the hub keeps serving other calls


def test_idempotency_key_reused_for_other_arguments_is_an_observation(fhub: cncf.Hub, tmp_path: Path) -> None:
    queued = tmp_path / "idem"
    queued.mkdir()
    (queued / "i_mod.py").write_text("def add(a, b):\n    return a + b\n")
    (queued / "cncf.toml").write_text(
        '[component]\nname = "idem"\nform = "inline"\nentry = "i_mod"\npolicy = "queue"\n'
    )
    load(fhub, queued)
    first = fhub.call("idem.add", [1, 2], idempotency_key="k")
    again = fhub.call("idem.add", [1, 2], idempotency_key="k")
    assert again.job_id == first.job_id
    other = fhub.call("idem.add", [5, 5], idempotency_key="k")
    assert (other.observation.code, other.observation.stage) == ("idempotency_conflict", "job")
    assert other.observation.attributes["job_id"] == first.job_id
    assert fhub.wait(first.job_id, 30).value == 3


# ---------------------------------------------------------- case 11: environment


@pytest.mark.parametrize("form", PROCESS_FORMS)
def test_hub_secrets_do_not_reach_a_component(
    fhub: cncf.Hub, make: Maker, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_SECRET_TOKEN", "s3cr3t")
    load(fhub, make(form, "curious", env={"GIVEN": "yes"}))
    assert fhub.call("curious.env", ["HUB_SECRET_TOKEN"]).value is None
    assert fhub.call("curious.env", ["GIVEN"]).value == "yes"  # manifest env applies, jars included
    assert fhub.call("curious.env", ["PATH"]).value
    load(fhub, make(form, "trusting", inherit_env=True))
    assert fhub.call("trusting.env", ["HUB_SECRET_TOKEN"]).value == "s3cr3t"


@pytest.mark.parametrize("form", PROCESS_FORMS)
def test_loader_variables_only_when_the_hub_allows(fhome: Path, make: Maker, form: str) -> None:
    folder = make(form, "preload", env={"LD_PRELOAD": "/nonexistent/evil.so"})
    with cncf.Hub(home=fhome) as hub:
        handle = hub.load(folder)
        assert (handle.observation.code, handle.observation.attributes["key"]) == (
            "invalid_manifest",
            "component.env.LD_PRELOAD",
        )
    with cncf.Hub(home=fhome, allow_loader_env=True) as hub:
        assert hub.load(folder).state == "ready"
        assert hub.call("preload.env", ["LD_PRELOAD"]).value == "/nonexistent/evil.so"


# ------------------------------------------------------- case 15: private files


def test_home_store_and_caches_are_private(tmp_path: Path, make: Maker) -> None:
    old = os.umask(0o022)
    try:
        home = tmp_path / "fresh" / "home"
        with cncf.Hub(home=home) as hub:
            art = tmp_path / "app.pyz"
            with zipfile.ZipFile(art, "w") as zf:
                zf.writestr("app_mod.py", "def hi():\n    return 'hi'\n")
            load(hub, art, name="app", entry="app_mod")
            q = make("inline", "pq", policy="queue")
            load(hub, q)
            assert hub.wait(hub.call("pq.echo", [1]).job_id, 30).value == 1
        mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
        assert mode(home) == 0o700
        assert mode(home / "jobs.sqlite3") == 0o600
        assert mode(home / "cache") == 0o700 and mode(home / "cache" / "zipapps") == 0o700
    finally:
        os.umask(old)


@pytest.mark.parametrize("form", FORMS)
def test_names_that_cannot_be_called_are_refused(fhub: cncf.Hub, make: Maker, form: str) -> None:
    folder = make(form, "named")
    for bad in ("a.b", "a/b"):
        handle = fhub.load(folder, name=bad)
        assert (handle.observation.code, handle.observation.attributes["key"]) == ("invalid_manifest", "component.name")

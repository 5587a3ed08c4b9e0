"""The environment build obeys the trust rules (issue 16, item 4).

A real sdist is made at test time whose in-tree build backend records what
it can see (the environment, its PID namespace) or hangs with a child; it is
served by a loopback ``http.server`` (no network) or named by a file URL.
"""

from __future__ import annotations

import http.server
import io
import os
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cncf
from tests.conftest import require_tool

SECRET = "AKIA-cncf-test-secret-" + uuid.uuid4().hex

BACKEND = """
import base64, hashlib, io, json, os, subprocess, sys, time, zipfile

RECORD_TO = {record!r}
MODE = {mode!r}
MARK = {mark!r}

def _see():
    ns = os.readlink("/proc/self/ns/pid")
    with open(RECORD_TO, "w") as f:
        json.dump({{"env": dict(os.environ), "pid_ns": ns, "pid": os.getpid()}}, f)

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _see()
    if MODE == "hang":
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", MARK], start_new_session=True)
        time.sleep(600)
    name = "{dist}-1.0-py3-none-any.whl"
    files = {{
        "{dist}/__init__.py": b"def hello():\\n    return 'built'\\n",
        "{dist}-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: {dist}\\nVersion: 1.0\\n",
        "{dist}-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
        ),
    }}
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
        record.append("{dist}-1.0.dist-info/RECORD,,")
        zf.writestr("{dist}-1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
"""


def make_sdist(where: Path, dist: str, record: Path, mode: str = "record", mark: str = "") -> Path:
    files = {
        "pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
            f'[project]\nname = "{dist}"\nversion = "1.0"\n'
        ),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n",
        "backend.py": BACKEND.format(record=str(record), mode=mode, mark=mark, dist=dist),
    }
    sdist = where / f"{dist}-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{dist}-1.0/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return sdist


def component(tmp_path: Path, name: str, requirement: str, **extra: Any) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}_mod.py").write_text("class C:\n    def hi(self):\n        return 'hi'\n")
    lines = [
        "[component]",
        f'name = "{name}"',
        'form = "python"',
        f'entry = "{name}_mod:C"',
        f"requirements = [{requirement!r}]".replace("'", '"'),
        *(f"{k} = {v}" for k, v in extra.items()),
    ]
    (folder / "cncf.toml").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback http.server over tmp_path/www: (base URL, paths requested)."""
    root = tmp_path / "www"
    root.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a: Any) -> None:
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def private_uv_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A uv cache of the test's own: a wheel built by an earlier run is never reused."""
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


def with_mark(mark: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_direct_url_in_a_downloaded_manifest_is_refused(tmp_path: Path, served: tuple[str, list[str]]) -> None:
    url, seen = served
    make_sdist(tmp_path / "www", "evilpkg", tmp_path / "seen.json")
    folder = component(tmp_path, "direct", f"evilpkg @ {url}/evilpkg-1.0.tar.gz")
    with cncf.Hub(home=tmp_path / "home") as hub:
        handle = hub.load(folder)
        assert handle.state == "failed"
        obs = handle.observation
        assert (obs.code, obs.attributes["key"], obs.attributes["reason"]) == (
            "invalid_manifest",
            "component.requirements",
            "direct_reference",
        )
    assert seen == []  # the hub fetched nothing
    assert not (tmp_path / "seen.json").exists()


def test_local_path_reference_is_refused(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "localpkg", tmp_path / "seen.json")
    folder = component(tmp_path, "localref", f"localpkg @ {sdist.as_uri()}")
    with cncf.Hub(home=tmp_path / "home") as hub:
        handle = hub.load(folder)
        assert (handle.observation.code, handle.observation.attributes.get("reason")) == (
            "invalid_manifest",
            "direct_reference",
        )


def test_a_manifest_cannot_allow_itself(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "selfpkg", tmp_path / "seen.json")
    folder = component(tmp_path, "selfallow", f"selfpkg @ {sdist.as_uri()}", allow_direct_references="true")
    with cncf.Hub(home=tmp_path / "home") as hub:
        handle = hub.load(folder)
        assert handle.observation.code == "invalid_manifest"
        assert handle.observation.attributes["key"] == "component.allow_direct_references"


def test_allowed_build_sees_no_secret_and_runs_in_the_workers_ownership(
    tmp_path: Path, served: tuple[str, list[str]]
) -> None:
    require_tool("unshare")
    url, seen = served
    record = tmp_path / "seen.json"
    make_sdist(tmp_path / "www", "okpkg", record)
    folder = component(tmp_path, "allowed", f"okpkg @ {url}/okpkg-1.0.tar.gz")
    with cncf.Hub(home=tmp_path / "home") as hub:
        handle = hub.load(folder, allow_direct_references=True)
        assert handle.state == "ready", handle.observation
    assert seen, "the caller allowed the direct reference: the hub fetched it"
    import json

    saw = json.loads(record.read_text())
    assert "AWS_SECRET_ACCESS_KEY" not in saw["env"]
    assert SECRET not in json.dumps(saw["env"])
    assert saw["env"].get("CNCF_OWNER")  # the ownership cookie reaches the build backend
    from cncf.wire import ownership

    if ownership.namespace_available():
        assert saw["pid_ns"] != os.readlink("/proc/self/ns/pid")


def test_build_timeout_ends_the_backend_and_its_children(tmp_path: Path) -> None:
    mark = f"cncf-build-{uuid.uuid4().hex[:10]}"
    sdist = make_sdist(tmp_path, "hangpkg", tmp_path / "seen.json", mode="hang", mark=mark)
    folder = component(tmp_path, "hang", f"hangpkg @ {sdist.as_uri()}", build_timeout="4")
    started = time.monotonic()
    with cncf.Hub(home=tmp_path / "home") as hub:
        handle = hub.load(folder, allow_direct_references=True)
        took = time.monotonic() - started
        assert handle.state == "failed"
        assert (handle.observation.code, handle.observation.attributes["limit"]) == (
            "environment_failed",
            "build_timeout",
        )
        assert took < 30
        deadline = time.monotonic() + 5
        while with_mark(mark) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert with_mark(mark) == []


def test_close_ends_a_build_in_progress(tmp_path: Path) -> None:
    import asyncio

    mark = f"cncf-build-{uuid.uuid4().hex[:10]}"
    sdist = make_sdist(tmp_path, "slowpkg", tmp_path / "seen.json", mode="hang", mark=mark)
    folder = component(tmp_path, "slow", f"slowpkg @ {sdist.as_uri()}")

    async def scenario() -> Any:
        hub = cncf.AsyncHub(home=tmp_path / "home")
        loading = asyncio.ensure_future(hub.load(folder, allow_direct_references=True))
        deadline = time.monotonic() + 60
        while not with_mark(mark) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert with_mark(mark), "the build backend never started"
        closed = time.monotonic()
        await hub.close()
        assert time.monotonic() - closed < 20
        return await asyncio.wait_for(loading, 20)

    handle = asyncio.run(scenario())
    assert handle.state != "ready"
    deadline = time.monotonic() + 5
    while with_mark(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert with_mark(mark) == []


def test_hub_file_key_and_default(tmp_path: Path) -> None:
    from cncf.boundaries._environments import DEFAULT_BUILD_TIMEOUT
    from cncf.manifest import HUB_KEYS

    assert "allow_direct_references" in HUB_KEYS and "build_timeout" in HUB_KEYS
    assert 60 <= DEFAULT_BUILD_TIMEOUT <= 3600


def test_kill_9_of_the_hub_still_ends_the_build(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    mark = f"cncf-build-{uuid.uuid4().hex[:10]}"
    sdist = make_sdist(tmp_path, "orphanpkg", tmp_path / "seen.json", mode="hang", mark=mark)
    folder = component(tmp_path, "orphan", f"orphanpkg @ {sdist.as_uri()}", build_timeout="3")
    script = "import cncf, sys\nhub = cncf.Hub(home=sys.argv[2])\nhub.load(sys.argv[1], allow_direct_references=True)\n"
    hub = subprocess.Popen(
        [sys.executable, "-c", script, str(folder), str(tmp_path / "home")],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        deadline = time.monotonic() + 60
        while not with_mark(mark) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert with_mark(mark), "the build backend never started"
        hub.send_signal(signal.SIGKILL)
        hub.wait(10)
        deadline = time.monotonic() + 25  # build_timeout + the margin the build carries
        while with_mark(mark) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert with_mark(mark) == [], "the build outlived its killed hub past its build_timeout"
    finally:
        if hub.poll() is None:
            hub.kill()
        for pid in with_mark(mark):
            os.kill(pid, signal.SIGKILL)

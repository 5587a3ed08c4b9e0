"""Real ``cncf serve`` processes on real sockets (a free port on 127.0.0.1).

``serve(hubfile, ...)`` starts ``python -m cncf serve HUBFILE --port 0`` with
its own home and TMPDIR, waits for the ready line, and returns a
:class:`Served` with the URL, the token and the process; the fixture stops
it with SIGTERM at the end (and asserts it exited 0).  ``hub_server`` is one
module-wide server on ``fixtures/hub.toml``.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
HUBFILE = FIXTURES / "hub.toml"
SRC = HERE.parents[1] / "src"
READY = re.compile(r"^cncf: serving (\d+) components at (http://\S+)/$|^cncf: serving (\d+) components at unix:(\S+)$")


class Served:
    def __init__(self, proc: subprocess.Popen[str], url: str, home: Path, tmp: Path, count: int) -> None:
        self.proc = proc
        self.url = url
        self.home = home
        self.tmp = tmp
        self.count = count
        token_file = home / "serve.token"
        self.token = token_file.read_text().strip() if token_file.exists() else os.environ.get("CNCF_TOKEN", "")
        # a script: its POSTs say application/json (without the token the hub requires it)
        unix = url[len("unix:") :] if url.startswith("unix:") else None
        self.http = httpx.Client(
            base_url="http://localhost" if unix else url,
            timeout=60,
            trust_env=False,
            headers={"content-type": "application/json"},
            transport=httpx.HTTPTransport(uds=unix) if unix else None,
        )

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def child_pids(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc), grandchildren included."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start(
    hubfile: Path,
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 240,
    prefix: tuple[str, ...] = (),
) -> Served:
    """``prefix``: a command the server runs under (``prlimit --nofile=256``)."""
    tmp = home.parent / (home.name + "-tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    e = dict(os.environ, PYTHONPATH=str(SRC), TMPDIR=str(tmp), CNCF_CACHE=str(home.parent / "cache"))
    e.pop("CNCF_TOKEN", None)
    e.update(env or {})
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "cncf", "serve", str(hubfile), "--port", "0", "--home", str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=e,
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if not line:
                break
            m = READY.match(line.rstrip("\n"))
            if m and m.group(1):
                return Served(proc, m.group(2), home, tmp, int(m.group(1)))
            if m:
                return Served(proc, "unix:" + m.group(4), home, tmp, int(m.group(3)))
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"cncf serve did not get ready (exit {proc.returncode}):\n{err}")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def make(
        hubfile: Path = HUBFILE,
        *args: str,
        env: dict[str, str] | None = None,
        name: str = "home",
        prefix: tuple[str, ...] = (),
    ) -> Served:
        s = start(hubfile, tmp_path / name, *args, env=env, prefix=prefix)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = start(HUBFILE, tmp_path_factory.mktemp("served") / "home")
    yield s
    code, err = s.stop()
    assert code == 0, err

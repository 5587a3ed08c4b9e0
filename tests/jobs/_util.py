"""Helpers for the job tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
WORKER = HERE / "fixtures" / "worker"


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make the folder ``path`` unwritable, even for root (``chattr +i``)."""
    path.chmod(0o555)
    immutable = False
    probe = path / ".probe"
    try:
        probe.touch()
    except OSError:
        pass
    else:
        probe.unlink()
        if (
            shutil.which("chattr") is None
            or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0
        ):
            path.chmod(0o755)
            pytest.skip("cannot make a folder read-only here (root without chattr)")
        immutable = True
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        path.chmod(0o755)


class HubProcess:
    """A hub subprocess (a fixture script) whose stdout lines a thread collects;
    a line cut by a kill is not collected (it was no acknowledgement)."""

    def __init__(self, script: Path, stderr: Path, env: dict[str, str] | None, *args: str) -> None:
        self.stderr = stderr
        env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
        with stderr.open("w") as err:
            self.p = subprocess.Popen(
                [sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=err, text=True, env=env
            )
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            if line.endswith("\n"):
                self.lines.append(line.strip())

    def until(self, cond: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if self.p.poll() is not None:
                raise AssertionError(f"hub exited {self.p.returncode}: {self.stderr.read_text()}")
            assert time.monotonic() < deadline, f"timed out; last lines: {self.lines[-3:]}"
            time.sleep(0.005)

    def stop(self, sig: int) -> None:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        self.p.wait(30)
        self._t.join(5)
        assert self.p.stdout is not None
        self.p.stdout.close()

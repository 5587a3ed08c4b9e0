"""Helpers for the job tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
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

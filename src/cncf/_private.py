"""The hub's files are private to its user (brief section 13).

Home, job store, token and caches are created mode 0700 (files 0600)
whatever the umask, and a folder found wider is narrowed: job arguments and
results, tokens and built environments are nobody else's to read.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["private_dir", "private_file"]


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents, each 0700 too) with mode 0700; narrow it if it is wider."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=0o700)
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> None:
    """Narrow an existing file to mode 0600."""
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)

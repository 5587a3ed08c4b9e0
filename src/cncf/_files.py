"""Only regular files are read as manifests and artifacts (brief section 13).

A downloaded folder may hold a FIFO (every read blocks), a device
(``/dev/zero`` never ends), or a symlink that leaves the folder (to the
user's own files).  Whatever the hub reads from a component's folder goes
through :func:`open_regular`: the path is opened non-blocking (a FIFO cannot
hold the open), with ``O_NOFOLLOW`` when its last component is not a symlink
(so a swap after the check cannot bring one in), and the open descriptor is
``fstat``-ed before a byte is read; a symlink whose target lies outside the
component's folder, although its own path lies inside, is refused.  Sizes are
bounded before any read (:func:`read_bounded`).

Refusals are :class:`NotRegular` (``reason`` is ``not_regular_file``,
``symlink_leaves_folder`` or ``too_large``); the caller turns them into the
Observation of its kind (``invalid_manifest``, ``invalid_archive``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["NotRegular", "check_regular", "file_type", "open_regular", "read_bounded"]


class NotRegular(Exception):
    """A path the hub will not read, with why (see the module doc)."""

    def __init__(self, path: str, reason: str, detail: str, **attributes: Any) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.reason = reason
        self.detail = detail
        self.attributes: dict[str, Any] = {"reason": reason, **attributes}


def file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISLNK, "symlink"),
    ):
        if test(mode):
            return name
    return "regular file" if stat.S_ISREG(mode) else "special file"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _escapes(path: Path, folder: Path | None) -> str | None:
    """The real path when ``path`` lies in ``folder`` but a symlink takes it out."""
    if folder is None:
        return None
    lexical = os.path.normpath(os.path.join(os.path.abspath(folder), path))
    if not _inside(lexical, os.path.normpath(os.path.abspath(folder))):
        return None  # named outside by the manifest itself: its own choice
    real = os.path.realpath(lexical)
    return None if _inside(real, os.path.realpath(folder)) else real


def open_regular(path: Path, folder: Path | None = None, *, directory: bool = False) -> tuple[int, os.stat_result]:
    """An open descriptor of a regular file (or, with ``directory``, of a folder)
    and its ``fstat``; :class:`NotRegular` otherwise, ``FileNotFoundError`` when
    it does not exist."""
    real = _escapes(path, folder)
    if real is not None:
        raise NotRegular(
            str(path),
            "symlink_leaves_folder",
            f"a symlink to {real!r}, outside the component's folder {str(folder)!r}: the hub does not follow it",
            target=real,
        )
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not os.path.islink(path):
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # it became a symlink after the check
            raise NotRegular(str(path), "symlink_leaves_folder", "it was replaced by a symlink") from None
        if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError):
            raise
        raise NotRegular(str(path), "not_regular_file", f"cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or (directory and stat.S_ISDIR(st.st_mode))):
            kind = file_type(st.st_mode)
            raise NotRegular(
                str(path),
                "not_regular_file",
                f"a {kind}, not a regular file: only regular files are read as artifacts",
                file_type=kind,
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def check_regular(path: Path, folder: Path | None = None, *, directory: bool = False) -> os.stat_result:
    """:func:`open_regular` without keeping the descriptor."""
    fd, st = open_regular(path, folder, directory=directory)
    os.close(fd)
    return st


def read_bounded(path: Path, limit: int, folder: Path | None = None) -> bytes:
    """The whole of a regular file no larger than ``limit`` bytes (the size is
    checked on the open descriptor before reading, and the read stops at the
    bound whatever the file does meanwhile)."""
    fd, st = open_regular(path, folder)
    try:
        if st.st_size > limit:
            raise NotRegular(
                str(path),
                "too_large",
                f"{st.st_size} bytes, over the {limit}-byte bound",
                size=st.st_size,
                bound=limit,
            )
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            try:
                chunk = os.read(fd, min(left, 1 << 20))
            except BlockingIOError:  # pragma: no cover - a regular file does not block
                break
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise NotRegular(str(path), "too_large", f"grew over the {limit}-byte bound while read", bound=limit)
        return data
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)

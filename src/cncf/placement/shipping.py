"""The hub's half of shipping artifacts to a node (issue 17): name them, serve them, rewrite paths.

A node shares nothing with the hub but the network, so every file a placed
worker needs travels by sha256 (:mod:`cncf.placement.artifacts`):

* a folder (a python component, a command's working folder, an extracted
  ``.pyz``) as a deterministic archive, packed once per content
  (:class:`~cncf.placement.artifacts.PackCache`), unpacked on the node;
* a file (a ``.pyz``, a wheel, a jar, a ``classpath`` jar, the compiled JVM
  host's jars) by its own bytes, hashed once per (size, mtime).

:class:`Shipment` is one placement's list: what the hub serves to that node
(over the placement's authenticated ``A`` connection, :func:`serve`) and the
map from the hub's paths to the node's, which :func:`rewrite` applies to
argv, working folder and every path handed to the worker.  The node never
sees a path of the hub's machine.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cncf.placement.artifacts import LocalFileSource, PackCache, serve_chunks, sha256_file

T = TypeVar("T")

_hashes: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime): a 200 MB jar is read once."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        known = _hashes.get(key)
    if known is None:
        known = sha256_file(path)
        with _hash_lock:
            _hashes[key] = known
    return known


def pack_root(home: Path | None) -> Path:
    """Where the hub keeps packed folders (by content)."""
    return (home / "cache" if home is not None else Path.home() / ".cache" / "cncf") / "packs"


class Shipment:
    """One placement's artifacts: served to its node, mapped to the node's paths."""

    def __init__(self, home: Path | None = None) -> None:
        self.source = LocalFileSource()
        self.items: dict[str, dict[str, str]] = {}  # hub path -> {path, sha, kind, name}
        self.node_paths: dict[str, str] = {}  # hub path -> node path, once the node has it
        self._packs: PackCache | None = None
        self._home = home

    def add(self, path: str | os.PathLike[str]) -> dict[str, str] | None:
        """Register ``path`` (a folder or a file); ``None`` if it does not exist on the hub."""
        p = Path(path)
        if not p.is_absolute():
            return None
        key = str(p)
        if key in self.items:
            return self.items[key]
        if p.is_dir():
            if self._packs is None:
                self._packs = PackCache(pack_root(self._home))
            digest, archive = self._packs.pack(p)
            self.source.put(digest, archive)
            item = {"path": key, "sha": digest, "kind": "tree", "name": p.name}
        elif p.is_file():
            digest = file_digest(p)
            self.source.put(digest, p)
            item = {"path": key, "sha": digest, "kind": "blob", "name": p.name}
        else:
            return None
        self.items[key] = item
        return item

    def pending(self, paths: Iterable[str]) -> list[dict[str, str]]:
        """Register ``paths`` and return the items the node does not have yet."""
        out = []
        for path in paths:
            item = self.add(path)
            if item is not None and item["path"] not in self.node_paths and item not in out:
                out.append(item)
        return out

    def learn(self, mapping: Mapping[str, str]) -> None:
        self.node_paths.update(mapping)

    def rewrite(self, obj: T) -> T:
        out: T = rewrite(obj, self.node_paths)
        return out


def rewrite(obj: Any, mapping: Mapping[str, str]) -> Any:
    """Every occurrence of a hub path of ``mapping`` in ``obj``'s strings (whole, or
    followed by ``/``, ``:`` or ``=``-separated parts), replaced by the node's path."""
    if not mapping:
        return obj
    roots = sorted(mapping, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(r) for r in roots) + r"(?=$|[/:;,=\s])")

    def one(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda m: mapping[m.group(0)], value)
        if isinstance(value, list):
            return [one(v) for v in value]
        if isinstance(value, tuple):
            return tuple(one(v) for v in value)
        if isinstance(value, dict):
            return {k: one(v) for k, v in value.items()}
        return value

    return one(obj)


def serve(sock: socket.socket, shipment: Shipment, label: str) -> threading.Thread:
    """Answer the node's chunk requests on the placement's ``A`` connection until it closes."""

    def run() -> None:
        try:
            serve_chunks(sock, shipment.source)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"cncf-artifacts-{label}", daemon=True)
    thread.start()
    return thread


# -- the JVM host: its compiled jars travel by their build key -------------------------

_JVM_PATH_FLAGS = ("-cp", "-classpath", "--class-path", "--host", "--api")
#: Options naming a file of the hub's JDK that is not shipped (a CDS archive is
#: specific to the JDK that recorded it): dropped on a node.
_JVM_HUB_ONLY = ("-XX:SharedArchiveFile=",)


def jvm_host_files(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(argv without hub-only options, the files the host's command line names)."""
    out: list[str] = []
    files: list[str] = []
    previous = ""
    for arg in argv:
        if arg.startswith(_JVM_HUB_ONLY):
            continue
        if previous in _JVM_PATH_FLAGS:
            files += [p for p in arg.split(os.pathsep) if p]
        out.append(arg)
        previous = arg
    return out, files

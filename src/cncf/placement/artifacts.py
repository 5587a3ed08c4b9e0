"""Content-addressed artifacts: what a node needs, identified by sha256 and cached by it.

A node of a real cluster shares nothing with the hub but the network (issue
17), so every file a component needs (a folder, a ``.pyz``, a wheel, a jar and
its ``classpath`` jars, a command's files, the compiled JVM host) must travel
to it.  This module is the transport-independent half of that:

* :func:`pack_folder` turns a folder into a **deterministic** archive (sorted
  entries, fixed mtimes, modes, owners; a gzip header without a time), so the
  same folder has the same hash on every packing and every machine, and a
  node that already holds it never fetches it again;
* :func:`sha256_file` hashes files and archives in bounded memory;
* :class:`ArtifactCache` is a node's cache keyed by that hash: one directory
  per hash, an ``flock`` per hash so concurrent actors and processes fetch an
  artifact once, a download into a temporary name that is verified before an
  atomic rename, an LRU size bound that never evicts an entry in use;
* :func:`safe_extract` unpacks an archive refusing absolute paths, ``..``,
  links that leave the root, anything but files, folders and symlinks, and
  more than a bounded size or number of entries: an archive is data from
  another machine;
* :class:`ChunkSource` is how bytes reach the node: ``fetch(digest, offset,
  size)`` in bounded chunks, so a 200 MB jar never needs to be one message
  (Ray's ``gcs://`` package store holds a package in the head's memory as one
  message).  :class:`LocalFileSource` serves files from this machine;
  :func:`serve_chunks` answers a node's requests on one connected socket
  (the hub's side) and :class:`SocketSource` asks them (the node's side);
  :class:`HttpSource` pulls from an operator's ``artifact_store`` URL with
  range requests;
* :class:`PackCache` keeps the hub's packed folders, so a folder is packed
  once per content, not on every load and restart.

Nothing here imports Ray: the hub packs and serves, the node actor fetches,
and either can be tested without a cluster.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import errno
import fcntl
import gzip
import hashlib
import os
import posixpath
import shutil
import socket
import stat
import struct
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Any

#: Bytes read or fetched at a time: bounded memory whatever the artifact's size.
CHUNK = 1 << 20
#: The largest chunk a source may be asked for (a frame of the channel later).
MAX_CHUNK = 8 << 20
#: What a packed folder leaves out: caches that differ between machines and runs.
DEFAULT_EXCLUDES = ("__pycache__", "*.pyc", ".git", ".DS_Store")
#: An archive may unpack to at most this many bytes / entries unless told otherwise.
MAX_UNPACKED_BYTES = 4 << 30
MAX_ENTRIES = 200_000
#: The fixed mtime of every archive entry (1980-01-01: also valid in a zip).
EPOCH = 315532800
#: A transfer or eviction left in ``tmp/`` this long ago belongs to a process that died.
STALE_SECONDS = 3600.0


class ArtifactError(Exception):
    """Any refusal of this module (bad folder, unsafe archive, failed transfer)."""


class CorruptArtifact(ArtifactError):
    """The bytes received do not hash to the digest asked for."""

    def __init__(self, expected: str, actual: str, size: int) -> None:
        super().__init__(f"artifact {expected[:16]}… arrived as {actual[:16]}… ({size} bytes): transfer corrupted")
        self.expected = expected
        self.actual = actual
        self.size = size


class UnsafeArchive(ArtifactError):
    """An archive that would write outside its root, or is too large, or holds special files."""


def _is_digest(digest: str) -> bool:
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def _check_digest(digest: str) -> str:
    # The digest names a directory: never let it be a path.
    if not _is_digest(digest):
        raise ArtifactError(f"not a sha256 hex digest: {digest!r}")
    return digest


# ---------------------------------------------------------------------------
# Hashing
# ---------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read :data:`CHUNK` bytes at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def sha256_chunks(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for block in chunks:
        h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Deterministic packing
# ---------------------------------------------------------------------------


def _excluded(rel: str, patterns: Iterable[str]) -> bool:
    parts = rel.split("/")
    return any(fnmatch(part, pat) for part in parts for pat in patterns)


def _entries(root: Path, excludes: Iterable[str]) -> list[tuple[str, Path]]:
    """Every path under ``root`` (relative, POSIX, sorted by bytes): the archive's order."""
    patterns = tuple(excludes)
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            p = base / name
            rel = p.relative_to(root).as_posix()
            if not _excluded(rel, patterns):
                out.append((rel, p))
        dirnames[:] = [d for d in dirnames if not _excluded((base / d).relative_to(root).as_posix(), patterns)]
    out.sort(key=lambda e: e[0].encode("utf-8", "surrogateescape"))
    return out


def _tarinfo(rel: str, path: Path, root: Path) -> tuple[tarfile.TarInfo, Path | None]:
    st = path.lstat()
    info = tarfile.TarInfo(rel)
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if posixpath.isabs(target) or resolved == ".." or resolved.startswith("../"):
            raise ArtifactError(f"{rel} is a link leaving the folder ({target}): it would not exist on a node")
        info.type = tarfile.SYMTYPE
        info.linkname = target
        info.mode = 0o777
        return info, None
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        return info, None
    if stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
        # Only "executable or not" survives: umasks and owners differ between machines.
        info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
        return info, path
    raise ArtifactError(f"{rel} is neither a file, a folder nor a link ({stat.filemode(st.st_mode)})")


def pack_folder(
    folder: str | os.PathLike[str], dest: str | os.PathLike[str], *, excludes: Iterable[str] = DEFAULT_EXCLUDES
) -> str:
    """Write ``folder`` to ``dest`` as a deterministic ``.tar.gz`` and return its sha256.

    The same content gives the same bytes whatever the files' mtimes, owners,
    umask or the order the filesystem lists them in, so the hash identifies
    the content and a node that holds it does not fetch it again.  Links
    leaving the folder are refused (they would dangle on a node).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ArtifactError(f"{root} is not a folder")
    out = Path(dest)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as raw:
            sink = _HashingWriter(raw, h)
            # filename="" and mtime=0: no name or time in the gzip header.
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=6, mtime=0) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                for rel, path in _entries(root, excludes):
                    info, data = _tarinfo(rel, path, root)
                    if data is None:
                        tar.addfile(info)
                    else:
                        with open(data, "rb") as f:
                            tar.addfile(info, f)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return h.hexdigest()


def folder_fingerprint(folder: str | os.PathLike[str], *, excludes: Iterable[str] = DEFAULT_EXCLUDES) -> str:
    """A cheap stand-in for a folder's content: every entry's name, type, size,
    mtime (ns), executable bit and link target, hashed.  ``stat`` only, no file
    read: what :class:`PackCache` checks before it packs again."""
    root = Path(folder)
    h = hashlib.sha256()
    for rel, path in _entries(root, excludes):
        st = path.lstat()
        link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        h.update(
            f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode & 0o100}\0{link}\n".encode()
        )
    return h.hexdigest()


class PackCache:
    """The hub's packed folders, so a folder is packed once per content, not once per load.

    Packing costs ~20 ms per MB; a ``stat`` walk of the same folder costs a
    fraction of that, so a placed load (and every restart) pays only the walk
    when nothing changed.  ``index/<fingerprint>`` names the digest of the
    archive last packed from that folder state; ``packs/<digest>.tar.gz`` is the
    archive (and what :class:`LocalFileSource` serves).  A changed file changes
    its size or mtime, hence the fingerprint, hence a new pack; identical
    content reached another way packs to the same digest and file.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        for d in ("index", "packs"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    def pack(self, folder: str | os.PathLike[str], *, excludes: Iterable[str] = DEFAULT_EXCLUDES) -> tuple[str, Path]:
        """``(digest, archive)`` for ``folder`` as it is now."""
        patterns = tuple(excludes)
        key = hashlib.sha256(
            f"{Path(folder).resolve()}\0{patterns}\0{folder_fingerprint(folder, excludes=patterns)}".encode()
        ).hexdigest()
        index = self.root / "index" / key
        with contextlib.suppress(OSError, ValueError):
            digest = _check_digest(index.read_text().strip())
            archive = self.root / "packs" / f"{digest}.tar.gz"
            if archive.is_file():
                return digest, archive
        staging = self.root / "packs" / f".{key[:16]}-{uuid.uuid4().hex[:8]}.tar.gz"
        try:
            digest = pack_folder(folder, staging, excludes=patterns)
            archive = self.root / "packs" / f"{digest}.tar.gz"
            os.replace(staging, archive)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
        tmp_index = index.with_name(f".{key}.{uuid.uuid4().hex[:8]}")
        tmp_index.write_text(digest)
        os.replace(tmp_index, index)
        return digest, archive


class _HashingWriter:
    """A write-only file that hashes what passes through it (one pass: pack and hash)."""

    def __init__(self, raw: IO[bytes], h: hashlib._Hash) -> None:
        self._raw = raw
        self._h = h

    def write(self, b: bytes) -> int:
        self._h.update(b)
        self._raw.write(b)
        return len(b)

    def flush(self) -> None:
        self._raw.flush()


# ---------------------------------------------------------------------------
# Safe unpacking
# ---------------------------------------------------------------------------


def _member_path(name: str) -> str:
    if not name or "\0" in name:
        raise UnsafeArchive(f"an entry has an invalid name {name!r}")
    if name.startswith("/") or posixpath.isabs(name) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"entry {name!r} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"entry {name!r} goes up with '..'")
    if not parts:
        raise UnsafeArchive(f"entry {name!r} names the root itself")
    return "/".join(parts)


def safe_extract(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_UNPACKED_BYTES,
    max_entries: int = MAX_ENTRIES,
) -> int:
    """Unpack a tar archive into the new folder ``dest``; returns the bytes written.

    Checked before anything is written: no absolute path, no ``..``, no link
    whose target leaves the root (or that another entry is written through),
    only files, folders and symbolic links, at most ``max_entries`` entries and
    ``max_bytes`` bytes.  Unpacks into a temporary sibling and renames it, so
    ``dest`` either holds the whole archive or does not exist.
    """
    target = Path(dest)
    if target.exists():
        raise ArtifactError(f"{target} exists already")
    with tarfile.open(archive, mode="r:*") as tar:
        members = tar.getmembers()
        if len(members) > max_entries:
            raise UnsafeArchive(f"the archive has {len(members)} entries (at most {max_entries})")
        total = 0
        links: set[str] = set()
        seen: set[str] = set()
        for m in members:
            rel = _member_path(m.name)
            parents = rel.split("/")[:-1]
            for i in range(1, len(parents) + 1):
                if "/".join(parents[:i]) in links:
                    raise UnsafeArchive(f"entry {m.name!r} is written through the link {'/'.join(parents[:i])!r}")
            if m.issym():
                link = m.linkname
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
                if not link or posixpath.isabs(link) or resolved == ".." or resolved.startswith("../"):
                    raise UnsafeArchive(f"link {m.name!r} -> {link!r} leaves the archive's root")
                links.add(rel)
            elif m.islnk():
                raise UnsafeArchive(f"entry {m.name!r} is a hard link")
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchive(f"entry {m.name!r} is a device, fifo or other special file")
            if rel in seen and not m.isdir():
                raise UnsafeArchive(f"entry {m.name!r} appears twice")
            seen.add(rel)
            total += max(m.size, 0)
            if total > max_bytes:
                raise UnsafeArchive(f"the archive unpacks to more than {max_bytes} bytes")
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        tmp.mkdir(parents=True)
        try:
            for m in members:
                rel = _member_path(m.name)
                out = tmp / rel
                if m.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    os.chmod(out, 0o755)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                if m.issym():
                    os.symlink(m.linkname, out)
                    continue
                src = tar.extractfile(m)
                if src is None:
                    raise UnsafeArchive(f"entry {m.name!r} has no data")
                written = 0
                with src, open(out, "xb") as f:
                    while block := src.read(CHUNK):
                        written += len(block)
                        if written > m.size:  # never trust a header's size alone
                            raise UnsafeArchive(f"entry {m.name!r} is longer than it says")
                        f.write(block)
                os.chmod(out, 0o755 if m.mode & 0o100 else 0o644)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return total


# ---------------------------------------------------------------------------
# Where bytes come from
# ---------------------------------------------------------------------------


class ChunkSource(abc.ABC):
    """How a node pulls an artifact: in bounded chunks, by digest.

    A transport (the authenticated channel to the hub, an operator's artifact
    store) implements :meth:`fetch`; the cache verifies what it gets, so a
    source need not be trusted for integrity, only asked for bytes.
    """

    @abc.abstractmethod
    def size(self, digest: str) -> int:
        """The artifact's length in bytes (``ArtifactError`` if the source does not have it)."""

    @abc.abstractmethod
    def fetch(self, digest: str, offset: int, size: int) -> bytes:
        """At most ``size`` (≤ :data:`MAX_CHUNK`) bytes from ``offset``; fewer only at the end."""

    def stream(self, digest: str, total: int) -> Iterator[bytes]:
        """The artifact's ``total`` bytes as :data:`CHUNK`-sized blocks, in order (one
        request at a time unless the source keeps several in flight)."""
        received = 0
        while received < total:
            block = self.fetch(digest, received, min(CHUNK, total - received))
            if not block:
                return
            received += len(block)
            yield block


class LocalFileSource(ChunkSource):
    """Files of this machine served by digest: the hub's side of a transfer, and tests."""

    def __init__(self, files: Mapping[str, str | os.PathLike[str]] | None = None) -> None:
        self._files: dict[str, Path] = {_check_digest(d): Path(p) for d, p in (files or {}).items()}

    def put(self, digest: str, path: str | os.PathLike[str]) -> None:
        """Serve ``path`` as ``digest`` (the caller hashed it; the node verifies it)."""
        self._files[_check_digest(digest)] = Path(path)

    def add(self, path: str | os.PathLike[str]) -> str:
        """Serve ``path``; returns its digest."""
        digest = sha256_file(path)
        self._files[digest] = Path(path)
        return digest

    def _path(self, digest: str) -> Path:
        try:
            return self._files[digest]
        except KeyError:
            raise ArtifactError(f"no artifact {digest[:16]}… here") from None

    def size(self, digest: str) -> int:
        return self._path(digest).stat().st_size

    def fetch(self, digest: str, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or size > MAX_CHUNK:
            raise ArtifactError(f"chunk {offset}+{size} refused (at most {MAX_CHUNK} bytes)")
        with open(self._path(digest), "rb") as f:
            f.seek(offset)
            return f.read(size)


class HttpSource(ChunkSource):
    """An operator's ``artifact_store``: ``<base>/<sha256>`` served over HTTP(S) with
    range requests (any static file server, an S3 bucket's HTTP endpoint).

    Nothing of the hub is involved, so a 200 MB jar placed on a hundred nodes
    costs the hub nothing; the hash is still verified by the cache.
    """

    def __init__(self, base: str, *, timeout: float = 60.0, headers: Mapping[str, str] | None = None) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})

    def _request(self, digest: str, method: str, extra: Mapping[str, str]) -> Any:
        import urllib.error
        import urllib.request

        url = f"{self.base}/{_check_digest(digest)}"
        req = urllib.request.Request(url, method=method, headers={**self.headers, **extra})
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                raise ArtifactError(f"no artifact {digest[:16]}… at {self.base}") from None
            raise ArtifactError(f"the artifact store {self.base} answered {exc.code} for {digest[:16]}…") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ArtifactError(f"the artifact store {self.base} cannot be reached: {exc}") from None

    def size(self, digest: str) -> int:
        with self._request(digest, "HEAD", {}) as resp:
            length = resp.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise ArtifactError(f"the artifact store {self.base} gives no length for {digest[:16]}…")
        return int(length)

    def fetch(self, digest: str, offset: int, size: int) -> bytes:
        if offset < 0 or size <= 0 or size > MAX_CHUNK:
            raise ArtifactError(f"chunk {offset}+{size} refused (at most {MAX_CHUNK} bytes)")
        with self._request(digest, "GET", {"Range": f"bytes={offset}-{offset + size - 1}"}) as resp:
            if resp.status != 206 and offset > 0:
                raise ArtifactError(f"the artifact store {self.base} ignores range requests")
            try:
                data: bytes = resp.read(size + 1)  # never more than asked, whatever it sends
            except OSError as exc:  # a timeout or a reset mid-chunk
                raise ArtifactError(f"reading from the artifact store {self.base} failed: {exc}") from None
        if len(data) > size:
            raise ArtifactError(f"the artifact store {self.base} sent more than the {size} bytes asked")
        return data


# A chunk protocol for one connected socket (the channel's artifact role, later).
# Binary, not the JSON frames of the other roles: a chunk is bytes, and base64
# would add a third.  Request: ``G`` + digest (64 ASCII) + offset (u64) + size
# (u32), or ``S`` + digest for the size.  Reply: status (u8) + length (u32) +
# payload; status 0 is the data (or the size as u64), anything else a message.
_REQUEST = struct.Struct("!cx64sQI")
_REPLY = struct.Struct("!BI")
_OK, _MISSING, _REFUSED = 0, 1, 2


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(min(n - len(buf), CHUNK))
        if not part:
            raise ArtifactError(f"the artifact connection closed after {len(buf)} of {n} bytes")
        buf += part
    return bytes(buf)


def serve_chunks(sock: socket.socket, source: ChunkSource) -> None:
    """Answer chunk requests on ``sock`` from ``source`` until the peer closes (the hub's side).

    A request the source refuses (unknown digest, chunk too large) is answered
    with a status and a message and the connection stays usable; a broken
    connection ends the loop.
    """
    while True:
        try:
            head = sock.recv(_REQUEST.size, socket.MSG_WAITALL)
        except OSError:
            return
        if len(head) < _REQUEST.size:
            return
        kind, raw, offset, size = _REQUEST.unpack(head)
        digest = raw.decode("ascii", "replace")
        try:
            _check_digest(digest)
            if kind == b"S":
                payload, status = struct.pack("!Q", source.size(digest)), _OK
            elif kind == b"G":
                payload, status = source.fetch(digest, offset, size), _OK
            else:
                payload, status = f"unknown request {kind!r}".encode(), _REFUSED
        except ArtifactError as exc:
            payload, status = str(exc).encode(), _MISSING if "no artifact" in str(exc) else _REFUSED
        except OSError as exc:
            payload, status = f"cannot read the artifact: {exc.strerror or exc}".encode(), _REFUSED
        if status != _OK:
            payload = payload[:4096]  # a message, bounded like the client expects
        try:
            sock.sendall(_REPLY.pack(status, len(payload)) + payload)
        except OSError:
            return


class FirstOf(ChunkSource):
    """Several sources tried in order, per artifact: the first that knows its size serves
    all of it (a node asks the operator's ``artifact_store`` first, then the hub)."""

    def __init__(self, sources: Iterable[ChunkSource]) -> None:
        self.sources = list(sources)
        self._chosen: dict[str, ChunkSource] = {}

    def size(self, digest: str) -> int:
        errors = []
        for source in self.sources:
            try:
                total = source.size(digest)
            except ArtifactError as exc:
                errors.append(str(exc))
                continue
            self._chosen[digest] = source
            return total
        raise ArtifactError("; ".join(errors) or f"no source for {digest[:16]}…")

    def _source(self, digest: str) -> ChunkSource:
        source = self._chosen.get(digest)
        if source is None:
            self.size(digest)
            source = self._chosen[digest]
        return source

    def fetch(self, digest: str, offset: int, size: int) -> bytes:
        return self._source(digest).fetch(digest, offset, size)

    def stream(self, digest: str, total: int) -> Iterator[bytes]:
        return self._source(digest).stream(digest, total)

    def served_by(self, digest: str) -> ChunkSource | None:
        return self._chosen.get(digest)


#: Chunk requests a node keeps in flight while streaming an artifact: one round trip
#: per window instead of per MiB (8 MiB in flight: 160 MB/s at a 50 ms round trip).
WINDOW = 8


class SocketSource(ChunkSource):
    """The node's side of :func:`serve_chunks` on a connected socket.

    :meth:`stream` keeps :data:`WINDOW` requests in flight (the hub answers them
    in order); :meth:`size` and :meth:`fetch` ask one at a time.  Replies are
    bounded by what was asked (a peer cannot make the node read more), and the
    cache verifies the hash of the whole, so the peer is trusted for nothing but
    availability.
    """

    def __init__(self, sock: socket.socket, window: int = WINDOW) -> None:
        self.sock = sock
        self.window = max(1, window)

    def _send(self, kind: bytes, digest: str, offset: int, size: int) -> None:
        try:
            self.sock.sendall(_REQUEST.pack(kind, _check_digest(digest).encode(), offset, size))
        except OSError as exc:
            raise ArtifactError(f"the artifact connection failed: {exc.strerror or exc}") from None

    def _reply(self, limit: int) -> tuple[int, bytes]:
        try:
            status, length = _REPLY.unpack(_recv_exact(self.sock, _REPLY.size))
            if length > max(limit, 4096):
                raise ArtifactError(f"the artifact peer answered {length} bytes to a request for {limit}")
            return status, _recv_exact(self.sock, length)
        except OSError as exc:  # reset, timeout: the transfer failed, said as such
            raise ArtifactError(f"the artifact connection failed: {exc.strerror or exc}") from None

    def _ask(self, kind: bytes, digest: str, offset: int, size: int, limit: int) -> bytes:
        self._send(kind, digest, offset, size)
        status, payload = self._reply(limit)
        if status != _OK:
            raise ArtifactError(payload.decode("utf-8", "replace"))
        return payload

    def stream(self, digest: str, total: int) -> Iterator[bytes]:
        asked = 0  # bytes requested so far
        pending: collections.deque[int] = collections.deque()  # sizes of the requests in flight
        try:
            while asked < total or pending:
                while asked < total and len(pending) < self.window:
                    size = min(CHUNK, total - asked)
                    self._send(b"G", digest, asked, size)
                    pending.append(size)
                    asked += size
                size = pending.popleft()
                status, payload = self._reply(size)
                if status != _OK:
                    raise ArtifactError(payload.decode("utf-8", "replace"))
                if len(payload) > size:
                    raise ArtifactError(f"the artifact peer sent {len(payload)} bytes for a chunk of {size}")
                if not payload:
                    return
                yield payload
        finally:
            # Replies still in flight are read and dropped, so that the connection stays
            # usable for the next artifact (a refusal mid-stream, a consumer that stopped).
            with contextlib.suppress(ArtifactError):  # a broken connection stays broken
                while pending:
                    self._reply(pending.popleft())

    def size(self, digest: str) -> int:
        payload = self._ask(b"S", digest, 0, 0, 8)
        if len(payload) != 8:
            raise ArtifactError("the artifact peer's size reply is not 8 bytes")
        return int(struct.unpack("!Q", payload)[0])

    def fetch(self, digest: str, offset: int, size: int) -> bytes:
        if size > MAX_CHUNK:
            raise ArtifactError(f"chunk of {size} bytes refused (at most {MAX_CHUNK})")
        data = self._ask(b"G", digest, offset, size, size)
        if len(data) > size:
            raise ArtifactError(f"the artifact peer sent {len(data)} bytes for a chunk of {size}")
        return data


# ---------------------------------------------------------------------------
# The node's cache
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One cached artifact: its digest, its folder, its size on disk, when last used."""

    digest: str
    path: Path
    size: int
    last_used: float

    @property
    def blob(self) -> Path:
        """The artifact's bytes as received (a jar, a ``.pyz``, a folder's archive)."""
        return self.path / "blob"

    @property
    def tree(self) -> Path:
        """The unpacked folder of an archive (after :meth:`ArtifactCache.unpacked`)."""
        return self.path / "tree"


class ArtifactCache:
    """A node's artifacts by sha256, under ``root``, bounded to ``max_bytes``.

    Layout: ``objects/<digest>/blob`` (and ``tree/`` once unpacked, ``size``
    the entry's bytes), ``locks/<digest>`` the per-artifact lock, ``tmp/`` for
    transfers in progress (the same filesystem, so the final rename is atomic).

    Locking (``fcntl.flock``, so it holds between processes and is released
    when a process dies): fetching or unpacking takes the artifact's lock
    exclusively, so a second fetcher waits and then finds it present; using
    it (:meth:`use`) holds the lock shared, and eviction only takes entries
    whose lock it gets exclusively without waiting, so an artifact in use is
    never removed.  The last use is the entry folder's mtime.
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        for d in ("objects", "locks", "tmp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    # -- paths and locks ----------------------------------------------------

    def _dir(self, digest: str) -> Path:
        return self.root / "objects" / _check_digest(digest)

    @contextlib.contextmanager
    def _lock(self, digest: str, mode: int) -> Iterator[None]:
        fd = os.open(self.root / "locks" / _check_digest(digest), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _entry(self, digest: str) -> Entry | None:
        path = self._dir(digest)
        try:
            size = int((path / "size").read_text())
            return Entry(digest, path, size, path.stat().st_mtime)
        except (OSError, ValueError):
            return None

    def entries(self) -> list[Entry]:
        """Every complete entry, least recently used first."""
        out = []
        for p in (self.root / "objects").iterdir():
            if _is_digest(p.name) and (e := self._entry(p.name)) is not None:
                out.append(e)
        return sorted(out, key=lambda e: e.last_used)

    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries())

    def has(self, digest: str) -> bool:
        return self._entry(digest) is not None

    # -- fetching -------------------------------------------------------------

    def _present(self, digest: str, unpacked: bool) -> Entry | None:
        """The entry if it is complete (and unpacked, if asked), under a shared lock: an
        entry another actor holds (shared, for its whole run) is taken without waiting."""
        with self._lock(digest, fcntl.LOCK_SH):
            entry = self._entry(digest)
            if entry is not None and (not unpacked or entry.tree.is_dir()):
                _touch(entry.path)
                return entry
        return None

    @contextlib.contextmanager
    def _exclusive(self, digest: str, unpacked: bool) -> Iterator[Entry | None]:
        """The artifact's lock held exclusively (yields None), or the entry once another
        process has made it present (yields it): never a blocking wait for the exclusive
        lock, which an actor holding the entry shared for its run would make endless."""
        fd = os.open(self.root / "locks" / _check_digest(digest), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if (present := self._present(digest, unpacked)) is not None:
                        yield present
                        return
                    time.sleep(0.05)
            yield None
        finally:
            os.close(fd)  # releases the lock

    def ensure(self, digest: str, source: ChunkSource) -> Entry:
        """The artifact, fetched from ``source`` unless already here (once, whoever asks)."""
        if (present := self._present(digest, False)) is not None:
            return present
        with self._exclusive(digest, False) as present:
            if present is not None:
                return present
            entry = self._entry(digest)
            if entry is None:
                entry = self._download(digest, source)
            else:
                _touch(entry.path)
        self.evict(keep={digest})
        return self._entry(digest) or entry

    @contextlib.contextmanager
    def use(self, digest: str, source: ChunkSource, *, unpack: bool = False) -> Iterator[Entry]:
        """Hold the artifact (fetched, and unpacked if asked) while the block runs:
        eviction skips it until then."""
        for _ in range(5):
            self.unpacked(digest, source) if unpack else self.ensure(digest, source)
            with self._lock(digest, fcntl.LOCK_SH):
                entry = self._entry(digest)
                if entry is not None and (not unpack or entry.tree.is_dir()):
                    _touch(entry.path)
                    yield entry
                    return
            # Evicted between fetch and use (another process needed the room): again.
        raise ArtifactError(f"artifact {digest[:16]}… keeps being evicted: the cache bound is too small")

    def unpacked(self, digest: str, source: ChunkSource, **limits: int) -> Entry:
        """The artifact (a packed folder) fetched and unpacked under ``tree/``, once."""
        if (present := self._present(digest, True)) is not None:
            return present
        self.ensure(digest, source)
        with self._exclusive(digest, True) as present:
            if present is not None:
                return present
            entry = self._entry(digest)
            if entry is None:
                entry = self._download(digest, source)
            if not entry.tree.is_dir():
                written = safe_extract(entry.blob, entry.tree, **limits)
                (entry.path / "size").write_text(str(entry.size + written))
                entry = self._entry(digest) or entry
        self.evict(keep={digest})
        return entry

    def _download(self, digest: str, source: ChunkSource) -> Entry:
        """Pull into ``tmp/``, verify, rename into place (the caller holds the lock)."""
        total = source.size(digest)
        staging = Path(tempfile.mkdtemp(prefix=f"{digest[:12]}-", dir=self.root / "tmp"))
        try:
            h = hashlib.sha256()
            received = 0
            with open(staging / "blob", "wb") as f:
                blocks = source.stream(digest, total)
                try:
                    for block in blocks:
                        h.update(block)
                        f.write(block)
                        received += len(block)
                        if received > total:
                            break  # verified below: more than announced is a corrupt transfer
                finally:
                    close = getattr(blocks, "close", None)
                    if close is not None:
                        close()
                if received < total:
                    raise ArtifactError(
                        f"artifact {digest[:16]}… ended after {received} of {total} bytes: transfer cut short"
                    )
                f.flush()
                os.fsync(f.fileno())
            actual = h.hexdigest()
            if actual != digest:
                raise CorruptArtifact(digest, actual, received)
            (staging / "size").write_text(str(received))
            final = self._dir(digest)
            try:
                os.rename(staging, final)
            except OSError as exc:  # a leftover of a process that died mid-rename: replace it
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                shutil.rmtree(final, ignore_errors=True)
                os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        entry = self._entry(digest)
        assert entry is not None
        return entry

    # -- the size bound -------------------------------------------------------

    def evict(self, keep: Iterable[str] = ()) -> list[str]:
        """Remove least recently used entries not in use until the cache fits ``max_bytes``.
        Returns the digests removed.  Entries in ``keep`` and entries in use stay
        (the cache may then stay above its bound until they are released)."""
        kept = set(keep)
        removed: list[str] = []
        fd = os.open(self.root / "locks" / ".evict", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one evictor at a time: sizes are read once
            self._sweep()
            entries = self.entries()
            total = sum(e.size for e in entries)
            for e in entries:
                if total <= self.max_bytes:
                    break
                if e.digest in kept:
                    continue
                lock = os.open(self.root / "locks" / e.digest, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # in use or being fetched
                    # Out of objects/ at once (a rename), then deleted at leisure.
                    grave = self.root / "tmp" / f"evicted-{e.digest[:12]}-{uuid.uuid4().hex[:6]}"
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(e.path, grave)
                        shutil.rmtree(grave, ignore_errors=True)
                        total -= e.size
                        removed.append(e.digest)
                finally:
                    os.close(lock)
        finally:
            os.close(fd)
        return removed

    def _sweep(self) -> None:
        """Remove what a process that died mid-transfer left in ``tmp/`` (older than
        :data:`STALE_SECONDS`: a live transfer keeps writing, so its folder stays young)."""
        cutoff = time.time() - STALE_SECONDS
        for p in (self.root / "tmp").iterdir():
            with contextlib.suppress(OSError):
                if p.lstat().st_mtime < cutoff:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def _touch(path: Path) -> None:
    now = time.time()
    with contextlib.suppress(OSError):
        os.utime(path, (now, now))

"""Content-addressed artifacts (no Ray): deterministic packing, verified transfer,
one fetch per artifact across processes, an LRU bound, and safe unpacking."""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing
import os
import socket
import struct
import tarfile
import threading
import time
from pathlib import Path

import pytest

from cncf.placement.artifacts import (
    MAX_CHUNK,
    ArtifactCache,
    ArtifactError,
    ChunkSource,
    CorruptArtifact,
    HttpSource,
    LocalFileSource,
    PackCache,
    SocketSource,
    UnsafeArchive,
    pack_folder,
    safe_extract,
    serve_chunks,
    sha256_file,
)
from tests.placement.forms import http_store


def _folder(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (root / "pkg" / "sub" / "data.bin").write_bytes(os.urandom(300_000))
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "pkg" / "link.py").symlink_to("__init__.py")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "x.pyc").write_bytes(os.urandom(64))
    return root


class CountingSource(ChunkSource):
    """A local source that records, in a file, every transfer it starts (offset 0): pid and digest."""

    def __init__(self, inner: LocalFileSource, log: Path, delay: float = 0.0, corrupt_at: int | None = None) -> None:
        self.inner, self.log, self.delay, self.corrupt_at = inner, log, delay, corrupt_at

    def size(self, digest: str) -> int:
        return self.inner.size(digest)

    def fetch(self, digest: str, offset: int, size: int) -> bytes:
        if offset == 0:
            with open(self.log, "a") as f:
                f.write(f"{os.getpid()} {digest}\n")
        time.sleep(self.delay)
        data = self.inner.fetch(digest, offset, size)
        if self.corrupt_at is not None and offset <= self.corrupt_at < offset + len(data):
            i = self.corrupt_at - offset
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        return data


# ---------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------


def test_the_same_folder_packs_to_the_same_hash_whatever_its_mtimes_and_order(tmp_path: Path) -> None:
    src = _folder(tmp_path / "a")
    first = pack_folder(src, tmp_path / "one.tar.gz")
    for p in src.rglob("*"):
        if not p.is_symlink():
            os.utime(p, (1_000_000, 1_000_000))
    (src / "pkg" / "__pycache__" / "y.pyc").write_bytes(b"changes every run")  # excluded
    second = pack_folder(src, tmp_path / "two.tar.gz")
    assert first == second == sha256_file(tmp_path / "one.tar.gz") == sha256_file(tmp_path / "two.tar.gz")
    # The same content written in another order, elsewhere: the same bytes.
    other = tmp_path / "b"
    (other / "run.sh").parent.mkdir(parents=True)
    (other / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (other / "run.sh").chmod(0o700)  # only "executable" survives, not the exact mode
    (other / "pkg" / "sub").mkdir(parents=True)
    (other / "pkg" / "link.py").symlink_to("__init__.py")
    (other / "pkg" / "sub" / "data.bin").write_bytes((src / "pkg" / "sub" / "data.bin").read_bytes())
    (other / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    assert pack_folder(other, tmp_path / "three.tar.gz") == first
    (other / "pkg" / "__init__.py").write_text("VALUE = 2\n")
    assert pack_folder(other, tmp_path / "four.tar.gz") != first
    with tarfile.open(tmp_path / "one.tar.gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and not any("__pycache__" in n for n in names)
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(315532800, 0, 0, "")}
    assert {m.name: m.mode for m in members if m.isfile()}["run.sh"] == 0o755


def test_the_hub_packs_a_folder_once_per_content(tmp_path: Path) -> None:
    src = _folder(tmp_path / "a")
    packs = PackCache(tmp_path / "packs")
    digest, archive = packs.pack(src)
    assert digest == sha256_file(archive) == pack_folder(src, tmp_path / "direct.tar.gz")
    written = archive.stat().st_mtime_ns
    time.sleep(0.01)
    assert packs.pack(src) == (digest, archive) and archive.stat().st_mtime_ns == written  # not packed again
    (src / "pkg" / "__pycache__" / "new.pyc").write_bytes(b"ignored")
    assert packs.pack(src)[0] == digest
    (src / "pkg" / "__init__.py").write_text("VALUE = 2\n")
    changed, other = packs.pack(src)
    assert changed != digest and other.is_file() and sha256_file(other) == changed
    (src / "pkg" / "__init__.py").write_text("VALUE = 1\n")  # back: a new mtime, the old content
    assert packs.pack(src)[0] == digest


def test_a_link_leaving_the_folder_is_not_packed(tmp_path: Path) -> None:
    src = _folder(tmp_path / "a")
    (src / "escape").symlink_to("../../etc/passwd")
    with pytest.raises(ArtifactError, match="leaving the folder"):
        pack_folder(src, tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()


def test_a_packed_folder_unpacks_to_the_same_files(tmp_path: Path) -> None:
    src = _folder(tmp_path / "a")
    pack_folder(src, tmp_path / "a.tar.gz")
    written = safe_extract(tmp_path / "a.tar.gz", tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "sub" / "data.bin").read_bytes() == (src / "pkg/sub/data.bin").read_bytes()
    assert os.readlink(tmp_path / "out" / "pkg" / "link.py") == "__init__.py"
    assert os.access(tmp_path / "out" / "run.sh", os.X_OK)
    assert written == sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file() and not p.is_symlink())


# ---------------------------------------------------------------------------
# Transfer and cache
# ---------------------------------------------------------------------------


def test_a_corrupted_transfer_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    blob = tmp_path / "app.jar"
    blob.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several chunks
    inner = LocalFileSource()
    digest = inner.add(blob)
    cache = ArtifactCache(tmp_path / "cache", max_bytes=1 << 30)
    bad = CountingSource(inner, tmp_path / "log", corrupt_at=2 * 1024 * 1024 + 5)
    with pytest.raises(CorruptArtifact) as err:
        cache.ensure(digest, bad)
    assert err.value.expected == digest and err.value.actual != digest
    assert not cache.has(digest) and list((tmp_path / "cache" / "tmp").iterdir()) == []
    entry = cache.ensure(digest, CountingSource(inner, tmp_path / "log"))  # a sound source next time
    assert entry.blob.read_bytes() == blob.read_bytes() and sha256_file(entry.blob) == digest


def test_a_short_transfer_is_refused(tmp_path: Path) -> None:
    class Short(LocalFileSource):
        def fetch(self, digest: str, offset: int, size: int) -> bytes:
            return b"" if offset >= 1024 else super().fetch(digest, offset, min(size, 1024))

    blob = tmp_path / "a.pyz"
    blob.write_bytes(os.urandom(5000))
    src = Short()
    digest = src.add(blob)
    with pytest.raises(ArtifactError, match="cut short"):
        ArtifactCache(tmp_path / "cache", 1 << 20).ensure(digest, src)


def test_sources_refuse_unbounded_chunks_and_digests_are_never_paths(tmp_path: Path) -> None:
    blob = tmp_path / "f"
    blob.write_bytes(b"x")
    src = LocalFileSource()
    digest = src.add(blob)
    with pytest.raises(ArtifactError):
        src.fetch(digest, 0, MAX_CHUNK + 1)
    with pytest.raises(ArtifactError):
        ArtifactCache(tmp_path / "cache", 100).ensure("../../etc", src)


def _fetch_in_process(root: str, digest: str, blob: str, log: str) -> str:
    inner = LocalFileSource({digest: blob})
    entry = ArtifactCache(root, max_bytes=1 << 30).ensure(digest, CountingSource(inner, Path(log), delay=0.4))
    return sha256_file(entry.blob)


def test_several_processes_asking_for_one_artifact_fetch_it_once(tmp_path: Path) -> None:
    blob = tmp_path / "big.jar"
    blob.write_bytes(os.urandom(4 * 1024 * 1024))  # 4 chunks x 0.4 s: the others arrive while it is fetched
    digest = sha256_file(blob)
    log = tmp_path / "fetches"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_fetch_in_process, [(str(tmp_path / "cache"), digest, str(blob), str(log))] * 4)
    assert results == [digest] * 4
    assert len(log.read_text().splitlines()) == 1  # one transfer for four processes
    assert [e.digest for e in ArtifactCache(tmp_path / "cache", 1 << 30).entries()] == [digest]


def test_the_cache_evicts_the_least_recently_used_entries_not_in_use(tmp_path: Path) -> None:
    src = LocalFileSource()
    digests = []
    for i in range(4):
        p = tmp_path / f"a{i}"
        p.write_bytes(os.urandom(1000) + bytes([i]))
        digests.append(src.add(p))
    cache = ArtifactCache(tmp_path / "cache", max_bytes=2500)  # room for two
    a, b, c, d = digests
    cache.ensure(a, src)
    time.sleep(0.01)
    cache.ensure(b, src)
    time.sleep(0.01)
    cache.ensure(a, src)  # a is now more recent than b
    time.sleep(0.01)
    cache.ensure(c, src)
    assert {e.digest for e in cache.entries()} == {a, c}  # b was least recently used
    with cache.use(a, src):  # a in use (shared lock) ...
        time.sleep(0.01)
        cache.ensure(d, src)
        time.sleep(0.01)
        cache.ensure(c, src)
        # a is now the least recently used, but in use: d goes instead.
        assert {e.digest for e in cache.entries()} == {a, c}
    cache.ensure(d, src)  # released: a is the one to go now
    assert {e.digest for e in cache.entries()} == {c, d}
    assert cache.total_bytes() <= 2500


def test_a_packed_folder_is_unpacked_once_and_counted(tmp_path: Path) -> None:
    src = _folder(tmp_path / "a")
    archive = tmp_path / "a.tar.gz"
    digest = pack_folder(src, archive)
    cache = ArtifactCache(tmp_path / "cache", 1 << 30)
    source = LocalFileSource({digest: archive})
    with cache.use(digest, source, unpack=True) as entry:
        assert (entry.tree / "pkg" / "__init__.py").read_text() == "VALUE = 1\n"
        assert entry.size > archive.stat().st_size  # the tree counts toward the bound
        inode = (entry.tree / "pkg" / "__init__.py").stat().st_ino
    assert (cache.unpacked(digest, source).tree / "pkg" / "__init__.py").stat().st_ino == inode


def test_what_a_dead_transfer_left_is_swept_but_a_live_one_is_not(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache", 1 << 20)
    dead, live = tmp_path / "cache" / "tmp" / "dead-1", tmp_path / "cache" / "tmp" / "live-1"
    for d in (dead, live):
        d.mkdir()
        (d / "blob").write_bytes(b"partial")
    os.utime(dead, (time.time() - 2 * 3600, time.time() - 2 * 3600))
    cache.evict()
    assert not dead.exists() and live.exists()


# ---------------------------------------------------------------------------
# The chunk protocol over a socket
# ---------------------------------------------------------------------------


def _served(source: ChunkSource) -> tuple[SocketSource, threading.Thread]:
    hub_side, node_side = socket.socketpair()

    def serve() -> None:
        with hub_side:  # serve_chunks leaves the socket to its owner
            serve_chunks(hub_side, source)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return SocketSource(node_side), t


def test_an_artifact_is_pulled_over_a_socket_in_chunks_and_verified(tmp_path: Path) -> None:
    blob = tmp_path / "fat.jar"
    blob.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    local = LocalFileSource()
    digest = local.add(blob)
    remote, server = _served(CountingSource(local, tmp_path / "log"))
    cache = ArtifactCache(tmp_path / "cache", 1 << 30)
    with pytest.raises(ArtifactError, match="no artifact"):  # the hub does not have it: said, not hung
        cache.ensure("0" * 64, remote)
    entry = cache.ensure(digest, remote)  # the same connection still works
    assert sha256_file(entry.blob) == digest
    remote.sock.close()
    server.join(5)
    assert not server.is_alive()  # the hub's side ends with the connection


def test_a_node_keeps_several_chunk_requests_in_flight(tmp_path: Path) -> None:
    """The hub's side here answers nothing until three requests have arrived: a node
    asking one chunk at a time would wait forever (the socket's timeout says so)."""
    from cncf.placement import artifacts

    blob = tmp_path / "big.jar"
    blob.write_bytes(os.urandom(5 * 1024 * 1024 + 17))
    local = LocalFileSource()
    digest = local.add(blob)
    hub_side, node_side = socket.socketpair()
    node_side.settimeout(10)
    seen: list[int] = []

    def serve() -> None:
        with hub_side:
            size = hub_side.recv(artifacts._REQUEST.size, socket.MSG_WAITALL)  # the size request
            hub_side.sendall(artifacts._REPLY.pack(artifacts._OK, 8) + struct.pack("!Q", blob.stat().st_size))
            assert artifacts._REQUEST.unpack(size)[0] == b"S"
            hub_side.settimeout(10)
            first = b""
            while len(first) < 3 * artifacts._REQUEST.size:  # three requests before any answer
                got = hub_side.recv(3 * artifacts._REQUEST.size - len(first))
                if not got:
                    break
                first += got
            heads = [first[i : i + artifacts._REQUEST.size] for i in range(0, len(first), artifacts._REQUEST.size)]
            seen.append(len(heads))
            for head in heads:
                _kind, _raw, offset, n = artifacts._REQUEST.unpack(head)
                data = local.fetch(digest, offset, n)
                hub_side.sendall(artifacts._REPLY.pack(artifacts._OK, len(data)) + data)
            hub_side.settimeout(None)
            serve_chunks(hub_side, local)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    entry = ArtifactCache(tmp_path / "cache", 1 << 30).ensure(digest, SocketSource(node_side, window=4))
    assert sha256_file(entry.blob) == digest
    assert seen == [3]
    node_side.close()
    t.join(5)


class _RefusingSource(ChunkSource):
    """The hub's file vanished after its first MiB was served."""

    def __init__(self, inner: LocalFileSource, refused: str) -> None:
        self.inner, self.refused = inner, refused

    def size(self, digest: str) -> int:
        return self.inner.size(digest)

    def fetch(self, digest: str, offset: int, size: int) -> bytes:
        if digest == self.refused and offset >= 1 << 20:
            raise ArtifactError("cannot read the artifact: it vanished")
        return self.inner.fetch(digest, offset, size)


def test_a_refusal_mid_stream_fails_that_artifact_and_the_connection_stays_usable(tmp_path: Path) -> None:
    local = LocalFileSource()
    gone = tmp_path / "gone.jar"
    gone.write_bytes(os.urandom(6 * 1024 * 1024))
    kept = tmp_path / "kept.jar"
    kept.write_bytes(os.urandom(3 * 1024 * 1024 + 1))
    refused, fine = local.add(gone), local.add(kept)
    remote, server = _served(_RefusingSource(local, refused))
    cache = ArtifactCache(tmp_path / "cache", 1 << 30)
    with pytest.raises(ArtifactError, match="vanished"):
        cache.ensure(refused, remote)
    assert cache._entry(refused) is None  # nothing half-written kept
    assert sha256_file(cache.ensure(fine, remote).blob) == fine  # the replies in flight were drained
    remote.sock.close()
    server.join(5)


def test_a_corrupting_or_oversending_peer_is_refused(tmp_path: Path) -> None:
    blob = tmp_path / "a.pyz"
    blob.write_bytes(os.urandom(2 * 1024 * 1024))
    local = LocalFileSource()
    digest = local.add(blob)
    remote, _ = _served(CountingSource(local, tmp_path / "log", corrupt_at=1_500_000))
    with pytest.raises(CorruptArtifact):
        ArtifactCache(tmp_path / "c1", 1 << 30).ensure(digest, remote)
    remote.sock.close()

    hub_side, node_side = socket.socketpair()

    def oversend() -> None:
        with hub_side, contextlib.suppress(OSError):
            hub_side.recv(4096)
            hub_side.sendall(struct.pack("!BI", 0, 8) + struct.pack("!Q", 10))  # size: 10 bytes
            hub_side.recv(4096)
            hub_side.sendall(struct.pack("!BI", 0, 1 << 20) + b"x" * (1 << 20))  # 1 MiB for 10

    threading.Thread(target=oversend, daemon=True).start()
    with pytest.raises(ArtifactError, match="answered"):
        ArtifactCache(tmp_path / "c2", 1 << 30).ensure(digest, SocketSource(node_side))
    node_side.close()
    assert not ArtifactCache(tmp_path / "c2", 1 << 30).has(digest)


def test_an_artifact_store_url_serves_chunks_by_range(tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    digest = hashlib.sha256(data).hexdigest()
    base, server = http_store({digest: data})
    try:
        entry = ArtifactCache(tmp_path / "cache", 1 << 30).ensure(digest, HttpSource(base))
        assert entry.blob.read_bytes() == data
        with pytest.raises(ArtifactError, match="no artifact"):
            ArtifactCache(tmp_path / "cache", 1 << 30).ensure("f" * 64, HttpSource(base))
    finally:
        server.shutdown()
        server.server_close()
    ignoring, server = http_store({digest: data}, honour_range=False)
    try:
        with pytest.raises(ArtifactError, match="more than"):
            ArtifactCache(tmp_path / "other", 1 << 30).ensure(digest, HttpSource(ignoring))
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ArtifactError, match="cannot be reached"):
        HttpSource(base, timeout=5).size(digest)  # the store is gone


def test_the_artifact_store_is_asked_first_and_the_hub_only_for_what_it_lacks(tmp_path: Path) -> None:
    from cncf.placement.artifacts import FirstOf

    in_store, only_hub = os.urandom(3 * 1024 * 1024), os.urandom(1024 * 1024 + 1)
    local = LocalFileSource()
    for name, data in (("a", in_store), ("b", only_hub)):
        (tmp_path / name).write_bytes(data)
        local.add(tmp_path / name)
    a, b = hashlib.sha256(in_store).hexdigest(), hashlib.sha256(only_hub).hexdigest()
    log: list[str] = []
    base, server = http_store({a: in_store}, log=log)
    hub, hub_thread = _served(CountingSource(local, tmp_path / "hub-log"))
    try:
        source = FirstOf([HttpSource(base), hub])
        cache = ArtifactCache(tmp_path / "cache", 1 << 30)
        assert cache.ensure(a, source).blob.read_bytes() == in_store
        assert cache.ensure(b, source).blob.read_bytes() == only_hub
        assert source.served_by(a) is not hub and source.served_by(b) is hub
        assert [line for line in log if line.startswith("GET")] and all(a in line for line in log if "GET" in line)
        hub_reads = (tmp_path / "hub-log").read_text().split()
        assert a not in hub_reads and b in hub_reads  # the hub served only what the store lacks
        with pytest.raises(ArtifactError, match="no artifact"):
            cache.ensure("e" * 64, source)  # neither has it: both said so
    finally:
        server.shutdown()
        server.server_close()
        hub.sock.close()
        hub_thread.join(5)


# ---------------------------------------------------------------------------
# Unsafe archives
# ---------------------------------------------------------------------------


def _tar(path: Path, *members: tuple[str, str, bytes | str]) -> Path:
    with tarfile.open(path, "w") as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
                tar.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
    return path


@pytest.mark.parametrize(
    "members",
    [
        [("file", "../evil.py", "x")],
        [("file", "ok/../../evil.py", "x")],
        [("file", "/tmp/evil.py", "x")],
        [("sym", "up", "../.."), ("file", "fine.txt", "x")],
        [("sym", "abs", "/etc")],
        [("sym", "d", "sub"), ("dir", "sub", ""), ("file", "d/through.txt", "x")],
        [("dir", "d1", ""), ("sym", "d1/d2", ".."), ("sym", "d1/d2/e", "../x")],
        [("file", "a", "x"), ("hard", "b", "a")],
        [("fifo", "pipe", "")],
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "absolute",
        "link-up",
        "link-absolute",
        "through-link",
        "link-chain",
        "hard",
        "fifo",
    ],
)
def test_unsafe_archives_are_refused_before_anything_is_written(
    tmp_path: Path, members: list[tuple[str, str, str]]
) -> None:
    archive = _tar(tmp_path / "bad.tar", *members)
    with pytest.raises(UnsafeArchive):
        safe_extract(archive, tmp_path / "root" / "out")
    assert not (tmp_path / "root").exists() or list((tmp_path / "root").iterdir()) == []
    assert not (tmp_path / "evil.py").exists()


def test_an_archive_larger_than_the_bound_is_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "big.tar", ("file", "a", b"\0" * 4096), ("file", "b", b"\0" * 4096))
    with pytest.raises(UnsafeArchive, match="more than"):
        safe_extract(archive, tmp_path / "out", max_bytes=6000)
    with pytest.raises(UnsafeArchive, match="entries"):
        safe_extract(archive, tmp_path / "out", max_entries=1)
    assert safe_extract(archive, tmp_path / "out", max_bytes=8192) == 8192

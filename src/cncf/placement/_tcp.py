"""The TCP transport of a placed boundary: authenticated connections, both ends.

Standard library only: the node side imports it inside a Ray actor.  A placed
worker speaks the same frames as a local one; only the bytes move over TCP
instead of pipes.  One placement opens five connections to the node, each
named by a role byte:

``M`` requests and replies (the worker's ``CNCF_FD_REQUESTS`` / ``_REPLIES``),
``C`` control (``CNCF_FD_CONTROL``), ``O`` / ``E`` the worker's stdout and
stderr (its fd 1 and 2, so output is written before the reply that follows
it), ``S`` supervision: the node's heartbeat and the worker's exit status one
way, ``kill`` the other; and a sixth, ``A``, on which the node pulls the
placement's artifacts in bounded chunks (:mod:`cncf.placement.artifacts`).

Authentication is mutual, per connection, with a per-instance secret that
travels only through Ray (never over these sockets): the node sends a nonce,
the hub answers ``role + its nonce + HMAC(secret, "hub" + node nonce + role)``
and the node proves itself with ``HMAC(secret, "node" + hub nonce + role)``.
A connection that fails is closed and the node keeps listening until its
deadline; nothing runs until every role is authenticated, and the listening
socket closes as soon as they are.  So the port never runs code for whoever
connects (execnet's socket gateway does; this one does not).

The node handshakes every connection at once (one thread, a selector): a
peer that connects and stays silent holds only its own slot, for at most
:data:`HANDSHAKE_TIMEOUT` seconds, never the hub's connections behind it; at
most :data:`MAX_PENDING` handshakes are open at a time (the oldest is dropped
for a newcomer).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import selectors
import socket
import time
from collections.abc import Sequence

MAGIC = b"CNCF-NODE-1\n"
NONCE = 16
MAC = 32
ROLES = (b"M", b"C", b"O", b"E", b"S")
MAIN, CONTROL, STDOUT, STDERR, SUPERVISION = ROLES
#: The sixth role of a placement: the node pulls artifacts on it (``artifacts.SocketSource``),
#: the hub answers (``artifacts.serve_chunks``); it lives as long as the node actor.
ARTIFACTS = b"A"
PLACED_ROLES = (*ROLES, ARTIFACTS)
#: Seconds between two heartbeats of a node, and how long the hub waits for one.
HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 10.0
#: Seconds a connection may take to prove itself to a node; handshakes open at once.
HANDSHAKE_TIMEOUT = 3.0
MAX_PENDING = 64


class HandshakeError(ConnectionError):
    pass


def new_secret() -> bytes:
    return os.urandom(32)


def _mac(secret: bytes | bytearray, label: bytes, nonce: bytes, role: bytes) -> bytes:
    return hmac.new(secret, label + nonce + role, hashlib.sha256).digest()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            raise HandshakeError("the peer closed the connection during the handshake")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def tune(sock: socket.socket, *, keepalive: bool = True) -> None:
    """No Nagle delay (one frame is one small write) and a kernel heartbeat under ours."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if keepalive:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", 5),
            ("TCP_KEEPINTVL", 2),
            ("TCP_KEEPCNT", 3),
            ("TCP_USER_TIMEOUT", int(HEARTBEAT_TIMEOUT * 1000)),
        ):
            opt = getattr(socket, name, None)
            if opt is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, opt, value)


# ---------------------------------------------------------------- hub side


def connect(host: str, port: int, secret: bytes, role: bytes, timeout: float) -> socket.socket:
    """One authenticated connection to a node (blocking); ``HandshakeError`` on a bad peer."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        hello = _recv_exact(sock, len(MAGIC) + NONCE)
        if not hello.startswith(MAGIC):
            raise HandshakeError("the peer is not a cncf node")
        node_nonce = hello[len(MAGIC) :]
        hub_nonce = os.urandom(NONCE)
        sock.sendall(role + hub_nonce + _mac(secret, b"hub", node_nonce, role))
        proof = _recv_exact(sock, MAC)
        if not hmac.compare_digest(proof, _mac(secret, b"node", hub_nonce, role)):
            raise HandshakeError("the node did not prove it holds the placement's secret")
        sock.settimeout(None)
        tune(sock)
        return sock
    except BaseException:
        sock.close()
        raise


def connect_all(
    host: str, port: int, secret: bytes, timeout: float, roles: Sequence[bytes] = ROLES
) -> dict[bytes, socket.socket]:
    out: dict[bytes, socket.socket] = {}
    try:
        for role in roles:
            out[role] = connect(host, port, secret, role, timeout)
    except BaseException:
        for s in out.values():
            s.close()
        raise
    return out


# --------------------------------------------------------------- node side


def listener(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(MAX_PENDING)
    return sock


class _Pending:
    __slots__ = ("nonce", "buf", "expires")

    def __init__(self, nonce: bytes, expires: float) -> None:
        self.nonce = nonce
        self.buf = bytearray()
        self.expires = expires


def accept_all(
    lsock: socket.socket, secret: bytes | bytearray, deadline: float, roles: Sequence[bytes] = ROLES
) -> dict[bytes, socket.socket]:
    """Accept until every role has one authenticated connection, or the deadline.

    Handshakes run concurrently (see the module doc).  A peer that does not
    authenticate within :data:`HANDSHAKE_TIMEOUT` is dropped and does not
    count.  Raises ``TimeoutError`` at the deadline (every accepted socket
    closed).
    """
    out: dict[bytes, socket.socket] = {}
    pending: dict[socket.socket, _Pending] = {}
    want = 1 + NONCE + MAC
    sel = selectors.DefaultSelector()

    def drop(sock: socket.socket) -> None:
        pending.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(sock)
        sock.close()

    try:
        lsock.setblocking(False)
        sel.register(lsock, selectors.EVENT_READ)
        while len(out) < len(roles):
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError("the hub did not connect every channel in time")
            for sock in [s for s, p in pending.items() if p.expires <= now]:
                drop(sock)
            wake = min([deadline, *(p.expires for p in pending.values())])
            for key, _ in sel.select(max(0.0, wake - now)):
                ready = key.fileobj
                if not isinstance(ready, socket.socket):  # pragma: no cover - only sockets are registered
                    continue
                sock = ready
                if sock is lsock:
                    try:
                        conn, _ = lsock.accept()
                    except OSError:  # BlockingIOError, or the peer already gone
                        continue
                    if len(pending) >= MAX_PENDING:
                        drop(min(pending, key=lambda s: pending[s].expires))
                    nonce = os.urandom(NONCE)
                    try:
                        conn.setblocking(False)
                        conn.send(MAGIC + nonce)  # 28 bytes into a fresh socket's buffer
                    except OSError:
                        conn.close()
                        continue
                    pending[conn] = _Pending(nonce, time.monotonic() + HANDSHAKE_TIMEOUT)
                    sel.register(conn, selectors.EVENT_READ)
                    continue
                state = pending.get(sock)
                if state is None:
                    continue
                try:
                    chunk = sock.recv(want - len(state.buf))
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    drop(sock)
                    continue
                state.buf += chunk
                if len(state.buf) < want:
                    continue
                msg = bytes(state.buf)
                pending.pop(sock, None)
                sel.unregister(sock)
                role, hub_nonce, mac = msg[:1], msg[1 : 1 + NONCE], msg[1 + NONCE :]
                if (
                    role not in roles
                    or role in out
                    or not hmac.compare_digest(mac, _mac(secret, b"hub", state.nonce, role))
                ):
                    sock.close()
                    continue
                try:
                    sock.setblocking(True)
                    sock.settimeout(HANDSHAKE_TIMEOUT)
                    sock.sendall(_mac(secret, b"node", hub_nonce, role))
                except OSError:
                    sock.close()
                    continue
                sock.settimeout(None)
                tune(sock)
                out[role] = sock
    except BaseException:
        for s in out.values():
            s.close()
        raise
    finally:
        for s in list(pending):
            s.close()
        sel.close()
        lsock.close()
    return out

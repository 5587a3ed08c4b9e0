"""The TCP transport of a placed boundary: authenticated connections, both ends.

Standard library only: the node side imports it inside a Ray actor.  A placed
worker speaks the same frames as a local one; only the bytes move over TCP
instead of pipes.  One placement opens five connections to the node, each
named by a role byte:

``M`` requests and replies (the worker's ``CNCF_FD_REQUESTS`` / ``_REPLIES``),
``C`` control (``CNCF_FD_CONTROL``), ``O`` / ``E`` the worker's stdout and
stderr (its fd 1 and 2, so output is written before the reply that follows
it), ``S`` supervision: the node's heartbeat and the worker's exit status one
way, ``kill`` the other.

Authentication is mutual, per connection, with a per-instance secret that
travels only through Ray (never over these sockets): the node sends a nonce,
the hub answers ``role + its nonce + HMAC(secret, "hub" + node nonce + role)``
and the node proves itself with ``HMAC(secret, "node" + hub nonce + role)``.
A connection that fails is closed and the node keeps listening until its
deadline; nothing runs until every role is authenticated, and the listening
socket closes as soon as they are.  So the port never runs code for whoever
connects (execnet's socket gateway does; this one does not).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import socket
import time
from collections.abc import Sequence

MAGIC = b"CNCF-NODE-1\n"
NONCE = 16
MAC = 32
ROLES = (b"M", b"C", b"O", b"E", b"S")
MAIN, CONTROL, STDOUT, STDERR, SUPERVISION = ROLES
#: Seconds between two heartbeats of a node, and how long the hub waits for one.
HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 10.0


class HandshakeError(ConnectionError):
    pass


def new_secret() -> bytes:
    return os.urandom(32)


def _mac(secret: bytes, label: bytes, nonce: bytes, role: bytes) -> bytes:
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
    sock.listen(8)
    return sock


def accept_all(
    lsock: socket.socket, secret: bytes, deadline: float, roles: Sequence[bytes] = ROLES
) -> dict[bytes, socket.socket]:
    """Accept until every role has one authenticated connection, or the deadline.

    A peer that does not authenticate is dropped and does not count.  Raises
    ``TimeoutError`` at the deadline (every accepted socket closed).
    """
    out: dict[bytes, socket.socket] = {}
    try:
        while len(out) < len(roles):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the hub did not connect every channel in time")
            lsock.settimeout(left)
            sock, _ = lsock.accept()
            sock.settimeout(min(max(left, 0.1), 10.0))
            try:
                nonce = os.urandom(NONCE)
                sock.sendall(MAGIC + nonce)
                msg = _recv_exact(sock, 1 + NONCE + MAC)
                role, hub_nonce, mac = msg[:1], msg[1 : 1 + NONCE], msg[1 + NONCE :]
                if role not in roles or role in out or not hmac.compare_digest(mac, _mac(secret, b"hub", nonce, role)):
                    raise HandshakeError("bad credentials")
                sock.sendall(_mac(secret, b"node", hub_nonce, role))
            except (OSError, HandshakeError):
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
        lsock.close()
    return out

"""Who is on the other end: the peer's user on a loopback or Unix socket.

On a Unix socket the kernel says it (``SO_PEERCRED``).  On loopback TCP the
kernel knows the user that opened every socket: asked through netlink
(``sock_diag``, the one socket with the peer's address and port, as ``ss``
asks; a few µs), or else read from ``/proc/net/tcp`` and ``/proc/net/tcp6``
(the socket whose local address is our remote one and whose remote address
is our local one).
A peer of another user than the hub's (root excepted: it can read the token
anyway) is *foreign*: the reception then asks it for the token as it asks a
remote client.  When the kernel does not let it be checked (no ``/proc``),
the peer is taken as the hub's user, and ``docs/security.md`` says so.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Any


def _hex(addr: str, port: int) -> tuple[str, ...]:
    """The ways ``/proc/net/tcp[6]`` writes ``addr:port``."""
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    p = f"{port:04X}"
    if ip.version == 4:
        v4 = f"{struct.unpack('<I', ip.packed)[0]:08X}"
        mapped = ipaddress.IPv6Address("::ffff:" + addr).packed
        v6 = "".join(f"{w:08X}" for w in struct.unpack("<4I", mapped))
        return (f"{v4}:{p}", f"{v6}:{p}")
    v6 = "".join(f"{w:08X}" for w in struct.unpack("<4I", ip.packed))
    return (f"{v6}:{p}",)


def tcp_peer_uid(local: tuple[Any, ...], remote: tuple[Any, ...]) -> int | None:
    """The uid owning the socket at ``remote`` connected to ``local``; None when unknown."""
    try:
        theirs = set(_hex(remote[0], remote[1]))
        ours = set(_hex(local[0], local[1]))
    except ValueError:
        return None
    seen = False
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError:
            continue
        seen = True
        for line in data.split(b"\n")[1:]:
            fields = line.split()
            if len(fields) > 7 and fields[1].decode() in theirs and fields[2].decode() in ours:
                return int(fields[7])
    return -1 if seen else None  # listed nowhere: gone already (-1: nobody we know)


_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, _NLMSG_ERROR = 4, 20, 1, 2
_diag: socket.socket | None = None


def _diag_socket() -> socket.socket:
    global _diag
    if _diag is None:
        _diag = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_SOCK_DIAG)
        _diag.settimeout(1.0)
    return _diag


def netlink_peer_uid(family: int, local: tuple[Any, ...], remote: tuple[Any, ...]) -> int | None:
    """The uid of the TCP socket at ``remote`` connected to ``local`` (inet_diag,
    an exact lookup); -1 when the kernel has no such socket, None when it cannot be asked."""
    try:
        peer_ip = socket.inet_pton(family, remote[0].split("%", 1)[0]).ljust(16, b"\0")
        our_ip = socket.inet_pton(family, local[0].split("%", 1)[0]).ljust(16, b"\0")
    except OSError:
        return None
    sockid = struct.pack("!HH16s16s", remote[1], local[1], peer_ip, our_ip) + struct.pack(
        "=III", 0, 0xFFFFFFFF, 0xFFFFFFFF
    )
    req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    msg = struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + req
    try:
        nl = _diag_socket()
        nl.send(msg)
        data = nl.recv(8192)
    except OSError:
        return None
    if len(data) < 16:
        return None
    mtype = struct.unpack_from("=H", data, 4)[0]
    if mtype == _NLMSG_ERROR:
        errno = -struct.unpack_from("=i", data, 16)[0]
        return -1 if errno == 2 else None  # ENOENT: no such socket (gone already)
    if mtype != _SOCK_DIAG_BY_FAMILY or len(data) < 16 + 88:
        return None
    return int(struct.unpack_from("=I", data, 16 + 4 + 48 + 12)[0])


def peer_uid(sock: socket.socket) -> int | None:
    """The peer's uid, or None when the kernel does not say."""
    try:
        if sock.family == socket.AF_UNIX:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            return int(struct.unpack("3i", creds)[1])
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            remote = sock.getpeername()
            if not ipaddress.ip_address(remote[0].split("%", 1)[0]).is_loopback:
                return None  # a remote client: the token rule of a non-loopback hub applies
            local = sock.getsockname()
            uid = netlink_peer_uid(sock.family, local, remote)
            return uid if uid is not None else tcp_peer_uid(local, remote)
    except (OSError, ValueError):
        return None
    return None


def foreign(transport: Any) -> bool:
    """Is the peer of ``transport`` another local user than this process's?"""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    uid = peer_uid(sock)
    return uid is not None and uid not in (os.geteuid(), 0)


__all__ = ["foreign", "netlink_peer_uid", "peer_uid", "tcp_peer_uid"]

"""The placed channel's TCP transport over real sockets: mutual authentication,
a port that ignores whoever cannot prove the secret, and frames as on a pipe."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from cncf.placement import _tcp
from cncf.wire.frames import FrameBuffer, Kind, encode


def _serve(secret: bytes, roles: tuple[bytes, ...], timeout: float = 10.0):  # noqa: ANN202
    lsock = _tcp.listener("127.0.0.1")
    port = lsock.getsockname()[1]
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["socks"] = _tcp.accept_all(lsock, secret, time.monotonic() + timeout, roles)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            result["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return port, t, result


def test_a_wrong_secret_is_refused_and_does_not_count() -> None:
    secret = _tcp.new_secret()
    port, t, result = _serve(secret, (_tcp.MAIN, _tcp.CONTROL))
    with pytest.raises(_tcp.HandshakeError):
        _tcp.connect("127.0.0.1", port, _tcp.new_secret(), _tcp.MAIN, timeout=5)
    junk = socket.create_connection(("127.0.0.1", port))
    junk.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"x" * 64)  # not a hub at all
    junk.close()
    socks = _tcp.connect_all("127.0.0.1", port, secret, timeout=5, roles=(_tcp.MAIN, _tcp.CONTROL))
    t.join(10)
    assert sorted(result["socks"]) == [_tcp.CONTROL, _tcp.MAIN]  # type: ignore[call-overload]
    with pytest.raises(ConnectionRefusedError):  # the listener closed once every role arrived
        socket.create_connection(("127.0.0.1", port), timeout=2)
    for s in [*socks.values(), *result["socks"].values()]:  # type: ignore[union-attr]
        s.close()


def test_the_hub_refuses_a_node_that_cannot_prove_the_secret() -> None:
    port, t, result = _serve(_tcp.new_secret(), (_tcp.MAIN,), timeout=2)
    with pytest.raises(_tcp.HandshakeError):
        _tcp.connect("127.0.0.1", port, _tcp.new_secret(), _tcp.MAIN, timeout=5)
    t.join(10)
    assert isinstance(result.get("error"), TimeoutError)  # nothing accepted before the deadline


def test_frames_cross_the_socket_as_on_a_pipe() -> None:
    secret = _tcp.new_secret()
    port, t, result = _serve(secret, (_tcp.MAIN,))
    hub = _tcp.connect("127.0.0.1", port, secret, _tcp.MAIN, timeout=5)
    t.join(10)
    node = result["socks"][_tcp.MAIN]  # type: ignore[index]
    assert node.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert hub.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    big = {"id": 1, "args": ["x" * 300_000]}
    hub.sendall(encode(Kind.INVOKE, big))
    frames, buf = [], FrameBuffer()
    while not frames:
        frames = buf.feed(os.read(node.fileno(), 1 << 16))  # the worker's os.read works on a socket
    assert frames == [(Kind.INVOKE, big)]
    hub.close()
    node.close()

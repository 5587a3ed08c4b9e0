"""The Ray node (issue 16, item 10): handshakes at once, keeps no secret.

Silent connections to a node's port cannot hold up the hub's own (they were
handshaken one at a time, up to 10 s each: four made a placement fail after
29.8 s); the channel secret is not something Ray's ``__ray_call__`` can read
off the actor.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import cncf
from cncf.placement import _tcp


@pytest.fixture(scope="module")  # this file's own cluster, stopped when its one test is done
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.placement.conftest import RayCluster

    c = RayCluster(tmp_path_factory.mktemp("node-cache"))
    try:
        yield c
    finally:
        c.shutdown()


def serve(secret: bytes, timeout: float = 30.0) -> tuple[int, threading.Thread, dict[str, Any]]:
    lsock = _tcp.listener("127.0.0.1")
    port = lsock.getsockname()[1]
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["socks"] = _tcp.accept_all(lsock, secret, time.monotonic() + timeout)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            result["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return port, t, result


@pytest.mark.parametrize("silent", [4, 200])
def test_silent_connections_do_not_hold_up_the_hubs(silent: int) -> None:
    secret = _tcp.new_secret()
    port, t, result = serve(secret)
    squatters = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(silent)]
    try:
        started = time.monotonic()
        socks = _tcp.connect_all("127.0.0.1", port, secret, timeout=10)
        took = time.monotonic() - started
        t.join(10)
        assert sorted(result["socks"]) == sorted(_tcp.ROLES), result.get("error")
        assert took < 3.0, f"the hub's five connections took {took:.1f}s behind {silent} silent ones"
        for s in [*socks.values(), *result["socks"].values()]:
            s.close()
    finally:
        for s in squatters:
            s.close()


def test_a_silent_connection_is_dropped_after_the_handshake_timeout() -> None:
    port, t, result = serve(_tcp.new_secret(), timeout=_tcp.HANDSHAKE_TIMEOUT + 5)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(_tcp.HANDSHAKE_TIMEOUT + 3)
    assert s.recv(64).startswith(_tcp.MAGIC)
    started = time.monotonic()
    assert s.recv(64) == b""  # closed by the node, not left open until the deadline
    assert time.monotonic() - started < _tcp.HANDSHAKE_TIMEOUT + 1.5
    s.close()
    t.join(10)


def test_channel_secret_is_not_readable_through_ray_call(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, cluster: Any
) -> None:
    from tests.placement.conftest import ECHO

    ray = cluster.ray
    known = b"cncf-known-secret-" + b"x" * 14
    monkeypatch.setattr(_tcp, "new_secret", lambda: known)
    with cncf.Hub(home=tmp_path / "home") as hub:
        handle = hub.load(ECHO, placement="ray", placement_resources={"alpha": 1})
        assert handle.state == "ready", handle.observation
        assert hub.call("echo.echo", [1]).value == 1
        actors = cluster.cncf_actors()
        assert actors
        from cncf.placement.ray_cluster import NAMESPACE

        def look(self: Any) -> dict[str, Any]:
            import gc

            seen = {k: repr(v) for k, v in vars(self).items()}
            in_memory = False
            for obj in gc.get_objects():
                try:
                    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple) else ()
                    if known in values:
                        in_memory = True
                except Exception:  # noqa: BLE001,S112 - objects with odd equality
                    continue
            return {"attributes": seen, "in_memory": in_memory}

        for a in actors:
            actor = ray.get_actor(a.name, namespace=NAMESPACE)
            found = ray.get(actor.__ray_call__.remote(look), timeout=30)
            assert not any(known.decode() in v or known.hex() in v for v in found["attributes"].values())
            assert not found["in_memory"], "the secret is still held by the actor after the handshake"

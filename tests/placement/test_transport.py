"""The placed channel's TCP transport over real sockets: mutual authentication,
a port that ignores whoever cannot prove the secret, and frames as on a pipe."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from cncf.observation import Failed, Stage
from cncf.placement import _tcp
from cncf.placement.remote import RemoteWorker
from cncf.wire.frames import FrameBuffer, Kind, encode
from cncf.wire.link import WorkerLink


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


# ---------------------------------------------------------------------------
# The remote worker link, without Ray: a real worker process behind real sockets
# ---------------------------------------------------------------------------


class _Node:
    """What the node actor does for one worker (``ray_node``), in a thread: accept
    the hub's authenticated connections, start the worker on them, report
    ``started`` / ``beat`` / ``exit`` on the supervision connection."""

    def __init__(self, argv: list[str] | None, *, report_exit: bool = True) -> None:
        self.secret = _tcp.new_secret()
        self.lsock = _tcp.listener("127.0.0.1")
        self.port = self.lsock.getsockname()[1]
        self.argv = argv
        self.report_exit = report_exit
        self.proc: subprocess.Popen[bytes] | None = None
        self.sup: socket.socket | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _send(self, body: dict[str, object]) -> None:
        assert self.sup is not None
        with contextlib.suppress(OSError):
            self.sup.sendall(encode(Kind.EVENT, body))

    def _run(self) -> None:
        socks = _tcp.accept_all(self.lsock, self.secret, time.monotonic() + 10)
        self.sup = socks[_tcp.SUPERVISION]
        if self.argv is None:
            self._send({"type": "spawn_failed", "error": "No such file or directory", "argv0": "nowhere"})
            for role in (_tcp.MAIN, _tcp.CONTROL, _tcp.STDOUT, _tcp.STDERR):
                socks[role].close()
            return
        main, ctl = socks[_tcp.MAIN], socks[_tcp.CONTROL]
        reply = os.dup(main.fileno())
        env = {
            **os.environ,
            "CNCF_PROTOCOL": "1",
            "CNCF_FD_REQUESTS": str(main.fileno()),
            "CNCF_FD_REPLIES": str(reply),
            "CNCF_FD_CONTROL": str(ctl.fileno()),
        }
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=socks[_tcp.STDOUT].fileno(),
            stderr=socks[_tcp.STDERR].fileno(),
            pass_fds=(main.fileno(), reply, ctl.fileno()),
            env=env,
            start_new_session=True,
        )
        os.close(reply)
        for role in (_tcp.MAIN, _tcp.CONTROL, _tcp.STDOUT, _tcp.STDERR):
            socks[role].close()
        self._send({"type": "started", "pid": self.proc.pid})
        while self.proc.poll() is None and not self.stopped.is_set():
            self._send({"type": "beat", "rss_kb": 1234})
            time.sleep(0.2)
        code = self.proc.wait()
        if self.report_exit:
            self._send({"type": "exit", "returncode": code})

    def lose(self) -> None:
        """The node vanishes: the supervision connection closes with no exit status."""
        self.report_exit = False
        assert self.sup is not None
        self.sup.close()

    def stop(self) -> None:
        self.stopped.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.thread.join(10)
        if self.sup is not None:
            self.sup.close()


class _Handle:
    """A NodeHandle whose ``watch`` lasts as long as the test (Ray's verdict never comes)."""

    def __init__(self, node: _Node) -> None:
        self.node = node

    def describe(self) -> dict[str, object]:
        return {"engine": "ray", "node_id": "n" * 40, "address": "127.0.0.1"}

    async def watch(self) -> None:
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.node.stop()

    async def death_cause(self) -> str | None:
        return None


async def _attach(node: _Node, start_timeout: float = 20.0) -> RemoteWorker:
    socks = await asyncio.to_thread(_tcp.connect_all, "127.0.0.1", node.port, node.secret, 10)
    return await RemoteWorker.attach(socks, _Handle(node), label="far", start_timeout=start_timeout)


def _python_worker() -> list[str]:
    from cncf.boundaries.python import worker_argv

    return worker_argv(sys.executable, site=False)


def test_a_remote_link_is_a_worker_link_and_crashes_as_a_local_one() -> None:
    async def scenario() -> None:
        node = _Node(_python_worker())
        w = await _attach(node)
        try:
            link: WorkerLink = w  # the one contract the boundaries use
            assert node.proc is not None
            assert link.hello["protocol"] == 1 and link.alive and not link.exited_unnoticed()
            assert link.placement["engine"] == "ray" and link.pid == node.proc.pid
            pong = await w.channel.request(Kind.PING, {}, stage=Stage.EXECUTE)
            assert pong["ok"]
            await asyncio.sleep(0.5)
            assert w.rss_kb() == 1234  # the node's heartbeat figure
            os.kill(node.proc.pid, signal.SIGKILL)  # (before the request: a ping could be answered first)
            pending = w.channel.start(Kind.PING, {})
            with pytest.raises(Failed) as info:
                await asyncio.wait_for(pending.reply(Stage.EXECUTE), 10)
            obs = info.value.observation
            assert (obs.code, obs.stage, obs.attributes["signal"]) == ("worker_crashed", "execute", 9)
            assert obs.attributes["node_address"] == "127.0.0.1" and not w.alive
        finally:
            await w.close()
            node.stop()

    asyncio.run(scenario())


def test_a_remote_node_that_vanishes_is_node_lost_and_retryable() -> None:
    async def scenario() -> None:
        node = _Node(_python_worker())
        w = await _attach(node)
        try:
            pending = w.channel.start(Kind.PING, {})
            await pending.reply(Stage.EXECUTE)
            slow = w.channel.start(Kind.PING, {})
            await asyncio.sleep(0)
            node.lose()
            with contextlib.suppress(Failed):
                await asyncio.wait_for(slow.reply(Stage.EXECUTE), 5)
            dead = w.channel.dead
            assert dead is not None
            assert (dead.code, dead.stage, dead.retryable) == ("node_lost", "execute", True)
            assert dead.attributes["node_id"] == "n" * 40
        finally:
            await w.close()
            node.stop()

    asyncio.run(scenario())


def test_a_remote_start_failure_is_worker_start_failed() -> None:
    async def scenario() -> None:
        node = _Node(None)  # the node cannot start the worker
        with pytest.raises(Failed) as info:
            await _attach(node)
        obs = info.value.observation
        assert (obs.code, obs.stage) == ("worker_start_failed", "load")
        assert obs.attributes["node_address"] == "127.0.0.1"
        node.stop()

    asyncio.run(scenario())


def test_a_remote_worker_that_never_says_hello_is_worker_start_failed() -> None:
    async def scenario() -> None:
        node = _Node([sys.executable, "-c", "import time; print('booting', flush=True); time.sleep(60)"])
        t0 = time.monotonic()
        with pytest.raises(Failed) as info:
            await _attach(node, start_timeout=1.0)
        obs = info.value.observation
        assert (obs.code, obs.stage) == ("worker_start_failed", "load")
        assert time.monotonic() - t0 < 8
        node.stop()

    asyncio.run(scenario())

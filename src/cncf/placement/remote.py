"""A worker on another node, spoken to over TCP exactly as a local one over pipes.

:class:`RemoteWorker` is the hub side of a placed worker, a process that is
not our child: the remote link (:mod:`cncf.wire.link`), sibling of the local
:class:`~cncf.wire.process.WorkerProcess`.  The handshake and the rule that turns a death into an Observation
are the link's (:class:`~cncf.wire.link.LinkCore`), written once for both.
The :class:`~cncf.wire.channel.Channel` is the same class, unchanged
— request ids, the kind → handler table, the spin, the frames — over socket
descriptors instead of pipes (the transport under the channel is the only
thing placement chooses).  What differs is how the process is watched and
ended, which is the node's business:

* **liveness**: the node actor's heartbeat on the supervision connection
  (a node lost on a real network may never send EOF), the worker's exit
  status sent there when it ends, TCP keepalive under both, and Ray's own
  verdict (the actor's ``watch`` task raises ``ActorDiedError``);
* **death**: EOF on the calls connection waits briefly for the exit status;
  an exit status is a crash of the worker (``worker_crashed``, as locally)
  unless the node says it is going down (its raylet ended, and the node
  actor's death took the worker with it); that, the supervision connection
  closing without an exit status, a missed heartbeat or Ray's verdict is the
  loss of the node (``node_lost``, retryable, naming it);
* **output**: the worker's fd 1 / 2 are sockets to the hub, copied into the
  same capture files a local worker writes, drained before each reply is
  attributed (the worker wrote them before its reply);
* **temporary folder**: the node's own (``TMPDIR`` of the node actor's
  environment); the hub's run folder is not on the node;
* **kill / close**: ``kill`` on the supervision connection (the node ends the
  worker's process group); ``close`` then stops the node actor and kills it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from cncf.observation import Code, Failed, Observation, Stage
from cncf.placement import _tcp
from cncf.wire.channel import Channel
from cncf.wire.frames import FrameBuffer, Kind, ProtocolError, encode
from cncf.wire.link import LinkCore, WorkerLink

#: After EOF on the calls connection, how long to wait for the exit status.
_SETTLE = 1.0


class NodeHandle(Protocol):
    """What a cluster engine gives a remote worker: where it lives and how to end it."""

    def describe(self) -> dict[str, Any]: ...

    def watch(self) -> Awaitable[Any]: ...

    async def stop(self, lost: bool = False) -> None: ...

    async def death_cause(self) -> str | None: ...


class RemoteWorker(LinkCore):
    """A worker process on a cluster node (see the module docstring), a :class:`WorkerLink`."""

    def __init__(self) -> None:
        super().__init__()
        self.node: NodeHandle | None = None
        self._socks: dict[bytes, socket.socket] = {}
        self._capture_dir = ""
        self._out_w = self._err_w = -1
        self._sup_frames = FrameBuffer()
        self._last_beat = time.monotonic()
        self._rss: int | None = None
        self._exit_seen = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self.heartbeat_timeout = _tcp.HEARTBEAT_TIMEOUT
        self._description: dict[str, Any] = {"engine": "ray"}
        self._staged: asyncio.Future[dict[str, Any]] | None = None
        #: The placement's artifacts (set by the cluster engine): what the node was sent,
        #: and where each hub path lives on the node.
        self.shipment: Any = None
        self.artifact_sock: socket.socket | None = None
        self.node_paths: dict[str, str] = {}
        self.on_released: Callable[[], None] | None = None  # told once the node actor is stopped
        self._hangup: select.poll | None = None  # the connections' hang-up, for exited_unnoticed
        self._output_ready: select.poll | None = None  # the output sockets holding bytes
        self._output_by_fd: dict[int, tuple[socket.socket, str]] = {}  # fd -> (socket, its sink's attribute)
        self._sup_eof = False

    @property
    def placement(self) -> dict[str, Any]:
        return self._description

    def exited_unnoticed(self) -> bool:
        """Whether the worker's or the node's connection closed although the event loop
        has not heard yet (an idle synchronous hub): one ``poll(2)``, no read unless one
        did.  The supervision connection is then read at once (the exit status, or the
        node's loss), so a call is never sent to a worker already gone."""
        poller = self._hangup
        if poller is None or not poller.poll(0):
            return False
        for _ in range(64):  # what the node said last (beats, the exit status), then its EOF
            if not self.alive or self._sup_eof:
                break
            self._on_supervision()
        if self.alive:
            self._settled()  # the worker's connection closed: dead, with or without its status
        return not self.alive

    # ---------------------------------------------------------------- attach

    @classmethod
    async def attach(
        cls,
        socks: dict[bytes, socket.socket],
        node: NodeHandle,
        *,
        label: str,
        start_timeout: float,
        memory_limit: int | None = None,
        on_exit: Callable[[WorkerLink], None] | None = None,
        prepare_timeout: float | None = None,
    ) -> RemoteWorker:
        """Take over the authenticated connections, wait for the node to prepare (pull the
        artifacts, build the environment: at most ``prepare_timeout``), then for the
        worker's HELLO.

        Raises ``Failed`` (``worker_start_failed``, ``node_lost``, or what the node
        lacks: ``artifact_not_found``, ``interpreter_not_found``, an environment's
        failure) like a local spawn.
        """
        self = cls()
        self.label, self.node, self.memory_limit, self._on_exit = label, node, memory_limit, on_exit
        self._description = node.describe()
        loop = self._loop = asyncio.get_running_loop()
        self._socks = socks
        self._capture_dir = tempfile.mkdtemp(prefix="cncf-remote-")
        paths = [os.path.join(self._capture_dir, n) for n in ("stdout", "stderr")]
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self._out_w, self._err_w = (os.open(p, flags, 0o600) for p in paths)
        self._out_fd, self._err_fd = (os.open(p, os.O_RDWR) for p in paths)  # RDWR: truncated via ftruncate
        replies = socks.pop(_tcp.MAIN).detach()
        self.channel = Channel(
            label,
            os.dup(replies),
            replies,
            socks.pop(_tcp.CONTROL).detach(),
            on_eof=self._on_eof,
            on_broken=self._on_broken,
        )
        self._exited = loop.create_future()
        self._started = loop.create_future()
        self._staged = loop.create_future()
        self._output_ready = select.poll()
        for role, sink, attr in ((_tcp.STDOUT, self._out_w, "_out_w"), (_tcp.STDERR, self._err_w, "_err_w")):
            s = socks[role]
            s.setblocking(False)
            loop.add_reader(s.fileno(), self._copy_output, s, sink)
            self._output_by_fd[s.fileno()] = (s, attr)
            self._output_ready.register(s.fileno(), select.POLLIN)
        sup = socks[_tcp.SUPERVISION]
        sup.setblocking(False)
        loop.add_reader(sup.fileno(), self._on_supervision)
        self._hangup = select.poll()
        for fd in (sup.fileno(), replies):
            self._hangup.register(fd, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        self._watchdog = loop.call_later(self.heartbeat_timeout / 4, self._check_heartbeat)
        self._track(loop.create_task(self._watch_node()))
        if prepare_timeout is not None:
            try:
                staged = await asyncio.wait_for(asyncio.shield(self._staged), prepare_timeout)
            except Failed:
                await self.close(grace=0)
                raise
            except TimeoutError:
                await self.close(grace=0)
                raise Failed(
                    Observation.of(
                        Code.ENVIRONMENT_FAILED,
                        f"preparing {label!r} on its node took more than {prepare_timeout:g}s",
                        stage=Stage.LOAD,
                        **self._where(),
                    )
                ) from None
            self.node_paths = dict(staged.get("paths") or {})
        await self.greet(start_timeout)
        return self

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_broken(self, obs: Observation) -> None:
        self.kill_reason = "protocol error"
        self.kill()

    # --------------------------------------------------------------- output

    def _copy_output(self, sock: socket.socket, sink: int) -> None:
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            return
        with contextlib.suppress(OSError):
            os.write(sink, data)

    def _pull_output(self) -> None:
        """Copy what the worker printed and the kernel already holds (it was
        written before the reply being attributed).  Runs on every reply: one
        ``poll(2)`` over both sockets says whether there is anything (two reads
        that fail with EAGAIN cost about 5 µs, an eighth of an echo)."""
        poller = self._output_ready
        if poller is None:
            return
        for fd, _events in poller.poll(0):
            s, attr = self._output_by_fd.get(fd, (None, ""))
            if s is None or s.fileno() < 0:
                continue
            sink = getattr(self, attr)
            while True:
                try:
                    data = s.recv(1 << 16)
                except OSError:
                    break
                if not data:  # closed by the worker: nothing more will come
                    poller.unregister(fd)
                    break
                if sink >= 0:
                    with contextlib.suppress(OSError):
                        os.write(sink, data)

    def rss_kb(self) -> int | None:
        return self._rss

    # ---------------------------------------------------------- supervision

    def _on_supervision(self) -> None:
        sup = self._socks.get(_tcp.SUPERVISION)
        if sup is None:
            return
        try:
            data = sup.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            assert self._loop is not None
            self._sup_eof = True
            self._loop.remove_reader(sup.fileno())
            if not self._exit_seen:
                self._node_lost("the node actor's connection closed without the worker's exit status")
            return
        try:
            frames = self._sup_frames.feed(data)
        except ProtocolError as exc:
            self._node_lost(f"the node's supervision channel broke: {exc}")
            return
        self._last_beat = time.monotonic()
        for _kind, body in frames:
            kind = body.get("type")
            if kind == "beat":
                self._rss = body.get("rss_kb")
            elif kind == "started":
                self.pid = int(body.get("pid") or 0)
                if self._started is not None and not self._started.done():
                    self._started.set_result(self.pid)
            elif kind == "staged":
                if self._staged is not None and not self._staged.done():
                    self._staged.set_result(body)
            elif kind == "failed":
                self._exit_seen = True
                obs = Observation.from_dict(body.get("observation") or {})
                self._fail_staging(obs)
                self.fail_all(obs)
            elif kind == "spawn_failed":
                self._exit_seen = True
                where = self._where()
                self.fail_all(
                    Observation.of(
                        Code.WORKER_START_FAILED,
                        f"cannot start worker for {self.label!r} on node {where.get('node_address')} "
                        f"({body.get('argv0')!r}): {body.get('error')}",
                        stage=Stage.LOAD,
                        **where,
                    )
                )
            elif kind == "exit":
                self._exit_seen = True
                self.returncode = int(body.get("returncode", -1))
                if body.get("node_lost") and self.lost is None:  # the node went down, taking the worker
                    self.lost = str(body["node_lost"])
                self.exit_observed()  # (what the worker answered just before is still dispatched)

    def _check_heartbeat(self) -> None:
        if self.channel.dead is not None or self._loop is None:
            return
        silent = time.monotonic() - self._last_beat
        if silent > self.heartbeat_timeout:
            # The loop may not have turned for a while (an idle synchronous hub): the
            # beats may be waiting in the socket.  Read them before the verdict.
            self._on_supervision()
            silent = time.monotonic() - self._last_beat
        if self.channel.dead is not None:
            return
        if silent > self.heartbeat_timeout:
            self._node_lost(f"no heartbeat from the node for {silent:.1f}s")
            return
        self._watchdog = self._loop.call_later(self.heartbeat_timeout / 4, self._check_heartbeat)

    async def _watch_node(self) -> None:
        """Ray's verdict: the actor's long-running ``watch`` task ends with the worker,
        or raises when the actor or its node dies."""
        assert self.node is not None
        try:
            await self.node.watch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.channel.dead is None and self.node is not None:
                cause = None
                with contextlib.suppress(Exception):
                    cause = await asyncio.wait_for(self.node.death_cause(), 2.0)
                self._node_lost(f"Ray reports the node actor dead: {cause or type(exc).__name__}")

    def _node_lost(self, reason: str) -> None:
        if self.channel.dead is not None or self.lost is not None:
            return
        self.lost = reason
        self.declare_dead()
        self._fail_staging(self.death_observation())
        self._wake_exit()

    def _fail_staging(self, obs: Observation) -> None:
        staged = self._staged
        if staged is not None and not staged.done():
            staged.set_exception(Failed(obs))
            staged.exception()  # retrieved: attach may have stopped waiting

    def _on_eof(self) -> None:
        if self.channel.dead is None and not self._exit_seen and self._loop is not None:
            self._loop.call_later(_SETTLE, self._settled)

    def _settled(self) -> None:
        if self.channel.dead is None:
            self.declare_dead()

    # ------------------------------------------------------------ shutdown

    def kill(self) -> None:
        """Ask the node to SIGKILL the worker's process group (its death is reported as usual)."""
        sup = self._socks.get(_tcp.SUPERVISION)
        if sup is None or self.returncode is not None or sup.fileno() < 0:
            return
        with contextlib.suppress(OSError):
            sup.send(encode(Kind.EVENT, {"type": "kill"}))

    async def close(self, grace: float = 2.0) -> None:
        """SHUTDOWN, kill after ``grace``, stop the node actor, release every socket and file."""
        if self.channel.dead is None and self.returncode is None:
            self.kill_reason = self.kill_reason or "closed by the hub"
            if grace > 0:
                with contextlib.suppress(OSError):
                    self.channel.send(Kind.SHUTDOWN, {})
                if self._exited is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._exited), grace)
            if self.returncode is None:
                self.kill()
        self._closed_by_hub()
        if self._watchdog is not None:
            self._watchdog.cancel()
        node, self.node = self.node, None
        self._hangup = None
        if node is not None:
            with contextlib.suppress(Exception):
                await node.stop(lost=self.lost is not None)
            released, self.on_released = self.on_released, None
            if released is not None:
                released()
        for t in list(self._tasks):
            t.cancel()
        self._pull_output()
        self._output_ready, self._output_by_fd = None, {}
        loop = self._loop
        for s in self._socks.values():
            if loop is not None and not loop.is_closed() and s.fileno() >= 0:
                loop.remove_reader(s.fileno())
            s.close()
        self._socks = {}
        art, self.artifact_sock = self.artifact_sock, None
        if art is not None:
            with contextlib.suppress(OSError):
                art.shutdown(socket.SHUT_RDWR)  # ends the thread serving the node's pulls
            art.close()
        for attr in ("_out_w", "_err_w"):
            fd = getattr(self, attr)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, attr, -1)
        self.channel.close()
        self._close_captures()
        self._wake_exit()
        await self._remove_tmpdir()
        if self._capture_dir:
            shutil.rmtree(self._capture_dir, ignore_errors=True)
            self._capture_dir = ""

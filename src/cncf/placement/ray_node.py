"""The node side of a Ray placement: an actor that starts the same worker on its node.

One :class:`NodeWorker` actor (``num_cpus=0``, pinned by custom resources)
per placed worker process.  It does what the hub's local process code does on
the hub's machine, and no more:

* builds the python form's private environment **on the node**, with the same
  :class:`~cncf.boundaries._environments.EnvironmentCache` and therefore the
  same content hash, cached under the node's cache folder;
* listens on the node's address, accepts the hub's five authenticated
  connections (:mod:`cncf.placement._tcp`), and only then starts the worker;
* hands the connected sockets to the worker as its protocol descriptors and
  its fd 1 / 2 (``direct``: python and command forms, no hop between hub and
  worker), or relays them to pipes (``bridged``: the JVM host, which opens its
  descriptors through ``/dev/fd`` and cannot open a socket that way);
* starts the worker in its own session with ``PR_SET_PDEATHSIG``, so it dies
  with the actor (Ray kills only an actor's own process); :meth:`stop` ends
  the whole process group before the hub calls ``ray.kill``;
* sends a heartbeat, the worker's pid and, when it ends, its exit status on
  the supervision connection; takes ``kill`` there too.

Calls never pass through this actor (a Ray actor call costs ~10x a frame over
TCP); Ray is used for placement and liveness only.

The channel secret is never an attribute of the actor: Ray's ``__ray_call__``
runs any function with the actor instance, so whoever can name the actor
could read ``self.anything``.  The secret arrives in :meth:`NodeWorker.start`'s
request, is popped from it into a ``bytearray`` that only the serving task holds, for
the handshake (at most ``connect_timeout`` seconds), and is overwritten with
zeros as soon as the five connections are authenticated (Ray wraps an async
actor method in a tracing coroutine that keeps its arguments while it runs).  What ``__ray_call__`` still reaches is
what any code in the actor's process reaches (``docs/placement.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cncf.placement import _tcp

_PR_SET_PDEATHSIG = 1


def node_cache() -> Path:
    """Where a node keeps environments built for placed components (by content hash)."""
    root = os.environ.get("CNCF_NODE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "cncf" / "node"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class NodeWorker:
    """The actor class (wrapped with ``ray.remote`` by the hub side)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._exited: asyncio.Future[int] | None = None
        self._sup: socket.socket | None = None
        self._sup_lock = threading.Lock()
        self._stopped = threading.Event()
        self._pipes: list[int] = []

    # ----------------------------------------------------------------- start

    async def start(self, request: dict[str, Any]) -> dict[str, Any]:
        """Prepare (environment), listen, and return where to connect; the worker
        starts once the hub has connected (see :meth:`_serve`)."""
        from cncf.placement.ray_cluster import import_ray

        ray = import_ray()  # Any: Ray's own functions are untyped
        # A local only, never an attribute, wiped after the handshake (see the module doc).
        secret = bytearray(request.pop("secret"))
        self._exited = asyncio.get_running_loop().create_future()
        argv = list(request["argv"])
        hub_runtime = request.get("runtime_dir") or ""
        if hub_runtime:
            from cncf.boundaries.python import RUNTIME_DIR

            argv = [a.replace(hub_runtime, str(RUNTIME_DIR)) for a in argv]
        environment = request.get("environment")
        if environment:
            from cncf.boundaries._environments import EnvironmentCache, venv_python
            from cncf.observation import Failed

            interpreter, requirements, wheels, label, constraints = environment
            try:
                venv = await EnvironmentCache(node_cache() / "envs").ensure(
                    interpreter, requirements, [Path(w) for w in wheels], label=label, build_constraints=constraints
                )
            except Failed as exc:
                return {"failure": exc.observation.to_dict()}
            argv[0] = str(venv_python(venv))
        node_id = ray.get_runtime_context().get_node_id()
        # The address the cluster knows this node by (a test cluster's 127.0.0.1),
        # not whichever interface get_node_ip_address() would pick.
        ip = next(
            (n["NodeManagerAddress"] for n in ray.nodes() if n.get("NodeID") == node_id), ray.util.get_node_ip_address()
        )
        lsock = _tcp.listener(ip)
        port = lsock.getsockname()[1]
        deadline = time.monotonic() + float(request.get("connect_timeout") or 30.0)
        asyncio.get_running_loop().create_task(self._serve(lsock, deadline, argv, request, secret))
        del secret
        return {
            "ip": ip,
            "port": port,
            "node_id": node_id,
            "actor_pid": os.getpid(),
            "hostname": socket.gethostname(),
            "argv0": argv[0],
        }

    async def _serve(
        self, lsock: socket.socket, deadline: float, argv: list[str], request: dict[str, Any], secret: bytearray
    ) -> None:
        assert self._exited is not None
        try:
            socks = await asyncio.to_thread(_tcp.accept_all, lsock, secret, deadline)
        except (OSError, TimeoutError):
            self._exited.set_result(-1)
            return
        finally:
            # Authenticated (or given up): of no further use.  Wiped in place, because
            # Ray's tracing wrapper of this method keeps its arguments for its lifetime.
            secret[:] = bytes(len(secret))
        sup = self._sup = socks[_tcp.SUPERVISION]
        try:
            self._spawn(argv, request, socks)
        except OSError as exc:
            self._send({"type": "spawn_failed", "error": f"{exc.strerror or exc}", "argv0": argv[0]})
            self._exited.set_result(-1)
            sup.close()
            return
        assert self._proc is not None
        self._send({"type": "started", "pid": self._proc.pid})
        threading.Thread(target=self._beat, daemon=True).start()
        threading.Thread(target=self._commands, args=(sup,), daemon=True).start()
        code = await asyncio.to_thread(self._proc.wait)
        self._kill()  # what the worker started in its group ends with it
        for fd in self._pipes:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._send({"type": "exit", "returncode": code})
        self._exited.set_result(code)

    def _spawn(self, argv: list[str], request: dict[str, Any], socks: dict[bytes, socket.socket]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(request.get("env") or {})
        env["CNCF_PROTOCOL"] = str(request.get("protocol", 1))
        env["CNCF_WORKER_LABEL"] = str(request.get("label") or "")
        main, ctl = socks[_tcp.MAIN], socks[_tcp.CONTROL]
        out, err = socks[_tcp.STDOUT], socks[_tcp.STDERR]
        for s in (main, ctl, out, err):
            s.setblocking(True)
        child_fds: list[int] = []
        if request.get("bridged"):
            req_r, req_w = os.pipe()
            rep_r, rep_w = os.pipe()
            ctl_r, ctl_w = os.pipe()
            fds = (req_r, rep_w, ctl_r)
            child_fds = list(fds)
            self._relay(main, req_w, "in")
            self._relay(main, rep_r, "out")
            self._relay(ctl, ctl_w, "in")
        else:
            reply = os.dup(main.fileno())
            fds = (main.fileno(), reply, ctl.fileno())
            child_fds = [reply]
        env.update(CNCF_FD_REQUESTS=str(fds[0]), CNCF_FD_REPLIES=str(fds[1]), CNCF_FD_CONTROL=str(fds[2]))
        cwd = request.get("cwd")
        if not cwd or not os.path.isdir(cwd):
            cwd = tempfile.gettempdir()
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out.fileno(),
                stderr=err.fileno(),
                pass_fds=fds,
                env=env,
                cwd=cwd,
                start_new_session=True,  # its own process group: stop() ends all of it
                preexec_fn=_die_with_parent,
            )
        finally:
            for fd in child_fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            out.close()
            err.close()
            if not request.get("bridged"):
                main.close()
                ctl.close()
        limit = request.get("memory_limit")
        if limit:
            with contextlib.suppress(OSError, ValueError):
                resource.prlimit(self._proc.pid, resource.RLIMIT_AS, (limit, limit))

    def _relay(self, sock: socket.socket, fd: int, direction: str) -> None:
        """Copy between a hub socket and a worker pipe (bridged mode only)."""
        self._pipes.append(fd)

        def run() -> None:
            try:
                while True:
                    data = sock.recv(1 << 16) if direction == "in" else os.read(fd, 1 << 16)
                    if not data:
                        break
                    if direction == "in":
                        view = memoryview(data)
                        while view:
                            view = view[os.write(fd, view) :]
                    else:
                        sock.sendall(data)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                if direction == "in":
                    os.close(fd)  # EOF to the worker: the hub is gone
                else:
                    sock.shutdown(socket.SHUT_WR)

        threading.Thread(target=run, daemon=True).start()

    # ----------------------------------------------------------- supervision

    def _send(self, body: dict[str, Any]) -> None:
        from cncf.wire.frames import Kind, encode

        sup = self._sup
        if sup is None:
            return
        with self._sup_lock, contextlib.suppress(OSError):
            sup.sendall(encode(Kind.EVENT, body))

    def _beat(self) -> None:
        n = 0
        while not self._stopped.wait(_tcp.HEARTBEAT_INTERVAL):
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return
            n += 1
            self._send({"type": "beat", "n": n, "rss_kb": _rss_kb(proc.pid)})

    def _commands(self, sup: socket.socket) -> None:
        from cncf.wire.frames import FrameBuffer

        frames = FrameBuffer()
        try:
            while True:
                data = sup.recv(4096)
                if not data:
                    break
                for _kind, body in frames.feed(data):
                    if body.get("type") == "kill":
                        self._kill()
        except Exception:
            pass
        self._kill()  # the hub is gone: a worker never outlives its hub's connection

    def _kill(self) -> None:
        """SIGKILL the worker's whole process group: its children too, even once the
        worker itself has exited (a group outlives its leader while members live)."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()

    # ------------------------------------------------------------- liveness

    async def watch(self) -> int:
        """Returns the worker's exit status when it ends: the hub waits on this task
        with ``ray.wait`` semantics, and gets ``ActorDiedError`` when the actor or
        its node is lost."""
        assert self._exited is not None
        return await self._exited

    async def stop(self) -> int | None:
        """End the worker's whole process group and wait for it (before ``ray.kill``)."""
        self._stopped.set()
        self._kill()
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 5)
            return proc.returncode
        return None

    def ping(self) -> dict[str, Any]:
        proc = self._proc
        return {"pid": proc.pid if proc else None, "alive": proc is not None and proc.poll() is None}


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return None

"""The node side of a Ray placement: an actor that starts the same worker on its node.

One :class:`NodeWorker` actor (``num_cpus=0``, pinned by custom resources)
holds a placement's resources on its node and hosts one placed worker at a
time, one :class:`Run` each; the hub keeps an actor whose worker ended for
the next worker of the same placement (a restart after a crash, the next
load), so only the first placement on a node pays Ray's actor creation
(``ray_cluster.ActorPool``).  A run does what the hub's local process code
does on the hub's machine, and no more:

* builds the python form's private environment **on the node**, with the same
  :class:`~cncf.boundaries._environments.EnvironmentCache` and therefore the
  same content hash, cached under the node's cache folder;
* listens on the node's address, accepts the hub's six authenticated
  connections (:mod:`cncf.placement._tcp`), and only then starts the worker;
* hands the connected sockets to the worker as its protocol descriptors and
  its fd 1 / 2 (``direct``: python and command forms, no hop between hub and
  worker), or relays them to pipes (``bridged``: the JVM host, which opens its
  descriptors through ``/dev/fd`` and cannot open a socket that way);
* starts the worker in its own session with ``PR_SET_PDEATHSIG``, so it dies
  with the actor (Ray kills only an actor's own process); :meth:`Run.stop` ends
  the whole process group before the hub reuses or kills the actor;
* sends a heartbeat, the worker's pid and, when it ends, its exit status on
  the supervision connection; takes ``kill`` there too.

Calls never pass through this actor (a Ray actor call costs ~10x a frame over
TCP); Ray is used for placement and liveness only.

The channel secret is never an attribute of the actor: Ray's ``__ray_call__``
runs any function with the actor instance, so whoever can name the actor
could read ``self.anything``.  The secret arrives in :meth:`NodeWorker.start`'s
request, is popped from it into a ``bytearray`` that only the serving task holds, for
the handshake (at most ``connect_timeout`` seconds), and is overwritten with
zeros as soon as the connections are authenticated (Ray wraps an async
actor method in a tracing coroutine that keeps its arguments while it runs).  What ``__ray_call__`` still reaches is
what any code in the actor's process reaches (``docs/placement.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cncf.placement import _tcp
from cncf.placement.artifacts import ArtifactCache, ChunkSource, Entry, FirstOf, HttpSource, SocketSource

_PR_SET_PDEATHSIG = 1


def node_cache() -> Path:
    """Where a node keeps environments built for placed components (by content hash)."""
    root = os.environ.get("CNCF_NODE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "cncf" / "node"


#: An operator's artifact store (``<url>/<sha256>``, range requests), asked before the hub:
#: the hub's setting travels with each placement, a node's own setting applies otherwise.
ARTIFACT_STORE_ENV = "CNCF_ARTIFACT_STORE"
#: The node's artifact cache is bounded to this many bytes (``CNCF_NODE_CACHE_BYTES``).
DEFAULT_CACHE_BYTES = 10 << 30


class _Missing(Exception):
    """What the node lacks for a placement, as a load Observation (a dict: it travels)."""

    def __init__(self, observation: dict[str, Any]) -> None:
        super().__init__(observation.get("message"))
        self.observation = observation


def artifact_cache() -> ArtifactCache:
    """The node's artifacts by sha256 (``$CNCF_NODE_CACHE/artifacts``), LRU-bounded."""
    raw = os.environ.get("CNCF_NODE_CACHE_BYTES", "")
    return ArtifactCache(node_cache() / "artifacts", int(raw) if raw.isdigit() else DEFAULT_CACHE_BYTES)


def _named(root: Path, blob: Path, sha: str, name: str) -> Path:
    """The blob under its own file name (uv wants a wheel's name, java a jar's):
    ``named/<sha>/<name>``, a link to the cached bytes."""
    safe = os.path.basename(name) or "blob"
    folder = root / "named" / sha
    link = folder / safe
    if not link.is_symlink():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{safe}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(blob, tmp)
        os.replace(tmp, link)
    return link


_versions: dict[str, str | None] = {}


def python_version(path: str) -> str | None:
    """``3.11``: the major.minor of the interpreter at ``path`` (asked once per path and
    process), ``None`` if it does not run.  The hub asks it of a component's interpreter
    (the version its node must have), a node of its candidates."""
    if path == sys.executable:
        return f"{sys.version_info[0]}.{sys.version_info[1]}"
    if path not in _versions:
        try:
            out = subprocess.run(
                [path, "-c", "import sys;print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            _versions[path] = out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            _versions[path] = None
    return _versions[path]


#: The class-file level the JVM host is compiled for (``cncf.jvm.build``: ``--release 8``).
JVM_HOST_RELEASE = 8
_java_majors: dict[str, int | None] = {}


def java_major(java: str) -> int | None:
    """The feature version of the JVM at ``java`` (``8`` for ``1.8.0_392``, ``17`` for
    ``17.0.9``), asked once per path and process; ``None`` if it does not run."""
    import re

    if java not in _java_majors:
        major = None
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
            found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
            if out.returncode == 0 and found:
                first, second = int(found.group(1)), int(found.group(2) or 0)
                major = second if first == 1 else first
        _java_majors[java] = major
    return _java_majors[java]


def find_python(hub_path: str, version: str) -> str | None:
    """A Python ``version`` (``3.11``) on this node: at the hub's path if the node has
    one there (the same image), the node's own interpreter, ``python3.11`` on PATH,
    or one of uv's managed pythons; ``None`` if the node has none."""
    candidates = [hub_path, sys.executable, shutil.which(f"python{version}"), shutil.which("python3")]
    for c in candidates:
        if c and os.path.isabs(c) and os.access(c, os.X_OK) and python_version(c) == version:
            return c
    uv = shutil.which("uv") or next((str(p) for p in (Path(sys.executable).parent / "uv",) if p.is_file()), None)
    if uv is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [uv, "python", "find", "--no-project", version], capture_output=True, text=True, timeout=30
            )
            found = out.stdout.strip()
            if out.returncode == 0 and found and python_version(found) == version:
                return found
    return None


def node_environment(sent: Mapping[str, str], *, inherited: Iterable[str], inherit_all: bool) -> dict[str, str]:
    """The worker's environment, built on the node (brief section 13): the node's own
    values of the allow-list (or, with ``inherit_env``, its whole environment but
    Ray's), plus what the component adds (its manifest ``env``, the hub's settings).
    ``inherited`` names the keys the hub took from its own environment: the node's
    values replace them.  Whatever Ray's worker process carries (``PYTHONPATH``,
    ``OMP_NUM_THREADS``, ``PYTHONBREAKPOINT``, ``RAY_*``) stays out."""
    from cncf.boundaries import _environment_policy as policy

    mine = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    if inherit_all:
        base = mine
    else:
        prefixes = tuple(getattr(policy, "_ALLOWED_PREFIXES", ("LC_",)))
        base = {k: v for k, v in mine.items() if k in policy.ALLOWED or k.startswith(prefixes)}
    skip = set(inherited)
    base.update({k: v for k, v in sent.items() if k not in skip})
    return base


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Run:
    """One placed worker on this node: its connections, artifacts held, process, exit."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._exited: asyncio.Future[int] | None = None
        self._sup: socket.socket | None = None
        self._sup_lock = threading.Lock()
        self._stopped = threading.Event()
        self._pipes: list[int] = []
        self._where: dict[str, Any] = {}
        self._source: SocketSource | None = None
        self._source_lock = threading.Lock()  # one request at a time on the artifact connection
        self._held: dict[str, int] = {}  # artifact digest -> its shared lock's descriptor
        self._tmpdir = ""
        self._failed = False
        self._store = ""  # the operator's artifact_store URL, asked before the hub
        self._raylet = os.getppid()  # Ray starts its workers as the raylet's children

    # ----------------------------------------------------------------- start

    async def start(self, request: dict[str, Any]) -> dict[str, Any]:
        """Listen and return where to connect; once the hub has connected, the
        artifacts are pulled, the environment built and the worker started
        (see :meth:`_serve`)."""
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
        node_id = ray.get_runtime_context().get_node_id()
        # The address the cluster knows this node by (a test cluster's 127.0.0.1),
        # not whichever interface get_node_ip_address() would pick.
        ip = next(
            (n["NodeManagerAddress"] for n in ray.nodes() if n.get("NodeID") == node_id), ray.util.get_node_ip_address()
        )
        self._where = {"node_id": node_id, "node_address": ip}
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
        }

    async def _serve(
        self, lsock: socket.socket, deadline: float, argv: list[str], request: dict[str, Any], secret: bytearray
    ) -> None:
        assert self._exited is not None
        try:
            socks = await asyncio.to_thread(_tcp.accept_all, lsock, secret, deadline, _tcp.PLACED_ROLES)
        except (OSError, TimeoutError):
            self._exited.set_result(-1)
            return
        finally:
            # Authenticated (or given up): of no further use.  Wiped in place, because
            # Ray's tracing wrapper of this method keeps its arguments for its lifetime.
            secret[:] = bytes(len(secret))
        sup = self._sup = socks[_tcp.SUPERVISION]
        self._source = SocketSource(socks.pop(_tcp.ARTIFACTS))
        self._store = str(request.get("artifact_store") or os.environ.get(ARTIFACT_STORE_ENV) or "")
        # Beats and commands while the node prepares (a PyPI environment may take minutes).
        threading.Thread(target=self._beat, daemon=True).start()
        threading.Thread(target=self._commands, args=(sup,), daemon=True).start()
        try:
            argv, cwd, env, mapping = await self._prepare(argv, request)
        except Exception as exc:  # what the node lacks, or a fault of ours: a load Observation either way
            self._failed = True
            if isinstance(exc, _Missing):
                observation = exc.observation
            else:
                observation = self._missing(
                    "worker_start_failed",
                    f"preparing {request.get('label')!r} on node {self._where.get('node_address')} failed: {exc!r}",
                ).observation
            self._send({"type": "failed", "observation": observation})
            self._close_worker_socks(socks)
            self._exited.set_result(-1)
            return
        self._send({"type": "staged", "paths": mapping, "argv0": argv[0]})
        try:
            self._spawn(argv, cwd, env, request, socks)
        except OSError as exc:
            self._send({"type": "spawn_failed", "error": f"{exc.strerror or exc}", "argv0": argv[0]})
            self._exited.set_result(-1)
            sup.close()
            return
        assert self._proc is not None
        self._send({"type": "started", "pid": self._proc.pid})
        code = await asyncio.to_thread(self._proc.wait)
        self._kill()  # what the worker started in its group ends with it
        for fd in self._pipes:
            with contextlib.suppress(OSError):
                os.close(fd)
        if os.getppid() != self._raylet:
            # The node is going down (its raylet ended; our death took the worker with
            # it): that is the loss of the node, not a crash of the worker.
            self._send({"type": "exit", "returncode": code, "node_lost": "the node's raylet ended"})
        else:
            self._send({"type": "exit", "returncode": code})
        self._exited.set_result(code)

    @staticmethod
    def _close_worker_socks(socks: dict[bytes, socket.socket]) -> None:
        for role, s in socks.items():
            if role != _tcp.SUPERVISION:
                s.close()

    # -------------------------------------------------------------- prepare

    def _missing(self, code: str, message: str, **attributes: Any) -> _Missing:
        from cncf.observation import Code, Observation, Stage

        obs = Observation.of(Code(code), message, stage=Stage.LOAD, **self._where, **attributes)
        return _Missing(obs.to_dict())

    def stage(self, items: list[dict[str, str]]) -> dict[str, Any]:
        """Pull ``items`` (more artifacts of this placement: a jar component on a shared
        JVM host) and return their node paths, or the load Observation."""
        try:
            return {"paths": self._stage(items)}
        except _Missing as exc:
            return {"failure": exc.observation}

    def _stage(self, items: list[dict[str, str]]) -> dict[str, str]:
        """Each artifact fetched (once per node, by hash) and held while this actor lives."""
        from cncf.placement.artifacts import ArtifactError

        hub: ChunkSource | None = self._source
        if not items:
            return {}
        if hub is None:
            raise self._missing("artifact_not_found", "the node has no connection to the hub's artifacts")
        source = hub if not self._store else FirstOf([HttpSource(self._store), hub])
        cache = artifact_cache()
        out: dict[str, str] = {}
        for item in items:
            sha, path = item["sha"], item["path"]
            try:
                with self._source_lock:
                    entry = self._hold(cache, sha, item["kind"] == "tree", source)
                where = entry.tree if item["kind"] == "tree" else _named(cache.root, entry.blob, sha, item["name"])
            except (ArtifactError, OSError) as exc:
                raise self._missing(
                    "artifact_not_found",
                    f"node {self._where.get('node_address')} could not get {path!r} ({sha[:12]}…) from the hub: {exc}",
                    path=path,
                    sha256=sha,
                ) from None
            out[path] = str(where)
        return out

    def _hold(self, cache: ArtifactCache, sha: str, tree: bool, source: ChunkSource) -> Entry:
        """The artifact, fetched (and unpacked) unless the node has it, then held with a
        shared lock while this actor lives: eviction skips it, other actors use it too."""
        import fcntl

        from cncf.placement.artifacts import ArtifactError

        def ready() -> Entry | None:
            entry = cache._entry(sha)
            return entry if entry is not None and (not tree or entry.tree.is_dir()) else None

        for _ in range(3):
            fd = self._held.get(sha)
            if fd is None:
                fd = os.open(cache.root / "locks" / sha, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(fd, fcntl.LOCK_SH)
            entry = ready()
            if entry is not None:
                self._held[sha] = fd
                return entry
            # Not here (or evicted): fetching takes the lock exclusively, so let ours go.
            self._held.pop(sha, None)
            os.close(fd)
            cache.unpacked(sha, source) if tree else cache.ensure(sha, source)
        raise ArtifactError(f"artifact {sha[:12]}… keeps being evicted from the node's cache (too small?)")

    async def _prepare(
        self, argv: list[str], request: dict[str, Any]
    ) -> tuple[list[str], str, dict[str, str], dict[str, str]]:
        """Artifacts pulled, paths rewritten, interpreter found, environment built:
        what the worker starts with, or ``_Missing`` (a load Observation naming the node)."""
        from cncf.placement.shipping import rewrite

        mapping = await asyncio.to_thread(self._stage, list(request.get("artifacts") or ()))
        argv = rewrite(argv, mapping)
        env = node_environment(
            rewrite(dict(request.get("env") or {}), mapping),
            inherited=request.get("inherited") or (),
            inherit_all=bool(request.get("inherit_all")),
        )
        python = request.get("python")
        if python:
            found = await asyncio.to_thread(find_python, str(python.get("path") or ""), str(python["version"]))
            if found is None:
                raise self._missing(
                    "interpreter_not_found",
                    f"node {self._where.get('node_address')} has no Python {python['version']} "
                    f"(looked for the hub's {python.get('path')!r}, its own interpreter, python{python['version']} "
                    "on PATH and uv's managed pythons)",
                    interpreter=f"python{python['version']}",
                )
            argv[0] = found
        environment = request.get("environment")
        if environment:
            from cncf.boundaries._environments import EnvironmentCache, venv_python
            from cncf.observation import Failed

            _interpreter, requirements, wheels, label, constraints = rewrite(environment, mapping)
            try:
                venv = await EnvironmentCache(node_cache() / "envs").ensure(
                    argv[0], requirements, [Path(w) for w in wheels], label=label, build_constraints=constraints
                )
            except Failed as exc:
                raise _Missing({**exc.observation.to_dict()}) from None
            argv[0] = str(venv_python(venv))
        if not os.path.isabs(argv[0]) or not os.access(argv[0], os.X_OK):
            found_exe = shutil.which(os.path.basename(argv[0]), path=env.get("PATH") or os.environ.get("PATH"))
            if found_exe is None:
                raise self._missing(
                    "artifact_not_found",
                    f"node {self._where.get('node_address')} has no {os.path.basename(argv[0])!r} "
                    f"(the hub's {argv[0]!r} is neither there nor on the node's PATH)",
                    path=argv[0],
                )
            argv[0] = found_exe
        if request.get("bridged"):
            release = int(request.get("jvm_release") or JVM_HOST_RELEASE)
            major = await asyncio.to_thread(java_major, argv[0])
            if major is None or major < release:
                raise self._missing(
                    "worker_start_failed",
                    f"node {self._where.get('node_address')}'s {argv[0]!r} "
                    + ("does not run" if major is None else f"is Java {major}")
                    + f"; the JVM host is compiled for Java {release} or later",
                    java=argv[0],
                    java_version=major,
                    required=release,
                )
        cwd = request.get("cwd")
        if cwd:
            cwd = rewrite(str(cwd), mapping)
            if not os.path.isdir(cwd):
                raise self._missing(
                    "artifact_not_found",
                    f"the working folder {cwd!r} does not exist on node {self._where.get('node_address')}",
                    path=cwd,
                )
        self._tmpdir = tempfile.mkdtemp(prefix="cncf-placed-")
        env["TMPDIR"] = self._tmpdir
        return argv, cwd or self._tmpdir, env, mapping

    def _spawn(
        self, argv: list[str], cwd: str, env: dict[str, str], request: dict[str, Any], socks: dict[bytes, socket.socket]
    ) -> None:
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
            if self._failed or (proc is not None and proc.poll() is not None):
                return
            n += 1  # also while the node prepares: the hub waits for the worker, not for silence
            self._send({"type": "beat", "n": n, "rss_kb": _rss_kb(proc.pid) if proc is not None else None})

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
        code = None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 5)
            code = proc.returncode
        self._release()
        return code

    def _release(self) -> None:
        """Give back what the placement held on the node: artifact locks, the temp folder,
        the artifact connection (cached artifacts stay, bounded by the cache's size)."""
        for fd in self._held.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._held.clear()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = ""
        source, self._source = self._source, None
        if source is not None:
            with contextlib.suppress(OSError):
                source.sock.close()


class NodeWorker:
    """The actor class (wrapped with ``ray.remote`` by the hub side): the runs it hosts,
    one at a time as the hub uses it, each named by the number :meth:`start` returned."""

    def __init__(self) -> None:
        self._runs: dict[int, Run] = {}
        self._count = 0

    async def start(self, request: dict[str, Any]) -> dict[str, Any]:
        self._count += 1
        run = self._runs[self._count] = Run()
        info = await run.start(request)
        return {**info, "run": self._count, "runs": self._count}

    def stage(self, run: int, items: list[dict[str, str]]) -> dict[str, Any]:
        found = self._runs.get(run)
        if found is None:
            return {"failure": {"code": "node_lost", "message": f"run {run} has ended on this node", "stage": "load"}}
        return found.stage(items)

    async def watch(self, run: int) -> int:
        found = self._runs.get(run)
        return -1 if found is None else await found.watch()

    async def stop(self, run: int) -> int | None:
        """End the run's worker and give back what it held; the actor stays for the next."""
        found = self._runs.pop(run, None)
        return None if found is None else await found.stop()

    def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "runs": len(self._runs)}


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return None

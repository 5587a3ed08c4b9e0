"""The hub side of ``placement = "ray"``: connect, place, watch, release.

Ray is imported here only, and this module only when a component asks for
Ray placement, so a hub that places nothing never pays for it.  Ray does
placement (custom resources, node affinity), scheduling and liveness; the
calls travel on our own authenticated TCP channel (:mod:`cncf.placement._tcp`),
never through actor calls.

What each failure becomes:

* Ray not installed → ``placement_unavailable``;
* the cluster cannot be reached, or this process already talks to another
  one (Ray allows one cluster per process) → ``cluster_unreachable``;
* no alive node offers ``placement_resources`` → ``placement_infeasible`` at
  once (Ray itself would wait forever); nodes offer them but none takes the
  actor within :data:`PLACEMENT_TIMEOUT` → ``placement_timeout``;
* the node or its actor dies later → ``node_lost`` (see ``remote.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from cncf.observation import Code, Failed, Observation, Stage
from cncf.placement import _tcp
from cncf.placement.remote import RemoteWorker

#: How long a node actor may wait to be scheduled before the load fails.
PLACEMENT_TIMEOUT = 60.0
#: How long connecting to the cluster may take.
CONNECT_TIMEOUT = 30.0
NAMESPACE = "cncf"

_init_lock = threading.Lock()
_actor_class: Any = None
#: The hub owns its cluster connection: set when this module called ``ray.init``
#: (a process connected before keeps its connection); the homes of the hubs that
#: placed something and have not closed, and the placed workers not yet closed.
_connected_by_us = False
_users: set[str] = set()
_live = 0


def _fail(code: Code, message: str, **attributes: Any) -> Failed:
    return Failed(Observation.of(code, message, stage=Stage.LOAD, **attributes))


def import_ray() -> Any:
    # Without this, Ray rewrites a loopback address (a cluster on the hub's own
    # machine) to the machine's routable one, where nothing listens.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as exc:
        raise _fail(
            Code.PLACEMENT_UNAVAILABLE,
            f"placement = 'ray' needs Ray in the hub's environment: pip install 'cncf[ray]' ({exc})",
        ) from None
    return ray


def resolve_address(address: str | None) -> str:
    return address or os.environ.get("RAY_ADDRESS") or "auto"


def _probe(address: str) -> None:
    """Fail fast on ``host:port`` nothing listens on (``ray.init`` would retry for a minute)."""
    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise _fail(
            Code.CLUSTER_UNREACHABLE,
            f"ray_address {address!r} is not host:port, 'auto' or ray://…",
            ray_address=address,
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise _fail(
            Code.CLUSTER_UNREACHABLE, f"no Ray cluster answers at {address}: {exc.strerror or exc}", ray_address=address
        ) from None


def _connect_sync(address: str) -> str:
    ray = import_ray()
    with _init_lock:
        if ray.is_initialized():
            current = ray.get_runtime_context().gcs_address
            if address not in ("auto", current) and not address.startswith("ray://"):
                raise _fail(
                    Code.CLUSTER_UNREACHABLE,
                    f"this process is connected to the Ray cluster at {current}, not {address} "
                    "(Ray allows one cluster per process)",
                    ray_address=address,
                    connected=current,
                )
            return str(current)
        _probe(address)
        try:
            ray.init(
                address=address,
                logging_level="WARNING",
                log_to_driver=False,
                configure_logging=False,
                runtime_env=runtime_env(),
            )
        except Exception as exc:  # ConnectionError, RuntimeError: Ray's own words are kept
            raise _fail(
                Code.CLUSTER_UNREACHABLE, f"cannot connect to the Ray cluster {address!r}: {exc}", ray_address=address
            ) from None
        global _connected_by_us
        _connected_by_us = True
        return str(ray.get_runtime_context().gcs_address)


_pending: set[asyncio.Task[None]] = set()


def _worker_closed() -> None:
    """A placed worker was closed; the last one of closed hubs disconnects (a shared
    JVM host may be closed after its hub's boundaries)."""
    global _live
    _live = max(0, _live - 1)
    if not _live and not _users and _connected_by_us:
        with contextlib.suppress(RuntimeError):  # no running loop: the hub's close() will do it
            task = asyncio.get_running_loop().create_task(_disconnect())
            _pending.add(task)
            task.add_done_callback(_pending.discard)


async def release(home: Any) -> None:
    """A hub (by its home) closed: when no hub that placed something is left and no
    placed worker lives, disconnect, if it was this module that connected."""
    _users.discard(str(home))
    await _disconnect()


async def _disconnect() -> None:
    if _users or _live or not _connected_by_us:
        return

    def disconnect() -> None:
        global _connected_by_us
        with _init_lock:
            if _connected_by_us and not _users and not _live:
                ray = import_ray()
                with contextlib.suppress(Exception):
                    ray.shutdown()
                _connected_by_us = False

    await asyncio.to_thread(disconnect)


async def connect(address: str | None) -> str:
    """Connect this process to the cluster once (Ray's driver connection is per process)."""
    resolved = resolve_address(address)
    try:
        return await asyncio.wait_for(asyncio.to_thread(_connect_sync, resolved), CONNECT_TIMEOUT)
    except TimeoutError:
        raise _fail(
            Code.CLUSTER_UNREACHABLE,
            f"connecting to the Ray cluster {resolved!r} took more than {CONNECT_TIMEOUT:g}s",
            ray_address=resolved,
        ) from None


def feasible_nodes(resources: Mapping[str, float]) -> list[dict[str, Any]]:
    """Alive nodes whose total resources cover the request (free or not)."""
    ray = import_ray()
    out = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        total = node.get("Resources") or {}
        if all(total.get(k, 0.0) >= v for k, v in resources.items()):
            out.append(node)
    return out


def _node_actor_class() -> Any:
    global _actor_class
    if _actor_class is None:
        ray = import_ray()
        from cncf.placement.ray_node import NodeWorker

        _actor_class = ray.remote(NodeWorker)
    return _actor_class


def runtime_env() -> dict[str, Any] | None:
    """The hub's own ``cncf`` package, shipped to the nodes with the job's
    runtime_env (uploaded once, cached on each node by content hash), so the
    node actor and the worker runtime it starts are the hub's version, whatever
    the nodes have installed.  Ray accepts a local folder only for the whole
    job, so this applies when the hub itself connects (``ray.init``); a process
    that connected to Ray before (an application embedding the hub) uses the
    nodes' installed cncf.  ``CNCF_RAY_SHIP_PACKAGE=0`` never ships it."""
    if os.environ.get("CNCF_RAY_SHIP_PACKAGE", "1") == "0":
        return None
    import cncf

    return {"py_modules": [os.path.dirname(os.path.abspath(cncf.__file__))], "excludes": ["__pycache__"]}


class RayNode:
    """One node actor: where it runs, its liveness task, how to end it."""

    def __init__(self, actor: Any, name: str, info: Mapping[str, Any], address: str) -> None:
        self.actor = actor
        self.name = name
        self.info = dict(info)
        self.cluster = address
        self._watch: Any = None

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "ray",
            "cluster": self.cluster,
            "node_id": self.info.get("node_id"),
            "address": self.info.get("ip"),
            "hostname": self.info.get("hostname"),
            "port": self.info.get("port"),
            "actor": self.name,
            "actor_pid": self.info.get("actor_pid"),
        }

    def watch(self) -> Any:
        if self._watch is None:
            self._watch = self.actor.watch.remote()
        return self._watch

    async def stop(self) -> None:
        ray = import_ray()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(self.actor.stop.remote().future()), 5.0)
        with contextlib.suppress(Exception):
            ray.kill(self.actor, no_restart=True)

    async def death_cause(self) -> str | None:
        def query() -> str | None:
            from ray.util.state import get_actor

            state = get_actor(self.actor._actor_id.hex(), timeout=2)
            if state is None:
                return None
            cause = getattr(state, "death_cause", None)
            return str(cause) if cause else str(getattr(state, "state", ""))

        return await asyncio.to_thread(query)


def _python_version(path: str) -> str:
    """``3.11``: the version a placed python worker asks its node for."""
    import subprocess
    import sys

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
            _versions[path] = out.stdout.strip() or f"{sys.version_info[0]}.{sys.version_info[1]}"
        except (OSError, subprocess.SubprocessError):
            _versions[path] = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return _versions[path]


_versions: dict[str, str] = {}
#: Folders a command's executable is taken from the node's own installation, never shipped.
_SYSTEM = ("/usr/", "/bin/", "/sbin/", "/lib", "/etc/", "/opt/homebrew/", "/nix/")


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def plan_shipment(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    environment: tuple[str, Sequence[str], Sequence[str], str, Sequence[str]] | None,
    python_form: bool,
    bridged: bool,
    ship: Sequence[str],
    home: Any = None,
) -> tuple[list[str], str | None, dict[str, Any]]:
    """(argv, cwd, the request's shipping keys): what travels to the node, by form.

    * every path of ``ship`` (the boundary's artifact and paths);
    * ``jar`` (``bridged``): the compiled JVM host's jars named by its command line,
      without the hub's CDS archive;
    * ``python``: the wheels of its environment; its interpreter is found on the node
      by version; its working folder travels if it is one of its artifacts, else the
      worker runs in a private folder of the node;
    * ``command``: its working folder (its own folder), its executable unless the
      machine provides it (found on PATH, or a system folder), and absolute paths
      among its arguments.
    """
    import shutil

    from cncf.boundaries import _environment_policy as policy
    from cncf.placement.shipping import Shipment, jvm_host_files

    shipment = Shipment(home)
    roots = [p for p in ship if p]
    argv = list(argv)
    keys: dict[str, Any] = {}
    if bridged:
        argv, files = jvm_host_files(argv)
        roots += files
    elif python_form:
        keys["python"] = {"path": argv[0], "version": _python_version(argv[0])}
        if environment is not None:
            roots += [str(w) for w in environment[2]]
            roots += [c for c in environment[4] if os.path.isabs(c) and os.path.isfile(c)]
        if cwd and not _under(cwd, roots):
            cwd = None
    else:
        if cwd:
            roots.append(cwd)
        exe = argv[0]
        if os.path.isabs(exe) and not exe.startswith(_SYSTEM) and shutil.which(os.path.basename(exe)) != exe:
            roots.append(exe)
        roots += [a for a in argv[1:] if os.path.isabs(a) and not a.startswith(_SYSTEM) and os.path.exists(a)]
    keys["artifacts"] = shipment.pending(roots)
    hub = os.environ
    prefixes = tuple(getattr(policy, "_ALLOWED_PREFIXES", ("LC_",)))
    keys["inherit_all"] = bool(hub) and all(env.get(k) == v for k, v in hub.items() if not k.startswith("RAY_"))
    keys["inherited"] = [
        k
        for k, v in env.items()
        if hub.get(k) == v and (k in policy.ALLOWED or k.startswith(prefixes) or keys["inherit_all"])
    ]
    keys["shipment"] = shipment
    return argv, cwd, keys


async def spawn(
    argv: Sequence[str],
    *,
    label: str,
    ray_address: str | None,
    resources: Mapping[str, float],
    env: Mapping[str, str] | None,
    cwd: str | None,
    memory_limit: int | None,
    start_timeout: float,
    on_exit: Any = None,
    environment: tuple[str, Sequence[str], Sequence[str], str, Sequence[str]] | None = None,
    runtime_dir: str = "",
    bridged: bool = False,
    setup_timeout: float = 300.0,
    ship: Sequence[str] = (),
    home: Any = None,
) -> RemoteWorker:
    """Place one worker on a node offering ``resources`` and connect to it.

    ``env`` is the worker's environment as the hub computed it; the node rebuilds
    it from its own allow-list values (``node_environment``).  ``environment`` asks
    the node to build (or find, by the same hash) the python form's private
    environment and start the worker with its python.  Every artifact travels by
    hash (:func:`plan_shipment`) and every path is rewritten to the node's.
    """
    ray = import_ray()
    _users.add(str(home))
    address = await connect(ray_address)
    if not await asyncio.to_thread(feasible_nodes, resources):
        offered = sorted(
            {k for n in ray.nodes() if n.get("Alive") for k in (n.get("Resources") or {}) if not k.startswith("node:")}
        )
        raise _fail(
            Code.PLACEMENT_INFEASIBLE,
            f"no alive node of the Ray cluster at {address} offers {dict(resources)} for {label!r}; "
            f"the nodes offer {offered}",
            resources=dict(resources),
            offered=offered,
        )
    try:
        argv, cwd, shipping = await asyncio.to_thread(
            plan_shipment,
            argv,
            env=env or {},
            cwd=cwd,
            environment=environment,
            python_form=bool(runtime_dir),
            bridged=bridged,
            ship=ship,
            home=home,
        )
    except Exception as exc:  # ArtifactError (a link leaving a folder), OSError: never a raise
        raise _fail(Code.ARTIFACT_NOT_FOUND, f"cannot pack the artifacts of {label!r} for its node: {exc}") from None
    shipment = shipping.pop("shipment")
    secret = _tcp.new_secret()
    name = f"cncf-{label}-{uuid.uuid4().hex[:8]}"
    try:
        actor = (
            _node_actor_class()
            .options(
                name=name,
                namespace=NAMESPACE,
                num_cpus=0,
                resources=dict(resources) or None,
                max_restarts=0,
                max_concurrency=8,
            )
            .remote()
        )
    except Exception as exc:  # Ray refusing the options: a load Observation, never a raise
        raise _fail(
            Code.WORKER_START_FAILED,
            f"Ray refused to create the node actor for {label!r}: {exc}",
            resources=dict(resources),
        ) from None
    request = {
        "argv": list(argv),
        "env": dict(env or {}),
        "cwd": cwd,
        "memory_limit": memory_limit,
        "environment": list(environment) if environment else None,
        "runtime_dir": runtime_dir,
        "bridged": bridged,
        "label": label,
        "connect_timeout": start_timeout,
        **shipping,
        "secret": secret,  # travels through Ray; the actor keeps it only for the handshake
    }

    def kill_actor() -> None:
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)

    try:
        ready = actor.ping.remote()
        done, _ = await asyncio.to_thread(ray.wait, [ready], timeout=PLACEMENT_TIMEOUT)
        if not done:
            raise _fail(
                Code.PLACEMENT_TIMEOUT,
                f"no node offering {dict(resources)} took {label!r} within {PLACEMENT_TIMEOUT:g}s "
                "(they exist, but are busy)",
                resources=dict(resources),
            )
        await asyncio.wrap_future(ready.future())
        info = await asyncio.wait_for(asyncio.wrap_future(actor.start.remote(request).future()), setup_timeout)
    except Failed:
        kill_actor()
        raise
    except TimeoutError:
        kill_actor()
        raise _fail(
            Code.ENVIRONMENT_FAILED, f"preparing {label!r} on its node took more than {setup_timeout:g}s"
        ) from None
    except Exception as exc:  # RayActorError and friends: the node went away while placing
        kill_actor()
        raise _fail(
            Code.NODE_LOST, f"the node actor for {label!r} died while being placed: {exc}", actor=name
        ) from None
    if "failure" in info:
        kill_actor()
        raise Failed(Observation.from_dict(info["failure"]))
    node = RayNode(actor, name, info, address)
    try:
        socks = await asyncio.to_thread(
            _tcp.connect_all, info["ip"], int(info["port"]), secret, start_timeout, _tcp.PLACED_ROLES
        )
    except (OSError, _tcp.HandshakeError) as exc:
        await node.stop()
        raise _fail(
            Code.WORKER_START_FAILED,
            f"cannot open the channel to {label!r} on node {info['ip']}:{info['port']}: {exc}",
            node_id=info.get("node_id"),
            node_address=info.get("ip"),
        ) from None
    from cncf.placement.shipping import serve

    artifact_sock = socks.pop(_tcp.ARTIFACTS)
    serve(artifact_sock, shipment, label)
    try:
        worker = await RemoteWorker.attach(
            socks,
            node,
            label=label,
            start_timeout=start_timeout,
            memory_limit=memory_limit,
            on_exit=on_exit,
            prepare_timeout=setup_timeout,
        )
    except BaseException:
        with contextlib.suppress(OSError):
            artifact_sock.shutdown(socket.SHUT_RDWR)
        artifact_sock.close()
        raise
    global _live
    _live += 1
    worker.on_released = _worker_closed
    worker.artifact_sock = artifact_sock
    worker.shipment = shipment
    shipment.learn(worker.node_paths)
    return worker


async def localize(worker: RemoteWorker, ship: Sequence[str], obj: Any) -> Any:
    """``obj`` with every hub path rewritten to the node's, after pulling ``ship``
    (more artifacts of a placement: a jar component on a shared JVM host) onto the
    node; ``Failed`` (``artifact_not_found`` naming the node) if it cannot."""
    shipment = worker.shipment
    if shipment is None:
        return obj
    try:
        items = await asyncio.to_thread(shipment.pending, ship)
    except Exception as exc:
        raise _fail(Code.ARTIFACT_NOT_FOUND, f"cannot pack the artifacts of {worker.label!r}: {exc}") from None
    node = worker.node
    if items and isinstance(node, RayNode):
        try:
            reply = await asyncio.wait_for(asyncio.wrap_future(node.actor.stage.remote(items).future()), 300.0)
        except Exception as exc:  # the actor or its node went away, or took too long
            raise _fail(
                Code.NODE_LOST,
                f"the node of {worker.label!r} could not take its artifacts: {exc!r}",
                **{k: v for k, v in worker.placement.items() if k in ("node_id", "address")},
            ) from None
        if "failure" in reply:
            raise Failed(Observation.from_dict(reply["failure"]))
        shipment.learn(reply.get("paths") or {})
    return shipment.rewrite(obj)

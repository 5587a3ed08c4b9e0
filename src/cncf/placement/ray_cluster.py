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

Replicas of one component (a :class:`~cncf.placement.Spread` from the replica)
spread over the nodes that fit: each is placed on a fitting node holding the
fewest of its live siblings (none while there are more fitting nodes than
replicas), with Ray's ``NodeAffinitySchedulingStrategy`` (see :func:`_choose`).
A worker that is no replica is placed exactly as Ray schedules it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cncf.observation import Code, Failed, Observation, Stage
from cncf.placement import _tcp
from cncf.placement.remote import RemoteWorker

if TYPE_CHECKING:
    from cncf.placement import Spread

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
_connected_to = ""  # the address it connected with (a ray:// one cannot be read back)
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


def _same_cluster(address: str, current: str) -> bool:
    """Whether ``address`` names the cluster this process is connected to (``current``,
    its GCS address; or the ``ray://`` address the hub connected with)."""
    if address in ("auto", current):
        return True
    if address.startswith("ray://") or current.startswith("ray://"):
        return address == current
    host, _, port = address.rpartition(":")
    here, _, here_port = current.rpartition(":")
    if port != here_port:
        return False
    try:
        mine = {a[4][0] for a in socket.getaddrinfo(host.strip("[]"), None)}
        theirs = {a[4][0] for a in socket.getaddrinfo(here.strip("[]"), None)}
    except OSError:
        return False
    return bool(mine & theirs)


def _connect_sync(address: str) -> str:
    global _connected_by_us, _connected_to
    ray = import_ray()
    with _init_lock:
        if ray.is_initialized():
            current = _connected_to if _connected_by_us and _connected_to.startswith("ray://") else ""
            if not current:
                current = str(ray.get_runtime_context().gcs_address)
            # A Ray Client connection made by someone else cannot be compared: it is kept.
            foreign_client = not _connected_by_us and address.startswith("ray://")
            if not foreign_client and not _same_cluster(address, current):
                raise _fail(
                    Code.CLUSTER_UNREACHABLE,
                    f"this process is connected to the Ray cluster at {current}, not {address}: "
                    "Ray allows one cluster per process, so two hubs in one process cannot use two "
                    "clusters (run the second hub in a process of its own)",
                    ray_address=address,
                    connected=current,
                )
            return current
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
        _connected_by_us = True
        if address.startswith("ray://"):
            _connected_to = address
            return address
        _connected_to = str(ray.get_runtime_context().gcs_address)
        return _connected_to


_pending: set[asyncio.Task[None]] = set()


def _worker_closed() -> None:
    """A placed worker was closed; the last one of closed hubs disconnects (a shared
    JVM host may be closed after its hub's boundaries)."""
    global _live
    _live = max(0, _live - 1)
    if not _live and not _users:
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
    if _users or _live:
        return

    def disconnect() -> None:
        global _connected_by_us
        with _init_lock:
            if _users or _live:
                return
            POOL.drain()  # no actor of the hub is left on the cluster
            if _connected_by_us:
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
    """One run of a node actor: where it runs, its liveness task, how to end it.

    The actor outlives the run when the run ended cleanly: :meth:`stop` parks it in
    the :class:`ActorPool` for the next worker of the same placement."""

    def __init__(self, actor: Any, name: str, info: Mapping[str, Any], address: str, key: tuple[Any, ...]) -> None:
        self.actor = actor
        self.name = name
        self.info = dict(info)
        self.cluster = address
        self.key = key
        self.run = int(info.get("run") or 0)
        self.reusable = False  # set once the worker started: a failed start kills the actor
        self.stopped = False  # its run ended: it no longer occupies its node for its siblings
        self.lost = False  # it ended with its node (the cluster may not know yet)
        self.parked = False  # it ended cleanly: its actor (and so its node) answered
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
            "actor_runs": self.run,  # how many workers this node actor has hosted, this one included
        }

    def watch(self) -> Any:
        if self._watch is None:
            self._watch = self.actor.watch.remote(self.run)
        return self._watch

    async def stop(self, lost: bool = False) -> None:
        """End the run's worker; park the actor for reuse, or kill it (its node lost,
        the run failed, the actor not answering)."""
        self.stopped, self.lost = True, lost
        stopped = False
        if not lost:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(self.actor.stop.remote(self.run).future()), 5.0)
                stopped = True
        if stopped and self.reusable:
            self.parked = True
            POOL.park(self.key, self.actor, self.name, self.info)
        else:
            _kill(self.actor)

    async def death_cause(self) -> str | None:
        def query() -> str | None:
            from ray.util.state import get_actor

            state = get_actor(self.actor._actor_id.hex(), timeout=2)
            if state is None:
                return None
            cause = getattr(state, "death_cause", None)
            return str(cause) if cause else str(getattr(state, "state", ""))

        return await asyncio.to_thread(query)


def _kill(actor: Any) -> None:
    with contextlib.suppress(Exception):
        import_ray().kill(actor, no_restart=True)


#: Seconds an actor whose worker ended waits for the next worker of its placement
#: (``CNCF_RAY_IDLE_SECONDS``; 0 kills it at once).  Meanwhile it holds its resources;
#: a placement asking for any of them takes it or ends it first, and it ends with
#: the hub's connection.
IDLE_SECONDS = 10.0


def idle_seconds() -> float:
    raw = os.environ.get("CNCF_RAY_IDLE_SECONDS", "")
    try:
        value = float(raw) if raw else IDLE_SECONDS
    except ValueError:
        return IDLE_SECONDS
    return value if value >= 0 else IDLE_SECONDS


class _Parked:
    __slots__ = ("actor", "name", "info", "timer")

    def __init__(self, actor: Any, name: str, info: Mapping[str, Any], timer: threading.Timer | None) -> None:
        self.actor, self.name, self.info, self.timer = actor, name, dict(info), timer


class ActorPool:
    """Node actors whose worker ended, by placement (cluster and resources): the next
    worker of that placement (a restart after a crash, the next load) takes one instead
    of paying Ray's actor creation (about half a second), on the same node."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[Any, ...], list[_Parked]] = {}

    def take(self, key: tuple[Any, ...], accept: Callable[[_Parked], bool] | None = None) -> _Parked | None:
        """A parked actor of ``key`` (the last parked; with ``accept``, the last it accepts)."""
        with self._lock:
            parked = self._idle.get(key)
            if not parked:
                return None
            if accept is None:
                found = parked.pop()
            else:
                ok = [p for p in parked if accept(p)]
                if not ok:
                    return None
                found = ok[-1]
                parked.remove(found)
            if not parked:
                del self._idle[key]
        if found.timer is not None:
            found.timer.cancel()
        return found

    def park(self, key: tuple[Any, ...], actor: Any, name: str, info: Mapping[str, Any]) -> None:
        linger = idle_seconds()
        if linger <= 0:
            _kill(actor)
            return
        timer = threading.Timer(linger, self._expire, (key, actor))
        timer.daemon = True
        with self._lock:
            self._idle.setdefault(key, []).append(_Parked(actor, name, info, timer))
        timer.start()

    def _expire(self, key: tuple[Any, ...], actor: Any) -> None:
        with self._lock:
            parked = self._idle.get(key, [])
            gone = [p for p in parked if p.actor is actor]
            if gone:
                parked.remove(gone[0])
                if not parked:
                    self._idle.pop(key, None)
        if gone:
            _kill(actor)

    def evict(self, resources: Mapping[str, float], keep: tuple[Any, ...]) -> int:
        """End parked actors of other placements holding any of ``resources`` (a new
        placement must not wait for an idle one); how many."""
        names = set(resources)
        victims: list[_Parked] = []
        with self._lock:
            for key in list(self._idle):
                held = {k for k, _v in key[1]}
                if key != keep and held & names:
                    victims += self._idle.pop(key)
        for v in victims:
            if v.timer is not None:
                v.timer.cancel()
            _kill(v.actor)
        return len(victims)

    def drain(self) -> None:
        """End every parked actor (the hub's connection is released)."""
        with self._lock:
            victims = [p for parked in self._idle.values() for p in parked]
            self._idle.clear()
        for v in victims:
            if v.timer is not None:
                v.timer.cancel()
            _kill(v.actor)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())


POOL = ActorPool()


def pool_key(address: str, resources: Mapping[str, float]) -> tuple[Any, ...]:
    return (address, tuple(sorted((k, float(v)) for k, v in resources.items())))


def _python_version(path: str) -> str:
    """``3.11``: the version a placed python worker asks its node for (the hub's own
    when ``path`` does not answer: the node then reports what it lacks)."""
    import sys

    from cncf.placement.ray_node import python_version

    return python_version(path) or f"{sys.version_info[0]}.{sys.version_info[1]}"


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
    from cncf.placement.ray_node import ARTIFACT_STORE_ENV

    keys["artifact_store"] = os.environ.get(ARTIFACT_STORE_ENV) or None  # the operator's, asked first
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


#: How long a parked actor may take to accept a new run before a fresh one is made.
REUSE_TIMEOUT = 10.0


class _Claim:
    """The node one replica occupies (``node`` set once placed), or is being placed on."""

    __slots__ = ("node_id", "node")

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.node: RayNode | None = None

    def occupies(self) -> bool:
        return self.node is None or not self.node.stopped


class _Group:
    """The nodes the replicas of one component occupy, by replica."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # a choice and its claim are one step: concurrent loads see each other
        self.claims: weakref.WeakKeyDictionary[object, _Claim] = weakref.WeakKeyDictionary()

    def occupied(self, member: object) -> Counter[str]:
        """How many live siblings of ``member`` each node holds."""
        return Counter(c.node_id for m, c in list(self.claims.items()) if m is not member and c.occupies())

    def release(self, member: object, claim: _Claim) -> None:
        if self.claims.get(member) is claim:
            del self.claims[member]


#: The placement groups of replicas, by component (a component unloaded and gone takes its own).
_groups: weakref.WeakKeyDictionary[object, _Group] = weakref.WeakKeyDictionary()


def fitting_nodes(resources: Mapping[str, float]) -> list[tuple[str, bool]]:
    """(node id, whether ``resources`` are free on it now) of the alive nodes whose
    totals cover ``resources``, in Ray's order."""
    try:  # a view Ray exposes only privately: without it every fitting node counts as free
        import importlib

        free: Mapping[str, Mapping[str, float]] = importlib.import_module(
            "ray._private.state"
        ).available_resources_per_node()
    except Exception:
        free = {}
    out = []
    for node in feasible_nodes(resources):
        node_id = str(node.get("NodeID"))
        now = free.get(node_id)
        out.append((node_id, now is None or all(now.get(k, 0.0) >= v for k, v in resources.items())))
    return out


async def _choose(
    spread: Spread, resources: Mapping[str, float], key: tuple[Any, ...]
) -> tuple[_Group, _Claim | None, _Parked | None]:
    """Claim the node for a replica: among the fitting nodes, those holding the fewest
    of its live siblings (none while there are free ones); of them, one that has the
    resources free now.  A parked actor of the placement on one of those nodes is
    taken (no actor creation); else the claim names the node the new actor asks for.
    No claim when no node fits (the caller has just checked; a node may have gone)."""
    group = _groups.get(spread.group)
    if group is None:
        group = _groups[spread.group] = _Group()
    async with group.lock:
        nodes = await asyncio.to_thread(fitting_nodes, resources)
        if not nodes:
            return group, None, None
        taken = group.occupied(spread.member)
        # The node of this replica's last run, when that run did not end cleanly (its node
        # lost, its actor not answering: Ray may list the node alive for a while yet), comes
        # after the others holding as few siblings.
        mine = group.claims.get(spread.member)
        gone = mine is not None and mine.node is not None and mine.node.stopped and not mine.node.parked
        lost = mine.node_id if mine is not None and gone else None
        rank = {n: (taken[n], n == lost, not free) for n, free in nodes}
        least = min(r[:2] for r in rank.values())
        best = {n for n, r in rank.items() if r[:2] == least}
        parked = POOL.take(key, lambda p: str(p.info.get("node_id")) in best)
        node_id = str(parked.info.get("node_id")) if parked is not None else min(rank, key=rank.__getitem__)
        claim = group.claims[spread.member] = _Claim(node_id)
    return group, claim, parked


def _on_node(node_id: str) -> Any:
    """Ray's strategy for "this node": soft (a node gone since the choice does not fail
    the load: Ray places it elsewhere) and, where this Ray has it, spilling when the
    node's resources were taken meanwhile (another node at once, not a wait)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        return NodeAffinitySchedulingStrategy(node_id, soft=True, _spill_on_unavailable=True)
    except TypeError:  # a Ray without the (private) spill flag
        return NodeAffinitySchedulingStrategy(node_id, soft=True)


async def _place(
    label: str,
    resources: Mapping[str, float],
    key: tuple[Any, ...],
    request: dict[str, Any],
    setup_timeout: float,
    spread: Spread | None = None,
) -> tuple[Any, str, dict[str, Any], _Claim | None]:
    """(actor, its name, where it listens, the replica's claim): a parked actor of the
    same placement if one answers, else a new one (parked actors of other placements
    holding any of these resources are ended first, so that Ray can schedule it).
    A replica (``spread``) takes a parked actor or a new one on the node :func:`_choose`
    claims; on failure its claim is dropped."""
    if spread is None:
        return (*await _place_on(label, resources, key, request, setup_timeout, None), None)
    group, claim = None, None
    try:
        while True:
            group, claim, parked = await _choose(spread, resources, key)
            if parked is None:
                break
            with contextlib.suppress(Exception):  # gone with its node, or not answering: choose again
                return (*await _start_parked(parked, request), claim)
            _kill(parked.actor)
        actor, name, info = await _place_on(
            label, resources, key, request, setup_timeout, claim.node_id if claim else None
        )
    except BaseException:
        if group is not None and claim is not None:
            group.release(spread.member, claim)
        raise
    if claim is not None:
        claim.node_id = str(info.get("node_id") or claim.node_id)  # where Ray put it (a soft choice)
    return actor, name, info, claim


async def _start_parked(parked: _Parked, request: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
    future = parked.actor.start.remote(request).future()
    info = await asyncio.wait_for(asyncio.wrap_future(future), REUSE_TIMEOUT)
    return parked.actor, parked.name, dict(info)


async def _place_on(
    label: str,
    resources: Mapping[str, float],
    key: tuple[Any, ...],
    request: dict[str, Any],
    setup_timeout: float,
    node_id: str | None,
) -> tuple[Any, str, dict[str, Any]]:
    """A parked actor of ``key`` that answers, else a new actor (on ``node_id`` if given)."""
    if node_id is None:
        while (parked := POOL.take(key)) is not None:
            try:
                return await _start_parked(parked, request)
            except Exception:  # gone with its node, or not answering: try the next, or a fresh one
                _kill(parked.actor)
    POOL.evict(resources, key)
    ray = import_ray()
    name = f"cncf-{label}-{uuid.uuid4().hex[:8]}"
    try:
        options: dict[str, Any] = {"scheduling_strategy": _on_node(node_id)} if node_id else {}
        actor = (
            _node_actor_class()
            .options(
                name=name,
                namespace=NAMESPACE,
                num_cpus=0,
                resources=dict(resources) or None,
                max_restarts=0,
                max_concurrency=8,
                **options,
            )
            .remote()
        )
    except Exception as exc:  # Ray refusing the options: a load Observation, never a raise
        raise _fail(
            Code.WORKER_START_FAILED,
            f"Ray refused to create the node actor for {label!r}: {exc}",
            resources=dict(resources),
        ) from None
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
        _kill(actor)
        raise
    except TimeoutError:
        _kill(actor)
        raise _fail(
            Code.ENVIRONMENT_FAILED, f"preparing {label!r} on its node took more than {setup_timeout:g}s"
        ) from None
    except Exception as exc:  # RayActorError and friends: the node went away while placing
        _kill(actor)
        raise _fail(
            Code.NODE_LOST, f"the node actor for {label!r} died while being placed: {exc}", actor=name
        ) from None
    return actor, name, dict(info)


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
    spread: Spread | None = None,
) -> RemoteWorker:
    """Place one worker on a node offering ``resources`` and connect to it.

    ``env`` is the worker's environment as the hub computed it; the node rebuilds
    it from its own allow-list values (``node_environment``).  ``environment`` asks
    the node to build (or find, by the same hash) the python form's private
    environment and start the worker with its python.  Every artifact travels by
    hash (:func:`plan_shipment`) and every path is rewritten to the node's.
    ``spread`` (a replica of a component) places it on a fitting node that none of
    its live siblings occupies while there is one (see :func:`_choose`).
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
    key = pool_key(address, resources)
    actor, name, info, claim = await _place(label, resources, key, request, setup_timeout, spread)
    node = RayNode(actor, name, info, address, key)
    if claim is not None:
        claim.node = node  # it occupies its node for its siblings until its run stops
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
    node.reusable = True  # its worker started: once it ends, the actor may host the next one
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
            reply = await asyncio.wait_for(
                asyncio.wrap_future(node.actor.stage.remote(node.run, items).future()), 300.0
            )
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

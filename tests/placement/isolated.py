"""A Ray cluster on this machine whose worker nodes share nothing with the hub but the network.

Issue 17: a platform engineer's cluster is several machines with nothing in
common but the network and Ray.  One machine stands in for several here: the
head runs beside the hub (``ray.cluster_utils.Cluster``, as in
``conftest.py``), and each *isolated node* is a Ray worker node, started the
way ``ray start --address … --block`` starts one (see ``_NODE_MAIN``), whose
processes (raylet, agents, Ray workers, and every worker ``cncf`` starts
there) live in a private mount and UTS namespace
(``unshare --mount --uts --propagation private``; hostname ``node-<name>``)
where tmpfs hides what a second machine would not have:

* the hub's temporary folder (``/tmp``: pytest's hub homes and component
  copies, the head's ``RAY_TMPDIR``, every other cluster on the machine) and
  ``/dev/shm`` (the head's object store);
* the hub's home (``~``: its caches, uv's cache, ``~/.m2``, the compiled JVM
  host, ``~/.cncf``);
* the repository (``tests/fixtures``, ``examples``, the worktree's ``src``)
  and every folder an editable install of ``cncf`` points at
  (``/work/main/src``): the top-level folder holding each is hidden.

What a real node has installed stays: the Python installation that runs Ray
(kept at the same path, e.g. ``~/.pyenv/versions/3.11.7``, with Ray and uv in
it; or, with ``python_at=``, somewhere else, so the hub's interpreter path does
not exist there), the machine's TLS trust and proxy settings, the system
(``/usr``: java, node, perl), and a *copy* of the ``cncf`` package taken when
the node starts, on the node's ``PYTHONPATH`` (a node
"installed" cncf; when the hub connects to Ray itself it ships its own with the
job's ``runtime_env``, which wins).  The node's own disk is
``<root>/<name>``: its ``HOME`` (so its caches, ``~/.cache/cncf/node`` by
default, outlive it and can be inspected by a test), its Ray temp dir, and
that copy of ``cncf``.

The network namespace is shared: the node registers as ``127.0.0.1`` and the
hub reaches it over loopback TCP, as it would over the network.

The cluster has a ``RAY_TMPDIR`` of its own (a short folder under ``/tmp``:
Ray's unix socket paths must stay under 108 bytes), so these tests never meet
another cluster on the machine, and a free dashboard port.  Stopping a node
sends SIGTERM to its main process (Ray's handler ends the node's processes)
and then SIGKILL to whatever is left *in that mount namespace and carrying the
cluster's marker variable* (never by namespace alone: until ``unshare`` has
run, the child is in the test's own namespace, which every process of the
machine shares); :meth:`IsolatedCluster.shutdown`
does that for every node, disconnects the driver, shuts the head down, and
:func:`leftovers` finds any process still carrying the cluster's marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cncf

REPO = Path(__file__).resolve().parents[2]
#: Present in the environment of every process of an isolated cluster (head and nodes).
MARKER = "CNCF_ISOLATED_CLUSTER"
_STORE = 78 * 1024 * 1024  # Ray's minimum object store
_PASSED = {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS"}
_PASSED |= {p for k in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY") for p in (k, k.lower())}
_SYSTEM = {"/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/opt", "/proc", "/sys", "/dev", "/var", "/run"}

# Runs inside ``unshare``: name the machine, hide, keep, then exec the node's main process.
# Keeps are opened (O_PATH) before anything is hidden and bound back from the
# descriptor afterwards, so a kept folder can live under a hidden one.
_LAUNCHER = r"""
import ctypes, json, os, sys
spec = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
MS_BIND, MS_REC = 4096, 16384
def mount(src, dst, fstype, flags, data):
    if libc.mount(src.encode(), dst.encode(), fstype.encode() if fstype else None, flags,
                  data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), dst)
import socket
socket.sethostname(spec["hostname"])  # its own UTS namespace: a machine of its own name
keeps = [(dst, os.open(src, os.O_PATH | os.O_DIRECTORY)) for src, dst in spec["keep"]]
for path in spec["hide"]:
    mount("tmpfs", path, "tmpfs", 0, "mode=0755")
for path, fd in keeps:
    os.makedirs(path, exist_ok=True)
    mount("/proc/self/fd/%d" % fd, path, None, MS_BIND | MS_REC, None)
    os.close(fd)
os.chdir(spec["cwd"])
os.execve(spec["argv"][0], spec["argv"], spec["env"])
"""

# What ``ray start --address=HEAD --block`` does, in a fresh interpreter started
# after the mounts (so no hidden folder is already on ``sys.path``).  The CLI
# itself cannot be used for a loopback cluster: it rewrites 127.0.0.1 to the
# machine's routable address unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and
# with that set it refuses to start a worker node.  ``ray.cluster_utils`` starts
# its nodes the same way.
_NODE_MAIN = r"""
import json, sys, time
import ray._private.node, ray._private.parameter
params = ray._private.parameter.RayParams(**json.loads(sys.argv[1]))
node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
print("node started", node.node_id, flush=True)
while True:  # SIGTERM: Ray's own handler ends every process of the node, then exits
    time.sleep(1)
    dead = [(kind, p.returncode) for kind, p in node.dead_processes()]
    if dead:
        print("node processes died:", dead, flush=True)
        node.kill_all_processes(check_alive=False, allow_graceful=False)
        sys.exit(1)
"""


def namespaces_problem() -> str | None:
    """Why this machine cannot make isolated nodes (no ``unshare``, no right to mount), or None."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "--mount", "--uts", "--propagation", "private", "true"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        return f"cannot create mount/UTS namespaces here (root or CAP_SYS_ADMIN needed): {probe.stderr.strip()}"
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _top(path: Path) -> Path | None:
    """The top-level folder holding ``path`` (``/work`` for ``/work/main/src``), unless a system one."""
    parts = path.resolve().parts
    if len(parts) < 2:
        return None
    top = Path(parts[0], parts[1])
    return None if str(top) in _SYSTEM else top


def _editable_targets() -> list[Path]:
    """Folders ``.pth`` files of this Python point at outside its installation (editable installs)."""
    out: list[Path] = []
    for sp in site.getsitepackages():
        for pth in Path(sp).glob("*.pth"):
            with contextlib.suppress(OSError):
                for line in pth.read_text().splitlines():
                    line = line.strip()
                    if line and not line.startswith(("#", "import")) and os.path.isabs(line):
                        out.append(Path(line))
    return out


def _install_dirs() -> list[Path]:
    """What a node has installed: the Python running Ray (its prefix, which holds ray and uv)."""
    import ray

    dirs = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(ray.__file__).resolve().parents[1]}
    return sorted(dirs, key=lambda p: len(p.parts))


def hub_only_paths() -> list[Path]:
    """The folders hidden on an isolated node (see the module docstring)."""
    hidden = {Path(tempfile.gettempdir()).resolve(), Path.home().resolve()}
    if Path("/dev/shm").is_dir():
        hidden.add(Path("/dev/shm"))
    for p in (REPO, Path(cncf.__file__).resolve().parents[1], *_editable_targets()):
        top = _top(p)
        if top is not None and top.is_dir():
            hidden.add(top)
    # A folder inside another hidden one is hidden with it.
    return sorted(p for p in hidden if not any(q != p and q in p.parents for q in hidden))


def visible(paths: Sequence[str]) -> dict[str, Any]:
    """Run *on a node* (pickled by value): which paths exist, and what Python/cncf it has."""
    import os
    import socket
    import sys

    out: dict[str, Any] = {p: os.path.exists(p) for p in paths}
    try:
        import cncf as node_cncf

        out["cncf"] = node_cncf.__file__
    except ImportError:
        out["cncf"] = None
    out["python"] = sys.executable
    out["home"] = os.path.expanduser("~")
    out["mnt_ns"] = os.readlink("/proc/self/ns/mnt")
    out["hostname"] = socket.gethostname()
    out["pid"] = os.getpid()
    return out


def _mnt_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


_OWN_NS = _mnt_ns(os.getpid())


def _has_marker(pid: int, root: Path) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{MARKER}={root}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class IsolatedNode:
    """One ``ray start --block`` in a private mount namespace."""

    def __init__(
        self,
        cluster: IsolatedCluster,
        name: str,
        resources: dict[str, float],
        *,
        hide: Iterable[Path],
        install_cncf: bool = True,
        env: dict[str, str] | None = None,
        python_at: str | None = None,
    ) -> None:
        self.name = name
        self.root = cluster.root
        self.resources = dict(resources)
        self.disk = cluster.root / name  # the node's own disk, visible to the test from outside
        self.home = self.disk / "home"
        self.site = self.disk / "site"
        self.temp = self.disk / "t"
        for d in (self.home, self.site, self.temp):
            d.mkdir(parents=True, exist_ok=True)
        if install_cncf:  # the node's installed cncf: a copy, as ``pip install cncf`` would leave
            shutil.copytree(
                Path(cncf.__file__).parent,
                self.site / "cncf",
                ignore=shutil.ignore_patterns("__pycache__"),
                dirs_exist_ok=True,
            )
        self.hidden = [str(p) for p in hide]
        keep = [[str(p), str(p)] for p in _install_dirs()] + [[str(self.disk), str(self.disk)]]
        self.python = sys.executable
        if python_at is not None:
            # A node whose Python lives elsewhere: the hub's interpreter path does not exist
            # there.  The mount point must be inside a hidden (tmpfs) folder, so that making
            # it never touches the real filesystem.
            if not any(Path(python_at).is_relative_to(h) for h in self.hidden):
                raise ValueError(f"python_at={python_at} must lie under a hidden folder {self.hidden}")
            base = Path(sys.base_prefix).resolve()
            if Path(sys.prefix).resolve() != base:
                raise ValueError("python_at needs the hub's Python to be an installation, not a virtualenv")
            keep = [[str(base), python_at], [str(self.disk), str(self.disk)]]
            self.python = str(Path(python_at) / Path(sys.executable).relative_to(sys.prefix))
            # Its libpython is found by an absolute rpath into the hub's prefix (pyenv builds
            # with --enable-shared); without this the loader picks the system's libpython3.11.
            env = {"LD_LIBRARY_PATH": str(Path(python_at) / "lib"), **(env or {})}
        bindir = os.path.dirname(self.python)
        node_env = {
            "PATH": os.pathsep.join([bindir, "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(self.home),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONPATH": str(self.site),
            "TMPDIR": str(self.temp),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep the node on loopback
            "CNCF_TEST_NODE": name,
            MARKER: str(cluster.root),
            # The machine's trust store and proxies are the image's, not the hub's files
            # (this sandbox's TLS needs them to reach PyPI; a real node is set up alike).
            **{k: v for k, v in os.environ.items() if k in _PASSED},
            **(env or {}),
        }
        params = {
            "gcs_address": cluster.address,
            "node_ip_address": "127.0.0.1",
            "num_cpus": 1,
            "num_gpus": 0,
            "resources": self.resources,
            "object_store_memory": _STORE,
            "temp_dir": str(self.temp),
            "min_worker_port": 0,
            "max_worker_port": 0,
            "node_manager_port": 0,
            "dashboard_agent_listen_port": _free_port(),
        }
        argv = [self.python, "-c", _NODE_MAIN, json.dumps(params)]
        spec = {
            "hide": self.hidden,
            "keep": keep,
            "argv": argv,
            "env": node_env,
            "cwd": str(self.home),
            "hostname": f"node-{name}",
        }
        self.log = open(self.disk / "ray-start.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                sys.executable,
                "-c",
                _LAUNCHER,
                json.dumps(spec),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=node_env,
            start_new_session=True,
        )
        self.mnt_ns: str | None = None
        self.node_id = ""

    def wait_registered(self, ray_nodes: Any, timeout: float = 90.0) -> None:
        """Until the cluster lists an alive node with this node's resources."""
        deadline = time.monotonic() + timeout
        key = next(iter(self.resources))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start for {self.name} exited {self.proc.returncode}: {self.log_text()}")
            if self.mnt_ns is None:
                # Only once unshare has run: until then the child is in *our* namespace,
                # and "every process in it" would be every process on the machine.
                ns = _mnt_ns(self.proc.pid)
                if ns is not None and ns != _OWN_NS:
                    self.mnt_ns = ns
            for n in ray_nodes():
                if n.get("Alive") and key in (n.get("Resources") or {}):
                    self.node_id = str(n["NodeID"])
                    return
            time.sleep(0.5)
        raise TimeoutError(f"node {self.name} did not join within {timeout:g}s: {self.log_text()}")

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return (self.disk / "ray-start.log").read_text(errors="replace")[-3000:]
        return ""

    def processes(self) -> list[int]:
        """Live processes in this node's mount namespace (raylet, agents, Ray workers, cncf workers)."""
        if self.mnt_ns is None or self.mnt_ns == _OWN_NS:
            return []
        mine = os.getpid()
        return [
            p for p in _pids() if p != mine and _mnt_ns(p) == self.mnt_ns and _has_marker(p, self.root) and _alive(p)
        ]

    def on_node(self, path: str | Path) -> Path:
        """``path`` as the node sees it, read from outside (through a live process's root)."""
        pids = self.processes()
        if not pids:
            raise RuntimeError(f"node {self.name} has no live process")
        return Path(f"/proc/{pids[0]}/root") / str(path).lstrip("/")

    def stop(self, timeout: float = 30.0) -> list[int]:
        """End the node the way its operator would (SIGTERM to ``ray start --block``), then
        SIGKILL whatever is left in its namespace.  Returns what needed the SIGKILL."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        deadline = time.monotonic() + 10
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        forced = self.processes()
        for pid in forced:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()
        return forced


class IsolatedCluster:
    """A head beside the hub and isolated nodes, under a ``RAY_TMPDIR`` of its own."""

    def __init__(self, head_resources: dict[str, float] | None = None) -> None:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        import ray
        from ray.cluster_utils import Cluster

        if ray.is_initialized():
            raise RuntimeError("this process is already connected to a Ray cluster (one per process)")
        self.ray = ray
        # Short: Ray's unix sockets live under it (at most 107 bytes).
        self.root = Path(tempfile.mkdtemp(prefix="cr", dir="/tmp"))
        self._saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", MARKER, "RAY_ADDRESS")}
        os.environ["RAY_TMPDIR"] = str(self.root / "head")
        os.environ[MARKER] = str(self.root)  # inherited by the head's processes
        (self.root / "head").mkdir()
        self.hidden = hub_only_paths()
        try:
            self.cluster = Cluster(
                initialize_head=True,
                head_node_args={
                    "num_cpus": 1,
                    "object_store_memory": _STORE,
                    "resources": head_resources or {"hub_machine": 1},
                    "include_dashboard": True,
                    "dashboard_host": "127.0.0.1",
                    "dashboard_port": _free_port(),
                },
            )
        except BaseException:  # a head that timed out starting (a loaded machine): leave nothing
            for line in _marked(self.root):
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(line.split()[0]), signal.SIGKILL)
            self._restore_environment()
            self.cleanup_disk()
            raise
        self.address: str = self.cluster.address
        # A hub's default ray_address ("auto") finds clusters by their processes: another
        # engineer's cluster on this machine could be the one it picks.  Name ours.
        os.environ["RAY_ADDRESS"] = self.address
        self.nodes: dict[str, IsolatedNode] = {}
        self._down = False

    def add(self, name: str, resources: dict[str, float], **kwargs: Any) -> IsolatedNode:
        node = IsolatedNode(self, name, resources, hide=kwargs.pop("hide", self.hidden), **kwargs)
        self.nodes[name] = node
        try:
            node.wait_registered(self._ray_nodes)
        except Exception:
            self.nodes.pop(name, None)
            node.stop()
            raise
        return node

    def _ray_nodes(self) -> list[dict[str, Any]]:
        """The GCS's node table (no driver connection needed; ``Cluster`` keeps a client)."""
        return list(self.cluster.global_state.node_table())

    def remove(self, name: str) -> list[int]:
        return self.nodes.pop(name).stop()

    def connect(self) -> None:
        """Connect this process as a driver (tests that place probes themselves)."""
        if not self.ray.is_initialized():
            self.ray.init(address=self.address, logging_level="WARNING", log_to_driver=False)

    def run_on(self, resources: dict[str, float], fn: Any, *args: Any, timeout: float = 120.0) -> Any:
        """Run a function of this module on a node offering ``resources`` (pickled by value:
        the node cannot import ``tests``)."""
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        self.connect()
        task = self.ray.remote(num_cpus=0, resources=resources)(fn)
        return self.ray.get(task.remote(*args), timeout=timeout)

    def shutdown(self) -> None:
        """Stop every node, disconnect this process, shut the head down (idempotent)."""
        if self._down:
            return
        self._down = True
        for name in list(self.nodes):
            self.remove(name)
        with contextlib.suppress(Exception):
            self.ray.shutdown()
        try:
            self.cluster.shutdown()
        finally:
            self._restore_environment()

    def _restore_environment(self) -> None:
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def cleanup_disk(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def leftovers(root: Path, timeout: float = 0.0) -> list[str]:
    """Live processes (other than this one) carrying the cluster's marker in their
    environment, waiting up to ``timeout`` for them to end (a forkserver of the
    head's dashboard lingers for a moment after its parent)."""
    deadline = time.monotonic() + timeout
    while True:
        found = _marked(root)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.3)


def _marked(root: Path) -> list[str]:
    out = []
    for pid in _pids():
        if pid == os.getpid() or not _alive(pid) or not _has_marker(pid, root):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            out.append(f"{pid} {cmdline[:120]}")
        except OSError:
            continue
    return out

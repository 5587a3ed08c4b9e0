"""A real multi-node Ray cluster on this machine, started once for this folder.

``ray.cluster_utils.Cluster`` starts a head and worker nodes as separate
raylets, each with custom resources, so a component can be placed on a
chosen node with ``placement_resources`` and a node can be removed while a
call runs.  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps every address on
127.0.0.1 (checked below).  Under ``CI=true`` a missing Ray fails the run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cncf
from tests.conftest import IN_CI

# Read by Ray at import time: set before anything imports it.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "placement"
ECHO = FIXTURES / "echo"
_STORE = 78 * 1024 * 1024  # Ray's minimum object store: the tests move no objects


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        if IN_CI:
            pytest.fail("ray is required under CI=true (pip install -e '.[test]' installs cncf[ray])")
        pytest.skip("ray is not installed (pip install 'cncf[ray]')")
    return ray


def _free_port() -> int:
    """A free loopback port for the cluster's dashboard (8265 may be another cluster's)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RayCluster:
    """The session's cluster: nodes by name, and nodes added or removed by a test."""

    def __init__(self, node_cache: Path) -> None:
        ray = require_ray()
        from ray.cluster_utils import Cluster

        os.environ["CNCF_NODE_CACHE"] = str(node_cache)  # the nodes inherit it
        self.ray = ray
        self.node_cache = node_cache
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "object_store_memory": _STORE,
                "include_dashboard": True,
                "dashboard_host": "127.0.0.1",
                "dashboard_port": _free_port(),
            },
        )
        self.nodes: dict[str, Any] = {}
        self.add("alpha", {"alpha": 1})
        self.add("beta", {"beta": 1})
        self.cluster.wait_for_nodes()
        ray.init(address=self.cluster.address, logging_level="WARNING", log_to_driver=False)
        self.address = self.cluster.address
        addresses = {n["NodeManagerAddress"] for n in ray.nodes()}
        assert addresses == {"127.0.0.1"}, f"the test cluster left loopback: {addresses}"

    def add(self, name: str, resources: dict[str, float]) -> Any:
        node = self.cluster.add_node(
            num_cpus=1, resources=resources, object_store_memory=_STORE, env_vars={"CNCF_TEST_NODE": name}
        )
        self.nodes[name] = node
        return node

    def node_id(self, name: str) -> str:
        return str(self.nodes[name].node_id)

    def name_of(self, node_id: str) -> str:
        return next(n for n, node in self.nodes.items() if node.node_id == node_id)

    def remove(self, name: str) -> None:
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)

    def cncf_actors(self) -> list[Any]:
        from ray.util.state import list_actors

        return [a for a in list_actors(filters=[("state", "=", "ALIVE")], timeout=10) if a.name.startswith("cncf-")]

    def shutdown(self) -> None:
        self.ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="package")  # stopped when tests/placement is done: the rest of a run does not share the CPU
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    c = RayCluster(tmp_path_factory.mktemp("node-cache"))
    try:
        yield c
    finally:
        c.shutdown()


@pytest.fixture
def placed_hub(tmp_path: Path, ray_cluster: RayCluster) -> Iterator[cncf.Hub]:
    with cncf.Hub(home=tmp_path / "home") as h:
        yield h


def worker_processes(marker: str) -> list[str]:
    """Processes on this machine (every node of the test cluster) whose command line has ``marker``."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def gone(pids: list[int], timeout: float = 20.0) -> bool:
    """Whether every process has ended (zombies count as ended) within ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _running(p)]
        if not alive:
            return True
        time.sleep(0.2)
    return False


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


from tests.jar.conftest import build_dir, jar_home, plain_jar  # noqa: E402,F401
from tests.placement.isolated import IsolatedCluster, namespaces_problem  # noqa: E402


@pytest.fixture
def placed_jar_hub(tmp_path: Path, ray_cluster: RayCluster, jvm: Any, jvm_cache: Path) -> Iterator[cncf.Hub]:  # noqa: F811
    with cncf.Hub(home=jar_home(tmp_path / "home", jvm_cache)) as h:
        yield h


# ---------------------------------------------------------------------------
# Isolated nodes (issue 17): a node that shares nothing with the hub but the network
# ---------------------------------------------------------------------------

#: The resources of a module's isolated node (``iso``) and of the head beside the hub.
ISO_NODE = {"iso": 1}
HEAD = {"hub_machine": 1}


def require_namespaces() -> None:
    problem = namespaces_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"isolated nodes are required under CI=true: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def isolated() -> Iterator[IsolatedCluster]:
    """A cluster per module whose node ``iso`` hides the hub's files (``isolated.py``).
    Modules using it run before ``test_placement.py``: a process talks to one cluster."""
    require_ray()
    require_namespaces()
    c = IsolatedCluster(head_resources=HEAD)
    try:
        c.add("iso", ISO_NODE)
        yield c
    finally:
        c.shutdown()
        c.cleanup_disk()


@pytest.fixture
def iso_hub(tmp_path: Path, isolated: IsolatedCluster, jvm: Any, jvm_cache: Path) -> Iterator[cncf.Hub]:
    """A hub whose home holds the compiled JVM host (as the jar tests share it)."""
    with cncf.Hub(home=jar_home(tmp_path / "home", jvm_cache)) as h:
        yield h

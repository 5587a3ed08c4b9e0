"""The harness of issue 17 holds: a node that shares nothing with the hub but the network.

These tests prove the harness itself (``tests/placement/isolated.py``), not
placement: what runs on an isolated node cannot see the hub's files, its home
or its caches, while the head beside the hub sees them; the node still has
Python, Ray and an installed ``cncf``; and stopping a node or the whole
cluster leaves no process behind.  The acceptance scenarios of issue 17
against such a node are in ``test_isolated_forms.py``.

This module runs before ``test_placement.py`` (file order) and disconnects
when done: a process talks to one Ray cluster at a time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.placement.conftest import HEAD, gone
from tests.placement.conftest import ISO_NODE as NODE
from tests.placement.isolated import REPO, IsolatedCluster, _editable_targets, leftovers, visible

pytestmark = pytest.mark.slow  # a Ray cluster with isolated nodes


@pytest.fixture
def isolated_cluster(isolated: IsolatedCluster) -> IsolatedCluster:
    return isolated


def _hub_paths(tmp_path: Path) -> list[str]:
    home = tmp_path / "home"  # a hub's home, as the placement tests give it
    (home / "cache").mkdir(parents=True)
    return [
        str(REPO / "tests" / "fixtures"),
        str(REPO / "examples"),
        str(REPO / "src" / "cncf"),
        *(str(p) for p in _editable_targets() if p.is_dir()),
        str(Path.home() / ".cache"),
        str(home),
    ]


def test_the_isolated_node_sees_none_of_the_hubs_files(isolated_cluster: IsolatedCluster, tmp_path: Path) -> None:
    paths = _hub_paths(tmp_path)
    node = isolated_cluster.nodes["iso"]
    on_head = isolated_cluster.run_on(HEAD, visible, paths)
    on_node = isolated_cluster.run_on(NODE, visible, paths)
    assert {p: on_head[p] for p in paths} == dict.fromkeys(paths, True)
    assert {p: on_node[p] for p in paths} == dict.fromkeys(paths, False)
    # What a real node has installed is there: Python (at its own path), Ray (it runs), cncf.
    assert on_node["python"] == sys.executable
    assert on_node["cncf"] == str(node.site / "cncf" / "__init__.py")
    assert on_node["home"] == str(node.home)
    assert on_node["mnt_ns"] != on_head["mnt_ns"] and on_node["hostname"] == "node-iso" != on_head["hostname"]
    assert on_node["pid"] in node.processes()  # the Ray worker that ran it lives in the node's namespace


def test_a_node_with_its_python_elsewhere_stops_leaving_no_process(isolated_cluster: IsolatedCluster) -> None:
    node = isolated_cluster.add("brief", {"brief": 1}, python_at="/tmp/python")
    seen = isolated_cluster.run_on({"brief": 1}, visible, [sys.executable])
    assert seen[sys.executable] is False  # the hub's interpreter path does not exist there
    assert seen["python"] == node.python and node.python.startswith("/tmp/python/bin/")
    worker = seen["pid"]
    before = node.processes()
    assert worker in before and len(before) >= 3  # the node's main process, its raylet, the Ray worker, …
    forced = isolated_cluster.remove("brief")
    assert forced == []  # SIGTERM alone ended every process of the node
    assert node.processes() == [] and gone([worker], timeout=10)  # a zombie awaiting its reaper counts as gone
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        table = {n["NodeID"]: n["Alive"] for n in isolated_cluster.ray.nodes()}
        if table.get(node.node_id) is False:
            break
        time.sleep(0.5)
    assert table.get(node.node_id) is False, table


def test_cluster_shutdown_leaves_no_process(isolated_cluster: IsolatedCluster) -> None:
    """Last in the module: shuts the module's cluster down (the fixture's teardown is then a no-op)."""
    isolated_cluster.run_on(NODE, visible, [])  # a Ray worker alive on the node
    assert leftovers(isolated_cluster.root)  # the check sees the cluster's processes …
    isolated_cluster.shutdown()
    assert leftovers(isolated_cluster.root, timeout=30) == []  # … and none once it is shut down

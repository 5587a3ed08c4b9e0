"""Issue 17: every form placed on a node that shares nothing with the hub but the network.

The node (``tests/placement/isolated.py``) runs in a private mount namespace:
the repository, the hub's home and caches, ``/tmp`` are not there.  Each
component's files exist only on the hub's side; they travel to the node by
sha256 (``cncf.placement.artifacts`` / ``shipping``), and the values and
Observations must be those of a local load.  What a node lacks is a load
Observation naming the node and the missing piece.  Scenarios that still fail
stay in ``issue17_pending.py`` (not collected).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cncf
from tests.placement.conftest import require_ray
from tests.placement.isolated import IsolatedCluster
from tests.placement.issue17_pending import _PROBE, ECHO, ELSEWHERE, FORMS, NODE, RAY, measure


@pytest.fixture(scope="module")
def isolated() -> Iterator[IsolatedCluster]:
    from tests.placement.test_isolated_node import require_namespaces

    require_ray()
    require_namespaces()
    c = IsolatedCluster(head_resources={"hub_machine": 1})
    try:
        c.add("iso", NODE)
        yield c
    finally:
        c.shutdown()
        c.cleanup_disk()


@pytest.fixture
def hub(tmp_path: Path, isolated: IsolatedCluster, jvm: Any, jvm_cache: Path) -> Iterator[cncf.Hub]:
    from tests.jar.conftest import jar_home

    with cncf.Hub(home=jar_home(tmp_path / "home", jvm_cache)) as h:
        yield h


def _objects(node: Any) -> set[str]:
    """The artifacts in the node's cache, read from outside (the node's disk is ours)."""
    root = node.home / ".cache" / "cncf" / "node" / "artifacts" / "objects"
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


# First in the module: a jar form's shared host may still be closing when its hub has closed
# (issue17_pending: a jar host's resources released with its last user).


def test_after_close_nothing_of_the_hub_is_left_and_it_disconnected(tmp_path: Path, isolated: IsolatedCluster) -> None:
    import ray
    from ray.util.state import list_actors

    from cncf.placement import ray_cluster as engine

    assert not ray.is_initialized(), (engine._users, engine._live, engine._connected_by_us)
    with cncf.Hub(home=tmp_path / "home") as hub:
        assert hub.load(ECHO, **RAY).state == "ready"
        assert ray.is_initialized()  # the hub connected itself …
        pid = hub.call("echo.where").value["pid"]
    assert not ray.is_initialized()  # … so it disconnected when it closed
    assert pid not in isolated.nodes["iso"].processes()
    alive = list_actors(address=isolated.address, filters=[("state", "=", "ALIVE")], timeout=10)
    assert [a.name for a in alive if a.name.startswith("cncf-")] == []


def test_a_process_connected_before_keeps_its_connection(tmp_path: Path, isolated: IsolatedCluster) -> None:
    import ray

    isolated.connect()
    try:
        with cncf.Hub(home=tmp_path / "home") as hub:
            assert hub.load(ECHO, **RAY).state == "ready"
        assert ray.is_initialized()  # not the hub's connection: kept
    finally:
        ray.shutdown()


@pytest.mark.parametrize("form", list(FORMS))
def test_each_form_behaves_on_the_isolated_node_as_locally(
    hub: cncf.Hub, isolated: IsolatedCluster, form: str, tmp_path: Path
) -> None:
    record = measure(hub, form, tmp_path)
    assert record["state"] == "ready", record
    assert all(c["ok"] for c in record["calls"]), record
    name = record["calls"][0]["call"].split(".")[0]
    placement = hub.inspect(name)["placement"]
    assert placement["node_id"] == isolated.nodes["iso"].node_id
    assert _objects(isolated.nodes["iso"])  # what it needed came through the node's cache


def test_artifacts_are_pulled_once_per_node_and_reused(hub: cncf.Hub, isolated: IsolatedCluster) -> None:
    assert hub.load(ECHO, **RAY).state == "ready"
    before = _objects(isolated.nodes["iso"])
    hub.unload("echo")
    h = hub.load(ECHO, name="again", **RAY)  # same folder content: same hash, nothing pulled
    assert h.state == "ready", h.observation
    assert hub.call("again.increment", [3]).value == 3
    assert _objects(isolated.nodes["iso"]) == before


def test_a_node_whose_python_lives_elsewhere_builds_the_environment_with_its_own(
    hub: cncf.Hub, isolated: IsolatedCluster, tmp_path: Path
) -> None:
    if "py" not in isolated.nodes:
        isolated.add("py", ELSEWHERE, python_at="/tmp/python")
    try:
        half = {k: v / 2 for k, v in ELSEWHERE.items()}  # two components on that node
        record = measure(hub, "python + PyPI requirement", tmp_path, half)
        assert record["state"] == "ready", record
        assert all(c["ok"] for c in record["calls"]), record
        folder = hub.load(ECHO, name="plain", placement="ray", placement_resources=half)
        assert folder.state == "ready", folder.observation
        where = hub.call("plain.where").value
        assert where["executable"] != sys.executable  # the node's interpreter, not the hub's path
        assert where["executable"].startswith("/tmp/python/")
    finally:
        hub.close()
        isolated.remove("py")


def test_a_command_the_node_lacks_is_artifact_not_found_naming_the_node(
    hub: cncf.Hub, isolated: IsolatedCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "hub-tools"  # on the hub's PATH, so taken as the machine's: not shipped
    tools.mkdir()
    tool = tools / "hubonlytool"
    tool.write_text('#!/bin/sh\nexec perl "$@"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    folder = tmp_path / "cmd"
    folder.mkdir()
    (folder / "cncf.toml").write_text('[component]\nname = "lacking"\nform = "command"\ncommand = ["hubonlytool"]\n')
    h = hub.load(folder, **RAY)
    assert h.observation is not None
    assert (h.observation.code.value, h.observation.stage.value) == ("artifact_not_found", "load")
    assert h.observation.attributes["node_id"] == isolated.nodes["iso"].node_id
    assert h.observation.attributes["path"] == str(tool)


def test_a_python_version_the_node_lacks_is_interpreter_not_found(
    hub: cncf.Hub, isolated: IsolatedCluster, tmp_path: Path
) -> None:
    fake = tmp_path / "bin" / "python3.99"  # says it is 3.99, runs the hub's python
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\ncase "$2" in *version_info*) echo 3.99; exit 0;; esac\nexec {sys.executable} "$@"\n')
    fake.chmod(0o755)
    local = hub.load(ECHO, name="here", interpreter=str(fake))
    assert local.state == "ready", local.observation  # it runs here
    h = hub.load(ECHO, name="there", interpreter=str(fake), **RAY)
    assert h.observation is not None
    assert (h.observation.code.value, h.observation.stage.value) == ("interpreter_not_found", "load")
    assert h.observation.attributes["node_id"] == isolated.nodes["iso"].node_id
    assert h.observation.attributes["interpreter"] == "python3.99"


def test_a_placed_worker_gets_the_allow_list_not_the_nodes_environment(
    hub: cncf.Hub, isolated: IsolatedCluster, tmp_path: Path
) -> None:
    from cncf.boundaries._environment_policy import ALLOWED

    folder = tmp_path / "envprobe"
    folder.mkdir()
    (folder / "probe.py").write_text(_PROBE)
    (folder / "cncf.toml").write_text('[component]\nname = "envprobe"\nentry = "probe:Probe"\nenv = { MINE = "1" }\n')
    assert hub.load(folder, name="here").state == "ready"
    h = hub.load(folder, name="there", **RAY)
    assert h.state == "ready", h.observation
    local, placed = hub.call("here.env").value, hub.call("there.env").value
    assert placed["MINE"] == "1"
    for leaked in ("OMP_NUM_THREADS", "PYTHONBREAKPOINT", "PYTHONPATH", "CNCF_ISOLATED_CLUSTER", "CNCF_TEST_NODE"):
        assert leaked not in placed, leaked
    assert not [k for k in placed if k.startswith("RAY_")]
    assert {k for k in placed if not k.startswith(("CNCF_", "LC_"))} <= ALLOWED | {"MINE"}
    assert {"PATH", "HOME", "TMPDIR"} <= set(placed) and "MINE" in local
    assert placed["HOME"] == str(isolated.nodes["iso"].home)  # the node's value, not the hub's
    assert placed["TMPDIR"] != local["TMPDIR"]  # a private folder of the node's

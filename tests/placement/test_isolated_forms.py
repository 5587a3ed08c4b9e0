"""Issue 17: every form placed on a node that shares nothing with the hub but the network.

The node (``tests/placement/isolated.py``) runs in a private mount namespace:
the repository, the hub's home and caches, ``/tmp`` are not there.  Each
component's files exist only on the hub's side; they travel to the node by
sha256 (``cncf.placement.artifacts`` / ``shipping``), and the values and
Observations must be those of a local load.  What a node lacks is a load
Observation naming the node and the missing piece.  Node actors are reused
(warm loads and restarts pay no actor creation), a placed JVM host frees its
resources with its last component, and a lost node replaced by a new one
serves the next call without ``reload`` (last in the module: it replaces the
node).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import cncf
from tests.placement.conftest import gone
from tests.placement.forms import (
    _PROBE,
    ECHO,
    ELSEWHERE,
    FORMS,
    NODE,
    RAY,
    command,
    fat_jar_with_classpath,
    http_store,
    measure,
)
from tests.placement.isolated import IsolatedCluster, _alive, _mnt_ns

pytestmark = pytest.mark.slow  # a Ray cluster with an isolated node, JVM hosts, a PyPI environment


@pytest.fixture
def hub(iso_hub: cncf.Hub) -> cncf.Hub:
    return iso_hub


def _lives_on(pid: int, node: Any) -> bool:
    """A live process in the node's mount namespace (a placed worker does not carry the
    cluster's marker variable: its environment is the allow-list)."""
    return _alive(pid) and _mnt_ns(pid) == node.mnt_ns


def _objects(node: Any) -> set[str]:
    """The artifacts in the node's cache, read from outside (the node's disk is ours)."""
    root = node.home / ".cache" / "cncf" / "node" / "artifacts" / "objects"
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


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
    assert not _lives_on(pid, isolated.nodes["iso"])
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


def test_two_hubs_in_one_process_cannot_use_two_clusters(
    hub: cncf.Hub, isolated: IsolatedCluster, tmp_path: Path
) -> None:
    half = {"placement": "ray", "placement_resources": {"iso": 0.5}}
    assert hub.load(ECHO, **half).state == "ready"  # this process is now the isolated cluster's driver
    host, _, port = isolated.address.rpartition(":")
    other = f"{host}:{int(port) + 1}"  # another cluster's address: never contacted
    with cncf.Hub(home=tmp_path / "second") as second:
        t = time.monotonic()
        h = second.load(ECHO, name="elsewhere", ray_address=other, **half)
        assert h.observation is not None
        assert (h.observation.code.value, h.observation.stage.value) == ("cluster_unreachable", "load")
        assert h.observation.attributes["connected"] == isolated.address
        assert h.observation.attributes["ray_address"] == other
        assert time.monotonic() - t < 5  # at once, not after a connection attempt
        # The same cluster, spelt otherwise:
        same = second.load(ECHO, name="same", ray_address=f"localhost:{port}", **half)
        assert same.state == "ready", same.observation
        assert second.call("same.increment", [2]).value == 2
    assert hub.call("echo.increment", [1]).value == 1  # the first hub is untouched


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


# ---------------------------------------------------------------------------
# Node actors reused; resources freed with their last user; a lost node replaced
# ---------------------------------------------------------------------------


def test_placed_loads_and_restarts_reuse_the_node_actor(hub: cncf.Hub) -> None:
    def load_time(**placement: Any) -> float:
        t = time.monotonic()
        h = hub.load(ECHO, name="timed", **placement)
        took = time.monotonic() - t
        assert h.state == "ready", h.observation
        hub.unload("timed")
        return took

    load_time(**RAY)  # cold: the node actor and whatever travels
    local = statistics.median(load_time() for _ in range(5))
    placed = statistics.median(load_time(**RAY) for _ in range(5))
    print(f"warm load: local {local * 1e3:.1f} ms, placed {placed * 1e3:.1f} ms ({placed / local:.2f}x)")
    # Issue 17's figure is <= 3x (benchmarks/bench_placement.py measures it); a loaded
    # CI machine gets 50 ms of slack.  Without reuse it is ~60x (0.8 s of actor creation).
    assert placed <= 3 * local + 0.05, (placed, local)
    assert hub.load(ECHO, **RAY).state == "ready"
    before = hub.inspect("echo")["placement"]
    assert hub.call("echo.crash", [7]).observation is not None
    assert hub.call("echo.increment", [1], timeout=60).value == 1  # restarted, fresh state
    after = hub.inspect("echo")["placement"]
    assert (after["actor"], after["actor_pid"]) == (before["actor"], before["actor_pid"])  # no new actor
    assert after["actor_runs"] == before["actor_runs"] + 1  # a new run of the same actor


def test_a_jar_hosts_placement_resources_are_released_with_its_last_user(
    hub: cncf.Hub, isolated: IsolatedCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cncf.placement import ray_cluster

    target, options, calls = fat_jar_with_classpath(tmp_path)
    h = hub.load(target, **options, **RAY)  # all of the node's `iso`
    assert h.state == "ready", h.observation
    host = hub.inspect(options["name"])["health"]["pid"]
    assert _lives_on(host, isolated.nodes["iso"])
    monkeypatch.setattr(ray_cluster, "PLACEMENT_TIMEOUT", 3.0)
    blocked = hub.load(ECHO, name="blocked", placement="ray", placement_resources={"iso": 0.5})
    assert blocked.observation is not None and blocked.observation.code.value == "placement_timeout"
    monkeypatch.setattr(ray_cluster, "PLACEMENT_TIMEOUT", 30.0)
    hub.unload(options["name"])  # its last component: the shared JVM host ends
    assert gone([host], timeout=5)
    # Another placement asking for part of what the host held: its idle actor does not hold it back.
    after = hub.load(ECHO, placement="ray", placement_resources={"iso": 0.5})
    assert after.state == "ready", after.observation
    assert hub.call("echo.increment", [2]).value == 2


def test_an_operators_artifact_store_serves_the_node_before_the_hub(
    hub: cncf.Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from cncf.placement.artifacts import pack_folder

    token = uuid.uuid4().hex  # new content: no node has it yet
    folder = tmp_path / "stored"
    folder.mkdir()
    (folder / "stored.py").write_text(f"class Stored:\n    def token(self):\n        return {token!r}\n")
    (folder / "cncf.toml").write_text('[component]\nname = "stored"\nentry = "stored:Stored"\n')
    digest = pack_folder(folder, tmp_path / "stored.tar.gz")  # what the hub's packing gives too
    log: list[str] = []
    base, server = http_store({digest: (tmp_path / "stored.tar.gz").read_bytes()}, log=log)
    monkeypatch.setenv("CNCF_ARTIFACT_STORE", base)  # the hub's setting travels with the placement
    try:
        h = hub.load(folder, **RAY)
        assert h.state == "ready", h.observation
        assert hub.call("stored.token").value == token
    finally:
        server.shutdown()
        server.server_close()
    assert any(line.startswith("GET ") and line.endswith(digest) for line in log), log


def test_a_lost_node_is_replaced_and_the_next_call_succeeds_without_reload(
    hub: cncf.Hub, isolated: IsolatedCluster, tmp_path: Path
) -> None:
    """Last in the module: the node ``iso`` is replaced.  A python worker, a JVM host
    and a command on the lost node: the next call of each is served on the new one."""
    third = {"placement": "ray", "placement_resources": {"iso": 0.3}}
    jar, jar_options, jar_calls = fat_jar_with_classpath(tmp_path)
    folder, _, command_calls = command(tmp_path)
    for target, options in ((ECHO, {}), (jar, jar_options), (folder, {})):
        h = hub.load(target, **options, **third)
        assert h.state == "ready", h.observation
    assert hub.call("echo.increment", [1]).value == 1
    lost = isolated.nodes["iso"].node_id
    isolated.remove("iso")
    isolated.add("iso", NODE)  # a new machine with the same resources
    out = hub.call("echo.increment", [1], timeout=180)
    assert out.ok, out.observation
    assert out.value == 1  # a fresh instance: its state was on the lost node
    for name, args, expected in (*jar_calls, *command_calls):
        again = hub.call(name, args, timeout=180)
        assert again.ok and again.value == expected, (name, again.observation)
    for name in ("echo", jar_options["name"], "perl-greeter"):
        assert hub.inspect(name)["placement"]["node_id"] == isolated.nodes["iso"].node_id != lost

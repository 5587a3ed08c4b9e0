"""Replicas placed on Ray spread over the nodes that fit (issue 18).

Two nodes offer ``rep``; the package's other nodes (the head, ``alpha``,
``beta``) do not, so they never fit.  Replicas of one component land on
distinct fitting nodes; more replicas than fitting nodes share them as evenly
as possible; a replica restarted after its node is lost avoids the node its
live sibling occupies.  Each replica's node is checked twice: by ``inspect``
and by the replica's own worker (``where`` reads the node's name from its
node actor's environment).
"""

from __future__ import annotations

import collections
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import cncf
from tests.placement.conftest import ECHO, RayCluster

pytestmark = pytest.mark.slow  # Ray nodes added and removed

REP = {"placement": "ray", "stateless": True}
NODES = ("rep1", "rep2")


@pytest.fixture(scope="module")
def rep_nodes(ray_cluster: RayCluster) -> Iterator[RayCluster]:
    """Two nodes offering ``rep`` (added once for the module, removed after it)."""
    for name in NODES:
        ray_cluster.add(name, {"rep": 1})
    ray_cluster.cluster.wait_for_nodes()
    try:
        yield ray_cluster
    finally:
        for name in [n for n in ray_cluster.nodes if n.startswith("rep")]:
            ray_cluster.remove(name)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The placement probe with ``where_after(seconds)``: ``where`` after a sleep, so
    that calls held at once reach every replica."""
    folder = tmp_path_factory.mktemp("spread") / "echo"
    shutil.copytree(ECHO, folder)
    with (folder / "echo.py").open("a") as f:
        f.write("\n\ndef _where_after(self, seconds):\n    time.sleep(seconds)\n    return self.where()\n")
        f.write("\n\nEcho.where_after = _where_after\n")
    return folder


def replica_nodes(hub: cncf.Hub, name: str, cluster: RayCluster) -> list[str]:
    """The node name of each replica, by index, as ``inspect`` shows it."""
    replicas = hub.inspect(name)["replicas"]
    assert all(r["state"] == "ready" for r in replicas), replicas
    assert all(r["node"] == r["placement"]["node_id"] for r in replicas)
    return [cluster.name_of(r["node"]) for r in replicas]


def workers_say(hub: cncf.Hub, name: str, count: int) -> dict[int, str]:
    """pid -> node name, from ``where`` run on every one of ``count`` replicas: each
    round holds ``count`` calls at once (a replica serves one call at a time), so
    every replica runs one of them."""
    seen: dict[int, str] = {}
    for _ in range(3):
        for out in workers_say_outcomes(hub, name, count):
            assert out.ok, out.observation
            seen[out.value["pid"]] = out.value["node"]
        if len(seen) == count:
            break
    return seen


def workers_say_outcomes(hub: cncf.Hub, name: str, count: int) -> list[cncf.Outcome]:
    """``count`` calls of ``where_after(0.5)`` held at once."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _i: hub.call(f"{name}.where_after", [0.5], timeout=60), range(count)))


def test_replicas_land_on_distinct_fitting_nodes_and_share_when_there_are_more(
    placed_hub: cncf.Hub, rep_nodes: RayCluster, probe: Path
) -> None:
    hub = placed_hub
    h = hub.load(probe, name="two", replicas=2, placement_resources={"rep": 0.2}, **REP)
    assert h.state == "ready", h.observation
    nodes = replica_nodes(hub, "two", rep_nodes)
    assert sorted(nodes) == list(NODES)  # one on each, whatever Ray's own packing
    pids = {r["pid"]: rep_nodes.name_of(r["node"]) for r in hub.inspect("two")["replicas"]}
    assert workers_say(hub, "two", 2) == pids  # the workers agree: they run where inspect says

    # Three replicas on two fitting nodes: two on one, one on the other.
    h3 = hub.load(probe, name="three", replicas=3, placement_resources={"rep": 0.2}, **REP)
    assert h3.state == "ready", h3.observation
    counts = collections.Counter(replica_nodes(hub, "three", rep_nodes))
    assert set(counts) == set(NODES) and sorted(counts.values()) == [1, 2], counts
    hub.unload("two")
    hub.unload("three")


def test_a_replica_restarted_after_its_node_is_lost_avoids_its_siblings_node(
    placed_hub: cncf.Hub, rep_nodes: RayCluster, probe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = placed_hub
    monkeypatch.setenv("CNCF_RAY_IDLE_SECONDS", "120")  # the parked actor below waits through the test
    rep = {"placement_resources": {"rep": 0.4}, **REP}
    h = hub.load(probe, name="pair", replicas=2, idempotent=True, **rep)
    assert h.state == "ready", h.observation
    before = dict(enumerate(replica_nodes(hub, "pair", rep_nodes)))
    assert sorted(before.values()) == list(NODES)
    # A component of the same placement (one replica: placed as Ray schedules it) ends
    # cleanly: its node actor is parked on one of the two nodes, beside a replica.
    assert hub.load(probe, name="solo", **rep).state == "ready"
    parked = hub.inspect("solo")["placement"]
    survivor = rep_nodes.name_of(parked["node_id"])
    hub.unload("solo")
    index = next(i for i, n in before.items() if n != survivor)
    rep_nodes.add("rep3", {"rep": 1})
    rep_nodes.cluster.wait_for_nodes()
    rep_nodes.remove(before[index])
    # The lost replica restarts in the background; the survivor keeps serving meanwhile
    # (a call caught on the lost one is idempotent: run again on the survivor).  Two
    # calls at a time: sequential ones all go to the warm replica, and an idle sync
    # hub learns of the loss when a call is admitted to the lost one.
    deadline = time.monotonic() + 90
    now: list[Any] = []
    while time.monotonic() < deadline:
        for out in workers_say_outcomes(hub, "pair", 2):
            assert out.ok, out.observation
        replicas = hub.inspect("pair")["replicas"]
        now = [(r["state"], r["node"], r["restarts"]) for r in replicas]
        if replicas[index]["restarts"] and replicas[index]["state"] == "ready":
            break
        time.sleep(0.3)
    assert now and now[index][0] == "ready" and now[index][2] >= 1, now
    # Neither beside its sibling on Ray's choice, nor in the parked actor beside it.
    after = replica_nodes(hub, "pair", rep_nodes)
    assert after[index] == "rep3" and after[1 - index] == survivor, now
    assert hub.inspect("pair")["replicas"][index]["placement"]["actor"] != parked["actor"]
    assert set(workers_say(hub, "pair", 2).values()) == {"rep3", survivor}
    hub.unload("pair")


def test_a_node_cache_entry_held_by_one_actor_is_taken_by_another_without_waiting(tmp_path: Path) -> None:
    """Two replicas' node actors sharing a node's cache (two on one node, or two nodes of
    one machine) pull the same new artifact: one may find it missing, then the other
    holds it shared for its whole run (as ``ray_node.Run._hold`` does).  The first must
    then take it, not wait for an exclusive lock the holder keeps until its run ends."""
    import fcntl
    import os

    from cncf.placement.artifacts import ArtifactCache, LocalFileSource, PackCache, safe_extract

    digest, archive = PackCache(tmp_path / "packs").pack(ECHO)
    source = LocalFileSource({digest: archive})
    cache = ArtifactCache(tmp_path / "cache", max_bytes=1 << 30)
    cache.unpacked(digest, source)  # the first actor pulled and unpacked it ...
    held = os.open(cache.root / "locks" / digest, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_SH)  # ... and holds it for its run
    try:
        got: list[Any] = []
        # The second actor, which saw it missing a moment ago (daemon threads: a regression
        # fails the test instead of hanging it).
        threads = [
            threading.Thread(target=lambda: got.append(cache.unpacked(digest, source)), daemon=True),
            threading.Thread(target=lambda: got.append(cache.ensure(digest, source)), daemon=True),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(got) == 2, "waited for the lock another actor holds for its run"
        assert all(e.digest == digest for e in got) and all(e.tree.is_dir() for e in got)
    finally:
        os.close(held)

    # The second asks while the first is unpacking it (exclusive), which then holds it
    # shared for its run: the second takes it once it is unpacked.
    other = ArtifactCache(tmp_path / "cache2", max_bytes=1 << 30)
    entry = other.ensure(digest, source)
    lock = other.root / "locks" / digest
    unpacking = os.open(lock, os.O_RDWR)
    fcntl.flock(unpacking, fcntl.LOCK_EX)
    late: list[Any] = []
    t = threading.Thread(target=lambda: late.append(other.unpacked(digest, source)), daemon=True)
    t.start()
    time.sleep(0.3)  # it waits while the first unpacks
    held = os.open(lock, os.O_RDWR)
    try:
        safe_extract(entry.blob, entry.tree)
        os.close(unpacking)  # unpacked; the first now holds it shared for its run
        fcntl.flock(held, fcntl.LOCK_SH)
        t.join(10)
        assert late and late[0].tree.is_dir(), "waited for the lock another actor holds for its run"
    finally:
        os.close(held)

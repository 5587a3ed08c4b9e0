"""Class-loader isolation: visibility rules, side-by-side versions, loader
evidence, and that unloaded loaders are collected (metaspace stays bounded)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

import cncf
from cncf import Code, Stage
from tests.jar.conftest import diagnostics, jar_boundary, jar_home


def test_visibility_rules(jar_hub: cncf.Hub, faults_jar: Path, collab_jar: Path) -> None:
    jar_hub.load(collab_jar, name="other")
    h = jar_hub.load(faults_jar, name="probe", entry="faults.Faults")
    assert h.state == "ready", h.observation

    def visible(name: str) -> bool:
        out = jar_hub.call("probe.visible", [name])
        assert out.ok, out.observation
        return out.value

    # The JDK, including platform modules a null parent would hide on Java 9+.
    assert visible("java.lang.String")
    assert visible("java.sql.Connection")
    assert visible("java.net.http.HttpClient")
    # The collaborator API (the component's own copy) and its own bundled library.
    assert visible("cncf.collaborator.Collaborator")
    assert visible("org.apache.commons.lang3.StringUtils")
    # Never the host's classes, nor another component's, nor Scala it does not bundle.
    assert not visible("cncf.host.Host")
    assert not visible("cncf.host.Json")
    assert not visible("demo.Counter")
    assert not visible("scala.Option")
    assert jar_hub.call("probe.parent-loader").value.endswith("PlatformClassLoader")

    stats = diagnostics(jar_hub, "probe")
    mine = next(x for x in stats["loaders"] if x["instance"].startswith("probe#"))
    assert mine["parent"] == "platform"
    assert {"cncf.host.Host", "cncf.host.Json", "demo.Counter", "scala.Option"} <= set(mine["refused"])


def test_loader_creation_and_refusals_are_logged_as_events(jar_hub: cncf.Hub, faults_jar: Path) -> None:
    jar_hub.load(faults_jar, name="probe", entry="faults.Faults")
    jar_hub.call("probe.visible", ["cncf.host.Host"])
    host = jar_boundary(jar_hub).hosts()[0]
    events = list(host.events)
    created = [e for e in events if e["event"] == "loader" and e["instance"].startswith("probe#")]
    assert created and created[0]["parent"] == "platform"
    assert any(u.endswith("faults.jar") for u in created[0]["urls"])
    assert any(u.endswith("cncf-collaborator-api.jar") for u in created[0]["urls"])
    refused = [e for e in events if e["event"] == "visibility_refused" and e["class"] == "cncf.host.Host"]
    assert refused and refused[0]["instance"].startswith("probe#")


def test_scala_library_visible_only_when_bundled(jar_hub: cncf.Hub, scala_jar: Path, scala_thin_jar: Path) -> None:
    fat = jar_hub.load(scala_jar, name="fat", entry="demo.scala.Inventory")
    assert fat.state == "ready", fat.observation
    assert jar_hub.call("fat.scala-version").value.startswith("2.11")
    thin = jar_hub.load(scala_thin_jar, name="thin", entry="demo.scala.Inventory")
    assert thin.state == "failed"
    assert (thin.observation.code, thin.observation.stage) == (Code.CLASS_NOT_FOUND, Stage.LOAD)
    host = jar_boundary(jar_hub).hosts()[0]
    refused = {
        e["class"] for e in host.events if e["event"] == "visibility_refused" and e["instance"].startswith("thin#")
    }
    assert any(name.startswith("scala.") for name in refused), refused
    assert jar_hub.call("fat.total").ok  # the Scala component in the same host is unaffected


def test_two_versions_of_one_library_side_by_side(jar_hub: cncf.Hub, version_jars: tuple[Path, Path]) -> None:
    old_jar, new_jar = version_jars
    old = jar_hub.load(old_jar, name="old", entry="versions.Which")
    new = jar_hub.load(new_jar, name="new", entry="versions.Which")
    assert old.state == new.state == "ready"
    assert old.describe()["health"]["pid"] == new.describe()["health"]["pid"]  # one host
    assert jar_hub.call("old.version").value == "3.10"
    assert jar_hub.call("new.version").value == "3.20.0"
    assert jar_hub.call("old.has-contains-any-ignore-case").value is False
    assert jar_hub.call("new.has-contains-any-ignore-case").value is True
    assert jar_hub.call("old.loader").value != jar_hub.call("new.loader").value


def test_process_isolation_gives_a_host_of_its_own(jar_hub: cncf.Hub, faults_jar: Path, collab_jar: Path) -> None:
    shared = jar_hub.load(collab_jar, name="shared")
    alone = jar_hub.load(faults_jar, name="alone", entry="faults.Faults", isolation="process")
    assert alone.state == "ready", alone.observation
    shared_pid = shared.describe()["health"]["pid"]
    assert alone.describe()["health"]["pid"] != shared_pid
    jar_hub.call("shared.increment", [5])
    out = jar_hub.call("alone.exit", [7])
    assert out.observation.code == Code.WORKER_CRASHED
    assert jar_hub.call("shared.get").value == 5  # untouched: no restart
    assert shared.restarts == 0
    assert jar_hub.call("alone.count").value == 1  # restarted in a new dedicated host
    jar_hub.unload("alone")


def test_load_unload_200_times_collects_loaders(jar_hub: cncf.Hub, scala_jar: Path, collab_jar: Path) -> None:
    keeper = jar_hub.load(collab_jar, name="keeper")  # keeps the host (and a loader) alive throughout
    assert keeper.state == "ready"

    def cycle(n: int) -> None:
        for _ in range(n):
            h = jar_hub.load(scala_jar, name="cycled", entry="demo.scala.Ledger")
            assert h.state == "ready", h.observation
            assert jar_hub.call("cycled.deposit", [2]).value == 2
            assert jar_hub.call("cycled.history").value == [2]
            assert jar_hub.unload("cycled")

    cycle(40)
    warm = diagnostics(jar_hub, "keeper", gc=True)
    cycle(170)
    end = diagnostics(jar_hub, "keeper", gc=True)
    assert end["pid"] == warm["pid"]  # one host all along
    assert end["loaders_created"] >= 211
    # Only the keeper's loader (and at most a straggler) is still reachable.
    assert end["live_loaders"] <= 2, end
    # Classes were unloaded by the hundreds, and metaspace did not grow with the cycles.
    assert end["unloaded_classes"] - warm["unloaded_classes"] >= 170 * 10
    assert end["metaspace_used"] <= warm["metaspace_used"] * 1.25 + 4 * 1024 * 1024, (warm, end)


def test_concurrent_calls_overlap(jar_hub: cncf.Hub, collab_jar: Path) -> None:
    jar_hub.load(collab_jar, name="sleepy", policy="concurrent", max_concurrency=4)

    async def four() -> list[cncf.Outcome]:
        return await asyncio.gather(*(jar_hub.aio.call("sleepy.sleep", [400]) for _ in range(4)))

    start = time.monotonic()
    outs = jar_hub._run(four())
    elapsed = time.monotonic() - start
    assert all(o.value == "slept" for o in outs)
    assert elapsed < 1.2, elapsed


def test_concurrent_output_is_attributed_to_its_call(jar_hub: cncf.Hub, collab_jar: Path) -> None:
    jar_hub.load(collab_jar, name="talker", policy="concurrent", max_concurrency=8)

    async def many() -> list[cncf.Outcome]:
        return await asyncio.gather(*(jar_hub.aio.call("talker.print", [i]) for i in range(8)))

    for i, out in enumerate(jar_hub._run(many())):
        assert out.stdout == f"out:{i}\n"
        assert out.stderr == f"err:{i}\n"


@pytest.mark.parametrize(("operation", "tier"), [("patient", "cooperative"), ("spin", "killed")])
def test_caller_cancellation(jar_hub: cncf.Hub, faults_jar: Path, operation: str, tier: str) -> None:
    jar_hub.load(faults_jar, name="worker", entry="faults.Faults", cancel_grace=0.3)
    timer = threading.Timer(0.3, jar_hub.cancel, args=("cancel-me",))
    timer.start()
    try:
        out = jar_hub.call(f"worker.{operation}", [60_000] if operation == "patient" else [], call_id="cancel-me")
    finally:
        timer.cancel()
    assert (out.observation.code, out.observation.stage) == (Code.CANCELLED, Stage.EXECUTE)
    assert out.observation.attributes.get("tier") == "cooperative"  # the caller is answered at once
    assert jar_hub.call("worker.count").ok  # restarted after a kill, untouched otherwise
    assert jar_hub.inspect("worker")["cancellations"] == {tier: 1}  # the tier it finally took


def test_no_orphan_process_or_file_after_host_deaths(
    tmp_path: Path, faults_jar: Path, collab_jar: Path, jvm_cache: Path
) -> None:
    seen = []
    with cncf.Hub(home=jar_home(tmp_path / "home", jvm_cache)) as hub:
        hub.load(collab_jar, name="stay")
        hub.load(faults_jar, name="quit", entry="faults.Faults")
        hub.load(faults_jar, name="alone", entry="faults.Faults", isolation="process")
        boundary = jar_boundary(hub)
        for _ in range(2):
            seen.extend(h.worker for h in boundary.hosts())
            assert hub.call("quit.exit", [1]).observation.code == Code.WORKER_CRASHED
            assert hub.call("stay.get").ok  # restarted into a new shared host
            seen.extend(h.worker for h in boundary.hosts())
        seen.extend(h.worker for h in boundary.hosts())
    assert len({w.pid for w in seen}) >= 4
    for w in seen:
        assert w.returncode is not None  # reaped
        assert w._out_fd == w._err_fd == -1  # capture files closed (unlinked at spawn: never a name left)
        with pytest.raises(ProcessLookupError):
            os.kill(w.pid, 0)


def test_threads_left_behind_by_an_unloaded_component_are_stopped(
    jar_hub: cncf.Hub, faults_jar: Path, collab_jar: Path
) -> None:
    jar_hub.load(collab_jar, name="keeper")
    base = diagnostics(jar_hub, "keeper", gc=True)
    jar_hub.load(faults_jar, name="leaky", entry="faults.Faults")
    assert jar_hub.call("leaky.start-background").value == "leaky-background"
    assert diagnostics(jar_hub, "keeper", gc=True)["live_loaders"] == base["live_loaders"] + 1
    jar_hub.unload("leaky")
    deadline = time.monotonic() + 10
    while True:
        stats = diagnostics(jar_hub, "keeper", gc=True)
        if stats["live_loaders"] == base["live_loaders"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stats["live_loaders"] == base["live_loaders"], stats
    host = jar_boundary(jar_hub).hosts()[0]
    stopped = [e for e in host.events if e["event"] == "threads_stopped"]
    assert stopped and stopped[0]["threads"] == ["leaky-background"]
    assert jar_hub.call("keeper.get").ok


def test_jvm_options_and_memory_limit_choose_the_host(jar_hub: cncf.Hub, faults_jar: Path) -> None:
    plain = jar_hub.load(faults_jar, name="plain", entry="faults.Faults")
    tuned = jar_hub.load(
        faults_jar, name="tuned", entry="faults.Faults", jvm_options=["-Dcncf.test=42"], memory_limit="128MB"
    )
    same = jar_hub.load(
        faults_jar, name="same", entry="faults.Faults", jvm_options=["-Dcncf.test=42"], memory_limit="128MB"
    )
    assert plain.state == tuned.state == same.state == "ready"
    pids = {h.name: h.describe()["health"]["pid"] for h in (plain, tuned, same)}
    assert pids["tuned"] == pids["same"] != pids["plain"]
    assert jar_hub.call("tuned.property", ["cncf.test"]).value == "42"
    assert jar_hub.call("plain.property", ["cncf.test"]).value is None
    assert jar_hub.call("tuned.max-heap").value <= 128 * 1024 * 1024

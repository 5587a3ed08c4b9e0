"""Replicas and generations of a jar component: each replica a JVM host of its own."""

from __future__ import annotations

import collections
import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cncf
from tests.jar.conftest import fat_jar, jar_home, javac
from tests.replicas.conftest import HERE, kill, pids_of
from tests.replicas.test_generations import Stream

ENTRY = "rep.Worker"


def _jar(build: Path, version: str) -> Path:
    src = build / f"src-{version}" / "rep"
    src.mkdir(parents=True, exist_ok=True)
    (src / "Worker.java").write_text((HERE / "fixtures/jar/rep/Worker.java").read_text())
    (src / "Version.java").write_text(f'package rep;\nclass Version {{ static final String NAME = "{version}"; }}\n')
    classes = javac(sorted(src.glob("*.java")), build / f"classes-{version}", parameters=True)
    return fat_jar(build / version / "worker.jar", [classes])


@pytest.fixture(scope="module")
def jars(jvm, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # noqa: ANN001
    build = tmp_path_factory.mktemp("replica-jars")
    return _jar(build, "v1"), _jar(build, "v2")


@pytest.fixture
def jhub(tmp_path: Path, jvm, jvm_cache: Path) -> Iterator[cncf.Hub]:  # noqa: ANN001
    with cncf.Hub(home=jar_home(tmp_path / "home", jvm_cache)) as h:
        yield h


def test_jar_replicas_are_jvm_hosts_of_their_own_and_one_may_die(jhub: cncf.Hub, jars: tuple[Path, Path]) -> None:
    h = jhub.load(jars[0], name="jw", entry=ENTRY, replicas=2, stateless=True, idempotent=True)
    assert h.state == "ready", h.observation
    pids = pids_of(jhub, "jw")
    assert len(set(pids)) == 2
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        idents = collections.Counter(pool.map(lambda _: jhub.call("jw.work", [0.2]).value, range(4)))
    assert sorted(idents.values()) == [2, 2]  # both JVMs served
    stream = Stream(jhub, "jw.work", [0.02], callers=8)
    try:
        time.sleep(0.5)
        kill(pids[0])
        time.sleep(1.0)
    finally:
        records = stream.stop()
    assert len(records) > 50
    assert [o.observation for _, o in records if not o.ok] == []  # idempotent: none lost
    deadline = time.monotonic() + 30
    while jhub.inspect("jw")["replicas"][0]["state"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert jhub.inspect("jw")["replicas"][0]["restarts"] == 1


def test_jar_upgrade_under_a_stream_loses_no_call(jhub: cncf.Hub, jars: tuple[Path, Path]) -> None:
    h = jhub.load(jars[0], name="jw", entry=ENTRY, stateless=True, replicas=2)
    assert h.state == "ready", h.observation
    stream = Stream(jhub, "jw.versionOf", callers=4)
    try:
        time.sleep(0.3)
        up = jhub.upgrade("jw", jars[1])
        switched = time.monotonic()
        time.sleep(0.3)
    finally:
        records = stream.stop()
    assert up.state == "ready", up.observation
    assert [o.observation for _, o in records if not o.ok] == []
    assert {(o.value, o.generation) for sent, o in records if sent > switched} == {("v2", 2)}
    assert {o.value for _, o in records} == {"v1", "v2"}


def test_jar_hand_over_keeps_a_counter(jhub: cncf.Hub, jars: tuple[Path, Path]) -> None:
    h = jhub.load(jars[0], name="jc", entry=ENTRY)
    assert h.state == "ready", h.observation
    stream = Stream(jhub, "jc.increment", callers=3)
    try:
        time.sleep(0.3)
        up = jhub.upgrade("jc", jars[1])
        time.sleep(0.3)
    finally:
        records = stream.stop()
    assert up.state == "ready", up.observation
    assert [o.observation for _, o in records if not o.ok] == []
    total = jhub.call("jc.get")
    assert (total.value, total.generation) == (len(records), 2)
    assert jhub.call("jc.versionOf").value == "v2"

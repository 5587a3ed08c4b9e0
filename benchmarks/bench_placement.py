"""Placement on a Ray cluster, every figure of issue 17 in one run.

* echo through a Ray-placed python component vs the same component local vs a
  plain Ray actor call, in alternating blocks.  Targets: placed <= 1.3x local
  (the bytes move over loopback TCP instead of pipes, the channel is the
  same), a plain Ray actor call >= 10x the placed echo (why calls never travel
  as actor calls);
* a warm placed load (+ instantiate) vs a local one, alternating load/unload
  (target <= 3x: the node actor is reused, the artifacts are on the node);
* a 200 MB fat jar placed on a node twice (the second time under another name,
  after the first was unloaded): the time of each load and the head's memory
  (the RSS of every process of the head node: GCS, raylet, dashboard…) before
  and after each.  The jar travels to the node over the placement's own
  connection in 1 MiB chunks, never through Ray's object or package store, so
  the head's memory must not grow by the jar's size; the second placement
  finds it in the node's cache by sha256.

A two-node cluster is started on this machine with ``ray.cluster_utils.Cluster``
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps it on 127.0.0.1), under a
``RAY_TMPDIR`` and a node cache of its own.

Standalone: ``python benchmarks/bench_placement.py``; ``benchmarks/run.py`` calls :func:`main`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import cncf  # noqa: E402

Row = tuple[str, float, float, str]
COMPONENT = ROOT / "examples" / "python-counter"
N = 3000
ROUNDS = 10
PAYLOAD = {"id": 42, "name": "echo", "tags": ["a", "b"], "ratio": 0.5}
LOADS = 9
BIG_JAR_MB = 200
COMMONS_TEXT = Path("/usr/share/java/commons-text.jar")
COMMONS_LANG3 = Path("/usr/share/java/commons-lang3.jar")  # WordUtils needs it: a classpath jar


class _Echo:
    def echo(self, x: Any) -> Any:
        return x


async def _hub_block(hub: cncf.AsyncHub, name: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        out = await hub.call(f"{name}.echo", [PAYLOAD])
        samples.append(time.perf_counter() - t)
    assert out.ok, out.observation
    return samples


async def _actor_block(actor: Any, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await actor.echo.remote(PAYLOAD)
        samples.append(time.perf_counter() - t)
    return samples


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def _head_pids(cluster: Any) -> list[int]:
    """Every process of the head node (GCS, raylet, dashboard, log monitor, …)."""
    pids = []
    for infos in cluster.head_node.all_processes.values():
        for info in infos:
            proc = getattr(info, "process", None)
            if proc is not None and proc.poll() is None:
                pids.append(proc.pid)
    return pids


def big_jar(dest: Path, megabytes: int) -> Path:
    """commons-text (a real component: WordUtils) plus ``megabytes`` of incompressible data."""
    shutil.copyfile(COMMONS_TEXT, dest)
    with (
        zipfile.ZipFile(dest, "a", zipfile.ZIP_STORED) as zf,
        zf.open("cncf-bench/filler.bin", "w", force_zip64=True) as f,
    ):
        for _ in range(megabytes):
            f.write(os.urandom(1 << 20))
    return dest


async def _load_time(hub: cncf.AsyncHub, target: Path, name: str, **extra: Any) -> float:
    t = time.perf_counter()
    handle = await hub.load(target, name=name, **extra)
    took = time.perf_counter() - t
    assert handle.state == "ready", handle.observation
    return took


async def _warm_loads(hub: cncf.AsyncHub, placed: dict[str, Any]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"local": [], "placed": []}
    for _ in range(LOADS):
        for kind, extra in (("local", {}), ("placed", placed)):
            out[kind].append(await _load_time(hub, COMPONENT, f"warm-{kind}", **extra))
            await hub.unload(f"warm-{kind}")
    return out


async def _jar_placements(hub: cncf.AsyncHub, jar: Path, placed: dict[str, Any], cluster: Any) -> dict[str, float]:
    out = {"head_before": _rss_mib(_head_pids(cluster))}
    for i in (1, 2):
        name = f"big{i}"
        entry = "org.apache.commons.text.WordUtils"
        out[f"load{i}"] = await _load_time(hub, jar, name, entry=entry, classpath=[str(COMMONS_LANG3)], **placed)
        result = await hub.call(f"{name}.capitalizeFully", ["hello big world"])
        assert result.value == "Hello Big World", result.observation
        out[f"head{i}"] = _rss_mib(_head_pids(cluster))
        await hub.unload(name)
    return out


def main() -> list[Row]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    work = Path(tempfile.mkdtemp(prefix="cbp", dir="/tmp"))  # short: Ray's socket paths
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "CNCF_NODE_CACHE")}
    os.environ["RAY_TMPDIR"] = str(work / "ray")
    os.environ["CNCF_NODE_CACHE"] = str(work / "node-cache")  # cold: the nodes inherit it
    (work / "ray").mkdir()
    import ray
    from ray.cluster_utils import Cluster

    store = 78 * 1024 * 1024
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": store, "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1, resources={"bench": 4}, object_store_memory=store)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    samples: dict[str, list[float]] = {"local": [], "placed": [], "actor": []}
    placed = {"placement": "ray", "placement_resources": {"bench": 0.5}}
    jar_rows: list[Row] = []
    loop = asyncio.new_event_loop()
    try:
        home = work / "home"
        hub = cncf.AsyncHub(home=home)
        try:
            for name, extra in (("local", {}), ("placed", placed)):
                handle = loop.run_until_complete(hub.load(COMPONENT, name=name, **extra))
                assert handle.state == "ready", handle.observation
            actor = ray.remote(_Echo).options(num_cpus=0, resources={"bench": 0.5}).remote()
            ray.get(actor.echo.remote(1))
            per = max(1, N // ROUNDS)
            loop.run_until_complete(_hub_block(hub, "local", 200))
            loop.run_until_complete(_hub_block(hub, "placed", 200))
            loop.run_until_complete(_actor_block(actor, 100))
            for _ in range(ROUNDS):
                samples["local"] += loop.run_until_complete(_hub_block(hub, "local", per))
                samples["placed"] += loop.run_until_complete(_hub_block(hub, "placed", per))
                samples["actor"] += loop.run_until_complete(_actor_block(actor, per // 4))
            ray.kill(actor)
            cold = loop.run_until_complete(_load_time(hub, COMPONENT, "cold", **placed))
            loop.run_until_complete(hub.unload("cold"))
            loads = loop.run_until_complete(_warm_loads(hub, placed))
            if COMMONS_TEXT.is_file() and COMMONS_LANG3.is_file() and shutil.which("javac"):
                from cncf.jvm.build import ensure_built
                from cncf.placement.artifacts import sha256_file

                ensure_built(home / "cache")  # the JVM host compiled beforehand: not part of the figure
                jar = big_jar(work / "big.jar", BIG_JAR_MB)
                size = jar.stat().st_size / (1 << 20)
                t = time.perf_counter()
                sha256_file(jar)  # what hashing costs the hub (once per size and mtime), for reference
                hashing = time.perf_counter() - t
                figures = loop.run_until_complete(_jar_placements(hub, jar, placed, cluster))
                jar_rows = [
                    (f"placement: {size:.0f} MB jar, 1st placement on a node (load, s)", figures["load1"], 0.0, "s"),
                    (
                        f"placement: {size:.0f} MB jar, 2nd placement (cached on the node, s)",
                        figures["load2"],
                        0.0,
                        "s",
                    ),
                    (f"placement: {size:.0f} MB jar, sha256 on the hub (part of the 1st, s)", hashing, 0.0, "s"),
                    (
                        "placement: head RSS after the 1st jar placement vs before",
                        figures["head1"],
                        figures["head_before"],
                        "MiB",
                    ),
                    (
                        "placement: head RSS after the 2nd jar placement vs before",
                        figures["head2"],
                        figures["head_before"],
                        "MiB",
                    ),
                ]
        finally:
            loop.run_until_complete(hub.close())
    finally:
        loop.close()
        ray.shutdown()
        cluster.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    warm = {k: statistics.median(v) * 1e3 for k, v in loads.items()}
    return [
        ("placement: Ray-placed echo p50 vs local echo (target <= 1.3x)", med["placed"], med["local"], "µs"),
        ("placement: Ray actor call p50 vs placed echo (target >= 10x)", med["actor"], med["placed"], "µs"),
        ("placement: warm placed load p50 vs local load (target <= 3x)", warm["placed"], warm["local"], "ms"),
        ("placement: first placed load on a node (actor creation) vs warm", cold * 1e3, warm["placed"], "ms"),
        *jar_rows,
    ]


if __name__ == "__main__":
    for row in main():
        name, value, floor, unit = row
        ratio = f" = {value / floor:.2f}x" if floor else ""
        print(f"{name}: {value:.1f} {unit} vs {floor:.1f} {unit}{ratio}")

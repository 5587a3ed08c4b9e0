"""Placement on a Ray cluster: echo through a Ray-placed python component vs
the same component placed locally vs a plain Ray actor call, in one run.

Targets: placed <= 1.3x local (the bytes move over loopback TCP instead of
pipes, the channel is the same), and a plain Ray actor call >= 8x the placed
echo (why calls never travel as actor calls).  A two-node cluster is started
on this machine with ``ray.cluster_utils.Cluster`` (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
keeps it on 127.0.0.1); all three are measured in alternating blocks.

Standalone: ``python benchmarks/bench_placement.py``; ``benchmarks/run.py`` calls :func:`main`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
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


def main() -> list[Row]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    from ray.cluster_utils import Cluster

    store = 78 * 1024 * 1024
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": store, "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1, resources={"bench": 1}, object_store_memory=store)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    samples: dict[str, list[float]] = {"local": [], "placed": [], "actor": []}
    loop = asyncio.new_event_loop()
    try:
        with tempfile.TemporaryDirectory() as home:
            hub = cncf.AsyncHub(home=Path(home))
            try:
                for name, extra in (
                    ("local", {}),
                    ("placed", {"placement": "ray", "placement_resources": {"bench": 0.5}}),
                ):
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
            finally:
                loop.run_until_complete(hub.close())
    finally:
        loop.close()
        ray.shutdown()
        cluster.shutdown()
    med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    return [
        ("placement: Ray-placed echo p50 vs local echo (target <= 1.3x)", med["placed"], med["local"], "µs"),
        ("placement: Ray actor call p50 vs placed echo (target >= 8x)", med["actor"], med["placed"], "µs"),
    ]


if __name__ == "__main__":
    for row in main():
        name, value, floor, unit = row
        print(f"{name}: {value:.1f} {unit} vs {floor:.1f} {unit} = {value / floor:.2f}x")

"""Replicas of a python component: routing, refusal, keyed state, and losing one replica."""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
import time
from pathlib import Path

import cncf
from tests.replicas.conftest import kill, pids_of


def test_stateful_component_with_two_replicas_is_refused(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, replicas=2)
    assert h.state == "failed"
    assert h.observation is not None
    assert h.observation.code.value == "invalid_manifest"
    assert h.observation.attributes["key"] == "component.replicas"
    assert h.observation.attributes["reason"] == "stateful_replicas"
    # the same from the component's own manifest
    (worker_dir / "cncf.toml").write_text('[component]\nname = "w"\nentry = "worker:Worker"\nreplicas = 3\n')
    h = rhub.load(worker_dir)
    assert h.state == "failed" and h.observation is not None
    assert h.observation.attributes["key"] == "component.replicas"
    # either way out is accepted
    assert rhub.load(worker_dir, name="a", replicas=2, stateless=True).state == "ready"
    assert rhub.load(worker_dir, name="b", replicas=2, route_by="key").state == "ready"


def test_each_replica_is_its_own_process_and_load_waits_for_all(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, replicas=4, stateless=True)
    assert h.state == "ready", h.observation
    info = rhub.inspect(h.name)
    assert [r["state"] for r in info["replicas"]] == ["ready"] * 4
    pids = pids_of(rhub, h.name)
    assert len(set(pids)) == 4 and all(isinstance(p, int) for p in pids)
    assert info["scaling"] == {"replicas": 4, "stateless": True, "route_by": None}


def test_calls_spread_over_replicas_and_wait_only_when_all_are_full(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, replicas=4, stateless=True)
    assert h.state == "ready", h.observation
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        t0 = time.monotonic()
        outs = list(pool.map(lambda _: rhub.call(f"{h.name}.work", {"seconds": 0.3}), range(8)))
        took = time.monotonic() - t0
    assert all(o.ok for o in outs), [o.observation for o in outs if not o.ok]
    served = collections.Counter(o.value for o in outs)
    assert len(served) == 4
    assert max(served.values()) == 2  # 8 serialize calls on 4 replicas: two each
    assert took < 0.3 * 8 / 2  # they ran in parallel (one replica alone: 2.4 s)
    per = [r["calls"]["admitted_total"] for r in rhub.inspect(h.name)["replicas"]]
    assert sum(per) == 8


def _stream(hub: cncf.Hub, selector: str, callers: int, seconds: float, args: dict) -> list[cncf.Outcome]:
    outcomes: list[cncf.Outcome] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def caller() -> None:
        while time.monotonic() < stop:
            o = hub.call(selector, args, timeout=30)
            with lock:
                outcomes.append(o)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    return outcomes, threads  # type: ignore[return-value]


def _kill_one_under_load(hub: cncf.Hub, name: str, op: str) -> tuple[list[cncf.Outcome], int]:
    outcomes, threads = _stream(hub, f"{name}.{op}", 16, 2.0, {"seconds": 0.02})  # type: ignore[misc]
    time.sleep(0.6)
    victim = pids_of(hub, name)[1]
    kill(victim)
    for t in threads:
        t.join()
    return outcomes, victim


def test_killing_one_replica_fails_only_its_own_call(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, replicas=4, stateless=True)
    assert h.state == "ready", h.observation
    outcomes, victim = _kill_one_under_load(rhub, h.name, "work")
    failed = [o.observation for o in outcomes if o.observation is not None]
    assert len(outcomes) > 100
    # serialize per replica: at most the one call in flight on the killed replica
    assert len(failed) <= 1, [(f.code, f.message) for f in failed]
    assert all(f.code.value == "worker_crashed" and f.retryable is False for f in failed)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # restarted in the background, not by a caller
        info = rhub.inspect(h.name)
        if all(r["state"] == "ready" for r in info["replicas"]) and info["restart"]["restarts"] == 1:
            break
        time.sleep(0.05)
    assert info["replicas"][1]["restarts"] == 1
    assert victim not in pids_of(rhub, h.name)
    assert [r["state"] for r in info["replicas"]] == ["ready"] * 4


def test_killing_one_replica_fails_no_idempotent_call(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, replicas=4, stateless=True, idempotent=True)
    assert h.state == "ready", h.observation
    outcomes, victim = _kill_one_under_load(rhub, h.name, "work")
    assert len(outcomes) > 100
    assert [o.observation for o in outcomes if not o.ok] == []
    assert len({o.value for o in outcomes}) == 5  # four replicas, one of them twice (restarted)


def test_concurrent_policy_applies_per_replica(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, replicas=2, stateless=True, policy="concurrent", max_concurrency=2)
    assert h.state == "ready", h.observation
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        t0 = time.monotonic()
        outs = list(pool.map(lambda _: rhub.call(f"{h.name}.work", {"seconds": 0.4}), range(4)))
        took = time.monotonic() - t0
    assert all(o.ok for o in outs)
    assert sorted(collections.Counter(o.value for o in outs).values()) == [2, 2]
    assert took < 0.75  # four at once: two per replica


def test_keyed_component_keeps_per_key_state(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, replicas=3, route_by="key")
    assert h.state == "ready", h.observation
    keys = [f"k{i}" for i in range(12)]

    def run(i: int) -> cncf.Outcome:
        k = keys[i % len(keys)]
        return rhub.call(f"{h.name}.add", {"key": k} if i % 2 else [k])  # named and positional

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(run, range(1000)))
    assert all(o.ok for o in outs), [o.observation for o in outs if not o.ok][:3]
    seen: dict[str, set[int]] = collections.defaultdict(set)
    values: dict[str, list[int]] = collections.defaultdict(list)
    for o in outs:
        seen[o.value["key"]].add(o.value["pid"])
        values[o.value["key"]].append(o.value["value"])
    assert all(len(p) == 1 for p in seen.values())  # one replica per key
    assert len({next(iter(p)) for p in seen.values()}) > 1  # the keys are spread
    for k, vs in values.items():
        assert sorted(vs) == list(range(1, len(vs) + 1)), k  # no count lost: one state per key
    missing = rhub.call(f"{h.name}.add", {"by": 2})
    assert missing.observation is not None and missing.observation.code.value == "invalid_arguments"
    assert missing.observation.stage.value == "dispatch"


def test_autoscaling_follows_the_calls_in_flight(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(
        worker_dir,
        stateless=True,
        min_replicas=1,
        max_replicas=3,
        target_in_flight=1,
        scale_up_delay=0.2,
        scale_down_delay=0.5,
    )
    assert h.state == "ready", h.observation
    assert len(rhub.inspect(h.name)["replicas"]) == 1
    outcomes, threads = _stream(rhub, f"{h.name}.work", 6, 3.0, {"seconds": 0.05})  # type: ignore[misc]
    for t in threads:
        t.join()
    grown = rhub.inspect(h.name)
    assert len(grown["replicas"]) == 3, grown["scaling"]
    assert [r["state"] for r in grown["replicas"]] == ["ready"] * 3
    assert len({o.value for o in outcomes}) == 3  # the new replicas served
    assert [o.observation for o in outcomes if not o.ok] == []
    deadline = time.monotonic() + 10
    while len(rhub.inspect(h.name)["replicas"]) > 1 and time.monotonic() < deadline:
        assert rhub.call(f"{h.name}.work", {"seconds": 0.05}).ok  # one caller: one replica is enough
    info = rhub.inspect(h.name)
    assert len(info["replicas"]) == 1 and info["scaling"]["steps"] == 4
    # autoscaling is for stateless components only
    bad = rhub.load(worker_dir, name="bad", min_replicas=1, max_replicas=2)
    assert bad.observation is not None and bad.observation.attributes["key"] == "component.max_replicas"


def test_chaos_with_four_replicas_costs_no_other_callers_call(tmp_path: Path, worker_dir: Path) -> None:
    """16 callers, 20 % faults (raise, crash, hang past run_timeout): every call gets its
    Outcome, a fault ends only its own call, and nothing is left after close."""
    import random

    from tests.http.conftest import child_pids

    before = child_pids(os.getpid())
    faults = ("raise", "crash", "hang")
    results: list[tuple[str, cncf.Outcome]] = []
    lock = threading.Lock()
    with cncf.Hub(home=tmp_path / "chaos") as hub:
        h = hub.load(worker_dir, replicas=4, stateless=True, run_timeout=0.5, cancel_grace=0.2, max_restarts=1000)
        assert h.state == "ready", h.observation

        def caller(seed: int) -> None:
            rnd = random.Random(seed)
            for _ in range(30):
                kind = rnd.choice(faults) if rnd.random() < 0.2 else "ok"
                o = hub.call(f"{h.name}.fault", [kind], timeout=30)
                with lock:
                    results.append((kind, o))

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert h.state in ("ready", "busy", "restarting")
    assert len(results) == 16 * 30
    collateral = [o.observation for kind, o in results if kind == "ok" and not o.ok]
    n_faults = sum(1 for kind, _ in results if kind != "ok")
    assert n_faults > 40
    assert collateral == [], [(c.code, c.message) for c in collateral][:5]
    for kind, o in results:
        if kind == "raise":
            assert o.observation is not None and o.observation.code.value == "raised"
        elif kind == "crash":
            assert o.observation is not None and o.observation.code.value == "worker_crashed"
        elif kind == "hang":
            assert o.observation is not None and o.observation.code.value == "timed_out"
    time.sleep(0.5)
    assert child_pids(os.getpid()) - before == set()


def test_an_idle_autoscaled_component_scales_down_without_a_call(tmp_path: Path, worker_dir: Path) -> None:
    import asyncio

    async def main() -> None:
        async with cncf.AsyncHub(home=tmp_path / "idle") as hub:
            h = await hub.load(worker_dir, stateless=True, max_replicas=3, scale_up_delay=0.1, scale_down_delay=0.3)
            assert h.state == "ready", h.observation
            stop = time.monotonic() + 2.0

            async def caller() -> None:
                while time.monotonic() < stop:
                    assert (await hub.call(f"{h.name}.work", {"seconds": 0.05})).ok

            await asyncio.gather(*(caller() for _ in range(6)))
            assert len(hub.inspect(h.name)["replicas"]) == 3
            deadline = time.monotonic() + 10
            while len(hub.inspect(h.name)["replicas"]) > 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)  # no call: the timer looks again
            assert len(hub.inspect(h.name)["replicas"]) == 1

    asyncio.run(main())

"""Generations: upgrade beside the old one, switch, drain, hand the state over, roll back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cncf


class Stream:
    """Callers calling ``selector`` in a loop; each record: (sent, outcome)."""

    def __init__(self, hub: cncf.Hub, selector: str, args: object = None, callers: int = 4) -> None:
        self.records: list[tuple[float, cncf.Outcome]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

        def caller() -> None:
            while not self._stop.is_set():
                sent = time.monotonic()
                o = hub.call(selector, args, timeout=30)
                with self._lock:
                    self.records.append((sent, o))

        self._threads = [threading.Thread(target=caller) for _ in range(callers)]
        for t in self._threads:
            t.start()

    def stop(self) -> list[tuple[float, cncf.Outcome]]:
        self._stop.set()
        for t in self._threads:
            t.join()
        return self.records


def test_upgrade_under_a_steady_stream_loses_no_call(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, replicas=2, stateless=True, init={"version": "v1"})
    assert h.state == "ready", h.observation
    stream = Stream(rhub, f"{h.name}.version_of", callers=6)
    try:
        time.sleep(0.4)
        up = rhub.upgrade(h.name, init={"version": "v2"})
        switched = time.monotonic()
        time.sleep(0.4)
    finally:
        records = stream.stop()
    assert up is rhub.component(h.name) and up.state == "ready", up.observation
    assert len(records) > 50
    assert [o.observation for _, o in records if not o.ok] == []
    before = [o for sent, o in records if sent < switched - 5.0]  # (none: the switch is fast)
    after = [o for sent, o in records if sent > switched]
    assert before == [] and after
    assert {(o.value, o.generation) for o in after} == {("v2", 2)}
    assert {(o.value, o.generation) for _, o in records} == {("v1", 1), ("v2", 2)}
    assert rhub.inspect(h.name)["generation"] == 2


def test_the_old_generation_drains_its_calls_then_unloads(rhub: cncf.Hub, worker_dir: Path) -> None:
    # stateless: no state to hand over, the old generation finishes its call after the switch
    h = rhub.load(worker_dir, stateless=True, policy="concurrent", max_concurrency=4, init={"version": "v1"})
    old_pid = rhub.inspect(h.name)["replicas"][0]["pid"]
    box: list[cncf.Outcome] = []
    slow = threading.Thread(target=lambda: box.append(rhub.call(f"{h.name}.work", {"seconds": 1.0})))
    slow.start()
    time.sleep(0.3)
    rhub.upgrade(h.name, init={"version": "v2"})
    info = rhub.inspect(h.name)
    gens = {g["generation"]: g["state"] for g in info["generations"]}
    assert gens == {1: "draining", 2: "ready"}
    assert rhub.call(f"{h.name}.version_of").value == "v2"
    slow.join()
    assert box[0].ok and box[0].generation == 1  # it finished on the old generation
    deadline = time.monotonic() + 5
    while "generations" in rhub.inspect(h.name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "generations" not in rhub.inspect(h.name)
    assert rhub.inspect(h.name)["replicas"][0]["pid"] != old_pid


def test_a_call_longer_than_drain_timeout_is_cancelled(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, stateless=True, policy="concurrent", drain_timeout=0.3, cancel_grace=0.2)
    box: list[cncf.Outcome] = []
    slow = threading.Thread(target=lambda: box.append(rhub.call(f"{h.name}.work", {"seconds": 10})))
    slow.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    rhub.upgrade(h.name)
    slow.join(timeout=5)
    assert box and box[0].observation is not None
    assert box[0].observation.code.value == "cancelled"
    assert box[0].observation.attributes["reason"] == "unload"
    assert time.monotonic() - t0 < 4


def test_a_broken_new_generation_rolls_back(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir)
    assert rhub.call(f"{h.name}.increment").value == 1
    source = worker_dir / "worker.py"
    good = source.read_text()
    source.write_text(good + "\nthis is not python\n")
    back = rhub.upgrade(h.name)
    assert back is not rhub.component(h.name)
    assert back.state == "failed" and back.observation is not None
    assert (back.observation.code.value, back.observation.stage.value) == ("import_failed", "load")
    assert rhub.component(h.name).state == "ready"
    out = rhub.call(f"{h.name}.increment")
    assert (out.value, out.generation) == (2, 1)  # the old one serves on, its state intact
    assert "generations" not in rhub.inspect(h.name)
    source.write_text(good)
    again = rhub.reload(h.name)  # reload = an upgrade to the same target
    assert again.state == "ready"
    out = rhub.call(f"{h.name}.get")
    assert out.generation == 2


def test_a_new_generation_that_is_not_ready_rolls_back(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, readiness="ready", init={"version": "v1"})
    assert h.state == "ready", h.observation
    back = rhub.upgrade(h.name, init={"version": "not-ready"})
    assert back.state == "failed" and back.observation is not None
    assert back.observation.code.value == "readiness_failed"
    assert rhub.call(f"{h.name}.version_of").value == "v1"
    assert rhub.upgrade(h.name, init={"version": "v2"}).state == "ready"
    assert rhub.call(f"{h.name}.version_of").value == "v2"


def test_the_hand_over_keeps_a_counter_under_a_stream(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, init={"version": "v1"})
    stream = Stream(rhub, f"{h.name}.increment", callers=4)
    try:
        time.sleep(0.3)
        up = rhub.upgrade(h.name, init={"version": "v2"})
        time.sleep(0.3)
    finally:
        records = stream.stop()
    assert up.state == "ready", up.observation
    assert [o.observation for _, o in records if not o.ok] == []
    total = rhub.call(f"{h.name}.get")
    assert total.generation == 2
    assert total.value == len(records)  # every increment counted, on one generation or the other
    assert sorted(o.value for _, o in records) == list(range(1, len(records) + 1))
    assert {o.generation for _, o in records} == {1, 2}


def test_a_failed_hand_over_rolls_back_with_the_state(rhub: cncf.Hub, worker_dir: Path) -> None:
    h = rhub.load(worker_dir, init={"version": "v1"})
    for _ in range(3):
        rhub.call(f"{h.name}.increment")
    back = rhub.upgrade(h.name, init={"version": "no-import"})
    assert back.state == "failed" and back.observation is not None
    assert back.observation.code.value == "handover_failed"
    assert back.observation.attributes["step"] == "import_state"
    out = rhub.call(f"{h.name}.increment")
    assert (out.value, out.generation) == (4, 1)


def test_watch_upgrades_when_the_artifact_changes(tmp_path: Path, worker_dir: Path) -> None:
    import asyncio

    source = worker_dir / "worker.py"

    async def main() -> None:
        async with cncf.AsyncHub(home=tmp_path / "ahome") as hub:
            h = await hub.load(worker_dir, watch=True)
            assert h.state == "ready", h.observation
            assert (await hub.call(f"{h.name}.version_of")).generation == 1
            source.write_text(source.read_text().replace('version="v1"', 'version="edited"'))
            deadline = time.monotonic() + 15
            out = await hub.call(f"{h.name}.version_of")
            while out.generation == 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                out = await hub.call(f"{h.name}.version_of")
            assert (out.value, out.generation) == ("edited", 2)
            bad = await hub.load(worker_dir, name="other", watch="yes")
            assert bad.observation is not None and bad.observation.attributes["key"] == "watch"

    asyncio.run(main())

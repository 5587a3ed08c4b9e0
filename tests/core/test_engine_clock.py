"""Engine deadlines under a virtual clock: exact, instant, deterministic."""

from __future__ import annotations

import asyncio

import pytest

import cncf
from cncf import Code
from tests.conftest import INLINE
from tests.core.virtual_clock import run_virtual


def _elapsed_since(t0: float) -> float:
    return asyncio.get_running_loop().time() - t0


@pytest.mark.parametrize("wait_timeout", [0.25, 30.0, 3600.0])
def test_a_wait_timeout_fires_at_exactly_its_deadline(home, wait_timeout):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter", wait_timeout=wait_timeout)
            holder = asyncio.ensure_future(hub.call("counter.probe", {"tag": "hold", "delay": 2 * wait_timeout}))
            await asyncio.sleep(0)
            t0 = asyncio.get_running_loop().time()
            out = await hub.call("counter.get")
            assert out.observation.code is Code.WAIT_TIMEOUT
            assert out.observation.attributes["limit"] == "wait_timeout"
            assert _elapsed_since(t0) == pytest.approx(wait_timeout, abs=1e-6)
            assert (await holder).value == "hold"  # the running call was never disturbed

    run_virtual(main())


def test_a_run_timeout_fires_at_exactly_its_deadline_and_counts_from_the_start(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter", run_timeout=60)
            first = asyncio.ensure_future(hub.call("counter.probe", {"tag": 1, "delay": 40}))
            await asyncio.sleep(0)
            t0 = asyncio.get_running_loop().time()
            second = await hub.call("counter.probe", {"tag": 2, "delay": 1000})  # waits 40, then runs 60
            assert (await first).value == 1
            assert second.observation.code is Code.TIMED_OUT
            assert second.observation.attributes["reason"] == "run deadline"
            assert _elapsed_since(t0) == pytest.approx(100, abs=1e-6)

    run_virtual(main())


def test_the_callers_timeout_only_tightens_and_spans_waiting_and_running(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter", run_timeout=60, wait_timeout=60)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            out = await hub.call("counter.probe", {"tag": 1, "delay": 1000}, timeout=5)
            assert out.observation.code is Code.TIMED_OUT and _elapsed_since(t0) == pytest.approx(5, abs=1e-6)
            # waiting 3 of an overall 5 seconds leaves 2 to run
            holder = asyncio.ensure_future(hub.call("counter.probe", {"tag": "h", "delay": 3}))
            await asyncio.sleep(0)
            t1 = loop.time()
            out = await hub.call("counter.probe", {"tag": 2, "delay": 1000}, timeout=5)
            assert (await holder).ok
            assert out.observation.code is Code.TIMED_OUT and _elapsed_since(t1) == pytest.approx(5, abs=1e-6)
            # a generous caller timeout does not loosen the declared run_timeout
            t2 = loop.time()
            out = await hub.call("counter.probe", {"tag": 3, "delay": 1000}, timeout=3600)
            assert out.observation.code is Code.TIMED_OUT and _elapsed_since(t2) == pytest.approx(60, abs=1e-6)

    run_virtual(main())


def test_serialize_queue_drains_in_order_at_exact_virtual_times(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            finished: dict[int, float] = {}

            async def one(i: int) -> None:
                out = await hub.call("counter.probe", {"tag": i, "delay": 10})
                assert out.value == i
                finished[i] = loop.time() - t0

            await asyncio.gather(*(one(i) for i in range(5)))
            assert finished == pytest.approx({i: 10.0 * (i + 1) for i in range(5)}, abs=1e-6)

    run_virtual(main())


def test_concurrent_limit_shapes_the_timeline(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter", policy="concurrent", max_concurrency=2)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await asyncio.gather(*(hub.call("counter.probe", {"tag": i, "delay": 10}) for i in range(6)))
            assert loop.time() - t0 == pytest.approx(30.0, abs=1e-6)  # 6 calls, 2 at a time, 10 s each

    run_virtual(main())

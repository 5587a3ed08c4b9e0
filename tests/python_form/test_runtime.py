"""The worker runtime at the protocol level, without the engine: driven through
the hub's channel on CPython and PyPy."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from cncf.boundaries.python import worker_argv
from cncf.observation import Failed, Stage
from cncf.wire import ownership
from cncf.wire.frames import Kind
from cncf.wire.process import WorkerProcess
from tests.python_form.conftest import FIXTURES, pypy

INTERPRETERS = ["cpython", "pypy3"]


def _python(name: str) -> str:
    return pypy() if name == "pypy3" else os.path.realpath(sys.executable)


async def _worker(interpreter: str, entry: str, source: str) -> WorkerProcess:
    w = await WorkerProcess.spawn(worker_argv(interpreter, site=False), label="t")
    await w.channel.request(
        Kind.LOAD,
        {"instance": 1, "entry": entry, "artifact": "", "paths": [str(FIXTURES / source)], "options": {}},
        stage=Stage.LOAD,
    )
    await w.channel.request(Kind.NEW, {"instance": 1}, stage=Stage.INSTANTIATE)
    return w


def _invoke(w: WorkerProcess, op: str, *args: Any, concurrent: bool = False) -> Any:
    return w.channel.start(
        Kind.INVOKE,
        {
            "instance": 1,
            "call": f"call-{op}",
            "operation": op,
            "args": list(args),
            "kwargs": {},
            "concurrent": concurrent,
        },
    )


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


@pytest.fixture(params=INTERPRETERS)
def interpreter(request: pytest.FixtureRequest) -> str:
    return _python(request.param)


def test_hello_ping_unload_shutdown(interpreter: str) -> None:
    async def scenario() -> None:
        w = await _worker(interpreter, "counter:Counter", "counter")
        seen = 2 if ownership.namespace_available() else w.pid  # the pid inside its PID namespace
        assert w.hello["protocol"] == 1 and w.hello["pid"] == seen
        stats = await w.channel.request(Kind.PING, {}, stage=Stage.EXECUTE)
        assert stats["value"]["pid"] == seen and stats["value"]["rss_kb"] > 0
        assert (await w.channel.request(Kind.UNLOAD, {"instance": 1}, stage=Stage.EXECUTE))["ok"]
        await w.close()
        assert w.returncode == 0  # SHUTDOWN: a clean exit

    run(scenario)


def test_cancel_that_overtakes_its_invoke(interpreter: str) -> None:
    """CANCEL travels on its own pipe and may arrive before the INVOKE is read:
    the call still sees it from its first instruction."""

    async def scenario() -> None:
        w = await _worker(interpreter, "collab:Echoes", "collab")
        blocker = _invoke(w, "pause", 0.3)  # occupies the main thread for a moment
        pending = _invoke(w, "wait_for_cancel")
        w.channel.cancel(pending.id)
        assert (await blocker.reply(Stage.EXECUTE))["value"] is False
        with pytest.raises(Failed) as caught:
            await pending.reply(Stage.EXECUTE)
        assert caught.value.observation.code == "cancelled"
        assert caught.value.observation.attributes["tier"] == "cooperative"
        await w.close()

    run(scenario)


def test_garbage_on_the_requests_pipe_ends_the_worker(interpreter: str) -> None:
    async def scenario() -> None:
        w = await _worker(interpreter, "counter:Counter", "counter")
        pending = _invoke(w, "get")
        await pending.reply(Stage.EXECUTE)
        os.write(w.channel._req_w, b"\x00\x00\x00\x02\x63{}")  # kind 99 does not exist
        for _ in range(400):
            if not w.alive:
                break
            await asyncio.sleep(0.01)
        assert w.returncode == 3
        assert "unexpected frame kind" in w.output_tail()
        await w.close()

    run(scenario)


def test_concurrent_invokes_overlap(interpreter: str) -> None:
    async def scenario() -> None:
        w = await WorkerProcess.spawn(worker_argv(interpreter, site=False), label="t")
        await w.channel.request(
            Kind.LOAD,
            {"instance": 1, "entry": "mathops", "artifact": "", "paths": [str(FIXTURES / "funcs")], "options": {}},
            stage=Stage.LOAD,
        )
        await w.channel.request(Kind.NEW, {"instance": 1}, stage=Stage.INSTANTIATE)
        loop = asyncio.get_running_loop()
        started = loop.time()
        pendings = [_invoke(w, "nap", 0.3, concurrent=True) for _ in range(5)]
        for p in pendings:
            await p.reply(Stage.EXECUTE)
        assert loop.time() - started < 1.2
        await w.close()

    run(scenario)

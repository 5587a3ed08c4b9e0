"""OpenTelemetry spans per call (the ``otel`` extra), recorded in memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import cncf
from cncf import telemetry
from tests.http.conftest import FIXTURES

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402


def test_a_server_span_and_a_boundary_hop_per_call(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(FIXTURES / "svc")).state == "ready"
            stop = telemetry.install(hub, provider)
            assert stop is not None
            assert (await hub.call("svc.add", [1, 2])).value == 3
            assert (await hub.call("svc.fail")).observation is not None
            stop()
            await hub.call("svc.add", [1, 2])  # not traced any more

    asyncio.run(main())
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    hops = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert [s.name for s in servers] == ["svc.default/add", "svc.default/fail"]
    assert len(hops) == 2
    for server, hop in zip(servers, hops, strict=True):
        assert server.attributes["rpc.system.name"] == "cncf"
        assert hop.parent is not None and hop.parent.span_id == server.context.span_id
        assert server.start_time <= hop.start_time <= hop.end_time <= server.end_time
        assert hop.name == "svc python boundary"
    ok, failed = servers
    assert "error.type" not in ok.attributes and ok.status.status_code is not StatusCode.ERROR
    assert failed.attributes["error.type"] == "raised" and failed.status.status_code is StatusCode.ERROR
    assert hops[1].attributes["error.type"] == "raised"


def test_without_a_tracer_provider_nothing_is_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert telemetry.install(hub) is None

    asyncio.run(main())

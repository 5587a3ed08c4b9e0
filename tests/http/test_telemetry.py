"""Exact call timing and OpenTelemetry traces (the ``otel`` extra), recorded in memory.

The clock: the engine's call events carry ``time.perf_counter_ns`` stamps, so a
sub-millisecond call measures as itself under uvloop (whose ``loop.time()`` is
millisecond-grained).  The traces: an HTTP server span continuing the caller's
``traceparent``, the call span as its child, the call's phases as the call
span's children, the trace context handed to the component, and a failure's
cause as an ``exception`` event — checked on a real HTTP server (uvicorn on a
loopback socket, in this process so that its spans reach the in-memory exporter).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import cncf
from cncf import telemetry
from cncf.engine.events import CallFinished
from cncf.receptions.http.metrics import BUCKETS, HubMetrics
from tests.conftest import IN_CI
from tests.http.conftest import FIXTURES

try:
    import opentelemetry.sdk.trace as sdk_trace
except ImportError:  # the otel extra (in the test extra): required under CI
    if IN_CI:
        raise
    pytest.skip("opentelemetry-sdk is not installed (pip install 'cncf[otel]')", allow_module_level=True)
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

OBSERVED = FIXTURES / "observed"


def _provider() -> tuple[Any, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _run_on_uvloop(main: Callable[[], Any]) -> Any:
    import uvloop  # uvicorn[standard]'s: a dependency of cncf

    return uvloop.run(main())


# --------------------------------------------------------------------- clock


def test_a_sub_millisecond_call_measures_as_itself_under_uvloop(tmp_path: Path) -> None:
    """Phases are exact, ordered intervals; the histogram sees the call's real length."""
    events: list[CallFinished] = []
    client: dict[str, int] = {}
    naps = [0.3, 0.7, 1.3, 0.3, 0.7, 1.3, 0.3, 0.7, 1.3]

    async def main() -> None:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(OBSERVED)).state == "ready"
            await hub.call("observed.nap", [0.1])  # warm
            hub.subscribe(events.append)
            for ms in naps:
                t0 = time.perf_counter_ns()
                outcome = await hub.call("observed.nap", [ms])
                client[outcome.call_id] = time.perf_counter_ns() - t0
                assert outcome.ok, outcome.observation

    _run_on_uvloop(main)
    assert len(events) == len(naps)
    metrics = HubMetrics()
    for ms, e in zip(naps, events, strict=True):
        assert isinstance(e.admitted_ns, int) and isinstance(e.ended_ns, int)
        assert e.executed_ns is not None and e.returned_ns is not None and e.parked_ns is None
        assert e.admitted_ns <= e.executed_ns <= e.returned_ns <= e.ended_ns
        # the hop holds the component's own time; the whole call is inside the caller's measurement
        assert e.execution_ns >= ms * 1e6
        assert e.admission_ns + e.wait_ns + e.execution_ns <= e.ended_ns - e.admitted_ns
        assert e.wait_ns == 0
        assert ms * 1e6 <= e.ended_ns - e.admitted_ns <= client[e.call.id]
        assert e.duration == (e.ended_ns - e.admitted_ns) / 1e9
        metrics.on_call(e)
    # not whole milliseconds (loop.time() under uvloop gives nothing else)
    assert len({(e.ended_ns - e.admitted_ns) % 1_000_000 for e in events}) > 1
    hist = next(iter(metrics.durations.values()))
    below = sum(n for bound, n in zip(BUCKETS, hist.counts, strict=False) if bound < 0.0003)
    assert below == 0, "a 0.3 ms call counted under 0.3 ms"
    assert BUCKETS[0] == 25e-6 and BUCKETS[-1] == 60.0
    assert max(b / a for a, b in zip(BUCKETS, BUCKETS[1:], strict=False)) <= 4 / 3 + 1e-9


def test_a_call_that_waited_at_its_gate_reports_the_wait_apart(tmp_path: Path) -> None:
    events: list[CallFinished] = []

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(OBSERVED)).state == "ready"
            await hub.call("observed.nap", [0.1])
            hub.subscribe(events.append)
            outcomes = await asyncio.gather(hub.call("observed.nap", [60]), hub.call("observed.nap", [5]))
            assert all(o.ok for o in outcomes)

    asyncio.run(main())
    first, second = sorted(events, key=lambda e: e.admitted_ns)
    assert first.parked_ns is None and first.wait_ns == 0
    assert second.parked_ns is not None and second.executed_ns is not None
    assert second.admitted_ns <= second.parked_ns <= second.executed_ns
    # it waited (serialize) for the first call's 60 ms; then its own 5 ms ran
    assert second.wait_ns >= 50e6 and second.admission_ns < 20e6
    assert 5e6 <= second.execution_ns < second.wait_ns
    assert second.executed_ns >= first.returned_ns  # type: ignore[operator]


# -------------------------------------------------------------------- traces


@pytest.mark.parametrize("phases", [False, True], ids=["phases_as_attributes", "phases_as_spans"])
def test_each_call_is_a_span_with_its_boundary_hop(tmp_path: Path, phases: bool) -> None:
    """By default the boundary hop is measured on the call span (attributes: one
    span a call); with ``phases=True`` it is a CLIENT child span of its own."""
    provider, exporter = _provider()

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(FIXTURES / "svc")).state == "ready"
            stop = telemetry.enable(hub, tracer_provider=provider, phases=phases)
            assert stop is not None
            assert (await hub.call("svc.add", [1, 2])).value == 3
            assert (await hub.call("svc.fail")).observation is not None
            stop()
            await hub.call("svc.add", [1, 2])  # not traced any more

    asyncio.run(main())
    spans = exporter.get_finished_spans()
    calls = [s for s in spans if s.kind is SpanKind.SERVER]  # no parent: the call is the trace's root
    hops = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert [s.name for s in calls] == ["svc.default/add", "svc.default/fail"]
    assert len(spans) == (4 if phases else 2)
    for call in calls:
        assert call.parent is None and call.attributes["rpc.system.name"] == "cncf"
        assert None not in call.attributes.values()  # an exporter refuses a None attribute
    if phases:
        assert len(hops) == 2
        for call, hop in zip(calls, hops, strict=True):
            assert hop.parent is not None and hop.parent.span_id == call.context.span_id
            assert call.start_time < hop.start_time <= hop.end_time < call.end_time  # the hop is measured apart
            assert hop.name == "svc python boundary"
        assert hops[1].attributes["error.type"] == "raised"
    else:
        for call in calls:
            a = call.attributes
            assert a["cncf.form"] == "python"
            span_s = (call.end_time - call.start_time) / 1e9
            assert a["cncf.boundary.start_s"] > 0 and a["cncf.boundary.duration_s"] > 0
            assert a["cncf.boundary.start_s"] + a["cncf.boundary.duration_s"] < span_s  # measured apart
            assert "cncf.wait_s" not in a  # it did not wait
    ok, failed = calls
    assert "error.type" not in ok.attributes and ok.status.status_code is not StatusCode.ERROR
    assert failed.attributes["error.type"] == "raised" and failed.status.status_code is StatusCode.ERROR
    (event,) = [e for e in failed.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "bad"
    assert "def fail" in event.attributes["exception.stacktrace"] or "fail" in event.attributes["exception.stacktrace"]


def test_without_a_tracer_provider_nothing_is_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert telemetry.enable(hub) is None
            assert hub.engine.tracing is None

    asyncio.run(main())


def test_enable_traces_every_hub_made_afterwards_under_the_programs_own_span(tmp_path: Path) -> None:
    """The documented switch: ``cncf.telemetry.enable()`` before the hub is made;
    a synchronous ``Hub``'s call is a child of the program's current span."""
    provider, exporter = _provider()
    stop = telemetry.enable(tracer_provider=provider)
    assert stop is not None
    try:
        tracer = provider.get_tracer("the-program")
        with cncf.Hub(tmp_path / "home") as hub:
            assert hub.load(OBSERVED).state == "ready"
            with tracer.start_as_current_span("work") as mine:
                seen = hub.call("observed.context").value
            bare = hub.call("observed.context").value
    finally:
        stop()
    with cncf.Hub(tmp_path / "home2") as hub:  # made after stop(): not traced
        assert hub.load(OBSERVED).state == "ready"
        assert hub.call("observed.context").value["traceparent"] is None
    spans = {s.name: s for s in exporter.get_finished_spans() if s.parent is not None}
    call = spans["observed.default/context"]
    assert call.kind is SpanKind.INTERNAL
    assert call.parent.span_id == mine.get_span_context().span_id
    assert call.context.trace_id == mine.get_span_context().trace_id
    # the component read its call's trace context: the call span, in the program's trace
    version, trace_id, parent_id, flags = seen["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    assert int(trace_id, 16) == call.context.trace_id and int(parent_id, 16) == call.context.span_id
    roots = [s for s in exporter.get_finished_spans() if s.name == "observed.default/context" and s.parent is None]
    assert len(roots) == 1 and roots[0].kind is SpanKind.SERVER
    assert int(bare["traceparent"].split("-")[1], 16) == roots[0].context.trace_id


@asynccontextmanager
async def _served(hub: cncf.AsyncHub) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP reception on a real loopback socket, served by uvicorn on this loop."""
    import uvicorn

    from cncf.receptions.http.app import Reception
    from cncf.receptions.http.auth import Trust

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    reception = Reception(hub, Trust(None, "127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(reception.app(), lifespan="off", log_level="warning"))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await task
        reception.close()
        sock.close()


@asynccontextmanager
async def _traced_and_served(home: Path, provider: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A hub with the observed component, traced with ``provider``, served on a loopback socket."""
    async with cncf.AsyncHub(home) as hub:
        assert (await hub.load(OBSERVED)).state == "ready"
        stop = telemetry.enable(hub, tracer_provider=provider)
        assert stop is not None
        try:
            async with _served(hub) as http:
                yield http
        finally:
            stop()


def test_an_http_request_continues_the_callers_trace_down_to_the_component(tmp_path: Path) -> None:
    provider, exporter = _provider()
    incoming_trace, incoming_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    answers: dict[str, httpx.Response] = {}

    async def main() -> None:
        async with _traced_and_served(tmp_path / "home", provider) as http:
            headers = {
                "traceparent": f"00-{incoming_trace}-{incoming_span}-01",
                "tracestate": "vendor=opaque",
                "content-type": "application/json",
            }
            answers["context"] = await http.post("/rest/v1/observed/context", headers=headers)
            # a request that made a call: its span is recorded with the call's, soon after
            for _ in range(200):
                if any(s.kind is SpanKind.SERVER for s in exporter.get_finished_spans()):
                    break
                await asyncio.sleep(0.01)
            assert {s.name for s in exporter.get_finished_spans()} == {
                "POST /rest/v1/{component}/{operation}",
                "observed.default/context",
            }
            answers["fail"] = await http.post("/rest/v1/observed/fail", json={"message": "nope"})
            answers["nowhere"] = await http.get("/nowhere")

    asyncio.run(main())
    assert answers["context"].status_code == 200
    seen = answers["context"].json()["value"]
    spans = exporter.get_finished_spans()
    http_spans = [s for s in spans if s.kind is SpanKind.SERVER]
    by_route = {s.attributes.get("http.route"): s for s in http_spans}
    request = by_route["/rest/v1/{component}/{operation}"] if len(http_spans) == 3 else None
    assert request is not None, [s.name for s in http_spans]
    first = min(http_spans, key=lambda s: s.start_time)
    # the incoming traceparent is honoured: same trace, its span is the parent
    assert first.context.trace_id == int(incoming_trace, 16)
    assert first.parent is not None and first.parent.span_id == int(incoming_span, 16)
    assert first.name == "POST /rest/v1/{component}/{operation}"
    assert first.attributes["http.request.method"] == "POST"
    assert first.attributes["url.path"] == "/rest/v1/observed/context"
    assert first.attributes["http.response.status_code"] == 200
    call = next(s for s in spans if s.name == "observed.default/context")
    assert call.kind is SpanKind.INTERNAL and call.parent.span_id == first.context.span_id
    assert first.start_time < call.start_time < call.end_time < first.end_time
    assert call.attributes["cncf.form"] == "python" and call.attributes["cncf.boundary.duration_s"] > 0
    # the component got the call span's context, and the caller's tracestate
    _, trace_id, parent_id, _ = seen["traceparent"].split("-")
    assert int(trace_id, 16) == int(incoming_trace, 16) and int(parent_id, 16) == call.context.span_id
    assert seen["tracestate"] == "vendor=opaque"
    assert seen["call"] == call.attributes["cncf.call_id"]
    # nanosecond times, not whole milliseconds
    stamps = [t for s in (first, call) for t in (s.start_time, s.end_time)]
    assert any(t % 1_000_000 for t in stamps)

    failed_http = next(s for s in http_spans if s.attributes["url.path"] == "/rest/v1/observed/fail")
    assert failed_http.attributes["http.response.status_code"] == answers["fail"].status_code
    failed = next(s for s in spans if s.name == "observed.default/fail")
    assert failed.parent.span_id == failed_http.context.span_id
    assert failed.status.status_code is StatusCode.ERROR and failed.attributes["error.type"] == "raised"
    (event,) = [e for e in failed.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "nope"
    assert "inner" in event.attributes["exception.stacktrace"]  # the component's own frames

    lost = next(s for s in http_spans if s.attributes["url.path"] == "/nowhere")
    assert lost.attributes["http.response.status_code"] == answers["nowhere"].status_code == 404
    assert "http.route" not in lost.attributes and lost.name == "GET"
    assert lost.parent is None  # no traceparent came with it
    assert lost.status.status_code is not StatusCode.ERROR  # a 4xx is the client's
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing leaked into this thread's context


@pytest.mark.parametrize("sampler", ["parent_on", "ratio", "custom", "two_tracings"])
def test_a_request_span_parents_its_calls_whatever_the_sampler(tmp_path: Path, sampler: str) -> None:
    """Under the SDK's samplers (ids drawn ahead) the request span is handed to the
    calls it makes through ``telemetry.REQUEST``, not an OpenTelemetry context; a
    sampler that is asked gets an attached context as before; a hub traced by one
    tracing and served under another (``enable(hub)``, then ``enable()``) still
    parents its calls to the request.  Sampled in, out, with and without an
    incoming ``traceparent``: the component gets the request's trace, and the
    call span's parent is the request span whenever both are recorded."""
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_ON,
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
        TraceIdRatioBased,
    )

    class Asked(Sampler):
        """Every span sampled, by asking (not one of the SDK's own: no rule decided in place)."""

        def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kw: Any) -> Any:
            parent = trace.get_current_span(parent_context).get_span_context()
            return SamplingResult(Decision.RECORD_AND_SAMPLE, None, parent.trace_state if parent.is_valid else None)

        def get_description(self) -> str:
            return "Asked"

    def provider_of(made: Any) -> tuple[Any, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        provider = sdk_trace.TracerProvider(sampler=made)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider, exporter

    made = {"parent_on": ParentBased(ALWAYS_ON), "ratio": TraceIdRatioBased(0.5)}.get(sampler, Asked())
    provider, exporter = provider_of(made)
    two = sampler == "two_tracings"
    served_provider, served_exporter = provider_of(ParentBased(ALWAYS_ON)) if two else (None, None)
    incoming = [f"00-{i:032x}-{i:016x}-{'01' if i % 2 else '00'}" for i in range(1, 25)]  # a trace each
    seen: list[tuple[str | None, dict[str, Any]]] = []

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(OBSERVED)).state == "ready"
            stops = [telemetry.enable(hub, tracer_provider=provider)]
            if served_provider is not None:  # the requests' tracing: the last enabled
                stops.append(telemetry.enable(tracer_provider=served_provider))
            try:
                async with _served(hub) as http:
                    for parent in [*incoming, *[None] * 24]:
                        headers = {"traceparent": parent, "tracestate": "vendor=opaque"} if parent else {}
                        answer = await http.post("/rest/v1/observed/context", json={}, headers=headers)
                        assert answer.status_code == 200, answer.text
                        seen.append((parent, answer.json()["value"]))
                        assert telemetry.REQUEST.get() is None
            finally:
                for stop in stops:
                    assert stop is not None
                    stop()

    asyncio.run(main())
    spans = [*exporter.get_finished_spans(), *(served_exporter.get_finished_spans() if served_exporter else ())]
    requests = {s.context.trace_id: s for s in spans if s.kind is SpanKind.SERVER and "http.route" in s.attributes}
    calls = {s.attributes["cncf.call_id"]: s for s in spans if s.name == "observed.default/context"}
    both = 0
    for parent, value in seen:
        _, trace_id, span_id, flags = value["traceparent"].split("-")
        if parent is not None:
            assert trace_id == parent[3:35] and value["tracestate"] == "vendor=opaque"
        request = requests.get(int(trace_id, 16))
        call = calls.get(value["call"])
        assert (call is not None) == bool(int(flags, 16) & 1)  # recorded exactly when sampled
        if call is not None:
            assert call.context.span_id == int(span_id, 16)
        if parent is not None and sampler == "parent_on":  # the caller's decision is followed
            assert (request is not None) == parent.endswith("-01") == (call is not None)
        if request is not None and call is not None:
            both += 1
            assert call.kind is SpanKind.INTERNAL and call.parent.span_id == request.context.span_id
            assert request.start_time < call.start_time < call.end_time < request.end_time
            if parent is not None:
                assert request.parent.span_id == int(parent[36:52], 16)
    assert both >= (len(seen) // 4 if sampler == "ratio" else len(seen) // 2)


def test_a_job_attempt_is_the_root_of_its_own_trace_whoever_submitted_it(tmp_path: Path) -> None:
    """An attempt runs in a context of its own: the request whose submission
    started it at once (its task made while the request ran) is not its parent,
    as an attempt started later has none either."""
    provider, exporter = _provider()
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    async def main() -> None:
        async with _traced_and_served(tmp_path / "home", provider) as http:
            for _ in range(2):
                answer = await http.post(
                    "/rest/v1/observed/later", json={"seconds": 0.01}, headers={"traceparent": incoming}
                )
                assert answer.status_code == 202, answer.text
            for _ in range(300):
                if sum(s.name == "observed.default/later" for s in exporter.get_finished_spans()) == 2:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(main())
    spans = exporter.get_finished_spans()
    requests = [s for s in spans if s.kind is SpanKind.SERVER and "http.route" in s.attributes]
    attempts = [s for s in spans if s.name == "observed.default/later"]
    assert len(requests) == 2 and len(attempts) == 2
    assert all(r.context.trace_id == int(incoming[3:35], 16) for r in requests)
    for attempt in attempts:
        assert attempt.kind is SpanKind.SERVER and attempt.parent is None
        assert attempt.context.trace_id not in {r.context.trace_id for r in requests}


def test_a_span_processor_added_after_enable_gets_the_spans_that_follow(tmp_path: Path) -> None:
    """Spans end through the provider's only processor directly while it has one
    (a frame fewer a span); a processor added later is seen from the next batch on."""
    provider, first = _provider()
    second = InMemorySpanExporter()

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(OBSERVED)).state == "ready"
            stop = telemetry.enable(hub, tracer_provider=provider)
            assert stop is not None
            for _ in range(3):
                assert (await hub.call("observed.context")).ok
            await asyncio.sleep(0)  # (the batch is told at the loop's next turn)
            hub.engine.drain()
            provider.add_span_processor(SimpleSpanProcessor(second))
            for _ in range(4):
                assert (await hub.call("observed.context")).ok
            stop()

    asyncio.run(main())
    assert len(first.get_finished_spans()) == 7
    assert len(second.get_finished_spans()) == 4
    assert {s.context.span_id for s in second.get_finished_spans()} <= {
        s.context.span_id for s in first.get_finished_spans()
    }


def test_a_sampled_out_call_records_nothing_but_still_carries_its_context(tmp_path: Path) -> None:
    """The provider's sampler decides, as for any span: a call it samples out is
    not recorded, and the component gets a context whose sampled flag is off."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(OBSERVED)).state == "ready"
            stop = telemetry.enable(hub, tracer_provider=provider)
            assert stop is not None
            seen.update((await hub.call("observed.context")).value)
            assert (await hub.call("observed.fail")).observation is not None
            stop()

    asyncio.run(main())
    assert exporter.get_finished_spans() == ()
    version, trace_id, span_id, flags = seen["traceparent"].split("-")
    assert version == "00" and int(trace_id, 16) and int(span_id, 16) and not int(flags, 16) & 1


# ------------------------------------------------------- what a span costs


@pytest.mark.parametrize(
    "sampler",
    [
        "always_on",
        "always_off",
        "ratio",
        "parent_ratio",
        "parent_on",
        "parent_custom_delegate",
        "custom",
    ],
)
def test_the_samplers_decided_in_place_decide_as_the_sdk_does(sampler: str) -> None:
    """``open`` applies the SDK's standard samplers itself (their call chain costs
    microseconds a span): its decisions and trace state are the sampler's own,
    for roots and for sampled, unsampled, local and remote parents; any other
    sampler is asked."""
    import random

    from opentelemetry.sdk.trace import sampling
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    class Half(sampling.Sampler):
        def should_sample(self, parent_context: Any, trace_id: int, name: str, *a: Any, **k: Any) -> Any:
            d = sampling.Decision.RECORD_AND_SAMPLE if name.endswith("/keep") else sampling.Decision.DROP
            return sampling.SamplingResult(d, {"mine": 1} if d.is_sampled() else None)

        def get_description(self) -> str:
            return "Half"

    made = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "ratio": sampling.TraceIdRatioBased(0.3),
        "parent_ratio": sampling.ParentBased(sampling.TraceIdRatioBased(0.3)),
        "parent_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parent_custom_delegate": sampling.ParentBased(
            sampling.ALWAYS_ON, remote_parent_not_sampled=sampling.ALWAYS_ON
        ),
        "custom": Half(),
    }[sampler]
    provider = sdk_trace.TracerProvider(sampler=made)
    tracing = telemetry._Tracing(provider.get_tracer("t"), "0")
    assert (tracing._rule is None) == (sampler in ("parent_custom_delegate", "custom"))
    rng = random.Random(7)
    state = TraceState([("vendor", "x")])
    parents: list[Any] = [None]
    for remote in (False, True):
        for flags in (0, 1):
            parents += [
                SpanContext(rng.getrandbits(128), rng.getrandbits(64), remote, TraceFlags(flags), state)
                for _ in range(40)
            ]
    parents += [None] * 300
    sampled = 0
    for i, parent in enumerate(parents):
        ctx = trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
        name = f"c.default/{'keep' if i % 2 else 'drop'}"
        span = tracing.open(name, None, ctx)
        expected = made.should_sample(ctx, span.trace_id, name, span.kind)
        assert span.recording == expected.decision.is_recording(), (sampler, parent)
        assert bool(span.flags & 1) == expected.decision.is_sampled(), (sampler, parent)
        assert span.state == expected.trace_state
        assert (span.attributes or None) == (dict(expected.attributes) or None)
        if parent is not None:
            assert span.trace_id == parent.trace_id and span.parent == parent
        sampled += span.recording
    if sampler in ("ratio", "parent_ratio"):
        assert 0 < sampled < len(parents)  # the ratio decided both ways


def test_a_span_is_recorded_after_its_caller_has_the_outcome(tmp_path: Path) -> None:
    """Recording is deferred (``subscribe_deferred``): not before the
    caller has its Outcome, then at the loop's next turn, or in the spin-wait for
    the next call's reply; a blocking ``Hub`` records before its call returns;
    stopping records what is due; a caller that never yields is bounded."""
    from cncf.engine.engine import DEFERRED_MAX

    provider, exporter = _provider()

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(FIXTURES / "svc")).state == "ready"
            assert (await hub.load(OBSERVED, form="inline", name="inl")).state == "ready"
            stop = telemetry.enable(hub, tracer_provider=provider)
            assert stop is not None
            assert (await hub.call("svc.add", [1, 2])).value == 3
            assert exporter.get_finished_spans() == ()  # the caller had its Outcome first
            await asyncio.sleep(0)  # the loop turns: recorded
            assert [s.name for s in exporter.get_finished_spans()] == ["svc.default/add"]
            exporter.clear()
            # a worker call's spin-wait records the span of the call before it
            assert (await hub.call("svc.add", [1, 2])).value == 3
            assert (await hub.call("svc.add", [2, 2])).value == 4
            assert len(exporter.get_finished_spans()) >= 1
            await asyncio.sleep(0)
            exporter.clear()
            # inline calls that never let the loop turn: at most DEFERRED_MAX wait
            for _ in range(DEFERRED_MAX + 2):
                await hub.call("inl.context")
            assert hub.engine.deferred <= DEFERRED_MAX
            assert len(exporter.get_finished_spans()) >= 2
            await hub.call("inl.context")
            stop()  # what is still due is recorded
            assert hub.engine.deferred == 0
            assert len(exporter.get_finished_spans()) == DEFERRED_MAX + 3

    asyncio.run(main())
    exporter.clear()
    with cncf.Hub(tmp_path / "home2") as hub:
        assert hub.load(FIXTURES / "svc").state == "ready"
        stop = telemetry.enable(hub, tracer_provider=provider)
        assert hub.call("svc.add", [1, 2]).value == 3
        assert [s.name for s in exporter.get_finished_spans()] == ["svc.default/add"]  # before it returned
        assert stop is not None
        stop()


def test_a_hub_confined_to_one_cpu_records_spans_in_batches(tmp_path: Path) -> None:
    """On one CPU no wait hides deferred work, so it is told a batch at a time
    (warm in the cache): not at each loop turn, but once a batch is due (in the
    spin-wait for a reply, or at the next turn), or after ``DEFERRED_DELAY`` at
    the latest; a reader's ``drain`` still sees everything.  Whether the hub is
    on one CPU is its affinity's answer (``taskset``, a cpuset)."""
    import subprocess
    import sys

    from cncf.engine import engine as engine_module

    probe = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from cncf.engine.engine import _one_cpu; print(_one_cpu())"
    )
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
        == "True"
    )
    assert engine_module._one_cpu() == (len(os.sched_getaffinity(0)) == 1)

    provider, exporter = _provider()

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(FIXTURES / "svc")).state == "ready"
            assert (await hub.load(OBSERVED, form="inline", name="inl")).state == "ready"
            hub.engine._batch = 4  # as on one CPU, with a small batch
            stop = telemetry.enable(hub, tracer_provider=provider)
            assert stop is not None
            for _ in range(3):
                await hub.call("inl.context")
            await asyncio.sleep(0)
            assert exporter.get_finished_spans() == ()  # a batch is not due yet: the loop's turn told nothing
            await hub.call("inl.context")
            await asyncio.sleep(0)
            assert len(exporter.get_finished_spans()) == 4  # due: told at the next turn, together
            exporter.clear()
            await hub.call("inl.context")
            await asyncio.sleep(0)
            assert exporter.get_finished_spans() == ()
            await asyncio.sleep(engine_module.DEFERRED_DELAY * 5)
            assert len(exporter.get_finished_spans()) == 1  # told late, never lost
            exporter.clear()
            # a worker call's spin-wait tells a batch that is due, before its own reply
            hub.engine._drain_due = True  # (no loop turn tells it first)
            for _ in range(4):
                await hub.call("inl.context")
            assert hub.engine.deferred == 4 and exporter.get_finished_spans() == ()
            assert (await hub.call("svc.add", [1, 2])).value == 3
            assert len(exporter.get_finished_spans()) >= 4 and hub.engine.deferred <= 1
            hub.engine._drain_due = False
            hub.engine.drain()  # a reader sees everything
            assert len(exporter.get_finished_spans()) == 5
            stop()

    asyncio.run(main())


def test_ids_drawn_ahead_are_unique_and_sampled_as_the_sdk_samples_them(tmp_path: Path) -> None:
    """A root call's traceparent is drawn ahead with others (one random draw for
    many): every id is new, its sampled flag is the SDK ratio sampler's own
    decision for its trace id, and exactly the sampled ones are recorded, with
    those ids."""
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    sampler = TraceIdRatioBased(0.5)
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: list[str] = []

    async def main() -> None:
        async with cncf.AsyncHub(tmp_path / "home") as hub:
            assert (await hub.load(OBSERVED, form="inline", name="inl")).state == "ready"
            stop = telemetry.enable(hub, tracer_provider=provider)
            assert stop is not None
            for _ in range(300):  # several draws
                seen.append((await hub.call("inl.context")).value["traceparent"])
            stop()

    asyncio.run(main())
    ids = [tp.split("-") for tp in seen]
    assert len({t for _, t, _, _ in ids}) == len({s for _, _, s, _ in ids}) == 300
    sampled = set()
    for version, trace_id, span_id, flags in ids:
        assert version == "00" and int(trace_id, 16) and int(span_id, 16)
        decided = sampler.should_sample(None, int(trace_id, 16), "inl.default/context").decision.is_sampled()
        assert bool(int(flags, 16) & 1) == decided
        if decided:
            sampled.add((int(trace_id, 16), int(span_id, 16)))
    assert 0 < len(sampled) < 300
    recorded = {(s.context.trace_id, s.context.span_id) for s in exporter.get_finished_spans()}
    assert recorded == sampled


def test_hubs_on_several_threads_sharing_one_tracing_get_distinct_well_formed_ids(tmp_path: Path) -> None:
    """``enable()`` traces every hub made afterwards with one tracing; hubs on
    their own threads draw from its ids at once: every call still gets a
    traceparent of its own, well formed, in the trace of its thread's span."""
    import re
    import threading

    provider, exporter = _provider()
    stop = telemetry.enable(tracer_provider=provider)
    assert stop is not None
    seen: dict[int, list[tuple[str, int]]] = {}
    errors: list[BaseException] = []
    tracer = provider.get_tracer("the-program")

    def work(n: int) -> None:
        try:
            with cncf.Hub(tmp_path / f"home{n}") as hub:
                assert hub.load(OBSERVED, form="inline", name="inl").state == "ready"
                got = seen.setdefault(n, [])
                for i in range(150):
                    if i % 2:  # a root
                        got.append((hub.call("inl.context").value["traceparent"], 0))
                    else:  # a child of this thread's own span
                        with tracer.start_as_current_span(f"t{n}") as mine:
                            tp = hub.call("inl.context").value["traceparent"]
                        got.append((tp, mine.get_span_context().trace_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        stop()
    assert not errors, errors
    pairs = [p for got in seen.values() for p in got]
    assert len(pairs) == 600
    assert len({tp for tp, _ in pairs}) == 600  # no id handed out twice
    for tp, parent_trace in pairs:
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]", tp), tp
        if parent_trace:
            assert int(tp.split("-")[1], 16) == parent_trace  # its thread's own trace, never another's
    calls = [s for s in exporter.get_finished_spans() if s.name == "inl.default/context"]
    assert {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in calls} == {
        tuple(tp.split("-")[1:3]) for tp, _ in pairs
    }

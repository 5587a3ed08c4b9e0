"""OpenTelemetry spans for calls, when ``opentelemetry-sdk`` is installed (extra ``otel``).

One server span per finished call, named ``{component}.{service}/{operation}``
(the RPC convention's ``{rpc.service}/{rpc.method}``) with
``rpc.system.name = "cncf"``, and one child span for the boundary hop (the
time the call spent in its component, once it was admitted).  A failed call
sets ``error.type`` to its Observation code and the span status to ERROR.

The spans are made from the engine's ``CallFinished`` events
(``AsyncHub.subscribe``), after the fact, with explicit start and end times:
the engine learns nothing about tracing, and a hub without OpenTelemetry
pays nothing (this module is imported only by :func:`install`).  Event times
are the hub loop's clock; they are mapped to wall-clock nanoseconds once per
event.  The boundary hop starts when the call was handed to its boundary
(``CallFinished.executed``), so the server span's head is the time it waited
at its gate.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from cncf.engine.events import CallFinished


def _provider() -> Any:
    """The tracer provider to use: the application's, or one made from
    ``OTEL_TRACES_EXPORTER`` (``console``, or ``otlp`` when its exporter is installed)."""
    from opentelemetry import trace

    current = trace.get_tracer_provider()
    if type(current).__name__ != "ProxyTracerProvider":
        return current
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not exporter_name or exporter_name == "none":
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    exporter: Any
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            return None
        exporter = OTLPSpanExporter()
    else:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "cncf")}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


class CallTracer:
    """The listener: CallFinished → a server span and its boundary-hop child."""

    def __init__(self, tracer: Any, forms: Callable[[str], str]) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._trace = trace
        self._tracer = tracer
        self._forms = forms
        self._server, self._client = SpanKind.SERVER, SpanKind.CLIENT
        self._error = Status(StatusCode.ERROR)
        self._Status, self._code = Status, StatusCode

    def __call__(self, event: CallFinished) -> None:
        try:
            now_loop = asyncio.get_running_loop().time()
        except RuntimeError:
            now_loop = time.monotonic()
        offset = time.time_ns() - int(now_loop * 1e9)

        def ns(t: float) -> int:
            return offset + int(t * 1e9)

        call, outcome = event.call, event.outcome
        target = call.target
        obs = outcome.observation
        attrs: dict[str, Any] = {
            "rpc.system.name": "cncf",
            "rpc.service": f"{target.component}.{target.service}",
            "rpc.method": target.operation,
            "cncf.call_id": call.id,
            "cncf.caller": call.context.caller,
            "cncf.correlation_id": call.context.correlation_id,
        }
        if obs is not None:
            attrs["error.type"] = obs.code.value
            attrs["cncf.stage"] = obs.stage.value
        server = self._tracer.start_span(
            f"{target.component}.{target.service}/{target.operation}",
            kind=self._server,
            start_time=ns(event.started),
            attributes=attrs,
        )
        if obs is not None:
            server.set_status(self._Status(self._code.ERROR, obs.code.value))
        # The hop starts when the call was handed to its boundary (admission when it never ran).
        hop_start = event.executed if event.executed is not None else event.started
        ctx = self._trace.set_span_in_context(server)
        hop = self._tracer.start_span(
            f"{target.component} {self._forms(target.component)} boundary",
            context=ctx,
            kind=self._client,
            start_time=ns(hop_start),
            attributes={
                "rpc.system.name": "cncf",
                "cncf.form": self._forms(target.component),
                **({"error.type": obs.code.value} if obs is not None else {}),
            },
        )
        if obs is not None:
            hop.set_status(self._Status(self._code.ERROR, obs.code.value))
        hop.end(end_time=ns(event.ended))
        server.end(end_time=ns(event.ended))


def install(hub: Any, tracer_provider: Any = None) -> Callable[[], None] | None:
    """Trace every call of ``hub`` (an ``AsyncHub``); the function that stops it,
    or None when OpenTelemetry is not installed or no tracer provider is set up."""
    try:
        from opentelemetry import trace  # noqa: F401
    except ImportError:
        return None
    provider = tracer_provider if tracer_provider is not None else _provider()
    if provider is None:
        return None
    from cncf import __version__

    def form(name: str) -> str:
        handle = hub.component(name)
        return handle.form if handle is not None else "unknown"

    return hub.subscribe(CallTracer(provider.get_tracer("cncf", __version__), form))  # type: ignore[no-any-return]


__all__ = ["CallTracer", "install"]

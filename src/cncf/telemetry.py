"""OpenTelemetry traces of calls and HTTP requests (extra ``otel``: ``opentelemetry-sdk``).

The switch::

    import cncf.telemetry
    cncf.telemetry.enable()            # every hub made from now on (Hub and AsyncHub)
    cncf.telemetry.enable(hub)         # one hub, already made
    stop = cncf.telemetry.enable(hub, tracer_provider=provider)
    stop()                             # no more spans

``enable`` uses the tracer provider given, else the application's global one
(``opentelemetry.trace.set_tracer_provider``), else one built from
``OTEL_TRACES_EXPORTER`` (``console``, or ``otlp`` when its exporter is
installed); it returns None, and traces nothing, when OpenTelemetry's SDK is
not installed or no SDK tracer provider is set up.  ``cncf serve`` enables it for its hub
whenever a provider is set up that way.

What is traced, after OpenTelemetry's semantic conventions:

* **an HTTP request** to a served hub: a SERVER span ``{method} {route}``
  (``http.request.method``, ``http.route``, ``url.path``, ``url.scheme``,
  ``http.response.status_code``; status ERROR for a 5xx), continuing the
  trace of an incoming ``traceparent``/``tracestate`` (W3C propagator);
* **a call**: a span ``{component}.{service}/{operation}`` (``rpc.system.name
  = "cncf"``, ``rpc.service``, ``rpc.method``, ``cncf.call_id``), child of the
  current span — the HTTP request's, or the program's own — and then of kind
  INTERNAL; a call without a parent (a job attempt, a program with no span of
  its own) is the trace's SERVER root.  It is opened when the engine admits the
  call, so that its trace context travels with the call to the component
  (``cncf.collaborator.current_call().traceparent`` in a worker, the
  ``traceparent`` key of the wire protocol's INVOKE): a component's own spans
  join the trace, as children of the call span;
* its phases, as attributes of the call span: ``cncf.form``,
  ``cncf.boundary.start_s`` and ``cncf.boundary.duration_s`` (the boundary
  hop: handed to the boundary until the boundary returned, its start counted
  from the span's), ``cncf.wait_s`` (parked at the component's gate, only
  when it waited).  ``enable(..., phases=True)`` records them as child spans
  instead — ``wait`` and the hop ``{component} {form} boundary`` (CLIENT) —
  at the price of one or two more spans a call (a recorded span costs
  several microseconds in the SDK: the default keeps tracing within a tenth
  of a worker call's time);
* a failed call: ``error.type`` (the Observation's code), status ERROR, and an
  ``exception`` span event with ``exception.type``, ``exception.message`` and
  ``exception.stacktrace`` from the Observation's cause (the component's own
  exception, Python or Java), or from the Observation itself when it has none.

When: a call's span is *opened* before the call crosses (its context travels
with it) and *recorded* after the caller has its Outcome — at the event
loop's next turn, or, while the hub spin-waits for the next call's reply,
in that wait (``ActionEngine.subscribe_deferred``): recording
costs several microseconds that no caller waits for.  A synchronous ``Hub``
records a call's span before the call returns; stopping the tracing and
closing the hub record what is still due.

Times: every span time is a ``time.perf_counter_ns`` stamp (see
``cncf.engine.events``) placed on the wall clock by one offset read per
span, so the intervals are exact to the nanosecond clock, whatever the event
loop.  Nothing of OpenTelemetry is imported until ``enable`` is called; a hub
without telemetry pays one attribute test per call.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from cncf.call import ActionCall
from cncf.engine import events
from cncf.engine.events import CallFinished
from cncf.selector import normalize

#: The tracings enabled, in order (HTTP requests get the last one): read by the HTTP middleware.
TRACING: list[_Tracing] = []


def _provider() -> Any:
    """The tracer provider to use: the application's, or one made from
    ``OTEL_TRACES_EXPORTER`` (``console``, or ``otlp`` when its exporter is installed)."""
    from opentelemetry import trace

    current = trace.get_tracer_provider()
    if type(current).__name__ not in ("ProxyTracerProvider", "NoOpTracerProvider"):
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


@dataclasses.dataclass(slots=True)
class _Open:
    """A span opened but not yet recorded: its identity (chosen and sampled when
    it opened, so that its context can travel before it ends) and its start."""

    name: str
    kind: Any
    trace_id: int
    span_id: int
    flags: int
    state: Any  # its TraceState
    parent: Any  # the parent's SpanContext, or None
    recording: bool
    attributes: Any  # the sampler's
    start: int

    def traceparent(self) -> str:
        # bytes.hex: a third of what formatting a 128-bit int as hex costs
        trace_id, span_id = self.trace_id.to_bytes(16, "big").hex(), self.span_id.to_bytes(8, "big").hex()
        return f"00-{trace_id}-{span_id}-{_HEX2[self.flags & 0xFF]}"


class _Tracing:
    """One enabled tracing.

    Spans are recorded after the fact, from stamps: a span is *opened*
    (:meth:`open`: its ids generated and its sampling decided by the
    provider's own id generator and sampler, as the SDK's ``start_span``
    would) when its work begins, so that its context can be propagated, and
    *recorded* (:meth:`record`) once, complete, when the work has ended: one
    ``ReadableSpan`` handed to the provider's span processor.  That costs a
    fraction of a live SDK span (no lock, no attribute cleaning, no
    ``on_start``), which matters at a few microseconds a call; a span that is
    sampled out costs its ids and the sampler's decision only.  It needs the
    SDK's tracer (its ``sampler``, ``id_generator``, ``span_processor`` and
    ``resource``): :func:`enable` checks.
    """

    def __init__(self, tracer: Any, version: str, phases: bool = False) -> None:
        from opentelemetry import context, trace
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.tracer = tracer
        self.phases = phases  # the wait and the boundary hop as child spans (else attributes)
        self.trace, self.context = trace, context
        self.SpanKind, self.Status, self.StatusCode = SpanKind, Status, StatusCode
        self.propagator = TraceContextTextMapPropagator()
        self._open: dict[str, _Open | object] = {}  # call id -> its span, opened (or _SAMPLED_OUT)
        self._ReadableSpan, self._Event = ReadableSpan, Event
        self._scope = InstrumentationScope("cncf", version)
        self._unset = Status()
        self._random = int(trace.TraceFlags.RANDOM_TRACE_ID)
        self._flags = [trace.TraceFlags(i) for i in range(256)]
        # what open() reads on every span, looked up once
        self._get_current: Callable[[], Any] = context.get_current
        self._span_key = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, context.Context())))
        self._internal, self._server = SpanKind.INTERNAL, SpanKind.SERVER
        self._ids = tracer.id_generator
        self._ids_random = bool(self._ids.is_trace_id_random())
        self._rule = _sampling_rule(tracer.sampler)

    # ------------------------------------------------------------ spans

    def open(self, name: str, kind: Any, parent_context: Any = None, start: int = 0) -> _Open:
        """A span's identity: a child of the span of ``parent_context`` (None:
        the current context's), sampled by the provider's sampler.  ``kind``
        None: INTERNAL under a parent, else SERVER (the trace's root)."""
        ctx = parent_context if parent_context is not None else self._get_current()
        current = ctx.get(self._span_key)
        parent: Any = None
        if current is not None:
            parent = current.get_span_context()
            if not parent.is_valid:
                parent = None
        if kind is None:
            kind = self._internal if parent is not None else self._server
        ids = self._ids
        rule = self._rule
        if parent is None:
            trace_id = ids.generate_trace_id()
            random = self._ids_random
            state = None
        else:
            trace_id = parent.trace_id
            random = parent.trace_flags.random_trace_id
            state = parent.trace_state
        if rule is not None:  # the SDK's own sampler, decided here (see _sampling_rule)
            if parent is not None and rule[0]:
                sampled = parent.trace_flags.sampled
            else:
                sampled = (trace_id & _TRACE_ID_LIMIT) < rule[1]
            recording, attributes = sampled, None
        else:
            result = self.tracer.sampler.should_sample(parent_context, trace_id, name, kind)
            decision = result.decision
            sampled, recording = decision.is_sampled(), decision.is_recording()
            state, attributes = result.trace_state, result.attributes
        return _Open(
            name,
            kind,
            trace_id,
            ids.generate_span_id(),
            (1 if sampled else 0) | (self._random if random else 0),
            state,
            parent,
            recording,
            attributes,
            start,
        )

    def context_of(self, span: _Open) -> Any:
        """The span's ``SpanContext``."""
        return self.trace.SpanContext(
            span.trace_id,
            span.span_id,
            is_remote=False,
            trace_flags=self._flags[span.flags & 0xFF],
            trace_state=span.state,
        )

    def record(
        self,
        span: _Open,
        end: int,
        attributes: dict[str, Any],
        status: Any = None,
        events: tuple[tuple[str, dict[str, Any], int], ...] = (),
    ) -> None:
        """Record the span, complete (``end``: wall-clock ns)."""
        if not span.recording:
            return
        if span.attributes:
            attributes = {**span.attributes, **attributes}
        self.tracer.span_processor.on_end(
            self._ReadableSpan(
                span.name,
                self.context_of(span),
                span.parent,
                self.tracer.resource,
                attributes,
                tuple(self._Event(n, a, t) for n, a, t in events) if events else (),
                (),
                span.kind,
                None,
                status or self._unset,
                span.start,
                end,
                self._scope,
            )
        )

    def child(
        self, parent: _Open, name: str, kind: Any, start: int, end: int, attributes: dict[str, Any], status: Any = None
    ) -> None:
        """Record a child of ``parent`` (a phase of its work) at once."""
        if not parent.recording:
            return
        span_id = self.tracer.id_generator.generate_span_id()
        sc = self.context_of(parent)
        self.record(
            _Open(name, kind, parent.trace_id, span_id, parent.flags, parent.state, sc, True, None, start),
            end,
            attributes,
            status,
        )

    # ------------------------------------------------------------ calls

    def begin(self, call: ActionCall) -> ActionCall:
        """Open the call's span (a child of the current span) and hand its
        trace context to the call.  Never raises: a failure leaves the call as it was.

        Only what must travel with the call is done here: the ids and the sampling
        decision.  The span's name (when the sampler does not need it) and its
        times are the recording's business (its start is the call's admission)."""
        try:
            target = call.target
            name = "" if self._rule is not None else f"{target.component}.{target.service}/{target.operation}"
            span = self.open(name, None)
            self._open[call.id] = span if span.recording else _SAMPLED_OUT
            # The call's context is completed in place: it was made for this call alone
            # and nothing has read it yet (rebuilding the frozen call and context costs
            # several microseconds a call, more than the rest of the span).
            ctx = call.context
            object.__setattr__(ctx, "traceparent", span.traceparent())
            if span.state:
                object.__setattr__(ctx, "tracestate", span.state.to_header() or None)
            return call
        except Exception:  # noqa: BLE001 - telemetry never breaks a call
            return call

    def finish_all(self, events: Sequence[CallFinished], form: Callable[[str], str]) -> None:
        """Record the spans of these calls (the engine's deferred listener)."""
        for event in events:
            self.finish(event, form)

    def finish(self, event: CallFinished, form: Callable[[str], str]) -> None:
        """Record the call's span and its phases' (the engine's listener)."""
        try:
            self._finish(event, form)
        except Exception:  # noqa: BLE001 - a listener that raises is dropped; this one must stay
            pass

    def _finish(self, event: CallFinished, form_of: Callable[[str], str]) -> None:
        call, outcome = event.call, event.outcome
        opened = self._open.pop(call.id, None)
        if opened is _SAMPLED_OUT:
            return
        target = call.target
        name = f"{target.component}.{target.service}/{target.operation}"
        # (none: admitted before tracing was enabled, made after the fact)
        span = opened if isinstance(opened, _Open) else self.open(name, self.SpanKind.SERVER)
        if not span.recording:  # sampled out: nothing to record
            return
        offset = events.wall_offset_ns()
        span.name, span.start = name, offset + event.admitted_ns
        ctx = call.context
        attributes: dict[str, Any] = {
            "rpc.system.name": "cncf",
            "rpc.service": f"{target.component}.{target.service}",
            "rpc.method": target.operation,
            "cncf.call_id": call.id,
        }
        # (an attribute is never None: OpenTelemetry's exporters refuse it)
        if ctx.caller is not None:
            attributes["cncf.caller"] = ctx.caller
        if ctx.correlation_id is not None:
            attributes["cncf.correlation_id"] = ctx.correlation_id
        obs = outcome.observation
        status = None
        exception: tuple[tuple[str, dict[str, Any], int], ...] = ()
        if obs is not None:
            attributes["error.type"] = obs.code.value
            attributes["cncf.stage"] = obs.stage.value
            status = self.Status(self.StatusCode.ERROR, obs.code.value)
            cause = obs.cause
            exception = (
                (
                    "exception",
                    {
                        "exception.type": cause.type if cause is not None and cause.type else obs.code.value,
                        "exception.message": cause.message if cause is not None else obs.message,
                        "exception.stacktrace": _stack(cause) if cause is not None else "",
                    },
                    offset + (event.returned_ns or event.ended_ns),
                ),
            )
        if event.tier is not None:
            attributes["cncf.cancel_tier"] = event.tier
        if not self.phases:
            if event.parked_ns is not None:
                attributes["cncf.wait_s"] = event.wait_ns / 1e9
            if event.executed_ns is not None:
                attributes["cncf.form"] = form_of(target.component)
                attributes["cncf.boundary.start_s"] = (event.executed_ns - event.admitted_ns) / 1e9
                attributes["cncf.boundary.duration_s"] = event.execution_ns / 1e9
            self.record(span, offset + event.ended_ns, attributes, status, exception)
            return
        if event.parked_ns is not None:
            start = offset + event.parked_ns
            self.child(span, "wait", self.SpanKind.INTERNAL, start, start + event.wait_ns, {})
        if event.executed_ns is not None:
            form = form_of(target.component)
            hop: dict[str, Any] = {"rpc.system.name": "cncf", "cncf.form": form}
            if obs is not None:
                hop["error.type"] = obs.code.value
            start = offset + event.executed_ns
            self.child(
                span,
                f"{target.component} {form} boundary",
                self.SpanKind.CLIENT,
                start,
                start + event.execution_ns,
                hop,
                status,
            )
        self.record(span, offset + event.ended_ns, attributes, status, exception)

    def instrument(self, hub: Any) -> Callable[[], None]:
        """Trace ``hub``'s calls (an AsyncHub, or an ActionEngine); the function that stops it."""
        engine = getattr(hub, "engine", hub)
        components = engine._components  # the hub's own mapping (normalized name -> Component)

        def form(name: str) -> str:
            comp = components.get(normalize(name))
            return str(comp.spec.form) if comp is not None else "unknown"

        engine.tracing = self
        # Deferred: a span is recorded after its caller has the Outcome (see the module doc).
        unsubscribe = engine.subscribe_deferred(functools.partial(self.finish_all, form=form))
        held = weakref.ref(engine)  # the stop function does not keep a closed hub's engine alive

        def stop() -> None:
            engine = held()
            if engine is None:
                return
            if engine.tracing is self:
                engine.tracing = None
            unsubscribe()  # (what is still due is recorded first)

        return stop

    # ------------------------------------------------------------- HTTP

    def extract(self, headers: list[tuple[bytes, bytes]]) -> Any:
        """The context of an incoming ``traceparent``/``tracestate`` (W3C), or None."""
        carrier = {}
        for k, v in headers:
            if k in (b"traceparent", b"tracestate"):
                carrier[k.decode()] = v.decode("latin-1")
        if "traceparent" not in carrier:
            return None
        return self.propagator.extract(carrier)

    def current(self, span: _Open) -> Any:
        """A context in which ``span`` is the current span (for what runs under it)."""
        return self.trace.set_span_in_context(self.trace.NonRecordingSpan(self.context_of(span)))


#: The trace id bits the SDK's ratio sampler looks at (TraceIdRatioBased.TRACE_ID_LIMIT).
_TRACE_ID_LIMIT = (1 << 64) - 1
_HEX2 = tuple(f"{i:02x}" for i in range(256))  # a traceparent's flags
#: A call whose span was sampled out when it opened: nothing to record.
_SAMPLED_OUT = object()


def _sampling_rule(sampler: Any) -> tuple[bool, int] | None:
    """The SDK's standard samplers as a rule ``open`` applies itself, without the
    sampler's call chain (a few microseconds a span, most of a sampled-out
    call's cost): ``(follow the parent's flag, bound on the trace id's low 64
    bits for a root)``.  ``ALWAYS_ON``, ``ALWAYS_OFF``, ``TraceIdRatioBased``,
    and ``ParentBased`` over one of them with its default delegates, exactly as
    the SDK decides them; None for any other sampler (it is asked every span).
    A decision of these samplers is never RECORD_ONLY and carries no attributes;
    the trace state is the parent's."""
    from opentelemetry.sdk.trace import sampling

    on, off = sampling.ALWAYS_ON, sampling.ALWAYS_OFF

    def root_bound(s: Any) -> int | None:
        if s is on:
            return _TRACE_ID_LIMIT + 1
        if s is off:
            return 0
        if type(s) is sampling.TraceIdRatioBased:
            return int(s.bound)
        return None

    bound = root_bound(sampler)
    if bound is not None:
        return (False, bound)
    if type(sampler) is not sampling.ParentBased:
        return None
    root = getattr(sampler, "_root", None)
    bound = root_bound(root)
    parent_based: Any = sampling.ParentBased  # (its methods are untyped)
    defaults = parent_based(root).get_description() if bound is not None else None
    described: Any = sampler
    if bound is None or described.get_description() != defaults:
        return None  # a delegate of its own: ask the sampler
    return (True, bound)


def _stack(cause: Any) -> str:
    """The cause's stack, its own causes' appended (as Python prints a chain)."""
    parts = []
    while cause is not None:
        parts.append(cause.stack or f"{cause.type}: {cause.message}")
        cause = cause.cause
    return "\n\nThe above exception was the direct cause of the following exception:\n\n".join(reversed(parts))


def current() -> _Tracing | None:
    """The tracing HTTP requests get (the last ``enable`` still on), or None."""
    return TRACING[-1] if TRACING else None


def enable(hub: Any = None, *, tracer_provider: Any = None, phases: bool = False) -> Callable[[], None] | None:
    """Trace calls (and a served hub's HTTP requests) with OpenTelemetry.

    Args:
        hub: an ``AsyncHub`` or a ``Hub``; None: every hub made from now on in
            this process.
        tracer_provider: the provider to use (default: the application's, or
            one made from ``OTEL_TRACES_EXPORTER``).
        phases: the gate wait and the boundary hop as child spans of the call
            span (default: attributes of it; see the module docstring).

    Returns:
        The function that stops tracing, or None when OpenTelemetry is not
        installed or no tracer provider is set up (then nothing is traced).
    """
    try:
        from opentelemetry import trace  # noqa: F401
    except ImportError:
        return None
    provider = tracer_provider if tracer_provider is not None else _provider()
    if provider is None:
        return None
    from cncf import __version__

    tracer = provider.get_tracer("cncf", __version__)
    if not all(hasattr(tracer, a) for a in ("sampler", "span_processor", "id_generator", "resource")):
        return None  # not the SDK's tracer (see _Tracing)
    tracing = _Tracing(tracer, __version__, phases)
    stops: list[Callable[[], None]] = []
    if hub is not None:
        stops.append(tracing.instrument(getattr(hub, "aio", hub)))
    else:
        engines: list[Callable[[], None]] = []

        def hook(engine: Any) -> None:
            engines.append(tracing.instrument(engine))

        events.ENGINE_HOOKS.append(hook)

        def unhook() -> None:
            if hook in events.ENGINE_HOOKS:
                events.ENGINE_HOOKS.remove(hook)
            for stop_engine in engines:
                stop_engine()
            engines.clear()

        stops.append(unhook)
    TRACING.append(tracing)

    def stop() -> None:
        for s in stops:
            s()
        stops.clear()
        if tracing in TRACING:
            TRACING.remove(tracing)

    return stop


def install(hub: Any, tracer_provider: Any = None) -> Callable[[], None] | None:
    """``enable(hub, tracer_provider=...)`` (its earlier name, kept for ``cncf serve``;
    ``CNCF_TRACE_PHASES=1``: the phases as child spans)."""
    return enable(hub, tracer_provider=tracer_provider, phases=os.environ.get("CNCF_TRACE_PHASES") == "1")


__all__ = ["current", "enable", "install"]

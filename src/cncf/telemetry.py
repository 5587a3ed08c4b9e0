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
  trace of an incoming ``traceparent``/``tracestate`` (W3C propagator), the
  parent of the calls the request makes (under the SDK's samplers, handed to
  them through :data:`REQUEST`, not as an attached OpenTelemetry context:
  see :meth:`_Tracing.open_request`);
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
with it: under the SDK's own samplers and id generator, its ``traceparent``
is drawn ahead with others and is all the span keeps until it is recorded)
and *recorded* after the caller has its Outcome — at the event loop's next
turn, or, while the hub spin-waits for the next call's reply, in that wait;
on a hub confined to one CPU, 32 at a time (``ActionEngine.subscribe_deferred``):
recording costs several microseconds that no caller waits for.  A served
hub's request span is recorded with the spans of the calls it made.  A synchronous ``Hub``
records a call's span before the call returns; stopping the tracing and
closing the hub record what is still due.

Times: every span time is a ``time.perf_counter_ns`` stamp (see
``cncf.engine.events``) placed on the wall clock by one offset read per
span, so the intervals are exact to the nanosecond clock, whatever the event
loop.  Nothing of OpenTelemetry is imported until ``enable`` is called; a hub
without telemetry pays one attribute test per call.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import os
import random
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from cncf.call import ActionCall
from cncf.engine import events
from cncf.engine.events import CallFinished, wall_offset_ns
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
    exporter, _ = _env_exporter()
    if exporter is None:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "cncf")}))
    provider.add_span_processor(BatchSpanProcessor(exporter()))
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


class _Request:
    """An HTTP request's SERVER span under ids drawn ahead (see :meth:`_Tracing.open_request`):
    its ``traceparent`` (drawn, or continuing the incoming one), kept with what
    its calls and its recording need, and made the parent of the calls the request
    makes through :data:`REQUEST` rather than an OpenTelemetry context (which the
    calls would only read their parent from, at several times the cost)."""

    __slots__ = (
        "name",
        "traceparent",
        "trace",
        "low",
        "flags",
        "state",
        "tracestate",
        "parent",
        "start",
        "recording",
        "context",
    )

    def __init__(self, name: str, traceparent: str, state: Any, parent: Any, start: int) -> None:
        self.name = name
        self.traceparent = traceparent
        self.trace = traceparent[3:35]  # the trace id, as hex
        self.low = int(traceparent[19:35], 16)  # its low 64 bits (what a ratio sampler reads)
        self.flags = int(traceparent[53:55], 16)
        self.state = state  # its TraceState (the incoming one's), or None
        self.tracestate = (state.to_header() or None) if state else None
        self.parent = parent  # the incoming SpanContext, or None
        self.start = start
        self.recording = bool(self.flags & 1)
        self.context: Any = None  # its SpanContext, once made (see _Tracing._request_context)


#: The request span the running code serves (set by the HTTP reception around a
#: request, telemetry on): the parent of the calls it makes.
REQUEST: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("cncf_request_span", default=None)


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
        from opentelemetry.sdk.trace import Event, ReadableSpan, SynchronousMultiSpanProcessor
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
        # (the runtime context's own ContextVar when it is the SDK's default: two frames fewer a call)
        current_var = getattr(getattr(context, "_RUNTIME_CONTEXT", None), "_current_context", None)
        if isinstance(current_var, contextvars.ContextVar):
            self._get_current = current_var.get
        self._span_key = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, context.Context())))
        self._internal, self._server = SpanKind.INTERNAL, SpanKind.SERVER
        self._ids = tracer.id_generator
        self._ids_random = bool(self._ids.is_trace_id_random())
        self._rule = _sampling_rule(tracer.sampler)
        self._SpanContext = trace.SpanContext
        self._resource = tracer.resource
        self._processor = tracer.span_processor
        self._processors_held = type(self._processor) is SynchronousMultiSpanProcessor  # (see _processor_end)
        self._on_end: Callable[[Any], None] = self._processor.on_end  # (see _processor_end)
        # the SDK's RandomIdGenerator: ids drawn in place, as it draws them (any other generator is asked)
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        # ids drawn ahead, the call's traceparent all its span keeps (see begin): under a
        # sampler decided in place and the SDK's own id generator
        self._drawn = self._rule is not None and type(self._ids) is RandomIdGenerator
        self._root_flags = self._random if self._ids_random else 0
        self._named: dict[str, tuple[str, str]] = {}  # target text -> (span name, rpc.service)
        # call id -> the parent's SpanContext (a sampled child, decided in place)
        self._parents: dict[str, Any] = {}
        self._roots: list[str] = []  # root traceparents drawn ahead (see _draw_roots)
        self._span_ids: list[str] = []  # span ids drawn ahead, as hex
        # the last parent's trace id, and as hex (one tuple: read and replaced whole, from any thread)
        self._trace: tuple[int, str] = (0, "")

    # ------------------------------------------------------------ spans

    def open(self, name: str, kind: Any, parent_context: Any = None, start: int = 0) -> _Open:
        """A span's identity: a child of the span of ``parent_context`` (None:
        the current context's), sampled by the provider's sampler.  ``kind``
        None: INTERNAL under a parent, else SERVER (the trace's root)."""
        if parent_context is None:
            request = _request_span()
            if request is not None:  # served to an HTTP request (another tracing's, drawn ahead)
                served = self._context_of_traceparent(request.traceparent, request.state)
                parent_context = self.trace.set_span_in_context(self.trace.NonRecordingSpan(served))
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
        return self._SpanContext(span.trace_id, span.span_id, False, self._flags[span.flags & 0xFF], span.state)

    def _context_of_traceparent(self, traceparent: str, state: Any) -> Any:
        """The ``SpanContext`` of a span known by its ``traceparent`` (drawn or made here: well formed)."""
        flags = self._flags[int(traceparent[53:55], 16)]
        return self._SpanContext(int(traceparent[3:35], 16), int(traceparent[36:52], 16), False, flags, state)

    def open_request(self, name: str, headers: list[tuple[bytes, bytes]], start: int) -> _Open | _Request:
        """An HTTP request's SERVER span, continuing the trace of an incoming
        ``traceparent``/``tracestate``: a :class:`_Request` under ids drawn ahead
        (its identity a ``traceparent`` drawn, or made from the incoming one's
        trace), else a span opened as any other."""
        incoming = None
        for key, _ in headers:
            if key == b"traceparent":
                incoming = self.extract(headers)
                break
        if not self._drawn:
            return self.open(name, self._server, incoming, start)
        current = incoming.get(self._span_key) if incoming is not None else None
        parent = current.get_span_context() if current is not None else None
        if parent is None or not parent.is_valid:
            return _Request(name, self._next_root(), None, None, start)
        trace_id = parent.trace_id
        flags = self._child_flags(parent.trace_flags, trace_id & _TRACE_ID_LIMIT)
        traceparent = f"00-{trace_id.to_bytes(16, 'big').hex()}-{self._next_span_id()}-{_HEX2[flags]}"
        return _Request(name, traceparent, parent.trace_state, parent, start)

    def enter(self, span: _Open | _Request) -> contextvars.Token[Any]:
        """Make ``span`` the parent of the calls made from here until :meth:`leave`."""
        if type(span) is _Request:
            return REQUEST.set(span)
        assert isinstance(span, _Open)
        return self.context.attach(self.current(span))

    def leave(self, token: contextvars.Token[Any]) -> None:
        """Undo the :meth:`enter` that gave ``token``."""
        if token.var is REQUEST:
            REQUEST.reset(token)
        else:
            self.context.detach(token)

    def record(
        self,
        span: _Open | _Request,
        end: int,
        attributes: dict[str, Any],
        status: Any = None,
        events: tuple[tuple[str, dict[str, Any], int], ...] = (),
        offset: int = 0,
    ) -> None:
        """Record the span, complete: its start and ``end`` (and its events' times)
        are placed on the wall clock by adding ``offset`` (0: they are already)."""
        if not span.recording:
            return
        if type(span) is _Request:
            context, kind, parent, name = self._request_context(span), self._server, span.parent, span.name
        else:
            assert isinstance(span, _Open)
            context, kind, parent, name = self.context_of(span), span.kind, span.parent, span.name
            if span.attributes:
                attributes = {**span.attributes, **attributes}
        if events and offset:
            events = tuple((event, values, at + offset) for event, values, at in events)
        self._emit(name, context, parent, kind, attributes, status, events, span.start + offset, end + offset)

    def _request_context(self, request: _Request) -> Any:
        """The ``SpanContext`` of a request span (made once: its own, and its calls' parent)."""
        context = request.context
        if context is None:
            context = request.context = self._context_of_traceparent(request.traceparent, request.state)
        return context

    def _emit(
        self,
        name: str,
        context: Any,
        parent: Any,
        kind: Any,
        attributes: dict[str, Any],
        status: Any,
        events: tuple[tuple[str, dict[str, Any], int], ...],
        start: int,
        end: int,
    ) -> None:
        """Hand one complete span to the provider's span processor."""
        self._on_end(
            self._ReadableSpan(
                name,
                context,
                parent,
                self._resource,
                attributes,
                tuple(self._Event(n, a, t) for n, a, t in events) if events else (),
                (),
                kind,
                None,
                status or self._unset,
                start,
                end,
                self._scope,
            )
        )

    def _child(
        self, parent: Any, name: str, kind: Any, start: int, end: int, attributes: dict[str, Any], status: Any = None
    ) -> None:
        """Record a child of the span whose ``SpanContext`` is ``parent`` (a phase of its work) at once."""
        context = self._SpanContext(
            parent.trace_id, self._ids.generate_span_id(), False, parent.trace_flags, parent.trace_state
        )
        self._emit(name, context, parent, kind, attributes, status, (), start, end)

    # ------------------------------------------------------------ calls

    def begin(self, call: ActionCall) -> ActionCall:
        """Open the call's span (a child of the current span) and hand its
        trace context to the call.  Never raises: a failure leaves the call as it was.

        Only what must travel with the call is done here: the ids and the sampling
        decision, written into the call's ``traceparent``.  The call's context is
        completed in place: it was made for this call alone and nothing has read it
        yet (rebuilding the frozen call and context costs several microseconds a
        call, more than the rest of the span).  Under a sampler decided in place the
        ``traceparent`` is all the span keeps until it is recorded (with its parent,
        when it has one); the span's name, kind and times are the recording's
        business (its start is the call's admission)."""
        try:
            if not self._drawn:
                self._begin_asked(call)
                return call
            request = _request_span()
            if request is not None:  # served to an HTTP request: a child of its span
                flags = self._child_flags(request.flags, request.low)
                self._child_of(call, request.trace, flags, request.tracestate, request)
                return call
            current = self._get_current().get(self._span_key)
            parent = current.get_span_context() if current is not None else None
            if parent is None or not parent.is_valid:  # a root: its whole traceparent drawn ahead
                _set(call.context, "traceparent", self._next_root())
                return call
            trace_id = parent.trace_id
            trace = self._trace
            if trace[0] != trace_id:  # (a program's calls under one span of its own: once)
                trace = self._trace = (trace_id, trace_id.to_bytes(16, "big").hex())
            flags = self._child_flags(parent.trace_flags, trace_id & _TRACE_ID_LIMIT)
            state = parent.trace_state
            self._child_of(call, trace[1], flags, (state.to_header() or None) if state else None, parent)
            return call
        except Exception:  # noqa: BLE001 - telemetry never breaks a call
            return call

    def _child_flags(self, parent_flags: int, trace_low: int) -> int:
        """A child span's trace flags under the rule decided in place: sampled as its
        parent is (ParentBased) or by its trace id's low 64 bits; the parent's random bit."""
        rule: Any = self._rule  # (only ids drawn ahead ask: a rule decided in place)
        sampled = parent_flags & 1 if rule[0] else int(trace_low < rule[1])
        return (parent_flags & self._random) | sampled

    def _child_of(self, call: ActionCall, trace: str, flags: int, tracestate: str | None, parent: Any) -> None:
        """Hand ``call`` the context of a child span in the trace ``trace`` (hex); a
        sampled one keeps ``parent`` (a ``SpanContext`` or a :class:`_Request`) to be recorded."""
        ctx = call.context
        _set(ctx, "traceparent", f"00-{trace}-{self._next_span_id()}-{_HEX2[flags]}")
        if tracestate:
            _set(ctx, "tracestate", tracestate)
        if flags & 1:
            self._parents[call.id] = parent

    def _next_root(self) -> str:
        """A root span's ``traceparent``, drawn ahead."""
        try:  # (hubs on other threads may share this tracing: pop, never test then pop)
            return self._roots.pop()
        except IndexError:
            return self._draw_roots()

    def _next_span_id(self) -> str:
        """A span id, as hex, drawn ahead."""
        try:
            return self._span_ids.pop()
        except IndexError:
            return self._draw_span_ids()

    def _draw_roots(self) -> str:
        """Draw the ids of the next ``_DRAWN`` root spans at once, sampled by the
        rule, as traceparents; return one.  One random draw and one hex
        conversion for them all: a fraction of their cost one at a time, and off
        the path of the calls that take them.  (RandomIdGenerator draws each id
        from the same generator, uniformly: drawing ahead changes nothing of that.)"""
        assert self._rule is not None  # (only a rule decided in place draws ahead)
        bound = self._rule[1]
        on, off = _HEX2[self._root_flags | 1], _HEX2[self._root_flags]
        drawn = _getrandbits(192 * _DRAWN).to_bytes(24 * _DRAWN, "big").hex()
        if (bound > _TRACE_ID_LIMIT or bound == 0) and _ZERO16 not in drawn:
            # every id valid, one decision for all: formatted in one pass
            flag = on if bound else off
            roots = [f"00-{drawn[i : i + 32]}-{drawn[i + 32 : i + 48]}-{flag}" for i in range(0, 48 * _DRAWN, 48)]
        else:
            roots = []
            for i in range(0, 48 * _DRAWN, 48):
                trace_id, span_id = drawn[i : i + 32], drawn[i + 32 : i + 48]
                if trace_id == _ZERO16 * 2 or span_id == _ZERO16:
                    continue  # an invalid id (one chance in 2**64): never used
                if bound > _TRACE_ID_LIMIT:
                    flag = on
                elif bound == 0:
                    flag = off
                else:
                    flag = on if int(trace_id[16:], 16) < bound else off
                roots.append(f"00-{trace_id}-{span_id}-{flag}")
            if not roots:
                return self._draw_roots()
        mine = roots.pop()  # (the caller's own: hubs on other threads may share the rest)
        self._roots.extend(roots)
        return mine

    def _draw_span_ids(self) -> str:
        """Draw the next ``_DRAWN`` span ids at once, as hex; return one."""
        drawn = _getrandbits(64 * _DRAWN).to_bytes(8 * _DRAWN, "big").hex()
        span_ids = [d for d in (drawn[i : i + 16] for i in range(0, 16 * _DRAWN, 16)) if d != _ZERO16]
        if not span_ids:
            return self._draw_span_ids()
        mine = span_ids.pop()
        self._span_ids.extend(span_ids)
        return mine

    def _begin_asked(self, call: ActionCall) -> None:
        """``begin`` under a sampler that is asked (or ids from the provider's own
        generator): the opened span is kept by call id until it is recorded."""
        target = call.target
        span = self.open(f"{target.component}.{target.service}/{target.operation}", None)
        self._open[call.id] = span if span.recording else _SAMPLED_OUT
        ctx = call.context
        object.__setattr__(ctx, "traceparent", span.traceparent())
        if span.state:
            object.__setattr__(ctx, "tracestate", span.state.to_header() or None)

    def _opened(self, call: ActionCall) -> tuple[Any, Any, Any, Any] | None:
        """The span ``begin`` opened for ``call``, to record: ``(its SpanContext,
        its parent's or None, its kind, the sampler's attributes)``; None when
        there is nothing to record (sampled out).  A call admitted before tracing
        was enabled gets a span made now."""
        span: _Open | object | None
        if not self._drawn:
            span = self._open.pop(call.id, None)
        else:
            traceparent = call.context.traceparent
            if traceparent is None:
                span = None
            elif traceparent[-1] not in _SAMPLED_DIGITS:
                return None
            else:
                parent = self._parents.pop(call.id, None)
                if type(parent) is _Request:
                    parent = self._request_context(parent)
                context = self._context_of_traceparent(traceparent, parent.trace_state if parent is not None else None)
                return (context, parent, self._internal if parent is not None else self._server, None)
        if span is None:
            span = self.open(self._names(call.target)[0], self.SpanKind.SERVER)
        if not isinstance(span, _Open) or not span.recording:
            return None
        return (self.context_of(span), span.parent, span.kind, span.attributes)

    def finish_all(self, events: Sequence[CallFinished], form: Callable[[str], str]) -> None:
        """Record the spans of these calls (the engine's deferred listener)."""
        offset = wall_offset_ns()  # one reading for the batch: the clocks do not drift apart within it
        self._on_end = self._processor_end()
        for event in events:
            try:
                self._finish(event, form, offset)
            except Exception:  # noqa: BLE001 - a listener that raises is dropped; this one must stay
                pass

    def _processor_end(self) -> Callable[[Any], None]:
        """What ends a span: the provider's processor's ``on_end``, or, when it is the
        SDK's list of processors holding one, that one's (a frame fewer a span; read
        again each batch, so a processor added meanwhile is not missed)."""
        processor = self._processor
        held = getattr(processor, "_span_processors", None) if self._processors_held else None
        if isinstance(held, tuple) and len(held) == 1:
            end: Callable[[Any], None] = held[0].on_end
            return end
        whole: Callable[[Any], None] = processor.on_end
        return whole

    def _names(self, target: Any) -> tuple[str, str]:
        """The span name and ``rpc.service`` of a call to ``target`` (made once per target)."""
        names = self._named.get(target.text)
        if names is None:
            if len(self._named) >= 4096:
                self._named.clear()
            service = f"{target.component}.{target.service}"
            names = self._named[target.text] = (f"{service}/{target.operation}", service)
        return names

    def _finish(self, event: CallFinished, form_of: Callable[[str], str], offset: int) -> None:
        call, outcome = event.call, event.outcome
        opened = self._opened(call)
        if opened is None:  # sampled out
            return
        target = call.target
        name, service = self._names(target)
        context, parent, kind, sampler_attributes = opened
        start = offset + event.admitted_ns
        ctx = call.context
        attributes: dict[str, Any] = {
            "rpc.system.name": "cncf",
            "rpc.service": service,
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
        if sampler_attributes:
            attributes = {**sampler_attributes, **attributes}
        end = offset + event.ended_ns
        if not self.phases:
            if event.parked_ns is not None:
                attributes["cncf.wait_s"] = event.wait_ns / 1e9
            if event.executed_ns is not None:
                attributes["cncf.form"] = form_of(target.component)
                attributes["cncf.boundary.start_s"] = (event.executed_ns - event.admitted_ns) / 1e9
                attributes["cncf.boundary.duration_s"] = event.execution_ns / 1e9
            self._emit(name, context, parent, kind, attributes, status, exception, start, end)
            return
        if event.parked_ns is not None:
            at = offset + event.parked_ns
            self._child(context, "wait", self.SpanKind.INTERNAL, at, at + event.wait_ns, {})
        if event.executed_ns is not None:
            form = form_of(target.component)
            hop: dict[str, Any] = {"rpc.system.name": "cncf", "cncf.form": form}
            if obs is not None:
                hop["error.type"] = obs.code.value
            at = offset + event.executed_ns
            self._child(
                context,
                f"{target.component} {form} boundary",
                self.SpanKind.CLIENT,
                at,
                at + event.execution_ns,
                hop,
                status,
            )
        self._emit(name, context, parent, kind, attributes, status, exception, start, end)

    def instrument(self, hub: Any) -> Callable[[], None]:
        """Trace ``hub``'s calls (an AsyncHub, or an ActionEngine); the function that stops it."""
        engine = getattr(hub, "engine", hub)
        components = engine._components  # the hub's own mapping (normalized name -> Component)
        normalized: dict[str, str] = {}  # a call's component name -> its key there (made once)

        def form(name: str) -> str:
            key = normalized.get(name)
            if key is None:
                if len(normalized) >= 4096:
                    normalized.clear()
                key = normalized[name] = normalize(name)
            comp = components.get(key)
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
_DRAWN = 64  # ids drawn at once
_ZERO16 = "0" * 16  # an invalid span id, as hex (twice: an invalid trace id)
_SAMPLED_DIGITS = frozenset("13579bdf")  # a traceparent's last hex digit when its sampled flag is set
_getrandbits = random.getrandbits
_request_span = REQUEST.get
_set = object.__setattr__  # a field of the call's frozen context, completed in place (see begin)


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


def _env_exporter() -> tuple[Callable[[], Any] | None, str | None]:
    """The span exporter ``OTEL_TRACES_EXPORTER`` names, as its class (None when it
    names none), and why it cannot be had when it names one that cannot."""
    name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not name or name == "none":
        return None, None
    try:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
    except ImportError:
        return None, "OTEL_TRACES_EXPORTER is set, but opentelemetry-sdk is not installed (pip install 'cncf[otel]')"
    if name == "console":
        return ConsoleSpanExporter, None
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            return None, (
                "OTEL_TRACES_EXPORTER=otlp needs OpenTelemetry's OTLP/HTTP exporter "
                "(pip install opentelemetry-exporter-otlp-proto-http)"
            )
        return OTLPSpanExporter, None
    return None, (
        f"OTEL_TRACES_EXPORTER={name!r} is not one cncf sets up (console, otlp): "
        "set up a tracer provider before cncf starts (opentelemetry-instrument, or a wrapper) for any other"
    )


def unavailable() -> str | None:
    """Why ``OTEL_TRACES_EXPORTER`` asks for traces that cannot be made here, or None
    (for ``cncf serve`` to say, rather than serve untraced in silence)."""
    return _env_exporter()[1]


def install(hub: Any, tracer_provider: Any = None) -> Callable[[], None] | None:
    """``enable(hub, tracer_provider=...)`` (its earlier name, kept for ``cncf serve``;
    ``CNCF_TRACE_PHASES=1``: the phases as child spans)."""
    return enable(hub, tracer_provider=tracer_provider, phases=os.environ.get("CNCF_TRACE_PHASES") == "1")


__all__ = ["REQUEST", "current", "enable", "install", "unavailable"]

"""The served hub's HTTP requests, measured and traced: an ASGI middleware, outermost.

Every request — refused ones (401, 403, 404, 413, 415) included, since it sits
outside the Host guard — is counted in ``http_server_request_duration_seconds``
by method, route template and status, timed on ``time.perf_counter_ns`` from
its arrival to its last byte.  The route is the template of :data:`ROUTES`
the path matches (``/rest/v1/{component}/{operation}``, never the raw path,
whose cardinality is the caller's to choose), or ``""`` when none does.

With telemetry on (``cncf.telemetry``), each request is also a SERVER span
``{method} {route}`` that continues the trace of an incoming ``traceparent``
and is the current span while the request runs, so the call it makes is its
child.  A plain ASGI callable: no ``BaseHTTPMiddleware`` (which costs a task
and a stream per request).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cncf.engine.events import wall_offset_ns
from cncf.telemetry import TRACING as _TRACING

if TYPE_CHECKING:
    from cncf.receptions.http.metrics import HubMetrics

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
_CACHE_MAX = 4096


class Observed:
    """The middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: HubMetrics) -> None:
        from cncf.receptions.http.app import ROUTES

        self.app = app
        self.metrics = metrics
        templates = list(dict.fromkeys(r.path for r in ROUTES))
        self._routes: list[tuple[re.Pattern[str], str]] = [(compile_path(t)[0], t) for t in templates]
        self._route_of: dict[str, str] = {}

    def route(self, path: str) -> str:
        """The route template ``path`` matches, or ``""``."""
        found = self._route_of.get(path)
        if found is None:
            found = next((t for regex, t in self._routes if regex.match(path)), "")
            if len(self._route_of) >= _CACHE_MAX:
                self._route_of.clear()
            self._route_of[path] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter_ns()
        status = 500  # unless a response starts
        method = scope["method"] if scope["method"] in _METHODS else "_OTHER"

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if not _TRACING:  # the common case, kept short: a few microseconds a request count
            try:
                await self.app(scope, receive, send_status)
            finally:
                path = scope["path"]
                self.metrics.on_http(
                    method, self._route_of.get(path) or self.route(path), status, time.perf_counter_ns() - t0
                )
            return
        await self._traced(_TRACING[-1], scope, receive, send_status, t0, method, lambda: status)

    async def _traced(
        self, tracing: Any, scope: Scope, receive: Receive, send: Send, t0: int, method: str, status: Any
    ) -> None:
        offset = wall_offset_ns()
        route = self.route(scope["path"])
        span = tracing.open(
            f"{method} {route}" if route else method,
            tracing.SpanKind.SERVER,
            tracing.extract(scope["headers"]),
            offset + t0,
        )
        token = tracing.context.attach(tracing.current(span))  # the call's span is its child
        failure: tuple[tuple[str, dict[str, Any], int], ...] = ()
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            failure = (
                (
                    "exception",
                    {"exception.type": type(exc).__qualname__, "exception.message": str(exc)},
                    time.time_ns(),
                ),
            )
            raise
        finally:
            tracing.context.detach(token)
            code = status()
            end = time.perf_counter_ns()
            self.metrics.on_http(method, route, code, end - t0)
            if span.recording:
                attributes: dict[str, Any] = {
                    "http.request.method": method,
                    "url.path": scope["path"],
                    "url.scheme": scope.get("scheme", "http"),
                    "network.protocol.version": scope.get("http_version", "1.1"),
                    "http.response.status_code": code,
                }
                if route:
                    attributes["http.route"] = route
                error = None
                if code >= 500:  # a 4xx is the client's
                    attributes["error.type"] = str(code)
                    error = tracing.Status(tracing.StatusCode.ERROR)
                tracing.record(span, offset + end, attributes, error, failure)


__all__ = ["Observed"]

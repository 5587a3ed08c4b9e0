"""The served hub's HTTP requests, measured and traced.

Every request — refused ones (401, 403, 404, 413, 415) included, since the
outermost layer (the Host guard) measures it before any check — is counted in
``http_server_request_duration_seconds`` by method, route template and status,
timed on ``time.perf_counter_ns`` from its arrival to its last byte.  The route
is the template of :data:`ROUTES` the path matches
(``/rest/v1/{component}/{operation}``, never the raw path, whose cardinality is
the caller's to choose), or ``""`` when none does.

With telemetry on (``cncf.telemetry``), each request is also a SERVER span
``{method} {route}`` that continues the trace of an incoming ``traceparent``
and is the parent of the calls made while the request runs (handed to them by
:meth:`cncf.telemetry._Tracing.enter`).  Not a middleware of its own: the guard calls :meth:`Observed.done` after
its checks and answer (telemetry off), or runs them inside
:meth:`Observed.traced` (telemetry on), which learns the status from their
return value; a layer would cost a coroutine frame and a ``send`` wrapper on
every request (~4 µs of ~100).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from cncf.engine.events import wall_offset_ns

if TYPE_CHECKING:
    from cncf.receptions.http.metrics import HubMetrics

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
_CACHE_MAX = 4096


#: The status a page's answer started with, kept in the request's scope: a request that
#: fails after its answer started is measured with it.
ANSWERED = "cncf.answered"


class Observed:
    """The measurement (see the module docstring)."""

    def __init__(self, metrics: HubMetrics, told_soon: Callable[[], bool] | None = None) -> None:
        from cncf.receptions.http.app import ROUTES

        self.metrics = metrics
        templates = list(dict.fromkeys(r.path for r in ROUTES))
        self._routes: list[tuple[re.Pattern[str], str]] = [(compile_path(t)[0], t) for t in templates]
        self._route_of: dict[str, str] = {}
        # (method, path, status) -> its histogram: one lookup a request (bounded as the route cache)
        self._hist_of: dict[tuple[str, str, int], Any] = {}
        # Whether the hub's deferred listeners will be told soon (the reception's hub):
        # then a request's span is recorded with them, in their batch (see flush).
        self.told_soon = told_soon if told_soon is not None else _never
        self._pending: list[tuple[Any, Any, int, str, Scope, int, Any]] = []

    def route(self, path: str) -> str:
        """The route template ``path`` matches, or ``""``."""
        found = self._route_of.get(path)
        if found is None:
            found = next((t for regex, t in self._routes if regex.match(path)), "")
            if len(self._route_of) >= _CACHE_MAX:
                self._route_of.clear()
            self._route_of[path] = found
        return found

    def done(self, method: str, path: str, status: int, t0: int) -> None:
        """A request ended with ``status``; it began at ``t0`` (``perf_counter_ns``)."""
        ns = time.perf_counter_ns() - t0
        key = (method, path, status)
        hist = self._hist_of.get(key)
        if hist is None:
            if len(self._hist_of) >= _CACHE_MAX:
                self._hist_of.clear()
            hist = self._hist_of[key] = self.metrics.http_histogram(
                method if method in _METHODS else "_OTHER", self.route(path), status
            )
        hist.observe(ns / 1e9)

    async def traced(
        self,
        tracing: Any,
        handle: Callable[[Scope, Receive, Send], Awaitable[int]],
        scope: Scope,
        receive: Receive,
        send: Send,
        t0: int,
    ) -> None:
        """Run ``handle`` (the guard's checks and answer, which returns the status)
        for this request inside its SERVER span; it began at ``t0`` (``perf_counter_ns``)."""
        status = 500  # unless a response starts
        method, path = scope["method"], scope["path"]
        route = self.route(path)
        name = method if method in _METHODS else "_OTHER"
        span = tracing.open_request(f"{name} {route}" if route else name, scope["headers"], t0)
        token = tracing.enter(span)  # the call's span is its child
        failure: tuple[tuple[str, dict[str, Any], int], ...] = ()
        try:
            status = await handle(scope, receive, send)
        except BaseException as exc:
            status = scope.get(ANSWERED, 500)
            failure = (
                (
                    "exception",
                    {"exception.type": type(exc).__qualname__, "exception.message": str(exc)},
                    time.perf_counter_ns(),
                ),
            )
            raise
        finally:
            tracing.leave(token)
            end = time.perf_counter_ns()
            self.done(method, path, status, t0)
            if span.recording:
                done = (tracing, span, end, route, scope, status, failure)
                if self.told_soon():  # the request made a call: its span is recorded with the call's, later
                    self._pending.append(done)
                else:
                    self._record(wall_offset_ns(), *done)

    def flush(self) -> None:
        """Record the spans of the requests that ended since the last flush (told
        with the calls they made: a batch, warm, off the requests' path)."""
        pending = self._pending
        if pending:
            self._pending = []
            offset = wall_offset_ns()  # one reading for the batch: the clocks do not drift apart within it
            for done in pending:
                self._record(offset, *done)

    @staticmethod
    def _record(
        offset: int, tracing: Any, span: Any, end: int, route: str, scope: Scope, status: int, failure: Any
    ) -> None:
        method = scope["method"]
        attributes: dict[str, Any] = {
            "http.request.method": method if method in _METHODS else "_OTHER",
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
            "http.response.status_code": status,
        }
        if route:
            attributes["http.route"] = route
        error = None
        if status >= 500:  # a 4xx is the client's
            attributes["error.type"] = str(status)
            error = tracing.Status(tracing.StatusCode.ERROR)
        tracing.record(span, end, attributes, error, failure, offset)


def _never() -> bool:
    return False


__all__ = ["ANSWERED", "Observed"]

"""The HTTP reception: a Starlette app over the public ``AsyncHub`` API.

A reception like the CLI: a request becomes a selector, arguments and a
deadline; the app awaits ``hub.call`` and renders the Outcome as the CLI's
``--json`` object, with the status from :mod:`.status`.  Routes are data
(:data:`ROUTES`: method, path, level of trust, handler name); operation paths
resolve through the engine's selector rules, so ``/rest/v1/Counter/incr-ement``
finds ``counter.increment`` exactly as ``hub.call`` would.  Refused requests
(401, 403, 404, 413, 415) are Observations too.

The request path is kept lean — no per-request validation layer, no
``BaseHTTPMiddleware`` — since the benchmark holds it to 1.3× a bare
Starlette echo app.  An outermost guard turns an unexpected error of the
reception itself into an ``internal_error`` Observation (500).
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cncf.engine.events import CallFinished
from cncf.failures import internal_error
from cncf.hub import AsyncHub, ComponentHandle
from cncf.observation import Code, Observation, Stage
from cncf.outcome import Outcome
from cncf.receptions.http import observe, openapi
from cncf.receptions.http.answers import (
    Answer,
    Raw,
    RecentObservations,
    answer,
    cli_value,
    json_response,
    outcome_body,
    refused,
    send_answer,
)
from cncf.receptions.http.auth import CSP_PAGE, CSP_TOKEN_PAGE, TOKEN_PAGE, XSRF_HEADER, Level, Trust, media_type
from cncf.receptions.http.console import ConsoleData, span_and_step
from cncf.receptions.http.metrics import CONTENT_TYPE, HubMetrics, refused_labels
from cncf.receptions.http.status import status_of
from cncf.telemetry import TRACING as _TRACING

DASHBOARD = Path(__file__).parent / "dashboard"
MAX_BODY = 8 * 1024 * 1024
MAX_WAIT = 300.0
MAX_JOBS = 10_000
_ALIVE = ("ready", "busy")
# the headers read for every request, in one pass over them (the guard's)
_HEADERS = frozenset(
    {
        b"host",
        b"origin",
        b"sec-fetch-site",
        b"authorization",
        b"content-length",
        b"content-type",
        b"x-cncf-timeout",
        b"x-correlation-id",
        b"idempotency-key",
        b"x-cncf-call-id",
        b"transfer-encoding",
    }
)
_SAFE_METHODS = frozenset({"GET", "HEAD"})
# the peer is another local user (set by the serving protocol: see peers.py)
FOREIGN = "cncf.foreign_peer"
# on every page: no frame may hold it, nothing from elsewhere, no inline script
_PAGE_HEADERS = (
    (b"content-security-policy", CSP_PAGE.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    level: Level
    handler: str  # a method of Reception


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/rest/v1/{component}/{service}/{operation}", Level.READ, "call"),
    RouteSpec("GET", "/rest/v1/{component}/{service}/{operation}", Level.READ, "call"),
    RouteSpec("GET", "/rest/v1/openapi.json", Level.READ, "openapi_json"),
    RouteSpec("GET", "/rest/v1/docs", Level.READ, "openapi_page"),
    RouteSpec("POST", "/rest/v1/{component}/{operation}", Level.READ, "call"),
    RouteSpec("GET", "/rest/v1/{component}/{operation}", Level.READ, "call"),
    RouteSpec("GET", "/hub/v1/components", Level.READ, "components"),
    RouteSpec("POST", "/hub/v1/components", Level.ADMIN, "load"),
    RouteSpec("GET", "/hub/v1/components/{name}", Level.READ, "inspect"),
    RouteSpec("DELETE", "/hub/v1/components/{name}", Level.ADMIN, "unload"),
    RouteSpec("POST", "/hub/v1/components/{name}/reload", Level.ADMIN, "reload"),
    RouteSpec("POST", "/hub/v1/components/{name}/upgrade", Level.ADMIN, "upgrade"),
    RouteSpec("GET", "/hub/v1/jobs", Level.READ, "jobs"),
    RouteSpec("GET", "/hub/v1/jobs/{id}", Level.READ, "job"),
    RouteSpec("POST", "/hub/v1/jobs/{id}/cancel", Level.READ, "cancel_job"),
    RouteSpec("POST", "/hub/v1/calls/{id}/cancel", Level.READ, "cancel_call"),
    RouteSpec("GET", "/hub/v1/observations", Level.READ, "observations"),
    RouteSpec("GET", "/hub/v1/console", Level.READ, "console"),
    RouteSpec("GET", "/hub/v1/console/{name}", Level.READ, "console_page"),
    RouteSpec("GET", "/healthz", Level.OPEN, "healthz"),
    RouteSpec("GET", "/readyz", Level.READ, "readyz"),
    RouteSpec("GET", "/metrics", Level.READ, "scrape"),
    RouteSpec("GET", "/", Level.READ, "dashboard"),
    RouteSpec("GET", "/dashboard/{file}", Level.READ, "asset"),
)


class Reception:
    """One serving hub's HTTP face."""

    def __init__(
        self, hub: AsyncHub, trust: Trust, *, max_body: int = MAX_BODY, refused_entries: list[Observation] | None = None
    ) -> None:
        self.hub = hub
        self.trust = trust
        self.max_body = max_body
        self.metrics = HubMetrics()
        self.recent = RecentObservations()
        self.draining = False
        self.started = time.time()
        self._openapi = openapi.OpenApiCache()
        self._ran: dict[str, bool] = {}  # failed HTTP calls the engine reported (see _render)
        for obs in refused_entries or ():
            self.recent.add(obs)
        # the console's series, failures and state history, fed by this reception's listener
        self.console_data = ConsoleData(hub, subscribe=False)
        # after the callers have their Outcomes, in batches: whoever reads calls _told() first
        engine = hub.engine
        # each request measured (and traced: its span told with the calls it made)
        self.observed = observe.Observed(self.metrics, told_soon=engine.telling_soon)
        self._unsubscribe = engine.subscribe_deferred(self._on_calls)
        self._call_level_needs_token = trust.needs_token(Level.READ)
        self._index: str | None = None

    def _on_calls(self, events: Sequence[CallFinished]) -> None:
        self.observed.flush()  # the spans of the requests that made these calls
        self.metrics.on_calls(events)
        self.console_data.on_calls(events)
        for event in events:
            obs = event.outcome.observation
            if obs is not None:
                if event.call.context.caller == "http":
                    self._ran[event.call.id] = True  # _render pops it: this failure was counted here
                self.recent.add(obs)

    def _told(self) -> None:
        """Every finished call told to the metrics, the console and the recent
        failures (the listener is deferred): before any of them is read."""
        self.hub.engine.drain()

    def close(self) -> None:
        self._unsubscribe()
        self.observed.flush()
        self.console_data.close()

    # ------------------------------------------------------------ the app

    def app(self) -> ASGIApp:
        routes = [
            Route(r.path, _CallApp(self) if r.handler == "call" else self._endpoint(r), methods=[r.method])
            for r in ROUTES
        ]
        app = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error, Exception: self._crash})
        return _HostGuard(app, self, self.observed)

    def _endpoint(self, spec: RouteSpec) -> Callable[[Request], Awaitable[Response]]:
        handler: Callable[[Request], Awaitable[Response]] = getattr(self, spec.handler)
        level, trust = spec.level, self.trust

        if level is Level.OPEN:

            async def open_endpoint(request: Request) -> Response:
                return await handler(request)

            return open_endpoint

        from_query = spec.handler == "dashboard"  # a browser's first visit: /?token=TOKEN sets the cookie
        mutating = spec.method not in _SAFE_METHODS

        async def endpoint(request: Request) -> Response:
            foreign = bool(request.scope.get(FOREIGN))
            if not foreign and not trust.needs_token(level):
                return await handler(request)
            headers = request.headers
            obs = trust.check_token(
                level,
                headers.get("authorization"),
                headers.get("cookie"),
                request.query_params.get("token") if from_query else None,
                xsrf=headers.get(XSRF_HEADER),
                mutating=mutating,
                foreign=foreign,
            )
            if obs is not None:
                obs = obs.with_context(target=f"{request.method} {request.url.path}")
                if from_query and "text/html" in headers.get("accept", ""):
                    self.recent.add(obs)  # still a refusal (401), in a form a person can answer
                    return HTMLResponse(
                        TOKEN_PAGE,
                        401,
                        {"x-cncf-observation-code": obs.code.value, "content-security-policy": CSP_TOKEN_PAGE},
                    )
                return self._refusal(obs)
            return await handler(request)

        return endpoint

    def _refuse(self, obs: Observation) -> Answer:
        self.recent.add(obs)
        return refused(obs)

    def _refusal(self, obs: Observation) -> Response:
        return Raw(self._refuse(obs))

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        where = f"{request.method} {request.url.path}"
        allowed = self._allowed(request.url.path) if status == 405 else []
        if allowed:  # the path exists, not with this method: 405 and Allow
            obs = Observation.of(
                Code.ROUTE_NOT_FOUND,
                f"{request.url.path} does not answer {request.method}; it answers {', '.join(allowed)}",
                stage=Stage.RECEPTION,
                target=where,
                method=request.method,
                allowed=allowed,
            )
            self.recent.add(obs)
            _, headers, body = refused(obs)
            headers.append((b"allow", ", ".join(allowed).encode()))
            return Raw((405, headers, body))
        if status in (404, 405):
            obs = Observation.of(
                Code.ROUTE_NOT_FOUND,
                f"no route {where}; operations are at POST|GET /rest/v1/COMPONENT[/SERVICE]/OPERATION "
                "(see /rest/v1/openapi.json)",
                stage=Stage.RECEPTION,
                target=where,
                routes=[f"{r.method} {r.path}" for r in ROUTES],
            )
        else:
            obs = Observation.of(
                Code.INTERNAL_ERROR,
                f"the HTTP reception failed on {where}: {exc!r}",
                stage=Stage.RECEPTION,
                target=where,
            )
        return self._refusal(obs)

    def _allowed(self, path: str) -> list[str]:
        """The methods ``path`` answers (an operation's: POST, and GET / HEAD when declared safe)."""
        methods: set[str] = set()
        for r, regex in _COMPILED:
            m = regex.match(path)
            if m is None:
                continue
            if r.handler == "call":
                p = m.groupdict()
                selector = ".".join(v for k in ("component", "service", "operation") if (v := p.get(k)))
                methods.add("POST")
                if self._get_refusal(selector, quiet=True) is None:
                    methods.add("GET")
            else:
                methods.add(r.method)
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)

    async def _crash(self, request: Request, exc: Exception) -> Response:
        """The outermost guard (Starlette's ServerErrorMiddleware): still an Observation."""
        where = f"{request.method} {request.url.path}"
        return self._refusal(
            internal_error(exc, f"the HTTP reception failed on {where}", stage=Stage.RECEPTION, target=where)
        )

    # ----------------------------------------------------------------- calls

    async def _body(self, receive: Receive, length: str | None) -> bytes | Observation:
        """The whole request body, or ``body_too_large`` (checked as it arrives)."""
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return self._too_large(int(length))
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return self._too_large(len(body))
        return body

    def _payload(self, body: bytes, content_type: str) -> Any:
        """A call's arguments from its JSON body (object, array, or nothing), or ``body_not_json``."""
        if not body.strip():
            return None
        try:
            value = json.loads(body.decode("utf-8"))
            if value is None:  # (nothing is no body; a JSON null is no arguments list)
                return Observation.of(
                    Code.INVALID_ARGUMENTS,
                    "the body is JSON null; send a JSON object (named arguments), an array (positional) or nothing",
                    stage=Stage.DISPATCH,
                )
            return value
        except RecursionError:
            return _too_deep("the body")
        except (ValueError, UnicodeDecodeError) as exc:
            return Observation.of(
                Code.BODY_NOT_JSON,
                f"the body is not JSON ({exc}); send a JSON object (named arguments), an array (positional) or nothing",
                stage=Stage.RECEPTION,
                content_type=content_type,
            )

    async def _arguments(self, request: Request) -> Any:
        """The JSON body of an admin request, or an Observation refusing it."""
        body = await self._body(request.receive, request.headers.get("content-length"))
        if isinstance(body, Observation):
            return body
        return self._payload(body, request.headers.get("content-type", ""))

    def _too_large(self, size: int) -> Observation:
        return Observation.of(
            Code.BODY_TOO_LARGE,
            f"the body has {size} bytes, more than this hub's limit of {self.max_body}",
            stage=Stage.RECEPTION,
            limit=self.max_body,
            size=size,
        )

    async def asgi_call(self, scope: Scope, receive: Receive, send: Send, found: dict[bytes, str]) -> int:
        """The operation routes, as a plain ASGI app (the hot path: no Request or
        Response objects; ``found``: the headers the guard read in its one pass);
        the answer's status.  The token comes as ``Authorization: Bearer`` only:
        a browser's cookie never runs an operation."""
        p = scope["path_params"]
        parts = [p["component"], p["service"], p["operation"]] if "service" in p else [p["component"], p["operation"]]
        selector = ".".join(parts)
        foreign = FOREIGN in scope
        if self._call_level_needs_token or foreign:
            obs = self.trust.check_token(Level.READ, found.get(b"authorization"), foreign=foreign)
            if obs is not None:
                return await send_answer(send, self._refuse(obs.with_context(target=selector)))
        if selector.count(".") != len(parts) - 1 or not all(parts):  # a '.' or an empty segment
            return await send_answer(
                send,
                self._refuse(
                    Observation.of(
                        Code.ROUTE_NOT_FOUND,
                        f"path segments may not contain '.': {scope['path']}",
                        stage=Stage.RECEPTION,
                        target=selector,
                    )
                ),
            )
        safe = scope["method"] != "POST"  # GET, and HEAD (Starlette's GET routes take it too)
        if safe:
            refusal = self._get_refusal(selector)
            if refusal is not None:
                return await send_answer(send, refusal)
        query = scope.get("query_string") or b""
        params = dict(urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {}
        args: Any
        try:
            if safe:
                args = self._query_args(selector, params)
            else:
                body = await self._body(receive, found.get(b"content-length"))
                args = body if isinstance(body, Observation) else self._payload(body, found.get(b"content-type", ""))
            raw_timeout = params.get("timeout") if "timeout" in params else found.get(b"x-cncf-timeout")
            # as the CLI's values: JSON when it parses; the engine names a bad one (invalid_policy)
            timeout = _timeout(cli_value(raw_timeout)) if raw_timeout is not None else None
        except RecursionError:
            args = _too_deep("a query value")
        if isinstance(args, Observation):
            return await send_answer(send, self._refuse(args.with_context(target=selector)))
        if isinstance(timeout, Observation):
            return await send_answer(send, self._refuse(timeout.with_context(target=selector)))
        if self.draining:
            outcome = Outcome.failure(
                Observation.of(Code.HUB_CLOSED, "the hub is shutting down and admits no new call", target=selector)
            )
        else:
            outcome = await self.hub.call(
                selector,
                args,
                timeout=timeout,
                caller="http",
                correlation_id=found.get(b"x-correlation-id"),
                idempotency_key=found.get(b"idempotency-key"),
                call_id=found.get(b"x-cncf-call-id") or None,
            )
        if outcome.queued and outcome.observation is None and outcome.job_id is not None:
            return await send_answer(send, await self._render_queued(outcome.job_id, outcome.call_id))
        return await send_answer(send, self._render(outcome, selector))

    def _query_args(self, selector: str, params: dict[str, str]) -> dict[str, Any] | None:
        """A GET's named arguments: a value read as the CLI reads one (JSON when it parses), but
        as text for a parameter typed as text (the OpenAPI document's query schema)."""
        try:
            info = self.hub.engine.entry(selector).info.params or ()
        except Exception:  # noqa: BLE001 - the call itself answers with the dispatch Observation
            info = ()
        text = {p.name for p in info if (p.schema or {}).get("type") == "string"}
        return {k: v if k in text else cli_value(v) for k, v in params.items() if k != "timeout"} or None

    def _get_refusal(self, selector: str, quiet: bool = False) -> Answer | None:
        """A GET runs an operation only when it is declared safe to (``http_get
        = true``): an ``<img>`` or a link cannot run anything.  An unknown
        selector is left to the call (its own 404)."""
        try:
            entry = self.hub.engine.entry(selector)
        except Exception:  # noqa: BLE001 - the call itself answers with the dispatch Observation
            return None
        if entry.policy.http_get:
            return None
        obs = Observation.of(
            Code.ROUTE_NOT_FOUND,
            f"{selector!r} is not declared safe to run on GET; call it with POST and a JSON body "
            "(or declare http_get = true for it in its manifest)",
            stage=Stage.RECEPTION,
            target=selector,
            method="GET",
            allowed=["POST"],
        )
        if not quiet:
            self.recent.add(obs)
        status, headers, body = refused(obs)
        headers.append((b"allow", b"POST"))
        return 405, headers, body  # the method, not the route: the one status decided here

    def _render(self, outcome: Outcome, selector: str = "") -> Answer:
        obs = outcome.observation
        if obs is not None:
            self._told()
            if self._ran.pop(outcome.call_id, None) is None:
                # refused before the engine ran it (dispatch, a failed component): no event came
                self.metrics.on_refused(outcome, refused_labels(self.hub, selector))
                self.recent.add(obs)
            headers = {"x-cncf-call-id": outcome.call_id or obs.call_id, "x-cncf-observation-code": obs.code.value}
            if outcome.generation is not None:
                headers["x-cncf-generation"] = str(outcome.generation)
            return answer(outcome_body(outcome), status_of(obs), headers)
        if outcome.generation is not None:  # which generation of the component served it
            return answer(
                outcome_body(outcome),
                200,
                {"x-cncf-call-id": outcome.call_id, "x-cncf-generation": str(outcome.generation)},
            )
        return answer(outcome_body(outcome), 200, {"x-cncf-call-id": outcome.call_id})

    async def _render_queued(self, job_id: str, call_id: str) -> Answer:
        """202 and where to find the job (a queue-policy call accepted)."""
        state = "queued"
        try:
            job = await self.hub.job(job_id)
            state = job.state.value
            self.metrics.on_queued(job.component, job.target)  # a submission is no finished call: no event
        except Exception:  # noqa: BLE001 - the job id is the answer; its state is a courtesy
            pass
        return answer(
            {"ok": True, "job": {"id": job_id, "state": state}},
            202,
            {"x-cncf-call-id": call_id, "location": f"/hub/v1/jobs/{job_id}"},
        )

    # ------------------------------------------------------------- OpenAPI

    def _document(self) -> tuple[dict[str, Any], bytes]:
        from cncf import __version__

        handles = self.hub.components()
        key = tuple((id(h), h.state, len(h.operations)) for h in handles)
        return self._openapi.get(
            key,
            lambda: openapi.build(
                (self._inspect(h.name) for h in handles if h.operations),
                __version__,
                read_needs_token=self._call_level_needs_token,
            ),
        )

    async def openapi_json(self, request: Request) -> Response:
        return Response(self._document()[1], media_type="application/json")

    async def openapi_page(self, request: Request) -> Response:
        return HTMLResponse(openapi.render_html(self._document()[0]))

    # ---------------------------------------------------------- components

    def _inspect(self, name: str) -> dict[str, Any]:
        return self.hub.inspect(name)

    def summary(self, name: str) -> dict[str, Any]:
        """One row of the components list (the dashboard's row)."""
        d = self._inspect(name)
        health = d.get("health") or {}
        ops = [f"{s}.{o}" for s, v in (d.get("services") or {}).items() for o in v]
        return {k: d.get(k) for k in ("name", "form", "state", "artifact", "entry", "observation")} | {
            "pid": health.get("pid"),
            "alive": health.get("alive"),
            "rss_kb": health.get("rss_kb"),
            "restarts": (d.get("restart") or {}).get("restarts", 0),
            "calls": d.get("calls"),
            "cancellations": d.get("cancellations") or {},
            "operations": ops,
            "generation": d.get("generation"),
            "replicas": [
                {k: r.get(k) for k in ("index", "state", "pid", "node", "calls", "restarts")}
                for r in d.get("replicas") or ()
            ],
        }

    async def components(self, request: Request) -> Response:
        return json_response({"components": [self.summary(h.name) for h in self.hub.components()]})

    def _unknown(self, name: str) -> Response:
        names = sorted(h.name for h in self.hub.components())
        return self._refusal(
            Observation.of(
                Code.UNKNOWN_COMPONENT,
                f"no component {name!r} is loaded; loaded: {', '.join(names) or 'none'}",
                target=name,
                candidates=names,
            )
        )

    async def inspect(self, request: Request) -> Response:
        name = request.path_params["name"]
        if self.hub.component(name) is None:
            return self._unknown(name)
        return json_response(self._inspect(name))

    async def load(self, request: Request) -> Response:
        parsed = await self._target_body(request, "load", required=True)
        if isinstance(parsed, Response):
            return parsed
        target, overrides = parsed
        assert target is not None
        handle = await self.hub.load(target, **overrides)
        refused = refusal_of(handle)
        if refused is not None:  # not loaded: nothing is left under that name
            await self.hub.unload(handle.name)
            return self._refusal(refused)
        info = self._inspect(handle.name) if self.hub.component(handle.name) is not None else handle.describe()
        return self._admin_answer(handle, info, 201, {"Location": f"/hub/v1/components/{handle.name}"})

    @staticmethod
    def _admin_answer(
        handle: ComponentHandle, info: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        """A load, reload or upgrade's answer: the component, or ``{"ok": false,
        "observation": …}`` with the status table's status when it failed."""
        o = handle.observation
        if o is not None and handle.state == "failed":
            return json_response(
                {"ok": False, "observation": o.to_dict(), "component": info},
                status_of(o),
                {"X-Cncf-Observation-Code": o.code.value},
            )
        return json_response({"ok": True, "component": info}, status, headers)

    async def unload(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not await self.hub.unload(name):
            return self._unknown(name)
        return json_response({"ok": True, "unloaded": name})

    async def reload(self, request: Request) -> Response:
        name = request.path_params["name"]
        if self.hub.component(name) is None:
            return self._unknown(name)
        handle = await self.hub.reload(name)
        info = self._inspect(handle.name)
        return self._admin_answer(handle, info)

    async def _target_body(
        self, request: Request, route: str, *, required: bool
    ) -> Response | tuple[str | None, dict[str, Any]]:
        """A load or upgrade body, ``{"target": PATH, ...manifest overrides}`` (the
        whole body optional for an upgrade): (target, overrides), or the refusal."""
        body = await self._arguments(request)
        if isinstance(body, Observation):
            return self._refusal(body)
        if body is None and not required:
            body = {}
        if not isinstance(body, dict) or not isinstance(body.get("target", None if required else ""), str):
            shape = '{"target": PATH, ...manifest overrides}'
            return self._refusal(
                Observation.of(
                    Code.INVALID_ARGUMENTS,
                    f"the body must be a JSON object {shape}"
                    if required
                    else f"the body must be empty or a JSON object {shape}",
                    stage=Stage.DISPATCH,
                    target=route,
                )
            )
        return body.get("target"), {k: v for k, v in body.items() if k != "target"}

    async def upgrade(self, request: Request) -> Response:
        """A new generation beside the old (body: optional ``{"target": ..., overrides}``);
        a rollback answers ``{"ok": false, "observation": ...}`` (the old one serves on)."""
        name = request.path_params["name"]
        if self.hub.component(name) is None:
            return self._unknown(name)
        parsed = await self._target_body(request, "upgrade", required=False)
        if isinstance(parsed, Response):
            return parsed
        target, overrides = parsed
        handle = await self.hub.upgrade(name, target, **overrides)
        info = self._inspect(name)
        return self._admin_answer(handle, info)

    # ----------------------------------------------------------------- jobs

    async def jobs(self, request: Request) -> Response:
        q = request.query_params
        filters: dict[str, Any] = {}
        if q.get("state"):
            filters["state"] = q["state"]
        if q.get("component"):
            filters["component"] = q["component"]
        limit = q.get("limit", "100")
        if not limit.isdigit() or filters.get("state") not in (None, *_JOB_STATES):
            return self._refusal(
                Observation.of(
                    Code.INVALID_ARGUMENTS,
                    f"state must be one of {', '.join(_JOB_STATES)} and limit a whole number",
                    target="jobs",
                )
            )
        filters["limit"] = min(int(limit), MAX_JOBS)  # (a 30-digit limit would overflow SQLite)
        from cncf.jobs import JobStoreError

        try:
            jobs = await self.hub.jobs(**filters)
        except JobStoreError as exc:  # never "no jobs"
            return self._refusal(exc.observation)
        return json_response({"jobs": [j.to_dict() for j in jobs]})

    async def _job(self, job_id: str) -> Response:
        from cncf.outcome import ObservationError

        try:
            job = await self.hub.job(job_id)
        except ObservationError as exc:
            return self._refusal(exc.observation)
        return json_response(job.to_dict())

    async def job(self, request: Request) -> Response:
        job_id = request.path_params["id"]
        wait = request.query_params.get("wait")
        if wait:
            try:
                seconds = min(MAX_WAIT, max(0.0, float(wait)))
            except ValueError:
                return self._refusal(
                    Observation.of(Code.INVALID_ARGUMENTS, f"wait must be seconds, got {wait!r}", target=job_id)
                )
            await self.hub.wait(job_id, seconds)
        return await self._job(job_id)

    async def cancel_job(self, request: Request) -> Response:
        job_id = request.path_params["id"]
        resp = await self._job(job_id)
        if resp.status_code != 200:
            return resp
        cancelled = await self.hub.cancel_job(job_id)
        job = (await self.hub.job(job_id)).to_dict()
        return json_response({"ok": True, "cancelled": cancelled, "job": job})

    async def cancel_call(self, request: Request) -> Response:
        return json_response({"ok": True, "cancelled": self.hub.cancel(request.path_params["id"])})

    async def observations(self, request: Request) -> Response:
        self._told()
        return json_response({"groups": self.recent.grouped(), "recent": list(self.recent.ring)[-50:][::-1]})

    async def console(self, request: Request) -> Response:
        window = span_and_step(request.query_params)
        if window is None:
            return self._refusal(_bad_window())
        self._told()
        return json_response(self.console_data.overview(span=window[0], step=window[1]))

    async def console_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        window = span_and_step(request.query_params)
        if window is None:
            return self._refusal(_bad_window())
        if self.hub.component(name) is None:
            return self._unknown(name)
        self._told()
        return json_response(self.console_data.page(name, span=window[0], step=window[1]))

    # ----------------------------------------------------------- health

    async def healthz(self, request: Request) -> Response:
        if self.draining:
            return json_response({"ok": False, "serving": False, "draining": True}, 503)
        return json_response(
            {
                "ok": True,
                "serving": True,
                "components": len(self.hub.components()),
                "uptime": round(time.time() - self.started, 3),
            }
        )

    async def readyz(self, request: Request) -> Response:
        not_ready = [{"name": h.name, "state": h.state} for h in self.hub.components() if h.state not in _ALIVE]
        if not_ready or self.draining:
            return json_response({"ok": False, "not_ready": not_ready, "draining": self.draining}, 503)
        return json_response({"ok": True, "components": len(self.hub.components())})

    async def scrape(self, request: Request) -> Response:
        self._told()
        self.metrics.refresh(self.hub)
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    # --------------------------------------------------------- dashboard

    async def dashboard(self, request: Request) -> Response:
        token = request.query_params.get("token")
        if token is not None and self.trust.accepts(token):
            # keep the token out of the address bar and the history: a cookie, then a clean URL.
            # Host-only (no Domain), HttpOnly, SameSite=Strict, its name carrying the port
            response = Response(status_code=303, headers={"location": "/"})
            response.set_cookie(self.trust.cookie, token, httponly=True, samesite="strict", path="/")
            return response
        if self._index is None:
            self._index = (DASHBOARD / "index.html").read_text("utf-8")
        # the anti-forgery value, for the page's own script (a page of another origin cannot read it)
        page = self._index.replace("{{xsrf}}", self.trust.xsrf)
        return HTMLResponse(page)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["file"]
        path = DASHBOARD / name
        if name not in _ASSETS or not path.is_file():
            raise HTTPException(404)
        return FileResponse(path, media_type=_ASSETS[name])


def refusal_of(handle: ComponentHandle) -> Observation | None:
    """The hub's refusal to load a form it was not asked for (``form_not_allowed``), if that is why it failed."""
    obs = handle.observation
    if handle.state == "failed" and obs is not None and obs.code is Code.FORM_NOT_ALLOWED:
        return obs
    return None


def _bad_window() -> Observation:
    return Observation.of(
        Code.INVALID_ARGUMENTS,
        "span must be 60..600 seconds and step 1..60 seconds (whole numbers)",
        stage=Stage.RECEPTION,
        target="console",
    )


def _too_deep(what: str) -> Observation:
    return Observation.of(
        Code.ARGUMENTS_TOO_LARGE,
        f"{what} nests deeper than JSON can be read here; send flatter arguments",
        stage=Stage.DISPATCH,
    )


def _timeout(value: Any) -> Any:
    """A timeout as the engine takes it; a number too large for a float is
    ``invalid_policy`` here (the engine's own check names the other bad ones)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return Observation.of(
            Code.INVALID_POLICY,
            f"timeout must be a positive number of seconds, got {str(value)[:40]!r}",
            stage=Stage.DISPATCH,
        )
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return Observation.of(
                Code.INVALID_POLICY,
                f"timeout must be a positive number of seconds, got a {len(str(value))}-digit number",
                stage=Stage.DISPATCH,
            )
    return value


_JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
_ASSETS = {"style.css": "text/css", "app.js": "text/javascript", "favicon.svg": "image/svg+xml"}


class _CallApp:
    """The operation routes' endpoint: an ASGI app (Starlette passes ``path_params`` in the scope)."""

    def __init__(self, reception: Reception) -> None:
        self.reception = reception

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found: dict[bytes, str] = {}
        for k, v in scope["headers"]:
            if k in _HEADERS:
                found[k] = v.decode("latin-1")
        await self.reception.asgi_call(scope, receive, send, found)


# The operation routes of ROUTES, compiled once: the guard dispatches them before
# Starlette's router (which still holds them, for 405s and the route list).
_CALL_PATHS = tuple(dict.fromkeys(compile_path(r.path)[0] for r in ROUTES if r.handler == "call"))
_CALL_METHODS = frozenset(r.method for r in ROUTES if r.handler == "call")
_COMPILED = tuple((r, compile_path(r.path)[0]) for r in ROUTES)
_MUTATING = frozenset(r.method for r in ROUTES) - _SAFE_METHODS


def _bodyless(found: dict[bytes, str]) -> bool:
    """No body and no content type: nothing a page could smuggle (a browser sends Origin with
    every POST or DELETE, which the browser rule checks first), e.g. ``curl -X POST URL``."""
    return (
        b"content-type" not in found
        and b"transfer-encoding" not in found
        and found.get(b"content-length", "0").strip() == "0"
    )


_ANSWERED = observe.ANSWERED


class _HostGuard:
    """Outermost, before any routing: the request's measurement (and server span,
    see :mod:`observe`), the Host check (DNS rebinding), the browser rule (no
    request from another origin; a mutating request without the token must be
    ``application/json``, which a page cannot send across origins without a
    preflight, and preflights are refused), then the operation routes' fast
    path, then Starlette for everything else (whose answers get the page
    headers: CSP, ``frame-ancestors 'none'``).  The measurement is made here, not
    by a layer of its own: a layer costs a coroutine frame and a ``send``
    wrapper on every request."""

    def __init__(self, app: ASGIApp, reception: Reception, observed: observe.Observed) -> None:
        self.app = app
        self.reception = reception
        self.trust = reception.trust
        self.observed = observed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter_ns()
        if _TRACING:  # telemetry on: the request is a span around the same checks
            await self.observed.traced(_TRACING[-1], self._handle, scope, receive, send, t0)
            return
        status = 500  # unless an answer starts
        try:
            status = await self._handle(scope, receive, send)
        except BaseException:
            status = scope.get(_ANSWERED, 500)
            raise
        finally:
            self.observed.done(scope["method"], scope["path"], status, t0)

    def _handle(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[int]:
        """The checks, made at once; the answer to await, which returns its status.
        (Not a coroutine itself: the hot path awaits the answer's own, one frame
        fewer a request.)"""
        # one pass over the headers, in C, for every check below (a repeated header: the last)
        headers = dict(scope["headers"])
        found = {k: headers[k].decode("latin-1") for k in _HEADERS.intersection(headers)}
        server = scope.get("server")
        where = (
            found.get(b"host"),
            found.get(b"origin"),
            found.get(b"sec-fetch-site"),
            server[0] if server else None,
        )
        trust = self.trust
        obs = None if where in trust.accepted else trust.check_where(*where)  # Host, then the browser rule
        method = scope["method"]
        if (
            obs is None
            and method in _MUTATING  # (a method no route takes is answered 405 below)
            and b"authorization" not in found
            and not _bodyless(found)
            and found.get(b"content-type") != "application/json"
            and media_type(found.get(b"content-type")) != "application/json"
        ):
            obs = Observation.of(
                Code.BODY_NOT_JSON,
                f"a {method} without the token must say 'Content-Type: application/json' "
                f"(it has {found.get(b'content-type') or 'none'}): a web page cannot send that to this hub",
                stage=Stage.RECEPTION,
                content_type=found.get(b"content-type"),
                reason="content_type",
            )
        if obs is not None:
            refusal = self.reception._refuse(obs.with_context(target=f"{method} {scope['path']}"))
            return send_answer(send, refusal)
        path = scope["path"]
        if path.startswith("/rest/v1/") and method in _CALL_METHODS:
            for regex in _CALL_PATHS:
                m = regex.match(path)
                if m is not None:
                    scope["path_params"] = m.groupdict()
                    return self.reception.asgi_call(scope, receive, send, found)
        return self._page(scope, receive, send)

    async def _page(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Starlette's answer, with the page headers; its status (500 when none started)."""
        status = 500

        async def send_page(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = scope[_ANSWERED] = message["status"]  # (kept for a failure after it started)
                headers = list(message.get("headers", ()))
                have = {k.lower() for k, _ in headers}
                headers.extend(h for h in _PAGE_HEADERS if h[0] not in have)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_page)
        return status


__all__ = ["FOREIGN", "ROUTES", "Reception", "RouteSpec", "outcome_body", "refusal_of", "refused"]

"""The OpenAPI 3.1 document of a serving hub, generated from its components.

One path per operation (``/rest/v1/{component}/{service}/{operation}``,
``operationId`` = ``component.service.operation``), its parameters where the
form knows them, its docstring, and its resolved policy as ``x-cncf-*``
extensions; the Outcome, Observation and Job schemas once, under
``components``.  The document is built from what ``AsyncHub.inspect``
reports — the same registry the route table resolves through — never
written by hand; :class:`OpenApiCache` rebuilds it when the set of loaded
components (or their states) changes.  :func:`render_html` turns it into a
page that needs nothing from the internet.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from cncf import schema
from cncf.observation import Code, Stage

_JSON = "application/json"


def _schemas() -> dict[str, Any]:
    cause: dict[str, Any] = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "message": {"type": "string"},
            "stack": {"type": "string"},
            "cause": {"oneOf": [{"$ref": "#/components/schemas/Cause"}, {"type": "null"}]},
        },
        "required": ["type", "message"],
    }
    observation: dict[str, Any] = {
        "type": "object",
        "description": "A failure as a value; branch on code and the classification fields, never on message.",
        "properties": {
            "code": {"type": "string", "enum": [c.value for c in Code]},
            "stage": {"type": "string", "enum": [s.value for s in Stage]},
            "message": {"type": "string"},
            "category": {"type": "string"},
            "symptom": {"type": "string"},
            "cause_kind": {"type": "string"},
            "retryable": {"type": "boolean"},
            "target": {"type": ["string", "null"]},
            "call_id": {"type": ["string", "null"]},
            "cause": {"oneOf": [{"$ref": "#/components/schemas/Cause"}, {"type": "null"}]},
            "attributes": {"type": "object"},
            "time": {"type": "number"},
        },
        "required": ["code", "stage", "message", "category", "symptom", "cause_kind", "retryable"],
    }
    outcome: dict[str, Any] = {
        "description": "Exactly the CLI's --json object.",
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "ok": {"const": True},
                    "value": {},
                    "stdout": {"type": "string"},
                    "stderr": {"type": "string"},
                },
                "required": ["ok", "value"],
            },
            {"$ref": "#/components/schemas/Failure"},
        ],
    }
    failure: dict[str, Any] = {
        "type": "object",
        "properties": {
            "ok": {"const": False},
            "observation": {"$ref": "#/components/schemas/Observation"},
            "stdout": {"type": "string"},
            "stderr": {"type": "string"},
        },
        "required": ["ok", "observation"],
    }
    job: dict[str, Any] = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "target": {"type": "string"},
            "attempts": {"type": "integer"},
            "outcome": {"oneOf": [{"$ref": "#/components/schemas/Outcome"}, {"type": "null"}]},
        },
        "required": ["id", "state", "target", "attempts", "outcome"],
    }
    accepted: dict[str, Any] = {
        "type": "object",
        "properties": {
            "ok": {"const": True},
            "job": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "state": {"type": "string"}},
                "required": ["id", "state"],
            },
        },
        "required": ["ok", "job"],
    }
    return {
        "Cause": cause,
        "Observation": observation,
        "Outcome": outcome,
        "Failure": failure,
        "Job": job,
        "JobAccepted": accepted,
    }


def _ref(name: str) -> dict[str, Any]:
    return {"content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


# Every status the reception answers with a Failure body (status.py's table,
# the method check, and the serving protocol's own refusals); declared on
# every operation, since any of them can answer any request.
_FAILURES = {
    "400": "the arguments do not fit the operation's parameters (invalid_arguments), the component rejected "
    "them (rejected), or the request is malformed",
    "401": "the token is missing or wrong (the hub requires it here)",
    "403": "the request is forbidden (Host header, another origin, another local user without the token)",
    "404": "unknown component, service, operation or job (the Observation lists the candidates)",
    "408": "the request's headers did not arrive in time (the connection is closed)",
    "413": "the body is over this hub's limit",
    "415": "the body is not JSON, or a request without the token does not say Content-Type: application/json",
    "431": "the request's headers are over this hub's limits (the connection is closed)",
    "500": "the component's own failure (an exception it raised: code raised), or any other Observation",
    "503": "the component is unavailable (crashed, unloaded) or the hub is closing",
    "504": "a wait or run timeout",
}

_CALL_PARAMS: list[dict[str, Any]] = [
    {
        "name": "timeout",
        "in": "query",
        "required": False,
        "schema": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e300},
        "description": "the call's overall deadline in seconds (also X-Cncf-Timeout)",
    },
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "queue policy: a second submission with the same key returns the first job",
    },
]

_BEARER: dict[str, list[str]] = {"bearer": []}


def _security(needs_token: bool) -> list[dict[str, Any]]:
    return [_BEARER] if needs_token else [{}, _BEARER]


def _failures() -> dict[str, Any]:
    return {status: {"description": what, **_ref("Failure")} for status, what in _FAILURES.items()}


def _body(params: list[dict[str, Any]] | None, overloads: list[list[dict[str, Any]]] | None) -> dict[str, Any]:
    body, required = schema.body_schema(params, overloads)
    return {"required": required, "content": {_JSON: {"schema": body}}}


def operation_object(
    component: str, service: str, name: str, info: dict[str, Any], *, needs_token: bool = False
) -> dict[str, Any]:
    doc = (info.get("doc") or "").strip()
    policy = info.get("policy") or {}
    op: dict[str, Any] = {
        "operationId": f"{component}.{service}.{name}",
        "tags": [component],
        "summary": doc.splitlines()[0] if doc else f"{component}.{service}.{name}",
        "parameters": _CALL_PARAMS,
        "requestBody": _body(info.get("params"), info.get("overloads")),
        "security": _security(needs_token),
        "responses": {
            "200": {"description": "the operation's value", **_ref("Success")},
            **(
                {"202": {"description": "queued as a job (Location: /hub/v1/jobs/ID)", **_ref("JobAccepted")}}
                if policy.get("policy") == "queue"
                else {}
            ),
            **_failures(),
        },
        **{f"x-cncf-{k.replace('_', '-')}": v for k, v in policy.items() if v is not None},
    }
    if doc:
        op["description"] = doc
    if info.get("params") is not None:
        op["x-cncf-params"] = info["params"]
    if info.get("overloads"):
        op["x-cncf-overloads"] = info["overloads"]
    return op


def _query_schema(p: dict[str, Any]) -> dict[str, Any]:
    """A query value is read as the CLI reads one (JSON when it parses, else text): a typed
    scalar is published as its type; anything else as text."""
    s = p.get("schema") or {}
    if s.get("type") in ("integer", "number", "boolean") and set(s) <= {"type", "minimum", "maximum", "format"}:
        return s
    return {"type": "string"}


def _get_object(post: dict[str, Any], params: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The same operation on GET (declared ``http_get = true``): named arguments in the query."""
    query = [
        {"name": p["name"], "in": "query", "required": bool(p["required"]), "schema": _query_schema(p)}
        for p in params or ()
        if p["kind"] in ("named", "any") and p["name"] != "timeout"
    ]
    get = {k: v for k, v in post.items() if k != "requestBody"}
    get["operationId"] = post["operationId"] + ".get"
    get["parameters"] = [*post["parameters"], *query]
    return get


def _path_param(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": what}


def _hub_paths(read_token: bool) -> dict[str, Any]:
    """The hub's own routes (``/hub/v1``, health), under the tag ``hub``."""

    def op(
        op_id: str,
        summary: str,
        ok: str,
        *,
        admin: bool = False,
        params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
        status: str = "200",
        open_: bool = False,
    ) -> dict[str, Any]:
        o: dict[str, Any] = {
            "operationId": op_id,
            "tags": ["hub"],
            "summary": summary,
            "parameters": params or [],
            "security": [{}] if open_ else _security(admin or read_token),
            "responses": {status: {"description": summary, **_ref(ok)}, **_failures()},
        }
        if body is not None:
            o["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
        return o

    name = _path_param("name", "a loaded component's name")
    job = _path_param("id", "a job's id")
    jobs_query = [
        {"name": "state", "in": "query", "required": False, "schema": {"type": "string", "enum": list(_JOB_STATES)}},
        {"name": "component", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
    ]
    wait = {
        "name": "wait",
        "in": "query",
        "required": False,
        "schema": {"type": "number", "minimum": 0},
        "description": "seconds to wait for the job to finish (at most 300)",
    }
    load_body = {
        "type": "object",
        "properties": {"target": {"type": "string"}, "name": {"type": "string"}, "form": {"type": "string"}},
        "required": ["target"],
        "description": "the target to load, and manifest keys overriding its cncf.toml",
    }
    health = op("hub.healthz", "liveness: the hub serves", "Health", open_=True)
    ready = op("hub.readyz", "readiness: every component is ready", "Health")
    for o in (health, ready):  # not serving (draining) or not ready: the same shape, ok false
        o["responses"]["503"] = {"description": "draining, or a component is not ready", **_ref("Health")}
    loaded = op("hub.load", "load a component", "ComponentLoaded", admin=True, body=load_body, status="201")
    loaded["responses"]["200"] = {"description": "loaded, but failed (its Observation)", **_ref("ComponentLoaded")}
    return {
        "/hub/v1/components": {
            "get": op("hub.components", "the loaded components", "ComponentList"),
            "post": loaded,
        },
        "/hub/v1/components/{name}": {
            "get": op("hub.inspect", "one component: state, operations, policies", "Component", params=[name]),
            "delete": op("hub.unload", "unload a component", "Unloaded", admin=True, params=[name]),
        },
        "/hub/v1/components/{name}/reload": {
            "post": op("hub.reload", "reload a component", "ComponentLoaded", admin=True, params=[name]),
        },
        "/hub/v1/jobs": {"get": op("hub.jobs", "queued calls (jobs), newest first", "JobList", params=jobs_query)},
        "/hub/v1/jobs/{id}": {"get": op("hub.job", "one job", "Job", params=[job, wait])},
        "/hub/v1/jobs/{id}/cancel": {"post": op("hub.cancel_job", "cancel a job", "JobCancelled", params=[job])},
        "/hub/v1/calls/{id}/cancel": {
            "post": op(
                "hub.cancel_call",
                "cancel a call in flight (its X-Cncf-Call-Id)",
                "Cancelled",
                params=[_path_param("id", "a call's id")],
            )
        },
        "/hub/v1/observations": {"get": op("hub.observations", "recent Observations, grouped", "Observations")},
        "/healthz": {"get": health},
        "/readyz": {"get": ready},
    }


def _hub_schemas() -> dict[str, Any]:
    obj: dict[str, Any] = {"type": "object"}
    return {
        "Success": {
            "type": "object",
            "properties": {
                "ok": {"const": True},
                "value": {},
                "stdout": {"type": "string"},
                "stderr": {"type": "string"},
            },
            "required": ["ok", "value"],
        },
        "Component": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "state": {"type": "string"}, "form": {"type": "string"}},
            "required": ["name", "state"],
        },
        "ComponentList": {
            "type": "object",
            "properties": {"components": {"type": "array", "items": {"$ref": "#/components/schemas/Component"}}},
            "required": ["components"],
        },
        "ComponentLoaded": {
            "type": "object",
            "properties": {
                "ok": {"type": "boolean"},
                "component": {"$ref": "#/components/schemas/Component"},
                "observation": {"$ref": "#/components/schemas/Observation"},
            },
            "required": ["ok", "component"],
        },
        "Unloaded": {
            "type": "object",
            "properties": {"ok": {"const": True}, "unloaded": {"type": "string"}},
            "required": ["ok", "unloaded"],
        },
        "JobList": {
            "type": "object",
            "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}},
            "required": ["jobs"],
        },
        "JobCancelled": {
            "type": "object",
            "properties": {
                "ok": {"const": True},
                "cancelled": {"type": "boolean"},
                "job": {"$ref": "#/components/schemas/Job"},
            },
            "required": ["ok", "cancelled", "job"],
        },
        "Cancelled": {
            "type": "object",
            "properties": {"ok": {"const": True}, "cancelled": {"type": "boolean"}},
            "required": ["ok", "cancelled"],
        },
        "Observations": {
            "type": "object",
            "properties": {"groups": {"type": "array", "items": obj}, "recent": {"type": "array", "items": obj}},
            "required": ["groups", "recent"],
        },
        "Health": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
    }


_JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def build(components: Iterable[dict[str, Any]], version: str, *, read_needs_token: bool = False) -> dict[str, Any]:
    """The document for the given ``inspect`` dicts (failed components add no path).
    ``read_needs_token``: the operations need the token too (not only the admin routes)."""
    paths: dict[str, Any] = {}
    tags: list[dict[str, Any]] = []
    for comp in components:
        tags.append({"name": comp["name"], "description": f"the operations of component {comp['name']}"})
        for service, ops in (comp.get("services") or {}).items():
            for name, info in ops.items():
                path = f"/rest/v1/{comp['name']}/{service}/{name}"
                post = operation_object(comp["name"], service, name, info, needs_token=read_needs_token)
                paths[path] = {"post": post}
                if (info.get("policy") or {}).get("http_get"):
                    paths[path]["get"] = _get_object(post, info.get("params"))
    paths.update(_hub_paths(read_needs_token))
    tags.append({"name": "hub", "description": "the hub itself: components, jobs, calls, health"})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cncf hub",
            "version": version,
            "description": "Operations of the components loaded in this hub. Every call answers with "
            "an Outcome: a value, or an Observation (a failure as data). GET on an "
            "operation's path calls it with the query string as named arguments, for an operation "
            "declared safe to run on GET (x-cncf-http-get; any other answers 405).",
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": {**_schemas(), **_hub_schemas()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "the hub's token (serve.token)"}
            },
        },
    }


class OpenApiCache:
    """The document, rebuilt only when the key (loaded components, states) changes."""

    def __init__(self) -> None:
        self._key: object = None
        self._doc: dict[str, Any] = {}
        self._text = b""

    def get(self, key: object, make: Any) -> tuple[dict[str, Any], bytes]:
        if key != self._key:
            self._doc = make()
            self._text = json.dumps(self._doc, ensure_ascii=False).encode()
            self._key = key
        return self._doc, self._text


# ---------------------------------------------------------------------------
# The human-readable page (no script, no asset from outside)
# ---------------------------------------------------------------------------

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>cncf hub — API</title>
<link rel="stylesheet" href="/dashboard/style.css"></head><body><main class="doc">
<header><h1>cncf hub — operations</h1><p><a href="/">dashboard</a> ·
<a href="/rest/v1/openapi.json">openapi.json</a></p></header>{body}</main></body></html>"""


def render_html(doc: dict[str, Any]) -> str:
    e = html.escape
    parts = [f"<p>{e(doc['info']['description'])}</p>"]
    by_tag: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for path, item in doc["paths"].items():
        op = item.get("post")
        if op is None or not path.startswith("/rest/"):
            continue
        by_tag.setdefault(op["tags"][0], []).append((path, op))
    for tag, ops in by_tag.items():
        parts.append(
            f"<section class='card'><h2>{e(tag)}</h2><table><thead><tr><th>POST path</th>"
            "<th>parameters</th><th>policy</th><th>about</th></tr></thead><tbody>"
        )
        for path, op in ops:
            params = op.get("x-cncf-params")
            shown = (
                ", ".join(f"{p['name']}{'' if p['required'] else '?'}" for p in params)
                if params is not None
                else f"{len(op['x-cncf-overloads'])} overloads"
                if op.get("x-cncf-overloads")
                else "unknown"
            )
            policy = ", ".join(
                f"{k[7:]}={v}"
                for k, v in op.items()
                if k.startswith("x-cncf-") and k not in ("x-cncf-params", "x-cncf-overloads")
            )
            parts.append(
                f"<tr><td><code>{e(path)}</code></td><td>{e(shown)}</td><td>{e(policy)}</td>"
                f"<td>{e(op.get('description', ''))}</td></tr>"
            )
        parts.append("</tbody></table></section>")
    if not by_tag:
        parts.append("<p>No component is loaded.</p>")
    return _PAGE.format(body="".join(parts))


__all__ = ["OpenApiCache", "build", "operation_object", "render_html"]

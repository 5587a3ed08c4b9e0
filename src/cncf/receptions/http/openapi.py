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
            "target": {"type": "string"},
            "call_id": {"type": "string"},
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


_FAILURES = {
    "400": "the request does not fit the operation, or the component rejected its arguments (code rejected)",
    "404": "unknown component, service or operation (the Observation lists the candidates)",
    "503": "the component is unavailable (crashed, unloaded) or the hub is closing",
    "504": "a wait or run timeout",
    "500": "the component's own failure (an exception it raised: code raised), or any other Observation",
}

_CALL_PARAMS = [
    {
        "name": "timeout",
        "in": "query",
        "required": False,
        "schema": {"type": "number", "exclusiveMinimum": 0},
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


def _body(params: list[dict[str, Any]] | None) -> dict[str, Any]:
    if params is None:
        schema: dict[str, Any] = {
            "description": "named arguments (an object) or positional ones (an array)",
            "oneOf": [{"type": "object"}, {"type": "array"}],
        }
    else:
        named = [p for p in params if p["kind"] in ("named", "any")]
        obj: dict[str, Any] = {"type": "object", "properties": {p["name"]: {} for p in named}}
        required = [p["name"] for p in named if p["required"]]
        if required:
            obj["required"] = required
        if not any(p["kind"] == "varkw" for p in params):
            obj["additionalProperties"] = False
        schema = {"oneOf": [obj, {"type": "array", "description": "positional arguments"}]}
    return {"required": False, "content": {_JSON: {"schema": schema}}}


def operation_object(component: str, service: str, name: str, info: dict[str, Any]) -> dict[str, Any]:
    doc = (info.get("doc") or "").strip()
    policy = info.get("policy") or {}
    op: dict[str, Any] = {
        "operationId": f"{component}.{service}.{name}",
        "tags": [component],
        "summary": doc.splitlines()[0] if doc else f"{component}.{service}.{name}",
        "parameters": _CALL_PARAMS,
        "requestBody": _body(info.get("params")),
        "responses": {
            "200": {"description": "a value", **_ref("Outcome")},
            **(
                {"202": {"description": "queued as a job (Location: /hub/v1/jobs/ID)", **_ref("JobAccepted")}}
                if policy.get("policy") == "queue"
                else {}
            ),
            **{status: {"description": what, **_ref("Failure")} for status, what in _FAILURES.items()},
        },
        **{f"x-cncf-{k.replace('_', '-')}": v for k, v in policy.items() if v is not None},
    }
    if doc:
        op["description"] = doc
    if info.get("params") is not None:
        op["x-cncf-params"] = info["params"]
    return op


def build(components: Iterable[dict[str, Any]], version: str) -> dict[str, Any]:
    """The document for the given ``inspect`` dicts (failed components add no path)."""
    paths: dict[str, Any] = {}
    for comp in components:
        for service, ops in (comp.get("services") or {}).items():
            for name, info in ops.items():
                path = f"/rest/v1/{comp['name']}/{service}/{name}"
                paths[path] = {"post": operation_object(comp["name"], service, name, info)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cncf hub",
            "version": version,
            "description": "Operations of the components loaded in this hub. Every call answers with "
            "an Outcome: a value, or an Observation (a failure as data). GET on an "
            "operation's path calls it with the query string as named arguments.",
        },
        "paths": paths,
        "components": {"schemas": _schemas()},
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
        op = item["post"]
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
                else "unknown"
            )
            policy = ", ".join(
                f"{k[7:]}={v}" for k, v in op.items() if k.startswith("x-cncf-") and k != "x-cncf-params"
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

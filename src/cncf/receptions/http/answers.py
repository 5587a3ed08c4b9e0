"""What the HTTP reception sends: answers as (status, headers, body) triples.

The operation routes send them as raw ASGI messages (:func:`send_answer`),
the other routes wrap them in a Starlette response (:class:`Raw`); a call's
body is always the CLI's ``--json`` object (:func:`outcome_body`), a refused
request's the same with its Observation (:func:`refused`).  Also here: the
dashboard's ring of recent Observations.
"""

from __future__ import annotations

import collections
import json
from typing import Any

from starlette.responses import Response
from starlette.types import Send

from cncf.observation import Code, Observation
from cncf.outcome import Outcome
from cncf.receptions.http.status import status_of
from cncf.receptions.render import outcome_json

# built once: json.dumps() with options builds an encoder per call
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
_encode_ascii = json.JSONEncoder(ensure_ascii=True, default=str).encode


def encode_bytes(data: Any) -> bytes:
    """UTF-8 JSON; a lone surrogate (a JSON string may carry one, e.g. a Java string) as its \\u escape."""
    try:
        return _encode(data).encode()
    except UnicodeEncodeError:
        return _encode_ascii(data).encode()


encode = _encode


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = encode_bytes(data)
    return Response(body, status, headers, media_type="application/json")


def outcome_body(outcome: Outcome) -> dict[str, Any]:
    """The CLI's ``--json`` object (one definition: ``render.outcome_json``)."""
    return outcome_json(outcome)


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def answer(data: Any, status: int, headers: dict[str, str]) -> Answer:
    body = encode_bytes(data)
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-type", b"application/json"))
    raw.append((b"content-length", str(len(body)).encode()))
    return status, raw, body


async def send_answer(send: Send, prepared: Answer) -> int:
    """Send it; its status (for the request's measurement)."""
    status, headers, body = prepared
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


class Raw(Response):
    """A prepared answer as a Starlette response (admin routes, refusals)."""

    def __init__(self, answer: Answer) -> None:
        self.status_code, self.raw_headers, self.body = answer
        self.background = None


def refused(obs: Observation) -> Answer:
    headers = {"x-cncf-observation-code": obs.code.value}
    if obs.call_id:
        headers["x-cncf-call-id"] = obs.call_id
    if obs.code is Code.UNAUTHENTICATED:
        headers["www-authenticate"] = 'Bearer realm="cncf"'
    return answer({"ok": False, "observation": obs.to_dict()}, status_of(obs), headers)


def cli_value(text: str) -> Any:
    """As the CLI: a value that parses as JSON is JSON, otherwise a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class RecentObservations:
    """The dashboard's "recent Observations": a ring of the latest, and a count per code."""

    def __init__(self, size: int = 200) -> None:
        self.ring: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
        self.counts: collections.Counter[str] = collections.Counter()

    def add(self, obs: Observation) -> None:
        self.counts[obs.code.value] += 1
        self.ring.append(obs.to_dict())

    def grouped(self) -> list[dict[str, Any]]:
        last: dict[str, dict[str, Any]] = {}
        for d in self.ring:
            last[d["code"]] = d
        return [
            {
                "code": code,
                "count": n,
                "status": status_of(Observation.from_dict(last[code])) if code in last else None,
                "last": last.get(code),
            }
            for code, n in self.counts.most_common()
        ]


__all__ = [
    "Answer",
    "Raw",
    "RecentObservations",
    "answer",
    "cli_value",
    "encode",
    "json_response",
    "outcome_body",
    "refused",
    "send_answer",
]

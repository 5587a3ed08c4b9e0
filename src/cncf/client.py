"""A client for a serving hub (``cncf serve``): the local ``Hub``'s calls over HTTP.

``cncf.connect(url, token=None)`` returns a :class:`RemoteHub` whose
``call()``, ``components()``, ``inspect()``, ``job()``, ``wait()``,
``cancel_job()`` and ``jobs()`` behave as the local ``Hub``'s: the same
:class:`~cncf.Outcome` and :class:`~cncf.Observation` values, field by
field (the server sends each Observation whole, the client rebuilds it with
``Observation.from_dict``).  :func:`connect_async` is the same over
``httpx.AsyncClient``.  ``call()`` never raises: a hub that cannot be
reached, or an answer that is not an Outcome, is a ``hub_unreachable``
Observation (the call may or may not have run).

The request building and the answer reading are pure functions shared by
both clients; only the transport differs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.parse
from typing import Any

from cncf.call import Arguments, new_call_id
from cncf.jobs.model import Attempt, Job, JobNotFound, JobState, JobStoreCorrupt, JobStoreUnavailable, decode_outcome
from cncf.observation import Code, Observation, Stage
from cncf.outcome import ObservationError, Outcome

_MAX_POLL = 60.0  # one long-poll request; wait() chains them


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteComponent:
    """A snapshot of a component of a serving hub (what the local handle shows)."""

    name: str
    form: str
    state: str
    observation: Observation | None
    operations: list[str]
    restarts: int
    info: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return self.info

    @classmethod
    def from_info(cls, d: dict[str, Any]) -> RemoteComponent:
        ops = d.get("operations")
        if not isinstance(ops, list):
            ops = [f"{s}.{o}" for s, v in (d.get("services") or {}).items() for o in v]
        obs = d.get("observation")
        restarts = d.get("restarts", (d.get("restart") or {}).get("restarts", 0))
        return cls(
            str(d["name"]),
            str(d.get("form", "")),
            str(d.get("state", "")),
            Observation.from_dict(obs) if obs else None,
            list(ops),
            int(restarts or 0),
            d,
        )


def _job(d: dict[str, Any]) -> Job:
    out = d.get("outcome")
    outcome = None
    if out is not None:
        outcome = decode_outcome(json.dumps(out | {"call_id": out.get("call_id", d.get("call_id", ""))}), d["id"])
    return Job(
        id=d["id"],
        state=JobState(d["state"]),
        target=d["target"],
        component=d.get("component", ""),
        attempts=int(d.get("attempts", 0)),
        max_attempts=int(d.get("max_attempts", 0)),
        created=float(d.get("created") or 0.0),
        started=d.get("started"),
        finished=d.get("finished"),
        not_before=d.get("not_before"),
        outcome=outcome,
        history=tuple(Attempt.from_dict(a) for a in d.get("history") or ()),
        call_id=d.get("call_id", ""),
        correlation_id=d.get("correlation_id", ""),
        idempotency_key=d.get("idempotency_key"),
        caller=d.get("caller", ""),
        cancel_requested=bool(d.get("cancel_requested")),
        args=tuple(d.get("args") or ()),
        kwargs=dict(d.get("kwargs") or {}),
        owner=d.get("owner"),
        waiting=d.get("waiting"),
    )


# ---------------------------------------------------------------------------
# Requests and answers (shared by both clients)
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None
    params: dict[str, str] | None = None


def _call_request(
    selector: str,
    args: Any,
    timeout: float | None,
    correlation_id: str | None,
    idempotency_key: str | None,
    call_id: str | None = None,
) -> _Request | Outcome:
    parts = selector.split(".") if isinstance(selector, str) else []
    if len(parts) not in (2, 3) or not all(parts):
        return Outcome.failure(
            Observation.of(
                Code.UNKNOWN_OPERATION,
                f"{selector!r} is not a selector; expected 'component.operation' or 'component.service.operation'",
                target=str(selector),
                call_id=new_call_id(),
            )
        )
    headers = {"content-type": "application/json"}
    if timeout is not None:
        headers["x-cncf-timeout"] = json.dumps(timeout) if isinstance(timeout, int | float) else str(timeout)
    if correlation_id:
        headers["x-correlation-id"] = correlation_id
    if idempotency_key is not None:
        headers["idempotency-key"] = str(idempotency_key)
    if call_id:
        headers["x-cncf-call-id"] = call_id  # so that cancel(call_id) can reach it
    if isinstance(args, Arguments):
        if args.args and args.kwargs:
            return Outcome.failure(
                Observation.of(
                    Code.INVALID_ARGUMENTS,
                    "over HTTP a call carries named or positional arguments, not both",
                    target=selector,
                    call_id=new_call_id(),
                )
            )
        args = dict(args.kwargs) if args.kwargs else list(args.args)
    if isinstance(args, tuple):
        args = list(args)
    try:
        body = None if args is None else json.dumps(args, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        return Outcome.failure(
            Observation.of(
                Code.INVALID_ARGUMENTS,
                f"the arguments cannot cross as JSON: {exc}",
                target=selector,
                call_id=new_call_id(),
            )
        )
    path = "/rest/v1/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)
    return _Request("POST", path, headers, body)


def _unreachable(url: str, what: str, status: int | None = None, target: str = "") -> Observation:
    return Observation.of(
        Code.HUB_UNREACHABLE, f"the hub at {url} {what}", stage=Stage.RECEPTION, target=target, url=url, status=status
    )


def _outcome(status: int, headers: Any, text: bytes, url: str, target: str) -> Outcome:
    """An HTTP answer to a call, as the local hub's Outcome."""
    try:
        d = json.loads(text)
        if not isinstance(d, dict) or "ok" not in d:
            raise ValueError("not an Outcome")
    except ValueError:
        return Outcome.failure(
            _unreachable(url, f"answered {status} with something that is not an Outcome", status, target)
        )
    call_id = headers.get("x-cncf-call-id", "")
    if d["ok"]:
        job = d.get("job")
        if status == 202 and isinstance(job, dict):
            return Outcome(call_id, job_id=str(job["id"]), queued=True)
        return Outcome(
            call_id,
            value=d.get("value"),
            stdout=d.get("stdout", ""),
            stderr=d.get("stderr", ""),
            job_id=d.get("job_id"),
            queued=bool(d.get("queued")),
        )
    obs = Observation.from_dict(d["observation"])
    return Outcome(obs.call_id or call_id, observation=obs, stdout=d.get("stdout", ""), stderr=d.get("stderr", ""))


def _raise_for(status: int, d: Any, url: str) -> None:
    """Admin and job routes: an Observation answer becomes the exception the local hub raises."""
    if status < 400:
        return
    if isinstance(d, dict) and isinstance(d.get("observation"), dict):
        obs = Observation.from_dict(d["observation"])
        if obs.code is Code.JOB_NOT_FOUND:
            raise JobNotFound(obs)
        if obs.code is Code.JOB_STORE_CORRUPT:
            raise JobStoreCorrupt(obs)
        if obs.code is Code.JOB_STORE_UNAVAILABLE:
            raise JobStoreUnavailable(obs)
        if obs.code is Code.UNKNOWN_COMPONENT:
            raise KeyError(obs.message)
        if status in (401, 403) or obs.stage is Stage.RECEPTION:
            raise ObservationError(obs)
        return
    raise ObservationError(_unreachable(url, f"answered {status}", status))


def _wait_outcome(job: Job, timeout: float | None) -> Outcome:
    if job.done and job.outcome is not None:
        return job.outcome
    return Outcome(
        job.call_id or job.id,
        job_id=job.id,
        observation=Observation.of(
            Code.WAIT_TIMEOUT,
            f"job {job.id} is still {job.state.value} after waiting {timeout or 0:g}s; the job goes on "
            "(wait again, or cancel it)",
            stage=Stage.WAIT,
            target=job.target,
            call_id=job.call_id,
            job_id=job.id,
            job_state=job.state.value,
            limit="wait",
        ),
    )


def unix_socket_path(url: str) -> str | None:
    """The socket of a hub served with ``cncf serve --unix PATH``, or None for an HTTP URL.

    Accepted: what ``cncf serve`` prints (``unix:/run/hub.sock``), ``unix:///run/hub.sock``,
    a relative ``unix:hub.sock``, and ``http+unix://%2Frun%2Fhub.sock`` (the
    convention of requests-unixsocket)."""
    if url.startswith("unix:"):
        rest = url[len("unix:") :]
        if rest.startswith("//"):
            rest = rest[2:]  # unix:///abs/path → /abs/path (an empty authority)
        return urllib.parse.unquote(rest.split("?", 1)[0]) or None
    if url.startswith("http+unix://"):
        return urllib.parse.unquote(url[len("http+unix://") :].split("/", 1)[0]) or None
    return None


def _transport(url: str, asynchronous: bool) -> tuple[str, dict[str, Any]]:
    """(base URL, httpx client options) for ``url``: a Unix socket's requests name ``localhost``."""
    import httpx

    path = unix_socket_path(url)
    if path is None:
        return url.rstrip("/"), {}
    transport = httpx.AsyncHTTPTransport(uds=path) if asynchronous else httpx.HTTPTransport(uds=path)
    return "http://localhost", {"transport": transport}


def _headers(token: str | None) -> dict[str, str]:
    token = token if token is not None else os.environ.get("CNCF_TOKEN") or None
    return {"authorization": f"Bearer {token}"} if token else {}


# ---------------------------------------------------------------------------
# The synchronous client
# ---------------------------------------------------------------------------


class RemoteHub:
    """A serving hub, called over HTTP (``cncf.connect``)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        base, options = _transport(url, asynchronous=False)
        self._http = httpx.Client(
            base_url=base,
            headers=_headers(token),
            timeout=httpx.Timeout(timeout, connect=10.0),
            trust_env=False,
            **options,
        )
        self._errors: tuple[type[BaseException], ...] = (httpx.HTTPError,)

    def __enter__(self) -> RemoteHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, req: _Request) -> tuple[int, Any, bytes]:
        r = self._http.request(req.method, req.path, headers=req.headers, content=req.body, params=req.params)
        return r.status_code, r.headers, r.content

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        try:
            status, _, text = self._send(_Request(method, path, {"content-type": "application/json"}, **kw))
        except self._errors as exc:
            raise ObservationError(_unreachable(self.url, f"cannot be reached: {exc!r}")) from None
        try:
            d = json.loads(text)
        except ValueError:
            d = None
        _raise_for(status, d, self.url)
        return d

    def call(
        self,
        selector: str,
        args: Any = None,
        *,
        timeout: float | None = None,
        correlation_id: str | None = None,
        caller: str = "http",
        call_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome:
        """As ``Hub.call``; never raises (an unreachable hub is ``hub_unreachable``)."""
        req = _call_request(selector, args, timeout, correlation_id, idempotency_key, call_id)
        if isinstance(req, Outcome):
            return req
        try:
            status, headers, text = self._send(req)
        except self._errors as exc:
            return Outcome.failure(_unreachable(self.url, f"cannot be reached: {exc!r}", target=selector))
        return _outcome(status, headers, text, self.url, selector)

    def cancel(self, call_id: str) -> bool:
        d = self._json("POST", f"/hub/v1/calls/{urllib.parse.quote(call_id, safe='')}/cancel")
        return bool(d.get("cancelled"))

    def components(self) -> list[RemoteComponent]:
        return [RemoteComponent.from_info(c) for c in self._json("GET", "/hub/v1/components")["components"]]

    def component(self, name: str) -> RemoteComponent | None:
        try:
            return RemoteComponent.from_info(self.inspect(name))
        except KeyError:
            return None

    def inspect(self, name: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/hub/v1/components/{urllib.parse.quote(name, safe='')}"))

    def load(self, target: str | os.PathLike[str], **overrides: Any) -> RemoteComponent:
        """Load on the serving hub (a path on *its* machine); needs the token."""
        body = json.dumps({"target": os.fspath(target), **overrides}).encode()
        return RemoteComponent.from_info(self._json("POST", "/hub/v1/components", body=body)["component"])

    def unload(self, name: str) -> bool:
        try:
            self._json("DELETE", f"/hub/v1/components/{urllib.parse.quote(name, safe='')}")
        except KeyError:
            return False
        return True

    def reload(self, name: str) -> RemoteComponent:
        d = self._json("POST", f"/hub/v1/components/{urllib.parse.quote(name, safe='')}/reload")
        return RemoteComponent.from_info(d["component"])

    def upgrade(self, name: str, target: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A new generation on the serving hub (needs the token): the route's JSON answer,
        ``{"ok": true, "component": ...}`` or, rolled back, ``{"ok": false, "observation": ...}``."""
        body = json.dumps({**({"target": target} if target is not None else {}), **overrides}).encode()
        path = f"/hub/v1/components/{urllib.parse.quote(name, safe='')}/upgrade"
        try:
            status, _, text = self._send(_Request("POST", path, {"content-type": "application/json"}, body=body))
        except self._errors as exc:
            raise ObservationError(_unreachable(self.url, f"cannot be reached: {exc!r}")) from None
        try:
            d = json.loads(text)
        except ValueError:
            d = None
        if isinstance(d, dict) and d.get("ok") is False and "component" in d:
            return d  # a rollback: the answer itself
        _raise_for(status, d, self.url)
        return dict(d)

    def job(self, job_id: str) -> Job:
        return _job(self._json("GET", f"/hub/v1/jobs/{urllib.parse.quote(job_id, safe='')}"))

    def wait(self, job_id: str, timeout: float | None = None) -> Outcome:
        """As ``Hub.wait``: the final Outcome, or ``wait_timeout``; never raises."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                left = _MAX_POLL if deadline is None else max(0.0, min(_MAX_POLL, deadline - time.monotonic()))
                job = _job(
                    self._json(
                        "GET", f"/hub/v1/jobs/{urllib.parse.quote(job_id, safe='')}", params={"wait": f"{left:.3f}"}
                    )
                )
                if job.done or (deadline is not None and time.monotonic() >= deadline):
                    return _wait_outcome(job, timeout)
        except ObservationError as exc:
            return Outcome(job_id, observation=exc.observation, job_id=job_id)

    def cancel_job(self, job_id: str) -> bool:
        try:
            return bool(self._json("POST", f"/hub/v1/jobs/{urllib.parse.quote(job_id, safe='')}/cancel")["cancelled"])
        except JobNotFound:
            return False

    def jobs(self, **filters: Any) -> list[Job]:
        params = {k: str(v) for k, v in filters.items() if v is not None}
        return [_job(j) for j in self._json("GET", "/hub/v1/jobs", params=params)["jobs"]]


# ---------------------------------------------------------------------------
# The asynchronous client
# ---------------------------------------------------------------------------


class AsyncRemoteHub:
    """As :class:`RemoteHub`, over ``httpx.AsyncClient`` (``async with connect_async(url)``)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        base, options = _transport(url, asynchronous=True)
        self._http = httpx.AsyncClient(
            base_url=base,
            headers=_headers(token),
            timeout=httpx.Timeout(timeout, connect=10.0),
            trust_env=False,
            **options,
        )
        self._errors: tuple[type[BaseException], ...] = (httpx.HTTPError,)

    async def __aenter__(self) -> AsyncRemoteHub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, req: _Request) -> tuple[int, Any, bytes]:
        r = await self._http.request(req.method, req.path, headers=req.headers, content=req.body, params=req.params)
        return r.status_code, r.headers, r.content

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        try:
            status, _, text = await self._send(_Request(method, path, {"content-type": "application/json"}, **kw))
        except self._errors as exc:
            raise ObservationError(_unreachable(self.url, f"cannot be reached: {exc!r}")) from None
        try:
            d = json.loads(text)
        except ValueError:
            d = None
        _raise_for(status, d, self.url)
        return d

    async def call(
        self,
        selector: str,
        args: Any = None,
        *,
        timeout: float | None = None,
        correlation_id: str | None = None,
        caller: str = "http",
        call_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome:
        req = _call_request(selector, args, timeout, correlation_id, idempotency_key, call_id)
        if isinstance(req, Outcome):
            return req
        try:
            status, headers, text = await self._send(req)
        except self._errors as exc:
            return Outcome.failure(_unreachable(self.url, f"cannot be reached: {exc!r}", target=selector))
        return _outcome(status, headers, text, self.url, selector)

    async def components(self) -> list[RemoteComponent]:
        return [RemoteComponent.from_info(c) for c in (await self._json("GET", "/hub/v1/components"))["components"]]

    async def inspect(self, name: str) -> dict[str, Any]:
        return dict(await self._json("GET", f"/hub/v1/components/{urllib.parse.quote(name, safe='')}"))

    async def job(self, job_id: str) -> Job:
        return _job(await self._json("GET", f"/hub/v1/jobs/{urllib.parse.quote(job_id, safe='')}"))

    async def wait(self, job_id: str, timeout: float | None = None) -> Outcome:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                left = _MAX_POLL if deadline is None else max(0.0, min(_MAX_POLL, deadline - time.monotonic()))
                job = _job(
                    await self._json(
                        "GET", f"/hub/v1/jobs/{urllib.parse.quote(job_id, safe='')}", params={"wait": f"{left:.3f}"}
                    )
                )
                if job.done or (deadline is not None and time.monotonic() >= deadline):
                    return _wait_outcome(job, timeout)
        except ObservationError as exc:
            return Outcome(job_id, observation=exc.observation, job_id=job_id)

    async def cancel_job(self, job_id: str) -> bool:
        try:
            d = await self._json("POST", f"/hub/v1/jobs/{urllib.parse.quote(job_id, safe='')}/cancel")
        except JobNotFound:
            return False
        return bool(d["cancelled"])

    async def jobs(self, **filters: Any) -> list[Job]:
        params = {k: str(v) for k, v in filters.items() if v is not None}
        return [_job(j) for j in (await self._json("GET", "/hub/v1/jobs", params=params))["jobs"]]


def connect(url: str, token: str | None = None, *, timeout: float | None = None) -> RemoteHub:
    """A synchronous client of the hub serving at ``url`` (token: argument, else ``CNCF_TOKEN``).

    Args:
        url: the hub's address, e.g. ``http://127.0.0.1:8470``; for a hub
            served on a Unix socket (``cncf serve --unix PATH``), ``unix:PATH``
            (as ``cncf serve`` prints it) or ``unix:///abs/path``.
        token: the bearer token; needed for load/unload/reload, and for every
            route of a hub on a non-loopback address.
        timeout: the HTTP read timeout in seconds (None: wait as long as the call does).
    """
    return RemoteHub(url, token, timeout=timeout)


def connect_async(url: str, token: str | None = None, *, timeout: float | None = None) -> AsyncRemoteHub:
    """As :func:`connect`, for ``asyncio`` code."""
    return AsyncRemoteHub(url, token, timeout=timeout)


__all__ = ["AsyncRemoteHub", "RemoteComponent", "RemoteHub", "connect", "connect_async", "unix_socket_path"]

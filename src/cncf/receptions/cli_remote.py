"""The CLI against a served hub (``cncf serve``): ``--hub URL`` on ``components``,
``inspect``, ``reload``, ``unload``, ``jobs ...``, and ``cncf top``.

The same output as the local commands: the served hub sends Observations
whole, and they are rendered by :mod:`render` as a local one would be.  The
token (needed for reload and unload, and for every route of a hub that asks
for it) comes from ``--token-file``, else ``CNCF_TOKEN``.  A URL
``unix:/path/to/socket`` reaches a hub serving on a Unix socket.

Another command gets ``--hub`` the same way: take :data:`HubOpt` and
:data:`TokenFileOpt`, and open the hub with :func:`remote` (the
``cncf.client.RemoteHub`` of the job commands) or :func:`http` (plain
``httpx``, for routes the client does not wrap).
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cncf.observation import Code, Observation, Stage
from cncf.outcome import ObservationError, Outcome
from cncf.receptions import render
from cncf.receptions.options import err, guard, out

HubOpt = Annotated[
    str | None,
    typer.Option("--hub", help="A served hub (cncf serve) at this URL, e.g. http://127.0.0.1:8470 or unix:PATH."),
]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option("--token-file", help="With --hub: a file holding the hub's token (default: $CNCF_TOKEN)."),
]


def token(token_file: Path | None) -> str | None:
    """The token for a served hub: ``--token-file``, else ``CNCF_TOKEN``, else none."""
    if token_file is not None:
        from cncf.receptions.http.auth import read_token_file

        return read_token_file(token_file.expanduser())
    return os.environ.get("CNCF_TOKEN", "").strip() or None


def http(url: str, token_file: Path | None, *, timeout: float | None = 60.0) -> Any:
    """An ``httpx.Client`` for the hub at ``url`` (``unix:PATH`` for a socket), with the token."""
    import httpx

    tok = token(token_file)
    headers = {"content-type": "application/json"}
    if tok:
        headers["authorization"] = f"Bearer {tok}"
    if url.startswith("unix:"):
        return httpx.Client(
            base_url="http://localhost",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            trust_env=False,
            transport=httpx.HTTPTransport(uds=url[len("unix:") :]),
        )
    return httpx.Client(
        base_url=url.rstrip("/"), headers=headers, timeout=httpx.Timeout(timeout, connect=10.0), trust_env=False
    )


def remote(url: str, token_file: Path | None) -> Any:
    """The ``cncf.client`` hub for ``url``: the local ``Hub``'s job API over HTTP."""
    from cncf.client import connect

    return connect(url, token(token_file))


def _unreachable(url: str, exc: BaseException, target: str) -> Observation:
    return Observation.of(
        Code.HUB_UNREACHABLE, f"the hub at {url} cannot be reached: {exc!r}", stage=Stage.RECEPTION, target=target
    )


class _Refused(Exception):
    def __init__(self, observation: Observation) -> None:
        self.observation = observation


def _get(url: str, token_file: Path | None, method: str, path: str, target: str) -> tuple[int, Any]:
    """One request: (status, JSON body); an answer carrying an Observation with a
    4xx/5xx status raises :class:`_Refused`, an unreachable hub too."""
    import httpx

    try:
        with http(url, token_file) as client:
            r = client.request(method, path, content=b"{}" if method != "GET" else None)
    except httpx.HTTPError as exc:
        raise _Refused(_unreachable(url, exc, target)) from None
    body, refusal = _answer(r, f"the hub at {url}", f"{method} {path}", target)
    if refusal is not None:
        raise _Refused(refusal)
    return r.status_code, body


def _answer(r: Any, who: str, what: str, target: str) -> tuple[Any, Observation | None]:
    """An httpx response's (JSON body, and for a 4xx/5xx the Observation it carries,
    or ``hub_unreachable`` naming the status when it carries none)."""
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code < 400:
        return body, None
    if isinstance(body, dict) and isinstance(body.get("observation"), dict):
        return body, Observation.from_dict(body["observation"])
    return body, Observation.of(
        Code.HUB_UNREACHABLE, f"{who} answered {r.status_code} to {what}", stage=Stage.RECEPTION, target=target
    )


def _refused(obs: Observation, as_json: bool) -> int:
    return render.print_outcome(Outcome.failure(obs), out, as_json=as_json, err=err)


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def need_hub(hub_url: str | None, command: str, token_file: Path | None = None) -> str:
    """The URL, or a usage error (exit 2) without one or with an unreadable token file."""
    if not hub_url:
        err.print(f"error: {command} needs --hub URL (a hub served by cncf serve)")
        raise typer.Exit(render.EXIT_USAGE)
    if token_file is not None:
        from cncf.receptions.http.auth import TokenError

        try:
            token(token_file)
        except TokenError as exc:
            err.print(f"error: --token-file: {exc}")
            raise typer.Exit(render.EXIT_USAGE) from None
    return hub_url


# ---------------------------------------------------------------- commands


def components(hub_url: str, token_file: Path | None, as_json: bool) -> int:
    def run() -> int:
        try:
            _, body = _get(hub_url, token_file, "GET", "/hub/v1/components", "components")
        except _Refused as exc:
            return _refused(exc.observation, as_json)
        comps = body.get("components") or []
        if as_json:
            print(render.to_json({"components": comps}))
        elif not comps:
            out.print("no components loaded")
        else:
            out.print(render.components_table(comps))
        return render.EXIT_VALUE

    return guard(as_json, "components", run, what="cncf components --hub")


def inspect(hub_url: str, token_file: Path | None, name: str, as_json: bool) -> int:
    def run() -> int:
        try:
            _, info = _get(hub_url, token_file, "GET", f"/hub/v1/components/{_quote(name)}", name)
        except _Refused as exc:
            return _refused(exc.observation, as_json)
        return _show(info, as_json)

    return guard(as_json, name, run, what="cncf inspect --hub")


def _show(info: dict[str, Any], as_json: bool) -> int:
    """As the local ``cncf inspect``: the table, then the Observation of a failed component."""
    if as_json:
        print(render.to_json(info))
    else:
        out.print(render.describe_table(info))
        if info.get("observation"):
            out.print(render.observation_panel(Observation.from_dict(info["observation"])))
    return render.EXIT_OBSERVATION if info.get("state") == "failed" else render.EXIT_VALUE


def reload(hub_url: str, token_file: Path | None, name: str, as_json: bool) -> int:
    def run() -> int:
        try:  # a reload whose component fails answers its Observation (and the component's page)
            _, body = _get(hub_url, token_file, "POST", f"/hub/v1/components/{_quote(name)}/reload", name)
        except _Refused as exc:
            return _refused(exc.observation, as_json)
        return _show(body["component"], as_json)

    return guard(as_json, name, run, what="cncf reload --hub")


def unload(hub_url: str, token_file: Path | None, name: str, as_json: bool) -> int:
    def run() -> int:
        try:
            _, body = _get(hub_url, token_file, "DELETE", f"/hub/v1/components/{_quote(name)}", name)
        except _Refused as exc:
            return _refused(exc.observation, as_json)
        if as_json:
            print(render.to_json(body))
        else:
            out.print(f"unloaded {body.get('unloaded', name)}")
        return render.EXIT_VALUE

    return guard(as_json, name, run, what="cncf unload --hub")


def call(
    url: str, token_file: Path | None, selector: str, payload: Any, *, timeout: float | None, as_json: bool
) -> int:
    """``cncf call --hub URL --token-file F SELECTOR [ARG ...]``: as ``cli_serve.call_remote``, with that token."""

    def run() -> int:
        with remote(url, token_file) as hub:
            outcome = hub.call(selector, payload, timeout=timeout)
        return render.print_outcome(outcome, out, as_json=as_json, err=err)

    return guard(as_json, selector, run, what="cncf call --hub")


# -------------------------------------------------------------------- top


def seconds_text(value: float | None) -> str:
    """A duration for a narrow column: ``840µs``, ``12.3ms``, ``1.25s``."""
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f}µs"
    if value < 1:
        return f"{value * 1e3:.3g}ms"
    return f"{value:.3g}s"


def top_frame(url: str, comps: list[dict[str, Any]], console: dict[str, Any], health: dict[str, Any]) -> Group:
    """One frame of ``cncf top``: a header line and one row per component (fits 80 columns)."""
    figures = console.get("components") or {}
    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("component", no_wrap=True, max_width=18, overflow="ellipsis")
    table.add_column("state", no_wrap=True)
    table.add_column("call/s", justify="right", no_wrap=True)
    table.add_column("p50", justify="right", no_wrap=True)
    table.add_column("p99", justify="right", no_wrap=True)
    table.add_column("err/min", justify="right", no_wrap=True)
    table.add_column("run", justify="right", no_wrap=True)
    table.add_column("wait", justify="right", no_wrap=True)
    table.add_column("rst", justify="right", no_wrap=True)
    total_rate = 0.0
    total_errors = 0
    for c in comps:
        f = figures.get(c["name"]) or {}
        points = f.get("points") or []
        now = points[-1] if points else {}
        minute = f.get("minute") or {}
        rate = float(now.get("rate") or 0.0)
        total_rate += rate
        errors = int(minute.get("errors") or 0)
        total_errors += errors
        calls = c.get("calls") or {}
        state = str(c.get("state", ""))
        table.add_row(
            str(c["name"]),
            Text(state, style=render.STATE_STYLE.get(state, "")),
            f"{rate:.1f}",
            seconds_text(minute.get("p50")),
            seconds_text(minute.get("p99")),
            Text(str(errors), style="red" if errors else ""),
            str(calls.get("running", 0)),
            str(calls.get("waiting", 0)),
            str(c.get("restarts", 0)),
        )
    head = Text()
    head.append("cncf top ", style="bold")
    head.append(url, style="cyan")
    up = health.get("uptime")
    if isinstance(up, int | float):
        head.append(f"  up {_uptime(up)}")
    head.append(f"\n{len(comps)} components  {total_rate:.1f} calls/s  {total_errors} errors in the last minute")
    foot = Text("call/s: last 5 s; p50, p99, err/min: last minute; run/wait: calls now", style="dim")
    return Group(head, table, foot)


def _uptime(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _snapshot(client: Any) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    def get(path: str) -> Any:
        body, refusal = _answer(client.get(path), "the hub", f"GET {path}", "top")
        if refusal is not None and path != "/healthz":
            raise ObservationError(refusal)
        return body if isinstance(body, dict) else {}

    comps = get("/hub/v1/components").get("components") or []
    return comps, get("/hub/v1/console?span=60&step=5"), get("/healthz")


def top(hub_url: str, token_file: Path | None, *, interval: float, iterations: int | None, as_json: bool) -> int:
    """``cncf top``: redraw every ``interval`` seconds until Ctrl-C, or ``iterations`` times."""
    import httpx

    def run() -> int:
        n = 0
        live = None
        try:
            with http(hub_url, token_file, timeout=30.0) as client:
                while iterations is None or n < iterations:
                    if n:
                        time.sleep(interval)
                    n += 1
                    try:
                        comps, console, health = _snapshot(client)
                    except httpx.HTTPError as exc:
                        return _refused(_unreachable(hub_url, exc, "top"), as_json)
                    except ObservationError as exc:
                        return _refused(exc.observation, as_json)
                    if as_json:
                        print(json.dumps({"components": comps, "console": console, "health": health}))
                        continue
                    frame = top_frame(hub_url, comps, console, health)
                    if out.is_terminal and iterations != 1:
                        if live is None:
                            from rich.live import Live

                            live = Live(frame, console=out, auto_refresh=False, screen=False)
                            live.start()
                        else:
                            live.update(frame, refresh=True)
                    else:
                        out.print(frame)
        finally:
            if live is not None:
                live.stop()
        return render.EXIT_VALUE

    def interrupted() -> int:
        try:
            return run()
        except KeyboardInterrupt:
            return render.EXIT_VALUE  # quitting top is its normal end

    return guard(as_json, "top", interrupted, what="cncf top")


__all__ = [
    "HubOpt",
    "TokenFileOpt",
    "call",
    "components",
    "http",
    "inspect",
    "need_hub",
    "reload",
    "remote",
    "seconds_text",
    "token",
    "top",
    "top_frame",
    "unload",
]

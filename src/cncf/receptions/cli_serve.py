"""``cncf serve`` (a long-running hub over HTTP) and ``cncf call --hub URL``
(a call to one).  Kept apart from ``cli.py`` so the CLI's other commands
import nothing of the HTTP stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cncf.receptions import render
from cncf.receptions.options import HomeOpt, err, guard, out


def serve(
    hubfile: Annotated[Path, typer.Argument(help="A hub file: its [[component]] tables are loaded.")],
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8470; 0 picks a free one).")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="File holding the bearer token.")] = None,
    grace: Annotated[float | None, typer.Option("--grace", help="Seconds running calls get at shutdown.")] = None,
    auth: Annotated[
        str | None,
        typer.Option(
            "--auth",
            help="When calls and reads need the token: 'loopback' (default: off loopback, or for another "
            "local user) or 'always' (as Jupyter: on loopback too).",
        ),
    ] = None,
    unix: Annotated[
        Path | None, typer.Option("--unix", help="Listen on this Unix socket (mode 0600) instead of TCP.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Serve the hub file's components over HTTP until SIGINT or SIGTERM
    (routes, status table and token rules: docs/http.md)."""
    from cncf.receptions.http.serve import _stderr, _stdout, run

    if port is not None and not 0 <= port <= 65535:
        err.print("error: --port must be 0..65535")
        raise typer.Exit(render.EXIT_USAGE)
    if grace is not None and grace < 0:
        err.print("error: --grace must be >= 0")
        raise typer.Exit(render.EXIT_USAGE)
    if auth is not None and auth not in ("loopback", "always"):
        err.print("error: --auth must be 'loopback' or 'always'")
        raise typer.Exit(render.EXIT_USAGE)
    raise typer.Exit(
        guard(
            False,
            str(hubfile),
            lambda: run(
                hubfile,
                host=host,
                port=port,
                token_file=token_file,
                home=home,
                grace=grace,
                say=_stderr,
                ready=_stdout,
                auth=auth,
                unix=unix,
            ),
            what="cncf serve",
        )
    )


def call_remote(url: str, selector: str, payload: Any, *, timeout: float | None, as_json: bool) -> int:
    """``cncf call --hub URL SELECTOR [ARG ...]``: the Outcome of a running hub, printed as locally."""
    from cncf.client import connect

    def run() -> int:
        with connect(url) as hub:
            outcome = hub.call(selector, payload, timeout=timeout)
        return render.print_outcome(outcome, out, as_json=as_json, err=err)

    return guard(as_json, selector, run, what="cncf call --hub")


__all__ = ["call_remote", "serve"]

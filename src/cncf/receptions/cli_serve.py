"""``cncf serve`` (a long-running hub over HTTP) and ``cncf call --hub URL``
(a call to one).  Kept apart from ``cli.py`` so the CLI's other commands
import nothing of the HTTP stack."""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import Coroutine
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
    job_store: Annotated[
        str | None,
        typer.Option(
            "--job-store",
            help="Where queued jobs are kept: 'sqlite' (the home's file, default) or a postgresql:// URL "
            "shared by several hubs (default: [hub] job_store, else CNCF_JOB_STORE; docs/jobs.md).",
        ),
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
    try:
        settings = hub_settings(hubfile)
    except ValueError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(render.EXIT_USAGE) from None
    # The hub's job settings reach its job system through the environment (flag > [hub] > environment).
    store = job_store if job_store is not None else settings.get("job_store")
    if store is not None:
        os.environ["CNCF_JOB_STORE"] = str(store)
    if "job_lease" in settings:
        os.environ["CNCF_JOB_LEASE"] = str(settings["job_lease"])
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


def hub_settings(hubfile: Path) -> dict[str, Any]:
    """The hub file's ``[hub]`` keys for the hub itself (``job_store``, ``job_lease``),
    checked; {} when the file cannot be read (``cncf serve`` reports that itself)."""
    try:
        doc = tomllib.loads(hubfile.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    table = doc.get("hub", {})
    if not isinstance(table, dict):
        return {}
    out: dict[str, Any] = {}
    if "job_store" in table:
        store = table["job_store"]
        if not isinstance(store, str) or not (
            store in ("sqlite", "") or store.split(":", 1)[0] in ("postgresql", "postgres")
        ):
            raise ValueError(f"{hubfile}: [hub] job_store must be 'sqlite' or a postgresql:// URL")
        out["job_store"] = store
    if "job_lease" in table:
        lease = table["job_lease"]
        if isinstance(lease, bool) or not isinstance(lease, int | float) or not lease > 0:
            raise ValueError(f"{hubfile}: [hub] job_lease must be a number of seconds > 0")
        out["job_lease"] = float(lease)
    return out


def start_job_drain(hub: Any, grace: float) -> asyncio.Task[int] | None:
    """SIGTERM: the hub's running jobs may end within ``grace`` like other calls
    (no new attempt starts); what still runs then is cancelled by the hub's
    close (the cancel tiers) and handed back to the queue."""
    jobs = getattr(hub, "_jobs", None)
    if jobs is None:
        return None
    drain: Coroutine[Any, Any, int] = jobs.drain(grace)
    return asyncio.ensure_future(drain)


def job_summary(hub: Any) -> str | None:
    """The line ``cncf serve`` prints once closed: how many running jobs were requeued."""
    jobs = getattr(hub, "_jobs", None)
    if jobs is None:
        return None
    n = int(jobs.handed_back)
    if n == 0:
        return "jobs: no running job was interrupted"
    return f"jobs: {n} running {'job' if n == 1 else 'jobs'} did not finish within the grace period: requeued"


def call_remote(url: str, selector: str, payload: Any, *, timeout: float | None, as_json: bool) -> int:
    """``cncf call --hub URL SELECTOR [ARG ...]``: the Outcome of a running hub, printed as locally."""
    from cncf.client import connect

    def run() -> int:
        with connect(url) as hub:
            outcome = hub.call(selector, payload, timeout=timeout)
        return render.print_outcome(outcome, out, as_json=as_json, err=err)

    return guard(as_json, selector, run, what="cncf call --hub")


__all__ = ["call_remote", "hub_settings", "job_summary", "serve", "start_job_drain"]

"""``cncf jobs``: list, show, wait for and cancel queued jobs.

A reception like the rest of the CLI: it opens a ``Hub`` on the home
(``--home``, ``$CNCF_HOME``, or the per-user default), asks it, and renders.
Opening the job store from the CLI is harmless to a hub running on the same
home: reads do not block it, a cancellation of a job that hub runs is
delivered to it through the store, and jobs of a live hub are never resumed
by another.  Exit status: 0 for a value (or a listing), 1 for an Observation
(a failed job, an unknown id, a wait that timed out), 2 for a usage error.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from cncf.jobs.model import JobState
from cncf.observation import Stage
from cncf.outcome import ObservationError, Outcome
from cncf.receptions import cli_remote, render
from cncf.receptions.options import HomeOpt, JsonOpt, err, guard, out

jobs_app = typer.Typer(
    name="jobs",
    help="List, show, wait for and cancel queued jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
JobArg = Annotated[str, typer.Argument(help="The job id (as printed by `cncf call` or `cncf jobs list`).")]
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
_STYLE = {"queued": "cyan", "running": "yellow", "succeeded": "green", "failed": "red", "cancelled": "magenta"}


def _hub(home: Path | None, hub_url: str | None = None, token_file: Path | None = None) -> Any:
    if hub_url is not None:  # a served hub: the client has the same job API
        return cli_remote.remote(cli_remote.need_hub(hub_url, "cncf jobs", token_file), token_file)
    from cncf.hub import Hub

    return Hub(home, manifest_inline=False)


def _guard(as_json: bool, target: str, fn: Any) -> int:
    def run() -> int:
        try:
            return int(fn())
        except ObservationError as exc:  # e.g. a served hub that refused or cannot be reached
            return render.print_outcome(Outcome.failure(exc.observation), out, as_json=as_json, err=err)

    return guard(as_json, target, run, stage=Stage.JOB, what="cncf jobs")


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _took(job: Any) -> str:
    if job.started is None:
        return "-"
    end = job.finished
    if end is None:
        return "…"
    return f"{max(0.0, end - job.started):.3f}s"


def _result(job: Any) -> Text:
    o = job.outcome
    if o is None:
        if job.state is JobState.QUEUED and job.not_before is not None:
            return Text(f"retry at {_when(job.not_before)}", style="dim")
        if job.state is JobState.QUEUED and job.waiting:
            return Text(f"waiting: no live hub has {job.component}", style="dim")
        if job.state is JobState.RUNNING and job.owner:
            return Text(f"on {job.owner}", style="dim")
        return Text("")
    if o.observation is not None:
        return Text(f"{o.observation.stage.value}/{o.observation.code.value}", style="red")
    text = render.value_text(o.value).replace("\n", " ")
    return Text(text if len(text) <= 40 else text[:39] + "…")


def _not_found(job_id: str, as_json: bool, exc: Any) -> int:
    return render.print_outcome(
        Outcome(job_id, observation=exc.observation, job_id=job_id), out, as_json=as_json, err=err
    )


@jobs_app.command("list")
def list_jobs(
    state: Annotated[str | None, typer.Option("--state", help=f"Only jobs in this state: {', '.join(STATES)}.")] = None,
    component: Annotated[str | None, typer.Option("--component", help="Only this component's jobs.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (newest first); 0: all.")] = 50,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    hub_url: cli_remote.HubOpt = None,
    token_file: cli_remote.TokenFileOpt = None,
) -> None:
    """List jobs, newest first."""
    if state is not None and state not in STATES:
        err.print(f"error: --state must be one of {', '.join(STATES)}, not {state!r}")
        raise typer.Exit(render.EXIT_USAGE)
    if limit < 0:
        err.print("error: --limit must be 0 (all) or a positive number")
        raise typer.Exit(render.EXIT_USAGE)

    from cncf.jobs import JobStoreError

    def run() -> int:
        with _hub(home, hub_url, token_file) as hub:
            try:
                jobs = hub.jobs(state=state, component=component, limit=limit or None)
            except JobStoreError as exc:  # never "no jobs": say which store and what to do
                return render.print_outcome(Outcome.failure(exc.observation), out, as_json=as_json, err=err)
        if as_json:
            print(render.to_json({"jobs": [j.to_dict() for j in jobs]}))
            return render.EXIT_VALUE
        if not jobs:
            out.print("no jobs" + (f" in state {state}" if state else "") + (f" for {component}" if component else ""))
            return render.EXIT_VALUE
        # fits 80 columns: a light rule under the head, one space between columns,
        # today's times without the date; target and result fold, the rest never wraps
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0), pad_edge=False)
        for col in ("job", "state", "target", "tries", "created", "took", "result"):
            table.add_column(
                col,
                no_wrap=col in ("job", "state", "tries", "created", "took"),
                overflow="fold",
                min_width={"target": 12, "result": 10}.get(col),
            )
        today = datetime.date.today()
        for j in jobs:
            created = _when(j.created)
            table.add_row(
                j.id,
                Text(j.state.value, style=_STYLE.get(j.state.value, "")),
                j.target.replace(".default.", ".", 1),  # the default service goes without saying
                f"{j.attempts}/{j.max_attempts}",
                created[11:] if datetime.date.fromtimestamp(j.created) == today else created[:16],
                _took(j),
                _result(j),
            )
        out.print(table)
        return render.EXIT_VALUE

    raise typer.Exit(_guard(as_json, "jobs list", run))


@jobs_app.command()
def show(
    job_id: JobArg,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    hub_url: cli_remote.HubOpt = None,
    token_file: cli_remote.TokenFileOpt = None,
) -> None:
    """Show one job: state, attempts, times, and its Outcome once finished.
    Exit 0 when the job exists (whatever its state), 1 for an unknown id."""
    from cncf.jobs import JobNotFound

    def run() -> int:
        with _hub(home, hub_url, token_file) as hub:
            try:
                job = hub.job(job_id)
            except JobNotFound as exc:
                return _not_found(job_id, as_json, exc)
        if as_json:
            print(render.to_json(job.to_dict()))
            return render.EXIT_VALUE
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", justify="right")
        table.add_column()
        rows: list[tuple[str, Any]] = [
            ("job", job.id),
            ("state", Text(job.state.value, style=_STYLE.get(job.state.value, ""))),
            ("target", job.target),
            ("arguments", render.to_json({"args": list(job.args), "kwargs": job.kwargs})),
            ("attempts", f"{job.attempts} of at most {job.max_attempts}"),
            ("created", _when(job.created)),
            ("started", _when(job.started)),
            ("finished", _when(job.finished)),
        ]
        if job.not_before is not None and not job.done:
            rows.append(("next attempt", _when(job.not_before)))
        for label, value in (
            ("call", job.call_id),
            ("correlation", job.correlation_id),
            ("idempotency key", job.idempotency_key),
            ("caller", job.caller),
        ):
            if value:
                rows.append((label, value))
        if job.owner is not None and job.state is JobState.RUNNING:
            rows.append(("running in", f"hub {job.owner} (pid-token@host)"))
        if job.waiting:
            rows.append(("waiting", job.waiting))
        if job.cancel_requested and not job.done:
            rows.append(("cancel", "requested"))
        for label, value in rows:
            table.add_row(label, value)
        out.print(table)
        for a in job.history:
            out.print(
                Text(
                    f"attempt {a.number}: {a.observation.stage.value}/{a.observation.code.value} "
                    + (f"on hub {a.hub} " if a.hub else "")
                    + f"— {a.observation.message}",
                    style="dim",
                )
            )
        if job.outcome is not None:
            if job.outcome.observation is not None:
                out.print(render.observation_panel(job.outcome.observation))
            else:
                out.print(Text("value: ", style="dim"), render.value_text(job.outcome.value))
        return render.EXIT_VALUE

    raise typer.Exit(_guard(as_json, job_id, run))


def _load_sources(hub: Any, only: set[str] | None) -> list[str]:
    """Load the components that have queued jobs, from where a hub last loaded
    them (recorded in the store).  Returns their names; load failures are
    reported on stderr (their jobs stay queued)."""
    from cncf.jobs.store import read_sources
    from cncf.selector import normalize

    wanted = {j.component for j in hub.jobs(state="queued", limit=None)}
    system = hub.aio._jobs  # open now (hub.jobs): the store the hub uses, SQLite or PostgreSQL
    store = system.store if system is not None else None
    sources = store.sources() if store is not None else read_sources(hub.home)
    if only is not None:
        wanted &= {normalize(n) for n in only}
    names = []
    for key in sorted(wanted):
        if key not in sources:
            err.print(f"[yellow]no recorded source for component {key!r}: load it in a hub to run its jobs[/yellow]")
            continue
        target, overrides = sources[key]
        handle = hub.load(target, **overrides)
        if handle.state == "failed":
            err.print(render.observation_panel(handle.observation))
            continue
        names.append(handle.name)
    return names


@jobs_app.command()
def work(
    component: Annotated[
        list[str] | None, typer.Option("--component", help="Only this component (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Run queued jobs here: load each component that has queued jobs (from
    where a hub last loaded it), and run until none is queued or running."""

    def run() -> int:
        import time

        with _hub(home) as hub:
            names = _load_sources(hub, set(component) if component else None)
            done_before = {j.id for j in hub.jobs(limit=None) if j.done}
            while names:
                pending = [
                    j for n in names for s in ("queued", "running") for j in hub.jobs(state=s, component=n, limit=1)
                ]
                if not pending:
                    break
                time.sleep(0.1)
            finished = [j for j in hub.jobs(limit=None) if j.done and j.id not in done_before]
        counts: dict[str, int] = {}
        for j in finished:
            counts[j.state.value] = counts.get(j.state.value, 0) + 1
        if as_json:
            print(render.to_json({"components": names, "finished": counts}))
        else:
            out.print(
                f"ran jobs of {', '.join(names) or 'no component'}: "
                + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do")
            )
        return render.EXIT_VALUE

    raise typer.Exit(_guard(as_json, "jobs work", run))


@jobs_app.command()
def wait(
    job_id: JobArg,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Give up waiting after S seconds.")] = None,
    run_here: Annotated[bool, typer.Option("--run", help="Load the job's component here and run it.")] = False,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    hub_url: cli_remote.HubOpt = None,
    token_file: cli_remote.TokenFileOpt = None,
) -> None:
    """Wait for a job's final Outcome and print it like `cncf call` does.

    The job is run by a hub that has its component loaded on this home (a
    `cncf run` hub, `cncf jobs work`, or this command with --run); a wait
    that times out prints a `wait_timeout` Observation (exit 1) and leaves
    the job as it is."""
    if timeout is not None and timeout <= 0:
        err.print("error: --timeout must be a positive number of seconds")
        raise typer.Exit(render.EXIT_USAGE)
    if run_here and hub_url is not None:
        err.print("error: --run runs the job here; a served hub (--hub) runs its own jobs")
        raise typer.Exit(render.EXIT_USAGE)
    from cncf.jobs import JobNotFound

    def run() -> int:
        with _hub(home, hub_url, token_file) as hub:
            if run_here:
                try:
                    job = hub.job(job_id)
                except JobNotFound as exc:
                    return _not_found(job_id, as_json, exc)
                if not job.done:
                    _load_sources(hub, {job.component})
            outcome = hub.wait(job_id, timeout)
        if not as_json:  # render prints "job … queued" for an Outcome with a job id
            outcome = dataclasses.replace(outcome, job_id=None)
        return render.print_outcome(outcome, out, as_json=as_json, err=err)

    raise typer.Exit(_guard(as_json, job_id, run))


@jobs_app.command()
def cancel(
    job_id: JobArg,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    hub_url: cli_remote.HubOpt = None,
    token_file: cli_remote.TokenFileOpt = None,
) -> None:
    """Cancel a job: a queued one at once; a running one cooperatively (the
    hub running it sees the request within a fraction of a second).  Exit 1
    when there was nothing to cancel (unknown id, or already finished)."""
    from cncf.jobs import JobNotFound

    def run() -> int:
        with _hub(home, hub_url, token_file) as hub:
            try:
                before = hub.job(job_id)
            except JobNotFound as exc:
                return _not_found(job_id, as_json, exc)
            done = hub.cancel_job(job_id)
            after = hub.job(job_id)
        if as_json:
            print(
                render.to_json(
                    {
                        "ok": done,
                        "job_id": job_id,
                        "cancelled": after.state is JobState.CANCELLED,
                        "requested": done and after.state is not JobState.CANCELLED,
                        "state": after.state.value,
                    }
                )
            )
        elif not done:
            out.print(f"job {job_id} is already {before.state.value}; nothing to cancel")
        elif after.state is JobState.CANCELLED:
            out.print(f"job {job_id} cancelled")
        else:
            out.print(f"job {job_id} is {after.state.value}: cancellation requested")
        return render.EXIT_VALUE if done else render.EXIT_OBSERVATION

    raise typer.Exit(_guard(as_json, job_id, run))


__all__ = ["jobs_app"]

"""The ``cncf`` command line: call, inspect, run, jobs.

A reception: it builds calls, awaits the hub and renders Outcomes — nothing
else.  An outermost guard turns an unexpected error in the CLI itself into an
``internal_error`` Observation (exit 1), never a bare traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

from cncf.outcome import Outcome
from cncf.receptions import cli_remote, cli_serve, render
from cncf.receptions.options import HomeOpt, JsonOpt, err, guard, out

app = typer.Typer(
    name="cncf",
    help="An execution hub: run components built in any form, get every failure back as data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: Rich markup would eat "[[component]]" and "[hub]".
    rich_markup_mode=None,
)
_REQ = "A requirement for the private environment (repeatable)."
_INTERP = "Interpreter for a python component (name on PATH or path)."
_TARGET = "A folder, cncf.toml, .jar, .pyz, .whl, or 'module:Class' (inline)."
_ARGS = "name=value (named) or value (positional); JSON when it parses."
EntryOpt = Annotated[str | None, typer.Option("--entry", help="Entry: 'module:Class', 'module', or a Java class.")]
FormOpt = Annotated[str | None, typer.Option("--form", help="python | jar | inline | command.")]
ReqOpt = Annotated[list[str] | None, typer.Option("--requirement", "-r", help=_REQ)]
InterpOpt = Annotated[str | None, typer.Option("--interpreter", help=_INTERP)]
NameOpt = Annotated[str | None, typer.Option("--name", help="Component name (default: manifest or artifact name).")]
ClasspathOpt = Annotated[
    list[str] | None,
    typer.Option("--classpath", help="jar: another jar (or glob) for the component's own loader (repeatable)."),
]
InitOpt = Annotated[
    str | None, typer.Option("--init", help="Constructor arguments as JSON: a list (positional) or an object (named).")
]


def _version(value: bool) -> None:
    if value:
        from cncf import __version__

        print(f"cncf {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """cncf: an execution hub."""


class _CallCommand(typer.core.TyperCommand):
    """Remembers how many arguments came after ``--`` (click drops the marker):
    those are positional whatever they contain (Base64 ``aGVsbG8=``, ``a=b``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_AFTER_DASHES] = len(args) - args.index("--") - 1 if "--" in args else 0
        return super().parse_args(ctx, args)


_AFTER_DASHES = "cncf.after_dashes"


def _after_dashes(ctx: typer.Context) -> int:
    return int(ctx.meta.get(_AFTER_DASHES, 0))


def parse_args(values: list[str], positional_tail: int = 0) -> tuple[list[Any], dict[str, Any]]:
    """``name=value`` is named, a bare value positional; JSON if it parses, else a string.
    The last ``positional_tail`` values (those after ``--``) are positional whatever they contain."""
    pos: list[Any] = []
    named: dict[str, Any] = {}
    cut = len(values) - positional_tail
    for i, raw in enumerate(values):
        name, eq, text = raw.partition("=")
        if eq and name.isidentifier() and i < cut:
            named[name] = _value(text)
        else:
            pos.append(_value(raw))
    return pos, named


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _overrides(
    entry: str | None,
    form: str | None,
    requirement: list[str] | None,
    interpreter: str | None,
    name: str | None,
    classpath: list[str] | None = None,
    init: str | None = None,
) -> dict[str, Any]:
    o: dict[str, Any] = {}
    if classpath:
        # Relative to where the user typed it (a manifest's own entries are relative to it).
        o["classpath"] = [str(Path(p).expanduser().absolute()) for p in classpath]
    if init is not None:
        o["init"] = _init(init)
    if entry:
        o["entry"] = entry
    if form:
        o["form"] = form
    if requirement:
        o["requirements"] = list(requirement)
    if interpreter:
        o["interpreter"] = interpreter
    if name:
        o["name"] = name
    return o


def _init(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        err.print(f"error: --init must be JSON (a list is positional, an object named): {exc}")
        raise typer.Exit(render.EXIT_USAGE) from None
    if not isinstance(value, list | dict):
        err.print('error: --init must be a JSON list (positional) or object (named), e.g. \'{"prefix": ">"}\'')
        raise typer.Exit(render.EXIT_USAGE)
    return value


def _hub(home: Path | None, quiet: bool) -> Any:
    from cncf.hub import Hub

    progress = None if quiet else (lambda line: err.print(f"[dim]… {line}[/dim]"))
    # A one-shot CLI hub only submits jobs: running older queued jobs and then
    # interrupting them at exit is `cncf jobs work`'s business, not `call`'s.
    return Hub(home, progress=progress, job_workers=0, manifest_inline=False)


def _guard(as_json: bool, target: str, fn: Any) -> int:
    return guard(as_json, target, fn)


@app.command(cls=_CallCommand, context_settings={"ignore_unknown_options": True})
def call(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help=_TARGET + " With --hub: the SELECTOR component[.service].operation.")],
    operation: Annotated[str | None, typer.Argument(help="Operation name, or service.operation.")] = None,
    args: Annotated[list[str] | None, typer.Argument(help=_ARGS)] = None,
    as_json: JsonOpt = False,
    hub_url: Annotated[str | None, typer.Option("--hub", help="Call a running hub (cncf serve) at this URL.")] = None,
    token_file: cli_remote.TokenFileOpt = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Overall deadline in seconds.")] = None,
    entry: EntryOpt = None,
    form: FormOpt = None,
    requirement: ReqOpt = None,
    interpreter: InterpOpt = None,
    name: NameOpt = None,
    classpath: ClasspathOpt = None,
    init: InitOpt = None,
    home: HomeOpt = None,
) -> None:
    """Load TARGET and call one OPERATION; print the value or the Observation.
    After `--` every argument is positional, whatever it contains."""
    if timeout is not None and timeout <= 0:
        err.print("error: --timeout must be a positive number of seconds")
        raise typer.Exit(render.EXIT_USAGE)
    values = args or []
    tail = _after_dashes(ctx)
    if hub_url is not None:  # TARGET is the selector; OPERATION, if any, is the first argument
        values = ([operation] if operation is not None else []) + values
    elif operation is None:
        err.print("error: missing argument OPERATION (or call a running hub: --hub URL SELECTOR)")
        raise typer.Exit(render.EXIT_USAGE)
    for raw in values[: len(values) - tail]:  # negative numbers pass; anything else dashed is a typo
        if raw.startswith("-") and not isinstance(_value(raw), int | float):
            err.print(f"error: no such option: {raw} (to pass it as a string value, quote it as JSON: '\"{raw}\"')")
            raise typer.Exit(render.EXIT_USAGE)
    pos, named = parse_args(values, tail)
    if hub_url is not None:
        from cncf.call import Arguments

        remote: Any = Arguments(tuple(pos), named) if pos and named else (named or pos or None)
        if token_file is not None:
            url = cli_remote.need_hub(hub_url, "cncf call", token_file)
            raise typer.Exit(cli_remote.call(url, token_file, target, remote, timeout=timeout, as_json=as_json))
        raise typer.Exit(cli_serve.call_remote(hub_url, target, remote, timeout=timeout, as_json=as_json))
    overrides = _overrides(entry, form, requirement, interpreter, name, classpath, init)

    def run() -> int:
        from cncf.call import Arguments

        with _hub(home, as_json) as hub:
            handle = hub.load(target, **overrides)
            if handle.state == "failed" and handle.observation is not None:
                return render.print_outcome(Outcome.failure(handle.observation), out, as_json=as_json, err=err)
            payload: Any = Arguments(tuple(pos), named) if pos and named else (named if named else pos)
            outcome = hub.call(f"{handle.name}.{operation}", payload, timeout=timeout, caller="cli")
            return render.print_outcome(outcome, out, as_json=as_json, err=err)

    raise typer.Exit(_guard(as_json, f"{target} {operation}", run))


@app.command()
def inspect(
    target: Annotated[str, typer.Argument(help=_TARGET + " With --hub: a component's name.")],
    as_json: JsonOpt = False,
    hub_url: cli_remote.HubOpt = None,
    token_file: cli_remote.TokenFileOpt = None,
    entry: EntryOpt = None,
    form: FormOpt = None,
    requirement: ReqOpt = None,
    interpreter: InterpOpt = None,
    name: NameOpt = None,
    classpath: ClasspathOpt = None,
    init: InitOpt = None,
    home: HomeOpt = None,
) -> None:
    """Show a component's name, form, state, services, operations and policies."""
    if hub_url is not None:
        url = cli_remote.need_hub(hub_url, "cncf inspect", token_file)
        raise typer.Exit(cli_remote.inspect(url, token_file, target, as_json))
    overrides = _overrides(entry, form, requirement, interpreter, name, classpath, init)

    def run() -> int:
        with _hub(home, as_json) as hub:
            handle = hub.load(target, **overrides)
            info = handle.describe()
            if as_json:
                print(render.to_json(info))
            else:
                out.print(render.describe_table(info))
                if handle.observation is not None:
                    out.print(render.observation_panel(handle.observation))
            return render.EXIT_OBSERVATION if handle.state == "failed" else render.EXIT_VALUE

    raise typer.Exit(_guard(as_json, target, run))


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="A hub file: [[component]] tables and [[call]] tables.")],
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Run a hub from a config file: load its components side by side, make its calls,
    and print a table of Outcomes.  Exit 1 if any call's Outcome differs from its `expect`."""
    from cncf.receptions.runner import run_config

    raise typer.Exit(_guard(as_json, str(config), lambda: run_config(config, home, as_json, out, err)))


_NAME = "The component's name on the served hub."


@app.command()
def components(
    as_json: JsonOpt = False, hub_url: cli_remote.HubOpt = None, token_file: cli_remote.TokenFileOpt = None
) -> None:
    """List a served hub's components: form, state, pid, restarts, operations, last Observation."""
    url = cli_remote.need_hub(hub_url, "cncf components", token_file)
    raise typer.Exit(cli_remote.components(url, token_file, as_json))


@app.command()
def reload(
    name: Annotated[str, typer.Argument(help=_NAME)],
    as_json: JsonOpt = False,
    hub_url: cli_remote.HubOpt = None,
    token_file: cli_remote.TokenFileOpt = None,
) -> None:
    """Reload a component of a served hub (needs the token) and show it as `cncf inspect` does."""
    url = cli_remote.need_hub(hub_url, "cncf reload", token_file)
    raise typer.Exit(cli_remote.reload(url, token_file, name, as_json))


@app.command()
def unload(
    name: Annotated[str, typer.Argument(help=_NAME)],
    as_json: JsonOpt = False,
    hub_url: cli_remote.HubOpt = None,
    token_file: cli_remote.TokenFileOpt = None,
) -> None:
    """Unload a component of a served hub (needs the token)."""
    url = cli_remote.need_hub(hub_url, "cncf unload", token_file)
    raise typer.Exit(cli_remote.unload(url, token_file, name, as_json))


@app.command()
def top(
    hub_url: cli_remote.HubOpt = None,
    token_file: cli_remote.TokenFileOpt = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between refreshes.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    iterations: Annotated[int | None, typer.Option("--iterations", help="Print N frames and exit.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object a frame.")] = False,
) -> None:
    """A live view of a served hub, like htop: per component its state, calls per
    second, latency p50/p99, errors in the last minute, calls running and waiting,
    restarts.  Ctrl-C quits."""
    url = cli_remote.need_hub(hub_url, "cncf top", token_file)
    if interval <= 0 or (iterations is not None and iterations < 1):
        err.print("error: --interval must be positive and --iterations at least 1")
        raise typer.Exit(render.EXIT_USAGE)
    n = 1 if once else iterations
    raise typer.Exit(cli_remote.top(url, token_file, interval=interval, iterations=n, as_json=as_json))


@app.command()
def upgrade(
    name: Annotated[str, typer.Argument(help="The component to upgrade on the running hub.")],
    target: Annotated[str | None, typer.Argument(help="The new target (default: the same one again).")] = None,
    hub_url: cli_remote.HubOpt = None,
    token_file: cli_remote.TokenFileOpt = None,
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", help="A manifest override KEY=VALUE (VALUE as JSON when it parses; repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Load a new generation of a component beside the old one on a running hub, switch
    when it is ready, let the old one drain.  Needs the token (--token-file or CNCF_TOKEN).  Exit 1 when
    the new generation was rolled back (the old one serves on)."""
    from cncf.observation import Observation

    url = cli_remote.need_hub(hub_url, "cncf upgrade", token_file)

    overrides: dict[str, Any] = {}
    for item in setting or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            err.print(f"error: --set takes KEY=VALUE, got {item!r}")
            raise typer.Exit(2)
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value

    def run() -> int:
        with cli_remote.remote(url, token_file) as hub:
            answer = hub.upgrade(name, target, **overrides)
        if as_json:
            print(render.to_json(answer))
        elif answer.get("ok"):
            info = answer.get("component") or {}
            out.print(f"{name}: generation {info.get('generation')} serving ({info.get('state')})")
        else:
            out.print(render.observation_panel(Observation.from_dict(answer["observation"])))
        return render.EXIT_VALUE if answer.get("ok") else render.EXIT_OBSERVATION

    raise typer.Exit(_guard(as_json, name, run))


def _mount_jobs() -> None:
    try:
        from cncf.receptions.cli_jobs import jobs_app
    except ImportError:
        return
    app.add_typer(jobs_app, name="jobs", help="List, show, wait for and cancel queued jobs.")


_mount_jobs()
app.command(name="serve")(cli_serve.serve)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except SystemExit as exc:
        code = exc.code
        sys.exit(code if isinstance(code, int) else (0 if code is None else 2))


__all__ = ["app", "main", "parse_args"]

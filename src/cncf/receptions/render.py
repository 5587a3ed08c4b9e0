"""Rendering Outcomes and Observations for people and for scripts.

The mapping from an Outcome to the CLI's exit status and JSON lives here and
nowhere else: 0 for a value, 1 for an Observation, 2 for a usage error.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cncf.observation import Observation
from cncf.outcome import Outcome

EXIT_VALUE = 0
EXIT_OBSERVATION = 1
EXIT_USAGE = 2


def exit_status(outcome: Outcome) -> int:
    return EXIT_VALUE if outcome.ok else EXIT_OBSERVATION


def to_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=None, default=str)


def value_text(value: Any) -> str:
    """A string prints as itself; anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def observation_panel(obs: Observation, *, verbose: bool = False) -> Panel:
    body = Text()
    body.append(f"{obs.message}\n", style="bold")
    rows = [
        ("code", obs.code.value),
        ("stage", obs.stage.value),
        ("target", obs.target),
        ("call", obs.call_id),
        ("class", f"{obs.category} / {obs.symptom} / {obs.cause_kind}"),
        ("retryable", "yes" if obs.retryable else "no"),
    ]
    for key, val in rows:
        if val:
            body.append(f"{key:>10}: ", style="dim")
            body.append(f"{val}\n")
    for key, val in obs.attributes.items():
        if val is not None and key not in ("stdout", "stderr"):
            body.append(f"{key:>10}: ", style="dim")
            body.append(f"{val if isinstance(val, str) else to_json(val)}\n")
    cause = obs.cause
    depth = 0
    while cause is not None and depth < 4:
        body.append("     cause: ", style="dim")
        body.append(f"{cause.type}: {cause.message}\n", style="yellow")
        if cause.stack and (verbose or depth == 0):
            lines = cause.stack.rstrip().splitlines()
            shown = lines if verbose else lines[-12:]
            body.append("\n".join("            " + ln for ln in shown) + "\n", style="dim")
        cause = cause.cause
        depth += 1
    return Panel(
        body,
        title=f"[red]Observation[/red] {obs.stage.value}/{obs.code.value}",
        title_align="left",
        border_style="red",
        expand=False,
    )


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """The ``--json`` object: the Outcome's, plus what the component printed during
    the call as ``stdout`` / ``stderr`` (absent when it printed nothing)."""
    d = outcome.to_dict()
    if outcome.stdout:
        d["stdout"] = outcome.stdout
    if outcome.stderr:
        d["stderr"] = outcome.stderr
    return d


def print_outcome(outcome: Outcome, console: Console, *, as_json: bool, err: Console) -> int:
    """Print the value or the Observation; component output goes to stderr."""
    for stream, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        if text and not as_json:
            for line in text.rstrip("\n").splitlines():
                err.print(Text(f"[{stream}] {line}", style="dim"))
    if as_json:
        print(to_json(outcome_json(outcome)))
    elif outcome.observation is not None:
        console.print(observation_panel(outcome.observation))
    elif outcome.queued:
        print(f"job {outcome.job_id} queued")
        err.print(f"[dim]wait for it: cncf jobs wait {outcome.job_id} --run[/dim]")
    else:
        print(value_text(outcome.value))
    return exit_status(outcome)


STATE_STYLE = {
    "ready": "green",
    "busy": "cyan",
    "loading": "cyan",
    "restarting": "yellow",
    "crashed": "red",
    "failed": "red",
    "unloaded": "dim",
}


def components_table(comps: list[dict[str, Any]]) -> Table:
    """``cncf components``: one row per component (a served hub's summaries); fits 80 columns."""
    table = Table(title_justify="left")
    table.add_column("component", no_wrap=True, max_width=20, overflow="ellipsis")
    table.add_column("form", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("pid", justify="right", no_wrap=True)
    table.add_column("rst", justify="right", no_wrap=True)
    table.add_column("ops", justify="right", no_wrap=True)
    table.add_column("last Observation", overflow="fold")
    for c in comps:
        obs = c.get("observation") or {}
        state = str(c.get("state", ""))
        table.add_row(
            str(c.get("name", "")),
            str(c.get("form", "")),
            Text(state, style=STATE_STYLE.get(state, "")),
            str(c.get("pid") or "-"),
            str(c.get("restarts", 0)),
            str(len(c.get("operations") or [])),
            Text(str(obs.get("code", "")), style="red") if obs else "",
        )
    return table


def describe_table(info: dict[str, Any]) -> Table:
    table = Table(title=f"{info['name']}  ({info['form']}, {info['state']})", title_justify="left")
    table.add_column("operation")
    table.add_column("parameters")
    table.add_column("policy")
    table.add_column("wait / run timeout")
    for sname, ops in info["services"].items():
        for oname, op in ops.items():
            params = op["params"]
            ptext = (
                "?"
                if params is None
                else ", ".join(
                    ("*" if p["kind"] == "varargs" else "**" if p["kind"] == "varkw" else "")
                    + p["name"]
                    + ("" if p["required"] else "?")
                    for p in params
                )
            )
            pol = op["policy"]
            mode = pol["policy"] + (f" ≤{pol['max_concurrency']}" if pol["policy"] == "concurrent" else "")
            table.add_row(
                f"{sname}.{oname}", ptext, mode, f"{pol['wait_timeout'] or '-'} / {pol['run_timeout'] or '-'}"
            )
    return table

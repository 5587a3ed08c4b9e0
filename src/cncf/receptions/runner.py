"""``cncf run HUBFILE``: load several components side by side and make calls.

The hub file (TOML)::

    [[component]]
    target = "python-counter"        # relative to the hub file
    name = "counter"                 # any manifest key may be overridden here

    [[call]]
    call = "counter.increment"
    args = {by = 2}                  # a table (named) or an array (positional)
    timeout = 5
    expect = "value"                 # or an Observation code, e.g. "raised"

    [hub]                            # defaults for every component (its own keys win)
    placement = "ray"                # placement, ray_address, placement_resources

Each call's Outcome is printed in a table; the exit status is 1 if any
Outcome is not what ``expect`` says (default: a value).
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cncf.receptions import render

_COMPONENT_KEYS = {"target"}
_CALL_KEYS = {"call", "args", "timeout", "expect"}


class HubFileError(ValueError):
    pass


#: ``[hub]`` keys for the hub itself, not defaults for its components (read by ``cncf serve``)
HUB_ONLY_KEYS = {"job_store", "job_lease"}


def _read(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HubFileError(f"{path}: cannot read hub file: {exc}") from None
    comps = doc.get("component", [])
    calls = doc.get("call", [])
    if not isinstance(comps, list) or not all(isinstance(c, dict) and "target" in c for c in comps):
        raise HubFileError(f"{path}: key 'component' must be an array of tables, each with 'target'")
    if not isinstance(calls, list) or not all(isinstance(c, dict) and "call" in c for c in calls):
        raise HubFileError(f"{path}: key 'call' must be an array of tables, each with 'call'")
    for i, c in enumerate(calls):
        extra = set(c) - _CALL_KEYS
        if extra:
            raise HubFileError(f"{path}: call[{i}] has unknown key(s) {sorted(extra)}; expected {sorted(_CALL_KEYS)}")
    defaults = _hub_table(doc.get("hub", {}), path)
    return [{**defaults, **c} for c in comps], calls


def _hub_table(table: Any, path: Path) -> dict[str, Any]:
    """``[hub]``: keys for every component of the file (a component's own keys win);
    today the placement keys (brief section 12), validated as in a manifest."""
    from cncf.manifest import HUB_KEYS, _Checker, placement_keys
    from cncf.observation import Failed

    if not isinstance(table, dict):
        raise HubFileError(f"{path}: key 'hub' must be a table [hub]")
    table = {k: v for k, v in table.items() if k not in HUB_ONLY_KEYS}  # read by cli_serve.hub_settings
    extra = set(table) - set(HUB_KEYS)
    if extra:
        expected = sorted({*HUB_KEYS, *HUB_ONLY_KEYS})
        raise HubFileError(f"{path}: [hub] has unknown key(s) {sorted(extra)}; expected {expected}")
    try:
        placement_keys(_Checker(f"{path} [hub]"), table, "hub.")
    except Failed as exc:
        raise HubFileError(exc.observation.message) from None
    return dict(table)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def run_config(path: Path, home: Path | None, as_json: bool, out: Console, err: Console) -> int:
    from cncf.hub import Hub
    from cncf.receptions.cli_serve import hub_settings

    try:
        comps, calls = _read(path)
        jobs = hub_settings(path)  # [hub] job_store / job_lease
    except (HubFileError, ValueError) as exc:
        err.print(f"error: {exc}")
        return render.EXIT_USAGE
    base = path.parent
    report: dict[str, Any] = {"components": [], "calls": []}
    failures = 0
    progress = None if as_json else (lambda line: err.print(f"[dim]… {line}[/dim]"))
    with Hub(
        home, progress=progress, manifest_inline=False, job_store=jobs.get("job_store"), job_lease=jobs.get("job_lease")
    ) as hub:
        ctable = Table(title="components", title_justify="left")
        for col in ("name", "form", "state", "operations", "load"):
            ctable.add_column(col)
        for c in comps:
            overrides = {k: v for k, v in c.items() if k not in _COMPONENT_KEYS}
            t0 = time.perf_counter()
            handle = hub.load(base / c["target"], **overrides)
            ms = (time.perf_counter() - t0) * 1000
            obs = handle.observation
            ops = [o.split(".", 1)[1] for o in handle.operations]
            shown_ops = ", ".join(ops[:6]) + (f" … (+{len(ops) - 6})" if len(ops) > 6 else "")
            ctable.add_row(
                handle.name,
                handle.form,
                handle.state,
                shown_ops or (f"{obs.code.value}: {obs.message[:60]}" if obs else ""),
                f"{ms:.0f} ms",
            )
            report["components"].append(
                {
                    "name": handle.name,
                    "form": handle.form,
                    "state": handle.state,
                    "observation": obs.to_dict() if obs else None,
                }
            )
        table = Table(title="calls", title_justify="left")
        for col in ("call", "args", "outcome", "expected", "time"):
            table.add_column(col, no_wrap=col in ("call", "expected", "time"))
        for c in calls:
            t0 = time.perf_counter()
            outcome = hub.call(c["call"], c.get("args"), timeout=c.get("timeout"), caller="run")
            ms = (time.perf_counter() - t0) * 1000
            expect = c.get("expect", "value")
            obs = outcome.observation
            got = "value" if obs is None else obs.code.value
            good = got == expect
            failures += not good
            shown = _clip(render.to_json(outcome.value), 60) if obs is None else f"[red]{got}[/red] ({obs.stage.value})"
            table.add_row(
                c["call"],
                _clip(render.to_json(c.get("args")), 40) if c.get("args") is not None else "",
                shown,
                ("[green]✓[/green] " if good else "[red]✗[/red] ") + expect,
                f"{ms:.1f} ms",
            )
            report["calls"].append(
                {"call": c["call"], "expect": expect, "outcome": outcome.to_dict(), "as_expected": good}
            )
        if as_json:
            print(render.to_json(report))
        else:
            out.print(ctable)
            out.print(table)
            out.print(f"{len(calls) - failures} of {len(calls)} calls as expected")
    return render.EXIT_OBSERVATION if failures else render.EXIT_VALUE

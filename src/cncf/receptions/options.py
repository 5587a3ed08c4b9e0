"""What every CLI command shares: the consoles, the common options, and the
outermost guard that turns an unexpected error in the CLI into an
``internal_error`` Observation (exit 1) instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cncf.failures import internal_error
from cncf.observation import Stage
from cncf.outcome import Outcome
from cncf.receptions import render

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_HOME = "Hub home folder (default: $CNCF_HOME or ~/.local/state/cncf)."
HomeOpt = Annotated[Path | None, typer.Option("--home", help=_HOME)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def guard(
    as_json: bool, target: str, fn: Callable[[], int], *, stage: Stage = Stage.DISPATCH, what: str = "the cncf CLI"
) -> int:
    try:
        return int(fn())
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:  # the outermost guard: still an Observation
        obs = internal_error(exc, f"{what} failed", stage=stage, target=target)
        return render.print_outcome(Outcome.failure(obs), out, as_json=as_json, err=err)

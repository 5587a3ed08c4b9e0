"""Run every benchmark and print each figure as a ratio against its floor,
measured in the same run.  Usage: ``python benchmarks/run.py [inline python jar jobs threads http placement replicas]``.

Nothing here asserts a time: the figures are for reading (and for the
project's docs/benchmarks.md), never a pass/fail gate.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
SUITES = ["inline", "python", "jar", "jobs", "threads", "http", "placement", "ownership", "replicas"]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    wanted = argv or SUITES
    console = Console(width=None if sys.stdout.isatty() else 150)
    table = Table(title="cncf benchmarks (value vs floor measured in the same run)", title_justify="left")
    for col in ("figure", "value", "floor", "value − floor", "ratio"):
        table.add_column(col, justify="right" if col != "figure" else "left")
    status = 0
    for suite in wanted:
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench_{suite}")
            rows = module.main()
        except ModuleNotFoundError as exc:
            table.add_row(f"[yellow]{suite}: not available ({exc.name})[/yellow]", "", "", "", "")
            continue
        except Exception:
            table.add_row(f"[red]{suite}: failed[/red]", "", "", "", "")
            console.print(traceback.format_exc())
            status = 1
            continue
        for name, value, floor, unit in rows:
            ratio = f"{value / floor:.2f}x" if floor else "-"
            table.add_row(name, f"{value:,.2f} {unit}", f"{floor:,.2f} {unit}", f"{value - floor:,.2f} {unit}", ratio)
        table.add_row(f"[dim]{suite}: {time.perf_counter() - t0:.1f} s[/dim]", "", "", "", "")
    console.print(table)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

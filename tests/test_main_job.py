"""The README's first command: the main job on the bundled examples, for real
(uv environments, a Node.js worker, a Debian jar in the JVM host)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent


def build_examples() -> None:
    """The README's first step: ``sh examples/build.sh`` (the Scala fat JAR)."""
    require_tool("scalac")
    r = subprocess.run(
        ["sh", str(ROOT / "examples" / "build.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (ROOT / "examples" / "scala-inventory" / "build" / "inventory.jar").is_file(), r.stdout + r.stderr


def test_the_main_job_runs_every_bundled_example_as_expected(tmp_path):
    require_tool("node")
    require_tool("java")
    build_examples()
    r = subprocess.run(
        [sys.executable, "-m", "cncf", "run", str(ROOT / "examples" / "hub.toml"), "--json", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert {c["form"] for c in report["components"]} == {"python", "command", "jar"}
    assert all(c["state"] == "ready" for c in report["components"]), report["components"]
    assert all(c["as_expected"] for c in report["calls"]), report["calls"]
    values = {c["call"]: c["outcome"].get("value") for c in report["calls"] if c["outcome"]["ok"]}
    assert values["packaging21.version"].startswith("21.") and values["packaging24.version"].startswith("24.")

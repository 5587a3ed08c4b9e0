"""The python and command forms through the CLI, as a real process: a
third-party package in a version that clashes with the hub's own, PyPy,
a zipapp, Node, and an Observation's JSON."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.python_form.conftest import EXAMPLES, FIXTURES, Builder, node, pypy


def cncf(*args: str, home: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CNCF_CACHE=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "cncf", *args, "--home", str(home)], capture_output=True, text=True, timeout=300, env=env
    )


def test_a_version_that_clashes_with_the_hubs_own(tmp_path: Path, shared_cache: Path) -> None:
    hub_rich = importlib.metadata.version("rich")
    assert not hub_rich.startswith("10.")
    folder = tmp_path / "markup"
    folder.mkdir()
    (folder / "which.py").write_text(
        "import importlib.metadata\n\n\ndef version():\n    return importlib.metadata.version('rich')\n"
    )
    r = cncf(
        "call",
        str(folder),
        "version",
        "--requirement",
        "rich==10.16.2",
        "--entry",
        "which",
        "--json",
        home=tmp_path / "h",
        cache=shared_cache,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"ok": True, "value": "10.16.2"}
    r = cncf(
        "call",
        str(folder),
        "escape",
        "[b]x",
        "--requirement",
        "rich==10.16.2",
        "--entry",
        "rich.markup",
        home=tmp_path / "h",
        cache=shared_cache,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "\\[b]x"


def test_pypy_zipapp_and_node_in_one_line_each(tmp_path: Path, shared_cache: Path, builder: Builder) -> None:
    pypy()
    node()
    r = cncf("call", str(EXAMPLES / "python-pypy"), "fib", "20", home=tmp_path, cache=shared_cache)
    assert (r.returncode, r.stdout.strip()) == (0, "6765"), r.stderr
    pyz = builder("pyz", "counter", "counter:Counter")
    r = cncf("call", str(pyz), "increment", "by=3", "--entry", "counter:Counter", home=tmp_path, cache=shared_cache)
    assert (r.returncode, r.stdout.strip()) == (0, "3"), r.stderr
    r = cncf("call", str(EXAMPLES / "node-counter"), "greet", "ada", home=tmp_path, cache=shared_cache)
    assert r.returncode == 0, r.stderr
    assert "hello, ada" in r.stdout


def test_a_load_observation_as_json_exits_1(tmp_path: Path, shared_cache: Path) -> None:
    r = cncf(
        "call",
        str(FIXTURES / "counter"),
        "get",
        "--requirement",
        "cncf-no-such-distribution-zz==1.0",
        "--json",
        home=tmp_path,
        cache=shared_cache,
    )
    assert r.returncode == 1
    obs = json.loads(r.stdout)["observation"]
    assert (obs["code"], obs["stage"]) == ("dependency_unresolved", "load")
    assert obs["attributes"]["resolver_output"]

"""The README examples of the python and command forms, built and run as a
user would: every artifact kind in one hub, including two components pinned
to different major versions of ``packaging``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipapp
from pathlib import Path

import pytest

import cncf
from tests.python_form.conftest import EXAMPLES, node, pypy, require_tool, tool_module


def _sh(argv: list[str], cwd: Path) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/ with every artifact built by the commands its
    cncf.toml documents."""
    uv = require_tool("uv")
    tool_module("shiv")
    tool_module("pex")
    root = tmp_path_factory.mktemp("examples")
    for name in ("python-zipapp", "python-shiv", "python-pex", "python-wheel"):
        shutil.copytree(EXAMPLES / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    z = root / "python-zipapp"
    _sh([uv, "pip", "install", "--quiet", "--python", sys.executable, "--target", "build", "packaging==24.1"], z)
    shutil.copy(z / "src" / "greeter.py", z / "build")
    (z / "dist").mkdir()
    (z / "build" / "__main__.py").write_text("print('load me with cncf')\n")
    zipapp.create_archive(z / "build", z / "dist" / "greeter.pyz", interpreter="/usr/bin/env python3")
    s = root / "python-shiv"
    (s / "dist").mkdir()
    _sh([sys.executable, "-m", "shiv", "--site-packages", "src", "-o", "dist/greeter.pyz", "packaging==23.2"], s)
    p = root / "python-pex"
    (p / "dist").mkdir()
    _sh([sys.executable, "-m", "pex", "-D", "src", "-o", "dist/greeter.pex", "packaging==21.3"], p)
    _sh([uv, "build", "--wheel", "--quiet", "--out-dir", "dist", "."], root / "python-wheel")
    return root


def test_every_artifact_kind_side_by_side(pyhub: cncf.Hub, built: Path) -> None:
    loads = {
        "counter": EXAMPLES / "python-counter",
        "packaging21": EXAMPLES / "python-packaging21",
        "packaging24": EXAMPLES / "python-packaging24",
        "greeter-zipapp": built / "python-zipapp",
        "greeter-shiv": built / "python-shiv",
        "greeter-pex": built / "python-pex",
        "inventory": built / "python-wheel",
    }
    for name, target in loads.items():
        handle = pyhub.load(target)
        assert handle.state == "ready", (name, handle.observation)
        assert handle.name == name
    assert pyhub.call("counter.increment", {"by": 2}).value == 2
    # Two major versions of one library, side by side in one hub.
    assert pyhub.call("packaging21.version").value == "21.3"
    assert pyhub.call("packaging24.version").value == "24.1"
    assert pyhub.call("packaging21.parse", ["not-a-version"]).value["ok"] is True  # LegacyVersion
    assert pyhub.call("packaging24.parse", ["not-a-version"]).value["ok"] is False  # InvalidVersion
    # Fat zipapps with vendored dependencies: three more versions.
    for name, version in (("greeter-zipapp", "24.1"), ("greeter-shiv", "23.2"), ("greeter-pex", "21.3")):
        out = pyhub.call(f"{name}.greet", ["ada"])
        assert out.value == f"hello, ada (packaging {version})", out.observation
        assert out.stdout == "greeting ada\n"
        assert pyhub.call(f"{name}.newest", [["1.0", "1.10", "1.9"]]).value == "1.10"
    assert pyhub.call("inventory.add", ["bolt", 3]).value == {"name": "bolt", "count": 3}
    assert pyhub.call("inventory.list").value == [{"name": "bolt", "count": 3}]


def test_pypy_example(pyhub: cncf.Hub) -> None:
    pypy()
    handle = pyhub.load(EXAMPLES / "python-pypy")
    assert handle.state == "ready", handle.observation
    assert pyhub.call("fib.runtime").value == "pypy"
    assert pyhub.call("fib.fib", [20]).value == 6765


def test_node_example(pyhub: cncf.Hub) -> None:
    node()
    assert pyhub.load(EXAMPLES / "node-counter").state == "ready"
    assert pyhub.call("node-counter.increment", [2]).value == 2

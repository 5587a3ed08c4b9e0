"""A shiv and a pex built from the same requirement infer the same entry, with
or without a console script (real builds of PyPI's cowsay at test time)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import cncf
from tests.python_form.conftest import _run, tool_module


@pytest.fixture(scope="session")
def cowsay_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tool_module("pex")
    tool_module("shiv")
    out = tmp_path_factory.mktemp("cowsay")
    builds = {
        "pex": out / "plain.pex",
        "shiv": out / "plain.shiv",
        "pex-script": out / "script.pex",
        "shiv-script": out / "script.shiv",
    }
    _run([sys.executable, "-m", "pex", "cowsay==6.1", "-o", str(builds["pex"])])
    _run([sys.executable, "-m", "shiv", "cowsay==6.1", "-o", str(builds["shiv"])])
    _run([sys.executable, "-m", "pex", "cowsay==6.1", "-c", "cowsay", "-o", str(builds["pex-script"])])
    _run([sys.executable, "-m", "shiv", "cowsay==6.1", "-c", "cowsay", "-o", str(builds["shiv-script"])])
    return builds


@pytest.mark.parametrize("kind", ["pex", "shiv", "pex-script", "shiv-script"])
def test_built_from_a_requirement_loads_as_that_package(
    pyhub: cncf.Hub, cowsay_builds: dict[str, Path], kind: str
) -> None:
    h = pyhub.load(cowsay_builds[kind], name="cow")
    assert h.state == "ready", h.observation
    said = pyhub.call("cow.get_output_string", ["cow", "hi"])
    assert said.ok, said.observation
    assert "hi" in said.value and "^__^" in said.value

"""CLI rules of brief section 10 for values and starting: ``--`` makes every
argument positional, ``--json`` keeps what the component printed, ``--init``
and ``--classpath`` (run as a real process, against a python-form component)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "python" / "echo"


def cncf(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cncf", args[0], "--home", str(home), *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _json(r: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(r.stdout)


def test_after_dashes_every_argument_is_positional(tmp_path: Path) -> None:
    r = cncf(
        "call", str(FIXTURE), "echo", "--entry", "echo", "--json", "k=1", "--", "aGVsbG8=", "a=b", "-x", home=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert _json(r)["value"] == {"args": ["aGVsbG8=", "a=b", "-x"], "kwargs": {"k": 1}}


def test_without_dashes_name_value_is_named(tmp_path: Path) -> None:
    r = cncf("call", str(FIXTURE), "echo", "--entry", "echo", "--json", "a=b", home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _json(r)["value"] == {"args": [], "kwargs": {"a": "b"}}


def test_json_keeps_what_the_component_printed(tmp_path: Path) -> None:
    r = cncf("call", str(FIXTURE), "shout", "hi", "--entry", "echo", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = _json(r)
    assert doc == {"ok": True, "value": "HI", "stdout": "shouting hi\n", "stderr": "careful\n"}
    quiet = cncf("call", str(FIXTURE), "echo", "--entry", "echo", "--json", home=tmp_path)
    assert set(_json(quiet)) == {"ok", "value"}  # absent when nothing was printed


def test_init_gives_constructor_arguments(tmp_path: Path) -> None:
    named = cncf(
        "call",
        str(FIXTURE),
        "greet",
        "ada",
        "--entry",
        "echo:Greeter",
        "--init",
        '{"prefix": "hi", "times": 2}',
        "--json",
        home=tmp_path,
    )
    assert _json(named)["value"] == "hi ada hi ada"
    positional = cncf(
        "call", str(FIXTURE), "greet", "ada", "--entry", "echo:Greeter", "--init", '["yo"]', "--json", home=tmp_path
    )
    assert _json(positional)["value"] == "yo ada"


def test_init_that_is_not_json_is_a_usage_error(tmp_path: Path) -> None:
    r = cncf("call", str(FIXTURE), "greet", "ada", "--entry", "echo:Greeter", "--init", "{nope", home=tmp_path)
    assert r.returncode == 2


def test_classpath_on_a_python_component_is_invalid(tmp_path: Path) -> None:
    jar = tmp_path / "x.jar"
    jar.write_bytes(b"")
    r = cncf("call", str(FIXTURE), "echo", "--entry", "echo", "--classpath", str(jar), "--json", home=tmp_path)
    assert r.returncode == 1
    obs = _json(r)["observation"]
    assert (obs["code"], obs["stage"], obs["attributes"]["key"]) == ("invalid_manifest", "load", "component.classpath")

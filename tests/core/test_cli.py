"""The CLI exactly as the brief's section 10 describes it (run as a real process)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import INLINE

ROOT = INLINE.parent.parent.parent


def cncf(*args: str, home) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cncf", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_call_prints_the_value_and_exits_0(tmp_path):
    r = cncf("call", str(INLINE / "counter"), "--form", "inline", "increment", "by=41", home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "41"


def test_call_json_shape_for_a_value_and_positional_json_args(tmp_path):
    r = cncf("call", str(INLINE / "counter"), "--form", "inline", "increment", "5", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"ok": True, "value": 5}


def test_call_json_shape_for_an_observation_exits_1(tmp_path):
    r = cncf("call", str(INLINE / "counter"), "--form", "inline", "fail", "message=nope", "--json", home=tmp_path)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    obs = doc["observation"]
    assert (obs["code"], obs["stage"]) == ("raised", "execute")
    assert obs["cause"]["type"] == "ValueError" and obs["message"]


def test_readable_observation_and_load_failure(tmp_path):
    r = cncf("call", str(tmp_path / "missing"), "x", home=tmp_path)
    assert r.returncode == 1
    assert "artifact_not_found" in r.stdout
    r = cncf("call", str(INLINE / "counter"), "--form", "inline", "nothing", "--json", home=tmp_path)
    assert r.returncode == 1 and json.loads(r.stdout)["observation"]["code"] == "unknown_operation"


def test_overrides_make_an_unprepared_module_callable(tmp_path):
    mod = tmp_path / "plainmod"
    mod.mkdir()
    (mod / "greeter_plain.py").write_text("def greet(name, punct='!'):\n    return f'hi {name}{punct}'\n")
    r = cncf("call", str(mod), "greet", "ada", "punct=?", "--form", "inline", "--entry", "greeter_plain", home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "hi ada?"


def test_usage_errors_exit_2(tmp_path):
    assert cncf("call", home=tmp_path).returncode == 2
    assert (
        cncf("call", str(INLINE / "counter"), "--form", "inline", "get", "--timeout", "-1", home=tmp_path).returncode
        == 2
    )
    assert cncf("frobnicate", home=tmp_path).returncode == 2


def test_inspect_json_lists_services_operations_params_and_policies(tmp_path):
    r = cncf("inspect", str(INLINE / "policies"), "--form", "inline", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["name"], info["form"], info["state"]) == ("store", "inline", "ready")
    read = info["services"]["reading"]["read"]
    assert read["policy"]["policy"] == "concurrent"
    assert read["params"] == [{"name": "delay", "kind": "any", "required": False}]
    r = cncf("inspect", str(INLINE / "broken_ctor"), "--form", "inline", "--json", home=tmp_path)
    assert r.returncode == 1 and json.loads(r.stdout)["observation"]["code"] == "constructor_failed"


def test_version():
    r = subprocess.run([sys.executable, "-m", "cncf", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("cncf ")


def test_run_a_hub_file(tmp_path):
    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(f"""
[[component]]
target = "{INLINE / "counter"}"
form = "inline"                  # the hub file asks for the in-process form (section 13)

[[call]]
call = "counter.increment"
args = {{by = 2}}

[[call]]
call = "counter.fail"
expect = "raised"
""")
    r = cncf("run", str(hubfile), "--json", home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert [c["as_expected"] for c in report["calls"]] == [True, True]
    hubfile.write_text(hubfile.read_text().replace('expect = "raised"', 'expect = "value"'))
    assert cncf("run", str(hubfile), home=tmp_path).returncode == 1


def test_negative_numbers_are_arguments_and_unknown_options_are_usage_errors(tmp_path):
    r = cncf("call", str(INLINE / "counter"), "--form", "inline", "increment", "-3", home=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "-3", r.stdout + r.stderr
    r = cncf("call", str(INLINE / "counter"), "--form", "inline", "increment", "--bye", "2", home=tmp_path)
    assert r.returncode == 2 and "--bye" in r.stderr

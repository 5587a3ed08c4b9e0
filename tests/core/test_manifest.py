"""Manifest validation names the file, the key, the value and what was expected."""

import zipfile
from pathlib import Path

import pytest

from cncf import Code
from cncf.manifest import locate
from cncf.observation import Failed


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cncf.toml").write_text(text)
    (folder / "mod.py").write_text("def ping():\n    return 'pong'\n")
    return folder


def invalid(target, **overrides):
    with pytest.raises(Failed) as info:
        locate(target, overrides)
    return info.value.observation


@pytest.mark.parametrize(
    ("body", "key", "expected_fragment"),
    [
        ('[component]\npolicy = "fast"\n', "component.policy", "serialize"),
        ('[component]\nrun_timeout = "soon"\n', "component.run_timeout", "number"),
        ('[component]\nmax_concurrency = 0\npolicy = "concurrent"\n', "component.max_concurrency", "integer"),
        ('[component]\nrequirements = "x"\nrestart = "always"\n', "component.restart", "on-failure"),
        ('[component]\nentyr = "mod"\n', "component.entyr", "did you mean 'entry'"),
        ('[component]\nmemory_limit = "lots"\n', "component.memory_limit", "MiB"),
        ("[services.a]\noperations = []\n", "services.a.operations", "non-empty"),
        ("[operations.ping]\ntimeout = 3\n", "operations.ping.timeout", "run_timeout"),
    ],
)
def test_bad_values_name_file_key_and_expectation(tmp_path, body, key, expected_fragment):
    folder = write(tmp_path / "c", body)
    obs = invalid(folder)
    assert obs.code is Code.INVALID_MANIFEST and obs.stage.value == "load"
    assert obs.attributes["file"] == str(folder / "cncf.toml")
    assert obs.attributes["key"] == key
    assert expected_fragment in obs.attributes["expected"]


def test_toml_syntax_error_names_the_file(tmp_path):
    folder = write(tmp_path / "c", "[component\nname=")
    obs = invalid(folder)
    assert obs.code is Code.INVALID_MANIFEST and obs.attributes["file"].endswith("cncf.toml")


def test_overrides_are_validated_like_the_manifest(tmp_path):
    folder = write(tmp_path / "c", '[component]\nentry = "mod"\n')
    obs = invalid(folder, policy="sometimes")
    assert obs.code is Code.INVALID_MANIFEST and obs.attributes["key"] == "component.policy"
    obs = invalid(folder, colour="blue")
    assert obs.attributes["key"] == "colour"


def test_missing_target_and_unknown_form(tmp_path):
    assert invalid(tmp_path / "nope").code is Code.ARTIFACT_NOT_FOUND
    odd = tmp_path / "thing.bin"
    odd.write_bytes(b"\0")
    assert invalid(odd).code is Code.UNSUPPORTED_FORM


def test_defaults_and_inference(tmp_path):
    folder = write(tmp_path / "my_comp", '[component]\nentry = "mod"\n')
    spec = locate(folder)
    assert (spec.name, spec.form, spec.restart) == ("my_comp", "python", "on-failure")
    assert spec.artifact == folder.resolve()
    spec = locate(folder, {"form": "inline", "name": "x", "memory_limit": "1GiB"})
    assert (spec.form, spec.name, spec.memory_limit) == ("inline", "x", 1024**3)


def test_manifest_inside_a_jar_and_sidecar(tmp_path):
    jar = tmp_path / "lib-1.2.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        zf.writestr("META-INF/cncf/component.toml", '[component]\nname = "inside"\nentry = "a.B"\n')
    spec = locate(jar)
    assert (spec.name, spec.form, spec.entry) == ("inside", "jar", "a.B")
    assert spec.manifest_path.endswith("!/META-INF/cncf/component.toml")
    (tmp_path / "lib-1.2.jar.cncf.toml").write_text('[component]\nname = "sidecar"\n')
    assert locate(jar).name == "sidecar"


def test_plain_jar_name_drops_the_version(tmp_path):
    jar = tmp_path / "commons-lang3-3.12.0.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        zf.writestr("x.txt", "")
    assert locate(jar).name == "commons-lang3"

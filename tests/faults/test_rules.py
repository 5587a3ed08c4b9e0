"""Manifest rules (issue 16, item 10): names in a documented character set,
selectors that fold only ASCII, and the loader rule's whole list."""

from __future__ import annotations

from pathlib import Path

import pytest

import cncf
from tests.faults.conftest import Maker, load


@pytest.mark.parametrize("bad", ["a\nb", "line\r", "tab\tname", "caf\u00e9", "\u212aelvin", "-dash", "x" * 101, "a b"])
def test_component_names_outside_the_character_set_are_refused(fhub: cncf.Hub, make: Maker, bad: str) -> None:
    handle = fhub.load(make("inline", "named"), name=bad)
    assert handle.state == "failed"
    assert (handle.observation.code, handle.observation.attributes["key"]) == ("invalid_manifest", "component.name")


def test_newline_in_a_manifest_name_is_refused(fhub: cncf.Hub, make: Maker) -> None:
    folder = make("python", "nl")
    text = (folder / "cncf.toml").read_text().replace('name = "nl"', 'name = "nl\\nINJECTED"')
    (folder / "cncf.toml").write_text(text)
    handle = fhub.load(folder)
    assert (handle.observation.code, handle.observation.attributes["key"]) == ("invalid_manifest", "component.name")


def test_names_in_the_set_load(fhub: cncf.Hub, make: Maker) -> None:
    load(fhub, make("inline", "ok"), name="Ok_name-2")
    assert fhub.call("ok-name-2.kick").value == "kicked"


def test_only_ascii_case_folds_in_selectors(fhub: cncf.Hub, make: Maker) -> None:
    load(fhub, make("inline", "kelvin"))
    assert fhub.call("KELVIN.KICK").value == "kicked"
    assert fhub.call("kelvin.k_i-c_k").value == "kicked"
    out = fhub.call("kelvin.\u212aick")  # KELVIN SIGN: str.lower() makes it 'k'
    assert out.observation is not None and out.observation.code == "unknown_operation"
    out = fhub.call("\u212aelvin.kick")
    assert out.observation is not None and out.observation.code == "unknown_component"


@pytest.mark.parametrize(
    "name", ["NODE_OPTIONS", "GCONV_PATH", "PYTHONWARNINGS", "PERL5OPT", "BASH_ENV", "LOCPATH", "PYTHONBREAKPOINT"]
)
def test_loader_rule_covers_every_runtime(fhome: Path, make: Maker, name: str) -> None:
    folder = make("python", "loader", env={name: "ignore::evil.Warning"})
    with cncf.Hub(home=fhome) as hub:
        handle = hub.load(folder)
        assert (handle.observation.code, handle.observation.attributes["key"]) == (
            "invalid_manifest",
            f"component.env.{name}",
        )
    with cncf.Hub(home=fhome, allow_loader_env=True) as hub:
        if name != "PYTHONWARNINGS":  # its value names a module the worker would import
            assert hub.load(folder).state == "ready"
            assert hub.call("loader.env", [name]).value == "ignore::evil.Warning"


@pytest.mark.parametrize(
    "option",
    [
        "-javaagent:/tmp/evil.jar",
        "-agentlib:jdwp=transport=dt_socket",
        "-Xbootclasspath/a:/tmp/evil.jar",
        "-XX:OnError=sh",
    ],
)
def test_jvm_options_that_load_code_need_the_hubs_permission(fhub: cncf.Hub, make: Maker, option: str) -> None:
    handle = fhub.load(make("jar", "agent", jvm_options=[option]))
    assert handle.state == "failed"
    assert (handle.observation.code, handle.observation.attributes["key"]) == (
        "invalid_manifest",
        "component.jvm_options",
    )

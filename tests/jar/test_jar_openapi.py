"""JVM signatures as parameter schemas (the OpenAPI document and the hub's
argument check), and failures a Java user can read: a stack of the
component's own frames, the whole trace kept, a missing class's hint.

Real compiled jars (tests/fixtures/jar), a real JVM host."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import cncf
from cncf import schema
from cncf.observation import Code, Stage
from tests.jar.conftest import FIXTURES, fat_jar, jar_home, javac, require_file


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, jvm_cache: Path) -> Iterator[cncf.Hub]:
    with cncf.Hub(home=jar_home(tmp_path_factory.mktemp("openapi-home"), jvm_cache)) as h:
        yield h


@pytest.fixture(scope="module")
def kinds_jar(jvm, build_dir: Path) -> Path:  # noqa: ANN001
    classes = javac(sorted((FIXTURES / "values/src").rglob("*.java")), build_dir / "oa-values", parameters=True)
    return fat_jar(build_dir / "oa-kinds.jar", [classes])


def _params(hub: cncf.Hub, component: str, op: str) -> dict[str, Any]:
    info = hub.inspect(component)["services"]["default"][op]
    return {p["name"]: p.get("schema") for p in info["params"]}


def test_java_signatures_become_schemas(hub: cncf.Hub, kinds_jar: Path, modern_jar: Path) -> None:
    assert hub.load(kinds_jar, name="kinds", entry="vals.Kinds").state == "ready"
    assert hub.load(modern_jar, name="shapes", entry="modern.Shapes").state == "ready"
    assert _params(hub, "kinds", "asByte") == {"b": {"type": "integer", "minimum": -128, "maximum": 127}}
    color = _params(hub, "kinds", "color")["c"]
    assert {"type": "string", "enum": ["RED", "GREEN", "BLUE"]} in color["anyOf"][0]["anyOf"]
    nested = _params(hub, "kinds", "nested")["m"]["anyOf"][0]  # Map<String, List<Integer>> (or null)
    assert nested["type"] == "object"
    assert nested["additionalProperties"]["anyOf"][0]["items"]["anyOf"][0]["type"] == "integer"
    assert _params(hub, "kinds", "ints")["a"]["anyOf"][0] == {
        "type": "array",
        "items": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    }
    point = _params(hub, "shapes", "mid")["arg0"]["anyOf"][0]  # a record: its components, required
    assert point["properties"] == {"x": {"type": "number"}, "y": {"type": "number"}}
    assert point["required"] == ["x", "y"] and point["additionalProperties"] is False
    polygon = _params(hub, "shapes", "corners")["arg0"]["anyOf"][0]
    assert polygon["properties"]["points"]["anyOf"][0]["items"]["anyOf"][0]["required"] == ["x", "y"]
    # the document's body for each: valid JSON Schema, items on every array
    doc_body, required = schema.body_schema(hub.inspect("shapes")["services"]["default"]["mid"]["params"])
    jsonschema.Draft202012Validator.check_schema(doc_body)
    assert required
    # overloads: each one an alternative
    pick = hub.inspect("kinds")["services"]["default"]["pick"]
    assert pick["params"] is None and len(pick["overloads"]) == 6


def test_the_check_refuses_what_the_schema_refuses_before_the_jvm(hub: cncf.Hub) -> None:
    # (components of the test above)
    assert hub.call("shapes.mid", [{"x": 0, "y": 0}, {"x": 2, "y": 4}]).value == {"x": 1.0, "y": 2.0}
    out = hub.call("shapes.mid", [{"x": 0}, {"x": 2, "y": 4}])  # a record component missing
    assert out.observation is not None
    assert (out.observation.code, out.observation.stage) == (Code.INVALID_ARGUMENTS, Stage.DISPATCH)
    assert out.observation.attributes["reasons"]
    out = hub.call("kinds.asByte", [128])
    assert (out.observation.code, out.observation.stage) == (Code.INVALID_ARGUMENTS, Stage.DISPATCH)
    assert hub.call("kinds.asByte", [127.0]).value == 127  # JSON: 127.0 is the integer 127
    assert hub.call("kinds.color", ["green"]).value == "GREEN"  # the host's own leniency is in the schema
    assert hub.call("kinds.wide", [1]).value == "long"
    out = hub.call("kinds.wide", ["1"])  # fits neither wide(long) nor wide(double)
    assert (out.observation.code, out.observation.stage) == (Code.INVALID_ARGUMENTS, Stage.DISPATCH)
    assert len(out.observation.attributes["signatures"]) == 2


def test_a_java_stack_shows_the_components_frames_and_keeps_the_whole_trace(hub: cncf.Hub, faults_jar: Path) -> None:
    assert hub.load(faults_jar, name="faults", entry="faults.Faults").state == "ready"
    out = hub.call("faults.raise", ["no"])
    obs = out.observation
    assert obs is not None and obs.code is Code.RAISED and obs.cause is not None
    assert "faults.Faults.raise" in obs.cause.stack
    frames = [line for line in obs.cause.stack.splitlines() if line.strip().startswith("at ")]
    assert frames and not [f for f in frames if "cncf.host." in f or "reflect." in f], frames
    full = obs.attributes["java_stack"]
    assert "faults.Faults.raise" in full and "cncf.host." in full and "reflect" in full
    assert obs.cause.cause is not None and obs.cause.cause.type == "java.lang.RuntimeException"


def test_a_missing_class_names_the_classpath(hub: cncf.Hub, faults_jar: Path) -> None:
    h = hub.load(faults_jar, name="needsgone", entry="faults.NeedsGone")
    obs = h.observation
    assert obs is not None and obs.code is Code.CLASS_NOT_FOUND
    assert "faults.dep.Gone" in obs.attributes["missing_class"]
    # the hint is the deliverable here: it names the manifest key and the CLI option
    assert "classpath" in obs.message and "--classpath" in obs.message


GUAVA = Path("/usr/share/java/guava.jar")


def test_an_enum_constant_a_fluent_start_and_round_trips_through_text(hub: cncf.Hub) -> None:
    require_file(GUAVA, "Debian's guava (libguava-java, scripts/install-system-deps.sh)")
    camel = hub.load(GUAVA, name="camel", entry="com.google.common.base.CaseFormat#LOWER_CAMEL")
    assert camel.state == "ready", camel.observation
    assert hub.call("camel.to", ["LOWER_UNDERSCORE", "fooBarBaz"]).value == "foo_bar_baz"
    sha = hub.load(GUAVA, name="sha", entry="com.google.common.hash.Hashing#sha256")
    assert sha.state == "ready", sha.observation
    # HashCode has no JSON form, but HashCode.fromString(hc.toString()) gives it back: it crosses as text
    assert hub.call("sha.hash-string", ["abc", "UTF-8"]).value == hashlib.sha256(b"abc").hexdigest()
    names = hub.load(GUAVA, name="domains", entry="com.google.common.net.InternetDomainName")
    assert names.state == "ready", names.observation
    assert hub.call("domains.from", ["www.Example.COM"]).value == "www.example.com"
    assert hub.call("domains.is-valid", ["no spaces allowed"]).value is False
    wrong = hub.load(GUAVA, name="nomember", entry="com.google.common.base.CaseFormat#LOWER_CAMELS")
    assert wrong.state == "failed" and wrong.observation is not None
    assert wrong.observation.code is Code.ENTRY_NOT_FOUND
    assert "LOWER_CAMEL" in wrong.observation.attributes["candidates"]


def test_a_scala_constructor_takes_named_init_from_its_scala_signature(hub: cncf.Hub, scala_jar: Path) -> None:
    # scalac writes no -parameters names: they come from the class's Scala signature
    h = hub.load(scala_jar, name="stats", entry="demo.scala.Stats", init={"label": "mine", "start": 5})
    assert h.state == "ready", h.observation
    assert hub.call("stats.describe").value == "mine:5"
    bad = hub.load(scala_jar, name="stats2", entry="demo.scala.Stats", init={"lable": "x", "start": 5})
    assert bad.observation is not None and bad.observation.code is Code.CONSTRUCTOR_FAILED

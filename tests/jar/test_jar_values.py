"""Values across the JVM boundary: overloads as javac picks them, every row of the
value table both ways, and refusals instead of lossy guesses.

The fixture jar is compiled at test time from ``tests/fixtures/jar/values``; the
Debian jars (commons-text, commons-lang3, jackson, joda-time, commons-codec) are
called as they ship, and what plain Java returns for the same calls is computed
by compiling and running ``Expect.java`` against them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import cncf
from tests.conftest import require_tool
from tests.jar.conftest import FIXTURES, fat_jar, javac, require_file

DEB = Path("/usr/share/java")
TEXT, LANG3 = DEB / "commons-text.jar", DEB / "commons-lang3.jar"
JACKSON = (DEB / "jackson-databind.jar", DEB / "jackson-core.jar", DEB / "jackson-annotations.jar")
JODA, CODEC = DEB / "joda-time.jar", DEB / "commons-codec.jar"


@pytest.fixture(scope="session")
def values_jar(jvm, build_dir: Path) -> Path:  # noqa: ANN001
    classes = javac(sorted((FIXTURES / "values/src").rglob("*.java")), build_dir / "values-classes", parameters=True)
    return fat_jar(build_dir / "kinds.jar", [classes])


@pytest.fixture(scope="session")
def debian_jars() -> dict[str, Path]:
    jars = {
        "text": TEXT,
        "lang3": LANG3,
        "databind": JACKSON[0],
        "core": JACKSON[1],
        "annotations": JACKSON[2],
        "joda": JODA,
        "codec": CODEC,
    }
    for what, p in jars.items():
        require_file(p, f"Debian jar {what} (scripts/install-system-deps.sh)")
    return jars


@pytest.fixture(scope="session")
def plain_java(debian_jars: dict[str, Path], build_dir: Path) -> dict[str, str]:
    """What plain Java returns for the calls below (key -> value)."""
    cp = ":".join(str(p) for p in debian_jars.values())
    out = javac([FIXTURES / "values/expect/Expect.java"], build_dir / "expect-classes", list(debian_jars.values()))
    proc = subprocess.run(
        [require_tool("java"), "-cp", f"{out}:{cp}", "Expect"], capture_output=True, text=True, check=True
    )
    values = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("\t")
        values[key] = value.replace("\\n", "\n").replace("\\\\", "\\")
    return values


@pytest.fixture
def kinds(jar_hub: cncf.Hub, values_jar: Path) -> cncf.Hub:
    h = jar_hub.load(values_jar, name="kinds", entry="vals.Kinds")
    assert h.state == "ready", h.observation
    return jar_hub


def _value(hub: cncf.Hub, op: str, args: object) -> object:
    out = hub.call(f"kinds.{op}", args)
    assert out.ok, out.observation
    return out.value


def _code(hub: cncf.Hub, op: str, args: object) -> str:
    out = hub.call(op if "." in op else f"kinds.{op}", args)
    assert not out.ok, out.value
    assert out.observation is not None
    return out.observation.code.value


# ---------------------------------------------------------------------------
# Overloads (JLS 15.12.2)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "args", "chosen"),
    [
        ("pick", [1], "int"),  # phase 1: int literal, int is more specific than long
        ("pick", [2**40], "long"),  # does not fit an int: long
        ("pick", ["s"], "String"),  # arity-exact String beats Object and the varargs overload
        ("pick", ["s", "t", "u"], "String...2"),  # only varargs applies
        ("boxed", [None], "Long"),  # null: the most specific reference type (Long <: Object)
        ("pick", [[1]], "Object"),
        ("wide", [3], "long"),  # int widens to long before double
        ("wide", [2.5], "double"),
        ("boxed", [3], "Object"),  # javac boxes 3 to Integer, which is an Object, not a Long
        ("cap", ["hello"], "exact"),  # not the varargs overload with zero trailing arguments
        ("cap", ["hello", "-", "x"], "varargs2"),
        ("seq", [["a", "b"]], "List"),  # a JSON list is a List; an array is a conversion
        ("arr", [[1, 2]], "int[]"),  # int[] more specific than long[]
    ],
)
def test_overload_resolution_as_javac(kinds: cncf.Hub, op: str, args: list, chosen: str) -> None:
    assert _value(kinds, op, args) == chosen


@pytest.mark.parametrize(("op", "args"), [("either", ["a", "b"]), ("pick", [None])])
def test_ambiguous_overload_lists_the_signatures(kinds: cncf.Hub, op: str, args: list) -> None:
    out = kinds.call(f"kinds.{op}", args)
    assert out.observation is not None
    assert out.observation.code.value == "ambiguous_operation"
    assert out.observation.stage.value == "dispatch"
    assert len(out.observation.attributes["signatures"]) >= 2


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("asByte", 255),
        ("asByte", -129),
        ("asShort", 40000),
        ("asInt", 2**31),
        ("asChar", -1),
        ("asFloat", 0.1 + 0.2),
        ("asInt", 1.5),
    ],
)
def test_out_of_range_says_so(kinds: cncf.Hub, op: str, value: object) -> None:
    out = kinds.call(f"kinds.{op}", [value])
    assert out.observation is not None and out.observation.code.value == "invalid_arguments"
    assert out.observation.attributes["reasons"]  # why: out of range, not exact, a fraction


@pytest.mark.parametrize(
    ("op", "value", "returned"),
    [
        ("asByte", 127, 127),
        ("asByte", -128, -128),
        ("asShort", -32768, -32768),
        ("asFloat", 0.5, 0.5),
        ("asChar", 65, "A"),
    ],
)
def test_in_range_narrowing_converts(kinds: cncf.Hub, op: str, value: object, returned: object) -> None:
    assert _value(kinds, op, [value]) == returned


# ---------------------------------------------------------------------------
# The value table, both directions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "given", "returned"),
    [
        ("color", "GREEN", "GREEN"),
        ("color", "green", "GREEN"),  # case-insensitively when not exact
        ("date", "2024-01-31T12:00:00Z", "2024-01-31T12:00:00Z"),  # ISO-8601 both ways
        ("date", "2024-01-31T13:00:00+01:00", "2024-01-31T12:00:00Z"),
        ("epochMillis", "1970-01-01T00:00:01Z", 1000),
        ("className", "java.util.ArrayList", "java.util.ArrayList"),
        ("className", "vals.Kinds$Color", "vals.Kinds$Color"),  # resolved in the component's loader
        ("className", "int", "int"),
        ("bytes", "aGVsbG8=", [104, 101, 108, 108, 111]),  # base64 in, list of ints out
        ("bytes", [1, -1, 127], [1, -1, 127]),
        ("nextDay", "2024-02-28", "2024-02-29"),
        ("maybe", "x", "x"),
        ("maybe", None, None),
        ("nested", {"a": [1, 2], "b": []}, {"a": [1, 2], "b": []}),
        ("ints", [3, 2, 1], [3, 2, 1]),
        ("sorted", ["b", "a", "b"], ["a", "b"]),
        ("big", 2**70, 2**70 + 1),
        ("dec", 2.5, 2.5),
        ("flag", True, True),
        ("letter", "z", "z"),
        ("point", {"x": 1, "y": 2}, {"x": 1, "y": 2}),  # a data bean both ways
        ("money", "12.30", "12.30"),  # a value type that round-trips through its own parser
    ],
)
def test_value_table_both_ways(kinds: cncf.Hub, op: str, given: object, returned: object) -> None:
    assert _value(kinds, op, [given]) == returned


def test_results_of_mixed_jdk_values(kinds: cncf.Hub) -> None:
    assert _value(kinds, "mixed", []) == [1, 2.5, "s", None, "GREEN"]
    assert _value(kinds, "own", []) == {"own": [1, 2]}  # a toJson() the class declares


def test_misspelt_enum_lists_the_constants(kinds: cncf.Hub) -> None:
    out = kinds.call("kinds.color", ["GREN"])
    assert out.observation is not None and out.observation.code.value == "invalid_arguments"
    reasons = " ".join(out.observation.attributes["reasons"])
    assert all(name in reasons for name in ("RED", "GREEN", "BLUE"))


@pytest.mark.parametrize(
    ("op", "args"), [("className", ["no.such.Type"]), ("date", ["yesterday"]), ("bytes", ["not base64!"])]
)
def test_strings_that_are_not_the_type_are_refused(kinds: cncf.Hub, op: str, args: list) -> None:
    assert _code(kinds, op, args) == "invalid_arguments"


@pytest.mark.parametrize(
    ("op", "kind"),
    [("shadow", "vals.Kinds$Shadow"), ("children", "vals.Kinds$Children"), ("thread", "java.lang.Thread")],
)
def test_no_lossy_guess(kinds: cncf.Hub, op: str, kind: str) -> None:
    out = kinds.call(f"kinds.{op}", [])
    assert out.observation is not None
    assert out.observation.code.value == "result_not_serialisable"
    assert out.observation.attributes["type"] == kind
    assert "to_string" in out.observation.attributes


def test_fluent_method_returning_its_receiver_succeeds(kinds: cncf.Hub) -> None:
    out = kinds.call("kinds.bump", [])
    assert out.ok and out.value is None
    assert _value(kinds, "count", []) == 1  # the state changed


# ---------------------------------------------------------------------------
# init: constructor arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init", "expected"),
    [(["> "], "> x0"), (["#", 4], "#x4"), ({"prefix": "@"}, "@x0"), ({"prefix": "@", "start": 2}, "@x2")],
)
def test_init_chooses_the_constructor(jar_hub: cncf.Hub, values_jar: Path, init: object, expected: str) -> None:
    h = jar_hub.load(values_jar, name="k", entry="vals.Kinds", init=init)
    assert h.state == "ready", h.observation
    assert jar_hub.call("k.prefixed", ["x"]).value == expected


def test_init_that_fits_no_constructor(jar_hub: cncf.Hub, values_jar: Path) -> None:
    h = jar_hub.load(values_jar, name="k", entry="vals.Kinds", init=[True, True, True])
    assert h.state == "failed"
    assert h.observation is not None
    assert h.observation.code.value == "constructor_failed"
    assert h.observation.stage.value == "instantiate"


# ---------------------------------------------------------------------------
# Debian's jars, checked against plain Java
# ---------------------------------------------------------------------------


def test_commons_text_with_lang3_on_the_classpath(
    jar_hub: cncf.Hub, debian_jars: dict[str, Path], plain_java: dict[str, str]
) -> None:
    h = jar_hub.load(TEXT, name="words", entry="org.apache.commons.text.WordUtils", classpath=[str(LANG3)])
    assert h.state == "ready", h.observation
    assert jar_hub.call("words.capitalizeFully", ["hello big WORLD"]).value == plain_java["capitalizeFully"]
    assert jar_hub.call("words.initials", ["Ben John Lee"]).value == plain_java["initials"]
    assert jar_hub.call("words.initials", ["Ben-John Lee", "-"]).value == plain_java["initialsDelims"]
    assert jar_hub.call("words.wrap", ["one two three four", 9]).value == plain_java["wrap"]


def test_commons_text_without_its_dependency(jar_hub: cncf.Hub, debian_jars: dict[str, Path]) -> None:
    h = jar_hub.load(TEXT, name="words", entry="org.apache.commons.text.WordUtils")
    out = jar_hub.call("words.capitalizeFully", ["x"]) if h.state == "ready" else None
    code = h.observation or (out.observation if out else None)
    assert code is not None and code.code.value == "class_not_found"


def test_classpath_glob_relative_to_the_manifest(
    jar_hub: cncf.Hub, debian_jars: dict[str, Path], tmp_path: Path, plain_java: dict[str, str]
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "commons-lang3.jar").write_bytes(LANG3.read_bytes())
    (tmp_path / "cncf.toml").write_text(
        f'[component]\nname = "words"\nartifact = "{TEXT}"\nentry = "org.apache.commons.text.WordUtils"\n'
        'classpath = ["lib/*.jar"]\n'
    )
    h = jar_hub.load(tmp_path)
    assert h.state == "ready", h.observation
    assert jar_hub.call("words.capitalizeFully", ["hello big WORLD"]).value == plain_java["capitalizeFully"]


def test_jackson_tree_and_fluent_configuration(
    jar_hub: cncf.Hub, debian_jars: dict[str, Path], plain_java: dict[str, str]
) -> None:
    import json

    h = jar_hub.load(
        JACKSON[0],
        name="json",
        entry="com.fasterxml.jackson.databind.ObjectMapper",
        classpath=[str(p) for p in JACKSON[1:]],
    )
    assert h.state == "ready", h.observation
    text = '{"a":[1,2.5,{"b":null}],"c":"x","t":true}'
    tree = jar_hub.call("json.readTree", [text])
    assert tree.ok, tree.observation
    assert tree.value == json.loads(plain_java["readTree"])  # a JsonNode crosses as its JSON
    enabled = jar_hub.call("json.enable", ["INDENT_OUTPUT"])
    assert enabled.ok and enabled.value is None  # returns the mapper itself
    assert jar_hub.call("json.writeValueAsString", [{"k": 1}]).value == plain_java["indented"]
    assert jar_hub.call("json.enable", ["INDNT_OUTPUT"]).observation.code.value == "invalid_arguments"


def test_joda_values_cross_as_their_iso_text(
    jar_hub: cncf.Hub, debian_jars: dict[str, Path], plain_java: dict[str, str]
) -> None:
    h = jar_hub.load(JODA, name="joda", entry="org.joda.time.LocalDate", init=["2024-02-28"])
    assert h.state == "ready", h.observation
    assert jar_hub.call("joda.plusDays", [1]).value == plain_java["nextDay"]
    zone = jar_hub.call("joda.getChronology", [])
    assert zone.observation is not None and zone.observation.code.value == "result_not_serialisable"


def test_commons_codec_hmac_with_init(
    jar_hub: cncf.Hub, debian_jars: dict[str, Path], plain_java: dict[str, str]
) -> None:
    h = jar_hub.load(CODEC, name="hmac", entry="org.apache.commons.codec.digest.HmacUtils", init=["HmacSHA256", "key"])
    assert h.state == "ready", h.observation
    assert jar_hub.call("hmac.hmacHex", ["hello"]).value == plain_java["hmac"]
    hexed = jar_hub.load(CODEC, name="hex", entry="org.apache.commons.codec.binary.Hex")
    assert hexed.state == "ready", hexed.observation
    assert jar_hub.call("hex.encodeHexString", ["aGVsbG8="]).value == plain_java["hex"]  # base64 -> byte[]


def test_jackson_tree_parameters_take_json(jar_hub: cncf.Hub, debian_jars: dict[str, Path]) -> None:
    h = jar_hub.load(
        JACKSON[0],
        name="json",
        entry="com.fasterxml.jackson.databind.ObjectMapper",
        classpath=[str(p) for p in JACKSON[1:]],
    )
    assert h.state == "ready", h.observation
    back = jar_hub.call("json.treeToValue", [{"a": [1, 2], "b": None}, "java.util.Map"])  # TreeNode, Class<T>
    assert back.ok, back.observation
    assert back.value == {"a": [1, 2], "b": None}
    tree = jar_hub.call("json.valueToTree", [{"k": [True, 2.5]}])  # Object in, JsonNode out
    assert tree.value == {"k": [True, 2.5]}

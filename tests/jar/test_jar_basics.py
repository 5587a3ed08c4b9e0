"""The jar form end to end: Collaborator and adapter facades, values, output."""

from __future__ import annotations

from pathlib import Path

import cncf
from tests.jar.conftest import DEBIAN_LANG3, fat_jar, require_file


def test_collaborator_fat_jar_is_stateful_and_uses_its_library(jar_hub: cncf.Hub, collab_jar: Path) -> None:
    h = jar_hub.load(collab_jar, name="counter")
    assert h.state == "ready", h.observation
    assert jar_hub.call("counter.increment", {"by": 2}).value == 2
    assert jar_hub.call("counter.increment", [3]).value == 5
    assert jar_hub.call("counter.get").value == 5
    assert jar_hub.call("counter.capitalize", ["hello"]).value == "Hello"
    assert jar_hub.call("counter.library").value is True  # commons-lang3 comes from the component's own jar


def test_facade_from_meta_inf_collaborator(jar_hub: cncf.Hub, collab_jar: Path) -> None:
    h = jar_hub.load(collab_jar, name="counter")
    loaded = jar_hub.aio._components["counter"].loaded
    assert h.state == "ready"
    assert loaded.entry == "demo.Counter"
    assert loaded.entry_source == "META-INF/cncf/collaborator"
    assert loaded.facade == "collaborator"


def test_collaborator_typed_argument_accessors(jar_hub: cncf.Hub, collab_jar: Path) -> None:
    jar_hub.load(collab_jar, name="counter")
    assert jar_hub.call("counter.typed", [41, 5, 7]).value == [42, 2.5, "7"]
    assert jar_hub.call("counter.typed", {"big": 2**40}).value == [2**40, 2**40]
    out = jar_hub.call("counter.typed", {"small": 1})  # longArgument("big") of a missing argument
    assert out.observation.code == cncf.Code.RAISED
    assert out.observation.cause.type == "java.lang.IllegalArgumentException"


def test_values_cross_as_json_both_ways(jar_hub: cncf.Hub, collab_jar: Path) -> None:
    jar_hub.load(collab_jar, name="counter")
    value = {"s": "é✓", "i": 2**40, "f": 1.5, "b": True, "n": None, "l": [1, "x", [2]], "m": {"k": {}}}
    assert jar_hub.call("counter.echo", [value]).value == value
    assert jar_hub.call("counter.echo", {"a": 1}).value == {"a": 1}
    big = 2**80
    assert jar_hub.call("counter.echo", [big]).value == big


def test_collaborator_failure_keeps_its_code_and_attributes(jar_hub: cncf.Hub, collab_jar: Path) -> None:
    jar_hub.load(collab_jar, name="counter")
    jar_hub.call("counter.increment", [4])
    out = jar_hub.call("counter.withdraw", [10])
    assert not out.ok
    assert out.observation.code == cncf.Code.OPERATION_FAILED
    assert out.observation.stage == cncf.Stage.EXECUTE
    assert out.observation.attributes["component_code"] == "insufficient_funds"
    assert out.observation.attributes["balance"] == 4
    assert out.observation.attributes["requested"] == 10


def test_component_output_is_captured_per_call(jar_hub: cncf.Hub, collab_jar: Path) -> None:
    jar_hub.load(collab_jar, name="counter")
    out = jar_hub.call("counter.print", ["hi"])
    assert out.ok
    assert out.stdout == "out:hi\n"
    assert out.stderr == "err:hi\n"
    again = jar_hub.call("counter.get")
    assert again.stdout == "" and again.stderr == ""


def test_adapter_over_a_plain_class(jar_hub: cncf.Hub, faults_jar: Path) -> None:
    h = jar_hub.load(faults_jar, name="faults", entry="faults.Faults")
    assert h.state == "ready", h.observation
    assert jar_hub.call("faults.count").value == 1
    assert jar_hub.call("faults.count").value == 2  # one persistent instance
    assert jar_hub.call("faults.shout", ["hey"]).value == "HEY!"  # a static method
    assert jar_hub.call("faults.add", [1, 2]).value == 3
    assert jar_hub.call("faults.add", [1.5, 2]).value == 3.5
    assert jar_hub.call("faults.add", ["a", "b"]).value == "ab"
    assert jar_hub.call("faults.kind", [1]).value == "int"
    assert jar_hub.call("faults.kind", ["x"]).value == "string"
    assert jar_hub.call("faults.kind", [[1, 2, 3]]).value == "list:6"  # elements converted to Integer
    assert jar_hub.call("faults.kind", [{"a": 1}]).value == "map:[a]"
    assert jar_hub.call("faults.joined", ["-", "a", "b", "c"]).value == "a-b-c"  # varargs
    assert jar_hub.call("faults.joined", ["-", ["a", "b"]]).value == "a-b"
    assert jar_hub.call("faults.squares", [4]).value == [0, 1, 4, 9]
    assert jar_hub.call("faults.bean").value == {"name": "bean", "ready": True, "size": 3}
    assert jar_hub.call("faults.type").value == "java.lang.String"
    assert jar_hub.call("faults.capitalize", ["abc"]).value == "Abc"
    assert jar_hub.call("faults.context-loader-is-own").value == "true"
    assert jar_hub.call("faults.sql-time").value == "1970-01-01T00:00:00Z"  # java.sql.Timestamp


def test_overload_that_does_not_fit_lists_signatures(jar_hub: cncf.Hub, faults_jar: Path) -> None:
    jar_hub.load(faults_jar, name="faults", entry="faults.Faults")
    out = jar_hub.call("faults.add", [True, False])
    assert out.observation.code == cncf.Code.INVALID_ARGUMENTS
    assert out.observation.stage == cncf.Stage.EXECUTE or out.observation.stage == cncf.Stage.DISPATCH
    assert len(out.observation.attributes["signatures"]) == 3


def test_plain_library_jar_in_one_line(jar_hub: cncf.Hub, plain_jar: Path) -> None:
    h = jar_hub.load(plain_jar, entry="plain.Geometry")
    assert h.name == "geometry"
    assert jar_hub.call("geometry.hypot", [3, 4]).value == 5.0
    assert jar_hub.call("geometry.convert", [2.54, "inch"]).value == "1.0in"
    assert jar_hub.call("geometry.add-point", [1, 2]).value == 1
    assert jar_hub.call("geometry.points").value == [[1.0, 2.0]]
    assert jar_hub.call("geometry.summary").value == {"count": 1, "empty": False, "first": [1.0, 2.0]}
    assert jar_hub.call("geometry.maybe", [True]).value == "here"
    assert jar_hub.call("geometry.maybe", [False]).value is None
    assert jar_hub.call("geometry.sum", [[1, 2, 3]]).value == 6
    assert jar_hub.call("geometry.big", [2**70]).value == 2**140
    assert jar_hub.call("geometry.named", {"first": "a", "second": 2}).value == "a/2"


def test_debian_commons_lang3_in_one_line(jar_hub: cncf.Hub) -> None:
    jar = require_file(DEBIAN_LANG3, "Debian commons-lang3")
    h = jar_hub.load(jar, entry="org.apache.commons.lang3.StringUtils")
    assert h.state == "ready", h.observation
    assert h.name == "commons-lang3"
    assert jar_hub.call("commons-lang3.capitalize", ["cncf"]).value == "Cncf"
    assert jar_hub.call("commons-lang3.is-blank", ["  "]).value is True
    assert jar_hub.call("commons-lang3.abbreviate", ["abcdefghij", 6]).value == "abc..."
    assert jar_hub.call("commons-lang3.join", [["a", "b"], ","]).value == "a,b"
    assert jar_hub.call("commons-lang3.repeat", ["ab", 3]).value == "ababab"


def test_named_arguments_need_parameter_names(jar_hub: cncf.Hub, faults_jar: Path) -> None:
    jar_hub.load(faults_jar, name="faults", entry="faults.Faults")
    out = jar_hub.call("faults.shout", {"s": "x"})  # compiled without -parameters
    assert out.observation.code == cncf.Code.INVALID_ARGUMENTS


def test_scala_fat_jar_adapter_and_values(jar_hub: cncf.Hub, scala_jar: Path) -> None:
    h = jar_hub.load(scala_jar, name="inventory", entry="demo.scala.Inventory")
    assert h.state == "ready", h.observation
    assert jar_hub.call("inventory.add", ["apple", 3]).value == {"name": "apple", "qty": 3, "tags": ["new"]}
    jar_hub.call("inventory.add", ["pear", 2])
    assert jar_hub.call("inventory.find", ["apple"]).value == {"name": "apple", "qty": 3, "tags": ["new"]}
    assert jar_hub.call("inventory.find", ["kiwi"]).value is None  # None -> null
    assert jar_hub.call("inventory.names").value == ["apple", "pear"]
    assert set(jar_hub.call("inventory.all").value) == {"apple", "pear"}
    assert jar_hub.call("inventory.total").value == 5
    assert jar_hub.call("inventory.count", [["a", "b", "c"]]).value == 3  # JSON list -> scala.collection.Seq
    assert jar_hub.call("inventory.join-all", [["a", "b"]]).value == "a+b"  # -> immutable.List
    assert jar_hub.call("inventory.weigh", [{"a": 1, "b": 2}]).value == 2  # -> immutable.Map
    assert jar_hub.call("inventory.pair").value == ["x", 1]  # a tuple -> list
    assert jar_hub.call("inventory.or-else", [None]).value == "none"  # null -> None
    assert jar_hub.call("inventory.or-else", ["y"]).value == "y"  # value -> Some
    assert jar_hub.call("inventory.big").value == 123456789012345678901234567890
    assert jar_hub.call("inventory.nothing").value is None
    assert jar_hub.call("inventory.scala-version").value.startswith("2.11")
    out = jar_hub.call("inventory.fail")
    assert out.observation.code == cncf.Code.RAISED
    assert out.observation.cause.type == "java.lang.IllegalStateException"
    assert "demo.scala.Inventory.fail" in out.observation.cause.stack


def test_scala_collaborator(jar_hub: cncf.Hub, scala_jar: Path) -> None:
    h = jar_hub.load(scala_jar, name="ledger", entry="demo.scala.Ledger")
    assert h.state == "ready", h.observation
    assert jar_hub.call("ledger.deposit", [5]).value == 5
    assert jar_hub.call("ledger.deposit", [7]).value == 12
    assert jar_hub.call("ledger.history").value == [5, 7]  # a Scala Vector
    out = jar_hub.call("ledger.overdraw")
    assert out.observation.code == cncf.Code.OPERATION_FAILED
    assert out.observation.attributes == {"balance": 12, "component_code": "overdrawn"}


def test_strings_become_jdk_value_types(jar_hub: cncf.Hub, plain_jar: Path) -> None:
    jar_hub.load(plain_jar, name="geo", entry="plain.Geometry")
    assert jar_hub.call("geo.file-name", ["/tmp/x/report.txt"]).value == "report.txt"  # java.io.File
    assert jar_hub.call("geo.depth", ["a/b/c"]).value == 3  # java.nio.file.Path
    assert jar_hub.call("geo.next-day", ["2024-02-28"]).value == "2024-02-29"  # java.time.LocalDate
    assert jar_hub.call("geo.exact", ["0.1", "0.2"]).value == 0.3  # BigDecimal, exactly
    assert jar_hub.call("geo.uuid-version", ["123e4567-e89b-42d3-a456-426614174000"]).value == "4"
    bad = jar_hub.call("geo.next-day", ["not a date"])
    assert bad.observation.code == cncf.Code.INVALID_ARGUMENTS


def test_scala_default_arguments_and_objects(jar_hub: cncf.Hub, scala_jar: Path) -> None:
    jar_hub.load(scala_jar, name="inventory", entry="demo.scala.Inventory")
    assert jar_hub.call("inventory.greet", ["Ada"]).value == "Hello, Ada!"
    assert jar_hub.call("inventory.greet", ["Ada", "Hi"]).value == "Hi, Ada!"
    assert jar_hub.call("inventory.greet", ["Ada", "Hi", 2]).value == "Hi, Ada! Hi, Ada!"
    h = jar_hub.load(scala_jar, name="math", entry="demo.scala.MathOps")
    assert h.state == "ready", h.observation
    assert jar_hub.call("math.square", [7]).value == 49
    assert jar_hub.call("math.scale", [1.5]).value == 3.0
    assert jar_hub.call("math.scale", [1.5, 3]).value == 4.5


def test_manifest_inside_the_jar(jar_hub: cncf.Hub, plain_jar: Path, build_dir: Path, tmp_path: Path) -> None:
    res = tmp_path / "res" / "META-INF" / "cncf"
    res.mkdir(parents=True)
    (res / "component.toml").write_text(
        '[component]\nname = "geo"\nentry = "plain.Geometry"\npolicy = "concurrent"\nmax_concurrency = 2\n'
        '[services.shapes]\noperations = ["hypot", "addPoint"]\n'
    )
    jar = fat_jar(tmp_path / "geometry-with-manifest.jar", [build_dir / "plain-classes"], resources=[tmp_path / "res"])
    h = jar_hub.load(jar)
    assert h.state == "ready", h.observation
    assert h.name == "geo"
    assert sorted(h.operations) == ["shapes.addPoint", "shapes.hypot"]
    assert jar_hub.call("geo.shapes.hypot", [3, 4]).value == 5.0
    assert jar_hub.call("geo.hypot", [6, 8]).value == 10.0


def test_sidecar_manifest_names_the_entry(jar_hub: cncf.Hub, plain_jar: Path, tmp_path: Path) -> None:
    jar = tmp_path / "geometry.jar"
    jar.write_bytes(plain_jar.read_bytes())
    (tmp_path / "geometry.jar.cncf.toml").write_text('[component]\nentry = "plain.Geometry"\n')
    h = jar_hub.load(jar)
    assert h.state == "ready", h.observation
    assert jar_hub.call("geometry.hypot", [3, 4]).value == 5.0


def test_collaborator_operations_from_the_manifest(jar_hub: cncf.Hub, scala_jar: Path, tmp_path: Path) -> None:
    # Ledger declares @Operations; a manifest may group them into services.
    (tmp_path / "cncf.toml").write_text(
        f'[component]\nname = "books"\nartifact = "{scala_jar}"\nentry = "demo.scala.Ledger"\n'
        '[services.money]\noperations = ["deposit", "balance"]\n'
    )
    h = jar_hub.load(tmp_path)
    assert h.state == "ready", h.observation
    assert jar_hub.call("books.money.deposit", [3]).value == 3
    assert jar_hub.call("books.balance").value == 3


def test_inspect_lists_adapter_operations_with_parameters(jar_hub: cncf.Hub, plain_jar: Path) -> None:
    jar_hub.load(plain_jar, name="geo", entry="plain.Geometry")
    info = jar_hub.inspect("geo")
    ops = info["services"]["default"]
    assert [p["name"] for p in ops["named"]["params"]] == ["first", "second"]
    assert "named(String first, int second): String" in ops["named"]["doc"]
    assert info["health"]["alive"] is True


def test_scala_signature_types_primitive_collections(jar_hub: cncf.Hub, scala_jar: Path) -> None:
    h = jar_hub.load(scala_jar, name="stats", entry="demo.scala.Stats")  # constructor defaults only
    assert h.state == "ready", h.observation
    assert jar_hub.call("stats.describe").value == "stats:10"
    assert jar_hub.call("stats.sum", [[1, 2, 3]]).value == 6  # Seq[Int]: Integers, not Longs
    assert jar_hub.call("stats.longs", [[1, 2, 3]]).value == 6  # Seq[Long]: Longs, not Integers
    assert jar_hub.call("stats.mean", [[1, 2, 4, 5]]).value == 3.0  # List[Double] from JSON integers
    assert jar_hub.call("stats.counts", [{"a": 1, "b": 2}]).value == 3  # Map[String, Int]
    assert jar_hub.call("stats.inc", [41]).value == 42  # Option[Int]
    assert jar_hub.call("stats.inc", [None]).value == 0
    assert jar_hub.call("stats.nested", [[[1, 2], [3]]]).value == 6  # Seq[Seq[Int]]
    assert jar_hub.call("stats.vector", [[1, 2]]).value == 3  # Vector[Short]
    assert jar_hub.call("stats.max-of", [3, 9, 4]).value == 9  # Int*: a Scala repeated parameter
    assert jar_hub.call("stats.max-of", [[3, 9]]).value == 9
    out = jar_hub.call("stats.sum", [[1, 2**40]])  # does not fit an Int
    assert out.observation.code == cncf.Code.INVALID_ARGUMENTS


def test_scala_named_arguments_from_the_signature(jar_hub: cncf.Hub, scala_jar: Path) -> None:
    jar_hub.load(scala_jar, name="inventory", entry="demo.scala.Inventory")
    assert jar_hub.call("inventory.add", {"name": "fig", "qty": 2}).value == {"name": "fig", "qty": 2, "tags": ["new"]}
    assert jar_hub.call("inventory.greet", {"name": "Ada", "times": 2}).value == "Hello, Ada! Hello, Ada!"
    assert jar_hub.call("inventory.greet", {"greeting": "Yo", "name": "Bo"}).value == "Yo, Bo!"
    params = jar_hub.inspect("inventory")["services"]["default"]["greet"]["params"]
    assert [(p["name"], p["required"]) for p in params] == [("name", True), ("greeting", False), ("times", False)]


def test_records_and_beans_from_json_objects(jar_hub: cncf.Hub, modern_jar: Path) -> None:
    jar_hub.load(modern_jar, name="shapes", entry="modern.Shapes")
    assert jar_hub.call("shapes.mid", [{"x": 0, "y": 0}, {"x": 2, "y": 4}]).value == {"x": 1.0, "y": 2.0}
    square = {"name": "sq", "points": [{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 1, "y": 1}, {"x": 0, "y": 1}]}
    assert jar_hub.call("shapes.corners", [square]).value == 4  # List<Point> elements are records too
    assert jar_hub.call("shapes.thicker", [{"color": "red", "width": 3}]).value == {"color": "red", "width": 6}
    assert jar_hub.call("shapes.thicker", [{}]).value == {"color": "black", "width": 2}
    bad = jar_hub.call("shapes.mid", [{"x": 0, "z": 0}, {"x": 2, "y": 4}])  # an unknown key
    assert bad.observation.code == cncf.Code.INVALID_ARGUMENTS


def test_scala_case_classes_from_json_objects(jar_hub: cncf.Hub, scala_jar: Path) -> None:
    jar_hub.load(scala_jar, name="inventory", entry="demo.scala.Inventory")
    item = {"name": "fig", "qty": 2, "tags": ["x"]}
    assert jar_hub.call("inventory.restock", [item]).value == {"name": "fig", "qty": 3, "tags": ["x"]}
    assert jar_hub.call("inventory.order", [{"sku": "fig"}]).value == "1 x fig"  # Scala defaults
    assert jar_hub.call("inventory.order", [{"sku": "fig", "qty": 3, "rush": True}]).value == "3 x fig (rush)"

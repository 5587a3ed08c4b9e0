"""The README examples of the jar form, run for real: the Scala fat JAR
example is built with its own build script, and the one-line calls into
Debian's library jars go through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cncf
from tests.conftest import require_tool
from tests.jar.conftest import DEBIAN_LANG3, jar_home, require_file, scala_library

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "scala-inventory"

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def cli(*args: str | Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = _env()
    env["CNCF_HOME"] = str(home)  # a jar_home(): the session's compiled host is in its cache
    return subprocess.run(
        [sys.executable, "-c", "from cncf.receptions.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def inventory_example(tmp_path_factory: pytest.TempPathFactory, jvm, jvm_cache: Path) -> Path:  # noqa: ANN001
    require_tool("scalac")
    require_tool("jar")
    scala_library()
    folder = tmp_path_factory.mktemp("example") / "scala-inventory"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("build"))
    env = _env()
    env["PYTHON"] = sys.executable
    env["CNCF_CACHE"] = str(jvm_cache)  # build.sh asks for the API jar
    proc = subprocess.run([str(folder / "build.sh")], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (folder / "build" / "inventory.jar").is_file()
    return folder


def test_scala_example_through_the_api(jar_hub: cncf.Hub, inventory_example: Path) -> None:
    h = jar_hub.load(inventory_example)
    assert h.state == "ready", h.observation
    assert h.name == "inventory"
    assert jar_hub.call("inventory.add", {"sku": "apple", "qty": 3}).value == {
        "sku": "apple",
        "qty": 3,
        "tags": ["new"],
    }
    assert jar_hub.call("inventory.stock.remove", ["apple", 1]).value == {"sku": "apple", "qty": 2, "tags": ["new"]}
    out = jar_hub.call("inventory.remove", ["apple", 9])
    assert (out.observation.code, out.observation.stage) == (cncf.Code.OPERATION_FAILED, cncf.Stage.EXECUTE)
    assert out.observation.attributes == {"sku": "apple", "available": 2, "component_code": "insufficient_stock"}
    assert jar_hub.call("inventory.find", ["pear"]).value is None
    assert jar_hub.call("inventory.total").value == 2
    p = jar_hub.load(inventory_example / "build" / "inventory.jar", name="pricing", entry="example.Pricing")
    assert p.state == "ready", p.observation
    assert jar_hub.call("pricing.cheapest", [{"a": 2.0, "b": 1.5}]).value == "b"
    assert jar_hub.call("pricing.price", [3, "2.50"]).value == 7.5
    assert jar_hub.call("pricing.price", [3, 2.5, 0.1]).value == 6.75


def test_scala_example_through_the_cli(inventory_example: Path, tmp_path: Path, jvm_cache: Path) -> None:
    out = cli("call", inventory_example, "add", "sku=apple", "qty=3", "--json", home=jar_home(tmp_path, jvm_cache))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ok": True, "value": {"sku": "apple", "qty": 3, "tags": ["new"]}}
    out = cli("call", inventory_example, "remove", "apple", "5", "--json", home=jar_home(tmp_path, jvm_cache))
    assert out.returncode == 1
    obs = json.loads(out.stdout)["observation"]
    assert (obs["code"], obs["stage"]) == ("operation_failed", "execute")
    assert obs["attributes"]["component_code"] == "insufficient_stock"
    out = cli(
        "call",
        inventory_example / "build" / "inventory.jar",
        "price",
        "3",
        "2.50",
        "0.1",
        "--entry",
        "example.Pricing",
        home=jar_home(tmp_path, jvm_cache),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6.75"


@pytest.mark.parametrize(
    ("jar", "entry", "args", "value"),
    [
        (DEBIAN_LANG3, "org.apache.commons.lang3.StringUtils", ["capitalize", "hello"], "Hello"),
        (DEBIAN_LANG3, "org.apache.commons.lang3.StringUtils", ["abbreviate", "a long sentence", "9"], "a long..."),
        (DEBIAN_LANG3, "org.apache.commons.lang3.StringUtils", ["split", "a,b,c", ","], ["a", "b", "c"]),
        (Path("/usr/share/java/guava.jar"), "com.google.common.math.IntMath", ["binomial", "5", "2"], 10),
        (
            Path("/usr/share/java/commons-io.jar"),
            "org.apache.commons.io.FilenameUtils",
            ["get-extension", "report.tar.gz"],
            "gz",
        ),
    ],
)
def test_one_line_calls_into_debian_jars(
    jvm,
    jvm_cache: Path,
    tmp_path: Path,
    jar: Path,
    entry: str,  # noqa: ANN001
    args: list[str],
    value: object,
) -> None:
    require_file(jar, f"Debian {jar.name}")
    out = cli("call", jar, *args, "--entry", entry, "--json", home=jar_home(tmp_path, jvm_cache))
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout) == {"ok": True, "value": value}


def test_one_line_call_with_a_bad_overload_is_an_observation(jvm, jvm_cache: Path, tmp_path: Path) -> None:  # noqa: ANN001
    jar = require_file(DEBIAN_LANG3, "Debian commons-lang3")
    out = cli(
        "call",
        jar,
        "abbreviate",
        "true",
        "--entry",
        "org.apache.commons.lang3.StringUtils",
        "--json",
        home=jar_home(tmp_path, jvm_cache),
    )
    assert out.returncode == 1
    obs = json.loads(out.stdout)["observation"]
    assert (obs["code"], obs["stage"]) == ("invalid_arguments", "dispatch")
    assert len(obs["attributes"]["signatures"]) >= 2

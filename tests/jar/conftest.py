"""Fixtures of the jar form: real jars compiled at test time, once per session.

Every jar is built from the sources in ``tests/fixtures/jar`` with the
machine's ``javac`` / ``scalac`` and bundles real third-party jars from the
machine (Debian's ``/usr/share/java`` and the local Maven repository): fat
jars are made the way the shade/assembly plugins make them, by unpacking the
dependencies next to the component's classes.  Under ``CI=true`` a missing
JDK, ``scalac`` or bundled jar fails the run instead of skipping.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import cncf
from tests.conftest import IN_CI, require_tool

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jar"
M2 = Path.home() / ".m2" / "repository"
DEBIAN_LANG3 = Path("/usr/share/java/commons-lang3.jar")
SCALA_LIBRARIES = (
    Path("/usr/share/scala-2.11/lib/scala-library.jar"),
    Path("/usr/share/scala/lib/scala-library.jar"),
    Path("/usr/share/java/scala-library.jar"),
)


def lang3(version: str) -> Path:
    return M2 / "org/apache/commons/commons-lang3" / version / f"commons-lang3-{version}.jar"


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        if IN_CI:
            pytest.fail(f"{what} ({path}) is required under CI=true but is missing")
        pytest.skip(f"{what} ({path}) is not on this machine")
    return path


def scala_library() -> Path:
    for p in SCALA_LIBRARIES:
        if p.is_file():
            return p.resolve()
    return require_file(SCALA_LIBRARIES[0], "scala-library (Debian package scala)")


# ---------------------------------------------------------------------------
# Building jars
# ---------------------------------------------------------------------------


def javac(
    sources: Iterable[Path], out: Path, classpath: Iterable[Path] = (), *, parameters: bool = False, release: int = 8
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    cp = os.pathsep.join(str(p) for p in classpath)
    argv = [
        require_tool("javac"),
        "--release",
        str(release),
        "-nowarn",
        "-Xlint:-options",
        "-encoding",
        "UTF-8",
        "-d",
        str(out),
    ]
    if parameters:
        argv.append("-parameters")
    if cp:
        argv += ["-cp", cp]
    argv += [str(s) for s in sources]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return out


def scalac(sources: Iterable[Path], out: Path, classpath: Iterable[Path] = ()) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    argv = [require_tool("scalac"), "-nowarn", "-d", str(out)]
    cp = os.pathsep.join(str(p) for p in classpath)
    if cp:
        argv += ["-classpath", cp]
    argv += [str(s) for s in sources]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _signature_file(name: str) -> bool:
    upper = name.upper()
    return upper.startswith("META-INF/") and upper.endswith((".SF", ".RSA", ".DSA", ".EC"))


def fat_jar(
    target: Path,
    class_dirs: Iterable[Path] = (),
    bundle: Iterable[Path] = (),
    resources: Iterable[Path] = (),
    exclude: Iterable[str] = (),
    overrides: dict[str, Path] | None = None,
) -> Path:
    """A fat jar: the component's classes, then its dependencies unpacked (first wins)."""
    excluded = tuple(exclude)
    seen: set[str] = set()
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: cncf tests\r\n\r\n")
        seen.add("META-INF/MANIFEST.MF")

        def add(name: str, data: bytes) -> None:
            if name in seen or name.startswith(excluded) or _signature_file(name):
                return
            seen.add(name)
            zf.writestr(name, data)

        for name, path in (overrides or {}).items():
            add(name, path.read_bytes())
        for root in [*class_dirs, *resources]:
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    add(p.relative_to(root).as_posix(), p.read_bytes())
        for dep in bundle:
            with zipfile.ZipFile(dep) as src:
                for info in src.infolist():
                    if not info.is_dir():
                        add(info.filename, src.read(info))
    return target


# ---------------------------------------------------------------------------
# Session fixtures
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Jars:
    """Every fixture jar, built once per session."""

    root: Path
    api: Path


# ``jvm_cache`` and ``jvm`` (the session's compiled JVM host) live in tests/conftest.py:
# every suite that runs jars shares one build.


def jar_home(home: Path, jvm_cache: Path) -> Path:
    """A hub home whose cache already holds the session's compiled JVM host
    (a symlink), so no test pays for compiling it again."""
    cache = home / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    link = cache / "jvm"
    if not link.exists():
        link.symlink_to(jvm_cache / "jvm", target_is_directory=True)
    return home


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jars")


def _java_sources(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.java"))


@pytest.fixture(scope="session")
def collab_jar(jvm, build_dir: Path) -> Path:  # noqa: ANN001
    """A Collaborator fat jar bundling Debian's commons-lang3, facade named in
    META-INF/cncf/collaborator."""
    lib = require_file(DEBIAN_LANG3, "Debian commons-lang3")
    classes = javac(_java_sources(FIXTURES / "collab/src"), build_dir / "collab-classes", [jvm.api_jar, lib])
    return fat_jar(build_dir / "collab.jar", [classes], [lib], [FIXTURES / "collab/resources"])


@pytest.fixture(scope="session")
def faults_jar(jvm, build_dir: Path) -> Path:  # noqa: ANN001
    """A plain-class fat jar for the fault matrix: compiled against commons-lang3
    3.12, bundling 3.10 (a version mismatch); faults.dep.Gone left out (a missing
    dependency); faults.dep.Shape replaced by an incompatible version."""
    compiled_against = require_file(DEBIAN_LANG3, "Debian commons-lang3")
    bundled = require_file(lang3("3.10"), "commons-lang3 3.10 in ~/.m2")
    classes = javac(_java_sources(FIXTURES / "faults/src"), build_dir / "faults-classes", [compiled_against])
    v2 = javac(_java_sources(FIXTURES / "faults/shape-v2"), build_dir / "faults-shape-v2")
    return fat_jar(
        build_dir / "faults.jar",
        [classes],
        [bundled],
        exclude=("faults/dep/Gone",),
        overrides={"faults/dep/Shape.class": v2 / "faults/dep/Shape.class"},
    )


@pytest.fixture(scope="session")
def ambiguous_jar(jvm, build_dir: Path) -> Path:  # noqa: ANN001
    classes = javac(_java_sources(FIXTURES / "ambiguous/src"), build_dir / "amb-classes", [jvm.api_jar])
    return fat_jar(build_dir / "ambiguous.jar", [classes])


@pytest.fixture(scope="session")
def version_jars(jvm, build_dir: Path) -> tuple[Path, Path]:  # noqa: ANN001
    """The same component bundling commons-lang3 3.10 and 3.20."""
    old, new = require_file(lang3("3.10"), "commons-lang3 3.10"), require_file(lang3("3.20.0"), "commons-lang3 3.20.0")
    classes = javac(_java_sources(FIXTURES / "versions/src"), build_dir / "versions-classes", [new])
    return (
        fat_jar(build_dir / "which-old.jar", [classes], [old]),
        fat_jar(build_dir / "which-new.jar", [classes], [new]),
    )


@pytest.fixture(scope="session")
def plain_jar(jvm, build_dir: Path) -> Path:  # noqa: ANN001
    """A plain library jar with no cncf metadata at all (compiled with -parameters,
    so its methods also take named arguments)."""
    classes = javac(_java_sources(FIXTURES / "plain/src"), build_dir / "plain-classes", parameters=True)
    return fat_jar(build_dir / "geometry-1.0.jar", [classes])


@pytest.fixture(scope="session")
def modern_jar(jvm, build_dir: Path) -> Path:  # noqa: ANN001
    """A Java 17 jar with records and beans (skipped on an older JDK)."""
    if jvm.java_version < 17:
        pytest.skip(f"records need JDK 17; this JDK is {jvm.java_version}")
    classes = javac(_java_sources(FIXTURES / "modern/src"), build_dir / "modern-classes", release=17)
    return fat_jar(build_dir / "shapes.jar", [classes])


@pytest.fixture(scope="session")
def scala_jar(jvm, build_dir: Path) -> Path:  # noqa: ANN001
    """A Scala 2 fat jar (scalac from Debian's scala package) bundling scala-library."""
    library = scala_library()
    classes = scalac(
        sorted((FIXTURES / "scala/src").rglob("*.scala")), build_dir / "scala-classes", [jvm.api_jar, library]
    )
    return fat_jar(build_dir / "inventory-scala.jar", [classes], [library])


@pytest.fixture(scope="session")
def scala_thin_jar(scala_jar: Path, build_dir: Path) -> Path:
    """The same Scala classes without scala-library: Scala is not visible to it."""
    return fat_jar(build_dir / "inventory-thin.jar", [build_dir / "scala-classes"])


@pytest.fixture(scope="session")
def corrupt_jar(build_dir: Path) -> Path:
    p = build_dir / "corrupt.jar"
    p.write_bytes(b"PK\x03\x04 this is not really a zip archive" * 10)
    return p


@pytest.fixture
def jar_hub(tmp_path: Path, jvm, jvm_cache: Path) -> Iterator[cncf.Hub]:  # noqa: ANN001
    with cncf.Hub(home=jar_home(tmp_path / "home", jvm_cache)) as h:
        yield h


def jar_boundary(hub: cncf.Hub):  # noqa: ANN201 - JarBoundary
    """The hub's jar boundary (for host diagnostics)."""
    return hub.aio._boundaries["jar"]


def instance_of(hub: cncf.Hub, name: str):  # noqa: ANN201 - JarInstance
    from cncf.selector import normalize

    return hub.aio._components[normalize(name)].instance


def diagnostics(hub: cncf.Hub, name: str, *, gc: bool = False) -> dict:
    return hub._run(jar_boundary(hub).diagnostics(instance_of(hub, name), gc=gc))
